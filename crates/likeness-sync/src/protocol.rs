//! Binary bodies of the sync API, shared by the server and both clients.
//!
//! ```text
//! push request:  "LKPB" | count u32 | (push id [16] | length u32 | record)*
//! pull response: "LKPL" | count u32 | (sequence u64 | length u32 | record)*
//! ```
//!
//! A push id is chosen by the client once per record and reused on every retry, so a retried
//! push never stores a record twice. Little-endian; every count and length is checked against
//! the bytes present and the caller's limits before anything is allocated.

use crate::error::SyncError;

const PUSH_MAGIC: &[u8; 4] = b"LKPB";
const PULL_MAGIC: &[u8; 4] = b"LKPL";

/// The push id of record `counter` of `device`: the same on every retry of it.
pub fn push_id(device: u64, counter: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&device.to_le_bytes());
    id[8..].copy_from_slice(&counter.to_le_bytes());
    id
}

/// One record of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    pub push_id: [u8; 16],
    pub record: Vec<u8>,
}

/// One record of a pull, with the sequence the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledRecord {
    pub sequence: u64,
    pub record: Vec<u8>,
}

fn bad(m: impl Into<String>) -> SyncError {
    SyncError::InvalidRecord(m.into())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SyncError> {
        if n > self.0.len() {
            return Err(bad("truncated body"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32, SyncError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, SyncError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn header(magic: &[u8; 4], count: usize) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out
}

pub fn encode_push(records: &[PushRecord]) -> Vec<u8> {
    let mut out = header(PUSH_MAGIC, records.len());
    for r in records {
        out.extend_from_slice(&r.push_id);
        out.extend_from_slice(&(r.record.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.record);
    }
    out
}

/// Decode a push body holding at most `max_records`, each at most `max_record` bytes.
pub fn decode_push(body: &[u8], max_records: usize, max_record: usize) -> Result<Vec<PushRecord>, SyncError> {
    let mut r = Reader(body);
    if r.take(4)? != PUSH_MAGIC {
        return Err(bad("not a push body"));
    }
    let n = r.u32()? as usize;
    if n > max_records {
        return Err(bad(format!("{n} records in one push; at most {max_records}")));
    }
    if n > body.len() / 20 {
        return Err(bad("record count exceeds the body"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut push_id = [0u8; 16];
        push_id.copy_from_slice(r.take(16)?);
        let len = r.u32()? as usize;
        if len > max_record {
            return Err(bad(format!("a record of {len} bytes; at most {max_record}")));
        }
        out.push(PushRecord { push_id, record: r.take(len)?.to_vec() });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes after the records"));
    }
    Ok(out)
}

pub fn encode_pull(records: &[PulledRecord]) -> Vec<u8> {
    let mut out = header(PULL_MAGIC, records.len());
    for r in records {
        out.extend_from_slice(&r.sequence.to_le_bytes());
        out.extend_from_slice(&(r.record.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.record);
    }
    out
}

/// Decode a pull body; sequences must increase strictly (a server that reorders or repeats
/// is refused).
pub fn decode_pull(body: &[u8]) -> Result<Vec<PulledRecord>, SyncError> {
    let mut r = Reader(body);
    if r.take(4)? != PULL_MAGIC {
        return Err(bad("not a pull body"));
    }
    let n = r.u32()? as usize;
    if n > body.len() / 12 {
        return Err(bad("record count exceeds the body"));
    }
    let mut out: Vec<PulledRecord> = Vec::with_capacity(n);
    for _ in 0..n {
        let sequence = r.u64()?;
        if out.last().is_some_and(|p| p.sequence >= sequence) {
            return Err(bad("sequences do not increase"));
        }
        let len = r.u32()? as usize;
        out.push(PulledRecord { sequence, record: r.take(len)?.to_vec() });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes after the records"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_refuse_defects() {
        let push = vec![
            PushRecord { push_id: [1; 16], record: b"abc".to_vec() },
            PushRecord { push_id: [2; 16], record: Vec::new() },
        ];
        let body = encode_push(&push);
        assert_eq!(decode_push(&body, 10, 10).unwrap(), push);
        assert!(decode_push(&body, 1, 10).is_err(), "too many records");
        assert!(decode_push(&body, 10, 2).is_err(), "record too large");
        for n in 0..body.len() {
            assert!(decode_push(&body[..n], 10, 10).is_err(), "prefix {n}");
        }
        let pull = vec![
            PulledRecord { sequence: 3, record: b"x".to_vec() },
            PulledRecord { sequence: 9, record: b"yz".to_vec() },
        ];
        let body = encode_pull(&pull);
        assert_eq!(decode_pull(&body).unwrap(), pull);
        let reordered = encode_pull(&[pull[1].clone(), pull[0].clone()]);
        assert!(decode_pull(&reordered).is_err());
        for n in 0..body.len() {
            assert!(decode_pull(&body[..n]).is_err(), "prefix {n}");
        }
    }
}
