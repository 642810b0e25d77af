//! `dbkeep inspect`: what a backup would hold, read from real servers and
//! files, with nothing written.

use crate::util::*;

#[test]
fn sqlite_shows_its_size_integrity_and_largest_tables() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 2);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "create table tiny (v text); insert into tiny values ('a'); create index blobs_id on blobs (id, data);",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    let j = inspect_json(&[db.to_str().unwrap()]);
    assert_eq!(j["engine"], "sqlite");
    assert_eq!(j["integrity"], "ok");
    assert_eq!(j["tls"], serde_json::Value::Null);
    assert_eq!(j["databases"][0]["name"], "big");
    assert_eq!(j["databases"][0]["bytes"], before.len() as u64);
    assert_eq!(j["estimated_dump_bytes"], before.len() as u64);
    // `blobs` with its index is the largest; the index is not a table of its own.
    assert_eq!(j["largest_tables"][0]["table"], "blobs", "{j}");
    assert!(
        j["largest_tables"][0]["bytes"].as_u64().unwrap() > 4_000_000,
        "{j}"
    );
    assert_eq!(j["largest_tables"][1]["table"], "tiny", "{j}");
    assert_eq!(j["largest_tables"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "inspect changed the file"
    );

    // A damaged file: integrity_check says what is wrong.
    let mut bytes = before.clone();
    for b in &mut bytes[8192..16384] {
        *b = 0x55;
    }
    std::fs::write(&db, &bytes).unwrap();
    let j = inspect_json(&[db.to_str().unwrap()]);
    assert!(
        j["integrity"].as_str().unwrap().contains("malformed"),
        "{j}"
    );
}

#[test]
fn redis_shows_keys_per_db() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    for i in 0..30 {
        c.cmd(&["SET", &format!("a{i}"), "x"]);
    }
    c.cmd(&["SELECT", "3"]);
    for i in 0..7 {
        c.cmd(&["SET", &format!("b{i}"), &"y".repeat(1000)]);
    }
    let url = format!("redis://127.0.0.1:{}", server.port);
    let j = inspect_json(&[&url]);
    assert_eq!(j["engine"], "redis");
    assert!(
        j["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric),
        "{j}"
    );
    assert_eq!(j["tls"]["in_use"], false);
    let dbs = j["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 2, "{j}");
    assert_eq!(
        (dbs[0]["name"].as_str(), dbs[0]["keys"].as_u64()),
        (Some("0"), Some(30))
    );
    assert_eq!(
        (dbs[1]["name"].as_str(), dbs[1]["keys"].as_u64()),
        (Some("3"), Some(7))
    );
    assert!(j["estimated_dump_bytes"].as_u64().unwrap() > 7000, "{j}");
    // Nothing was written to the server.
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "30");

    let human = ok(run(dbkeep().args(["inspect", &url])));
    assert!(
        human.contains("30 keys") && human.contains("7 keys"),
        "{human}"
    );
}

#[test]
fn a_tls_redis_says_tls_is_in_use() {
    let server = PrivateRedis::start_with(&[], None, true);
    let ca = server.dir.path().join("ca.crt");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "cache",
        &format!(
            "type: redis\nhost: 127.0.0.1\nport: {}\ndatabase: 0\ntls: {{ ca_file: {} }}",
            server.port,
            ca.display()
        ),
    );
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["inspect", "cache", "--json"])));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["tls"]["in_use"], true, "{j}");
}

#[test]
fn postgres_all_databases_lists_each_with_its_size_and_the_globals() {
    let a = PgDb::new("inspect_a");
    let b = PgDb::new("inspect_b");
    psql(
        &a.name,
        "create table wide (id int, v text); insert into wide select i, repeat('w', 300) from generate_series(1, 3000) i",
    );
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "all",
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabases: all",
            pg_host(),
            pg_port()
        ),
    );
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["inspect", "all", "--json"])));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["globals"], true);
    let size_of = |name: &str| {
        j["databases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {j}"))["bytes"]
            .as_u64()
            .unwrap()
    };
    assert!(size_of(&a.name) > size_of(&b.name), "{j}");
    assert!(
        j["largest_tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["database"] == a.name.as_str() && t["table"] == "public.wide"),
        "{j}"
    );
    assert!(
        !dir.path().join("backups").exists(),
        "inspect made the storage"
    );
}

#[test]
fn an_unknown_job_or_missing_file_is_a_clear_usage_error() {
    let dir = tempdir();
    let config = write_config(dir.path(), "app", "type: sqlite\npath: /nonexistent/app.db");
    let out = run(dbkeep().arg("-c").arg(&config).args(["inspect", "nope"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no job `nope`") && text(&out).contains("app"),
        "{}",
        text(&out)
    );
    let out = run(dbkeep().arg("-c").arg(&config).args(["inspect", "app"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("/nonexistent/app.db"), "{}", text(&out));
}

#[test]
fn names_from_the_database_cannot_drive_the_terminal() {
    let dir = tempdir();
    let db = dir.path().join("evil.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("create table \"x\x1b[2J\x1b]0;owned\x07\" (v); insert into \"x\x1b[2J\x1b]0;owned\x07\" values (1);")
        .unwrap();
    drop(conn);
    let human = ok(run(dbkeep().args(["inspect", db.to_str().unwrap()])));
    assert!(
        !human.contains('\x1b') && !human.contains('\x07'),
        "{human:?}"
    );
    assert!(human.contains("x\\u{1b}[2J"), "{human}");
    // JSON keeps the name as it is, escaped by JSON itself.
    let j = inspect_json(&[db.to_str().unwrap()]);
    assert_eq!(j["largest_tables"][0]["table"], "x\x1b[2J\x1b]0;owned\x07");
}
