//! Face alignment: a least-squares similarity transform from the detector's keypoints onto
//! the embedder's canonical template, then a warp into the embedder's input square.

use crate::decode::RgbImage;
use crate::detector::Detection;
use crate::warp::{warp_rgb, Affine};

/// Where dlib's face recognition network expects the four keypoints both BlazeFace and dlib
/// know, in its 150 px chip: eye centres (viewer's left, viewer's right), nose tip, mouth
/// centre. From dlib's mean face shape (`get_face_chip_details`, padding 0.25): the means of
/// its six-point eye contours, point 30, and the midpoint of the mouth corners 48 and 54,
/// each mapped by (0.25 + p) / 1.5 * 150.
pub const DLIB_TEMPLATE_150: [(f32, f32); 4] = [(47.55, 46.60), (100.48, 46.60), (74.01, 76.56), (74.01, 103.02)];

/// Where the template sits in the embedder's input square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignmentTemplate {
    /// Side of the square output, in pixels.
    pub size: usize,
    /// The four keypoints' places in the output at zoom 1 and no shift.
    pub landmarks: [(f32, f32); 4],
    /// Face scale around the centre; below 1 leaves more context.
    pub zoom: f32,
    /// Vertical shift of the template, as a fraction of the output side (positive = down).
    pub shift_y: f32,
}

impl AlignmentTemplate {
    /// Template points in output pixels.
    pub fn points(&self) -> [(f32, f32); 4] {
        let half = self.size as f32 / 2.0;
        let shift = self.shift_y * self.size as f32;
        self.landmarks.map(|(x, y)| (half + (x - half) * self.zoom, half + (y - half) * self.zoom + shift))
    }
}

/// Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
/// `from` points onto `to` points.
pub(crate) fn similarity(from: &[(f32, f32)], to: &[(f32, f32)]) -> Affine {
    let n = from.len() as f32;
    let mean = |p: &[(f32, f32)]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |a, q| (a.0 + q.0, a.1 + q.1));
        (sx / n, sy / n)
    };
    let (fx, fy) = mean(from);
    let (tx, ty) = mean(to);
    let (mut num_a, mut num_b, mut den) = (0.0f32, 0.0f32, 0.0f32);
    for (p, q) in from.iter().zip(to) {
        let (px, py) = (p.0 - fx, p.1 - fy);
        let (qx, qy) = (q.0 - tx, q.1 - ty);
        num_a += px * qx + py * qy;
        num_b += px * qy - py * qx;
        den += px * px + py * py;
    }
    let (a, b) = if den > 0.0 { (num_a / den, num_b / den) } else { (1.0, 0.0) };
    // to = [a -b; b a] * from + t
    Affine { a, b: -b, c: tx - (a * fx - b * fy), d: b, e: a, f: ty - (b * fx + a * fy) }
}

/// Eyes, nose tip and mouth centre: from the precise landmarks when they were located,
/// else from the detector's keypoints.
pub(crate) fn alignment_points(det: &Detection) -> [(f32, f32); 4] {
    match &det.landmarks {
        Some(l) => l.alignment_points(),
        None => [det.keypoints[0], det.keypoints[1], det.keypoints[2], det.keypoints[3]],
    }
}

/// Warp the face into the template square; returns interleaved RGB in 0..255.
pub(crate) fn align(img: &RgbImage, det: &Detection, template: &AlignmentTemplate) -> Vec<f32> {
    align_points(img, alignment_points(det), template)
}

/// Warp the face whose eyes, nose tip and mouth centre are at `source` into the template
/// square; interleaved RGB in 0..255.
pub(crate) fn align_points(img: &RgbImage, source: [(f32, f32); 4], template: &AlignmentTemplate) -> Vec<f32> {
    // Output pixel -> source pixel is the similarity from template points to the face's.
    let map = similarity(&template.points(), &source);
    warp_rgb(img, &map, template.size, template.size)
}

/// The embedder's template at 16 px (dlib's mean face scaled by 16/150).
const APPEARANCE_TEMPLATE: AlignmentTemplate = AlignmentTemplate {
    size: 16,
    landmarks: [(5.072, 4.971), (10.718, 4.971), (7.895, 8.167), (7.895, 10.989)],
    zoom: 1.0,
    shift_y: 0.0,
};

/// See [`crate::FaceEngine::appearance`].
pub(crate) fn appearance(img: &RgbImage, det: &Detection) -> Vec<f32> {
    let crop = align(img, det, &APPEARANCE_TEMPLATE);
    let mut grey: Vec<f32> = crop.chunks_exact(3).map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect();
    let mean = grey.iter().sum::<f32>() / grey.len() as f32;
    grey.iter_mut().for_each(|v| *v -= mean);
    let norm = grey.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 1e-3 {
        grey.iter_mut().for_each(|v| *v /= norm);
    }
    grey
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let from = [(0.0, 0.0), (10.0, 0.0), (5.0, 8.0), (2.0, 3.0)];
        let (s, t) = (2.0f32, 0.5f32);
        let to: Vec<(f32, f32)> = from
            .iter()
            .map(|&(x, y)| (s * (t.cos() * x - t.sin() * y) + 7.0, s * (t.sin() * x + t.cos() * y) - 3.0))
            .collect();
        let m = similarity(&from, &to);
        for (p, q) in from.iter().zip(&to) {
            let (x, y) = m.apply(p.0, p.1);
            assert!((x - q.0).abs() < 1e-3 && (y - q.1).abs() < 1e-3);
        }
    }
}
