//! Storage behind one trait: what the API needs, as transactions. SQLite ([`Sqlite`]) is the
//! embedded default (WAL, `synchronous=FULL`: an acknowledged write survives a crash or power
//! loss as far as SQLite promises); PostgreSQL ([`Postgres`]) lets several stateless server
//! processes share one database, with live notifications fanned out by `LISTEN/NOTIFY`.
//! Migrations live per backend in `migrations/<backend>/`.

mod postgres;
mod sqlite;

pub use postgres::Postgres;
pub use sqlite::Sqlite;

use crate::error::{ApiError, ApiResult};
use crate::Live;
use likeness_sync::protocol::{PulledRecord, PushRecord};
use std::future::Future;
use tokio::sync::broadcast;

/// A device as authentication sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    pub device_id: String,
    pub group_id: String,
    pub revoked: bool,
}

/// A device as listed to its group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A new device's row.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub device_id: String,
    pub label: String,
    pub token_hash: Vec<u8>,
}

/// What a collection holds, without its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    pub key_check: Vec<u8>,
    pub snapshot_seq: i64,
    /// Sequence of the newest record (0: none yet).
    pub last_seq: i64,
    pub bytes: i64,
}

/// One page of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage {
    pub records: Vec<PulledRecord>,
    pub snapshot_seq: i64,
    pub last_seq: i64,
}

/// Server-wide counts for `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub groups: i64,
    pub devices: i64,
    pub collections: i64,
    pub records: i64,
    pub bytes: i64,
}

/// The storage the API runs on. Every method is one transaction.
pub trait Database: Clone + Send + Sync + 'static {
    fn create_group(
        &self,
        group_id: &str,
        key_id: &str,
        now: i64,
        first: NewDevice,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    fn device_by_token(&self, token_hash: &[u8]) -> impl Future<Output = ApiResult<Option<DeviceAuth>>> + Send;
    fn create_invite(
        &self,
        group_id: &str,
        code_hash: &[u8],
        expires_at: i64,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// Use an invite (unused, unexpired) and add the device; the group's id and key id, or
    /// `None`.
    fn redeem_invite(
        &self,
        code_hash: &[u8],
        now: i64,
        device: NewDevice,
    ) -> impl Future<Output = ApiResult<Option<(String, String)>>> + Send;
    fn list_devices(&self, group_id: &str) -> impl Future<Output = ApiResult<Vec<DeviceInfo>>> + Send;
    /// Revoke a device of the group; false if there is none.
    fn revoke_device(&self, group_id: &str, device_id: &str, now: i64) -> impl Future<Output = ApiResult<bool>> + Send;
    /// Create the collection with its key check, or return the key check it already has.
    fn put_collection(
        &self,
        group_id: &str,
        tag: &str,
        key_check: &[u8],
    ) -> impl Future<Output = ApiResult<Vec<u8>>> + Send;
    fn collection(&self, group_id: &str, tag: &str) -> impl Future<Output = ApiResult<Option<CollectionInfo>>> + Send;
    /// Append records; a push id seen before keeps its first sequence. Refuses the whole
    /// push if the group would pass `quota_bytes`. Returns each record's sequence.
    fn push(
        &self,
        group_id: &str,
        tag: &str,
        records: &[PushRecord],
        quota_bytes: i64,
    ) -> impl Future<Output = ApiResult<Vec<u64>>> + Send;
    fn pull(
        &self,
        group_id: &str,
        tag: &str,
        after: i64,
        limit: i64,
        max_bytes: i64,
    ) -> impl Future<Output = ApiResult<PullPage>> + Send;
    /// Store a snapshot covering the log up to `covers`, and drop the records it covers.
    fn put_snapshot(
        &self,
        group_id: &str,
        tag: &str,
        covers: i64,
        record: &[u8],
        quota_bytes: i64,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    fn snapshot(&self, group_id: &str, tag: &str) -> impl Future<Output = ApiResult<Option<(i64, Vec<u8>)>>> + Send;
    fn delete_collection(&self, group_id: &str, tag: &str) -> impl Future<Output = ApiResult<bool>> + Send;
    fn delete_group(&self, group_id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    fn counts(&self) -> impl Future<Output = ApiResult<Counts>> + Send;
    /// Tell the live listeners of every server process on this database that a collection
    /// got records. One process (SQLite): straight to `local`.
    fn announce(&self, live: Live, local: &broadcast::Sender<Live>) -> impl Future<Output = ()> + Send {
        let _ = local.send(live);
        std::future::ready(())
    }
    /// Forward announcements made by other processes into `local` (nothing to do for a
    /// database only one process uses).
    fn listen(&self, _local: broadcast::Sender<Live>) {}
}

/// A snapshot covering `covers` may replace one covering `stored` in a log that ends at
/// `last`: not past the log, and not older than what is stored.
pub(crate) fn check_snapshot(covers: i64, stored: i64, last: i64) -> ApiResult<()> {
    if covers > last {
        return Err(ApiError::InvalidRequest(format!("the snapshot covers sequence {covers}; the log ends at {last}")));
    }
    if covers < stored {
        return Err(ApiError::Conflict(format!("a newer snapshot (sequence {stored}) is already stored")));
    }
    Ok(())
}

/// Refuse a change of `delta` bytes that takes a group using `used` past `quota`.
pub(crate) fn check_quota(used: i64, delta: i64, quota: i64) -> ApiResult<()> {
    if delta > 0 && used + delta > quota {
        return Err(ApiError::QuotaExceeded(format!("{used} of {quota} bytes used")));
    }
    Ok(())
}

/// The records of a page, up to `max_bytes` but always at least one, so a page never stalls
/// on a large record.
pub(crate) fn fill_page(rows: impl IntoIterator<Item = (i64, Vec<u8>)>, max_bytes: i64) -> Vec<PulledRecord> {
    let mut records = Vec::new();
    let mut bytes = 0i64;
    for (sequence, record) in rows {
        if !records.is_empty() && bytes + record.len() as i64 > max_bytes {
            break;
        }
        bytes += record.len() as i64;
        records.push(PulledRecord { sequence: sequence as u64, record });
    }
    records
}
