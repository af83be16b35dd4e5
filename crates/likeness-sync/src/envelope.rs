//! Sealed records: what the server stores and relays, and cannot read.
//!
//! ```text
//! "LKSR" | version u8 (=1) | kind u8 | key id [8] | nonce [24] | XChaCha20-Poly1305 ciphertext
//! associated data: "likeness-sync/1" | len u32 | group id | collection tag [32] | key id | kind
//! plaintext:       device u64 | counter u64 | length u32 | payload | zero padding
//! ```
//!
//! The associated data is not sent: the opener rebuilds it from where it expects the record
//! to be, so a record moved to another group or collection, or relabelled as another kind,
//! fails authentication. Plaintext is padded to a bucket ([`padded_len`]): 256 bytes, then
//! powers of two, then steps of a sixteenth of the next power of two, so a record's length
//! tells the size of a change only roughly. Little-endian throughout.

use crate::error::{random, SyncError};
use crate::keys::CollectionKeys;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::collections::BTreeMap;

pub const MAGIC: &[u8; 4] = b"LKSR";
pub const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 1 + 8 + 24;
const TAG: usize = 16;
const INNER: usize = 8 + 8 + 4;
/// Largest payload a record may carry (1 GiB).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// A delta of one collection (an LKNS change set).
    Changes = 1,
    /// A snapshot of one collection, covering the log up to a sequence.
    Snapshot = 2,
    /// The key check record ([`CollectionKeys::key_check`]).
    KeyCheck = 3,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordKind::Changes),
            2 => Some(RecordKind::Snapshot),
            3 => Some(RecordKind::KeyCheck),
            _ => None,
        }
    }
}

/// An opened record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub kind: RecordKind,
    /// The writer's device id and its counter: strictly increasing per device.
    pub device: u64,
    pub counter: u64,
    pub payload: Vec<u8>,
}

/// Plaintext length for a payload of `n` bytes (inner header included).
pub fn padded_len(n: usize) -> usize {
    let n = n + INNER;
    if n <= 256 {
        return 256;
    }
    let p = n.next_power_of_two();
    if p <= 4096 {
        return p;
    }
    let step = p / 16;
    n.div_ceil(step) * step
}

fn associated_data(keys: &CollectionKeys, kind: RecordKind) -> Vec<u8> {
    let group = keys.group_id().as_bytes();
    let mut ad = Vec::with_capacity(15 + 4 + group.len() + 32 + 8 + 1);
    ad.extend_from_slice(b"likeness-sync/1");
    ad.extend_from_slice(&(group.len() as u32).to_le_bytes());
    ad.extend_from_slice(group);
    ad.extend_from_slice(keys.tag.as_bytes());
    ad.extend_from_slice(&keys.key_id());
    ad.push(kind as u8);
    ad
}

/// A 24-byte nonce from a slice of the layout (always 24 bytes there).
pub(crate) fn nonce_of(bytes: &[u8]) -> Result<XNonce, SyncError> {
    XNonce::try_from(bytes).map_err(|_| SyncError::InvalidRecord("nonce is not 24 bytes".into()))
}

fn cipher(keys: &CollectionKeys) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(keys.key().into())
}

/// Seal `payload` as record `counter` of `device`.
pub fn seal(
    keys: &CollectionKeys,
    kind: RecordKind,
    device: u64,
    counter: u64,
    payload: &[u8],
) -> Result<Vec<u8>, SyncError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(SyncError::InvalidRecord(format!("payload of {} bytes exceeds {MAX_PAYLOAD}", payload.len())));
    }
    let mut plain = Vec::with_capacity(padded_len(payload.len()));
    plain.extend_from_slice(&device.to_le_bytes());
    plain.extend_from_slice(&counter.to_le_bytes());
    plain.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    plain.extend_from_slice(payload);
    plain.resize(padded_len(payload.len()), 0);
    let mut nonce = [0u8; 24];
    random(&mut nonce)?;
    let ad = associated_data(keys, kind);
    let sealed = cipher(keys)
        .encrypt(&nonce_of(&nonce)?, Payload { msg: &plain, aad: &ad })
        .map_err(|_| SyncError::InvalidRecord("the record could not be sealed".into()))?;
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.extend_from_slice(&keys.key_id());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The kind a record says it is, without opening it (the server's view). Unauthenticated.
pub fn peek_kind(record: &[u8]) -> Result<RecordKind, SyncError> {
    check_header(record)?;
    RecordKind::from_u8(record[5]).ok_or_else(|| SyncError::InvalidRecord(format!("unknown kind {}", record[5])))
}

fn check_header(record: &[u8]) -> Result<(), SyncError> {
    if record.len() < HEADER + TAG {
        return Err(SyncError::InvalidRecord(format!("{} bytes is shorter than any record", record.len())));
    }
    if &record[..4] != MAGIC {
        return Err(SyncError::InvalidRecord("bad magic".into()));
    }
    if record[4] != VERSION {
        return Err(SyncError::InvalidRecord(format!("record version {} is not {VERSION}", record[4])));
    }
    Ok(())
}

/// Open a record expected to belong to `keys`' collection and group.
pub fn open(keys: &CollectionKeys, record: &[u8]) -> Result<Opened, SyncError> {
    let kind = peek_kind(record)?;
    if record[6..14] != keys.key_id() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        return Err(SyncError::WrongKey { expected: keys.key_id_hex(), found: hex(&record[6..14]) });
    }
    let nonce = &nonce_of(&record[14..HEADER])?;
    let ad = associated_data(keys, kind);
    let plain = cipher(keys)
        .decrypt(nonce, Payload { msg: &record[HEADER..], aad: &ad })
        .map_err(|_| SyncError::TamperedRecord)?;
    // Authenticated from here on: a malformed inside means a group member wrote it badly.
    let bad = |m: &str| SyncError::InvalidRecord(m.to_string());
    if plain.len() < INNER {
        return Err(bad("sealed content too short"));
    }
    let u64_at = |i: usize| u64::from_le_bytes(plain[i..i + 8].try_into().unwrap_or([0; 8]));
    let (device, counter) = (u64_at(0), u64_at(8));
    let len = u32::from_le_bytes(plain[16..20].try_into().unwrap_or([0; 4])) as usize;
    let end =
        INNER.checked_add(len).filter(|&e| e <= plain.len()).ok_or_else(|| bad("payload length exceeds the record"))?;
    if plain.len() != padded_len(len) || plain[end..].iter().any(|&b| b != 0) {
        return Err(bad("padding is not canonical"));
    }
    Ok(Opened { kind, device, counter, payload: plain[INNER..end].to_vec() })
}

/// Per writer, the newest counter applied: a record at or below it is a replay (the server
/// serving an old record again, at a new place in the log).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayGuard {
    newest: BTreeMap<u64, u64>,
}

impl ReplayGuard {
    /// Refuse `opened` if its writer's counter does not advance.
    pub fn check(&self, opened: &Opened) -> Result<(), SyncError> {
        match self.newest.get(&opened.device) {
            Some(&c) if opened.counter <= c => {
                Err(SyncError::ReplayedRecord { device: opened.device, counter: opened.counter })
            }
            _ => Ok(()),
        }
    }

    /// Record `opened` as applied.
    pub fn accept(&mut self, opened: &Opened) {
        let c = self.newest.entry(opened.device).or_insert(opened.counter);
        *c = (*c).max(opened.counter);
    }

    /// The newest counter applied of `device`.
    pub fn newest(&self, device: u64) -> Option<u64> {
        self.newest.get(&device).copied()
    }

    /// Persisted form: count u32 | (device u64, counter u64)*.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = (self.newest.len() as u32).to_le_bytes().to_vec();
        for (d, c) in &self.newest {
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SyncError> {
        let bad = || SyncError::InvalidRecord("replay guard state is malformed".into());
        let n = u32::from_le_bytes(bytes.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
        if bytes.len() != 4 + n.checked_mul(16).ok_or_else(bad)? {
            return Err(bad());
        }
        let mut newest = BTreeMap::new();
        for e in bytes[4..].chunks_exact(16) {
            let d = u64::from_le_bytes(e[..8].try_into().map_err(|_| bad())?);
            let c = u64::from_le_bytes(e[8..].try_into().map_err(|_| bad())?);
            // One encoding per state (as `to_bytes` writes it): devices strictly ascending.
            if newest.last_key_value().is_some_and(|(&last, _)| last >= d) {
                return Err(bad());
            }
            newest.insert(d, c);
        }
        Ok(ReplayGuard { newest })
    }
}
