//! The per-frame video path over frame sequences built from the real photos in
//! ../shared/data/faces: a face moving across a 640x480 frame keeps one track, is embedded
//! once or twice rather than every frame, its embedding matches the photo path's, and its
//! track ends after it leaves; two faces at once get two stable tracks.

use likeness_vision::tracker::TrackerConfig;
use likeness_vision::video::{FaceStream, FrameRange, VideoConfig};
use likeness_vision::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn identities() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/faces/identities");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent; video tests need ../shared/data", p.display());
        None
    }
}

fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| FaceEngine::embedded().expect("embedded models load"))
}

fn photo(root: &Path, person: &str, file: &str) -> (Vec<u8>, RgbImage) {
    let bytes = std::fs::read(root.join(person).join(file)).unwrap();
    let image = decode(ImageInput::Encoded(&bytes)).unwrap().image;
    (bytes, image)
}

const W: u32 = 640;
const H: u32 = 480;

fn blank() -> RgbImage {
    RgbImage::filled(W, H, 96)
}

fn paste(canvas: &mut RgbImage, img: &RgbImage, x: i32, y: i32, height: u32) {
    canvas.draw_scaled(img, x, y, height);
}

#[test]
fn a_moving_face_keeps_one_track_is_embedded_rarely_and_matches_the_photo_path() {
    let Some(root) = identities() else { return };
    let (bytes, obama) = photo(&root, "obama", "obama.jpg");
    let config = VideoConfig { tracker: TrackerConfig { max_missed: 5, ..Default::default() }, ..Default::default() };
    let mut stream = FaceStream::new(config);
    let (mut seen, mut embeddings, mut indexes) = (0, Vec::new(), Vec::new());
    for i in 0..24u64 {
        let mut frame = blank();
        paste(&mut frame, &obama, 40 + 8 * i as i32, 40, 400);
        let out = stream.process(engine(), &frame, i * 33).unwrap();
        assert!(out.faces.len() <= 1, "frame {i}: {} faces", out.faces.len());
        for f in out.faces {
            seen += 1;
            indexes.push(f.index);
            embeddings.extend(f.embedding);
        }
    }
    assert!(seen >= 22, "the face was found in {seen} of 24 frames");
    assert!(indexes.iter().all(|&i| i == indexes[0]), "one track throughout: {indexes:?}");
    assert!((1..=3).contains(&embeddings.len()), "embedded {} times in {seen} frames", embeddings.len());

    // The video path's vector is the photo path's person: it matches this photo's vector and
    // another photo of him better than anyone else's.
    let photo_path = engine().analyze(ImageInput::Encoded(&bytes), 1).unwrap().faces.remove(0).embedding;
    let same = engine().similarity(&embeddings[0], &photo_path);
    assert!(same >= 90.0, "video vs photo path of the same image: {same}");
    let (other_bytes, _) = photo(&root, "obama", "obama2.jpg");
    let other = engine().analyze(ImageInput::Encoded(&other_bytes), 1).unwrap().faces.remove(0).embedding;
    let (biden_bytes, _) = photo(&root, "biden", "biden.jpg");
    let biden = engine().analyze(ImageInput::Encoded(&biden_bytes), 1).unwrap().faces.remove(0).embedding;
    let (him, not_him) = (engine().similarity(&embeddings[0], &other), engine().similarity(&embeddings[0], &biden));
    assert!(him >= DEFAULT_SIMILARITY_THRESHOLD && him > not_him, "obama2 {him}, biden {not_him}");
    eprintln!(
        "found in {seen}/24 frames, embedded {} times; similarity to the photo path {same:.1}, obama2 {him:.1}, biden {not_him:.1}",
        embeddings.len()
    );

    // It leaves: the track ends within max_missed + 1 empty frames, and a later arrival is a
    // new track.
    let mut ended_at = None;
    for i in 24..32u64 {
        let out = stream.process(engine(), &blank(), i * 33).unwrap();
        assert!(out.faces.is_empty());
        if out.ended.contains(&indexes[0]) {
            ended_at = Some(i);
            break;
        }
    }
    assert!(ended_at.is_some_and(|i| i <= 24 + 5), "ended at frame {ended_at:?}");
    let mut frame = blank();
    paste(&mut frame, &obama, 200, 40, 400);
    let back = stream.process(engine(), &frame, 40 * 33).unwrap();
    assert_eq!(back.faces.len(), 1);
    assert!(back.faces[0].started && back.faces[0].index != indexes[0] && back.faces[0].embedding.is_some());

    // Frames go forward in time only.
    assert!(matches!(stream.process(engine(), &blank(), 0), Err(VisionError::InvalidParameter(_))));
}

#[test]
fn two_faces_at_once_get_two_stable_tracks() {
    let Some(root) = identities() else { return };
    let (_, penny) = photo(&root, "penny", &first(&root, "penny"));
    let (_, sheldon) = photo(&root, "sheldon", &first(&root, "sheldon"));
    for range in [FrameRange::Near, FrameRange::Far] {
        let mut stream = FaceStream::new(VideoConfig { range, ..Default::default() });
        let mut tracks: Vec<Vec<u32>> = Vec::new();
        for i in 0..10u64 {
            let mut frame = blank();
            paste(&mut frame, &penny, 10 + i as i32 * 2, 60, 300);
            paste(&mut frame, &sheldon, 340 - i as i32 * 2, 80, 300);
            let out = stream.process(engine(), &frame, i * 40).unwrap();
            let mut ids: Vec<u32> = out.faces.iter().map(|f| f.index).collect();
            ids.sort();
            tracks.push(ids);
        }
        let full: Vec<&Vec<u32>> = tracks.iter().filter(|t| t.len() == 2).collect();
        assert!(full.len() >= 8, "{range:?}: two faces in {} of 10 frames: {tracks:?}", full.len());
        assert!(full.iter().all(|t| *t == full[0]) && full[0][0] != full[0][1], "{range:?}: {tracks:?}");
    }
}

#[test]
fn someone_else_in_a_tracks_place_starts_a_new_track() {
    // A cut: penny's photo is replaced by raj's in the same place between two frames. The
    // boxes continue each other; the recheck embedding tells the faces apart.
    let Some(root) = identities() else { return };
    let (_, penny) = photo(&root, "penny", &first(&root, "penny"));
    let (_, raj) = photo(&root, "raj", &first(&root, "raj"));
    let mut stream = FaceStream::new(VideoConfig::default());
    let mut seen: Vec<(u64, u32, bool)> = Vec::new();
    let mut ended = Vec::new();
    for i in 0..30u64 {
        let mut frame = blank();
        paste(&mut frame, if i < 15 { &penny } else { &raj }, 170, 60, 320);
        let out = stream.process(engine(), &frame, i * 200).unwrap();
        ended.extend(out.ended);
        seen.extend(out.faces.iter().map(|f| (i, f.index, f.started)));
    }
    let index_at = |i: u64| seen.iter().find(|s| s.0 == i).map(|s| s.1);
    let (before, after) = (index_at(14).unwrap(), index_at(29).unwrap());
    assert_ne!(before, after, "raj continued penny's track: {seen:?}");
    assert!(ended.contains(&before), "penny's track did not end: {ended:?}");
    // At the cut: the change of look triggers the check at once (the periodic recheck
    // would take up to 1.5 s); penny's own track is never split while she stays.
    let split_at = seen.iter().find(|s| s.1 == after && s.2).map(|s| s.0).unwrap();
    assert_eq!(split_at, 15, "new track from frame {split_at}");
    assert!(seen.iter().filter(|s| s.0 < 15).all(|s| s.1 == before), "penny's track split: {seen:?}");
}

#[test]
fn deferred_embeddings_are_the_same_vectors_and_land_on_their_tracks_later() {
    // The two-worker path: frames are tracked without the embedder, the crops are embedded
    // elsewhere and resolved frames later; the vectors are the ones the inline path computes.
    let Some(root) = identities() else { return };
    let (_, penny) = photo(&root, "penny", &first(&root, "penny"));
    let (_, raj) = photo(&root, "raj", &first(&root, "raj"));
    let frame_of = |who: &RgbImage| {
        let mut f = blank();
        paste(&mut f, who, 170, 60, 320);
        f
    };
    let mut inline = FaceStream::new(VideoConfig::default());
    let mut deferred = FaceStream::new(VideoConfig::default());
    let first_inline = inline.process(engine(), &frame_of(&penny), 0).unwrap();
    let (first, requests) = deferred.process_deferred(engine(), &frame_of(&penny), 0).unwrap();
    assert_eq!(requests.len(), 1);
    assert!(first.faces[0].embedding.is_none() && first.faces[0].started);
    let vector = engine().embed_chip(&requests[0].chip).unwrap();
    assert_eq!(Some(&vector), first_inline.faces[0].embedding.as_ref(), "the crop's vector is the inline vector");
    // Two frames later the vector comes back: same track, no split.
    for t in [200, 400] {
        let (_, more) = deferred.process_deferred(engine(), &frame_of(&penny), t).unwrap();
        assert!(more.is_empty(), "embedded once, not every frame");
    }
    let r = deferred.resolve(engine(), requests[0].index, &vector).unwrap();
    assert_eq!((r.index, r.split_from), (requests[0].index, None));
    // raj takes her place; his recheck comes back as someone else: a new track, and the old
    // one is reported ended with the next frame.
    let mut recheck = None;
    let mut t = 600;
    while recheck.is_none() && t < 4000 {
        let (_, r) = deferred.process_deferred(engine(), &frame_of(&raj), t).unwrap();
        recheck = r.into_iter().next();
        t += 200;
    }
    let recheck = recheck.expect("a recheck within the recheck period");
    let his = engine().embed_chip(&recheck.chip).unwrap();
    let split = deferred.resolve(engine(), recheck.index, &his).unwrap();
    assert_eq!(split.split_from, Some(r.index));
    assert_ne!(split.index, r.index);
    let (next, _) = deferred.process_deferred(engine(), &frame_of(&raj), t).unwrap();
    assert_eq!(next.ended, vec![r.index]);
    assert_eq!(next.faces[0].index, split.index);
    // A vector for a track that has ended lands nowhere.
    for k in 1..=20 {
        deferred.process_deferred(engine(), &blank(), t + 33 * k).unwrap();
    }
    assert_eq!(deferred.resolve(engine(), split.index, &his), None);
}

fn first(root: &Path, person: &str) -> String {
    let mut files: Vec<String> =
        std::fs::read_dir(root.join(person)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    files.remove(0)
}
