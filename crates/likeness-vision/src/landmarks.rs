//! Five facial landmarks (eye centres, nose tip, mouth corners) and a face probability from
//! MTCNN's output network (ONet), run on the detector's box.
//!
//! Why: BlazeFace's keypoints are coarse (no mouth corners; the ears are guesses on a turned
//! head). ONet is the last stage of MTCNN (Zhang et al. 2016), a 48 px network of 0.4 M
//! weights trained for exactly these five points; its face probability is near 1 on clear
//! faces and falls on what is not one, which is what Rekognition's `Confidence` means.
//! Weights: facenet-pytorch 2.6.0 (MIT), converted by `tools/convert_onet.py`.
//!
//! ONet is run twice: once on the square around the detector's box, then on the square
//! around the box ONet itself regresses, the framing it was trained on.

use crate::decode::RgbImage;
use crate::detector::{load_plan, Detection};
use crate::error::{model_error, VisionError};
use crate::warp::{warp_rgb, Affine};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// The network, compiled in: the landmarks define where every face vector's crop comes
/// from, so they are versioned with the code (`FACE_MODEL_VERSION`), not fetched beside it.
pub const LANDMARKER_ONNX: &[u8] = include_bytes!("../../../models/mtcnn-onet.onnx");

/// ONet's input side in pixels.
const SIDE: usize = 48;

/// The five points, as seen in the image: eye (viewer's left), eye (viewer's right), nose
/// tip, mouth corner (viewer's left), mouth corner (viewer's right), in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landmarks {
    pub points: [(f32, f32); 5],
    /// ONet's probability that the box holds a face, 0-1.
    pub face_probability: f32,
}

impl Landmarks {
    /// The four points the alignment template names: eyes, nose tip, mouth centre.
    pub fn alignment_points(&self) -> [(f32, f32); 4] {
        let [el, er, nose, ml, mr] = self.points;
        [el, er, nose, ((ml.0 + mr.0) / 2.0, (ml.1 + mr.1) / 2.0)]
    }
}

pub struct Landmarker {
    plan: Arc<TypedRunnableModel>,
}

impl Landmarker {
    pub fn load(onnx: &[u8]) -> Result<Self, VisionError> {
        Ok(Landmarker { plan: load_plan(onnx, &[1, 3, SIDE, SIDE], "landmarker")? })
    }

    /// The landmarks of one detected face.
    pub fn locate(&self, img: &RgbImage, det: &Detection) -> Result<Landmarks, VisionError> {
        let first = self.run(img, square((det.x0, det.y0, det.x1, det.y1)))?;
        let second = self.run(img, square(first.refined))?;
        Ok(Landmarks { points: second.points, face_probability: second.probability })
    }

    fn run(&self, img: &RgbImage, (x0, y0, side): (f32, f32, f32)) -> Result<Pass, VisionError> {
        let map = Affine::scale_translate(side / SIDE as f32, x0, y0);
        let rgb = warp_rgb(img, &map, SIDE, SIDE);
        // Planar, (x - 127.5) / 128, as MTCNN was trained.
        let mut planar = vec![0f32; 3 * SIDE * SIDE];
        for (i, p) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planar[c * SIDE * SIDE + i] = (p[c] - 127.5) * 0.0078125;
            }
        }
        let input = Tensor::from_shape(&[1, 3, SIDE, SIDE], &planar).map_err(|e| model_error("landmarker input", e))?;
        let out = self.plan.run(tvec!(input.into())).map_err(|e| model_error("landmarker", e))?;
        let read = |i: usize, n: usize| -> Result<Vec<f32>, VisionError> {
            let view = out[i].to_plain_array_view::<f32>().map_err(|e| model_error("landmarker output", e))?;
            let v: Vec<f32> = view.iter().copied().collect();
            if v.len() != n {
                return Err(VisionError::Model(format!("landmarker output {i} has {} values, expected {n}", v.len())));
            }
            Ok(v)
        };
        let (boxes, points, prob) = (read(0, 4)?, read(1, 10)?, read(2, 2)?);
        let at = |u: f32, v: f32| (x0 + u * side, y0 + v * side);
        Ok(Pass {
            refined: (
                x0 + boxes[0] * side,
                y0 + boxes[1] * side,
                x0 + side + boxes[2] * side,
                y0 + side + boxes[3] * side,
            ),
            points: std::array::from_fn(|k| at(points[k], points[k + 5])),
            probability: prob[1],
        })
    }
}

/// What one run of ONet says about one square.
struct Pass {
    refined: (f32, f32, f32, f32),
    points: [(f32, f32); 5],
    probability: f32,
}

/// The square (left, top, side) centred on a box, its side the box's longer side.
fn square((x0, y0, x1, y1): (f32, f32, f32, f32)) -> (f32, f32, f32) {
    let side = (x1 - x0).max(y1 - y0).max(1.0);
    ((x0 + x1) / 2.0 - side / 2.0, (y0 + y1) / 2.0 - side / 2.0, side)
}
