//! Development tool: for every face `FaceEngine::locate` finds in every image of a manifest
//! (or of a folder tree), one TSV row: path, face index, whether it is the centred face that
//! `likeness eval` scores, BlazeFace's score, ONet's face probability, the box's shorter side
//! in pixels, yaw, the box (x0 y0 x1 y1). What `Confidence` is calibrated from (no vectors, no pixels).
//! Usage: cargo run --release --example confidence_survey -- MANIFEST.tsv|DIR > out.tsv

use likeness_vision::{decode, FaceEngine, ImageInput, LocatedFace};
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
        let (w, h) = (img.width as f32, img.height as f32);
        let weight = |f: &LocatedFace| {
            let d = &f.detection;
            let (cx, cy) = ((d.x0 + d.x1) / 2.0 - w / 2.0, (d.y0 + d.y1) / 2.0 - h / 2.0);
            d.visible_area(w, h) * (1.0 - (cx.hypot(cy) / (w / 2.0).hypot(h / 2.0)).min(1.0))
        };
        let centred = (0..faces.len()).max_by(|&a, &b| {
            let (a, b) = (&faces[a], &faces[b]);
            a.is_likely_face().cmp(&b.is_likely_face()).then(weight(a).total_cmp(&weight(b)))
        });
        for (i, f) in faces.iter().enumerate() {
            let d = &f.detection;
            let onet = d.landmarks.map_or(f32::NAN, |l| l.face_probability);
            println!(
                "{name}\t{i}\t{}\t{:.4}\t{:.5}\t{:.1}\t{:.1}\t{:.0}\t{:.0}\t{:.0}\t{:.0}",
                u8::from(centred == Some(i)),
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
