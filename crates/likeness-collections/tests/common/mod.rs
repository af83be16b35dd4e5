//! Helpers for tests that need faces without running the vision models.
#![allow(dead_code)]

use likeness_collections::*;
use likeness_vision::*;

pub const DIM: usize = 16;
pub const VERSION: &str = "test-model-1";

pub fn space() -> VectorSpace {
    VectorSpace { face_model_version: VERSION.into(), dimension: DIM, calibration: Calibration::default() }
}

/// A unit vector pointing mostly along axis `person`, nudged by `variant` so images of one
/// person are similar but not identical.
pub fn vector(person: usize, variant: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    v[person % DIM] = 1.0;
    v[(person + 1 + variant) % DIM] += 0.15 * (variant as f32 + 1.0) / 3.0;
    normalize(&mut v);
    v
}

pub fn detail(size: f32, confidence: f32) -> FaceDetail {
    FaceDetail {
        bounding_box: BoundingBox { width: size, height: size, left: 0.1, top: 0.1 },
        landmarks: Vec::new(),
        pose: Pose { roll: 0.0, yaw: 0.0, pitch: 0.0 },
        quality: ImageQuality { brightness: 50.0, sharpness: 80.0 },
        confidence,
    }
}

/// An analysed image holding faces with the given vectors, largest first.
pub fn image(vectors: &[Vec<f32>]) -> AnalyzedImage {
    AnalyzedImage {
        width: 640,
        height: 480,
        orientation_correction: OrientationCorrection::Rotate0,
        faces: vectors
            .iter()
            .enumerate()
            .map(|(i, v)| EmbeddedFace {
                detail: detail(0.5 / (i + 1) as f32, 99.0),
                embedding: v.clone(),
                size_pixels: 200.0 / (i + 1) as f32,
            })
            .collect(),
        face_model_version: VERSION.into(),
    }
}

pub fn open(store: MemoryStore, replica: u64) -> Collections<MemoryStore> {
    block_on(Collections::open(store, Box::new(ManualClock::new(1_700_000_000_000)), replica, space())).unwrap()
}

pub fn index(c: &mut Collections<MemoryStore>, collection: &str, image_id: &str, vectors: &[Vec<f32>]) -> Vec<String> {
    let out = block_on(c.index_faces_analyzed(
        IndexFacesInput {
            collection_id: collection.into(),
            external_image_id: None,
            max_faces: None,
            quality_filter: Some(likeness_vision::QualityFilter::None),
        },
        image_id,
        image(vectors),
    ))
    .unwrap();
    out.face_records.into_iter().map(|r| r.face.face_id).collect()
}
