//! Development tool: box and keypoints (pixels) of one face of every image in a manifest, as
//! TSV, for alignment experiments in tools/ (no vectors, no pixels). The face is the one
//! `likeness eval` scores by default (`likeness_vision::centred_face`).
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
        // What `likeness eval` cannot score either (too small, undecodable) is NA.
        let Ok(img) = decode(ImageInput::Encoded(&bytes)).map(|d| d.image) else {
            println!("{path}\tNA");
            continue;
        };
        let faces = engine.locate(&img).unwrap_or_default();
        let best = likeness_vision::centred_face(&faces, img.width, img.height);
        match best {
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
