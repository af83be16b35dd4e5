//! Collections wired to the real vision engine on ../shared/data/faces (skips if absent):
//! index one photo per person, search with every other photo of them, and check that people
//! never indexed match nobody at 99.

use likeness_collections::*;
mod common;
use common::{coll, sfi, sui, user};
use likeness_vision::{FaceEngine, ImageInput, QualityFilter, QualityReason};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces/identities");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent; end-to-end tests need ../shared/data", p.display());
        None
    }
}

fn people(root: &PathBuf) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(root).unwrap().filter_map(|e| e.ok()) {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        out.insert(dir.file_name().to_string_lossy().to_string(), files);
    }
    out
}

#[test]
fn index_then_search_finds_the_right_person() {
    let Some(root) = data() else { return };
    let engine = FaceEngine::embedded().unwrap();
    let mut c =
        block_on(Collections::open(MemoryStore::default(), Box::new(ManualClock::new(1)), 1, VectorSpace::of(&engine)))
            .unwrap();
    block_on(c.create_collection(&coll("people"))).unwrap();
    let people = people(&root);
    // People with one photo are never indexed: they are the unknown faces.
    let (known, unknown): (Vec<_>, Vec<_>) = people.iter().partition(|(_, files)| files.len() >= 2);
    for (name, files) in &known {
        let bytes = std::fs::read(&files[0]).unwrap();
        let input = IndexFacesInput {
            collection_id: "people".into(),
            external_image_id: Some(name.to_string()),
            max_faces: Some(1),
            quality_filter: Some(QualityFilter::None),
        };
        let out = block_on(c.index_faces_image(&engine, &input, ImageInput::Encoded(&bytes))).unwrap();
        assert_eq!(out.face_records.len(), 1, "{name}");
        block_on(c.create_user(&user("people", name, None))).unwrap();
        let face = out.face_records[0].face.face_id.clone();
        block_on(c.associate_faces(&AssociateFacesInput {
            collection_id: "people".into(),
            user_id: name.to_string(),
            face_ids: vec![face],
            user_match_threshold: None,
            client_request_token: None,
        }))
        .unwrap();
    }
    let (mut probes, mut right, mut user_right) = (0, 0, 0);
    for (name, files) in &known {
        for file in &files[1..] {
            let bytes = std::fs::read(file).unwrap();
            let out = c
                .search_faces_by_image(&engine, &sfi("people", Some(80.0), Some(5), None), ImageInput::Encoded(&bytes))
                .unwrap();
            probes += 1;
            let top =
                out.face_matches.first().map(|m| (m.face.external_image_id.clone().unwrap_or_default(), m.similarity));
            if top.as_ref().map(|t| t.0.as_str()) == Some(name.as_str()) {
                right += 1;
            } else {
                eprintln!("miss: {} -> {top:?}", file.display());
            }
            let users = c
                .search_users_by_image(&engine, &sui("people", Some(80.0), Some(5), None), ImageInput::Encoded(&bytes))
                .unwrap();
            if users.user_matches.first().map(|m| m.user.user_id.as_str()) == Some(name.as_str()) {
                user_right += 1;
            }
        }
    }
    let rate = right as f64 / probes as f64;
    eprintln!("top match right for {right}/{probes} probes ({:.1}%), users {user_right}/{probes}", rate * 100.0);
    assert!(rate >= 0.95, "top match right for {right}/{probes}");
    assert!(user_right as f64 / probes as f64 >= 0.95, "user top match right for {user_right}/{probes}");
    for (name, files) in &unknown {
        for file in files.iter() {
            let bytes = std::fs::read(file).unwrap();
            let out = c
                .search_faces_by_image(&engine, &sfi("people", Some(99.0), None, None), ImageInput::Encoded(&bytes))
                .unwrap();
            assert!(
                out.face_matches.is_empty(),
                "{name} ({}) matched {:?} at 99",
                file.display(),
                out.face_matches[0].face.external_image_id
            );
        }
    }
}

#[test]
fn corrupt_input_stores_nothing() {
    let engine = FaceEngine::embedded().unwrap();
    let mut c =
        block_on(Collections::open(MemoryStore::default(), Box::new(ManualClock::new(1)), 1, VectorSpace::of(&engine)))
            .unwrap();
    block_on(c.create_collection(&coll("x"))).unwrap();
    let input =
        IndexFacesInput { collection_id: "x".into(), external_image_id: None, max_faces: None, quality_filter: None };
    let e = block_on(c.index_faces_image(&engine, &input, ImageInput::Encoded(b"\xff\xd8\xff\xe0 truncated jpeg")))
        .unwrap_err();
    assert_eq!(e.exception_name(), "InvalidImageFormatException");
    assert_eq!(c.describe_collection(&coll("x")).unwrap().face_count, 0);
    assert!(c.store().collections["x"].deltas.len() == 1, "only CreateCollection was written");
}

/// Image work embeds only the faces an operation uses: IndexFaces the ones it stores,
/// searches the largest; the others are described, never embedded.
#[test]
fn image_work_embeds_only_the_faces_the_operation_uses() {
    let Some(root) = data() else { return };
    let group = root.join("../groups/2007_007763.jpg");
    let bytes = std::fs::read(&group).unwrap();
    let engine = FaceEngine::embedded().unwrap();
    let detected = engine.detect_faces(ImageInput::Encoded(&bytes)).unwrap().face_details.len();
    assert!(detected >= 3, "{} has {detected} faces", group.display());

    let input = IndexFacesInput {
        collection_id: "g".into(),
        external_image_id: None,
        max_faces: Some(1),
        quality_filter: None,
    };
    let prepared = service::prepare_index_faces(&engine, &input, ImageInput::Encoded(&bytes)).unwrap();
    assert_eq!(prepared.embedded.len(), 1, "MaxFaces 1: one face embedded");
    assert_eq!(prepared.skipped.len(), detected - 1, "the others are reported, not embedded");

    let search = service::prepare_search(&engine, ImageInput::Encoded(&bytes), true).unwrap();
    assert_eq!(search.embedded.len(), 1, "a search embeds the largest face only");
    assert_eq!(search.skipped.len(), detected - 1);

    // And the collection gets exactly what was prepared.
    let mut c =
        block_on(Collections::open(MemoryStore::default(), Box::new(ManualClock::new(1)), 1, VectorSpace::of(&engine)))
            .unwrap();
    block_on(c.create_collection(&coll("g"))).unwrap();
    let out = block_on(c.index_faces_prepared(&input, prepared)).unwrap();
    assert_eq!(out.face_records.len(), 1);
    assert_eq!(out.unindexed_faces.len(), detected - 1);
    assert!(out.unindexed_faces.iter().any(|u| u.reasons.contains(&QualityReason::ExceedsMaxFaces)));
}
