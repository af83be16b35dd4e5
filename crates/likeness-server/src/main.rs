//! `likeness-server`: the sync server on an embedded SQLite file by default.

use clap::Parser;
use likeness_server::db::Sqlite;
use likeness_server::limits::Limits;
use likeness_server::{router, App};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "Relays end-to-end encrypted Likeness collections between a group's devices")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LIKENESS_SERVER_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Database URL (`sqlite://PATH`). Default: a SQLite file in the data directory.
    #[arg(long, env = "LIKENESS_SERVER_DATABASE")]
    database: Option<String>,
    /// Bytes each group may store.
    #[arg(long, default_value_t = 1 << 30)]
    group_quota_bytes: i64,
}

fn default_database() -> String {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = base.join("likeness");
    let _ = std::fs::create_dir_all(&dir);
    format!("sqlite://{}", dir.join("server.db").display())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let url = args.database.unwrap_or_else(default_database);
    if !url.starts_with("sqlite:") {
        eprintln!("likeness-server: only sqlite:// databases are supported by this build");
        return std::process::ExitCode::from(2);
    }
    let db = match Sqlite::open(&url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("likeness-server: cannot open {url}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let config = Limits { group_quota_bytes: args.group_quota_bytes, ..Limits::default() };
    let app = router(App::new(db, config));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("likeness-server: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().map_or(args.listen, |a| a);
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
