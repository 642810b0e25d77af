//! One run of a job at a time, across processes and hosts.
//!
//! The lock is the object `<prefix>/<job>/lock.json` in each of the job's
//! storages. It names its holder (host, boot, pid namespace, pid, start time,
//! a random token) and changes hands only through the storage's conditional
//! writes: it is made with a conditional create (S3 and Azure
//! `If-None-Match: *`, GCS `ifGenerationMatch=0`, local a check under
//! `flock`), and every later write or removal names the version it expects
//! (S3 and Azure `If-Match`, GCS `ifGenerationMatch`, local a content hash).
//! After each create or takeover the lock is read back: it is held only if
//! it holds this run's token.
//!
//! While the run goes on, the lock is rewritten every third of
//! `lock.stale_after`, against the version written last. When it holds
//! another run's token, is gone, or cannot be rewritten for half of
//! `stale_after`, the run is cancelled (its children stopped, its partial
//! objects removed) and fails. A lock not rewritten for `stale_after`, or
//! held by a process of this host (same boot, same pid namespace) that no
//! longer exists, belongs to a dead run and is taken over, by a conditional
//! replace of the version that was judged stale.
//!
//! The lock is released when the run ends, also when it panics, and only
//! where it still holds this run's token.
//!
//! `backup` and `prune` hold it. Without `--wait-lock`, a held lock fails the
//! run at once with exit code 75.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::manifest::{self, rfc3339};
use crate::storage::Target;
use crate::storage::Version;
use crate::util::exit::Failure;
use crate::util::signal::Run;

/// The lock object's name inside a job's folder.
pub const LOCK: &str = "lock.json";

/// How to take a lock.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// When a lock counts as abandoned.
    pub stale_after: Duration,
    /// How long to wait for a held lock (none: fail at once).
    pub wait: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            stale_after: crate::config::LockSettings::default().stale_after,
            wait: None,
        }
    }
}

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The job.
    pub job: String,
    /// `backup` or `prune`.
    pub command: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's boot (`/proc/sys/kernel/random/boot_id`), empty if unknown.
    #[serde(default)]
    pub boot_id: String,
    /// The inode of the holder's pid namespace (`/proc/self/ns/pid`), 0 if unknown.
    #[serde(default)]
    pub pid_ns: u64,
    /// The holder's process id (in its pid namespace).
    pub pid: u32,
    /// When it took the lock.
    pub started_at: DateTime<Utc>,
    /// When it last rewrote the lock.
    pub refreshed_at: DateTime<Utc>,
    /// Tells this holder from every other.
    pub token: String,
}

/// The error of a run that lost its lock while it ran.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Lost(String);

impl Holder {
    fn describe(&self) -> String {
        format!(
            "`{}` on host {} (pid {}), running since {}",
            self.command,
            self.host,
            self.pid,
            rfc3339(self.started_at)
        )
    }

    fn is_stale(&self, stale_after: Duration, now: DateTime<Utc>) -> bool {
        let quiet = now
            .signed_duration_since(self.refreshed_at)
            .to_std()
            .unwrap_or_default();
        quiet > stale_after || self.died_here()
    }

    /// Whether the holder was a process of this host, this boot and this pid
    /// namespace that no longer exists. A pid means nothing elsewhere.
    fn died_here(&self) -> bool {
        self.host == crate::util::hostname()
            && !self.boot_id.is_empty()
            && self.boot_id == boot_id()
            && self.pid_ns != 0
            && self.pid_ns == pid_namespace()
            && self.pid != std::process::id()
            && !process_exists(self.pid)
    }
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This boot's id, empty when unknown.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The inode of this process's pid namespace, 0 when unknown.
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// A token no other run has: 128 random bits.
fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let mix = (nanos ^ u64::from(std::process::id()).rotate_left(32))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        bytes[..8].copy_from_slice(&mix.to_le_bytes());
        bytes[8..].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lock's key in a target.
pub fn key(target: &Target, job: &str) -> String {
    manifest::join_key(&[&target.prefix, job, LOCK])
}

/// A lock held in one target: which, and the version written last.
#[derive(Debug, Clone)]
struct Held {
    target: usize,
    version: Version,
}

enum Attempt {
    Taken(Vec<Held>),
    Busy { storage: String, holder: String },
}

/// Runs `body` while holding job `job`'s lock in every target.
///
/// A required storage where the lock cannot be written fails the run; an
/// optional one is skipped with a warning. When the lock is lost while
/// `body` runs, `body` is cancelled and the result is a [`Lost`] error.
pub fn hold<T>(
    targets: &[Target],
    job: &str,
    command: &str,
    options: Options,
    body: impl FnOnce() -> T,
) -> Result<T> {
    let now = Utc::now();
    let mut holder = Holder {
        job: job.to_string(),
        command: command.to_string(),
        host: crate::util::hostname(),
        boot_id: boot_id(),
        pid_ns: pid_namespace(),
        pid: std::process::id(),
        started_at: now,
        refreshed_at: now,
        token: new_token(),
    };
    let deadline = options.wait.map(|w| Instant::now() + w);
    let mut told = false;
    let held = loop {
        crate::util::signal::check()?;
        let now = Utc::now();
        holder.started_at = now;
        holder.refreshed_at = now;
        match try_all(targets, job, &holder, options.stale_after)? {
            Attempt::Taken(held) => break held,
            Attempt::Busy { storage, holder } => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                match left {
                    Some(left) if !left.is_zero() => {
                        if !told {
                            tracing::info!(job, storage, holder, "waiting for the job's lock");
                            told = true;
                        }
                        std::thread::sleep(left.min(Duration::from_secs(2)));
                    }
                    _ => {
                        return Err(Failure::Locked {
                            job: job.to_string(),
                            storage,
                            holder,
                            waited: options.wait.is_some(),
                        }
                        .into());
                    }
                }
            }
        }
    };
    let run = Run::new();
    let lost = Arc::new(Mutex::new(None::<String>));
    let result = std::thread::scope(|scope| {
        let guard = Guard::start(
            scope,
            Beat {
                targets,
                job,
                holder: holder.clone(),
                held: Arc::new(Mutex::new(held)),
                stale_after: options.stale_after,
                run: run.clone(),
                lost: lost.clone(),
            },
        );
        let entered = Run::enter(&run);
        crate::util::debug_panic("locked-body");
        let out = body();
        drop(entered);
        drop(guard);
        out
    });
    if let Some(why) = lost.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(Lost(why).into());
    }
    Ok(result)
}

/// What the heartbeat needs, shared with the release.
struct Beat<'a> {
    targets: &'a [Target],
    job: &'a str,
    holder: Holder,
    held: Arc<Mutex<Vec<Held>>>,
    stale_after: Duration,
    run: Arc<Run>,
    /// Why the lock was lost, once it was.
    lost: Arc<Mutex<Option<String>>>,
}

/// Keeps the lock fresh while it lives; on drop (a panic too) stops the
/// heartbeat and releases the lock where it is still ours.
struct Guard<'scope, 'a> {
    stop: Option<mpsc::Sender<()>>,
    beat: Option<std::thread::ScopedJoinHandle<'scope, ()>>,
    targets: &'a [Target],
    job: &'a str,
    token: String,
    held: Arc<Mutex<Vec<Held>>>,
}

impl<'scope, 'a: 'scope> Guard<'scope, 'a> {
    fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        beat: Beat<'a>,
    ) -> Guard<'scope, 'a> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (targets, job, token, held) = (
            beat.targets,
            beat.job,
            beat.holder.token.clone(),
            beat.held.clone(),
        );
        let handle = std::thread::Builder::new()
            .name("lock-heartbeat".into())
            .spawn_scoped(scope, move || heartbeat(beat, stopped));
        let handle = match handle {
            Ok(h) => Some(h),
            Err(e) => {
                // Without a heartbeat the lock goes stale; say so, go on.
                tracing::warn!(job, error = %e, "cannot start the lock's heartbeat");
                None
            }
        };
        Guard {
            stop: Some(stop),
            beat: handle,
            targets,
            job,
            token,
            held,
        }
    }
}

impl Drop for Guard<'_, '_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        for h in &held {
            release(&self.targets[h.target], self.job, &self.token, &h.version);
        }
    }
}

/// Rewrites the lock every third of `stale_after` until told to stop.
fn heartbeat(beat: Beat<'_>, stopped: mpsc::Receiver<()>) {
    let Beat {
        targets,
        job,
        mut holder,
        held,
        stale_after,
        run,
        lost,
    } = beat;
    let every = stale_after / 3;
    let patience = stale_after / 2;
    // After a failed refresh, try again sooner, so that the run stops close
    // to `patience` and well before others may take the lock over.
    let retry = (stale_after / 12).max(Duration::from_millis(100));
    let mut last_ok: Vec<(usize, Instant)> = held
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|h| (h.target, Instant::now()))
        .collect();
    let mut wait = every;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        holder.refreshed_at = Utc::now();
        let Ok(bytes) = serde_json::to_vec_pretty(&holder) else {
            continue;
        };
        wait = every;
        let mut guard = held.lock().unwrap_or_else(|e| e.into_inner());
        let mut keep = Vec::with_capacity(guard.len());
        for mut h in guard.drain(..) {
            let t = &targets[h.target];
            let storage = t.storage.name();
            let why = match refresh(t, job, &bytes, &holder.token, &mut h.version) {
                Ok(Refreshed::Done) => {
                    if let Some(at) = last_ok.iter_mut().find(|(i, _)| *i == h.target) {
                        at.1 = Instant::now();
                    }
                    keep.push(h);
                    continue;
                }
                Ok(Refreshed::Taken(other)) => format!("it is now held by {other}"),
                Ok(Refreshed::Gone) => "the lock object was removed".to_string(),
                Err(e) => {
                    let quiet = last_ok
                        .iter()
                        .find(|(i, _)| *i == h.target)
                        .map(|(_, at)| at.elapsed())
                        .unwrap_or_default();
                    let error = format!("{e:#}");
                    if quiet <= patience {
                        tracing::warn!(job, storage, error, "cannot refresh the job's lock");
                        keep.push(h);
                        wait = retry;
                        continue;
                    }
                    if !t.required {
                        tracing::warn!(
                            job,
                            storage,
                            error,
                            "cannot refresh the job's lock in an optional storage; going on without"
                        );
                        release(t, job, &holder.token, &h.version);
                        continue;
                    }
                    format!(
                        "it could not be refreshed for {} ({error})",
                        crate::util::duration::format(quiet)
                    )
                }
            };
            let why = format!(
                "lost the job's lock in storage `{storage}` ({}): {why}; the run was stopped",
                t.storage.location()
            );
            tracing::error!(job, storage, "the job's lock was lost; stopping the run");
            let mut slot = lost.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(why);
            }
            drop(slot);
            run.cancel();
        }
        *guard = keep;
    }
}

enum Refreshed {
    Done,
    /// Another run holds it now: who.
    Taken(String),
    Gone,
}

/// Rewrites the lock in one target against `version`, the version this run
/// wrote last (updated on success).
fn refresh(
    t: &Target,
    job: &str,
    bytes: &[u8],
    token: &str,
    version: &mut Version,
) -> Result<Refreshed> {
    let key = key(t, job);
    for _ in 0..3 {
        if let Some(v) = t.storage.replace_if(&key, bytes, version)? {
            *version = v;
            return Ok(Refreshed::Done);
        }
        // Changed since: by someone else, or by our own write whose answer
        // was lost.
        let Some((current, v)) = t.storage.get_versioned(&key)? else {
            return Ok(Refreshed::Gone);
        };
        match serde_json::from_slice::<Holder>(&current) {
            Ok(h) if h.token == token => *version = v,
            Ok(h) => return Ok(Refreshed::Taken(h.describe())),
            Err(_) => {
                return Ok(Refreshed::Taken(format!(
                    "an unreadable lock object `{key}`"
                )));
            }
        }
    }
    anyhow::bail!("the lock `{key}` keeps changing")
}

fn try_all(
    targets: &[Target],
    job: &str,
    holder: &Holder,
    stale_after: Duration,
) -> Result<Attempt> {
    let bytes = serde_json::to_vec_pretty(holder).context("cannot encode the lock")?;
    let mut taken: Vec<Held> = Vec::new();
    let give_back = |taken: &[Held]| {
        for h in taken {
            release(&targets[h.target], job, &holder.token, &h.version);
        }
    };
    for (i, t) in targets.iter().enumerate() {
        match take_one(t, job, &bytes, &holder.token, stale_after) {
            Ok(Took::Taken(version)) => taken.push(Held { target: i, version }),
            Ok(Took::Busy(other)) => {
                give_back(&taken);
                return Ok(Attempt::Busy {
                    storage: t.storage.name().to_string(),
                    holder: other,
                });
            }
            Err(e) if !t.required => {
                tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot lock the job in an optional storage; going on without");
            }
            Err(e) => {
                give_back(&taken);
                return Err(e.context(format!(
                    "cannot take the lock of job `{job}` in storage `{}` ({})",
                    t.storage.name(),
                    t.storage.location()
                )));
            }
        }
    }
    Ok(Attempt::Taken(taken))
}

enum Took {
    Taken(Version),
    /// Held by someone else: who.
    Busy(String),
}

/// Takes the lock in one storage.
fn take_one(
    t: &Target,
    job: &str,
    bytes: &[u8],
    token: &str,
    stale_after: Duration,
) -> Result<Took> {
    let key = key(t, job);
    for _ in 0..5 {
        if t.storage.create_if_absent(&key, bytes)?.is_some() {
            match confirm(t, &key, token)? {
                Some(took) => return Ok(took),
                None => continue,
            }
        }
        let Some((current, version)) = t.storage.get_versioned(&key)? else {
            continue; // released in between
        };
        let other = match serde_json::from_slice::<Holder>(&current) {
            Ok(other) => other,
            Err(_) => {
                // Not a lock of ours, or a store that shows partial writes.
                std::thread::sleep(Duration::from_millis(200));
                match t.storage.get_versioned(&key)? {
                    Some((_, again)) if again == version => {
                        return Ok(Took::Busy(format!(
                            "an unreadable lock object `{key}` (remove it if no run is going)"
                        )));
                    }
                    _ => continue,
                }
            }
        };
        if other.token == token {
            // Our own create landed, but its answer was lost and the retry
            // was refused: the lock is ours.
            return Ok(Took::Taken(version));
        }
        if !other.is_stale(stale_after, Utc::now()) {
            return Ok(Took::Busy(other.describe()));
        }
        // Take over exactly the version judged stale; if it changed, look again.
        if t.storage.replace_if(&key, bytes, &version)?.is_some() {
            tracing::warn!(
                job,
                storage = t.storage.name(),
                holder = other.describe(),
                "taking over a stale lock"
            );
            match confirm(t, &key, token)? {
                Some(took) => return Ok(took),
                None => continue,
            }
        }
    }
    Ok(Took::Busy(format!(
        "another run (the lock `{key}` keeps changing hands)"
    )))
}

/// Reads a lock just written back: taken when it holds `token` (a store
/// that ignored the condition may have let another writer in), `None` when
/// it is gone.
fn confirm(t: &Target, key: &str, token: &str) -> Result<Option<Took>> {
    let Some((current, version)) = t.storage.get_versioned(key)? else {
        return Ok(None);
    };
    Ok(Some(match serde_json::from_slice::<Holder>(&current) {
        Ok(h) if h.token == token => Took::Taken(version),
        Ok(h) => Took::Busy(h.describe()),
        Err(_) => Took::Busy(format!("an unreadable lock object `{key}`")),
    }))
}

/// Removes the lock if it still holds `token`. `version` is the version this
/// run wrote last.
fn release(t: &Target, job: &str, token: &str, version: &Version) {
    let key = key(t, job);
    let mut version = version.clone();
    for _ in 0..3 {
        match t.storage.delete_if(&key, &version) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot release the job's lock");
                return;
            }
        }
        // Changed since this run last wrote it: by another run (leave it),
        // or by our own write whose answer was lost.
        match t.storage.get_versioned(&key) {
            Ok(Some((bytes, v))) => {
                let ours = serde_json::from_slice::<Holder>(&bytes).is_ok_and(|h| h.token == token);
                if !ours {
                    return;
                }
                version = v;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot read the job's lock to release it");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Local;

    fn target(dir: &std::path::Path) -> Target {
        Target::new(Box::new(Local::new("t", dir)), String::new())
    }

    fn lock_of(holder: &Holder) -> Vec<u8> {
        serde_json::to_vec(holder).unwrap()
    }

    fn holder(token: &str) -> Holder {
        let now = Utc::now();
        Holder {
            job: "app".into(),
            command: "backup".into(),
            host: "elsewhere.example".into(),
            boot_id: String::new(),
            pid_ns: 0,
            pid: 7,
            started_at: now,
            refreshed_at: now,
            token: token.into(),
        }
    }

    /// A create whose answer was lost, retried and refused: the lock found
    /// holds our token, so it is ours.
    #[test]
    fn a_lock_with_our_token_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let ours = holder("ours");
        t.storage
            .create_if_absent("app/lock.json", &lock_of(&ours))
            .unwrap();
        let took = take_one(&t, "app", &lock_of(&ours), "ours", Duration::from_secs(60)).unwrap();
        assert!(matches!(took, Took::Taken(_)));
        let took = take_one(
            &t,
            "app",
            &lock_of(&ours),
            "theirs",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(took, Took::Busy(who) if who.contains("elsewhere.example")));
    }

    /// A takeover replaces the version judged stale, not whatever is there.
    #[test]
    fn a_takeover_loses_to_a_change_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let mut stale = holder("stale");
        stale.refreshed_at = Utc::now() - chrono::Duration::hours(1);
        let v = t
            .storage
            .create_if_absent("app/lock.json", &lock_of(&stale))
            .unwrap()
            .unwrap();
        // Someone else took it over first.
        let winner = t
            .storage
            .replace_if("app/lock.json", &lock_of(&holder("winner")), &v)
            .unwrap();
        assert!(winner.is_some());
        assert!(
            t.storage
                .replace_if("app/lock.json", &lock_of(&holder("late")), &v)
                .unwrap()
                .is_none()
        );
        let took = take_one(
            &t,
            "app",
            &lock_of(&holder("late")),
            "late",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(matches!(took, Took::Busy(_)));
    }

    /// Release leaves another run's lock alone.
    #[test]
    fn release_removes_only_our_lock() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let v = t
            .storage
            .create_if_absent("app/lock.json", &lock_of(&holder("ours")))
            .unwrap()
            .unwrap();
        t.storage
            .replace_if("app/lock.json", &lock_of(&holder("theirs")), &v)
            .unwrap()
            .unwrap();
        release(&t, "app", "ours", &v);
        assert!(t.storage.get_if_exists("app/lock.json").unwrap().is_some());
        let (_, v) = t.storage.get_versioned("app/lock.json").unwrap().unwrap();
        release(&t, "app", "theirs", &v);
        assert!(t.storage.get_if_exists("app/lock.json").unwrap().is_none());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "no sidecar or folder is left"
        );
    }

    #[test]
    fn old_locks_still_parse_and_are_not_judged_dead_by_pid() {
        let old = br#"{"job":"app","command":"backup","host":"h","pid":1,"started_at":"2020-01-01T00:00:00Z","refreshed_at":"2020-01-01T00:00:00Z","token":"x"}"#;
        let mut h: Holder = serde_json::from_slice(old).unwrap();
        assert_eq!((h.boot_id.as_str(), h.pid_ns), ("", 0));
        h.host = crate::util::hostname();
        h.pid = u32::MAX / 2;
        h.refreshed_at = Utc::now();
        assert!(!h.died_here(), "no boot id: a pid proves nothing");
        h.boot_id = boot_id();
        h.pid_ns = pid_namespace();
        assert!(h.died_here());
        h.pid_ns += 1;
        assert!(!h.died_here(), "another pid namespace");
    }
}
