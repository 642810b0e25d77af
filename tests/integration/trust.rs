//! The trust boundary: backups someone else could write, clocks that are
//! wrong, names chosen by tenants, and secrets in dbkeep's environment.
//! Crafted backups are made from real ones by rewriting an object and its
//! manifest entry, the way someone with write access to a storage could.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// The one backup folder of `job` under `backups`.
fn backup_dir(backups: &Path, job: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(backups.join(job))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// `dbkeep CMD --from BACKUPS --job JOB`.
fn from_backups(cmd: &str, backups: &Path, job: &str) -> Command {
    let mut c = dbkeep();
    c.args([cmd, "--from"]).arg(backups).args(["--job", job]);
    c
}

/// Asserts that a run failed and that its output says `why`.
#[track_caller]
fn refused(out: &std::process::Output, why: &str) {
    assert!(!out.status.success(), "expected a failure\n{}", text(out));
    assert!(text(out).contains(why), "expected `{why}`\n{}", text(out));
}

/// A SQLite file at `path` with one empty table.
fn empty_sqlite(path: &Path) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch("CREATE TABLE t (v TEXT);")
        .unwrap();
}

fn read_manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn write_manifest(dir: &Path, m: &serde_json::Value) {
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn zstd(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("zstd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Stores `plain` (zstd-compressed) as artifact `name` of the backup in
/// `dir`, with a manifest entry whose sizes and sha256 match: what someone
/// who can write the storage can do.
fn put_artifact(dir: &Path, name: &str, plain: &[u8], entry: serde_json::Value) {
    let stored = zstd(&["-q", "-c"], plain);
    std::fs::write(dir.join(name), &stored).unwrap();
    let mut m = read_manifest(dir);
    let mut entry = entry;
    entry["name"] = name.into();
    entry["raw_size"] = plain.len().into();
    entry["stored_size"] = stored.len().into();
    entry["sha256"] = sha256_hex(&stored).into();
    let artifacts = m["artifacts"].as_array_mut().unwrap();
    artifacts.retain(|a| a["name"] != name);
    artifacts.push(entry);
    write_manifest(dir, &m);
}

/// The decompressed content of artifact `name`.
fn artifact(dir: &Path, name: &str) -> Vec<u8> {
    zstd(&["-q", "-d", "-c"], &std::fs::read(dir.join(name)).unwrap())
}

// ------------------------------------------------- client-side commands

#[test]
fn a_mariadb_backup_cannot_run_commands_on_the_restoring_host() {
    let mut db = MyDb::new("trust_sandbox");
    mysql(&format!(
        "create table `{0}`.t (id int primary key); insert into `{0}`.t values (1), (2);",
        db.name
    ));
    let dir = tempdir();
    let backups = dir.path().join("backups");
    ok(run(dbkeep()
        .args(["backup", &my_url(&db.name), "--to"])
        .arg(&backups)));
    let folder = backup_dir(&backups, &db.name);
    let m = read_manifest(&folder);
    let name = m["artifacts"][0]["name"].as_str().unwrap().to_string();
    let entry = m["artifacts"][0].clone();
    let shell = dir.path().join("shell-ran");
    let system = dir.path().join("system-ran");
    let mut sql = artifact(&folder, &name);
    // A crafted dump leaves out the line with which mariadb-dump asks newer
    // clients to sandbox themselves.
    let head = String::from_utf8_lossy(&sql)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    if head.contains("sandbox") {
        sql.drain(..head.len() + 1);
    }
    let end = String::from_utf8_lossy(&sql)
        .rfind("-- Dump completed")
        .unwrap();
    sql.splice(
        end..end,
        format!(
            "\\! touch {}\nsystem touch {}\n",
            shell.display(),
            system.display()
        )
        .into_bytes(),
    );
    put_artifact(&folder, &name, &sql, entry);
    let verify = run(&mut from_backups("verify", &backups, &db.name));
    refused(&verify, "client-side command");

    let copy = db.another("copy");
    let out = run(dbkeep().args(["restore", "--from"]).arg(&backups).args([
        "--job",
        &db.name,
        "--target",
        &my_url(&copy),
    ]));
    refused(&out, "sandbox");
    assert!(
        !shell.exists(),
        "`\\!` ran a shell command on the restoring host"
    );
    assert!(
        !system.exists(),
        "`system` ran a shell command on the restoring host"
    );
    assert!(
        !my_exists(&copy),
        "the database the failed restore created is left"
    );
}

/// A PostgreSQL backup of `db` in `backups`, and its folder.
fn pg_backup(db: &str, backups: &Path) -> PathBuf {
    ok(run(dbkeep()
        .args(["backup", &pg_url(db), "--to"])
        .arg(backups)));
    backup_dir(backups, db)
}

#[test]
fn a_psql_script_with_client_commands_is_refused_before_anything_runs() {
    let mut db = PgDb::new("trust_psql");
    psql(
        &db.name,
        "create table t (id int primary key); insert into t values (1);",
    );
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let folder = pg_backup(&db.name, &backups);
    let ran = dir.path().join("psql-ran");
    let globals = |line: &str| {
        format!(
            "--\n\\restrict K1\nCREATE ROLE dbkeep_never;\n{line}\n\\unrestrict K1\n\
             --\n-- PostgreSQL database cluster dump complete\n--\n"
        )
    };
    for line in [
        format!("\\! touch {}", ran.display()),
        format!("select 1 \\! touch {}", ran.display()),
    ] {
        put_artifact(
            &folder,
            "globals.sql.zst",
            globals(&line).as_bytes(),
            serde_json::json!({"kind": "globals", "format": "pg_sql"}),
        );
        let verify = run(&mut from_backups("verify", &backups, &db.name));
        refused(&verify, "client-side command");

        let copy = db.another(&format!("c{}", line.len()));
        let out = run(dbkeep().args(["restore", "--from"]).arg(&backups).args([
            "--job",
            &db.name,
            "--target",
            &pg_url(&copy),
        ]));
        refused(&out, "client-side command");
        assert!(!ran.exists(), "the backup ran a command through psql");
        assert!(!pg_exists(&copy), "the refused restore created `{copy}`");
    }
}

#[test]
fn artifacts_must_be_what_their_engine_writes() {
    let mut db = PgDb::new("trust_kind");
    psql(&db.name, "create table t (id int primary key);");
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let folder = pg_backup(&db.name, &backups);
    let marker = format!("trust_kind_{}", std::process::id());
    // A "database" artifact in psql's format would be replayed against `postgres`.
    let mut m = read_manifest(&folder);
    let name = m["artifacts"][0]["name"].as_str().unwrap().to_string();
    m["artifacts"][0]["format"] = "pg_sql".into();
    write_manifest(&folder, &m);
    put_artifact(
        &folder,
        &name,
        format!("CREATE TABLE {marker} (x int);\n-- PostgreSQL database cluster dump complete\n")
            .as_bytes(),
        m["artifacts"][0].clone(),
    );
    for cmd in ["verify", "restore"] {
        let copy = db.another(cmd);
        let mut c = dbkeep();
        c.args([cmd, "--from"])
            .arg(&backups)
            .args(["--job", &db.name]);
        if cmd == "restore" {
            c.args(["--target", &pg_url(&copy)]);
        }
        let out = run(&mut c);
        assert!(!out.status.success(), "{cmd}: {}", text(&out));
        assert!(text(&out).contains("never writes"), "{cmd}: {}", text(&out));
        assert!(!pg_exists(&copy));
    }
    assert_eq!(
        psql(
            "postgres",
            &format!("select count(*) from pg_class where relname = '{marker}'")
        )
        .trim(),
        "0"
    );
}

// ------------------------------------------------- clocks and retention

fn sqlite_job(dir: &Path, extra: &str) -> PathBuf {
    let db = dir.join("app.db");
    if !db.exists() {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('one'), ('two');")
            .unwrap();
    }
    let path = dir.join("dbkeep.yaml");
    std::fs::write(
        &path,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n{extra}",
            dir.join("backups").display(),
            db.display()
        ),
    )
    .unwrap();
    path
}

fn ids(backups: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(backups.join("app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock.json")
        .collect();
    v.sort();
    v
}

/// Copies backup `from` to a folder dated `at` (RFC 3339).
fn redate(backups: &Path, from: &str, at: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let id = format!("{}-beef", t.format("%Y%m%dT%H%M%SZ"));
    let src = backups.join("app").join(from);
    let dst = backups.join("app").join(&id);
    std::fs::create_dir_all(&dst).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
    }
    let mut m = read_manifest(&dst);
    m["id"] = id.clone().into();
    m["started_at"] = t.to_rfc3339().into();
    m["finished_at"] = t.to_rfc3339().into();
    write_manifest(&dst, &m);
    id
}

#[test]
fn a_manifest_dated_in_the_future_deletes_nothing_and_is_never_picked() {
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let cfg = sqlite_job(dir.path(), "");
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    std::thread::sleep(Duration::from_millis(1100));
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    let real = ids(&backups);
    let future = redate(&backups, &real[0], "2035-01-01T00:00:00Z");

    // keep_within from the 2035 manifest would delete every real backup.
    let cfg = sqlite_job(dir.path(), "    retention: { keep_within: 7d }\n");
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app", "--json"])));
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new_id = result[0]["id"].as_str().unwrap().to_string();
    let rows = result[0]["retention"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["action"] == "keep"), "{out}");
    let row = rows.iter().find(|r| r["id"] == future.as_str()).unwrap();
    assert!(
        row["reasons"][0].as_str().unwrap().contains("future"),
        "{row}"
    );
    let mut want = real.clone();
    want.push(new_id.clone());
    want.push(future.clone());
    want.sort();
    assert_eq!(ids(&backups), want);

    // keep_last: 1 ranks only real backups; the one just made stays.
    let cfg = sqlite_job(dir.path(), "    retention: { keep_last: 1 }\n");
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app", "--json"])));
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    let newest = result[0]["id"].as_str().unwrap().to_string();
    let left = ids(&backups);
    assert!(
        left.contains(&newest) && left.contains(&future),
        "{left:?}\n{out}"
    );

    // A restore without --id never silently picks the 2035 backup.
    let target = dir.path().join("restored.db");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["restore", "app", "--target"])
        .arg(&target));
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&newest) && !shown.contains(&format!("from backup {future}")),
        "{shown}"
    );
    assert!(shown.contains("not choosing this backup"), "{shown}");
}

#[test]
fn an_automatic_prune_that_would_delete_most_backups_asks_for_force() {
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let cfg = sqlite_job(dir.path(), "");
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    let first = ids(&backups)[0].clone();
    for day in [
        "2026-01-01T03:00:00Z",
        "2026-01-02T03:00:00Z",
        "2026-01-03T03:00:00Z",
    ] {
        redate(&backups, &first, day);
    }
    let before = ids(&backups);
    let cfg = sqlite_job(dir.path(), "    retention: { keep_last: 1 }\n");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app", "--json"]));
    let shown = text(&out);
    assert!(out.status.success(), "the backup itself succeeded: {shown}");
    assert!(shown.contains("dbkeep prune --force app"), "{shown}");
    assert_eq!(
        ids(&backups).len(),
        before.len() + 1,
        "the automatic prune deleted backups"
    );
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["prune", "--force", "app"])));
    assert!(out.contains("1 backups kept, 4 deleted"), "{out}");
}

// ------------------------------------------------- names

#[test]
fn a_database_named_like_an_option_is_refused() {
    let server = PrivateMariadb::start();
    server.sql("create database `--all-databases`; create database keep_me; create table keep_me.t (x int);");
    let dir = tempdir();
    let cfg = write_config(
        dir.path(),
        "app",
        &format!(
            "type: mariadb\nhost: 127.0.0.1\nport: {}\nuser: root\ndatabases: all",
            server.port
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    refused(&out, "`--all-databases`");
    assert!(manifests(&dir.path().join("backups")).is_empty());

    let cfg = write_config(
        dir.path(),
        "app",
        &format!(
            "type: mariadb\nhost: 127.0.0.1\nport: {}\nuser: root\ndatabases: [\"--all-databases\"]",
            server.port
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("databases[0]"), "{}", text(&out));
}

// ------------------------------------------------- inherited secrets

const SECRETS: [(&str, &str); 7] = [
    ("PGPASSWORD", "pg-secret-3141"),
    ("DBKEEP_AGE_PASSPHRASE", "age-secret-2718"),
    ("AWS_SECRET_ACCESS_KEY", "aws-secret-1618"),
    ("REDISCLI_AUTH", "redis-secret-1414"),
    ("AZURE_STORAGE_KEY", "azure-secret-1732"),
    ("AZURE_CLIENT_SECRET", "azure-sp-secret-1123"),
    ("IDENTITY_HEADER", "identity-header-5813"),
];

#[test]
fn hooks_and_tools_do_not_inherit_secrets() {
    let db = MyDb::new("trust_env");
    mysql(&format!(
        "create table `{}`.t (x int); insert into `{0}`.t values (7);",
        db.name
    ));
    let user = unique("dbk");
    let password = "my-pw-9876";
    mysql(&format!(
        "create user '{user}'@'%' identified by '{password}'; grant all on `{}`.* to '{user}'@'%';",
        db.name
    ));
    let dir = tempdir();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let tool_env = dir.path().join("tool.env");
    let tool_args = dir.path().join("tool.args");
    stand_in(
        &bin,
        "mariadb-dump",
        &format!(
            "env > {}\necho \"$@\" > {}\nexec {} \"$@\"",
            tool_env.display(),
            tool_args.display(),
            which("mariadb-dump").display()
        ),
    );
    std::os::unix::fs::symlink(which("mariadb"), bin.join("mariadb")).unwrap();
    let hook_env = dir.path().join("hook.env");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let cfg = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &cfg,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\n\
             jobs:\n  app:\n    source: {{ type: mariadb, host: {}, port: {}, user: {user}, password: {password}, database: {}, bin_dir: {} }}\n\
             \x20   hooks:\n      after: [[sh, -c, 'env > {}']]\n      pass_env: [WANTED_TOKEN]\n      env: {{ EXTRA: extra-value }}\n",
            dir.path().join("backups").display(),
            my_host(),
            my_port(),
            db.name,
            bin.display(),
            hook_env.display()
        ),
    )
    .unwrap();
    let mut cmd = dbkeep();
    cmd.arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .env("TMPDIR", &tmp)
        .env("WANTED_TOKEN", "wanted-1");
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    ok(run(&mut cmd));
    let hook = std::fs::read_to_string(&hook_env).unwrap();
    let tool = std::fs::read_to_string(&tool_env).unwrap();
    for (k, v) in SECRETS {
        assert!(!hook.contains(v), "the hook inherited {k}:\n{hook}");
        assert!(!tool.contains(v), "mariadb-dump inherited {k}:\n{tool}");
    }
    assert!(!hook.contains(password) && !tool.contains(password));
    assert!(
        hook.contains("DBKEEP_JOB=app") && hook.contains("DBKEEP_STATUS=success"),
        "{hook}"
    );
    assert!(
        hook.contains("WANTED_TOKEN=wanted-1") && hook.contains("EXTRA=extra-value"),
        "{hook}"
    );
    assert!(hook.lines().any(|l| l.starts_with("PATH=")), "{hook}");
    // The password reached the tool on an unnamed pipe, never in a file.
    let args = std::fs::read_to_string(&tool_args).unwrap();
    assert!(args.starts_with("--defaults-extra-file=/dev/fd/"), "{args}");
    assert!(!args.contains(password));
    assert_eq!(
        files(&tmp),
        Vec::<String>::new(),
        "secret files left in TMPDIR"
    );
    mysql(&format!("drop user '{user}'@'%'"));
}

// ------------------------------------------------- restore targets

#[test]
fn a_restore_never_uses_or_drops_a_database_that_appeared_meanwhile() {
    let mut a = PgDb::new("trust_appear");
    let b = a.another("b");
    psql("postgres", &format!("create database \"{b}\""));
    psql(
        &a.name,
        "create table t (id int primary key); insert into t values (1);",
    );
    psql(
        &b,
        "create table u (id int primary key); insert into u values (2);",
    );
    let dir = tempdir();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["pg_dump", "psql"] {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    // While `a` is being restored, someone creates `b` and puts a table in it.
    stand_in(
        &bin,
        "pg_restore",
        &format!(
            "case \"$*\" in *\"dbname='{a}'\"*)\n  {psql} -X -q -h {h} -p {p} -U postgres -d postgres -c 'create database \"{b}\"'\n  \
             {psql} -X -q -h {h} -p {p} -U postgres -d '{b}' -c 'create table intruder (x int)';;\nesac\nexec {real} \"$@\"",
            a = a.name,
            psql = which("psql").display(),
            h = pg_host(),
            p = pg_port(),
            real = which("pg_restore").display()
        ),
    );
    let cfg = write_config(
        dir.path(),
        "app",
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabases: [{}, {b}]\nbin_dir: {}",
            pg_host(),
            pg_port(),
            a.name,
            bin.display()
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    for db in [&a.name, &b] {
        psql("postgres", &format!("drop database \"{db}\""));
    }
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["restore", "app"]));
    refused(&out, &format!("`{b}` holds"));
    assert!(
        pg_exists(&b),
        "the restore dropped a database it did not create"
    );
    assert_eq!(
        psql(&b, "select string_agg(relname, ',' order by relname) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace").trim(),
        "intruder",
        "the restore wrote into a database it did not create"
    );
    assert_eq!(pg_rows(&a.name, "t"), "1\n");
}

// ------------------------------------------------- signed manifests

#[test]
fn signed_manifests_refuse_forgeries_and_plain_copies() {
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let key = dir.path().join("signing.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef-test\n").unwrap();
    let plain_cfg = sqlite_job(dir.path(), "");
    ok(run(dbkeep()
        .arg("-c")
        .arg(&plain_cfg)
        .args(["backup", "app"])));
    let unsigned = ids(&backups)[0].clone();
    let signed_cfg = dir.path().join("signed.yaml");
    std::fs::write(
        &signed_cfg,
        format!(
            "{}signing: {{ key_file: {} }}\n",
            std::fs::read_to_string(&plain_cfg).unwrap(),
            key.display()
        ),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&signed_cfg)
        .args(["backup", "app", "--json"])));
    let signed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let signed = signed[0]["id"].as_str().unwrap().to_string();
    let folder = backups.join("app").join(&signed);
    assert!(read_manifest(&folder)["authentication"]["mac"].is_string());
    ok(run(dbkeep()
        .arg("-c")
        .arg(&signed_cfg)
        .args(["verify", "app", "--id", &signed])));

    // An unsigned backup is not trusted once the job signs.
    let out = run(dbkeep()
        .arg("-c")
        .arg(&signed_cfg)
        .args(["verify", "app", "--id", &unsigned]));
    assert!(
        !out.status.success() && text(&out).contains("not signed"),
        "{}",
        text(&out)
    );

    // An altered manifest fails its signature everywhere.
    let mut m = read_manifest(&folder);
    m["hostname"] = "elsewhere".into();
    write_manifest(&folder, &m);
    for cmd in ["verify", "restore"] {
        let target = dir.path().join("r.db");
        let mut c = dbkeep();
        c.arg("-c")
            .arg(&signed_cfg)
            .args([cmd, "app", "--id", &signed]);
        if cmd == "restore" {
            c.arg("--target").arg(&target);
        }
        let out = run(&mut c);
        refused(&out, "signature does not match");
        assert!(!target.exists());
    }
    let listed = ok(run(dbkeep()
        .arg("-c")
        .arg(&signed_cfg)
        .args(["list", "app", "--json"])));
    assert!(
        !listed.contains(&signed),
        "list showed a forged backup: {listed}"
    );
    // prune keeps what it cannot trust.
    let cfg = dir.path().join("prune.yaml");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&signed_cfg)
            .unwrap()
            .replace("signing:", "    retention: { keep_last: 1 }\nsigning:"),
    )
    .unwrap();
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["prune", "--force", "app", "--json"])));
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "keep"),
        "{out}"
    );
    assert_eq!(ids(&backups).len(), 2);
}

#[test]
fn a_job_refuses_plain_backups_when_it_encrypts_and_foreign_database_lists() {
    let mut db = PgDb::new("trust_names");
    psql(
        &db.name,
        "create table t (id int primary key); insert into t values (1);",
    );
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let folder = pg_backup(&db.name, &backups);
    let copy = db.another("copy");
    let cfg = dir.path().join("dbkeep.yaml");
    let write = |extra: &str| {
        std::fs::write(
            &cfg,
            format!(
                "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  {}:\n    source: {{ type: postgres, host: {}, port: {}, user: postgres, database: {} }}\n{extra}",
                backups.display(),
                db.name,
                pg_host(),
                pg_port(),
                db.name
            ),
        )
        .unwrap();
    };
    // The job encrypts; the backup in its folder is plain.
    write(
        "    encryption: { age: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] } }\n",
    );
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["restore", &db.name, "--to-database", &copy]));
    refused(&out, "not encrypted");
    assert!(!pg_exists(&copy));

    // The manifest claims other databases than the job's.
    write("");
    let mut m = read_manifest(&folder);
    m["databases"] = serde_json::json!([db.name, "postgres\u{1b}[2J"]);
    write_manifest(&folder, &m);
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["restore", &db.name, "--to-database", &copy]));
    refused(&out, "--database NAME");
    assert!(
        text(&out).contains("\\u{1b}[2J") && !text(&out).contains('\u{1b}'),
        "{}",
        text(&out)
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "restore",
        &db.name,
        "--database",
        &db.name,
        "--to-database",
        &copy,
    ])));
    assert_eq!(pg_rows(&copy, "t"), "1\n");
}

// ------------------------------------------------- bombs, signals, pipes

#[test]
fn a_decompression_bomb_stops_at_the_recorded_size() {
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let cfg = sqlite_job(dir.path(), "");
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    let folder = backups.join("app").join(&ids(&backups)[0]);
    let mut m = read_manifest(&folder);
    let name = m["artifacts"][0]["name"].as_str().unwrap().to_string();
    let raw = m["artifacts"][0]["raw_size"].as_u64().unwrap();
    let zeros = vec![0u8; 300 << 20];
    let bomb = zstd(&["-q", "-c", "-19"], &zeros);
    drop(zeros);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    std::fs::write(folder.join(&name), &bomb).unwrap();
    m["artifacts"][0]["stored_size"] = bomb.len().into();
    m["artifacts"][0]["sha256"] = sha256_hex(&bomb).into();
    write_manifest(&folder, &m);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["verify", "app"])
        .env("TMPDIR", &tmp));
    refused(&out, &format!("decompresses to more than the {raw} bytes"));
    let target = dir.path().join("restored.db");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["restore", "app", "--target"])
        .arg(&target));
    refused(&out, "decompresses to more than");
    assert!(!target.exists());
}

#[test]
fn a_second_signal_kills_the_tools_and_leaves_no_secret_file() {
    let dir = tempdir();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let pid_file = dir.path().join("tool.pid");
    // A stand-in dump tool that ignores SIGTERM and never ends.
    stand_in(
        &bin,
        "mongodump",
        &format!(
            "case \"$*\" in *--version*) echo 'mongodump version: 100.7.0'; exit 0;; esac\n\
             trap '' TERM\necho \"$@\" > {}.args\necho $$ > {}\nexec sleep 600",
            pid_file.display(),
            pid_file.display()
        ),
    );
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let cfg = write_config(
        dir.path(),
        "app",
        &format!(
            "type: mongodb\nhost: 127.0.0.1\nport: 1\nuser: u\npassword: mongo-pw-1234\ndatabase: app\nbin_dir: {}",
            bin.display()
        ),
    );
    let mut child = dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !pid_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the stand-in never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let tool_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(200));
    // Killed, though perhaps not yet reaped (a zombie is dead).
    let alive = std::fs::read_to_string(format!("/proc/{tool_pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    });
    if alive {
        unsafe { libc::kill(tool_pid, libc::SIGKILL) };
    }
    assert!(!alive, "the dump tool outlived dbkeep");
    assert_eq!(
        files(&tmp),
        Vec::<String>::new(),
        "secret files left behind"
    );
    assert!(manifests(&dir.path().join("backups")).is_empty());
    // The connection string, password included, reached the tool on a pipe.
    let args = std::fs::read_to_string(dir.path().join("tool.pid.args")).unwrap();
    assert!(
        args.contains("--config=/dev/fd/") && !args.contains("mongo-pw-1234"),
        "{args}"
    );
}

#[test]
fn a_closed_stdout_pipe_does_not_skip_jobs_or_hide_failures() {
    let dir = tempdir();
    let db = dir.path().join("app.db");
    empty_sqlite(&db);
    let cfg = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &cfg,
        format!(
            "storages:\n  local: {{ type: local, path: {} }}\njobs:\n  a: {{ source: {{ type: sqlite, path: {} }} }}\n  \
             b: {{ source: {{ type: sqlite, path: {} }} }}\n  c: {{ source: {{ type: sqlite, path: {} }} }}\n",
            dir.path().join("backups").display(),
            db.display(),
            dir.path().join("missing.db").display(),
            db.display()
        ),
    )
    .unwrap();
    let mut child = dbkeep()
        .arg("-c")
        .arg(&cfg)
        .arg("backup")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read nothing: close the pipe at once, as `| head -c0` would.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "job b failed, so the run is partial"
    );
    for job in ["a", "c"] {
        assert_eq!(
            manifests(&dir.path().join("backups").join(job)).len(),
            1,
            "job {job} was skipped"
        );
    }
}

// ------------------------------------------------- smaller edges

#[test]
fn url_storage_options_are_validated_like_config_storages() {
    let dir = tempdir();
    let db = dir.path().join("app.db");
    empty_sqlite(&db);
    for (url, key) in [
        ("s3://bucket/p?part_size_mib=0", "part_size_mib"),
        ("s3://bucket/p?parallel_parts=many", "parallel_parts"),
    ] {
        let out = run(dbkeep().arg("backup").arg(&db).args(["--to", url]));
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out));
        assert!(text(&out).contains(key), "{url}: {}", text(&out));
    }
}

#[test]
fn a_plain_text_smtp_password_is_refused_unless_the_relay_is_local() {
    let dir = tempdir();
    let cfg = dir.path().join("dbkeep.yaml");
    let write = |host: &str| {
        std::fs::write(
            &cfg,
            format!(
                "notifiers:\n  mail: {{ type: email, smtp_host: {host}, tls: none, username: u, password: pw12345678, \
                 from: a@example.com, to: [b@example.com] }}\n"
            ),
        )
        .unwrap();
    };
    write("smtp.example.com");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["config", "validate", "--no-environment"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("notifiers.mail.tls"), "{}", text(&out));
    write("127.0.0.1");
    ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "config",
        "validate",
        "--no-environment",
    ])));
}

#[test]
fn config_show_never_prints_secret_hook_arguments_or_pushgateway_credentials() {
    let dir = tempdir();
    let cfg = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &cfg,
        "hooks:\n  after: [[/bin/true, --token, { secret: hook-secret-5150 }]]\n\
         metrics: { pushgateway: \"http://user:push-secret-8080@127.0.0.1:9091\" }\n",
    )
    .unwrap();
    let out = ok(run(dbkeep().arg("-c").arg(&cfg).args(["config", "show"])));
    assert!(
        !out.contains("hook-secret-5150") && !out.contains("push-secret-8080"),
        "{out}"
    );
    assert!(out.contains("--token"), "{out}");
}

#[test]
fn a_config_file_others_can_write_is_not_picked_up_from_the_current_folder() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let cfg = dir.path().join("dbkeep.yaml");
    std::fs::write(&cfg, "jobs: {}\n").unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(dbkeep()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["config", "show"]));
    refused(&out, "other users can write it");
    // `config init` writes a file only its owner can read.
    let made = dir.path().join("new.yaml");
    ok(run(dbkeep().args(["config", "init"]).arg(&made)));
    let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_sqlite_restore_keeps_the_mode_of_the_file_it_replaces() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let cfg = sqlite_job(dir.path(), "");
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    let target = dir.path().join("target.db");
    rusqlite::Connection::open(&target)
        .unwrap()
        .execute_batch("CREATE TABLE old (x);")
        .unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["restore", "app", "--force", "--target"])
        .arg(&target)));
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let c = rusqlite::Connection::open(&target).unwrap();
    let n: i64 = c
        .query_row("select count(*) from t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn prune_removes_crash_leftovers_once_they_are_old() {
    let dir = tempdir();
    let backups = dir.path().join("backups");
    let cfg = sqlite_job(
        dir.path(),
        "    retention: { keep_last: 5, incomplete_after: 1h }\n",
    );
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
    let folder = backups.join("app").join(&ids(&backups)[0]);
    let old = folder.join(".app.sqlite.zst.tmp-999-0");
    let young = folder.join(".other.tmp-998-0");
    std::fs::write(&old, b"partial").unwrap();
    std::fs::write(&young, b"partial").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    ok(run(dbkeep().arg("-c").arg(&cfg).args(["prune", "app"])));
    assert!(!old.exists(), "an old leftover was kept");
    assert!(
        young.exists(),
        "a leftover younger than incomplete_after was removed"
    );
}

#[test]
fn a_dump_that_waits_for_a_table_lock_gives_up_after_lock_wait_timeout() {
    let db = PgDb::new("trust_lockwait");
    psql(&db.name, "create table t (id int primary key);");
    // Another session holds an exclusive lock on the table.
    let mut holder = Command::new("psql")
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
            &db.name,
            "-c",
        ])
        .arg("begin; lock table t in access exclusive mode; select pg_sleep(60);")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while psql(&db.name, "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 't' and l.mode = 'AccessExclusiveLock'").trim() != "1" {
        assert!(started.elapsed() < Duration::from_secs(20), "the lock was never taken");
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempdir();
    let cfg = write_config(
        dir.path(),
        "app",
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}\nlock_wait_timeout: 1s",
            pg_host(),
            pg_port(),
            db.name
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["backup", "app"]));
    let _ = holder.kill();
    let _ = holder.wait();
    refused(&out, "due to statement timeout");
    assert!(manifests(&dir.path().join("backups")).is_empty());
}
