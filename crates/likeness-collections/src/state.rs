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

use crate::hlc::{Hlc, ReplicaId, VersionVector};
use likeness_vision::BoundingBox;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A stored face: Rekognition's `Face` plus its vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFace {
    pub face_id: String,
    pub image_id: String,
    pub external_image_id: Option<String>,
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    /// Unit vector. Empty once handed to a search index ([`CollectionState::detach_vector`]),
    /// which then holds the only copy.
    pub vector: Vec<f32>,
}

/// Collection-level metadata register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMeta {
    pub live: bool,
    pub face_model_version: String,
    pub created_millis: u64,
}

/// A user register's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserValue {
    pub live: bool,
    pub client_request_token: Option<String>,
}

/// A value with the stamp of the write that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpKind {
    /// Create (live) or delete (not live) the collection.
    Meta(CollectionMeta),
    AddFace(StoredFace),
    RemoveFace {
        face_id: String,
    },
    /// Create (live) or delete (not live) a user.
    User {
        user_id: String,
        value: UserValue,
    },
    /// Point a face at a user, or at none.
    Associate {
        face_id: String,
        user_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub stamp: Hlc,
    pub kind: OpKind,
}

/// Everything known about one FaceId. Parts may arrive in any order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaceSlot {
    /// The face itself: only while it is added and not removed.
    pub face: Option<StoredFace>,
    pub added: Option<Hlc>,
    pub removed: Option<Hlc>,
    /// The association register: only while the face is not removed.
    pub user: Option<Lww<Option<String>>>,
}

impl FaceSlot {
    fn is_empty(&self) -> bool {
        self.face.is_none() && self.added.is_none() && self.removed.is_none() && self.user.is_none()
    }
}

/// The CRDT state of one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionState {
    pub id: String,
    pub meta: Option<Lww<CollectionMeta>>,
    pub cleared_at: Option<Hlc>,
    pub faces: BTreeMap<String, FaceSlot>,
    pub users: BTreeMap<String, Lww<UserValue>>,
    /// Newest stamp applied here from each replica.
    pub version: VersionVector,
    /// Stamps every writer had seen when tombstones were last compacted away: an operation
    /// at or below it was applied here before (or was compacted), so it is ignored and a
    /// late copy of a dropped face cannot come back.
    pub floor: VersionVector,
    /// UserId -> FaceIds whose association register names it (visible or not), so a user's
    /// faces are found without scanning the collection.
    members: BTreeMap<String, BTreeSet<String>>,
}

/// Why [`CollectionState::compact`] refused to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactionError {
    #[error("replica {0:016x} has written to this collection but sent no acknowledgement; dropping tombstones it has not seen could bring deleted data back")]
    MissingAcknowledgement(ReplicaId),
}

/// A change to the set of live face vectors, for the search index to follow.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    Insert(String),
    Remove(String),
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
            faces: BTreeMap::new(),
            users: BTreeMap::new(),
            version: VersionVector::default(),
            floor: VersionVector::default(),
            members: BTreeMap::new(),
        }
    }

    /// Whether the collection exists (created and not deleted since).
    pub fn is_live(&self) -> bool {
        self.meta.as_ref().is_some_and(|m| m.value.live)
    }

    pub fn face_model_version(&self) -> Option<&str> {
        self.meta.as_ref().map(|m| m.value.face_model_version.as_str())
    }

    /// A face is visible iff it was added after the last clear and never removed.
    pub fn face_visible(&self, slot: &FaceSlot) -> bool {
        matches!((slot.added, slot.removed, &slot.face), (Some(a), None, Some(_)) if after(a, self.cleared_at))
    }

    pub fn live_face(&self, face_id: &str) -> Option<&StoredFace> {
        self.faces.get(face_id).filter(|s| self.face_visible(s)).and_then(|s| s.face.as_ref())
    }

    pub fn live_faces(&self) -> impl Iterator<Item = &StoredFace> {
        self.faces.values().filter(|s| self.face_visible(s)).filter_map(|s| s.face.as_ref())
    }

    pub fn user_live(&self, user_id: &str) -> bool {
        self.users.get(user_id).is_some_and(|u| u.value.live && after(u.stamp, self.cleared_at))
    }

    pub fn live_users(&self) -> impl Iterator<Item = (&String, &Lww<UserValue>)> {
        self.users.iter().filter(|(id, _)| self.user_live(id))
    }

    /// The user a visible face is associated with, if that user exists.
    pub fn face_user(&self, face_id: &str) -> Option<&str> {
        let slot = self.faces.get(face_id)?;
        if !self.face_visible(slot) {
            return None;
        }
        let reg = slot.user.as_ref()?;
        let user = reg.value.as_deref()?;
        (after(reg.stamp, self.cleared_at) && self.user_live(user)).then_some(user)
    }

    /// Take a visible face's vector out of the state, for a search index to keep as the only
    /// copy; [`ops_since`](Self::ops_since) then emits that face with an empty vector, to
    /// be filled from the index.
    pub fn detach_vector(&mut self, face_id: &str) -> Option<Vec<f32>> {
        self.faces.get_mut(face_id).and_then(|s| s.face.as_mut()).map(|f| std::mem::take(&mut f.vector))
    }

    /// FaceIds associated with a user, sorted. Proportional to the user's faces, not the
    /// collection's.
    pub fn user_faces(&self, user_id: &str) -> Vec<&str> {
        self.members
            .get(user_id)
            .into_iter()
            .flatten()
            .filter(|id| self.face_user(id) == Some(user_id))
            .map(String::as_str)
            .collect()
    }

    /// Apply one operation; returns how the set of visible vectors changed.
    pub fn apply(&mut self, op: &Op) -> Vec<IndexChange> {
        if self.floor.covers(op.stamp) {
            return Vec::new();
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
                    return self.purge_cleared();
                }
                Vec::new()
            }
            OpKind::AddFace(face) => {
                if cleared(op.stamp) {
                    return Vec::new();
                }
                let was = self.faces.get(&face.face_id).is_some_and(|s| self.face_visible(s));
                let slot = self.faces.entry(face.face_id.clone()).or_default();
                slot.added = Some(slot.added.map_or(op.stamp, |a| a.max(op.stamp)));
                if slot.removed.is_none() && slot.face.is_none() {
                    slot.face = Some(face.clone());
                }
                self.visibility_change(&face.face_id, was)
            }
            OpKind::RemoveFace { face_id } => {
                let was = self.faces.get(face_id).is_some_and(|s| self.face_visible(s));
                let slot = self.faces.entry(face_id.clone()).or_default();
                slot.removed = Some(slot.removed.map_or(op.stamp, |r| r.max(op.stamp)));
                slot.face = None;
                if let Some(old) = slot.user.take().and_then(|r| r.value) {
                    self.unlink(&old, face_id);
                }
                self.visibility_change(face_id, was)
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
                Vec::new()
            }
            OpKind::Associate { face_id, user_id } => {
                if cleared(op.stamp) || self.faces.get(face_id).is_some_and(|s| s.removed.is_some()) {
                    return Vec::new();
                }
                let slot = self.faces.entry(face_id.clone()).or_default();
                let old = slot.user.as_ref().and_then(|r| r.value.clone());
                match &mut slot.user {
                    Some(reg) => reg.set(op.stamp, user_id.clone()),
                    None => slot.user = Some(Lww { stamp: op.stamp, value: user_id.clone() }),
                }
                let new = slot.user.as_ref().and_then(|r| r.value.clone());
                if old != new {
                    if let Some(o) = old {
                        self.unlink(&o, face_id);
                    }
                    if let Some(n) = new {
                        self.members.entry(n).or_default().insert(face_id.clone());
                    }
                }
                Vec::new()
            }
        }
    }

    fn unlink(&mut self, user_id: &str, face_id: &str) {
        if let Some(set) = self.members.get_mut(user_id) {
            set.remove(face_id);
            if set.is_empty() {
                self.members.remove(user_id);
            }
        }
    }

    fn visibility_change(&self, face_id: &str, was: bool) -> Vec<IndexChange> {
        let now = self.faces.get(face_id).is_some_and(|s| self.face_visible(s));
        match (was, now) {
            (false, true) => vec![IndexChange::Insert(face_id.to_string())],
            (true, false) => vec![IndexChange::Remove(face_id.to_string())],
            _ => Vec::new(),
        }
    }

    /// Drop every part stamped at or before `cleared_at` (removals excepted): deleted
    /// faces' vectors and metadata, users, associations.
    fn purge_cleared(&mut self) -> Vec<IndexChange> {
        let Some(c) = self.cleared_at else { return Vec::new() };
        let mut changes = Vec::new();
        let mut emptied = Vec::new();
        for (id, slot) in self.faces.iter_mut() {
            if slot.added.is_some_and(|a| a <= c) {
                if slot.face.take().is_some() && slot.removed.is_none() {
                    changes.push(IndexChange::Remove(id.clone()));
                }
                slot.added = None;
            }
            if slot.user.as_ref().is_some_and(|u| u.stamp <= c) {
                slot.user = None;
            }
            if slot.is_empty() {
                emptied.push(id.clone());
            }
        }
        for id in emptied {
            self.faces.remove(&id);
        }
        self.users.retain(|_, u| u.stamp > c);
        self.rebuild_members();
        changes
    }

    fn rebuild_members(&mut self) {
        self.members.clear();
        for (id, slot) in &self.faces {
            if let Some(u) = slot.user.as_ref().and_then(|r| r.value.clone()) {
                self.members.entry(u).or_default().insert(id.clone());
            }
        }
    }

    /// The users whose vector `op` can change, before it is applied (`None`: all of them).
    pub fn users_touched_by(&self, op: &Op) -> Option<Vec<String>> {
        let reg_user =
            |face_id: &str| self.faces.get(face_id).and_then(|s| s.user.as_ref()).and_then(|r| r.value.clone());
        Some(match &op.kind {
            OpKind::Meta(_) => return None,
            OpKind::AddFace(f) => reg_user(&f.face_id).into_iter().collect(),
            OpKind::RemoveFace { face_id } => reg_user(face_id).into_iter().collect(),
            OpKind::User { user_id, .. } => vec![user_id.clone()],
            OpKind::Associate { face_id, user_id } => reg_user(face_id).into_iter().chain(user_id.clone()).collect(),
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
        for (id, slot) in &self.faces {
            if let Some(r) = slot.removed {
                if new(r) {
                    ops.push(Op { stamp: r, kind: OpKind::RemoveFace { face_id: id.clone() } });
                }
                continue;
            }
            if let (Some(a), Some(f)) = (slot.added, &slot.face) {
                if new(a) {
                    ops.push(Op { stamp: a, kind: OpKind::AddFace(f.clone()) });
                }
            }
            if let Some(u) = &slot.user {
                if new(u.stamp) {
                    ops.push(Op {
                        stamp: u.stamp,
                        kind: OpKind::Associate { face_id: id.clone(), user_id: u.value.clone() },
                    });
                }
            }
        }
        ops.sort_by_key(|o| o.stamp);
        ops
    }

    /// Merge another trusted state of the same collection (this replica's own, or one it
    /// built) into this one, version vector included. Bytes from elsewhere go through
    /// `Collections::apply_changes`, which checks them and derives the version vector.
    pub fn merge(&mut self, other: &CollectionState) -> Vec<IndexChange> {
        let mut changes = Vec::new();
        for op in other.ops_since(&self.version) {
            changes.extend(self.apply(&op));
        }
        self.version.merge(&other.version);
        changes
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
        let before = self.faces.len() + self.users.len();
        self.faces.retain(|_, slot| {
            let gone = slot.removed.is_some_and(covered) && slot.added.is_none_or(covered);
            !gone
        });
        let referenced: BTreeSet<&String> = self.members.keys().collect();
        let dead_users: Vec<String> = self
            .users
            .iter()
            .filter(|(id, u)| !u.value.live && covered(u.stamp) && !referenced.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead_users {
            self.users.remove(id);
        }
        let dropped = before - (self.faces.len() + self.users.len());
        self.floor.merge(&floor);
        Ok(dropped)
    }

    /// Canonical view for equality checks across replicas: visible content only, ignoring
    /// stamps of entries that no longer matter.
    pub fn visible_summary(&self) -> (bool, Vec<(String, Option<String>)>, Vec<String>) {
        let faces =
            self.live_faces().map(|f| (f.face_id.clone(), self.face_user(&f.face_id).map(str::to_string))).collect();
        let users = self.live_users().map(|(id, _)| id.clone()).collect();
        (self.is_live(), faces, users)
    }
}
