//! The server's behaviour over real HTTP on loopback, with records sealed by the real client
//! crypto: the protocol, isolation between groups, limits, live events, and what the
//! database files hold. Each scenario runs on every backend (`tests/server.rs` on SQLite,
//! `tests/postgres.rs` on PostgreSQL).

use super::*;
use likeness_server::limits::Limits;
use likeness_sync::protocol::decode_pull;
use likeness_sync::{open, CollectionKeys, GroupKey, ReplayGuard};
use std::time::{Duration, Instant};

pub fn limits() -> Limits {
    Limits { per_ip_auth: (100.0, 100.0), ..Limits::default() }
}

fn payloads(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-change-{i}").into_bytes()).collect()
}

pub fn push_is_idempotent_pull_pages_and_snapshots_fold_the_log(backend: &Backend) {
    let s = start_on(backend, Limits { pull_page_records: 2, ..limits() });
    let g = create_group(&s, GroupKey::from_bytes([1; 32]));
    let keys = CollectionKeys::derive(&g.key, &g.id, "staff");
    assert_eq!(put_collection(&s, &g, &keys).0, 200);
    assert_eq!(put_collection(&s, &g, &keys).0, 200, "confirming the key again is fine");
    let url = collection_url(&s, &g, &keys);
    let body = push_body(&keys, 7, 1, &payloads(3, "a"));
    let (st, out) = call("POST", &format!("{url}/records"), Some(&g.token), Some(&body));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&out));
    assert_eq!(json(&out)["sequences"], serde_json::json!([1, 2, 3]));
    // A retried push (same push ids) stores nothing twice.
    let (_, again) = call("POST", &format!("{url}/records"), Some(&g.token), Some(&body));
    assert_eq!(json(&again)["sequences"], serde_json::json!([1, 2, 3]));
    let more = push_body(&keys, 7, 4, &payloads(2, "b"));
    assert_eq!(
        json(&call("POST", &format!("{url}/records"), Some(&g.token), Some(&more)).1)["sequences"],
        serde_json::json!([4, 5])
    );

    // Pull in pages of two; every record opens and the guard sees no replay.
    let mut guard = ReplayGuard::default();
    let mut after = 0;
    let mut got = Vec::new();
    loop {
        let (st, out) = call("GET", &format!("{url}/records?after={after}"), Some(&g.token), None);
        assert_eq!(st, 200);
        let page = decode_pull(&out).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        for r in page {
            let o = open(&keys, &r.record).unwrap();
            guard.check(&o).unwrap();
            guard.accept(&o);
            got.push(String::from_utf8(o.payload).unwrap());
            after = r.sequence;
        }
    }
    assert_eq!(got, ["a-change-0", "a-change-1", "a-change-2", "b-change-0", "b-change-1"]);

    // A snapshot covering 1..=3 drops those records; a pull from before it is told so.
    let snap = likeness_sync::seal(&keys, likeness_sync::RecordKind::Snapshot, 7, 6, b"state at 3").unwrap();
    assert_eq!(call("PUT", &format!("{url}/snapshot?covers=3"), Some(&g.token), Some(&snap)).0, 204);
    let (st, out) = call("GET", &format!("{url}/records?after=0"), Some(&g.token), None);
    assert_eq!((st, code(&out)), (409, "SnapshotRequired".to_string()));
    let (st, out) = call("GET", &format!("{url}/snapshot"), Some(&g.token), None);
    assert_eq!(st, 200);
    assert_eq!(open(&keys, &out).unwrap().payload, b"state at 3");
    let tail = decode_pull(&call("GET", &format!("{url}/records?after=3"), Some(&g.token), None).1).unwrap();
    assert_eq!(tail.iter().map(|r| r.sequence).collect::<Vec<_>>(), [4, 5]);
    // A snapshot past the log's end, or older than the stored one, is refused.
    assert_eq!(call("PUT", &format!("{url}/snapshot?covers=99"), Some(&g.token), Some(&snap)).0, 400);
    assert_eq!(call("PUT", &format!("{url}/snapshot?covers=2"), Some(&g.token), Some(&snap)).0, 409);
    // A snapshot is not a change record, and the reverse.
    assert_eq!(
        call(
            "POST",
            &format!("{url}/records"),
            Some(&g.token),
            Some(&likeness_sync::protocol::encode_push(&[likeness_sync::protocol::PushRecord {
                push_id: [9; 16],
                record: snap.clone()
            }]))
        )
        .0,
        400
    );
}

pub fn invites_are_single_use_and_expire(backend: &Backend) {
    let s = start_on(backend, limits());
    let g = create_group(&s, GroupKey::from_bytes([2; 32]));
    let (st, out) = call("POST", &format!("{}/v1/groups/{}/invites", s.url, g.id), Some(&g.token), None);
    assert_eq!(st, 201);
    let invite = json(&out)["invite"].as_str().unwrap().to_string();
    let join = serde_json::json!({ "invite": invite, "label": "phone" }).to_string();
    let (st, out) = call("POST", &format!("{}/v1/join", s.url), None, Some(join.as_bytes()));
    assert_eq!(st, 201);
    let phone = json(&out);
    assert_eq!(phone["group_id"], g.id.as_str());
    let phone_token = phone["token"].as_str().unwrap();
    let (st, out) = call("GET", &format!("{}/v1/groups/{}/devices", s.url, g.id), Some(phone_token), None);
    assert_eq!(st, 200);
    assert_eq!(json(&out)["devices"].as_array().unwrap().len(), 2);
    // Used once: the second use is refused like an unknown code.
    let (st, out) = call("POST", &format!("{}/v1/join", s.url), None, Some(join.as_bytes()));
    assert_eq!((st, code(&out)), (404, "NotFound".to_string()));
    // Expired invites are refused.
    let s2 = start_on(backend, Limits { invite_ttl: Duration::ZERO, ..limits() });
    let g2 = create_group(&s2, GroupKey::from_bytes([2; 32]));
    let out = call("POST", &format!("{}/v1/groups/{}/invites", s2.url, g2.id), Some(&g2.token), None).1;
    let join = serde_json::json!({ "invite": json(&out)["invite"] }).to_string();
    assert_eq!(call("POST", &format!("{}/v1/join", s2.url), None, Some(join.as_bytes())).0, 404);
}

pub fn groups_are_isolated_and_revoked_devices_refused(backend: &Backend) {
    let s = start_on(backend, limits());
    let a = create_group(&s, GroupKey::from_bytes([3; 32]));
    let b = create_group(&s, GroupKey::from_bytes([4; 32]));
    let kb = CollectionKeys::derive(&b.key, &b.id, "staff");
    assert_eq!(put_collection(&s, &b, &kb).0, 200);
    // A's token on B's real collection answers exactly as on a group that does not exist.
    let real = call("GET", &collection_url(&s, &b, &kb), Some(&a.token), None);
    let none =
        call("GET", &format!("{}/v1/groups/{}/collections/{}", s.url, "0".repeat(32), kb.tag), Some(&a.token), None);
    assert_eq!(real, none);
    assert_eq!(real.0, 404);
    for (m, path) in [("GET", "devices"), ("POST", "invites")] {
        assert_eq!(call(m, &format!("{}/v1/groups/{}/{path}", s.url, b.id), Some(&a.token), None).0, 404);
    }
    // No token, a wrong one, a revoked one: 401.
    assert_eq!(call("GET", &collection_url(&s, &b, &kb), None, None).0, 401);
    assert_eq!(call("GET", &collection_url(&s, &b, &kb), Some("nope"), None).0, 401);
    let devices = json(&call("GET", &format!("{}/v1/groups/{}/devices", s.url, b.id), Some(&b.token), None).1);
    let me = devices["devices"][0]["device_id"].as_str().unwrap().to_string();
    let live = listen(&s.url, &b.id, &b.token);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(call("DELETE", &format!("{}/v1/groups/{}/devices/{me}", s.url, b.id), Some(&b.token), None).0, 204);
    let (st, out) = call("GET", &collection_url(&s, &b, &kb), Some(&b.token), None);
    assert_eq!((st, code(&out)), (401, "Unauthorized".to_string()));
    // Its open live stream ends too.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match live.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the revoked device's stream is still open"),
            Ok(_) => {}
        }
    }
}

pub fn a_device_with_the_wrong_key_is_refused_before_it_writes(backend: &Backend) {
    let s = start_on(backend, limits());
    let g = create_group(&s, GroupKey::from_bytes([5; 32]));
    let keys = CollectionKeys::derive(&g.key, &g.id, "staff");
    assert_eq!(put_collection(&s, &g, &keys).0, 200);
    let wrong = CollectionKeys::derive(&GroupKey::from_bytes([6; 32]), &g.id, "staff");
    // Same collection name, other key: another tag entirely, so try the real tag with the
    // wrong key's check record.
    let (st, out) = call("PUT", &collection_url(&s, &g, &keys), Some(&g.token), Some(&wrong.key_check().unwrap()));
    assert_eq!((st, code(&out)), (409, "WrongKey".to_string()));
    // The device can also check the stored record itself.
    let stored = json(&call("GET", &collection_url(&s, &g, &keys), Some(&g.token), None).1);
    use base64::Engine;
    let check = base64::engine::general_purpose::STANDARD.decode(stored["key_check"].as_str().unwrap()).unwrap();
    keys.verify_key_check(&check).unwrap();
    assert_eq!(wrong.verify_key_check(&check).unwrap_err().exception_name(), "WrongKeyException");
}

pub fn limits_are_typed_refusals(backend: &Backend) {
    let s = start_on(
        backend,
        Limits {
            max_body_bytes: 64 * 1024,
            max_records_per_push: 4,
            group_quota_bytes: 3_000,
            per_ip_auth: (0.001, 2.0),
            ..Limits::default()
        },
    );
    let g = create_group(&s, GroupKey::from_bytes([7; 32]));
    let keys = CollectionKeys::derive(&g.key, &g.id, "staff");
    put_collection(&s, &g, &keys);
    let url = format!("{}/records", collection_url(&s, &g, &keys));
    let huge = vec![0u8; 100 * 1024];
    let (st, out) = call("POST", &url, Some(&g.token), Some(&huge));
    assert_eq!((st, code(&out)), (413, "PayloadTooLarge".to_string()));
    let (st, out) = call("POST", &url, Some(&g.token), Some(&push_body(&keys, 1, 1, &payloads(5, "x"))));
    assert_eq!((st, code(&out)), (400, "InvalidRequest".to_string()));
    let (st, out) = call("POST", &url, Some(&g.token), Some(b"garbage"));
    assert_eq!((st, code(&out)), (400, "InvalidRequest".to_string()));
    // Records of 256+ bytes each: the quota of 3,000 bytes holds some, then refuses whole pushes.
    let mut refused = false;
    for i in 0..20 {
        let (st, out) = call("POST", &url, Some(&g.token), Some(&push_body(&keys, 1, 1 + 4 * i, &payloads(4, "q"))));
        if st != 200 {
            assert_eq!((st, code(&out)), (507, "QuotaExceeded".to_string()));
            refused = true;
            break;
        }
    }
    assert!(refused, "the quota was never reached");
    let info = json(&call("GET", &collection_url(&s, &g, &keys), Some(&g.token), None).1);
    assert!(info["bytes"].as_i64().unwrap() <= 3_000);
    // Credential routes: a burst of 2 per address, then 429 (the group above used one).
    let body = serde_json::json!({ "key_id": g.key.id_hex() }).to_string();
    let statuses: Vec<u16> =
        (0..3).map(|_| call("POST", &format!("{}/v1/groups", s.url), None, Some(body.as_bytes())).0).collect();
    assert_eq!(statuses, [201, 429, 429]);
    let (_, out) = call("POST", &format!("{}/v1/groups", s.url), None, Some(body.as_bytes()));
    assert_eq!(code(&out), "RateLimited");
}

pub fn a_connected_device_hears_of_new_records_within_a_second(backend: &Backend) {
    let s = start_on(backend, limits());
    let g = create_group(&s, GroupKey::from_bytes([8; 32]));
    let keys = CollectionKeys::derive(&g.key, &g.id, "staff");
    put_collection(&s, &g, &keys);
    let rx = listen(&s.url, &g.id, &g.token);
    std::thread::sleep(Duration::from_millis(300));
    let pushed = Instant::now();
    let url = format!("{}/records", collection_url(&s, &g, &keys));
    assert_eq!(call("POST", &url, Some(&g.token), Some(&push_body(&keys, 1, 1, &payloads(1, "live")))).0, 200);
    let (at, data) = rx.recv_timeout(Duration::from_secs(1)).expect("an event within a second");
    let v = json(data.as_bytes());
    assert_eq!(v["tag"], keys.tag.as_str());
    assert_eq!(v["last_seq"], 1);
    assert!(at.duration_since(pushed) < Duration::from_secs(1));
}

pub fn the_database_files_hold_nothing_in_the_clear(backend: &Backend) {
    // Real change sets of a collection with a named person, sealed as a client seals them.
    use likeness_collections::codec::{encode, ChangeKind, ChangeSet};
    use likeness_collections::hlc::{Hlc, VersionVector};
    use likeness_collections::ids;
    use likeness_collections::search::quantize;
    use likeness_collections::state::*;
    let s = start_on(backend, limits());
    let g = create_group(&s, GroupKey::from_bytes([9; 32]));
    let keys = CollectionKeys::derive(&g.key, &g.id, "front-door-staff");
    put_collection(&s, &g, &keys);
    let vector: Vec<f32> = (0..128).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
    let codes = quantize(&vector);
    let stamp = Hlc { millis: 1_700_000_000_000, counter: 0, replica: 5 };
    let face_id = ids::face_id(stamp, 0);
    let ops = vec![
        Op {
            stamp,
            kind: OpKind::AddFace(StoredFace {
                face_id,
                image_id: ids::image_id("front-door-staff", b"photo"),
                external_image_id: Some("Jane_Appleseed_badge_4471".into()),
                bounding_box: likeness_vision::BoundingBox { width: 0.3, height: 0.4, left: 0.2, top: 0.1 },
                confidence: 99.0,
                vector: codes.clone(),
            }),
        },
        Op {
            stamp: Hlc { counter: 1, ..stamp },
            kind: OpKind::User {
                user_id: "jane.appleseed".into(),
                value: UserValue { live: true, client_request_token: None },
            },
        },
    ];
    let mut version = VersionVector::default();
    ops.iter().for_each(|o| version.observe(o.stamp));
    let change = encode(&ChangeSet {
        kind: ChangeKind::Delta,
        collection_id: "front-door-staff".into(),
        face_model_version: "m".into(),
        dimension: 128,
        version,
        ops,
        floor: VersionVector::default(),
    })
    .unwrap();
    assert!(change.windows(4).any(|w| w == b"Jane"), "the plaintext holds the name (the scan can find it)");
    let url = format!("{}/records", collection_url(&s, &g, &keys));
    assert_eq!(call("POST", &url, Some(&g.token), Some(&push_body(&keys, 1, 1, &[change.clone()]))).0, 200);
    let snap = likeness_sync::seal(&keys, likeness_sync::RecordKind::Snapshot, 1, 2, &change).unwrap();
    assert_eq!(
        call("PUT", &format!("{}/snapshot?covers=1", collection_url(&s, &g, &keys)), Some(&g.token), Some(&snap)).0,
        204
    );
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("ExternalImageId", b"Jane_Appleseed".to_vec()),
        ("UserId", b"jane.appleseed".to_vec()),
        ("collection name", b"front-door-staff".to_vec()),
        ("FaceId (text)", face_id.to_string().into_bytes()),
        ("FaceId (binary)", face_id.0.to_vec()),
        ("vector codes", codes.iter().map(|&c| c as u8).collect()),
        ("vector f32", vector.iter().flat_map(|x| x.to_le_bytes()).take(64).collect()),
    ];
    let mut scanned = 0;
    for path in s.data_files() {
        let bytes = std::fs::read(path).unwrap();
        scanned += bytes.len();
        for (what, n) in &needles {
            assert!(!bytes.windows(n.len()).any(|w| w == &n[..]), "the database holds the {what}");
        }
    }
    assert!(scanned > change.len(), "the scan read the database files ({scanned} bytes)");
}

/// kill -9 the server binary (on the database at `db_url`) during a stream of pushes: after a
/// restart every push that got a success response is there, and a client resumes from its
/// cursor.
pub fn every_acknowledged_push_survives_kill_9(db_url: &str) {
    let (mut server, url) = spawn_process(db_url);
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

    let (mut server, url) = spawn_process(db_url);
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
