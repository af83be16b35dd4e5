//! Where one video frame's time goes on the per-frame path (native): RGBA to raster,
//! detection (one view), describing the faces (quality crop, pose), and one embedding.
//! A tool for optimising the frame path, not part of it.
//!
//! Usage: cargo run --release -p likeness-vision --example frame_profile -- PHOTO [RUNS]

use likeness_vision::video::FrameRange;
use likeness_vision::{decode, FaceEngine, ImageInput, RgbImage};
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: frame_profile PHOTO [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);
    let photo = decode(ImageInput::Encoded(&std::fs::read(path).expect("photo"))).expect("decodes").image;
    let mut frame = RgbImage::filled(640, 480, 96);
    frame.draw_scaled(&photo, 120, 40, 400);
    let rgba: Vec<u8> = frame.pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    let mut engine = FaceEngine::embedded().expect("engine");
    let to_raster = time(runs, || decode(ImageInput::Rgba { width: 640, height: 480, pixels: &rgba }).unwrap());
    let detect = {
        let detector = engine.detector_mut();
        time(runs, || detector.detect_frame(&frame, FrameRange::Near).unwrap())
    };
    let locate = time(runs, || engine.locate_frame(&frame, FrameRange::Near).unwrap());
    let faces = engine.locate_frame(&frame, FrameRange::Near).unwrap();
    assert!(!faces.is_empty(), "no face in the frame");
    if std::env::var_os("SHOW_BOXES").is_some() {
        let photo_path = engine.locate(&frame).unwrap();
        println!("frame path {:?}\nphoto path {:?}", faces[0].detail.bounding_box, photo_path[0].detail.bounding_box);
    }
    let embed = time(runs, || engine.embed(&frame, &faces[0]).unwrap());
    println!(
        "RGBA to raster {to_raster:.2} ms, detect {detect:.2} ms, describe {:.2} ms, embed {embed:.2} ms ({} faces)",
        locate - detect,
        faces.len()
    );
}
