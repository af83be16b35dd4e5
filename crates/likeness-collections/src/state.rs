//! A collection's replicated state: a CRDT built from operations stamped with HLCs.
//!
//! - Faces: an add-wins set with tombstones. FaceIds are unique, so an add and a remove of the
//!   same face never race; a face is present iff its add is known and no remove is. A removed
//!   face keeps its metadata as a tombstone until every known replica has seen the removal
//!   ([`CollectionState::compact`]); its vector is dropped at once.
//! - Each face's user association, each user, and the collection's own metadata are
//!   last-writer-wins registers ordered by stamp.
//! - DeleteCollection raises a "cleared at" stamp (a max register): anything stamped at or
//!   before it is gone, so a delete on one device and an index on another merge sensibly.
//!
//! Applying operations is commutative, associative and idempotent, so replicas that exchange
//! the same operations in any order reach the same state (see the proptests in `tests/`).

use crate::hlc::{Hlc, VersionVector};
use likeness_vision::BoundingBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A stored face: Rekognition's `Face` plus its vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFace {
    pub face_id: String,
    pub image_id: String,
    pub external_image_id: Option<String>,
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    /// Unit vector; empty once the face is removed.
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
    pub face: Option<StoredFace>,
    pub added: Option<Hlc>,
    pub removed: Option<Hlc>,
    pub user: Option<Lww<Option<String>>>,
}

/// The CRDT state of one collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionState {
    pub id: String,
    pub meta: Option<Lww<CollectionMeta>>,
    pub cleared_at: Option<Hlc>,
    pub faces: BTreeMap<String, FaceSlot>,
    pub users: BTreeMap<String, Lww<UserValue>>,
    pub version: VersionVector,
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

    /// FaceIds associated with a user, sorted.
    pub fn user_faces(&self, user_id: &str) -> Vec<&str> {
        self.faces.keys().filter(|id| self.face_user(id) == Some(user_id)).map(String::as_str).collect()
    }

    /// Apply one operation; returns how the set of visible vectors changed.
    pub fn apply(&mut self, op: &Op) -> Vec<IndexChange> {
        let before = self.visible_snapshot_for(op);
        self.version.observe(op.stamp);
        match &op.kind {
            OpKind::Meta(m) => {
                if !m.live {
                    self.cleared_at = Some(self.cleared_at.map_or(op.stamp, |c| c.max(op.stamp)));
                }
                match &mut self.meta {
                    Some(reg) => reg.set(op.stamp, m.clone()),
                    None => self.meta = Some(Lww { stamp: op.stamp, value: m.clone() }),
                }
            }
            OpKind::AddFace(face) => {
                let slot = self.faces.entry(face.face_id.clone()).or_default();
                // Add wins: the latest add counts, so an add after a collection clear survives it.
                slot.added = Some(slot.added.map_or(op.stamp, |a| a.max(op.stamp)));
                if slot.face.is_none() {
                    let mut f = face.clone();
                    if slot.removed.is_some() {
                        f.vector = Vec::new();
                    }
                    slot.face = Some(f);
                }
            }
            OpKind::RemoveFace { face_id } => {
                let slot = self.faces.entry(face_id.clone()).or_default();
                slot.removed = Some(slot.removed.map_or(op.stamp, |r| r.max(op.stamp)));
                if let Some(f) = slot.face.as_mut() {
                    f.vector = Vec::new();
                }
            }
            OpKind::User { user_id, value } => match self.users.get_mut(user_id) {
                Some(reg) => reg.set(op.stamp, value.clone()),
                None => {
                    self.users.insert(user_id.clone(), Lww { stamp: op.stamp, value: value.clone() });
                }
            },
            OpKind::Associate { face_id, user_id } => {
                let slot = self.faces.entry(face_id.clone()).or_default();
                match &mut slot.user {
                    Some(reg) => reg.set(op.stamp, user_id.clone()),
                    None => slot.user = Some(Lww { stamp: op.stamp, value: user_id.clone() }),
                }
            }
        }
        self.index_changes(before)
    }

    /// Which face ids an op can affect, with their visibility before it.
    fn visible_snapshot_for(&self, op: &Op) -> Vec<(String, bool)> {
        match &op.kind {
            OpKind::Meta(_) => self.faces.iter().map(|(id, s)| (id.clone(), self.face_visible(s))).collect(),
            OpKind::AddFace(f) => {
                vec![(f.face_id.clone(), self.faces.get(&f.face_id).is_some_and(|s| self.face_visible(s)))]
            }
            OpKind::RemoveFace { face_id } => {
                vec![(face_id.clone(), self.faces.get(face_id).is_some_and(|s| self.face_visible(s)))]
            }
            _ => Vec::new(),
        }
    }

    fn index_changes(&self, before: Vec<(String, bool)>) -> Vec<IndexChange> {
        before
            .into_iter()
            .filter_map(|(id, was)| {
                let now = self.faces.get(&id).is_some_and(|s| self.face_visible(s));
                match (was, now) {
                    (false, true) => Some(IndexChange::Insert(id)),
                    (true, false) => Some(IndexChange::Remove(id)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Every operation with a stamp the version vector `since` does not cover: what a replica
    /// at `since` is missing. `VersionVector::default()` gives a full snapshot.
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
            if let (Some(a), Some(f)) = (slot.added, &slot.face) {
                if new(a) {
                    ops.push(Op { stamp: a, kind: OpKind::AddFace(f.clone()) });
                }
            }
            if let Some(r) = slot.removed {
                if new(r) {
                    ops.push(Op { stamp: r, kind: OpKind::RemoveFace { face_id: id.clone() } });
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

    /// Merge another replica's state of the same collection into this one.
    pub fn merge(&mut self, other: &CollectionState) -> Vec<IndexChange> {
        let mut changes = Vec::new();
        for op in other.ops_since(&VersionVector::default()) {
            changes.extend(self.apply(&op));
        }
        self.version.merge(&other.version);
        changes
    }

    /// Drop tombstones every replica in `acknowledged` has seen: removed faces, faces and
    /// users cleared by a collection delete, and deleted users with no associations left.
    /// Returns how many entries were dropped.
    pub fn compact(&mut self, acknowledged: &[VersionVector]) -> usize {
        let seen_by_all = |s: Hlc| acknowledged.iter().all(|v| v.covers(s));
        let cleared = self.cleared_at.filter(|c| seen_by_all(*c));
        let before = self.faces.len() + self.users.len();
        self.faces.retain(|_, slot| {
            let gone_by_remove =
                slot.removed.is_some_and(|r| seen_by_all(r)) && slot.added.is_none_or(|a| seen_by_all(a));
            let gone_by_clear = cleared
                .is_some_and(|c| slot.added.is_some_and(|a| a <= c) && slot.user.as_ref().is_none_or(|u| u.stamp <= c));
            !(gone_by_remove || gone_by_clear)
        });
        let referenced: std::collections::BTreeSet<String> =
            self.faces.values().filter_map(|s| s.user.as_ref().and_then(|u| u.value.clone())).collect();
        self.users.retain(|id, u| {
            let dead = !u.value.live || cleared.is_some_and(|c| u.stamp <= c);
            !(dead && seen_by_all(u.stamp) && !referenced.contains(id))
        });
        before - (self.faces.len() + self.users.len())
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
