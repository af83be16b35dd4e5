//! Face search over video frames for the JS layer: a [`FaceSearchStream`] per video or
//! camera, fed one frame at a time in halves, so the host can run the image half (detect,
//! track; no collections) outside its locks, embed new faces wherever it likes (`embedChip`,
//! in a second worker), and search inside its locks (`faceSearchResolve`, `faceSearchMatch`).

use crate::interop::{self, collection_error, request, response};
use crate::{run, Engine};
use js_sys::Promise;
use likeness_collections::video::VideoFaceSearch;
use likeness_collections::{FaceSearchInput, FaceSearchSortBy};
use likeness_vision::video::{FrameRange, StreamFrame, VideoConfig};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

struct State {
    search: VideoFaceSearch,
    /// Frames tracked by `faceSearchTrack`, oldest first, each waiting for its
    /// `faceSearchMatch`: a host may track the next frame while this one waits for the lock.
    tracked: VecDeque<StreamFrame>,
}

/// One video's or camera's face search.
#[wasm_bindgen]
pub struct FaceSearchStream {
    state: Rc<RefCell<State>>,
}

#[wasm_bindgen]
impl Engine {
    /// Start a face search over frames: `{CollectionId, FaceMatchThreshold?, MaxFaces?}`;
    /// `range` is "near" (webcam distance, the default) or "far".
    #[wasm_bindgen(js_name = faceSearchStart)]
    pub fn face_search_start(&self, request_: JsValue, range: Option<String>) -> Result<FaceSearchStream, JsValue> {
        let input: FaceSearchInput = request(request_)?;
        let range = match range.as_deref() {
            None | Some("near") => FrameRange::Near,
            Some("far") => FrameRange::Far,
            Some(other) => {
                return Err(interop::error("InvalidParameterException", &format!("range {other:?}: near or far")))
            }
        };
        let search =
            VideoFaceSearch::new(input, VideoConfig { range, ..Default::default() }).map_err(collection_error)?;
        Ok(FaceSearchStream { state: Rc::new(RefCell::new(State { search, tracked: VecDeque::new() })) })
    }

    /// The image half of a frame at `timestampMs` (never earlier than the last), which needs
    /// no collection lock: detect and track, and return the faces to embed as `[{index, chip:
    /// Float32Array}]` (aligned crops for `embedChip`, here or in another worker); hand each
    /// vector back to `faceSearchResolve`.
    #[wasm_bindgen(js_name = faceSearchTrackDeferred)]
    pub fn face_search_track_deferred(
        &self,
        stream: &FaceSearchStream,
        image: JsValue,
        timestamp_ms: f64,
    ) -> Result<js_sys::Array, JsValue> {
        if !(timestamp_ms.is_finite() && timestamp_ms >= 0.0) {
            return Err(interop::error("InvalidParameterException", "timestamp: milliseconds, 0 or more"));
        }
        let image = interop::image(&image)?;
        let decoded = likeness_vision::decode(image.as_input()).map_err(interop::vision_error)?;
        let mut state = stream.state.borrow_mut();
        let (tracked, requests) = state
            .search
            .track_deferred(&self.inner.vision, &decoded.image, timestamp_ms as u64)
            .map_err(collection_error)?;
        state.tracked.push_back(tracked);
        let out = js_sys::Array::new();
        for r in requests {
            let item = js_sys::Object::new();
            js_sys::Reflect::set(&item, &"index".into(), &r.index.into())?;
            js_sys::Reflect::set(&item, &"chip".into(), &js_sys::Float32Array::from(r.chip.as_slice()))?;
            js_sys::Reflect::set(&item, &"first".into(), &r.first.into())?;
            out.push(&item);
        }
        Ok(out)
    }

    /// A face's vector from `embedChip` for track `index`, cropped from the frame at
    /// `timestampMs`: check the track still shows that face, search it, keep the track's best
    /// matches. Resolves `{Index, SplitFrom}` (a new track when the face was someone else's)
    /// or null when the track has ended.
    #[wasm_bindgen(js_name = faceSearchResolve)]
    pub fn face_search_resolve(
        &self,
        stream: &FaceSearchStream,
        index: u32,
        timestamp_ms: f64,
        embedding: Vec<f32>,
    ) -> Promise {
        let state = stream.state.clone();
        run(&self.inner, move |inner| async move {
            let c = inner.collections().await?;
            let resolved = state
                .borrow_mut()
                .search
                .resolve(&inner.vision, &c, index, timestamp_ms.max(0.0) as u64, &embedding)
                .map_err(collection_error)?;
            let out = js_sys::Object::new();
            match resolved {
                None => Ok(JsValue::NULL),
                Some(r) => {
                    js_sys::Reflect::set(&out, &"Index".into(), &r.index.into())?;
                    js_sys::Reflect::set(
                        &out,
                        &"SplitFrom".into(),
                        &r.split_from.map_or(JsValue::NULL, JsValue::from),
                    )?;
                    Ok(out.into())
                }
            }
        })
    }

    /// One network pass (`embedChipPass(chip, false)`) over a crop whose request was `first`:
    /// its matches name the track until `faceSearchResolve` brings the full vector (the sum
    /// of both passes), which replaces them. Resolves whether they were kept (false when the
    /// track has ended or already has a full vector).
    #[wasm_bindgen(js_name = faceSearchProvisional)]
    pub fn face_search_provisional(&self, stream: &FaceSearchStream, index: u32, one_pass: Vec<f32>) -> Promise {
        let state = stream.state.clone();
        run(&self.inner, move |inner| async move {
            let c = inner.collections().await?;
            let kept = state.borrow_mut().search.resolve_provisional(&c, index, &one_pass).map_err(collection_error)?;
            Ok(JsValue::from(kept))
        })
    }

    /// One network pass over an aligned crop (`mirrored`: over its mirror image), raw: their
    /// sum, normalised, is `embedChip`'s vector. Two calls let a new face be named after the
    /// first.
    #[wasm_bindgen(js_name = embedChipPass)]
    pub fn embed_chip_pass(&self, chip: &[f32], mirrored: bool) -> Result<Vec<f32>, JsValue> {
        self.inner.vision.embed_chip_pass(chip, mirrored).map_err(interop::vision_error)
    }

    /// The vector of an aligned face crop from `faceSearchTrackDeferred` (150 x 150 RGB,
    /// 0-255): the same vector the photo path gives that face.
    #[wasm_bindgen(js_name = embedChip)]
    pub fn embed_chip(&self, chip: &[f32]) -> Result<Vec<f32>, JsValue> {
        self.inner.vision.embed_chip(chip).map_err(interop::vision_error)
    }

    /// The collection half of the oldest tracked frame: search what was embedded and answer
    /// `{Timestamp, FaceSearchResponse: [{Index, DetectedFace, MatchedFaces}], Ended}`.
    #[wasm_bindgen(js_name = faceSearchMatch)]
    pub fn face_search_match(&self, stream: &FaceSearchStream) -> Promise {
        let state = stream.state.clone();
        run(&self.inner, move |inner| async move {
            let tracked = state.borrow_mut().tracked.pop_front().ok_or_else(|| {
                interop::error("InvalidParameterException", "no tracked frame: call faceSearchTrack first")
            })?;
            let c = inner.collections().await?;
            let out = state.borrow_mut().search.search(&c, tracked).map_err(collection_error)?;
            response(&out)
        })
    }

    /// Every person at every processed frame with the best matches of their track (what
    /// GetFaceSearch returns as `Persons`), by "TIMESTAMP" (default) or "INDEX".
    #[wasm_bindgen(js_name = faceSearchPersons)]
    pub fn face_search_persons(&self, stream: &FaceSearchStream, sort_by: Option<String>) -> Result<JsValue, JsValue> {
        let sort_by = match sort_by.as_deref() {
            None | Some("TIMESTAMP") => FaceSearchSortBy::Timestamp,
            Some("INDEX") => FaceSearchSortBy::Index,
            Some(other) => {
                return Err(interop::error(
                    "InvalidParameterException",
                    &format!("SortBy {other:?}: TIMESTAMP or INDEX"),
                ))
            }
        };
        response(&stream.state.borrow().search.persons(sort_by))
    }
}
