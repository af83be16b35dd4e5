//! Convolutions as one matrix product over gathered input patches (im2col), for those the
//! Winograd form does not take: the embedder's 7x7 stride-2 stem and stride-2 3x3s,
//! BlazeFace's 5x5 stem, ONet's 3x3s; and BlazeFace's 1x1 projections, which tract's graph
//! holds as channel-mixing products (`EinSum` `NIHW,OI->NOHW`), not convolutions.
//!
//! The kernel is packed once at load; per run, each output position's receptive field is
//! gathered into a column (a 1x1 stride-1 convolution reads its input as it is), and
//! `gemm` multiplies.

use super::gemm::{multiply, pack, ROWS};
use super::{f32_input, f32_output, ConstantConv};
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::einsum::EinSum;

/// Geometry of one 2-d convolution, as run by [`Im2colConv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_before: [usize; 2],
    pub pad_after: [usize; 2],
}

impl Geometry {
    /// Output size along `axis` for an input of `size`, `None` when the kernel does not fit.
    fn out(&self, axis: usize, size: usize) -> Option<usize> {
        let padded = size + self.pad_before[axis] + self.pad_after[axis];
        (padded >= self.kernel[axis]).then(|| (padded - self.kernel[axis]) / self.stride[axis] + 1)
    }

    fn reads_input_as_is(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad_before == [0, 0] && self.pad_after == [0, 0]
    }
}

#[derive(Clone, Debug)]
pub struct Im2colConv {
    pub geometry: Geometry,
    input_channels: usize,
    output_channels: usize,
    /// The OIHW kernel as an output x (input, ky, kx) matrix, from [`pack`].
    weights: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
}

impl PartialEq for Im2colConv {
    /// The same op when it holds the same packed weights (one load).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.weights, &other.weights) && Arc::ptr_eq(&self.bias, &other.bias)
    }
}

impl Eq for Im2colConv {}

impl Im2colConv {
    /// From an OIHW kernel and a per-output-channel bias; `None` where the sizes disagree.
    pub fn new(
        kernel: &[f32],
        bias: &[f32],
        output_channels: usize,
        input_channels: usize,
        geometry: Geometry,
    ) -> Option<Self> {
        let depth = input_channels * geometry.kernel[0] * geometry.kernel[1];
        if output_channels == 0 || depth == 0 || geometry.stride.contains(&0) {
            return None;
        }
        if kernel.len() != output_channels * depth || bias.len() != output_channels {
            return None;
        }
        Some(Im2colConv {
            geometry,
            input_channels,
            output_channels,
            weights: Arc::new(pack(kernel, output_channels, depth)),
            bias: Arc::new(bias.to_vec()),
        })
    }

    /// Output height and width for an `h` x `w` input.
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        Some((self.geometry.out(0, h)?, self.geometry.out(1, w)?))
    }

    /// Convolve one CHW image into `out` (`output_channels` x the output size).
    pub(crate) fn run(&self, input: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let Some((oh, ow)) = self.output_size(h, w) else { return };
        let g = self.geometry;
        let (cin, cout) = (self.input_channels, self.output_channels);
        let depth = cin * g.kernel[0] * g.kernel[1];
        let positions = oh * ow;

        let gathered;
        let columns: &[f32] = if g.reads_input_as_is() {
            input
        } else {
            gathered = self.gather(input, h, w, oh, ow);
            &gathered
        };

        let padded_rows = cout.div_ceil(ROWS) * ROWS;
        if padded_rows == cout {
            multiply(&self.weights, columns, out, depth, positions);
            for (plane, &b) in out.chunks_exact_mut(positions).zip(self.bias.iter()) {
                plane.iter_mut().for_each(|v| *v += b);
            }
        } else {
            let mut m = vec![0f32; padded_rows * positions];
            multiply(&self.weights, columns, &mut m, depth, positions);
            for ((plane, row), &b) in
                out.chunks_exact_mut(positions).zip(m.chunks_exact(positions)).zip(self.bias.iter())
            {
                for (o, &v) in plane.iter_mut().zip(row) {
                    *o = v + b;
                }
            }
        }
    }

    /// The patch matrix: row (ci, ky, kx), column (oy, ox), zero where the patch lies in the
    /// padding.
    fn gather(&self, input: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
        let g = self.geometry;
        let stride = oh * ow;
        let ([kh, kw], [sh, sw], [pt, pl]) = (g.kernel, g.stride, g.pad_before);
        let mut columns = vec![0f32; self.input_channels * kh * kw * stride];
        for (ci, plane) in input.chunks_exact(h * w).take(self.input_channels).enumerate() {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = &mut columns[((ci * kh + ky) * kw + kx) * stride..][..stride];
                    // Output columns whose input column ox * sw + kx - pl lies inside the image.
                    let lo = pl.saturating_sub(kx).div_ceil(sw).min(ow);
                    let hi = (w + pl).saturating_sub(kx).div_ceil(sw).min(ow);
                    for oy in 0..oh {
                        let iy = oy * sh + ky;
                        if iy < pt || iy - pt >= h || lo >= hi {
                            continue;
                        }
                        let line = &plane[(iy - pt) * w..][..w];
                        let dst = &mut row[oy * ow..][..ow];
                        let first = lo * sw + kx - pl;
                        let count = hi - lo;
                        if sw == 1 {
                            dst[lo..hi].copy_from_slice(&line[first..][..count]);
                        } else {
                            let src = &line[first..][..(count - 1) * sw + 1];
                            for (i, d) in dst[lo..hi].iter_mut().enumerate() {
                                *d = src[i * sw];
                            }
                        }
                    }
                }
            }
        }
        columns
    }
}

impl Op for Im2colConv {
    fn name(&self) -> StaticName {
        "Im2colConv".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Im2colConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape().to_vec();
        if shape.len() != 4 || shape[1] != self.input_channels {
            bail!("Im2colConv: input shape {shape:?}, expected N x {} x H x W", self.input_channels);
        }
        let Some((oh, ow)) = self.output_size(shape[2], shape[3]) else {
            bail!("Im2colConv: a {:?} kernel does not fit a {shape:?} input", self.geometry.kernel);
        };
        let data = f32_input(&input)?;
        let (in_size, out_size) = (self.input_channels * shape[2] * shape[3], self.output_channels * oh * ow);
        f32_output(&[shape[0], self.output_channels, oh, ow], |out| {
            for (x, y) in data.chunks_exact(in_size).zip(out.chunks_exact_mut(out_size)) {
                self.run(x, shape[2], shape[3], y);
            }
        })
    }
}

impl TypedOp for Im2colConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let Some(shape) = inputs[0].shape.as_concrete() else { bail!("Im2colConv: symbolic input shape") };
        let (4, Some((oh, ow))) = (shape.len(), self.output_size(shape[2], shape[3])) else {
            bail!("Im2colConv: input shape {shape:?}");
        };
        Ok(tvec!(f32::fact([shape[0], self.output_channels, oh, ow])))
    }

    as_op!();
}

/// An [`Im2colConv`] for `node` if it is a [`ConstantConv`] whose output size is the one this
/// op computes.
pub(super) fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<Im2colConv>> {
    let Some(found) = ConstantConv::of(model, node)? else { return Ok(None) };
    let spec = &found.conv.pool_spec;
    let strides = spec.strides.clone().unwrap_or_else(|| tvec![1, 1]);
    let padding = spec.padding.compute(&found.input[2..], &spec.kernel_shape, &[1, 1], &strides);
    let geometry = Geometry {
        kernel: [spec.kernel_shape[0], spec.kernel_shape[1]],
        stride: [strides[0], strides[1]],
        pad_before: [padding[0].pad_before, padding[1].pad_before],
        pad_after: [padding[0].pad_after, padding[1].pad_after],
    };
    let (cout, cin) = (spec.output_channels, spec.input_channels);
    let op = Im2colConv::new(found.kernel()?, &found.bias, cout, cin, geometry);
    // What tract computes for this node must be what the op computes.
    let expected = (padding[0].convoluted, padding[1].convoluted);
    Ok(op.filter(|op| op.output_size(found.input[2], found.input[3]) == Some(expected)))
}

/// A 1x1 convolution as tract's graph holds it: a channel-mixing product of a map with a
/// constant output x input matrix, `EinSum` `NIHW,OI->NOHW` (BlazeFace's projections; the
/// full-range model's graph drops the unit batch axis on either side: `IHW`, `OHW`). Runs
/// an [`Im2colConv`] (which reads the map as it is) and gives tract's output shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMix {
    pub conv: Im2colConv,
    pub output_shape: Vec<usize>,
}

impl Op for ChannelMix {
    fn name(&self) -> StaticName {
        "ChannelMix".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ChannelMix {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let (h, w) = spatial(input.shape());
        let (cin, cout) = (self.conv.input_channels, self.conv.output_channels);
        if input.len() != cin * h * w || self.output_shape.iter().product::<usize>() != cout * h * w {
            bail!("ChannelMix: input shape {:?} for {cin} -> {cout} channels", input.shape());
        }
        let data = f32_input(&input)?;
        f32_output(&self.output_shape, |out| self.conv.run(data, h, w, out))
    }
}

impl TypedOp for ChannelMix {
    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(&self.output_shape)))
    }

    as_op!();
}

/// The last two axes of a shape (height, width), 1 where the rank is smaller.
fn spatial(shape: &[usize]) -> (usize, usize) {
    match shape {
        [.., h, w] => (*h, *w),
        [w] => (1, *w),
        [] => (1, 1),
    }
}

/// A [`ChannelMix`] for `node` if it is an f32 channel-mixing product (see there) on concrete
/// shapes, and the node whose output it replaces: the product's own, or that of the
/// per-channel constant `Add` that is its only reader (the bias, folded in: as a separate op
/// tract adds it at a tenth of the speed it multiplies).
pub(super) fn pointwise(model: &TypedModel, node: &TypedNode) -> TractResult<Option<(ChannelMix, usize)>> {
    let Some(einsum) = node.op_as::<EinSum>() else { return Ok(None) };
    if einsum.q_params.is_some() || einsum.operating_dt != f32::datum_type() || node.inputs.len() != 2 {
        return Ok(None);
    }
    let input = model.outlet_fact(node.inputs[0])?;
    let output = &node.outputs[0].fact;
    let (Some(in_shape), Some(out_shape)) = (input.shape.as_concrete(), output.shape.as_concrete()) else {
        return Ok(None);
    };
    let Some(weights) = model.outlet_fact(node.inputs[1])?.konst.clone() else { return Ok(None) };
    let (inputs, outputs) = einsum.axes.to_strs();
    let [map, matrix, out] = [inputs[0].as_bytes(), inputs[1].as_bytes(), outputs[0].as_bytes()];
    // map: [N] I H W; matrix: O I; out: [N] O H W; N (either side) of size 1.
    let unit_lead = |labels: &[u8], shape: &[usize]| labels.len() == 3 || (labels.len() == 4 && shape[0] == 1);
    let channel_mix = matches!(map.len(), 3 | 4)
        && matches!(out.len(), 3 | 4)
        && matrix.len() == 2
        && unit_lead(map, in_shape)
        && unit_lead(out, out_shape)
        && matrix[1] == map[map.len() - 3]
        && out[out.len() - 3..] == [matrix[0], map[map.len() - 2], map[map.len() - 1]]
        && !map.contains(&matrix[0]);
    if !channel_mix
        || input.datum_type != f32::datum_type()
        || weights.datum_type() != f32::datum_type()
        || weights.rank() != 2
        || weights.shape()[1] != in_shape[in_shape.len() - 3]
    {
        return Ok(None);
    }
    let (cout, cin) = (weights.shape()[0], weights.shape()[1]);
    let (bias, replaced) = match channel_bias(model, node, out_shape, cout)? {
        Some((bias, add)) => (bias, add),
        None => (vec![0.0; cout], node.id),
    };
    let geometry = Geometry { kernel: [1, 1], stride: [1, 1], pad_before: [0, 0], pad_after: [0, 0] };
    let Some(conv) = Im2colConv::new(f32_input(&weights)?, &bias, cout, cin, geometry) else {
        return Ok(None);
    };
    Ok(Some((ChannelMix { conv, output_shape: out_shape.to_vec() }, replaced)))
}

/// The per-channel bias `node`'s output (of `shape`, channels third from last) takes next, if
/// its only reader adds a constant shaped like it with every other axis 1: the values and the
/// `Add` node.
fn channel_bias(
    model: &TypedModel,
    node: &TypedNode,
    shape: &[usize],
    channels: usize,
) -> TractResult<Option<(Vec<f32>, usize)>> {
    let readers = model.outlet_successors(OutletId::new(node.id, 0));
    let [reader] = readers else { return Ok(None) };
    let add = model.node(reader.node);
    let is_add = add.op_as::<TypedBinOp>().is_some_and(|op| op.0.name() == "Add");
    if !is_add || add.inputs.len() != 2 || model.output_outlets()?.contains(&OutletId::new(node.id, 0)) {
        return Ok(None);
    }
    let Some(bias) = model.outlet_fact(add.inputs[1 - reader.slot])?.konst.clone() else { return Ok(None) };
    let mut per_channel = vec![1; shape.len()];
    per_channel[shape.len() - 3] = channels;
    let same_shape = add.outputs[0].fact.shape.as_concrete() == Some(shape);
    if bias.datum_type() != f32::datum_type() || bias.shape() != per_channel || !same_shape {
        return Ok(None);
    }
    Ok(Some((f32_input(&bias)?.to_vec(), add.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct convolution in f64, zero padding.
    #[allow(clippy::too_many_arguments)]
    fn direct(
        kernel: &[f32],
        bias: &[f32],
        cout: usize,
        cin: usize,
        g: Geometry,
        x: &[f32],
        h: usize,
        w: usize,
    ) -> Vec<f32> {
        let ([kh, kw], [sh, sw], [pt, pl]) = (g.kernel, g.stride, g.pad_before);
        let (oh, ow) = (g.out(0, h).unwrap(), g.out(1, w).unwrap());
        let mut out = vec![0f32; cout * oh * ow];
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = bias[co] as f64;
                    for ci in 0..cin {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) =
                                    ((oy * sh + ky) as isize - pt as isize, (ox * sw + kx) as isize - pl as isize);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                s += kernel[((co * cin + ci) * kh + ky) * kw + kx] as f64
                                    * x[(ci * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                    }
                    out[(co * oh + oy) * ow + ox] = s as f32;
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_direct_convolution_for_every_geometry_the_models_use() {
        let geometry = |k: usize, s: usize, before: usize, after: usize| Geometry {
            kernel: [k, k],
            stride: [s, s],
            pad_before: [before, before],
            pad_after: [after, after],
        };
        let cases = [
            (32, 3, geometry(7, 2, 0, 0), 31, 29),  // the embedder's stem, on a smaller map
            (24, 3, geometry(5, 2, 1, 2), 32, 32),  // BlazeFace's stem ("same", stride 2)
            (28, 24, geometry(1, 1, 0, 0), 16, 16), // a projection, read as it is
            (42, 36, geometry(1, 1, 0, 0), 5, 3),   // ragged rows and columns
            (64, 32, geometry(3, 2, 0, 0), 35, 35), // the embedder's stride-2 3x3
            (10, 3, geometry(3, 1, 0, 0), 12, 12),  // ONet's unpadded 3x3
            (6, 2, geometry(3, 3, 2, 2), 7, 8),     // wide padding, stride past the kernel
        ];
        for (cout, cin, g, h, w) in cases {
            let n = |len: usize, seed: usize| -> Vec<f32> {
                (0..len).map(|i| (((i + seed) * 7919 % 997) as f32 / 997.0) - 0.5).collect()
            };
            let kh = g.kernel[0] * g.kernel[1];
            let (kernel, bias, x) = (n(cout * cin * kh, 3), n(cout, 5), n(cin * h * w, 7));
            let op = Im2colConv::new(&kernel, &bias, cout, cin, g).expect("sizes agree");
            let (oh, ow) = op.output_size(h, w).unwrap();
            let mut out = vec![f32::NAN; cout * oh * ow];
            op.run(&x, h, w, &mut out);
            let reference = direct(&kernel, &bias, cout, cin, g, &x, h, w);
            let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "{cout}x{cin} {g:?} on {h}x{w}: max |error| {worst}");
        }
    }
}
