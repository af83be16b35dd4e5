//! Handlers: each one checks its input, calls the database once, and answers. Record bodies
//! are binary (`likeness_sync::protocol`); everything else is JSON.

use crate::auth::{hash_secret, new_id, new_secret, Device};
use crate::db::{Database, NewDevice};
use crate::error::{ApiError, ApiResult};
use crate::{now_millis, App, Live};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures_util::stream::Stream;
use likeness_sync::envelope::peek_kind;
use likeness_sync::protocol::{decode_push, encode_pull};
use likeness_sync::RecordKind;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

type AppState<D> = State<Arc<App<D>>>;

/// A binary body; over the size limit it is a typed PayloadTooLarge.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(Body).map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(e.body_text())
            } else {
                ApiError::InvalidRequest(e.body_text())
            }
        })
    }
}

/// A JSON body whose rejections are typed errors too.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| JsonBody(v)).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(e.body_text())
            } else {
                ApiError::InvalidRequest(e.body_text())
            }
        })
    }
}

fn check_tag(tag: &str) -> ApiResult<()> {
    if tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest("a collection tag is 32 lowercase hex characters".into()))
    }
}

fn check_label(label: &str) -> ApiResult<()> {
    if label.len() > 200 {
        return Err(ApiError::InvalidRequest("a device label is at most 200 bytes".into()));
    }
    Ok(())
}

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

pub async fn metrics<D: Database>(State(app): AppState<D>) -> ApiResult<Response> {
    let c = app.db.counts().await?;
    let live = app.events.receiver_count();
    let text = format!(
        "# TYPE likeness_groups gauge\nlikeness_groups {}\n# TYPE likeness_devices gauge\nlikeness_devices {}\n\
         # TYPE likeness_collections gauge\nlikeness_collections {}\n# TYPE likeness_records gauge\nlikeness_records {}\n\
         # TYPE likeness_stored_bytes gauge\nlikeness_stored_bytes {}\n# TYPE likeness_live_connections gauge\nlikeness_live_connections {live}\n",
        c.groups, c.devices, c.collections, c.records, c.bytes
    );
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json")).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Public fingerprint of the group key (`GroupKey::id_hex`).
    key_id: String,
    #[serde(default)]
    label: String,
}

#[derive(Serialize)]
pub struct Credentials {
    group_id: String,
    device_id: String,
    /// Shown once; the server keeps only its hash.
    token: String,
    /// The group key's fingerprint, so a joining device can check the key it was given.
    key_id: String,
}

fn new_device(label: String) -> ApiResult<(NewDevice, String)> {
    check_label(&label)?;
    let token = new_secret()?;
    Ok((NewDevice { device_id: new_id(8)?, label, token_hash: hash_secret(&token) }, token))
}

pub async fn create_group<D: Database>(
    State(app): AppState<D>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Credentials>)> {
    app.limits.per_ip_auth.check(&addr.ip())?;
    if req.key_id.len() != 16 || !req.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidRequest("key_id is 16 hex characters".into()));
    }
    let group_id = new_id(16)?;
    let (device, token) = new_device(req.label)?;
    let device_id = device.device_id.clone();
    app.db.create_group(&group_id, &req.key_id, now_millis(), device).await?;
    Ok((StatusCode::CREATED, Json(Credentials { group_id, device_id, token, key_id: req.key_id })))
}

#[derive(Serialize)]
pub struct Invite {
    /// Single use; the group key travels beside it only in the URL fragment.
    invite: String,
    expires_at: i64,
}

pub async fn create_invite<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path(group_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Invite>)> {
    device.group(&group_id)?;
    let invite = new_secret()?;
    let expires_at = now_millis() + app.config.invite_ttl.as_millis() as i64;
    app.db.create_invite(&group_id, &hash_secret(&invite), expires_at).await?;
    Ok((StatusCode::CREATED, Json(Invite { invite, expires_at })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    invite: String,
    #[serde(default)]
    label: String,
}

pub async fn join<D: Database>(
    State(app): AppState<D>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<Join>,
) -> ApiResult<(StatusCode, Json<Credentials>)> {
    app.limits.per_ip_auth.check(&addr.ip())?;
    let (device, token) = new_device(req.label)?;
    let device_id = device.device_id.clone();
    // Unknown, used and expired invites answer alike.
    let (group_id, key_id) =
        app.db.redeem_invite(&hash_secret(&req.invite), now_millis(), device).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(Credentials { group_id, device_id, token, key_id })))
}

pub async fn list_devices<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path(group_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    device.group(&group_id)?;
    let devices = app.db.list_devices(&group_id).await?;
    Ok(Json(serde_json::json!({ "devices": devices })))
}

pub async fn revoke_device<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, device_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    device.group(&group_id)?;
    if app.db.revoke_device(&group_id, &device_id, now_millis()).await? {
        app.db.announce(Live::Revoked { device_id }, &app.events).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn delete_group<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path(group_id): Path<String>,
) -> ApiResult<StatusCode> {
    device.group(&group_id)?;
    app.db.delete_group(&group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a collection with its key check, or confirm the key: a device whose key check
/// differs from the stored one is refused (WrongKey) before it writes anything.
pub async fn put_collection<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
    Body(key_check): Body,
) -> ApiResult<StatusCode> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    if peek_kind(&key_check)? != RecordKind::KeyCheck || key_check.len() > 4096 {
        return Err(ApiError::InvalidRequest("the body must be a key check record".into()));
    }
    let stored = app.db.put_collection(&group_id, &tag, &key_check).await?;
    if stored == key_check.as_ref() {
        Ok(StatusCode::OK)
    } else if stored[6..14] != key_check[6..14] {
        Err(ApiError::WrongKey)
    } else {
        // Same key, another sealing of the check: the device can verify the stored one.
        Ok(StatusCode::OK)
    }
}

pub async fn get_collection<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    let c = app.db.collection(&group_id, &tag).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(serde_json::json!({
        "key_check": STANDARD.encode(&c.key_check),
        "snapshot_seq": c.snapshot_seq,
        "last_seq": c.last_seq,
        "bytes": c.bytes,
    })))
}

pub async fn delete_collection<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    if app.db.delete_collection(&group_id, &tag).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

pub async fn push<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
    Body(body): Body,
) -> ApiResult<Json<serde_json::Value>> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    let records = decode_push(&body, app.config.max_records_per_push, app.config.max_record_bytes)?;
    if records.is_empty() {
        return Err(ApiError::InvalidRequest("a push holds at least one record".into()));
    }
    for r in &records {
        if peek_kind(&r.record)? != RecordKind::Changes {
            return Err(ApiError::InvalidRequest("pushed records must be change records".into()));
        }
    }
    let sequences = app.db.push(&group_id, &tag, &records, app.config.group_quota_bytes).await?;
    let last_seq = sequences.iter().copied().max().unwrap_or(0) as i64;
    app.db.announce(Live::Records { group_id, tag, last_seq }, &app.events).await;
    Ok(Json(serde_json::json!({ "sequences": sequences })))
}

#[derive(Deserialize)]
pub struct After {
    #[serde(default)]
    after: i64,
}

pub async fn pull<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
    Query(q): Query<After>,
) -> ApiResult<Response> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    let page =
        app.db.pull(&group_id, &tag, q.after.max(0), app.config.pull_page_records, app.config.pull_page_bytes).await?;
    if q.after < page.snapshot_seq {
        return Err(ApiError::SnapshotRequired(page.snapshot_seq));
    }
    let mut headers = HeaderMap::new();
    let last_returned = page.records.last().map_or(q.after, |r| r.sequence as i64);
    headers.insert("likeness-last-seq", HeaderValue::from(page.last_seq));
    headers.insert(
        "likeness-more",
        HeaderValue::from_static(if last_returned < page.last_seq { "true" } else { "false" }),
    );
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok((headers, encode_pull(&page.records)).into_response())
}

#[derive(Deserialize)]
pub struct Covers {
    covers: i64,
}

pub async fn put_snapshot<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
    Query(q): Query<Covers>,
    Body(body): Body,
) -> ApiResult<StatusCode> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    if peek_kind(&body)? != RecordKind::Snapshot {
        return Err(ApiError::InvalidRequest("the body must be a snapshot record".into()));
    }
    app.db.put_snapshot(&group_id, &tag, q.covers, &body, app.config.group_quota_bytes).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_snapshot<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path((group_id, tag)): Path<(String, String)>,
) -> ApiResult<Response> {
    device.group(&group_id)?;
    check_tag(&tag)?;
    let (seq, record) = app.db.snapshot(&group_id, &tag).await?.ok_or(ApiError::NotFound)?;
    let mut headers = HeaderMap::new();
    headers.insert("likeness-snapshot-seq", HeaderValue::from(seq));
    headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok((headers, record).into_response())
}

/// Server-sent events: `records` with `{tag, last_seq}` whenever a collection of the group
/// gets records, within milliseconds of the push; `resync` if this listener fell behind.
/// The stream ends when its device is revoked (on any server process).
pub async fn events<D: Database>(
    State(app): AppState<D>,
    device: Device,
    Path(group_id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>>> {
    device.group(&group_id)?;
    let me = device.0.device_id;
    let stream = BroadcastStream::new(app.events.subscribe())
        .take_while(move |e| !matches!(e, Ok(Live::Revoked { device_id }) if *device_id == me))
        .filter_map(move |e| match e {
            Ok(Live::Records { group_id: g, tag, last_seq }) if g == group_id => Some(Ok(SseEvent::default()
                .event("records")
                .data(serde_json::json!({ "tag": tag, "last_seq": last_seq }).to_string()))),
            Ok(Live::Records { .. } | Live::Revoked { .. }) => None,
            Ok(Live::Resync) | Err(_) => Some(Ok(SseEvent::default().event("resync").data("{}"))),
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
