//! [`Collections`]: Rekognition's collection operations over a [`Store`].
//!
//! Every mutation follows one path ([`Collections::commit`]): validate everything, build the
//! operations, write them to the store as one delta, and only then apply them in memory. A
//! call that fails at any step, the store included, changes nothing.
//!
//! Image-taking operations come in two forms: `*_image` takes a [`FaceEngine`] and image
//! bytes; the `*_analyzed` form takes faces the caller has already detected and embedded
//! (what the browser worker and tests use).

use crate::api::*;
use crate::codec::{self, ChangeKind, ChangeSet};
use crate::error::{invalid, CollectionError, Result};
use crate::hlc::{Clock, HlcGenerator, ReplicaId, VersionVector};
use crate::ids;
use crate::paging;
use crate::search::VectorIndex;
use crate::state::{CollectionMeta, CollectionState, IndexChange, Op, OpKind, StoredFace, UserValue};
use crate::store::Store;
use likeness_vision::{AnalyzedImage, Calibration, EmbeddedFace, FaceEngine, ImageInput, QualityFilter, QualityReason};
use std::collections::{BTreeMap, BTreeSet};

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

/// One collection in memory: its CRDT state, the search index over its visible faces, and
/// the index of user vectors.
#[derive(Debug, Clone)]
pub struct Collection {
    pub state: CollectionState,
    faces: VectorIndex,
    users: VectorIndex,
    delta_bytes: usize,
    snapshot_bytes: usize,
}

impl Collection {
    fn new(state: CollectionState, dim: usize) -> Self {
        let mut c = Collection {
            state,
            faces: VectorIndex::new(dim),
            users: VectorIndex::new(dim),
            delta_bytes: 0,
            snapshot_bytes: 0,
        };
        c.rebuild_indexes();
        c
    }

    fn rebuild_indexes(&mut self) {
        let dim = self.faces.dim();
        self.faces = VectorIndex::new(dim);
        for f in self.state.live_faces() {
            self.faces.insert(&f.face_id, &f.vector);
        }
        self.rebuild_users();
    }

    /// User vector: the normalised mean of the user's normalised face vectors. Measured on
    /// lfw-dev against single faces and best-of (see README), the mean identifies best.
    fn user_vector(&self, user_id: &str) -> Option<Vec<f32>> {
        let faces = self.state.user_faces(user_id);
        let mut mean = vec![0.0f32; self.faces.dim()];
        let mut n = 0;
        for id in faces {
            if let Some(v) = self.faces.vector(id) {
                mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
                n += 1;
            }
        }
        (n > 0).then(|| {
            likeness_vision::normalize(&mut mean);
            mean
        })
    }

    fn rebuild_users(&mut self) {
        let mut users = VectorIndex::new(self.faces.dim());
        let ids: Vec<String> = self.state.live_users().map(|(id, _)| id.clone()).collect();
        for id in ids {
            if let Some(v) = self.user_vector(&id) {
                users.insert(&id, &v);
            }
        }
        self.users = users;
    }

    fn apply(&mut self, ops: &[Op]) {
        let mut users_dirty = false;
        for op in ops {
            for change in self.state.apply(op) {
                match change {
                    IndexChange::Insert(id) => {
                        if let Some(f) = self.state.live_face(&id) {
                            let v = f.vector.clone();
                            self.faces.insert(&id, &v);
                        }
                    }
                    IndexChange::Remove(id) => {
                        self.faces.remove(&id);
                    }
                }
            }
            users_dirty |= !matches!(op.kind, OpKind::AddFace(_));
        }
        if users_dirty {
            self.rebuild_users();
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
        self.faces.len()
    }

    /// Bytes of search memory per face (vector rows only).
    pub fn index_bytes_per_face(&self) -> usize {
        self.faces.bytes_per_vector()
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
    pub fn of(engine: &FaceEngine) -> Self {
        VectorSpace {
            face_model_version: engine.face_model_version().to_string(),
            dimension: engine.dimension(),
            calibration: engine.calibration().clone(),
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
fn check_face_ids(face_ids: &[String], max: usize) -> Result<Vec<String>> {
    if face_ids.is_empty() || face_ids.len() > max {
        return Err(invalid(format!("FaceIds must list 1 to {max} ids, got {}", face_ids.len())));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(face_ids.len());
    for id in face_ids {
        ids::check_face_id(id)?;
        if seen.insert(id.as_str()) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

fn check_threshold(name: &str, v: f32) -> Result<()> {
    if !(0.0..=100.0).contains(&v) {
        return Err(invalid(format!("{name} must be between 0 and 100, got {v}")));
    }
    Ok(())
}

/// Fold each stored collection's snapshot and deltas into memory (deltas commute, so their
/// order does not matter), advancing `hlc` past every stamp seen.
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
            for op in &cs.ops {
                state.apply(op);
                hlc.observe(op.stamp);
            }
            state.version.merge(&cs.version);
            if is_snapshot {
                snapshot_bytes = bytes.len();
            } else {
                delta_bytes += bytes.len();
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
    /// For stores shared with another writer (two browser tabs on one IndexedDB): every
    /// change this instance made was persisted before it was applied, so the store holds a
    /// superset of memory and reloading loses nothing. On error, memory is left as it was.
    pub async fn reload(&mut self) -> Result<()> {
        let mut hlc = self.hlc.clone();
        let collections = load_all(&mut self.store, &mut hlc, self.space.dimension).await?;
        self.hlc = hlc;
        self.collections = collections;
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

    fn stamp(&mut self) -> crate::hlc::Hlc {
        let now = self.clock.now_millis();
        self.hlc.tick(now)
    }

    /// Persist `ops` as one delta, then apply them. Nothing changes if the store fails.
    async fn commit(&mut self, collection_id: &str, ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut version = VersionVector::default();
        ops.iter().for_each(|o| version.observe(o.stamp));
        let cs = ChangeSet {
            kind: ChangeKind::Delta,
            collection_id: collection_id.to_string(),
            face_model_version: self.space.face_model_version.clone(),
            dimension: self.space.dimension as u32,
            version,
            ops,
        };
        let bytes = codec::encode(&cs);
        self.store.append(collection_id, &bytes).await?;
        let dim = self.space.dimension;
        let c = self
            .collections
            .entry(collection_id.to_string())
            .or_insert_with(|| Collection::new(CollectionState::new(collection_id), dim));
        c.apply(&cs.ops);
        c.delta_bytes += bytes.len();
        self.maybe_snapshot(collection_id).await;
        Ok(())
    }

    /// Fold deltas into a snapshot once they outgrow half of it (amortised O(change)).
    /// A failure here loses nothing: the deltas stay and the next commit tries again.
    async fn maybe_snapshot(&mut self, collection_id: &str) {
        if !self.store.persists() {
            return;
        }
        let Some(c) = self.collections.get(collection_id) else { return };
        if c.delta_bytes < (c.snapshot_bytes / 2).max(64 * 1024) {
            return;
        }
        let bytes = self.encode_snapshot(collection_id);
        if self.store.replace(collection_id, &bytes).await.is_ok() {
            if let Some(c) = self.collections.get_mut(collection_id) {
                c.snapshot_bytes = bytes.len();
                c.delta_bytes = 0;
            }
        }
    }

    fn encode_snapshot(&self, collection_id: &str) -> Vec<u8> {
        let state = self.collections.get(collection_id).map(|c| &c.state);
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
        })
    }

    // ---- collections -------------------------------------------------------------------

    pub async fn create_collection(&mut self, collection_id: &str) -> Result<CreateCollectionOutput> {
        ids::check_collection_id(collection_id)?;
        if self.collections.get(collection_id).is_some_and(|c| c.state.is_live()) {
            return Err(CollectionError::ResourceAlreadyExists(format!("collection {collection_id} already exists")));
        }
        let stamp = self.stamp();
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

    /// Deletes the collection: its faces and users are gone, and the deletion replicates.
    pub async fn delete_collection(&mut self, collection_id: &str) -> Result<DeleteCollectionOutput> {
        let version = self.collection(collection_id)?.state.face_model_version().unwrap_or_default().to_string();
        let stamp = self.stamp();
        let meta = CollectionMeta { live: false, face_model_version: version, created_millis: 0 };
        self.commit(collection_id, vec![Op { stamp, kind: OpKind::Meta(meta) }]).await?;
        Ok(DeleteCollectionOutput { status_code: 200 })
    }

    pub fn describe_collection(&self, collection_id: &str) -> Result<DescribeCollectionOutput> {
        let c = self.collection(collection_id)?;
        let meta = c.state.meta.as_ref().map(|m| m.value.clone());
        Ok(DescribeCollectionOutput {
            face_count: c.faces.len() as u64,
            user_count: c.state.live_users().count() as u64,
            face_model_version: meta.as_ref().map(|m| m.face_model_version.clone()).unwrap_or_default(),
            collection_arn: arn(collection_id),
            creation_timestamp: meta.map_or(0.0, |m| m.created_millis as f64 / 1000.0),
        })
    }

    pub fn list_collections(&self, input: &ListCollectionsInput) -> Result<ListCollectionsOutput> {
        let max = input.max_results.unwrap_or(DEFAULT_LIST_RESULTS);
        check_range("MaxResults", max, 1, MAX_LIST_RESULTS)?;
        let live = self.collections.iter().filter(|(_, c)| c.state.is_live());
        let (page, next_token) = paging::page(
            "collections",
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

    fn face_of(&self, c: &Collection, f: &StoredFace) -> Face {
        Face {
            face_id: f.face_id.clone(),
            bounding_box: f.bounding_box,
            image_id: f.image_id.clone(),
            external_image_id: f.external_image_id.clone(),
            confidence: f.confidence,
            index_faces_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
            user_id: c.state.face_user(&f.face_id).map(str::to_string),
        }
    }

    /// IndexFaces from image bytes or pixels.
    pub async fn index_faces_image(
        &mut self,
        engine: &FaceEngine,
        input: IndexFacesInput,
        image: ImageInput<'_>,
    ) -> Result<IndexFacesOutput> {
        self.collection(&input.collection_id)?;
        let analyzed = engine.analyze(image, likeness_vision::MAX_FACES)?;
        let image_id = image_id_of(image);
        self.index_faces_analyzed(input, &image_id, analyzed).await
    }

    /// IndexFaces from already analysed faces (largest first) of the image `image_id`.
    pub async fn index_faces_analyzed(
        &mut self,
        input: IndexFacesInput,
        image_id: &str,
        analyzed: AnalyzedImage,
    ) -> Result<IndexFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        self.check_space(c, &analyzed.face_model_version)?;
        if let Some(x) = &input.external_image_id {
            ids::check_external_image_id(x)?;
        }
        let max_faces = input.max_faces.unwrap_or(100);
        check_range("MaxFaces", max_faces, 1, 4096)?;
        let filter = input.quality_filter.unwrap_or_default();
        if analyzed.faces.iter().any(|f| f.embedding.len() != self.space.dimension) {
            return Err(invalid(format!("face vectors must have {} values", self.space.dimension)));
        }

        // The same image with the same ExternalImageId was indexed before: return those faces.
        let existing: Vec<&StoredFace> = c
            .state
            .live_faces()
            .filter(|f| f.image_id == image_id && f.external_image_id == input.external_image_id)
            .collect();
        if !existing.is_empty() {
            let face_records = existing
                .iter()
                .map(|f| FaceRecord { face: self.face_of(c, f), face_detail: nearest_detail(&analyzed.faces, f) })
                .collect();
            return Ok(IndexFacesOutput {
                face_records,
                orientation_correction: analyzed.orientation_correction,
                face_model_version: self.space.face_model_version.clone(),
                unindexed_faces: Vec::new(),
            });
        }

        let mut unindexed_faces = Vec::new();
        let mut passing: Vec<&EmbeddedFace> = Vec::new();
        for f in &analyzed.faces {
            let reasons = f.quality_reasons(filter);
            if reasons.is_empty() {
                passing.push(f);
            } else {
                unindexed_faces.push(UnindexedFace { reasons, face_detail: f.detail.clone() });
            }
        }
        // Over MaxFaces: drop the lowest quality first (most HIGH-bar shortfalls), then the smallest.
        // Largest first, then a stable sort by shortfalls computed once per face.
        passing.sort_by(|a, b| b.size_pixels.total_cmp(&a.size_pixels));
        passing.sort_by_cached_key(|f| f.quality_reasons(QualityFilter::High).len());
        for f in passing.iter().skip(max_faces as usize) {
            unindexed_faces
                .push(UnindexedFace { reasons: vec![QualityReason::ExceedsMaxFaces], face_detail: f.detail.clone() });
        }
        passing.truncate(max_faces as usize);

        let mut ops = Vec::new();
        let mut face_records = Vec::new();
        let version = self.space.face_model_version.clone();
        for (i, f) in passing.into_iter().enumerate() {
            let stamp = self.stamp();
            let stored = StoredFace {
                face_id: ids::face_id(stamp, i),
                image_id: image_id.to_string(),
                external_image_id: input.external_image_id.clone(),
                bounding_box: f.detail.bounding_box,
                confidence: f.detail.confidence,
                vector: f.embedding.clone(),
            };
            face_records.push(FaceRecord {
                face: Face {
                    face_id: stored.face_id.clone(),
                    bounding_box: stored.bounding_box,
                    image_id: stored.image_id.clone(),
                    external_image_id: stored.external_image_id.clone(),
                    confidence: stored.confidence,
                    index_faces_model_version: version.clone(),
                    user_id: None,
                },
                face_detail: f.detail.clone(),
            });
            ops.push(Op { stamp, kind: OpKind::AddFace(stored) });
        }
        self.commit(&input.collection_id, ops).await?;
        Ok(IndexFacesOutput {
            face_records,
            orientation_correction: analyzed.orientation_correction,
            face_model_version: version,
            unindexed_faces,
        })
    }

    pub fn list_faces(&self, input: &ListFacesInput) -> Result<ListFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        let max = input.max_results.unwrap_or(DEFAULT_LIST_RESULTS);
        check_range("MaxResults", max, 1, MAX_LIST_RESULTS)?;
        if let Some(u) = &input.user_id {
            ids::check_user_id(u)?;
        }
        let wanted: Option<BTreeSet<String>> = match &input.face_ids {
            Some(list) => Some(check_face_ids(list, MAX_DELETE_FACES)?.into_iter().collect()),
            None => None,
        };
        let items = c
            .state
            .live_faces()
            .filter(|f| wanted.as_ref().is_none_or(|w| w.contains(f.face_id.as_str())))
            .filter(|f| input.user_id.as_deref().is_none_or(|u| c.state.face_user(&f.face_id) == Some(u)))
            .map(|f| (f.face_id.as_str(), f));
        let (page, next_token) = paging::page("faces", items, input.next_token.as_deref(), max as usize)?;
        Ok(ListFacesOutput {
            faces: page.into_iter().map(|f| self.face_of(c, f)).collect(),
            next_token,
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    pub async fn delete_faces(&mut self, collection_id: &str, face_ids: &[String]) -> Result<DeleteFacesOutput> {
        let c = self.collection(collection_id)?;
        let face_ids = check_face_ids(face_ids, MAX_DELETE_FACES)?;
        let mut deleted = Vec::new();
        let mut unsuccessful = Vec::new();
        for id in &face_ids {
            if c.state.live_face(id).is_none() {
                unsuccessful.push(UnsuccessfulFaceDeletion {
                    face_id: id.clone(),
                    user_id: None,
                    reasons: vec![DeletionFailureReason::FaceNotFound],
                });
            } else if let Some(u) = c.state.face_user(id) {
                unsuccessful.push(UnsuccessfulFaceDeletion {
                    face_id: id.clone(),
                    user_id: Some(u.to_string()),
                    reasons: vec![DeletionFailureReason::AssociatedToAnExistingUser],
                });
            } else {
                deleted.push(id.clone());
            }
        }
        let mut ops = Vec::new();
        for id in &deleted {
            let stamp = self.stamp();
            ops.push(Op { stamp, kind: OpKind::RemoveFace { face_id: id.clone() } });
        }
        self.commit(collection_id, ops).await?;
        Ok(DeleteFacesOutput { deleted_faces: deleted, unsuccessful_face_deletions: unsuccessful })
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn create_user(
        &mut self,
        collection_id: &str,
        user_id: &str,
        client_request_token: Option<&str>,
    ) -> Result<CreateUserOutput> {
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        if let Some(t) = client_request_token {
            ids::check_client_request_token(t)?;
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
        let stamp = self.stamp();
        let value = UserValue { live: true, client_request_token: client_request_token.map(str::to_string) };
        self.commit(collection_id, vec![Op { stamp, kind: OpKind::User { user_id: user_id.to_string(), value } }])
            .await?;
        Ok(CreateUserOutput {})
    }

    /// Deletes a user, disassociating its faces first (the faces stay in the collection).
    pub async fn delete_user(
        &mut self,
        collection_id: &str,
        user_id: &str,
        client_request_token: Option<&str>,
    ) -> Result<DeleteUserOutput> {
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        if let Some(t) = client_request_token {
            ids::check_client_request_token(t)?;
        }
        if !c.state.user_live(user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {user_id} does not exist in {collection_id}")));
        }
        let faces: Vec<String> = c.state.user_faces(user_id).into_iter().map(str::to_string).collect();
        let mut ops = Vec::new();
        for face_id in faces {
            let stamp = self.stamp();
            ops.push(Op { stamp, kind: OpKind::Associate { face_id, user_id: None } });
        }
        let stamp = self.stamp();
        let value = UserValue { live: false, client_request_token: client_request_token.map(str::to_string) };
        ops.push(Op { stamp, kind: OpKind::User { user_id: user_id.to_string(), value } });
        self.commit(collection_id, ops).await?;
        Ok(DeleteUserOutput {})
    }

    pub fn list_users(
        &self,
        collection_id: &str,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<ListUsersOutput> {
        let c = self.collection(collection_id)?;
        let max = max_results.unwrap_or(MAX_LIST_USERS);
        check_range("MaxResults", max, 1, MAX_LIST_USERS)?;
        let items = c.state.live_users().map(|(id, _)| (id.as_str(), id));
        let (page, next_token) = paging::page("users", items, next_token, max as usize)?;
        Ok(ListUsersOutput {
            users: page.into_iter().map(|id| User { user_id: id.clone(), user_status: c.user_status(id) }).collect(),
            next_token,
        })
    }

    pub async fn associate_faces(&mut self, input: AssociateFacesInput) -> Result<AssociateFacesOutput> {
        let c = self.collection(&input.collection_id)?;
        ids::check_user_id(&input.user_id)?;
        let face_ids = check_face_ids(&input.face_ids, MAX_ASSOCIATE_FACES)?;
        if let Some(t) = &input.client_request_token {
            ids::check_client_request_token(t)?;
        }
        let threshold = input.user_match_threshold.unwrap_or(DEFAULT_ASSOCIATE_THRESHOLD);
        check_threshold("UserMatchThreshold", threshold)?;
        if !c.state.user_live(&input.user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {} does not exist", input.user_id)));
        }
        let user_vector = c.user_vector(&input.user_id);
        let already = c.state.user_faces(&input.user_id).len();
        let mut associated = Vec::new();
        let mut unsuccessful = Vec::new();
        let mut to_add = Vec::new();
        for id in &face_ids {
            let Some(face) = c.state.live_face(id) else {
                unsuccessful.push(UnsuccessfulFaceAssociation {
                    face_id: id.clone(),
                    user_id: None,
                    confidence: None,
                    reasons: vec![AssociationFailureReason::FaceNotFound],
                });
                continue;
            };
            match c.state.face_user(id) {
                Some(u) if u == input.user_id => {
                    associated.push(AssociatedFace { face_id: id.clone() });
                    continue;
                }
                Some(u) => {
                    unsuccessful.push(UnsuccessfulFaceAssociation {
                        face_id: id.clone(),
                        user_id: Some(u.to_string()),
                        confidence: None,
                        reasons: vec![AssociationFailureReason::AssociatedToADifferentUser],
                    });
                    continue;
                }
                None => {}
            }
            if let Some(uv) = &user_vector {
                let sim = self.space.calibration.similarity(likeness_vision::cosine(uv, &face.vector));
                if sim < threshold {
                    unsuccessful.push(UnsuccessfulFaceAssociation {
                        face_id: id.clone(),
                        user_id: Some(input.user_id.clone()),
                        confidence: Some(sim),
                        reasons: vec![AssociationFailureReason::LowMatchConfidence],
                    });
                    continue;
                }
            }
            to_add.push(id.clone());
        }
        if already + to_add.len() > MAX_FACES_PER_USER {
            return Err(CollectionError::ServiceQuotaExceeded(format!(
                "user {} would have {} faces; the limit is {MAX_FACES_PER_USER}",
                input.user_id,
                already + to_add.len()
            )));
        }
        let mut ops = Vec::new();
        for id in &to_add {
            let stamp = self.stamp();
            ops.push(Op {
                stamp,
                kind: OpKind::Associate { face_id: id.clone(), user_id: Some(input.user_id.clone()) },
            });
            associated.push(AssociatedFace { face_id: id.clone() });
        }
        self.commit(&input.collection_id, ops).await?;
        let c = self.collection(&input.collection_id)?;
        Ok(AssociateFacesOutput {
            associated_faces: associated,
            unsuccessful_face_associations: unsuccessful,
            user_status: c.user_status(&input.user_id),
        })
    }

    pub async fn disassociate_faces(
        &mut self,
        collection_id: &str,
        user_id: &str,
        face_ids: &[String],
        client_request_token: Option<&str>,
    ) -> Result<DisassociateFacesOutput> {
        let c = self.collection(collection_id)?;
        ids::check_user_id(user_id)?;
        let face_ids = check_face_ids(face_ids, MAX_ASSOCIATE_FACES)?;
        if let Some(t) = client_request_token {
            ids::check_client_request_token(t)?;
        }
        if !c.state.user_live(user_id) {
            return Err(CollectionError::ResourceNotFound(format!("user {user_id} does not exist")));
        }
        let mut done = Vec::new();
        let mut unsuccessful = Vec::new();
        let mut to_clear = Vec::new();
        for id in &face_ids {
            if c.state.live_face(id).is_none() {
                unsuccessful.push(UnsuccessfulFaceDisassociation {
                    face_id: id.clone(),
                    user_id: None,
                    reasons: vec![DisassociationFailureReason::FaceNotFound],
                });
                continue;
            }
            match c.state.face_user(id) {
                Some(u) if u == user_id => to_clear.push(id.clone()),
                Some(u) => unsuccessful.push(UnsuccessfulFaceDisassociation {
                    face_id: id.clone(),
                    user_id: Some(u.to_string()),
                    reasons: vec![DisassociationFailureReason::AssociatedToADifferentUser],
                }),
                // Not associated with anyone: already in the requested state.
                None => done.push(AssociatedFace { face_id: id.clone() }),
            }
        }
        let mut ops = Vec::new();
        for id in &to_clear {
            let stamp = self.stamp();
            ops.push(Op { stamp, kind: OpKind::Associate { face_id: id.clone(), user_id: None } });
            done.push(AssociatedFace { face_id: id.clone() });
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
        exclude: Option<&str>,
    ) -> Vec<FaceMatch> {
        let min_cos = self.space.calibration.cosine_at(threshold);
        c.faces
            .search(query, max as usize, min_cos, exclude)
            .into_iter()
            .filter_map(|hit| {
                let f = c.state.live_face(&hit.id)?;
                Some(FaceMatch { similarity: self.space.calibration.similarity(hit.score), face: self.face_of(c, f) })
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

    /// SearchFaces: faces like a stored face (the face itself excluded).
    pub fn search_faces(
        &self,
        collection_id: &str,
        face_id: &str,
        face_match_threshold: Option<f32>,
        max_faces: Option<u32>,
    ) -> Result<SearchFacesOutput> {
        let c = self.collection(collection_id)?;
        ids::check_face_id(face_id)?;
        let threshold = face_match_threshold.unwrap_or(DEFAULT_FACE_MATCH_THRESHOLD);
        check_threshold("FaceMatchThreshold", threshold)?;
        let max = max_faces.unwrap_or(DEFAULT_SEARCH_FACES);
        check_range("MaxFaces", max, 1, MAX_SEARCH_FACES)?;
        let query = c
            .faces
            .vector(face_id)
            .ok_or_else(|| CollectionError::ResourceNotFound(format!("face {face_id} is not in {collection_id}")))?;
        Ok(SearchFacesOutput {
            searched_face_id: face_id.to_string(),
            face_matches: self.face_matches(c, query, threshold, max, Some(face_id)),
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    /// SearchFacesByImage on analysed faces: the largest face is searched.
    pub fn search_faces_by_analyzed(
        &self,
        collection_id: &str,
        analyzed: &AnalyzedImage,
        face_match_threshold: Option<f32>,
        max_faces: Option<u32>,
        quality_filter: Option<QualityFilter>,
    ) -> Result<SearchFacesByImageOutput> {
        let c = self.collection(collection_id)?;
        self.check_space(c, &analyzed.face_model_version)?;
        let threshold = face_match_threshold.unwrap_or(DEFAULT_FACE_MATCH_THRESHOLD);
        check_threshold("FaceMatchThreshold", threshold)?;
        let max = max_faces.unwrap_or(DEFAULT_SEARCH_FACES);
        check_range("MaxFaces", max, 1, MAX_SEARCH_FACES)?;
        let face = analyzed.faces.first().ok_or_else(|| invalid("no face found in the image"))?;
        check_searched_face(face, quality_filter)?;
        let d = &face.detail;
        Ok(SearchFacesByImageOutput {
            searched_face_bounding_box: d.bounding_box,
            searched_face_confidence: d.confidence,
            face_matches: self.face_matches(c, &face.embedding, threshold, max, None),
            face_model_version: c.state.face_model_version().unwrap_or_default().to_string(),
        })
    }

    pub fn search_faces_by_image(
        &self,
        engine: &FaceEngine,
        collection_id: &str,
        image: ImageInput<'_>,
        face_match_threshold: Option<f32>,
        max_faces: Option<u32>,
        quality_filter: Option<QualityFilter>,
    ) -> Result<SearchFacesByImageOutput> {
        self.collection(collection_id)?;
        let analyzed = engine.analyze(image, 1)?;
        self.search_faces_by_analyzed(collection_id, &analyzed, face_match_threshold, max_faces, quality_filter)
    }

    /// SearchUsers by a stored user (excluded from its own results) or a stored face.
    pub fn search_users(
        &self,
        collection_id: &str,
        user_id: Option<&str>,
        face_id: Option<&str>,
        user_match_threshold: Option<f32>,
        max_users: Option<u32>,
    ) -> Result<SearchUsersOutput> {
        let c = self.collection(collection_id)?;
        let threshold = user_match_threshold.unwrap_or(DEFAULT_USER_MATCH_THRESHOLD);
        check_threshold("UserMatchThreshold", threshold)?;
        let max = max_users.unwrap_or(DEFAULT_SEARCH_USERS);
        check_range("MaxUsers", max, 1, MAX_SEARCH_USERS)?;
        let version = c.state.face_model_version().unwrap_or_default().to_string();
        match (user_id, face_id) {
            (Some(u), None) => {
                ids::check_user_id(u)?;
                if !c.state.user_live(u) {
                    return Err(CollectionError::ResourceNotFound(format!("user {u} does not exist")));
                }
                let user_matches = match c.users.vector(u) {
                    Some(q) => self.user_matches(c, q, threshold, max, Some(u)),
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
                ids::check_face_id(f)?;
                let q = c
                    .faces
                    .vector(f)
                    .ok_or_else(|| CollectionError::ResourceNotFound(format!("face {f} does not exist")))?;
                Ok(SearchUsersOutput {
                    user_matches: self.user_matches(c, q, threshold, max, None),
                    face_model_version: version,
                    searched_face: Some(SearchedFaceId { face_id: f.to_string() }),
                    searched_user: None,
                })
            }
            _ => Err(invalid("give exactly one of UserId and FaceId")),
        }
    }

    /// SearchUsersByImage on analysed faces (largest first).
    pub fn search_users_by_analyzed(
        &self,
        collection_id: &str,
        analyzed: &AnalyzedImage,
        user_match_threshold: Option<f32>,
        max_users: Option<u32>,
        quality_filter: Option<QualityFilter>,
    ) -> Result<SearchUsersByImageOutput> {
        let c = self.collection(collection_id)?;
        self.check_space(c, &analyzed.face_model_version)?;
        let threshold = user_match_threshold.unwrap_or(DEFAULT_USER_MATCH_THRESHOLD);
        check_threshold("UserMatchThreshold", threshold)?;
        let max = max_users.unwrap_or(DEFAULT_SEARCH_USERS);
        check_range("MaxUsers", max, 1, MAX_SEARCH_USERS)?;
        let version = c.state.face_model_version().unwrap_or_default().to_string();
        let unsearched_faces = analyzed
            .faces
            .iter()
            .skip(1)
            .map(|f| UnsearchedFace {
                face_details: f.detail.clone(),
                reasons: vec![UnsearchedFaceReason::FaceNotLargest],
            })
            .collect();
        let Some(face) = analyzed.faces.first() else {
            return Ok(SearchUsersByImageOutput {
                user_matches: Vec::new(),
                face_model_version: version,
                searched_face: None,
                unsearched_faces,
            });
        };
        check_searched_face(face, quality_filter)?;
        let d = &face.detail;
        Ok(SearchUsersByImageOutput {
            user_matches: self.user_matches(c, &face.embedding, threshold, max, None),
            face_model_version: version,
            searched_face: Some(SearchedFaceDetails { face_detail: d.clone() }),
            unsearched_faces,
        })
    }

    pub fn search_users_by_image(
        &self,
        engine: &FaceEngine,
        collection_id: &str,
        image: ImageInput<'_>,
        user_match_threshold: Option<f32>,
        max_users: Option<u32>,
        quality_filter: Option<QualityFilter>,
    ) -> Result<SearchUsersByImageOutput> {
        self.collection(collection_id)?;
        let analyzed = engine.analyze(image, likeness_vision::MAX_FACES)?;
        self.search_users_by_analyzed(collection_id, &analyzed, user_match_threshold, max_users, quality_filter)
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
        Ok(codec::encode(&ChangeSet {
            kind: ChangeKind::Delta,
            collection_id: collection_id.to_string(),
            face_model_version: c.state.face_model_version().unwrap_or(&self.space.face_model_version).to_string(),
            dimension: self.space.dimension as u32,
            version: c.state.version.clone(),
            ops: c.state.ops_since(since),
        }))
    }

    /// Full snapshot of one collection.
    pub fn snapshot(&self, collection_id: &str) -> Result<Vec<u8>> {
        self.changes_since(collection_id, &VersionVector::default())
    }

    /// Apply a delta or snapshot from another replica: verified, persisted, then merged.
    pub async fn apply_changes(&mut self, bytes: &[u8]) -> Result<String> {
        let cs = codec::decode(bytes)?;
        ids::check_collection_id(&cs.collection_id).map_err(|e| CollectionError::InvalidSnapshot(e.to_string()))?;
        if cs.dimension as usize != self.space.dimension || cs.face_model_version != self.space.face_model_version {
            return Err(CollectionError::InvalidSnapshot(format!(
                "change set holds {}-d vectors of {}; this engine uses {}-d vectors of {}",
                cs.dimension, cs.face_model_version, self.space.dimension, self.space.face_model_version
            )));
        }
        self.store.append(&cs.collection_id, bytes).await?;
        for op in &cs.ops {
            self.hlc.observe(op.stamp);
        }
        let dim = self.space.dimension;
        let c = self
            .collections
            .entry(cs.collection_id.clone())
            .or_insert_with(|| Collection::new(CollectionState::new(&cs.collection_id), dim));
        c.apply(&cs.ops);
        c.state.version.merge(&cs.version);
        c.delta_bytes += bytes.len();
        self.maybe_snapshot(&cs.collection_id).await;
        Ok(cs.collection_id)
    }

    /// Drop tombstones every replica in `acknowledged` has seen, and rewrite the snapshot.
    pub async fn compact(&mut self, collection_id: &str, acknowledged: &[VersionVector]) -> Result<usize> {
        let Some(c) = self.collections.get(collection_id) else { return Ok(0) };
        let mut state = c.state.clone();
        let dropped = state.compact(acknowledged);
        if dropped == 0 {
            return Ok(0);
        }
        let dim = self.space.dimension;
        let compacted = Collection::new(state, dim);
        let old = self.collections.insert(collection_id.to_string(), compacted);
        let bytes = self.encode_snapshot(collection_id);
        if let Err(e) = self.store.replace(collection_id, &bytes).await {
            if let Some(old) = old {
                self.collections.insert(collection_id.to_string(), old);
            }
            return Err(e);
        }
        if let Some(c) = self.collections.get_mut(collection_id) {
            c.snapshot_bytes = bytes.len();
            c.delta_bytes = 0;
        }
        Ok(dropped)
    }
}

/// ImageId of an input: a hash of the encoded bytes, or of the pixels and their size.
pub fn image_id_of(image: ImageInput<'_>) -> String {
    match image {
        ImageInput::Encoded(b) => ids::image_id(b),
        ImageInput::Rgba { width, height, pixels } => {
            let mut buf = Vec::with_capacity(pixels.len() + 8);
            buf.extend_from_slice(&width.to_le_bytes());
            buf.extend_from_slice(&height.to_le_bytes());
            buf.extend_from_slice(pixels);
            ids::image_id(&buf)
        }
    }
}

/// The analysed face whose box centre is nearest a stored face's.
fn nearest_detail(faces: &[EmbeddedFace], stored: &StoredFace) -> likeness_vision::FaceDetail {
    let centre = |b: &likeness_vision::BoundingBox| (b.left + b.width / 2.0, b.top + b.height / 2.0);
    let (sx, sy) = centre(&stored.bounding_box);
    faces
        .iter()
        .min_by(|a, b| {
            let da = centre(&a.detail.bounding_box);
            let db = centre(&b.detail.bounding_box);
            ((da.0 - sx).hypot(da.1 - sy)).total_cmp(&(db.0 - sx).hypot(db.1 - sy))
        })
        .map(|f| f.detail.clone())
        .unwrap_or_else(|| likeness_vision::FaceDetail {
            bounding_box: stored.bounding_box,
            landmarks: Vec::new(),
            pose: likeness_vision::Pose { roll: 0.0, yaw: 0.0, pitch: 0.0 },
            quality: likeness_vision::ImageQuality { brightness: 0.0, sharpness: 0.0 },
            confidence: stored.confidence,
        })
}
