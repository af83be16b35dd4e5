//! `likeness-server`: the sync server on an embedded SQLite file by default, or on a
//! PostgreSQL database that several server processes share. With `--rekognition-keys`, it
//! also serves Amazon Rekognition's own API (`POST /`, SigV4) over server-side collections.

use clap::Parser;
use likeness_server::db::{Database, Postgres, Sqlite};
use likeness_server::limits::Limits;
use likeness_server::rekognition::{self, Rekognition};
use likeness_server::{router, static_app, App};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "Relays end-to-end encrypted Likeness collections between a group's devices")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LIKENESS_SERVER_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Database URL: `sqlite://PATH`, or `postgres://USER@HOST/DB` so several server
    /// processes behind a load balancer share one database. Default: a SQLite file in the
    /// data directory.
    #[arg(long, env = "LIKENESS_SERVER_DATABASE")]
    database: Option<String>,
    /// Bytes each group may store.
    #[arg(long, default_value_t = 1 << 30)]
    group_quota_bytes: i64,
    /// Serve Rekognition's API too, for the access keys in this file (lines
    /// `ACCESS_KEY_ID SECRET_ACCESS_KEY`). These collections are server-side, readable by the
    /// server: a separate mode from end-to-end-encrypted sync.
    #[arg(long, env = "LIKENESS_REKOGNITION_KEYS")]
    rekognition_keys: Option<PathBuf>,
    /// Where the Rekognition mode keeps each access key's collections. Default: `rekognition/`
    /// in the data directory.
    #[arg(long, env = "LIKENESS_REKOGNITION_DATA")]
    rekognition_data: Option<PathBuf>,
    /// Map an S3 bucket name to a local directory for `Image.S3Object` (repeatable): `NAME=DIR`.
    #[arg(long = "s3-bucket", value_parser = parse_bucket)]
    s3_buckets: Vec<(String, PathBuf)>,
    /// Image requests run at once (default: the cores) and waiting (default: 4x that) before
    /// `ThrottlingException`.
    #[arg(long, default_value_t = 0)]
    rekognition_workers: usize,
    #[arg(long)]
    rekognition_queue: Option<usize>,
    /// Serve a built web app from this directory (the `www/` app's `dist/`) on the same
    /// origin as the API: GET paths the API does not answer.
    #[arg(long, env = "LIKENESS_SERVER_APP")]
    app: Option<PathBuf>,
}

fn parse_bucket(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s.split_once('=').ok_or("expected NAME=DIR")?;
    if name.is_empty() || dir.is_empty() {
        return Err("expected NAME=DIR".into());
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

fn data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = base.join("likeness");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn default_database() -> String {
    format!("sqlite://{}", data_dir().join("server.db").display())
}

/// The Rekognition mode's router, when configured.
fn rekognition_router(args: &Args) -> Result<Option<axum::Router>, String> {
    let Some(path) = &args.rekognition_keys else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let keys = rekognition::Config::parse_keys(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if keys.is_empty() {
        return Err(format!("{} holds no access keys", path.display()));
    }
    let engine = likeness_vision::FaceEngine::embedded().map_err(|e| format!("cannot load the models: {e}"))?;
    let config = rekognition::Config {
        keys,
        data_dir: args.rekognition_data.clone().unwrap_or_else(|| data_dir().join("rekognition")),
        buckets: args.s3_buckets.iter().cloned().collect(),
        workers: args.rekognition_workers,
        queue: args.rekognition_queue,
    };
    Ok(Some(rekognition::router(Rekognition::new(engine, config))))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs to stderr: stdout carries only the listening line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    if let Some(dir) = &args.app {
        if !dir.join("index.html").is_file() {
            eprintln!("likeness-server: {} holds no index.html (build the app first)", dir.display());
            return std::process::ExitCode::from(2);
        }
    }
    let extra = match rekognition_router(&args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("likeness-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let url = args.database.clone().unwrap_or_else(default_database);
    let config = Limits { group_quota_bytes: args.group_quota_bytes, ..Limits::default() };
    if url.starts_with("sqlite:") {
        match Sqlite::open(&url).await {
            Ok(db) => serve(db, config, args.listen, extra, args.app.as_deref()).await,
            Err(e) => fail(&url, e),
        }
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        match Postgres::open(&url).await {
            Ok(db) => serve(db, config, args.listen, extra, args.app.as_deref()).await,
            Err(e) => fail(&url, e),
        }
    } else {
        eprintln!("likeness-server: the database URL must start with sqlite:// or postgres://");
        std::process::ExitCode::from(2)
    }
}

fn fail(url: &str, e: sqlx::Error) -> std::process::ExitCode {
    // The URL may hold a password: name the scheme and host only.
    let shown = url.split('@').next_back().unwrap_or(url);
    eprintln!("likeness-server: cannot open the database ({shown}): {e}");
    std::process::ExitCode::from(1)
}

async fn serve<D: Database>(
    db: D,
    config: Limits,
    listen: SocketAddr,
    rekognition: Option<axum::Router>,
    web_app: Option<&std::path::Path>,
) -> std::process::ExitCode {
    let mut app = router(App::new(db, config));
    if let Some(r) = rekognition {
        app = app.merge(r);
    }
    if let Some(dir) = web_app {
        app = app.merge(static_app(dir));
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("likeness-server: cannot listen on {}: {e}", listen);
            return std::process::ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    // The address on stdout, so scripts can wait for it.
    println!("likeness-server listening on http://{addr}");
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("likeness-server: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
