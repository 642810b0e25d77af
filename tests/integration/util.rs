//! Test helpers: the real binary, unique names, real servers, stand-in tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The dbkeep binary under test, with a clean environment for its own variables.
pub fn dbkeep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbkeep"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DBKEEP_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DBKEEP_LOG", "dbkeep=info");
    cmd
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("cannot run dbkeep")
}

/// stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "expected success\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 100_000
    )
}

/// A fresh temp folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dbkeep-test-")
        .tempdir()
        .unwrap()
}

/// Every file below `dir` (relative paths), sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Writes an executable shell script `name` into `dir` (a stand-in tool).
pub fn stand_in(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with `dir` first.
pub fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Where the real tool `name` is.
pub fn which(name: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` is not on PATH; run the tests through scripts/test.sh")
}

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

// ---------------------------------------------------------------- MariaDB

/// The test server's host.
pub fn my_host() -> String {
    std::env::var("DBKEEP_TEST_MYSQL_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// The test server's port.
pub fn my_port() -> String {
    std::env::var("DBKEEP_TEST_MYSQL_PORT").unwrap_or_else(|_| "3306".into())
}

/// A mariadb:// URL for `db`.
pub fn my_url(db: &str) -> String {
    format!("mariadb://root@{}:{}/{db}", my_host(), my_port())
}

/// Runs SQL with the mariadb client as root; returns batch output without headers.
#[track_caller]
pub fn mysql(sql: &str) -> String {
    String::from_utf8(mysql_bytes(sql)).expect("mariadb printed invalid UTF-8; use mysql_bytes")
}

/// Like [`mysql`], for output that holds binary data.
#[track_caller]
pub fn mysql_bytes(sql: &str) -> Vec<u8> {
    let out = Command::new(client())
        .args([
            "--no-defaults",
            "-h",
            &my_host(),
            "-P",
            &my_port(),
            "-uroot",
            "--default-character-set=utf8mb4",
            "--batch",
            "--skip-column-names",
            "-e",
        ])
        .arg(sql)
        .output()
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "mariadb failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn client() -> &'static str {
    if std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("mariadb").is_file())
    {
        "mariadb"
    } else {
        "mysql"
    }
}

/// A database on the MariaDB test server, dropped with its copies at the end.
pub struct MyDb {
    /// Its name.
    pub name: String,
    /// Other databases the test makes.
    pub extra: Vec<String>,
}

impl MyDb {
    /// Creates a new empty database.
    pub fn new(prefix: &str) -> MyDb {
        let name = unique(prefix);
        mysql(&format!("create database `{name}`"));
        MyDb {
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

impl Drop for MyDb {
    fn drop(&mut self) {
        for db in self.extra.iter().chain(std::iter::once(&self.name)) {
            let _ = Command::new(client())
                .args([
                    "--no-defaults",
                    "-h",
                    &my_host(),
                    "-P",
                    &my_port(),
                    "-uroot",
                    "-e",
                ])
                .arg(format!("drop database if exists `{db}`"))
                .output();
        }
    }
}

/// Whether database `db` exists on the MariaDB test server.
pub fn my_exists(db: &str) -> bool {
    mysql(&format!(
        "select count(*) from information_schema.schemata where schema_name = '{db}'"
    ))
    .trim()
        == "1"
}

// ---------------------------------------------------------------- configs

/// Writes a config file with a local storage at `dir/backups` and one job.
pub fn write_config(dir: &Path, job: &str, source_yaml: &str) -> PathBuf {
    let path = dir.join("dbkeep.yaml");
    let text = format!(
        "storages:\n  local:\n    type: local\n    path: {}\njobs:\n  {job}:\n    source:\n{}",
        dir.join("backups").display(),
        source_yaml
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The single backup folder's manifest under `backups`, parsed.
pub fn manifests(backups: &Path) -> Vec<serde_json::Value> {
    files(backups)
        .into_iter()
        .filter(|f| f.ends_with("manifest.json"))
        .map(|f| serde_json::from_slice(&std::fs::read(backups.join(f)).unwrap()).unwrap())
        .collect()
}

// ---------------------------------------------------------------- processes

/// Samples every process's argv until `pid` exits; returns how many argv were
/// read and the ones that contained `needle`.
pub fn watch_cmdlines(needle: &str, pid: u32) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    let needle = needle.as_bytes().to_vec();
    std::thread::spawn(move || {
        let mut sampled = 0;
        let mut hits = Vec::new();
        while Path::new(&format!("/proc/{pid}")).exists() {
            let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if status.contains(") Z ") {
                break;
            }
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                if cmdline.is_empty() {
                    continue;
                }
                sampled += 1;
                if cmdline
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice())
                {
                    hits.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        (sampled, hits)
    })
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

fn as_postgres(cmd: &str, args: &[&str]) -> Command {
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

fn unsafe_is_root() -> bool {
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

// ---------------------------------------------------------------- private MariaDB

/// A throwaway MariaDB server on a free port. Stopped and removed on drop.
pub struct PrivateMariadb {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl PrivateMariadb {
    /// Starts a new server; panics with the reason when it cannot.
    pub fn start() -> PrivateMariadb {
        let dir = tempfile::Builder::new()
            .prefix("dbkeep-my-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let user = if unsafe_is_root() {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_default()
        };
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .output()
            .expect("mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mariadbd = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mariadbd");
        let port = free_port();
        let child = Command::new(mariadbd)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mariadbd");
        let server = PrivateMariadb {
            port,
            child,
            _dir: dir,
        };
        for _ in 0..200 {
            if server.try_sql("select 1").is_some() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the private MariaDB did not start");
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let out = Command::new(client())
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-uroot",
                "--default-character-set=utf8mb4",
                "--batch",
                "--skip-column-names",
            ])
            .arg(format!("-P{}", self.port))
            .args(["-e", sql])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs SQL as root.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|| panic!("SQL failed on the private MariaDB: {sql}"))
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- private Redis

/// A throwaway redis-server on a free port (its own 16 dbs), stopped on drop.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1 (the TLS port when started with TLS).
    pub port: u16,
    /// Folder with its files (and TLS certificates).
    pub dir: tempfile::TempDir,
    child: std::process::Child,
    password: Option<String>,
    tls: bool,
}

impl PrivateRedis {
    /// A plain server without a password.
    pub fn start() -> PrivateRedis {
        Self::start_with(&[], None, false)
    }

    /// A server with extra arguments, an optional `requirepass`, and optionally TLS only.
    pub fn start_with(extra: &[&str], password: Option<&str>, tls: bool) -> PrivateRedis {
        let dir = tempfile::Builder::new()
            .prefix("dbkeep-redis-")
            .tempdir()
            .unwrap();
        if tls {
            make_certs(dir.path());
        }
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(extra)
        .stdout(std::process::Stdio::null());
        if tls {
            let p = dir.path();
            cmd.args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(p.join("server.crt"))
            .arg("--tls-key-file")
            .arg(p.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(p.join("ca.crt"));
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        if let Some(pw) = password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd.spawn().expect("redis-server");
        let server = PrivateRedis {
            port,
            dir,
            child,
            password: password.map(str::to_string),
            tls,
        };
        for _ in 0..200 {
            if server.cli(&["PING"]).trim() == "PONG" {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {port}");
    }

    /// Runs one redis-cli command (text output).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.tls {
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(self.dir.path().join("ca.crt"));
        }
        if let Some(pw) = &self.password {
            cmd.env("REDISCLI_AUTH", pw);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A protocol client (plain servers only).
    pub fn client(&self) -> Resp {
        let mut c = Resp::connect(self.port);
        if let Some(pw) = &self.password {
            c.call(&[b"AUTH", pw.as_bytes()]);
        }
        c
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=dbkeep test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
}

/// A minimal RESP2 client for test setup and checks.
pub struct Resp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

/// A reply, flattened for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// +status or :int, as text.
    Text(String),
    /// -error.
    Err(String),
    /// $bulk (None for nil).
    Bulk(Option<Vec<u8>>),
    /// *array.
    List(Vec<Val>),
}

impl Resp {
    fn connect(port: u16) -> Resp {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        Resp {
            r: std::io::BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// Queues a command without reading its reply.
    pub fn send(&mut self, args: &[&[u8]]) {
        use std::io::Write;
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out).unwrap();
    }

    /// Reads one reply.
    pub fn recv(&mut self) -> Val {
        use std::io::{BufRead, Read};
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' | b':' => Val::Text(text),
            b'-' => Val::Err(text),
            b'$' => {
                let n: i64 = text.parse().unwrap();
                if n < 0 {
                    return Val::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                Val::Bulk(Some(b))
            }
            b'*' => {
                let n: i64 = text.parse().unwrap();
                Val::List((0..n.max(0)).map(|_| self.recv()).collect())
            }
            other => panic!("unexpected reply type {other}"),
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Val {
        self.send(args);
        self.recv()
    }

    /// `call` with text arguments.
    pub fn cmd(&mut self, args: &[&str]) -> Val {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// Every key of `db` with its type, its value in a canonical text form
    /// (members sorted where order does not matter) and its absolute expiry
    /// time (PEXPIRETIME, -1 for none), sorted by key. Pipelined.
    pub fn snapshot(&mut self, db: u32) -> Vec<(Vec<u8>, String, Vec<u8>, i64)> {
        self.cmd(&["SELECT", &db.to_string()]);
        let Val::List(keys) = self.cmd(&["KEYS", "*"]) else {
            panic!()
        };
        let mut keys: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|k| {
                if let Val::Bulk(Some(k)) = k {
                    k
                } else {
                    panic!()
                }
            })
            .collect();
        keys.sort();
        for k in &keys {
            self.send(&[b"TYPE", k]);
        }
        let kinds: Vec<String> = keys
            .iter()
            .map(|_| {
                if let Val::Text(t) = self.recv() {
                    t
                } else {
                    panic!()
                }
            })
            .collect();
        for (k, kind) in keys.iter().zip(&kinds) {
            match kind.as_str() {
                "string" => self.send(&[b"GET", k]),
                "hash" => self.send(&[b"HGETALL", k]),
                "list" => self.send(&[b"LRANGE", k, b"0", b"-1"]),
                "set" => self.send(&[b"SMEMBERS", k]),
                "zset" => self.send(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
                "stream" => {
                    self.send(&[b"XRANGE", k, b"-", b"+"]);
                    self.send(&[b"XINFO", b"GROUPS", k]);
                }
                other => panic!("unexpected type {other}"),
            }
            self.send(&[b"PEXPIRETIME", k]);
        }
        keys.into_iter()
            .zip(kinds)
            .map(|(k, kind)| {
                let value = match kind.as_str() {
                    "hash" => sorted_pairs(self.recv()),
                    "set" => sorted(self.recv()),
                    "stream" => Val::List(vec![self.recv(), self.recv()]),
                    _ => self.recv(),
                };
                let Val::Text(at) = self.recv() else { panic!() };
                (
                    k,
                    kind,
                    format!("{value:?}").into_bytes(),
                    at.parse().unwrap(),
                )
            })
            .collect()
    }
}

fn sorted(v: Val) -> Val {
    let Val::List(mut items) = v else { return v };
    items.sort_by_key(|i| format!("{i:?}"));
    Val::List(items)
}

fn sorted_pairs(v: Val) -> Val {
    let Val::List(items) = v else { return v };
    let mut pairs: Vec<Val> = items.chunks(2).map(|p| Val::List(p.to_vec())).collect();
    pairs.sort_by_key(|i| format!("{i:?}"));
    Val::List(pairs)
}

// ---------------------------------------------------------------- receivers

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, POST, PUT.
    pub method: String,
    /// The path with query.
    pub path: String,
    /// Header names in lower case.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// An HTTP listener on 127.0.0.1 that records requests and answers 200
/// (or 500 for the first `fail_first` requests).
pub struct HttpSink {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl HttpSink {
    /// Starts a listener that always answers 200.
    pub fn start() -> HttpSink {
        Self::start_failing(0)
    }

    /// Starts a listener whose first `fail_first` answers are 500.
    pub fn start_failing(fail_first: usize) -> HttpSink {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut served = 0usize;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let path = parts.next().unwrap_or_default().to_string();
                let mut headers = std::collections::BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(Request {
                    method,
                    path,
                    headers,
                    body,
                });
                served += 1;
                let status = if served <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        HttpSink { url, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A local SMTP server (aiosmtpd) writing each mail into a Maildir.
pub struct Smtp {
    /// Its port.
    pub port: u16,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl Smtp {
    /// Starts aiosmtpd; needs DBKEEP_TEST_PYTHON (set by scripts/test.sh).
    pub fn start() -> Smtp {
        let python = std::env::var("DBKEEP_TEST_PYTHON")
            .expect("DBKEEP_TEST_PYTHON is not set: run the tests through scripts/test.sh, which installs aiosmtpd");
        let maildir = tempfile::Builder::new()
            .prefix("dbkeep-mail-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("box"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd");
        let smtp = Smtp {
            port,
            maildir,
            child,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return smtp;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("aiosmtpd did not start");
    }

    /// Every mail received, as text.
    pub fn mails(&self) -> Vec<String> {
        files(&self.maildir.path().join("box").join("new"))
            .into_iter()
            .map(|f| {
                std::fs::read_to_string(self.maildir.path().join("box").join("new").join(f))
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- HTTP and S3

/// One plain HTTP/1.1 request; returns the status and the body.
pub fn http(method: &str, url: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The S3 test server (moto), started by scripts/test.sh.
pub fn s3_endpoint() -> String {
    std::env::var("DBKEEP_TEST_S3_ENDPOINT")
        .expect("DBKEEP_TEST_S3_ENDPOINT is not set: run the tests through scripts/test.sh, which starts moto")
}

/// Creates a bucket with a unique name on `endpoint`; returns the name.
pub fn s3_bucket(endpoint: &str, prefix: &str) -> String {
    let name = unique(prefix).replace('_', "-").to_lowercase();
    let (status, body) = http("PUT", &format!("{endpoint}/{name}"), b"");
    assert!(
        status == 200,
        "cannot create bucket {name}: {status} {body}"
    );
    name
}

/// Every key in a bucket (through the server's API, not dbkeep's).
pub fn s3_keys(endpoint: &str, bucket: &str) -> Vec<String> {
    let (_, body) = http("GET", &format!("{endpoint}/{bucket}?list-type=2"), b"");
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// Multipart uploads still open in a bucket.
pub fn s3_open_uploads(endpoint: &str, bucket: &str) -> usize {
    let (_, body) = http("GET", &format!("{endpoint}/{bucket}?uploads"), b"");
    body.matches("<Upload>").count()
}

/// `s3://bucket/prefix` with the test endpoint as parameters.
pub fn s3_url(endpoint: &str, bucket: &str, prefix: &str) -> String {
    format!("s3://{bucket}/{prefix}?endpoint={endpoint}&path_style=true&region=us-east-1")
}

/// dbkeep with test credentials for S3.
pub fn dbkeep_s3() -> Command {
    let mut cmd = dbkeep();
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-key")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    cmd
}

/// Peak RSS (VmHWM, KiB) of a running child, polled until it exits.
pub fn peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if status.contains("State:\tZ") {
                break;
            }
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        peak
    })
}

/// Writes a real `pg_dump -Fc -Z0` archive of `db` to `path`.
pub fn pg_archive(db: &str, path: &Path) {
    let out = Command::new("pg_dump")
        .args([
            "-Fc",
            "-Z0",
            "-h",
            &pg_host(),
            "-p",
            &pg_port(),
            "-U",
            "postgres",
            "-f",
        ])
        .arg(path)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
