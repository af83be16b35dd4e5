//! [`IdbStore`]: the collections [`Store`] on IndexedDB.
//!
//! Layout (database `likeness` unless the caller names another, schema version 1):
//!
//! | object store | key                                | value                                  |
//! |--------------|------------------------------------|----------------------------------------|
//! | `snapshots`  | CollectionId                       | snapshot bytes (`Uint8Array`, LKNS)    |
//! | `deltas`     | `[CollectionId, millis, random]`   | delta bytes (`Uint8Array`, LKNS)       |
//! | `meta`       | `"replica"` / `"lastWrite"`        | this device's replica id / write token |
//!
//! Every [`Store`] call is one IndexedDB transaction whose requests are all issued before
//! the first await, so a tab closed mid-call leaves all of it or none of it. Deltas are CRDT
//! change sets that commute, so their keys only need to be unique, not ordered; no write
//! reads first. Each write also stores a fresh `lastWrite` token: comparing it with the
//! token of this connection's last write or load tells whether another tab wrote since
//! ([`IdbStore::changed_elsewhere`]).

use js_sys::{Array, Promise, Uint8Array};
use likeness_collections::{CollectionError, PersistedCollection, Result, Store};
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbDatabase, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode,
};

/// The schema this code writes. Bump with an upgrade step when the layout changes.
pub const SCHEMA_VERSION: u32 = 1;
const SNAPSHOTS: &str = "snapshots";
const DELTAS: &str = "deltas";
const META: &str = "meta";
const REPLICA_KEY: &str = "replica";
const LAST_WRITE_KEY: &str = "lastWrite";

/// Collections persisted in one IndexedDB database.
pub struct IdbStore {
    db: IdbDatabase,
    /// The `lastWrite` token as this connection last saw it (its own write or a load).
    seen_token: Option<String>,
}

/// A JS exception (DOMException, TypeError, ...) as a storage error that keeps its name:
/// `QuotaExceededError`, `VersionError`, `InvalidStateError` reach the caller as written.
pub(crate) fn storage_error(context: &str, e: JsValue) -> CollectionError {
    let name = js_sys::Reflect::get(&e, &"name".into()).ok().and_then(|v| v.as_string());
    let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|v| v.as_string());
    let detail = match (name, message) {
        (Some(n), Some(m)) if !m.is_empty() => format!("{n}: {m}"),
        (Some(n), _) => n,
        (None, Some(m)) => m,
        (None, None) => e.as_string().unwrap_or_else(|| "unknown error".into()),
    };
    CollectionError::Storage(format!("IndexedDB {context} failed: {detail}"))
}

fn idb_factory() -> Result<web_sys::IdbFactory> {
    let global = js_sys::global();
    let factory = js_sys::Reflect::get(&global, &"indexedDB".into())
        .map_err(|e| storage_error("lookup", e))?
        .dyn_into::<web_sys::IdbFactory>()
        .map_err(|_| CollectionError::Storage("IndexedDB is not available in this context".into()))?;
    Ok(factory)
}

/// A promise settled by whichever of two event handlers fires first. Both handlers are
/// owned here and detached and freed when this is dropped: `Closure::once_into_js` for each
/// would leak the one that never fires, on every call.
struct Settled<T: JsCast + Clone + 'static> {
    target: T,
    detach: fn(&T),
    _handlers: [Closure<dyn FnMut()>; 2],
    promise: Promise,
}

impl<T: JsCast + Clone + 'static> Settled<T> {
    /// `outcome(first)` is called when the first handler fires (`true`: the success one) and
    /// gives the value to resolve with, or to reject with.
    fn new(
        target: &T,
        attach: fn(&T, &js_sys::Function, &js_sys::Function),
        detach: fn(&T),
        outcome: impl Fn(&T, bool) -> std::result::Result<JsValue, JsValue> + 'static,
    ) -> Self {
        type Slot = std::rc::Rc<std::cell::RefCell<Option<(js_sys::Function, js_sys::Function)>>>;
        let slot: Slot = Default::default();
        let promise = Promise::new(&mut |resolve, reject| {
            *slot.borrow_mut() = Some((resolve, reject));
        });
        let outcome = std::rc::Rc::new(outcome);
        let handler = |success: bool| {
            let (slot, outcome, target) = (slot.clone(), outcome.clone(), target.clone());
            Closure::<dyn FnMut()>::new(move || {
                if let Some((resolve, reject)) = slot.borrow_mut().take() {
                    let _ = match outcome(&target, success) {
                        Ok(v) => resolve.call1(&JsValue::NULL, &v),
                        Err(e) => reject.call1(&JsValue::NULL, &e),
                    };
                }
            })
        };
        let handlers = [handler(true), handler(false)];
        attach(target, handlers[0].as_ref().unchecked_ref(), handlers[1].as_ref().unchecked_ref());
        Settled { target: target.clone(), detach, _handlers: handlers, promise }
    }

    async fn wait(self) -> std::result::Result<JsValue, JsValue> {
        JsFuture::from(self.promise.clone()).await
    }
}

impl<T: JsCast + Clone + 'static> Drop for Settled<T> {
    fn drop(&mut self) {
        (self.detach)(&self.target);
    }
}

/// Resolves with the request's result once it succeeds; rejects with its error.
async fn request_done(req: &IdbRequest) -> std::result::Result<JsValue, JsValue> {
    Settled::new(
        req,
        |r, ok, err| {
            r.set_onsuccess(Some(ok));
            r.set_onerror(Some(err));
        },
        |r| {
            r.set_onsuccess(None);
            r.set_onerror(None);
        },
        |r, success| {
            if success {
                Ok(r.result().unwrap_or(JsValue::UNDEFINED))
            } else {
                Err(r.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::UNDEFINED))
            }
        },
    )
    .wait()
    .await
}

/// Resolves when the transaction commits; rejects with its error when it aborts (a failed
/// request, QuotaExceededError at commit, or the tab going away).
async fn transaction_done(tx: &IdbTransaction) -> std::result::Result<(), JsValue> {
    // A failed request bubbles `error` to the transaction, which then aborts (nothing here
    // prevents that default), so the abort handler reports every failure.
    Settled::new(
        tx,
        |t, ok, err| {
            t.set_oncomplete(Some(ok));
            t.set_onabort(Some(err));
        },
        |t| {
            t.set_oncomplete(None);
            t.set_onabort(None);
        },
        |t, success| {
            if success {
                Ok(JsValue::UNDEFINED)
            } else {
                Err(t.error().map(JsValue::from).unwrap_or_else(|| JsValue::from_str("AbortError")))
            }
        },
    )
    .wait()
    .await
    .map(|_| ())
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // getrandom on wasm32 uses crypto.getRandomValues; it cannot fail in a browser.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh replica id (64 random bits, so two devices never pick the same one).
pub(crate) fn random_replica_id() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

fn delta_key(collection_id: &str) -> Array {
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    Array::of3(&collection_id.into(), &js_sys::Date::now().into(), &f64::from(u32::from_le_bytes(r)).into())
}

/// Every `deltas` key of one collection: `[id]` sorts before `[id, ...]`, and an array
/// sorts after every number, so `[id, []]` bounds them above.
fn deltas_of(collection_id: &str) -> Result<IdbKeyRange> {
    let lower = Array::of1(&collection_id.into());
    let upper = Array::of2(&collection_id.into(), &Array::new());
    IdbKeyRange::bound(&lower, &upper).map_err(|e| storage_error("key range", e))
}

impl IdbStore {
    /// Open (creating on first use) the database `name` at [`SCHEMA_VERSION`].
    pub async fn open(name: &str) -> Result<Self> {
        Self::open_at(name, SCHEMA_VERSION).await
    }

    /// Open at an explicit schema version (tests use this to provoke a blocked upgrade).
    #[doc(hidden)]
    pub async fn open_at(name: &str, version: u32) -> Result<Self> {
        let req: IdbOpenDbRequest =
            idb_factory()?.open_with_u32(name, version).map_err(|e| storage_error("open", e))?;
        let on_upgrade =
            Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(move |ev: web_sys::IdbVersionChangeEvent| {
                let Some(target) = ev.target() else { return };
                let Ok(req) = target.dyn_into::<IdbOpenDbRequest>() else { return };
                let Ok(result) = req.result() else { return };
                let db: IdbDatabase = result.unchecked_into();
                let names = db.object_store_names();
                for store in [SNAPSHOTS, DELTAS, META] {
                    if !names.contains(store) {
                        // Failure here aborts the upgrade, which rejects the open below.
                        let _ = db.create_object_store(store);
                    }
                }
            });
        req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        // Another tab holding an older version open blocks the upgrade: fail fast with a
        // typed error instead of hanging until that tab closes.
        let open_result = {
            let req_for_blocked = req.clone();
            let blocked = Promise::new(&mut |_resolve, reject| {
                let on_blocked = Closure::once_into_js(move || {
                    let _ = reject.call1(
                        &JsValue::NULL,
                        &JsValue::from_str(
                            "BlockedError: another tab holds this database open at an older version; close it and retry",
                        ),
                    );
                });
                req_for_blocked.set_onblocked(Some(on_blocked.unchecked_ref()));
            });
            let opened = request_promise(req.clone().unchecked_into());
            JsFuture::from(Promise::race(&Array::of2(&opened, &blocked))).await
        };
        req.set_onupgradeneeded(None);
        drop(on_upgrade);
        let db: IdbDatabase = open_result
            .map_err(|e| match e.as_string() {
                Some(m) => CollectionError::Storage(format!("IndexedDB open failed: {m}")),
                None => storage_error("open", e),
            })?
            .unchecked_into();
        // Let a newer version of the page upgrade the schema: close rather than block it.
        let closing = db.clone();
        let on_version_change = Closure::once_into_js(move || closing.close());
        db.set_onversionchange(Some(on_version_change.unchecked_ref()));
        let names = db.object_store_names();
        if ![SNAPSHOTS, DELTAS, META].iter().all(|s| names.contains(s)) {
            return Err(CollectionError::Storage(format!(
                "IndexedDB database {name:?} exists but is not a Likeness database (missing object stores)"
            )));
        }
        Ok(IdbStore { db, seen_token: None })
    }

    fn transaction(&self, stores: &[&str], mode: IdbTransactionMode) -> Result<IdbTransaction> {
        let names = Array::new();
        for s in stores {
            names.push(&(*s).into());
        }
        self.db.transaction_with_str_sequence_and_mode(&names, mode).map_err(|e| storage_error("transaction", e))
    }

    fn object_store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore> {
        tx.object_store(name).map_err(|e| storage_error("object store", e))
    }

    /// This device's replica id, created and stored on first use. Every tab of the origin
    /// shares it; the JS layer serialises tabs with a Web Lock so their stamps never collide.
    pub async fn replica_id(&mut self) -> Result<u64> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readwrite)?;
        let meta = Self::object_store(&tx, META)?;
        let existing = request_done(&meta.get(&REPLICA_KEY.into()).map_err(|e| storage_error("get", e))?)
            .await
            .map_err(|e| storage_error("read replica id", e))?;
        let id = match existing.as_string().and_then(|s| u64::from_str_radix(&s, 16).ok()) {
            Some(id) => id,
            None => {
                let id = random_replica_id();
                meta.put_with_key(&format!("{id:016x}").into(), &REPLICA_KEY.into())
                    .map_err(|e| storage_error("put", e))?;
                id
            }
        };
        transaction_done(&tx).await.map_err(|e| storage_error("store replica id", e))?;
        Ok(id)
    }

    async fn stored_token(&self) -> Result<Option<String>> {
        let tx = self.transaction(&[META], IdbTransactionMode::Readonly)?;
        let meta = Self::object_store(&tx, META)?;
        let v = request_done(&meta.get(&LAST_WRITE_KEY.into()).map_err(|e| storage_error("get", e))?)
            .await
            .map_err(|e| storage_error("read write token", e))?;
        Ok(v.as_string())
    }

    /// Whether anyone else wrote to the database since this connection's last write or load.
    pub async fn changed_elsewhere(&self) -> Result<bool> {
        Ok(self.stored_token().await? != self.seen_token)
    }

    /// Run `write` on the named stores plus `meta` in one transaction that also stores a new
    /// write token, and wait for it to commit.
    async fn write(
        &mut self,
        context: &str,
        stores: &[&str],
        write: impl FnOnce(&IdbTransaction) -> Result<()>,
    ) -> Result<()> {
        let mut all = stores.to_vec();
        all.push(META);
        let tx = self.transaction(&all, IdbTransactionMode::Readwrite)?;
        if let Err(e) = write(&tx) {
            let _ = tx.abort();
            return Err(e);
        }
        let token = random_token();
        Self::object_store(&tx, META)?
            .put_with_key(&token.as_str().into(), &LAST_WRITE_KEY.into())
            .map_err(|e| storage_error("put", e))?;
        transaction_done(&tx).await.map_err(|e| storage_error(context, e))?;
        self.seen_token = Some(token);
        Ok(())
    }
}

/// A promise over one request (for racing against `blocked`).
fn request_promise(req: IdbRequest) -> Promise {
    wasm_bindgen_futures::future_to_promise(async move { request_done(&req).await })
}

fn bytes_of(v: &JsValue) -> Result<Vec<u8>> {
    v.dyn_ref::<Uint8Array>()
        .map(|a| a.to_vec())
        .ok_or_else(|| CollectionError::InvalidSnapshot("IndexedDB holds a value that is not bytes".into()))
}

impl Store for IdbStore {
    async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
        let tx = self.transaction(&[SNAPSHOTS, DELTAS, META], IdbTransactionMode::Readonly)?;
        let snaps = Self::object_store(&tx, SNAPSHOTS)?;
        let deltas = Self::object_store(&tx, DELTAS)?;
        let meta = Self::object_store(&tx, META)?;
        // All four requests are in flight before the first await: one consistent read.
        let req_snap_keys = snaps.get_all_keys().map_err(|e| storage_error("getAllKeys", e))?;
        let req_snaps = snaps.get_all().map_err(|e| storage_error("getAll", e))?;
        let req_delta_keys = deltas.get_all_keys().map_err(|e| storage_error("getAllKeys", e))?;
        let req_deltas = deltas.get_all().map_err(|e| storage_error("getAll", e))?;
        let req_token = meta.get(&LAST_WRITE_KEY.into()).map_err(|e| storage_error("get", e))?;
        let load = |e| storage_error("load", e);
        let snap_keys: Array = request_done(&req_snap_keys).await.map_err(load)?.unchecked_into();
        let snap_values: Array = request_done(&req_snaps).await.map_err(load)?.unchecked_into();
        let delta_keys: Array = request_done(&req_delta_keys).await.map_err(load)?.unchecked_into();
        let delta_values: Array = request_done(&req_deltas).await.map_err(load)?.unchecked_into();
        let token = request_done(&req_token).await.map_err(load)?.as_string();

        let mut out: BTreeMap<String, PersistedCollection> = BTreeMap::new();
        fn entry(out: &mut BTreeMap<String, PersistedCollection>, id: String) -> &mut PersistedCollection {
            out.entry(id.clone())
                .or_insert_with(move || PersistedCollection { collection_id: id, ..Default::default() })
        }
        for (k, v) in snap_keys.iter().zip(snap_values.iter()) {
            let id = k.as_string().ok_or_else(|| CollectionError::InvalidSnapshot("bad snapshot key".into()))?;
            entry(&mut out, id).snapshot = Some(bytes_of(&v)?);
        }
        for (k, v) in delta_keys.iter().zip(delta_values.iter()) {
            let id = Array::from(&k)
                .get(0)
                .as_string()
                .ok_or_else(|| CollectionError::InvalidSnapshot("bad delta key".into()))?;
            entry(&mut out, id).deltas.push(bytes_of(&v)?);
        }
        self.seen_token = token;
        Ok(out.into_values().collect())
    }

    async fn append(&mut self, collection_id: &str, delta: &[u8]) -> Result<()> {
        let value = Uint8Array::from(delta);
        let key = delta_key(collection_id);
        self.write("append", &[DELTAS], |tx| {
            Self::object_store(tx, DELTAS)?.put_with_key(&value, &key).map_err(|e| storage_error("put", e))?;
            Ok(())
        })
        .await
    }

    async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> Result<()> {
        let value = Uint8Array::from(snapshot);
        let range = deltas_of(collection_id)?;
        self.write("replace", &[SNAPSHOTS, DELTAS], |tx| {
            Self::object_store(tx, DELTAS)?.delete(&range).map_err(|e| storage_error("delete", e))?;
            Self::object_store(tx, SNAPSHOTS)?
                .put_with_key(&value, &collection_id.into())
                .map_err(|e| storage_error("put", e))?;
            Ok(())
        })
        .await
    }

    async fn remove(&mut self, collection_id: &str) -> Result<()> {
        let range = deltas_of(collection_id)?;
        self.write("remove", &[SNAPSHOTS, DELTAS], |tx| {
            Self::object_store(tx, DELTAS)?.delete(&range).map_err(|e| storage_error("delete", e))?;
            Self::object_store(tx, SNAPSHOTS)?.delete(&collection_id.into()).map_err(|e| storage_error("delete", e))?;
            Ok(())
        })
        .await
    }
}
