//! The similarity scale: a documented, monotone map from cosine similarity to 0-100.
//!
//! Knots are fitted by `likeness calibrate` on lfw-dev: the similarity at a knot says how
//! often two *different* people score at least that high. Between knots the map is linear,
//! so it is continuous and strictly increasing, and thresholds convert both ways exactly.
//!
//! | similarity | false accept rate of different-person pairs (lfw-dev, all cross-identity pairs) |
//! |---|---|
//! | 50 | 1e-1 |
//! | 80 | 1e-2 (Rekognition's default threshold: lenient, as there) |
//! | 90 | 1e-3 |
//! | 95 | 1e-4 |
//! | 99 | 1e-5 (for decisions that matter, as AWS recommends 99) |
//! | 99.9 | extrapolated one 95-99 gap above 99 |

use serde::{Deserialize, Serialize};

/// (similarity, false accept rate) targets the fit places knots at.
pub const FAR_TARGETS: [(f32, f64); 5] = [(50.0, 1e-1), (80.0, 1e-2), (90.0, 1e-3), (95.0, 1e-4), (99.0, 1e-5)];

/// Fitted knots (cosine, similarity) for `likeness-dlib-resnet-2`, by `likeness calibrate
/// lfw-dev/MANIFEST.tsv` over 1,198,786 cross-identity pairs of 1,549 images. Measured false
/// accept rates at the knots: 50: 1.0e-1, 80: 1.0e-2, 90: 1.0e-3, 95: 9.9e-5, 99: 9.2e-6;
/// true accept rates of the 140 same-person pairs: 100%, 99.3%, 95.7%, 77.1%, 57.9%.
pub const DEFAULT_KNOTS: [(f32, f32); 8] = [
    (-1.0, 0.0),
    (0.8827, 50.0),
    (0.9113, 80.0),
    (0.9300, 90.0),
    (0.9447, 95.0),
    (0.9569, 99.0),
    (0.9692, 99.9),
    (1.0, 100.0),
];

/// Piecewise-linear, strictly increasing map between cosine and similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// (cosine, similarity) points, both strictly increasing.
    pub knots: Vec<(f32, f32)>,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { knots: DEFAULT_KNOTS.to_vec() }
    }
}

fn interpolate(points: &[(f32, f32)], x: f32) -> f32 {
    let first = points[0];
    let last = points[points.len() - 1];
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // a NaN cosine lands here, on the lowest score
    if !(x > first.0) {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

impl Calibration {
    /// Similarity 0-100 of a cosine score.
    pub fn similarity(&self, cosine: f32) -> f32 {
        interpolate(&self.knots, cosine)
    }

    /// The smallest cosine whose similarity is at least `similarity`: lets searches compare
    /// raw dot products against a threshold without mapping every score.
    pub fn cosine_at(&self, similarity: f32) -> f32 {
        let inverse: Vec<(f32, f32)> = self.knots.iter().map(|&(c, s)| (s, c)).collect();
        interpolate(&inverse, similarity)
    }

    /// Fit knots from the cosine scores of different-person pairs: each target similarity
    /// goes at the score that this share of pairs reaches. Above 99 the scale continues with
    /// the slope of the last two knots: 99.9 one 95-99 gap above 99, and 100 at cosine 1.
    pub fn fit(mut negatives: Vec<f32>) -> Result<Self, String> {
        if negatives.is_empty() {
            return Err("no negative scores to fit".into());
        }
        negatives.sort_by(|a, b| b.total_cmp(a));
        let mut knots = vec![(-1.0f32, 0.0f32)];
        for &(sim, far) in FAR_TARGETS.iter() {
            let rank = ((negatives.len() as f64) * far).floor() as usize;
            if rank == 0 {
                return Err(format!("{} negatives cannot measure a false accept rate of {far}", negatives.len()));
            }
            let cos = negatives[rank.min(negatives.len()) - 1];
            let prev = knots.last().map(|k| k.0).unwrap_or(-1.0);
            knots.push((cos.max(prev + 1e-4), sim));
        }
        let n = knots.len();
        let gap = knots[n - 1].0 - knots[n - 2].0;
        let c99 = knots[n - 1].0;
        let c999 = (c99 + gap).min(0.9995).max(c99 + 1e-4);
        knots.push((c999, 99.9));
        knots.push((1.0f32.max(c999 + 1e-4), 100.0));
        Ok(Calibration { knots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_monotone_and_inverts() {
        let c = Calibration::default();
        let mut prev = -1.0;
        for i in 0..=200 {
            let cos = -1.0 + i as f32 * 0.01;
            let s = c.similarity(cos);
            assert!(s >= prev && (0.0..=100.0).contains(&s));
            prev = s;
        }
        for sim in [50.0, 75.0, 80.0, 99.0, 99.5] {
            assert!((c.similarity(c.cosine_at(sim)) - sim).abs() < 1e-3);
        }
    }

    #[test]
    fn fit_places_far_knots() {
        let negatives: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0 * 0.6).collect();
        let c = Calibration::fit(negatives.clone()).unwrap();
        let at90 = c.cosine_at(90.0);
        let far = negatives.iter().filter(|&&x| x >= at90).count() as f64 / negatives.len() as f64;
        assert!((far - 1e-3).abs() < 2e-4, "{far}");
        assert!(c.knots.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
    }
}
