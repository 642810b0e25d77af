//! PostgreSQL: the test server, and private clusters.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------- PostgreSQL

/// The test server's host.
pub fn pg_host() -> String {
    std::env::var("DBKEEP_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// The test server's port.
pub fn pg_port() -> String {
    std::env::var("DBKEEP_TEST_PG_PORT").unwrap_or_else(|_| "5432".into())
}

/// A postgres:// URL for `db` on the test server.
pub fn pg_url(db: &str) -> String {
    format!("postgres://postgres@{}:{}/{db}", pg_host(), pg_port())
}

/// Runs SQL with psql against `db`; returns unaligned, tuples-only output.
#[track_caller]
pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &pg_host(),
            "-p",
            &pg_port(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .arg("-c")
        .arg(sql)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether database `db` exists on the test server.
pub fn pg_exists(db: &str) -> bool {
    psql(
        "postgres",
        &format!("select count(*) from pg_database where datname = '{db}'"),
    )
    .trim()
        == "1"
}

/// A database on the test server, dropped (with any listed copies) at the end.
pub struct PgDb {
    /// Its name.
    pub name: String,
    /// Other databases the test makes (restore targets), dropped too.
    pub extra: Vec<String>,
}

impl PgDb {
    /// Creates a new empty database.
    pub fn new(prefix: &str) -> PgDb {
        let name = unique(prefix);
        psql("postgres", &format!("create database \"{name}\""));
        PgDb {
            name,
            extra: Vec::new(),
        }
    }

    /// A name for another database, dropped with this one.
    pub fn another(&mut self, suffix: &str) -> String {
        let n = format!("{}_{suffix}", self.name);
        self.extra.push(n.clone());
        n
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        for db in self.extra.iter().chain(std::iter::once(&self.name)) {
            let _ = Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-h",
                    &pg_host(),
                    "-p",
                    &pg_port(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                ])
                .arg(format!("drop database if exists \"{db}\" with (force)"))
                .output();
        }
    }
}

/// Every row of `table` in `db`, in a stable order, as COPY text.
pub fn pg_rows(db: &str, table: &str) -> String {
    psql(
        db,
        &format!("copy (select * from {table} order by 1) to stdout"),
    )
}

// ---------------------------------------------------------------- private PostgreSQL

/// A throwaway PostgreSQL cluster on a free port, for tests that need a whole
/// server to themselves (`databases: all`). Stopped and removed on drop.
pub struct PrivateCluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    dirs.sort();
    dirs.into_iter().rev().find(|d| d.join("initdb").is_file())
}

/// `cmd ARGS` as the server's user (`postgres` when the tests run as root),
/// without the tests' own `DBKEEP_*` variables: a server started this way
/// passes its environment to `archive_command`, where dbkeep would read
/// them as config keys.
pub fn as_postgres(cmd: &str, args: &[&str]) -> Command {
    let mut c = as_postgres_with_env(cmd, args);
    for (k, _) in std::env::vars() {
        if k.starts_with("DBKEEP_") {
            c.env_remove(k);
        }
    }
    c
}

fn as_postgres_with_env(cmd: &str, args: &[&str]) -> Command {
    // initdb and postgres refuse to run as root.
    if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", cmd]).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

pub(super) fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

impl PrivateCluster {
    /// Starts a new cluster; panics with the reason when it cannot.
    pub fn start() -> PrivateCluster {
        PrivateCluster::start_with(|_| String::new())
    }

    /// The cluster's folder (owned by the server's user): `data/` and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server binaries' folder.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Starts a new cluster with the lines `conf(folder)` appended to its
    /// postgresql.conf (the folder is where the data directory lives).
    pub fn start_with(conf: impl Fn(&Path) -> String) -> PrivateCluster {
        let bin = pg_bin_dir()
            .expect("PostgreSQL server binaries (initdb) not found under /usr/lib/postgresql");
        let dir = tempfile::Builder::new()
            .prefix("dbkeep-pg-")
            .tempdir()
            .unwrap();
        if unsafe_is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot chown the cluster folder to postgres");
        }
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        let out = as_postgres(
            initdb.to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let extra = conf(dir.path());
        if !extra.is_empty() {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            std::io::Write::write_all(&mut f, format!("\n{extra}\n").as_bytes()).unwrap();
        }
        for _ in 0..20 {
            let port = free_port();
            let pg_ctl = bin.join("pg_ctl");
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.path().display()
            );
            let log = dir.path().join("log");
            let out = as_postgres(
                pg_ctl.to_str().unwrap(),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-o",
                    &opts,
                    "start",
                ],
            )
            .output()
            .unwrap();
            if out.status.success() {
                return PrivateCluster { port, dir, bin };
            }
        }
        panic!("cannot start a private PostgreSQL cluster");
    }

    /// Runs SQL against `db` on this cluster.
    #[track_caller]
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed: {}\n{sql}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            pg_ctl.to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .output();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
