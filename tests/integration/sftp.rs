//! SFTP storage against the private OpenSSH server of scripts/test.sh: host
//! keys, a connection cut mid-upload and mid-download, and the checks of
//! `type: sftp`. The storage conformance suite (storage.rs) runs it too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::storage::{sftp_query, ssh_env};
use crate::util::*;

/// `sftp://` for `folder` on the private sshd at `port`, with `known_hosts`.
fn url(port: &str, folder: &Path, known_hosts: &str) -> String {
    format!(
        "sftp://{}@127.0.0.1:{port}{}?{}",
        ssh_env("DBKEEP_TEST_SSH_USER"),
        folder.display(),
        sftp_query(known_hosts)
    )
}

/// `sftp://` for `folder` through `proxy`, whose port gets the sshd's host
/// key in a known_hosts file of its own.
fn via(proxy: &CutProxy, folder: &Path) -> String {
    let port = ssh_env("DBKEEP_TEST_SSH_PORT");
    let line = std::fs::read_to_string(ssh_env("DBKEEP_TEST_SSH_KNOWN_HOSTS")).unwrap();
    let known = folder.with_extension("known_hosts");
    std::fs::write(
        &known,
        line.replace(&format!("]:{port} "), &format!("]:{} ", proxy.port)),
    )
    .unwrap();
    format!(
        "sftp://{}@127.0.0.1:{}{}?key_file={}&known_hosts={}",
        ssh_env("DBKEEP_TEST_SSH_USER"),
        proxy.port,
        folder.display(),
        ssh_env("DBKEEP_TEST_SSH_KEY"),
        known.display()
    )
}

fn direct(folder: &Path) -> String {
    url(
        &ssh_env("DBKEEP_TEST_SSH_PORT"),
        folder,
        "DBKEEP_TEST_SSH_KNOWN_HOSTS",
    )
}

/// Which way a [`CutProxy`] counts bytes.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    /// Client to server (an upload).
    Up,
    /// Server to client (a download).
    Down,
}

/// A TCP proxy in front of the sshd that cuts its first `cuts` connections
/// once `after` bytes went `way`; later connections pass untouched.
struct CutProxy {
    port: u16,
    cut: Arc<AtomicUsize>,
}

impl CutProxy {
    fn start(way: Way, after: usize, cuts: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target: u16 = ssh_env("DBKEEP_TEST_SSH_PORT").parse().unwrap();
        let cut = Arc::new(AtomicUsize::new(0));
        let done = cut.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
                let limit = (n < cuts).then_some(after);
                let done = done.clone();
                let pump = move |mut from: TcpStream, mut to: TcpStream, counted: bool| {
                    let done = done.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        let mut moved = 0usize;
                        while let Ok(k) = from.read(&mut buf) {
                            if k == 0 || to.write_all(&buf[..k]).is_err() {
                                break;
                            }
                            moved += k;
                            if counted && limit.is_some_and(|l| moved >= l) {
                                done.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        }
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(client, server, way == Way::Up);
                pump(s2, c2, way == Way::Down);
            }
        });
        CutProxy { port, cut }
    }
}

fn visible(folder: &Path) -> Vec<String> {
    files(folder)
        .into_iter()
        .filter(|f| !f.rsplit('/').next().unwrap().starts_with('.'))
        .collect()
}

#[test]
fn a_wrong_host_key_is_refused_and_names_the_host() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let folder = dir.path().join("remote");
    let wrong = url(
        &ssh_env("DBKEEP_TEST_SSH_PORT"),
        &folder,
        "DBKEEP_TEST_SSH_WRONG_KNOWN_HOSTS",
    );
    let out = run(dbkeep().args(["backup", db.to_str().unwrap(), "--to", &wrong]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{}", ssh_env("DBKEEP_TEST_SSH_PORT"))),
        "{err}"
    );
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(!folder.exists(), "something was written");
}

#[test]
fn a_first_host_key_is_taken_only_when_asked_and_then_kept() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 1);
    let folder = dir.path().join("remote");
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let base = format!(
        "sftp://{}@127.0.0.1:{}{}?key_file={}&known_hosts={}",
        ssh_env("DBKEEP_TEST_SSH_USER"),
        ssh_env("DBKEEP_TEST_SSH_PORT"),
        folder.display(),
        ssh_env("DBKEEP_TEST_SSH_KEY"),
        known.display()
    );
    // Unknown host, not asked to trust it: refused.
    let out = run(dbkeep().args(["backup", db.to_str().unwrap(), "--to", &base]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Host key verification failed"),
        "{}",
        text(&out)
    );
    // Asked: taken, and remembered for the next run without the flag.
    ok(run(dbkeep().args([
        "backup",
        db.to_str().unwrap(),
        "--to",
        &format!("{base}&accept_new_host_key=true"),
    ])));
    assert!(
        std::fs::read_to_string(&known)
            .unwrap()
            .contains("ssh-ed25519")
    );
    ok(run(dbkeep().args(["list", "--from", &base])));
    assert_eq!(visible(&folder).len(), 2, "{:?}", files(&folder));
}

#[test]
fn a_connection_cut_mid_upload_commits_nothing() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    let folder = dir.path().join("remote");
    let proxy = CutProxy::start(Way::Up, 4 << 20, 1);
    let cut = via(&proxy, &folder);
    let out = run(dbkeep().args([
        "backup",
        db.to_str().unwrap(),
        "--to",
        &cut,
        "--compression",
        "none",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(proxy.cut.load(Ordering::SeqCst), 1, "the proxy never cut");
    assert!(text(&out).contains("SFTP"), "{}", text(&out));
    // No object under its name and no manifest; a temp file may be left for prune.
    assert_eq!(
        visible(&folder),
        Vec::<String>::new(),
        "{:?}",
        files(&folder)
    );
    let listed = ok(run(dbkeep().args([
        "list",
        "--json",
        "--from",
        &direct(&folder),
    ])));
    assert_eq!(listed.trim(), "[]");
}

#[test]
fn a_download_cut_halfway_resumes() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 12);
    let folder = dir.path().join("remote");
    ok(run(dbkeep().args([
        "backup",
        db.to_str().unwrap(),
        "--to",
        &direct(&folder),
        "--compression",
        "none",
    ])));
    let proxy = CutProxy::start(Way::Down, 5 << 20, 1);
    let cut = via(&proxy, &folder);
    let copy = dir.path().join("copy.db");
    let out = run(dbkeep().args([
        "restore",
        "--from",
        &cut,
        "--job",
        "big",
        "--target",
        copy.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(proxy.cut.load(Ordering::SeqCst), 1, "the proxy never cut");
    assert!(text(&out).contains("resuming"), "{}", text(&out));
    let rows = |p: &Path| -> (i64, i64) {
        let c = rusqlite::Connection::open(p).unwrap();
        c.query_row("select count(*), sum(length(data)) from blobs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    };
    assert_eq!(rows(&copy), rows(&db));
    assert_eq!(rows(&copy).0, 12 * 256);
}

#[test]
fn bad_sftp_settings_name_their_key() {
    let dir = tempdir();
    let cfg = dir.path().join("dbkeep.yaml");
    std::fs::write(
        &cfg,
        "storages:\n  nas: { type: sftp, host: \"-oProxyCommand=touch /tmp/x\", path: /srv/b }\n  \
         nas2: { type: sftp, host: nas.lan, path: \"\" }\n  \
         nas3: { type: sftp, host: nas.lan, path: /srv, region: x }\n\
         jobs:\n  app: { source: { type: sqlite, path: /tmp/a.db }, storage: [nas, nas2, nas3] }\n",
    )
    .unwrap();
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("storages.nas.host"), "{all}");
    assert!(all.contains("storages.nas2.path"), "{all}");
    assert!(
        all.contains("`region` does not apply to `type: sftp`"),
        "{all}"
    );
}

#[test]
fn a_large_upload_streams_with_bounded_memory() {
    let dir = tempdir();
    let db = sqlite_with_random_data(dir.path(), 210);
    let folder = dir.path().join("remote");
    let child = dbkeep()
        .args(["backup", "--compression", "none", "--to", &direct(&folder)])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peak = peak_rss(child.id());
    let out = child.wait_with_output().unwrap();
    let peak_kib = peak.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stored: u64 = visible(&folder)
        .iter()
        .map(|f| std::fs::metadata(folder.join(f)).unwrap().len())
        .sum();
    assert!(stored >= 210 << 20, "stored {stored} bytes");
    // 64 MiB for dbkeep, 8 MiB of requests in flight, and slack.
    eprintln!(
        "sftp: {} MiB stored, peak RSS {} MiB",
        stored >> 20,
        peak_kib / 1024
    );
    assert!(
        peak_kib > 0 && peak_kib < 80 * 1024,
        "peak RSS {peak_kib} KiB"
    );
    ok(run(dbkeep().args([
        "verify",
        "--from",
        &direct(&folder),
        "--job",
        "big",
    ])));
}

/// A login that takes nothing but a password (the private sshd's second
/// account, `AuthenticationMethods password`): `password_file` logs in
/// through ssh's askpass, the password is on no command line and in no
/// output, a backup round-trips, and a wrong password is refused with the
/// storage and host named.
#[test]
fn a_password_from_password_file_logs_in_and_is_never_shown() {
    let user = std::env::var("DBKEEP_TEST_SSH_PASSWORD_USER").unwrap_or_default();
    let file = std::env::var("DBKEEP_TEST_SSH_PASSWORD_FILE").unwrap_or_default();
    if user.is_empty() || file.is_empty() {
        eprintln!(
            "SKIPPED a_password_from_password_file_logs_in_and_is_never_shown: scripts/test.sh \
             makes the password login only as root (CI runs as root)"
        );
        return;
    }
    let password = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let dir = tempdir();
    let db = dir.path().join("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "create table t (id integer primary key, v text);
             insert into t (v) values ('a'), ('b'), ('c');",
        )
        .unwrap();
    let folder = unique("pw");
    let config = |password_file: &Path| {
        let name = password_file.file_name().unwrap().to_string_lossy();
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "storages:\n  nas:\n    type: sftp\n    host: 127.0.0.1\n    port: {}\n    user: {user}\n    \
                 path: {folder}\n    password_file: {}\n    known_hosts: {}\n\
                 jobs:\n  app:\n    storage: nas\n    source: {{ type: sqlite, path: {} }}\n",
                ssh_env("DBKEEP_TEST_SSH_PORT"),
                password_file.display(),
                ssh_env("DBKEEP_TEST_SSH_KNOWN_HOSTS"),
                db.display()
            ),
        )
        .unwrap();
        path
    };
    let good = config(Path::new(&file));
    let child = dbkeep()
        .arg("-c")
        .arg(&good)
        .args(["backup", "app"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watch = watch_cmdlines(&password, child.id());
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    ok(out);
    let (sampled, hits) = watch.join().unwrap();
    assert!(sampled > 0);
    assert!(
        hits.is_empty(),
        "the password was on a command line: {hits:?}"
    );
    assert!(!all.contains(&password), "{all}");

    let restored = dir.path().join("restored.db");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&good)
        .args(["restore", "app", "--target"])
        .arg(&restored));
    assert!(!text(&out).contains(&password));
    ok(out);
    let rows = |p: &Path| -> Vec<String> {
        let c = rusqlite::Connection::open(p).unwrap();
        let mut s = c.prepare("select v from t order by id").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(rows(&db), rows(&restored));

    // A wrong password: refused, named, and nothing is added.
    let wrong = dir.path().join("wrong-password");
    std::fs::write(&wrong, "not-the-password-4e1\n").unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(config(&wrong))
        .args(["backup", "app"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("storage `nas`") && all.contains(&format!("{user}@127.0.0.1")),
        "{all}"
    );
    assert!(!all.contains("not-the-password-4e1"), "{all}");
    let listed = ok(run(dbkeep().arg("-c").arg(&good).args(["list", "--json"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // An empty password file is refused before ssh starts.
    let empty = dir.path().join("empty-password");
    std::fs::write(&empty, "").unwrap();
    let out = run(dbkeep()
        .arg("-c")
        .arg(config(&empty))
        .args(["backup", "app"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("`password_file`"), "{}", text(&out));
}

/// dbkeep as ssh's askpass program answers a password prompt with the
/// file's first line and nothing else, and refuses any other question.
#[test]
fn the_askpass_answers_only_password_prompts() {
    let dir = tempdir();
    let file = dir.path().join("pw");
    std::fs::write(&file, "first-line-pw\nsecond line\n").unwrap();
    let ask = |prompt: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dbkeep"))
            .env("_DBKEEP_SSH_ASKPASS_FILE", &file)
            .arg(prompt)
            .output()
            .unwrap()
    };
    let out = ask("backup@nas's password: ");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout, b"first-line-pw\n");
    for question in [
        "Enter passphrase for key '/root/.ssh/id_ed25519': ",
        "Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
    ] {
        let out = ask(question);
        assert_eq!(out.status.code(), Some(1), "{question}");
        assert!(out.stdout.is_empty(), "{question}");
    }
}
