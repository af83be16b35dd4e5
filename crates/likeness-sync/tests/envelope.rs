//! Sealed records: round trips, every alteration refused with a typed error, replays caught,
//! wrong keys told apart from tampering, and lengths that say little about content.

use likeness_sync::envelope::{padded_len, peek_kind};
use likeness_sync::passphrase::{self, Cost};
use likeness_sync::*;
use proptest::prelude::*;

fn keys(collection: &str) -> CollectionKeys {
    CollectionKeys::derive(&GroupKey::from_bytes([42; 32]), "group-a", collection)
}

#[test]
fn records_round_trip() {
    let k = keys("staff");
    for n in [0usize, 1, 235, 236, 237, 5000, 70_000] {
        let payload: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
        let r = seal(&k, RecordKind::Changes, 9, 3, &payload).unwrap();
        let o = open(&k, &r).unwrap();
        assert_eq!((o.kind, o.device, o.counter), (RecordKind::Changes, 9, 3));
        assert_eq!(o.payload, payload);
        assert_eq!(peek_kind(&r).unwrap(), RecordKind::Changes);
    }
}

#[test]
fn sealing_twice_gives_unrelated_bytes() {
    let k = keys("staff");
    let a = seal(&k, RecordKind::Changes, 1, 1, b"same").unwrap();
    let b = seal(&k, RecordKind::Changes, 1, 1, b"same").unwrap();
    assert_ne!(a, b, "a fresh random nonce each time");
}

#[test]
fn lengths_are_bucketed() {
    // Payloads of every size from 0 to 100 KB fall into few lengths, each at most 12.5% (or
    // 256 bytes) above the payload.
    let mut lengths = std::collections::BTreeSet::new();
    for n in 0..100_000 {
        let p = padded_len(n);
        assert!(p >= n + 20 && (p <= 256 || p as f64 <= (n + 20) as f64 * 1.125 + 1.0 || p <= 4096), "{n} -> {p}");
        lengths.insert(p);
    }
    assert!(lengths.len() < 80, "{} distinct lengths", lengths.len());
}

#[test]
fn every_alteration_and_truncation_is_refused() {
    let k = keys("staff");
    let r = seal(&k, RecordKind::Changes, 9, 3, b"a delta of three faces").unwrap();
    for i in 0..r.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = r.clone();
            t[i] ^= bit;
            let e = open(&k, &t).unwrap_err();
            assert!(
                matches!(e, SyncError::TamperedRecord | SyncError::InvalidRecord(_) | SyncError::WrongKey { .. }),
                "byte {i}: {e:?}"
            );
        }
    }
    for n in 0..r.len() {
        assert!(open(&k, &r[..n]).is_err(), "prefix {n}");
    }
}

#[test]
fn a_record_relabelled_or_moved_fails_authentication() {
    let k = keys("staff");
    let r = seal(&k, RecordKind::Changes, 9, 3, b"delta").unwrap();
    let mut relabelled = r.clone();
    relabelled[5] = RecordKind::Snapshot as u8;
    assert_eq!(open(&k, &relabelled).unwrap_err(), SyncError::TamperedRecord);
    // Another collection, or the same collection in another group: another key.
    for other in [keys("visitors"), CollectionKeys::derive(&GroupKey::from_bytes([42; 32]), "group-b", "staff")] {
        let e = open(&other, &r).unwrap_err();
        assert_eq!(e.exception_name(), "WrongKeyException", "{e}");
    }
}

#[test]
fn a_wrong_group_key_is_told_apart_from_tampering() {
    let k = keys("staff");
    let wrong = CollectionKeys::derive(&GroupKey::from_bytes([43; 32]), "group-a", "staff");
    assert_eq!(k.tag.len(), wrong.tag.len());
    let check = k.key_check().unwrap();
    k.verify_key_check(&check).unwrap();
    match wrong.verify_key_check(&check).unwrap_err() {
        SyncError::WrongKey { expected, found } => {
            assert_eq!(expected, wrong.key_id_hex());
            assert_eq!(found, k.key_id_hex());
        }
        e => panic!("{e:?}"),
    }
    // A changes record is not a key check.
    let r = seal(&k, RecordKind::Changes, 0, 0, b"likeness key check 1").unwrap();
    assert!(k.verify_key_check(&r).is_err());
}

#[test]
fn replays_are_refused_and_the_guard_persists() {
    let k = keys("staff");
    let mut guard = ReplayGuard::default();
    let records: Vec<Vec<u8>> = (1..=3).map(|c| seal(&k, RecordKind::Changes, 7, c, b"x").unwrap()).collect();
    for r in &records {
        let o = open(&k, r).unwrap();
        guard.check(&o).unwrap();
        guard.accept(&o);
    }
    let again = open(&k, &records[1]).unwrap();
    assert_eq!(guard.check(&again).unwrap_err(), SyncError::ReplayedRecord { device: 7, counter: 2 });
    // Another device's counters are its own.
    guard.check(&open(&k, &seal(&k, RecordKind::Changes, 8, 1, b"y").unwrap()).unwrap()).unwrap();
    let restored = ReplayGuard::from_bytes(&guard.to_bytes()).unwrap();
    assert_eq!(restored, guard);
    assert!(restored.check(&again).is_err());
    assert!(ReplayGuard::from_bytes(&[1, 0, 0, 0, 1]).is_err());
    // Entries out of order (found by fuzzing): one state has one encoding.
    let entry = |d: u64, c: u64| [d.to_le_bytes(), c.to_le_bytes()].concat();
    let unsorted = [vec![2, 0, 0, 0], entry(9, 1), entry(3, 1)].concat();
    assert!(ReplayGuard::from_bytes(&unsorted).is_err());
    let sorted = [vec![2, 0, 0, 0], entry(3, 1), entry(9, 1)].concat();
    assert_eq!(ReplayGuard::from_bytes(&sorted).unwrap().to_bytes(), sorted);
}

#[test]
fn passphrase_wrapping() {
    let key = GroupKey::from_bytes([5; 32]);
    let cheap = Cost { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
    let wrapped = passphrase::wrap_with(&key, "correct horse", cheap).unwrap();
    assert_eq!(passphrase::unwrap(&wrapped, "correct horse").unwrap(), key);
    assert_eq!(passphrase::unwrap(&wrapped, "wrong horse").unwrap_err(), SyncError::WrongPassphrase);
    // Altered bytes: refused, and parameters past the bounds are refused before any work.
    for i in 0..wrapped.len() {
        let mut t = wrapped.clone();
        t[i] ^= 0x40;
        assert!(passphrase::unwrap(&t, "correct horse").is_err(), "byte {i}");
    }
    let mut greedy = wrapped.clone();
    greedy[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = passphrase::unwrap(&greedy, "correct horse").unwrap_err();
    assert_eq!(e.exception_name(), "InvalidWrappedKeyException", "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes, or a real record with arbitrary changes: a typed error or the exact
    /// original, never a panic and never altered content.
    #[test]
    fn opening_never_panics_or_accepts_altered_content(
        junk in proptest::collection::vec(any::<u8>(), 0..400),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        let k = keys("staff");
        let _ = open(&k, &junk);
        let _ = ReplayGuard::from_bytes(&junk);
        let _ = passphrase::unwrap(&junk, "p");
        let payload = b"payload of a delta".to_vec();
        let r = seal(&k, RecordKind::Snapshot, 1, 2, &payload).unwrap();
        let mut t = r.clone();
        for (i, x) in edits { let i = i % t.len(); t[i] ^= x; }
        t.truncate(cut % (t.len() + 1));
        if let Ok(o) = open(&k, &t) {
            prop_assert_eq!(&t, &r);
            prop_assert_eq!(o.payload, payload);
        }
    }
}
