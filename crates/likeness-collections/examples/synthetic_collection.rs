//! Benchmark input: a collection of N synthetic faces (random unit vectors in the faceres
//! space) written as LKNS change sets of at most 10,000 faces each (OUT-0.lkns, OUT-1.lkns,
//! ...; importing them in order rebuilds the collection), plus the native SearchFaces time
//! over it, so the browser benchmark (web/bench/bench.mjs) can import the same bytes.
//! Usage: synthetic_collection N OUT [FACES_PER_CHUNK=10000]  (prints JSON on stdout)

use likeness_collections::*;
use likeness_vision::embedder::EMBEDDING_DIMENSION;
use likeness_vision::*;
use std::time::Instant;

/// xorshift64*: deterministic, dependency-free noise for reproducible vectors.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(n), Some(out)) = (args.get(1).and_then(|s| s.parse::<usize>().ok()), args.get(2)) else {
        eprintln!("usage: synthetic_collection N OUT [FACES_PER_CHUNK]");
        std::process::exit(2);
    };
    let per_chunk = args.get(3).and_then(|s| s.parse::<usize>().ok()).unwrap_or(10_000).max(MAX_FACES);
    let space = VectorSpace {
        face_model_version: FACE_MODEL_VERSION.into(),
        dimension: EMBEDDING_DIMENSION,
        calibration: Calibration::default(),
    };
    let mut c =
        block_on(Collections::open(MemoryStore::default(), Box::new(ManualClock::new(1_700_000_000_000)), 7, space))
            .expect("memory store opens");
    block_on(c.create_collection(&CollectionInput { collection_id: "synthetic".into() })).expect("create");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut face_ids = Vec::with_capacity(n);
    let detail = FaceDetail {
        bounding_box: BoundingBox { width: 0.3, height: 0.4, left: 0.3, top: 0.2 },
        landmarks: Vec::new(),
        pose: Pose { roll: 0.0, yaw: 0.0, pitch: 0.0 },
        quality: ImageQuality { brightness: 60.0, sharpness: 80.0 },
        confidence: 99.0,
    };
    let mut image_no = 0;
    let mut chunks = Vec::new();
    let mut since = VersionVector::default();
    let mut bytes_total = 0;
    while face_ids.len() < n {
        let batch = (n - face_ids.len()).min(MAX_FACES);
        let faces = (0..batch)
            .map(|_| {
                let mut v: Vec<f32> = (0..EMBEDDING_DIMENSION).map(|_| rng.next_f32()).collect();
                normalize(&mut v);
                EmbeddedFace { detail: detail.clone(), embedding: v, size_pixels: 200.0 }
            })
            .collect();
        let analyzed = AnalyzedImage {
            width: 640,
            height: 480,
            orientation_correction: OrientationCorrection::Rotate0,
            faces,
            face_model_version: FACE_MODEL_VERSION.into(),
        };
        let input = IndexFacesInput {
            collection_id: "synthetic".into(),
            external_image_id: Some(format!("img{image_no}")),
            max_faces: Some(MAX_FACES as u32),
            quality_filter: Some(QualityFilter::None),
        };
        let image_id =
            likeness_collections::ids::image_id("synthetic", format!("image {image_no}").as_bytes()).to_string();
        let indexed = block_on(c.index_faces_analyzed(&input, &image_id, analyzed)).expect("index");
        face_ids.extend(indexed.face_records.into_iter().map(|r| r.face.face_id));
        image_no += 1;
        if face_ids.len() % per_chunk < MAX_FACES || face_ids.len() == n {
            let chunk = c.changes_since("synthetic", &since).expect("changes");
            since = c.version("synthetic");
            let path = format!("{out}-{}.lkns", chunks.len());
            std::fs::write(&path, &chunk).expect("write output");
            bytes_total += chunk.len();
            chunks.push(path);
        }
    }

    // Native SearchFaces over the same collection: median of 21 queries.
    let probes: Vec<&String> = face_ids.iter().step_by((n / 21).max(1)).take(21).collect();
    let mut times: Vec<f64> = probes
        .iter()
        .map(|id| {
            let t = Instant::now();
            let input = SearchFacesInput {
                collection_id: "synthetic".into(),
                face_id: id.to_string(),
                face_match_threshold: None,
                max_faces: None,
            };
            c.search_faces(&input).expect("search");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let probe_ids: Vec<String> = probes.iter().map(|s| format!("\"{s}\"")).collect();
    let chunk_names: Vec<String> = chunks.iter().map(|p| format!("\"{p}\"")).collect();
    println!(
        "{{\"faces\": {n}, \"bytes\": {bytes_total}, \"chunks\": [{}], \"native_search_faces_ms\": {:.3}, \"probe_face_ids\": [{}]}}",
        chunk_names.join(", "),
        times[times.len() / 2],
        probe_ids.join(", ")
    );
}
