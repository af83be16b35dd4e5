//! The IndexedDB store and the bindings in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test --release --target wasm32-unknown-unknown -p likeness-wasm`.
#![cfg(target_arch = "wasm32")]

use js_sys::{Reflect, Uint8Array};
use likeness_collections::{CollectionInput, Collections, ListUsersInput, ManualClock, Store, UserInput, VectorSpace};
use likeness_vision::{FaceEngine, ModelBytes};
use likeness_wasm::{Engine, IdbStore};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A database name no earlier run used (the runner's profile may persist between tests).
fn fresh(name: &str) -> String {
    format!("{name}-{}", js_sys::Math::random().to_bits())
}

#[wasm_bindgen_test]
async fn stored_bytes_come_back_identical() {
    let name = fresh("roundtrip");
    let mut store = IdbStore::open(&name).await.unwrap();
    assert!(store.load().await.unwrap().is_empty());
    let d: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10 + i as usize]).collect();
    for x in &d {
        store.append("a", x).await.unwrap();
    }
    store.append("b", &[9; 5]).await.unwrap();
    store.replace("b", &[42; 1000]).await.unwrap();
    store.append("b", &[7; 3]).await.unwrap();
    // Ids are prefixes of each other: the key ranges must keep them apart.
    store.append("a.", &[1]).await.unwrap();

    let mut reopened = IdbStore::open(&name).await.unwrap();
    let loaded = reopened.load().await.unwrap();
    let ids: Vec<&str> = loaded.iter().map(|c| c.collection_id.as_str()).collect();
    assert_eq!(ids, ["a", "a.", "b"]);
    let mut a = loaded[0].deltas.clone();
    a.sort();
    assert_eq!(a, d);
    assert_eq!(loaded[0].snapshot, None);
    assert_eq!(loaded[2].snapshot.as_deref(), Some(&[42u8; 1000][..]));
    assert_eq!(loaded[2].deltas, vec![vec![7u8; 3]]);

    reopened.remove("a").await.unwrap();
    let loaded = store.load().await.unwrap();
    let ids: Vec<&str> = loaded.iter().map(|c| c.collection_id.as_str()).collect();
    assert_eq!(ids, ["a.", "b"]);
}

#[wasm_bindgen_test]
async fn a_second_connection_sees_writes_through_the_token() {
    let name = fresh("tokens");
    let mut one = IdbStore::open(&name).await.unwrap();
    let mut two = IdbStore::open(&name).await.unwrap();
    one.load().await.unwrap();
    two.load().await.unwrap();
    assert!(!one.changed_elsewhere().await.unwrap());
    two.append("c", &[1, 2, 3]).await.unwrap();
    assert!(one.changed_elsewhere().await.unwrap());
    assert!(!two.changed_elsewhere().await.unwrap());
    one.load().await.unwrap();
    assert!(!one.changed_elsewhere().await.unwrap());
    one.replace("c", &[4]).await.unwrap();
    assert!(two.changed_elsewhere().await.unwrap());
}

#[wasm_bindgen_test]
async fn replica_id_is_stable_per_database() {
    let name = fresh("replica");
    let a = IdbStore::open(&name).await.unwrap().replica_id().await.unwrap();
    let b = IdbStore::open(&name).await.unwrap().replica_id().await.unwrap();
    let other = IdbStore::open(&fresh("replica")).await.unwrap().replica_id().await.unwrap();
    assert_eq!(a, b);
    assert_ne!(a, other);
}

/// A plain IndexedDB connection at `version` with no object stores and no versionchange
/// handler, as a foreign page or an old tab would hold.
async fn raw_open(name: &str, version: u32) -> web_sys::IdbDatabase {
    let factory: web_sys::IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into()).unwrap().unchecked_into();
    let req = factory.open_with_u32(name, version).unwrap();
    let opened = js_sys::Promise::new(&mut |resolve, _| req.set_onsuccess(Some(&resolve)));
    JsFuture::from(opened).await.unwrap();
    req.result().unwrap().unchecked_into()
}

#[wasm_bindgen_test]
async fn a_blocked_upgrade_is_an_error_not_a_hang() {
    let name = fresh("blocked");
    let holder = raw_open(&name, 1).await;
    let err = IdbStore::open_at(&name, 2).await.err().expect("the upgrade must not succeed while blocked");
    assert_eq!(err.exception_name(), "StorageException");
    assert!(err.message().contains("BlockedError"), "{err}");
    holder.close();
}

#[wasm_bindgen_test]
async fn a_foreign_database_is_refused() {
    let name = fresh("foreign");
    raw_open(&name, 1).await.close();
    let err = IdbStore::open(&name).await.err().expect("a database without our object stores");
    assert!(err.message().contains("not a Likeness database"), "{err}");
}

fn space() -> VectorSpace {
    VectorSpace {
        face_model_version: likeness_vision::FACE_MODEL_VERSION.into(),
        dimension: likeness_vision::embedder::EMBEDDING_DIMENSION,
        calibration: likeness_vision::Calibration::default(),
    }
}

#[wasm_bindgen_test]
async fn collections_reopen_from_indexeddb_and_reload_other_writers() {
    let name = fresh("collections");
    let open = |n: String| async move {
        let mut store = IdbStore::open(&n).await.unwrap();
        let replica = store.replica_id().await.unwrap();
        Collections::open(store, Box::new(ManualClock::new(1_000)), replica, space()).await.unwrap()
    };
    let mut a = open(name.clone()).await;
    a.create_collection(&CollectionInput { collection_id: "staff".into() }).await.unwrap();
    a.create_user(&UserInput { collection_id: "staff".into(), user_id: "ana".into(), client_request_token: None })
        .await
        .unwrap();
    let snapshot = a.snapshot("staff").unwrap();

    let mut b = open(name.clone()).await;
    assert_eq!(b.snapshot("staff").unwrap(), snapshot);
    b.create_user(&UserInput { collection_id: "staff".into(), user_id: "ben".into(), client_request_token: None })
        .await
        .unwrap();
    assert!(a.store().changed_elsewhere().await.unwrap());
    a.reload().await.unwrap();
    let users: Vec<String> = a
        .list_users(&ListUsersInput { collection_id: "staff".into(), max_results: None, next_token: None })
        .unwrap()
        .users
        .into_iter()
        .map(|u| u.user_id)
        .collect();
    assert_eq!(users, ["ana", "ben"]);
    assert_eq!(a.snapshot("staff").unwrap(), b.snapshot("staff").unwrap());
}

fn error_name(e: &JsValue) -> String {
    Reflect::get(e, &"name".into()).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
async fn bindings_run_the_real_models_and_name_their_errors() {
    let m = ModelBytes::embedded();
    let engine = Engine::open(
        Uint8Array::from(m.detector_short),
        Uint8Array::from(m.detector_full),
        Uint8Array::from(m.embedder),
        Some(fresh("bindings")),
        None,
    )
    .await
    .unwrap();
    assert_eq!(engine.face_model_version(), likeness_vision::FACE_MODEL_VERSION);
    // Loaded from ONNX: the prepared embedder is offered once.
    assert!(engine.take_prepared_embedder().is_some_and(|p| p.length() > 1_000_000));
    assert!(engine.take_prepared_embedder().is_none());
    assert_eq!(
        FaceEngine::load(m).unwrap().face_model_version(),
        engine.face_model_version(),
        "the same models natively and through the bindings"
    );

    // A flat grey RGBA image: decodes, holds no face.
    let rgba = js_sys::Object::new();
    Reflect::set(&rgba, &"width".into(), &200.into()).unwrap();
    Reflect::set(&rgba, &"height".into(), &160.into()).unwrap();
    Reflect::set(&rgba, &"data".into(), &js_sys::Uint8ClampedArray::from(&vec![128u8; 200 * 160 * 4][..])).unwrap();
    let out = engine.detect_faces(rgba.into()).unwrap();
    let faces: js_sys::Array = Reflect::get(&out, &"FaceDetails".into()).unwrap().unchecked_into();
    assert_eq!(faces.length(), 0);

    let garbage = Uint8Array::from(&[0x42u8; 64][..]);
    let err = engine.detect_faces(garbage.into()).unwrap_err();
    assert_eq!(error_name(&err), "InvalidImageFormatException");
    assert!(err.is_instance_of::<js_sys::Error>());

    let req = js_sys::Object::new();
    Reflect::set(&req, &"CollectionId".into(), &"has space".into()).unwrap();
    let err = JsFuture::from(engine.create_collection(req.into())).await.unwrap_err();
    assert_eq!(error_name(&err), "InvalidParameterException");

    let req = js_sys::Object::new();
    Reflect::set(&req, &"CollectionId".into(), &"missing".into()).unwrap();
    let err = JsFuture::from(engine.describe_collection(req.into())).await.unwrap_err();
    assert_eq!(error_name(&err), "ResourceNotFoundException");

    let req = js_sys::Object::new();
    Reflect::set(&req, &"CollectionId".into(), &"ok".into()).unwrap();
    Reflect::set(&req, &"Typo".into(), &1.into()).unwrap();
    let err = JsFuture::from(engine.create_collection(req.into())).await.unwrap_err();
    assert_eq!(error_name(&err), "InvalidParameterException");
}
