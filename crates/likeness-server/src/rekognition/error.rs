//! Rekognition's errors on the wire: `{"__type": "<Exception>", "Message": ...}` with the
//! status the service uses (400 for the caller's mistakes, 500 for faults), mapped once.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use likeness_collections::CollectionError;
use likeness_vision::VisionError;

/// One refusal: the exception name SDKs match on, its message, and the HTTP status.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub kind: &'static str,
    pub message: String,
    pub status: StatusCode,
}

impl AwsError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        let status = match kind {
            "InternalServerError" | "ThrottlingException" => StatusCode::INTERNAL_SERVER_ERROR,
            "MissingAuthenticationTokenException" | "AccessDeniedException" => StatusCode::FORBIDDEN,
            "RequestEntityTooLargeException" => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        AwsError { kind, message: message.into(), status }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub fn missing_authentication() -> Self {
        Self::new("MissingAuthenticationTokenException", "Missing Authentication Token")
    }

    pub fn incomplete_signature(message: &str) -> Self {
        Self::new("IncompleteSignatureException", message)
    }

    pub fn invalid_signature(message: &str) -> Self {
        Self::new("InvalidSignatureException", message)
    }

    pub fn unrecognized_client() -> Self {
        Self::new("UnrecognizedClientException", "The security token included in the request is invalid.")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalServerError", message)
    }
}

impl From<CollectionError> for AwsError {
    fn from(e: CollectionError) -> Self {
        match e.exception_name() {
            // Storage trouble and the sync-only names are the server's fault, not the caller's.
            "StorageException" | "InvalidSnapshotException" | "ClockSkewException" => {
                AwsError::internal(format!("{}: {}", e.exception_name(), e.message()))
            }
            name => AwsError::new(name, e.message()),
        }
    }
}

impl From<VisionError> for AwsError {
    fn from(e: VisionError) -> Self {
        AwsError::new(e.exception_name(), e.message())
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.kind, "Message": self.message });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
        r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        r
    }
}
