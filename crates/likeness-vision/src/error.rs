//! Typed errors of the vision engine, named after Rekognition's exceptions where one fits.

use thiserror::Error;

/// Everything that can go wrong between image bytes and face vectors.
///
/// Variants map one-to-one onto Rekognition exception names via [`VisionError::exception_name`],
/// so adapters (CLI, wasm, server) can report them the way AWS clients expect.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum VisionError {
    /// The bytes are not an image we can decode (unknown format, corrupt or truncated data).
    #[error("InvalidImageFormatException: {0}")]
    InvalidImageFormat(String),
    /// The image is over the encoded-size or pixel limit; checked before pixels are decoded.
    #[error("ImageTooLargeException: {0}")]
    ImageTooLarge(String),
    /// A parameter is out of range (for example an image under 80 pixels a side).
    #[error("InvalidParameterException: {0}")]
    InvalidParameter(String),
    /// A model could not be loaded or run. Not caused by the caller's image.
    #[error("ModelError: {0}")]
    Model(String),
}

impl VisionError {
    /// The Rekognition exception name for this error.
    pub fn exception_name(&self) -> &'static str {
        match self {
            VisionError::InvalidImageFormat(_) => "InvalidImageFormatException",
            VisionError::ImageTooLarge(_) => "ImageTooLargeException",
            VisionError::InvalidParameter(_) => "InvalidParameterException",
            VisionError::Model(_) => "InternalServerError",
        }
    }

    /// The human-readable message without the exception name prefix.
    pub fn message(&self) -> &str {
        match self {
            VisionError::InvalidImageFormat(m)
            | VisionError::ImageTooLarge(m)
            | VisionError::InvalidParameter(m)
            | VisionError::Model(m) => m,
        }
    }
}

#[cfg(feature = "engine")]
pub(crate) fn model_error(context: &str, e: impl std::fmt::Display) -> VisionError {
    VisionError::Model(format!("{context}: {e}"))
}
