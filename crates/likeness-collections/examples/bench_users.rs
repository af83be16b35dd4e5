//! Per-call time of user operations on a collection of 100,000 faces and 10,000 users
//! (9 faces each, 10,000 faces free), 128-d: what a mutation costs once user vectors follow only the users it
//! touches. `cargo run --release -p likeness-collections --example bench_users [FACES USERS RUNS]`
//!
//! The collection is built from one change set (as a synced device would receive it), then
//! each operation runs 15 times (or RUNS, the third argument) on an in-memory engine that keeps no files (so the time is
//! the engine's own), and DeleteFaces once more on a persisting store, where a delete also
//! folds the snapshot so the deleted vectors leave the store. It also reports live heap
//! bytes per stored face (state, indexes, ids; counted by a global allocator) and the
//! snapshot's bytes, which are what a directory store and IndexedDB hold.

use likeness_collections::codec::{self, ChangeKind, ChangeSet};
use likeness_collections::hlc::{Hlc, VersionVector};
use likeness_collections::state::*;
use likeness_collections::*;
use likeness_vision::{BoundingBox, Calibration};
use std::time::Instant;

const DIM: usize = 128;

/// Counts live heap bytes, to report memory per stored face.
struct Counting;
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with the same layout.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}
const NOW: u64 = 1_700_000_000_000;

struct NoFiles;
impl Store for NoFiles {
    async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
        Ok(Vec::new())
    }
    async fn append(&mut self, _: &str, _: &[u8]) -> Result<()> {
        Ok(())
    }
    async fn replace(&mut self, _: &str, _: &[u8]) -> Result<()> {
        Ok(())
    }
    async fn remove(&mut self, _: &str) -> Result<()> {
        Ok(())
    }
    fn persists(&self) -> bool {
        false
    }
}

fn unit(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    likeness_vision::normalize(&mut v);
    v
}

/// A collection of `faces` faces, `users` of them users (0: no users); with `external`, each
/// face has an ExternalImageId as a photo app would set it (a 16-character file name).
fn fixture(faces: usize, users: usize, external: bool) -> (Vec<u8>, Vec<String>) {
    let mut ops = Vec::with_capacity(faces * 2 + users + 1);
    let mut n = 0u32;
    let mut stamp = || {
        n += 1;
        Hlc { millis: NOW - 1_000_000 + (n / 1000) as u64, counter: n % 1000, replica: 9 }
    };
    let meta = CollectionMeta { live: true, face_model_version: "bench-model".into(), created_millis: NOW };
    ops.push(Op { stamp: stamp(), kind: OpKind::Meta(meta) });
    let mut face_ids = Vec::with_capacity(faces);
    for i in 0..faces {
        let s = stamp();
        let id = ids::face_id(s, 0);
        face_ids.push(id.to_string());
        let face = StoredFace {
            face_id: id,
            image_id: ids::image_id("bench", &(i as u64).to_le_bytes()),
            external_image_id: external.then(|| format!("IMG_{:06}.jpeg", i)),
            bounding_box: BoundingBox { width: 0.3, height: 0.4, left: 0.2, top: 0.2 },
            confidence: 99.0,
            vector: likeness_collections::search::quantize(&unit(i as u64 / 10)),
        };
        ops.push(Op { stamp: s, kind: OpKind::AddFace(face) });
    }
    let per_user = if users == 0 { 0 } else { per_user(faces, users) };
    for u in 0..users {
        let user_id = format!("user-{u}");
        let value = UserValue { live: true, client_request_token: None };
        ops.push(Op { stamp: stamp(), kind: OpKind::User { user_id: user_id.clone(), value } });
        for f in &face_ids[u * per_user..(u + 1) * per_user] {
            ops.push(Op {
                stamp: stamp(),
                kind: OpKind::Associate { face_id: ids::Uuid::parse(f).expect("uuid"), user_id: Some(user_id.clone()) },
            });
        }
    }
    let mut version = VersionVector::default();
    ops.iter().for_each(|o| version.observe(o.stamp));
    let cs = ChangeSet {
        kind: ChangeKind::Snapshot,
        collection_id: "bench".into(),
        face_model_version: "bench-model".into(),
        dimension: DIM as u32,
        version,
        ops,
        floor: VersionVector::default(),
    };
    (codec::encode(&cs).expect("encodes"), face_ids)
}

/// Faces per user: all but a tenth of the collection belongs to a user, the rest is free.
fn per_user(faces: usize, users: usize) -> usize {
    (faces / users).saturating_sub(1).max(1)
}

fn median_ms(mut f: impl FnMut(usize), runs: usize) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|i| {
            let s = Instant::now();
            f(i);
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn open<S: Store>(store: S) -> Collections<S> {
    let space =
        VectorSpace { face_model_version: "bench-model".into(), dimension: DIM, calibration: Calibration::default() };
    block_on(Collections::open(store, Box::new(ManualClock::new(NOW)), 1, space)).expect("opens")
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (faces, users) = (args.first().copied().unwrap_or(100_000), args.get(1).copied().unwrap_or(10_000));
    // Memory of faces alone (with ExternalImageIds), then of the users fixture.
    let faces_only_per_face = {
        let (bytes, _) = fixture(faces, 0, true);
        let before = live();
        let mut c = open(NoFiles);
        block_on(c.apply_changes("bench", &bytes)).expect("fixture merges");
        let per_face = (live() - before) as f64 / faces as f64;
        drop(c);
        per_face
    };
    let (bytes, face_ids) = fixture(faces, users, false);
    let before = live();
    let mut c = open(NoFiles);
    let t = Instant::now();
    block_on(c.apply_changes("bench", &bytes)).expect("fixture merges");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let memory_per_face = (live() - before) as f64 / faces as f64;
    let runs = args.get(2).copied().unwrap_or(15);
    let per = per_user(faces, users);
    let free = &face_ids[users * per..];
    let create = median_ms(
        |i| {
            let input =
                UserInput { collection_id: "bench".into(), user_id: format!("new-{i}"), client_request_token: None };
            block_on(c.create_user(&input)).expect("create");
        },
        runs,
    );
    let associate = median_ms(
        |i| {
            let input = AssociateFacesInput {
                collection_id: "bench".into(),
                user_id: format!("new-{i}"),
                face_ids: vec![face_ids[i * per + 1].clone()],
                user_match_threshold: Some(0.0),
                client_request_token: None,
            };
            // Faces already belong to users: this measures the lookup and the refusal.
            block_on(c.associate_faces(&input)).expect("associate");
        },
        runs,
    );
    let disassociate = median_ms(
        |i| {
            let input = DisassociateFacesInput {
                collection_id: "bench".into(),
                user_id: format!("user-{i}"),
                face_ids: vec![face_ids[i * per].clone()],
                client_request_token: None,
            };
            block_on(c.disassociate_faces(&input)).expect("disassociate");
        },
        runs,
    );
    let delete = median_ms(
        |i| {
            // The faces just disassociated: DeleteFaces refuses faces that belong to a user.
            let input = DeleteFacesInput { collection_id: "bench".into(), face_ids: vec![face_ids[i * per].clone()] };
            let out = block_on(c.delete_faces(&input)).expect("delete");
            assert_eq!(out.deleted_faces.len(), 1);
        },
        runs,
    );
    let delete_user = median_ms(
        |i| {
            let input = UserInput {
                collection_id: "bench".into(),
                user_id: format!("user-{}", 100 + i),
                client_request_token: None,
            };
            block_on(c.delete_user(&input)).expect("delete user");
        },
        runs,
    );
    // A persisting store: DeleteFaces also writes a fresh snapshot.
    let mut p = open(MemoryStore::default());
    block_on(p.apply_changes("bench", &bytes)).expect("fixture merges");
    let snapshot_bytes = p.snapshot("bench").expect("snapshot").len();
    let delete_persisted = median_ms(
        |i| {
            let input = DeleteFacesInput {
                collection_id: "bench".into(),
                face_ids: vec![free.get(i).cloned().unwrap_or_else(|| face_ids[0].clone())],
            };
            block_on(p.delete_faces(&input)).expect("delete");
        },
        5.min(free.len().max(1)),
    );
    println!(
        "{{\"faces\": {faces}, \"users\": {users}, \"merge_fixture_ms\": {load_ms:.0}, \"create_user_ms\": {create:.3}, \"associate_faces_ms\": {associate:.3}, \"disassociate_faces_ms\": {disassociate:.3}, \"delete_faces_ms\": {delete:.3}, \"delete_user_ms\": {delete_user:.3}, \"delete_faces_with_fold_ms\": {delete_persisted:.1}, \"snapshot_bytes\": {snapshot_bytes}, \"memory_bytes_per_face_with_users\": {memory_per_face:.0}, \"memory_bytes_per_face_no_users_with_external_ids\": {faces_only_per_face:.0}, \"snapshot_bytes_per_face\": {:.0}, \"index_bytes_per_face\": {}}}",
        snapshot_bytes as f64 / faces as f64,
        c.collection("bench").expect("live").index_bytes_per_face()
    );
}
