//! SQLite: online copies of live databases, and atomic restores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use crate::util::*;

fn sample(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "create table kinds (id integer primary key, n numeric, r real, t text, b blob);
         insert into kinds values (1, 12.5, 1e300, 'Zoë\nline two', x'00ff'), (2, null, null, null, null), (3, -1, 0.0, '', x'');
         create index kinds_t on kinds(t);
         create view v as select id from kinds where n > 0;
         create table big (id integer primary key autoincrement, payload text);
         with recursive s(i) as (select 1 union all select i + 1 from s where i < 100000)
           insert into big (payload) select hex(randomblob(16)) || i from s;",
    )
    .unwrap();
}

fn dump(path: &std::path::Path) -> String {
    let conn = Connection::open(path).unwrap();
    let mut out = String::new();
    let mut stmt = conn
        .prepare("select type, name, sql from sqlite_schema order by name")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok(format!(
                "{:?}",
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?
                )
            ))
        })
        .unwrap()
    {
        out.push_str(&row.unwrap());
        out.push('\n');
    }
    for table in ["kinds", "big", "sqlite_sequence"] {
        let mut stmt = conn
            .prepare(&format!("select * from {table} order by 1"))
            .unwrap();
        let cols = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut line = String::new();
                for i in 0..cols {
                    line.push_str(&format!("{:?}|", r.get_ref(i)?));
                }
                Ok(line)
            })
            .unwrap();
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

#[test]
fn round_trip_and_atomic_restore() {
    let dir = tempdir();
    let db = dir.path().join("app.db");
    sample(&db);
    let b = dir.path().join("backups");
    ok(run(dbkeep().arg("backup").arg(&db).arg("--to").arg(&b)));
    let m = &manifests(&b)[0];
    assert_eq!(m["engine"], "sqlite");
    assert_eq!(m["job"], "app");
    ok(run(dbkeep().args(["verify", "--from"]).arg(&b)));

    let restored = dir.path().join("restored.db");
    ok(run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .arg("--target")
        .arg(&restored)));
    assert_eq!(dump(&db), dump(&restored));
    let leftovers: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| f.contains("dbkeep-restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Restoring over a non-empty file is refused; with --force it is replaced whole.
    let conn = Connection::open(&restored).unwrap();
    conn.execute("insert into kinds (id, t) values (99, 'local change')", [])
        .unwrap();
    drop(conn);
    let out = run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .arg("--target")
        .arg(&restored));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("non-empty"),
        "{}",
        text(&out)
    );
    assert_ne!(dump(&db), dump(&restored));
    ok(run(dbkeep()
        .args(["restore", "--force", "--from"])
        .arg(&b)
        .arg("--target")
        .arg(&restored)));
    assert_eq!(dump(&db), dump(&restored));
}

/// A backup taken while another connection keeps committing in WAL mode is
/// one committed state: every batch is whole, and the copy is intact.
#[test]
fn live_wal_database_backs_up_to_a_committed_state() {
    let dir = tempdir();
    let db = dir.path().join("live.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "pragma journal_mode=wal;
             create table batches (batch integer, row integer, payload text, primary key (batch, row));",
        )
        .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let db = db.clone();
        std::thread::spawn(move || {
            let mut conn = Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            let mut batch = 0i64;
            while !stop.load(Ordering::SeqCst) || batch < 20 {
                batch += 1;
                let tx = conn.transaction().unwrap();
                for row in 0..200i64 {
                    tx.execute(
                        "insert into batches values (?1, ?2, ?3)",
                        rusqlite::params![batch, row, format!("{batch}-{row}-{}", "x".repeat(200))],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            batch
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let b = dir.path().join("backups");
    for _ in 0..3 {
        ok(run(dbkeep().arg("backup").arg(&db).arg("--to").arg(&b)));
    }
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();

    let ids: Vec<String> = manifests(&b)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in ids {
        let restored = dir.path().join(format!("r-{id}.db"));
        ok(run(dbkeep()
            .args(["restore", "--from"])
            .arg(&b)
            .args(["--id", &id])
            .arg("--target")
            .arg(&restored)));
        let conn = Connection::open(&restored).unwrap();
        let check: String = conn
            .query_row("pragma integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let (batches, min, max, rows): (i64, i64, i64, i64) = conn
            .query_row(
                "select count(distinct batch), min(batch), max(batch), count(*) from batches",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1).unwrap_or(0),
                        r.get(2).unwrap_or(0),
                        r.get(3)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(rows, batches * 200, "a batch was copied half-written");
        if batches > 0 {
            assert_eq!((min, max), (1, batches), "batches are contiguous");
        }
        assert!(max <= written);
    }
}

#[test]
fn missing_sqlite_file_is_a_clear_error() {
    let dir = tempdir();
    let out = run(dbkeep()
        .arg("backup")
        .arg(dir.path().join("nope.db"))
        .arg("--to")
        .arg(dir.path().join("b")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope.db does not exist"),
        "{}",
        text(&out)
    );
}
