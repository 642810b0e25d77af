//! PostgreSQL round trips against the real server.

use std::process::Command;

use crate::util::*;

/// Builds a database with every kind of column the round trip must keep.
fn fill(db: &str) {
    psql(
        db,
        r#"
        create table kinds (
            id int primary key, small smallint, big bigint, num numeric(30,10), dbl double precision,
            txt text, blob bytea, doc json, docb jsonb, at timestamptz, flag boolean);
        insert into kinds values
          (1, 1, 9223372036854775807, 12345678901234567890.0123456789, 1.5e300,
           E'line one\nline two\ttab', '\x00ff10'::bytea, '{"a": [1, 2]}', '{"k": "v"}', '2026-01-02 03:04:05+00', true),
          (2, -32768, -1, -0.0000000001, 'NaN', 'Zoë – ✓ 日本語 🎉', ''::bytea, 'null', '[]', 'infinity', false),
          (3, null, null, null, null, null, null, null, null, null, null),
          (4, 0, 0, 0, 0, '', E'\\x5c00'::bytea, '"s"', '{"nested": {"deep": [true, null]}}', '1999-12-31 23:59:59.999999+00', null);
        create table big (id bigserial primary key, payload text not null, n numeric, created timestamptz);
        insert into big (payload, n, created)
          select md5(i::text) || repeat(chr(65 + i % 26), i % 40), i * 1.5, '2026-01-01'::timestamptz + i * interval '1 minute'
          from generate_series(1, 100000) i;
        create index big_n on big (n);
        create unique index kinds_txt on kinds (txt) where txt is not null;
        create view flagged as select id, txt from kinds where flag;
        create sequence counter start 40;
        select nextval('counter'), nextval('counter');
        create function add_one(int) returns int language sql immutable as 'select $1 + 1';
        "#,
    );
}

/// Schema objects as text: indexes, views, sequence positions, functions.
fn schema(db: &str) -> String {
    psql(
        db,
        "select 'index ' || indexname || ' ' || indexdef from pg_indexes where schemaname = 'public' \
         union all select 'view ' || viewname || ' ' || definition from pg_views where schemaname = 'public' \
         union all select 'seq counter ' || last_value from counter \
         union all select 'seq big ' || last_value from big_id_seq \
         union all select 'fn ' || p.proname || ' ' || p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public' \
         order by 1",
    )
}

#[test]
fn round_trip_through_a_config_job() {
    let mut db = PgDb::new("pg_rt");
    fill(&db.name);
    let copy = db.another("copy");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "app",
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}",
            pg_host(),
            pg_port(),
            db.name
        ),
    );

    let out = ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    assert!(out.contains("app: backup "), "{out}");
    let m = manifests(&dir.path().join("backups"));
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["engine"], "postgres");
    assert_eq!(m[0]["dump_tool"], "pg_dump");
    assert_eq!(m[0]["databases"][0], db.name.as_str());
    assert_eq!(m[0]["artifacts"][0]["format"], "pg_custom");

    ok(run(dbkeep().arg("-c").arg(&config).args(["verify", "app"])));
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "app",
        "--to-database",
        &copy,
    ])));

    for table in ["kinds", "big"] {
        let (a, b) = (pg_rows(&db.name, table), pg_rows(&copy, table));
        assert!(!a.is_empty());
        assert!(a == b, "table {table} differs after restore");
    }
    assert_eq!(pg_rows(&copy, "big").lines().count(), 100_000);
    assert_eq!(schema(&db.name), schema(&copy));
    assert_eq!(psql(&copy, "select add_one(41)").trim(), "42");
}

#[test]
fn one_off_backup_and_config_less_restore() {
    let mut db = PgDb::new("pg_oneoff");
    psql(
        &db.name,
        "create table t (id int primary key, v text); insert into t select i, 'v' || i from generate_series(1, 500) i",
    );
    let copy = db.another("copy");
    let dir = tempdir();
    let backups = dir.path().join("b");
    let out = run(dbkeep()
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&backups)
        .args(["--compression", "gzip"]));
    ok(out.clone());
    // Without `bin_dir`, the newest installed client that fits the server is used, and said.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("using PostgreSQL client") && log.contains("/bin"),
        "{log}"
    );

    let listed = ok(run(dbkeep()
        .args(["list", "--json", "--from"])
        .arg(&backups)));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["job"], db.name.as_str());
    assert_eq!(listed[0]["compression"], "gzip");

    ok(run(dbkeep()
        .args(["restore", "--from"])
        .arg(&backups)
        .args(["--job", &db.name, "--target", &pg_url(&copy)])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));
}

#[test]
fn non_empty_target_is_refused_and_left_alone() {
    let mut db = PgDb::new("pg_nonempty");
    psql(
        &db.name,
        "create table t (id int primary key, v text); insert into t values (1, 'backup')",
    );
    let target = db.another("target");
    psql("postgres", &format!("create database \"{target}\""));
    psql(
        &target,
        "create table keep_me (id int); insert into keep_me values (7)",
    );
    let dir = tempdir();
    let b = dir.path().join("b");
    ok(run(dbkeep()
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&b)));

    let out = run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &pg_url(&target)]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("non-empty") && err.contains("public.keep_me") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        psql(
            &target,
            "select count(*) from pg_tables where schemaname = 'public'"
        )
        .trim(),
        "1"
    );
    assert_eq!(psql(&target, "select * from keep_me").trim(), "7");

    // With --force the backup's objects are restored next to what was there.
    ok(run(dbkeep()
        .args(["restore", "--force", "--from"])
        .arg(&b)
        .args(["--target", &pg_url(&target)])));
    assert_eq!(pg_rows(&target, "t"), "1\tbackup\n");
}

#[test]
fn tampered_backup_is_refused_before_the_target_exists() {
    let mut db = PgDb::new("pg_tamper");
    psql(
        &db.name,
        "create table t (id int); insert into t select generate_series(1, 20000)",
    );
    let target = db.another("target");
    let dir = tempdir();
    let b = dir.path().join("b");
    ok(run(dbkeep()
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&b)));
    let object = files(&b)
        .into_iter()
        .find(|f| f.ends_with(".pgdump.zst"))
        .unwrap();
    let path = b.join(&object);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let out = run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &pg_url(&target)]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sha256") && err.contains("corrupt"), "{err}");
    assert!(
        !pg_exists(&target),
        "the target database must not be created"
    );

    let out = run(dbkeep().args(["verify", "--from"]).arg(&b));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn restore_picks_by_id_and_before() {
    let mut db = PgDb::new("pg_pick");
    let copy = db.another("copy");
    let dir = tempdir();
    let b = dir.path().join("b");
    psql(&db.name, "create table t (v int); insert into t values (1)");
    ok(run(dbkeep()
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&b)));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    psql(&db.name, "insert into t values (2)");
    ok(run(dbkeep()
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(&b)));

    let list: serde_json::Value = serde_json::from_str(&ok(run(dbkeep()
        .args(["list", "--json", "--from"])
        .arg(&b))))
    .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] > ids[1], "newest first: {ids:?}");
    let newest_start = list[0]["started_at"].as_str().unwrap();

    ok(run(dbkeep().args(["restore", "--from"]).arg(&b).args([
        "--id",
        ids[1],
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&copy, "t"), "1\n");
    psql("postgres", &format!("drop database \"{copy}\""));
    ok(run(dbkeep().args(["restore", "--from"]).arg(&b).args([
        "--before",
        newest_start,
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&copy, "t"), "1\n");
    psql("postgres", &format!("drop database \"{copy}\""));
    ok(run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &pg_url(&copy)])));
    assert_eq!(pg_rows(&copy, "t"), "1\n2\n");
}

#[test]
fn unreachable_server_fails_fast_and_clearly() {
    let dir = tempdir();
    let b = dir.path().join("b");
    let started = std::time::Instant::now();
    let out = run(dbkeep()
        .args(["backup", "postgres://postgres@127.0.0.1:1/nothing", "--to"])
        .arg(&b));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("127.0.0.1") && err.contains("port 1"), "{err}");
    assert!(started.elapsed().as_secs() < 30);
    assert!(files(&b).is_empty());
}

#[test]
fn older_pg_dump_than_server_is_refused_with_the_needed_version() {
    let db = PgDb::new("pg_version");
    let tools = tempdir();
    stand_in(
        tools.path(),
        "pg_dump",
        "echo 'pg_dump (PostgreSQL) 9.6.24'; exit 0",
    );
    // `bin_dir` names the client to use: an older one is refused, not replaced.
    std::os::unix::fs::symlink(which("psql"), tools.path().join("psql")).unwrap();
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        &db.name,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}\nbin_dir: {}",
            pg_host(),
            pg_port(),
            db.name,
            tools.path().display()
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let b = dir.path().join("backups");
    let server_major = psql(
        "postgres",
        "select current_setting('server_version_num')::int / 10000",
    )
    .trim()
    .to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`pg_dump` 9 cannot dump the PostgreSQL"),
        "{err}"
    );
    assert!(
        err.contains(&format!("postgresql-client-{server_major}")),
        "{err}"
    );
    assert!(files(&b).is_empty());
}

/// `databases: all` on a private cluster (so other tests' databases stay out
/// of it), restored into a second fresh cluster: roles come back too.
#[test]
fn all_databases_with_roles_into_a_fresh_server() {
    let a = crate::util::PrivateCluster::start();
    let b = crate::util::PrivateCluster::start();
    a.psql("postgres", "create role app_owner login password 'x'");
    a.psql("postgres", "create database shop owner app_owner");
    a.psql("postgres", "create database crm");
    a.psql("shop", "create table items (id int primary key, name text); insert into items values (1, 'Ä'), (2, 'b')");
    a.psql("shop", "alter table items owner to app_owner");
    a.psql(
        "crm",
        "create table people (id int); insert into people select generate_series(1, 1000)",
    );
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "cluster",
        &format!(
            "type: postgres\nhost: 127.0.0.1\nport: {}\nuser: postgres\ndatabases: all",
            a.port
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    let kinds: Vec<&str> = m["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "globals").count(), 1, "{m}");
    let dbs: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["crm", "postgres", "shop"]);

    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "cluster",
        "--target",
        &format!("postgres://postgres@127.0.0.1:{}/postgres", b.port),
    ])));
    assert_eq!(
        b.psql(
            "postgres",
            "select rolname from pg_roles where rolname = 'app_owner'"
        )
        .trim(),
        "app_owner"
    );
    assert_eq!(
        b.psql(
            "shop",
            "select tableowner from pg_tables where tablename = 'items'"
        )
        .trim(),
        "app_owner"
    );
    assert_eq!(
        b.psql("shop", "copy (select * from items order by 1) to stdout"),
        "1\tÄ\n2\tb\n"
    );
    assert_eq!(b.psql("crm", "select count(*) from people").trim(), "1000");
}

#[test]
fn password_reaches_pg_dump_only_through_the_environment() {
    let db = PgDb::new("pg_secret");
    psql(
        &db.name,
        "create table t (id int); insert into t select generate_series(1, 50000)",
    );
    let secret = "s3cr3t-PG-pässwörd \"$x'";
    let tools = tempdir();
    let real = which("pg_dump");
    let argv = tools.path().join("argv");
    let env = tools.path().join("env");
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "printf '%s\\n' \"$@\" >> {argv}\nenv >> {env}\nexec {real} \"$@\"",
            argv = argv.display(),
            env = env.display(),
            real = real.display()
        ),
    );
    let dir = tempdir();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{secret}\n")).unwrap();
    let config = write_config(
        dir.path(),
        "app",
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\npassword_file: {}\ndatabase: {}",
            pg_host(),
            pg_port(),
            pw.display(),
            db.name
        ),
    );
    let child = dbkeep()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .args(["-v", "backup"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = crate::util::watch_cmdlines(secret, child.id());
    let out = child.wait_with_output().unwrap();
    let seen = seen.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(seen.0 > 0, "no process was sampled");
    assert!(
        seen.1.is_empty(),
        "password found in the argv of: {:?}",
        seen.1
    );
    assert!(!text(&out).contains(secret), "password in dbkeep's output");
    let argv = std::fs::read_to_string(&argv).unwrap();
    assert!(!argv.contains("s3cr3t"), "{argv}");
    let env = std::fs::read_to_string(&env).unwrap();
    assert!(
        env.contains(&format!("PGPASSWORD={secret}")),
        "the password must reach pg_dump in PGPASSWORD"
    );
}

#[test]
fn tool_environment_applies_when_the_config_is_silent() {
    let db = PgDb::new("pg_env");
    psql(
        &db.name,
        "create table t (id int); insert into t values (5)",
    );
    let dir = tempdir();
    // No host, port or user in the config: PGHOST/PGPORT/PGUSER decide.
    let config = write_config(
        dir.path(),
        "app",
        &format!("type: postgres\ndatabase: {}", db.name),
    );
    ok(run(dbkeep()
        .env("PGHOST", pg_host())
        .env("PGPORT", pg_port())
        .env("PGUSER", "postgres")
        .arg("-c")
        .arg(&config)
        .arg("backup")));
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);
    let _ = Command::new("true").status();
}
