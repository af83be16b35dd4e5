//! Image input: encoded bytes or raw RGBA pixels, to an upright RGB raster.
//!
//! Limits are checked before any pixel is decoded, so a hostile header cannot make us
//! allocate gigabytes: encoded size first, then the dimensions from the header.

#[cfg(feature = "engine")]
use crate::error::VisionError;
#[cfg(feature = "engine")]
use image::{DynamicImage, ImageDecoder, ImageReader};
use serde::{Deserialize, Serialize};
#[cfg(feature = "engine")]
use std::io::Cursor;

/// Largest encoded image accepted, as Rekognition's limit for images passed by reference (15 MB).
pub const MAX_ENCODED_BYTES: usize = 15 * 1024 * 1024;
/// Largest decoded image accepted, in pixels (width x height).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Longest accepted side in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Shortest accepted side in pixels (Rekognition's minimum image size is 80 pixels).
pub const MIN_SIDE: u32 = 80;

/// An image handed to the engine.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// Encoded JPEG, PNG, WebP, GIF (first frame) or BMP bytes.
    Encoded(&'a [u8]),
    /// Raw RGBA pixels, row-major, 4 bytes a pixel, as a browser canvas `ImageData` holds them.
    Rgba { width: u32, height: u32, pixels: &'a [u8] },
}

/// The rotation applied to bring the image upright, from its EXIF orientation tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrientationCorrection {
    #[serde(rename = "ROTATE_0")]
    Rotate0,
    #[serde(rename = "ROTATE_90")]
    Rotate90,
    #[serde(rename = "ROTATE_180")]
    Rotate180,
    #[serde(rename = "ROTATE_270")]
    Rotate270,
}

/// An upright RGB raster, 3 bytes a pixel, row-major.
#[derive(Debug, Clone)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// A `width` x `height` image of one grey level.
    pub fn filled(width: u32, height: u32, grey: u8) -> Self {
        RgbImage { width, height, pixels: vec![grey; width as usize * height as usize * 3] }
    }

    /// Draw `src` scaled to `height` pixels tall (nearest neighbour, aspect kept) with its
    /// top-left corner at (`x`, `y`), clipped to this image: composes synthetic video frames
    /// from photos (tests, demos).
    pub fn draw_scaled(&mut self, src: &RgbImage, x: i32, y: i32, height: u32) {
        if src.width == 0 || src.height == 0 || height == 0 {
            return;
        }
        let width = (src.width as u64 * height as u64 / src.height as u64) as u32;
        for dy in 0..height {
            let ty = y as i64 + dy as i64;
            if ty < 0 || ty >= self.height as i64 {
                continue;
            }
            let sy = (dy as u64 * src.height as u64 / height as u64) as usize;
            for dx in 0..width {
                let tx = x as i64 + dx as i64;
                if tx < 0 || tx >= self.width as i64 {
                    continue;
                }
                let sx = (dx as u64 * src.width as u64 / width as u64) as usize;
                let s = (sy * src.width as usize + sx) * 3;
                let d = (ty as usize * self.width as usize + tx as usize) * 3;
                self.pixels[d..d + 3].copy_from_slice(&src.pixels[s..s + 3]);
            }
        }
    }
}

#[cfg(feature = "engine")]
impl RgbImage {
    #[inline]
    pub(crate) fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }
}

/// A decoded image and how it was turned upright.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    pub image: RgbImage,
    pub orientation_correction: OrientationCorrection,
}

#[cfg(feature = "engine")]
fn check_dimensions(width: u32, height: u32) -> Result<(), VisionError> {
    if width > MAX_SIDE || height > MAX_SIDE || (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(VisionError::ImageTooLarge(format!(
            "image is {width}x{height}; the limit is {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"
        )));
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(VisionError::InvalidParameter(format!(
            "image is {width}x{height}; each side must be at least {MIN_SIDE} pixels"
        )));
    }
    Ok(())
}

/// Decode an input into an upright RGB image, enforcing the size limits.
#[cfg(feature = "engine")]
pub fn decode(input: ImageInput<'_>) -> Result<DecodedImage, VisionError> {
    match input {
        ImageInput::Encoded(bytes) => decode_encoded(bytes),
        ImageInput::Rgba { width, height, pixels } => {
            check_dimensions(width, height)?;
            let expected = width as usize * height as usize * 4;
            if pixels.len() != expected {
                return Err(VisionError::InvalidImageFormat(format!(
                    "RGBA buffer has {} bytes; {width}x{height} needs {expected}",
                    pixels.len()
                )));
            }
            let rgb = pixels.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            Ok(DecodedImage {
                image: RgbImage { width, height, pixels: rgb },
                orientation_correction: OrientationCorrection::Rotate0,
            })
        }
    }
}

#[cfg(feature = "engine")]
fn decode_encoded(bytes: &[u8]) -> Result<DecodedImage, VisionError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(VisionError::ImageTooLarge(format!(
            "encoded image is {} bytes; the limit is {MAX_ENCODED_BYTES}",
            bytes.len()
        )));
    }
    if bytes.is_empty() {
        return Err(VisionError::InvalidImageFormat("image is empty".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::InvalidImageFormat(e.to_string()))?;
    if reader.format().is_none() {
        return Err(VisionError::InvalidImageFormat(
            "unrecognised image format; expected JPEG, PNG, WebP, GIF or BMP".into(),
        ));
    }
    let mut decoder = reader.into_decoder().map_err(|e| VisionError::InvalidImageFormat(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    decoder.set_limits(limits).map_err(|e| VisionError::ImageTooLarge(e.to_string()))?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(l) => VisionError::ImageTooLarge(l.to_string()),
        other => VisionError::InvalidImageFormat(other.to_string()),
    })?;
    img.apply_orientation(orientation);
    use image::metadata::Orientation as O;
    let orientation_correction = match orientation {
        O::NoTransforms | O::FlipHorizontal => OrientationCorrection::Rotate0,
        O::Rotate90 | O::Rotate90FlipH => OrientationCorrection::Rotate90,
        O::Rotate180 | O::FlipVertical => OrientationCorrection::Rotate180,
        O::Rotate270 | O::Rotate270FlipH => OrientationCorrection::Rotate270,
    };
    let rgb = img.into_rgb8();
    let (width, height) = rgb.dimensions();
    check_dimensions(width, height)?;
    Ok(DecodedImage { image: RgbImage { width, height, pixels: rgb.into_raw() }, orientation_correction })
}
