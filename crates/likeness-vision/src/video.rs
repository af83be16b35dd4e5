//! The per-frame path for video: one detector view per frame ([`FrameRange`]), the
//! [`Tracker`] joining detections into tracks, and each face embedded once (when its track
//! starts, and again only when a clearly better view comes), never every frame.
//!
//! Wasm-clean like the rest of the engine: the caller brings frames and their timestamps;
//! nothing here reads a clock or starts a thread. Searching the embeddings is the caller's
//! (`likeness-collections` has the collections); matches come back through
//! [`FaceStream::record_matches`] so a track's name is the best evidence over its life.

use crate::decode::RgbImage;
pub use crate::detector::FrameRange;
use crate::engine::FaceEngine;
use crate::error::VisionError;
use crate::tracker::{Observation, Tracker, TrackerConfig};
use crate::types::FaceDetail;
use crate::vector::cosine;
use std::collections::HashMap;

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConfig {
    pub range: FrameRange,
    pub tracker: TrackerConfig,
    /// Faces followed per frame at most (the largest).
    pub max_faces: usize,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig { range: FrameRange::Near, tracker: TrackerConfig::default(), max_faces: 10 }
    }
}

/// How useful a view of a face is for recognition, 0-1: detector confidence, size against
/// the embedder's 150 px chip, how frontal it is, and sharpness. The tracker re-embeds a
/// track only when this clearly improves.
pub fn recognition_quality(detail: &FaceDetail, size_pixels: f32) -> f32 {
    let unit = |v: f32| if v.is_finite() { v.clamp(0.0, 1.0) } else { 0.0 };
    let confidence = unit(detail.confidence / 100.0);
    let size = unit(size_pixels / 112.0);
    let frontal = unit(1.0 - detail.pose.yaw.abs() / 60.0) * unit(1.0 - detail.pose.pitch.abs() / 60.0);
    let sharp = unit(detail.quality.sharpness / 100.0);
    confidence * size * frontal * (0.5 + 0.5 * sharp)
}

/// One tracked face in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFace {
    /// The track: Rekognition's `Person.Index`.
    pub index: u32,
    /// The track started with this frame.
    pub started: bool,
    pub face: FaceDetail,
    /// Set when this view was embedded (a new track, or a clearly better view): search it.
    pub embedding: Option<Vec<f32>>,
}

/// What one frame held.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFrame {
    pub timestamp_ms: u64,
    pub faces: Vec<StreamFace>,
    /// Tracks that ended with this frame (their faces left).
    pub ended: Vec<u32>,
}

/// Below this calibrated similarity (false accept rate 1e-1: no same-person pair of the
/// calibration sets falls below it) a track's new embedding is someone else's face: the track
/// ends and a new one starts in its place.
const SAME_FACE_MIN_SIMILARITY: f32 = 50.0;

/// A face the tracker wants embedded, as the embedder's aligned crop: embed it anywhere
/// ([`FaceEngine::embed_chip`], e.g. in another worker) and give the vector back to
/// [`FaceStream::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub index: u32,
    pub chip: Vec<f32>,
    /// The track has no embedding yet: a host in a hurry to name it may search one network
    /// pass first (`FaceEngine::embed_chip_pass`, `VideoFaceSearch::resolve_provisional` in
    /// `likeness-collections`) and resolve the flip-averaged vector when it is done.
    pub first: bool,
}

/// Where a resolved embedding landed: its track (a new one when the face turned out to be
/// someone else's, `split_from` then naming the track that ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub index: u32,
    pub split_from: Option<u32>,
}

/// Below this correlation with the previous frame's appearance, a track's face may be
/// someone else's: it is embedded again at once rather than at its next recheck.
const SAME_LOOK_MIN_CORRELATION: f32 = 0.8;

/// An early recheck at most this often per track (ms of video time), so a face whose look
/// keeps changing (turning, lighting) costs a bounded number of embeddings.
const EARLY_RECHECK_MIN_MS: u64 = 500;

/// A video or live stream being read, frame by frame.
#[derive(Debug, Clone)]
pub struct FaceStream {
    config: VideoConfig,
    tracker: Tracker,
    /// Each live track's last embedding, to check later views against.
    references: HashMap<u32, Vec<f32>>,
    /// Each live track's look in its last frame ([`FaceEngine::appearance`]) and when it
    /// was last embedded early.
    looks: HashMap<u32, (Vec<f32>, u64)>,
    /// Tracks split by a resolved embedding, reported as ended with the next frame.
    split_ended: Vec<u32>,
}

impl FaceStream {
    pub fn new(config: VideoConfig) -> Self {
        FaceStream {
            config,
            tracker: Tracker::new(config.tracker),
            references: HashMap::new(),
            looks: HashMap::new(),
            split_ended: Vec::new(),
        }
    }

    /// Detect, track and (where due) embed the faces of the frame at `timestamp_ms` (never
    /// earlier than the previous frame's).
    pub fn process(
        &mut self,
        engine: &FaceEngine,
        frame: &RgbImage,
        timestamp_ms: u64,
    ) -> Result<StreamFrame, VisionError> {
        let (mut out, requests) = self.process_deferred(engine, frame, timestamp_ms)?;
        for request in requests {
            let embedding = engine.embed_chip(&request.chip)?;
            let Some(face) = out.faces.iter_mut().find(|f| f.index == request.index) else { continue };
            if let Some(resolved) = self.resolve(engine, request.index, &embedding) {
                if let Some(old) = resolved.split_from {
                    out.ended.push(old);
                    self.split_ended.retain(|&i| i != old);
                    (face.index, face.started) = (resolved.index, true);
                }
            }
            face.embedding = Some(embedding);
        }
        Ok(out)
    }

    /// Detect and track the faces of the frame at `timestamp_ms`, and say which faces to
    /// embed (as aligned crops) without embedding them: the caller embeds them wherever it
    /// likes and hands the vectors to [`FaceStream::resolve`], now or some frames later.
    pub fn process_deferred(
        &mut self,
        engine: &FaceEngine,
        frame: &RgbImage,
        timestamp_ms: u64,
    ) -> Result<(StreamFrame, Vec<EmbedRequest>), VisionError> {
        let mut located = engine.locate_frame(frame, self.config.range)?;
        located.truncate(self.config.max_faces);
        let observations: Vec<Observation> = located
            .iter()
            .map(|f| Observation {
                bounding_box: f.detail.bounding_box,
                quality: recognition_quality(&f.detail, f.size_pixels()),
            })
            .collect();
        let update = self.tracker.update(timestamp_ms, &observations)?;
        let mut ended = std::mem::take(&mut self.split_ended);
        ended.extend(update.ended);
        for index in &ended {
            self.references.remove(index);
            self.looks.remove(index);
        }
        let mut faces = Vec::with_capacity(update.assignments.len());
        let mut requests = Vec::new();
        for a in update.assignments {
            let f = &located[a.observation];
            // A sudden change of look (a cut, someone stepping into another's place) is
            // checked now, not at the next periodic recheck.
            let look = engine.appearance(frame, f);
            let (changed, early_ms) = match self.looks.get(&a.track) {
                Some((previous, early_ms)) => {
                    let correlation = cosine(previous, &look);
                    let due = timestamp_ms.saturating_sub(*early_ms) >= EARLY_RECHECK_MIN_MS;
                    (correlation < SAME_LOOK_MIN_CORRELATION && due && !a.embed, *early_ms)
                }
                None => (false, 0),
            };
            self.looks.insert(a.track, (look, if changed { timestamp_ms } else { early_ms }));
            if a.embed || changed {
                let first = !self.references.contains_key(&a.track);
                requests.push(EmbedRequest { index: a.track, chip: engine.chip(frame, f)?, first });
            }
            faces.push(StreamFace { index: a.track, started: a.started, face: f.detail.clone(), embedding: None });
        }
        Ok((StreamFrame { timestamp_ms, faces, ended }, requests))
    }

    /// Take the embedding of an [`EmbedRequest`] for track `index`. A view that is someone
    /// else's face (a cut, two people swapping places) ends the track and starts a new one in
    /// its place. None when the track has ended since.
    pub fn resolve(&mut self, engine: &FaceEngine, index: u32, embedding: &[f32]) -> Option<Resolved> {
        if !self.is_live(index) {
            return None;
        }
        let other =
            self.references.get(&index).is_some_and(|r| engine.similarity(r, embedding) < SAME_FACE_MIN_SIMILARITY);
        let mut resolved = Resolved { index, split_from: None };
        if other {
            if let Some(new_index) = self.tracker.split(index) {
                self.references.remove(&index);
                if let Some(look) = self.looks.remove(&index) {
                    self.looks.insert(new_index, look);
                }
                self.split_ended.push(index);
                resolved = Resolved { index: new_index, split_from: Some(index) };
            }
        }
        self.references.insert(resolved.index, embedding.to_vec());
        Some(resolved)
    }

    /// Whether track `index` is still followed (it has not ended or been split).
    pub fn is_live(&self, index: u32) -> bool {
        self.tracker.tracks().iter().any(|t| t.index == index)
    }

    /// What a track's embedding matched (identity, similarity 0-100).
    pub fn record_matches(&mut self, index: u32, matches: &[(String, f32)]) {
        self.tracker.record_matches(index, matches);
    }

    /// A track's best match over its life.
    pub fn best_match(&self, index: u32) -> Option<(&str, f32)> {
        self.tracker.best_match(index)
    }

    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}
