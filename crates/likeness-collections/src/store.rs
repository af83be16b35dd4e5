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
use std::future::Future;

/// `Send` natively, so a multi-threaded server can hold the engine across awaits; nothing on
/// wasm32, where IndexedDB handles are not `Send` and there is one thread anyway.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// What a store holds for one collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistedCollection {
    pub collection_id: String,
    pub snapshot: Option<Vec<u8>>,
    pub deltas: Vec<Vec<u8>>,
}

/// Persistence of collections. Implementations write with `async fn`; the futures are
/// `Send` natively ([`MaybeSend`]).
pub trait Store: MaybeSend {
    /// Everything stored, for every collection.
    fn load(&mut self) -> impl Future<Output = Result<Vec<PersistedCollection>>> + MaybeSend;
    /// Durably add one delta to a collection: all of it or none of it.
    fn append(&mut self, collection_id: &str, delta: &[u8]) -> impl Future<Output = Result<()>> + MaybeSend;
    /// Atomically replace a collection's snapshot and drop the deltas this store has loaded
    /// or written (a delta another writer added since stays).
    fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> impl Future<Output = Result<()>> + MaybeSend;
    /// Forget a collection entirely.
    fn remove(&mut self, collection_id: &str) -> impl Future<Output = Result<()>> + MaybeSend;
    /// Whether another writer changed the store since this one last loaded or wrote it.
    fn changed_elsewhere(&self) -> impl Future<Output = Result<bool>> + MaybeSend {
        async { Ok(false) }
    }
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
    //! root), holding `snapshot.lkns` and `delta-<random>.lkns`. Every file is written to a
    //! unique temporary name, fsynced, then renamed into place, so a crash leaves old or
    //! new, never half.
    //!
    //! Several processes may share one store. Writes take an exclusive lock on `<root>/lock`
    //! (an OS file lock, released if the process dies) and store a fresh random token in
    //! `<root>/token`, from which others tell that they must reload. A caller that reads,
    //! decides and writes (every mutation) holds the lock across all three with
    //! [`DirStore::lock`], so processes take turns and their clock stamps never collide.
    //! Deltas have random names (they commute, so order does not matter) and a fold removes
    //! only the deltas it has read.

    use super::*;
    use std::collections::BTreeSet;
    use std::fs;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct DirStore {
        root: PathBuf,
        /// The lock file while this store holds the lock.
        held: Option<fs::File>,
        /// Nested `lock` calls: the lock is released when the outermost ends.
        depth: usize,
        /// The token as this store last read or wrote it.
        seen_token: Option<String>,
        /// Delta file names loaded or written, per collection directory: what a fold covers.
        known: std::collections::BTreeMap<String, BTreeSet<String>>,
    }

    fn io(context: &str, path: &Path, e: std::io::Error) -> CollectionError {
        CollectionError::Storage(format!("{context} {}: {e}", path.display()))
    }

    fn random_hex<const N: usize>() -> Result<String> {
        let mut b = [0u8; N];
        getrandom::fill(&mut b).map_err(|e| CollectionError::Storage(format!("no randomness from the OS: {e}")))?;
        Ok(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    /// The store directory's identity (device and inode): a copy of the directory has
    /// another, so a cloned store is told apart from the original.
    #[cfg(unix)]
    fn identity(root: &Path) -> Result<String> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(root).map_err(|e| io("cannot stat", root, e))?;
        Ok(format!("{:x}:{:x}", m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    fn identity(_root: &Path) -> Result<String> {
        Ok(String::new())
    }

    impl DirStore {
        pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
            let root = root.into();
            fs::create_dir_all(&root).map_err(|e| io("cannot create store", &root, e))?;
            Ok(DirStore { root, held: None, depth: 0, seen_token: None, known: Default::default() })
        }

        pub fn root(&self) -> &Path {
            &self.root
        }

        fn dir(&self, id: &str) -> PathBuf {
            self.root.join(format!("c-{id}"))
        }

        /// Take the store's exclusive write lock (blocking until other processes release it).
        /// Calls nest; each must be paired with [`unlock`](Self::unlock).
        pub fn lock(&mut self) -> Result<()> {
            if self.depth == 0 {
                let path = self.root.join("lock");
                let f = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| io("cannot open", &path, e))?;
                f.lock().map_err(|e| io("cannot lock", &path, e))?;
                self.held = Some(f);
            }
            self.depth += 1;
            Ok(())
        }

        pub fn unlock(&mut self) {
            self.depth = self.depth.saturating_sub(1);
            if self.depth == 0 {
                // Dropping the file releases the lock.
                self.held = None;
            }
        }

        /// Run `f` holding the lock.
        fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
            self.lock()?;
            let out = f(self);
            self.unlock();
            out
        }

        /// This store's replica id: 64 random bits from the OS, created on first use and kept
        /// in `replica-id` with the directory's identity. A copied store directory (another
        /// identity) gets a fresh id, so the copy and the original never write as one replica.
        pub fn replica_id(&mut self) -> Result<u64> {
            self.locked(|s| {
                let path = s.root.join("replica-id");
                let here = identity(&s.root)?;
                if let Ok(text) = fs::read_to_string(&path) {
                    let mut parts = text.split_whitespace();
                    let id = parts.next().and_then(|h| u64::from_str_radix(h, 16).ok());
                    if let (Some(id), Some(owner)) = (id, parts.next()) {
                        if owner == here {
                            return Ok(id);
                        }
                    }
                }
                let mut b = [0u8; 8];
                getrandom::fill(&mut b)
                    .map_err(|e| CollectionError::Storage(format!("no randomness from the OS: {e}")))?;
                let id = u64::from_le_bytes(b);
                Self::write_atomic(&s.root, "replica-id", format!("{id:016x} {here}\n").as_bytes())?;
                Ok(id)
            })
        }

        fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
            fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
            let tmp = dir.join(format!(".{name}.{}.tmp", random_hex::<8>()?));
            let dest = dir.join(name);
            let written = (|| {
                let mut f = fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
                f.write_all(bytes).map_err(|e| io("cannot write", &tmp, e))?;
                f.sync_all().map_err(|e| io("cannot sync", &tmp, e))?;
                drop(f);
                fs::rename(&tmp, &dest).map_err(|e| io("cannot rename into", &dest, e))
            })();
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            written?;
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }

        fn read_token(&self) -> Option<String> {
            fs::read_to_string(self.root.join("token")).ok()
        }

        /// Record a write for other processes to notice. A store that was already behind
        /// stays behind: writing does not mean it has read what others wrote.
        fn bump_token(&mut self) -> Result<()> {
            let behind = self.read_token() != self.seen_token;
            let token = random_hex::<16>()?;
            Self::write_atomic(&self.root, "token", token.as_bytes())?;
            self.seen_token = if behind { None } else { Some(token) };
            Ok(())
        }

        fn delta_names(dir: &Path) -> Result<Vec<String>> {
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io("cannot list", dir, e)),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io("cannot list", dir, e))?;
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("delta-") && name.ends_with(".lkns") {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        }
    }

    impl Store for DirStore {
        async fn load(&mut self) -> Result<Vec<PersistedCollection>> {
            self.locked(|s| {
                let mut out = Vec::new();
                let entries = fs::read_dir(&s.root).map_err(|e| io("cannot list", &s.root, e))?;
                let mut names: Vec<String> =
                    entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
                names.sort();
                s.known.clear();
                for name in names {
                    let Some(id) = name.strip_prefix("c-") else { continue };
                    let dir = s.root.join(&name);
                    let snap_path = dir.join("snapshot.lkns");
                    let snapshot = match fs::read(&snap_path) {
                        Ok(b) => Some(b),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(io("cannot read", &snap_path, e)),
                    };
                    let mut deltas = Vec::new();
                    let delta_names = Self::delta_names(&dir)?;
                    for d in &delta_names {
                        let p = dir.join(d);
                        deltas.push(fs::read(&p).map_err(|e| io("cannot read", &p, e))?);
                    }
                    s.known.insert(id.to_string(), delta_names.into_iter().collect());
                    out.push(PersistedCollection { collection_id: id.to_string(), snapshot, deltas });
                }
                s.seen_token = s.read_token();
                Ok(out)
            })
        }

        async fn append(&mut self, collection_id: &str, delta: &[u8]) -> Result<()> {
            self.locked(|s| {
                let dir = s.dir(collection_id);
                let name = format!("delta-{}.lkns", random_hex::<16>()?);
                Self::write_atomic(&dir, &name, delta)?;
                s.known.entry(collection_id.to_string()).or_default().insert(name);
                s.bump_token()
            })
        }

        async fn replace(&mut self, collection_id: &str, snapshot: &[u8]) -> Result<()> {
            self.locked(|s| {
                // A snapshot holds what this store has read; if another process wrote since,
                // replacing the stored snapshot could drop what that process folded into it.
                if s.read_token() != s.seen_token {
                    return Err(CollectionError::Storage(
                        "another process changed the store; reload before folding".into(),
                    ));
                }
                let dir = s.dir(collection_id);
                Self::write_atomic(&dir, "snapshot.lkns", snapshot)?;
                // The snapshot holds exactly the deltas this store read or wrote; a delta another
                // process added since is not in it and stays.
                for name in s.known.remove(collection_id).unwrap_or_default() {
                    let _ = fs::remove_file(dir.join(name));
                }
                s.bump_token()
            })
        }

        async fn remove(&mut self, collection_id: &str) -> Result<()> {
            self.locked(|s| {
                let dir = s.dir(collection_id);
                match fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("cannot remove", &dir, e)),
                }
                s.known.remove(collection_id);
                s.bump_token()
            })
        }

        async fn changed_elsewhere(&self) -> Result<bool> {
            Ok(self.read_token() != self.seen_token)
        }
    }
}
