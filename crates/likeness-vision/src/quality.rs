//! Face quality signals (brightness, sharpness, pose) and the quality filter IndexFaces uses.

#[cfg(feature = "engine")]
use crate::align::{align, AlignmentTemplate};
#[cfg(feature = "engine")]
use crate::decode::RgbImage;
#[cfg(feature = "engine")]
use crate::detector::Detection;
use crate::types::{ImageQuality, Pose};
use serde::{Deserialize, Serialize};

/// Tight 64 px crop in which brightness and sharpness are measured, so both are
/// independent of how large the face is in the photo.
/// The ArcFace 4-point template (eyes, nose tip, mouth centre) at 64 px: a tight face crop.
#[cfg(feature = "engine")]
const QUALITY_TEMPLATE: AlignmentTemplate = AlignmentTemplate {
    size: 64,
    landmarks: [(21.8826, 29.5407), (42.0182, 29.4294), (32.0144, 40.9923), (32.0798, 52.7342)],
    zoom: 1.0,
    shift_y: 0.0,
};

/// Laplacian variance at which sharpness reads 63 (1 - 1/e); a crisp face crop scores
/// about 150-400, a visibly blurred one under 30.
#[cfg(feature = "engine")]
const SHARPNESS_SCALE: f32 = 120.0;

/// Brightness and sharpness, 0-100, of the face region.
#[cfg(feature = "engine")]
pub(crate) fn image_quality(img: &RgbImage, det: &Detection) -> ImageQuality {
    let crop = align(img, det, &QUALITY_TEMPLATE);
    let n = QUALITY_TEMPLATE.size;
    let gray: Vec<f32> = crop.chunks_exact(3).map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]).collect();
    let brightness = gray.iter().sum::<f32>() / gray.len() as f32 / 255.0 * 100.0;
    let mut lap = Vec::with_capacity((n - 2) * (n - 2));
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let c = gray[y * n + x];
            lap.push(
                gray[y * n + x - 1] + gray[y * n + x + 1] + gray[(y - 1) * n + x] + gray[(y + 1) * n + x] - 4.0 * c,
            );
        }
    }
    let mean = lap.iter().sum::<f32>() / lap.len() as f32;
    let var = lap.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / lap.len() as f32;
    let sharpness = 100.0 * (1.0 - (-var / SHARPNESS_SCALE).exp());
    ImageQuality { brightness, sharpness }
}

/// `Confidence`, 0-100: how sure the engine is that the box holds a face, on the scale
/// Rekognition users read (about 99.9 for a clear face).
///
/// Where the precise landmarks were located (every still; a video frame's faces only when
/// embedded), it is ONet's face probability: a face/non-face classifier's output, 99.85
/// median on the faces of verify-dev and under 5 on the patterned clothing, hands and
/// textures BlazeFace takes for faces there. Elsewhere (video frames) it is BlazeFace's
/// score mapped onto that scale: `sigmoid(a * logit(score) + b)` with BlazeFace's threshold
/// (0.55) at 50 and its median on true faces (0.935) at ONet's median (99.85).
#[cfg(feature = "engine")]
pub(crate) fn confidence(det: &Detection) -> f32 {
    let p = match &det.landmarks {
        Some(l) => l.face_probability,
        None => detector_probability(det.score),
    };
    if p.is_finite() {
        100.0 * p.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// BlazeFace's score on ONet's probability scale (see [`confidence`]).
#[cfg(feature = "engine")]
fn detector_probability(score: f32) -> f32 {
    const SLOPE: f32 = 2.63;
    const OFFSET: f32 = -0.528;
    let s = score.clamp(1e-6, 1.0 - 1e-6);
    let z = SLOPE * (s / (1.0 - s)).ln() + OFFSET;
    1.0 / (1.0 + (-z).exp())
}

/// Depth of the nose tip in front of the eyes and mouth corners, as a fraction of the
/// distance between the eye centres (about 0.4 on a mean adult face: the 3D face model
/// OpenCV's head-pose examples use puts them 135 and 330 units apart).
#[cfg(feature = "engine")]
const NOSE_DEPTH: f32 = 0.4;

/// Head pose in degrees from the eye centres, nose tip and mouth centre.
///
/// Roll is the angle of the eye line. In the roll-corrected frame, a head turned by yaw `y`
/// moves the nose tip off the line between the eyes' and the mouth's midpoints by
/// `NOSE_DEPTH * tan(y)` eye distances, and a head tilted by pitch `p` moves it along the
/// eyes-to-mouth line by `NOSE_DEPTH / 0.9 * tan(p)` (the mouth sits about 0.9 eye distances
/// below the eyes). Both are inverted with `atan`: monotone, never clamped, within about
/// +-10 degrees of the truth for faces up to a 60 degree turn. Positive yaw turns the face
/// towards the viewer's right, positive pitch lifts the chin.
#[cfg(feature = "engine")]
pub(crate) fn pose(det: &Detection) -> Pose {
    let [el, er, nose, mouth] = crate::align::alignment_points(det);
    // Where the nose tip of a level face sits between the eye line and the mouth, measured
    // as the median over verify-dev's mostly frontal photos, for each source of points.
    let level = if det.landmarks.is_some() { 0.58 } else { 0.54 };
    let roll = (er.1 - el.1).atan2(er.0 - el.0);
    let (c, s) = (roll.cos(), roll.sin());
    let rot = |p: (f32, f32)| (c * p.0 + s * p.1, -s * p.0 + c * p.1);
    let (el, er, nose, mouth) = (rot(el), rot(er), rot(nose), rot(mouth));
    let eyes = ((el.0 + er.0) / 2.0, (el.1 + er.1) / 2.0);
    let span = (er.0 - el.0).max(1e-3);
    let centre = (eyes.0 + mouth.0) / 2.0;
    let yaw = ((nose.0 - centre) / span / NOSE_DEPTH).atan();
    let drop = mouth.1 - eyes.1;
    let pitch = if drop.abs() > 1e-3 {
        let t = (nose.1 - eyes.1) / drop;
        ((level - t) * drop / span / NOSE_DEPTH).atan()
    } else {
        0.0
    };
    Pose { roll: roll.to_degrees(), yaw: yaw.to_degrees(), pitch: pitch.to_degrees() }
}

/// IndexFaces / SearchFacesByImage QualityFilter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum QualityFilter {
    None,
    #[default]
    Auto,
    Low,
    Medium,
    High,
}

/// Why a face was not indexed (Rekognition's UnindexedFace Reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QualityReason {
    ExceedsMaxFaces,
    ExtremePose,
    LowBrightness,
    LowSharpness,
    LowConfidence,
    SmallBoundingBox,
    LowFaceQuality,
}

/// Thresholds a face must meet under one filter level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityBar {
    pub min_confidence: f32,
    pub min_brightness: f32,
    pub max_brightness: f32,
    pub min_sharpness: f32,
    pub max_abs_yaw: f32,
    pub max_abs_pitch: f32,
    pub min_face_pixels: f32,
}

impl QualityFilter {
    /// The bar of this level; `None` accepts every detected face. AUTO is MEDIUM.
    pub fn bar(self) -> Option<QualityBar> {
        let bar = |c, bmin, s, yaw, pitch, px| QualityBar {
            min_confidence: c,
            min_brightness: bmin,
            max_brightness: 98.0,
            min_sharpness: s,
            max_abs_yaw: yaw,
            max_abs_pitch: pitch,
            min_face_pixels: px,
        };
        match self {
            QualityFilter::None => None,
            // Confidence bars on ONet's scale ([`confidence`]); of the true faces of
            // verify-dev and faces/ (1,394), LOW rejects none, MEDIUM 0.14%, HIGH 3.0%.
            QualityFilter::Low => Some(bar(50.0, 5.0, 5.0, 75.0, 60.0, 20.0)),
            QualityFilter::Auto | QualityFilter::Medium => Some(bar(80.0, 10.0, 10.0, 60.0, 45.0, 32.0)),
            QualityFilter::High => Some(bar(95.0, 20.0, 25.0, 40.0, 30.0, 48.0)),
        }
    }
}

/// Every reason the face falls short of `filter`; empty when it passes.
pub fn quality_reasons(
    confidence: f32,
    quality: &ImageQuality,
    pose: &Pose,
    face_pixels: f32,
    filter: QualityFilter,
) -> Vec<QualityReason> {
    let Some(bar) = filter.bar() else {
        return Vec::new();
    };
    let mut reasons = Vec::new();
    if pose.yaw.abs() > bar.max_abs_yaw || pose.pitch.abs() > bar.max_abs_pitch {
        reasons.push(QualityReason::ExtremePose);
    }
    if quality.brightness < bar.min_brightness || quality.brightness > bar.max_brightness {
        reasons.push(QualityReason::LowBrightness);
    }
    if quality.sharpness < bar.min_sharpness {
        reasons.push(QualityReason::LowSharpness);
    }
    if confidence < bar.min_confidence {
        reasons.push(QualityReason::LowConfidence);
    }
    if face_pixels < bar.min_face_pixels {
        reasons.push(QualityReason::SmallBoundingBox);
    }
    if reasons.len() >= 2 {
        reasons.push(QualityReason::LowFaceQuality);
    }
    reasons
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    fn det(kps: [(f32, f32); 6]) -> Detection {
        Detection { score: 0.9, x0: 0.0, y0: 0.0, x1: 100.0, y1: 100.0, keypoints: kps, support: 1, landmarks: None }
    }

    #[test]
    fn frontal_face_has_near_zero_pose() {
        let p = pose(&det([(35.0, 40.0), (65.0, 40.0), (50.0, 57.8), (50.0, 73.0), (15.0, 45.0), (85.0, 45.0)]));
        assert!(p.roll.abs() < 1.0 && p.yaw.abs() < 1.0 && p.pitch.abs() < 1.0, "{p:?}");
    }

    #[test]
    fn yaw_grows_with_the_turn_and_is_never_clamped() {
        // The nose tip moving from the face's centre line past the eye: yaw rises strictly,
        // mirrored faces get opposite yaws, and it stays under 90 degrees.
        let yaw =
            |x: f32| pose(&det([(35.0, 40.0), (65.0, 40.0), (x, 57.8), (50.0, 73.0), (15.0, 45.0), (85.0, 45.0)])).yaw;
        let mut previous = -90.0;
        for step in 0..=40 {
            let y = yaw(50.0 + step as f32);
            assert!(y > previous && y < 90.0, "step {step}: {y} after {previous}");
            assert!((yaw(50.0 - step as f32) + y).abs() < 1e-3);
            previous = y;
        }
        // A third of the eye distance off centre is about a 40 degree turn.
        assert!((yaw(60.0) - 39.8).abs() < 0.5, "{}", yaw(60.0));
    }

    #[test]
    fn turned_face_has_large_yaw_and_tilted_face_has_roll() {
        let p = pose(&det([(35.0, 40.0), (65.0, 40.0), (80.0, 55.0), (70.0, 73.0), (15.0, 45.0), (85.0, 45.0)]));
        assert!(p.yaw > 40.0, "{p:?}");
        let p = pose(&det([(35.0, 40.0), (65.0, 70.0), (40.0, 70.0), (30.0, 90.0), (15.0, 30.0), (80.0, 90.0)]));
        assert!((p.roll - 45.0).abs() < 1.0, "{p:?}");
    }

    #[test]
    fn confidence_is_onets_probability_else_blazefaces_score_on_its_scale() {
        let kps = [(35.0, 40.0), (65.0, 40.0), (50.0, 57.8), (50.0, 73.0), (15.0, 45.0), (85.0, 45.0)];
        let frame = |score| confidence(&Detection { score, ..det(kps) });
        // BlazeFace's threshold is even odds; its median on true faces, ONet's median.
        assert!((frame(0.55) - 50.0).abs() < 0.05, "{}", frame(0.55));
        assert!((frame(0.935) - 99.85).abs() < 0.05, "{}", frame(0.935));
        let mut previous = 0.0;
        for s in [0.56, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0] {
            assert!(frame(s) > previous && frame(s) <= 100.0, "{s}: {}", frame(s));
            previous = frame(s);
        }
        let still = |p| {
            let landmarks = Some(crate::landmarks::Landmarks { points: [(0.0, 0.0); 5], face_probability: p });
            confidence(&Detection { score: 0.6, landmarks, ..det(kps) })
        };
        assert!((still(0.9985) - 99.85).abs() < 1e-3);
        assert_eq!(still(f32::NAN), 0.0);
        assert_eq!(still(1.5), 100.0);
    }

    #[test]
    fn filter_none_accepts_everything_and_high_is_stricter_than_low() {
        let q = ImageQuality { brightness: 50.0, sharpness: 20.0 };
        let p = Pose { roll: 0.0, yaw: 50.0, pitch: 0.0 };
        assert!(quality_reasons(60.0, &q, &p, 40.0, QualityFilter::None).is_empty());
        assert!(quality_reasons(60.0, &q, &p, 40.0, QualityFilter::Low).is_empty());
        let high = quality_reasons(60.0, &q, &p, 40.0, QualityFilter::High);
        assert!(high.contains(&QualityReason::ExtremePose) && high.contains(&QualityReason::LowConfidence));
        assert!(high.contains(&QualityReason::LowFaceQuality));
    }
}
