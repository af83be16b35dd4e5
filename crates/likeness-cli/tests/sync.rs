//! Two `likeness` stores synced through a real server (in-process, SQLite on disk): faces
//! indexed on one appear on the other with the same FaceIds and are found by a search there;
//! a delete on the second reaches the first; a wrong join code is refused; an unreachable
//! server keeps local changes for later; `sync watch` follows the other device live, pushes
//! local writes by itself, and stops when its device is revoked. Real photos from
//! ../shared/data/faces.

mod common;
use common::*;
use std::net::SocketAddr;
use std::path::Path;

/// A sync server on a loopback port, on a SQLite file in `dir`.
fn server(dir: &Path) -> String {
    let url = format!("sqlite://{}", dir.join("server.db").display());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let db = likeness_server::db::Sqlite::open(&url).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let app = likeness_server::router(likeness_server::App::new(db, Default::default()));
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn face_ids(store: &Path) -> Vec<(String, String)> {
    let v = ok_json(likeness(store, &["list-faces", "--collection-id", "staff"]));
    let mut ids: Vec<(String, String)> = v["Faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["FaceId"].as_str().unwrap().to_string(), f["ExternalImageId"].as_str().unwrap_or("").to_string()))
        .collect();
    ids.sort();
    ids
}

#[test]
fn two_stores_converge_through_the_server() {
    let Some(root) = faces() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let url = server(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok_json(likeness(&a, &["create-collection", "--collection-id", "staff"]));
    for (person, photo) in [("obama", "obama.jpg"), ("biden", "biden.jpg")] {
        let img = root.join(person).join(photo);
        ok_json(likeness(
            &a,
            &[
                "index-faces",
                "--collection-id",
                "staff",
                "--external-image-id",
                person,
                "--image",
                img.to_str().unwrap(),
            ],
        ));
    }
    let created = ok_json(likeness(&a, &["sync", "create", "--server", &url, "--label", "a"]));
    let phrase = created["RecoveryPhrase"].as_str().unwrap();
    assert_eq!(phrase.len(), 65);
    let pushed = ok_json(likeness(&a, &["sync", "now"]));
    assert_eq!(pushed["PushedRecords"], 1, "{pushed}");

    // A tampered join code (one character of the key changed) is refused before joining.
    let invite = ok_json(likeness(&a, &["sync", "invite"]));
    let code = invite["JoinCode"].as_str().unwrap().to_string();
    let mut bad = code.clone().into_bytes();
    let last = bad.len() - 3;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    let out = likeness(&tmp.path().join("c"), &["sync", "join", std::str::from_utf8(&bad).unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidRecoveryPhrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let joined = ok_json(likeness(&b, &["sync", "join", &code, "--label", "b"]));
    assert_eq!(joined["ShortCode"], invite["ShortCode"], "both screens show the same short code");
    let pulled = ok_json(likeness(&b, &["sync", "now"]));
    assert!(pulled["PulledRecords"].as_u64().unwrap() >= 1, "{pulled}");
    assert_eq!(face_ids(&b), face_ids(&a), "the same faces, with the same FaceIds");
    assert_eq!(face_ids(&b).len(), 2);

    // B finds Obama from another photo, with the ExternalImageId A gave.
    let probe = root.join("obama").join("obama2.jpg");
    let found = ok_json(likeness(
        &b,
        &["search-faces-by-image", "--collection-id", "staff", "--image", probe.to_str().unwrap()],
    ));
    assert_eq!(found["FaceMatches"][0]["Face"]["ExternalImageId"], "obama", "{found}");

    // A delete on B reaches A.
    let biden = face_ids(&b).into_iter().find(|(_, e)| e == "biden").unwrap().0;
    ok_json(likeness(&b, &["delete-faces", "--collection-id", "staff", "--face-ids", &biden]));
    ok_json(likeness(&b, &["sync", "now"]));
    ok_json(likeness(&a, &["sync", "now"]));
    assert_eq!(face_ids(&a), face_ids(&b));
    assert!(face_ids(&a).iter().all(|(_, e)| e == "obama"));
    // Nothing more to do: a second round moves nothing.
    let idle = ok_json(likeness(&a, &["sync", "now"]));
    assert_eq!((idle["PulledRecords"].as_u64(), idle["PushedRecords"].as_u64()), (Some(0), Some(0)), "{idle}");
}

#[test]
fn an_unreachable_server_keeps_local_changes_for_later() {
    let Some(root) = faces() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let url = server(tmp.path());
    let a = tmp.path().join("a");
    ok_json(likeness(&a, &["create-collection", "--collection-id", "staff"]));
    ok_json(likeness(&a, &["sync", "create", "--server", &url]));
    ok_json(likeness(&a, &["sync", "now"]));
    let img = root.join("obama").join("obama.jpg");
    ok_json(likeness(&a, &["index-faces", "--collection-id", "staff", "--image", img.to_str().unwrap()]));
    // Point the store at a port nobody listens on: the sync fails, the face stays.
    let config_path = a.join("sync.json");
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, good.replace(&url, "http://127.0.0.1:9")).unwrap();
    let out = likeness(&a, &["sync", "now"]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("SyncOfflineException: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(face_ids(&a).len(), 1);
    // Back online: the change goes up.
    let after = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, after.replace("http://127.0.0.1:9", &url)).unwrap();
    let pushed = ok_json(likeness(&a, &["sync", "now"]));
    assert_eq!(pushed["PushedRecords"], 1, "{pushed}");
}

/// `index-faces` of one photo of `person` into "staff".
fn index(store: &Path, root: &Path, person: &str, photo: &str) {
    let img = root.join(person).join(photo);
    ok_json(likeness(
        store,
        &["index-faces", "--collection-id", "staff", "--external-image-id", person, "--image", img.to_str().unwrap()],
    ));
}

/// The next line `sync watch` prints whose Status is `status`, within `within`.
fn next_status(
    lines: &std::sync::mpsc::Receiver<serde_json::Value>,
    status: &str,
    within: std::time::Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("no {status:?} line from sync watch"));
        if line["Status"] == status {
            return line;
        }
    }
}

#[test]
fn sync_watch_follows_the_group_live_and_stops_when_revoked() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let Some(root) = faces() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let url = server(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok_json(likeness(&a, &["create-collection", "--collection-id", "staff"]));
    index(&a, &root, "obama", "obama.jpg");
    ok_json(likeness(&a, &["sync", "create", "--server", &url, "--label", "desk"]));
    ok_json(likeness(&a, &["sync", "now"]));
    let code = ok_json(likeness(&a, &["sync", "invite"]))["JoinCode"].as_str().unwrap().to_string();
    ok_json(likeness(&b, &["sync", "join", &code, "--label", "door"]));

    // B watches (the periodic sync far away: only the live channel and local writes wake it).
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"))
        .arg("--store")
        .arg(&b)
        .args(["sync", "watch", "--interval", "3600"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str::<serde_json::Value>(&line).expect("each line is JSON"));
        }
    });
    let first = next_status(&lines, "idle", Duration::from_secs(20));
    assert!(first["PulledRecords"].as_u64().unwrap() >= 1, "{first}");
    assert_eq!(face_ids(&b), face_ids(&a));

    // A face A pushes reaches B through the live channel.
    std::thread::sleep(Duration::from_millis(300));
    index(&a, &root, "biden", "biden.jpg");
    ok_json(likeness(&a, &["sync", "now"]));
    let pushed = Instant::now();
    let got = next_status(&lines, "idle", Duration::from_secs(10));
    eprintln!("a face pushed by A was merged on B {:?} later", pushed.elapsed());
    assert!(got["PulledRecords"].as_u64().unwrap() >= 1, "{got}");
    assert_eq!(face_ids(&b), face_ids(&a));
    assert_eq!(face_ids(&b).len(), 2);

    // A local write on B goes up by itself.
    let biden = face_ids(&b).into_iter().find(|(_, e)| e == "biden").unwrap().0;
    ok_json(likeness(&b, &["delete-faces", "--collection-id", "staff", "--face-ids", &biden]));
    let up = next_status(&lines, "idle", Duration::from_secs(10));
    assert!(up["PushedRecords"].as_u64().unwrap() >= 1, "{up}");
    ok_json(likeness(&a, &["sync", "now"]));
    assert!(face_ids(&a).iter().all(|(_, e)| e == "obama"), "the delete reached A");

    // A revokes B: B's watch reports the refusal and exits 1.
    let devices = ok_json(likeness(&a, &["sync", "devices"]));
    let list = devices["Devices"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let door = list.iter().find(|d| d["this_device"] == false).unwrap()["device_id"].as_str().unwrap().to_string();
    ok_json(likeness(&a, &["sync", "revoke", &door]));
    let refused = next_status(&lines, "error", Duration::from_secs(10));
    assert_eq!(refused["Code"], "SyncServerException", "{refused}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "sync watch kept running after its device was revoked");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3), "a server refusal exits 3");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("Unauthorized"), "{err}");
}

#[test]
fn a_store_syncs_only_the_collections_it_names() {
    let Some(root) = faces() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let url = server(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for id in ["staff", "private"] {
        ok_json(likeness(&a, &["create-collection", "--collection-id", id]));
    }
    index(&a, &root, "obama", "obama.jpg");
    ok_json(likeness(&a, &["sync", "create", "--server", &url]));
    let set = ok_json(likeness(&a, &["sync", "collections", "--only", "staff"]));
    assert_eq!(set["Only"], serde_json::json!(["staff"]));
    assert!(!likeness(&a, &["sync", "collections", "--only", "not a valid id"]).status.success());
    ok_json(likeness(&a, &["sync", "now"]));
    let code = ok_json(likeness(&a, &["sync", "invite"]))["JoinCode"].as_str().unwrap().to_string();
    ok_json(likeness(&b, &["sync", "join", &code]));
    ok_json(likeness(&b, &["sync", "now"]));
    let listed = |s: &Path| ok_json(likeness(s, &["list-collections"]))["CollectionIds"].clone();
    assert_eq!(listed(&b), serde_json::json!(["staff"]), "the private collection stayed on A");
    assert_eq!(face_ids(&b), face_ids(&a));
    // Syncing everything again publishes it.
    ok_json(likeness(&a, &["sync", "collections", "--all"]));
    ok_json(likeness(&a, &["sync", "now"]));
    ok_json(likeness(&b, &["sync", "now"]));
    assert_eq!(listed(&b), serde_json::json!(["private", "staff"]));
}

/// `likeness` with `LIKENESS_SYNC_PASSPHRASE` set to `passphrase` (or unset).
fn with_passphrase(store: &Path, passphrase: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"));
    c.arg("--store").arg(store).args(args).env_remove("LIKENESS_SYNC_PASSPHRASE");
    if let Some(p) = passphrase {
        c.env("LIKENESS_SYNC_PASSPHRASE", p);
    }
    c.output().expect("likeness runs")
}

fn failure_name(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).split(':').next().unwrap_or_default().trim().to_string()
}

#[test]
fn a_protected_key_is_stored_only_wrapped_and_a_store_can_leave() {
    let tmp = tempfile::tempdir().unwrap();
    let url = server(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok_json(likeness(&a, &["create-collection", "--collection-id", "vault"]));
    ok_json(likeness(&a, &["create-user", "--collection-id", "vault", "--user-id", "ada"]));
    let out = with_passphrase(&a, Some(""), &["sync", "create", "--server", &url, "--protect"]);
    assert_eq!(failure_name(&out), "InvalidParameterException");
    let created =
        ok_json(with_passphrase(&a, Some("correct horse"), &["sync", "create", "--server", &url, "--protect"]));
    assert_eq!(created["Protected"], true);
    let phrase = created["RecoveryPhrase"].as_str().unwrap().to_string();
    let stored = std::fs::read_to_string(a.join("sync.json")).unwrap();
    assert!(!stored.contains(&phrase) && !stored.contains(&phrase.replace('-', "")), "the phrase is not at rest");
    assert!(stored.contains("wrapped_key"));

    // Without the passphrase (no terminal either) the key stays locked; a wrong one is refused.
    assert_eq!(failure_name(&with_passphrase(&a, None, &["sync", "now"])), "SyncLockedException");
    assert_eq!(failure_name(&with_passphrase(&a, Some("Correct horse"), &["sync", "now"])), "WrongPassphraseException");
    assert_eq!(failure_name(&with_passphrase(&a, Some("wrong"), &["sync", "invite"])), "WrongPassphraseException");
    let pushed = ok_json(with_passphrase(&a, Some("correct horse"), &["sync", "now"]));
    assert_eq!(pushed["PushedRecords"], 1, "{pushed}");

    // Another store joins with a passphrase of its own and gets the collection.
    let invite = ok_json(with_passphrase(&a, Some("correct horse"), &["sync", "invite"]));
    let code = invite["JoinCode"].as_str().unwrap();
    ok_json(with_passphrase(&b, Some("battery staple"), &["sync", "join", code, "--protect"]));
    ok_json(with_passphrase(&b, Some("battery staple"), &["sync", "now"]));
    let users = ok_json(likeness(&b, &["list-users", "--collection-id", "vault"]));
    assert_eq!(users["Users"][0]["UserId"], "ada");

    // Change the passphrase, then drop it.
    let mut change = std::process::Command::new(env!("CARGO_BIN_EXE_likeness"));
    change.arg("--store").arg(&a).args(["sync", "protect"]);
    change.env("LIKENESS_SYNC_PASSPHRASE", "correct horse").env("LIKENESS_SYNC_NEW_PASSPHRASE", "new words");
    ok_json(change.output().unwrap());
    assert_eq!(failure_name(&with_passphrase(&a, Some("correct horse"), &["sync", "now"])), "WrongPassphraseException");
    ok_json(with_passphrase(&a, Some("new words"), &["sync", "unprotect"]));
    let status = ok_json(with_passphrase(&a, None, &["sync", "status"]));
    assert_eq!(status["Protected"], false);
    ok_json(with_passphrase(&a, None, &["sync", "now"]));
    assert!(std::fs::read_to_string(a.join("sync.json")).unwrap().contains(&phrase));

    // b leaves: its device is revoked, it forgets the group, it keeps its collections.
    let left = ok_json(likeness(&b, &["sync", "leave"]));
    assert_eq!(left["DeviceRevoked"], true, "{left}");
    assert!(!b.join("sync.json").exists());
    assert_eq!(failure_name(&likeness(&b, &["sync", "now"])), "ResourceNotFoundException");
    assert_eq!(ok_json(likeness(&b, &["list-users", "--collection-id", "vault"]))["Users"][0]["UserId"], "ada");
    let devices = ok_json(likeness(&a, &["sync", "devices"]));
    let revoked = devices["Devices"].as_array().unwrap().iter().filter(|d| !d["revoked_at"].is_null()).count();
    assert_eq!(revoked, 1, "{devices}");
    // It can join again later.
    let invite = ok_json(likeness(&a, &["sync", "invite"]));
    ok_json(likeness(&b, &["sync", "join", invite["JoinCode"].as_str().unwrap()]));
}
