//! A real server on a loopback port (in-process, SQLite in a temp dir), and a small client.

#![allow(dead_code)]

use likeness_server::db::Sqlite;
use likeness_server::limits::Limits;
use likeness_server::{router, App};
use likeness_sync::protocol::{encode_push, push_id, PushRecord};
use likeness_sync::{seal, CollectionKeys, GroupKey, RecordKind};
use std::net::SocketAddr;

pub struct Server {
    pub url: String,
    pub dir: tempfile::TempDir,
    _runtime: std::thread::JoinHandle<()>,
}

/// Start a server with `limits` on a fresh SQLite file.
pub fn start(limits: Limits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("server.db").display());
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let db = Sqlite::open(&db_url).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router(App::new(db, limits)).into_make_service_with_connect_info::<SocketAddr>())
                .await
                .unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    Server { url: format!("http://{addr}"), dir, _runtime: handle }
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
