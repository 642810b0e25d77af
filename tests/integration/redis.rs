//! Redis: round trips against real redis-server instances (one private
//! server per test, so the 16 numbered dbs are the test's own).

use crate::util::*;

/// Fills `db` with every type, with and without TTLs, and binary names.
fn fill_every_type(c: &mut Resp, db: u32) {
    c.cmd(&["SELECT", &db.to_string()]);
    for cmd in [
        &["SET", "str:plain", "hello"][..],
        &["SET", "str:ttl", "expires", "PX", "600000"],
        &["SET", "str:int", "12345"],
        &["HSET", "hash:small", "f1", "v1", "f2", "Zoë ✓"],
        &["RPUSH", "list:l", "a", "b", "c", "a"],
        &["SADD", "set:s", "x", "y", "z"],
        &["SADD", "set:ints", "1", "2", "3"],
        &["ZADD", "zset:z", "1.5", "one", "-2", "two", "inf", "top"],
        &["XADD", "stream:s", "1-1", "field", "value"],
        &["XADD", "stream:s", "2-1", "other", "thing"],
        &["XGROUP", "CREATE", "stream:s", "readers", "0"],
        &["EXPIRE", "hash:small", "3000"],
    ] {
        let r = c.cmd(cmd);
        assert!(!matches!(r, Val::Err(_)), "{cmd:?}: {r:?}");
    }
    // Big values use other encodings (hashtable, quicklist, skiplist).
    let mut big_hash: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"hash:big".to_vec()];
    let mut big_zset: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"zset:big".to_vec()];
    for i in 0..1000 {
        big_hash.push(format!("field{i}").into_bytes());
        big_hash.push(vec![b'v'; 100 + i % 50]);
        big_zset.push(format!("{i}.25").into_bytes());
        big_zset.push(format!("member{i}").into_bytes());
    }
    let args: Vec<&[u8]> = big_hash.iter().map(Vec::as_slice).collect();
    c.call(&args);
    let args: Vec<&[u8]> = big_zset.iter().map(Vec::as_slice).collect();
    c.call(&args);
    c.call(&[
        b"SET",
        b"bin:\x00\xff\r\nkey",
        b"\x00\x01\x02binary value\xff",
    ]);
    c.call(&[b"PEXPIRE", b"bin:\x00\xff\r\nkey", b"900000"]);
}

fn backup_config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        "cache",
        &format!("type: redis\nhost: 127.0.0.1\nport: {port}\n{extra}"),
    )
}

/// Asserts two snapshots hold the same keys, types and values, with expiry
/// times within 1 s of each other.
fn assert_same(
    before: &[(Vec<u8>, String, Vec<u8>, i64)],
    after: &[(Vec<u8>, String, Vec<u8>, i64)],
) {
    assert_eq!(before.len(), after.len(), "key count");
    for (b, a) in before.iter().zip(after) {
        let name = String::from_utf8_lossy(&b.0);
        assert_eq!((&b.0, &b.1), (&a.0, &a.1), "key/type of {name}");
        assert!(b.2 == a.2, "value of {name} differs");
        if b.3 < 0 {
            assert_eq!(a.3, b.3, "{name} must not gain a TTL");
        } else {
            assert!(
                a.3 > 0 && (b.3 - a.3).abs() <= 1000,
                "expiry of {name}: {} before, {} after",
                b.3,
                a.3
            );
        }
    }
}

#[test]
fn every_type_and_ttl_survives_flush_and_restore() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    fill_every_type(&mut c, 3);
    let before = c.snapshot(3);
    assert!(before.len() >= 10);
    assert!(before.iter().any(|k| k.1 == "stream") && before.iter().any(|k| k.3 > 0));
    assert!(before.iter().any(|k| k.3 == -1), "keys without expiry too");

    let dir = tempdir();
    let config = backup_config(dir.path(), server.port, "database: 3");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    let m = &manifests(&dir.path().join("backups"))[0];
    assert_eq!(m["engine"], "redis");
    assert_eq!(m["databases"][0], "3");
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["verify", "cache"])));

    c.cmd(&["SELECT", "3"]);
    c.cmd(&["FLUSHDB"]);
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", "cache"])));
    assert_same(&before, &c.snapshot(3));

    // The same backup into another db number.
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        "cache",
        "--to-database",
        "7",
    ])));
    assert_same(&before, &c.snapshot(7));
}

#[test]
fn a_key_whose_expiry_passed_is_not_brought_back() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    c.cmd(&["SET", "short", "lived", "PX", "1500"]);
    c.cmd(&["SET", "long", "lived"]);
    let dir = tempdir();
    let config = backup_config(dir.path(), server.port, "database: 0");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    c.cmd(&["FLUSHALL"]);
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let out = run(dbkeep().arg("-c").arg(&config).args(["restore", "cache"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired=1"),
        "{}",
        text(&out)
    );
    assert_eq!(c.cmd(&["EXISTS", "short"]), Val::Text("0".into()));
    assert_eq!(c.cmd(&["GET", "long"]), Val::Bulk(Some(b"lived".to_vec())));
}

#[test]
fn all_dbs_round_trip_of_100k_keys() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    c.cmd(&["SELECT", "0"]);
    for i in 0..100_000u32 {
        let k = format!("user:{i}");
        if i % 3 == 0 {
            c.send(&[
                b"SET",
                k.as_bytes(),
                format!("value-{i}").as_bytes(),
                b"EX",
                b"3600",
            ]);
        } else {
            c.send(&[
                b"HSET",
                k.as_bytes(),
                b"name",
                format!("n{i}").as_bytes(),
                b"visits",
                i.to_string().as_bytes(),
            ]);
        }
    }
    for _ in 0..100_000 {
        assert!(!matches!(c.recv(), Val::Err(_)));
    }
    c.cmd(&["SELECT", "5"]);
    c.cmd(&["SET", "other-db", "x"]);
    let before0 = c.snapshot(0);
    let before5 = c.snapshot(5);

    let dir = tempdir();
    let b = dir.path().join("b");
    let url = format!("redis://127.0.0.1:{}", server.port);
    ok(run(dbkeep().args(["backup", &url, "--to"]).arg(&b)));
    let m = &manifests(&b)[0];
    let dbs: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["0", "5"], "all non-empty dbs");

    c.cmd(&["FLUSHALL"]);
    ok(run(dbkeep()
        .args(["restore", "--from"])
        .arg(&b)
        .args(["--target", &url])));
    assert_eq!(c.snapshot(0).len(), 100_000);
    assert_same(&before0, &c.snapshot(0));
    assert_same(&before5, &c.snapshot(5));
}

#[test]
fn restore_refuses_a_non_empty_db() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    c.cmd(&["SELECT", "1"]);
    c.cmd(&["SET", "from-backup", "1"]);
    let dir = tempdir();
    let config = backup_config(dir.path(), server.port, "database: 1");
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    c.cmd(&["SET", "precious", "keep me"]);
    c.cmd(&["SET", "from-backup", "changed"]);

    let out = run(dbkeep().arg("-c").arg(&config).args(["restore", "cache"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-empty") && err.contains("2 keys"), "{err}");
    assert_eq!(
        c.cmd(&["GET", "from-backup"]),
        Val::Bulk(Some(b"changed".to_vec()))
    );

    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", "cache", "--force"])));
    assert_eq!(
        c.cmd(&["GET", "from-backup"]),
        Val::Bulk(Some(b"1".to_vec()))
    );
    assert_eq!(
        c.cmd(&["GET", "precious"]),
        Val::Bulk(Some(b"keep me".to_vec()))
    );
}

#[test]
fn wrong_or_missing_password_is_a_clear_failure() {
    let server = PrivateRedis::start_with(&[], Some("right-pass-123"), false);
    let mut c = server.client();
    c.cmd(&["SET", "k", "v"]);
    let dir = tempdir();

    let config = backup_config(dir.path(), server.port, "password: wrong-pass-456");
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected the password") && err.contains("WRONGPASS"),
        "{err}"
    );
    assert!(
        !text(&out).contains("wrong-pass-456") && !text(&out).contains("right-pass-123"),
        "{}",
        text(&out)
    );
    assert!(files(&dir.path().join("backups")).is_empty());

    let config = backup_config(dir.path(), server.port, "");
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a password"),
        "{}",
        text(&out)
    );

    // REDISCLI_AUTH applies when the config has no password.
    ok(run(dbkeep()
        .env("REDISCLI_AUTH", "right-pass-123")
        .arg("-c")
        .arg(&config)
        .arg("backup")));
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);
}

#[test]
fn acl_user_with_password_file() {
    let server = PrivateRedis::start();
    let mut c = server.client();
    assert_eq!(
        c.cmd(&[
            "ACL",
            "SETUSER",
            "backup",
            "on",
            ">s3cret pw \"x",
            "~*",
            "&*",
            "+@all"
        ]),
        Val::Text("OK".into())
    );
    c.cmd(&["SET", "k", "v"]);
    let dir = tempdir();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret pw \"x\n").unwrap();
    let config = backup_config(
        dir.path(),
        server.port,
        &format!("user: backup\npassword_file: {}\ndatabase: 0", pw.display()),
    );
    let out = ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    assert!(!out.contains("s3cret"));
    c.cmd(&["FLUSHALL"]);
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", "cache"])));
    assert_eq!(c.cmd(&["GET", "k"]), Val::Bulk(Some(b"v".to_vec())));
}

#[test]
fn tls_round_trip() {
    let server = PrivateRedis::start_with(&[], None, true);
    assert_eq!(server.cli(&["SET", "over", "tls"]).trim(), "OK");
    let dir = tempdir();
    let ca = server.dir.path().join("ca.crt");
    let config = backup_config(
        dir.path(),
        server.port,
        &format!("tls: {{ ca_file: {} }}\ndatabase: 0", ca.display()),
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    server.cli(&["FLUSHALL"]);
    ok(run(dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["restore", "cache"])));
    assert_eq!(server.cli(&["GET", "over"]).trim(), "tls");

    // Without the CA the server's certificate is not trusted.
    let config = backup_config(dir.path(), server.port, "tls: {}\ndatabase: 0");
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS"),
        "{}",
        text(&out)
    );
    // `verify-ca` checks the chain too; `require` encrypts without checking.
    let config = backup_config(
        dir.path(),
        server.port,
        "tls: { mode: verify-ca }\ndatabase: 0",
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let config = backup_config(
        dir.path(),
        server.port,
        "tls: { mode: require }\ndatabase: 0",
    );
    ok(run(dbkeep().arg("-c").arg(&config).arg("backup")));
    // A plain connection to the TLS port is no backup either.
    let config = backup_config(
        dir.path(),
        server.port,
        "tls: { mode: disable }\ndatabase: 0",
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn unreachable_server_fails_fast() {
    let dir = tempdir();
    let port = free_port();
    let started = std::time::Instant::now();
    let out = run(dbkeep()
        .args(["backup", &format!("redis://127.0.0.1:{port}/0"), "--to"])
        .arg(dir.path().join("b")));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("cannot connect to redis at 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );
    assert!(started.elapsed().as_secs() < 20);
}
