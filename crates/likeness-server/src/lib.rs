//! # likeness-server
//!
//! Relays a sync group's collection records between its devices. Every record is sealed by
//! the devices (`likeness-sync`); the server stores and serves opaque bytes under opaque
//! collection tags, and never holds a key. What it keeps per group: device tokens (hashed),
//! single-use invites (hashed), per collection a key check record, an append-only log of
//! records with server-assigned sequences, the latest snapshot and the sequence it covers,
//! and byte counts for quotas.
//!
//! Layout: [`db`] (storage behind the [`db::Database`] trait; SQLite embedded, PostgreSQL shared), [`routes`]
//! (one small handler per endpoint), [`auth`] (tokens), [`limits`] (sizes, quotas, rates),
//! [`error`] (every refusal mapped once to a status and a stable code).
//!
//! Separately, [`rekognition`] serves Amazon Rekognition's own API over server-side
//! collections (a mode the operator turns on; sync groups never touch it).

pub mod auth;
pub mod db;
pub mod error;
pub mod limits;
pub mod rekognition;
pub mod routes;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use db::Database;
use limits::{Limiters, Limits};
use std::sync::Arc;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// What live listeners hear.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Live {
    /// A collection of a group got records up to `last_seq`.
    Records { group_id: String, tag: String, last_seq: i64 },
    /// A device was revoked: its live streams end.
    Revoked { device_id: String },
    /// Announcements may have been missed (a lagging listener, a lost database connection):
    /// every listener should pull.
    Resync,
}

/// Everything a handler needs: explicit, shared.
pub struct App<D> {
    pub db: D,
    pub config: Limits,
    pub limits: Limiters,
    /// This process's live listeners; [`Database::announce`] reaches every process's.
    pub events: tokio::sync::broadcast::Sender<Live>,
}

impl<D: Database> App<D> {
    /// The app on `db`. Call from within a Tokio runtime: a shared database starts its
    /// listener task here.
    pub fn new(db: D, config: Limits) -> Arc<Self> {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        db.listen(events.clone());
        Arc::new(App { limits: Limiters::new(&config), db, config, events })
    }
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Browsers call the API from the app's own origin, wherever it is served: any origin may,
/// since every call carries its bearer token (no cookies, so no ambient authority).
fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderName, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([
            HeaderName::from_static("likeness-more"),
            HeaderName::from_static("likeness-last-seq"),
            HeaderName::from_static("likeness-snapshot-seq"),
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

/// A built web app (the `www/` app's `dist/`) served beside the API: files as they are (or
/// their `.gz` twin, written at build time, to a browser that accepts gzip), `no-cache` so a
/// new build is picked up at once (revalidation answers 304; the app's service worker keeps
/// it for offline use), and `index.html` for any other GET path the API does not answer.
pub fn static_app(dir: &std::path::Path) -> Router {
    use axum::http::{header, HeaderValue};
    use tower_http::services::{ServeDir, ServeFile};
    use tower_http::set_header::SetResponseHeaderLayer;
    let index = ServeFile::new(dir.join("index.html"));
    let files = ServeDir::new(dir).precompressed_gzip().fallback(index.clone());
    // `/` as a GET route of its own, so it merges with the Rekognition mode's `POST /`.
    Router::new()
        .route("/", axum::routing::get_service(index))
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
}

/// The API. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` (the
/// credential routes rate-limit per client address).
pub fn router<D: Database>(app: Arc<App<D>>) -> Router {
    use routes::*;
    let collection = "/v1/groups/{group_id}/collections/{tag}";
    let api = Router::new()
        .route("/v1/groups", post(create_group::<D>))
        .route("/v1/join", post(join::<D>))
        .route("/v1/groups/{group_id}", delete(delete_group::<D>))
        .route("/v1/groups/{group_id}/invites", post(create_invite::<D>))
        .route("/v1/groups/{group_id}/devices", get(list_devices::<D>))
        .route("/v1/groups/{group_id}/devices/{device_id}", delete(revoke_device::<D>))
        .route(collection, put(put_collection::<D>).get(get_collection::<D>).delete(delete_collection::<D>))
        .route(&format!("{collection}/records"), post(push::<D>).get(pull::<D>))
        .route(&format!("{collection}/snapshot"), put(put_snapshot::<D>).get(get_snapshot::<D>))
        .route("/health", get(health))
        .route("/metrics", get(metrics::<D>))
        .route("/openapi.json", get(openapi))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, app.config.request_timeout));
    // Live streams are long-lived: no request timeout.
    let live = Router::new().route("/v1/groups/{group_id}/events", get(events::<D>));
    api.merge(live)
        .layer(cors())
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(ConcurrencyLimitLayer::new(app.config.max_connections))
        .with_state(app)
}
