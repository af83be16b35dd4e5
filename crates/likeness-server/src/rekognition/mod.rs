//! Rekognition's own wire protocol (AWS JSON 1.1, SigV4), so code written for Amazon
//! Rekognition runs against this server by changing only its endpoint.
//!
//! A separate mode from sync: these collections live on the server, readable by it, one
//! directory store per access key (a tenant) under the data directory. Requests are
//! `POST /` with `X-Amz-Target: RekognitionService.<Operation>`; [`sigv4`] checks the
//! signature, [`ops`] dispatches to the same `likeness-collections` and `likeness-vision`
//! code the CLI and the browser run, [`error`] maps every refusal once. Image work runs on
//! a pool as wide as the machine's cores with a bounded queue; past it, requests are
//! refused with `ThrottlingException` rather than queued without end.

pub mod error;
pub mod ops;
pub mod sigv4;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use error::AwsError;
use likeness_collections::{Collections, DirStore, SystemClock, VectorSpace};
use likeness_vision::FaceEngine;
use ops::{Body, Operation};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Semaphore;

/// Largest image Rekognition takes as bytes (5 MB), and from S3 (15 MB).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_S3_IMAGE_BYTES: usize = 15 * 1024 * 1024;

/// How the operator configures the mode.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Access key id -> secret access key; each key is a tenant.
    pub keys: HashMap<String, String>,
    /// Where tenants' collections live (`<dir>/<access key id>/`).
    pub data_dir: PathBuf,
    /// S3 bucket name -> local directory, for `Image.S3Object`.
    pub buckets: HashMap<String, PathBuf>,
    /// Image requests running at once (0: the cores) and waiting (None: 4x the workers).
    pub workers: usize,
    pub queue: Option<usize>,
}

impl Config {
    /// Read `ACCESS_KEY_ID SECRET_ACCESS_KEY` lines (blank lines and `#` comments skipped).
    pub fn parse_keys(text: &str) -> Result<HashMap<String, String>, String> {
        let mut keys = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(id), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("line {}: expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`", n + 1));
            };
            if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("line {}: an access key id is 1-128 letters and digits", n + 1));
            }
            keys.insert(id.to_string(), secret.to_string());
        }
        Ok(keys)
    }
}

/// Where images may come from besides the request body.
pub struct Images {
    pub max_bytes: usize,
    buckets: HashMap<String, PathBuf>,
}

impl Images {
    /// `S3Object {Bucket, Name}` from the directory the operator mapped to the bucket.
    fn read_s3(&self, s3: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<u8>, AwsError> {
        let invalid = |m: String| AwsError::new("InvalidS3ObjectException", m);
        let field = |k: &str| s3.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        let (bucket, name) = (field("Bucket"), field("Name"));
        let Some(root) = self.buckets.get(bucket) else {
            return Err(invalid(format!("Unable to get object metadata from S3: no bucket {bucket:?} is mapped")));
        };
        // Only plain relative names: nothing may climb out of the bucket's directory.
        let relative = Path::new(name);
        if name.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(invalid(format!("Unable to get object metadata from S3: {name:?} is not an object name")));
        }
        let path = root.join(relative);
        let len = std::fs::metadata(&path)
            .map_err(|_| invalid(format!("Unable to get object metadata from S3: no object {name:?} in {bucket:?}")))?
            .len();
        if len > MAX_S3_IMAGE_BYTES as u64 {
            return Err(AwsError::new(
                "ImageTooLargeException",
                format!("the S3 object is larger than {MAX_S3_IMAGE_BYTES} bytes"),
            ));
        }
        std::fs::read(&path).map_err(|e| invalid(format!("Unable to read the S3 object {name:?}: {e}")))
    }
}

/// One access key's collections.
pub struct Tenant {
    collections: RwLock<Collections<DirStore>>,
}

/// The mode's state: explicit, shared by handlers.
pub struct Rekognition {
    engine: FaceEngine,
    images: Images,
    keys: HashMap<String, String>,
    data_dir: PathBuf,
    tenants: Mutex<HashMap<String, Arc<Tenant>>>,
    /// Image requests running, and running or waiting.
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

impl Rekognition {
    pub fn new(engine: FaceEngine, config: Config) -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = if config.workers == 0 { cores } else { config.workers };
        let queue = config.queue.unwrap_or(workers * 4);
        Arc::new(Rekognition {
            engine,
            images: Images { max_bytes: MAX_IMAGE_BYTES, buckets: config.buckets },
            keys: config.keys,
            data_dir: config.data_dir,
            tenants: Mutex::new(HashMap::new()),
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
        })
    }

    /// The tenant of `access_key`, its store opened on first use. Blocking.
    fn tenant(&self, access_key: &str) -> Result<Arc<Tenant>, AwsError> {
        let mut tenants = self.tenants.lock().map_err(|_| AwsError::internal("a previous request panicked"))?;
        if let Some(t) = tenants.get(access_key) {
            return Ok(t.clone());
        }
        let mut store = DirStore::open(self.data_dir.join(access_key))?;
        let replica = store.replica_id()?;
        let collections = likeness_collections::block_on(Collections::open(
            store,
            Box::new(SystemClock),
            replica,
            VectorSpace::of(&self.engine),
        ))?;
        let tenant = Arc::new(Tenant { collections: RwLock::new(collections) });
        tenants.insert(access_key.to_string(), tenant.clone());
        Ok(tenant)
    }
}

/// Request bodies: two 5 MB images in base64 and the JSON around them.
const MAX_BODY_BYTES: usize = 2 * (MAX_IMAGE_BYTES / 3 * 4 + 4) + 64 * 1024;

/// `POST /`: the whole protocol.
pub fn router(state: Arc<Rekognition>) -> Router {
    Router::new().route("/", post(call)).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).with_state(state)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

async fn call(
    State(svc): State<Arc<Rekognition>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = uuid();
    let answered = match body {
        Ok(body) => answer(&svc, &method, &uri, &headers, body).await,
        // Past the body limit (or a broken upload): the service's shape, not axum's text.
        Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => Err(AwsError::new(
            "RequestEntityTooLargeException",
            format!("the request is larger than {MAX_BODY_BYTES} bytes (images are at most {MAX_IMAGE_BYTES} bytes)"),
        )),
        Err(e) => Err(AwsError::new("SerializationException", e.body_text())),
    };
    let mut response = match answered {
        Ok(v) => {
            let mut r = v.to_string().into_response();
            r.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
            r
        }
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(kind = e.kind, "rekognition request failed: {}", e.message);
            }
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", v);
    }
    response
}

async fn answer(
    svc: &Arc<Rekognition>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<serde_json::Value, AwsError> {
    let signed = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers,
        body: &body,
    };
    let access_key = sigv4::verify(&signed, &svc.keys, now_seconds())?;
    let op = Operation::from_target(headers.get("x-amz-target").and_then(|v| v.to_str().ok()))?;
    let parsed = Body::parse(&body)?;
    drop(body);
    // Image work waits for a slot on the pool; past the queue, the caller is told to back off.
    let permits = if op.uses_images() {
        let admitted = svc.admitted.clone().try_acquire_owned().map_err(|_| {
            AwsError::new("ThrottlingException", "Likeness is busy: too many image requests in flight; retry later")
        })?;
        let running =
            svc.running.clone().acquire_owned().await.map_err(|_| AwsError::internal("the image pool is closed"))?;
        Some((admitted, running))
    } else {
        None
    };
    let svc = svc.clone();
    let result = tokio::task::spawn_blocking(move || {
        let tenant = svc.tenant(&access_key)?;
        ops::run(&svc.engine, &svc.images, &tenant, op, parsed)
    })
    .await
    .map_err(|_| AwsError::internal("the request's worker failed"));
    drop(permits);
    result?
}

/// A request id, as the service sends in `x-amzn-RequestId`.
fn uuid() -> String {
    let mut b = crate::auth::random_bytes(16).unwrap_or_else(|_| vec![0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::auth::hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
