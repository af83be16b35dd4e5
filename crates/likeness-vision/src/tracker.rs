//! Multi-face tracking for video: the part of stored-video and streaming face search that
//! decides which detections are the same person across frames.
//!
//! - Detections continue tracks by overlap (IoU) with each track's predicted box (last box
//!   plus its smoothed motion), best pairs first; the rest start tracks. Track indexes count
//!   up from 0 and become Rekognition's `Person.Index`.
//! - A track ends after `max_missed` frames in a row without a detection.
//! - Each face is embedded once: when its track starts, and again only when a detection's
//!   quality beats the best one embedded so far by `reembed_gain` ([`Assignment::embed`]).
//! - Matches accumulate per track ([`Tracker::record_matches`]); [`Tracker::best_match`] is
//!   the best evidence over the track's life, so the name shown for a face does not flicker
//!   when one frame matches worse.
//!
//! Pure logic: the caller supplies timestamps, detections and matches; no clock, thread or
//! model here.

use crate::error::VisionError;
use crate::types::BoundingBox;
use std::collections::BTreeMap;

/// How tracks are formed and kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// Least IoU between a detection and a track's predicted box for the detection to
    /// continue the track.
    pub min_iou: f32,
    /// A track ends after this many frames in a row without a detection.
    pub max_missed: u32,
    /// Re-embed a track when a detection's quality (0-1) beats the best embedded one by this.
    pub reembed_gain: f32,
    /// Embed a track again at least this often (ms of video time), so the caller can check it
    /// is still the same face: boxes alone cannot tell a cut, or one person stepping into
    /// another's place, from motion.
    pub recheck_ms: u64,
}

impl Default for TrackerConfig {
    /// 0.3 IoU; half a second of misses at 30 frames a second; re-embed on a 0.15 gain, and
    /// every 1.5 s.
    fn default() -> Self {
        TrackerConfig { min_iou: 0.3, max_missed: 15, reembed_gain: 0.15, recheck_ms: 1500 }
    }
}

/// One face found in a frame, as the tracker needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Box as a fraction of the frame, like Rekognition's.
    pub bounding_box: BoundingBox,
    /// How good this view of the face is for recognition, 0-1 (the caller's measure, e.g.
    /// from confidence, size, pose and sharpness).
    pub quality: f32,
}

/// A detection's place in the tracks of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// Index into the frame's observations.
    pub observation: usize,
    /// The track (Person.Index) it belongs to.
    pub track: u32,
    /// The track started with this detection.
    pub started: bool,
    /// Embed this detection: the track is new, or this view is clearly better than the best
    /// embedded so far. The tracker counts it as embedded.
    pub embed: bool,
}

/// What one frame did to the tracks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FrameUpdate {
    /// One per observation, in observation order.
    pub assignments: Vec<Assignment>,
    /// Tracks that ended with this frame (missed too many frames).
    pub ended: Vec<u32>,
}

/// A live track.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub index: u32,
    pub bounding_box: BoundingBox,
    pub first_ms: u64,
    pub last_ms: u64,
    /// Frames in a row without a detection.
    pub missed: u32,
    /// Best quality embedded so far.
    pub best_embedded_quality: f32,
    /// When the track was last embedded.
    pub embedded_ms: u64,
    /// Smoothed motion per frame (left, top).
    velocity: (f32, f32),
    /// Best similarity seen per identity (FaceId or UserId), over the track's life.
    evidence: BTreeMap<String, f32>,
}

impl Track {
    fn predicted(&self) -> BoundingBox {
        let steps = (self.missed + 1) as f32;
        BoundingBox {
            left: self.bounding_box.left + self.velocity.0 * steps,
            top: self.bounding_box.top + self.velocity.1 * steps,
            ..self.bounding_box
        }
    }
}

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f32 {
    let w = (a.left + a.width).min(b.left + b.width) - a.left.max(b.left);
    let h = (a.top + a.height).min(b.top + b.height) - a.top.max(b.top);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let union = a.width * a.height + b.width * b.height - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The tracks of one video or stream.
#[derive(Debug, Clone)]
pub struct Tracker {
    config: TrackerConfig,
    tracks: Vec<Track>,
    next_index: u32,
    last_ms: Option<u64>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker { config, tracks: Vec::new(), next_index: 0, last_ms: None }
    }

    /// Live tracks.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Advance by one frame at `timestamp_ms` (never earlier than the previous frame's) with
    /// the faces detected in it.
    pub fn update(&mut self, timestamp_ms: u64, observations: &[Observation]) -> Result<FrameUpdate, VisionError> {
        if self.last_ms.is_some_and(|t| timestamp_ms < t) {
            return Err(VisionError::InvalidParameter(format!(
                "frame timestamp {timestamp_ms} ms is before the previous frame's ({} ms)",
                self.last_ms.unwrap_or_default()
            )));
        }
        if let Some(o) = observations.iter().find(|o| !valid(o)) {
            return Err(VisionError::InvalidParameter(format!("observation {o:?} is not a box within the frame")));
        }
        self.last_ms = Some(timestamp_ms);

        // Best pairs first: every (track, observation) pair that overlaps enough.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            let predicted = track.predicted();
            for (o, obs) in observations.iter().enumerate() {
                let overlap = iou(&predicted, &obs.bounding_box).max(iou(&track.bounding_box, &obs.bounding_box));
                if overlap >= self.config.min_iou {
                    pairs.push((overlap, t, o));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut track_of: Vec<Option<usize>> = vec![None; observations.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, t, o) in pairs {
            if !taken[t] && track_of[o].is_none() {
                taken[t] = true;
                track_of[o] = Some(t);
            }
        }

        let mut assignments = Vec::with_capacity(observations.len());
        for (o, obs) in observations.iter().enumerate() {
            let assignment = match track_of[o] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    let steps = (track.missed + 1) as f32;
                    let motion = (
                        (obs.bounding_box.left - track.bounding_box.left) / steps,
                        (obs.bounding_box.top - track.bounding_box.top) / steps,
                    );
                    track.velocity = (0.5 * track.velocity.0 + 0.5 * motion.0, 0.5 * track.velocity.1 + 0.5 * motion.1);
                    track.bounding_box = obs.bounding_box;
                    track.last_ms = timestamp_ms;
                    track.missed = 0;
                    let better = obs.quality > track.best_embedded_quality + self.config.reembed_gain;
                    let recheck = timestamp_ms.saturating_sub(track.embedded_ms) >= self.config.recheck_ms;
                    let embed = better || recheck;
                    if better {
                        track.best_embedded_quality = obs.quality;
                    }
                    if embed {
                        track.embedded_ms = timestamp_ms;
                    }
                    Assignment { observation: o, track: track.index, started: false, embed }
                }
                None => {
                    let index = self.next_index;
                    self.next_index += 1;
                    self.tracks.push(Track {
                        index,
                        bounding_box: obs.bounding_box,
                        first_ms: timestamp_ms,
                        last_ms: timestamp_ms,
                        missed: 0,
                        best_embedded_quality: obs.quality,
                        embedded_ms: timestamp_ms,
                        velocity: (0.0, 0.0),
                        evidence: BTreeMap::new(),
                    });
                    taken.push(true);
                    Assignment { observation: o, track: index, started: true, embed: true }
                }
            };
            assignments.push(assignment);
        }

        let mut ended = Vec::new();
        let max_missed = self.config.max_missed;
        let mut i = 0;
        self.tracks.retain_mut(|track| {
            let seen = taken[i];
            i += 1;
            if !seen {
                track.missed += 1;
            }
            let keep = track.missed <= max_missed;
            if !keep {
                ended.push(track.index);
            }
            keep
        });
        Ok(FrameUpdate { assignments, ended })
    }

    /// End track `index` and start a new one in its place (same box and motion, no evidence),
    /// for when its face turned out to be someone else's. Returns the new track's index.
    pub fn split(&mut self, index: u32) -> Option<u32> {
        let track = self.tracks.iter_mut().find(|t| t.index == index)?;
        let new_index = self.next_index;
        self.next_index += 1;
        track.index = new_index;
        track.first_ms = track.last_ms;
        track.embedded_ms = track.last_ms;
        track.evidence.clear();
        Some(new_index)
    }

    /// Record what a track's embedding matched (identity, similarity 0-100). Only the best
    /// similarity per identity is kept.
    pub fn record_matches(&mut self, track: u32, matches: &[(String, f32)]) {
        if let Some(t) = self.tracks.iter_mut().find(|t| t.index == track) {
            for (id, similarity) in matches {
                if similarity.is_finite() {
                    let best = t.evidence.entry(id.clone()).or_insert(*similarity);
                    *best = best.max(*similarity);
                }
            }
        }
    }

    /// The best match over the track's life: (identity, similarity), ties by identity.
    pub fn best_match(&self, track: u32) -> Option<(&str, f32)> {
        let t = self.tracks.iter().find(|t| t.index == track)?;
        t.evidence.iter().max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0))).map(|(id, s)| (id.as_str(), *s))
    }
}

fn valid(o: &Observation) -> bool {
    let b = &o.bounding_box;
    [b.left, b.top, b.width, b.height, o.quality].iter().all(|v| v.is_finite()) && b.width > 0.0 && b.height > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(left: f32, top: f32, quality: f32) -> Observation {
        Observation { bounding_box: BoundingBox { left, top, width: 0.2, height: 0.25 }, quality }
    }

    /// Runs `frames` at 30 fps; returns each frame's update.
    fn run(tracker: &mut Tracker, frames: &[Vec<Observation>]) -> Vec<FrameUpdate> {
        frames.iter().enumerate().map(|(i, f)| tracker.update(i as u64 * 33, f).unwrap()).collect()
    }

    #[test]
    fn a_moving_face_keeps_its_index_and_is_embedded_once_then_rechecked() {
        let mut t = Tracker::new(TrackerConfig::default());
        let frames: Vec<Vec<Observation>> = (0..100).map(|i| vec![at(0.1 + i as f32 * 0.005, 0.3, 0.6)]).collect();
        let updates = run(&mut t, &frames);
        assert!(updates.iter().all(|u| u.assignments[0].track == 0));
        let embeds: Vec<usize> = (0..100).filter(|&i| updates[i].assignments[0].embed).collect();
        // When the track started, then once per recheck_ms (1500 ms: frame 46 at 1518 ms, frame
        // 92 at 3036 ms) so the caller can check it is still the same face.
        assert_eq!(embeds, vec![0, 46, 92]);
        assert!(updates[0].assignments[0].started && !updates[1].assignments[0].started);
    }

    #[test]
    fn a_split_track_continues_under_a_new_index_without_evidence() {
        let mut t = Tracker::new(TrackerConfig::default());
        let face = vec![at(0.3, 0.3, 0.6)];
        run(&mut t, &[face.clone(), face.clone()]);
        t.record_matches(0, &[("ana".into(), 97.0)]);
        assert_eq!(t.split(0), Some(1));
        assert_eq!(t.split(7), None, "no such track");
        assert_eq!(t.best_match(1), None, "the new track starts with no evidence");
        assert_eq!(t.best_match(0), None, "the old track is gone");
        let next = t.update(99, &face).unwrap();
        assert_eq!(next.assignments[0].track, 1, "the same box continues the new track");
        assert!(!next.assignments[0].started && next.ended.is_empty());
    }

    #[test]
    fn two_faces_crossing_keep_their_indexes() {
        let mut t = Tracker::new(TrackerConfig::default());
        // One walks right, the other left, at slightly different heights; they overlap mid-way.
        let frames: Vec<Vec<Observation>> = (0..40)
            .map(|i| {
                let x = i as f32 * 0.02;
                vec![at(0.05 + x, 0.30, 0.6), at(0.75 - x, 0.34, 0.6)]
            })
            .collect();
        let updates = run(&mut t, &frames);
        for (i, u) in updates.iter().enumerate() {
            assert_eq!(u.assignments[0].track, 0, "frame {i}: the face walking right");
            assert_eq!(u.assignments[1].track, 1, "frame {i}: the face walking left");
        }
    }

    #[test]
    fn a_short_dropout_keeps_the_track_and_leaving_ends_it() {
        let mut t = Tracker::new(TrackerConfig { max_missed: 3, ..TrackerConfig::default() });
        let face = vec![at(0.4, 0.3, 0.6)];
        let mut frames = vec![face.clone(), face.clone(), vec![], vec![], face.clone()];
        frames.extend(std::iter::repeat_n(vec![], 4));
        frames.push(face.clone());
        let updates = run(&mut t, &frames);
        assert_eq!(updates[4].assignments[0].track, 0, "two missed frames: same track");
        assert_eq!(updates[8].ended, vec![0], "ended after the fourth missed frame");
        let back = &updates[9].assignments[0];
        assert!(back.started && back.track == 1 && back.embed, "coming back is a new person index");
    }

    #[test]
    fn a_clearly_better_view_is_embedded_again_once() {
        let mut t = Tracker::new(TrackerConfig::default());
        let qualities = [0.4, 0.45, 0.5, 0.7, 0.72, 0.6, 0.9, 0.91];
        let frames: Vec<Vec<Observation>> = qualities.iter().map(|&q| vec![at(0.3, 0.3, q)]).collect();
        let embeds: Vec<bool> = run(&mut t, &frames).iter().map(|u| u.assignments[0].embed).collect();
        assert_eq!(embeds, vec![true, false, false, true, false, false, true, false]);
        assert_eq!(t.tracks()[0].best_embedded_quality, 0.9);
    }

    #[test]
    fn the_name_is_the_best_evidence_over_the_tracks_life() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(0, &[at(0.3, 0.3, 0.5)]).unwrap();
        t.record_matches(0, &[("ana".into(), 97.0), ("ben".into(), 60.0)]);
        t.update(33, &[at(0.3, 0.3, 0.9)]).unwrap();
        // A later, worse frame (blur, turn) matches ben slightly better than ana: no flicker.
        t.record_matches(0, &[("ana".into(), 70.0), ("ben".into(), 72.0)]);
        assert_eq!(t.best_match(0), Some(("ana", 97.0)));
        t.record_matches(0, &[("ben".into(), f32::NAN)]);
        assert_eq!(t.best_match(0), Some(("ana", 97.0)), "a NaN similarity is ignored");
        assert_eq!(t.best_match(7), None);
    }

    #[test]
    fn bad_input_is_a_typed_error_and_changes_nothing() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.update(100, &[at(0.3, 0.3, 0.5)]).unwrap();
        let before = t.tracks().to_vec();
        assert!(matches!(t.update(99, &[]), Err(VisionError::InvalidParameter(_))));
        let nan = Observation {
            bounding_box: BoundingBox { left: f32::NAN, top: 0.0, width: 0.1, height: 0.1 },
            quality: 0.5,
        };
        assert!(matches!(t.update(200, &[nan]), Err(VisionError::InvalidParameter(_))));
        assert_eq!(t.tracks(), &before[..]);
    }

    #[test]
    fn iou_of_boxes() {
        let a = BoundingBox { left: 0.0, top: 0.0, width: 0.2, height: 0.2 };
        assert!((iou(&a, &a) - 1.0).abs() < 1e-6);
        let b = BoundingBox { left: 0.1, ..a };
        assert!((iou(&a, &b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&a, &BoundingBox { left: 0.5, ..a }), 0.0);
        assert_eq!(iou(&a, &BoundingBox { width: 0.0, ..a }), 0.0);
    }
}
