//! Face search over video on the engine's per-frame path, against a collection indexed from
//! photos (../shared/data/faces; skips if absent): a synthetic 640x480 sequence where one
//! enrolled person moves alone, then another enrolled person and a stranger appear together.
//! Streaming results name the enrolled people from their first frame, the stranger matches
//! nobody, names never change within a track, and the stored-video answer lists every person
//! at every frame with the track's best matches, sorted as asked.

use likeness_collections::video::VideoFaceSearch;
use likeness_collections::*;
mod common;
use common::coll;
use likeness_vision::video::VideoConfig;
use likeness_vision::{decode, FaceEngine, ImageInput, RgbImage};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn data() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces/identities");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent; video search tests need ../shared/data", p.display());
        None
    }
}

fn image(root: &PathBuf, person: &str, file: &str) -> RgbImage {
    decode(ImageInput::Encoded(&std::fs::read(root.join(person).join(file)).unwrap())).unwrap().image
}

/// The engine and a collection "door" with one photo of each `(person, file)` indexed.
fn door(root: &PathBuf, people: &[(&str, &str)]) -> (FaceEngine, Collections<MemoryStore>) {
    let engine = FaceEngine::embedded().unwrap();
    let mut c =
        block_on(Collections::open(MemoryStore::default(), Box::new(ManualClock::new(1)), 1, VectorSpace::of(&engine)))
            .unwrap();
    block_on(c.create_collection(&coll("door"))).unwrap();
    for (person, file) in people {
        let bytes = std::fs::read(root.join(person).join(file)).unwrap();
        let input = IndexFacesInput {
            collection_id: "door".into(),
            external_image_id: Some(person.to_string()),
            max_faces: Some(1),
            quality_filter: None,
        };
        let out = block_on(c.index_faces_image(&engine, &input, ImageInput::Encoded(&bytes))).unwrap();
        assert_eq!(out.face_records.len(), 1, "{person}");
    }
    (engine, c)
}

#[test]
fn streaming_and_stored_video_face_search_name_the_enrolled_and_not_the_stranger() {
    let Some(root) = data() else { return };
    let (engine, c) = door(&root, &[("obama", "obama.jpg"), ("penny", "penny1.png"), ("howard", "howard1.png")]);

    // Other photos than the enrolled ones: obama alone, moving; then penny and raj (never
    // enrolled) together.
    let (obama, penny, raj) =
        (image(&root, "obama", "obama2.jpg"), image(&root, "penny", "penny2.png"), image(&root, "raj", "raj1.png"));
    let mut frames = Vec::new();
    for i in 0..12 {
        let mut f = RgbImage::filled(640, 480, 96);
        f.draw_scaled(&obama, 60 + 10 * i, 40, 400);
        frames.push(f);
    }
    for i in 0..12 {
        let mut f = RgbImage::filled(640, 480, 96);
        f.draw_scaled(&penny, 10 + 2 * i, 60, 300);
        f.draw_scaled(&raj, 330 - 2 * i, 70, 300);
        frames.push(f);
    }

    let input = FaceSearchInput { collection_id: "door".into(), face_match_threshold: Some(80.0), max_faces: None };
    let mut search = VideoFaceSearch::new(input, VideoConfig::default()).unwrap();
    let mut names: BTreeMap<u32, Vec<Option<String>>> = BTreeMap::new();
    let mut searched = 0;
    for (i, frame) in frames.iter().enumerate() {
        let out = search.process(&engine, &c, frame, i as u64 * 40).unwrap();
        for face in &out.face_search_response {
            let name = face.matched_faces.first().and_then(|m| m.face.external_image_id.clone());
            names.entry(face.index).or_default().push(name);
        }
        searched += out.face_search_response.len();
    }
    assert!(searched >= 30, "faces reported over 24 frames: {searched}");
    // Each track keeps one name (or none) for its whole life, from its first frame.
    let by_track: BTreeMap<u32, Option<String>> = names
        .iter()
        .map(|(index, seen)| {
            assert!(seen.iter().all(|n| n == &seen[0]), "track {index} changed names: {seen:?}");
            (*index, seen[0].clone())
        })
        .collect();
    let mut named: Vec<Option<String>> = by_track.values().cloned().collect();
    named.sort();
    assert_eq!(named, vec![None, Some("obama".to_string()), Some("penny".to_string())], "{names:?}");

    // The stored-video answer: every person at every frame, best matches over the video.
    let by_time = search.persons(FaceSearchSortBy::Timestamp);
    assert_eq!(by_time.len(), searched);
    assert!(by_time.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let by_index = search.persons(FaceSearchSortBy::Index);
    assert!(by_index.windows(2).all(|w| (w[0].person.index, w[0].timestamp) <= (w[1].person.index, w[1].timestamp)));
    let obama_times: Vec<u64> = by_time
        .iter()
        .filter(|p| p.face_matches.first().and_then(|m| m.face.external_image_id.as_deref()) == Some("obama"))
        .map(|p| p.timestamp)
        .collect();
    assert!(obama_times.len() >= 11 && obama_times.iter().all(|&t| t < 12 * 40), "{obama_times:?}");
    let json = serde_json::to_value(&by_time[0]).unwrap();
    assert!(
        json.get("Timestamp").is_some() && json["Person"].get("Index").is_some() && json.get("FaceMatches").is_some()
    );

    // Bad input is refused up front; a missing collection is the search's error.
    let bad = FaceSearchInput { collection_id: "door".into(), face_match_threshold: Some(120.0), max_faces: None };
    assert!(matches!(VideoFaceSearch::new(bad, VideoConfig::default()), Err(CollectionError::InvalidParameter(_))));
    let missing = FaceSearchInput { collection_id: "nowhere".into(), face_match_threshold: None, max_faces: None };
    let mut lost = VideoFaceSearch::new(missing, VideoConfig::default()).unwrap();
    assert!(matches!(lost.process(&engine, &c, &frames[0], 0), Err(CollectionError::ResourceNotFound(_))));
}

#[test]
fn late_vectors_move_the_frames_since_a_cut_to_the_new_track() {
    // The two-worker path at its worst: every vector comes back only after the whole video
    // was tracked. penny's photo is replaced by raj's (never enrolled) in the same place;
    // when the late vectors show the cut, the frames from it on belong to raj's track.
    let Some(root) = data() else { return };
    let (engine, c) = door(&root, &[("penny", "penny1.png")]);
    let (penny, raj) = (image(&root, "penny", "penny2.png"), image(&root, "raj", "raj1.png"));
    // Frame i (at i * 100 ms): penny for five frames, then raj in her place.
    let frame = |i: u64| {
        let mut f = RgbImage::filled(640, 480, 96);
        f.draw_scaled(if i < 5 { &penny } else { &raj }, 170, 60, 320);
        f
    };
    let new_search = || {
        let input = FaceSearchInput { collection_id: "door".into(), face_match_threshold: Some(80.0), max_faces: None };
        VideoFaceSearch::new(input, VideoConfig::default()).unwrap()
    };
    let mut search = new_search();
    let mut late = Vec::new();
    for i in 0..10u64 {
        let (tracked, requests) = search.track_deferred(&engine, &frame(i), i * 100).unwrap();
        late.extend(requests.into_iter().map(|r| (r.index, i * 100, engine.embed_chip(&r.chip).unwrap())));
        search.search(&c, tracked).unwrap();
    }
    assert_eq!(late.len(), 2, "the first frame and the cut were sent to be embedded");
    let mut split = None;
    for (index, t, vector) in &late {
        let r = search.resolve(&engine, &c, *index, *t, vector).unwrap().expect("the track is live");
        split = split.or(r.split_from.map(|old| (old, r.index)));
    }
    let (old, new) = split.expect("the cut split the track");
    let persons = search.persons(FaceSearchSortBy::Timestamp);
    let at = |t: u64| persons.iter().find(|p| p.timestamp == t).unwrap();
    for t in (0..5).map(|i| i * 100) {
        assert_eq!(at(t).person.index, old, "penny at {t} ms");
        assert_eq!(at(t).face_matches[0].face.external_image_id.as_deref(), Some("penny"));
    }
    for t in (5..10).map(|i| i * 100) {
        assert_eq!(at(t).person.index, new, "raj at {t} ms");
        assert!(at(t).face_matches.is_empty(), "raj matched someone at {t} ms");
    }

    // The same-thread order: each frame's vectors resolved after it was tracked and before
    // it is searched. The frame of the cut is already raj's.
    let mut search = new_search();
    let mut indexes = Vec::new();
    for i in 0..10u64 {
        let (tracked, requests) = search.track_deferred(&engine, &frame(i), i * 100).unwrap();
        for r in requests {
            search.resolve(&engine, &c, r.index, i * 100, &engine.embed_chip(&r.chip).unwrap()).unwrap();
        }
        indexes.push(search.search(&c, tracked).unwrap().face_search_response[0].index);
    }
    assert!(indexes[..5].iter().all(|&i| i == indexes[0]) && indexes[5..].iter().all(|&i| i == indexes[5]));
    assert_ne!(indexes[0], indexes[5], "the frame of the cut reported under penny's track: {indexes:?}");
}

#[test]
fn one_pass_names_a_new_track_until_the_full_vector_replaces_it() {
    // The embedder worker's order: one network pass over a new track's crop comes back first
    // and names the face; the flip-averaged vector (both passes) replaces its matches.
    let Some(root) = data() else { return };
    let (engine, c) = door(&root, &[("penny", "penny1.png")]);
    let (penny, raj) = (image(&root, "penny", "penny2.png"), image(&root, "raj", "raj1.png"));
    let frame = |who: &RgbImage| {
        let mut f = RgbImage::filled(640, 480, 96);
        f.draw_scaled(who, 170, 60, 320);
        f
    };
    let input = FaceSearchInput { collection_id: "door".into(), face_match_threshold: Some(80.0), max_faces: None };
    let mut search = VideoFaceSearch::new(input, VideoConfig::default()).unwrap();
    let penny_frame = frame(&penny);
    let (tracked, requests) = search.track_deferred(&engine, &penny_frame, 0).unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert!(r.first, "a new track's first crop is marked first");
    let unnamed = search.search(&c, tracked).unwrap();
    assert!(unnamed.face_search_response[0].matched_faces.is_empty(), "nothing embedded yet");

    let one = engine.embed_chip_pass(&r.chip, false).unwrap();
    assert!(search.resolve_provisional(&c, r.index, &one).unwrap());
    let (tracked, again) = search.track_deferred(&engine, &penny_frame, 40).unwrap();
    assert!(again.is_empty(), "the same view is not embedded twice");
    let named = search.search(&c, tracked).unwrap().face_search_response[0].matched_faces.clone();
    assert_eq!(named[0].face.external_image_id.as_deref(), Some("penny"), "one pass names her");

    // The full vector: the sum of both passes, as a host hands it over (not normalised).
    let mirror = engine.embed_chip_pass(&r.chip, true).unwrap();
    let sum: Vec<f32> = one.iter().zip(&mirror).map(|(a, b)| a + b).collect();
    search.resolve(&engine, &c, r.index, 0, &sum).unwrap().expect("the track is live");
    let (tracked, _) = search.track_deferred(&engine, &penny_frame, 80).unwrap();
    let full = search.search(&c, tracked).unwrap().face_search_response[0].matched_faces.clone();
    let photo = engine.embed_chip(&r.chip).unwrap();
    let expected = c.search_faces_by_vector("door", &photo, Some(80.0), Some(5)).unwrap();
    assert_eq!(full, expected, "the flip-averaged vector's matches replace the provisional ones");
    assert!(
        !search.resolve_provisional(&c, r.index, &one).unwrap(),
        "a track with a full vector takes no provisional matches"
    );

    // Bad vectors are refused typed, and change nothing.
    for bad in [vec![0.0; 128], vec![f32::NAN; 128], vec![1.0; 3]] {
        assert!(matches!(search.resolve_provisional(&c, r.index, &bad), Err(CollectionError::InvalidParameter(_))));
    }
    // A stranger's provisional vector on a new track: no match, and none once the track ends.
    let mut search = VideoFaceSearch::new(
        FaceSearchInput { collection_id: "door".into(), face_match_threshold: Some(80.0), max_faces: None },
        VideoConfig::default(),
    )
    .unwrap();
    let (tracked, requests) = search.track_deferred(&engine, &frame(&raj), 0).unwrap();
    let stranger = engine.embed_chip_pass(&requests[0].chip, false).unwrap();
    assert!(search.resolve_provisional(&c, requests[0].index, &stranger).unwrap());
    assert!(search.search(&c, tracked).unwrap().face_search_response[0].matched_faces.is_empty());
    let empty = RgbImage::filled(640, 480, 96);
    for i in 1..=40u64 {
        search.track_deferred(&engine, &empty, i * 100).map(|(t, _)| search.search(&c, t).unwrap()).unwrap();
    }
    assert!(!search.resolve_provisional(&c, requests[0].index, &stranger).unwrap(), "the track has ended");
}
