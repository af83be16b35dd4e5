//! Face alignment: a least-squares similarity transform from the detector's keypoints onto
//! the embedder's canonical template, then a warp into the embedder's input square.

use crate::decode::RgbImage;
use crate::detector::Detection;
use crate::warp::{warp_rgb, Affine};

/// Canonical positions, in a 112 x 112 frame, of the four keypoints both BlazeFace and the
/// template know: eye (viewer's left), eye (viewer's right), nose tip, mouth centre. These are
/// the ArcFace 5-point template's points, with the mouth centre taken as the mean of its two
/// mouth corners (BlazeFace has no mouth corners).
pub const TEMPLATE_112: [(f32, f32); 4] =
    [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (56.1396, 92.2848)];

/// Where the template sits in the embedder's input square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignmentTemplate {
    /// Side of the square output, in pixels.
    pub size: usize,
    /// Face scale relative to the tight ArcFace crop (1.0); below 1 leaves more context.
    pub zoom: f32,
    /// Vertical shift of the template, as a fraction of the output side (positive = down).
    pub shift_y: f32,
}

impl AlignmentTemplate {
    /// Template points in output pixels.
    pub fn points(&self) -> [(f32, f32); 4] {
        let s = self.size as f32 / 112.0 * self.zoom;
        let half = self.size as f32 / 2.0;
        TEMPLATE_112.map(|(x, y)| (half + (x - 56.0) * s, half + (y - 56.0) * s + self.shift_y * self.size as f32))
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

/// Warp the face into the template square; returns interleaved RGB in 0..255.
pub(crate) fn align(img: &RgbImage, det: &Detection, template: &AlignmentTemplate) -> Vec<f32> {
    let target = template.points();
    let source: Vec<(f32, f32)> = det.keypoints[..4].to_vec();
    // Output pixel -> source pixel is the similarity from template points to keypoints.
    let map = similarity(&target, &source);
    warp_rgb(img, &map, template.size, template.size)
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
