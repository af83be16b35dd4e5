//! A throwaway PostgreSQL cluster in a temp dir, on a free loopback port, stopped on drop.
//! PostgreSQL refuses to run as root, so under root (CI) the cluster runs as `nobody`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The unprivileged user the cluster runs as when the tests run as root.
    run_as: Option<&'static str>,
    databases: AtomicU32,
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or Debian's versioned directory.
fn find_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    if let Some(dir) = on_path.into_iter().find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file()) {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|r| r.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().expect(
        "PostgreSQL is not installed (initdb and pg_ctl): tests/run-all.sh installs Debian's `postgresql` package",
    )
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

impl PgCluster {
    /// `initdb` and start a cluster with `fsync` as given (off for speed where durability is not
    /// under test).
    pub fn start(fsync: bool) -> PgCluster {
        let bin = find_bin();
        let dir = tempfile::Builder::new().prefix("likeness-pg").tempdir().unwrap();
        let run_as = is_root().then_some("nobody");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if let Some(user) = run_as {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let status = Command::new("chown").args([user, data.to_str().unwrap()]).status().unwrap();
            assert!(status.success(), "chown {user} {}", data.display());
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cluster = PgCluster { dir, bin, port, run_as, databases: AtomicU32::new(0) };
        cluster.run("initdb", &["-D", data.to_str().unwrap(), "-U", "likeness", "--auth=trust", "-E", "UTF8"]);
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c max_connections=400",
            data.display(),
            if fsync { "on" } else { "off" }
        );
        let log = data.join("server.log");
        cluster.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-o", &options, "-l", log.to_str().unwrap(), "-w", "-t", "60", "start"],
        );
        cluster
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = match self.run_as {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://likeness@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self) -> String {
        let name = format!("likeness_test_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let out = Command::new("psql")
            .args([&self.url("postgres"), "-qc", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "CREATE DATABASE: {}", String::from_utf8_lossy(&out.stderr));
        self.url(&name)
    }

    /// Run SQL on `database`; its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new("psql").args([&self.url(database), "-Atqc", sql]).output().expect("psql runs");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"];
        let _ = match self.run_as {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        };
    }
}
