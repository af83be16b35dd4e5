//! Rekognition-shaped result types (PascalCase in JSON, as the AWS CLI prints them).

use crate::decode::OrientationCorrection;
use serde::{Deserialize, Serialize};

/// A box as ratios of the image's width and height, as Rekognition reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoundingBox {
    pub width: f32,
    pub height: f32,
    pub left: f32,
    pub top: f32,
}

/// The facial landmarks reported, named as Rekognition's `LandmarkType` names them. "Left"
/// and "right" are as seen in the image (the viewer's left), as in Rekognition's examples.
/// Eyes, nose and mouth corners come from MTCNN's landmark network; BlazeFace's ear
/// tragions are reported as the upper ends of the jawline (the nearest points Rekognition
/// names). A face in a video frame that was only tracked has no mouth corners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LandmarkType {
    EyeLeft,
    EyeRight,
    Nose,
    MouthLeft,
    MouthRight,
    UpperJawlineLeft,
    UpperJawlineRight,
}

/// One keypoint, as ratios of the image's width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Landmark {
    #[serde(rename = "Type")]
    pub kind: LandmarkType,
    pub x: f32,
    pub y: f32,
}

/// Head pose in degrees, estimated from the keypoints (see `pose` in `quality.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pose {
    pub roll: f32,
    pub yaw: f32,
    pub pitch: f32,
}

/// Image quality of the face region, each 0-100 (higher is brighter / sharper).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageQuality {
    pub brightness: f32,
    pub sharpness: f32,
}

/// One detected face, as DetectFaces returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceDetail {
    pub bounding_box: BoundingBox,
    pub landmarks: Vec<Landmark>,
    pub pose: Pose,
    pub quality: ImageQuality,
    /// Detector confidence, 0-100.
    pub confidence: f32,
}

/// DetectFaces response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectFacesOutput {
    pub face_details: Vec<FaceDetail>,
    pub orientation_correction: OrientationCorrection,
}

/// The face of the source image that CompareFaces used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComparedSourceImageFace {
    pub bounding_box: BoundingBox,
    pub confidence: f32,
}

/// A target face that matched the source face at or above the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompareFacesMatch {
    /// Calibrated similarity, 0-100.
    pub similarity: f32,
    pub face: FaceDetail,
}

/// CompareFaces response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompareFacesOutput {
    pub source_image_face: ComparedSourceImageFace,
    pub face_matches: Vec<CompareFacesMatch>,
    pub unmatched_faces: Vec<FaceDetail>,
    pub source_image_orientation_correction: OrientationCorrection,
    pub target_image_orientation_correction: OrientationCorrection,
}

/// A face with its vector: what IndexFaces and the searches consume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmbeddedFace {
    pub detail: FaceDetail,
    /// L2-normalised face vector.
    pub embedding: Vec<f32>,
    /// Shorter side of the face box in pixels, for the SMALL_BOUNDING_BOX quality check.
    pub size_pixels: f32,
}

impl EmbeddedFace {
    /// Every reason this face falls short of `filter` (empty when it passes).
    pub fn quality_reasons(&self, filter: crate::QualityFilter) -> Vec<crate::QualityReason> {
        let d = &self.detail;
        crate::quality_reasons(d.confidence, &d.quality, &d.pose, self.size_pixels, filter)
    }
}

/// A decoded image's faces with their vectors, largest face first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AnalyzedImage {
    pub width: u32,
    pub height: u32,
    pub orientation_correction: OrientationCorrection,
    pub faces: Vec<EmbeddedFace>,
    pub face_model_version: String,
}
