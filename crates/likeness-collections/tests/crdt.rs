//! Replicas edited independently converge: merge is commutative, associative, idempotent,
//! deltas carry exactly what is missing, and no face added and not removed is ever lost.

use likeness_collections::hlc::{HlcGenerator, VersionVector};
use likeness_collections::ids::Uuid;
use likeness_collections::search::quantize;
use likeness_collections::state::*;
use likeness_vision::BoundingBox;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Action {
    Add(u8),
    Remove(u8),
    User(u8, bool),
    Associate(u8, Option<u8>),
    Meta(bool),
    /// Replica receives the other replica's delta.
    Sync(u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (0u8..8).prop_map(Action::Add),
        2 => (0u8..8).prop_map(Action::Remove),
        2 => ((0u8..3), any::<bool>()).prop_map(|(u, l)| Action::User(u, l)),
        2 => ((0u8..8), proptest::option::of(0u8..3)).prop_map(|(f, u)| Action::Associate(f, u)),
        1 => any::<bool>().prop_map(Action::Meta),
        2 => (0u8..3).prop_map(Action::Sync),
    ]
}

fn face(n: u8) -> StoredFace {
    StoredFace {
        face_id: fid(n),
        image_id: Uuid([0xee; 16]),
        external_image_id: None,
        bounding_box: BoundingBox { width: 0.1, height: 0.1, left: 0.0, top: 0.0 },
        confidence: 99.0,
        vector: quantize(&[n as f32, 1.0]),
    }
}

fn fid(n: u8) -> Uuid {
    Uuid([n; 16])
}

/// Run each replica's script with its own clock; syncs pull deltas from another replica.
fn run(scripts: &[Vec<(u64, Action)>; 3]) -> Vec<CollectionState> {
    let mut states: Vec<CollectionState> = (0..3).map(|_| CollectionState::new("c")).collect();
    let mut clocks: Vec<HlcGenerator> = (0..3).map(|r| HlcGenerator::new(r as u64 + 1)).collect();
    let longest = scripts.iter().map(Vec::len).max().unwrap_or(0);
    for step in 0..longest {
        for r in 0..3 {
            let Some((ms, action)) = scripts[r].get(step) else { continue };
            let kind = match action {
                Action::Add(n) => OpKind::AddFace(face(*n)),
                Action::Remove(n) => OpKind::RemoveFace { face_id: fid(*n) },
                Action::User(u, live) => OpKind::User {
                    user_id: format!("u{u}"),
                    value: UserValue { live: *live, client_request_token: None },
                },
                Action::Associate(f, u) => OpKind::Associate { face_id: fid(*f), user_id: u.map(|u| format!("u{u}")) },
                Action::Meta(live) => {
                    OpKind::Meta(CollectionMeta { live: *live, face_model_version: "v".into(), created_millis: *ms })
                }
                Action::Sync(from) => {
                    let from = *from as usize % 3;
                    if from != r {
                        // As apply_changes does: the receiver's version comes from what it applies.
                        let ops = states[from].ops_since(&states[r].version);
                        for op in &ops {
                            clocks[r].observe(op.stamp);
                            states[r].apply(op);
                        }
                    }
                    continue;
                }
            };
            let stamp = clocks[r].tick(*ms).unwrap();
            states[r].apply(&Op { stamp, kind });
        }
    }
    states
}

fn full_ops(s: &CollectionState) -> Vec<Op> {
    s.ops_since(&VersionVector::default())
}

fn scripts() -> impl Strategy<Value = [Vec<(u64, Action)>; 3]> {
    let script = || proptest::collection::vec(((0u64..50), action()), 0..25);
    (script(), script(), script()).prop_map(|(a, b, c)| [a, b, c])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn merging_in_every_order_converges(scripts in scripts()) {
        let replicas = run(&scripts);
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let merged: Vec<CollectionState> = orders.iter().map(|order| {
            let mut s = CollectionState::new("c");
            for &i in order { s.merge(&replicas[i]); }
            s
        }).collect();
        for m in &merged[1..] {
            prop_assert_eq!(full_ops(m), full_ops(&merged[0]));
            prop_assert_eq!(m.visible_summary(), merged[0].visible_summary());
            prop_assert_eq!(&m.version, &merged[0].version);
        }
        // Idempotent: merging again changes nothing.
        let mut again = merged[0].clone();
        for r in &replicas { again.merge(r); }
        prop_assert_eq!(full_ops(&again), full_ops(&merged[0]));
        // Pairwise merges associate: (a+b)+c == a+(b+c).
        let mut ab = replicas[0].clone(); ab.merge(&replicas[1]); ab.merge(&replicas[2]);
        let mut bc = replicas[1].clone(); bc.merge(&replicas[2]);
        let mut a_bc = replicas[0].clone(); a_bc.merge(&bc);
        prop_assert_eq!(full_ops(&ab), full_ops(&a_bc));
        // Deltas: catching replica 0 up from what it lacks equals a full merge.
        let mut caught_up = replicas[0].clone();
        for op in merged[0].ops_since(&replicas[0].version) { caught_up.apply(&op); }
        prop_assert_eq!(caught_up.visible_summary(), merged[0].visible_summary());
        // No lost face: every face some replica added, and no replica removed or cleared, survives.
        let cleared = merged[0].cleared_at;
        for r in &replicas {
            for e in r.face_entries() {
                let removed_anywhere = replicas.iter().any(|x| x.face_entries().iter().any(|o| o.face_id == e.face_id && o.removed.is_some()));
                let cleared_after = cleared.is_some_and(|c| e.added.is_some_and(|a| a <= c));
                if e.added.is_some() && !removed_anywhere && !cleared_after {
                    prop_assert!(merged[0].live_face(&e.face_id).is_some(), "face {} lost", e.face_id);
                }
            }
        }
    }

    #[test]
    fn compaction_keeps_the_visible_state(scripts in scripts()) {
        let replicas = run(&scripts);
        let mut all = CollectionState::new("c");
        for r in &replicas { all.merge(r); }
        // Honest acknowledgements: each replica's own version. Replicas that merge the
        // compacted state still converge with the uncompacted one.
        let mut compacted = all.clone();
        let acks: BTreeMap<u64, VersionVector> =
            replicas.iter().enumerate().map(|(i, r)| (i as u64 + 1, r.version.clone())).collect();
        compacted.compact(&acks).unwrap();
        prop_assert_eq!(compacted.visible_summary(), all.visible_summary());
        for r in &replicas {
            let mut late = r.clone();
            late.merge(&compacted);
            prop_assert_eq!(late.visible_summary(), all.visible_summary());
        }
        // Once every replica has seen everything, no removed face is left.
        let mut full = all.clone();
        let everything: BTreeMap<u64, VersionVector> = (1..=3).map(|r| (r, all.version.clone())).collect();
        full.compact(&everything).unwrap();
        prop_assert_eq!(full.visible_summary(), all.visible_summary());
        prop_assert_eq!(full.tombstone_count(), 0, "no removed face left");
        // A late copy of anything compacted away changes nothing: the floor ignores it.
        let mut replayed = full.clone();
        for r in &replicas {
            for op in full_ops(r) { replayed.apply(&op); }
        }
        prop_assert_eq!(replayed.visible_summary(), all.visible_summary());
        prop_assert_eq!(replayed.tombstone_count(), 0, "no tombstone came back");
        // Without every writer's acknowledgement nothing is dropped.
        let mut partial = all.clone();
        let mut missing = everything.clone();
        if let Some(&w) = all.version.0.keys().next() {
            missing.remove(&w);
            prop_assert_eq!(partial.compact(&missing), Err(CompactionError::MissingAcknowledgement(w)));
            prop_assert_eq!(full_ops(&partial), full_ops(&all));
            prop_assert_eq!(partial.tombstone_count(), all.tombstone_count());
            prop_assert_eq!(&partial.floor, &all.floor);
            prop_assert!(partial.compact(&BTreeMap::new()).is_err(), "an empty list is refused");
        }
    }

    #[test]
    fn a_delete_drops_what_it_covers_and_late_copies_stay_dropped(scripts in scripts()) {
        let replicas = run(&scripts);
        let mut all = CollectionState::new("c");
        for r in &replicas { all.merge(r); }
        if let Some(c) = all.cleared_at {
            // Nothing added, associated or created at or before the delete is kept in memory.
            for e in all.face_entries() {
                prop_assert!(e.added.is_none_or(|a| a > c));
                prop_assert!(e.association.is_none_or(|u| u > c));
                prop_assert!(!e.has_body || e.removed.is_none());
            }
            prop_assert!(all.users.values().all(|u| u.stamp > c));
        }
        // A removed face keeps no body and no association: only its id and stamps.
        let entries = all.face_entries();
        for e in entries.iter().filter(|e| e.removed.is_some()) {
            prop_assert!(!e.has_body && e.association.is_none());
        }
        let removed = |id: &Uuid| entries.iter().any(|e| e.face_id == *id && e.removed.is_some());
        prop_assert!(full_ops(&all).iter().all(|op| !matches!(&op.kind, OpKind::AddFace(f) if removed(&f.face_id))));
    }
}
