//! The server on PostgreSQL: a throwaway cluster (Debian's `postgresql`, run as an
//! unprivileged user under root) in a temp dir. Every scenario of `tests/server.rs`, kill -9
//! of the server binary, and two server processes on one database: a device on each hears
//! the other's writes live and pulls them, and concurrent pushes through both processes get
//! one dense sequence.
//!
//! One test owns the cluster, so it is stopped whatever happens.

mod common;
use common::postgres::PgCluster;
use common::*;
use likeness_sync::protocol::decode_pull;
use likeness_sync::{open, CollectionKeys, GroupKey};
use std::time::{Duration, Instant};

#[test]
fn the_server_on_postgresql() {
    let cluster = PgCluster::start(false);
    let pg = Backend::Postgres(&cluster);
    let started = Instant::now();
    scenarios::push_is_idempotent_pull_pages_and_snapshots_fold_the_log(&pg);
    scenarios::invites_are_single_use_and_expire(&pg);
    scenarios::groups_are_isolated_and_revoked_devices_refused(&pg);
    scenarios::a_device_with_the_wrong_key_is_refused_before_it_writes(&pg);
    scenarios::limits_are_typed_refusals(&pg);
    scenarios::a_connected_device_hears_of_new_records_within_a_second(&pg);
    scenarios::the_database_files_hold_nothing_in_the_clear(&pg);
    eprintln!("scenarios on PostgreSQL: {:?}", started.elapsed());
    scenarios::every_acknowledged_push_survives_kill_9(&cluster.create_database());
    two_processes_share_one_database(&cluster);
}

/// Join a second device to `g` through the server at `url`; its token.
fn join(url: &str, g: &Group) -> String {
    let (st, out) = call("POST", &format!("{url}/v1/groups/{}/invites", g.id), Some(&g.token), None);
    assert_eq!(st, 201);
    let body = serde_json::json!({ "invite": json(&out)["invite"], "label": "second" }).to_string();
    let (st, out) = call("POST", &format!("{url}/v1/join"), None, Some(body.as_bytes()));
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&out));
    json(&out)["token"].as_str().unwrap().to_string()
}

fn two_processes_share_one_database(cluster: &PgCluster) {
    let db = cluster.create_database();
    let (one, url1) = spawn_process(&db);
    let (two, url2) = spawn_process(&db);
    // A group made through process one; its second device talks to process two.
    let key = GroupKey::from_bytes([21; 32]);
    let body = serde_json::json!({ "key_id": key.id_hex(), "label": "laptop" }).to_string();
    let v = json(&call("POST", &format!("{url1}/v1/groups"), None, Some(body.as_bytes())).1);
    let g = Group { key, id: v["group_id"].as_str().unwrap().into(), token: v["token"].as_str().unwrap().into() };
    let phone = join(&url2, &g);
    let keys = CollectionKeys::derive(&g.key, &g.id, "staff");
    let path = format!("/v1/groups/{}/collections/{}", g.id, keys.tag);
    assert_eq!(call("PUT", &format!("{url1}{path}"), Some(&g.token), Some(&keys.key_check().unwrap())).0, 200);

    // Each device listens on its own process; each hears the other's push within a second.
    let laptop_hears = listen(&url1, &g.id, &g.token);
    let phone_hears = listen(&url2, &g.id, &phone);
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::new();
    for (round, (push_to, token, hears, device)) in
        [(&url1, &g.token, &phone_hears, 1u64), (&url2, &phone, &laptop_hears, 2)].into_iter().enumerate()
    {
        let pushed = Instant::now();
        let payload = format!("from device {device}").into_bytes();
        let body = push_body(&keys, device, 1, &[payload.clone()]);
        let (st, out) = call("POST", &format!("{push_to}{path}/records"), Some(token), Some(&body));
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
        // The first event about this push (a device also hears of its own earlier pushes).
        let deadline = pushed + Duration::from_secs(1);
        let at = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, data) = hears.recv_timeout(left).expect("the other process tells its device within a second");
            if json(data.as_bytes())["last_seq"] == round as u64 + 1 {
                break at;
            }
        };
        latencies.push(at.duration_since(pushed));
        // And the other process serves the record.
        let other = if push_to == &url1 { (&url2, &phone) } else { (&url1, &g.token) };
        let (st, out) = call("GET", &format!("{}{path}/records?after={round}", other.0), Some(other.1), None);
        assert_eq!(st, 200);
        let page = decode_pull(&out).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(open(&keys, &page[0].record).unwrap().payload, payload);
    }
    eprintln!("cross-process live latency: {latencies:?}");

    // Concurrent pushes through both processes: one dense log, no push stored twice.
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let url = if t % 2 == 0 { url1.clone() } else { url2.clone() };
            let token = if t % 2 == 0 { g.token.clone() } else { phone.clone() };
            let (keys, path) = (keys.clone(), path.clone());
            std::thread::spawn(move || {
                for i in 0..20u64 {
                    let body = push_body(&keys, 10 + t, 1 + i * 2, &[b"x".to_vec(), b"y".to_vec()]);
                    // Each push twice: the retry must not add records.
                    for _ in 0..2 {
                        let (st, out) = call("POST", &format!("{url}{path}/records"), Some(&token), Some(&body));
                        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let name = db.rsplit('/').next().unwrap();
    let stored = cluster.psql(name, "SELECT COUNT(*), MIN(seq), MAX(seq) FROM records");
    assert_eq!(stored.trim(), "322|1|322", "2 + 8 threads x 20 pushes x 2 records, sequences 1..=322");
    let accounted = cluster.psql(
        name,
        "SELECT (SELECT bytes FROM groups) = (SELECT SUM(OCTET_LENGTH(body)) FROM records), \
         (SELECT bytes FROM collections) = (SELECT SUM(OCTET_LENGTH(body)) FROM records)",
    );
    assert_eq!(accounted.trim(), "t|t", "byte counts match what is stored");
    drop((one, two));
}
