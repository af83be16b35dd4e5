//! Winograd F(2x2, 3x3) for the embedder's 3x3 stride-1 convolutions, in the browser.
//!
//! 23 of the ResNet's 29 convolutions are 3x3, stride 1, padding 1, on maps of 3x3 to 35x35,
//! and they hold about 85% of its arithmetic. Winograd's minimal filtering computes each 2x2 block of outputs from a
//! 4x4 block of input with 16 multiplications per channel pair instead of 36: the kernel is
//! transformed once, at load (`U = G g Gᵀ`), each input block per run (`V = Bᵀ d B`), and the
//! product becomes 16 independent matrix products over channels, `M = U V`, folded back to
//! outputs by `Y = Aᵀ M A`. In F(2x2, 3x3) every transform entry is 0, ±1 or ±½, so the result
//! differs from a direct convolution only by rounding (max |error| ~1e-6 on this network's
//! activations; the tests hold it to the direct form).
//!
//! In wasm32 (one thread, 128-bit SIMD without fused multiply-add) tract's im2col convolution
//! runs these layers at about 10-15 GFLOP/s, and this form does the same layers in 2-3x less
//! time.
//!
//! The matrix products are [`super::gemm`]'s.

use super::gemm::{multiply, pack, ROWS};
use super::ConstantConv;
use std::sync::Arc;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::cnn::PaddingSpec;

/// One 3x3, stride-1, padding-1 convolution in Winograd form: the transformed kernel, packed
/// for the matrix products, and the bias.
#[derive(Clone, Debug)]
pub struct Winograd3x3 {
    input_channels: usize,
    output_channels: usize,
    /// `U` as `[16][output_channels / ROWS][input_channels][ROWS]`.
    kernel: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
}

impl Winograd3x3 {
    /// From an OIHW 3x3 kernel and a per-output-channel bias. `None` where the shapes do not
    /// fit (output channels must be a multiple of 4).
    pub fn new(kernel: &[f32], bias: &[f32], output_channels: usize, input_channels: usize) -> Option<Self> {
        if output_channels == 0
            || input_channels == 0
            || !output_channels.is_multiple_of(ROWS)
            || kernel.len() != output_channels * input_channels * 9
            || bias.len() != output_channels
        {
            return None;
        }
        // G g Gᵀ for every channel pair, as 16 matrices of output x input channels.
        let mut transformed = vec![0f32; 16 * output_channels * input_channels];
        for co in 0..output_channels {
            for ci in 0..input_channels {
                let g = &kernel[(co * input_channels + ci) * 9..][..9];
                // G g, G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]
                let mut gg = [[0f32; 3]; 4];
                for j in 0..3 {
                    let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                    gg[0][j] = g0;
                    gg[1][j] = 0.5 * (g0 + g1 + g2);
                    gg[2][j] = 0.5 * (g0 - g1 + g2);
                    gg[3][j] = g2;
                }
                for (i, [a, b, c]) in gg.into_iter().enumerate() {
                    let row = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                    for (j, value) in row.into_iter().enumerate() {
                        transformed[((i * 4 + j) * output_channels + co) * input_channels + ci] = value;
                    }
                }
            }
        }
        let size = output_channels * input_channels;
        let packed: Vec<f32> =
            transformed.chunks_exact(size).flat_map(|u| pack(u, output_channels, input_channels)).collect();
        Some(Winograd3x3 { input_channels, output_channels, kernel: Arc::new(packed), bias: Arc::new(bias.to_vec()) })
    }

    /// Convolve one CHW image (`input_channels` x `height` x `width`) into `out`
    /// (`output_channels` x `height` x `width`).
    pub(crate) fn run(&self, input: &[f32], height: usize, width: usize, out: &mut [f32]) {
        let (cin, cout) = (self.input_channels, self.output_channels);
        assert_eq!(input.len(), cin * height * width, "Winograd3x3: input size");
        assert_eq!(out.len(), cout * height * width, "Winograd3x3: output size");
        if height == 0 || width == 0 {
            return;
        }
        let (tiles_y, tiles_x) = (height.div_ceil(2), width.div_ceil(2));
        let tiles = tiles_y * tiles_x;
        let stride = tiles;

        // V = Bᵀ d B for every input channel and 4x4 input block, as [16][cin][stride].
        let mut v = vec![0f32; 16 * cin * stride];
        for ci in 0..cin {
            let plane = &input[ci * height * width..][..height * width];
            for ty in 0..tiles_y {
                for tx in 0..tiles_x {
                    let d = block(plane, height, width, 2 * ty as isize - 1, 2 * tx as isize - 1);
                    // Bᵀ d, Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
                    let mut bd = [[0f32; 4]; 4];
                    for j in 0..4 {
                        bd[0][j] = d[0][j] - d[2][j];
                        bd[1][j] = d[1][j] + d[2][j];
                        bd[2][j] = d[2][j] - d[1][j];
                        bd[3][j] = d[1][j] - d[3][j];
                    }
                    let t = ty * tiles_x + tx;
                    for (i, r) in bd.into_iter().enumerate() {
                        let row = [r[0] - r[2], r[1] + r[2], r[2] - r[1], r[1] - r[3]];
                        for (j, value) in row.into_iter().enumerate() {
                            v[((i * 4 + j) * cin + ci) * stride + t] = value;
                        }
                    }
                }
            }
        }

        // M = U V, one product per transform position.
        let mut m = vec![0f32; 16 * cout * stride];
        for xi in 0..16 {
            multiply(
                &self.kernel[xi * cout * cin..][..cout * cin],
                &v[xi * cin * stride..][..cin * stride],
                &mut m[xi * cout * stride..][..cout * stride],
                cin,
                stride,
            );
        }

        // Y = Aᵀ M A + bias, Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]].
        for co in 0..cout {
            let bias = self.bias[co];
            let plane = &mut out[co * height * width..][..height * width];
            for ty in 0..tiles_y {
                for tx in 0..tiles_x {
                    let t = ty * tiles_x + tx;
                    let q = |xi: usize| m[(xi * cout + co) * stride + t];
                    let am: [[f32; 4]; 2] = [
                        std::array::from_fn(|j| q(j) + q(4 + j) + q(8 + j)),
                        std::array::from_fn(|j| q(4 + j) - q(8 + j) - q(12 + j)),
                    ];
                    for (i, r) in am.into_iter().enumerate() {
                        let y = 2 * ty + i;
                        if y >= height {
                            continue;
                        }
                        let pair = [r[0] + r[1] + r[2] + bias, r[1] - r[2] - r[3] + bias];
                        for (j, value) in pair.into_iter().enumerate() {
                            let x = 2 * tx + j;
                            if x < width {
                                plane[y * width + x] = value;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The 4x4 block of `plane` whose top-left corner is (`y0`, `x0`), zero outside the image
/// (the convolution's padding).
#[inline(always)]
fn block(plane: &[f32], height: usize, width: usize, y0: isize, x0: isize) -> [[f32; 4]; 4] {
    let mut d = [[0f32; 4]; 4];
    if y0 >= 0 && x0 >= 0 && y0 as usize + 4 <= height && x0 as usize + 4 <= width {
        for (i, row) in d.iter_mut().enumerate() {
            row.copy_from_slice(&plane[(y0 as usize + i) * width + x0 as usize..][..4]);
        }
        return d;
    }
    for (i, row) in d.iter_mut().enumerate() {
        let y = y0 + i as isize;
        if y < 0 || y >= height as isize {
            continue;
        }
        for (j, value) in row.iter_mut().enumerate() {
            let x = x0 + j as isize;
            if x >= 0 && x < width as isize {
                *value = plane[y as usize * width + x as usize];
            }
        }
    }
    d
}

/// The tract op that runs a [`Winograd3x3`] over an NCHW f32 tensor.
#[derive(Clone, Debug)]
pub struct WinogradConv {
    pub conv: Winograd3x3,
}

impl PartialEq for WinogradConv {
    /// Two ops are the same when they hold the same transformed weights (one load).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.conv.kernel, &other.conv.kernel) && Arc::ptr_eq(&self.conv.bias, &other.conv.bias)
    }
}

impl Eq for WinogradConv {}

impl Op for WinogradConv {
    fn name(&self) -> StaticName {
        "WinogradConv3x3".into()
    }

    op_as_typed_op!();
}

impl EvalOp for WinogradConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let shape = input.shape();
        if shape.len() != 4 || shape[1] != self.conv.input_channels {
            bail!("WinogradConv3x3: input shape {shape:?}, expected N x {} x H x W", self.conv.input_channels);
        }
        let (batch, height, width) = (shape[0], shape[2], shape[3]);
        let data = super::f32_input(&input)?;
        let (in_size, out_size) =
            (self.conv.input_channels * height * width, self.conv.output_channels * height * width);
        super::f32_output(&[batch, self.conv.output_channels, height, width], |out| {
            for (x, y) in data.chunks_exact(in_size).zip(out.chunks_exact_mut(out_size)) {
                self.conv.run(x, height, width, y);
            }
        })
    }
}

impl TypedOp for WinogradConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut shape = inputs[0].shape.to_tvec();
        if shape.len() != 4 {
            bail!("WinogradConv3x3: input rank {}, expected 4", shape.len());
        }
        shape[1] = self.conv.output_channels.into();
        Ok(tvec!(f32::fact(shape)))
    }

    as_op!();
}

/// The Winograd form of `node` if it is a convolution F(2x2, 3x3) computes: a
/// [`ConstantConv`], 3x3, stride 1, padding 1, output channels a multiple of 4, on a map large
/// enough that it saves multiplications.
pub(super) fn replacement(model: &TypedModel, node: &TypedNode) -> TractResult<Option<WinogradConv>> {
    let Some(found) = ConstantConv::of(model, node)? else { return Ok(None) };
    let spec = &found.conv.pool_spec;
    let ones = |v: &Option<TVec<usize>>| v.as_ref().is_none_or(|v| v.iter().all(|&x| x == 1));
    let padded_by_one = match &spec.padding {
        PaddingSpec::Explicit(before, after) => {
            before.iter().chain(after.iter()).all(|&p| p == 1) && before.len() == 2 && after.len() == 2
        }
        PaddingSpec::SameUpper | PaddingSpec::SameLower => true,
        _ => false,
    };
    if spec.kernel_shape.as_slice() != [3, 3]
        || !ones(&spec.strides)
        || !padded_by_one
        || !fewer_products(found.input[2], found.input[3])
    {
        return Ok(None);
    }
    let conv = Winograd3x3::new(found.kernel()?, &found.bias, spec.output_channels, spec.input_channels);
    Ok(conv.map(|conv| WinogradConv { conv }))
}

/// Whether the Winograd form needs fewer multiplications than the direct one on an `h` x `w`
/// map: 16 per 2x2 block against 9 per output. False on the smallest maps (1x1, 1x2), where
/// a block is mostly padding.
fn fewer_products(h: usize, w: usize) -> bool {
    let blocks = h.div_ceil(2) * w.div_ceil(2);
    16 * blocks < 9 * h * w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct 3x3 convolution, padding 1, in f64: the reference the Winograd form is held to.
    fn direct(kernel: &[f32], bias: &[f32], cout: usize, cin: usize, x: &[f32], h: usize, w: usize) -> Vec<f32> {
        let mut out = vec![0f32; cout * h * w];
        for co in 0..cout {
            for y in 0..h {
                for xx in 0..w {
                    let mut s = bias[co] as f64;
                    for ci in 0..cin {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                s += kernel[((co * cin + ci) * 3 + ky) * 3 + kx] as f64
                                    * x[(ci * h + iy as usize) * w + ix as usize] as f64;
                            }
                        }
                    }
                    out[(co * h + y) * w + xx] = s as f32;
                }
            }
        }
        out
    }

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_the_direct_convolution_on_odd_even_and_tiny_maps() {
        // Odd sizes leave a half block at the edge; 1x1 and 2x3 are all padding; 4x4 fills
        // only the narrow tile; 35 and 17 are the embedder's own maps.
        for (cout, cin, h, w) in
            [(4, 3, 1, 1), (8, 5, 2, 3), (12, 7, 4, 4), (16, 9, 17, 17), (4, 32, 35, 35), (8, 2, 9, 30)]
        {
            let kernel = noise(cout * cin * 9, 7);
            let bias = noise(cout, 11);
            let x = noise(cin * h * w, 13);
            let conv = Winograd3x3::new(&kernel, &bias, cout, cin).expect("shapes fit");
            let mut out = vec![f32::NAN; cout * h * w];
            conv.run(&x, h, w, &mut out);
            let reference = direct(&kernel, &bias, cout, cin, &x, h, w);
            let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "{cout}x{cin} on {h}x{w}: max |error| {worst}");
        }
    }

    #[test]
    fn refuses_shapes_it_cannot_pack() {
        assert!(Winograd3x3::new(&[0.0; 6 * 9], &[0.0; 6], 6, 1).is_none(), "6 output channels");
        assert!(Winograd3x3::new(&[0.0; 4 * 9], &[0.0; 3], 4, 1).is_none(), "short bias");
        assert!(Winograd3x3::new(&[], &[], 0, 0).is_none(), "empty");
    }
}
