//! MariaDB: the test server, and private servers.

#[allow(unused_imports)]
use super::*;

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
        PrivateMariadb::start_with(&[])
    }

    /// Starts a new server with `args` added to mariadbd's command line
    /// (`{dir}` in them stands for the server's folder).
    pub fn start_with(args: &[&str]) -> PrivateMariadb {
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
        // Two servers started at once may be handed the same free port: the
        // one that loses exits, and is started again on another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(mariadbd)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--socket={}", dir.path().join("sock").display()))
                .args(
                    args.iter()
                        .map(|a| a.replace("{dir}", &dir.path().display().to_string())),
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("mariadbd");
            let mut up = false;
            for _ in 0..200 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                if let Some(dir_of) = try_sql_at(port, "select @@datadir") {
                    // Ours, not another server handed the same port.
                    up = dir_of.trim().trim_end_matches('/') == data.display().to_string();
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if up {
                return PrivateMariadb {
                    port,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the private MariaDB did not start");
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        try_sql_at(self.port, sql)
    }

    /// Runs SQL as root.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|| panic!("SQL failed on the private MariaDB: {sql}"))
    }
}

fn try_sql_at(port: u16, sql: &str) -> Option<String> {
    {
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
            .arg(format!("-P{port}"))
            .args(["-e", sql])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl PrivateMariadb {
    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
