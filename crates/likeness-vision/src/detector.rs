//! Face detection with MediaPipe BlazeFace: the short-range model for near faces, the
//! full-range model for small and far ones, run over several views of the image and merged.
//!
//! Why several views: the short model (128 px input) misses faces smaller than about a
//! tenth of the frame and the full model (192 px) misses faces that fill it, while group
//! photos hold faces of 20-40 px in a 1,000+ px image. So the image is looked at
//! (1) whole, letterboxed, by both models, (2) whole with a wide black margin by the
//! short model (tight face crops), and (3) when it is large, in overlapping tiles by the
//! full model. Detections from all views are merged with weighted non-maximum suppression.

use crate::decode::RgbImage;
use crate::error::{model_error, VisionError};
use crate::kernels;
use crate::landmarks::Landmarks;
use crate::warp::{warp_rgb, Affine};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// Keypoints in BlazeFace order, as seen in the image: eye (viewer's left), eye (viewer's
/// right), nose tip, mouth centre, ear (viewer's left), ear (viewer's right).
pub const KEYPOINTS: usize = 6;

/// A face found in the image, in source pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Detector probability, 0-1.
    pub score: f32,
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub keypoints: [(f32, f32); KEYPOINTS],
    /// How many raw detections (across views and anchors) were merged into this one.
    pub support: u32,
    /// The five precise landmarks, once [`crate::landmarks::Landmarker`] has run on this face
    /// (alignment and pose prefer them to the keypoints).
    pub landmarks: Option<Landmarks>,
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// Area of the part of the box inside a `width x height` image: a face cut by the
    /// border counts only for what is visible when ranking faces by size.
    pub fn visible_area(&self, width: f32, height: f32) -> f32 {
        let w = (self.x1.min(width) - self.x0.max(0.0)).max(0.0);
        let h = (self.y1.min(height) - self.y0.max(0.0)).max(0.0);
        w * h
    }
    fn intersection(&self, o: &Detection) -> f32 {
        let w = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let h = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        w * h
    }
    fn iou(&self, o: &Detection) -> f32 {
        let i = self.intersection(o);
        let u = self.area() + o.area() - i;
        if u > 0.0 {
            i / u
        } else {
            0.0
        }
    }
    /// Intersection over the smaller box: catches a partial face cut by a tile edge.
    fn io_min(&self, o: &Detection) -> f32 {
        let m = self.area().min(o.area());
        if m > 0.0 {
            self.intersection(o) / m
        } else {
            0.0
        }
    }
}

/// Tuning knobs of the multi-view detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorOptions {
    /// Minimum detector probability for a face to be reported. MediaPipe's single-view
    /// default is 0.5; looking at each image several times makes a spurious 0.5 likelier.
    pub min_score: f32,
    /// IoU at which two detections are taken to be the same face.
    pub merge_iou: f32,
    /// Tile side in source pixels for the full-range model on large images.
    pub tile_side: f32,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions { min_score: 0.55, merge_iou: 0.3, tile_side: 640.0 }
    }
}

/// One BlazeFace network with its anchors.
struct BlazeFace {
    plan: Arc<TypedRunnableModel>,
    size: usize,
    /// Input is 1x3xHxW (planar) rather than 1xHxWx3: `tools/optimize_detector.py` makes the
    /// full-range model channels-first, which tract runs faster.
    channels_first: bool,
    anchors: Vec<(f32, f32)>,
}

fn anchors(size: usize, layers: &[(usize, usize)]) -> Vec<(f32, f32)> {
    let mut out = Vec::new();
    for &(stride, per_cell) in layers {
        let grid = size / stride;
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per_cell {
                    out.push(((x as f32 + 0.5) / grid as f32, (y as f32 + 0.5) / grid as f32));
                }
            }
        }
    }
    out
}

pub(crate) fn load_plan(bytes: &[u8], shape: &[usize], name: &str) -> Result<Arc<TypedRunnableModel>, VisionError> {
    optimize(read_onnx(bytes, name)?, shape, name)
}

pub(crate) fn read_onnx(bytes: &[u8], name: &str) -> Result<InferenceModel, VisionError> {
    tract_onnx::onnx().model_for_read(&mut std::io::Cursor::new(bytes)).map_err(|e| model_error(name, e))
}

fn optimize(model: InferenceModel, shape: &[usize], name: &str) -> Result<Arc<TypedRunnableModel>, VisionError> {
    let model = model
        .with_input_fact(0, f32::fact(shape).into())
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(|e| model_error(name, e))?;
    runnable(model, name)
}

/// A decluttered typed model (ONNX analysed, or read back from tract's own form) optimised
/// and made runnable, with [`kernels`]' faster ops swapped in where this build uses them.
pub(crate) fn runnable(model: TypedModel, name: &str) -> Result<Arc<TypedRunnableModel>, VisionError> {
    runnable_with(model, kernels::IN_THIS_BUILD, name)
}

/// [`runnable`], choosing whether [`kernels::rewrite`] runs.
pub(crate) fn runnable_with(
    mut model: TypedModel,
    rewrite: bool,
    name: &str,
) -> Result<Arc<TypedRunnableModel>, VisionError> {
    if rewrite {
        kernels::rewrite(&mut model).map_err(|e| model_error(name, e))?;
    }
    model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| model_error(name, e))
}

impl BlazeFace {
    fn load(bytes: &[u8], size: usize, layers: &[(usize, usize)], name: &str) -> Result<Self, VisionError> {
        let model = read_onnx(bytes, name)?;
        // The layout the file declares: 1x3xSxS is channels-first, anything else 1xSxSx3.
        let declared = model.input_fact(0).ok().and_then(|f| f.shape.as_concrete_finite().ok().flatten());
        let channels_first = declared.as_deref() == Some(&[1, 3, size, size][..]);
        let shape = if channels_first { [1, 3, size, size] } else { [1, size, size, 3] };
        let plan = optimize(model, &shape, name)?;
        let anchors = anchors(size, layers);
        let out = plan.model().output_fact(0).map_err(|e| model_error(name, e))?;
        let rows = out.shape.as_concrete().map(|s| s[1]);
        if rows != Some(anchors.len()) {
            return Err(VisionError::Model(format!(
                "{name}: expected {} anchors, model outputs {:?}",
                anchors.len(),
                out.shape
            )));
        }
        Ok(BlazeFace { plan, size, channels_first, anchors })
    }

    /// Run on one square view; `view` maps network input pixels to source pixels.
    fn detect(
        &self,
        img: &RgbImage,
        view: &Affine,
        min_score: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), VisionError> {
        let rgb = warp_rgb(img, view, self.size, self.size);
        let scaled = |v: f32| v / 127.5 - 1.0;
        let plane = self.size * self.size;
        let input = if self.channels_first {
            let mut planar = vec![0.0f32; 3 * plane];
            for (i, px) in rgb.chunks_exact(3).enumerate() {
                for (c, &v) in px.iter().enumerate() {
                    planar[c * plane + i] = scaled(v);
                }
            }
            Tensor::from_shape(&[1, 3, self.size, self.size], &planar)
        } else {
            let interleaved: Vec<f32> = rgb.into_iter().map(scaled).collect();
            Tensor::from_shape(&[1, self.size, self.size, 3], &interleaved)
        }
        .map_err(|e| model_error("detector input", e))?;
        let result = self.plan.run(tvec!(input.into())).map_err(|e| model_error("detector", e))?;
        let raw = result[0].to_plain_array_view::<f32>().map_err(|e| model_error("detector output", e))?;
        let raw = raw.as_slice().ok_or_else(|| VisionError::Model("detector output not contiguous".into()))?;
        let size = self.size as f32;
        // Logit threshold equivalent to min_score, to skip the sigmoid for most anchors.
        let logit_min = (min_score / (1.0 - min_score)).ln();
        for (i, &(ax, ay)) in self.anchors.iter().enumerate() {
            let r = &raw[i * 17..(i + 1) * 17];
            let logit = r[0].clamp(-100.0, 100.0);
            #[allow(clippy::neg_cmp_op_on_partial_ord)] // skips NaN logits too
            if !(logit >= logit_min) {
                continue;
            }
            let score = 1.0 / (1.0 + (-logit).exp());
            let cx = r[1] + ax * size;
            let cy = r[2] + ay * size;
            let (w, h) = (r[3], r[4]);
            if !(w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite()) {
                continue;
            }
            let (x0, y0) = view.apply(cx - w / 2.0, cy - h / 2.0);
            let (x1, y1) = view.apply(cx + w / 2.0, cy + h / 2.0);
            let mut keypoints = [(0.0, 0.0); KEYPOINTS];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = view.apply(r[5 + 2 * k] + ax * size, r[6 + 2 * k] + ay * size);
            }
            out.push(Detection { score, x0, y0, x1, y1, keypoints, support: 1, landmarks: None });
        }
        Ok(())
    }
}

/// The two BlazeFace models and the view strategy over them.
pub struct Detector {
    short: BlazeFace,
    full: BlazeFace,
    options: DetectorOptions,
}

impl Detector {
    /// Load from ONNX bytes of the short-range (128 px) and full-range (192 px) models.
    pub fn load(short_onnx: &[u8], full_onnx: &[u8]) -> Result<Self, VisionError> {
        Ok(Detector {
            short: BlazeFace::load(short_onnx, 128, &[(8, 2), (16, 6)], "blazeface-short")?,
            full: BlazeFace::load(full_onnx, 192, &[(4, 1)], "blazeface-full")?,
            options: DetectorOptions::default(),
        })
    }

    pub fn options(&self) -> DetectorOptions {
        self.options
    }

    pub fn set_options(&mut self, options: DetectorOptions) {
        self.options = options;
    }

    /// Every face in the image, highest score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        let (w, h) = (img.width as f32, img.height as f32);
        let side = w.max(h);
        let min_score = self.options.min_score;
        let square = |model: &BlazeFace, side: f32, cx: f32, cy: f32| {
            Affine::scale_translate(side / model.size as f32, cx - side / 2.0, cy - side / 2.0)
        };
        let mut found = Vec::new();
        // Whole image, letterboxed, both models; then with a wide margin for face-filling crops.
        self.full.detect(img, &square(&self.full, side, w / 2.0, h / 2.0), min_score, &mut found)?;
        self.short.detect(img, &square(&self.short, side, w / 2.0, h / 2.0), min_score, &mut found)?;
        self.short.detect(img, &square(&self.short, side * 1.6, w / 2.0, h / 2.0), min_score, &mut found)?;
        // Overlapping tiles for small faces in large images.
        let tile = self.options.tile_side.max(side / 5.0);
        if side > tile * 1.25 {
            for ty in tile_starts(h, tile) {
                for tx in tile_starts(w, tile) {
                    let view = square(&self.full, tile, tx + tile / 2.0, ty + tile / 2.0);
                    self.full.detect(img, &view, min_score, &mut found)?;
                }
            }
        }
        Ok(plausible(weighted_nms(found, self.options.merge_iou)))
    }
}

/// Which single view the per-frame (video) path runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameRange {
    /// The short-range model (128 px) on the whole frame: faces within about 2 m of a
    /// webcam, a face at least a fifth of the frame's side. The fastest view.
    #[default]
    Near,
    /// The full-range model (192 px) on the whole frame: smaller, more distant faces (a
    /// door camera, a room), at about twice the cost.
    Far,
}

impl Detector {
    /// The faces of one video frame from a single view, highest score first: the per-frame
    /// path, several times cheaper than [`Detector::detect`]'s views and tiles, for frames
    /// that come 30 times a second and faces a tracker follows between them.
    pub fn detect_frame(&self, img: &RgbImage, range: FrameRange) -> Result<Vec<Detection>, VisionError> {
        let (w, h) = (img.width as f32, img.height as f32);
        let side = w.max(h);
        let model = match range {
            FrameRange::Near => &self.short,
            FrameRange::Far => &self.full,
        };
        let view = Affine::scale_translate(side / model.size as f32, w / 2.0 - side / 2.0, h / 2.0 - side / 2.0);
        let mut found = Vec::new();
        model.detect(img, &view, self.options.min_score, &mut found)?;
        Ok(plausible(weighted_nms(found, self.options.merge_iou)))
    }
}

/// Below this probability a face must not be tiny next to the image's clearest face.
const LOW_CONFIDENCE: f32 = 0.65;

/// Drop detections that are not faces we can use:
/// - eye lines steeper than 60 degrees: BlazeFace is trained on upright faces and its
///   keypoints there are unreliable (seen: a building facade at 82 degrees);
/// - low-confidence boxes under a quarter the width of the most confident face: background
///   texture next to a clear subject (seen: a sleeve, a wall photo).
fn plausible(dets: Vec<Detection>) -> Vec<Detection> {
    let roll_ok = |d: &Detection| {
        let (l, r) = (d.keypoints[0], d.keypoints[1]);
        (r.1 - l.1).atan2(r.0 - l.0).abs() <= 60f32.to_radians()
    };
    let dets: Vec<Detection> = dets.into_iter().filter(roll_ok).collect();
    let clearest = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score)).map(|d| d.width()).unwrap_or(0.0);
    dets.into_iter().filter(|d| d.score >= LOW_CONFIDENCE || d.width() >= clearest / 4.0).collect()
}

/// Start offsets of tiles of `tile` px covering `len` px with at least 25% overlap.
fn tile_starts(len: f32, tile: f32) -> Vec<f32> {
    if len <= tile {
        return vec![(len - tile) / 2.0];
    }
    let stride = tile * 0.75;
    let n = ((len - tile) / stride).ceil() as usize + 1;
    (0..n).map(|i| i as f32 * (len - tile) / (n - 1) as f32).collect()
}

/// Merge detections of the same face: each cluster (IoU >= `iou`) becomes its score-weighted
/// average with the best score. A lower-scored box mostly inside a kept one (a face cut by a
/// tile edge) is dropped.
pub(crate) fn weighted_nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    let mut used = vec![false; dets.len()];
    for i in 0..dets.len() {
        if used[i] {
            continue;
        }
        let head = &dets[i];
        if kept.iter().any(|k| k.io_min(head) > 0.65) {
            used[i] = true;
            continue;
        }
        let mut total = 0.0f32;
        let mut acc = Detection {
            score: head.score,
            x0: 0.0,
            y0: 0.0,
            x1: 0.0,
            y1: 0.0,
            keypoints: [(0.0, 0.0); KEYPOINTS],
            support: 0,
            landmarks: None,
        };
        for j in i..dets.len() {
            if used[j] || dets[j].iou(head) < iou {
                continue;
            }
            used[j] = true;
            let d = &dets[j];
            let wgt = d.score;
            total += wgt;
            acc.support += d.support;
            acc.x0 += wgt * d.x0;
            acc.y0 += wgt * d.y0;
            acc.x1 += wgt * d.x1;
            acc.y1 += wgt * d.y1;
            for k in 0..KEYPOINTS {
                acc.keypoints[k].0 += wgt * d.keypoints[k].0;
                acc.keypoints[k].1 += wgt * d.keypoints[k].1;
            }
        }
        let inv = 1.0 / total;
        acc.x0 *= inv;
        acc.y0 *= inv;
        acc.x1 *= inv;
        acc.y1 *= inv;
        for kp in acc.keypoints.iter_mut() {
            kp.0 *= inv;
            kp.1 *= inv;
        }
        kept.push(acc);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, x0: f32, y0: f32, side: f32) -> Detection {
        Detection {
            score,
            x0,
            y0,
            x1: x0 + side,
            y1: y0 + side,
            keypoints: [(x0, y0); KEYPOINTS],
            support: 1,
            landmarks: None,
        }
    }

    #[test]
    fn anchor_counts_match_blazeface() {
        assert_eq!(anchors(128, &[(8, 2), (16, 6)]).len(), 896);
        assert_eq!(anchors(192, &[(4, 1)]).len(), 2304);
    }

    #[test]
    fn nms_merges_overlaps_and_keeps_separate_faces() {
        let merged =
            weighted_nms(vec![det(0.9, 0.0, 0.0, 10.0), det(0.6, 1.0, 1.0, 10.0), det(0.8, 50.0, 50.0, 10.0)], 0.3);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 0.9);
        assert!(merged[0].x0 > 0.0 && merged[0].x0 < 1.0, "weighted average lies between");
    }

    #[test]
    fn nms_drops_partial_box_inside_kept_face() {
        let merged = weighted_nms(vec![det(0.9, 0.0, 0.0, 100.0), det(0.7, 60.0, 60.0, 30.0)], 0.3);
        assert_eq!(merged.len(), 1);
    }

    #[test]
    fn implausible_detections_are_dropped() {
        let mut tilted = det(0.9, 0.0, 0.0, 100.0);
        tilted.keypoints[0] = (50.0, 10.0);
        tilted.keypoints[1] = (52.0, 90.0);
        let clear = det(0.95, 200.0, 0.0, 200.0);
        let clutter = det(0.6, 500.0, 0.0, 30.0);
        let small_but_sure = det(0.8, 600.0, 0.0, 30.0);
        let kept = plausible(vec![tilted, clear.clone(), clutter, small_but_sure.clone()]);
        assert_eq!(kept, vec![clear, small_but_sure]);
    }

    #[test]
    fn tiles_cover_with_overlap() {
        let starts = tile_starts(1280.0, 640.0);
        assert_eq!(starts.first(), Some(&0.0));
        assert_eq!(starts.last(), Some(&640.0));
        assert!(starts.windows(2).all(|w| w[1] - w[0] <= 480.0));
    }
}
