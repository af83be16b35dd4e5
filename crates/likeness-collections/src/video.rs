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
        let Some(resolved) = self.stream.resolve(engine, index, embedding) else { return Ok(None) };
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
        self.record(collections, resolved.index, embedding)?;
        Ok(Some(resolved))
    }

    /// Search one embedding of track `index` and keep the track's best matches.
    fn record<S: Store>(&mut self, collections: &Collections<S>, index: u32, embedding: &[f32]) -> Result<()> {
        let found = collections.search_faces_by_vector(
            &self.input.collection_id,
            embedding,
            self.input.face_match_threshold,
            Some(self.input.max_faces.unwrap_or(DEFAULT_VIDEO_MATCHES)),
        )?;
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
                matched_faces: self.best.get(&face.index).cloned().unwrap_or_default(),
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
                face_matches: self.best.get(index).cloned().unwrap_or_default(),
            })
            .collect();
        match sort_by {
            FaceSearchSortBy::Timestamp => persons.sort_by_key(|p| (p.timestamp, p.person.index)),
            FaceSearchSortBy::Index => persons.sort_by_key(|p| (p.person.index, p.timestamp)),
        }
        persons
    }
}
