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

/// FaceId: a lowercase hyphenated UUID.
pub fn check_face_id(id: &str) -> Result<()> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("FaceId {id:?} is not a UUID")))
    }
}

/// Format 16 bytes as a version-4-shaped UUID string.
pub fn uuid_from_bytes(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
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
pub fn image_id(collection_id: &str, content: &[u8]) -> String {
    uuid_from_bytes(hash16(&[b"likeness-image", collection_id.as_bytes(), content]))
}

/// FaceId of the `index`-th face stored by the operation stamped `stamp`.
pub fn face_id(stamp: Hlc, index: usize) -> String {
    uuid_from_bytes(hash16(&[
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
    fn generated_ids_are_uuids_and_distinct() {
        let s = Hlc { millis: 1, counter: 0, replica: 2 };
        let a = face_id(s, 0);
        assert!(check_face_id(&a).is_ok());
        assert_ne!(a, face_id(s, 1));
        assert_ne!(a, face_id(Hlc { replica: 3, ..s }, 0));
        assert_eq!(image_id("c", b"x"), image_id("c", b"x"));
        assert_ne!(image_id("c", b"x"), image_id("d", b"x"), "keyed per collection");
        assert!(check_face_id("not-a-uuid").is_err());
    }
}
