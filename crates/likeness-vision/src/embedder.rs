//! Face embedding with the HSE faceres descriptor (MobileNet trained on VGGFace2, 1,024-d).

use crate::align::{align, AlignmentTemplate};
use crate::decode::RgbImage;
use crate::detector::{load_plan, Detection};
use crate::error::{model_error, VisionError};
use std::sync::Arc;
use tract_onnx::prelude::*;

/// Per-channel means subtracted from BGR input: Keras "caffe" preprocessing, which the
/// descriptor was trained with. Using RGB in 0..1 instead costs about 3 points of accuracy.
const BGR_MEANS: [f32; 3] = [103.939, 116.779, 123.68];

/// Identifies the vector space: vectors from different versions must never be compared.
/// Bump when the model, preprocessing or alignment template changes.
pub const FACE_MODEL_VERSION: &str = "likeness-faceres-1";

/// Length of faceres vectors (checked against the model when it loads).
pub const FACERES_DIMENSION: usize = 1024;

/// Where faces are placed in faceres' 224 px input (tuned on lfw-dev, see tools/README.md).
pub const FACERES_TEMPLATE: AlignmentTemplate = AlignmentTemplate { size: 224, zoom: 0.93, shift_y: -0.04 };

pub struct Embedder {
    plan: Arc<TypedRunnableModel>,
    template: AlignmentTemplate,
    dimension: usize,
}

impl Embedder {
    pub fn load(onnx: &[u8]) -> Result<Self, VisionError> {
        let t = FACERES_TEMPLATE;
        let plan = load_plan(onnx, &[1, t.size, t.size, 3], "faceres")?;
        let out = plan.model().output_fact(0).map_err(|e| model_error("faceres", e))?;
        let dimension = out
            .shape
            .as_concrete()
            .and_then(|s| s.last().copied())
            .ok_or_else(|| VisionError::Model("faceres output has no concrete shape".into()))?;
        if dimension != FACERES_DIMENSION {
            return Err(VisionError::Model(format!(
                "faceres outputs {dimension} values, expected {FACERES_DIMENSION}"
            )));
        }
        Ok(Embedder { plan, template: t, dimension })
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn template(&self) -> AlignmentTemplate {
        self.template
    }

    pub fn set_template(&mut self, template: AlignmentTemplate) {
        self.template = template;
    }

    /// The L2-normalised vector of one detected face: the mean of the aligned crop's and its
    /// mirror image's descriptors (flip-averaging lifted TAR at FAR 1e-3 on lfw-dev from
    /// 91.4% to 93.6% and balanced accuracy from 98.7% to 99.1%; see tools/README.md).
    pub fn embed(&self, img: &RgbImage, det: &Detection) -> Result<Vec<f32>, VisionError> {
        let mut pixels = align(img, det, &self.template);
        for px in pixels.chunks_exact_mut(3) {
            let (r, g, b) = (px[0], px[1], px[2]);
            px[0] = b - BGR_MEANS[0];
            px[1] = g - BGR_MEANS[1];
            px[2] = r - BGR_MEANS[2];
        }
        let size = self.template.size;
        let mirrored: Vec<f32> = pixels
            .chunks_exact(size * 3)
            .flat_map(|row| row.chunks_exact(3).rev().flat_map(|p| [p[0], p[1], p[2]]))
            .collect();
        let mut v = self.descriptor(&pixels)?;
        for (acc, x) in v.iter_mut().zip(self.descriptor(&mirrored)?) {
            *acc += x;
        }
        normalize(&mut v);
        Ok(v)
    }

    fn descriptor(&self, bgr: &[f32]) -> Result<Vec<f32>, VisionError> {
        let size = self.template.size;
        let input = Tensor::from_shape(&[1, size, size, 3], bgr).map_err(|e| model_error("faceres input", e))?;
        let out = self.plan.run(tvec!(input.into())).map_err(|e| model_error("faceres", e))?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| model_error("faceres output", e))?;
        Ok(view.iter().copied().collect())
    }
}

/// Scale to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
