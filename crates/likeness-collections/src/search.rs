//! Face vectors as int8 codes, and exact top-k search over them.
//!
//! A stored vector is kept (in memory, on disk, in sync payloads) as its *canonical int8
//! codes*: the unit vector scaled so its largest component is ±127, then rounded. Its value
//! is `codes / |codes|`, so every stored vector is a unit vector by construction, one byte per
//! dimension (128 B at 128-d instead of 512), and every replica holds bit-identical values.
//! Measured with `likeness eval --stored int8`, this costs at most 0.03 pp of balanced
//! accuracy on lfw-dev and verify-dev (README).
//!
//! A search scores the f32 query against the codes (`q . c / |c|`). Rows live in one
//! contiguous `Vec<i8>`, so a search is a linear scan. Large collections first scan with an
//! int8 copy of the query (AVX2 or SIMD128 int8 dot products) whose error has a proven bound
//! `B`, then re-score in f32 every row that could be in the top-k (approx >= kth - 2B): the
//! results equal the exact scan's (property test in `tests/search.rs`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Rows from which the int8 pre-scan is used.
pub const QUANTIZED_MIN_ROWS: usize = 4096;

/// The canonical int8 codes of a vector: scaled so the largest |component| is 127, rounded.
/// A zero or non-finite vector has no direction and gives all zeros (not canonical).
pub fn quantize(v: &[f32]) -> Vec<i8> {
    let mut out = vec![0i8; v.len()];
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max > 0.0 && max.is_finite() && v.iter().all(|x| x.is_finite()) {
        for (q, x) in out.iter_mut().zip(v) {
            *q = (x * (127.0 / max)).round().clamp(-127.0, 127.0) as i8;
        }
    }
    out
}

/// Whether `codes` are canonical: largest |component| exactly 127, no -128. Such codes have a
/// norm of at least 127, so they always decode to a unit vector.
pub fn is_canonical(codes: &[i8]) -> bool {
    codes.iter().all(|&c| c != i8::MIN) && codes.iter().any(|&c| c.unsigned_abs() == 127)
}

/// `1 / |codes|`: what turns codes into their unit vector (0 for all zeros).
pub fn unit_scale(codes: &[i8]) -> f32 {
    let n2: i64 = codes.iter().map(|&c| c as i64 * c as i64).sum();
    if n2 == 0 {
        0.0
    } else {
        (1.0 / (n2 as f64).sqrt()) as f32
    }
}

/// The unit vector that `codes` stand for.
pub fn dequantize(codes: &[i8]) -> Vec<f32> {
    let s = unit_scale(codes);
    codes.iter().map(|&c| c as f32 * s).collect()
}

/// Growth by an eighth (not doubling), so a large table holds at most ~12% unused capacity.
pub(crate) fn reserve_for<T>(v: &mut Vec<T>, additional: usize) {
    if v.len() + additional > v.capacity() {
        v.reserve_exact((v.capacity() / 8).max(additional).max(64));
    }
}

/// Dense rows of canonical codes with their unit scales. Rows are numbered 0..len; removing
/// one moves the last row into its place (the owner keeps its ids in step).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// Upper bound of the rows' L1 norms (as unit vectors), over every row ever pushed.
    max_l1: f32,
}

impl Rows {
    pub fn new(dim: usize) -> Self {
        Rows { dim, ..Default::default() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Bytes held per row.
    pub fn bytes_per_row(&self) -> usize {
        self.dim + 4
    }

    /// Append a row. Codes must be `dim` long (the first row sets `dim` if it is 0);
    /// returns false, storing nothing, otherwise.
    pub fn push(&mut self, codes: &[i8]) -> bool {
        if self.dim == 0 && self.is_empty() {
            self.dim = codes.len();
        }
        if codes.len() != self.dim || self.dim == 0 {
            return false;
        }
        reserve_for(&mut self.codes, self.dim);
        reserve_for(&mut self.scales, 1);
        let scale = unit_scale(codes);
        self.codes.extend_from_slice(codes);
        self.scales.push(scale);
        let l1 = codes.iter().map(|&c| c.unsigned_abs() as f32).sum::<f32>() * scale;
        self.max_l1 = self.max_l1.max(l1);
        true
    }

    /// Replace row `row`'s codes.
    pub fn set(&mut self, row: usize, codes: &[i8]) {
        if codes.len() == self.dim && row < self.len() {
            let scale = unit_scale(codes);
            self.codes[row * self.dim..(row + 1) * self.dim].copy_from_slice(codes);
            self.scales[row] = scale;
            let l1 = codes.iter().map(|&c| c.unsigned_abs() as f32).sum::<f32>() * scale;
            self.max_l1 = self.max_l1.max(l1);
        }
    }

    /// Remove row `row`; the last row moves into its place.
    pub fn swap_remove(&mut self, row: usize) {
        let last = self.len() - 1;
        if row != last {
            self.codes.copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            self.scales[row] = self.scales[last];
        }
        self.codes.truncate(last * self.dim);
        self.scales.pop();
    }

    pub fn codes(&self, row: usize) -> &[i8] {
        &self.codes[row * self.dim..(row + 1) * self.dim]
    }

    /// Row `row` as its unit vector.
    pub fn vector(&self, row: usize) -> Vec<f32> {
        let s = self.scales[row];
        self.codes(row).iter().map(|&c| c as f32 * s).collect()
    }

    /// Add row `row`'s unit vector into `sum`.
    pub fn add_to(&self, row: usize, sum: &mut [f32]) {
        let s = self.scales[row];
        sum.iter_mut().zip(self.codes(row)).for_each(|(m, &c)| *m += c as f32 * s);
    }

    /// Exact score of `query` against row `row`.
    pub fn score(&self, query: &[f32], row: usize) -> f32 {
        dot_f32_i8(query, self.codes(row)) * self.scales[row]
    }

    /// The `k` best rows with score >= `min_score`, best first; ties go to the smaller key.
    /// `skip` leaves one row out (a face searched against its own collection).
    pub fn search<K: Ord>(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        skip: Option<usize>,
        key: impl Fn(usize) -> K,
    ) -> Vec<(usize, f32)> {
        if query.len() != self.dim || k == 0 || self.is_empty() {
            return Vec::new();
        }
        if self.len() >= QUANTIZED_MIN_ROWS {
            self.search_quantized(query, k, min_score, skip, key)
        } else {
            self.search_exact(query, k, min_score, skip, key)
        }
    }

    /// Exact scan: every row scored in f32.
    pub fn search_exact<K: Ord>(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        skip: Option<usize>,
        key: impl Fn(usize) -> K,
    ) -> Vec<(usize, f32)> {
        let mut top = TopK::new(k, min_score, &key);
        for row in 0..self.len() {
            if Some(row) != skip {
                top.offer(self.score(query, row), row);
            }
        }
        top.finish()
    }

    /// int8 pre-scan with a proven error bound, then exact scoring of every possible winner.
    pub fn search_quantized<K: Ord>(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        skip: Option<usize>,
        key: impl Fn(usize) -> K,
    ) -> Vec<(usize, f32)> {
        let max = query.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if !(max > 0.0 && max.is_finite()) {
            return self.search_exact(query, k, min_score, skip, key);
        }
        let q_scale = max / 127.0;
        let qq = quantize(query);
        // Each query component is off by at most q_scale/2, so for a unit row `a`:
        // |q.a - qq.a * q_scale| <= q_scale/2 * |a|_1, plus f32 rounding.
        let bound = q_scale / 2.0 * self.max_l1 + 1e-4;
        let mut approx = Vec::with_capacity(self.len());
        let mut best: BinaryHeap<std::cmp::Reverse<OrdF32>> = BinaryHeap::with_capacity(k + 1);
        for (row, codes) in self.codes.chunks_exact(self.dim).enumerate() {
            let a = dot_i8(&qq, codes) as f32 * q_scale * self.scales[row];
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
        let mut top = TopK::new(k, min_score, &key);
        for (row, &a) in approx.iter().enumerate() {
            if a >= cut && Some(row) != skip {
                top.offer(self.score(query, row), row);
            }
        }
        top.finish()
    }
}

/// Bounded best-k collector. "Greater" entries are worse (lower score, or equal score and
/// larger key), so the max-heap keeps the worst kept hit on top and ties resolve the same
/// on every replica.
struct TopK<'a, K, F: Fn(usize) -> K> {
    k: usize,
    min_score: f32,
    key: &'a F,
    heap: BinaryHeap<Entry<K>>,
}

struct Entry<K>(f32, usize, K);

impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord> Ord for Entry<K> {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then_with(|| self.2.cmp(&o.2))
    }
}

impl<'a, K: Ord, F: Fn(usize) -> K> TopK<'a, K, F> {
    fn new(k: usize, min_score: f32, key: &'a F) -> Self {
        TopK { k, min_score, key, heap: BinaryHeap::with_capacity(k + 1) }
    }

    fn offer(&mut self, s: f32, row: usize) {
        if !(s >= self.min_score) {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Entry(s, row, (self.key)(row)));
        } else if let Some(top) = self.heap.peek() {
            // Cheap pre-check on the score before building the key.
            if s >= top.0 {
                let e = Entry(s, row, (self.key)(row));
                if e < *top {
                    self.heap.pop();
                    self.heap.push(e);
                }
            }
        }
    }

    fn finish(self) -> Vec<(usize, f32)> {
        let mut v = self.heap.into_vec();
        v.sort();
        v.into_iter().map(|Entry(s, row, _)| (row, s)).collect()
    }
}

/// f32 ordered by `total_cmp`.
struct OrdF32(f32);
impl PartialEq for OrdF32 {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for OrdF32 {}
impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF32 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// One search hit: row's id and its cosine score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// Vectors keyed by string id (the users of a collection), stored as int8 rows.
#[derive(Debug, Clone, Default)]
pub struct VectorIndex {
    ids: Vec<String>,
    rows: HashMap<String, usize>,
    data: Rows,
}

impl VectorIndex {
    pub fn new(dim: usize) -> Self {
        VectorIndex { data: Rows::new(dim), ..Default::default() }
    }

    pub fn dim(&self) -> usize {
        self.data.dim()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes held per stored vector (int8 row and its scale).
    pub fn bytes_per_vector(&self) -> usize {
        self.data.bytes_per_row()
    }

    /// The stored (quantised) unit vector of `id`.
    pub fn vector(&self, id: &str) -> Option<Vec<f32>> {
        self.rows.get(id).map(|&r| self.data.vector(r))
    }

    /// Add or replace a vector, stored as its canonical codes. A vector of the wrong length
    /// or without a direction is ignored.
    pub fn insert(&mut self, id: &str, vector: &[f32]) {
        let codes = quantize(vector);
        if vector.len() != self.dim() || !is_canonical(&codes) {
            return;
        }
        match self.rows.get(id) {
            Some(&r) => self.data.set(r, &codes),
            None => {
                if self.data.push(&codes) {
                    self.rows.insert(id.to_string(), self.ids.len());
                    self.ids.push(id.to_string());
                }
            }
        }
    }

    /// Remove a vector (the last row moves into its place).
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.rows.remove(id) else { return false };
        self.data.swap_remove(row);
        let moved = self.ids.pop();
        if let Some(moved) = moved {
            if row < self.ids.len() {
                self.rows.insert(moved.clone(), row);
                self.ids[row] = moved;
            }
        }
        true
    }

    /// The `k` best rows with score >= `min_score`, best first (ties by id), skipping `exclude`.
    pub fn search(&self, query: &[f32], k: usize, min_score: f32, exclude: Option<&str>) -> Vec<Hit> {
        let skip = exclude.and_then(|e| self.rows.get(e).copied());
        self.hits(self.data.search(query, k, min_score, skip, |r| self.ids[r].as_str()))
    }

    /// The exact scan alone (tests compare it with the pre-scan).
    pub fn search_exact(&self, query: &[f32], k: usize, min_score: f32) -> Vec<Hit> {
        self.hits(self.data.search_exact(query, k, min_score, None, |r| self.ids[r].as_str()))
    }

    /// The int8 pre-scan path alone, whatever the size.
    pub fn search_quantized(&self, query: &[f32], k: usize, min_score: f32) -> Vec<Hit> {
        self.hits(self.data.search_quantized(query, k, min_score, None, |r| self.ids[r].as_str()))
    }

    fn hits(&self, rows: Vec<(usize, f32)>) -> Vec<Hit> {
        rows.into_iter().map(|(r, score)| Hit { id: self.ids[r].clone(), score }).collect()
    }
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

/// f32 query against int8 codes.
#[inline]
pub fn dot_f32_i8(a: &[f32], b: &[i8]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_f32_i8_avx2(a, b) };
        }
    }
    dot_f32_i8_portable(a, b)
}

/// Eight accumulators, as [`dot_portable`].
#[inline]
pub fn dot_f32_i8_portable(a: &[f32], b: &[i8]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for i in 0..chunks {
        for l in 0..8 {
            acc[l] += a[i * 8 + l] * b[i * 8 + l] as f32;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..n {
        s += a[i] * b[i] as f32;
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

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_f32_i8_avx2(a: &[f32], b: &[i8]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            let bytes = _mm_loadu_si128(pb.add(i) as *const __m128i);
            let lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes));
            let hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(bytes)));
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), lo, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), hi, acc1);
            i += 16;
        }
        let acc = _mm256_add_ps(acc0, acc1);
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut s: f32 = lanes.iter().sum();
        while i < n {
            s += a[i] * b[i] as f32;
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
