//! The client state machine both clients run: for one collection, pull what the server has
//! (snapshot first when the log was folded), open and check every record, merge it, then
//! push what the server lacks, and fold the log into a snapshot when it has grown. The
//! transport (browser fetch, native HTTP) and the persistence of [`CollectionSync`] are the
//! host's.
//!
//! Nothing local is ever discarded: local changes are computed from the collections
//! themselves (`changes_since` what the server is known to hold), a sealed batch is kept in
//! `pending` until the server acknowledges it, and its push ids make the retry idempotent.

use crate::envelope::{open, seal, Opened, RecordKind, ReplayGuard};
use crate::error::SyncError;
use crate::keys::CollectionKeys;
use crate::protocol::{encode_push, push_id, PulledRecord, PushRecord};
use likeness_collections::codec;
use likeness_collections::hlc::VersionVector;
use likeness_collections::{Collections, Store};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::ops::AsyncFnMut;

/// One page of a pull.
pub enum Pulled {
    Records {
        records: Vec<PulledRecord>,
        more: bool,
    },
    /// The records after the cursor start past a snapshot: fetch it first.
    SnapshotRequired,
}

/// What a client needs from the server, per collection tag.
pub trait Transport {
    /// Create the collection with its key check, or confirm the key (WrongKey otherwise).
    fn put_collection(&self, tag: &str, key_check: Vec<u8>) -> impl Future<Output = Result<(), SyncError>>;
    /// Push a body of records; their sequences.
    fn push(&self, tag: &str, body: Vec<u8>) -> impl Future<Output = Result<Vec<u64>, SyncError>>;
    fn pull(&self, tag: &str, after: u64) -> impl Future<Output = Result<Pulled, SyncError>>;
    /// The snapshot and the sequence it covers, if any.
    fn get_snapshot(&self, tag: &str) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, SyncError>>;
    fn put_snapshot(&self, tag: &str, covers: u64, record: Vec<u8>) -> impl Future<Output = Result<(), SyncError>>;
}

/// Sync state of one collection on one device (the host persists it between runs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CollectionSync {
    /// Last server sequence merged here.
    pub cursor: u64,
    /// Operations the server is known to hold: pushed from here or pulled from it.
    pub acked: VersionVector,
    pub guard: ReplayGuard,
    /// This device's last record counter.
    pub counter: u64,
    /// Sealed records sent but not yet acknowledged, with their push ids: sent again,
    /// unchanged, first.
    pub pending: Vec<([u8; 16], Vec<u8>)>,
    /// Records in the log since the last snapshot, as far as this device knows.
    pub since_snapshot: u64,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub pulled_records: usize,
    pub pulled_snapshot: bool,
    pub pushed_records: usize,
    pub wrote_snapshot: bool,
    pub bytes_down: usize,
    pub bytes_up: usize,
}

/// Fold the log into a snapshot once this many records follow the last one.
pub const SNAPSHOT_AFTER_RECORDS: u64 = 64;

fn op_versions(bytes: &[u8]) -> Result<VersionVector, SyncError> {
    let cs = codec::decode(bytes).map_err(|e| SyncError::Merge(e.to_string()))?;
    let mut v = VersionVector::default();
    cs.ops.iter().for_each(|o| v.observe(o.stamp));
    Ok(v)
}

async fn merge<S: Store>(
    replica: &mut Collections<S>,
    collection_id: &str,
    opened: &Opened,
    state: &mut CollectionSync,
) -> Result<(), SyncError> {
    replica
        .apply_changes(collection_id, &opened.payload)
        .await
        .map_err(|e| SyncError::Merge(format!("{}: {}", e.exception_name(), e.message())))?;
    state.acked.merge(&op_versions(&opened.payload)?);
    Ok(())
}

/// Sync one collection: pull, merge, push, maybe fold. `save` is awaited whenever the state
/// must be durable before the next network step (a pending batch before it is sent); it is
/// async so a browser can write IndexedDB.
pub async fn sync_collection<S: Store, T: Transport>(
    replica: &mut Collections<S>,
    transport: &T,
    keys: &CollectionKeys,
    collection_id: &str,
    state: &mut CollectionSync,
    mut save: impl AsyncFnMut(&CollectionSync) -> Result<(), SyncError>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let tag = keys.tag.clone();
    transport.put_collection(&tag, keys.key_check()?).await?;

    // Pull everything after the cursor.
    loop {
        match transport.pull(&tag, state.cursor).await? {
            Pulled::SnapshotRequired => {
                let Some((covers, record)) = transport.get_snapshot(&tag).await? else {
                    return Err(SyncError::Server { code: "SnapshotRequired".into(), message: "no snapshot".into() });
                };
                let opened = open(keys, &record)?;
                if opened.kind != RecordKind::Snapshot {
                    return Err(SyncError::InvalidRecord("the snapshot endpoint returned another kind".into()));
                }
                report.bytes_down += record.len();
                merge(replica, collection_id, &opened, state).await?;
                state.cursor = covers;
                state.since_snapshot = 0;
                report.pulled_snapshot = true;
                save(state).await?;
            }
            Pulled::Records { records, more } => {
                for r in &records {
                    if r.sequence <= state.cursor {
                        return Err(SyncError::InvalidRecord(
                            "the server returned a record at or before the cursor".into(),
                        ));
                    }
                    let opened = open(keys, &r.record)?;
                    if opened.kind != RecordKind::Changes {
                        return Err(SyncError::InvalidRecord("a log record is not a change record".into()));
                    }
                    let own_echo = opened.device == replica.replica()
                        && state.guard.newest(opened.device).is_some_and(|n| opened.counter <= n);
                    if !own_echo {
                        // This device's own records come back once; anyone else's only once.
                        state.guard.check(&opened)?;
                        merge(replica, collection_id, &opened, state).await?;
                        state.guard.accept(&opened);
                    }
                    state.cursor = r.sequence;
                    state.since_snapshot += 1;
                    report.pulled_records += 1;
                    report.bytes_down += r.record.len();
                }
                if !records.is_empty() {
                    save(state).await?;
                }
                if !more || records.is_empty() {
                    break;
                }
            }
        }
    }

    // Push: an unacknowledged batch first (unchanged), then what the server lacks.
    if state.pending.is_empty() {
        let known = replica.known_collections();
        if known.iter().any(|k| k == collection_id) {
            let delta =
                replica.changes_since(collection_id, &state.acked).map_err(|e| SyncError::Merge(e.to_string()))?;
            let cs = codec::decode(&delta).map_err(|e| SyncError::Merge(e.to_string()))?;
            if !cs.ops.is_empty() {
                state.counter += 1;
                let record = seal(keys, RecordKind::Changes, replica.replica(), state.counter, &delta)?;
                let push_id = push_id(replica.replica(), state.counter);
                state.pending.push((push_id, record));
                save(state).await?;
            }
        }
    }
    if !state.pending.is_empty() {
        let records: Vec<PushRecord> = state
            .pending
            .iter()
            .map(|(push_id, record)| PushRecord { push_id: *push_id, record: record.clone() })
            .collect();
        let body = encode_push(&records);
        report.bytes_up += body.len();
        let sequences = transport.push(&tag, body).await?;
        for (_, record) in &state.pending {
            let opened = open(keys, record)?;
            state.acked.merge(&op_versions(&opened.payload)?);
            state.guard.accept(&opened);
        }
        report.pushed_records += state.pending.len();
        state.since_snapshot += sequences.len() as u64;
        // Our own records are merged already: the cursor may skip them only if nothing else
        // came in between, which the next pull sorts out (they are idempotent).
        state.pending.clear();
        save(state).await?;
    }

    // Fold the log once it outgrows the snapshot.
    if state.since_snapshot >= SNAPSHOT_AFTER_RECORDS && state.pending.is_empty() {
        // Cover only what was merged here (the cursor), never records this device lacks.
        let snapshot = replica.snapshot(collection_id).map_err(|e| SyncError::Merge(e.to_string()))?;
        state.counter += 1;
        let record = seal(keys, RecordKind::Snapshot, replica.replica(), state.counter, &snapshot)?;
        report.bytes_up += record.len();
        save(state).await?;
        transport.put_snapshot(&tag, state.cursor, record).await?;
        state.since_snapshot = 0;
        report.wrote_snapshot = true;
        save(state).await?;
    }
    Ok(report)
}

/// Sync state of a whole group on one device. Missing fields read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupSync {
    /// The group's directory of collection names (itself a sealed log).
    pub directory: DirectorySync,
    pub collections: std::collections::BTreeMap<String, CollectionSync>,
    /// Which collections this device syncs; `None`: every collection of the group. Others
    /// stay on the device only (not published, not pulled); their names are still learned.
    #[serde(default)]
    pub only: Option<std::collections::BTreeSet<String>>,
}

impl GroupSync {
    /// Whether this device syncs the collection `name`.
    pub fn syncs(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(name))
    }
}

/// The directory log: which CollectionIds the group syncs. Its tag and key are derived
/// from a name no CollectionId can take, so the server sees one more opaque collection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorySync {
    pub cursor: u64,
    pub guard: ReplayGuard,
    pub counter: u64,
    pub names: std::collections::BTreeSet<String>,
}

/// The directory's reserved name (CollectionIds are `[a-zA-Z0-9_.-]+`).
const DIRECTORY: &str = "\u{0}directory";

/// Sync every collection of the group this device syncs ([`GroupSync::only`]): learn the
/// group's collection names, publish local ones it lacks, then sync each (local and remote).
/// Stops at the first error, leaving what was done saved.
pub async fn sync_group<S: Store, T: Transport>(
    replica: &mut Collections<S>,
    transport: &T,
    group: &crate::GroupKey,
    group_id: &str,
    state: &mut GroupSync,
    mut save: impl AsyncFnMut(&GroupSync) -> Result<(), SyncError>,
) -> Result<SyncReport, SyncError> {
    let dir_keys = CollectionKeys::derive(group, group_id, DIRECTORY);
    let tag = dir_keys.tag.clone();
    transport.put_collection(&tag, dir_keys.key_check()?).await?;
    let mut total = SyncReport::default();
    loop {
        let Pulled::Records { records, more } = transport.pull(&tag, state.directory.cursor).await? else {
            return Err(SyncError::InvalidRecord("the directory is never folded".into()));
        };
        for r in &records {
            let opened = open(&dir_keys, &r.record)?;
            let own = opened.device == replica.replica()
                && state.directory.guard.newest(opened.device).is_some_and(|n| opened.counter <= n);
            if !own {
                state.directory.guard.check(&opened)?;
                let name = String::from_utf8(opened.payload.clone())
                    .map_err(|_| SyncError::InvalidRecord("a directory entry is not UTF-8".into()))?;
                likeness_collections::ids::check_collection_id(&name)
                    .map_err(|e| SyncError::InvalidRecord(e.message().to_string()))?;
                state.directory.names.insert(name);
                state.directory.guard.accept(&opened);
            }
            state.directory.cursor = r.sequence;
            total.bytes_down += r.record.len();
        }
        if !more || records.is_empty() {
            break;
        }
    }
    let local = replica.known_collections();
    let new: Vec<&String> = local.iter().filter(|n| !state.directory.names.contains(*n) && state.syncs(n)).collect();
    if !new.is_empty() {
        let mut records = Vec::new();
        for name in &new {
            state.directory.counter += 1;
            let counter = state.directory.counter;
            let record = seal(&dir_keys, RecordKind::Changes, replica.replica(), counter, name.as_bytes())?;
            let push_id = push_id(replica.replica(), counter);
            records.push(PushRecord { push_id, record });
        }
        save(state).await?;
        let body = encode_push(&records);
        total.bytes_up += body.len();
        transport.push(&tag, body).await?;
        for (r, name) in records.iter().zip(&new) {
            state.directory.guard.accept(&open(&dir_keys, &r.record)?);
            state.directory.names.insert((*name).clone());
        }
        save(state).await?;
    }
    let names: Vec<String> = state.directory.names.iter().filter(|n| state.syncs(n)).cloned().collect();
    for name in names {
        let keys = CollectionKeys::derive(group, group_id, &name);
        let mut cs = state.collections.get(&name).cloned().unwrap_or_default();
        let report = {
            let snapshot_of_rest = state.clone();
            sync_collection(replica, transport, &keys, &name, &mut cs, async |c: &CollectionSync| {
                let mut whole = snapshot_of_rest.clone();
                whole.collections.insert(name.clone(), c.clone());
                save(&whole).await
            })
            .await
        };
        state.collections.insert(name.clone(), cs);
        save(state).await?;
        let r = report?;
        total.pulled_records += r.pulled_records;
        total.pulled_snapshot |= r.pulled_snapshot;
        total.pushed_records += r.pushed_records;
        total.wrote_snapshot |= r.wrote_snapshot;
        total.bytes_down += r.bytes_down;
        total.bytes_up += r.bytes_up;
    }
    Ok(total)
}
