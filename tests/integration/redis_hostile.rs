//! Redis: a server that answers with hostile replies. The server here is a
//! stand-in (tests/integration/redis_hostile_standin.py, not Redis) that
//! answers every command with one malformed reply; a backup against it must
//! fail cleanly, quickly, and store nothing.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const STANDIN: &str = include_str!("redis_hostile_standin.py");
/// A backup against a hostile server must end within this time (the
/// connection's own read timeout is 300 s, so a hang shows).
const BOUND: Duration = Duration::from_secs(60);

/// The stand-in "Redis server", killed on drop.
struct Hostile {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Hostile {
    fn start(mode: &str) -> Hostile {
        let dir = tempdir();
        let script = dir.path().join("redis_hostile_standin.py");
        std::fs::write(&script, STANDIN).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(mode)
            .arg("120")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the stand-in printed `{line}`, not its port"));
        Hostile {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dbkeep backup` against a stand-in answering in `mode`; asserts it
/// failed cleanly and in time, stored no manifest, and that its stderr holds
/// `expect`.
fn backup_fails_cleanly(mode: &str, expect: &str) {
    let server = Hostile::start(mode);
    let dir = tempdir();
    let config = write_config(
        dir.path(),
        "cache",
        &format!(
            "type: redis\nhost: 127.0.0.1\nport: {}\ndatabase: 0",
            server.port
        ),
    );
    let stderr_path = dir.path().join("stderr.log");
    let started = Instant::now();
    let mut child = dbkeep()
        .arg("-c")
        .arg(&config)
        .arg("backup")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cannot run dbkeep");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{mode}: dbkeep backup still ran after {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let report = format!("{mode}: {status:?}, {:?}\n{stderr}", started.elapsed());
    assert_eq!(
        status.signal(),
        None,
        "killed by a signal (SIGABRT is {}): {report}",
        libc::SIGABRT
    );
    assert_ne!(status.code(), Some(101), "a Rust panic: {report}");
    assert_eq!(
        status.code(),
        Some(1),
        "the exit code of a failed run: {report}"
    );
    assert!(!stderr.contains("panicked"), "{report}");
    assert!(stderr.contains("malformed reply"), "{report}");
    assert!(stderr.contains(expect), "stderr lacks `{expect}`: {report}");
    let stored = files(&dir.path().join("backups"));
    assert!(
        !stored.iter().any(|f| f.ends_with("manifest.json")),
        "{mode}: a manifest was written: {stored:?}"
    );
}

#[test]
fn a_huge_bulk_length_is_refused() {
    backup_fails_cleanly(
        "huge-bulk",
        "bulk length 9999999999999999 exceeds the limit of 512 MiB",
    );
}

#[test]
fn a_huge_array_length_is_refused() {
    backup_fails_cleanly(
        "huge-array",
        "array length 9999999999 exceeds the limit of 1048576 elements",
    );
}

#[test]
fn deep_nesting_is_refused() {
    backup_fails_cleanly("deep-nesting", "arrays nested deeper than 32 levels");
}

#[test]
fn an_endless_line_is_refused() {
    backup_fails_cleanly("endless-line", "a reply line is longer than 64 KiB");
}
