//! Faster forms of a few tract ops, swapped into the models' graphs in the browser.
//!
//! In wasm32 there is one thread and 128-bit SIMD without fused multiply-add, and a few of
//! tract's ops run far below what that allows on these networks. Profiled per op in V8 (the
//! embedder ~36 ms a pass, BlazeFace ~10 ms a frame), the time went to convolutions (~34 ms
//! of the embedder, 10-15 GFLOP/s), max pooling (1.1-1.8 ms for a few tens of thousands of
//! outputs) and constant padding of channels (~1.7 ms of BlazeFace). [`rewrite`] replaces
//! those nodes of a typed model, before tract optimises it, with:
//!
//! - [`winograd::WinogradConv`]: 3x3 stride-1 convolutions in Winograd F(2x2, 3x3) form;
//! - [`im2col::Im2colConv`]: the other convolutions, as one product over gathered patches,
//!   and [`im2col::ChannelMix`], the 1x1 ones that tract's graph holds as matrix products;
//! - [`pool::MaxPool2d`]: NCHW max pooling without padding;
//! - [`pad::ConstantPad`]: constant padding of an f32 tensor.
//!
//! The convolutions multiply with `gemm` (31-37 GFLOP/s alone in V8 here). With all of
//! them, one embedder pass takes ~15-19 ms in V8 instead of ~31-38, and BlazeFace-short's
//! frame ~4.3-4.9 ms instead of ~6.2-7.5. Pooling and padding give the same bits
//! as tract; the convolutions differ by rounding (tests hold each to a direct reference and
//! every shipped model to tract). Natively tract's AVX2/FMA kernels are
//! the faster choice for convolutions, so the models are rewritten on wasm32 only
//! ([`IN_THIS_BUILD`]); native tests and benchmarks call [`rewrite`] to compare.

mod gemm;
pub mod im2col;
pub mod pad;
pub mod pool;
pub mod winograd;

use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::nn::DataFormat;

/// Whether the models are rewritten in this build: on wasm32, where it measured faster.
pub const IN_THIS_BUILD: bool = cfg!(target_arch = "wasm32");

/// How many nodes of each kind [`rewrite`] replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    pub winograd: usize,
    pub im2col: usize,
    /// Channel-mixing products (1x1 convolutions in tract's graph): [`im2col::ChannelMix`].
    pub pointwise: usize,
    pub max_pool: usize,
    pub pad: usize,
}

/// Replace every node of `model` that one of this module's ops computes. Run on a decluttered
/// typed model before it is optimised (undecluttered, casts and other no-ops can hide the
/// constants the convolutions need); nodes these ops do not cover are left to tract.
pub fn rewrite(model: &mut TypedModel) -> TractResult<Rewritten> {
    let mut done = Rewritten::default();
    for id in model.eval_order()? {
        let node = model.node(id);
        // The op, and the node whose output it stands for (a folded bias's, or this one's).
        let (op, replaced): (Box<dyn TypedOp>, usize) = if let Some(op) = winograd::replacement(model, node)? {
            done.winograd += 1;
            (Box::new(op), id)
        } else if let Some(op) = im2col::replacement(model, node)? {
            done.im2col += 1;
            (Box::new(op), id)
        } else if let Some((op, replaced)) = im2col::pointwise(model, node)? {
            done.pointwise += 1;
            (Box::new(op), replaced)
        } else if let Some(op) = pool::replacement(model, node)? {
            done.max_pool += 1;
            (Box::new(op), id)
        } else if let Some(op) = pad::replacement(model, node)? {
            done.pad += 1;
            (Box::new(op), id)
        } else {
            continue;
        };
        let mut patch = TypedModelPatch::default();
        let input = patch.tap_model(model, node.inputs[0])?;
        let wire = patch.wire_node(&node.name, op, &[input])?;
        patch.shunt_outside(model, replaced.into(), wire[0])?;
        patch.apply(model)?;
    }
    Ok(done)
}

/// An f32 tensor (an op's input, a constant of the graph) as a contiguous slice.
fn f32_input(tensor: &Tensor) -> TractResult<&[f32]> {
    tensor.try_as_plain_ram()?.as_slice::<f32>()
}

/// What [`winograd`] and [`im2col`] both need of a convolution node before they take it: an
/// f32 NCHW convolution with an OIHW constant kernel and bias, one group, no dilation, on a
/// concrete 2-d input. The bias is given per output channel (a scalar one repeated).
struct ConstantConv<'a> {
    conv: &'a Conv,
    /// The input's shape: N x C x H x W.
    input: Vec<usize>,
    /// OIHW.
    kernel: Arc<Tensor>,
    bias: Vec<f32>,
}

impl<'a> ConstantConv<'a> {
    fn of(model: &TypedModel, node: &'a TypedNode) -> TractResult<Option<Self>> {
        let Some(conv) = node.op_as::<Conv>() else { return Ok(None) };
        let spec = &conv.pool_spec;
        let input = model.outlet_fact(node.inputs[0])?;
        let Some(shape) = input.shape.as_concrete() else { return Ok(None) };
        let (cout, cin) = (spec.output_channels, spec.input_channels);
        if spec.data_format != DataFormat::NCHW
            || spec.kernel_shape.len() != 2
            || shape.len() != 4
            || shape[1] != cin
            || spec.dilations.as_ref().is_some_and(|d| d.iter().any(|&x| x != 1))
            || conv.group != 1
            || conv.q_params.is_some()
            || conv.kernel_fmt != KernelFormat::OIHW
            || node.inputs.len() != 3
            || input.datum_type != f32::datum_type()
        {
            return Ok(None);
        }
        let (Some(kernel), Some(bias)) =
            (model.outlet_fact(node.inputs[1])?.konst.clone(), model.outlet_fact(node.inputs[2])?.konst.clone())
        else {
            return Ok(None);
        };
        let kernel_shape = [cout, cin, spec.kernel_shape[0], spec.kernel_shape[1]];
        if kernel.datum_type() != f32::datum_type()
            || kernel.shape() != kernel_shape
            || bias.datum_type() != f32::datum_type()
        {
            return Ok(None);
        }
        let bias = match bias.len() {
            1 => vec![f32_input(&bias)?[0]; cout],
            n if n == cout => f32_input(&bias)?.to_vec(),
            _ => return Ok(None),
        };
        Ok(Some(ConstantConv { conv, input: shape.to_vec(), kernel, bias }))
    }

    fn kernel(&self) -> TractResult<&[f32]> {
        f32_input(&self.kernel)
    }
}

/// A zeroed f32 tensor of `shape`, filled in place by `fill`: one allocation, no copy.
fn f32_output(shape: &[usize], fill: impl FnOnce(&mut [f32])) -> TractResult<TVec<TValue>> {
    let mut tensor = Tensor::zero::<f32>(shape)?;
    fill(tensor.try_as_plain_ram_mut()?.as_slice_mut::<f32>()?);
    Ok(tvec!(tensor.into_tvalue()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each model the engine ships, run with and without the rewrite on the same input: the
    /// outputs equal up to rounding (the convolutions sum in another order), and the rewrite
    /// reaches every node it was written for (ONet's padded pool stays tract's).
    #[test]
    fn every_shipped_model_gives_tracts_outputs_after_the_rewrite() {
        let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let cases = [
            (
                "blazeface-short.onnx",
                vec![1, 128, 128, 3],
                Rewritten { winograd: 0, im2col: 1, pointwise: 16, max_pool: 3, pad: 11 },
            ),
            (
                "blazeface-full.onnx",
                vec![1, 3, 192, 192],
                Rewritten { winograd: 0, im2col: 1, pointwise: 47, max_pool: 0, pad: 0 },
            ),
            (
                "mtcnn-onet.onnx",
                vec![1, 3, 48, 48],
                Rewritten { winograd: 0, im2col: 4, pointwise: 0, max_pool: 2, pad: 0 },
            ),
            (
                "faceapi-resnet.onnx",
                vec![1, 150, 150, 3],
                Rewritten { winograd: 23, im2col: 6, pointwise: 0, max_pool: 1, pad: 5 },
            ),
        ];
        for (file, shape, expected) in cases {
            let onnx = std::fs::read(models.join(file)).expect("the model is committed");
            let typed = tract_onnx::onnx()
                .model_for_read(&mut std::io::Cursor::new(&onnx))
                .and_then(|m| m.with_input_fact(0, f32::fact(&shape).into()))
                .and_then(|m| m.into_typed())
                .and_then(|m| m.into_decluttered())
                .expect("loads");
            let mut rewritten = typed.clone();
            assert_eq!(rewrite(&mut rewritten).unwrap(), expected, "{file}");
            let input: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| ((i * 7919) % 256) as f32).collect();
            let run = |model: TypedModel| {
                let plan = model.into_optimized().and_then(|m| m.into_runnable()).expect("optimises");
                let out = plan.run(tvec!(Tensor::from_shape(&shape, &input).unwrap().into())).expect("runs");
                out.iter().map(|t| f32_input(t).unwrap().to_vec()).collect::<Vec<_>>()
            };
            let (a, b) = (run(typed), run(rewritten));
            assert_eq!(a.len(), b.len(), "{file}: outputs");
            for (x, y) in a.iter().zip(&b) {
                let scale = x.iter().map(|v| v.abs()).fold(0f32, f32::max);
                let worst = x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(worst <= 1e-4 * scale, "{file}: max |difference| {worst} of values up to {scale}");
            }
        }
    }

    /// The package loads the embedder from ONNX once and from tract's NNEF form (the prepared
    /// embedder it caches) afterwards: both must be rewritten alike and give the same bits, or
    /// a collection's similarities would shift between the first open and the next.
    #[test]
    fn a_prepared_embedder_is_rewritten_like_one_from_onnx() {
        use crate::detector::runnable_with;
        use crate::embedder::{read_prepared, typed, Embedder};
        let onnx =
            std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/faceapi-resnet.onnx"))
                .expect("the model is committed");
        let (_, tar) = Embedder::load_and_prepare(&onnx).expect("loads");
        let prepared = read_prepared(&tar).expect("reads back");
        let input: Vec<f32> = (0..150 * 150 * 3).map(|i| ((i * 7919) % 256) as f32).collect();
        let run = |model: TypedModel| {
            let plan = runnable_with(model, true, "embedder").expect("optimises");
            let out = plan.run(tvec!(Tensor::from_shape(&[1, 150, 150, 3], &input).unwrap().into())).expect("runs");
            f32_input(&out[0]).unwrap().to_vec()
        };
        assert_eq!(run(typed(&onnx).unwrap()), run(prepared));
    }
}
