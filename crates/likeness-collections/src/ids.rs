//! Identifier rules (Rekognition's patterns and lengths) and UUID generation.
//!
//! FaceIds are derived by hashing the replica id, the operation's clock stamp and the face's
//! position in the call, so they are unique across devices without a random source (there is
//! none to rely on in `wasm32-unknown-unknown`) and reproducible in tests. ImageIds hash the
//! image content keyed by the collection: the same image gets the same ImageId within a
//! collection (IndexFaces retries are idempotent on every replica of it), and unrelated
//! ImageIds in different collections, so one photo is not linkable across them.

use crate::error::{invalid, Result};
use crate::hlc::Hlc;
use sha2::{Digest, Sha256};

fn check(kind: &str, value: &str, max: usize, extra: &[char]) -> Result<()> {
    if value.is_empty() || value.len() > max {
        return Err(invalid(format!("{kind} must be 1 to {max} characters long, got {}", value.len())));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c))) {
        return Err(invalid(format!("{kind} contains the character {c:?}; allowed are letters, digits and {extra:?}")));
    }
    Ok(())
}

/// CollectionId: 1-255 of `[a-zA-Z0-9_.\-]`.
pub fn check_collection_id(id: &str) -> Result<()> {
    check("CollectionId", id, 255, &['_', '.', '-'])
}

/// ExternalImageId: 1-255 of `[a-zA-Z0-9_.\-:]`.
pub fn check_external_image_id(id: &str) -> Result<()> {
    check("ExternalImageId", id, 255, &['_', '.', '-', ':'])
}

/// UserId: 1-128 of `[a-zA-Z0-9_.\-:]`.
pub fn check_user_id(id: &str) -> Result<()> {
    check("UserId", id, 128, &['_', '.', '-', ':'])
}

/// ClientRequestToken: 1-64 of `[a-zA-Z0-9-_]`.
pub fn check_client_request_token(token: &str) -> Result<()> {
    check("ClientRequestToken", token, 64, &['-', '_'])
}

/// FaceId: a lowercase hyphenated UUID (Rekognition's pattern).
pub fn check_face_id(id: &str) -> Result<()> {
    parse_face_id(id).map(|_| ())
}

/// A FaceId from a request, as the binary id the collections keep.
pub fn parse_face_id(id: &str) -> Result<Uuid> {
    Uuid::parse(id).ok_or_else(|| invalid(format!("FaceId {id:?} is not a lowercase UUID")))
}

/// A 128-bit id kept in binary (16 bytes rather than a 36-byte string on the heap) and
/// written as Rekognition writes FaceIds and ImageIds: lowercase, hyphenated 8-4-4-4-12.
/// Every value has a valid text form, so a malformed id cannot be stored.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub [u8; 16]);

/// A face's id.
pub type FaceId = Uuid;
/// An image's id.
pub type ImageId = Uuid;

impl Uuid {
    /// Parse the lowercase hyphenated form; anything else (upper case, braces, no hyphens)
    /// is `None`.
    pub fn parse(s: &str) -> Option<Uuid> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in b.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
            nibbles += 1;
        }
        Some(Uuid(out))
    }

    /// 16 bytes shaped as a version-4 UUID (version and variant bits set).
    pub fn v4_shaped(mut b: [u8; 16]) -> Uuid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if [4, 6, 8, 10].contains(&i) {
                f.write_str("-")?;
            }
            write!(f, "{x:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn hash16(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// ImageId of an image's bytes (encoded bytes, or raw pixels with their size) in a collection.
pub fn image_id(collection_id: &str, content: &[u8]) -> ImageId {
    Uuid::v4_shaped(hash16(&[b"likeness-image", collection_id.as_bytes(), content]))
}

/// FaceId of the `index`-th face stored by the operation stamped `stamp`.
pub fn face_id(stamp: Hlc, index: usize) -> FaceId {
    Uuid::v4_shaped(hash16(&[
        b"likeness-face",
        &stamp.millis.to_le_bytes(),
        &stamp.counter.to_le_bytes(),
        &stamp.replica.to_le_bytes(),
        &(index as u64).to_le_bytes(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_limits_are_exact() {
        assert!(check_collection_id(&"a".repeat(255)).is_ok());
        assert!(check_collection_id(&"a".repeat(256)).is_err());
        assert!(check_collection_id("").is_err());
        assert!(check_collection_id("a:b").is_err());
        assert!(check_external_image_id("a:b").is_ok());
        assert!(check_user_id(&"u".repeat(128)).is_ok());
        assert!(check_user_id(&"u".repeat(129)).is_err());
        assert!(check_user_id("bad id").is_err());
    }

    #[test]
    fn binary_order_is_text_order() {
        // ListFaces pages by binary FaceId; clients see the text order.
        let mut ids: Vec<Uuid> = (0u32..500).map(|i| Uuid(hash16(&[&i.to_le_bytes()]))).collect();
        ids.push(Uuid([0; 16]));
        ids.push(Uuid([0xff; 16]));
        let mut by_text = ids.clone();
        by_text.sort_by_key(|u| u.to_string());
        ids.sort();
        assert_eq!(ids, by_text);
    }

    #[test]
    fn generated_ids_are_uuids_and_distinct() {
        let s = Hlc { millis: 1, counter: 0, replica: 2 };
        let a = face_id(s, 0);
        assert!(check_face_id(&a.to_string()).is_ok());
        assert_eq!(Uuid::parse(&a.to_string()), Some(a), "text form round-trips");
        assert_ne!(a, face_id(s, 1));
        assert_ne!(a, face_id(Hlc { replica: 3, ..s }, 0));
        assert_eq!(image_id("c", b"x"), image_id("c", b"x"));
        assert_ne!(image_id("c", b"x"), image_id("d", b"x"), "keyed per collection");
        assert!(check_face_id("not-a-uuid").is_err());
        assert!(check_face_id(&a.to_string().to_uppercase()).is_err(), "Rekognition's pattern is lowercase");
        assert!(check_face_id("0123456789abcdef0123456789abcdef0123").is_err());
    }
}
