//! Search benchmark driver for tools/bench_search.py: loads N x D little-endian f32 rows and
//! Q queries, runs top-k one query at a time on one thread, prints JSON (median ms, ids).
//! Usage: bench_search ROWS.f32 QUERIES.f32 DIM K

use likeness_collections::search::VectorIndex;
use std::time::Instant;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("readable vector file");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_search ROWS.f32 QUERIES.f32 DIM K");
        std::process::exit(2);
    }
    let dim: usize = args[3].parse().expect("DIM");
    let k: usize = args[4].parse().expect("K");
    let rows = read_f32(&args[1]);
    let queries = read_f32(&args[2]);
    let ids: Vec<String> = (0..rows.len() / dim).map(|i| format!("{i}")).collect();
    let t = Instant::now();
    let mut index = VectorIndex::new(dim);
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        index.insert(&ids[i], row);
    }
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(rows);
    let mut times = Vec::new();
    let mut results = Vec::new();
    for q in queries.chunks_exact(dim) {
        let t = Instant::now();
        let hits = index.search(q, k, -1.0, None);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        results.push(hits.iter().map(|h| h.id.parse::<usize>().unwrap_or(usize::MAX)).collect::<Vec<_>>());
    }
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"n\": {}, \"dim\": {dim}, \"k\": {k}, \"median_ms\": {}, \"build_ms\": {build_ms}, \"bytes_per_vector\": {}, \"results\": {:?}}}",
        index.len(),
        sorted[sorted.len() / 2],
        index.bytes_per_vector(),
        results
    );
}
