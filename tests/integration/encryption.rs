//! age encryption: objects the stock `age` CLI can decrypt, restores with the
//! right key, and a clear refusal (with the target untouched) otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// A new age key pair from the stock `age-keygen`: (identity file, public key).
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (Debian package `age`)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_string(),
    )
}

#[test]
fn objects_decrypt_with_the_stock_age_cli_and_restore_with_the_key() {
    let mut db = PgDb::new("age_src");
    psql(
        &db.name,
        "create table t (id int primary key, v text); insert into t select i, 'row ' || i from generate_series(1, 3000) i",
    );
    let copy = db.another("copy");
    let wrong_target = db.another("wrong");
    let dir = tempdir();
    let (key, public) = keygen(dir.path(), "key.txt");
    let (other_key, _) = keygen(dir.path(), "other.txt");

    // A stand-in pg_dump that serves a fixed real archive, so the decrypted
    // object can be compared with the dump byte for byte.
    let archive = dir.path().join("fixed.pgdump");
    pg_archive(&db.name, &archive);
    let tools = tempdir();
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ {} --version; exit 0; }}; done\ncat '{}'",
            which("pg_dump").display(),
            archive.display()
        ),
    );
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
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg.push_str(&format!(
        "    encryption:\n      age:\n        recipients: [{public}]\n"
    ));
    std::fs::write(&config, text_cfg).unwrap();

    ok(run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .arg("backup")));
    let backups = dir.path().join("backups");
    let m = &manifests(&backups)[0];
    assert_eq!(m["encryption"]["scheme"], "age");
    assert_eq!(m["encryption"]["recipients"][0], public.as_str());
    let object = files(&backups)
        .into_iter()
        .find(|f| f.ends_with(".pgdump.zst.age"))
        .expect("an .age object");

    let decrypted = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' < '{}' | zstd -d",
            key.display(),
            backups.join(&object).display()
        ))
        .output()
        .unwrap();
    assert!(
        decrypted.status.success(),
        "{}",
        String::from_utf8_lossy(&decrypted.stderr)
    );
    assert!(
        decrypted.stdout == std::fs::read(&archive).unwrap(),
        "age -d | zstd -d must give back the dump"
    );

    // verify without the key checks integrity only; with it, everything.
    let out = ok(run(dbkeep().arg("-c").arg(&config).args(["verify", "app"])));
    assert!(out.contains("content not checked"), "{out}");
    let out = ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["verify", "app", "--identity"])
        .arg(&key)));
    assert!(out.contains("pg_restore --list"), "{out}");

    // No key, then the wrong key: refused, and the target is never created.
    let out = run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "app",
        "--to-database",
        &wrong_target,
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is encrypted with age"),
        "{}",
        text(&out)
    );
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args([
            "restore",
            "app",
            "--to-database",
            &wrong_target,
            "--identity",
        ])
        .arg(&other_key));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"),
        "{}",
        text(&out)
    );
    assert!(!pg_exists(&wrong_target), "the target must not be touched");

    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", "app", "--to-database", &copy, "--identity"])
        .arg(&key)));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));
}

#[test]
fn passphrase_encryption_round_trip() {
    let dir = tempdir();
    let src = dir.path().join("app.db");
    rusqlite::Connection::open(&src)
        .unwrap()
        .execute_batch("create table t (v text); insert into t values ('secret row'), ('another');")
        .unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let config = write_config(
        dir.path(),
        "app",
        &format!("type: sqlite\npath: {}", src.display()),
    );
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg.push_str(&format!(
        "    encryption: {{ age: {{ passphrase_file: {} }} }}\n",
        pass.display()
    ));
    std::fs::write(&config, text_cfg).unwrap();
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    assert_eq!(m["encryption"]["passphrase"], true);
    let object = files(&dir.path().join("backups"))
        .into_iter()
        .find(|f| f.ends_with(".age"))
        .unwrap();
    let stored = std::fs::read(dir.path().join("backups").join(object)).unwrap();
    assert!(
        stored.starts_with(b"age-encryption.org/v1\n-> scrypt "),
        "an age file with an scrypt stanza"
    );

    let target = dir.path().join("restored.db");
    let from = dir.path().join("backups");
    let out = run(dbkeep()
        .env("DBKEEP_AGE_PASSPHRASE", "wrong horse")
        .args(["restore", "--from"])
        .arg(&from)
        .arg("--target")
        .arg(&target));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"),
        "{}",
        text(&out)
    );
    assert!(!target.exists(), "the target must not be touched");

    ok(run(dbkeep()
        .env("DBKEEP_AGE_PASSPHRASE", "correct horse battery staple")
        .args(["restore", "--from"])
        .arg(&from)
        .arg("--target")
        .arg(&target)));
    let conn = rusqlite::Connection::open(&target).unwrap();
    let rows: Vec<String> = conn
        .prepare("select v from t order by v")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, ["another", "secret row"]);
    // The config's passphrase_file works for verify, too.
    let out = ok(run(dbkeep().arg("-c").arg(&config).args(["verify", "app"])));
    assert!(out.contains("sqlite integrity_check"), "{out}");
}

#[test]
fn bad_recipient_is_a_config_error() {
    let dir = tempdir();
    let config = write_config(dir.path(), "app", "type: sqlite\npath: x.db");
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg.push_str("    encryption: { age: { recipients: [not-a-key] } }\n");
    std::fs::write(&config, text_cfg).unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["config", "validate", "--no-environment"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "jobs.app.encryption.age.recipients[0]: `not-a-key` is not an age public key"
        ),
        "{}",
        text(&out)
    );
}
