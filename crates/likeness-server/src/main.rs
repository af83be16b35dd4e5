//! `likeness-server`: the sync server on an embedded SQLite file by default, or on a
//! PostgreSQL database that several server processes share.

use clap::Parser;
use likeness_server::db::{Database, Postgres, Sqlite};
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
    /// Database URL: `sqlite://PATH`, or `postgres://USER@HOST/DB` so several server
    /// processes behind a load balancer share one database. Default: a SQLite file in the
    /// data directory.
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
    // Logs to stderr: stdout carries only the listening line scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let url = args.database.unwrap_or_else(default_database);
    let config = Limits { group_quota_bytes: args.group_quota_bytes, ..Limits::default() };
    if url.starts_with("sqlite:") {
        match Sqlite::open(&url).await {
            Ok(db) => serve(db, config, args.listen).await,
            Err(e) => fail(&url, e),
        }
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        match Postgres::open(&url).await {
            Ok(db) => serve(db, config, args.listen).await,
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

async fn serve<D: Database>(db: D, config: Limits, listen: SocketAddr) -> std::process::ExitCode {
    let app = router(App::new(db, config));
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
