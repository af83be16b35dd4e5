//! Collection subcommands over a native store directory.
//!
//! Each command becomes the operation's request type from `likeness_collections::api` and is
//! dispatched once. Image work (detect, select, embed) runs before the store's write lock is
//! taken; each mutation then holds the lock while it reloads what other `likeness` processes
//! wrote, decides and writes, so processes sharing a store take turns and lose nothing.

use clap::Subcommand;
use likeness_collections::service::{prepare_index_faces, prepare_search};
use likeness_collections::{
    block_on, AssociateFacesInput, CollectionError, CollectionInput, Collections, DeleteFacesInput, DirStore,
    DisassociateFacesInput, IndexFacesInput, ListCollectionsInput, ListFacesInput, ListUsersInput,
    SearchFacesByImageInput, SearchFacesInput, SearchUsersByImageInput, SearchUsersInput, SystemClock, UserInput,
    VectorSpace,
};
use likeness_vision::{FaceEngine, ImageInput, QualityFilter};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum CollectionCommand {
    /// CreateCollection.
    CreateCollection {
        #[arg(long)]
        collection_id: String,
    },
    /// DeleteCollection.
    DeleteCollection {
        #[arg(long)]
        collection_id: String,
    },
    /// DescribeCollection.
    DescribeCollection {
        #[arg(long)]
        collection_id: String,
    },
    /// ListCollections.
    ListCollections {
        #[arg(long)]
        max_results: Option<u32>,
        #[arg(long)]
        next_token: Option<String>,
    },
    /// IndexFaces: detect the faces of images and add them to a collection. Several
    /// `--image` paths or a directory (its image files) index many photos in one run, with
    /// progress on a terminal and a summary at the end.
    IndexFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long, num_args = 1.., required = true)]
        image: Vec<PathBuf>,
        #[arg(long)]
        external_image_id: Option<String>,
        #[arg(long)]
        max_faces: Option<u32>,
        #[arg(long, value_parser = parse_quality_filter)]
        quality_filter: Option<QualityFilter>,
    },
    /// ListFaces.
    ListFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        max_results: Option<u32>,
        #[arg(long)]
        next_token: Option<String>,
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long, num_args = 1..)]
        face_ids: Option<Vec<String>>,
    },
    /// DeleteFaces.
    DeleteFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long, num_args = 1.., required = true)]
        face_ids: Vec<String>,
    },
    /// SearchFaces: faces like a stored face.
    SearchFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        face_id: String,
        #[arg(long)]
        face_match_threshold: Option<f32>,
        #[arg(long)]
        max_faces: Option<u32>,
    },
    /// SearchFacesByImage: faces like the largest face of an image.
    SearchFacesByImage {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        image: PathBuf,
        #[arg(long)]
        face_match_threshold: Option<f32>,
        #[arg(long)]
        max_faces: Option<u32>,
        #[arg(long, value_parser = parse_quality_filter)]
        quality_filter: Option<QualityFilter>,
    },
    /// CreateUser.
    CreateUser {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        client_request_token: Option<String>,
    },
    /// DeleteUser.
    DeleteUser {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        client_request_token: Option<String>,
    },
    /// ListUsers.
    ListUsers {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        max_results: Option<u32>,
        #[arg(long)]
        next_token: Option<String>,
    },
    /// AssociateFaces.
    AssociateFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long, num_args = 1.., required = true)]
        face_ids: Vec<String>,
        #[arg(long)]
        user_match_threshold: Option<f32>,
        #[arg(long)]
        client_request_token: Option<String>,
    },
    /// DisassociateFaces.
    DisassociateFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        user_id: String,
        #[arg(long, num_args = 1.., required = true)]
        face_ids: Vec<String>,
        #[arg(long)]
        client_request_token: Option<String>,
    },
    /// SearchUsers by a stored user or face.
    SearchUsers {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long)]
        face_id: Option<String>,
        #[arg(long)]
        user_match_threshold: Option<f32>,
        #[arg(long)]
        max_users: Option<u32>,
    },
    /// SearchUsersByImage.
    SearchUsersByImage {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        image: PathBuf,
        #[arg(long)]
        user_match_threshold: Option<f32>,
        #[arg(long)]
        max_users: Option<u32>,
        #[arg(long, value_parser = parse_quality_filter)]
        quality_filter: Option<QualityFilter>,
    },
}

fn parse_quality_filter(s: &str) -> Result<QualityFilter, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase()))
        .map_err(|_| format!("{s:?} is not one of NONE, AUTO, LOW, MEDIUM, HIGH"))
}

/// The default store: `$XDG_DATA_HOME/likeness`, else `~/.local/share/likeness`.
pub fn default_store() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("likeness");
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".local/share/likeness")
}

fn read(path: &Path) -> Result<Vec<u8>, CollectionError> {
    std::fs::read(path).map_err(|e| CollectionError::InvalidParameter(format!("cannot read {}: {e}", path.display())))
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, CollectionError> {
    serde_json::to_value(v).map_err(|e| CollectionError::Internal(e.to_string()))
}

pub(crate) type Engine = Collections<DirStore>;

/// Run `op` holding the store's write lock, on state that includes every other process's writes.
pub(crate) fn with_lock<T>(
    c: &mut Engine,
    op: impl FnOnce(&mut Engine) -> Result<T, CollectionError>,
) -> Result<T, CollectionError> {
    locked(c, op)
}

/// The store's collections, opened with this device's replica id.
pub(crate) fn open_engine(store_dir: &Path) -> Result<Engine, CollectionError> {
    let mut store = DirStore::open(store_dir)?;
    let replica = store.replica_id()?;
    block_on(Collections::open(store, Box::new(SystemClock), replica, likeness_vision_space()?))
}

fn locked<T>(c: &mut Engine, op: impl FnOnce(&mut Engine) -> Result<T, CollectionError>) -> Result<T, CollectionError> {
    c.store_mut().lock()?;
    let out = block_on(c.refresh()).and_then(|_| op(c));
    c.store_mut().unlock();
    out
}

/// Image files named on the command line: files as given, directories as their image files
/// (sorted, not recursive).
fn image_paths(args: &[PathBuf]) -> Result<Vec<PathBuf>, CollectionError> {
    const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "jfif"];
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let entries = std::fs::read_dir(arg)
                .map_err(|e| CollectionError::InvalidParameter(format!("cannot list {}: {e}", arg.display())))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(arg.clone());
        }
    }
    if out.is_empty() {
        return Err(CollectionError::InvalidParameter("no image files found".into()));
    }
    Ok(out)
}

/// A progress line on stderr, only when it is a terminal.
struct Progress {
    on: bool,
}

impl Progress {
    fn show(&self, done: usize, total: usize, indexed: usize, unindexed: usize, failed: usize) {
        if self.on {
            eprint!("\r\x1b[2Kindexing {done}/{total} images: {indexed} faces indexed, {unindexed} unindexed, {failed} failed");
            let _ = std::io::stderr().flush();
        }
    }
    fn end(&self) {
        if self.on {
            eprintln!();
        }
    }
}

/// IndexFaces over one image (Rekognition's response) or many (a summary of each).
fn index_faces(
    c: &mut Engine,
    engine: &FaceEngine,
    input: IndexFacesInput,
    images: &[PathBuf],
) -> Result<serde_json::Value, CollectionError> {
    c.collection(&input.collection_id)?;
    let paths = image_paths(images)?;
    let one = |c: &mut Engine, path: &Path| -> Result<likeness_collections::IndexFacesOutput, CollectionError> {
        let bytes = read(path)?;
        let prepared = prepare_index_faces(engine, &input, ImageInput::Encoded(&bytes))?;
        locked(c, |c| block_on(c.index_faces_prepared(&input, prepared)))
    };
    if paths.len() == 1 && !images[0].is_dir() {
        return json(&one(c, &paths[0])?);
    }
    let progress = Progress { on: std::io::stderr().is_terminal() };
    let (mut indexed, mut unindexed, mut failed) = (0, 0, 0);
    let mut results = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        progress.show(i, paths.len(), indexed, unindexed, failed);
        let entry = match one(c, path) {
            Ok(out) => {
                indexed += out.face_records.len();
                unindexed += out.unindexed_faces.len();
                serde_json::json!({
                    "Image": path.display().to_string(),
                    "FaceIds": out.face_records.iter().map(|r| r.face.face_id.clone()).collect::<Vec<_>>(),
                    "UnindexedFaces": out.unindexed_faces.iter().map(|u| &u.reasons).collect::<Vec<_>>(),
                })
            }
            Err(
                e @ (CollectionError::Storage(_) | CollectionError::Internal(_) | CollectionError::ResourceNotFound(_)),
            ) => {
                // The store or the collection failed: later images would fail the same way.
                progress.end();
                return Err(e);
            }
            Err(e) => {
                failed += 1;
                serde_json::json!({
                    "Image": path.display().to_string(),
                    "Error": { "Code": e.exception_name(), "Message": e.message() },
                })
            }
        };
        results.push(entry);
    }
    progress.show(paths.len(), paths.len(), indexed, unindexed, failed);
    progress.end();
    Ok(serde_json::json!({
        "Images": results,
        "Summary": {
            "Images": paths.len(),
            "FacesIndexed": indexed,
            "FacesUnindexed": unindexed,
            "ImagesFailed": failed,
        },
    }))
}

/// Run one collection command; returns the Rekognition-shaped response.
pub fn run(store_dir: &Path, command: CollectionCommand) -> Result<serde_json::Value, CollectionError> {
    let engine = || FaceEngine::embedded().map_err(CollectionError::from);
    let mut c = open_engine(store_dir)?;
    use CollectionCommand::*;
    let collection = |collection_id| CollectionInput { collection_id };
    match command {
        CreateCollection { collection_id } => {
            json(&locked(&mut c, |c| block_on(c.create_collection(&collection(collection_id))))?)
        }
        DeleteCollection { collection_id } => {
            json(&locked(&mut c, |c| block_on(c.delete_collection(&collection(collection_id))))?)
        }
        DescribeCollection { collection_id } => json(&c.describe_collection(&collection(collection_id))?),
        ListCollections { max_results, next_token } => {
            json(&c.list_collections(&ListCollectionsInput { next_token, max_results })?)
        }
        IndexFaces { collection_id, image, external_image_id, max_faces, quality_filter } => {
            let input = IndexFacesInput { collection_id, external_image_id, max_faces, quality_filter };
            index_faces(&mut c, &engine()?, input, &image)
        }
        ListFaces { collection_id, max_results, next_token, user_id, face_ids } => {
            json(&c.list_faces(&ListFacesInput { collection_id, next_token, max_results, user_id, face_ids })?)
        }
        DeleteFaces { collection_id, face_ids } => {
            let input = DeleteFacesInput { collection_id, face_ids };
            json(&locked(&mut c, |c| block_on(c.delete_faces(&input)))?)
        }
        SearchFaces { collection_id, face_id, face_match_threshold, max_faces } => {
            json(&c.search_faces(&SearchFacesInput { collection_id, face_id, face_match_threshold, max_faces })?)
        }
        SearchFacesByImage { collection_id, image, face_match_threshold, max_faces, quality_filter } => {
            let input = SearchFacesByImageInput { collection_id, face_match_threshold, max_faces, quality_filter };
            c.collection(&input.collection_id)?;
            let prepared = prepare_search(&engine()?, ImageInput::Encoded(&read(&image)?), false)?;
            json(&c.search_faces_prepared(&input, &prepared)?)
        }
        CreateUser { collection_id, user_id, client_request_token } => {
            let input = UserInput { collection_id, user_id, client_request_token };
            json(&locked(&mut c, |c| block_on(c.create_user(&input)))?)
        }
        DeleteUser { collection_id, user_id, client_request_token } => {
            let input = UserInput { collection_id, user_id, client_request_token };
            json(&locked(&mut c, |c| block_on(c.delete_user(&input)))?)
        }
        ListUsers { collection_id, max_results, next_token } => {
            json(&c.list_users(&ListUsersInput { collection_id, max_results, next_token })?)
        }
        AssociateFaces { collection_id, user_id, face_ids, user_match_threshold, client_request_token } => {
            let input =
                AssociateFacesInput { collection_id, user_id, face_ids, user_match_threshold, client_request_token };
            json(&locked(&mut c, |c| block_on(c.associate_faces(&input)))?)
        }
        DisassociateFaces { collection_id, user_id, face_ids, client_request_token } => {
            let input = DisassociateFacesInput { collection_id, user_id, face_ids, client_request_token };
            json(&locked(&mut c, |c| block_on(c.disassociate_faces(&input)))?)
        }
        SearchUsers { collection_id, user_id, face_id, user_match_threshold, max_users } => {
            json(&c.search_users(&SearchUsersInput {
                collection_id,
                user_id,
                face_id,
                user_match_threshold,
                max_users,
            })?)
        }
        SearchUsersByImage { collection_id, image, user_match_threshold, max_users, quality_filter } => {
            let input = SearchUsersByImageInput { collection_id, user_match_threshold, max_users, quality_filter };
            c.collection(&input.collection_id)?;
            let prepared = prepare_search(&engine()?, ImageInput::Encoded(&read(&image)?), true)?;
            json(&c.search_users_prepared(&input, &prepared)?)
        }
    }
}

/// The vector space of the embedded models, known without loading them.
fn likeness_vision_space() -> Result<VectorSpace, CollectionError> {
    Ok(VectorSpace {
        face_model_version: likeness_vision::FACE_MODEL_VERSION.to_string(),
        dimension: likeness_vision::embedder::EMBEDDING_DIMENSION,
        calibration: likeness_vision::Calibration::default(),
    })
}
