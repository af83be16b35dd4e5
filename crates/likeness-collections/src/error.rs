//! Typed errors named after Rekognition's exceptions. A call that fails changes nothing.

use likeness_vision::VisionError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CollectionError {
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    #[error("ResourceAlreadyExistsException: {0}")]
    ResourceAlreadyExists(String),
    #[error("InvalidParameterException: {0}")]
    InvalidParameter(String),
    #[error("InvalidPaginationTokenException: {0}")]
    InvalidPaginationToken(String),
    #[error("ConflictException: {0}")]
    Conflict(String),
    #[error("IdempotentParameterMismatchException: {0}")]
    IdempotentParameterMismatch(String),
    #[error("ServiceQuotaExceededException: {0}")]
    ServiceQuotaExceeded(String),
    #[error("ImageTooLargeException: {0}")]
    ImageTooLarge(String),
    #[error("InvalidImageFormatException: {0}")]
    InvalidImageFormat(String),
    /// A snapshot or change set that is corrupt, truncated, foreign or from a newer format.
    #[error("InvalidSnapshotException: {0}")]
    InvalidSnapshot(String),
    /// A change set from elsewhere is stamped too far ahead of this device's clock
    /// ([`crate::hlc::MAX_CLOCK_DRIFT_MS`]). Nothing was applied; it is accepted once the
    /// clocks agree, so retrying later is right.
    #[error("ClockSkewException: {0}")]
    ClockSkew(String),
    /// The store failed (disk full, IndexedDB quota, permissions). Nothing was applied.
    #[error("StorageException: {0}")]
    Storage(String),
    /// A model failed to run.
    #[error("InternalServerError: {0}")]
    Internal(String),
}

impl CollectionError {
    /// The Rekognition exception name (or ours, for storage and snapshot failures).
    pub fn exception_name(&self) -> &'static str {
        use CollectionError::*;
        match self {
            ResourceNotFound(_) => "ResourceNotFoundException",
            ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            InvalidParameter(_) => "InvalidParameterException",
            InvalidPaginationToken(_) => "InvalidPaginationTokenException",
            Conflict(_) => "ConflictException",
            IdempotentParameterMismatch(_) => "IdempotentParameterMismatchException",
            ServiceQuotaExceeded(_) => "ServiceQuotaExceededException",
            ImageTooLarge(_) => "ImageTooLargeException",
            InvalidImageFormat(_) => "InvalidImageFormatException",
            InvalidSnapshot(_) => "InvalidSnapshotException",
            ClockSkew(_) => "ClockSkewException",
            Storage(_) => "StorageException",
            Internal(_) => "InternalServerError",
        }
    }

    /// The message without the exception name.
    pub fn message(&self) -> &str {
        use CollectionError::*;
        match self {
            ResourceNotFound(m)
            | ResourceAlreadyExists(m)
            | InvalidParameter(m)
            | InvalidPaginationToken(m)
            | Conflict(m)
            | IdempotentParameterMismatch(m)
            | ServiceQuotaExceeded(m)
            | ImageTooLarge(m)
            | InvalidImageFormat(m)
            | InvalidSnapshot(m)
            | ClockSkew(m)
            | Storage(m)
            | Internal(m) => m,
        }
    }
}

impl From<VisionError> for CollectionError {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::InvalidImageFormat(m) => CollectionError::InvalidImageFormat(m),
            VisionError::ImageTooLarge(m) => CollectionError::ImageTooLarge(m),
            VisionError::InvalidParameter(m) => CollectionError::InvalidParameter(m),
            VisionError::Model(m) => CollectionError::Internal(m),
        }
    }
}

pub type Result<T> = std::result::Result<T, CollectionError>;

pub(crate) fn invalid(msg: impl Into<String>) -> CollectionError {
    CollectionError::InvalidParameter(msg.into())
}
