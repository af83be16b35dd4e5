//! Face search over video, on the engine's per-frame path ([`likeness_vision::video`]):
//! streaming face search (Rekognition's stream processor: per frame, each tracked face and
//! what it matched, as `FaceSearchResponse`) and stored-video face search (what
//! `GetFaceSearch` returns: `Persons` with timestamps, person indexes and face matches).
//!
//! A face is searched when its track starts or shows a clearly better view, not every frame;
//! a track reports the best matches over its life, so a name does not flicker.

use crate::api::{
    FaceMatch, FaceSearchInput, FaceSearchResponse, FaceSearchSortBy, FrameSearch, PersonDetail, PersonMatch,
};
use crate::error::{CollectionError, Result};
use crate::service::Collections;
use crate::store::Store;
use likeness_vision::video::{EmbedRequest, FaceStream, Resolved, StreamFrame, VideoConfig};
use likeness_vision::{FaceDetail, FaceEngine, RgbImage};
use std::collections::BTreeMap;

/// A face search over one video or stream.
pub struct VideoFaceSearch {
    input: FaceSearchInput,
    stream: FaceStream,
    /// Best matches per track so far (kept after a track ends, for the stored-video result).
    best: BTreeMap<u32, Vec<FaceMatch>>,
    /// Matches of a track's first view from one network pass, until its flip-averaged
    /// vector lands in `best` ([`VideoFaceSearch::resolve_provisional`]).
    provisional: BTreeMap<u32, Vec<FaceMatch>>,
    /// Every face seen, per frame (for [`VideoFaceSearch::persons`]).
    seen: Vec<(u64, u32, FaceDetail)>,
    /// Recent splits (old track, new track, from this time on): frames tracked before a
    /// split but searched after it are reported under the new track.
    splits: Vec<(u32, u32, u64)>,
}

/// Splits remembered for frames still in flight between tracking and search (a host keeps
/// a couple at most).
const RECENT_SPLITS: usize = 16;

const DEFAULT_VIDEO_MATCHES: u32 = 5;

/// A vector from a host, checked and scaled to unit length (a host may hand over the sum of
/// the two network passes as it is).
fn unit(v: &[f32]) -> Result<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if v.len() != likeness_vision::EMBEDDING_DIMENSION || !norm.is_finite() || norm == 0.0 {
        return Err(CollectionError::InvalidParameter(format!(
            "a face vector has {} finite values, not all 0",
            likeness_vision::EMBEDDING_DIMENSION
        )));
    }
    Ok(v.iter().map(|x| x / norm).collect())
}

fn top(matches: &[FaceMatch]) -> f32 {
    matches.first().map_or(f32::NEG_INFINITY, |m| m.similarity)
}

impl VideoFaceSearch {
    pub fn new(input: FaceSearchInput, config: VideoConfig) -> Result<Self> {
        crate::ids::check_collection_id(&input.collection_id)?;
        if let Some(t) = input.face_match_threshold {
            if !(0.0..=100.0).contains(&t) {
                return Err(CollectionError::InvalidParameter(format!("FaceMatchThreshold must be 0-100, got {t}")));
            }
        }
        Ok(VideoFaceSearch {
            input,
            stream: FaceStream::new(config),
            best: BTreeMap::new(),
            provisional: BTreeMap::new(),
            seen: Vec::new(),
            splits: Vec::new(),
        })
    }

    /// One frame: [`track`](Self::track) then [`search`](Self::search).
    pub fn process<S: Store>(
        &mut self,
        engine: &FaceEngine,
        collections: &Collections<S>,
        frame: &RgbImage,
        timestamp_ms: u64,
    ) -> Result<FrameSearch> {
        let tracked = self.track(engine, frame, timestamp_ms)?;
        self.search(collections, tracked)
    }

    /// The image half of a frame, which needs no collection: detect, track, and embed the
    /// faces the tracker asks for. A host runs it outside any lock on the collections.
    pub fn track(&mut self, engine: &FaceEngine, frame: &RgbImage, timestamp_ms: u64) -> Result<StreamFrame> {
        Ok(self.stream.process(engine, frame, timestamp_ms)?)
    }

    /// The image half without the embedder: detect and track, and return the faces to embed
    /// as aligned crops. Embed them anywhere (`FaceEngine::embed_chip`, e.g. in another
    /// worker, so a new face does not hold up the next frames) and hand each vector to
    /// [`resolve`](Self::resolve); until then the face's track reports no new matches.
    pub fn track_deferred(
        &mut self,
        engine: &FaceEngine,
        frame: &RgbImage,
        timestamp_ms: u64,
    ) -> Result<(StreamFrame, Vec<EmbedRequest>)> {
        Ok(self.stream.process_deferred(engine, frame, timestamp_ms)?)
    }

    /// A deferred embedding of the frame at `timestamp_ms` is back: check its track still
    /// shows the same face (a new track if not), search it, and keep the track's best
    /// matches. None when the track has ended. On a split, the frames seen since
    /// `timestamp_ms` under the old track move to the new one, so the stored-video answer
    /// ([`persons`](Self::persons)) names them right even though the vector came late.
    pub fn resolve<S: Store>(
        &mut self,
        engine: &FaceEngine,
        collections: &Collections<S>,
        index: u32,
        timestamp_ms: u64,
        embedding: &[f32],
    ) -> Result<Option<Resolved>> {
        let embedding = unit(embedding)?;
        let Some(resolved) = self.stream.resolve(engine, index, &embedding) else { return Ok(None) };
        if let Some(old) = resolved.split_from {
            if self.splits.len() == RECENT_SPLITS {
                self.splits.remove(0);
            }
            self.splits.push((old, resolved.index, timestamp_ms));
            for (t, i, _) in self.seen.iter_mut().rev() {
                if *t < timestamp_ms {
                    break;
                }
                if *i == old {
                    *i = resolved.index;
                }
            }
        }
        self.record(collections, resolved.index, &embedding)?;
        Ok(Some(resolved))
    }

    /// A quick name for a track that has none yet: `one_pass` is one network pass over the
    /// crop of an [`EmbedRequest`] with `first` set (`FaceEngine::embed_chip_pass`), about half
    /// the embedder's time. Its matches are reported for the track until the flip-averaged
    /// vector of the same crop comes to [`resolve`](Self::resolve), which replaces them; they
    /// never add to the track's evidence, so the name it ends with is the full vector's.
    /// (Measured on lfw-dev: one pass against stored faces accepts no more strangers than
    /// the full vector does at any threshold of the similarity scale.) False when the track
    /// has ended or already has matches from a full vector.
    pub fn resolve_provisional<S: Store>(
        &mut self,
        collections: &Collections<S>,
        index: u32,
        one_pass: &[f32],
    ) -> Result<bool> {
        let one_pass = unit(one_pass)?;
        if self.best.contains_key(&index) || !self.stream.is_live(index) {
            return Ok(false);
        }
        let found = self.find(collections, &one_pass)?;
        self.provisional.insert(index, found);
        Ok(true)
    }

    fn find<S: Store>(&self, collections: &Collections<S>, embedding: &[f32]) -> Result<Vec<FaceMatch>> {
        collections.search_faces_by_vector(
            &self.input.collection_id,
            embedding,
            self.input.face_match_threshold,
            Some(self.input.max_faces.unwrap_or(DEFAULT_VIDEO_MATCHES)),
        )
    }

    /// A track's matches as reported: its best from full vectors, else its provisional ones.
    fn matches_of(&self, index: u32) -> Vec<FaceMatch> {
        self.best.get(&index).or_else(|| self.provisional.get(&index)).cloned().unwrap_or_default()
    }

    /// Search one embedding of track `index` and keep the track's best matches.
    fn record<S: Store>(&mut self, collections: &Collections<S>, index: u32, embedding: &[f32]) -> Result<()> {
        let found = self.find(collections, embedding)?;
        let evidence: Vec<(String, f32)> = found.iter().map(|m| (m.face.face_id.clone(), m.similarity)).collect();
        self.stream.record_matches(index, &evidence);
        let best = self.best.entry(index).or_default();
        if top(&found) > top(best) {
            *best = found;
        }
        Ok(())
    }

    /// The collection half: search the embedded faces of a tracked frame and report every
    /// tracked face with its track's best matches so far.
    pub fn search<S: Store>(&mut self, collections: &Collections<S>, out: StreamFrame) -> Result<FrameSearch> {
        let mut responses = Vec::with_capacity(out.faces.len());
        for mut face in out.faces {
            if let Some(&(_, new, _)) =
                self.splits.iter().rev().find(|&&(old, _, since)| old == face.index && out.timestamp_ms >= since)
            {
                face.index = new;
            }
            if let Some(embedding) = &face.embedding {
                self.record(collections, face.index, embedding)?;
            }
            self.seen.push((out.timestamp_ms, face.index, face.face.clone()));
            responses.push(FaceSearchResponse {
                index: face.index,
                matched_faces: self.matches_of(face.index),
                detected_face: face.face,
            });
        }
        Ok(FrameSearch { timestamp: out.timestamp_ms, face_search_response: responses, ended: out.ended })
    }

    /// Every person at every processed frame, with their track's best matches over the whole
    /// video (the stored-video answer, as GetFaceSearch's `Persons`).
    pub fn persons(&self, sort_by: FaceSearchSortBy) -> Vec<PersonMatch> {
        let mut persons: Vec<PersonMatch> = self
            .seen
            .iter()
            .map(|(timestamp, index, face)| PersonMatch {
                timestamp: *timestamp,
                person: PersonDetail { index: *index, bounding_box: face.bounding_box, face: face.clone() },
                face_matches: self.matches_of(*index),
            })
            .collect();
        match sort_by {
            FaceSearchSortBy::Timestamp => persons.sort_by_key(|p| (p.timestamp, p.person.index)),
            FaceSearchSortBy::Index => persons.sort_by_key(|p| (p.person.index, p.timestamp)),
        }
        persons
    }
}
