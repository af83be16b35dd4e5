//! # likeness-vision
//!
//! From image bytes to calibrated face vectors, in pure Rust on [tract], natively and in
//! `wasm32-unknown-unknown`:
//!
//! 1. [`decode`]: JPEG/PNG/WebP/GIF/BMP bytes or raw RGBA to an upright RGB raster, with
//!    EXIF orientation applied and size limits checked before pixels are decoded.
//! 2. [`detector`]: MediaPipe BlazeFace (short- and full-range) over several views of the
//!    image, merged with weighted NMS; six keypoints a face.
//! 3. [`align`]: similarity warp from the keypoints onto the embedder's template.
//! 4. [`embedder`]: dlib's face recognition ResNet (face-api.js weights), 128-d unit vectors.
//! 5. [`calibration`]: cosine to a 0-100 similarity whose thresholds have a stated false
//!    accept rate.
//!
//! [`FaceEngine`] holds the optimised models (load once, run many times) and answers
//! DetectFaces and CompareFaces with Rekognition-shaped [`types`].
//!
//! Nothing here touches files, threads or clocks, and no image or vector is ever logged.

pub mod align;
pub mod calibration;
pub mod decode;
pub mod detector;
pub mod embedder;
pub mod engine;
pub mod error;
pub mod quality;
pub mod types;
mod warp;

pub use calibration::Calibration;
pub use decode::{decode, DecodedImage, ImageInput, OrientationCorrection, RgbImage};
pub use embedder::{cosine, normalize, FACE_MODEL_VERSION};
pub use engine::{FaceEngine, LocatedFace, ModelBytes, DEFAULT_SIMILARITY_THRESHOLD, MAX_FACES};
pub use error::VisionError;
pub use quality::{quality_reasons, QualityFilter, QualityReason};
pub use types::*;
