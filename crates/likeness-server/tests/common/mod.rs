//! A real server on a loopback port (in-process, on SQLite in a temp dir or on a fresh
//! database of a throwaway PostgreSQL cluster), the server binary as a process, and a small
//! client.

#![allow(dead_code)]

pub mod postgres;
pub mod scenarios;

use likeness_server::db::{Database, Postgres, Sqlite};
use likeness_server::limits::Limits;
use likeness_server::{router, App};
use likeness_sync::protocol::{encode_push, push_id, PushRecord};
use likeness_sync::{seal, CollectionKeys, GroupKey, RecordKind};
use std::net::SocketAddr;

/// Which database a test server runs on.
pub enum Backend<'a> {
    Sqlite,
    Postgres(&'a postgres::PgCluster),
}

pub struct Server {
    pub url: String,
    /// Where the database's files are (a temp dir, or the cluster's data directory).
    files: std::path::PathBuf,
    /// How to reach the database for [`Server::data_files`]'s checkpoint (PostgreSQL only).
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
    _runtime: std::thread::JoinHandle<()>,
}

impl Server {
    /// Every file that holds the database's bytes, with whatever the database caches flushed
    /// to them first.
    pub fn data_files(&self) -> Vec<std::path::PathBuf> {
        if let Some((cluster_url, _)) = &self.postgres {
            let out = std::process::Command::new("psql").args([cluster_url, "-qc", "CHECKPOINT"]).output().unwrap();
            assert!(out.status.success(), "CHECKPOINT: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut files = Vec::new();
        let mut dirs = vec![self.files.clone()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.is_file() {
                    // Regular files only: the cluster's directory holds its socket too.
                    files.push(path);
                }
            }
        }
        files
    }
}

/// Start a server with `limits` on a fresh SQLite file.
pub fn start(limits: Limits) -> Server {
    start_on(&Backend::Sqlite, limits)
}

/// Start a server with `limits` on a fresh database of `backend`.
pub fn start_on(backend: &Backend, limits: Limits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, files, postgres) = match backend {
        Backend::Sqlite => {
            (format!("sqlite://{}", dir.path().join("server.db").display()), dir.path().to_path_buf(), None)
        }
        Backend::Postgres(cluster) => {
            let url = cluster.create_database();
            (url.clone(), cluster.data_dir(), Some((cluster.url("postgres"), url)))
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            if db_url.starts_with("sqlite:") {
                serve(Sqlite::open(&db_url).await.unwrap(), limits, tx).await
            } else {
                serve(Postgres::open(&db_url).await.unwrap(), limits, tx).await
            }
        });
    });
    let addr = rx.recv().unwrap();
    Server { url: format!("http://{addr}"), files, postgres, _dir: dir, _runtime: handle }
}

async fn serve<D: Database>(db: D, limits: Limits, tx: std::sync::mpsc::Sender<SocketAddr>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    axum::serve(listener, router(App::new(db, limits)).into_make_service_with_connect_info::<SocketAddr>())
        .await
        .unwrap();
}

/// A server process, killed on drop (also when a test panics).
pub struct ServerProcess(pub std::process::Child);

impl std::ops::Deref for ServerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server binary on the database at `url`, and its URL once it listens.
pub fn spawn_process(db_url: &str) -> (ServerProcess, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_likeness-server"))
        .args(["--listen", "127.0.0.1:0", "--database", db_url])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    let child = ServerProcess(child);
    assert!(url.starts_with("http://"), "the server did not start: {line:?}");
    (child, url)
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Status and body of a request.
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let a = agent();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        builder = builder.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        let json = b.first() == Some(&b'{');
        builder = builder.header("Content-Type", if json { "application/json" } else { "application/octet-stream" });
    }
    let req = builder.body(body.map(<[u8]>::to_vec).unwrap_or_default()).unwrap();
    let mut resp = a.run(req).unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
    (status, body)
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

pub fn code(body: &[u8]) -> String {
    json(body)["code"].as_str().unwrap_or_default().to_string()
}

/// A group: its key, id and first device's token.
pub struct Group {
    pub key: GroupKey,
    pub id: String,
    pub token: String,
}

pub fn create_group(s: &Server, key: GroupKey) -> Group {
    let body = serde_json::json!({ "key_id": key.id_hex(), "label": "laptop" }).to_string();
    let (status, out) = call("POST", &format!("{}/v1/groups", s.url), None, Some(body.as_bytes()));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&out));
    let v = json(&out);
    Group { key, id: v["group_id"].as_str().unwrap().into(), token: v["token"].as_str().unwrap().into() }
}

pub fn collection_url(s: &Server, g: &Group, keys: &CollectionKeys) -> String {
    format!("{}/v1/groups/{}/collections/{}", s.url, g.id, keys.tag)
}

/// Create the collection on the server with its key check.
pub fn put_collection(s: &Server, g: &Group, keys: &CollectionKeys) -> (u16, Vec<u8>) {
    call("PUT", &collection_url(s, g, keys), Some(&g.token), Some(&keys.key_check().unwrap()))
}

/// Seal `payloads` as device `device`'s records from `first_counter`, and their push body.
pub fn push_body(keys: &CollectionKeys, device: u64, first_counter: u64, payloads: &[Vec<u8>]) -> Vec<u8> {
    let records: Vec<PushRecord> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let counter = first_counter + i as u64;
            PushRecord {
                push_id: push_id(device, counter),
                record: seal(keys, RecordKind::Changes, device, counter, p).unwrap(),
            }
        })
        .collect();
    encode_push(&records)
}

/// Listen to a group's live events on the server at `url`: each `data:` line as it arrives.
pub fn listen(url: &str, group_id: &str, token: &str) -> std::sync::mpsc::Receiver<(std::time::Instant, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let events_url = format!("{url}/v1/groups/{group_id}/events");
    let token = token.to_string();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let resp = agent().get(&events_url).header("Authorization", format!("Bearer {token}")).call().unwrap();
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if let Some(data) = line.strip_prefix("data: ") {
                if tx.send((std::time::Instant::now(), data.to_string())).is_err() {
                    return;
                }
            }
        }
    });
    rx
}
