//! Max pooling over NCHW f32 maps, without padding: the embedder's 3x3 stride-2 pool and
//! BlazeFace's 2x2 stride-2 pools.

use super::{f32_input, f32_output};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::{MaxPool, PaddingSpec};
use tract_onnx::tract_core::ops::nn::DataFormat;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MaxPool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
}

impl MaxPool2d {
    /// Output size along one axis for an input of `size` (no padding).
    fn out(size: usize, kernel: usize, stride: usize) -> Option<usize> {
        (size >= kernel).then(|| (size - kernel) / stride + 1)
    }

    /// Pool every channel plane of `input` (`planes` x `h` x `w`) into `out`.
    pub(crate) fn run(&self, input: &[f32], planes: usize, h: usize, w: usize, out: &mut [f32]) {
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        let (Some(oh), Some(ow)) = (Self::out(h, kh, sh), Self::out(w, kw, sw)) else { return };
        for (plane, dst) in input.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)).take(planes) {
            for y in 0..oh {
                let row = &mut dst[y * ow..][..ow];
                row.fill(f32::NEG_INFINITY);
                for ky in 0..kh {
                    let line = &plane[(y * sh + ky) * w..][..w];
                    match kw {
                        2 => pool_row::<2>(line, sw, row),
                        3 => pool_row::<3>(line, sw, row),
                        _ => {
                            for (o, window) in row.iter_mut().zip(line.windows(kw).step_by(sw)) {
                                *o = window.iter().copied().fold(*o, larger);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One input line's windows of `K` into the running maxima of an output row.
#[inline(always)]
fn pool_row<const K: usize>(line: &[f32], stride: usize, row: &mut [f32]) {
    for (o, window) in row.iter_mut().zip(line.windows(K).step_by(stride)) {
        let window: &[f32; K] = window.try_into().expect("K values");
        *o = window.iter().copied().fold(*o, larger);
    }
}

/// The larger of two values, by comparison and select. Not `f32::max`: in wasm32 that is a call
/// to a software `fmaxf` per element (wasm's `f32.max` treats NaN differently), which made
/// pooling ten times slower than the loads it needs.
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if b > a {
        b
    } else {
        a
    }
}

impl Op for MaxPool2d {
    fn name(&self) -> StaticName {
        "MaxPool2d".into()
    }

    op_as_typed_op!();
}

impl EvalOp for MaxPool2d {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        let (4, Some(oh), Some(ow)) = (shape.len(), Self::out(shape[2], kh, sh), Self::out(shape[3], kw, sw)) else {
            bail!("MaxPool2d: input shape {shape:?}");
        };
        let data = f32_input(&input)?;
        f32_output(&[shape[0], shape[1], oh, ow], |out| self.run(data, shape[0] * shape[1], shape[2], shape[3], out))
    }
}

impl TypedOp for MaxPool2d {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(shape) = inputs[0].shape.as_concrete() else { bail!("MaxPool2d: symbolic input shape") };
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        let (4, Some(oh), Some(ow)) = (shape.len(), Self::out(shape[2], kh, sh), Self::out(shape[3], kw, sw)) else {
            bail!("MaxPool2d: input shape {shape:?}");
        };
        Ok(tvec!(f32::fact([shape[0], shape[1], oh, ow])))
    }

    as_op!();
}

/// A [`MaxPool2d`] for `node` if it is an f32 NCHW max pool over 2-d windows, unpadded,
/// undilated, without index outputs, on a concrete shape.
pub(super) fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<MaxPool2d>> {
    let Some(pool) = node.op_as::<MaxPool>() else { return Ok(None) };
    let spec = &pool.pool_spec;
    let input = model.outlet_fact(node.inputs[0])?;
    let unpadded = match &spec.padding {
        PaddingSpec::Valid => true,
        PaddingSpec::Explicit(before, after) => before.iter().chain(after.iter()).all(|&p| p == 0),
        _ => false,
    };
    let concrete = input.shape.as_concrete().is_some_and(|s| s.len() == 4);
    let strides = spec.strides.clone().unwrap_or_else(|| tvec![1, 1]);
    if pool.with_index_outputs.is_some()
        || spec.data_format != DataFormat::NCHW
        || spec.kernel_shape.len() != 2
        || strides.len() != 2
        || strides.contains(&0)
        || spec.dilations.as_ref().is_some_and(|d| d.iter().any(|&x| x != 1))
        || !unpadded
        || input.datum_type != f32::datum_type()
        || !concrete
    {
        return Ok(None);
    }
    Ok(Some(MaxPool2d { kernel: [spec.kernel_shape[0], spec.kernel_shape[1]], stride: [strides[0], strides[1]] }))
}
