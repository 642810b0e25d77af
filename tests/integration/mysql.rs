//! MariaDB/MySQL round trips against the real server.

use crate::util::*;

fn fill(db: &str) {
    mysql(&format!(
        r#"use `{db}`;
        create table kinds (
            id int primary key, small smallint, big bigint, num decimal(30,10), dbl double,
            txt text, blob_v blob, doc json, at datetime(6), flag boolean) default charset utf8mb4;
        insert into kinds values
          (1, 1, 9223372036854775807, 12345678901234567890.0123456789, 1.5e300,
           'line one\nline two\ttab', x'00ff10', '{{"a": [1, 2]}}', '2026-01-02 03:04:05.123456', true),
          (2, -32768, -1, -0.0000000001, -2.5, 'Zoë – ✓ 日本語 🎉', x'', 'null', '1999-12-31 23:59:59', false),
          (3, null, null, null, null, null, null, null, null, null),
          (4, 0, 0, 0, 0, '', x'5c00', '"s"', '2000-01-01 00:00:00', null);
        create table big (id int auto_increment primary key, payload varchar(100) not null, n decimal(12,2), key big_n (n));
        insert into big (payload, n)
          select concat(md5(seq), repeat(char(65 + seq % 26), seq % 40)), seq * 1.5 from seq_1_to_100000;
        create view flagged as select id, txt from kinds where flag;
        create table audit (id int auto_increment primary key, kind_id int, note varchar(50));
        create trigger kinds_audit after insert on kinds for each row insert into audit (kind_id, note) values (new.id, 'inserted');
        create function add_one(x int) returns int deterministic return x + 1;
        create procedure count_big(out c int) select count(*) into c from big;
        insert into kinds (id, txt) values (5, 'fires the trigger');
        "#
    ));
}

fn rows(db: &str, table: &str) -> Vec<u8> {
    mysql_bytes(&format!("select * from `{db}`.`{table}` order by 1"))
}

fn schema(db: &str) -> String {
    mysql(&format!(
        "select concat('trigger ', trigger_name, ' ', action_statement) from information_schema.triggers where trigger_schema = '{db}' \
         union all select concat('routine ', routine_name, ' ', routine_definition) from information_schema.routines where routine_schema = '{db}' \
         union all select concat('view ', table_name) from information_schema.views where table_schema = '{db}' \
         union all select concat('index ', table_name, ' ', index_name, ' ', column_name) from information_schema.statistics where table_schema = '{db}' \
         union all select concat('auto_increment ', table_name, ' ', auto_increment) from information_schema.tables where table_schema = '{db}' and auto_increment is not null \
         order by 1"
    ))
}

#[test]
fn round_trip_keeps_rows_triggers_and_routines() {
    let mut db = MyDb::new("my_rt");
    fill(&db.name);
    let copy = db.another("copy");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "shop",
        &format!(
            "type: mariadb\nhost: {}\nport: {}\nuser: root\ndatabase: {}",
            my_host(),
            my_port(),
            db.name
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    assert_eq!(m["engine"], "mariadb");
    assert_eq!(m["artifacts"][0]["format"], "mysql_sql");
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["verify", "shop"])));
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "shop",
        "--to-database",
        &copy,
    ])));

    for table in ["kinds", "big", "audit"] {
        let (a, b) = (rows(&db.name, table), rows(&copy, table));
        assert!(!a.is_empty());
        assert!(a == b, "table {table} differs after restore");
    }
    assert_eq!(
        rows(&copy, "big").iter().filter(|b| **b == b'\n').count(),
        100_000
    );
    assert_eq!(schema(&db.name), schema(&copy));
    assert_eq!(mysql(&format!("select `{copy}`.add_one(41)")).trim(), "42");
}

#[test]
fn password_with_special_characters_works_and_stays_hidden() {
    let mut db = MyDb::new("my_pw");
    mysql(&format!(
        "create table `{}`.t (id int primary key, v text); insert into `{}`.t values (1, 'a'), (2, 'b')",
        db.name, db.name
    ));
    let copy = db.another("copy");
    let user = unique("u");
    let secret = "p@ss$word\"x 'ü\\";
    let sql_secret = secret.replace('\\', "\\\\").replace('\'', "\\'");
    mysql(&format!(
        "create user '{user}'@'%' identified by '{sql_secret}'; grant all on *.* to '{user}'@'%'"
    ));
    let dir = tempdir();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let yaml_secret = secret.replace('\\', "\\\\").replace('"', "\\\"");
    let config = write_config(
        dir.path(),
        "pw",
        &format!(
            "type: mariadb\nhost: {}\nport: {}\nuser: {user}\npassword: \"{yaml_secret}\"\ndatabase: {}",
            my_host(),
            my_port(),
            db.name
        ),
    );
    let child = dbkeep()
        .env("TMPDIR", &tmp)
        .arg("-c")
        .arg(&config)
        .args(["-v", "backup"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = watch_cmdlines(secret, child.id());
    let out = child.wait_with_output().unwrap();
    let seen = seen.join().unwrap();
    mysql(&format!("drop user '{user}'@'%'"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        seen.1.is_empty(),
        "password found in the argv of: {:?}",
        seen.1
    );
    assert!(!text(&out).contains(secret), "password in dbkeep's output");
    assert!(
        files(&tmp).is_empty(),
        "the 0600 option file must be removed: {:?}",
        files(&tmp)
    );

    ok(run(dbkeep()
        .args(["restore", "--from"])
        .arg(dir.path().join("backups"))
        .args(["--target", &my_url(&copy)])));
    assert_eq!(rows(&db.name, "t"), rows(&copy, "t"));
}

#[test]
fn wrong_password_is_a_clear_failure_with_nothing_stored() {
    let db = MyDb::new("my_wrongpw");
    let user = unique("u");
    mysql(&format!(
        "create user '{user}'@'%' identified by 'right-one'; grant all on *.* to '{user}'@'%'"
    ));
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "pw",
        &format!(
            "type: mariadb\nhost: {}\nport: {}\nuser: {user}\npassword: wrong-one-xyz\ndatabase: {}",
            my_host(),
            my_port(),
            db.name
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    mysql(&format!("drop user '{user}'@'%'"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Access denied") && err.contains(&user),
        "{err}"
    );
    assert!(!err.contains("wrong-one-xyz"), "{err}");
    assert!(files(&dir.path().join("backups")).is_empty());
}

#[test]
fn non_empty_target_is_refused() {
    let mut db = MyDb::new("my_nonempty");
    mysql(&format!("create table `{}`.t (id int)", db.name));
    let target = db.another("target");
    mysql(&format!(
        "create database `{target}`; create table `{target}`.precious (id int); insert into `{target}`.precious values (9)"
    ));
    let dir = tempdir();
    let b = dir.path().join("b");
    ok(run(dbkeep()
        .args(["backup", &my_url(&db.name), "--to"])
        .arg(&b)));
    let out = run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &my_url(&target)]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("precious"),
        "{}",
        text(&out)
    );
    assert_eq!(
        mysql(&format!("select * from `{target}`.precious")).trim(),
        "9"
    );
    assert_eq!(
        mysql(&format!(
            "select count(*) from information_schema.tables where table_schema = '{target}'"
        ))
        .trim(),
        "1"
    );
}

#[test]
fn tampered_backup_never_reaches_the_server() {
    let mut db = MyDb::new("my_tamper");
    mysql(&format!(
        "create table `{}`.t (id int); insert into `{}`.t values (1)",
        db.name, db.name
    ));
    let target = db.another("target");
    let dir = tempdir();
    let b = dir.path().join("b");
    ok(run(dbkeep().args([
        "backup",
        &my_url(&db.name),
        "--to",
        b.to_str().unwrap(),
        "--compression",
        "none",
    ])));
    let object = files(&b).into_iter().find(|f| f.ends_with(".sql")).unwrap();
    let text_dump = std::fs::read_to_string(b.join(&object)).unwrap();
    // A plausible edit: the dump still parses, but it is not what was backed up.
    let edited = text_dump.replacen("(1)", "(2)", 1);
    assert_ne!(edited, text_dump, "the test must change the dump");
    std::fs::write(b.join(&object), edited).unwrap();
    let out = run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &my_url(&target)]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sha256"),
        "{}",
        text(&out)
    );
    assert!(!my_exists(&target));
}

/// `databases: all` skips the system schemas and restores every other one.
#[test]
fn all_databases_into_a_fresh_server() {
    let a = PrivateMariadb::start();
    let b = PrivateMariadb::start();
    a.sql("create database shop; create table shop.items (id int primary key, name text); insert into shop.items values (1, 'Ä'), (2, 'b')");
    a.sql("create database crm; use crm; create table people (id int); insert into people select seq from seq_1_to_1000");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "server",
        &format!(
            "type: mariadb\nhost: 127.0.0.1\nport: {}\nuser: root\ndatabases: all",
            a.port
        ),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    let dbs: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["crm", "shop"], "system schemas are skipped");

    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "server",
        "--target",
        &format!("mariadb://root@127.0.0.1:{}/shop", b.port),
    ])));
    assert_eq!(b.sql("select * from shop.items order by 1"), "1\tÄ\n2\tb\n");
    assert_eq!(b.sql("select count(*) from crm.people").trim(), "1000");
}
