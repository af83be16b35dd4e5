//! Development tool: largest-face box and keypoints (pixels) of every image in a manifest,
//! as TSV, for alignment experiments in tools/ (no vectors, no pixels).
//! Usage: cargo run --release --example dump_detections -- MANIFEST.tsv > out.tsv

use likeness_vision::{decode, FaceEngine, ImageInput};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::env::args().nth(1).ok_or("usage: dump_detections MANIFEST.tsv")?;
    let root = Path::new(&manifest).parent().unwrap_or(Path::new("."));
    let engine = FaceEngine::embedded()?;
    let text = std::fs::read_to_string(&manifest)?;
    for line in text.lines().skip(1) {
        let path = line.split('\t').next().unwrap_or_default();
        let bytes = std::fs::read(root.join(path))?;
        let img = decode(ImageInput::Encoded(&bytes))?.image;
        let faces = engine.locate(&img)?;
        match faces.first() {
            Some(f) => {
                let d = &f.detection;
                let kps: Vec<String> = d.keypoints.iter().map(|(x, y)| format!("{x:.2}\t{y:.2}")).collect();
                println!(
                    "{path}\t{:.3}\t{:.2}\t{:.2}\t{:.2}\t{:.2}\t{}",
                    d.score,
                    d.x0,
                    d.y0,
                    d.x1,
                    d.y1,
                    kps.join("\t")
                );
            }
            None => println!("{path}\tNA"),
        }
    }
    Ok(())
}
