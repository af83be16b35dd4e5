//! Every refusal the API makes, mapped to a status and a stable code in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API error: JSON `{"code": ..., "message": ...}` with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, unknown or revoked token.
    #[error("a valid device token is required")]
    Unauthorized,
    /// A resource that does not exist, or that the caller's group does not own: the same
    /// answer either way, so a token learns nothing about other groups.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    InvalidRequest(String),
    /// The collection exists with another key check: the device holds another key.
    #[error("the collection is sealed under another key")]
    WrongKey,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large: {0}")]
    PayloadTooLarge(String),
    #[error("the group's storage quota is exhausted: {0}")]
    QuotaExceeded(String),
    #[error("too many requests; retry later")]
    RateLimited,
    /// The records asked for were folded into a snapshot: fetch it, then pull after it.
    #[error("records up to sequence {0} are in the snapshot; fetch it first")]
    SnapshotRequired(i64),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::WrongKey | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::QuotaExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::SnapshotRequired(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "Unauthorized",
            ApiError::NotFound => "NotFound",
            ApiError::InvalidRequest(_) => "InvalidRequest",
            ApiError::WrongKey => "WrongKey",
            ApiError::Conflict(_) => "Conflict",
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge",
            ApiError::QuotaExceeded(_) => "QuotaExceeded",
            ApiError::RateLimited => "RateLimited",
            ApiError::SnapshotRequired(_) => "SnapshotRequired",
            ApiError::Internal(_) => "InternalError",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<likeness_sync::SyncError> for ApiError {
    fn from(e: likeness_sync::SyncError) -> Self {
        ApiError::InvalidRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            // The detail is for the operator's log, not for clients.
            tracing::error!(%detail, "internal error");
        }
        let body = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
