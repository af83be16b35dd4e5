//! The group key at rest, wrapped under a passphrase.
//!
//! ```text
//! "LKWK" | version u8 (=1) | m_cost u32 (KiB) | t_cost u32 | p_cost u32 | salt [16] | nonce [24]
//! | XChaCha20-Poly1305(key derived with Argon2id) of the 32-byte group key, header as AD
//! ```
//!
//! The Argon2id parameters are stored beside the key so they can be raised later; when read
//! back they are bounded ([`MAX_M_COST_KIB`] and friends), so a crafted file cannot make a
//! device spend unbounded memory or time.

use crate::envelope::nonce_of;
use crate::error::{random, SyncError};
use crate::keys::GroupKey;
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;

const MAGIC: &[u8; 4] = b"LKWK";
const HEADER: usize = 4 + 1 + 12 + 16 + 24;
/// Argon2id memory read back at most (256 MiB).
pub const MAX_M_COST_KIB: u32 = 256 * 1024;
pub const MAX_T_COST: u32 = 16;
pub const MAX_P_COST: u32 = 4;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for Cost {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Cost { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 }
    }
}

fn derive(passphrase: &str, salt: &[u8], cost: Cost) -> Result<[u8; 32], SyncError> {
    let params = Params::new(cost.m_cost_kib, cost.t_cost, cost.p_cost, Some(32))
        .map_err(|e| SyncError::InvalidWrappedKey(format!("Argon2 parameters: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| SyncError::InvalidWrappedKey(format!("Argon2: {e}")))?;
    Ok(out)
}

/// Wrap `key` under `passphrase` with the default cost.
pub fn wrap(key: &GroupKey, passphrase: &str) -> Result<Vec<u8>, SyncError> {
    wrap_with(key, passphrase, Cost::default())
}

/// Wrap with a chosen cost (within the bounds [`unwrap`] accepts).
pub fn wrap_with(key: &GroupKey, passphrase: &str, cost: Cost) -> Result<Vec<u8>, SyncError> {
    check_cost(cost)?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.push(1);
    for v in [cost.m_cost_kib, cost.t_cost, cost.p_cost] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    let mut salt_nonce = [0u8; 40];
    random(&mut salt_nonce)?;
    header.extend_from_slice(&salt_nonce);
    let mut k = derive(passphrase, &salt_nonce[..16], cost)?;
    let sealed = XChaCha20Poly1305::new((&k).into())
        .encrypt(&nonce_of(&salt_nonce[16..])?, Payload { msg: key.as_bytes(), aad: &header })
        .map_err(|_| SyncError::InvalidWrappedKey("could not seal".into()));
    k.fill(0);
    header.extend_from_slice(&sealed?);
    Ok(header)
}

fn check_cost(cost: Cost) -> Result<(), SyncError> {
    if cost.m_cost_kib > MAX_M_COST_KIB || cost.t_cost > MAX_T_COST || cost.p_cost > MAX_P_COST {
        return Err(SyncError::InvalidWrappedKey(format!(
            "Argon2 cost {cost:?} exceeds the bounds ({MAX_M_COST_KIB} KiB, {MAX_T_COST} passes, {MAX_P_COST} lanes)"
        )));
    }
    Ok(())
}

/// Unwrap a stored key. A wrong passphrase is [`SyncError::WrongPassphrase`]; a malformed
/// file or unreasonable parameters are [`SyncError::InvalidWrappedKey`].
pub fn unwrap(wrapped: &[u8], passphrase: &str) -> Result<GroupKey, SyncError> {
    let bad = |m: &str| SyncError::InvalidWrappedKey(m.to_string());
    if wrapped.len() != HEADER + 32 + 16 {
        return Err(bad("wrong length"));
    }
    if &wrapped[..4] != MAGIC || wrapped[4] != 1 {
        return Err(bad("not a wrapped key of version 1"));
    }
    let u32_at = |i: usize| u32::from_le_bytes([wrapped[i], wrapped[i + 1], wrapped[i + 2], wrapped[i + 3]]);
    let cost = Cost { m_cost_kib: u32_at(5), t_cost: u32_at(9), p_cost: u32_at(13) };
    check_cost(cost)?;
    let (header, sealed) = wrapped.split_at(HEADER);
    let mut k = derive(passphrase, &header[17..33], cost)?;
    let opened = XChaCha20Poly1305::new((&k).into())
        .decrypt(&nonce_of(&header[33..])?, Payload { msg: sealed, aad: header })
        .map_err(|_| SyncError::WrongPassphrase);
    k.fill(0);
    let mut bytes = opened?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    bytes.fill(0);
    Ok(GroupKey::from_bytes(key))
}
