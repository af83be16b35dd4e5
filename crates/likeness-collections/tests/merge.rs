//! Change sets from other replicas are input: each defect is refused whole with a typed
//! error and changes nothing, and a hostile replica can never corrupt an honest one.

mod common;
use common::*;
use likeness_collections::codec::{self, ChangeKind, ChangeSet};
use likeness_collections::hlc::{Hlc, MAX_CLOCK_DRIFT_MS};
use likeness_collections::ids::Uuid;
use likeness_collections::search::{is_canonical, quantize};
use likeness_collections::state::*;
use likeness_collections::*;
use likeness_vision::BoundingBox;
use proptest::prelude::*;

const NOW: u64 = 1_700_000_000_000;

fn name(e: CollectionError) -> &'static str {
    e.exception_name()
}

/// A replica with collection "c" holding two faces of person 0.
fn honest() -> (Collections<MemoryStore>, Vec<String>) {
    let mut c = open(MemoryStore::default(), 1);
    block_on(c.create_collection(&coll("c"))).unwrap();
    let faces = index(&mut c, "c", &ids::image_id("c", b"a").to_string(), &[vector(0, 0), vector(0, 1)]);
    (c, faces)
}

fn face(id: &str, vector: Vec<f32>) -> StoredFace {
    coded(Uuid::parse(id).unwrap(), quantize(&vector))
}

/// A face holding exactly these codes.
fn coded(face_id: Uuid, vector: Vec<i8>) -> StoredFace {
    StoredFace {
        face_id,
        image_id: ids::image_id("c", b"x"),
        external_image_id: Some("someone".into()),
        bounding_box: BoundingBox { width: 0.2, height: 0.2, left: 0.1, top: 0.1 },
        confidence: 99.0,
        vector,
    }
}

/// `bytes` with every `from` replaced by `to` (same length) and the checksum redone: what a
/// sender that writes its own bytes can send.
fn patched(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut found = false;
    let mut i = 0;
    while i + from.len() <= out.len() - 9 {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            found = true;
        }
        i += 1;
    }
    assert!(found, "nothing to patch");
    with_checksum(out)
}

fn with_checksum(mut out: Vec<u8>) -> Vec<u8> {
    let n = out.len() - 4;
    let crc = crc32(&out[..n - 5]);
    out[n..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// CRC-32 (IEEE), as the format's trailer.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A change set written in format 1 (ids as text, f32 vectors).
fn change_set_v1(collection: &str, ops: Vec<Op>) -> Vec<u8> {
    let mut version = hlc::VersionVector::default();
    ops.iter().for_each(|o| version.observe(o.stamp));
    codec::encode_format(&delta_set(ChangeKind::Delta, collection, ops, version), 1).unwrap()
}

fn stamp(millis: u64) -> Hlc {
    Hlc { millis, counter: 0, replica: 42 }
}

fn change_set(collection: &str, ops: Vec<Op>) -> Vec<u8> {
    let mut version = hlc::VersionVector::default();
    ops.iter().for_each(|o| version.observe(o.stamp));
    encode_set(ChangeKind::Delta, collection, ops, version)
}

/// A change set in this engine's vector space, claiming `version`.
fn delta_set(kind: ChangeKind, collection: &str, ops: Vec<Op>, version: hlc::VersionVector) -> ChangeSet {
    ChangeSet {
        kind,
        collection_id: collection.into(),
        face_model_version: VERSION.into(),
        dimension: DIM as u32,
        version,
        ops,
        floor: Default::default(),
    }
}

/// Encoded in the current format.
fn encode_set(kind: ChangeKind, collection: &str, ops: Vec<Op>, version: hlc::VersionVector) -> Vec<u8> {
    codec::encode(&delta_set(kind, collection, ops, version)).unwrap()
}

fn add(id: &str, millis: u64, v: Vec<f32>) -> Op {
    Op { stamp: stamp(millis), kind: OpKind::AddFace(face(id, v)) }
}

const NEW_FACE: &str = "00000000-0000-4000-8000-000000000001";

/// Apply `bytes` to a fresh honest replica: the error's name, and proof nothing changed.
fn refused(bytes: &[u8], expected_collection: &str) -> &'static str {
    let (mut c, _) = honest();
    let before_store = c.store().collections.clone();
    let before = c.snapshot("c").unwrap();
    let err = block_on(c.apply_changes(expected_collection, bytes)).expect_err("must be refused");
    assert_eq!(c.snapshot("c").unwrap(), before, "state changed by a refused change set");
    assert_eq!(c.store().collections, before_store, "store changed by a refused change set");
    name(err)
}

#[test]
fn an_honest_change_set_merges() {
    let (mut c, _) = honest();
    block_on(c.apply_changes("c", &change_set("c", vec![add(NEW_FACE, NOW, vector(3, 0))]))).unwrap();
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 3);
}

#[test]
fn stamps_from_the_far_future_are_refused_and_do_not_move_the_clock() {
    for millis in [NOW + MAX_CLOCK_DRIFT_MS + 1, u64::MAX - 1, u64::MAX] {
        let bytes = change_set("c", vec![add(NEW_FACE, millis, vector(3, 0))]);
        assert_eq!(refused(&bytes, "c"), "ClockSkewException");
    }
    // Within the drift, accepted; a delete stamped in the future cannot hide later writes,
    // since local stamps then sort after it.
    let (mut c, _) = honest();
    let delete = Op {
        stamp: stamp(NOW + MAX_CLOCK_DRIFT_MS),
        kind: OpKind::Meta(CollectionMeta { live: false, face_model_version: VERSION.into(), created_millis: 0 }),
    };
    block_on(c.apply_changes("c", &change_set("c", vec![delete]))).unwrap();
    block_on(c.create_collection(&coll("c"))).unwrap();
    index(&mut c, "c", &ids::image_id("c", b"later").to_string(), &[vector(5, 0)]);
    assert_eq!(c.describe_collection(&coll("c")).unwrap().face_count, 1, "a write after the delete is visible");
}

#[test]
fn the_caller_names_the_collection_a_change_set_may_touch() {
    let mut other = open(MemoryStore::default(), 9);
    block_on(other.create_collection(&coll("other"))).unwrap();
    let bytes = other.snapshot("other").unwrap();
    assert_eq!(refused(&bytes, "c"), "InvalidSnapshotException");
}

#[test]
fn a_change_set_cannot_change_the_face_model_version() {
    let meta = Op {
        stamp: stamp(NOW),
        kind: OpKind::Meta(CollectionMeta {
            live: true,
            face_model_version: "other-model".into(),
            created_millis: NOW,
        }),
    };
    assert_eq!(refused(&change_set("c", vec![meta]), "c"), "InvalidSnapshotException");
}

#[test]
fn ids_inside_operations_are_validated() {
    // FaceIds and ImageIds are binary in format 2, so only format 1 can carry a malformed one:
    // as text that is not a lowercase UUID.
    let new_face = Uuid::parse(NEW_FACE).unwrap();
    for op in [
        add(NEW_FACE, NOW, vector(3, 0)),
        Op { stamp: stamp(NOW), kind: OpKind::RemoveFace { face_id: new_face } },
        Op { stamp: stamp(NOW), kind: OpKind::Associate { face_id: new_face, user_id: None } },
    ] {
        let v1 = change_set_v1("c", vec![op.clone()]);
        assert!(block_on(honest().0.apply_changes("c", &v1)).is_ok(), "the well-formed v1 op merges: {op:?}");
        for bad in [
            "NOT-A-UUID-0000-4000-8000-0000000001",
            "00000000-0000-4000-8000-00000000000G",
            "00000000-0000-4000-8000-00000000000A",
        ] {
            let bytes = patched(&v1, NEW_FACE.as_bytes(), bad.as_bytes());
            assert_eq!(refused(&bytes, "c"), "InvalidSnapshotException", "{bad} in {op:?}");
        }
    }
    let cases = vec![
        Op { stamp: stamp(NOW), kind: OpKind::Associate { face_id: new_face, user_id: Some("bad user".into()) } },
        Op {
            stamp: stamp(NOW),
            kind: OpKind::User {
                user_id: "x".repeat(129),
                value: UserValue { live: true, client_request_token: None },
            },
        },
        Op {
            stamp: stamp(NOW),
            kind: OpKind::AddFace(StoredFace {
                external_image_id: Some("no spaces".into()),
                ..face(NEW_FACE, vector(3, 0))
            }),
        },
        Op {
            stamp: stamp(NOW),
            kind: OpKind::AddFace(StoredFace { confidence: f32::NAN, ..face(NEW_FACE, vector(3, 0)) }),
        },
    ];
    for op in cases {
        assert_eq!(refused(&change_set("c", vec![op.clone()]), "c"), "InvalidSnapshotException", "{op:?}");
    }
}

#[test]
fn only_unit_vectors_are_merged() {
    let id = Uuid::parse(NEW_FACE).unwrap();
    let add_codes = |codes: Vec<i8>| Op { stamp: stamp(NOW), kind: OpKind::AddFace(coded(id, codes)) };
    // Format 2: codes must be canonical (largest |code| 127, no -128): zero, too-small and
    // -128 codes are refused.
    for codes in [vec![0i8; DIM], vec![3i8; DIM], {
        let mut c = vec![0i8; DIM];
        c[0] = i8::MIN;
        c[1] = 127;
        c
    }] {
        assert!(!is_canonical(&codes));
        assert_eq!(refused(&change_set("c", vec![add_codes(codes)]), "c"), "InvalidSnapshotException");
    }
    // Format 1: f32 vectors must be unit length. Scale a unit vector's bytes by 10 in place.
    let v1 = change_set_v1("c", vec![add(NEW_FACE, NOW, vector(3, 0))]);
    let unit_bytes: Vec<u8> = quantize(&vector(3, 0))
        .iter()
        .flat_map(|&c| (c as f32 * likeness_collections::search::unit_scale(&quantize(&vector(3, 0)))).to_le_bytes())
        .collect();
    let long_bytes: Vec<u8> = unit_bytes
        .chunks(4)
        .flat_map(|c| (f32::from_le_bytes([c[0], c[1], c[2], c[3]]) * 10.0).to_le_bytes())
        .collect();
    assert_eq!(refused(&patched(&v1, &unit_bytes, &long_bytes), "c"), "InvalidSnapshotException");
    let zero_bytes = vec![0u8; unit_bytes.len()];
    assert_eq!(refused(&patched(&v1, &unit_bytes, &zero_bytes), "c"), "InvalidSnapshotException");
    // An empty vector without a removal is malformed at the format level.
    let empty = change_set_v1("c", vec![Op { stamp: stamp(NOW), kind: OpKind::AddFace(coded(id, Vec::new())) }]);
    assert_eq!(refused(&empty, "c"), "InvalidSnapshotException");
    // A vector of the wrong length cannot even be written in format 2.
    let short = ChangeSet {
        kind: ChangeKind::Delta,
        collection_id: "c".into(),
        face_model_version: VERSION.into(),
        dimension: DIM as u32,
        version: Default::default(),
        ops: vec![add_codes(vec![127; DIM - 1])],
        floor: Default::default(),
    };
    assert!(codec::encode(&short).is_err());
}

#[test]
fn the_senders_version_vector_is_not_believed() {
    let (mut c, _) = honest();
    let mut cs = codec::decode(&change_set("c", vec![add(NEW_FACE, NOW, vector(3, 0))])).unwrap();
    // Claims to have seen replica 77 up to the end of time.
    cs.version.observe(Hlc { millis: u64::MAX, counter: u32::MAX, replica: 77 });
    block_on(c.apply_changes("c", &codec::encode(&cs).unwrap())).unwrap();
    let v = c.version("c");
    assert!(!v.0.contains_key(&77), "an inflated version vector was merged: {v:?}");
    // So replica 77's real writes are still asked for and merged.
    let real = "00000000-0000-4000-8000-000000000077";
    let op =
        Op { stamp: Hlc { millis: NOW, counter: 1, replica: 77 }, kind: OpKind::AddFace(face(real, vector(4, 0))) };
    let mut vv = hlc::VersionVector::default();
    vv.observe(op.stamp);
    assert!(!c.version("c").covers(op.stamp));
    block_on(c.apply_changes("c", &change_set("c", vec![op]))).unwrap();
    assert!(
        c.list_faces(&ListFacesInput {
            collection_id: "c".into(),
            next_token: None,
            max_results: None,
            user_id: None,
            face_ids: Some(vec![real.into()]),
        })
        .unwrap()
        .faces
        .len()
            == 1
    );
}

#[test]
fn a_removed_face_travels_as_its_removal_alone() {
    let (mut c, faces) = honest();
    block_on(c.delete_faces(&del_req("c", &faces[..1]))).unwrap();
    let cs = codec::decode(&c.snapshot("c").unwrap()).unwrap();
    assert!(!cs.ops.iter().any(|op| matches!(&op.kind, OpKind::AddFace(f) if f.face_id.to_string() == faces[0])));
    assert!(cs
        .ops
        .iter()
        .any(|op| matches!(&op.kind, OpKind::RemoveFace { face_id } if face_id.to_string() == faces[0])));
    assert!(cs.ops.iter().all(|op| !matches!(&op.kind, OpKind::AddFace(f) if f.vector.is_empty())));
}

#[test]
fn compaction_needs_every_writers_acknowledgement() {
    let (mut c, faces) = honest();
    block_on(c.apply_changes("c", &change_set("c", vec![add(NEW_FACE, NOW, vector(3, 0))]))).unwrap();
    block_on(c.delete_faces(&del_req("c", &faces[..1]))).unwrap();
    let before = c.snapshot("c").unwrap();
    // Replica 42 wrote to the collection and has acknowledged nothing: refused.
    let err = block_on(c.compact("c", &Default::default())).unwrap_err();
    assert_eq!(name(err), "InvalidParameterException");
    assert_eq!(c.snapshot("c").unwrap(), before);
    let acks = [(42u64, c.version("c"))].into_iter().collect();
    assert_eq!(block_on(c.compact("c", &acks)).unwrap(), 1);
}

#[test]
fn each_vector_is_held_once_in_memory_as_int8_codes() {
    let (c, faces) = honest();
    let col = c.collection("c").unwrap();
    // One row of DIM codes and a scale per face, in the table that search scans.
    assert_eq!(col.face_count(), faces.len());
    assert_eq!(col.index_bytes_per_face(), DIM + 4);
    // Snapshots carry every vector as its codes...
    let cs = codec::decode(&c.snapshot("c").unwrap()).unwrap();
    let vectors: Vec<&Vec<i8>> =
        cs.ops.iter().filter_map(|op| if let OpKind::AddFace(f) = &op.kind { Some(&f.vector) } else { None }).collect();
    assert_eq!(vectors.len(), 2);
    assert!(vectors.contains(&&quantize(&vector(0, 0))) && vectors.contains(&&quantize(&vector(0, 1))));
    // ...and the stored vector is the original within int8 rounding.
    let id = Uuid::parse(&faces[0]).unwrap();
    let stored = col.state.face_vector(&id).unwrap();
    let cos: f32 = stored.iter().zip(vector(0, 0)).map(|(a, b)| a * b).sum();
    assert!(cos > 0.9999, "cos {cos}");
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn operations_are_send_for_multi_threaded_servers() {
    let (mut c, _) = honest();
    let input = coll("d");
    let fut = c.create_collection(&input);
    assert_send(&fut);
    drop(fut);
    let tmp = tempfile::tempdir().unwrap();
    let mut d =
        block_on(Collections::open(DirStore::open(tmp.path()).unwrap(), Box::new(ManualClock::new(NOW)), 1, space()))
            .unwrap();
    let fut = d.apply_changes("c", &[]);
    assert_send(&fut);
}

// ---- a hostile replica -------------------------------------------------------------------

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(NEW_FACE.to_string()),
        Just("00000000-0000-4000-8000-000000000002".to_string()),
        Just(String::new()),
        Just("not-a-uuid".to_string()),
        Just("x".repeat(300)),
        "[a-z0-9:\\- ]{0,12}",
    ]
}

fn any_face_id() -> impl Strategy<Value = Uuid> {
    prop_oneof![
        Just(Uuid::parse(NEW_FACE).unwrap()),
        Just(Uuid::parse("00000000-0000-4000-8000-000000000002").unwrap()),
        any::<[u8; 16]>().prop_map(Uuid),
    ]
}

fn any_vector() -> impl Strategy<Value = Vec<i8>> {
    prop_oneof![
        (0usize..DIM, 0usize..3).prop_map(|(p, v)| quantize(&vector(p, v))),
        proptest::collection::vec(any::<i8>(), DIM),
        proptest::collection::vec(-3i8..3, DIM),
    ]
}

fn any_stamp() -> impl Strategy<Value = Hlc> {
    let millis = prop_oneof![
        Just(0u64),
        Just(NOW - 1),
        Just(NOW),
        Just(NOW + MAX_CLOCK_DRIFT_MS + 1),
        Just(u64::MAX),
        any::<u64>()
    ];
    (millis, any::<u32>(), prop_oneof![Just(1u64), Just(42u64), any::<u64>()])
        .prop_map(|(millis, counter, replica)| Hlc { millis, counter, replica })
}

fn any_op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        (any::<bool>(), prop_oneof![Just(VERSION.to_string()), Just("evil".to_string())], any::<u64>()).prop_map(
            |(live, v, created)| OpKind::Meta(CollectionMeta { live, face_model_version: v, created_millis: created })
        ),
        (any_face_id(), any_vector(), -10.0f32..200.0)
            .prop_map(|(id, v, conf)| { OpKind::AddFace(StoredFace { confidence: conf, ..coded(id, v) }) }),
        any_face_id().prop_map(|face_id| OpKind::RemoveFace { face_id }),
        (any_id(), any::<bool>()).prop_map(|(user_id, live)| OpKind::User {
            user_id,
            value: UserValue { live, client_request_token: None }
        }),
        (any_face_id(), proptest::option::of(any_id()))
            .prop_map(|(face_id, user_id)| OpKind::Associate { face_id, user_id }),
    ];
    (any_stamp(), kind).prop_map(|(stamp, kind)| Op { stamp, kind })
}

fn any_change_set() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("c".to_string()), Just("other".to_string()), Just("..".to_string())],
        proptest::collection::vec(any_op(), 0..6),
        proptest::collection::vec(any_stamp(), 0..3),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of((any::<usize>(), any::<u8>())),
    )
        .prop_map(|(collection, ops, claimed, snapshot, v1, flip)| {
            let mut version = hlc::VersionVector::default();
            claimed.into_iter().for_each(|s| version.observe(s));
            let kind = if snapshot { ChangeKind::Snapshot } else { ChangeKind::Delta };
            let cs = ChangeSet {
                kind,
                collection_id: collection,
                face_model_version: VERSION.into(),
                dimension: DIM as u32,
                version,
                ops,
                floor: Default::default(),
            };
            let bytes = codec::encode_format(&cs, if v1 { 1 } else { 2 }).unwrap();
            // A sender that writes its own bytes: one byte changed, the checksum made valid.
            match flip {
                Some((at, x)) if bytes.len() > 17 => {
                    let mut b = bytes;
                    let i = 8 + at % (b.len() - 17);
                    b[i] ^= x | 1;
                    with_checksum(b)
                }
                _ => bytes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn a_hostile_replica_never_corrupts_an_honest_one(sets in proptest::collection::vec(any_change_set(), 1..6)) {
        let (mut c, _) = honest();
        for bytes in &sets {
            let before = c.snapshot("c").unwrap();
            match block_on(c.apply_changes("c", bytes)) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(matches!(e, CollectionError::InvalidSnapshot(_) | CollectionError::ClockSkew(_)), "{e}");
                    prop_assert_eq!(c.snapshot("c").unwrap(), before, "a refused change set changed state");
                }
            }
            // Everything the honest replica holds is well-formed, and it still works.
            let state = codec::decode(&c.snapshot("c").unwrap()).unwrap();
            for op in &state.ops {
                prop_assert!(op.stamp.millis <= NOW + MAX_CLOCK_DRIFT_MS);
                if let OpKind::AddFace(f) = &op.kind {
                    prop_assert!(ids::check_face_id(&f.face_id.to_string()).is_ok());
                    prop_assert!(f.vector.len() == DIM && is_canonical(&f.vector));
                }
            }
            if c.collection("c").is_ok() {
                let input = sfi("c", Some(0.0), Some(10), None);
                c.search_faces_by_analyzed(&input, image(&[vector(0, 0)])).unwrap();
            }
            // The store reopens to the same state.
            let reopened = open(c.store().clone(), 1);
            prop_assert_eq!(reopened.snapshot("c").ok(), c.snapshot("c").ok());
        }
    }
}
