//! Rekognition-shaped requests and responses (PascalCase JSON, as the AWS CLI prints them).
//! Optional request fields take Rekognition's defaults.

use likeness_vision::{BoundingBox, FaceDetail, QualityFilter, QualityReason};
use serde::{Deserialize, Serialize};

/// Rekognition's `Face`, as stored in a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Face {
    pub face_id: String,
    pub bounding_box: BoundingBox,
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    pub confidence: f32,
    pub index_faces_model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateCollectionOutput {
    pub status_code: u16,
    pub collection_arn: String,
    pub face_model_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteCollectionOutput {
    pub status_code: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCollectionOutput {
    pub face_count: u64,
    pub user_count: u64,
    pub face_model_version: String,
    /// `CollectionARN` here (CreateCollection's response spells it `CollectionArn`).
    #[serde(rename = "CollectionARN")]
    pub collection_arn: String,
    /// Seconds since the Unix epoch.
    pub creation_timestamp: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListCollectionsInput {
    pub next_token: Option<String>,
    pub max_results: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListCollectionsOutput {
    pub collection_ids: Vec<String>,
    pub face_model_versions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct IndexFacesInput {
    pub collection_id: String,
    pub external_image_id: Option<String>,
    pub max_faces: Option<u32>,
    pub quality_filter: Option<QualityFilter>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceRecord {
    pub face: Face,
    pub face_detail: FaceDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnindexedFace {
    pub reasons: Vec<QualityReason>,
    pub face_detail: FaceDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexFacesOutput {
    pub face_records: Vec<FaceRecord>,
    pub orientation_correction: likeness_vision::OrientationCorrection,
    pub face_model_version: String,
    pub unindexed_faces: Vec<UnindexedFace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListFacesInput {
    pub collection_id: String,
    pub next_token: Option<String>,
    pub max_results: Option<u32>,
    pub user_id: Option<String>,
    pub face_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFacesOutput {
    pub faces: Vec<Face>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub face_model_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeletionFailureReason {
    AssociatedToAnExistingUser,
    FaceNotFound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsuccessfulFaceDeletion {
    pub face_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub reasons: Vec<DeletionFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteFacesOutput {
    pub deleted_faces: Vec<String>,
    pub unsuccessful_face_deletions: Vec<UnsuccessfulFaceDeletion>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    /// Exists, no faces associated yet.
    Created,
    /// Has at least one associated face.
    Active,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub user_id: String,
    pub user_status: UserStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListUsersOutput {
    pub users: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AssociateFacesInput {
    pub collection_id: String,
    pub user_id: String,
    pub face_ids: Vec<String>,
    pub user_match_threshold: Option<f32>,
    pub client_request_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssociationFailureReason {
    FaceNotFound,
    AssociatedToADifferentUser,
    LowMatchConfidence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociatedFace {
    pub face_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsuccessfulFaceAssociation {
    pub face_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    pub reasons: Vec<AssociationFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssociateFacesOutput {
    pub associated_faces: Vec<AssociatedFace>,
    pub unsuccessful_face_associations: Vec<UnsuccessfulFaceAssociation>,
    pub user_status: UserStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DisassociationFailureReason {
    FaceNotFound,
    AssociatedToADifferentUser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsuccessfulFaceDisassociation {
    pub face_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub reasons: Vec<DisassociationFailureReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisassociateFacesOutput {
    pub disassociated_faces: Vec<AssociatedFace>,
    pub unsuccessful_face_disassociations: Vec<UnsuccessfulFaceDisassociation>,
    pub user_status: UserStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceMatch {
    pub similarity: f32,
    pub face: Face,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFacesOutput {
    pub searched_face_id: String,
    pub face_matches: Vec<FaceMatch>,
    pub face_model_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchFacesByImageOutput {
    pub searched_face_bounding_box: BoundingBox,
    pub searched_face_confidence: f32,
    pub face_matches: Vec<FaceMatch>,
    pub face_model_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MatchedUser {
    pub user_id: String,
    pub user_status: UserStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserMatch {
    pub similarity: f32,
    pub user: MatchedUser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchedFaceId {
    pub face_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchedUserId {
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchUsersOutput {
    pub user_matches: Vec<UserMatch>,
    pub face_model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face: Option<SearchedFaceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_user: Option<SearchedUserId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchedFaceDetails {
    pub face_detail: FaceDetail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnsearchedFaceReason {
    FaceNotLargest,
    ExceedsMaxFaces,
    ExtremePose,
    LowBrightness,
    LowSharpness,
    LowConfidence,
    SmallBoundingBox,
    LowFaceQuality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsearchedFace {
    pub face_details: FaceDetail,
    pub reasons: Vec<UnsearchedFaceReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SearchUsersByImageOutput {
    pub user_matches: Vec<UserMatch>,
    pub face_model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face: Option<SearchedFaceDetails>,
    pub unsearched_faces: Vec<UnsearchedFace>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateUserOutput {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteUserOutput {}

// ---- requests ---------------------------------------------------------------------------
// Every operation of `Collections` takes one of these; the adapters (CLI, wasm bindings, a
// server) deserialise them, unknown fields rejected, and pass them through. Defaults and
// limits are resolved by the service alone.

/// CreateCollection, DeleteCollection and DescribeCollection (and exporting a collection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CollectionInput {
    pub collection_id: String,
}

pub type CreateCollectionInput = CollectionInput;
pub type DeleteCollectionInput = CollectionInput;
pub type DescribeCollectionInput = CollectionInput;

/// DeleteFaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteFacesInput {
    pub collection_id: String,
    pub face_ids: Vec<String>,
}

/// SearchFaces: the faces most like a stored face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SearchFacesInput {
    pub collection_id: String,
    pub face_id: String,
    pub face_match_threshold: Option<f32>,
    pub max_faces: Option<u32>,
}

/// SearchFacesByImage, besides the image itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SearchFacesByImageInput {
    pub collection_id: String,
    pub face_match_threshold: Option<f32>,
    pub max_faces: Option<u32>,
    pub quality_filter: Option<QualityFilter>,
}

/// CreateUser and DeleteUser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UserInput {
    pub collection_id: String,
    pub user_id: String,
    pub client_request_token: Option<String>,
}

pub type CreateUserInput = UserInput;
pub type DeleteUserInput = UserInput;

/// ListUsers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ListUsersInput {
    pub collection_id: String,
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

/// DisassociateFaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DisassociateFacesInput {
    pub collection_id: String,
    pub user_id: String,
    pub face_ids: Vec<String>,
    pub client_request_token: Option<String>,
}

/// SearchUsers: by a stored user or face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SearchUsersInput {
    pub collection_id: String,
    pub user_id: Option<String>,
    pub face_id: Option<String>,
    pub user_match_threshold: Option<f32>,
    pub max_users: Option<u32>,
}

/// SearchUsersByImage, besides the image itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SearchUsersByImageInput {
    pub collection_id: String,
    pub user_match_threshold: Option<f32>,
    pub max_users: Option<u32>,
    pub quality_filter: Option<QualityFilter>,
}

// ---- face search over video (`video.rs`) ----------------------------------------------

/// What a face search over video looks in, and how strictly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct FaceSearchInput {
    pub collection_id: String,
    /// 0-100; Rekognition's default for video is 80.
    pub face_match_threshold: Option<f32>,
    /// Matches reported per face (default 5).
    pub max_faces: Option<u32>,
}

/// One tracked face of a frame and what it matched: Rekognition's `FaceSearchResponse`,
/// with the track's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaceSearchResponse {
    pub index: u32,
    pub detected_face: FaceDetail,
    pub matched_faces: Vec<FaceMatch>,
}

/// One processed frame of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FrameSearch {
    /// Milliseconds, the caller's clock (the frame's timestamp).
    pub timestamp: u64,
    pub face_search_response: Vec<FaceSearchResponse>,
    /// Tracks that ended with this frame.
    pub ended: Vec<u32>,
}

/// A person in a stored video at one time: Rekognition's `PersonMatch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PersonMatch {
    pub timestamp: u64,
    pub person: PersonDetail,
    pub face_matches: Vec<FaceMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PersonDetail {
    pub index: u32,
    pub bounding_box: BoundingBox,
    pub face: FaceDetail,
}

/// GetFaceSearch's `SortBy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FaceSearchSortBy {
    Index,
    #[default]
    Timestamp,
}
