//! Keys: one random group key per sync group, and per collection a tag and a key derived from
//! it, so every device of the group agrees on both without asking the server.

use crate::envelope::{self, RecordKind};
use crate::error::{random, SyncError};
use hkdf::Hkdf;
use sha2_next::Sha256;

/// A sync group's secret: 32 random bytes. It never reaches the server; devices get it from
/// the recovery phrase or an invite's URL fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey([u8; 32]);

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupKey({})", self.id_hex())
    }
}

impl Drop for GroupKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn hkdf(ikm: &[u8], salt: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let info: Vec<u8> = info.concat();
    // HKDF-SHA256 yields up to 8160 bytes; every caller asks for 32 or fewer.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(&info, out);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl GroupKey {
    /// A new random key.
    pub fn generate() -> Result<Self, SyncError> {
        let mut k = [0u8; 32];
        random(&mut k)?;
        Ok(GroupKey(k))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        GroupKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public fingerprint of the key (8 bytes): what devices compare, and what the server
    /// keeps to refuse a device that holds another key.
    pub fn id(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        hkdf(&self.0, b"likeness-sync", &[b"group key id"], &mut id);
        id
    }

    pub fn id_hex(&self) -> String {
        hex(&self.id())
    }

    /// The short code both screens show while a device joins with `invite` (six digits,
    /// `"123 456"`): derived from the key and the invite, so the person can check that the
    /// code they scanned or typed is the one the other device made, without the code saying
    /// anything about the key.
    pub fn join_confirmation(&self, group_id: &str, invite: &str) -> String {
        let mut out = [0u8; 4];
        hkdf(
            &self.0,
            b"likeness-sync",
            &[b"join confirmation\0", group_id.as_bytes(), b"\0", invite.as_bytes()],
            &mut out,
        );
        let n = u32::from_be_bytes(out) % 1_000_000;
        format!("{:03} {:03}", n / 1000, n % 1000)
    }

    /// The key as people write it down: 55 Crockford base32 characters (the key and a
    /// CRC-16, which catches every single wrong character and every swap of neighbours) in
    /// groups of five.
    pub fn recovery_phrase(&self) -> String {
        let mut bytes = self.0.to_vec();
        bytes.extend_from_slice(&crc16(&self.0).to_be_bytes());
        let chars = base32_encode(&bytes);
        chars.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }

    /// Read a recovery phrase. Case, spaces and hyphens do not matter; I and L read as 1, O
    /// as 0 (Crockford). A typo fails the checksum with a typed error.
    pub fn from_recovery_phrase(phrase: &str) -> Result<Self, SyncError> {
        let bad = |m: &str| SyncError::InvalidRecoveryPhrase(m.to_string());
        let cleaned: String = phrase.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if cleaned.len() != 55 {
            return Err(bad(&format!("expected 55 characters, found {}", cleaned.len())));
        }
        let bytes = base32_decode(&cleaned).ok_or_else(|| bad("a character is not Crockford base32"))?;
        if bytes.len() != 34 {
            return Err(bad("the phrase does not hold a key"));
        }
        let (key, check) = bytes.split_at(32);
        if crc16(key).to_be_bytes() != *check {
            return Err(bad("checksum mismatch: a character is wrong"));
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(key);
        Ok(GroupKey(k))
    }
}

/// CRC-16/XMODEM (polynomial 0x1021, MSB first): detects every error burst of up to 16 bits,
/// so any one mistyped base32 character (5 bits) or swapped pair (10 bits).
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(CROCKFORD[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(CROCKFORD[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decode; `None` on a character outside the alphabet or non-zero trailing bits.
fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.chars() {
        let c = match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        let v = CROCKFORD.iter().position(|&x| x as char == c)? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    (acc == 0).then_some(out)
}

/// What one collection syncs under, derived from the group key: the same on every device.
#[derive(Clone, PartialEq, Eq)]
pub struct CollectionKeys {
    /// The server's name for the collection (32 hex characters): unlinkable to the
    /// CollectionId without the group key.
    pub tag: String,
    key: [u8; 32],
    key_id: [u8; 8],
    group_id: String,
}

impl std::fmt::Debug for CollectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CollectionKeys {{ tag: {}, key_id: {} }}", self.tag, hex(&self.key_id))
    }
}

impl Drop for CollectionKeys {
    fn drop(&mut self) {
        self.key.fill(0);
    }
}

impl CollectionKeys {
    /// Keys of `collection_id` in the group `group_id` (the server's id for the group; it
    /// salts the derivation, so two groups under one key still get unrelated keys).
    pub fn derive(group: &GroupKey, group_id: &str, collection_id: &str) -> Self {
        let mut tag = [0u8; 16];
        hkdf(&group.0, group_id.as_bytes(), &[b"collection tag/", collection_id.as_bytes()], &mut tag);
        let mut key = [0u8; 32];
        hkdf(&group.0, group_id.as_bytes(), &[b"collection key/", collection_id.as_bytes()], &mut key);
        let mut key_id = [0u8; 8];
        hkdf(&key, b"likeness-sync", &[b"collection key id"], &mut key_id);
        CollectionKeys { tag: hex(&tag), key, key_id, group_id: group_id.to_string() }
    }

    pub fn key_id(&self) -> [u8; 8] {
        self.key_id
    }

    pub fn key_id_hex(&self) -> String {
        hex(&self.key_id)
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The key check record the server keeps per collection: a device that cannot open it
    /// holds the wrong key and must not write.
    pub fn key_check(&self) -> Result<Vec<u8>, SyncError> {
        envelope::seal(self, RecordKind::KeyCheck, 0, 0, KEY_CHECK)
    }

    /// Whether `record` is this collection's key check under this device's key.
    pub fn verify_key_check(&self, record: &[u8]) -> Result<(), SyncError> {
        let opened = envelope::open(self, record)?;
        if opened.kind != RecordKind::KeyCheck || opened.payload != KEY_CHECK {
            return Err(SyncError::InvalidRecord("not a key check record".into()));
        }
        Ok(())
    }
}

const KEY_CHECK: &[u8] = b"likeness key check 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_every_length() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base32_decode(&base32_encode(&bytes)).unwrap(), bytes, "{n}");
        }
    }

    #[test]
    fn join_confirmations_differ_by_key_group_and_invite() {
        let (a, b) = (GroupKey::from_bytes([1; 32]), GroupKey::from_bytes([2; 32]));
        let code = a.join_confirmation("g", "invite-1");
        assert_eq!(code.len(), 7);
        assert!(code.chars().enumerate().all(|(i, c)| if i == 3 { c == ' ' } else { c.is_ascii_digit() }));
        assert_eq!(code, a.join_confirmation("g", "invite-1"), "both screens derive the same");
        assert_ne!(code, b.join_confirmation("g", "invite-1"));
        assert_ne!(code, a.join_confirmation("g", "invite-2"));
        assert_ne!(code, a.join_confirmation("h", "invite-1"));
    }

    #[test]
    fn recovery_phrases_round_trip_and_catch_typos() {
        let key = GroupKey::from_bytes([7; 32]);
        let phrase = key.recovery_phrase();
        assert_eq!(phrase.len(), 55 + 10);
        assert_eq!(GroupKey::from_recovery_phrase(&phrase).unwrap(), key);
        assert_eq!(GroupKey::from_recovery_phrase(&phrase.to_lowercase().replace('-', " ")).unwrap(), key);
        // Every single-character substitution and every swap of two neighbours is refused.
        let chars: Vec<char> = phrase.chars().filter(|&c| c != '-').collect();
        for i in 0..chars.len() {
            for c in "0123456789ABCDEFGHJKMNPQRSTVWXYZU".chars().filter(|&c| c != chars[i]) {
                let mut typo = chars.clone();
                typo[i] = c;
                let typo: String = typo.into_iter().collect();
                assert!(GroupKey::from_recovery_phrase(&typo).is_err(), "{typo}");
            }
            if i + 1 < chars.len() && chars[i] != chars[i + 1] {
                let mut swap = chars.clone();
                swap.swap(i, i + 1);
                let swap: String = swap.into_iter().collect();
                assert!(GroupKey::from_recovery_phrase(&swap).is_err(), "{swap}");
            }
        }
        assert!(GroupKey::from_recovery_phrase("short").is_err());
    }

    #[test]
    fn collections_get_unrelated_tags_and_keys() {
        let g = GroupKey::from_bytes([1; 32]);
        let a = CollectionKeys::derive(&g, "group-1", "staff");
        let b = CollectionKeys::derive(&g, "group-1", "visitors");
        let c = CollectionKeys::derive(&g, "group-2", "staff");
        assert_eq!(a, CollectionKeys::derive(&g, "group-1", "staff"), "deterministic");
        assert!(a.tag != b.tag && a.tag != c.tag && a.key != b.key && a.key != c.key);
        assert!(!a.tag.contains("staff"));
        assert_eq!(a.tag.len(), 32);
    }
}
