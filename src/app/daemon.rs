//! `dbkeep schedule run`: a foreground scheduler for systemd `Type=simple`
//! and container entrypoints.
//!
//! - Each job with a `schedule` runs at its fire times. A job never overlaps
//!   itself: a fire time that comes while the job is still running (or
//!   waiting for a free slot) is skipped and logged.
//! - At most `scheduler.max_concurrent_jobs` jobs run at once; the others
//!   wait for a slot, oldest first.
//! - SIGTERM/SIGINT: no new runs; running jobs get `scheduler.shutdown_grace`
//!   to finish, then they are stopped (their partial objects removed). A
//!   second signal stops them at once.
//! - SIGHUP reloads the config. An invalid new config is logged and the old
//!   one stays. Running jobs finish with the config they started with.
//! - `catch_up: true`: at start, a job whose last scheduled time has passed
//!   with no backup since (judged by the newest manifest in its storages)
//!   runs once.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::catalog::manifest::{self, rfc3339};
use crate::config::{Config, Job};
use crate::notify::Notifiers;
use crate::util::exit::Failure;
use crate::util::signal;

/// A job's place in the scheduler.
#[derive(Default)]
struct Slot {
    next: Option<DateTime<Utc>>,
    queued: bool,
    running: bool,
}

/// What a finished run sends back.
struct Done {
    job: String,
    ok: bool,
}

/// Runs the scheduler until a signal stops it.
pub fn run(config_path: &Path) -> Result<()> {
    let path = config_path.to_path_buf();
    let mut config = Arc::new(crate::config::load(&path)?);
    let scheduled = scheduled_jobs(&config);
    let binlogs = config.jobs.values().any(|j| j.binlog_schedule.is_some());
    if scheduled.is_empty() && !binlogs {
        return Err(Failure::Config(format!(
            "no job in {} has a `schedule`; add e.g. `schedule: \"0 3 * * *\"` to a job",
            path.display()
        ))
        .into());
    }
    signal::graceful();
    let pulls = crate::app::binlog::schedule(config.clone());
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())?;

    let now = Utc::now();
    let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    plan(&config, &mut slots, now);
    for name in &scheduled {
        if config.jobs[name].catch_up && missed(&config, name, now) {
            let slot = slots.entry(name.clone()).or_default();
            slot.queued = true;
            queue.push_back(name.clone());
        }
    }
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut running = 0usize;
    tracing::info!(
        jobs = scheduled.len(),
        max_concurrent_jobs = config.scheduler.max_concurrent_jobs,
        "scheduler started"
    );

    while !signal::stopping() {
        if reload.swap(false, Ordering::SeqCst) {
            match crate::config::load(&path) {
                Ok(new) if scheduled_jobs(&new).is_empty() => tracing::error!(
                    file = %path.display(),
                    "the reloaded config has no scheduled job; keeping the old config"
                ),
                Ok(new) => {
                    config = Arc::new(new);
                    slots.retain(|name, slot| slot.running || config.jobs.contains_key(name));
                    queue.retain(|name| config.jobs.contains_key(name));
                    plan(&config, &mut slots, Utc::now());
                    tracing::info!(file = %path.display(), "config reloaded");
                }
                Err(e) => tracing::error!(
                    file = %path.display(),
                    error = %crate::util::secret::redact(&format!("{e:#}")),
                    "the reloaded config is invalid; keeping the old config"
                ),
            }
        }
        let now = Utc::now();
        for (name, slot) in slots.iter_mut() {
            let Some(at) = slot.next else { continue };
            if at > now {
                continue;
            }
            // A job the reloaded config removed may still be running.
            let Some(job) = config.jobs.get(name) else {
                slot.next = None;
                continue;
            };
            slot.next = job
                .schedule
                .as_ref()
                .and_then(|c| c.next_after(job.timezone, now));
            if slot.running || slot.queued {
                tracing::warn!(
                    job = name,
                    due = rfc3339(at),
                    "skipped: the previous run is still going"
                );
                continue;
            }
            slot.queued = true;
            queue.push_back(name.clone());
        }
        while running < config.scheduler.max_concurrent_jobs {
            // The first queued job whose server is below `per_host`.
            let server_of = |n: &str| config.jobs.get(n).and_then(|j| j.source.server());
            let next = queue
                .iter()
                .position(|n| match (server_of(n), config.limits.per_host) {
                    (Some(server), Some(limit)) => {
                        slots
                            .iter()
                            .filter(|(other, s)| {
                                s.running && server_of(other).as_ref() == Some(&server)
                            })
                            .count()
                            < limit
                    }
                    _ => true,
                });
            let Some(name) = next.and_then(|at| queue.remove(at)) else {
                break;
            };
            let Some(slot) = slots.get_mut(&name) else {
                continue;
            };
            slot.queued = false;
            slot.running = true;
            running += 1;
            start(&config, &name, done_tx.clone());
        }
        let wake = slots
            .values()
            .filter_map(|s| s.next)
            .min()
            .map(|t| {
                t.signed_duration_since(Utc::now())
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_millis(250));
        if let Ok(done) = done_rx.recv_timeout(wake) {
            finished(&mut slots, &mut running, done);
            while let Ok(done) = done_rx.try_recv() {
                finished(&mut slots, &mut running, done);
            }
        }
    }

    if let Some(p) = pulls {
        let _ = p.join();
    }
    if running == 0 {
        tracing::info!("scheduler stopped");
        return Ok(());
    }
    let grace = config.scheduler.shutdown_grace;
    tracing::info!(
        running,
        grace = %crate::util::duration::format(grace),
        "waiting for running jobs to finish"
    );
    let deadline = Instant::now() + grace;
    while running > 0 && !signal::cancelled() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(running, "shutdown grace is over: stopping the running jobs");
            signal::cancel();
            break;
        }
        if let Ok(done) = done_rx.recv_timeout(left.min(Duration::from_millis(250))) {
            finished(&mut slots, &mut running, done);
        }
    }
    while running > 0 {
        match done_rx.recv() {
            Ok(done) => finished(&mut slots, &mut running, done),
            Err(_) => break,
        }
    }
    if signal::cancelled() {
        return Err(Failure::Stopped.into());
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

fn scheduled_jobs(config: &Config) -> Vec<String> {
    config
        .jobs
        .iter()
        .filter(|(_, j)| j.schedule.is_some())
        .map(|(n, _)| n.clone())
        .collect()
}

/// Sets each job's next fire time from `now` (keeping running state).
fn plan(config: &Config, slots: &mut BTreeMap<String, Slot>, now: DateTime<Utc>) {
    for (name, job) in &config.jobs {
        let next = job
            .schedule
            .as_ref()
            .and_then(|c| c.next_after(job.timezone, now));
        let slot = slots.entry(name.clone()).or_default();
        slot.next = next;
        if let (Some(at), Some(cron)) = (next, &job.schedule) {
            tracing::info!(
                job = name,
                schedule = cron.text(),
                timezone = job.timezone.name(),
                next = rfc3339(at),
                "scheduled"
            );
        }
    }
}

/// Whether a scheduled run was missed: no backup since the last fire time.
fn missed(config: &Config, name: &str, now: DateTime<Utc>) -> bool {
    let Some(job) = config.jobs.get(name) else {
        return false;
    };
    let Some(cron) = &job.schedule else {
        return false;
    };
    let mut newest: Option<DateTime<Utc>> = None;
    for storage in &job.storage {
        let Some(sc) = config.storages.get(storage) else {
            continue;
        };
        let found = crate::storage::open(storage, sc)
            .and_then(|s| manifest::list(&*s, sc.prefix(), Some(name)));
        match found {
            Ok(entries) => {
                // A manifest dated in the future must not hide a missed run.
                if let Some(e) = entries
                    .iter()
                    .find(|e| manifest::suspect(&e.manifest, now).is_none())
                {
                    newest = newest.max(Some(e.manifest.started_at));
                }
            }
            Err(e) => tracing::warn!(
                job = name,
                storage,
                error = %crate::util::secret::redact(&format!("{e:#}")),
                "cannot read the newest backup for catch-up"
            ),
        }
    }
    let due = match newest {
        None => true,
        Some(last) => cron
            .next_after(job.timezone, last)
            .is_some_and(|t| t <= now),
    };
    if due {
        tracing::info!(
            job = name,
            last_backup = newest.map(rfc3339).unwrap_or_else(|| "none".into()),
            "catching up a missed run"
        );
    }
    due
}

fn finished(slots: &mut BTreeMap<String, Slot>, running: &mut usize, done: Done) {
    *running = running.saturating_sub(1);
    if let Some(slot) = slots.get_mut(&done.job) {
        slot.running = false;
    }
    let next = slots
        .get(&done.job)
        .and_then(|s| s.next)
        .map(rfc3339)
        .unwrap_or_default();
    if done.ok {
        tracing::info!(job = done.job, next, "run finished");
    } else {
        tracing::warn!(job = done.job, next, "run failed");
    }
}

/// Runs one job on its own thread with the config it started with.
fn start(config: &Arc<Config>, name: &str, done: mpsc::Sender<Done>) {
    let config = config.clone();
    let name = name.to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("job-{name}"))
        .spawn({
            let done = done.clone();
            let name = name.clone();
            move || {
                // A panic in a run is a failed run, never a scheduler that
                // waits forever for it to report.
                let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::util::debug_panic("job-thread");
                    config
                        .jobs
                        .get(&name)
                        .is_some_and(|job| run_job(&config, &name, job))
                }))
                .unwrap_or_else(|_| {
                    tracing::error!(job = name, "the run panicked; it counts as failed");
                    false
                });
                let _ = done.send(Done { job: name, ok });
            }
        });
    if let Err(e) = spawned {
        tracing::error!(job = name, error = %e, "cannot start the job's thread");
        let _ = done.send(Done {
            job: name,
            ok: false,
        });
    }
}

fn run_job(config: &Config, name: &str, job: &Job) -> bool {
    tracing::info!(job = name, "run started");
    let targets = match crate::app::job::targets(config, job) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(job = name, error = %crate::util::secret::redact(&format!("{e:#}")), "cannot open the job's storages");
            return false;
        }
    };
    let around = crate::app::job::Surroundings {
        global_hooks: &config.hooks,
        notifiers: Notifiers::for_names(&config.notifiers, &job.notify),
        metrics: config.metrics.as_ref(),
        progress: crate::pipeline::progress::Mode::Off,
        lock: Some(crate::app::lock::Options {
            stale_after: config.lock.stale_after,
            wait: None,
        }),
    };
    let report = crate::app::job::execute(name, job, &targets, &around);
    for w in &report.warnings {
        tracing::warn!(job = name, warning = %w);
    }
    match report.result {
        Ok(o) => {
            tracing::info!(
                job = name,
                id = o.manifest.id,
                stored = o.manifest.stored_size,
                seconds = report.seconds,
                "backup stored"
            );
            true
        }
        Err(e) => {
            tracing::error!(job = name, error = %crate::util::secret::redact(&format!("{e:#}")), "backup failed");
            false
        }
    }
}

/// The config file `schedule run` reads (and rereads on SIGHUP).
pub fn config_file(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = crate::config::locate(explicit)?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}
