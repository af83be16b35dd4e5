//! # likeness-collections
//!
//! Rekognition's face collections as a pure Rust library: collections of faces and users,
//! exact similarity search, and replication-ready storage. It knows nothing of JavaScript or
//! HTTP, reads no clock and spawns no thread, and builds for `wasm32-unknown-unknown`.
//!
//! - [`service::Collections`]: every operation (CreateCollection ... SearchUsersByImage),
//!   with Rekognition's parameters, defaults, limits and exceptions ([`error`]).
//! - [`state`]: each collection is a CRDT of HLC-stamped operations ([`hlc`]); replicas
//!   merge to the same state in any order and exchange only deltas.
//! - [`codec`]: the versioned, checksummed binary format of snapshots and deltas.
//! - [`store`]: the persistence trait, with in-memory and directory implementations.
//! - [`search`]: canonical int8 codes (the one stored form of a vector) and exact top-k
//!   search over contiguous code rows, with SIMD kernels.
//!
//! The default feature `vision` adds the operations that run the vision engine on images.
//! Without it nothing links a model runtime: a server can hold, merge and search collections
//! with the same types.

pub mod api;
pub mod codec;
pub mod error;
pub mod hlc;
pub mod ids;
pub mod paging;
pub mod search;
pub mod service;
pub mod state;
pub mod store;
#[cfg(feature = "vision")]
pub mod video;

pub use api::*;
pub use error::{CollectionError, Result};
#[cfg(not(target_arch = "wasm32"))]
pub use hlc::SystemClock;
pub use hlc::{Clock, Hlc, ManualClock, ReplicaId, VersionVector};
pub use service::{Collections, VectorSpace};
#[cfg(not(target_arch = "wasm32"))]
pub use store::DirStore;
pub use store::{block_on, MemoryStore, PersistedCollection, Store};
