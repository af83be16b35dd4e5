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

/// A video or live stream being read, frame by frame.
#[derive(Debug, Clone)]
pub struct FaceStream {
    config: VideoConfig,
    tracker: Tracker,
    /// Each live track's last embedding, to check later views against.
    references: HashMap<u32, Vec<f32>>,
}

impl FaceStream {
    pub fn new(config: VideoConfig) -> Self {
        FaceStream { config, tracker: Tracker::new(config.tracker), references: HashMap::new() }
    }

    /// Detect, track and (where due) embed the faces of the frame at `timestamp_ms` (never
    /// earlier than the previous frame's).
    pub fn process(
        &mut self,
        engine: &FaceEngine,
        frame: &RgbImage,
        timestamp_ms: u64,
    ) -> Result<StreamFrame, VisionError> {
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
        let mut ended = update.ended;
        for index in &ended {
            self.references.remove(index);
        }
        let mut faces = Vec::with_capacity(update.assignments.len());
        for a in update.assignments {
            let f = &located[a.observation];
            let (mut index, mut started) = (a.track, a.started);
            let embedding = if a.embed { Some(engine.embed(frame, f)?.embedding) } else { None };
            if let Some(e) = &embedding {
                // Someone else in this track's place (a cut, a swap): a new track from here.
                let other =
                    self.references.get(&index).is_some_and(|r| engine.similarity(r, e) < SAME_FACE_MIN_SIMILARITY);
                if other {
                    if let Some(new_index) = self.tracker.split(index) {
                        self.references.remove(&index);
                        ended.push(index);
                        (index, started) = (new_index, true);
                    }
                }
                self.references.insert(index, e.clone());
            }
            faces.push(StreamFace { index, started, face: f.detail.clone(), embedding });
        }
        Ok(StreamFrame { timestamp_ms, faces, ended })
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
