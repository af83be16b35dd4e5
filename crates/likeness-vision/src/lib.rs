//! # likeness-vision
//!
//! From image bytes to calibrated face vectors, in pure Rust on [tract], natively and in
//! `wasm32-unknown-unknown`:
//!
//! 1. [`decode`]: JPEG/PNG/WebP/GIF/BMP bytes or raw RGBA to an upright RGB raster, with
//!    EXIF orientation applied and size limits checked before pixels are decoded.
//! 2. [`detector`]: MediaPipe BlazeFace (short- and full-range) over several views of the
//!    image, merged with weighted NMS; six keypoints a face.
//! 3. [`landmarks`]: MTCNN's ONet on each face's box: eye centres, nose tip and mouth
//!    corners, and a face probability.
//! 4. [`align`]: similarity warp from those landmarks onto the embedder's template.
//! 5. [`embedder`]: dlib's face recognition ResNet (face-api.js weights), 128-d unit vectors.
//! 6. [`calibration`]: cosine to a 0-100 similarity whose thresholds have a stated false
//!    accept rate.
//!
//! In wasm32, [`kernels`] swaps faster forms of a few of tract's ops (Winograd and im2col
//! convolutions, max pooling, padding) into each model's graph before tract optimises it:
//! one embedder pass takes ~15-19 ms in V8 instead of ~31-38.
//!
//! [`FaceEngine`] holds the optimised models (load once, run many times) and answers
//! DetectFaces and CompareFaces with Rekognition-shaped [`types`]. [`tracker`] follows faces
//! across video frames (stable `Person.Index`, embed each face once, best evidence per track).
//!
//! Nothing here touches files, threads or clocks, and no image or vector is ever logged.
//!
//! The default feature `engine` brings the models (tract) and decoders (image). Without it
//! the crate is the data model alone: [`types`], [`QualityFilter`] and [`quality_reasons`],
//! [`Calibration`], [`vector`], [`ImageInput`], for code that stores or compares faces
//! without running models (a server relaying collections, say).

#[cfg(feature = "engine")]
pub mod align;
pub mod calibration;
pub mod decode;
#[cfg(feature = "engine")]
pub mod detector;
#[cfg(feature = "engine")]
pub mod embedder;
#[cfg(feature = "engine")]
pub mod engine;
pub mod error;
#[cfg(feature = "engine")]
pub mod kernels;
#[cfg(feature = "engine")]
pub mod landmarks;
pub mod quality;
pub mod tracker;
pub mod types;
pub mod vector;
#[cfg(feature = "engine")]
pub mod video;
#[cfg(feature = "engine")]
mod warp;

pub use calibration::Calibration;
#[cfg(feature = "engine")]
pub use decode::decode;
pub use decode::{DecodedImage, ImageInput, OrientationCorrection, RgbImage};
#[cfg(feature = "engine")]
pub use engine::{
    centred_face, FaceEngine, LocatedFace, ModelBytes, DEFAULT_SIMILARITY_THRESHOLD, LIKELY_FACE_CONFIDENCE, MAX_FACES,
    MIN_FACE_PROBABILITY,
};
pub use error::VisionError;
pub use quality::{quality_reasons, QualityFilter, QualityReason};
pub use types::*;
pub use vector::{cosine, normalize, EMBEDDING_DIMENSION, FACE_MODEL_VERSION};
