//! `likeness`: Rekognition's face operations on local files, printing Rekognition-shaped JSON.
//!
//! Subcommands and flags follow the `aws rekognition` CLI (`--image PATH` stands in for S3).
//! Errors print `ExceptionName: message` on stderr and exit non-zero.

mod collections_cmd;
mod eval;
mod sync_cmd;

use clap::{Parser, Subcommand};
use likeness_vision::{FaceEngine, ImageInput, VisionError, DEFAULT_SIMILARITY_THRESHOLD};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "likeness",
    version,
    about = "On-device face detection, comparison and collections (Rekognition-compatible)"
)]
struct Cli {
    /// Store directory for collections (default: $XDG_DATA_HOME/likeness or ~/.local/share/likeness).
    #[arg(long, global = true, env = "LIKENESS_STORE")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Collection(collections_cmd::CollectionCommand),
    /// Sync this store's collections through a Likeness server, end-to-end encrypted.
    #[command(subcommand)]
    Sync(sync_cmd::SyncCommand),
    /// DetectFaces: every face in an image with box, landmarks, pose and quality.
    DetectFaces {
        #[arg(long)]
        image: PathBuf,
    },
    /// CompareFaces: the largest face of the source against the faces of the target.
    CompareFaces {
        #[arg(long)]
        source_image: PathBuf,
        #[arg(long)]
        target_image: PathBuf,
        #[arg(long, default_value_t = DEFAULT_SIMILARITY_THRESHOLD)]
        similarity_threshold: f32,
    },
    /// Verification metrics on a pairs file (columns path_a, path_b, same[, fold]).
    Eval {
        pairs: PathBuf,
        /// Folder the paths are relative to (default: the pairs file's folder).
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Which face of each image the pairs mean.
        #[arg(long, value_enum, default_value_t = eval::FaceSelection::Centered)]
        face: eval::FaceSelection,
        /// Override the alignment template's zoom (tuning only; changes the vector space).
        #[arg(long, hide = true)]
        align_zoom: Option<f32>,
        /// Override the alignment template's vertical shift (tuning only).
        #[arg(long, hide = true)]
        align_shift: Option<f32>,
        /// Also score with the second image of each pair stored at these precisions (the
        /// probe stays f32): what storing vectors smaller costs in accuracy.
        #[arg(long, value_enum, num_args = 1..)]
        stored: Vec<eval::Precision>,
        /// Also write each pair's score (path_a, path_b, same, similarity; -1 or 101 where an
        /// image has no face) as TSV, for paired comparisons of two runs.
        #[arg(long)]
        scores: Option<PathBuf>,
    },
    /// Fit the similarity scale on a manifest (columns path, identity); prints knots and rates.
    Calibrate {
        manifest: PathBuf,
        #[arg(long)]
        root: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, value_enum, default_value_t = eval::FaceSelection::Centered)]
        face: eval::FaceSelection,
    },
    /// Time detect + align + embed on one image, single thread; prints JSON.
    Bench {
        #[arg(long)]
        image: PathBuf,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
    },
}

/// A failure, printed as `Name: message`.
pub(crate) struct Failure {
    name: String,
    message: String,
    code: u8,
}

impl From<likeness_sync::SyncError> for Failure {
    fn from(e: likeness_sync::SyncError) -> Self {
        use likeness_sync::SyncError as E;
        let code = if matches!(e, E::Offline(_) | E::Server { .. } | E::Random(_)) { 3 } else { 1 };
        Failure { name: e.exception_name().into(), message: e.to_string(), code }
    }
}

impl From<VisionError> for Failure {
    fn from(e: VisionError) -> Self {
        let code = if matches!(e, VisionError::Model(_)) { 3 } else { 1 };
        Failure { name: e.exception_name().into(), message: e.message().into(), code }
    }
}

impl From<likeness_collections::CollectionError> for Failure {
    fn from(e: likeness_collections::CollectionError) -> Self {
        use likeness_collections::CollectionError as E;
        let code = if matches!(e, E::Internal(_) | E::Storage(_)) { 3 } else { 1 };
        Failure { name: e.exception_name().into(), message: e.message().into(), code }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { name: "InvalidParameterException".into(), message: message.into(), code: 2 }
}

fn read_image(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn engine() -> Result<FaceEngine, Failure> {
    Ok(FaceEngine::embedded()?)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure {
        name: "InternalServerError".into(),
        message: e.to_string(),
        code: 3,
    })?;
    println!("{text}");
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Collection(cmd) => {
            let store = cli.store.unwrap_or_else(collections_cmd::default_store);
            let out = collections_cmd::run(&store, cmd)?;
            print_json(&out)?;
            // A many-image IndexFaces prints its summary either way, and fails if any image did.
            match out["Summary"]["ImagesFailed"].as_u64() {
                Some(failed) if failed > 0 => Err(Failure {
                    name: "IndexFacesIncomplete".into(),
                    message: format!("{failed} of {} images failed; see Images[].Error", out["Summary"]["Images"]),
                    code: 1,
                }),
                _ => Ok(()),
            }
        }
        Command::Sync(cmd) => {
            let store = cli.store.unwrap_or_else(collections_cmd::default_store);
            print_json(&sync_cmd::run(&store, cmd)?)
        }
        Command::DetectFaces { image } => {
            let bytes = read_image(&image)?;
            print_json(&engine()?.detect_faces(ImageInput::Encoded(&bytes))?)
        }
        Command::CompareFaces { source_image, target_image, similarity_threshold } => {
            let (a, b) = (read_image(&source_image)?, read_image(&target_image)?);
            let out =
                engine()?.compare_faces(ImageInput::Encoded(&a), ImageInput::Encoded(&b), similarity_threshold)?;
            print_json(&out)
        }
        Command::Eval { pairs, root, json, threads, face, align_zoom, align_shift, stored, scores } => {
            let mut engine = engine()?;
            let mut template = engine.embedder_mut().template();
            template.zoom = align_zoom.unwrap_or(template.zoom);
            template.shift_y = align_shift.unwrap_or(template.shift_y);
            engine.embedder_mut().set_template(template);
            if !stored.is_empty() {
                let reports =
                    eval::eval_storage(&engine, &pairs, root.as_deref(), threads, face, &stored).map_err(usage)?;
                let out: Vec<_> =
                    reports.iter().map(|(p, r)| serde_json::json!({ "stored": p, "report": r })).collect();
                return print_json(&out);
            }
            let report = eval::eval_pairs(&engine, &pairs, root.as_deref(), threads, face).map_err(usage)?;
            if let Some(path) = scores {
                let mut tsv = String::from("path_a\tpath_b\tsame\tscore\n");
                for s in &report.scores {
                    tsv.push_str(&format!("{}\t{}\t{}\t{}\n", s.path_a, s.path_b, u8::from(s.same), s.score));
                }
                std::fs::write(&path, tsv).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
            }
            if json {
                print_json(&report)
            } else {
                println!("pairs                  {}", report.pairs);
                println!("undetected images      {}", report.undetected);
                println!("ROC AUC                {:.5}", report.auc);
                println!(
                    "balanced accuracy      {:.2}% at similarity {:.2}",
                    report.balanced_accuracy * 100.0,
                    report.threshold
                );
                println!("TAR at FAR 1e-2        {:.2}%", report.tar_at_far_1e_2 * 100.0);
                println!("TAR at FAR 1e-3        {:.2}%", report.tar_at_far_1e_3 * 100.0);
                if let Some(k) = report.kfold_accuracy {
                    println!("k-fold accuracy        {:.2}%", k * 100.0);
                }
                Ok(())
            }
        }
        Command::Calibrate { manifest, root, threads, face } => {
            print_json(&eval::calibrate(&engine()?, &manifest, root.as_deref(), threads, face).map_err(usage)?)
        }
        Command::Bench { image, iterations } => {
            let bytes = read_image(&image)?;
            let t0 = Instant::now();
            let engine = engine()?;
            let load_ms = t0.elapsed().as_secs_f64() * 1e3;
            let decoded = likeness_vision::decode(ImageInput::Encoded(&bytes))?;
            let mut times = Vec::new();
            let mut detect_times = Vec::new();
            let mut embed_times = Vec::new();
            let mut faces = 0;
            for _ in 0..iterations.max(1) + 2 {
                let t = Instant::now();
                let located = engine.locate(&decoded.image)?;
                let t_detect = t.elapsed().as_secs_f64() * 1e3;
                if let Some(face) = located.first() {
                    engine.embed(&decoded.image, face)?;
                }
                times.push(t.elapsed().as_secs_f64() * 1e3);
                detect_times.push(t_detect);
                embed_times.push(t.elapsed().as_secs_f64() * 1e3 - t_detect);
                faces = located.len();
            }
            let times = times.split_off(2);
            print_json(&serde_json::json!({
                "engine": "tract",
                "threads": 1,
                "image": format!("{}x{}", decoded.image.width, decoded.image.height),
                "faces": faces,
                "iterations": times.len(),
                "median_ms": median(times.clone()),
                "detect_median_ms": median(detect_times.split_off(2)),
                "embed_median_ms": median(embed_times.split_off(2)),
                "min_ms": times.iter().cloned().fold(f64::INFINITY, f64::min),
                "times_ms": times,
                "model_load_ms": load_ms,
            }))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}: {}", f.name, f.message);
            ExitCode::from(f.code)
        }
    }
}
