//! Job locks under contention, in every storage: concurrent takeovers of a
//! stale lock, a heartbeat that finds its lock taken over, a create whose
//! answer was lost, and a panic while the lock is held.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::azure::{az_container, az_endpoint, az_get_blob, az_keys, az_put_blob, dbkeep_az};
use crate::gcs::{dbkeep_gcs, gcs_bucket, gcs_endpoint, gcs_keys};
use crate::util::*;

/// The lock's key in every storage of these tests.
const LOCK: &str = "locks/app/lock.json";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Local,
    S3,
    Gcs,
    Azure,
}

/// One storage of a test, reachable outside dbkeep too.
struct Place {
    kind: Kind,
    /// The local folder, the S3/GCS bucket or the Azure container.
    name: String,
    endpoint: String,
}

impl Place {
    fn new(kind: Kind, dir: &Path, what: &str) -> Place {
        let (name, endpoint) = match kind {
            Kind::Local => (dir.join("backups").display().to_string(), String::new()),
            Kind::S3 => {
                let e = s3_endpoint();
                (s3_bucket(&e, what), e)
            }
            Kind::Gcs => {
                let e = gcs_endpoint();
                (gcs_bucket(&e, what), e)
            }
            Kind::Azure => {
                let e = az_endpoint();
                (az_container(&e, what), e)
            }
        };
        Place {
            kind,
            name,
            endpoint,
        }
    }

    /// The storage's entry in the config, named `store`, prefix `locks`
    /// (a local storage's folder holds `locks/` too).
    fn yaml(&self) -> String {
        let (name, endpoint) = (&self.name, &self.endpoint);
        match self.kind {
            Kind::Local => format!("{{ type: local, path: {name}, prefix: locks }}"),
            Kind::S3 => format!(
                "{{ type: s3, bucket: {name}, prefix: locks, endpoint: {endpoint}, region: us-east-1, path_style: true }}"
            ),
            Kind::Gcs => {
                format!("{{ type: gcs, bucket: {name}, prefix: locks, endpoint: \"{endpoint}\" }}")
            }
            Kind::Azure => format!(
                "{{ type: azure, container: {name}, prefix: locks, endpoint: \"{endpoint}\" }}"
            ),
        }
    }

    fn dbkeep(&self) -> Command {
        match self.kind {
            Kind::Local => dbkeep(),
            Kind::S3 => dbkeep_s3(),
            Kind::Gcs => dbkeep_gcs(),
            Kind::Azure => dbkeep_az(),
        }
    }

    /// Overwrites (or creates) an object as another writer would: at once and
    /// whole, unconditionally.
    fn put(&self, key: &str, data: &[u8]) {
        match self.kind {
            Kind::Local => local_put(&Path::new(&self.name).join(key), data),
            Kind::S3 => {
                let (status, body) = s3_raw(
                    "PUT",
                    &format!("{}/{}/{key}", self.endpoint, self.name),
                    data,
                );
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
            Kind::Gcs => {
                let (status, body) = http(
                    "POST",
                    &format!(
                        "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
                        self.endpoint,
                        self.name,
                        key.replace('/', "%2F")
                    ),
                    data,
                );
                assert_eq!(status, 200, "{body}");
            }
            Kind::Azure => {
                let status = az_put_blob(&self.endpoint, &self.name, key, data);
                assert_eq!(status, 201);
            }
        }
    }

    /// An object's bytes, `None` when there is none.
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.kind {
            Kind::Local => std::fs::read(Path::new(&self.name).join(key)).ok(),
            Kind::S3 => {
                let (status, body) = s3_raw(
                    "GET",
                    &format!("{}/{}/{key}", self.endpoint, self.name),
                    b"",
                );
                (status == 200).then_some(body)
            }
            Kind::Gcs => {
                let (status, body) = http(
                    "GET",
                    &format!(
                        "{}/storage/v1/b/{}/o/{}?alt=media",
                        self.endpoint,
                        self.name,
                        key.replace('/', "%2F")
                    ),
                    b"",
                );
                (status == 200).then(|| body.into_bytes())
            }
            Kind::Azure => az_get_blob(&self.endpoint, &self.name, key),
        }
    }

    fn keys(&self) -> Vec<String> {
        match self.kind {
            Kind::Local => files(Path::new(&self.name)),
            Kind::S3 => s3_keys(&self.endpoint, &self.name),
            Kind::Gcs => gcs_keys(&self.endpoint, &self.name),
            Kind::Azure => az_keys(&self.endpoint, &self.name),
        }
    }

    fn manifests(&self) -> usize {
        self.keys()
            .iter()
            .filter(|k| k.ends_with("manifest.json"))
            .count()
    }
}

/// Writes a local file as a dbkeep on another host would: under the
/// sidecar's `flock`, through a temp file and a rename.
fn local_put(path: &Path, data: &[u8]) {
    use std::os::fd::AsRawFd;
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let sidecar = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{name}.flock")))
        .unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(
        unsafe { libc::flock(sidecar.as_raw_fd(), libc::LOCK_EX) },
        0
    );
    let temp = dir.join(format!(".{name}.tmp-test"));
    std::fs::write(&temp, data).unwrap();
    std::fs::rename(&temp, path).unwrap();
    drop(sidecar);
}

/// A request to moto with a (never checked) signature, so that it treats
/// it as from the owner of the bucket; HTTP/1.0, so the answer is not chunked.
fn s3_raw(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} /{path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&answer[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer[split + 4..].to_vec())
}

/// A lock held by a run on another host, refreshed `age` ago.
fn foreign_lock(age: chrono::Duration, token: &str) -> Vec<u8> {
    let at = (chrono::Utc::now() - age).to_rfc3339();
    serde_json::to_vec_pretty(&serde_json::json!({
        "job": "app", "command": "backup", "host": "other.example", "pid": 4242,
        "started_at": at, "refreshed_at": at, "token": token,
    }))
    .unwrap()
}

/// Writes the config: storage `store`, job `app` (SQLite) with `hooks`.
fn config(dir: &Path, place: &Place, top: &str, hooks: &str) -> PathBuf {
    let db = dir.join("big.db");
    if !db.exists() {
        sqlite_with_random_data(dir, 1);
    }
    let path = dir.join("dbkeep.yaml");
    std::fs::write(
        &path,
        format!(
            "{top}storages:\n  store: {}\njobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n    hooks: {hooks}\n",
            place.yaml(),
            db.display()
        ),
    )
    .unwrap();
    path
}

/// Waits for `child`, killing it after `limit`; `None` when it had to be killed.
fn wait_at_most(mut child: Child, limit: Duration) -> Option<Output> {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(child.wait_with_output().unwrap())
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- contention

/// Six runs start at once on a job whose lock is stale: exactly one takes it
/// over, the others wait their turn, and no two `before` hooks overlap.
/// Cloud storages are reached through a proxy that holds back every
/// removal of the lock, so that a takeover made of a delete and a create
/// (instead of one conditional replace) races visibly.
fn six_runs_take_turns(kind: Kind) {
    const RUNS: usize = 6;
    let dir = tempdir();
    let direct = Place::new(kind, dir.path(), "contend");
    let service = match kind {
        Kind::Local => None,
        Kind::S3 => Some(Service::S3),
        Kind::Gcs => Some(Service::Gcs),
        Kind::Azure => Some(Service::Azure),
    };
    let proxy = service.map(|s| FaultProxy::start(s, &direct.endpoint, Fault::DelayLockDelete, 0));
    let place = Place {
        kind,
        name: direct.name.clone(),
        endpoint: match &proxy {
            Some(p) => p.url.clone(),
            None => direct.endpoint.clone(),
        },
    };
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let m = marks.display();
    let hook = format!(
        "mkdir {m}/inside || echo overlap >> {m}/overlaps; echo run >> {m}/entries; sleep 0.3; rmdir {m}/inside 2>/dev/null || true"
    );
    let cfg = config(
        dir.path(),
        &place,
        "",
        &format!("{{ before: [[sh, -c, \"{hook}\"]] }}"),
    );
    place.put(LOCK, &foreign_lock(chrono::Duration::hours(2), "stale"));

    let start = Instant::now();
    let runs: Vec<Child> = (0..RUNS)
        .map(|_| {
            place
                .dbkeep()
                .arg("-c")
                .arg(&cfg)
                .args(["backup", "app", "--wait-lock", "120s"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = runs
        .into_iter()
        .map(|c| wait_at_most(c, Duration::from_secs(150)).expect("a run hung"))
        .collect();
    let elapsed = start.elapsed();
    eprintln!("{kind:?}: {RUNS} contending runs took {elapsed:?}");

    let overlaps = std::fs::read_to_string(marks.join("overlaps")).unwrap_or_default();
    assert_eq!(overlaps, "", "{kind:?}: two runs were inside at once");
    for out in &outs {
        assert!(
            out.status.success(),
            "{kind:?}: a run failed\n{}",
            text(out)
        );
    }
    let takeovers = outs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("taking over a stale lock"))
        .count();
    assert_eq!(
        takeovers, 1,
        "{kind:?}: exactly one run takes the stale lock over"
    );
    let entries = std::fs::read_to_string(marks.join("entries")).unwrap();
    assert_eq!(entries.lines().count(), RUNS);
    assert_eq!(place.manifests(), RUNS, "{kind:?}: {:?}", place.keys());
    assert_eq!(place.get(LOCK), None, "{kind:?}: the lock was not released");
}

#[test]
fn contending_runs_take_turns_in_local_storage() {
    six_runs_take_turns(Kind::Local);
}

#[test]
fn contending_runs_take_turns_in_s3() {
    six_runs_take_turns(Kind::S3);
}

#[test]
fn contending_runs_take_turns_in_gcs() {
    six_runs_take_turns(Kind::Gcs);
}

#[test]
fn contending_runs_take_turns_in_azure() {
    six_runs_take_turns(Kind::Azure);
}

// ---------------------------------------------------------------- heartbeat

/// A run's lock is taken over by another host while the run is in its slow
/// `before` hook: its heartbeat notices, the run stops and fails, no
/// manifest is written, and the other host's lock stays as it was.
fn a_run_that_loses_its_lock_stops(kind: Kind) {
    let dir = tempdir();
    let place = Place::new(kind, dir.path(), "lost");
    let cfg = config(
        dir.path(),
        &place,
        "lock: { stale_after: 3s }\n",
        "{ before: [[sleep, \"60\"]] }",
    );
    let child = place
        .dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the run's lock appears", Duration::from_secs(20), || {
        place
            .get(LOCK)
            .is_some_and(|l| String::from_utf8_lossy(&l).contains(&format!("\"pid\": {pid}")))
    });
    let theirs = foreign_lock(chrono::Duration::zero(), "theirs");
    place.put(LOCK, &theirs);
    let taken = Instant::now();
    let out = wait_at_most(child, Duration::from_secs(30)).expect("the run did not stop");
    let stopped = taken.elapsed();
    eprintln!("{kind:?}: the run stopped {stopped:?} after its lock was taken over");

    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lost the job's lock in storage `store`") && err.contains("other.example"),
        "{kind:?}: {}",
        text(&out)
    );
    assert!(
        stopped < Duration::from_secs(10),
        "{kind:?}: stopped after {stopped:?}"
    );
    assert_eq!(place.manifests(), 0, "{kind:?}: {:?}", place.keys());
    assert_eq!(
        place.get(LOCK).as_deref(),
        Some(theirs.as_slice()),
        "{kind:?}: the other host's lock was changed"
    );
}

#[test]
fn a_run_that_loses_its_lock_stops_in_local_storage() {
    a_run_that_loses_its_lock_stops(Kind::Local);
}

#[test]
fn a_run_that_loses_its_lock_stops_in_s3() {
    a_run_that_loses_its_lock_stops(Kind::S3);
}

#[test]
fn a_run_that_loses_its_lock_stops_in_gcs() {
    a_run_that_loses_its_lock_stops(Kind::Gcs);
}

#[test]
fn a_run_that_loses_its_lock_stops_in_azure() {
    a_run_that_loses_its_lock_stops(Kind::Azure);
}

// ---------------------------------------------------------------- panics

/// A panic while the lock is held (a debug-build fault injection) ends the
/// process instead of hanging it, and releases the lock.
fn a_panic_releases_the_lock(kind: Kind) {
    let dir = tempdir();
    let place = Place::new(kind, dir.path(), "panic");
    let cfg = config(dir.path(), &place, "", "{}");
    let child = place
        .dbkeep()
        .env("DBKEEP_DEBUG_PANIC", "locked-body")
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let out = wait_at_most(child, Duration::from_secs(30)).expect("the process hung");
    eprintln!("{kind:?}: the panicking run ended in {:?}", start.elapsed());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DBKEEP_DEBUG_PANIC"),
        "{}",
        text(&out)
    );
    assert_eq!(place.get(LOCK), None, "{kind:?}: the lock is left");
    assert_eq!(place.manifests(), 0);
}

#[test]
fn a_panic_releases_the_lock_in_local_storage() {
    a_panic_releases_the_lock(Kind::Local);
}

#[test]
fn a_panic_releases_the_lock_in_s3() {
    a_panic_releases_the_lock(Kind::S3);
}
