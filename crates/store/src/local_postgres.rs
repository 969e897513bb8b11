//! A private PostgreSQL cluster started from the machine's PostgreSQL programs, for
//! the local run (`settlementd dev`) and for tests. The server stops by itself when
//! the process that started it exits: a small watchdog shell waits for that process
//! and then asks the server for a fast shutdown.

use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long a starting server may take before start-up gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The superuser created by `initdb`; local clusters trust connections on loopback.
const SUPERUSER: &str = "postgres";

/// Server settings for a throwaway test cluster: durability is not needed there.
pub const TEST_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];
/// Server settings for the local development cluster.
pub const DEV_SETTINGS: &[&str] = &["max_connections=100"];

/// A running local cluster.
#[derive(Debug, Clone)]
pub struct LocalPostgres {
    /// The cluster's data folder.
    pub data_dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

/// What becomes of a cluster's data folder when its server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFolder {
    /// Kept, to start again from (`dev`, the benchmark, crash tests).
    Keep,
    /// Deleted (throwaway clusters of tests).
    RemoveOnExit,
}

impl LocalPostgres {
    /// Starts the cluster in `data_dir` on `port`, initialising the folder first when
    /// it holds no cluster. Blocks until the server accepts connections.
    /// With [`DataFolder::RemoveOnExit`], the folder is deleted once the server has
    /// stopped.
    pub fn start(
        data_dir: &Path,
        port: u16,
        settings: &[&str],
        folder: DataFolder,
    ) -> Result<Self> {
        let bin = postgres_bin_dir()?;
        let owner = unprivileged_owner()?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        if let Some((uid, gid)) = owner {
            chown(&data_dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the postgres user", data_dir.display()))?;
        }
        let as_owner = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
            cmd
        };

        if !data_dir.join("PG_VERSION").exists() {
            let out = as_owner("initdb")
                .arg("-D")
                .arg(&data_dir)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ])
                .output()
                .context("running initdb")?;
            if !out.status.success() {
                bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        } else if data_dir.join("postmaster.pid").exists() {
            // A server left behind by a killed run holds the folder: stop it first.
            let _ = as_owner("pg_ctl")
                .arg("-D")
                .arg(&data_dir)
                .args(["stop", "-m", "fast", "-w"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }

        let mut server_args = vec![
            "-D".to_owned(),
            data_dir.display().to_string(),
            "-p".to_owned(),
            port.to_string(),
            "-h".to_owned(),
            "127.0.0.1".to_owned(),
            "-k".to_owned(),
            data_dir.display().to_string(),
        ];
        for s in settings {
            server_args.push("-c".to_owned());
            server_args.push((*s).to_owned());
        }
        let script = r#"
            owner=$1; shift; log=$1; shift; remove=$1; shift; dir=$1; shift
            "$@" >>"$log" 2>&1 &
            pg=$!
            trap 'kill -INT $pg 2>/dev/null; wait $pg; exit 0' TERM INT
            while [ -d "/proc/$owner" ] && kill -0 "$pg" 2>/dev/null; do sleep 1; done
            kill -INT "$pg" 2>/dev/null
            wait "$pg"
            if [ "$remove" = 1 ]; then rm -rf "$dir"; fi
        "#;
        let mut watchdog = Command::new("/bin/sh");
        watchdog
            .arg("-c")
            .arg(script)
            .arg("settlement-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(data_dir.join("server.log"))
            .arg(match folder {
                DataFolder::RemoveOnExit => "1",
                DataFolder::Keep => "0",
            })
            .arg(&data_dir)
            .arg(bin.join("postgres"))
            .args(&server_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = owner {
            watchdog.uid(uid).gid(gid);
        }
        watchdog.spawn().context("starting postgres")?;

        let started = Instant::now();
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    SUPERUSER,
                    "-q",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if started.elapsed() > READY_TIMEOUT {
                let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
                bail!("postgres did not become ready on port {port}: {log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(LocalPostgres { data_dir, port })
    }

    /// Stops the server with `pg_ctl stop -m <mode>` (`smart`, `fast` or `immediate`)
    /// and waits for it to go. `immediate` is a crash: no checkpoint, recovery at the
    /// next start.
    pub fn stop(&self, mode: &str) -> Result<()> {
        let bin = postgres_bin_dir()?;
        let mut cmd = Command::new(bin.join("pg_ctl"));
        if let Some((uid, gid)) = unprivileged_owner()? {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd
            .arg("-D")
            .arg(&self.data_dir)
            .args(["stop", "-m", mode, "-w"])
            .output()
            .context("running pg_ctl stop")?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// A connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }
}

/// The folder holding `initdb`, `postgres` and `pg_isready`: `PG_BIN_DIR` when set,
/// else the folder of `postgres` on `PATH` (links resolved), else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("postgres"))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
    });
    if let Some(dir) = on_path.filter(|d| d.join("initdb").is_file()) {
        return Ok(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").is_file());
    // Newest major version last: "9.6" < "15" numerically, not as text.
    let major = |p: &PathBuf| -> Vec<u32> {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .map(|v| v.split('.').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default()
    };
    versions.sort_by_key(major);
    versions.pop().ok_or_else(|| {
        anyhow!("no PostgreSQL programs found: install the PostgreSQL server or set PG_BIN_DIR")
    })
}

/// The user to run the server as: `initdb` refuses root, so a root process hands the
/// cluster to the `postgres` system user. `None` means "run as the current user".
fn unprivileged_owner() -> Result<Option<(u32, u32)>> {
    let id = |flag: &str, user: Option<&str>| -> Result<u32> {
        let out = Command::new("id")
            .arg(flag)
            .args(user)
            .output()
            .context("running id")?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().with_context(|| {
            format!(
                "reading `id {flag}`: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    if id("-u", None)? != 0 {
        return Ok(None);
    }
    let uid = id("-u", Some(SUPERUSER))
        .context("running as root needs a `postgres` system user to own the local cluster")?;
    Ok(Some((uid, id("-g", Some(SUPERUSER))?)))
}

/// A free loopback port, found by binding port 0.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The server used by tests: `DATABASE_URL` when set, else a throwaway cluster that
/// lives as long as the test process. Returns a URL of its maintenance database.
pub fn test_server_url() -> Result<String> {
    static SERVER: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return Ok(url);
            }
            let dir =
                std::env::temp_dir().join(format!("settlement-test-pg-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            free_port()
                .and_then(|port| {
                    LocalPostgres::start(&dir, port, TEST_SETTINGS, DataFolder::RemoveOnExit)
                })
                .map(|pg| pg.url("postgres"))
                .map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Replaces the database name of a Postgres URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5/a", "b"),
            "postgres://u@h:5/b"
        );
        assert_eq!(with_database("postgres://u@h:5", "b"), "postgres://u@h:5/b");
        assert_eq!(
            with_database("postgres://u:p@h/a?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
    }
}
