//! Every conversion between JS values and Rust types lives here.
//!
//! Requests and responses keep Rekognition's PascalCase wire shapes (`{CollectionId,
//! MaxFaces}`); the `likeness` npm package gives them JS casing. Pixels and change sets
//! cross as typed arrays, copied once in bulk. Errors become JS `Error`s whose `name` is the
//! Rekognition exception name.

use js_sys::{Reflect, Uint8Array};
use likeness_collections::CollectionError;
use likeness_vision::VisionError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// A JS `Error` named after the exception.
pub fn error(name: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name(name);
    e.into()
}

pub fn collection_error(e: CollectionError) -> JsValue {
    error(e.exception_name(), e.message())
}

pub fn vision_error(e: VisionError) -> JsValue {
    error(e.exception_name(), e.message())
}

fn invalid(message: String) -> JsValue {
    error("InvalidParameterException", &message)
}

/// A request object (PascalCase fields) into its Rust type. Unknown fields are rejected so
/// a misspelt parameter is an error, not a silently ignored option. (serde-wasm-bindgen reads
/// struct fields by name and never sees extra keys, so the object goes through a JSON value.)
pub fn request<T: DeserializeOwned>(value: JsValue) -> Result<T, JsValue> {
    let value = if value.is_undefined() || value.is_null() { js_sys::Object::new().into() } else { value };
    let json: serde_json::Value =
        serde_wasm_bindgen::from_value(value).map_err(|e| invalid(format!("bad request: {e}")))?;
    serde_json::from_value(json).map_err(|e| invalid(format!("bad request: {e}")))
}

/// A response as a plain JS object.
pub fn response<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value.serialize(&serializer).map_err(|e| error("InternalServerError", &format!("cannot convert response: {e}")))
}

/// An image as the engine takes it: encoded bytes, or RGBA pixels.
pub enum ImageBytes {
    Encoded(Vec<u8>),
    Rgba { width: u32, height: u32, pixels: Vec<u8> },
}

impl ImageBytes {
    pub fn as_input(&self) -> likeness_vision::ImageInput<'_> {
        match self {
            ImageBytes::Encoded(b) => likeness_vision::ImageInput::Encoded(b),
            ImageBytes::Rgba { width, height, pixels } => {
                likeness_vision::ImageInput::Rgba { width: *width, height: *height, pixels }
            }
        }
    }
}

fn u32_field(obj: &JsValue, name: &str) -> Option<u32> {
    let v = Reflect::get(obj, &name.into()).ok()?.as_f64()?;
    (v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&v)).then_some(v as u32)
}

/// An image argument: a `Uint8Array` / `ArrayBuffer` of encoded bytes, or an `ImageData`-like
/// `{width, height, data}` with RGBA `data` (`Uint8ClampedArray` or `Uint8Array`).
pub fn image(value: &JsValue) -> Result<ImageBytes, JsValue> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(ImageBytes::Encoded(a.to_vec()));
    }
    if let Some(b) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(ImageBytes::Encoded(Uint8Array::new(b).to_vec()));
    }
    if value.is_object() {
        let data = Reflect::get(value, &"data".into()).unwrap_or(JsValue::UNDEFINED);
        if let (Some(width), Some(height)) = (u32_field(value, "width"), u32_field(value, "height")) {
            let pixels = if let Some(c) = data.dyn_ref::<js_sys::Uint8ClampedArray>() {
                c.to_vec()
            } else if let Some(a) = data.dyn_ref::<Uint8Array>() {
                a.to_vec()
            } else {
                return Err(error(
                    "InvalidImageFormatException",
                    "image.data must be a Uint8ClampedArray or Uint8Array",
                ));
            };
            return Ok(ImageBytes::Rgba { width, height, pixels });
        }
    }
    Err(error(
        "InvalidImageFormatException",
        "image must be encoded bytes (Uint8Array or ArrayBuffer) or RGBA pixels ({width, height, data})",
    ))
}

pub fn bytes(value: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    Err(invalid(format!("{what} must be a Uint8Array or ArrayBuffer")))
}

// ---- the one request that is not a collection operation's -------------------------------

/// CompareFaces' parameters besides its two images (likeness-vision takes them as arguments).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CompareFacesRequest {
    pub similarity_threshold: Option<f32>,
}
