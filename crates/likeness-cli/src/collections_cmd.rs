//! Collection subcommands over a native store directory.

use clap::Subcommand;
use likeness_collections::{
    block_on, AssociateFacesInput, CollectionError, Collections, DirStore, IndexFacesInput, ListCollectionsInput,
    ListFacesInput, SystemClock, VectorSpace,
};
use likeness_vision::{FaceEngine, ImageInput, QualityFilter};
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
    /// IndexFaces: detect the faces of an image and add them to a collection.
    IndexFaces {
        #[arg(long)]
        collection_id: String,
        #[arg(long)]
        image: PathBuf,
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

/// This store's replica id, created on first use. Unique enough across devices: a hash of
/// the time, the process id and the path.
fn replica_id(store: &Path) -> Result<u64, CollectionError> {
    let path = store.join("replica-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(id) = u64::from_str_radix(text.trim(), 16) {
            return Ok(id);
        }
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    store.hash(&mut h);
    let id = h.finish();
    std::fs::create_dir_all(store)
        .map_err(|e| CollectionError::Storage(format!("cannot create {}: {e}", store.display())))?;
    std::fs::write(&path, format!("{id:016x}\n"))
        .map_err(|e| CollectionError::Storage(format!("cannot write {}: {e}", path.display())))?;
    Ok(id)
}

fn read(path: &Path) -> Result<Vec<u8>, CollectionError> {
    std::fs::read(path).map_err(|e| CollectionError::InvalidParameter(format!("cannot read {}: {e}", path.display())))
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, CollectionError> {
    serde_json::to_value(v).map_err(|e| CollectionError::Internal(e.to_string()))
}

/// Run one collection command; returns the Rekognition-shaped response.
pub fn run(store_dir: &Path, command: CollectionCommand) -> Result<serde_json::Value, CollectionError> {
    let engine = || FaceEngine::embedded().map_err(CollectionError::from);
    let space = likeness_vision_space()?;
    let store = DirStore::open(store_dir)?;
    let mut c = block_on(Collections::open(store, Box::new(SystemClock), replica_id(store_dir)?, space))?;
    use CollectionCommand::*;
    match command {
        CreateCollection { collection_id } => json(&block_on(c.create_collection(&collection_id))?),
        DeleteCollection { collection_id } => json(&block_on(c.delete_collection(&collection_id))?),
        DescribeCollection { collection_id } => json(&c.describe_collection(&collection_id)?),
        ListCollections { max_results, next_token } => {
            json(&c.list_collections(&ListCollectionsInput { next_token, max_results })?)
        }
        IndexFaces { collection_id, image, external_image_id, max_faces, quality_filter } => {
            let bytes = read(&image)?;
            let input = IndexFacesInput { collection_id, external_image_id, max_faces, quality_filter };
            json(&block_on(c.index_faces_image(&engine()?, input, ImageInput::Encoded(&bytes)))?)
        }
        ListFaces { collection_id, max_results, next_token, user_id, face_ids } => {
            json(&c.list_faces(&ListFacesInput { collection_id, next_token, max_results, user_id, face_ids })?)
        }
        DeleteFaces { collection_id, face_ids } => json(&block_on(c.delete_faces(&collection_id, &face_ids))?),
        SearchFaces { collection_id, face_id, face_match_threshold, max_faces } => {
            json(&c.search_faces(&collection_id, &face_id, face_match_threshold, max_faces)?)
        }
        SearchFacesByImage { collection_id, image, face_match_threshold, max_faces, quality_filter } => {
            let bytes = read(&image)?;
            json(&c.search_faces_by_image(
                &engine()?,
                &collection_id,
                ImageInput::Encoded(&bytes),
                face_match_threshold,
                max_faces,
                quality_filter,
            )?)
        }
        CreateUser { collection_id, user_id, client_request_token } => {
            json(&block_on(c.create_user(&collection_id, &user_id, client_request_token.as_deref()))?)
        }
        DeleteUser { collection_id, user_id, client_request_token } => {
            json(&block_on(c.delete_user(&collection_id, &user_id, client_request_token.as_deref()))?)
        }
        ListUsers { collection_id, max_results, next_token } => {
            json(&c.list_users(&collection_id, max_results, next_token.as_deref())?)
        }
        AssociateFaces { collection_id, user_id, face_ids, user_match_threshold, client_request_token } => {
            json(&block_on(c.associate_faces(AssociateFacesInput {
                collection_id,
                user_id,
                face_ids,
                user_match_threshold,
                client_request_token,
            }))?)
        }
        DisassociateFaces { collection_id, user_id, face_ids, client_request_token } => {
            json(&block_on(c.disassociate_faces(&collection_id, &user_id, &face_ids, client_request_token.as_deref()))?)
        }
        SearchUsers { collection_id, user_id, face_id, user_match_threshold, max_users } => json(&c.search_users(
            &collection_id,
            user_id.as_deref(),
            face_id.as_deref(),
            user_match_threshold,
            max_users,
        )?),
        SearchUsersByImage { collection_id, image, user_match_threshold, max_users, quality_filter } => {
            let bytes = read(&image)?;
            json(&c.search_users_by_image(
                &engine()?,
                &collection_id,
                ImageInput::Encoded(&bytes),
                user_match_threshold,
                max_users,
                quality_filter,
            )?)
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
