//! Sync server throughput and memory, in one process over loopback HTTP:
//! - pushes per second and latency (p50, p99) from 100 concurrent clients (100 groups, one
//!   sealed 256-byte record per push), on SQLite and on PostgreSQL (a throwaway cluster with
//!   fsync on, as in production); the peer is the same 100 clients calling `/health`, which
//!   touches no database: the ceiling of HTTP on this machine; and the disk's own ceiling,
//!   small appends each followed by `fdatasync` from one thread (every acknowledged push is
//!   one synced commit);
//! - resident memory added by 1,000 idle live (SSE) connections.
//!
//! Usage (release; raises the open-file limit itself where it may):
//!   ulimit -n 8192; cargo run --release -p likeness-server --example bench_server
//! Rate limits are lifted for the run; everything else is the default configuration.

#[allow(dead_code)]
#[path = "../tests/common/postgres.rs"]
mod postgres;

use likeness_server::db::{Database, Postgres, Sqlite};
use likeness_server::limits::Limits;
use likeness_server::{router, App};
use likeness_sync::protocol::{encode_push, push_id, PushRecord};
use likeness_sync::{seal, CollectionKeys, GroupKey, RecordKind};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CLIENTS: usize = 100;
const PUSHES_PER_CLIENT: u64 = 40;
const IDLE_STREAMS: usize = 1000;

fn limits() -> Limits {
    Limits { per_token: (1e9, 1e9), per_ip_auth: (1e9, 1e9), ..Limits::default() }
}

/// Serve the database at `db_url` on a loopback port from a runtime of its own; the URL.
fn serve(db_url: String) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            if db_url.starts_with("sqlite:") {
                run(Sqlite::open(&db_url).await.unwrap(), tx).await
            } else {
                run(Postgres::open(&db_url).await.unwrap(), tx).await
            }
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

async fn run<D: Database>(db: D, tx: std::sync::mpsc::Sender<SocketAddr>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    let app = router(App::new(db, limits()));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn call(agent: &ureq::Agent, method: &str, url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("Authorization", format!("Bearer {t}"));
    }
    let json = body.first() == Some(&b'{');
    b = b.header("Content-Type", if json { "application/json" } else { "application/octet-stream" });
    let mut resp = agent.run(b.body(body).unwrap()).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

/// A group with one collection: (collection URL, token, keys).
fn group(url: &str, seed: u8) -> (String, String, CollectionKeys) {
    let a = agent();
    let key = GroupKey::from_bytes([seed; 32]);
    let body = serde_json::json!({ "key_id": key.id_hex() }).to_string().into_bytes();
    let (st, out) = call(&a, "POST", &format!("{url}/v1/groups"), None, body);
    assert_eq!(st, 201);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let (id, token) = (v["group_id"].as_str().unwrap().to_string(), v["token"].as_str().unwrap().to_string());
    let keys = CollectionKeys::derive(&key, &id, "staff");
    let coll = format!("{url}/v1/groups/{id}/collections/{}", keys.tag);
    assert_eq!(call(&a, "PUT", &coll, Some(&token), keys.key_check().unwrap()).0, 200);
    (coll, token, keys)
}

struct Run {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `CLIENTS` threads, one per group, each making `PUSHES_PER_CLIENT` pushes (or `/health`
/// calls when `health` names the server).
fn load(groups: &[(String, String, CollectionKeys)], health: Option<&str>) -> Run {
    let started = Instant::now();
    let threads: Vec<_> = groups
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, (coll, token, keys))| {
            let health = health.map(str::to_string);
            std::thread::spawn(move || {
                let a = agent();
                let mut latencies = Vec::new();
                for counter in 1..=PUSHES_PER_CLIENT {
                    let t = Instant::now();
                    let status = match &health {
                        Some(url) => call(&a, "GET", &format!("{url}/health"), None, Vec::new()).0,
                        None => {
                            let payload = vec![i as u8; 256];
                            let record = seal(&keys, RecordKind::Changes, i as u64, counter, &payload).unwrap();
                            let body = encode_push(&[PushRecord { push_id: push_id(i as u64, counter), record }]);
                            call(&a, "POST", &format!("{coll}/records"), Some(&token), body).0
                        }
                    };
                    assert_eq!(status, 200);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed();
    all.sort();
    Run {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn bench_pushes(name: &str, url: &str) -> serde_json::Value {
    let groups: Vec<_> = (0..CLIENTS).map(|i| group(url, i as u8 + 1)).collect();
    let peer = load(&groups, Some(url));
    let pushes = load(&groups, None);
    eprintln!(
        "{name}: {:.0} pushes/s (p50 {:.1} ms, p99 {:.1} ms); /health {:.0} req/s (p99 {:.1} ms); ratio {:.2}",
        pushes.per_second,
        pushes.p50.as_secs_f64() * 1e3,
        pushes.p99.as_secs_f64() * 1e3,
        peer.per_second,
        peer.p99.as_secs_f64() * 1e3,
        pushes.per_second / peer.per_second
    );
    serde_json::json!({
        "database": name,
        "clients": CLIENTS,
        "pushes_per_second": pushes.per_second.round(),
        "push_p50_ms": pushes.p50.as_secs_f64() * 1e3,
        "push_p99_ms": pushes.p99.as_secs_f64() * 1e3,
        "health_per_second": peer.per_second.round(),
        "ratio_to_health": pushes.per_second / peer.per_second,
    })
}

fn bench_idle_streams(url: &str) -> serde_json::Value {
    let (coll, token, _) = group(url, 250);
    let group_id = coll.split('/').nth(5).unwrap().to_string();
    let addr = url.trim_start_matches("http://").to_string();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let mut streams = Vec::with_capacity(IDLE_STREAMS);
    for _ in 0..IDLE_STREAMS {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect (raise `ulimit -n`)");
        write!(s, "GET /v1/groups/{group_id}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
            .unwrap();
        streams.push(s);
    }
    // Every stream answered (headers read), so the server holds each one.
    for s in &mut streams {
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / IDLE_STREAMS as f64;
    eprintln!("{IDLE_STREAMS} idle live connections: +{} KiB resident ({per:.0} B each)", after - before);
    drop(streams);
    serde_json::json!({ "idle_streams": IDLE_STREAMS, "added_rss_kib": after.saturating_sub(before), "bytes_per_stream": per.round() })
}

/// Appends of 300 bytes, each made durable, per second (one thread, 2 s).
fn fsyncs_per_second(dir: &std::path::Path) -> f64 {
    let mut f = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        f.write_all(&[7u8; 300]).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let fsyncs = fsyncs_per_second(dir.path());
    eprintln!("disk: {fsyncs:.0} synced appends/s (one thread)");
    let sqlite = serve(format!("sqlite://{}", dir.path().join("bench.db").display()));
    let mut results = vec![bench_pushes("sqlite", &sqlite)];
    let streams = bench_idle_streams(&sqlite);
    let cluster = postgres::PgCluster::start(true);
    let pg = serve(cluster.create_database());
    results.push(bench_pushes("postgres", &pg));
    for r in &mut results {
        r["ratio_to_synced_appends"] = (r["pushes_per_second"].as_f64().unwrap_or(0.0) / fsyncs).into();
    }
    let out = serde_json::json!({ "synced_appends_per_second": fsyncs.round(), "pushes": results, "live": streams });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
