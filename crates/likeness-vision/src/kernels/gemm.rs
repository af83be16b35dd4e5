//! The matrix product under [`super::winograd`] and [`super::im2col`]: `m = u v`, with `u`
//! packed once at load and `v` row-major.
//!
//! A 4x8 register tile (4 output rows, 8 columns) accumulated over the whole inner dimension,
//! written as plain arrays, which LLVM turns into `f32x4` code on wasm32 (`simd128`) and SSE
//! natively: one portable source, no `unsafe`. In V8 it runs at 31-37 GFLOP/s on this machine
//! (tools/README.md), against 10-15 for tract's convolutions in the same layers.

/// Rows of `u` (output channels) per register tile.
pub(crate) const ROWS: usize = 4;
/// Columns per register tile; narrower tiles of [`NARROW`], then single columns, take the rest.
pub(crate) const COLS: usize = 8;
pub(crate) const NARROW: usize = 4;

/// `rows` x `depth` row-major weights packed as `[rows / ROWS][depth][ROWS]`, the rows padded
/// with zeros to a multiple of [`ROWS`].
pub(crate) fn pack(weights: &[f32], rows: usize, depth: usize) -> Vec<f32> {
    let groups = rows.div_ceil(ROWS);
    let mut packed = vec![0f32; groups * depth * ROWS];
    for r in 0..rows {
        for k in 0..depth {
            packed[((r / ROWS) * depth + k) * ROWS + r % ROWS] = weights[r * depth + k];
        }
    }
    packed
}

/// `m = u v`: `u` from [`pack`] (`depth` deep), `v` `depth` x `stride` and `m` (rows padded to
/// a multiple of [`ROWS`]) x `stride`, both row-major.
pub(crate) fn multiply(u: &[f32], v: &[f32], m: &mut [f32], depth: usize, stride: usize) {
    let wide = stride / COLS * COLS;
    let narrow = wide + (stride - wide) / NARROW * NARROW;
    let groups = u.len() / (depth * ROWS);
    // Column tiles outside, row groups inside: a tile's columns of `v` (depth x 8) stay in L1
    // while every group of rows reads them. The other order streams all of `v` once per group,
    // which for the embedder's stem (147 x 5184) is 3 MB eight times over.
    let packed = |g: usize| &u[g * depth * ROWS..][..depth * ROWS];
    for t in (0..wide).step_by(COLS) {
        for g in 0..groups {
            tile::<COLS>(packed(g), v, &mut m[g * ROWS * stride..], depth, stride, t);
        }
    }
    for t in (wide..narrow).step_by(NARROW) {
        for g in 0..groups {
            tile::<NARROW>(packed(g), v, &mut m[g * ROWS * stride..], depth, stride, t);
        }
    }
    // The last columns one at a time (a 1x1 output, or a map of 1-3 blocks past the tiles).
    for t in narrow..stride {
        for g in 0..groups {
            tile::<1>(packed(g), v, &mut m[g * ROWS * stride..], depth, stride, t);
        }
    }
}

/// One `ROWS` x `W` register tile of the product, accumulated over the whole depth.
#[inline(always)]
fn tile<const W: usize>(packed: &[f32], v: &[f32], rows: &mut [f32], depth: usize, stride: usize, t: usize) {
    let mut acc = [[0f32; W]; ROWS];
    for (a, row) in packed.chunks_exact(ROWS).zip(v.chunks_exact(stride)).take(depth) {
        let b: &[f32; W] = row[t..t + W].try_into().expect("W columns");
        for r in 0..ROWS {
            for j in 0..W {
                acc[r][j] += a[r] * b[j];
            }
        }
    }
    for (r, values) in acc.iter().enumerate() {
        rows[r * stride + t..][..W].copy_from_slice(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_like_the_textbook_product_with_ragged_rows_and_columns() {
        for (rows, depth, cols) in
            [(1usize, 1usize, 1usize), (4, 3, 8), (6, 5, 15), (13, 7, 21), (32, 24, 36), (8, 9, 3)]
        {
            let a: Vec<f32> = (0..rows * depth).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
            let b: Vec<f32> = (0..depth * cols).map(|i| ((i * 53) % 13) as f32 - 6.0).collect();
            let mut m = vec![f32::NAN; rows.div_ceil(ROWS) * ROWS * cols];
            multiply(&pack(&a, rows, depth), &b, &mut m, depth, cols);
            for r in 0..rows {
                for c in 0..cols {
                    let want: f32 = (0..depth).map(|k| a[r * depth + k] * b[k * cols + c]).sum();
                    assert_eq!(m[r * cols + c], want, "{rows}x{depth}x{cols} at ({r}, {c})");
                }
            }
        }
    }
}
