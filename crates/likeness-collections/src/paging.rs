//! Opaque NextTokens: `<kind>.<hex of the last key>.<crc>`.
//!
//! The CRC-32 covers the listing kind, the collection and the last key, so a token from
//! another listing or collection, or an edited or truncated one, is refused with
//! InvalidPaginationTokenException. It detects mistakes, not forgery: a token is not a
//! credential and grants nothing, since whoever holds it can already list the collection.

use crate::error::{CollectionError, Result};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn checksum(scope: &str, body: &str) -> String {
    let mut h = crc32fast::Hasher::new();
    h.update(&(scope.len() as u64).to_le_bytes());
    h.update(scope.as_bytes());
    h.update(body.as_bytes());
    format!("{:08x}", h.finalize())
}

/// Token resuming a listing of `kind` within `scope` (the collection) after `last_key`.
pub fn encode(kind: &str, scope: &str, last_key: &str) -> String {
    let body = format!("{kind}.{}", hex(last_key.as_bytes()));
    format!("{body}.{}", checksum(scope, &body))
}

/// The last key of a token issued for `kind` within `scope`.
pub fn decode(kind: &str, scope: &str, token: &str) -> Result<String> {
    let invalid =
        || CollectionError::InvalidPaginationToken(format!("NextToken {token:?} is not valid for this listing"));
    let (body, crc) = token.rsplit_once('.').ok_or_else(invalid)?;
    if checksum(scope, body) != crc {
        return Err(invalid());
    }
    let (k, key) = body.split_once('.').ok_or_else(invalid)?;
    if k != kind {
        return Err(invalid());
    }
    String::from_utf8(unhex(key).ok_or_else(invalid)?).map_err(|_| invalid())
}

/// One page of sorted `keys` after the token's key: (page, next token).
pub fn page<'a, T>(
    kind: &str,
    scope: &str,
    items: impl Iterator<Item = (&'a str, T)>,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>)> {
    let after = token.map(|t| decode(kind, scope, t)).transpose()?;
    let mut out = Vec::new();
    let mut last = None;
    let mut more = false;
    for (key, item) in items {
        if after.as_deref().is_some_and(|a| key <= a) {
            continue;
        }
        if out.len() == max {
            more = true;
            break;
        }
        last = Some(key);
        out.push(item);
    }
    Ok((out, if more { last.map(|k| encode(kind, scope, k)) } else { None }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let t = encode("faces", "c1", "abc");
        assert_eq!(decode("faces", "c1", &t).unwrap(), "abc");
        assert!(decode("users", "c1", &t).is_err());
        assert!(decode("faces", "c2", &t).is_err(), "bound to its collection");
        assert!(decode("faces", "c1", &t.replace("616263", "616264")).is_err());
        assert!(decode("faces", "c1", "garbage").is_err());
    }
}
