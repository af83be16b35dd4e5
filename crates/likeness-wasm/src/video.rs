//! Face search over video frames for the JS layer: a [`FaceSearchStream`] per video or
//! camera, fed one frame at a time in two halves, so the host can run the image half
//! (detect, track, embed; no collections) outside its locks and the search half inside.

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

    /// The image half of a frame at `timestampMs` (never earlier than the last): detect,
    /// track, embed where due. Synchronous; needs no collection lock. Returns how many faces
    /// were embedded (new tracks, clearly better views).
    #[wasm_bindgen(js_name = faceSearchTrack)]
    pub fn face_search_track(
        &self,
        stream: &FaceSearchStream,
        image: JsValue,
        timestamp_ms: f64,
    ) -> Result<u32, JsValue> {
        if !(timestamp_ms.is_finite() && timestamp_ms >= 0.0) {
            return Err(interop::error("InvalidParameterException", "timestamp: milliseconds, 0 or more"));
        }
        let image = interop::image(&image)?;
        let decoded = likeness_vision::decode(image.as_input()).map_err(interop::vision_error)?;
        let mut state = stream.state.borrow_mut();
        let tracked =
            state.search.track(&self.inner.vision, &decoded.image, timestamp_ms as u64).map_err(collection_error)?;
        let embedded = tracked.faces.iter().filter(|f| f.embedding.is_some()).count() as u32;
        state.tracked.push_back(tracked);
        Ok(embedded)
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
