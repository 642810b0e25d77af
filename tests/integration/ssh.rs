//! SSH tunnels through a private OpenSSH server started by scripts/test.sh.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts a private sshd"
        )
    })
}

/// The `ssh:` block for the private sshd, with `known_hosts` as given.
fn ssh_block(known_hosts: &str) -> String {
    format!(
        "ssh: {{ host: 127.0.0.1, port: {}, user: {}, key_file: {}, known_hosts: {} }}",
        env("DBKEEP_TEST_SSH_PORT"),
        env("DBKEEP_TEST_SSH_USER"),
        env("DBKEEP_TEST_SSH_KEY"),
        env(known_hosts)
    )
}

/// The local port the log says the tunnel used.
fn tunnel_port(log: &str) -> u16 {
    let line = log
        .lines()
        .find(|l| l.contains("SSH tunnel open"))
        .unwrap_or_else(|| panic!("no tunnel in the log:\n{log}"));
    let at = line.find("local=").expect("local port logged") + "local=".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn postgres_backs_up_and_restores_through_an_ssh_tunnel() {
    let mut db = PgDb::new("pg_ssh");
    psql(
        &db.name,
        "create table t (id int primary key, v text); insert into t select i, 'ssh ' || i from generate_series(1, 200) i",
    );
    let copy = db.another("copy");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        &db.name,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}\n{}",
            pg_host(),
            pg_port(),
            db.name,
            ssh_block("DBKEEP_TEST_SSH_KNOWN_HOSTS")
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    // The tunnel is closed once dbkeep is done.
    let port = tunnel_port(&log);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the tunnel on port {port} is still open"
    );
    ok(run(dbkeep().arg("-c").arg(&config).args([
        "restore",
        &db.name,
        "--to-database",
        &copy,
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));
    assert_eq!(pg_rows(&copy, "t").lines().count(), 200);
}

#[test]
fn a_url_can_name_the_tunnel() {
    let db = PgDb::new("pg_ssh_url");
    psql(
        &db.name,
        "create table t (id int); insert into t values (7)",
    );
    let dir = tempdir();
    let backups = dir.path().join("b");
    let url = format!(
        "{}?ssh={}@127.0.0.1:{}&ssh_key_file={}&ssh_known_hosts={}",
        pg_url(&db.name),
        env("DBKEEP_TEST_SSH_USER"),
        env("DBKEEP_TEST_SSH_PORT"),
        env("DBKEEP_TEST_SSH_KEY"),
        env("DBKEEP_TEST_SSH_KNOWN_HOSTS")
    );
    let out = run(dbkeep().args(["backup", &url, "--to"]).arg(&backups));
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SSH tunnel open"));
    assert_eq!(manifests(&backups).len(), 1);

    // `inspect` goes the same way, and closes the tunnel too.
    let out = run(dbkeep().args(["inspect", &url, "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let port = tunnel_port(&String::from_utf8_lossy(&out.stderr));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["databases"][0]["name"], db.name.as_str(), "{j}");
    assert!(j["source"].as_str().unwrap().contains("via ssh"), "{j}");
}

#[test]
fn a_wrong_host_key_is_refused_and_names_the_ssh_host() {
    let db = PgDb::new("pg_ssh_key");
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        &db.name,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}\n{}",
            pg_host(),
            pg_port(),
            db.name,
            ssh_block("DBKEEP_TEST_SSH_WRONG_KNOWN_HOSTS")
        ),
    );
    let out = run(dbkeep().arg("-c").arg(&config).arg("backup"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{}", env("DBKEEP_TEST_SSH_PORT"))),
        "{err}"
    );
    assert!(
        err.contains("Host key verification failed")
            || err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert!(manifests(&dir.path().join("backups")).is_empty());
}

/// The argv of every process that holds the forward from local `port`.
fn forwards(port: u16) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", &format!("127.0.0.1:{port}:")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_signal_mid_dump_closes_the_tunnel() {
    let real = which("pg_dump");
    let version = String::from_utf8(
        std::process::Command::new(&real)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let db = PgDb::new("pg_ssh_sig");
    let dir = tempdir();
    let tools = tempdir();
    let started = tools.path().join("started");
    // A pg_dump that answers the version probe, then hangs.
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ echo '{}'; exit 0; }}; done\n\
             touch '{}'\nsleep 600",
            version.trim(),
            started.display()
        ),
    );
    let config = write_config(
        dir.path(),
        &db.name,
        &format!(
            "type: postgres\nhost: {}\nport: {}\nuser: postgres\ndatabase: {}\n{}",
            pg_host(),
            pg_port(),
            db.name,
            ssh_block("DBKEEP_TEST_SSH_KNOWN_HOSTS")
        ),
    );
    let stderr = dir.path().join("stderr.log");
    let mut child = dbkeep()
        .env("PATH", path_with(tools.path()))
        .arg("-c")
        .arg(&config)
        .arg("backup")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();
    let start = Instant::now();
    while !(started.exists() && log().contains("SSH tunnel open")) {
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("the dump never started through the tunnel:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = tunnel_port(&log());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the tunnel on port {port} is not open mid-dump"
    );
    assert!(!forwards(port).is_empty(), "no ssh holds port {port}");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("dbkeep did not stop on SIGTERM:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let left = forwards(port);
    for line in &left {
        // Do not leave a stray forward behind when the test fails.
        if let Some(pid) = line.split_whitespace().next().and_then(|p| p.parse().ok()) {
            // SAFETY: kill(2) on the process pgrep just named.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    assert_eq!(status.code(), Some(130), "{}", log());
    assert!(left.is_empty(), "ssh still forwards port {port}: {left:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the tunnel on port {port} is still open"
    );
    assert!(manifests(&dir.path().join("backups")).is_empty());
}
