//! [`Collections`]: Rekognition's collection operations over a [`Store`].
//!
//! Every operation takes its request type from [`crate::api`] (defaults and limits are
//! resolved here, once), so the CLI, the wasm bindings and a server only dispatch.
//!
//! Every mutation follows one path ([`Collections::commit`]): validate everything, build the
//! operations, write them to the store as one delta, and only then apply them in memory. A
//! call that fails at any step, the store included, changes nothing. A mutation that deletes
//! (DeleteFaces, DeleteUser, DeleteCollection, or a merge that removes) folds the store into
//! a fresh snapshot at once, so no file or IndexedDB record keeps what was deleted.
//!
//! Image work needs no collection state: [`prepare_index_faces`] and [`prepare_search`]
//! detect, select, and embed only the faces the operation will use, before any lock is
//! taken; the `*_prepared` operations then take the result. `*_image` does both in one call.
//!
//! Change sets from other replicas ([`Collections::apply_changes`]) are input like any
//! other: the collection must be the one the caller expects, every id, vector, stamp and
//! FaceModelVersion is checked, and nothing is applied unless all of it passes.

use crate::api::*;
use crate::codec::{self, ChangeKind, ChangeSet};
use crate::error::{invalid, CollectionError, Result};
use crate::hlc::{check_drift, Clock, Hlc, HlcGenerator, ReplicaId, VersionVector};
use crate::ids::{self, Uuid};
use crate::paging;
use crate::search::{is_canonical, quantize, VectorIndex};
use crate::state::{CollectionMeta, CollectionState, FaceView, Op, OpKind, StoredFace, UserValue};
use crate::store::Store;
#[cfg(feature = "vision")]
use likeness_vision::FaceEngine;
use likeness_vision::{
    AnalyzedImage, Calibration, EmbeddedFace, FaceDetail, ImageInput, OrientationCorrection, QualityFilter,
    QualityReason,
};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// Rekognition's limits.
pub mod limits {
    pub const MAX_LIST_RESULTS: u32 = 4096;
    pub const DEFAULT_LIST_RESULTS: u32 = 1000;
    pub const MAX_LIST_USERS: u32 = 500;
    pub const MAX_DELETE_FACES: usize = 4096;
    pub const MAX_ASSOCIATE_FACES: usize = 100;
    pub const MAX_FACES_PER_USER: usize = 100;
    pub const MAX_SEARCH_FACES: u32 = 4096;
    pub const DEFAULT_SEARCH_FACES: u32 = 80;
    pub const MAX_SEARCH_USERS: u32 = 500;
    pub const DEFAULT_SEARCH_USERS: u32 = 80;
    pub const DEFAULT_FACE_MATCH_THRESHOLD: f32 = 80.0;
    pub const DEFAULT_USER_MATCH_THRESHOLD: f32 = 80.0;
    pub const DEFAULT_ASSOCIATE_THRESHOLD: f32 = 75.0;
}
use limits::*;

/// One collection in memory: its CRDT state (which holds the visible faces' vectors as the
/// rows search scans) and the index of user vectors.
#[derive(Debug, Clone)]
pub struct Collection {
    pub state: CollectionState,
    users: VectorIndex,
    delta_bytes: usize,
    snapshot_bytes: usize,
    /// A deletion reached the store as a delta: fold before anything else, so the deleted
    /// data leaves the store's files.
    fold_pending: bool,
}

impl Collection {
    fn new(state: CollectionState, dim: usize) -> Self {
        let mut c =
            Collection { state, users: VectorIndex::new(dim), delta_bytes: 0, snapshot_bytes: 0, fold_pending: false };
        c.rebuild_users();
        c
    }

    /// User vector: the normalised mean of the user's (unit) face vectors. Measured on
    /// lfw-dev against single faces and best-of (see README), the mean identifies best.
    fn user_vector(&self, user_id: &str) -> Option<Vec<f32>> {
        let mut mean = vec![0.0f32; self.users.dim()];
        let n = self.state.sum_user_vectors(user_id, &mut mean);
        (n > 0).then(|| {
            likeness_vision::normalize(&mut mean);
            mean
        })
    }

    fn refresh_user(&mut self, user_id: &str) {
        match self.state.user_live(user_id).then(|| self.user_vector(user_id)).flatten() {
            Some(v) => {
                self.users.insert(user_id, &v);
            }
            None => {
                self.users.remove(user_id);
            }
        }
    }

    fn rebuild_users(&mut self) {
        self.users = VectorIndex::new(self.users.dim());
        let ids: Vec<String> = self.state.live_users().map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.refresh_user(&id);
        }
    }

    /// Apply operations to the state and both indexes. User vectors are recomputed only for
    /// the users an operation touches (a collection delete rebuilds them all).
    fn apply(&mut self, ops: &[Op]) {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut all_users = false;
        for op in ops {
            match self.state.users_touched_by(op) {
                Some(users) => touched.extend(users),
                None => all_users = true,
            }
            self.state.apply(op);
            if let Some(users) = self.state.users_touched_by(op) {
                touched.extend(users);
            }
        }
        if all_users {
            self.rebuild_users();
        } else {
            for u in touched {
                self.refresh_user(&u);
            }
        }
    }

    fn user_status(&self, user_id: &str) -> UserStatus {
        if self.state.user_faces(user_id).is_empty() {
            UserStatus::Created
        } else {
            UserStatus::Active
        }
    }

    /// Number of visible faces.
    pub fn face_count(&self) -> usize {
        self.state.faces.len()
    }

    /// Bytes of search memory per face (vector rows only).
    pub fn index_bytes_per_face(&self) -> usize {
        self.state.faces.vectors().bytes_per_row()
    }
}

/// Where the engine's vectors come from and how they compare.
#[derive(Debug, Clone)]
pub struct VectorSpace {
    pub face_model_version: String,
    pub dimension: usize,
    pub calibration: Calibration,
}

impl VectorSpace {
    #[cfg(feature = "vision")]
    pub fn of(engine: &FaceEngine) -> Self {
        VectorSpace {
            face_model_version: engine.face_model_version().to_string(),
            dimension: engine.dimension(),
            calibration: engine.calibration().clone(),
        }
    }
}

/// An image's faces as one operation needs them: embedded where it uses their vectors,
/// described otherwise. Made by [`prepare_index_faces`] or [`prepare_search`] without any
/// collection state, so callers make it before taking a lock.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The image's ImageId in the collection it is prepared for.
    pub image_id: String,
    pub orientation_correction: OrientationCorrection,
    pub face_model_version: String,
    /// Faces the operation uses, embedded. IndexFaces: the faces it will store;
    /// searches: the largest face (none when the image has no face).
    pub embedded: Vec<EmbeddedFace>,
    /// Faces it does not use, with the reasons (IndexFaces' UnindexedFaces; for
    /// SearchUsersByImage, every face but the largest, with no quality reason).
    pub skipped: Vec<(FaceDetail, Vec<QualityReason>)>,
}

/// Which faces IndexFaces stores: those that pass the filter, at most `max_faces`, dropping
/// the lowest quality first (most HIGH-bar shortfalls), then the smallest. Returns the
/// chosen indexes, in the order they are stored, and the others with reasons.
fn select_for_index(
    faces: &[(&FaceDetail, f32)],
    filter: QualityFilter,
    max_faces: usize,
) -> (Vec<usize>, Vec<(FaceDetail, Vec<QualityReason>)>) {
    let reasons = |i: usize, f: QualityFilter| {
        let (d, size) = faces[i];
        likeness_vision::quality_reasons(d.confidence, &d.quality, &d.pose, size, f)
    };
    let mut skipped = Vec::new();
    let mut passing = Vec::new();
    for (i, (detail, _)) in faces.iter().enumerate() {
        let r = reasons(i, filter);
        if r.is_empty() {
            passing.push(i);
        } else {
            skipped.push(((*detail).clone(), r));
        }
    }
    passing.sort_by(|&a, &b| faces[b].1.total_cmp(&faces[a].1));
    passing.sort_by_cached_key(|&i| reasons(i, QualityFilter::High).len());
    for &i in passing.iter().skip(max_faces) {
        skipped.push((faces[i].0.clone(), vec![QualityReason::ExceedsMaxFaces]));
    }
    passing.truncate(max_faces);
    (passing, skipped)
}

/// IndexFaces' MaxFaces (default 100, 1 to 4096) and QualityFilter (default AUTO).
fn index_limits(input: &IndexFacesInput) -> Result<(usize, QualityFilter)> {
    let max_faces = input.max_faces.unwrap_or(100);
    check_range("MaxFaces", max_faces, 1, 4096)?;
    Ok((max_faces as usize, input.quality_filter.unwrap_or_default()))
}

/// The image half of IndexFaces: decode, detect, choose the faces to store, and embed only
/// those.
#[cfg(feature = "vision")]
pub fn prepare_index_faces(
    engine: &FaceEngine,
    input: &IndexFacesInput,
    image: ImageInput<'_>,
) -> Result<PreparedImage> {
    ids::check_collection_id(&input.collection_id)?;
    let (max_faces, filter) = index_limits(input)?;
    let image_id = image_id_of(&input.collection_id, image);
    let decoded = likeness_vision::decode(image)?;
    let located = engine.locate(&decoded.image)?;
    let sized: Vec<(&FaceDetail, f32)> = located.iter().map(|f| (&f.detail, f.size_pixels())).collect();
    let (chosen, skipped) = select_for_index(&sized, filter, max_faces);
    let embedded = chosen
        .iter()
        .map(|&i| engine.embed(&decoded.image, &located[i]))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(PreparedImage {
        image_id,
        orientation_correction: decoded.orientation_correction,
        face_model_version: engine.face_model_version().to_string(),
        embedded,
        skipped,
    })
}

/// The image half of SearchFacesByImage and SearchUsersByImage: detect, and embed only the
/// largest face. The others are kept as descriptions when `describe_others` (UnsearchedFaces).
#[cfg(feature = "vision")]
pub fn prepare_search(engine: &FaceEngine, image: ImageInput<'_>, describe_others: bool) -> Result<PreparedImage> {
    let decoded = likeness_vision::decode(image)?;
    let located = engine.locate(&decoded.image)?;
    let embedded = located.first().map(|f| engine.embed(&decoded.image, f)).transpose()?.into_iter().collect();
    let skipped = if describe_others {
        located.iter().skip(1).map(|f| (f.detail.clone(), Vec::new())).collect()
    } else {
        Vec::new()
    };
    Ok(PreparedImage {
        image_id: String::new(),
        orientation_correction: decoded.orientation_correction,
        face_model_version: engine.face_model_version().to_string(),
        embedded,
        skipped,
    })
}

impl PreparedImage {
    /// IndexFaces' view of faces that were all embedded already (tests, callers that analyse
    /// themselves): the same selection [`prepare_index_faces`] makes.
    ///
    /// `image_id` is the image's ImageId, or any other key for the image (a file name, a
    /// content hash), from which an ImageId is derived per collection.
    pub fn for_index(input: &IndexFacesInput, image_id: &str, analyzed: AnalyzedImage) -> Result<Self> {
        let (max_faces, filter) = index_limits(input)?;
        let sized: Vec<(&FaceDetail, f32)> = analyzed.faces.iter().map(|f| (&f.detail, f.size_pixels)).collect();
        let (chosen, skipped) = select_for_index(&sized, filter, max_faces);
        let mut faces: Vec<Option<EmbeddedFace>> = analyzed.faces.into_iter().map(Some).collect();
        let embedded = chosen.iter().filter_map(|&i| faces[i].take()).collect();
        let image_id =
            Uuid::parse(image_id).unwrap_or_else(|| ids::image_id(&input.collection_id, image_id.as_bytes()));
        Ok(PreparedImage {
            image_id: image_id.to_string(),
            orientation_correction: analyzed.orientation_correction,
            face_model_version: analyzed.face_model_version,
            embedded,
            skipped,
        })
    }

    /// A search's view of analysed faces (largest first): the largest is searched.
    pub fn for_search(analyzed: AnalyzedImage) -> Self {
        let mut faces = analyzed.faces.into_iter();
        let embedded = faces.next().into_iter().collect();
        PreparedImage {
            image_id: String::new(),
            orientation_correction: analyzed.orientation_correction,
            face_model_version: analyzed.face_model_version,
            embedded,
            skipped: faces.map(|f| (f.detail, Vec::new())).collect(),
        }
    }
}

/// All collections of one replica, persisted in `S`.
pub struct Collections<S: Store> {
    store: S,
    clock: Box<dyn Clock>,
    hlc: HlcGenerator,
    space: VectorSpace,
    collections: BTreeMap<String, Collection>,
}

fn check_range(name: &str, v: u32, min: u32, max: u32) -> Result<()> {
    if v < min || v > max {
        return Err(invalid(format!("{name} must be between {min} and {max}, got {v}")));
    }
    Ok(())
}

/// `value` or its default, checked against 1..=max.
fn limit(name: &str, value: Option<u32>, default: u32, max: u32) -> Result<u32> {
    let v = value.unwrap_or(default);
    check_range(name, v, 1, max)?;
    Ok(v)
}

/// A similarity threshold or its default, checked against 0..=100.
fn threshold(name: &str, value: Option<f32>, default: f32) -> Result<f32> {
    let v = value.unwrap_or(default);
    if !(0.0..=100.0).contains(&v) {
        return Err(invalid(format!("{name} must be between 0 and 100, got {v}")));
    }
    Ok(v)
}

/// The searched (largest) face must pass the request's QualityFilter (default NONE).
fn check_searched_face(face: &EmbeddedFace, quality_filter: Option<QualityFilter>) -> Result<()> {
    let reasons = face.quality_reasons(quality_filter.unwrap_or(QualityFilter::None));
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!("the largest face does not pass the quality filter: {reasons:?}")))
    }
}

/// A FaceIds parameter: 1 to `max` UUIDs. Returns them deduplicated, in request order.
fn check_face_ids(face_ids: &[String], max: usize) -> Result<Vec<Uuid>> {
    if face_ids.is_empty() || face_ids.len() > max {
        return Err(invalid(format!("FaceIds must list 1 to {max} ids, got {}", face_ids.len())));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(face_ids.len());
    for id in face_ids {
        let id = ids::parse_face_id(id)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn check_token(token: Option<&str>) -> Result<()> {
    token.map(ids::check_client_request_token).transpose().map(|_| ())
}

/// Fold each stored collection's snapshot and deltas into memory (deltas commute, so their
/// order does not matter), advancing `hlc` past every stamp seen. The store is this
/// replica's own: change sets from elsewhere were validated before they were written.
async fn load_all<S: Store>(store: &mut S, hlc: &mut HlcGenerator, dim: usize) -> Result<BTreeMap<String, Collection>> {
    let mut collections = BTreeMap::new();
    for persisted in store.load().await? {
        let mut state = CollectionState::new(&persisted.collection_id);
        let mut snapshot_bytes = 0;
        let mut delta_bytes = 0;
        let parts = persisted.snapshot.iter().map(|s| (s, true)).chain(persisted.deltas.iter().map(|d| (d, false)));
        for (bytes, is_snapshot) in parts {
            let cs = codec::decode(bytes)?;
            if cs.collection_id != persisted.collection_id {
                return Err(CollectionError::InvalidSnapshot(format!(
                    "stored change set for {:?} names collection {:?}",
                    persisted.collection_id, cs.collection_id
                )));
            }
            // Everything in the store was written by this replica (foreign change sets are
            // re-encoded with a derived version before they are stored), so its version
            // vectors and floors are trusted.
            state.version.merge(&cs.version);
            if is_snapshot {
                state.floor.merge(&cs.floor);
                snapshot_bytes = bytes.len();
            } else {
                delta_bytes += bytes.len();
            }
            for op in &cs.ops {
                state.apply(op);
                hlc.observe(op.stamp);
            }
        }
        let mut c = Collection::new(state, dim);
        c.snapshot_bytes = snapshot_bytes;
        c.delta_bytes = delta_bytes;
        collections.insert(persisted.collection_id.clone(), c);
    }
    Ok(collections)
}

fn arn(id: &str) -> String {
    format!("arn:likeness:rekognition:local:collection/{id}")
}

/// Whether `ops` delete data (faces, users, or a whole collection) that must then leave
/// the store.
fn deletes(ops: &[Op]) -> bool {
    ops.iter().any(|op| match &op.kind {
        OpKind::RemoveFace { .. } => true,
        OpKind::Meta(m) => !m.live,
        OpKind::User { value, .. } => !value.live,
        _ => false,
    })
}

fn bad_change(msg: String) -> CollectionError {
    CollectionError::InvalidSnapshot(msg)
}

/// Everything a change set from elsewhere must satisfy before any of it is applied.
fn check_foreign(cs: &ChangeSet, expected: &str, space: &VectorSpace, now_millis: u64) -> Result<()> {
    if cs.collection_id != expected {
        return Err(bad_change(format!("the change set is for collection {:?}, not {expected:?}", cs.collection_id)));
    }
    if cs.dimension as usize != space.dimension || cs.face_model_version != space.face_model_version {
        return Err(bad_change(format!(
            "change set holds {}-d vectors of {}; this engine uses {}-d vectors of {}",
            cs.dimension, cs.face_model_version, space.dimension, space.face_model_version
        )));
    }
    let field = |e: CollectionError| bad_change(format!("an operation holds a bad value: {}", e.message()));
    for op in &cs.ops {
        check_drift(op.stamp, now_millis).map_err(|e| CollectionError::ClockSkew(e.to_string()))?;
        match &op.kind {
            OpKind::Meta(m) => {
                if m.face_model_version != space.face_model_version {
                    return Err(bad_change(format!(
                        "an operation sets FaceModelVersion {:?}; the collection's is {:?}",
                        m.face_model_version, space.face_model_version
                    )));
                }
            }
            OpKind::AddFace(f) => {
                // FaceIds and ImageIds are binary UUIDs: every value is well formed.
                if let Some(x) = &f.external_image_id {
                    ids::check_external_image_id(x).map_err(field)?;
                }
                let b = f.bounding_box;
                let in_range = |v: f32, lo: f32, hi: f32| v.is_finite() && (lo..=hi).contains(&v);
                if !(in_range(b.width, 0.0, 2.0)
                    && in_range(b.height, 0.0, 2.0)
                    && in_range(b.left, -1.0, 2.0)
                    && in_range(b.top, -1.0, 2.0)
                    && in_range(f.confidence, 0.0, 100.0))
                {
                    return Err(bad_change(format!(
                        "face {} has a bounding box or confidence out of range",
                        f.face_id
                    )));
                }
                // Canonical codes always stand for a unit vector (search.rs).
                if f.vector.len() != space.dimension || !is_canonical(&f.vector) {
                    return Err(bad_change(format!(
                        "face {} does not hold a {}-d unit vector",
                        f.face_id, space.dimension
                    )));
                }
            }
            OpKind::RemoveFace { .. } => {}
            OpKind::User { user_id, value } => {
                ids::check_user_id(user_id).map_err(field)?;
                check_token(value.client_request_token.as_deref()).map_err(field)?;
            }
            OpKind::Associate { user_id, .. } => {
                if let Some(u) = user_id {
                    ids::check_user_id(u).map_err(field)?;
                }
            }
        }
    }
    Ok(())
}

impl<S: Store> Collections<S> {
    /// Load every collection from `store`. A corrupt snapshot or delta fails the whole open
    /// with a typed error rather than silently dropping data.
    pub async fn open(mut store: S, clock: Box<dyn Clock>, replica: ReplicaId, space: VectorSpace) -> Result<Self> {
        let mut hlc = HlcGenerator::new(replica);
        let collections = load_all(&mut store, &mut hlc, space.dimension).await?;
        Ok(Collections { store, clock, hlc, space, collections })
    }

    /// Re-read every collection from the store, replacing what is in memory.
    ///
    /// For stores shared with another writer (two browser tabs on one IndexedDB, two
    /// processes on one directory): every change this instance made was persisted before it
    /// was applied, so the store holds a superset of memory and reloading loses nothing. On
    /// error, memory is left as it was.
    pub async fn reload(&mut self) -> Result<()> {
        let mut hlc = self.hlc.clone();
        let collections = load_all(&mut self.store, &mut hlc, self.space.dimension).await?;
        self.hlc = hlc;
        self.collections = collections;
        Ok(())
    }

    /// Reload if another writer changed the store since this instance last read or wrote it.
    pub async fn refresh(&mut self) -> Result<()> {
        if self.store.changed_elsewhere().await? {
            self.reload().await?;
        }
        Ok(())
    }

    pub fn replica(&self) -> ReplicaId {
        self.hlc.replica()
    }

    pub fn space(&self) -> &VectorSpace {
        &self.space
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// A live collection, or ResourceNotFoundException.
    pub fn collection(&self, id: &str) -> Result<&Collection> {
        ids::check_collection_id(id)?;
        self.collections
            .get(id)
            .filter(|c| c.state.is_live())
            .ok_or_else(|| CollectionError::ResourceNotFound(format!("collection {id} does not exist")))
    }

    fn stamp(&mut self) -> Result<Hlc> {
        let now = self.clock.now_millis();
        self.hlc.tick(now).map_err(|e| CollectionError::Internal(e.to_string()))
    }

    /// `n` fresh stamps, or none (a call that cannot stamp all its operations stamps none).
    fn stamps(&mut self, n: usize) -> Result<Vec<Hlc>> {
        let saved = self.hlc.clone();
        let out: Result<Vec<Hlc>> = (0..n).map(|_| self.stamp()).collect();
        if out.is_err() {
            self.hlc = saved;
        }
        out
    }

    /// A delta of `ops` with a version vector covering exactly them.
    fn delta(&self, collection_id: &str, ops: Vec<Op>) -> ChangeSet {
        let mut version = VersionVector::default();
        ops.iter().for_each(|o| version.observe(o.stamp));
        ChangeSet {
            kind: ChangeKind::Delta,
            collection_id: collection_id.to_string(),
            face_model_version: self.space.face_model_version.clone(),
            dimension: self.space.dimension as u32,
            version,
            ops,
            floor: VersionVector::default(),
        }
    }

    /// Persist `ops` as one delta, then apply them. Nothing changes if the store fails.
    async fn commit(&mut self, collection_id: &str, ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let cs = self.delta(collection_id, ops);
        let bytes = codec::encode(&cs)?;
        self.store.append(collection_id, &bytes).await?;
        let ops = cs.ops;
        let dim = self.space.dimension;
        let c = self
            .collections
            .entry(collection_id.to_string())
            .or_insert_with(|| Collection::new(CollectionState::new(collection_id), dim));
        c.apply(&ops);
        c.delta_bytes += bytes.len();
        c.fold_pending |= deletes(&ops);
        self.maybe_snapshot(collection_id).await;
        Ok(())
    }

    /// Fold deltas into a snapshot once they outgrow half of it (amortised O(change)), and
    /// at once after a deletion. A failure here loses nothing: the deltas stay and the next
    /// commit tries again.
    async fn maybe_snapshot(&mut self, collection_id: &str) {
        if !self.store.persists() {
            return;
        }
        let Some(c) = self.collections.get(collection_id) else { return };
        if !c.fold_pending && c.delta_bytes < (c.snapshot_bytes / 2).max(64 * 1024) {
            return;
        }
        let Ok(bytes) = self.encode_snapshot(collection_id) else { return };
        if self.store.replace(collection_id, &bytes).await.is_ok() {
            if let Some(c) = self.collections.get_mut(collection_id) {
                c.snapshot_bytes = bytes.len();
                c.delta_bytes = 0;
                c.fold_pending = false;
            }
        }
    }

    fn encode_snapshot(&self, collection_id: &str) -> Result<Vec<u8>> {
        let collection = self.collections.get(collection_id);
        let state = collection.map(|c| &c.state);
        codec::encode(&ChangeSet {
            kind: ChangeKind::Snapshot,
            collection_id: collection_id.to_string(),
            face_model_version: state
                .and_then(|s| s.face_model_version())
                .unwrap_or(&self.space.face_model_version)
                .to_string(),
            dimension: self.space.dimension as u32,
            version: state.map(|s| s.version.clone()).unwrap_or_default(),
            ops: state.map(|s| s.ops_since(&VersionVector::default())).unwrap_or_default(),
            floor: state.map(|s| s.floor.clone()).unwrap_or_default(),
        })
    }

    // ---- collections -------------------------------------------------------------------

    pub async fn create_collection(&mut self, input: &CreateCollectionInput) -> Result<CreateCollectionOutput> {
        let collection_id = input.collection_id.as_str();
        ids::check_collection_id(collection_id)?;
        if self.collections.get(collection_id).is_some_and(|c| c.state.is_live()) {
            return Err(CollectionError::ResourceAlreadyExists(format!("collection {collection_id} already exists")));
        }
        let stamp = self.stamp()?;
        let meta = CollectionMeta {
            live: true,
            face_model_version: self.space.face_model_version.clone(),
            created_millis: stamp.millis,
        };
        self.commit(collection_id, vec![Op { stamp, kind: OpKind::Meta(meta) }]).await?;
        Ok(CreateCollectionOutput {
            status_code: 200,
            collection_arn: arn(collection_id),
            face_model_version: self.space.face_model_version.clone(),
        })
    }

    /// Deletes the collection: its faces and users are gone from memory and from the store
    /// at once, and the deletion replicates.
    pub async fn delete_collection(&mut self, input: &DeleteCollectionInput) -> Result<DeleteCollectionOutput> {
        let collection_id = input.collection_id.as_str();
        let version = self.collection(collection_id)?.state.face_model_version().unwrap_or_default().to_string();
        let stamp = self.stamp()?;
        let meta = CollectionMeta { live: false, face_model_version: version, created_millis: 0 };
        self.commit(collection_id, vec![Op { stamp, kind: OpKind::Meta(meta) }]).await?;
        Ok(DeleteCollectionOutput { status_code: 200 })
    }

    pub fn describe_collection(&self, input: &DescribeCollectionInput) -> Result<DescribeCollectionOutput> {
        let c = self.collection(&input.collection_id)?;
        let meta = c.state.meta.as_ref().map(|m| m.value.clone());
        Ok(DescribeCollectionOutput {
            face_count: c.state.faces.len() as u64,
            user_count: c.state.live_users().count() as u64,
            face_model_version: meta.as_ref().map(|m| m.face_model_version.clone()).unwrap_or_default(),
            collection_arn: arn(&input.collection_id),
            creation_timestamp: meta.map_or(0.0, |m| m.created_millis as f64 / 1000.0),
        })
    }

    pub fn list_collections(&self, input: &ListCollectionsInput) -> Result<ListCollectionsOutput> {
        let max = limit("MaxResults", input.max_results, DEFAULT_LIST_RESULTS, MAX_LIST_RESULTS)?;
        let live = self.collections.iter().filter(|(_, c)| c.state.is_live());
        let (page, next_token) = paging::page(
            "collections",
            "",
            live.map(|(id, c)| {
                (id.as_str(), (id.clone(), c.state.face_model_version().unwrap_or_default().to_string()))
            }),
            input.next_token.as_deref(),
            max as usize,
        )?;
        let (collection_ids, face_model_versions) = page.into_iter().unzip();
        Ok(ListCollectionsOutput { collection_ids, face_model_versions, next_token })
    }

    // ---- faces -------------------------------------------------------------------------

    fn check_space(&self, c: &Collection, analyzed_version: &str) -> Result<()> {
        let v = c.state.face_model_version().unwrap_or_default();
        if v != analyzed_version || v != self.space.face_model_version {
            return Err(invalid(format!(
                "collection {} holds vectors of face model {v}; this engine makes {}",
                c.state.id, self.space.face_model_version
            )));
        }
        Ok(())
    }

    fn face_of(&self, c: &Collection, f: &FaceView<'_>) -> Face {
        Face {
            face_id: f.face_id.to_string(),
            bounding_box: f.bounding_box,
            image_id: f.image_id.to_string(),
            external_image_id: f.external_image_id.map(str::to_string),
            confidence: f.confidence,
            index_faces_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
            user_id: c.state.row_user(f.row).map(str::to_string),
        }
    }

    /// IndexFaces from image bytes or pixels: [`prepare_index_faces`] then
    /// [`index_faces_prepared`](Self::index_faces_prepared).
    #[cfg(feature = "vision")]
    pub async fn index_faces_image(
        &mut self,
        engine: &FaceEngine,
        input: &IndexFacesInput,
        image: ImageInput<'_>,
    ) -> Result<IndexFacesOutput> {
        self.collection(&input.collection_id)?;
        let prepared = prepare_index_faces(engine, input, image)?;
        self.index_faces_prepared(input, prepared).await
    }

    /// IndexFaces from faces the caller analysed (all embedded, largest first) of the image
    /// `image_id` (an ImageId, or a key an ImageId is derived from: [`PreparedImage::for_index`]).
    pub async fn index_faces_analyzed(
        &mut self,
        input: &IndexFacesInput,
        image_id: &str,
        analyzed: AnalyzedImage,
    ) -> Result<IndexFacesOutput> {
        let prepared = PreparedImage::for_index(input, image_id, analyzed)?;
        self.index_faces_prepared(input, prepared).await
    }

    /// IndexFaces from a [`PreparedImage`]: stores its embedded faces.
    pub async fn index_faces_prepared(
        &mut self,
        input: &IndexFacesInput,
        prepared: PreparedImage,
    ) -> Result<IndexFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        self.check_space(c, &prepared.face_model_version)?;
        if let Some(x) = &input.external_image_id {
            ids::check_external_image_id(x)?;
        }
        index_limits(input)?;
        if prepared.embedded.iter().any(|f| f.embedding.len() != self.space.dimension) {
            return Err(invalid(format!("face vectors must have {} values", self.space.dimension)));
        }
        let image_id = Uuid::parse(&prepared.image_id)
            .ok_or_else(|| invalid(format!("ImageId {:?} is not a lowercase UUID", prepared.image_id)))?;

        // The same image with the same ExternalImageId was indexed before: return those faces.
        let existing: Vec<FaceView<'_>> = c
            .state
            .live_faces()
            .filter(|f| f.image_id == image_id && f.external_image_id == input.external_image_id.as_deref())
            .collect();
        if !existing.is_empty() {
            let details: Vec<&FaceDetail> =
                prepared.embedded.iter().map(|f| &f.detail).chain(prepared.skipped.iter().map(|(d, _)| d)).collect();
            let face_records = existing
                .iter()
                .map(|f| FaceRecord { face: self.face_of(c, f), face_detail: nearest_detail(&details, f) })
                .collect();
            return Ok(IndexFacesOutput {
                face_records,
                orientation_correction: prepared.orientation_correction,
                face_model_version: self.space.face_model_version.clone(),
                unindexed_faces: Vec::new(),
            });
        }

        let unindexed_faces =
            prepared.skipped.into_iter().map(|(face_detail, reasons)| UnindexedFace { reasons, face_detail }).collect();
        let stamps = self.stamps(prepared.embedded.len())?;
        let mut ops = Vec::new();
        let mut face_records = Vec::new();
        let version = self.space.face_model_version.clone();
        for (i, (f, stamp)) in prepared.embedded.into_iter().zip(stamps).enumerate() {
            let vector = quantize(&f.embedding);
            if !is_canonical(&vector) {
                return Err(invalid("a face vector has no direction (all zeros or not finite)"));
            }
            let stored = StoredFace {
                face_id: ids::face_id(stamp, i),
                image_id,
                external_image_id: input.external_image_id.clone(),
                bounding_box: f.detail.bounding_box,
                confidence: f.detail.confidence,
                vector,
            };
            face_records.push(FaceRecord {
                face: Face {
                    face_id: stored.face_id.to_string(),
                    bounding_box: stored.bounding_box,
                    image_id: stored.image_id.to_string(),
                    external_image_id: stored.external_image_id.clone(),
                    confidence: stored.confidence,
                    index_faces_model_version: version.clone(),
                    user_id: None,
                },
                face_detail: f.detail,
            });
            ops.push(Op { stamp, kind: OpKind::AddFace(stored) });
        }
        self.commit(&input.collection_id, ops).await?;
        Ok(IndexFacesOutput {
            face_records,
            orientation_correction: prepared.orientation_correction,
            face_model_version: version,
            unindexed_faces,
        })
    }

    pub fn list_faces(&self, input: &ListFacesInput) -> Result<ListFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        let max = limit("MaxResults", input.max_results, DEFAULT_LIST_RESULTS, MAX_LIST_RESULTS)?;
        if let Some(u) = &input.user_id {
            ids::check_user_id(u)?;
        }
        // FaceIds order as their lowercase text does, so binary ids page like Rekognition's.
        let after = match input.next_token.as_deref() {
            Some(t) => {
                let key = paging::decode("faces", &input.collection_id, t)?;
                Some(Uuid::parse(&key).ok_or_else(|| invalid("NextToken does not hold a FaceId"))?)
            }
            None => None,
        };
        // The table is unordered: one pass keeps the `max + 1` smallest FaceIds past the
        // token, so a page costs O(faces) without sorting the collection.
        let keep = max as usize + 1;
        let mut best: BinaryHeap<(Uuid, usize)> = BinaryHeap::with_capacity(keep + 1);
        let mut consider = |id: Uuid, row: usize| {
            if after.is_some_and(|a| id <= a) {
                return;
            }
            if best.len() < keep {
                best.push((id, row));
            } else if best.peek().is_some_and(|(top, _)| id < *top) {
                best.pop();
                best.push((id, row));
            }
        };
        let user_ok = |row: usize| input.user_id.as_deref().is_none_or(|u| c.state.row_user(row) == Some(u));
        match &input.face_ids {
            Some(list) => {
                for id in check_face_ids(list, MAX_DELETE_FACES)? {
                    if let Some(row) = c.state.faces.row_of(&id).filter(|&r| user_ok(r)) {
                        consider(id, row);
                    }
                }
            }
            None => {
                for row in (0..c.state.faces.len()).filter(|&r| user_ok(r)) {
                    consider(c.state.faces.id(row), row);
                }
            }
        }
        let mut page = best.into_sorted_vec();
        let next_token = if page.len() > max as usize {
            page.truncate(max as usize);
            page.last().map(|(id, _)| paging::encode("faces", &input.collection_id, &id.to_string()))
        } else {
            None
        };
        Ok(ListFacesOutput {
            faces: page.into_iter().map(|(_, row)| self.face_of(c, &c.state.faces.view(row))).collect(),
            next_token,
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    /// DeleteFaces: the faces' vectors and metadata are gone from memory and the store at once.
    pub async fn delete_faces(&mut self, input: &DeleteFacesInput) -> Result<DeleteFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        let face_ids = check_face_ids(&input.face_ids, MAX_DELETE_FACES)?;
        let mut deleted = Vec::new();
        let mut unsuccessful = Vec::new();
        for id in face_ids {
            if c.state.live_face(&id).is_none() {
                unsuccessful.push(UnsuccessfulFaceDeletion {
                    face_id: id.to_string(),
                    user_id: None,
                    reasons: vec![DeletionFailureReason::FaceNotFound],
                });
            } else if let Some(u) = c.state.face_user(&id) {
                unsuccessful.push(UnsuccessfulFaceDeletion {
                    face_id: id.to_string(),
                    user_id: Some(u.to_string()),
                    reasons: vec![DeletionFailureReason::AssociatedToAnExistingUser],
                });
            } else {
                deleted.push(id);
            }
        }
        let stamps = self.stamps(deleted.len())?;
        let ops = deleted
            .iter()
            .zip(stamps)
            .map(|(id, stamp)| Op { stamp, kind: OpKind::RemoveFace { face_id: *id } })
            .collect();
        self.commit(&input.collection_id, ops).await?;
        Ok(DeleteFacesOutput {
            deleted_faces: deleted.iter().map(Uuid::to_string).collect(),
            unsuccessful_face_deletions: unsuccessful,
        })
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn create_user(&mut self, input: &CreateUserInput) -> Result<CreateUserOutput> {
        let (collection_id, user_id) = (input.collection_id.as_str(), input.user_id.as_str());
        let client_request_token = input.client_request_token.as_deref();
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        check_token(client_request_token)?;
        if let Some(t) = client_request_token {
            if let Some((other, _)) = c
                .state
                .live_users()
                .find(|(id, u)| id.as_str() != user_id && u.value.client_request_token.as_deref() == Some(t))
            {
                return Err(CollectionError::IdempotentParameterMismatch(format!(
                    "ClientRequestToken {t} was used to create user {other}"
                )));
            }
        }
        if c.state.user_live(user_id) {
            let same_token = client_request_token.is_some()
                && c.state.users.get(user_id).and_then(|u| u.value.client_request_token.as_deref())
                    == client_request_token;
            return if same_token {
                Ok(CreateUserOutput {})
            } else {
                Err(CollectionError::Conflict(format!("user {user_id} already exists in {collection_id}")))
            };
        }
        let stamp = self.stamp()?;
        let value = UserValue { live: true, client_request_token: client_request_token.map(str::to_string) };
        self.commit(collection_id, vec![Op { stamp, kind: OpKind::User { user_id: user_id.to_string(), value } }])
            .await?;
        Ok(CreateUserOutput {})
    }

    /// Deletes a user, disassociating its faces first (the faces stay in the collection).
    pub async fn delete_user(&mut self, input: &DeleteUserInput) -> Result<DeleteUserOutput> {
        let (collection_id, user_id) = (input.collection_id.as_str(), input.user_id.as_str());
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        check_token(input.client_request_token.as_deref())?;
        if !c.state.user_live(user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {user_id} does not exist in {collection_id}")));
        }
        let faces = c.state.user_faces(user_id);
        let mut stamps = self.stamps(faces.len() + 1)?.into_iter();
        let mut ops = Vec::new();
        for (face_id, stamp) in faces.into_iter().zip(stamps.by_ref()) {
            ops.push(Op { stamp, kind: OpKind::Associate { face_id, user_id: None } });
        }
        let stamp = stamps.next().ok_or_else(|| CollectionError::Internal("no stamp left".into()))?;
        let value = UserValue { live: false, client_request_token: None };
        ops.push(Op { stamp, kind: OpKind::User { user_id: user_id.to_string(), value } });
        self.commit(collection_id, ops).await?;
        Ok(DeleteUserOutput {})
    }

    pub fn list_users(&self, input: &ListUsersInput) -> Result<ListUsersOutput> {
        let c = self.collection(&input.collection_id)?;
        let max = limit("MaxResults", input.max_results, MAX_LIST_USERS, MAX_LIST_USERS)?;
        let items = c.state.live_users().map(|(id, _)| (id.as_str(), id));
        let (page, next_token) =
            paging::page("users", &input.collection_id, items, input.next_token.as_deref(), max as usize)?;
        Ok(ListUsersOutput {
            users: page.into_iter().map(|id| User { user_id: id.clone(), user_status: c.user_status(id) }).collect(),
            next_token,
        })
    }

    pub async fn associate_faces(&mut self, input: &AssociateFacesInput) -> Result<AssociateFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        ids::check_user_id(&input.user_id)?;
        let face_ids = check_face_ids(&input.face_ids, MAX_ASSOCIATE_FACES)?;
        check_token(input.client_request_token.as_deref())?;
        let threshold = threshold("UserMatchThreshold", input.user_match_threshold, DEFAULT_ASSOCIATE_THRESHOLD)?;
        if !c.state.user_live(&input.user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {} does not exist", input.user_id)));
        }
        let user_vector = c.user_vector(&input.user_id);
        let already = c.state.user_faces(&input.user_id).len();
        let mut associated = Vec::new();
        let mut unsuccessful = Vec::new();
        let mut to_add = Vec::new();
        for id in face_ids {
            let Some(face) = c.state.live_face(&id) else {
                unsuccessful.push(UnsuccessfulFaceAssociation {
                    face_id: id.to_string(),
                    user_id: None,
                    confidence: None,
                    reasons: vec![AssociationFailureReason::FaceNotFound],
                });
                continue;
            };
            match c.state.row_user(face.row) {
                Some(u) if u == input.user_id => {
                    associated.push(AssociatedFace { face_id: id.to_string() });
                    continue;
                }
                Some(u) => {
                    unsuccessful.push(UnsuccessfulFaceAssociation {
                        face_id: id.to_string(),
                        user_id: Some(u.to_string()),
                        confidence: None,
                        reasons: vec![AssociationFailureReason::AssociatedToADifferentUser],
                    });
                    continue;
                }
                None => {}
            }
            if let Some(uv) = &user_vector {
                let sim = self.space.calibration.similarity(c.state.faces.vectors().score(uv, face.row));
                if sim < threshold {
                    unsuccessful.push(UnsuccessfulFaceAssociation {
                        face_id: id.to_string(),
                        user_id: Some(input.user_id.clone()),
                        confidence: Some(sim),
                        reasons: vec![AssociationFailureReason::LowMatchConfidence],
                    });
                    continue;
                }
            }
            to_add.push(id);
        }
        if already + to_add.len() > MAX_FACES_PER_USER {
            return Err(CollectionError::ServiceQuotaExceeded(format!(
                "user {} would have {} faces; the limit is {MAX_FACES_PER_USER}",
                input.user_id,
                already + to_add.len()
            )));
        }
        let stamps = self.stamps(to_add.len())?;
        let mut ops = Vec::new();
        for (id, stamp) in to_add.iter().zip(stamps) {
            ops.push(Op { stamp, kind: OpKind::Associate { face_id: *id, user_id: Some(input.user_id.clone()) } });
            associated.push(AssociatedFace { face_id: id.to_string() });
        }
        self.commit(&input.collection_id, ops).await?;
        let c = self.collection(&input.collection_id)?;
        Ok(AssociateFacesOutput {
            associated_faces: associated,
            unsuccessful_face_associations: unsuccessful,
            user_status: c.user_status(&input.user_id),
        })
    }

    pub async fn disassociate_faces(&mut self, input: &DisassociateFacesInput) -> Result<DisassociateFacesOutput> {
        let (collection_id, user_id) = (input.collection_id.as_str(), input.user_id.as_str());
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        let face_ids = check_face_ids(&input.face_ids, MAX_ASSOCIATE_FACES)?;
        check_token(input.client_request_token.as_deref())?;
        if !c.state.user_live(user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {user_id} does not exist")));
        }
        let mut done = Vec::new();
        let mut unsuccessful = Vec::new();
        let mut to_clear = Vec::new();
        for id in face_ids {
            if c.state.live_face(&id).is_none() {
                unsuccessful.push(UnsuccessfulFaceDisassociation {
                    face_id: id.to_string(),
                    user_id: None,
                    reasons: vec![DisassociationFailureReason::FaceNotFound],
                });
                continue;
            }
            match c.state.face_user(&id) {
                Some(u) if u == user_id => to_clear.push(id),
                Some(u) => unsuccessful.push(UnsuccessfulFaceDisassociation {
                    face_id: id.to_string(),
                    user_id: Some(u.to_string()),
                    reasons: vec![DisassociationFailureReason::AssociatedToADifferentUser],
                }),
                // Not associated with anyone: already in the requested state.
                None => done.push(AssociatedFace { face_id: id.to_string() }),
            }
        }
        let stamps = self.stamps(to_clear.len())?;
        let mut ops = Vec::new();
        for (id, stamp) in to_clear.iter().zip(stamps) {
            ops.push(Op { stamp, kind: OpKind::Associate { face_id: *id, user_id: None } });
            done.push(AssociatedFace { face_id: id.to_string() });
        }
        self.commit(collection_id, ops).await?;
        let c = self.collection(collection_id)?;
        Ok(DisassociateFacesOutput {
            disassociated_faces: done,
            unsuccessful_face_disassociations: unsuccessful,
            user_status: c.user_status(user_id),
        })
    }

    // ---- search ------------------------------------------------------------------------

    fn face_matches(
        &self,
        c: &Collection,
        query: &[f32],
        threshold: f32,
        max: u32,
        exclude: Option<usize>,
    ) -> Vec<FaceMatch> {
        let min_cos = self.space.calibration.cosine_at(threshold);
        let faces = &c.state.faces;
        faces
            .vectors()
            .search(query, max as usize, min_cos, exclude, |row| faces.id(row))
            .into_iter()
            .map(|(row, score)| FaceMatch {
                similarity: self.space.calibration.similarity(score),
                face: self.face_of(c, &faces.view(row)),
            })
            .collect()
    }

    fn user_matches(
        &self,
        c: &Collection,
        query: &[f32],
        threshold: f32,
        max: u32,
        exclude: Option<&str>,
    ) -> Vec<UserMatch> {
        let min_cos = self.space.calibration.cosine_at(threshold);
        c.users
            .search(query, max as usize, min_cos, exclude)
            .into_iter()
            .map(|hit| UserMatch {
                similarity: self.space.calibration.similarity(hit.score),
                user: MatchedUser { user_status: c.user_status(&hit.id), user_id: hit.id },
            })
            .collect()
    }

    /// The stored faces most like `embedding` (a vector of this engine's space, e.g. a video
    /// track's): what SearchFacesByImage does after its image work.
    pub fn search_faces_by_vector(
        &self,
        collection_id: &str,
        embedding: &[f32],
        face_match_threshold: Option<f32>,
        max_faces: Option<u32>,
    ) -> Result<Vec<FaceMatch>> {
        let c = self.collection(collection_id)?;
        self.check_space(c, &self.space.face_model_version)?;
        if embedding.len() != self.space.dimension || !embedding.iter().all(|v| v.is_finite()) {
            return Err(invalid(format!("a face vector has {} finite values", self.space.dimension)));
        }
        let threshold = threshold("FaceMatchThreshold", face_match_threshold, DEFAULT_FACE_MATCH_THRESHOLD)?;
        let max = limit("MaxFaces", max_faces, DEFAULT_SEARCH_FACES, MAX_SEARCH_FACES)?;
        Ok(self.face_matches(c, embedding, threshold, max, None))
    }

    /// SearchFaces: faces like a stored face (the face itself excluded).
    pub fn search_faces(&self, input: &SearchFacesInput) -> Result<SearchFacesOutput> {
        let (collection_id, face_id) = (input.collection_id.as_str(), input.face_id.as_str());
        let c = self.collection(collection_id)?;
        let id = ids::parse_face_id(face_id)?;
        let threshold = threshold("FaceMatchThreshold", input.face_match_threshold, DEFAULT_FACE_MATCH_THRESHOLD)?;
        let max = limit("MaxFaces", input.max_faces, DEFAULT_SEARCH_FACES, MAX_SEARCH_FACES)?;
        let row =
            c.state.faces.row_of(&id).ok_or_else(|| {
                CollectionError::ResourceNotFound(format!("face {face_id} is not in {collection_id}"))
            })?;
        let query = c.state.faces.vectors().vector(row);
        Ok(SearchFacesOutput {
            searched_face_id: face_id.to_string(),
            face_matches: self.face_matches(c, &query, threshold, max, Some(row)),
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    /// SearchFacesByImage on a prepared image: its largest face is searched.
    pub fn search_faces_prepared(
        &self,
        input: &SearchFacesByImageInput,
        prepared: &PreparedImage,
    ) -> Result<SearchFacesByImageOutput> {
        let c = self.collection(&input.collection_id)?;
        self.check_space(c, &prepared.face_model_version)?;
        let threshold = threshold("FaceMatchThreshold", input.face_match_threshold, DEFAULT_FACE_MATCH_THRESHOLD)?;
        let max = limit("MaxFaces", input.max_faces, DEFAULT_SEARCH_FACES, MAX_SEARCH_FACES)?;
        let face = prepared.embedded.first().ok_or_else(|| invalid("no face found in the image"))?;
        check_searched_face(face, input.quality_filter)?;
        let d = &face.detail;
        Ok(SearchFacesByImageOutput {
            searched_face_bounding_box: d.bounding_box,
            searched_face_confidence: d.confidence,
            face_matches: self.face_matches(c, &face.embedding, threshold, max, None),
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    /// SearchFacesByImage on faces the caller analysed (largest first).
    pub fn search_faces_by_analyzed(
        &self,
        input: &SearchFacesByImageInput,
        analyzed: AnalyzedImage,
    ) -> Result<SearchFacesByImageOutput> {
        self.search_faces_prepared(input, &PreparedImage::for_search(analyzed))
    }

    #[cfg(feature = "vision")]
    pub fn search_faces_by_image(
        &self,
        engine: &FaceEngine,
        input: &SearchFacesByImageInput,
        image: ImageInput<'_>,
    ) -> Result<SearchFacesByImageOutput> {
        self.collection(&input.collection_id)?;
        self.search_faces_prepared(input, &prepare_search(engine, image, false)?)
    }

    /// SearchUsers by a stored user (excluded from its own results) or a stored face.
    pub fn search_users(&self, input: &SearchUsersInput) -> Result<SearchUsersOutput> {
        let c = self.collection(&input.collection_id)?;
        let threshold = threshold("UserMatchThreshold", input.user_match_threshold, DEFAULT_USER_MATCH_THRESHOLD)?;
        let max = limit("MaxUsers", input.max_users, DEFAULT_SEARCH_USERS, MAX_SEARCH_USERS)?;
        let version = c.state.face_model_version().unwrap_or_default().to_string();
        match (input.user_id.as_deref(), input.face_id.as_deref()) {
            (Some(u), None) => {
                ids::check_user_id(u)?;
                if !c.state.user_live(u) {
                    return Err(CollectionError::ResourceNotFound(format!("user {u} does not exist")));
                }
                let user_matches = match c.users.vector(u) {
                    Some(q) => self.user_matches(c, &q, threshold, max, Some(u)),
                    None => Vec::new(),
                };
                Ok(SearchUsersOutput {
                    user_matches,
                    face_model_version: version,
                    searched_face: None,
                    searched_user: Some(SearchedUserId { user_id: u.to_string() }),
                })
            }
            (None, Some(f)) => {
                let q = c
                    .state
                    .face_vector(&ids::parse_face_id(f)?)
                    .ok_or_else(|| CollectionError::ResourceNotFound(format!("face {f} does not exist")))?;
                Ok(SearchUsersOutput {
                    user_matches: self.user_matches(c, &q, threshold, max, None),
                    face_model_version: version,
                    searched_face: Some(SearchedFaceId { face_id: f.to_string() }),
                    searched_user: None,
                })
            }
            _ => Err(invalid("give exactly one of UserId and FaceId")),
        }
    }

    /// SearchUsersByImage on a prepared image: the largest face is searched, the others are
    /// reported as unsearched.
    pub fn search_users_prepared(
        &self,
        input: &SearchUsersByImageInput,
        prepared: &PreparedImage,
    ) -> Result<SearchUsersByImageOutput> {
        let c = self.collection(&input.collection_id)?;
        self.check_space(c, &prepared.face_model_version)?;
        let threshold = threshold("UserMatchThreshold", input.user_match_threshold, DEFAULT_USER_MATCH_THRESHOLD)?;
        let max = limit("MaxUsers", input.max_users, DEFAULT_SEARCH_USERS, MAX_SEARCH_USERS)?;
        let version = c.state.face_model_version().unwrap_or_default().to_string();
        let unsearched_faces = prepared
            .skipped
            .iter()
            .map(|(d, _)| UnsearchedFace {
                face_details: d.clone(),
                reasons: vec![UnsearchedFaceReason::FaceNotLargest],
            })
            .collect();
        let Some(face) = prepared.embedded.first() else {
            return Ok(SearchUsersByImageOutput {
                user_matches: Vec::new(),
                face_model_version: version,
                searched_face: None,
                unsearched_faces,
            });
        };
        check_searched_face(face, input.quality_filter)?;
        Ok(SearchUsersByImageOutput {
            user_matches: self.user_matches(c, &face.embedding, threshold, max, None),
            face_model_version: version,
            searched_face: Some(SearchedFaceDetails { face_detail: face.detail.clone() }),
            unsearched_faces,
        })
    }

    /// SearchUsersByImage on faces the caller analysed (largest first).
    pub fn search_users_by_analyzed(
        &self,
        input: &SearchUsersByImageInput,
        analyzed: AnalyzedImage,
    ) -> Result<SearchUsersByImageOutput> {
        self.search_users_prepared(input, &PreparedImage::for_search(analyzed))
    }

    #[cfg(feature = "vision")]
    pub fn search_users_by_image(
        &self,
        engine: &FaceEngine,
        input: &SearchUsersByImageInput,
        image: ImageInput<'_>,
    ) -> Result<SearchUsersByImageOutput> {
        self.collection(&input.collection_id)?;
        self.search_users_prepared(input, &prepare_search(engine, image, true)?)
    }

    // ---- replication -------------------------------------------------------------------

    /// The version vector of a collection (live or deleted): what this replica has seen.
    pub fn version(&self, collection_id: &str) -> VersionVector {
        self.collections.get(collection_id).map(|c| c.state.version.clone()).unwrap_or_default()
    }

    /// Ids of every collection this replica knows, deleted ones included (they carry tombstones).
    pub fn known_collections(&self) -> Vec<String> {
        self.collections.keys().cloned().collect()
    }

    /// Encoded delta of everything a replica at `since` lacks.
    pub fn changes_since(&self, collection_id: &str, since: &VersionVector) -> Result<Vec<u8>> {
        let c = self
            .collections
            .get(collection_id)
            .ok_or_else(|| CollectionError::ResourceNotFound(format!("collection {collection_id} is unknown here")))?;
        codec::encode(&ChangeSet {
            kind: ChangeKind::Delta,
            collection_id: collection_id.to_string(),
            face_model_version: c.state.face_model_version().unwrap_or(&self.space.face_model_version).to_string(),
            dimension: self.space.dimension as u32,
            version: c.state.version.clone(),
            ops: c.state.ops_since(since),
            floor: VersionVector::default(),
        })
    }

    /// Full snapshot of one collection.
    pub fn snapshot(&self, collection_id: &str) -> Result<Vec<u8>> {
        self.changes_since(collection_id, &VersionVector::default())
    }

    /// Merge a delta or snapshot from another replica into `expected_collection`: decoded,
    /// checked whole ([`check_foreign`]: the collection named, ids, unit vectors, stamps
    /// within [`crate::hlc::MAX_CLOCK_DRIFT_MS`] of this device's clock, FaceModelVersion),
    /// persisted as this replica re-encodes it (the sender's version vector and unknown
    /// sections are not kept), then merged. Any defect refuses it all and changes nothing.
    pub async fn apply_changes(&mut self, expected_collection: &str, bytes: &[u8]) -> Result<String> {
        ids::check_collection_id(expected_collection)?;
        let cs = codec::decode(bytes)?;
        check_foreign(&cs, expected_collection, &self.space, self.clock.now_millis())?;
        let id = cs.collection_id;
        let cs = self.delta(&id, cs.ops);
        let encoded = codec::encode(&cs)?;
        self.store.append(&id, &encoded).await?;
        for op in &cs.ops {
            self.hlc.observe(op.stamp);
        }
        let dim = self.space.dimension;
        let c = self.collections.entry(id.clone()).or_insert_with(|| Collection::new(CollectionState::new(&id), dim));
        c.apply(&cs.ops);
        c.delta_bytes += encoded.len();
        c.fold_pending |= deletes(&cs.ops);
        self.maybe_snapshot(&id).await;
        Ok(id)
    }

    /// Drop tombstones every writer of the collection has seen, and rewrite the snapshot.
    /// `acknowledged` holds what each other replica has reached (this replica's own vector is
    /// added here); a writer without an entry refuses the call and nothing changes.
    pub async fn compact(
        &mut self,
        collection_id: &str,
        acknowledged: &BTreeMap<ReplicaId, VersionVector>,
    ) -> Result<usize> {
        let replica = self.replica();
        let Some(c) = self.collections.get_mut(collection_id) else { return Ok(0) };
        let mut acks = acknowledged.clone();
        acks.insert(replica, c.state.version.clone());
        let mut state = c.state.clone();
        let dropped = state.compact(&acks).map_err(|e| invalid(e.to_string()))?;
        if dropped == 0 {
            return Ok(0);
        }
        // Only tombstones go, and they are in neither index: the indexes stay as they are.
        let old = std::mem::replace(&mut c.state, state);
        let written = match self.encode_snapshot(collection_id) {
            Ok(bytes) => self.store.replace(collection_id, &bytes).await.map(|_| bytes.len()),
            Err(e) => Err(e),
        };
        let Some(c) = self.collections.get_mut(collection_id) else { return Ok(dropped) };
        match written {
            Ok(len) => {
                c.snapshot_bytes = len;
                c.delta_bytes = 0;
                c.fold_pending = false;
                Ok(dropped)
            }
            Err(e) => {
                c.state = old;
                Err(e)
            }
        }
    }
}

/// ImageId of an input in a collection: a keyed hash of the encoded bytes, or of the pixels
/// and their size.
pub fn image_id_of(collection_id: &str, image: ImageInput<'_>) -> String {
    let id = match image {
        ImageInput::Encoded(b) => ids::image_id(collection_id, b),
        ImageInput::Rgba { width, height, pixels } => {
            let mut buf = Vec::with_capacity(pixels.len() + 8);
            buf.extend_from_slice(&width.to_le_bytes());
            buf.extend_from_slice(&height.to_le_bytes());
            buf.extend_from_slice(pixels);
            ids::image_id(collection_id, &buf)
        }
    };
    id.to_string()
}

/// The analysed face whose box centre is nearest a stored face's.
fn nearest_detail(faces: &[&FaceDetail], stored: &FaceView<'_>) -> likeness_vision::FaceDetail {
    let centre = |b: &likeness_vision::BoundingBox| (b.left + b.width / 2.0, b.top + b.height / 2.0);
    let (sx, sy) = centre(&stored.bounding_box);
    faces
        .iter()
        .min_by(|a, b| {
            let da = centre(&a.bounding_box);
            let db = centre(&b.bounding_box);
            ((da.0 - sx).hypot(da.1 - sy)).total_cmp(&(db.0 - sx).hypot(db.1 - sy))
        })
        .map(|f| (*f).clone())
        .unwrap_or_else(|| likeness_vision::FaceDetail {
            bounding_box: stored.bounding_box,
            landmarks: Vec::new(),
            pose: likeness_vision::Pose { roll: 0.0, yaw: 0.0, pitch: 0.0 },
            quality: likeness_vision::ImageQuality { brightness: 0.0, sharpness: 0.0 },
            confidence: stored.confidence,
        })
}
