//! `likeness eval` and `likeness calibrate`: verification metrics on a pairs file, and the
//! similarity-scale fit. A face that is not detected counts as a wrong answer.

use likeness_vision::{cosine, Calibration, FaceEngine, ImageInput};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rows of a TSV file with a header, as maps from column name to value.
pub fn read_tsv(path: &Path) -> Result<Vec<BTreeMap<String, String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().ok_or("empty file")?.split('\t').map(|s| s.trim().to_string()).collect();
    Ok(lines.map(|l| header.iter().cloned().zip(l.split('\t').map(|s| s.trim().to_string())).collect()).collect())
}

/// Which face of an image a pairs file means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaceSelection {
    /// Rekognition's rule: the largest visible face (a likely face first).
    Largest,
    /// LFW's convention: the subject is the centred face (`likeness_vision::centred_face`).
    Centered,
}

fn pick_face(engine: &FaceEngine, bytes: &[u8], selection: FaceSelection) -> Option<Vec<f32>> {
    let img = likeness_vision::decode(ImageInput::Encoded(bytes)).ok()?.image;
    let faces = engine.locate(&img).ok()?;
    let best = match selection {
        // `locate` lists likely faces first, largest first.
        FaceSelection::Largest => faces.first(),
        FaceSelection::Centered => likeness_vision::centred_face(&faces, img.width, img.height),
    }?;
    engine.embed(&img, best).ok().map(|f| f.embedding)
}

/// One face vector per image, `None` where no face was found. Runs on `threads` workers.
pub fn embed_all(
    engine: &FaceEngine,
    root: &Path,
    paths: &[String],
    threads: usize,
    selection: FaceSelection,
) -> Vec<Option<Vec<f32>>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Vec<f32>>>> = paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= paths.len() {
                    break;
                }
                let v = std::fs::read(root.join(&paths[i])).ok().and_then(|bytes| pick_face(engine, &bytes, selection));
                if let Ok(mut slot) = results[i].lock() {
                    *slot = v;
                }
            });
        }
    });
    results.into_iter().map(|m| m.into_inner().ok().flatten()).collect()
}

#[derive(Debug, Serialize)]
pub struct EvalReport {
    pub pairs: usize,
    pub auc: f64,
    pub balanced_accuracy: f64,
    /// Best balanced-accuracy threshold, as calibrated similarity 0-100.
    pub threshold: f64,
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e_2: f64,
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e_3: f64,
    pub undetected: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kfold_accuracy: Option<f64>,
    /// Every pair's score, in the pairs file's order (`--scores`).
    #[serde(skip)]
    pub scores: Vec<PairScore>,
}

/// One pair's score: calibrated similarity, or -1 / 101 (wrong whichever way) where an image
/// has no face.
#[derive(Debug, Clone)]
pub struct PairScore {
    pub path_a: String,
    pub path_b: String,
    pub same: bool,
    pub score: f64,
}

/// Mann-Whitney AUC with ties counted half.
pub fn auc(pos: &[f64], neg: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = pos.iter().map(|&s| (s, true)).chain(neg.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        rank_sum += all[i..j].iter().filter(|x| x.1).count() as f64 * avg;
        i = j;
    }
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Accept iff score >= threshold. Returns (threshold, balanced accuracy) maximising it.
pub fn best_threshold(pos: &[f64], neg: &[f64]) -> (f64, f64) {
    let mut cands: Vec<f64> = pos.iter().chain(neg).copied().collect();
    cands.sort_by(|a, b| a.total_cmp(b));
    cands.dedup();
    let mut best = (f64::NAN, -1.0);
    for &t in &cands {
        let acc = balanced_accuracy(pos, neg, t);
        if acc > best.1 {
            best = (t, acc);
        }
    }
    best
}

pub fn balanced_accuracy(pos: &[f64], neg: &[f64], t: f64) -> f64 {
    let tp = pos.iter().filter(|&&s| s >= t).count() as f64 / pos.len().max(1) as f64;
    let tn = neg.iter().filter(|&&s| s < t).count() as f64 / neg.len().max(1) as f64;
    (tp + tn) / 2.0
}

/// True accept rate at the strictest threshold whose false accept rate is at most `far`.
pub fn tar_at_far(pos: &[f64], neg: &[f64], far: f64) -> f64 {
    let mut n = neg.to_vec();
    n.sort_by(|a, b| b.total_cmp(a));
    let k = (far * n.len() as f64).floor() as usize;
    let Some(&t) = n.get(k) else { return 1.0 };
    pos.iter().filter(|&&s| s > t).count() as f64 / pos.len().max(1) as f64
}

pub fn eval_pairs(
    engine: &FaceEngine,
    pairs_file: &Path,
    root: Option<&Path>,
    threads: usize,
    selection: FaceSelection,
) -> Result<EvalReport, String> {
    let rows = read_tsv(pairs_file)?;
    let root: PathBuf =
        root.map(Path::to_path_buf).unwrap_or_else(|| pairs_file.parent().unwrap_or(Path::new(".")).to_path_buf());
    let col = |r: &BTreeMap<String, String>, k: &str| r.get(k).cloned().ok_or(format!("pairs file lacks column {k}"));
    let mut paths = BTreeSet::new();
    for r in &rows {
        paths.insert(col(r, "path_a")?);
        paths.insert(col(r, "path_b")?);
    }
    let paths: Vec<String> = paths.into_iter().collect();
    let vectors = embed_all(engine, &root, &paths, threads, selection);
    score_pairs(engine, &rows, &paths, &vectors, Precision::F32)
}

/// How stored vectors are kept: what a search compares a probe against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Precision {
    F32,
    /// 8 bits a value: the canonical int8 codes collections store (128 bytes at 128-d,
    /// plus an f32 scale in memory).
    Int8,
    /// 4 bits a value and one f32 scale per vector (68 bytes at 128-d).
    Int4,
}

impl Precision {
    /// The vector as it reads back from storage at this precision (symmetric, per-vector
    /// scale, round to nearest).
    pub fn stored(self, v: &[f32]) -> Vec<f32> {
        let levels = match self {
            Precision::F32 => return v.to_vec(),
            // Exactly what a collection stores and searches.
            Precision::Int8 if v.iter().any(|x| *x != 0.0) => {
                return likeness_collections::search::dequantize(&likeness_collections::search::quantize(v))
            }
            Precision::Int8 => 127.0,
            Precision::Int4 => 7.0,
        };
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if max == 0.0 {
            return v.to_vec();
        }
        let scale = max / levels;
        v.iter().map(|x| (x / scale).round().clamp(-levels, levels) * scale).collect()
    }
}

/// Metrics of `rows` with each pair's second vector stored at `precision` (the probe, the
/// first, stays f32).
pub fn score_pairs(
    engine: &FaceEngine,
    rows: &[BTreeMap<String, String>],
    paths: &[String],
    vectors: &[Option<Vec<f32>>],
    precision: Precision,
) -> Result<EvalReport, String> {
    let col = |r: &BTreeMap<String, String>, k: &str| r.get(k).cloned().ok_or(format!("pairs file lacks column {k}"));
    let stored: Vec<Option<Vec<f32>>> = vectors.iter().map(|v| v.as_ref().map(|v| precision.stored(v))).collect();
    let index: BTreeMap<&str, (Option<&Vec<f32>>, Option<&Vec<f32>>)> = paths
        .iter()
        .map(String::as_str)
        .zip(vectors.iter().map(Option::as_ref).zip(stored.iter().map(Option::as_ref)))
        .collect();
    let undetected = vectors.iter().filter(|v| v.is_none()).count();
    let mut pos = Vec::new();
    let mut neg = Vec::new();
    let mut folded: Vec<(String, f64, bool)> = Vec::new();
    let mut scores = Vec::with_capacity(rows.len());
    for r in rows {
        let same = col(r, "same")? == "1";
        let (path_a, path_b) = (col(r, "path_a")?, col(r, "path_b")?);
        let a = index.get(path_a.as_str()).and_then(|(probe, _)| *probe);
        let b = index.get(path_b.as_str()).and_then(|(_, kept)| *kept);
        // Undetected: the answer is wrong whichever way it should have gone.
        let score = match (a, b) {
            (Some(a), Some(b)) => engine.calibration().similarity(cosine(a, b)) as f64 + cosine(a, b) as f64 * 1e-6,
            _ if same => -1.0,
            _ => 101.0,
        };
        if same {
            pos.push(score)
        } else {
            neg.push(score)
        }
        scores.push(PairScore { path_a, path_b, same, score });
        if let Some(f) = r.get("fold") {
            folded.push((f.clone(), score, same));
        }
    }
    if pos.is_empty() || neg.is_empty() {
        return Err("pairs file needs both same=1 and same=0 rows".into());
    }
    let (threshold, balanced) = best_threshold(&pos, &neg);
    let kfold_accuracy = (!folded.is_empty()).then(|| kfold(&folded));
    Ok(EvalReport {
        pairs: rows.len(),
        auc: auc(&pos, &neg),
        balanced_accuracy: balanced,
        threshold,
        tar_at_far_1e_2: tar_at_far(&pos, &neg, 1e-2),
        tar_at_far_1e_3: tar_at_far(&pos, &neg, 1e-3),
        undetected,
        kfold_accuracy,
        scores,
    })
}

/// The same pairs at each precision, from one embedding pass.
pub fn eval_storage(
    engine: &FaceEngine,
    pairs_file: &Path,
    root: Option<&Path>,
    threads: usize,
    selection: FaceSelection,
    precisions: &[Precision],
) -> Result<Vec<(Precision, EvalReport)>, String> {
    let rows = read_tsv(pairs_file)?;
    let root: PathBuf =
        root.map(Path::to_path_buf).unwrap_or_else(|| pairs_file.parent().unwrap_or(Path::new(".")).to_path_buf());
    let mut paths = BTreeSet::new();
    for r in &rows {
        for k in ["path_a", "path_b"] {
            paths.insert(r.get(k).cloned().ok_or(format!("pairs file lacks column {k}"))?);
        }
    }
    let paths: Vec<String> = paths.into_iter().collect();
    let vectors = embed_all(engine, &root, &paths, threads, selection);
    precisions.iter().map(|&p| Ok((p, score_pairs(engine, &rows, &paths, &vectors, p)?))).collect()
}

/// LFW protocol: for each fold, pick the accuracy-maximising threshold on the others and
/// score the held-out fold; the mean accuracy.
fn kfold(rows: &[(String, f64, bool)]) -> f64 {
    let folds: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    let mut accs = Vec::new();
    for f in &folds {
        let (train, test): (Vec<_>, Vec<_>) = rows.iter().partition(|r| &&r.0 != f);
        let mut cands: Vec<f64> = train.iter().map(|r| r.1).collect();
        cands.sort_by(|a, b| a.total_cmp(b));
        let acc = |set: &[&(String, f64, bool)], t: f64| {
            set.iter().filter(|r| (r.1 >= t) == r.2).count() as f64 / set.len().max(1) as f64
        };
        let t = cands.iter().copied().max_by(|&a, &b| acc(&train, a).total_cmp(&acc(&train, b))).unwrap_or(0.0);
        accs.push(acc(&test, t));
    }
    accs.iter().sum::<f64>() / accs.len().max(1) as f64
}

/// Fit the similarity scale on a manifest (path, identity): every cross-identity pair of
/// detected faces is a negative. Prints the knots and the false accept rates they give.
pub fn calibrate(
    engine: &FaceEngine,
    manifest: &Path,
    root: Option<&Path>,
    threads: usize,
    selection: FaceSelection,
) -> Result<serde_json::Value, String> {
    let rows = read_tsv(manifest)?;
    let root: PathBuf =
        root.map(Path::to_path_buf).unwrap_or_else(|| manifest.parent().unwrap_or(Path::new(".")).to_path_buf());
    let paths: Vec<String> = rows.iter().filter_map(|r| r.get("path").cloned()).collect();
    let ids: Vec<String> = rows.iter().filter_map(|r| r.get("identity").cloned()).collect();
    let vectors = embed_all(engine, &root, &paths, threads, selection);
    let mut negatives = Vec::new();
    let mut positives = Vec::new();
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            if let (Some(a), Some(b)) = (&vectors[i], &vectors[j]) {
                if ids[i] == ids[j] {
                    positives.push(cosine(a, b));
                } else {
                    negatives.push(cosine(a, b));
                }
            }
        }
    }
    let cal = Calibration::fit(negatives.clone())?;
    let rate = |set: &[f32], sim: f32| {
        let c = cal.cosine_at(sim);
        set.iter().filter(|&&x| x >= c).count() as f64 / set.len().max(1) as f64
    };
    let at: Vec<serde_json::Value> = [50.0, 70.0, 80.0, 90.0, 95.0, 99.0]
        .iter()
        .map(|&s| serde_json::json!({"similarity": s, "cosine": cal.cosine_at(s), "far": rate(&negatives, s), "tar": rate(&positives, s)}))
        .collect();
    Ok(serde_json::json!({
        "images": paths.len(),
        "undetected": vectors.iter().filter(|v| v.is_none()).count(),
        "negatives": negatives.len(),
        "positives": positives.len(),
        "knots": cal.knots,
        "rates": at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_precisions_round_within_half_a_step() {
        let mut v: Vec<f32> = (0..128).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        likeness_vision::normalize(&mut v);
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let int8 = Precision::Int8.stored(&v);
        let norm: f32 = int8.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos: f32 = int8.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!((norm - 1.0).abs() < 1e-5 && cos > 0.9999, "int8 reads back as a unit vector near v: {norm} {cos}");
        for (p, levels) in [(Precision::Int4, 7.0)] {
            let s = p.stored(&v);
            let step = max / levels;
            assert!(v.iter().zip(&s).all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6), "{p:?}");
            let distinct: BTreeSet<i32> = s.iter().map(|x| (x / step).round() as i32).collect();
            assert!(distinct.len() <= 2 * levels as usize + 1, "{p:?} uses at most its levels");
        }
        assert_eq!(Precision::F32.stored(&v), v);
        assert_eq!(Precision::Int8.stored(&[0.0; 4]), vec![0.0; 4]);
    }
}
