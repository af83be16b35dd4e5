//! One Rekognition operation: its name from `X-Amz-Target`, its body split into the images
//! and the shared input type of `likeness-collections` (`api.rs`), and one dispatch.

use super::error::AwsError;
use super::{Images, Tenant};
use base64::Engine as _;
use likeness_collections::service::{prepare_index_faces, prepare_search, PreparedImage};
use likeness_collections::{
    block_on, Collections, DirStore, IndexFacesInput, SearchFacesByImageInput, SearchUsersByImageInput,
};
use likeness_vision::{FaceEngine, ImageInput, DEFAULT_SIMILARITY_THRESHOLD};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The operations served: every one the engines have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateCollection,
    DeleteCollection,
    DescribeCollection,
    ListCollections,
    IndexFaces,
    ListFaces,
    DeleteFaces,
    SearchFaces,
    SearchFacesByImage,
    CreateUser,
    DeleteUser,
    ListUsers,
    AssociateFaces,
    DisassociateFaces,
    SearchUsers,
    SearchUsersByImage,
    CompareFaces,
    DetectFaces,
}

impl Operation {
    const ALL: [Operation; 18] = [
        Operation::CreateCollection,
        Operation::DeleteCollection,
        Operation::DescribeCollection,
        Operation::ListCollections,
        Operation::IndexFaces,
        Operation::ListFaces,
        Operation::DeleteFaces,
        Operation::SearchFaces,
        Operation::SearchFacesByImage,
        Operation::CreateUser,
        Operation::DeleteUser,
        Operation::ListUsers,
        Operation::AssociateFaces,
        Operation::DisassociateFaces,
        Operation::SearchUsers,
        Operation::SearchUsersByImage,
        Operation::CompareFaces,
        Operation::DetectFaces,
    ];

    /// From `X-Amz-Target: RekognitionService.<Operation>`.
    pub fn from_target(target: Option<&str>) -> Result<Self, AwsError> {
        let name = target.and_then(|t| t.strip_prefix("RekognitionService.")).unwrap_or_default();
        Self::ALL.into_iter().find(|op| format!("{op:?}") == name).ok_or_else(|| {
            AwsError::new(
                "UnknownOperationException",
                format!("Likeness does not serve the operation {:?}", target.unwrap_or("(no X-Amz-Target)")),
            )
        })
    }

    /// Whether the operation runs the vision engine (and so takes a slot of the image pool).
    pub fn uses_images(self) -> bool {
        matches!(
            self,
            Operation::IndexFaces
                | Operation::SearchFacesByImage
                | Operation::SearchUsersByImage
                | Operation::CompareFaces
                | Operation::DetectFaces
        )
    }
}

/// The request body's members, taken out one by one.
pub struct Body(Map<String, Value>);

impl Body {
    pub fn parse(bytes: &[u8]) -> Result<Self, AwsError> {
        let bytes = if bytes.is_empty() { b"{}".as_slice() } else { bytes };
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            _ => Err(AwsError::new("SerializationException", "the request body is not a JSON object")),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    /// The rest of the members as the shared input type (unknown members refused).
    fn input<T: DeserializeOwned>(self) -> Result<T, AwsError> {
        serde_json::from_value(Value::Object(self.0)).map_err(|e| AwsError::invalid_parameter(e.to_string()))
    }

    /// An `Image` member: `Bytes` (base64 on the wire) or an `S3Object` the operator mapped.
    fn image(&mut self, name: &str, images: &Images) -> Result<Vec<u8>, AwsError> {
        let image = self.take(name).ok_or_else(|| AwsError::invalid_parameter(format!("{name} is required")))?;
        let Value::Object(mut image) = image else {
            return Err(AwsError::invalid_parameter(format!("{name} must be an object")));
        };
        match (image.remove("Bytes"), image.remove("S3Object")) {
            (Some(Value::String(b64)), None) if image.is_empty() => {
                // Base64 is 4/3 of the bytes: refuse before decoding an oversize image.
                if b64.len() / 4 * 3 > images.max_bytes + 3 {
                    return Err(too_large(images.max_bytes));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| AwsError::invalid_parameter(format!("{name}.Bytes is not base64")))?;
                if bytes.len() > images.max_bytes {
                    return Err(too_large(images.max_bytes));
                }
                Ok(bytes)
            }
            (None, Some(Value::Object(s3))) if image.is_empty() => images.read_s3(&s3),
            _ => Err(AwsError::invalid_parameter(format!("{name} needs exactly one of Bytes and S3Object"))),
        }
    }

    /// A member Likeness accepts only at its default value.
    fn only_default(&mut self, name: &str, allowed: &[Value]) -> Result<(), AwsError> {
        match self.take(name) {
            Some(v) if !allowed.contains(&v) => Err(AwsError::invalid_parameter(format!(
                "{name} = {v} is not supported here (Likeness returns the DEFAULT attributes)"
            ))),
            _ => Ok(()),
        }
    }
}

fn too_large(max: usize) -> AwsError {
    AwsError::new("ImageTooLargeException", format!("the image is larger than {max} bytes"))
}

fn json<T: serde::Serialize>(v: T) -> Result<Value, AwsError> {
    serde_json::to_value(v).map_err(|e| AwsError::internal(e.to_string()))
}

/// A mutation under the tenant's write lock and its store's file lock (so a CLI on the
/// same directory waits its turn), after reloading what others wrote.
fn write<T>(
    tenant: &Tenant,
    op: impl FnOnce(&mut Collections<DirStore>) -> likeness_collections::Result<T>,
) -> Result<T, AwsError> {
    let mut c = tenant.collections.write().map_err(|_| AwsError::internal("a previous request panicked"))?;
    c.store_mut().lock()?;
    let out = block_on(c.refresh()).and_then(|_| op(&mut c));
    c.store_mut().unlock();
    Ok(out?)
}

fn read<T>(
    tenant: &Tenant,
    op: impl FnOnce(&Collections<DirStore>) -> likeness_collections::Result<T>,
) -> Result<T, AwsError> {
    let c = tenant.collections.read().map_err(|_| AwsError::internal("a previous request panicked"))?;
    Ok(op(&c)?)
}

type Tenants = Collections<DirStore>;

/// A read-only operation: the body as its input, answered under the read lock.
fn reading<I: DeserializeOwned, O: serde::Serialize>(
    body: Body,
    tenant: &Tenant,
    op: impl FnOnce(&Tenants, &I) -> likeness_collections::Result<O>,
) -> Result<Value, AwsError> {
    let input: I = body.input()?;
    json(read(tenant, |c| op(c, &input))?)
}

/// A mutation: the body as its input, applied under the write and file locks.
fn writing<I: DeserializeOwned, O: serde::Serialize>(
    body: Body,
    tenant: &Tenant,
    op: impl FnOnce(&mut Tenants, &I) -> likeness_collections::Result<O>,
) -> Result<Value, AwsError> {
    let input: I = body.input()?;
    json(write(tenant, |c| op(c, &input))?)
}

/// A search by image: the collection checked first (no image work for a missing one), the
/// image's largest face embedded outside the locks, then searched under the read lock.
fn searching_by_image<I: DeserializeOwned, O: serde::Serialize>(
    engine: &FaceEngine,
    images: &Images,
    tenant: &Tenant,
    mut body: Body,
    collection: impl Fn(&I) -> String,
    describe_others: bool,
    op: impl FnOnce(&Tenants, &I, &PreparedImage) -> likeness_collections::Result<O>,
) -> Result<Value, AwsError> {
    let image = body.image("Image", images)?;
    let input: I = body.input()?;
    read(tenant, |c| c.collection(&collection(&input)).map(|_| ()))?;
    let prepared = prepare_search(engine, ImageInput::Encoded(&image), describe_others)?;
    json(read(tenant, |c| op(c, &input, &prepared))?)
}

/// Run `op` for `tenant`. Blocking (file I/O, inference): call on a blocking thread.
pub fn run(
    engine: &FaceEngine,
    images: &Images,
    tenant: &Tenant,
    op: Operation,
    mut body: Body,
) -> Result<Value, AwsError> {
    use Operation::*;
    match op {
        CreateCollection => {
            body.only_default("Tags", &[serde_json::json!({})])?;
            writing(body, tenant, |c, i| block_on(c.create_collection(i)))
        }
        DeleteCollection => writing(body, tenant, |c, i| block_on(c.delete_collection(i))),
        DescribeCollection => reading(body, tenant, Tenants::describe_collection),
        ListCollections => reading(body, tenant, Tenants::list_collections),
        IndexFaces => {
            let image = body.image("Image", images)?;
            body.only_default("DetectionAttributes", &[serde_json::json!([]), serde_json::json!(["DEFAULT"])])?;
            let input: IndexFacesInput = body.input()?;
            read(tenant, |c| c.collection(&input.collection_id).map(|_| ()))?;
            // The image work runs outside the collection locks.
            let prepared = prepare_index_faces(engine, &input, ImageInput::Encoded(&image))?;
            json(write(tenant, |c| block_on(c.index_faces_prepared(&input, prepared)))?)
        }
        ListFaces => reading(body, tenant, Tenants::list_faces),
        DeleteFaces => writing(body, tenant, |c, i| block_on(c.delete_faces(i))),
        SearchFaces => reading(body, tenant, Tenants::search_faces),
        SearchFacesByImage => {
            let collection = |i: &SearchFacesByImageInput| i.collection_id.clone();
            searching_by_image(engine, images, tenant, body, collection, false, Tenants::search_faces_prepared)
        }
        CreateUser => writing(body, tenant, |c, i| block_on(c.create_user(i))),
        DeleteUser => writing(body, tenant, |c, i| block_on(c.delete_user(i))),
        ListUsers => reading(body, tenant, Tenants::list_users),
        AssociateFaces => writing(body, tenant, |c, i| block_on(c.associate_faces(i))),
        DisassociateFaces => writing(body, tenant, |c, i| block_on(c.disassociate_faces(i))),
        SearchUsers => reading(body, tenant, Tenants::search_users),
        SearchUsersByImage => {
            let collection = |i: &SearchUsersByImageInput| i.collection_id.clone();
            searching_by_image(engine, images, tenant, body, collection, true, Tenants::search_users_prepared)
        }
        CompareFaces => {
            let source = body.image("SourceImage", images)?;
            let target = body.image("TargetImage", images)?;
            body.only_default("QualityFilter", &[serde_json::json!("NONE")])?;
            let threshold = match body.take("SimilarityThreshold") {
                None => DEFAULT_SIMILARITY_THRESHOLD,
                Some(v) => {
                    v.as_f64().ok_or_else(|| AwsError::invalid_parameter("SimilarityThreshold must be a number"))?
                        as f32
                }
            };
            body.input::<Empty>()?;
            json(engine.compare_faces(ImageInput::Encoded(&source), ImageInput::Encoded(&target), threshold)?)
        }
        DetectFaces => {
            let image = body.image("Image", images)?;
            body.only_default("Attributes", &[serde_json::json!([]), serde_json::json!(["DEFAULT"])])?;
            body.input::<Empty>()?;
            json(engine.detect_faces(ImageInput::Encoded(&image))?)
        }
    }
}

/// No further members.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}
