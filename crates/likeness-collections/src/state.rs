//! A collection's replicated state: a CRDT built from operations stamped with HLCs.
//!
//! - Faces: an add-wins set with tombstones. FaceIds are unique, so an add and a remove of the
//!   same face never race; a face is visible iff its add is known and no remove is. Removing
//!   a face drops everything but its id and stamps at once (vector, ExternalImageId, ImageId,
//!   box, association): a tombstone keeps only what convergence needs.
//! - Each face's user association, each user, and the collection's own metadata are
//!   last-writer-wins registers ordered by stamp.
//! - DeleteCollection raises a "cleared at" stamp (a max register): every face and user
//!   written at or before it is dropped from memory at once, and operations stamped at or
//!   before it are ignored when they arrive later. Removals are the exception: a removed
//!   FaceId stays removed.
//! - The version vector is derived from the operations applied here, never taken from a
//!   sender, so no one can make this replica believe it has seen what it has not.
//!
//! Applying operations is commutative, associative and idempotent, so replicas that exchange
//! the same operations in any order reach the same visible state (see the proptests in
//! `tests/`).
//!
//! Memory: visible faces live in one dense table ([`FaceTable`]): binary ids, a packed row of
//! metadata, the association register, and the vector as int8 codes in contiguous rows that
//! search scans directly. It is the only copy of each vector. Tombstones and associations
//! that arrived before their face sit in small side maps.

use crate::hlc::{Hlc, ReplicaId, VersionVector};
use crate::ids::Uuid;
use crate::search::{reserve_for, Rows};
use hashbrown::HashTable;
use likeness_vision::BoundingBox;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

/// A face as operations carry it: Rekognition's `Face` plus its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFace {
    pub face_id: Uuid,
    pub image_id: Uuid,
    pub external_image_id: Option<String>,
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    /// Canonical int8 codes of the unit vector ([`crate::search::quantize`]).
    pub vector: Vec<i8>,
}

/// Collection-level metadata register.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionMeta {
    pub live: bool,
    pub face_model_version: String,
    pub created_millis: u64,
}

/// A user register's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserValue {
    pub live: bool,
    pub client_request_token: Option<String>,
}

/// A value with the stamp of the write that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lww<T> {
    pub stamp: Hlc,
    pub value: T,
}

impl<T> Lww<T> {
    fn set(&mut self, stamp: Hlc, value: T) {
        if stamp > self.stamp {
            self.stamp = stamp;
            self.value = value;
        }
    }
}

/// One mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// Create (live) or delete (not live) the collection.
    Meta(CollectionMeta),
    AddFace(StoredFace),
    RemoveFace {
        face_id: Uuid,
    },
    /// Create (live) or delete (not live) a user.
    User {
        user_id: String,
        value: UserValue,
    },
    /// Point a face at a user, or at none.
    Associate {
        face_id: Uuid,
        user_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub stamp: Hlc,
    pub kind: OpKind,
}

/// A visible face, read from the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceView<'a> {
    pub face_id: Uuid,
    pub image_id: Uuid,
    pub external_image_id: Option<&'a str>,
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    /// Row in the table (valid until the next change).
    pub row: usize,
}

/// What a removed face keeps: its stamps.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tombstone {
    removed: Hlc,
    /// Newest add seen, so compaction knows when every writer has seen it.
    added: Option<Hlc>,
}

/// An association register, packed (24 bytes): no register, a register naming no one, or a
/// register naming user `n` of [`UserNames`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Assoc {
    millis: u64,
    replica: ReplicaId,
    counter: u32,
    user: u32,
}

const NO_REGISTER: u32 = u32::MAX;
const NOBODY: u32 = u32::MAX - 1;

impl Assoc {
    const NONE: Assoc = Assoc { millis: 0, replica: 0, counter: 0, user: NO_REGISTER };

    fn new(stamp: Hlc, user: u32) -> Self {
        Assoc { millis: stamp.millis, replica: stamp.replica, counter: stamp.counter, user }
    }
    fn is_set(&self) -> bool {
        self.user != NO_REGISTER
    }
    fn stamp(&self) -> Hlc {
        Hlc { millis: self.millis, counter: self.counter, replica: self.replica }
    }
    /// The user index the register names, if any.
    fn user(&self) -> Option<u32> {
        (self.user < NOBODY).then_some(self.user)
    }
}

/// One visible face's metadata (56 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    image_id: Uuid,
    bounding_box: [f32; 4],
    confidence: f32,
    added_millis: u64,
    added_counter: u32,
    added_replica: ReplicaId,
}

impl Row {
    fn added(&self) -> Hlc {
        Hlc { millis: self.added_millis, counter: self.added_counter, replica: self.added_replica }
    }
}

/// UserIds named by association registers, interned: registers hold a 4-byte index, and each
/// name knows the faces whose register names it (so a user's faces are found without a
/// scan). A name nothing refers to any more is dropped.
#[derive(Debug, Clone, Default)]
struct UserNames {
    by_name: HashMap<Arc<str>, u32>,
    entries: Vec<Option<(Arc<str>, Vec<Uuid>)>>,
    free: Vec<u32>,
}

impl UserNames {
    fn index(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    fn name(&self, ix: u32) -> Option<&str> {
        self.entries.get(ix as usize).and_then(|e| e.as_ref()).map(|(n, _)| &**n)
    }

    fn faces(&self, name: &str) -> &[Uuid] {
        self.index(name).and_then(|ix| self.entries[ix as usize].as_ref()).map_or(&[], |(_, f)| f.as_slice())
    }

    /// Record that `face`'s register names `name`; returns the name's index.
    fn link(&mut self, name: &str, face: Uuid) -> u32 {
        let ix = match self.index(name) {
            Some(ix) => ix,
            None => {
                let name: Arc<str> = name.into();
                let ix = match self.free.pop() {
                    Some(ix) => {
                        self.entries[ix as usize] = Some((name.clone(), Vec::new()));
                        ix
                    }
                    None => {
                        self.entries.push(Some((name.clone(), Vec::new())));
                        (self.entries.len() - 1) as u32
                    }
                };
                self.by_name.insert(name, ix);
                ix
            }
        };
        if let Some((_, faces)) = self.entries[ix as usize].as_mut() {
            faces.reserve_exact(1);
            faces.push(face);
        }
        ix
    }

    fn unlink(&mut self, ix: u32, face: Uuid) {
        let Some(Some((name, faces))) = self.entries.get_mut(ix as usize) else { return };
        if let Some(p) = faces.iter().position(|f| *f == face) {
            faces.swap_remove(p);
        }
        if faces.is_empty() {
            let name = name.clone();
            self.by_name.remove(&name);
            self.entries[ix as usize] = None;
            self.free.push(ix);
        }
    }
}

/// The visible faces: one row each, columns kept in step, vectors as int8 rows that search
/// scans in place. Lookups by FaceId go through a hash table of row numbers (4 bytes per
/// face rather than a second copy of the id).
#[derive(Debug, Clone, Default)]
pub struct FaceTable {
    ids: Vec<Uuid>,
    rows: Vec<Row>,
    external: Vec<Option<Box<str>>>,
    assoc: Vec<Assoc>,
    vectors: Rows,
    lookup: HashTable<u32>,
    hasher: RandomState,
}

impl FaceTable {
    fn hash(&self, id: &Uuid) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The row of a visible face.
    pub fn row_of(&self, id: &Uuid) -> Option<usize> {
        let ids = &self.ids;
        self.lookup.find(self.hash(id), |&r| ids[r as usize] == *id).map(|&r| r as usize)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn vectors(&self) -> &Rows {
        &self.vectors
    }

    pub fn id(&self, row: usize) -> Uuid {
        self.ids[row]
    }

    pub fn view(&self, row: usize) -> FaceView<'_> {
        let r = &self.rows[row];
        let [width, height, left, top] = r.bounding_box;
        FaceView {
            face_id: self.ids[row],
            image_id: r.image_id,
            external_image_id: self.external[row].as_deref(),
            bounding_box: BoundingBox { width, height, left, top },
            confidence: r.confidence,
            row,
        }
    }

    /// Add a row; false (nothing stored) if the vector does not fit the table.
    fn insert(&mut self, face: &StoredFace, added: Hlc, assoc: Assoc) -> bool {
        if !self.vectors.push(&face.vector) {
            return false;
        }
        let row = self.ids.len() as u32;
        let b = face.bounding_box;
        reserve_for(&mut self.ids, 1);
        reserve_for(&mut self.rows, 1);
        reserve_for(&mut self.external, 1);
        reserve_for(&mut self.assoc, 1);
        self.ids.push(face.face_id);
        self.rows.push(Row {
            image_id: face.image_id,
            bounding_box: [b.width, b.height, b.left, b.top],
            confidence: face.confidence,
            added_millis: added.millis,
            added_counter: added.counter,
            added_replica: added.replica,
        });
        self.external.push(face.external_image_id.as_deref().map(Into::into));
        self.assoc.push(assoc);
        let hash = self.hash(&face.face_id);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.lookup.insert_unique(hash, row, |&r| hasher.hash_one(ids[r as usize]));
        true
    }

    /// Remove a row (the last row moves into its place); returns its id, row and register.
    fn remove(&mut self, row: usize) -> (Uuid, Row, Assoc) {
        let id = self.ids[row];
        let hash = self.hash(&id);
        if let Ok(entry) = self.lookup.find_entry(hash, |&r| r as usize == row) {
            entry.remove();
        }
        let last = self.ids.len() - 1;
        if row != last {
            let moved = self.ids[last];
            let hash = self.hash(&moved);
            if let Some(r) = self.lookup.find_mut(hash, |&r| r as usize == last) {
                *r = row as u32;
            }
        }
        self.vectors.swap_remove(row);
        self.external.swap_remove(row);
        let assoc = self.assoc.swap_remove(row);
        let data = self.rows.swap_remove(row);
        self.ids.swap_remove(row);
        (id, data, assoc)
    }

    /// The face as an operation carries it.
    fn stored(&self, row: usize) -> StoredFace {
        let v = self.view(row);
        StoredFace {
            face_id: v.face_id,
            image_id: v.image_id,
            external_image_id: v.external_image_id.map(str::to_string),
            bounding_box: v.bounding_box,
            confidence: v.confidence,
            vector: self.vectors.codes(row).to_vec(),
        }
    }
}

/// The CRDT state of one collection.
#[derive(Debug, Clone)]
pub struct CollectionState {
    pub id: String,
    pub meta: Option<Lww<CollectionMeta>>,
    pub cleared_at: Option<Hlc>,
    /// Visible faces.
    pub faces: FaceTable,
    /// Removed faces.
    removed: BTreeMap<Uuid, Tombstone>,
    /// Association registers of faces not visible (yet): their add has not arrived, or was
    /// cleared while the register is newer.
    orphans: BTreeMap<Uuid, Assoc>,
    pub users: BTreeMap<String, Lww<UserValue>>,
    /// Newest stamp applied here from each replica.
    pub version: VersionVector,
    /// Stamps every writer had seen when tombstones were last compacted away: an operation
    /// at or below it was applied here before (or was compacted), so it is ignored and a
    /// late copy of a dropped face cannot come back.
    pub floor: VersionVector,
    names: UserNames,
}

/// What a state keeps of one FaceId ([`CollectionState::face_entries`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceEntry {
    pub face_id: Uuid,
    /// Newest add seen (none once a collection delete covers it).
    pub added: Option<Hlc>,
    pub removed: Option<Hlc>,
    /// Stamp of the association register, if one is kept.
    pub association: Option<Hlc>,
    /// Whether the face's body (vector, ids, box) is in memory.
    pub has_body: bool,
}

/// Why [`CollectionState::compact`] refused to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactionError {
    #[error("replica {0:016x} has written to this collection but sent no acknowledgement; dropping tombstones it has not seen could bring deleted data back")]
    MissingAcknowledgement(ReplicaId),
}

fn after(stamp: Hlc, cleared: Option<Hlc>) -> bool {
    cleared.is_none_or(|c| stamp > c)
}

impl CollectionState {
    pub fn new(id: impl Into<String>) -> Self {
        CollectionState {
            id: id.into(),
            meta: None,
            cleared_at: None,
            faces: FaceTable::default(),
            removed: BTreeMap::new(),
            orphans: BTreeMap::new(),
            users: BTreeMap::new(),
            version: VersionVector::default(),
            floor: VersionVector::default(),
            names: UserNames::default(),
        }
    }

    /// Whether the collection exists (created and not deleted since).
    pub fn is_live(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.value.live)
    }

    pub fn face_model_version(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.value.face_model_version.as_str())
    }

    pub fn live_face(&self, face_id: &Uuid) -> Option<FaceView<'_>> {
        self.faces.row_of(face_id).map(|r| self.faces.view(r))
    }

    /// Visible faces, in table order (not sorted).
    pub fn live_faces(&self) -> impl Iterator<Item = FaceView<'_>> {
        (0..self.faces.len()).map(|r| self.faces.view(r))
    }

    /// A visible face's (stored, unit) vector.
    pub fn face_vector(&self, face_id: &Uuid) -> Option<Vec<f32>> {
        self.faces.row_of(face_id).map(|r| self.faces.vectors.vector(r))
    }

    pub fn user_live(&self, user_id: &str) -> bool {
        self.users.get(user_id).is_some_and(|u| u.value.live && after(u.stamp, self.cleared_at))
    }

    pub fn live_users(&self) -> impl Iterator<Item = (&String, &Lww<UserValue>)> {
        self.users.iter().filter(|(id, _)| self.user_live(id))
    }

    /// The user a visible face (row) is associated with, if that user exists.
    pub fn row_user(&self, row: usize) -> Option<&str> {
        let user = self.names.name(self.faces.assoc[row].user()?)?;
        self.user_live(user).then_some(user)
    }

    /// The user a visible face is associated with, if that user exists.
    pub fn face_user(&self, face_id: &Uuid) -> Option<&str> {
        self.row_user(self.faces.row_of(face_id)?)
    }

    /// FaceIds associated with a user, sorted. Proportional to the user's faces, not the
    /// collection's.
    pub fn user_faces(&self, user_id: &str) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> =
            self.names.faces(user_id).iter().filter(|id| self.face_user(id) == Some(user_id)).copied().collect();
        ids.sort();
        ids
    }

    /// Add the unit vectors of a user's faces into `sum`; returns how many.
    pub fn sum_user_vectors(&self, user_id: &str, sum: &mut [f32]) -> usize {
        let mut n = 0;
        for id in self.names.faces(user_id) {
            if let Some(row) = self.faces.row_of(id) {
                if self.row_user(row) == Some(user_id) {
                    self.faces.vectors.add_to(row, sum);
                    n += 1;
                }
            }
        }
        n
    }

    /// The association register of a face, visible or not.
    fn register(&self, face_id: &Uuid) -> Assoc {
        match self.faces.row_of(face_id) {
            Some(r) => self.faces.assoc[r],
            None => self.orphans.get(face_id).copied().unwrap_or(Assoc::NONE),
        }
    }

    fn register_user(&self, face_id: &Uuid) -> Option<String> {
        self.register(face_id).user().and_then(|ix| self.names.name(ix)).map(str::to_string)
    }

    /// Apply one operation.
    pub fn apply(&mut self, op: &Op) {
        if self.floor.covers(op.stamp) {
            return;
        }
        self.version.observe(op.stamp);
        let cleared = |stamp: Hlc| self.cleared_at.is_some_and(|c| stamp <= c);
        match &op.kind {
            OpKind::Meta(m) => {
                match &mut self.meta {
                    Some(reg) => reg.set(op.stamp, m.clone()),
                    None => self.meta = Some(Lww { stamp: op.stamp, value: m.clone() }),
                }
                if !m.live && !cleared(op.stamp) {
                    self.cleared_at = Some(op.stamp);
                    self.purge_cleared();
                }
            }
            OpKind::AddFace(face) => {
                if cleared(op.stamp) {
                    return;
                }
                if let Some(t) = self.removed.get_mut(&face.face_id) {
                    t.added = Some(t.added.map_or(op.stamp, |a| a.max(op.stamp)));
                    return;
                }
                if let Some(row) = self.faces.row_of(&face.face_id) {
                    let r = &mut self.faces.rows[row];
                    if op.stamp > r.added() {
                        (r.added_millis, r.added_counter, r.added_replica) =
                            (op.stamp.millis, op.stamp.counter, op.stamp.replica);
                    }
                    return;
                }
                let assoc = self.orphans.get(&face.face_id).copied().unwrap_or(Assoc::NONE);
                if self.faces.insert(face, op.stamp, assoc) {
                    self.orphans.remove(&face.face_id);
                }
            }
            OpKind::RemoveFace { face_id } => {
                let mut added = None;
                let mut register = Assoc::NONE;
                if let Some(row) = self.faces.row_of(face_id) {
                    let (_, data, assoc) = self.faces.remove(row);
                    added = Some(data.added());
                    register = assoc;
                } else if let Some(assoc) = self.orphans.remove(face_id) {
                    register = assoc;
                }
                if let Some(ix) = register.user() {
                    self.names.unlink(ix, *face_id);
                }
                let t = self.removed.entry(*face_id).or_insert(Tombstone { removed: op.stamp, added: None });
                t.removed = t.removed.max(op.stamp);
                t.added = t.added.max(added);
            }
            OpKind::User { user_id, value } => {
                if !cleared(op.stamp) {
                    // A deleted user keeps only what convergence needs: no request token.
                    let value =
                        if value.live { value.clone() } else { UserValue { live: false, client_request_token: None } };
                    match self.users.get_mut(user_id) {
                        Some(reg) => reg.set(op.stamp, value),
                        None => {
                            self.users.insert(user_id.clone(), Lww { stamp: op.stamp, value });
                        }
                    }
                }
            }
            OpKind::Associate { face_id, user_id } => {
                if cleared(op.stamp) || self.removed.contains_key(face_id) {
                    return;
                }
                let old = self.register(face_id);
                if old.is_set() && op.stamp <= old.stamp() {
                    return;
                }
                let old_name = old.user().and_then(|ix| self.names.name(ix));
                let user = if old_name.is_some() && old_name == user_id.as_deref() {
                    old.user
                } else {
                    if let Some(ix) = old.user() {
                        self.names.unlink(ix, *face_id);
                    }
                    match user_id {
                        Some(u) => self.names.link(u, *face_id),
                        None => NOBODY,
                    }
                };
                let new = Assoc::new(op.stamp, user);
                match self.faces.row_of(face_id) {
                    Some(r) => self.faces.assoc[r] = new,
                    None => {
                        self.orphans.insert(*face_id, new);
                    }
                }
            }
        }
    }

    /// Drop every part stamped at or before `cleared_at` (removals excepted): deleted
    /// faces' vectors and metadata, users, associations.
    fn purge_cleared(&mut self) {
        let Some(c) = self.cleared_at else { return };
        for row in (0..self.faces.len()).rev() {
            if self.faces.rows[row].added() <= c {
                let (id, _, assoc) = self.faces.remove(row);
                if assoc.is_set() && assoc.stamp() > c {
                    self.orphans.insert(id, assoc);
                } else if let Some(ix) = assoc.user() {
                    self.names.unlink(ix, id);
                }
            } else {
                let assoc = self.faces.assoc[row];
                if assoc.is_set() && assoc.stamp() <= c {
                    if let Some(ix) = assoc.user() {
                        self.names.unlink(ix, self.faces.ids[row]);
                    }
                    self.faces.assoc[row] = Assoc::NONE;
                }
            }
        }
        let stale: Vec<(Uuid, Assoc)> =
            self.orphans.iter().filter(|(_, a)| a.stamp() <= c).map(|(id, a)| (*id, *a)).collect();
        for (id, assoc) in stale {
            self.orphans.remove(&id);
            if let Some(ix) = assoc.user() {
                self.names.unlink(ix, id);
            }
        }
        for t in self.removed.values_mut() {
            if t.added.is_some_and(|a| a <= c) {
                t.added = None;
            }
        }
        self.users.retain(|_, u| u.stamp > c);
    }

    /// The users whose vector `op` can change, before it is applied (`None`: all of them).
    pub fn users_touched_by(&self, op: &Op) -> Option<Vec<String>> {
        Some(match &op.kind {
            OpKind::Meta(_) => return None,
            OpKind::AddFace(f) => self.register_user(&f.face_id).into_iter().collect(),
            OpKind::RemoveFace { face_id } => self.register_user(face_id).into_iter().collect(),
            OpKind::User { user_id, .. } => vec![user_id.clone()],
            OpKind::Associate { face_id, user_id } => {
                self.register_user(face_id).into_iter().chain(user_id.clone()).collect()
            }
        })
    }

    /// Every operation with a stamp the version vector `since` does not cover: what a replica
    /// at `since` is missing. `VersionVector::default()` gives a full snapshot. A removed
    /// face travels as its removal alone.
    pub fn ops_since(&self, since: &VersionVector) -> Vec<Op> {
        let new = |s: Hlc| !since.covers(s);
        let mut ops = Vec::new();
        if let Some(c) = self.cleared_at {
            if new(c) && self.meta.as_ref().is_none_or(|m| m.stamp != c) {
                let version = self.face_model_version().unwrap_or_default().to_string();
                ops.push(Op {
                    stamp: c,
                    kind: OpKind::Meta(CollectionMeta { live: false, face_model_version: version, created_millis: 0 }),
                });
            }
        }
        if let Some(m) = &self.meta {
            if new(m.stamp) {
                ops.push(Op { stamp: m.stamp, kind: OpKind::Meta(m.value.clone()) });
            }
        }
        for (id, u) in &self.users {
            if new(u.stamp) {
                ops.push(Op { stamp: u.stamp, kind: OpKind::User { user_id: id.clone(), value: u.value.clone() } });
            }
        }
        for (id, t) in &self.removed {
            if new(t.removed) {
                ops.push(Op { stamp: t.removed, kind: OpKind::RemoveFace { face_id: *id } });
            }
        }
        let associate = |face_id: Uuid, a: &Assoc| Op {
            stamp: a.stamp(),
            kind: OpKind::Associate {
                face_id,
                user_id: a.user().and_then(|ix| self.names.name(ix)).map(str::to_string),
            },
        };
        for row in 0..self.faces.len() {
            let added = self.faces.rows[row].added();
            if new(added) {
                ops.push(Op { stamp: added, kind: OpKind::AddFace(self.faces.stored(row)) });
            }
            let a = &self.faces.assoc[row];
            if a.is_set() && new(a.stamp()) {
                ops.push(associate(self.faces.ids[row], a));
            }
        }
        for (id, a) in &self.orphans {
            if new(a.stamp()) {
                ops.push(associate(*id, a));
            }
        }
        ops.sort_by_key(|o| o.stamp);
        ops
    }

    /// Merge another trusted state of the same collection (this replica's own, or one it
    /// built) into this one, version vector included. Bytes from elsewhere go through
    /// `Collections::apply_changes`, which checks them and derives the version vector.
    pub fn merge(&mut self, other: &CollectionState) {
        for op in other.ops_since(&self.version) {
            self.apply(&op);
        }
        self.version.merge(&other.version);
    }

    /// The replicas that have written to this collection: the ones whose acknowledgement
    /// [`compact`](Self::compact) needs.
    pub fn writers(&self) -> impl Iterator<Item = ReplicaId> + '_ {
        self.version.0.keys().copied()
    }

    /// Drop the tombstones that every writer has seen: removed faces, deleted users with no
    /// associations left, and the rest of a cleared collection. `acknowledged` maps each
    /// writer to the version vector it has reached; a writer without an entry refuses the
    /// call (nothing is dropped), since its next sync could bring the data back. Returns how
    /// many entries were dropped.
    pub fn compact(&mut self, acknowledged: &BTreeMap<ReplicaId, VersionVector>) -> Result<usize, CompactionError> {
        if let Some(missing) = self.writers().find(|r| !acknowledged.contains_key(r)) {
            return Err(CompactionError::MissingAcknowledgement(missing));
        }
        // What every writer has seen: the component-wise minimum of their vectors.
        let mut floor = VersionVector::default();
        for r in self.writers() {
            let seen: Option<Vec<Hlc>> = acknowledged.values().map(|v| v.0.get(&r).copied()).collect();
            if let Some(s) = seen.and_then(|s| s.into_iter().min()) {
                floor.observe(s);
            }
        }
        let covered = |s: Hlc| floor.covers(s);
        let before = self.removed.len() + self.users.len();
        self.removed.retain(|_, t| !(covered(t.removed) && t.added.is_none_or(covered)));
        let names = &self.names;
        self.users.retain(|id, u| u.value.live || !covered(u.stamp) || !names.faces(id).is_empty());
        let dropped = before - (self.removed.len() + self.users.len());
        self.floor.merge(&floor);
        Ok(dropped)
    }

    /// Every FaceId this state knows (visible, removed, or with only an association), with
    /// what it keeps of each: for audits and tests of what deletion leaves behind.
    pub fn face_entries(&self) -> Vec<FaceEntry> {
        let mut out: BTreeMap<Uuid, FaceEntry> = BTreeMap::new();
        let blank =
            |id: Uuid| FaceEntry { face_id: id, added: None, removed: None, association: None, has_body: false };
        for row in 0..self.faces.len() {
            let id = self.faces.ids[row];
            let a = self.faces.assoc[row];
            out.insert(
                id,
                FaceEntry {
                    added: Some(self.faces.rows[row].added()),
                    association: a.is_set().then(|| a.stamp()),
                    has_body: true,
                    ..blank(id)
                },
            );
        }
        for (id, t) in &self.removed {
            let e = out.entry(*id).or_insert_with(|| blank(*id));
            e.removed = Some(t.removed);
            e.added = e.added.max(t.added);
        }
        for (id, a) in &self.orphans {
            out.entry(*id).or_insert_with(|| blank(*id)).association = Some(a.stamp());
        }
        out.into_values().collect()
    }

    /// Number of tombstones (removed faces) kept.
    pub fn tombstone_count(&self) -> usize {
        self.removed.len()
    }

    /// Canonical view for equality checks across replicas: visible content only, ignoring
    /// stamps of entries that no longer matter.
    pub fn visible_summary(&self) -> (bool, Vec<(String, Option<String>)>, Vec<String>) {
        let mut faces: Vec<(String, Option<String>)> = (0..self.faces.len())
            .map(|r| (self.faces.ids[r].to_string(), self.row_user(r).map(str::to_string)))
            .collect();
        faces.sort();
        let users = self.live_users().map(|(id, _)| id.clone()).collect();
        (self.is_live(), faces, users)
    }
}
