//! TLS to PostgreSQL and MariaDB: private TLS-only servers started by
//! scripts/test.sh, with a test CA made by openssl.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts the TLS-only servers")
    })
}

/// A file of the test PKI (`ca.pem`, `other-ca.pem`, `client.pem`, `client.key`).
fn pki(file: &str) -> PathBuf {
    PathBuf::from(env("DBKEEP_TEST_TLS_DIR")).join(file)
}

// ---------------------------------------------------------------- PostgreSQL

fn pg_port() -> String {
    env("DBKEEP_TEST_PGTLS_PORT")
}

/// Runs SQL on the TLS-only cluster (psql over TLS, CA checked).
#[track_caller]
fn tls_psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} sslmode=verify-full sslrootcert={}",
            pg_port(),
            pki("ca.pem").display()
        ))
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

/// A database on the TLS-only cluster, dropped on drop with the others it named.
struct TlsPgDb {
    names: Vec<String>,
}

impl TlsPgDb {
    fn new(prefix: &str) -> TlsPgDb {
        let name = unique(prefix);
        tls_psql("postgres", &format!("create database {name}"));
        TlsPgDb { names: vec![name] }
    }

    fn name(&self) -> &str {
        &self.names[0]
    }

    /// Another name, dropped too (for restore targets).
    fn another(&mut self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.names[0]);
        self.names.push(name.clone());
        name
    }
}

impl Drop for TlsPgDb {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-d"])
                .arg(format!(
                    "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
                    pg_port()
                ))
                .arg("-c")
                .arg(format!("drop database if exists {n} with (force)"))
                .output();
        }
    }
}

fn pg_tls_url(db: &str, query: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{db}?{query}", pg_port())
}

#[test]
fn postgres_backs_up_and_restores_over_verify_full() {
    let mut db = TlsPgDb::new("pgtls");
    tls_psql(
        db.name(),
        "create table t (id int primary key, v text); insert into t select i, 'tls ' || i from generate_series(1, 300) i",
    );
    let verify = format!(
        "sslmode=verify-full&sslrootcert={}",
        pki("ca.pem").display()
    );
    let dir = tempdir();
    // The backup goes through a URL, into the folder of the config's storage,
    // under the job name a URL backup takes (the database's).
    ok(run(dbkeep()
        .args(["backup", &pg_tls_url(db.name(), &verify), "--to"])
        .arg(dir.path().join("backups"))));
    // The restore goes through a config file's `tls:` block.
    let copy = db.another("copy");
    let config = write_config(
        dir.path(),
        db.name(),
        &format!(
            "type: postgres\nhost: 127.0.0.1\nport: {}\nuser: postgres\ndatabase: {}\n\
             tls: {{ mode: verify-full, ca_file: {} }}",
            pg_port(),
            db.name(),
            pki("ca.pem").display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        db.name(),
        "--to-database",
        &copy,
    ])));
    let rows = |d: &str| tls_psql(d, "copy (select * from t order by 1) to stdout");
    assert_eq!(rows(db.name()), rows(&copy));
    assert_eq!(rows(&copy).lines().count(), 300);
}

#[test]
fn postgres_signed_by_another_ca_is_refused_and_names_the_host() {
    let db = TlsPgDb::new("pgtls_ca");
    let dir = tempdir();
    let backups = dir.path().join("b");
    let wrong = format!(
        "sslmode=verify-full&sslrootcert={}",
        pki("other-ca.pem").display()
    );
    let out = run(dbkeep()
        .args(["backup", &pg_tls_url(db.name(), &wrong), "--to"])
        .arg(&backups));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(manifests(&backups).is_empty(), "a manifest was written");
    // A plain connection is refused by the server itself.
    let out = run(dbkeep()
        .args(["backup", &pg_tls_url(db.name(), "sslmode=disable"), "--to"])
        .arg(&backups));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no encryption"), "{err}");
}

// ---------------------------------------------------------------- MariaDB

fn my_port() -> String {
    env("DBKEEP_TEST_MYTLS_PORT")
}

/// SQL as root over the TLS server's socket.
#[track_caller]
fn tls_mysql(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", "--batch", "--skip-column-names"])
        .arg(format!("--socket={}", env("DBKEEP_TEST_MYTLS_SOCKET")))
        .arg("-e")
        .arg(sql)
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "mariadb failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct TlsMyDb(String);

impl Drop for TlsMyDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["--no-defaults", "-uroot"])
            .arg(format!("--socket={}", env("DBKEEP_TEST_MYTLS_SOCKET")))
            .arg("-e")
            .arg(format!("drop database if exists `{}`", self.0))
            .output();
    }
}

fn my_tls_config(dir: &std::path::Path, db: &str, tls: &str) -> PathBuf {
    write_config(
        dir,
        db,
        &format!(
            "type: mariadb\nhost: 127.0.0.1\nport: {}\nuser: tls\npassword: tls-pw-1\ndatabase: {db}\ntls: {tls}",
            my_port()
        ),
    )
}

#[test]
fn a_require_ssl_mariadb_user_backs_up_and_restores() {
    let db = TlsMyDb(unique("mytls"));
    tls_mysql(&format!(
        "create database {0}; use {0}; create table t (id int primary key, v varchar(20)); \
         insert into t select seq, concat('tls ', seq) from seq_1_to_250",
        db.0
    ));
    let before = tls_mysql(&format!("select * from {}.t order by id", db.0));
    let dir = tempdir();
    let config = my_tls_config(
        dir.path(),
        &db.0,
        &format!(
            "{{ mode: verify-full, ca_file: {} }}",
            pki("ca.pem").display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    tls_mysql(&format!("drop database {0}; create database {0}", db.0));
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", &db.0])));
    assert_eq!(
        tls_mysql(&format!("select * from {}.t order by id", db.0)),
        before
    );
    assert_eq!(before.lines().count(), 250);

    // Without TLS the server refuses the user: a failed backup, not an empty one.
    let config = my_tls_config(dir.path(), &db.0, "{ mode: disable }");
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Access denied"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_mariadb_server_signed_by_another_ca_is_refused() {
    let db = TlsMyDb(unique("mytls_ca"));
    tls_mysql(&format!("create database {}", db.0));
    let dir = tempdir();
    let backups = dir.path().join("b");
    let url = format!(
        "mariadb://tls:tls-pw-1@127.0.0.1:{}/{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
        my_port(),
        db.0,
        pki("other-ca.pem").display()
    );
    let out = run(dbkeep().args(["backup", &url, "--to"]).arg(&backups));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("SSL"),
        "{err}"
    );
    assert!(!err.contains("tls-pw-1"), "the password leaked: {err}");
    assert!(manifests(&backups).is_empty(), "a manifest was written");
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_over_verify_full_postgres_shows_tls_sizes_and_the_largest_tables() {
    let db = TlsPgDb::new("pgtls_inspect");
    tls_psql(
        db.name(),
        "create table big (id int primary key, v text); insert into big select i, repeat('x', 200) from generate_series(1, 5000) i; \
         create table small (id int); insert into small values (1)",
    );
    let url = pg_tls_url(
        db.name(),
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pki("ca.pem").display()
        ),
    );
    let j = inspect_json(&[&url]);
    assert_eq!(j["engine"], "postgres");
    assert!(
        j["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric),
        "{j}"
    );
    assert!(j["client"].as_str().unwrap().contains("pg_dump"), "{j}");
    assert_eq!(j["tls"]["in_use"], true, "{j}");
    assert!(j["tls"]["detail"].as_str().unwrap().contains("TLS"), "{j}");
    assert_eq!(j["databases"][0]["name"], db.name());
    assert!(
        j["databases"][0]["bytes"].as_u64().unwrap() > 1_000_000,
        "{j}"
    );
    assert_eq!(j["largest_tables"][0]["table"], "public.big", "{j}");
    assert_eq!(j["largest_tables"][1]["table"], "public.small", "{j}");
    // The heap of `big`: at least its 5000 rows of 200 bytes.
    let estimate = j["estimated_dump_bytes"].as_u64().unwrap();
    assert!((1_000_000..5_000_000).contains(&estimate), "{j}");

    // The same source with TLS switched off is refused by the hostssl-only server.
    let plain = run(dbkeep().args(["inspect", &pg_tls_url(db.name(), "sslmode=disable")]));
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));
}

#[test]
fn inspect_of_a_require_ssl_mariadb_job_shows_tls_and_table_sizes() {
    let db = TlsMyDb(unique("mytls_inspect"));
    tls_mysql(&format!(
        "create database {0}; use {0}; create table big (id int primary key, v varchar(300)); \
         insert into big select seq, repeat('y', 250) from seq_1_to_4000; create table small (id int); \
         analyze table big",
        db.0
    ));
    let dir = tempdir();
    let config = my_tls_config(
        dir.path(),
        &db.0,
        &format!(
            "{{ mode: verify-full, ca_file: {} }}",
            pki("ca.pem").display()
        ),
    );
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["inspect", &db.0, "--json"])));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["engine"], "mariadb");
    assert!(
        j["server_version"].as_str().unwrap().contains("MariaDB"),
        "{j}"
    );
    assert_eq!(j["tls"]["in_use"], true, "{j}");
    assert!(j["tls"]["detail"].as_str().unwrap().contains("TLS"), "{j}");
    assert_eq!(j["databases"][0]["name"], db.0.as_str());
    assert!(
        j["databases"][0]["bytes"].as_u64().unwrap() > 900_000,
        "{j}"
    );
    assert_eq!(j["largest_tables"][0]["table"], "big", "{j}");
    assert_eq!(j["largest_tables"][0]["database"], db.0.as_str(), "{j}");
    assert!(j["estimated_dump_bytes"].as_u64().unwrap() > 900_000, "{j}");
    // The storage folder of the job was never made.
    assert!(!dir.path().join("backups").exists());

    // The human form says the same.
    let human = ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["inspect", &db.0])));
    assert!(human.contains("TLS:             in use (TLS"), "{human}");
    assert!(human.contains(&format!("{}.big", db.0)), "{human}");
    assert!(!human.contains("tls-pw-1"), "{human}");
}
