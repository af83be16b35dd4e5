//! Persistence behind one trait, so the same engine runs on a directory (native), in memory
//! (tests) and on IndexedDB (browser, in `likeness-wasm`).
//!
//! What is stored per collection is a snapshot plus the deltas written after it, all in the
//! [`codec`](crate::codec) format. Each mutation appends exactly one delta, atomically; the
//! engine folds deltas into a new snapshot when they outgrow half of it, so writing stays
//! amortised O(size of the change).
//!
//! The trait is async because IndexedDB is; native stores finish immediately and are driven
//! with [`block_on`].

use crate::error::{CollectionError, Result};

/// What a store holds for one collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistedCollection {
    pub collection_id: String,
    pub snapshot: Option<Vec<u8>>,
    pub deltas: Vec<Vec<u8>>,
}

#[allow(async_fn_in_trait)]
pub trait Store {
    /// Everything stored, for every collection.
    async fn load(&mut self) -> Result<Vec<PersistedCollection>>;
    /// Durably add one delta to a collection: all of it or none of it.
    async fn append(&mut self, collection_id: &str, delta: &[u8]) -> Result<()>;
    /// Atomically replace a collection's snapshot and drop its deltas.
    async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> Result<()>;
    /// Forget a collection entirely.
    async fn remove(&mut self, collection_id: &str) -> Result<()>;
    /// Whether anything written is kept. A store that keeps nothing (a browser engine with
    /// collections in memory only) is never reloaded, so the engine skips folding snapshots.
    fn persists(&self) -> bool {
        true
    }
}

/// Drive a future that never waits on anything external (the native stores') to completion.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// An in-memory store. `fail_writes` makes every write fail, to test that a failed write
/// leaves the engine unchanged.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    pub collections: std::collections::BTreeMap<String, PersistedCollection>,
    pub fail_writes: bool,
}

impl MemoryStore {
    fn check(&self) -> Result<()> {
        if self.fail_writes {
            Err(CollectionError::Storage("simulated storage failure".into()))
        } else {
            Ok(())
        }
    }
}

impl Store for MemoryStore {
    async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
        Ok(self.collections.values().cloned().collect())
    }
    async fn append(&mut self, collection_id: &str, delta: &[u8]) -> Result<()> {
        self.check()?;
        let c = self.collections.entry(collection_id.to_string()).or_default();
        c.collection_id = collection_id.to_string();
        c.deltas.push(delta.to_vec());
        Ok(())
    }
    async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> Result<()> {
        self.check()?;
        self.collections.insert(
            collection_id.to_string(),
            PersistedCollection {
                collection_id: collection_id.to_string(),
                snapshot: Some(snapshot.to_vec()),
                deltas: Vec::new(),
            },
        );
        Ok(())
    }
    async fn remove(&mut self, collection_id: &str) -> Result<()> {
        self.check()?;
        self.collections.remove(collection_id);
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use dir::DirStore;

#[cfg(not(target_arch = "wasm32"))]
mod dir {
    //! A directory per collection (`c-<CollectionId>`, so ids such as `..` stay inside the
    //! root), holding `snapshot.lkns` and `delta-<seq>.lkns`. Every file is written to a
    //! temporary name, fsynced, then renamed into place, so a crash leaves old or new, never
    //! half.

    use super::*;
    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    #[derive(Debug, Clone)]
    pub struct DirStore {
        root: PathBuf,
    }

    fn io(context: &str, path: &Path, e: std::io::Error) -> CollectionError {
        CollectionError::Storage(format!("{context} {}: {e}", path.display()))
    }

    impl DirStore {
        pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
            let root = root.into();
            fs::create_dir_all(&root).map_err(|e| io("cannot create store", &root, e))?;
            Ok(DirStore { root })
        }

        pub fn root(&self) -> &Path {
            &self.root
        }

        fn dir(&self, id: &str) -> PathBuf {
            self.root.join(format!("c-{id}"))
        }

        fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
            fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
            let tmp = dir.join(format!(".{name}.tmp"));
            let dest = dir.join(name);
            let mut f = fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
            f.write_all(bytes).map_err(|e| io("cannot write", &tmp, e))?;
            f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
            drop(f);
            fs::rename(&tmp, &dest).map_err(|e| io("cannot rename into", &dest, e))?;
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }

        fn delta_seqs(dir: &Path) -> Result<Vec<u64>> {
            let mut seqs = Vec::new();
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(seqs),
                Err(e) => return Err(io("cannot list", dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("cannot list", dir, e))?;
                let name = entry.file_name().to_string_lossy().to_string();
                if let Some(seq) = name.strip_prefix("delta-").and_then(|s| s.strip_suffix(".lkns")) {
                    if let Ok(n) = seq.parse::<u64>() {
                        seqs.push(n);
                    }
                }
            }
            seqs.sort_unstable();
            Ok(seqs)
        }
    }

    impl Store for DirStore {
        async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
            let mut out = Vec::new();
            let entries = fs::read_dir(&self.root).map_err(|e| io("cannot list", &self.root, e))?;
            let mut names: Vec<String> =
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
            names.sort();
            for name in names {
                let Some(id) = name.strip_prefix("c-") else { continue };
                let dir = self.root.join(&name);
                let snap_path = dir.join("snapshot.lkns");
                let snapshot = match fs::read(&snap_path) {
                    Ok(b) => Some(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(io("cannot read", &snap_path, e)),
                };
                let mut deltas = Vec::new();
                for seq in Self::delta_seqs(&dir)? {
                    let p = dir.join(format!("delta-{seq:016}.lkns"));
                    deltas.push(fs::read(&p).map_err(|e| io("cannot read", &p, e))?);
                }
                out.push(PersistedCollection { collection_id: id.to_string(), snapshot, deltas });
            }
            Ok(out)
        }

        async fn append(&mut self, collection_id: &str, delta: &[u8]) -> Result<()> {
            let dir = self.dir(collection_id);
            let next = Self::delta_seqs(&dir)?.last().map_or(0, |s| s + 1);
            Self::write_atomic(&dir, &format!("delta-{next:016}.lkns"), delta)
        }

        async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> Result<()> {
            let dir = self.dir(collection_id);
            let old = Self::delta_seqs(&dir)?;
            Self::write_atomic(&dir, "snapshot.lkns", snapshot)?;
            // The snapshot already holds these; removing them late or never is harmless.
            for seq in old {
                let _ = fs::remove_file(dir.join(format!("delta-{seq:016}.lkns")));
            }
            Ok(())
        }

        async fn remove(&mut self, collection_id: &str) -> Result<()> {
            let dir = self.dir(collection_id);
            match fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io("cannot remove", &dir, e)),
            }
        }
    }
}
