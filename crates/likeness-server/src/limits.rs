//! Limits: sizes, quotas, and request rates (token buckets per key).

use crate::error::{ApiError, ApiResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every limit the server enforces, each refused with a typed error.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (a push batch or a snapshot).
    pub max_body_bytes: usize,
    pub max_records_per_push: usize,
    pub max_record_bytes: usize,
    /// Bytes a group may store (records, snapshots).
    pub group_quota_bytes: i64,
    /// Records per pull page, and bytes per page.
    pub pull_page_records: i64,
    pub pull_page_bytes: i64,
    pub invite_ttl: Duration,
    /// Requests per second (sustained, burst) per token, and per IP on the routes that
    /// create credentials (create group, join).
    pub per_token: (f64, f64),
    pub per_ip_auth: (f64, f64),
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_records_per_push: 1000,
            max_record_bytes: 64 << 20,
            group_quota_bytes: 1 << 30,
            pull_page_records: 1000,
            pull_page_bytes: 8 << 20,
            invite_ttl: Duration::from_secs(15 * 60),
            per_token: (50.0, 200.0),
            per_ip_auth: (1.0, 10.0),
            request_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Token buckets keyed by client (token hash or IP address).
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new((rate, burst): (f64, f64)) -> Self {
        RateLimiter { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Take one request from `key`'s bucket, or refuse with RateLimited.
    pub fn check(&self, key: &K) -> ApiResult<()> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().map_err(|_| ApiError::Internal("rate limiter poisoned".into()))?;
        if buckets.len() > 100_000 {
            // Forget full buckets, so the map does not grow without bound.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens < 1.0 {
            return Err(ApiError::RateLimited);
        }
        *tokens -= 1.0;
        Ok(())
    }
}

/// The limiters of one server.
pub struct Limiters {
    pub per_token: RateLimiter<Vec<u8>>,
    pub per_ip_auth: RateLimiter<std::net::IpAddr>,
}

impl Limiters {
    pub fn new(l: &Limits) -> Self {
        Limiters { per_token: RateLimiter::new(l.per_token), per_ip_auth: RateLimiter::new(l.per_ip_auth) }
    }
}
