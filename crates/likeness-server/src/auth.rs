//! Device tokens and invite codes: random, shown once, stored only as SHA-256.

use crate::db::{Database, DeviceAuth};
use crate::error::{ApiError, ApiResult};
use crate::App;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2_next::{Digest, Sha256};
use std::sync::Arc;

/// `n` random bytes.
pub fn random_bytes(n: usize) -> ApiResult<Vec<u8>> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| ApiError::Internal(format!("no random source: {e}")))?;
    Ok(b)
}

/// A new secret (token or invite code): 32 random bytes, base64url.
pub fn new_secret() -> ApiResult<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(32)?))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random id of `n` bytes, hex.
pub fn new_id(n: usize) -> ApiResult<String> {
    Ok(hex(&random_bytes(n)?))
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The authenticated device of a request (`Authorization: Bearer <token>`).
pub struct Device(pub DeviceAuth);

impl<D: Database> FromRequestParts<Arc<App<D>>> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App<D>>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let hash = hash_secret(token);
        app.limits.per_token.check(&hash)?;
        match app.db.device_by_token(&hash).await? {
            Some(d) if !d.revoked => Ok(Device(d)),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

impl Device {
    /// The group in the path must be the device's own; any other group answers NotFound,
    /// as a group that does not exist would.
    pub fn group(&self, group_id: &str) -> ApiResult<()> {
        if self.0.group_id == group_id {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}
