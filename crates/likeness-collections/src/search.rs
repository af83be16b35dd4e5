//! Exact top-k search over a collection's face vectors.
//!
//! Vectors live in one contiguous row-major `Vec<f32>`, so a search is a single linear scan of
//! dot products (AVX2+FMA natively when the CPU has it, SIMD128 in wasm when built with
//! `+simd128`, a chunked loop LLVM vectorises otherwise).
//!
//! Large collections also keep an int8 copy (per-row scale) that is a quarter the bytes to
//! stream. The int8 scan gives an approximate score with a *proven* error bound `B`, so every
//! row that could be in the exact top-k (approx >= kth_approx - 2B) is re-scored in f32: the
//! results are identical to the f32 scan, only cheaper (property test in `tests/search.rs`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Rows from which the int8 scan is used.
pub const QUANTIZED_MIN_ROWS: usize = 4096;

/// One search hit: row's id and its cosine score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Clone, Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    data: Vec<f32>,
    quantized: Vec<i8>,
    scales: Vec<f32>,
    /// Upper bounds over all rows ever inserted (still valid after removals).
    max_scale: f32,
    max_l1: f32,
}

/// Heap entry: score, row, id. "Greater" means worse (lower score, or equal score and larger
/// id), so the max-heap keeps the worst kept hit on top and ties resolve the same everywhere.
struct Entry<'a>(f32, usize, &'a str);

impl PartialEq for Entry<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry<'_> {}
impl PartialOrd for Entry<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then_with(|| self.2.cmp(o.2))
    }
}

impl VectorIndex {
    pub fn new(dim: usize) -> Self {
        VectorIndex { dim, ..Default::default() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes held per stored vector (f32 row + int8 row + scale).
    pub fn bytes_per_vector(&self) -> usize {
        self.dim * 4 + self.dim + 4
    }

    pub fn vector(&self, id: &str) -> Option<&[f32]> {
        self.rows.get(id).map(|&r| &self.data[r * self.dim..(r + 1) * self.dim])
    }

    /// Add or replace a vector. Its length must equal the index dimension.
    pub fn insert(&mut self, id: &str, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dim);
        if vector.len() != self.dim {
            return;
        }
        let row = match self.rows.get(id) {
            Some(&r) => r,
            None => {
                let r = self.ids.len();
                self.ids.push(id.to_string());
                self.rows.insert(id.to_string(), r);
                self.data.resize((r + 1) * self.dim, 0.0);
                self.quantized.resize((r + 1) * self.dim, 0);
                self.scales.push(0.0);
                r
            }
        };
        self.data[row * self.dim..(row + 1) * self.dim].copy_from_slice(vector);
        let (scale, l1) = quantize(vector, &mut self.quantized[row * self.dim..(row + 1) * self.dim]);
        self.scales[row] = scale;
        self.max_scale = self.max_scale.max(scale);
        self.max_l1 = self.max_l1.max(l1);
    }

    /// Remove a vector (the last row moves into its place).
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.rows.remove(id) else { return false };
        let last = self.ids.len() - 1;
        if row != last {
            let moved = self.ids[last].clone();
            self.data.copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            self.quantized.copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            self.scales[row] = self.scales[last];
            self.ids[row] = moved.clone();
            self.rows.insert(moved, row);
        }
        self.ids.pop();
        self.scales.pop();
        self.data.truncate(last * self.dim);
        self.quantized.truncate(last * self.dim);
        true
    }

    /// The `k` best rows with score >= `min_score`, best first (ties by id), skipping `exclude`.
    pub fn search(&self, query: &[f32], k: usize, min_score: f32, exclude: Option<&str>) -> Vec<Hit> {
        if query.len() != self.dim || k == 0 || self.is_empty() {
            return Vec::new();
        }
        let skip = exclude.and_then(|e| self.rows.get(e).copied());
        if self.len() >= QUANTIZED_MIN_ROWS {
            self.search_quantized(query, k, min_score, skip)
        } else {
            self.search_exact(query, k, min_score, skip)
        }
    }

    /// Plain f32 scan.
    pub fn search_exact(&self, query: &[f32], k: usize, min_score: f32, skip: Option<usize>) -> Vec<Hit> {
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for (row, v) in self.data.chunks_exact(self.dim).enumerate() {
            if Some(row) == skip {
                continue;
            }
            let s = dot(query, v);
            self.offer(&mut heap, k, s, row, min_score);
        }
        self.finish(heap)
    }

    fn offer<'a>(&'a self, heap: &mut BinaryHeap<Entry<'a>>, k: usize, s: f32, row: usize, min_score: f32) {
        if !(s >= min_score) {
            return;
        }
        let e = Entry(s, row, &self.ids[row]);
        if heap.len() < k {
            heap.push(e);
        } else if let Some(top) = heap.peek() {
            if e < *top {
                heap.pop();
                heap.push(e);
            }
        }
    }

    fn finish(&self, heap: BinaryHeap<Entry<'_>>) -> Vec<Hit> {
        let mut hits: Vec<Hit> =
            heap.into_iter().map(|Entry(s, row, _)| Hit { id: self.ids[row].clone(), score: s }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits
    }

    /// int8 scan with a proven error bound, then exact re-scoring of every possible winner.
    pub fn search_quantized(&self, query: &[f32], k: usize, min_score: f32, skip: Option<usize>) -> Vec<Hit> {
        let mut qq = vec![0i8; self.dim];
        let (q_scale, q_l1) = quantize(query, &mut qq);
        // |exact - approx| <= sq/2 * |a|_1 + sa/2 * |q|_1 + dim * sa * sq / 4, plus f32 rounding.
        let bound = q_scale / 2.0 * self.max_l1
            + self.max_scale / 2.0 * q_l1
            + self.dim as f32 * self.max_scale * q_scale / 4.0
            + 1e-4;
        let mut approx = Vec::with_capacity(self.len());
        let mut best: BinaryHeap<std::cmp::Reverse<OrdF32>> = BinaryHeap::with_capacity(k + 1);
        for (row, v) in self.quantized.chunks_exact(self.dim).enumerate() {
            let a = dot_i8(&qq, v) as f32 * q_scale * self.scales[row];
            approx.push(a);
            if Some(row) != skip {
                if best.len() < k {
                    best.push(std::cmp::Reverse(OrdF32(a)));
                } else if best.peek().is_some_and(|t| a > t.0 .0) {
                    best.pop();
                    best.push(std::cmp::Reverse(OrdF32(a)));
                }
            }
        }
        let kth = if best.len() == k { best.peek().map_or(f32::NEG_INFINITY, |t| t.0 .0) } else { f32::NEG_INFINITY };
        let cut = (kth - 2.0 * bound).max(min_score - bound);
        let mut heap = BinaryHeap::with_capacity(k + 1);
        for (row, &a) in approx.iter().enumerate() {
            if a >= cut && Some(row) != skip {
                let s = dot(query, &self.data[row * self.dim..(row + 1) * self.dim]);
                self.offer(&mut heap, k, s, row, min_score);
            }
        }
        self.finish(heap)
    }
}

#[derive(PartialEq, PartialOrd)]
struct OrdF32(f32);
impl Eq for OrdF32 {}
impl Ord for OrdF32 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Quantise to int8 with one scale per vector; returns (scale, L1 norm of the f32 vector).
fn quantize(v: &[f32], out: &mut [i8]) -> (f32, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let l1 = v.iter().map(|x| x.abs()).sum();
    if max == 0.0 {
        out.iter_mut().for_each(|q| *q = 0);
        return (0.0, l1);
    }
    let scale = max / 127.0;
    for (q, x) in out.iter_mut().zip(v) {
        *q = (x / scale).round().clamp(-127.0, 127.0) as i8;
    }
    (scale, l1)
}

/// f32 dot product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

/// Eight independent accumulators: vectorises to SSE/NEON/SIMD128 and hides FP latency.
#[inline]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        for l in 0..8 {
            acc[l] += a[i * 8 + l] * b[i * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    s
}

/// int8 dot product with i32 accumulation.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { x86::dot_i8_avx2(a, b) };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        return wasm::dot_i8_simd128(a, b);
    }
    #[allow(unreachable_code)]
    dot_i8_portable(a, b)
}

pub fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    let n = a.len().min(b.len());
    let mut acc = [0i32; 16];
    let chunks = n / 16;
    for i in 0..chunks {
        for l in 0..16 {
            acc[l] += a[i * 16 + l] as i32 * b[i * 16 + l] as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for i in chunks * 16..n {
        s += a[i] as i32 * b[i] as i32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut acc2 = _mm256_setzero_ps();
        let mut acc3 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 32 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
            acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), acc2);
            acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), acc3);
            i += 32;
        }
        while i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
        let acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut s: f32 = lanes.iter().sum();
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        while i + 32 <= n {
            let va = _mm256_loadu_si256(pa.add(i) as *const __m256i);
            let vb = _mm256_loadu_si256(pb.add(i) as *const __m256i);
            let a_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(va));
            let b_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(vb));
            let a_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(va));
            let b_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(vb));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(a_lo, b_lo));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(a_hi, b_hi));
            i += 32;
        }
        let acc = _mm256_add_epi32(acc0, acc1);
        let mut lanes = [0i32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc);
        let mut s: i32 = lanes.iter().sum();
        while i < n {
            s += a[i] as i32 * b[i] as i32;
            i += 1;
        }
        s
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;

    pub fn dot_i8_simd128(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let mut acc = i32x4_splat(0);
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: i + 16 <= n, so both 16-byte loads are in bounds.
            let (va, vb) =
                unsafe { (v128_load(a.as_ptr().add(i) as *const v128), v128_load(b.as_ptr().add(i) as *const v128)) };
            let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(va), i16x8_extend_low_i8x16(vb));
            let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(va), i16x8_extend_high_i8x16(vb));
            acc = i32x4_add(acc, i32x4_add(lo, hi));
            i += 16;
        }
        let mut s = i32x4_extract_lane::<0>(acc)
            + i32x4_extract_lane::<1>(acc)
            + i32x4_extract_lane::<2>(acc)
            + i32x4_extract_lane::<3>(acc);
        while i < n {
            s += a[i] as i32 * b[i] as i32;
            i += 1;
        }
        s
    }
}
