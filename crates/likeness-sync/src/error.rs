//! Typed errors of the sync layer. Names follow the project's exception style, so adapters
//! can hand them to JavaScript or HTTP as they are.

/// Why a sync operation refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The bytes are not a record of this format (truncated, wrong magic or version).
    #[error("not a sync record: {0}")]
    InvalidRecord(String),
    /// The record was sealed under another key (a device holding the wrong group key, or a
    /// collection re-keyed): nothing it says can be read.
    #[error("the record was sealed with key {found}, this device holds key {expected}")]
    WrongKey { expected: String, found: String },
    /// Authentication failed: the record was altered, truncated inside, or moved to another
    /// group, collection or kind than it was sealed for.
    #[error("the record failed authentication: altered, or moved from where it was sealed")]
    TamperedRecord,
    /// A record this device has already seen (or an older one of the same writer) came again.
    #[error("record {counter} of device {device:016x} was already applied (replay)")]
    ReplayedRecord { device: u64, counter: u64 },
    /// A recovery phrase that does not decode (typo, missing part).
    #[error("invalid recovery phrase: {0}")]
    InvalidRecoveryPhrase(String),
    /// The passphrase does not unlock the stored key.
    #[error("the passphrase does not unlock this key")]
    WrongPassphrase,
    /// The key is kept wrapped under a passphrase and no passphrase was given to unlock it.
    #[error("the group key is protected by a passphrase: unlock it first ({0})")]
    Locked(String),
    /// A stored wrapped key that is malformed or asks for unreasonable work.
    #[error("invalid wrapped key: {0}")]
    InvalidWrappedKey(String),
    /// The server could not be reached (the device may be offline): retry later; nothing
    /// local was lost.
    #[error("the sync server is unreachable: {0}")]
    Offline(String),
    /// The server refused a request, with its stable code.
    #[error("the sync server refused: {code}: {message}")]
    Server { code: String, message: String },
    /// A pulled change set that the local collections refused (its exception name and
    /// message). Sync stops at it, so nothing after it is applied out of order.
    #[error("a pulled change was refused: {0}")]
    Merge(String),
    /// The platform has no random source.
    #[error("no random source: {0}")]
    Random(String),
}

impl SyncError {
    /// The exception name adapters report.
    pub fn exception_name(&self) -> &'static str {
        match self {
            SyncError::InvalidRecord(_) => "InvalidRecordException",
            SyncError::WrongKey { .. } => "WrongKeyException",
            SyncError::TamperedRecord => "TamperedRecordException",
            SyncError::ReplayedRecord { .. } => "ReplayedRecordException",
            SyncError::InvalidRecoveryPhrase(_) => "InvalidRecoveryPhraseException",
            SyncError::WrongPassphrase => "WrongPassphraseException",
            SyncError::Locked(_) => "SyncLockedException",
            SyncError::InvalidWrappedKey(_) => "InvalidWrappedKeyException",
            SyncError::Offline(_) => "SyncOfflineException",
            SyncError::Server { .. } => "SyncServerException",
            SyncError::Merge(_) => "InvalidSnapshotException",
            SyncError::Random(_) => "InternalServerError",
        }
    }
}

/// Fill `buf` from the OS (or the browser's crypto.getRandomValues).
pub(crate) fn random(buf: &mut [u8]) -> Result<(), SyncError> {
    getrandom::fill(buf).map_err(|e| SyncError::Random(e.to_string()))
}
