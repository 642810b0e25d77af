//! One run of a job at a time, across processes and hosts.
//!
//! The lock is the object `<prefix>/<job>/lock.json` in each of the job's
//! storages, made with the storage's conditional create (S3 and Azure
//! `If-None-Match: *`, GCS `ifGenerationMatch=0`, local `O_EXCL`). It names
//! its holder (host, pid, start time) and is rewritten every third of
//! `lock.stale_after` while the run goes on. A lock not rewritten for
//! `stale_after`, or held by a process of this host that no longer exists,
//! belongs to a dead run and is taken over.
//!
//! `backup` and `prune` hold it. Without `--wait-lock`, a held lock fails the
//! run at once with exit code 75.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backup::Target;
use crate::exit::{self, Exit};
use crate::manifest::{self, rfc3339};

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
    /// The holder's process id.
    pub pid: u32,
    /// When it took the lock.
    pub started_at: DateTime<Utc>,
    /// When it last rewrote the lock.
    pub refreshed_at: DateTime<Utc>,
    /// Tells this holder from another with the same pid.
    pub token: String,
}

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
        quiet > stale_after
            || (self.host == manifest::hostname()
                && self.pid != std::process::id()
                && !process_exists(self.pid))
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

/// The lock's key in a target.
pub fn key(target: &Target, job: &str) -> String {
    manifest::join_key(&[&target.prefix, job, LOCK])
}

enum Attempt {
    Taken(Vec<usize>),
    Busy { storage: String, holder: String },
}

/// Runs `body` while holding job `job`'s lock in every target.
///
/// A required storage where the lock cannot be written fails the run; an
/// optional one is skipped with a warning.
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
        host: manifest::hostname(),
        pid: std::process::id(),
        started_at: now,
        refreshed_at: now,
        token: format!(
            "{:016x}",
            (u64::from(now.timestamp_subsec_nanos()) << 20 ^ u64::from(std::process::id()))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ),
    };
    let deadline = options.wait.map(|w| Instant::now() + w);
    let mut told = false;
    let taken = loop {
        crate::signal::check()?;
        match try_all(targets, job, &holder, options.stale_after)? {
            Attempt::Taken(taken) => break taken,
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
                        let waited = if options.wait.is_some() {
                            " and `--wait-lock` ran out"
                        } else {
                            "; add `--wait-lock 30m` to wait for it"
                        };
                        return Err(Exit::new(
                            exit::LOCKED,
                            format!(
                                "job `{job}` is locked in storage `{storage}` by {holder}{waited}. If that run is gone, the lock is taken over once it is older than `lock.stale_after`"
                            ),
                        )
                        .into());
                    }
                }
            }
        }
    };
    let now = Utc::now();
    holder.started_at = now;
    holder.refreshed_at = now;
    let (stop, stopped) = mpsc::channel::<()>();
    let (taken_ref, beat_holder) = (&taken, &holder);
    let result = std::thread::scope(|scope| {
        let beat = scope.spawn(move || {
            let mut holder = beat_holder.clone();
            let every = options.stale_after / 3;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                holder.refreshed_at = Utc::now();
                let bytes = serde_json::to_vec_pretty(&holder).unwrap_or_default();
                for &i in taken_ref {
                    let t = &targets[i];
                    if let Err(e) = t.storage.put(&key(t, job), &bytes) {
                        tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot refresh the job's lock");
                    }
                }
            }
        });
        let out = body();
        let _ = stop.send(());
        let _ = beat.join();
        out
    });
    for &i in &taken {
        release(&targets[i], job, &holder.token);
    }
    Ok(result)
}

fn try_all(
    targets: &[Target],
    job: &str,
    holder: &Holder,
    stale_after: Duration,
) -> Result<Attempt> {
    let bytes = serde_json::to_vec_pretty(holder).context("cannot encode the lock")?;
    let mut taken = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match take_one(t, job, &bytes, stale_after) {
            Ok(None) => taken.push(i),
            Ok(Some(other)) => {
                for &j in &taken {
                    release(&targets[j], job, &holder.token);
                }
                return Ok(Attempt::Busy {
                    storage: t.storage.name().to_string(),
                    holder: other,
                });
            }
            Err(e) if !t.required => {
                tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot lock the job in an optional storage; going on without");
            }
            Err(e) => {
                for &j in &taken {
                    release(&targets[j], job, &holder.token);
                }
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

/// Takes the lock in one storage: `None` when taken, else who holds it.
fn take_one(t: &Target, job: &str, bytes: &[u8], stale_after: Duration) -> Result<Option<String>> {
    let key = key(t, job);
    for _ in 0..5 {
        if t.storage.create_if_absent(&key, bytes)? {
            return Ok(None);
        }
        let Some(current) = read(t, &key)? else {
            continue; // released in between
        };
        let Ok(other) = serde_json::from_slice::<Holder>(&current) else {
            // Being written right now, or not a lock of ours.
            std::thread::sleep(Duration::from_millis(200));
            if read(t, &key)?.as_deref() == Some(current.as_slice()) {
                return Ok(Some(format!(
                    "an unreadable lock object `{key}` (remove it if no run is going)"
                )));
            }
            continue;
        };
        if !other.is_stale(stale_after, Utc::now()) {
            return Ok(Some(other.describe()));
        }
        // Take over, unless someone else did in the meantime.
        if read(t, &key)?.as_deref() == Some(current.as_slice()) {
            tracing::warn!(
                job,
                storage = t.storage.name(),
                holder = other.describe(),
                "taking over a stale lock"
            );
            t.storage.delete(&key)?;
        }
    }
    Ok(Some(format!(
        "another run (the lock `{key}` keeps changing hands)"
    )))
}

fn read(t: &Target, key: &str) -> Result<Option<Vec<u8>>> {
    t.storage.get_if_exists(key)
}

/// Removes the lock if it is still ours.
fn release(t: &Target, job: &str, token: &str) {
    let key = key(t, job);
    let ours = match read(t, &key) {
        Ok(Some(bytes)) => serde_json::from_slice::<Holder>(&bytes)
            .map(|h| h.token == token)
            .unwrap_or(false),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot read the job's lock to release it");
            false
        }
    };
    if ours && let Err(e) = t.storage.delete(&key) {
        tracing::warn!(job, storage = t.storage.name(), error = %format!("{e:#}"), "cannot release the job's lock");
    }
}
