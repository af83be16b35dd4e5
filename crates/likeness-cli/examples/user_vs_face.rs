//! Rank-1 identification on lfw-dev: searching users (normalised mean of a person's face
//! vectors, as `likeness-collections` builds them) against searching single faces.
//! Every image of the 52 people with several photos is a probe once; the gallery is every
//! other image (their other photos plus 1,400+ one-photo distractors).
//! Usage: cargo run --release --example user_vs_face -- lfw-dev/MANIFEST.tsv

use likeness_vision::{cosine, normalize, FaceEngine, ImageInput};
use std::collections::BTreeMap;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = std::env::args().nth(1).ok_or("usage: user_vs_face MANIFEST.tsv")?;
    let root = Path::new(&manifest).parent().unwrap_or(Path::new("."));
    let engine = FaceEngine::embedded()?;
    let rows: Vec<(String, String)> = std::fs::read_to_string(&manifest)?
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(p, id)| (p.to_string(), id.to_string())))
        .collect();
    let embed = |part: &[(String, String)]| -> Vec<Option<Vec<f32>>> {
        part.iter()
            .map(|(p, _)| {
                let bytes = std::fs::read(root.join(p)).ok()?;
                engine.analyze(ImageInput::Encoded(&bytes), 1).ok()?.faces.into_iter().next().map(|f| f.embedding)
            })
            .collect()
    };
    let (first, second) = rows.split_at(rows.len() / 2);
    let vectors: Vec<Option<Vec<f32>>> = std::thread::scope(|s| {
        let a = s.spawn(|| embed(first));
        let b = embed(second);
        let mut v = a.join().unwrap_or_default();
        v.extend(b);
        v
    });
    let mut by_person: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, id)) in rows.iter().enumerate() {
        if vectors[i].is_some() {
            by_person.entry(id.as_str()).or_default().push(i);
        }
    }
    let (mut probes, mut face_right, mut user_right, mut best_of_right) = (0, 0, 0, 0);
    for (person, images) in by_person.iter().filter(|(_, v)| v.len() >= 2) {
        for &probe in images {
            let q = vectors[probe].as_ref().ok_or("vector")?;
            probes += 1;
            // Single faces: the best-scoring other image.
            let best_face = (0..rows.len()).filter(|&j| j != probe && vectors[j].is_some()).max_by(|&a, &b| {
                cosine(q, vectors[a].as_ref().unwrap()).total_cmp(&cosine(q, vectors[b].as_ref().unwrap()))
            });
            face_right += best_face.is_some_and(|j| rows[j].1 == *person) as usize;
            // Users: mean vector of each person's gallery images; best-of: max over them.
            let mut best_mean = (f32::MIN, "");
            let mut best_max = (f32::MIN, "");
            for (other, imgs) in &by_person {
                let gallery: Vec<&Vec<f32>> =
                    imgs.iter().filter(|&&j| j != probe).filter_map(|&j| vectors[j].as_ref()).collect();
                if gallery.is_empty() {
                    continue;
                }
                let mut mean = vec![0.0f32; q.len()];
                for v in &gallery {
                    mean.iter_mut().zip(v.iter()).for_each(|(m, x)| *m += x);
                }
                normalize(&mut mean);
                let s = cosine(q, &mean);
                if s > best_mean.0 {
                    best_mean = (s, other);
                }
                let m = gallery.iter().map(|v| cosine(q, v)).fold(f32::MIN, f32::max);
                if m > best_max.0 {
                    best_max = (m, other);
                }
            }
            user_right += (best_mean.1 == *person) as usize;
            best_of_right += (best_max.1 == *person) as usize;
        }
    }
    let pct = |n: usize| 100.0 * n as f64 / probes as f64;
    println!(
        "probes {probes} (people with 2+ images), gallery {} images",
        vectors.iter().filter(|v| v.is_some()).count() - 1
    );
    println!("rank-1 searching single faces:        {face_right}/{probes} = {:.1}%", pct(face_right));
    println!("rank-1 searching users, mean vector:  {user_right}/{probes} = {:.1}%", pct(user_right));
    println!("rank-1 searching users, best-of:      {best_of_right}/{probes} = {:.1}%", pct(best_of_right));
    Ok(())
}
