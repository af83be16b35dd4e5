//! Development tool: for every face `FaceEngine::locate` finds in every image of a manifest
//! (or of a folder tree), one TSV row: path, face index, whether it is the centred face that
//! `likeness eval` scores, BlazeFace's score, ONet's face probability, the box's shorter side
//! in pixels, yaw, the box (x0 y0 x1 y1). What `Confidence` is calibrated from (no vectors, no pixels).
//! Usage: cargo run --release --example confidence_survey -- MANIFEST.tsv|DIR > out.tsv

use likeness_vision::{decode, FaceEngine, ImageInput};
use std::path::{Path, PathBuf};

fn images(arg: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    if arg.is_dir() {
        let mut out = Vec::new();
        let mut stack = vec![arg.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| matches!(e.to_str(), Some("jpg" | "jpeg" | "png"))) {
                    out.push((p.strip_prefix(arg).unwrap_or(&p).display().to_string(), p.clone()));
                }
            }
        }
        out.sort();
        return Ok(out);
    }
    let root = arg.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(arg)?;
    Ok(text.lines().skip(1).filter_map(|l| l.split('\t').next()).map(|p| (p.to_string(), root.join(p))).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).ok_or("usage: confidence_survey MANIFEST.tsv|DIR")?;
    let engine = FaceEngine::embedded()?;
    println!("path\tface\tcentred\tblazeface\tonet\tside\tyaw\tx0\ty0\tx1\ty1");
    for (name, path) in images(Path::new(&arg))? {
        let bytes = std::fs::read(&path)?;
        let Ok(img) = decode(ImageInput::Encoded(&bytes)).map(|d| d.image) else {
            continue;
        };
        let faces = engine.locate(&img).unwrap_or_default();
        let centred = likeness_vision::centred_face(&faces, img.width, img.height);
        for (i, f) in faces.iter().enumerate() {
            let d = &f.detection;
            let onet = d.landmarks.map_or(f32::NAN, |l| l.face_probability);
            println!(
                "{name}\t{i}\t{}\t{:.4}\t{:.5}\t{:.1}\t{:.1}\t{:.0}\t{:.0}\t{:.0}\t{:.0}",
                u8::from(centred.is_some_and(|c| std::ptr::eq(c, f))),
                d.score,
                onet,
                f.size_pixels(),
                f.detail.pose.yaw,
                d.x0,
                d.y0,
                d.x1,
                d.y1
            );
        }
    }
    Ok(())
}
