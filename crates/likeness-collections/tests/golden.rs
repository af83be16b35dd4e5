//! Golden files pin the LKNS formats. Format 1 (ids as strings, f32 vectors; a snapshot
//! with a removed face in the v1 tombstone encoding, and a delta) was written by the first
//! releases: this build must still decode those bytes to the same change sets and state,
//! and its format-1 encoder must still write them. Format 2 (binary ids, int8 codes) is what
//! this build writes. A silent format change fails here. Files of the current format are
//! written by `LIKENESS_WRITE_GOLDEN=1 cargo test --test golden` (only for a new format
//! version); files of older formats are never rewritten.

use likeness_collections::codec::{self, ChangeKind, ChangeSet};
use likeness_collections::hlc::{Hlc, VersionVector};
use likeness_collections::ids::Uuid;
use likeness_collections::search::quantize;
use likeness_collections::state::*;
use likeness_vision::BoundingBox;
use std::path::PathBuf;

const KEPT: &str = "6a1f4c2e-0b3d-4e5f-8a9b-0c1d2e3f4a5b";
const REMOVED: &str = "7b2a5d3f-1c4e-4f60-9bac-1d2e3f4a5b6c";
const IMAGE: &str = "8c3b6e4a-2d5f-4071-acbd-2e3f4a5b6c7d";

fn at(millis: u64, counter: u32) -> Hlc {
    Hlc { millis, counter, replica: 0x1122_3344_5566_7788 }
}

fn id(s: &str) -> Uuid {
    Uuid::parse(s).unwrap()
}

fn face(face_id: &str, vector: Vec<f32>) -> StoredFace {
    StoredFace {
        face_id: id(face_id),
        image_id: id(IMAGE),
        external_image_id: Some("golden:person".into()),
        bounding_box: BoundingBox { width: 0.25, height: 0.5, left: 0.125, top: 0.0625 },
        confidence: 99.5,
        vector: if vector.is_empty() { Vec::new() } else { quantize(&vector) },
    }
}

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; 4];
    v[i] = 1.0;
    v
}

fn meta(live: bool) -> OpKind {
    OpKind::Meta(CollectionMeta {
        live,
        face_model_version: "golden-model-1".into(),
        created_millis: 1_700_000_000_000,
    })
}

/// The snapshot as v1 writers wrote it: the removed face as an AddFace with an empty vector
/// beside its RemoveFace.
fn snapshot_as_written() -> ChangeSet {
    let ops = vec![
        Op { stamp: at(1_700_000_000_000, 0), kind: meta(true) },
        Op { stamp: at(1_700_000_000_001, 0), kind: OpKind::AddFace(face(KEPT, unit(0))) },
        Op { stamp: at(1_700_000_000_001, 1), kind: OpKind::AddFace(face(REMOVED, Vec::new())) },
        Op {
            stamp: at(1_700_000_000_002, 0),
            kind: OpKind::User {
                user_id: "golden-user".into(),
                value: UserValue { live: true, client_request_token: Some("tok".into()) },
            },
        },
        Op {
            stamp: at(1_700_000_000_003, 0),
            kind: OpKind::Associate { face_id: id(KEPT), user_id: Some("golden-user".into()) },
        },
        Op { stamp: at(1_700_000_000_004, 0), kind: OpKind::RemoveFace { face_id: id(REMOVED) } },
    ];
    change_set(ChangeKind::Snapshot, ops)
}

/// A change set of the golden collection whose version vector covers its operations.
fn change_set(kind: ChangeKind, ops: Vec<Op>) -> ChangeSet {
    let mut version = VersionVector::default();
    ops.iter().for_each(|o| version.observe(o.stamp));
    ChangeSet {
        kind,
        collection_id: "golden".into(),
        face_model_version: "golden-model-1".into(),
        dimension: 4,
        version,
        ops,
        floor: VersionVector::default(),
    }
}

fn delta() -> ChangeSet {
    let ops = vec![Op {
        stamp: at(1_700_000_000_010, 0),
        kind: OpKind::AddFace(face("9d4c7f5b-3e60-4182-bdce-3f4a5b6c7d8e", unit(1))),
    }];
    change_set(ChangeKind::Delta, ops)
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn check(name: &str, format: u16, written: ChangeSet) -> ChangeSet {
    let path = golden(name);
    let encoded = codec::encode_format(&written, format).unwrap();
    if format == codec::FORMAT_VERSION && std::env::var_os("LIKENESS_WRITE_GOLDEN").is_some() {
        std::fs::write(&path, &encoded).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(encoded, bytes, "{name}: the format-{format} encoder no longer writes these bytes");
    codec::decode(&bytes).unwrap()
}

/// The snapshot a format-2 writer makes of the same state: the removal alone, and a face
/// whose codes are not all 0 and 127.
fn snapshot_v2() -> ChangeSet {
    let mut cs = snapshot_as_written();
    cs.ops.retain(|op| !matches!(&op.kind, OpKind::AddFace(f) if f.vector.is_empty()));
    cs.ops.push(Op {
        stamp: at(1_700_000_000_005, 0),
        kind: OpKind::AddFace(face("0e5d8a6c-4f71-4293-8edf-4a5b6c7d8e9f", vec![0.5, -0.3, 0.7, 0.4])),
    });
    change_set(ChangeKind::Snapshot, cs.ops)
}

#[test]
fn the_v2_golden_files_decode_to_the_same_state() {
    let snapshot = check("v2-snapshot.lkns", 2, snapshot_v2());
    assert_eq!(snapshot, snapshot_v2());
    let delta = check("v2-delta.lkns", 2, delta());
    assert_eq!(delta, self::delta());
    let OpKind::AddFace(f) = &snapshot.ops.last().unwrap().kind else { panic!("an AddFace") };
    assert_eq!(f.vector, vec![91, -54, 127, 73], "codes pinned");
    let mut state = CollectionState::new("golden");
    for op in snapshot.ops.iter().chain(&delta.ops) {
        state.apply(op);
    }
    assert_eq!(state.visible_summary().1.len(), 3);
    assert_eq!(state.tombstone_count(), 1);
    assert!(
        std::fs::metadata(golden("v2-snapshot.lkns")).unwrap().len()
            < std::fs::metadata(golden("v1-snapshot.lkns")).unwrap().len()
    );
}

#[test]
fn the_v1_golden_files_decode_to_the_same_state() {
    let snapshot = check("v1-snapshot.lkns", 1, snapshot_as_written());
    let mut expected = snapshot_as_written();
    expected.ops.retain(|op| !matches!(&op.kind, OpKind::AddFace(f) if f.vector.is_empty()));
    assert_eq!(snapshot, expected, "the v1 tombstone is read as the removal alone");
    let delta = check("v1-delta.lkns", 1, delta());
    assert_eq!(delta, self::delta());

    let mut state = CollectionState::new("golden");
    for op in snapshot.ops.iter().chain(&delta.ops) {
        state.apply(op);
    }
    assert!(state.is_live());
    assert_eq!(
        state.visible_summary(),
        (
            true,
            vec![
                (KEPT.to_string(), Some("golden-user".to_string())),
                ("9d4c7f5b-3e60-4182-bdce-3f4a5b6c7d8e".to_string(), None)
            ],
            vec!["golden-user".to_string()]
        )
    );
    assert!(state.live_face(&id(REMOVED)).is_none());
    assert_eq!(state.tombstone_count(), 1, "the removal is kept");
}
