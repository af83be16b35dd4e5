//! The AWS SDK for Rust against likeness-server: `check ENDPOINT ACCESS_KEY SECRET PHOTOS_DIR`.
//! Runs a collection flow and checks that the SDK's own deserialisers read every field this
//! flow needs (an unknown member name or enum value would read as None or `Unknown`), and
//! that errors arrive as the SDK's typed variants. Exits non-zero, saying what differed.

use aws_sdk_rekognition::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, LandmarkType, OrientationCorrection};
use aws_sdk_rekognition::{Client, Config};
use std::path::Path;

fn photo(dir: &Path, person: &str, index: usize) -> Image {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join(person)).expect("photos").map(|e| e.expect("entry").path()).collect();
    files.sort();
    Image::builder().bytes(Blob::new(std::fs::read(&files[index]).expect("photo"))).build()
}

fn check(ok: bool, what: &str) {
    if !ok {
        eprintln!("AWS SDK for Rust check failed: {what}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, key, secret, photos] = &args[..] else {
        eprintln!("usage: check ENDPOINT ACCESS_KEY SECRET PHOTOS_DIR");
        std::process::exit(2);
    };
    let photos = Path::new(photos);
    let conf = Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key, secret, None, None, "likeness-test"))
        .build();
    let rk = Client::from_conf(conf);

    let made = rk.create_collection().collection_id("rust-sdk").send().await.expect("CreateCollection");
    check(
        made.status_code() == Some(200) && made.collection_arn().is_some(),
        "CreateCollection's StatusCode and CollectionArn",
    );
    for person in ["obama", "penny"] {
        let r = rk
            .index_faces()
            .collection_id("rust-sdk")
            .image(photo(photos, person, 0))
            .external_image_id(person)
            .max_faces(1)
            .send()
            .await
            .expect("IndexFaces");
        check(r.face_records().len() == 1, "IndexFaces indexed one face");
        check(
            matches!(
                r.orientation_correction(),
                Some(
                    OrientationCorrection::Rotate0
                        | OrientationCorrection::Rotate90
                        | OrientationCorrection::Rotate180
                        | OrientationCorrection::Rotate270
                )
            ),
            "OrientationCorrection is one of the SDK's known values",
        );
        let detail = r.face_records()[0].face_detail().expect("FaceDetail");
        check(
            !detail.landmarks().is_empty()
                && detail
                    .landmarks()
                    .iter()
                    .all(|l| l.r#type().is_some_and(|t| LandmarkType::values().contains(&t.as_str()))),
            "every landmark type is one the SDK knows",
        );
    }
    let described = rk.describe_collection().collection_id("rust-sdk").send().await.expect("DescribeCollection");
    check(described.face_count() == Some(2), "DescribeCollection's FaceCount");
    check(described.collection_arn().is_some(), "DescribeCollection's CollectionARN");
    check(described.creation_timestamp().is_some(), "DescribeCollection's CreationTimestamp");

    let found = rk
        .search_faces_by_image()
        .collection_id("rust-sdk")
        .image(photo(photos, "obama", 1))
        .send()
        .await
        .expect("SearchFacesByImage");
    let top = found.face_matches().first().and_then(|m| m.face()).and_then(|f| f.external_image_id());
    check(top == Some("obama"), "SearchFacesByImage finds obama");

    let missing = rk.describe_collection().collection_id("no-such-collection").send().await;
    let typed = missing.err().map(|e| e.into_service_error()).is_some_and(|e| e.is_resource_not_found_exception());
    check(typed, "a missing collection is the SDK's ResourceNotFoundException");

    rk.delete_collection().collection_id("rust-sdk").send().await.expect("DeleteCollection");
    println!("AWS SDK for Rust: CreateCollection, IndexFaces, DescribeCollection, SearchFacesByImage, errors, DeleteCollection ok");
}
