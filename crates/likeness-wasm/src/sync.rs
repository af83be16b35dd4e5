//! Sync in the browser: the client state machine shared with the CLI
//! (`likeness_sync::client`), run over a [`SyncHost`] the JS layer supplies — `fetch` to the
//! sync server, and IndexedDB for the sync state (which must be durable before each push, so
//! `saveState` resolves only once the write committed).

use crate::interop::error;
use crate::Engine;
use js_sys::{Promise, Reflect, Uint8Array};
use likeness_sync::client::{sync_group, GroupSync, Pulled, Transport};
use likeness_sync::protocol::decode_pull;
use likeness_sync::{GroupKey, SyncError};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// The JS side of a sync: HTTP to the server and durable state. Each method resolves as
    /// documented or rejects with `{name, code?, message}` (`SyncOfflineException` when the
    /// server could not be reached, `SyncServerException` with the server's code otherwise).
    pub type SyncHost;

    #[wasm_bindgen(method, catch, js_name = putCollection)]
    async fn put_collection(this: &SyncHost, tag: &str, key_check: Uint8Array) -> Result<JsValue, JsValue>;
    /// Resolves with the sequences the server gave the records (an array of numbers).
    #[wasm_bindgen(method, catch)]
    async fn push(this: &SyncHost, tag: &str, body: Uint8Array) -> Result<JsValue, JsValue>;
    /// Resolves with `{snapshotRequired: true}` or `{body: Uint8Array, more: boolean}`.
    #[wasm_bindgen(method, catch)]
    async fn pull(this: &SyncHost, tag: &str, after: f64) -> Result<JsValue, JsValue>;
    /// Resolves with `null` or `{covers: number, record: Uint8Array}`.
    #[wasm_bindgen(method, catch, js_name = getSnapshot)]
    async fn get_snapshot(this: &SyncHost, tag: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch, js_name = putSnapshot)]
    async fn put_snapshot(this: &SyncHost, tag: &str, covers: f64, record: Uint8Array) -> Result<JsValue, JsValue>;
    /// Persist the state (a JSON string); resolves once it is durable.
    #[wasm_bindgen(method, catch, js_name = saveState)]
    async fn save_state(this: &SyncHost, state: String) -> Result<JsValue, JsValue>;
}

fn field(v: &JsValue, name: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A rejection from the host, as the typed error the state machine expects.
fn host_error(e: JsValue) -> SyncError {
    let name = field(&e, "name").as_string().unwrap_or_default();
    let message = field(&e, "message").as_string().unwrap_or_else(|| format!("{e:?}"));
    let code = field(&e, "code").as_string().unwrap_or_default();
    match (name.as_str(), code.as_str()) {
        ("SyncOfflineException", _) => SyncError::Offline(message),
        (_, "WrongKey") => SyncError::WrongKey { expected: "this device's key".into(), found: "the server's".into() },
        (_, "") => SyncError::Server { code: name, message },
        _ => SyncError::Server { code, message },
    }
}

/// A value the host returned that is not what the protocol says.
fn bad_answer(what: &str) -> SyncError {
    SyncError::InvalidRecord(format!("the sync host returned a malformed {what}"))
}

fn bytes_of(v: &JsValue, what: &str) -> Result<Vec<u8>, SyncError> {
    v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec).ok_or_else(|| bad_answer(what))
}

impl Transport for SyncHost {
    async fn put_collection(&self, tag: &str, key_check: Vec<u8>) -> Result<(), SyncError> {
        SyncHost::put_collection(self, tag, Uint8Array::from(key_check.as_slice())).await.map_err(host_error)?;
        Ok(())
    }

    async fn push(&self, tag: &str, body: Vec<u8>) -> Result<Vec<u64>, SyncError> {
        let out = SyncHost::push(self, tag, Uint8Array::from(body.as_slice())).await.map_err(host_error)?;
        let list = out.dyn_into::<js_sys::Array>().map_err(|_| bad_answer("push answer"))?;
        list.iter()
            .map(|v| v.as_f64().filter(|s| *s >= 0.0).map(|s| s as u64).ok_or_else(|| bad_answer("sequence")))
            .collect()
    }

    async fn pull(&self, tag: &str, after: u64) -> Result<Pulled, SyncError> {
        let out = SyncHost::pull(self, tag, after as f64).await.map_err(host_error)?;
        if field(&out, "snapshotRequired").is_truthy() {
            return Ok(Pulled::SnapshotRequired);
        }
        let body = bytes_of(&field(&out, "body"), "pull body")?;
        Ok(Pulled::Records { records: decode_pull(&body)?, more: field(&out, "more").is_truthy() })
    }

    async fn get_snapshot(&self, tag: &str) -> Result<Option<(u64, Vec<u8>)>, SyncError> {
        let out = SyncHost::get_snapshot(self, tag).await.map_err(host_error)?;
        if out.is_null() || out.is_undefined() {
            return Ok(None);
        }
        let covers = field(&out, "covers").as_f64().filter(|c| *c >= 0.0).ok_or_else(|| bad_answer("snapshot"))?;
        Ok(Some((covers as u64, bytes_of(&field(&out, "record"), "snapshot")?)))
    }

    async fn put_snapshot(&self, tag: &str, covers: u64, record: Vec<u8>) -> Result<(), SyncError> {
        SyncHost::put_snapshot(self, tag, covers as f64, Uint8Array::from(record.as_slice()))
            .await
            .map_err(host_error)?;
        Ok(())
    }
}

/// The JS error for a sync failure; a server refusal carries the server's `code`.
fn sync_error(e: SyncError) -> JsValue {
    let err = error(e.exception_name(), &e.to_string());
    if let SyncError::Server { code, .. } = &e {
        let _ = Reflect::set(&err, &"code".into(), &code.as_str().into());
    }
    err
}

/// A new random group key: `{recoveryPhrase, keyId}`. Show the phrase once.
#[wasm_bindgen(js_name = syncNewGroupKey)]
pub fn sync_new_group_key() -> Result<JsValue, JsValue> {
    let key = GroupKey::generate().map_err(sync_error)?;
    let out = js_sys::Object::new();
    Reflect::set(&out, &"recoveryPhrase".into(), &key.recovery_phrase().into())?;
    Reflect::set(&out, &"keyId".into(), &key.id_hex().into())?;
    Ok(out.into())
}

/// The public id of the key a recovery phrase holds (`InvalidRecoveryPhraseException` on a
/// typo).
#[wasm_bindgen(js_name = syncKeyId)]
pub fn sync_key_id(recovery_phrase: &str) -> Result<String, JsValue> {
    Ok(GroupKey::from_recovery_phrase(recovery_phrase).map_err(sync_error)?.id_hex())
}

/// The short code both screens show while a device joins (six digits).
#[wasm_bindgen(js_name = syncJoinConfirmation)]
pub fn sync_join_confirmation(recovery_phrase: &str, group_id: &str, invite: &str) -> Result<String, JsValue> {
    Ok(GroupKey::from_recovery_phrase(recovery_phrase).map_err(sync_error)?.join_confirmation(group_id, invite))
}

/// The group key of `recoveryPhrase` wrapped under `passphrase` (Argon2id, parameters stored
/// in the result), for keeping at rest instead of the phrase.
#[wasm_bindgen(js_name = syncWrapKey)]
pub fn sync_wrap_key(recovery_phrase: &str, passphrase: &str) -> Result<Vec<u8>, JsValue> {
    let key = GroupKey::from_recovery_phrase(recovery_phrase).map_err(sync_error)?;
    likeness_sync::passphrase::wrap(&key, passphrase).map_err(sync_error)
}

/// The recovery phrase of a key wrapped by [`sync_wrap_key`] (`WrongPassphraseException`,
/// `InvalidWrappedKeyException`).
#[wasm_bindgen(js_name = syncUnwrapKey)]
pub fn sync_unwrap_key(wrapped: &[u8], passphrase: &str) -> Result<String, JsValue> {
    Ok(likeness_sync::passphrase::unwrap(wrapped, passphrase).map_err(sync_error)?.recovery_phrase())
}

#[wasm_bindgen]
impl Engine {
    /// Sync every collection of group `groupId` through `host`: pull and merge what other
    /// devices pushed, push what this device has that the server lacks. `state` is the JSON
    /// the host saved last (or empty). Resolves with the report (PascalCase); the state, as
    /// far as the sync got, is saved through `host.saveState` before it resolves or rejects.
    #[wasm_bindgen(js_name = syncGroup)]
    pub fn sync_group(&self, group_id: String, recovery_phrase: String, state: String, host: SyncHost) -> Promise {
        crate::run(&self.inner, |inner| async move {
            let key = GroupKey::from_recovery_phrase(&recovery_phrase).map_err(sync_error)?;
            let mut state: GroupSync = if state.is_empty() {
                GroupSync::default()
            } else {
                serde_json::from_str(&state)
                    .map_err(|e| error("InvalidParameterException", &format!("sync state: {e}")))?
            };
            let mut c = inner.collections().await?;
            let save = async |s: &GroupSync| {
                let json = serde_json::to_string(s).map_err(|e| SyncError::Offline(e.to_string()))?;
                host.save_state(json).await.map(|_| ()).map_err(host_error)
            };
            let result = sync_group(&mut c, &host, &key, &group_id, &mut state, save).await;
            drop(c);
            // Cursors that moved without a save inside (an idle directory pull) are kept too.
            let json = serde_json::to_string(&state).map_err(|e| error("InternalServerError", &e.to_string()))?;
            let saved = host.save_state(json).await;
            let report = result.map_err(sync_error)?;
            saved?;
            let out = js_sys::Object::new();
            Reflect::set(&out, &"PulledRecords".into(), &(report.pulled_records as f64).into())?;
            Reflect::set(&out, &"PulledSnapshot".into(), &report.pulled_snapshot.into())?;
            Reflect::set(&out, &"PushedRecords".into(), &(report.pushed_records as f64).into())?;
            Reflect::set(&out, &"WroteSnapshot".into(), &report.wrote_snapshot.into())?;
            Reflect::set(&out, &"BytesDown".into(), &(report.bytes_down as f64).into())?;
            Reflect::set(&out, &"BytesUp".into(), &(report.bytes_up as f64).into())?;
            let names: js_sys::Array = state.directory.names.iter().map(|n| JsValue::from_str(n)).collect();
            Reflect::set(&out, &"Collections".into(), &names)?;
            Ok(out.into())
        })
    }
}
