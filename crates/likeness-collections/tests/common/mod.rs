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
        &IndexFacesInput {
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

// Request builders, so tests read as calls with their arguments.

pub fn coll(id: &str) -> CollectionInput {
    CollectionInput { collection_id: id.into() }
}

pub fn user(collection: &str, user_id: &str, token: Option<&str>) -> UserInput {
    UserInput { collection_id: collection.into(), user_id: user_id.into(), client_request_token: token.map(Into::into) }
}

pub fn del_req(collection: &str, face_ids: &[String]) -> DeleteFacesInput {
    DeleteFacesInput { collection_id: collection.into(), face_ids: face_ids.to_vec() }
}

pub fn users_req(collection: &str, max_results: Option<u32>, next_token: Option<&str>) -> ListUsersInput {
    ListUsersInput { collection_id: collection.into(), max_results, next_token: next_token.map(Into::into) }
}

pub fn disassoc(collection: &str, user_id: &str, face_ids: &[String], token: Option<&str>) -> DisassociateFacesInput {
    DisassociateFacesInput {
        collection_id: collection.into(),
        user_id: user_id.into(),
        face_ids: face_ids.to_vec(),
        client_request_token: token.map(Into::into),
    }
}

pub fn sf(collection: &str, face_id: &str, threshold: Option<f32>, max_faces: Option<u32>) -> SearchFacesInput {
    SearchFacesInput {
        collection_id: collection.into(),
        face_id: face_id.into(),
        face_match_threshold: threshold,
        max_faces,
    }
}

pub fn su(
    collection: &str,
    user_id: Option<&str>,
    face_id: Option<&str>,
    threshold: Option<f32>,
    max_users: Option<u32>,
) -> SearchUsersInput {
    SearchUsersInput {
        collection_id: collection.into(),
        user_id: user_id.map(Into::into),
        face_id: face_id.map(Into::into),
        user_match_threshold: threshold,
        max_users,
    }
}

pub fn sfi(
    collection: &str,
    threshold: Option<f32>,
    max_faces: Option<u32>,
    quality_filter: Option<QualityFilter>,
) -> SearchFacesByImageInput {
    SearchFacesByImageInput {
        collection_id: collection.into(),
        face_match_threshold: threshold,
        max_faces,
        quality_filter,
    }
}

pub fn sui(
    collection: &str,
    threshold: Option<f32>,
    max_users: Option<u32>,
    quality_filter: Option<QualityFilter>,
) -> SearchUsersByImageInput {
    SearchUsersByImageInput {
        collection_id: collection.into(),
        user_match_threshold: threshold,
        max_users,
        quality_filter,
    }
}
