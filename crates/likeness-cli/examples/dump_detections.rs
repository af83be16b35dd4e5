//! Development tool: box and keypoints (pixels) of one face of every image in a manifest, as
//! TSV, for alignment experiments in tools/ (no vectors, no pixels). The face is the one
//! `likeness eval` scores by default: a likely face, the one of largest visible area weighted
//! by closeness to the centre.
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
        let (w, h) = (img.width as f32, img.height as f32);
        let weight = |f: &&likeness_vision::LocatedFace| {
            let d = &f.detection;
            let (cx, cy) = ((d.x0 + d.x1) / 2.0 - w / 2.0, (d.y0 + d.y1) / 2.0 - h / 2.0);
            d.visible_area(w, h) * (1.0 - (cx.hypot(cy) / (w / 2.0).hypot(h / 2.0)).min(1.0))
        };
        let best = faces
            .iter()
            .max_by(|a, b| a.is_likely_face().cmp(&b.is_likely_face()).then(weight(a).total_cmp(&weight(b))));
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
