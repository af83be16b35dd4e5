//! kill -9 during a stream of pushes: after a restart on the same SQLite file, every push that
//! got a success response is there, and a client resumes from its cursor.

mod common;
use common::*;
use likeness_sync::protocol::decode_pull;
use likeness_sync::{open, CollectionKeys, GroupKey};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary on `db`, and its URL once it listens.
fn spawn(db: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_likeness-server"))
        .args(["--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://"), "{line}");
    (child, url)
}

#[test]
fn every_acknowledged_push_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let (mut server, url) = spawn(&db);
    let key = GroupKey::from_bytes([11; 32]);
    let body = serde_json::json!({ "key_id": key.id_hex() }).to_string();
    let creds = json(&call("POST", &format!("{url}/v1/groups"), None, Some(body.as_bytes())).1);
    let (group, token) =
        (creds["group_id"].as_str().unwrap().to_string(), creds["token"].as_str().unwrap().to_string());
    let keys = CollectionKeys::derive(&key, &group, "staff");
    let coll = format!("{url}/v1/groups/{group}/collections/{}", keys.tag);
    assert_eq!(call("PUT", &coll, Some(&token), Some(&keys.key_check().unwrap())).0, 200);

    // Push one record at a time from two threads until the server dies.
    let started = Instant::now();
    let pushers: Vec<_> = (0..2u64)
        .map(|device| {
            let (coll, token, keys) = (coll.clone(), token.clone(), keys.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for counter in 1.. {
                    let body = push_body(&keys, device, counter, &[format!("{device}:{counter}").into_bytes()]);
                    let req = ureq::http::Request::builder()
                        .method("POST")
                        .uri(format!("{coll}/records"))
                        .header("Authorization", format!("Bearer {token}"))
                        .header("Content-Type", "application/octet-stream")
                        .body(body)
                        .unwrap();
                    match agent().run(req) {
                        Ok(r) if r.status() == 200 => acked.push(format!("{device}:{counter}")),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let acked: Vec<String> = pushers.into_iter().flat_map(|p| p.join().unwrap()).collect();
    assert!(acked.len() > 10, "only {} pushes before the kill ({:?})", acked.len(), started.elapsed());

    let (mut server, url) = spawn(&db);
    let coll = format!("{url}/v1/groups/{group}/collections/{}", keys.tag);
    let mut stored = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        let (st, out) = call("GET", &format!("{coll}/records?after={after}"), Some(&token), None);
        assert_eq!(st, 200);
        let page = decode_pull(&out).unwrap();
        let Some(last) = page.last() else { break };
        after = last.sequence;
        for r in &page {
            stored.insert(String::from_utf8(open(&keys, &r.record).unwrap().payload).unwrap());
        }
    }
    eprintln!("{} pushes acknowledged before kill -9, {} records after restart", acked.len(), stored.len());
    let lost: Vec<&String> = acked.iter().filter(|a| !stored.contains(*a)).collect();
    assert!(lost.is_empty(), "{} acknowledged pushes lost: {lost:?}", lost.len());
    // Pushes that were in flight at the kill may or may not be there; nothing else is.
    assert!(stored.len() <= acked.len() + 2, "{} stored, {} acknowledged", stored.len(), acked.len());
    server.kill().unwrap();
    server.wait().unwrap();
}
