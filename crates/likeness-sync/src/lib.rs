//! # likeness-sync
//!
//! What a device needs to sync collections through a server that must never learn a face:
//! the keys, the sealed record format, and the checks a client runs on everything the server
//! returns. Pure Rust, no I/O, builds for `wasm32-unknown-unknown` (the browser package and
//! the CLI share it; only their transports differ).
//!
//! - [`keys`]: a random 256-bit group key per sync group, shown once as a recovery phrase;
//!   per collection, an opaque tag (the server's name for it) and an encryption key, both
//!   derived with HKDF-SHA256, and a key check record that tells a device it holds the wrong
//!   key before it writes anything.
//! - [`envelope`]: records sealed with XChaCha20-Poly1305. The associated data binds the
//!   group, the collection tag, the key id and the record kind, so the server cannot move a
//!   record to another collection or group, or pass a snapshot off as a delta. Plaintext is
//!   padded to size buckets, so lengths do not reveal face counts exactly. Each record carries
//!   its writer's device id and counter; [`envelope::ReplayGuard`] refuses a record replayed
//!   at a later place in the log.
//! - [`client`]: the sync state machine both clients run over their own transport.
//! - [`protocol`]: the binary push and pull bodies (batched, idempotent by push id).
//! - [`passphrase`]: the group key wrapped under a passphrase (Argon2id, parameters stored
//!   beside it and bounded when read back) for keeping it at rest.
//!
//! Every decoder here takes bytes from the network or from storage: each defect is a typed
//! [`SyncError`], never a panic (fuzzed in `fuzz/`).

pub mod client;
pub mod envelope;
pub mod error;
pub mod keys;
pub mod passphrase;
pub mod protocol;

pub use envelope::{open, seal, Opened, RecordKind, ReplayGuard};
pub use error::SyncError;
pub use keys::{CollectionKeys, GroupKey};
