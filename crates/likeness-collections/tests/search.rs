//! The index returns exactly what a naive reference returns over the stored (int8) vectors,
//! on both scan paths.

use likeness_collections::search::{
    dequantize, dot_f32_i8, dot_f32_i8_portable, dot_i8_portable, dot_portable, is_canonical, quantize, VectorIndex,
};
use proptest::prelude::*;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x / n).collect()
}

/// Naive reference: f64 dot products against the stored vectors (each row as its canonical
/// int8 codes stand for it), full sort, threshold, top-k.
fn naive(rows: &[(String, Vec<f32>)], q: &[f32], k: usize, min: f32, exclude: Option<&str>) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = rows
        .iter()
        .filter(|(id, _)| Some(id.as_str()) != exclude)
        .map(|(id, v)| (id.clone(), dequantize(&quantize(v)).iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum()))
        .filter(|(_, s)| *s >= min as f64 - 1e-5)
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn check(
    rows: &[(String, Vec<f32>)],
    hits: Vec<likeness_collections::search::Hit>,
    want: Vec<(String, f64)>,
) -> Result<(), TestCaseError> {
    prop_assert!((hits.len() as i64 - want.len() as i64).abs() <= 1, "{} vs {}", hits.len(), want.len());
    for (i, (h, w)) in hits.iter().zip(&want).enumerate() {
        // Equal ids, or a tie within float rounding at the same rank.
        if h.id != w.0 {
            prop_assert!((h.score as f64 - w.1).abs() < 1e-5, "rank {} differs: {:?} vs {:?}", i, h, w);
        }
        prop_assert!((h.score as f64 - w.1).abs() < 1e-5);
    }
    let _ = rows;
    Ok(())
}

fn dataset(n: usize, dim: usize) -> impl Strategy<Value = (Vec<(String, Vec<f32>)>, Vec<f32>)> {
    (
        proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, dim), n),
        proptest::collection::vec(-1.0f32..1.0, dim),
    )
        .prop_map(|(rows, q)| {
            (rows.into_iter().enumerate().map(|(i, v)| (format!("id{i:05}"), unit(v))).collect(), unit(q))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn exact_scan_equals_naive((rows, q) in (1usize..300, 1usize..40).prop_flat_map(|(n, d)| dataset(n, d)), k in 1usize..20, min in -1.0f32..0.5) {
        let mut idx = VectorIndex::new(q.len());
        for (id, v) in &rows { idx.insert(id, v); }
        let exclude = rows.first().map(|r| r.0.clone());
        check(&rows, idx.search(&q, k, min, exclude.as_deref()), naive(&rows, &q, k, min, exclude.as_deref()))?;
    }

    #[test]
    fn removals_keep_the_index_consistent((rows, q) in dataset(120, 12), remove in proptest::collection::vec(0usize..120, 0..60)) {
        let mut idx = VectorIndex::new(12);
        for (id, v) in &rows { idx.insert(id, v); }
        let mut kept = rows.clone();
        for r in remove {
            let id = format!("id{r:05}");
            idx.remove(&id);
            kept.retain(|(i, _)| *i != id);
        }
        prop_assert_eq!(idx.len(), kept.len());
        check(&kept, idx.search(&q, 10, -1.0, None), naive(&kept, &q, 10, -1.0, None))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn int8_scan_with_rerank_equals_naive((rows, q) in dataset(4200, 24), k in 1usize..30) {
        let mut idx = VectorIndex::new(24);
        for (id, v) in &rows { idx.insert(id, v); }
        check(&rows, idx.search_quantized(&q, k, -1.0), naive(&rows, &q, k, -1.0, None))?;
        check(&rows, idx.search_exact(&q, k, -1.0), naive(&rows, &q, k, -1.0, None))?;
        // Through the public entry point (which picks the int8 path at this size), with a threshold.
        check(&rows, idx.search(&q, k, 0.3, Some("id00000")), naive(&rows, &q, k, 0.3, Some("id00000")))?;
    }
}

#[test]
fn simd_kernels_match_scalar() {
    let a: Vec<f32> = (0..1027).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
    let b: Vec<f32> = (0..1027).map(|i| ((i * 53) % 97) as f32 / 48.0 - 1.0).collect();
    let scalar: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
    assert!((likeness_collections::search::dot(&a, &b) as f64 - scalar).abs() < 1e-3);
    assert!((dot_portable(&a, &b) as f64 - scalar).abs() < 1e-3);
    let qa: Vec<i8> = (0..1027).map(|i| ((i * 37) % 255) as i32 as u8 as i8).collect();
    let qb: Vec<i8> = (0..1027).map(|i| ((i * 11) % 255) as i32 as u8 as i8).collect();
    let exact: i32 = qa.iter().zip(&qb).map(|(x, y)| *x as i32 * *y as i32).sum();
    assert_eq!(likeness_collections::search::dot_i8(&qa, &qb), exact);
    assert_eq!(dot_i8_portable(&qa, &qb), exact);
    let mixed: f64 = a.iter().zip(&qb).map(|(x, y)| *x as f64 * *y as f64).sum();
    assert!((dot_f32_i8(&a, &qb) as f64 - mixed).abs() < 1e-2, "{} vs {mixed}", dot_f32_i8(&a, &qb));
    assert!((dot_f32_i8_portable(&a, &qb) as f64 - mixed).abs() < 1e-2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Canonical codes stand for a unit vector within int8 rounding of the original.
    #[test]
    fn codes_are_canonical_and_close(v in proptest::collection::vec(-1.0f32..1.0, 1..200)) {
        let v = unit(v);
        let c = quantize(&v);
        prop_assume!(v.iter().any(|x| *x != 0.0));
        prop_assert!(is_canonical(&c));
        let d = dequantize(&c);
        let norm: f32 = d.iter().map(|x| x * x).sum::<f32>().sqrt();
        prop_assert!((norm - 1.0).abs() < 1e-5, "norm {}", norm);
        let cos: f32 = d.iter().zip(&v).map(|(a, b)| a * b).sum();
        prop_assert!(cos > 0.999 || v.len() < 4, "cos {} at {}-d", cos, v.len());
        prop_assert_eq!(quantize(&d), c, "codes are a fixed point");
    }
}
