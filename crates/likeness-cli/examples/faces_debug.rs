//! Development tool: every detected face of each image (score, multi-view support, size,
//! roll) for tuning the detector. Prints geometry only.
//! Usage: cargo run --release --example faces_debug -- IMAGE...

use likeness_vision::{decode, FaceEngine, ImageInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = FaceEngine::embedded()?;
    for path in std::env::args().skip(1) {
        let img = decode(ImageInput::Encoded(&std::fs::read(&path)?))?.image;
        let faces = engine.locate(&img)?;
        let rows: Vec<String> = faces
            .iter()
            .map(|f| {
                format!(
                    "{:.2}/s{}/w{:.0}/r{:.0}",
                    f.detection.score,
                    f.detection.support,
                    f.detection.width(),
                    f.detail.pose.roll
                )
            })
            .collect();
        println!("{path}\t{}", rows.join(" "));
    }
    Ok(())
}
