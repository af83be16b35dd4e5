//! Any bytes through every sync decoder: a sealed record, push and pull bodies, a
//! replay-guard state, a wrapped key, a recovery phrase, a client's saved sync state (JSON). A typed error or a value, never a panic; an opened record
//! re-seals and opens to the same content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use likeness_sync::{envelope, passphrase, protocol, CollectionKeys, GroupKey, ReplayGuard};

fuzz_target!(|data: &[u8]| {
    let keys = CollectionKeys::derive(&GroupKey::from_bytes([9; 32]), "fuzz-group", "fuzz");
    if let Ok(o) = envelope::open(&keys, data) {
        let again = envelope::seal(&keys, o.kind, o.device, o.counter, &o.payload).expect("reseals");
        assert_eq!(envelope::open(&keys, &again).expect("opens"), o);
    }
    if let Ok(p) = protocol::decode_push(data, 1000, 1 << 20) {
        assert_eq!(protocol::encode_push(&p), data);
    }
    if let Ok(p) = protocol::decode_pull(data) {
        assert_eq!(protocol::encode_pull(&p), data);
    }
    if let Ok(g) = ReplayGuard::from_bytes(data) {
        assert_eq!(g.to_bytes(), data);
    }
    // The decoder bounds Argon2's cost (unit tests check the bounds); keep each run cheap.
    let cheap = data.len() < 17 || {
        let m = u32::from_le_bytes([data[5], data[6], data[7], data[8]]);
        let t = u32::from_le_bytes([data[9], data[10], data[11], data[12]]);
        m <= 4096 && t <= 2
    };
    if cheap {
        let _ = passphrase::unwrap(data, "fuzz");
    }
    if let Ok(state) = serde_json::from_slice::<likeness_sync::client::GroupSync>(data) {
        let again = serde_json::to_vec(&state).expect("a state serializes");
        let back: likeness_sync::client::GroupSync = serde_json::from_slice(&again).expect("and reads back");
        assert_eq!(serde_json::to_vec(&back).expect("serializes"), again);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(k) = GroupKey::from_recovery_phrase(s) {
            assert_eq!(GroupKey::from_recovery_phrase(&k.recovery_phrase()).expect("round trip"), k);
        }
    }
});
