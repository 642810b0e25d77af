//! The storage conformance suite: every behaviour a storage must have,
//! written once against a [`Backend`] and instantiated for each storage by
//! one [`conformance!`] line: round trips, retention, the job lock (also
//! under contention, lost, and held through a panic). A backend reached over
//! HTTP also gets the fault tests, through the shared [`FaultProxy`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::azure::{
    ACCOUNT, KEY, az_container, az_endpoint, az_get_blob, az_keys, az_put_blob, az_url, dbkeep_az,
};
use crate::gcs::{dbkeep_gcs, gcs_bucket, gcs_endpoint, gcs_keys, gcs_url};
use crate::util::*;

/// A storage under test: how to make a fresh place for a test's backups,
/// how dbkeep names it, and how to see into it without dbkeep.
pub(crate) trait Backend: Sized {
    /// The service behind the fault proxy; `None` for a local folder.
    const SERVICE: Option<Service>;
    /// The documented peak memory of a large upload, in MiB: 64 plus what
    /// the parts in flight take.
    const MEMORY_BOUND_MIB: u64 = 64;
    /// Text a refused part's error shows (the proxy's injected 500).
    const INJECTED: &'static str = "InternalError";
    /// Any of these shows when the endpoint does not answer.
    const UNREACHABLE: &'static [&'static str] = &["onnection refused"];
    /// Whether an upload asks its session how much it kept after a cut (GCS).
    const ASKS_SESSION: bool = false;
    /// Whether a failed upload cancels its session (GCS).
    const CANCELS_SESSION: bool = false;

    /// A fresh, empty place (bucket, container, folder) named after `what`.
    fn create(what: &str) -> Self;

    /// The server's endpoint.
    fn endpoint(&self) -> String;

    /// The `--to`/`--from` location of `prefix` in `place`, at `endpoint`.
    fn url_for(endpoint: &str, place: &str, prefix: &str) -> String;

    /// This place's name: the bucket, the container, the folder.
    fn place(&self) -> &str;

    /// The storage's config entry, a YAML flow map, with `prefix`, reached
    /// at `endpoint`.
    fn yaml_at(&self, endpoint: &str, prefix: &str) -> String;

    /// dbkeep with the credentials this storage needs.
    fn dbkeep(&self) -> Command;

    /// Every key, through the service's own API (a folder: its files), sorted.
    fn keys(&self) -> Vec<String>;

    /// Writes an object as another host would: at once and whole,
    /// unconditionally.
    fn put(&self, key: &str, data: &[u8]);

    /// An object's bytes, through the service's own API; `None` when there
    /// is none.
    fn get(&self, key: &str) -> Option<Vec<u8>>;

    /// How messages name the place: `s3://bucket`.
    fn location(&self) -> String;

    /// What an error about a missing `place` says.
    fn missing_text(place: &str) -> String;

    /// Multipart uploads left open (S3).
    fn open_uploads(&self) -> usize {
        0
    }

    /// An endpoint where nothing answers.
    fn dead_endpoint() -> String {
        format!("http://127.0.0.1:{}", free_port())
    }

    /// The storage's config entry, straight to the server.
    fn yaml(&self, prefix: &str) -> String {
        self.yaml_at(&self.endpoint(), prefix)
    }

    /// The location of `prefix`, straight to the server.
    fn url(&self, prefix: &str) -> String {
        Self::url_for(&self.endpoint(), self.place(), prefix)
    }

    /// The location of `prefix`, through `proxy`.
    fn url_via(&self, proxy: &FaultProxy, prefix: &str) -> String {
        Self::url_for(&proxy.url, self.place(), prefix)
    }

    /// A proxy in front of the server that injects `fault` `count` times.
    fn proxy(&self, fault: Fault, count: i64) -> FaultProxy {
        let service = Self::SERVICE.expect("a storage behind HTTP");
        FaultProxy::start(service, &self.endpoint(), fault, count)
    }

    /// How many manifests it holds.
    fn manifests(&self) -> usize {
        self.keys()
            .iter()
            .filter(|k| k.ends_with("manifest.json"))
            .count()
    }
}

/// A folder on the local file system.
pub(crate) struct LocalBackend {
    _dir: tempfile::TempDir,
    path: String,
}

impl Backend for LocalBackend {
    const SERVICE: Option<Service> = None;

    fn create(_what: &str) -> Self {
        let dir = tempdir();
        let path = dir.path().join("backups").display().to_string();
        LocalBackend { _dir: dir, path }
    }

    fn endpoint(&self) -> String {
        String::new()
    }

    fn url_for(_endpoint: &str, place: &str, prefix: &str) -> String {
        format!("{place}/{prefix}")
    }

    fn place(&self) -> &str {
        &self.path
    }

    fn yaml_at(&self, _endpoint: &str, prefix: &str) -> String {
        format!("{{ type: local, path: {}, prefix: {prefix} }}", self.path)
    }

    fn dbkeep(&self) -> Command {
        dbkeep()
    }

    fn keys(&self) -> Vec<String> {
        files(std::path::Path::new(&self.path))
    }

    /// Under the sidecar's `flock`, through a temp file and a rename, as
    /// a dbkeep on another host would.
    fn put(&self, key: &str, data: &[u8]) {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(&self.path).join(key);
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
        std::fs::rename(&temp, &path).unwrap();
        drop(sidecar);
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(Path::new(&self.path).join(key)).ok()
    }

    fn location(&self) -> String {
        self.path.clone()
    }

    fn missing_text(place: &str) -> String {
        place.to_string()
    }
}

/// A bucket in moto.
pub(crate) struct S3Backend {
    endpoint: String,
    bucket: String,
}

impl Backend for S3Backend {
    const SERVICE: Option<Service> = Some(Service::S3);
    // 64 MiB plus part size × (parts in flight + 1).
    const MEMORY_BOUND_MIB: u64 = 64 + 16 * (4 + 1);
    const UNREACHABLE: &'static [&'static str] = &["dispatch failure", "onnection refused"];

    fn create(what: &str) -> Self {
        let endpoint = s3_endpoint();
        let bucket = s3_bucket(&endpoint, what);
        S3Backend { endpoint, bucket }
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn url_for(endpoint: &str, place: &str, prefix: &str) -> String {
        s3_url(endpoint, place, prefix)
    }

    fn place(&self) -> &str {
        &self.bucket
    }

    fn yaml_at(&self, endpoint: &str, prefix: &str) -> String {
        format!(
            "{{ type: s3, bucket: {}, prefix: {prefix}, endpoint: \"{endpoint}\", region: us-east-1, path_style: true }}",
            self.bucket
        )
    }

    fn dbkeep(&self) -> Command {
        dbkeep_s3()
    }

    fn keys(&self) -> Vec<String> {
        s3_keys(&self.endpoint, &self.bucket)
    }

    fn put(&self, key: &str, data: &[u8]) {
        let url = format!("{}/{}/{key}", self.endpoint, self.bucket);
        let (status, body) = s3_raw("PUT", &url, data);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!("{}/{}/{key}", self.endpoint, self.bucket);
        let (status, body) = s3_raw("GET", &url, b"");
        (status == 200).then_some(body)
    }

    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    fn missing_text(_place: &str) -> String {
        "NoSuchBucket".to_string()
    }

    fn open_uploads(&self) -> usize {
        s3_open_uploads(&self.endpoint, &self.bucket)
    }
}

/// A bucket in fake-gcs-server.
pub(crate) struct GcsBackend {
    endpoint: String,
    bucket: String,
}

impl Backend for GcsBackend {
    const SERVICE: Option<Service> = Some(Service::Gcs);
    // 64 MiB plus chunk size × 2 (one filling, one being sent), with a
    // third chunk of slack for allocator reuse.
    const MEMORY_BOUND_MIB: u64 = 64 + 16 * 3;
    const INJECTED: &'static str = "injected backend error";
    const ASKS_SESSION: bool = true;
    const CANCELS_SESSION: bool = true;

    fn create(what: &str) -> Self {
        let endpoint = gcs_endpoint();
        let bucket = gcs_bucket(&endpoint, what);
        GcsBackend { endpoint, bucket }
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn url_for(endpoint: &str, place: &str, prefix: &str) -> String {
        gcs_url(endpoint, place, prefix)
    }

    fn place(&self) -> &str {
        &self.bucket
    }

    fn yaml_at(&self, endpoint: &str, prefix: &str) -> String {
        format!(
            "{{ type: gcs, bucket: {}, prefix: {prefix}, endpoint: \"{endpoint}\" }}",
            self.bucket
        )
    }

    fn dbkeep(&self) -> Command {
        dbkeep_gcs()
    }

    fn keys(&self) -> Vec<String> {
        gcs_keys(&self.endpoint, &self.bucket)
    }

    fn put(&self, key: &str, data: &[u8]) {
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=media&name={}",
            self.endpoint,
            self.bucket,
            key.replace('/', "%2F")
        );
        let (status, body) = http("POST", &url, data);
        assert_eq!(status, 200, "{body}");
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media",
            self.endpoint,
            self.bucket,
            key.replace('/', "%2F")
        );
        let (status, body) = http("GET", &url, b"");
        (status == 200).then(|| body.into_bytes())
    }

    fn location(&self) -> String {
        format!("gs://{}", self.bucket)
    }

    fn missing_text(place: &str) -> String {
        format!("bucket `{place}` does not exist")
    }
}

/// A container in Azurite, reached with the dev account's key.
pub(crate) struct AzureBackend {
    endpoint: String,
    container: String,
}

impl Backend for AzureBackend {
    const SERVICE: Option<Service> = Some(Service::Azure);
    // 64 MiB plus block size × (4 in flight + 1), with one more block of
    // slack for allocator reuse.
    const MEMORY_BOUND_MIB: u64 = 64 + 16 * 6;
    const UNREACHABLE: &'static [&'static str] = &["cannot connect"];

    fn create(what: &str) -> Self {
        let endpoint = az_endpoint();
        let container = az_container(&endpoint, what);
        AzureBackend {
            endpoint,
            container,
        }
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn url_for(endpoint: &str, place: &str, prefix: &str) -> String {
        az_url(endpoint, place, prefix)
    }

    fn place(&self) -> &str {
        &self.container
    }

    fn yaml_at(&self, endpoint: &str, prefix: &str) -> String {
        format!(
            "{{ type: azure, container: {}, prefix: {prefix}, endpoint: \"{endpoint}\" }}",
            self.container
        )
    }

    fn dbkeep(&self) -> Command {
        dbkeep_az()
    }

    fn keys(&self) -> Vec<String> {
        az_keys(&self.endpoint, &self.container)
    }

    fn put(&self, key: &str, data: &[u8]) {
        assert_eq!(az_put_blob(&self.endpoint, &self.container, key, data), 201);
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        az_get_blob(&self.endpoint, &self.container, key)
    }

    fn location(&self) -> String {
        format!("az://{}", self.container)
    }

    fn missing_text(place: &str) -> String {
        format!("container `{place}` does not exist")
    }

    fn dead_endpoint() -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", free_port())
    }
}

/// A folder on the private sshd that scripts/test.sh starts, reached over
/// SFTP; seen into through the local file system (the server is this host).
pub(crate) struct SftpBackend {
    _dir: tempfile::TempDir,
    path: String,
}

/// A variable scripts/test.sh sets for its private sshd.
pub(crate) fn ssh_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests through scripts/test.sh, which starts a private sshd"
        )
    })
}

/// `key_file` and `known_hosts` for the private sshd, as URL parameters.
pub(crate) fn sftp_query(known_hosts: &str) -> String {
    format!(
        "key_file={}&known_hosts={}",
        ssh_env("DBKEEP_TEST_SSH_KEY"),
        ssh_env(known_hosts)
    )
}

impl Backend for SftpBackend {
    const SERVICE: Option<Service> = None;

    fn create(_what: &str) -> Self {
        let dir = tempdir();
        let path = dir.path().join("sftp").display().to_string();
        SftpBackend { _dir: dir, path }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", ssh_env("DBKEEP_TEST_SSH_PORT"))
    }

    fn url_for(endpoint: &str, place: &str, prefix: &str) -> String {
        format!(
            "sftp://{}@{endpoint}{place}/{prefix}?{}",
            ssh_env("DBKEEP_TEST_SSH_USER"),
            sftp_query("DBKEEP_TEST_SSH_KNOWN_HOSTS")
        )
    }

    fn place(&self) -> &str {
        &self.path
    }

    fn yaml_at(&self, endpoint: &str, prefix: &str) -> String {
        let (host, port) = endpoint.rsplit_once(':').unwrap();
        format!(
            "{{ type: sftp, host: {host}, port: {port}, user: {}, path: {}, key_file: {}, known_hosts: {}, prefix: {prefix} }}",
            ssh_env("DBKEEP_TEST_SSH_USER"),
            self.path,
            ssh_env("DBKEEP_TEST_SSH_KEY"),
            ssh_env("DBKEEP_TEST_SSH_KNOWN_HOSTS")
        )
    }

    fn dbkeep(&self) -> Command {
        dbkeep()
    }

    fn keys(&self) -> Vec<String> {
        files(Path::new(&self.path))
    }

    /// Through a temp file and a rename, as sftp's `put` would.
    fn put(&self, key: &str, data: &[u8]) {
        let path = PathBuf::from(&self.path).join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = path.with_extension("put-test");
        std::fs::write(&temp, data).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(Path::new(&self.path).join(key)).ok()
    }

    fn location(&self) -> String {
        format!(
            "sftp://{}@{}{}",
            ssh_env("DBKEEP_TEST_SSH_USER"),
            self.endpoint(),
            self.path
        )
    }

    fn missing_text(place: &str) -> String {
        format!("folder {place} does not exist")
    }
}

/// The tests of the suite, for one backend.
macro_rules! tests {
    ($backend:ty; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                super::$test::<$backend>();
            }
        )*
    };
}

/// The suite for one storage: `conformance!(name, Backend)`, and with
/// `faults` the fault tests too (a storage behind the fault proxy).
macro_rules! conformance {
    ($name:ident, $backend:ty) => {
        conformance!($name, $backend, []);
    };
    ($name:ident, $backend:ty, faults) => {
        conformance!($name, $backend, [
            a_missing_place_and_an_unreachable_endpoint_are_clear,
            a_large_backup_goes_up_in_parts_with_bounded_memory,
            a_reset_connection_mid_part_is_retried,
            a_500_on_a_part_is_retried,
            a_part_that_always_fails_leaves_nothing_behind,
            a_download_cut_halfway_resumes,
            a_lock_created_but_unanswered_is_ours,
        ]);
    };
    ($name:ident, $backend:ty, [$($faults:ident),* $(,)?]) => {
        mod $name {
            use super::*;

            tests!($backend;
                a_postgres_backup_round_trips,
                the_job_lock_refuses_a_second_run_and_a_stale_one_is_taken_over,
                retention_and_prune_delete_old_backups,
                contending_runs_take_turns,
                a_run_that_loses_its_lock_stops,
                a_panic_releases_the_lock,
                $($faults,)*
            );
        }
    };
}

conformance!(local, LocalBackend);
conformance!(s3, S3Backend, faults);
conformance!(gcs, GcsBackend, faults);
conformance!(azure, AzureBackend, faults);
conformance!(sftp, SftpBackend);

// ---------------------------------------------------------------- everywhere

fn a_postgres_backup_round_trips<B: Backend>() {
    let b = B::create("rt");
    let mut db = PgDb::new("storage_rt");
    psql(
        &db.name,
        "create table t (id int primary key, v text, b bytea); insert into t select i, md5(i::text), decode(md5(i::text), 'hex') from generate_series(1, 20000) i",
    );
    let copy = db.another("copy");
    let url = b.url("team/prod");
    ok(run(b.dbkeep().args([
        "backup",
        &pg_url(&db.name),
        "--to",
        &url,
    ])));
    let keys = b.keys();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("team/prod/") && k.ends_with("/manifest.json")),
        "{keys:?}"
    );
    let listed = ok(run(b.dbkeep().args(["list", "--json", "--from", &url])));
    assert!(listed.contains(&db.name), "{listed}");
    ok(run(b.dbkeep().args(["verify", "--from", &url])));
    ok(run(b.dbkeep().args([
        "restore",
        "--from",
        &url,
        "--target",
        &pg_url(&copy),
    ])));
    assert_eq!(pg_rows(&db.name, "t"), pg_rows(&copy, "t"));
}

/// Writes the config: `top`, storage `store` (its entry `storage`), and
/// job `app` backing up the SQLite file `db`, with `job` added to the job.
fn config(dir: &Path, storage: &str, db: &Path, top: &str, job: &str) -> PathBuf {
    let config = dir.join("dbkeep.yaml");
    std::fs::write(
        &config,
        format!(
            "{top}storages:\n  store: {storage}\njobs:\n  app:\n    source: {{ type: sqlite, path: {} }}\n{job}",
            db.display()
        ),
    )
    .unwrap();
    config
}

/// The job lock is a conditional create: a second run is refused while the
/// first holds it, and a stale lock left by another host is taken over.
fn the_job_lock_refuses_a_second_run_and_a_stale_one_is_taken_over<B: Backend>() {
    let b = B::create("lock");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let hooks = "    hooks: { before: [[sleep, \"2\"]] }
";
    let config = config(dir.path(), &b.yaml("locked"), &db, "", hooks);
    let first = b
        .dbkeep()
        .arg("-c")
        .arg(&config)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = "locked/app/lock.json".to_string();
    let start = Instant::now();
    while !b.keys().contains(&lock) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = run(b.dbkeep().arg("-c").arg(&config).args(["backup", "app"]));
    assert_eq!(second.status.code(), Some(75), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&second)
    );
    ok(first.wait_with_output().unwrap());
    assert!(!b.keys().contains(&lock));

    // A lock from another host, not refreshed for an hour: taken over.
    let old = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let stale = format!(
        r#"{{"job":"app","command":"backup","host":"gone.example","pid":7,"started_at":"{old}","refreshed_at":"{old}","token":"x"}}"#
    );
    b.put(&lock, stale.as_bytes());
    let out = run(b.dbkeep().arg("-c").arg(&config).args(["backup", "app"]));
    ok(out.clone());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taking over a stale lock"));
    assert_eq!(b.manifests(), 2);
}

fn retention_and_prune_delete_old_backups<B: Backend>() {
    let b = B::create("keep");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let cfg = config(dir.path(), &b.yaml("r"), &db, "", "");
    for _ in 0..3 {
        ok(run(b.dbkeep().arg("-c").arg(&cfg).args(["backup", "app"])));
        std::thread::sleep(Duration::from_millis(1100));
    }
    assert_eq!(b.manifests(), 3);
    let retention = "    retention: { keep_last: 1 }
";
    config(dir.path(), &b.yaml("r"), &db, "", retention);
    let out = ok(run(b
        .dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["prune", "--force", "app"])));
    assert!(out.contains("1 backups kept, 2 deleted"), "{out}");
    let keys = b.keys();
    assert_eq!(b.manifests(), 1, "{keys:?}");
    // Only the kept backup's objects are left (its data and its manifest).
    assert_eq!(keys.len(), 2, "{keys:?}");
    let listed = ok(run(b
        .dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["list", "app", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    ok(run(b.dbkeep().arg("-c").arg(&cfg).args(["verify", "app"])));
}

// ---------------------------------------------------------------- the lock

/// The lock's key in the lock tests.
const LOCK: &str = "locks/app/lock.json";

/// A lock held by a run on another host, refreshed `age` ago.
fn foreign_lock(age: chrono::Duration, token: &str) -> Vec<u8> {
    let at = (chrono::Utc::now() - age).to_rfc3339();
    serde_json::to_vec_pretty(&serde_json::json!({
        "job": "app", "command": "backup", "host": "other.example", "pid": 4242,
        "started_at": at, "refreshed_at": at, "token": token,
    }))
    .unwrap()
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

/// Six runs start at once on a job whose lock is stale: exactly one takes it
/// over, the others wait their turn, and no two `before` hooks overlap.
/// Storages behind HTTP are reached through a proxy that holds back every
/// removal of the lock, so that a takeover made of a delete and a create
/// (instead of one conditional replace) races visibly.
fn contending_runs_take_turns<B: Backend>() {
    const RUNS: usize = 6;
    let b = B::create("contend");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let proxy = B::SERVICE.map(|_| b.proxy(Fault::DelayLockDelete, 0));
    let endpoint = proxy
        .as_ref()
        .map_or_else(|| b.endpoint(), |p| p.url.clone());
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let m = marks.display();
    let hook = format!(
        "mkdir {m}/inside || echo overlap >> {m}/overlaps; echo run >> {m}/entries; sleep 0.3; rmdir {m}/inside 2>/dev/null || true"
    );
    let hooks = format!("    hooks: {{ before: [[sh, -c, \"{hook}\"]] }}\n");
    let cfg = config(dir.path(), &b.yaml_at(&endpoint, "locks"), &db, "", &hooks);
    b.put(LOCK, &foreign_lock(chrono::Duration::hours(2), "stale"));

    let start = Instant::now();
    let runs: Vec<Child> = (0..RUNS)
        .map(|_| {
            b.dbkeep()
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
    eprintln!("{RUNS} contending runs took {:?}", start.elapsed());

    let overlaps = std::fs::read_to_string(marks.join("overlaps")).unwrap_or_default();
    assert_eq!(overlaps, "", "two runs were inside at once");
    for out in &outs {
        assert!(out.status.success(), "a run failed\n{}", text(out));
    }
    let takeovers = outs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("taking over a stale lock"))
        .count();
    assert_eq!(takeovers, 1, "exactly one run takes the stale lock over");
    let entries = std::fs::read_to_string(marks.join("entries")).unwrap();
    assert_eq!(entries.lines().count(), RUNS);
    assert_eq!(b.manifests(), RUNS, "{:?}", b.keys());
    assert_eq!(b.get(LOCK), None, "the lock was not released");
}

/// A run's lock is taken over by another host while the run is in its slow
/// `before` hook: its heartbeat notices, the run stops and fails, no
/// manifest is written, and the other host's lock stays as it was.
fn a_run_that_loses_its_lock_stops<B: Backend>() {
    let b = B::create("lost");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let top = "lock: { stale_after: 3s }\n";
    // The hook runs once the lock is taken and confirmed: its mark says so.
    let inside = dir.path().join("inside");
    let hooks = format!(
        "    hooks: {{ before: [[sh, -c, \"touch {}; sleep 60\"]] }}\n",
        inside.display()
    );
    let cfg = config(dir.path(), &b.yaml("locks"), &db, top, &hooks);
    let child = b
        .dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_until("the run holds its lock", Duration::from_secs(20), || {
        inside.exists()
            && b.get(LOCK)
                .is_some_and(|l| String::from_utf8_lossy(&l).contains(&format!("\"pid\": {pid}")))
    });
    let theirs = foreign_lock(chrono::Duration::zero(), "theirs");
    b.put(LOCK, &theirs);
    let taken = Instant::now();
    let out = wait_at_most(child, Duration::from_secs(30)).expect("the run did not stop");
    let stopped = taken.elapsed();
    eprintln!("the run stopped {stopped:?} after its lock was taken over");

    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lost the job's lock in storage `store`") && err.contains("other.example"),
        "{}",
        text(&out)
    );
    assert!(
        stopped < Duration::from_secs(10),
        "stopped after {stopped:?}"
    );
    assert_eq!(b.manifests(), 0, "{:?}", b.keys());
    assert_eq!(
        b.get(LOCK).as_deref(),
        Some(theirs.as_slice()),
        "the other host's lock was changed"
    );
}

/// A panic while the lock is held (a debug-build fault injection) ends the
/// process instead of hanging it, and releases the lock.
fn a_panic_releases_the_lock<B: Backend>() {
    let b = B::create("panic");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let cfg = config(dir.path(), &b.yaml("locks"), &db, "", "");
    let child = b
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
    eprintln!("the panicking run ended in {:?}", start.elapsed());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DBKEEP_DEBUG_PANIC"),
        "{}",
        text(&out)
    );
    assert_eq!(b.get(LOCK), None, "the lock is left");
    assert_eq!(b.manifests(), 0);
}

// ---------------------------------------------------------------- over HTTP

fn a_missing_place_and_an_unreachable_endpoint_are_clear<B: Backend>() {
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int); insert into t values (1);")
        .unwrap();
    let b = B::create("err");
    let (endpoint, dbkeep) = (b.endpoint(), || b.dbkeep());

    let started = Instant::now();
    let missing = "no-such-place-dbkeep";
    let out = run(dbkeep()
        .args(["backup", "--to", &B::url_for(&endpoint, missing, "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains(&format!("://{missing}")) && all.contains(&B::missing_text(missing)),
        "{all}"
    );
    assert!(!all.contains(KEY), "{all}");
    assert!(started.elapsed() < Duration::from_secs(20));

    let started = Instant::now();
    let out = run(dbkeep()
        .args(["backup", "--to", &B::url_for(&B::dead_endpoint(), "b", "x")])
        .arg(&db));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("://b/") && B::UNREACHABLE.iter().any(|u| all.contains(u)),
        "{all}"
    );
    assert!(!all.contains(KEY), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

fn a_large_backup_goes_up_in_parts_with_bounded_memory<B: Backend>() {
    let b = B::create("big");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 210);
    let proxy = b.proxy(Fault::None, 0);
    let started = Instant::now();
    let child = b
        .dbkeep()
        .args([
            "backup",
            "--compression",
            "none",
            "--to",
            &b.url_via(&proxy, "big"),
        ])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss(child.id());
    let out = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let peak_kib = peak.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stored = std::fs::metadata(&db).unwrap().len();
    assert!(
        stored >= 200 << 20,
        "the test object must be at least 200 MB"
    );
    let parts = proxy.parts.load(Ordering::SeqCst);
    eprintln!(
        "{}: {} MiB in {parts} parts, {elapsed:?}, peak RSS {} MiB",
        b.location(),
        stored >> 20,
        peak_kib / 1024
    );
    assert!(parts >= 12, "uploaded in {parts} parts");
    let bound_kib = B::MEMORY_BOUND_MIB * 1024;
    assert!(
        peak_kib > 0 && peak_kib < bound_kib,
        "peak RSS {peak_kib} KiB, bound {bound_kib} KiB"
    );
    ok(run(b.dbkeep().args(["verify", "--from", &b.url("big")])));
}

/// A backup of 24 MiB in 5 MiB parts through a proxy that injects `fault`
/// `count` times.
fn backup_through<B: Backend>(fault: Fault, count: i64) -> (std::process::Output, B, FaultProxy) {
    let b = B::create("fault");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 24);
    let proxy = b.proxy(fault, count);
    let url = format!("{}&part_size_mib=5", b.url_via(&proxy, "p"));
    let out = run(b
        .dbkeep()
        .args(["backup", "--compression", "none", "--to", &url])
        .arg(&db));
    (out, b, proxy)
}

fn a_reset_connection_mid_part_is_retried<B: Backend>() {
    let (out, b, proxy) = backup_through::<B>(Fault::Reset, 1);
    assert!(out.status.success(), "{}", text(&out));
    if B::ASKS_SESSION {
        assert!(
            proxy.queries.load(Ordering::SeqCst) >= 1,
            "the session offset was asked for"
        );
    }
    // The stored bytes still match the manifest's sha256.
    ok(run(b.dbkeep().args(["verify", "--from", &b.url("p")])));
}

fn a_500_on_a_part_is_retried<B: Backend>() {
    let (out, b, proxy) = backup_through::<B>(Fault::Status500, 1);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.left.load(Ordering::SeqCst) <= 0,
        "the fault was injected"
    );
    ok(run(b.dbkeep().args(["verify", "--from", &b.url("p")])));
    assert_eq!(b.open_uploads(), 0);
}

fn a_part_that_always_fails_leaves_nothing_behind<B: Backend>() {
    let started = Instant::now();
    let (out, b, proxy) = backup_through::<B>(Fault::Status500, i64::MAX);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(B::INJECTED) && err.contains(&format!("{}/", b.location())),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(b.keys(), Vec::<String>::new(), "no object and no manifest");
    assert_eq!(b.open_uploads(), 0, "no multipart upload left open");
    if B::CANCELS_SESSION {
        assert!(
            proxy.cancels.load(Ordering::SeqCst) >= 1,
            "the upload session was cancelled"
        );
    }
}

fn a_download_cut_halfway_resumes<B: Backend>() {
    let b = B::create("dl");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    ok(run(b
        .dbkeep()
        .args(["backup", "--to", &b.url("d")])
        .arg(&db)));
    // Each of the first three downloads of the object is cut off halfway.
    let proxy = b.proxy(Fault::CutDownload, 3);
    let out = ok(run(b.dbkeep().args([
        "verify",
        "--from",
        &b.url_via(&proxy, "d"),
    ])));
    assert!(out.contains("intact"), "{out}");
    let proxy = b.proxy(Fault::CutDownload, 3);
    let target = dir.path().join("restored.db");
    ok(run(b
        .dbkeep()
        .args(["restore", "--from", &b.url_via(&proxy, "d"), "--target"])
        .arg(&target)));
    let count: i64 = rusqlite::Connection::open(&target)
        .unwrap()
        .query_row("select count(*) from blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 12 * 256);
}

/// The lock object is created, but its answer is lost: the retry finds an
/// object, and it holds this run's own lock.
fn a_lock_created_but_unanswered_is_ours<B: Backend>() {
    let b = B::create("lockcut");
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let proxy = b.proxy(Fault::ResetAfterCreate, 1);
    let out = run(b
        .dbkeep()
        .args(["backup", "--to", &b.url_via(&proxy, "l")])
        .arg(&db));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        proxy.left.load(Ordering::SeqCst) <= 0,
        "the fault was injected"
    );
    let keys = b.keys();
    assert_eq!(b.manifests(), 1, "{keys:?}");
    assert!(!keys.iter().any(|k| k.ends_with("lock.json")), "{keys:?}");
}
