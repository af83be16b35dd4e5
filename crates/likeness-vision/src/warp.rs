//! Resampling an image through an affine map: the one pixel path shared by detection
//! (letterboxed views and tiles) and alignment (similarity warps onto the embedder template).

use crate::decode::RgbImage;

/// Maps an output pixel centre `(u, v)` to source coordinates:
/// `x = a*u + b*v + c`, `y = d*u + e*v + f` (pixel centres at integer + 0.5 on both sides).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub e: f32,
    pub f: f32,
}

impl Affine {
    /// Axis-aligned map: output pixel `u` lands on `origin + u * scale`.
    pub fn scale_translate(scale: f32, origin_x: f32, origin_y: f32) -> Self {
        Affine { a: scale, b: 0.0, c: origin_x, d: 0.0, e: scale, f: origin_y }
    }

    #[inline]
    pub fn apply(&self, u: f32, v: f32) -> (f32, f32) {
        (self.a * u + self.b * v + self.c, self.d * u + self.e * v + self.f)
    }

    /// Source pixels per output pixel (the map's linear scale).
    pub fn scale(&self) -> f32 {
        (self.a * self.e - self.b * self.d).abs().sqrt()
    }
}

#[inline]
fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    // Pixel centres are at i + 0.5; outside the image reads as black (zero padding).
    let fx = x - 0.5;
    let fy = y - 0.5;
    if fx >= 0.0 && fy >= 0.0 && fx < img.width.saturating_sub(1) as f32 && fy < img.height.saturating_sub(1) as f32 {
        // All four taps inside: no bounds checks, and truncation is floor (the same sums
        // in the same order as below, so the same result).
        let (x0, y0) = (fx as usize, fy as usize);
        let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
        let stride = img.width as usize * 3;
        let at = y0 * stride + x0 * 3;
        let (top, bottom) = (&img.pixels[at..at + 6], &img.pixels[at + stride..at + stride + 6]);
        let (w00, w01, w10, w11) = ((1.0 - tx) * (1.0 - ty), tx * (1.0 - ty), (1.0 - tx) * ty, tx * ty);
        let mut acc = [0.0f32; 3];
        for (c, a) in acc.iter_mut().enumerate() {
            *a = w00 * top[c] as f32 + w01 * top[c + 3] as f32 + w10 * bottom[c] as f32 + w11 * bottom[c + 3] as f32;
        }
        return acc;
    }
    bilinear_checked(img, x, y)
}

/// Bilinear sample with each tap checked: outside the image reads as black.
fn bilinear_checked(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let fx = x - 0.5;
    let fy = y - 0.5;
    let x0 = fx.floor();
    let y0 = fy.floor();
    let tx = fx - x0;
    let ty = fy - y0;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (w, h) = (img.width as i64, img.height as i64);
    let mut acc = [0.0f32; 3];
    for (dy, wy) in [(0i64, 1.0 - ty), (1, ty)] {
        let yy = y0.saturating_add(dy);
        if yy < 0 || yy >= h || wy == 0.0 {
            continue;
        }
        for (dx, wx) in [(0i64, 1.0 - tx), (1, tx)] {
            let xx = x0.saturating_add(dx);
            if xx < 0 || xx >= w || wx == 0.0 {
                continue;
            }
            let p = img.pixel(xx as u32, yy as u32);
            let wgt = wx * wy;
            acc[0] += wgt * p[0] as f32;
            acc[1] += wgt * p[1] as f32;
            acc[2] += wgt * p[2] as f32;
        }
    }
    acc
}

/// Resample `img` into an `out_w x out_h` RGB buffer (interleaved, 0..255 as f32).
/// When the map shrinks the image, each output pixel averages a k x k grid of bilinear
/// samples (k up to 4) so small faces in large photos are not lost to aliasing.
pub(crate) fn warp_rgb(img: &RgbImage, map: &Affine, out_w: usize, out_h: usize) -> Vec<f32> {
    let k = (map.scale().ceil() as usize).clamp(1, 4);
    if map.b == 0.0 && map.d == 0.0 {
        separable(img, map, k, out_w, out_h)
    } else {
        general(img, map, k, out_w, out_h)
    }
}

/// Where one output row or column reads from along one axis: for output `i`, source
/// indices `index[offsets[i]..offsets[i + 1]]` (ascending, no repeats) with their weights.
struct AxisTaps {
    offsets: Vec<usize>,
    index: Vec<usize>,
    weight: Vec<f32>,
}

impl AxisTaps {
    fn of(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        let range = self.offsets[i]..self.offsets[i + 1];
        self.index[range.clone()].iter().copied().zip(self.weight[range].iter().copied())
    }
}

/// The k bilinear samples of each output pixel along one axis of an axis-aligned map,
/// each weighted 1/k, with the weights of a source index read twice summed; taps outside
/// the source (zero padding) are left out.
fn axis_taps(scale: f32, origin: f32, k: usize, out_len: usize, src_len: usize) -> AxisTaps {
    let mut taps = AxisTaps { offsets: Vec::with_capacity(out_len + 1), index: Vec::new(), weight: Vec::new() };
    taps.offsets.push(0);
    let share = 1.0 / k as f32;
    for i in 0..out_len {
        let first = taps.index.len();
        for s in 0..k {
            let x = scale * (i as f32 + (s as f32 + 0.5) / k as f32) + origin - 0.5;
            let x0 = x.floor();
            let t = x - x0;
            for (at, w) in [(x0, 1.0 - t), (x0 + 1.0, t)] {
                if w == 0.0 || !(at >= 0.0 && at < src_len as f32) {
                    continue;
                }
                // Samples ascend, so a repeated index is always the last one pushed.
                if taps.index.len() > first && taps.index.last() == Some(&(at as usize)) {
                    *taps.weight.last_mut().expect("index and weight grow together") += w * share;
                } else {
                    taps.index.push(at as usize);
                    taps.weight.push(w * share);
                }
            }
        }
        taps.offsets.push(taps.index.len());
    }
    taps
}

/// The axis-aligned case (letterboxed detector views and tiles): the k x k supersampled
/// bilinear filter factorises into a vertical pass over whole source rows (contiguous, so it
/// vectorises) and a horizontal pass over the few rows that leaves.
fn separable(img: &RgbImage, map: &Affine, k: usize, out_w: usize, out_h: usize) -> Vec<f32> {
    let (src_w, src_h) = (img.width as usize, img.height as usize);
    let cols = axis_taps(map.a, map.c, k, out_w, src_w);
    let rows = axis_taps(map.e, map.f, k, out_h, src_h);
    let mut out = vec![0.0f32; out_h * out_w * 3];
    // Only the source columns some output reads (a tile reads a strip of the image).
    let (Some(&lo), Some(&hi)) = (cols.index.iter().min(), cols.index.iter().max()) else {
        return out;
    };
    let span = (hi - lo + 1) * 3;
    let mut column = vec![0.0f32; span];
    for (v, dst) in out.chunks_exact_mut(out_w * 3).enumerate() {
        if rows.offsets[v] == rows.offsets[v + 1] {
            continue; // entirely in the padding
        }
        column.fill(0.0);
        for (y, w) in rows.of(v) {
            let src = &img.pixels[(y * src_w + lo) * 3..][..span];
            for (c, &p) in column.iter_mut().zip(src) {
                *c += w * p as f32;
            }
        }
        for (u, px) in dst.chunks_exact_mut(3).enumerate() {
            let mut acc = [0.0f32; 3];
            for (x, w) in cols.of(u) {
                let p = &column[(x - lo) * 3..][..3];
                acc[0] += w * p[0];
                acc[1] += w * p[1];
                acc[2] += w * p[2];
            }
            px.copy_from_slice(&acc);
        }
    }
    out
}

/// Any affine map (rotated alignment warps): k x k bilinear samples per output pixel.
fn general(img: &RgbImage, map: &Affine, k: usize, out_w: usize, out_h: usize) -> Vec<f32> {
    let inv = 1.0 / (k * k) as f32;
    let offsets: Vec<f32> = (0..k).map(|s| (s as f32 + 0.5) / k as f32).collect();
    let mut out = Vec::with_capacity(out_w * out_h * 3);
    for v in 0..out_h {
        for u in 0..out_w {
            let mut acc = [0.0f32; 3];
            for &dv in &offsets {
                for &du in &offsets {
                    let (x, y) = map.apply(u as f32 + du, v as f32 + dv);
                    let p = bilinear(img, x, y);
                    acc[0] += p[0];
                    acc[1] += p[1];
                    acc[2] += p[2];
                }
            }
            out.extend_from_slice(&[acc[0] * inv, acc[1] * inv, acc[2] * inv]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_reproduces_pixels() {
        let img = RgbImage { width: 3, height: 2, pixels: (0..18).map(|v| v as u8 * 10).collect() };
        let out = warp_rgb(&img, &Affine::scale_translate(1.0, 0.0, 0.0), 3, 2);
        let expect: Vec<f32> = img.pixels.iter().map(|&v| v as f32).collect();
        assert_eq!(out, expect);
    }

    /// A small deterministic pseudo-random image.
    fn noise(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491_u32;
        let pixels = (0..width * height * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        RgbImage { width, height, pixels }
    }

    #[test]
    fn separable_path_equals_the_general_filter() {
        let img = noise(97, 61);
        // Shrinking (k = 2..4, some taps outside), enlarging, offset and letterboxed maps.
        for (scale, ox, oy, out) in [
            (1.0, 0.0, 0.0, 40),
            (0.37, 10.3, -4.2, 50),
            (1.6, -8.0, -20.0, 64),
            (3.7, -30.5, -60.25, 33),
            (97.0 / 16.0, 0.0, -18.0, 16),
        ] {
            let map = Affine::scale_translate(scale, ox, oy);
            let k = (map.scale().ceil() as usize).clamp(1, 4);
            let fast = separable(&img, &map, k, out, out);
            let slow = general(&img, &map, k, out, out);
            let worst = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "scale {scale}: max difference {worst}");
        }
    }

    #[test]
    fn interior_fast_path_is_exact() {
        let img = noise(23, 17);
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32
        };
        for _ in 0..20_000 {
            let (x, y) = (next() * 27.0 - 2.0, next() * 21.0 - 2.0);
            assert_eq!(bilinear(&img, x, y), bilinear_checked(&img, x, y), "at ({x}, {y})");
        }
        for (x, y) in [(0.5, 0.5), (22.5, 16.5), (22.49, 16.49), (1.0, 1.0)] {
            assert_eq!(bilinear(&img, x, y), bilinear_checked(&img, x, y), "at ({x}, {y})");
        }
    }

    proptest::proptest! {
        /// Any image shape and any map, degenerate ones included: no panic, the right
        /// length, and the separable path agrees with the general filter.
        #[test]
        fn any_map_warps_without_panic(
            width in 1u32..40, height in 1u32..40, seed: u32,
            scale in proptest::prop_oneof![0.01f32..20.0, proptest::strategy::Just(f32::NAN), proptest::strategy::Just(f32::INFINITY), proptest::strategy::Just(0.0f32)],
            ox in -100.0f32..100.0, oy in -100.0f32..100.0, turn in -3.2f32..3.2,
            out_w in 1usize..24, out_h in 1usize..24,
        ) {
            let mut img = noise(width, height);
            let shift = seed as usize % img.pixels.len();
            img.pixels.rotate_left(shift);
            let straight = Affine::scale_translate(scale, ox, oy);
            let out = warp_rgb(&img, &straight, out_w, out_h);
            proptest::prop_assert_eq!(out.len(), out_w * out_h * 3);
            if scale.is_finite() {
                let k = (straight.scale().ceil() as usize).clamp(1, 4);
                let reference = general(&img, &straight, k, out_w, out_h);
                let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                proptest::prop_assert!(worst < 1e-2, "max difference {}", worst);
            }
            let (c, s) = (turn.cos() * scale, turn.sin() * scale);
            let rotated = Affine { a: c, b: -s, c: ox, d: s, e: c, f: oy };
            proptest::prop_assert_eq!(warp_rgb(&img, &rotated, out_w, out_h).len(), out_w * out_h * 3);
        }
    }

    #[test]
    fn outside_reads_black() {
        let img = RgbImage { width: 2, height: 2, pixels: vec![200; 12] };
        let out = warp_rgb(&img, &Affine::scale_translate(1.0, 10.0, 10.0), 1, 1);
        assert_eq!(out, vec![0.0; 3]);
    }
}
