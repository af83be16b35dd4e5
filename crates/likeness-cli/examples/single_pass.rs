//! What naming a video face from one embedder pass costs in accuracy: the video path may
//! search a new track's crop after one pass (no mirror) and refine it with the mirror pass
//! later, while stored faces are always flip-averaged. On a pairs file, each pair scored as
//! stored-vs-stored (both flip-averaged) and stored-vs-one-pass (the second image one pass);
//! on a manifest, the false-accept rate of one-pass queries against flip-averaged faces at
//! the similarity thresholds the README's table states.
//! Usage: cargo run --release -p likeness-cli --example single_pass -- PAIRS.tsv [MANIFEST.tsv]

// The metrics `likeness eval` reports, from the CLI's own module (a binary crate has no
// library for examples to link).
#[allow(dead_code)]
#[path = "../src/eval.rs"]
mod eval;

use eval::{auc, best_threshold, tar_at_far};
use likeness_vision::{centred_face, cosine, decode, normalize, FaceEngine, ImageInput};
use std::collections::BTreeMap;
use std::path::Path;

/// A face's two descriptors: flip-averaged (what is stored) and one pass (the quick query).
struct Views {
    both: Vec<f32>,
    one: Vec<f32>,
}

fn views(engine: &FaceEngine, path: &Path) -> Option<Views> {
    let bytes = std::fs::read(path).ok()?;
    let img = decode(ImageInput::Encoded(&bytes)).ok()?.image;
    let faces = engine.locate(&img).ok()?;
    let face = centred_face(&faces, img.width, img.height)?;
    let chip = engine.chip(&img, face).ok()?;
    let plain = engine.embed_chip_pass(&chip, false).ok()?;
    let mirror = engine.embed_chip_pass(&chip, true).ok()?;
    let mut both: Vec<f32> = plain.iter().zip(&mirror).map(|(a, b)| a + b).collect();
    normalize(&mut both);
    let mut one = plain;
    normalize(&mut one);
    Some(Views { both, one })
}

fn embed_all(engine: &FaceEngine, root: &Path, paths: &[String]) -> BTreeMap<String, Views> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(p) = paths.get(i) else { break };
                if let Some(v) = views(engine, &root.join(p)) {
                    if let Ok(mut m) = out.lock() {
                        m.insert(p.clone(), v);
                    }
                }
            });
        }
    });
    out.into_inner().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pairs_path = std::env::args().nth(1).ok_or("usage: single_pass PAIRS.tsv [MANIFEST.tsv]")?;
    let engine = FaceEngine::embedded()?;
    let root = Path::new(&pairs_path).parent().unwrap_or(Path::new("."));
    let pairs: Vec<(String, String, bool)> = std::fs::read_to_string(&pairs_path)?
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string(), f.next()?.trim() == "1"))
        })
        .collect();
    let mut paths: Vec<String> = pairs.iter().flat_map(|(a, b, _)| [a.clone(), b.clone()]).collect();
    paths.sort();
    paths.dedup();
    let v = embed_all(&engine, root, &paths);
    // Scores of pairs where both images have a face (the same pairs for every variant).
    let mut rows: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for (a, b, same) in &pairs {
        let (Some(va), Some(vb)) = (v.get(a), v.get(b)) else { continue };
        for (name, score) in [
            ("stored vs stored (flip-averaged both)", cosine(&va.both, &vb.both)),
            ("stored vs one pass", cosine(&va.both, &vb.one)),
            ("one pass vs one pass", cosine(&va.one, &vb.one)),
        ] {
            let e = rows.entry(name).or_default();
            if *same { &mut e.0 } else { &mut e.1 }.push(score as f64);
        }
    }
    println!("{pairs_path}: {} of {} images with a face", v.len(), paths.len());
    for (name, (pos, neg)) in &rows {
        println!(
            "  {name}: {} same / {} different pairs; AUC {:.5}, balanced accuracy {:.2}%, TAR@FAR1e-2 {:.2}%, TAR@FAR1e-3 {:.2}%",
            pos.len(),
            neg.len(),
            auc(pos, neg),
            100.0 * best_threshold(pos, neg).1,
            100.0 * tar_at_far(pos, neg, 1e-2),
            100.0 * tar_at_far(pos, neg, 1e-3)
        );
    }
    let agree: Vec<f64> = v.values().map(|x| cosine(&x.both, &x.one) as f64).collect();
    let mean = agree.iter().sum::<f64>() / agree.len().max(1) as f64;
    let min = agree.iter().copied().fold(1.0, f64::min);
    println!("  cosine of one pass to the flip-averaged vector of the same face: mean {mean:.4}, min {min:.4}");

    if let Some(manifest) = std::env::args().nth(2) {
        let root = Path::new(&manifest).parent().unwrap_or(Path::new("."));
        let rows: Vec<(String, String)> = std::fs::read_to_string(&manifest)?
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some((f.next()?.to_string(), f.next()?.to_string()))
            })
            .collect();
        let paths: Vec<String> = rows.iter().map(|(p, _)| p.clone()).collect();
        let v = embed_all(&engine, root, &paths);
        let faces: Vec<(&str, &Views)> = rows.iter().filter_map(|(p, id)| Some((id.as_str(), v.get(p)?))).collect();
        let thresholds = [50.0f32, 80.0, 90.0, 95.0, 99.0];
        let (mut stored, mut quick, mut same_stored, mut same_quick) = ([0u64; 5], [0u64; 5], [0u64; 5], [0u64; 5]);
        let (mut different, mut same) = (0u64, 0u64);
        for (i, (id_a, a)) in faces.iter().enumerate() {
            for (j, (id_b, b)) in faces.iter().enumerate() {
                if i == j {
                    continue;
                }
                let s_stored = engine.similarity(&a.both, &b.both);
                let s_quick = engine.similarity(&a.both, &b.one);
                let (count, hits_stored, hits_quick) = if id_a == id_b {
                    (&mut same, &mut same_stored, &mut same_quick)
                } else {
                    (&mut different, &mut stored, &mut quick)
                };
                *count += 1;
                for (k, t) in thresholds.iter().enumerate() {
                    hits_stored[k] += u64::from(s_stored >= *t);
                    hits_quick[k] += u64::from(s_quick >= *t);
                }
            }
        }
        println!("{manifest}: {} faces; {different} ordered different-person pairs, {same} same-person", faces.len());
        for (k, t) in thresholds.iter().enumerate() {
            println!(
                "  threshold {t}: false accepts {:.2e} stored vs stored, {:.2e} stored vs one pass; same-person accepted {:.1}% / {:.1}%",
                stored[k] as f64 / different as f64,
                quick[k] as f64 / different as f64,
                100.0 * same_stored[k] as f64 / same.max(1) as f64,
                100.0 * same_quick[k] as f64 / same.max(1) as f64
            );
        }
    }
    Ok(())
}
