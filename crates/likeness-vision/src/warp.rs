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
    let x0 = fx.floor();
    let y0 = fy.floor();
    let tx = fx - x0;
    let ty = fy - y0;
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (w, h) = (img.width as i64, img.height as i64);
    let mut acc = [0.0f32; 3];
    for (dy, wy) in [(0i64, 1.0 - ty), (1, ty)] {
        let yy = y0 + dy;
        if yy < 0 || yy >= h || wy == 0.0 {
            continue;
        }
        for (dx, wx) in [(0i64, 1.0 - tx), (1, tx)] {
            let xx = x0 + dx;
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
    let inv = 1.0 / (k * k) as f32;
    let mut out = Vec::with_capacity(out_w * out_h * 3);
    for v in 0..out_h {
        for u in 0..out_w {
            let mut acc = [0.0f32; 3];
            for sy in 0..k {
                for sx in 0..k {
                    let su = u as f32 + (sx as f32 + 0.5) / k as f32;
                    let sv = v as f32 + (sy as f32 + 0.5) / k as f32;
                    let (x, y) = map.apply(su, sv);
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

    #[test]
    fn outside_reads_black() {
        let img = RgbImage { width: 2, height: 2, pixels: vec![200; 12] };
        let out = warp_rgb(&img, &Affine::scale_translate(1.0, 10.0, 10.0), 1, 1);
        assert_eq!(out, vec![0.0; 3]);
    }
}
