//! Face embedding with dlib's face recognition ResNet (128-d), as face-api.js ships it.
//!
//! Chosen over the HSE faceres descriptor by measurement on lfw-dev with this pipeline
//! (tools/README.md): TAR at FAR 1e-3 97.1% against 92.9%, AUC 0.9999 against 0.9995, at a
//! third of the compute and an eighth of the vector size.

use crate::align::{align, AlignmentTemplate, DLIB_TEMPLATE_150};
use crate::decode::RgbImage;
use crate::detector::{read_onnx, runnable, runnable_with, Detection};
use crate::error::{model_error, VisionError};
use crate::kernels;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::WithOnnx;

pub use crate::vector::{cosine, normalize, EMBEDDING_DIMENSION, FACE_MODEL_VERSION};

/// Names the prepared form's format (tract's NNEF, this tract version): a cache of prepared
/// embedders must be keyed by it, with the ONNX file's hash.
pub const PREPARED_FORMAT: &str = "tract-0.23.9-nnef-decluttered";

fn nnef() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef().with_onnx()
}

/// dlib's chip: 150 px, its mean face at padding 0.25. The network subtracts its mean RGB
/// and scales by 1/255 inside the graph, so it takes RGB 0..255.
pub const EMBEDDER_TEMPLATE: AlignmentTemplate =
    AlignmentTemplate { size: 150, landmarks: DLIB_TEMPLATE_150, zoom: 1.0, shift_y: 0.0 };

/// The ONNX embedder typed and decluttered, its input fixed at 1 x 150 x 150 x 3.
pub(crate) fn typed(onnx: &[u8]) -> Result<TypedModel, VisionError> {
    let t = EMBEDDER_TEMPLATE;
    read_onnx(onnx, "embedder")?
        .with_input_fact(0, f32::fact([1, t.size, t.size, 3]).into())
        .and_then(|m| m.into_typed())
        .and_then(|m| m.into_decluttered())
        .map_err(|e| model_error("embedder", e))
}

/// The graph [`Embedder::load_and_prepare`] wrote, read back and decluttered again: as read,
/// tract's NNEF form carries no-op casts between the constants and their convolutions, which
/// would hide every kernel and bias from [`kernels::rewrite`] (about 6 ms natively).
pub(crate) fn read_prepared(tar: &[u8]) -> Result<TypedModel, VisionError> {
    let t = EMBEDDER_TEMPLATE;
    let model = nnef()
        .model_for_read(&mut std::io::Cursor::new(tar))
        .and_then(|m| m.into_decluttered())
        .map_err(|e| model_error("prepared embedder", e))?;
    let input = model.input_fact(0).map_err(|e| model_error("prepared embedder", e))?;
    if input.shape.as_concrete() != Some(&[1, t.size, t.size, 3][..]) {
        return Err(VisionError::Model(format!("prepared embedder: input shape {:?}", input.shape)));
    }
    Ok(model)
}

pub struct Embedder {
    plan: Arc<TypedRunnableModel>,
    template: AlignmentTemplate,
    dimension: usize,
}

impl Embedder {
    pub fn load(onnx: &[u8]) -> Result<Self, VisionError> {
        Self::load_with_kernels(onnx, kernels::IN_THIS_BUILD)
    }

    /// [`Embedder::load`], choosing whether the graph runs with [`crate::kernels`]' ops
    /// (Winograd convolutions among them) or tract's alone; `load` picks what is faster on
    /// this target. For tests and benchmarks that compare the two.
    pub fn load_with_kernels(onnx: &[u8], rewrite: bool) -> Result<Self, VisionError> {
        Self::checked(runnable_with(typed(onnx)?, rewrite, "embedder")?)
    }

    /// Load from ONNX, and also return the model in tract's own form (an NNEF tar of the
    /// decluttered graph) for [`Embedder::load_prepared`]: most of the ONNX load is type
    /// analysis and decluttering (about 0.6 s of 0.65 s natively), which that form skips.
    pub fn load_and_prepare(onnx: &[u8]) -> Result<(Self, Vec<u8>), VisionError> {
        let model = typed(onnx)?;
        let mut prepared = Vec::new();
        // Deterministic: no clock in the tar headers (none on wasm32), the same bytes each time.
        nnef()
            .write_to_tar_with_config(&model, &mut prepared, false, true)
            .map_err(|e| model_error("embedder (preparing)", e))?;
        Ok((Self::checked(runnable(model, "embedder")?)?, prepared))
    }

    /// Load what [`Embedder::load_and_prepare`] returned (same tract version: the caller keys
    /// its cache by [`PREPARED_FORMAT`]). The input must be 1x150x150x3 and the output 128-d.
    pub fn load_prepared(tar: &[u8]) -> Result<Self, VisionError> {
        Self::checked(runnable(read_prepared(tar)?, "prepared embedder")?)
    }

    fn checked(plan: Arc<TypedRunnableModel>) -> Result<Self, VisionError> {
        let out = plan.model().output_fact(0).map_err(|e| model_error("embedder", e))?;
        let dimension = out
            .shape
            .as_concrete()
            .and_then(|s| s.last().copied())
            .ok_or_else(|| VisionError::Model("embedder output has no concrete shape".into()))?;
        if dimension != EMBEDDING_DIMENSION {
            return Err(VisionError::Model(format!(
                "the embedder outputs {dimension} values, expected {EMBEDDING_DIMENSION}"
            )));
        }
        Ok(Embedder { plan, template: EMBEDDER_TEMPLATE, dimension })
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
    /// mirror image's descriptors.
    pub fn embed(&self, img: &RgbImage, det: &Detection) -> Result<Vec<f32>, VisionError> {
        self.embed_chip(&self.chip(img, det))
    }

    /// The aligned crop the network reads (`size` x `size` RGB, 0-255, row-major), from the
    /// face's precise landmarks where they were located: what [`Embedder::embed_chip`]
    /// takes, so detection and embedding can run in different places.
    pub fn chip(&self, img: &RgbImage, det: &Detection) -> Vec<f32> {
        align(img, det, &self.template)
    }

    /// The L2-normalised vector of an aligned crop from [`Embedder::chip`] (flip-averaged):
    /// the normalised sum of [`Embedder::pass`] over the crop and over its mirror image.
    pub fn embed_chip(&self, pixels: &[f32]) -> Result<Vec<f32>, VisionError> {
        let mut v = self.pass(pixels, false)?;
        for (acc, x) in v.iter_mut().zip(self.pass(pixels, true)?) {
            *acc += x;
        }
        normalize(&mut v);
        Ok(v)
    }

    /// One run of the network over an aligned crop (`mirrored`: over its mirror image): the
    /// raw descriptor, not normalised. Half of [`Embedder::embed_chip`]'s work, so a video
    /// can name a new face from one pass and refine it with the other when it has time.
    pub fn pass(&self, pixels: &[f32], mirrored: bool) -> Result<Vec<f32>, VisionError> {
        let size = self.template.size;
        if pixels.len() != size * size * 3 {
            return Err(VisionError::InvalidParameter(format!(
                "a face chip has {} values, expected {size} x {size} x 3",
                pixels.len()
            )));
        }
        if !mirrored {
            return self.descriptor(pixels);
        }
        let mirror: Vec<f32> = pixels
            .chunks_exact(size * 3)
            .flat_map(|row| row.chunks_exact(3).rev().flat_map(|p| [p[0], p[1], p[2]]))
            .collect();
        self.descriptor(&mirror)
    }

    fn descriptor(&self, rgb: &[f32]) -> Result<Vec<f32>, VisionError> {
        let size = self.template.size;
        let input = Tensor::from_shape(&[1, size, size, 3], rgb).map_err(|e| model_error("embedder input", e))?;
        let out = self.plan.run(tvec!(input.into())).map_err(|e| model_error("embedder", e))?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| model_error("embedder output", e))?;
        Ok(view.iter().copied().collect())
    }
}
