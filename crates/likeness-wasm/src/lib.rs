//! WebAssembly bindings for Likeness: the vision engine and IndexedDB-backed collections.
//!
//! A thin adapter: [`Engine`] owns a [`FaceEngine`] and a [`Collections`] over an
//! [`IdbStore`], and exposes each Rekognition operation as a method taking and returning
//! Rekognition-shaped plain objects (PascalCase). Conversions live in [`interop`]; the
//! `likeness` npm package (`web/`) adds JS casing, image sources, model loading and the
//! worker on top.
//!
//! Calls are serialised: a mutation validates, awaits the IndexedDB commit, then applies in
//! memory, so a second call must not run in between. Before each collection call the engine
//! checks whether another tab wrote to the database and, if so, reloads from it. The JS
//! layer holds a Web Lock per database around every collection call, so tabs take turns.
//!
//! Image work needs no collection state, so it runs before any lock: `prepareIndexFaces` /
//! `prepareSearch` detect and embed only the faces the operation uses and return a
//! [`Prepared`] that the `*Prepared` methods take inside the lock. The one-step methods
//! (`indexFaces(request, image)`, ...) do the same in order.

use futures_util::lock::{Mutex, MutexGuard};
use js_sys::{Promise, Uint8Array};
use likeness_collections::service::{prepare_index_faces, prepare_search, PreparedImage};
use likeness_collections::{
    AssociateFacesInput, Clock, CollectionInput, Collections, DeleteFacesInput, DisassociateFacesInput,
    IndexFacesInput, ListCollectionsInput, ListFacesInput, ListUsersInput, PersistedCollection,
    SearchFacesByImageInput, SearchFacesInput, SearchUsersByImageInput, SearchUsersInput, Store, UserInput,
    VectorSpace,
};
use likeness_vision::{FaceEngine, ModelBytes, DEFAULT_SIMILARITY_THRESHOLD};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

mod idb;
pub mod interop;
pub mod sync;
pub mod video;

pub use idb::{IdbStore, SCHEMA_VERSION};
use interop::{collection_error, request, response, vision_error};

/// `Date.now()`: wasm32-unknown-unknown has no clock of its own.
struct JsClock;

impl Clock for JsClock {
    fn now_millis(&self) -> u64 {
        js_sys::Date::now().max(0.0) as u64
    }
}

/// Where an engine keeps its collections: an IndexedDB database, or memory only (nothing
/// written to the device; gone when the page closes). A memory engine never reloads, so its
/// store keeps no bytes: the collections in memory are the only copy.
pub enum BrowserStore {
    IndexedDb(IdbStore),
    Memory,
}

impl Store for BrowserStore {
    async fn load(&mut self) -> likeness_collections::Result<Vec<PersistedCollection>> {
        match self {
            BrowserStore::IndexedDb(s) => s.load().await,
            BrowserStore::Memory => Ok(Vec::new()),
        }
    }
    async fn append(&mut self, collection_id: &str, delta: &[u8]) -> likeness_collections::Result<()> {
        match self {
            BrowserStore::IndexedDb(s) => s.append(collection_id, delta).await,
            BrowserStore::Memory => Ok(()),
        }
    }
    async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> likeness_collections::Result<()> {
        match self {
            BrowserStore::IndexedDb(s) => s.replace(collection_id, snapshot).await,
            BrowserStore::Memory => Ok(()),
        }
    }
    async fn remove(&mut self, collection_id: &str) -> likeness_collections::Result<()> {
        match self {
            BrowserStore::IndexedDb(s) => s.remove(collection_id).await,
            BrowserStore::Memory => Ok(()),
        }
    }
    async fn changed_elsewhere(&self) -> likeness_collections::Result<bool> {
        match self {
            BrowserStore::IndexedDb(s) => s.changed_elsewhere().await,
            BrowserStore::Memory => Ok(false),
        }
    }
    fn persists(&self) -> bool {
        matches!(self, BrowserStore::IndexedDb(_))
    }
}

pub(crate) struct Inner {
    vision: FaceEngine,
    collections: Mutex<Collections<BrowserStore>>,
    /// The embedder's prepared form made by this open, until the host takes it to cache.
    prepared_embedder: std::cell::RefCell<Option<Vec<u8>>>,
}

impl Inner {
    /// The collections, exclusively, up to date with writes from other tabs.
    pub(crate) async fn collections(&self) -> Result<MutexGuard<'_, Collections<BrowserStore>>, JsValue> {
        let mut guard = self.collections.lock().await;
        guard.refresh().await.map_err(collection_error)?;
        Ok(guard)
    }
}

/// An image's faces, detected and embedded for one operation outside any lock
/// ([`Engine::prepare_index_faces`], [`Engine::prepare_search`]). Taken (consumed) by the
/// `*Prepared` method it was made for.
#[wasm_bindgen]
pub struct Prepared {
    image: PreparedImage,
}

/// The Likeness engine: models loaded, collections open.
#[wasm_bindgen]
pub struct Engine {
    pub(crate) inner: Rc<Inner>,
}

/// Run `body` with the engine's state as a JS promise.
pub(crate) fn run<F, Fut>(inner: &Rc<Inner>, body: F) -> Promise
where
    F: FnOnce(Rc<Inner>) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let inner = inner.clone();
    future_to_promise(async move { body(inner).await })
}

#[wasm_bindgen]
impl Engine {
    /// Load the three ONNX models (BlazeFace short range, BlazeFace full range, the dlib ResNet embedder) and
    /// open the IndexedDB database `database`, creating it on first use; with no database,
    /// collections live in memory only. `prepared`: the embedder's prepared form from an
    /// earlier open (`takePreparedEmbedder`), which skips most of its loading; one that does
    /// not load is ignored.
    pub async fn open(
        detector_short: Uint8Array,
        detector_full: Uint8Array,
        embedder: Uint8Array,
        database: Option<String>,
        prepared: Option<Uint8Array>,
    ) -> Result<Engine, JsValue> {
        let (short, full, emb) = (detector_short.to_vec(), detector_full.to_vec(), embedder.to_vec());
        let prepared = prepared.map(|p| p.to_vec());
        let (vision, fresh) = FaceEngine::load_with_prepared(
            ModelBytes { detector_short: &short, detector_full: &full, embedder: &emb },
            prepared.as_deref(),
        )
        .map_err(vision_error)?;
        drop(prepared);
        let (store, replica) = match database {
            Some(name) => {
                let mut idb = IdbStore::open(&name).await.map_err(collection_error)?;
                let replica = idb.replica_id().await.map_err(collection_error)?;
                (BrowserStore::IndexedDb(idb), replica)
            }
            None => (BrowserStore::Memory, idb::random_replica_id()),
        };
        let space = VectorSpace::of(&vision);
        let collections =
            Collections::open(store, Box::new(JsClock), replica, space).await.map_err(collection_error)?;
        let prepared_embedder = std::cell::RefCell::new(fresh);
        Ok(Engine { inner: Rc::new(Inner { vision, collections: Mutex::new(collections), prepared_embedder }) })
    }

    /// The embedder's prepared form made by `open` (none when `open` was given one that
    /// loaded), once: for the host to cache, keyed by `preparedEmbedderFormat()` and the
    /// ONNX file. Model weights only, nothing about faces.
    #[wasm_bindgen(js_name = takePreparedEmbedder)]
    pub fn take_prepared_embedder(&self) -> Option<Uint8Array> {
        self.inner.prepared_embedder.borrow_mut().take().map(|bytes| Uint8Array::from(&bytes[..]))
    }

    /// The format of `takePreparedEmbedder`'s bytes: part of a cache key.
    #[wasm_bindgen(js_name = preparedEmbedderFormat)]
    pub fn prepared_embedder_format() -> String {
        likeness_vision::embedder::PREPARED_FORMAT.to_string()
    }

    /// The embedder's model version (`FaceModelVersion` in responses).
    #[wasm_bindgen(getter, js_name = faceModelVersion)]
    pub fn face_model_version(&self) -> String {
        self.inner.vision.face_model_version().to_string()
    }

    // ---- vision ---------------------------------------------------------------------------

    /// DetectFaces on one image.
    #[wasm_bindgen(js_name = detectFaces)]
    pub fn detect_faces(&self, image: JsValue) -> Result<JsValue, JsValue> {
        let image = interop::image(&image)?;
        response(&self.inner.vision.detect_faces(image.as_input()).map_err(vision_error)?)
    }

    /// CompareFaces: `{SimilarityThreshold}` with a source and a target image.
    #[wasm_bindgen(js_name = compareFaces)]
    pub fn compare_faces(&self, request_: JsValue, source: JsValue, target: JsValue) -> Result<JsValue, JsValue> {
        let req: interop::CompareFacesRequest = request(request_)?;
        let (source, target) = (interop::image(&source)?, interop::image(&target)?);
        let threshold = req.similarity_threshold.unwrap_or(DEFAULT_SIMILARITY_THRESHOLD);
        let out =
            self.inner.vision.compare_faces(source.as_input(), target.as_input(), threshold).map_err(vision_error)?;
        response(&out)
    }

    // ---- collections ----------------------------------------------------------------------

    #[wasm_bindgen(js_name = createCollection)]
    pub fn create_collection(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: CollectionInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.create_collection(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = deleteCollection)]
    pub fn delete_collection(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: CollectionInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.delete_collection(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = describeCollection)]
    pub fn describe_collection(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: CollectionInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.describe_collection(&req).map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = listCollections)]
    pub fn list_collections(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: ListCollectionsInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.list_collections(&req).map_err(collection_error)?)
        })
    }

    /// The image half of IndexFaces for `{CollectionId, ExternalImageId, MaxFaces,
    /// QualityFilter}`: detect, select, embed only the faces that will be stored.
    #[wasm_bindgen(js_name = prepareIndexFaces)]
    pub fn prepare_index_faces(&self, request_: JsValue, image: JsValue) -> Result<Prepared, JsValue> {
        let req: IndexFacesInput = request(request_)?;
        let image = interop::image(&image)?;
        Ok(Prepared {
            image: prepare_index_faces(&self.inner.vision, &req, image.as_input()).map_err(collection_error)?,
        })
    }

    /// The image half of SearchFacesByImage and SearchUsersByImage: the largest face,
    /// embedded, and the others described when `describeOthers`.
    #[wasm_bindgen(js_name = prepareSearch)]
    pub fn prepare_search(&self, image: JsValue, describe_others: bool) -> Result<Prepared, JsValue> {
        let image = interop::image(&image)?;
        Ok(Prepared {
            image: prepare_search(&self.inner.vision, image.as_input(), describe_others).map_err(collection_error)?,
        })
    }

    /// IndexFaces on a prepared image.
    #[wasm_bindgen(js_name = indexFacesPrepared)]
    pub fn index_faces_prepared(&self, request_: JsValue, prepared: Prepared) -> Promise {
        run(&self.inner, |inner| async move {
            let req: IndexFacesInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.index_faces_prepared(&req, prepared.image).await.map_err(collection_error)?)
        })
    }

    /// IndexFaces: `{CollectionId, ExternalImageId, MaxFaces, QualityFilter}` and an image.
    #[wasm_bindgen(js_name = indexFaces)]
    pub fn index_faces(&self, request_: JsValue, image: JsValue) -> Result<Promise, JsValue> {
        let prepared = self.prepare_index_faces(request_.clone(), image)?;
        Ok(self.index_faces_prepared(request_, prepared))
    }

    #[wasm_bindgen(js_name = listFaces)]
    pub fn list_faces(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: ListFacesInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.list_faces(&req).map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = deleteFaces)]
    pub fn delete_faces(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: DeleteFacesInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.delete_faces(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = searchFaces)]
    pub fn search_faces(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: SearchFacesInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.search_faces(&req).map_err(collection_error)?)
        })
    }

    /// SearchFacesByImage on a prepared image.
    #[wasm_bindgen(js_name = searchFacesByImagePrepared)]
    pub fn search_faces_by_image_prepared(&self, request_: JsValue, prepared: Prepared) -> Promise {
        run(&self.inner, |inner| async move {
            let req: SearchFacesByImageInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.search_faces_prepared(&req, &prepared.image).map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = searchFacesByImage)]
    pub fn search_faces_by_image(&self, request_: JsValue, image: JsValue) -> Result<Promise, JsValue> {
        let prepared = self.prepare_search(image, false)?;
        Ok(self.search_faces_by_image_prepared(request_, prepared))
    }

    #[wasm_bindgen(js_name = createUser)]
    pub fn create_user(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: UserInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.create_user(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = deleteUser)]
    pub fn delete_user(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: UserInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.delete_user(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = listUsers)]
    pub fn list_users(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: ListUsersInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.list_users(&req).map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = associateFaces)]
    pub fn associate_faces(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: AssociateFacesInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.associate_faces(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = disassociateFaces)]
    pub fn disassociate_faces(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: DisassociateFacesInput = request(request_)?;
            let mut c = inner.collections().await?;
            response(&c.disassociate_faces(&req).await.map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = searchUsers)]
    pub fn search_users(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: SearchUsersInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.search_users(&req).map_err(collection_error)?)
        })
    }

    /// SearchUsersByImage on a prepared image.
    #[wasm_bindgen(js_name = searchUsersByImagePrepared)]
    pub fn search_users_by_image_prepared(&self, request_: JsValue, prepared: Prepared) -> Promise {
        run(&self.inner, |inner| async move {
            let req: SearchUsersByImageInput = request(request_)?;
            let c = inner.collections().await?;
            response(&c.search_users_prepared(&req, &prepared.image).map_err(collection_error)?)
        })
    }

    #[wasm_bindgen(js_name = searchUsersByImage)]
    pub fn search_users_by_image(&self, request_: JsValue, image: JsValue) -> Result<Promise, JsValue> {
        let prepared = self.prepare_search(image, true)?;
        Ok(self.search_users_by_image_prepared(request_, prepared))
    }

    // ---- replication ----------------------------------------------------------------------

    /// The whole collection as one LKNS change set (backup, or seeding another device).
    pub fn snapshot(&self, request_: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: CollectionInput = request(request_)?;
            let c = inner.collections().await?;
            let bytes = c.snapshot(&req.collection_id).map_err(collection_error)?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }

    /// Merge an LKNS change set (from [`snapshot`](Self::snapshot) or a sync peer) into the
    /// collection `{CollectionId}` it must belong to: checked whole, persisted, then merged.
    #[wasm_bindgen(js_name = applyChanges)]
    pub fn apply_changes(&self, request_: JsValue, changes: JsValue) -> Promise {
        run(&self.inner, |inner| async move {
            let req: CollectionInput = request(request_)?;
            let bytes = interop::bytes(&changes, "changes")?;
            let mut c = inner.collections().await?;
            Ok(c.apply_changes(&req.collection_id, &bytes).await.map_err(collection_error)?.into())
        })
    }
}
