//! One job run from start to end: start pings, `before` hooks, the backup,
//! the closing hooks, notifications and metrics.

use std::time::Instant;

use anyhow::Result;
use chrono::Utc;

use crate::app::backup::Outcome;
use crate::app::hooks::{self, HookEnv, Stage};
use crate::config::{Hooks, Job, Metrics};
use crate::notify::{self, Event, Notifiers, Status};
use crate::storage::Target;

/// Opens the storages of a job.
pub fn targets(config: &crate::config::Config, job: &Job) -> Result<Vec<Target>> {
    job.storage
        .iter()
        .map(|name| {
            let sc = &config.storages[name];
            Ok(Target {
                storage: crate::storage::open(name, sc)?,
                prefix: sc.prefix().to_string(),
                required: sc.required(),
            })
        })
        .collect()
}

/// Everything around a job that is not the job itself.
pub struct Surroundings<'a> {
    /// Hooks that run around every job.
    pub global_hooks: &'a Hooks,
    /// Where to report.
    pub notifiers: Notifiers,
    /// Metrics output.
    pub metrics: Option<&'a Metrics>,
    /// How progress is shown.
    pub progress: crate::pipeline::progress::Mode,
    /// The job lock; `None` runs without one.
    pub lock: Option<crate::app::lock::Options>,
}

impl Surroundings<'_> {
    /// No hooks, notifiers or metrics (one-off runs).
    pub fn none() -> Surroundings<'static> {
        static NO_HOOKS: std::sync::OnceLock<Hooks> = std::sync::OnceLock::new();
        Surroundings {
            global_hooks: NO_HOOKS.get_or_init(Hooks::default),
            notifiers: Notifiers::none(),
            metrics: None,
            progress: crate::pipeline::progress::Mode::Off,
            lock: None,
        }
    }
}

/// A finished job run.
pub struct Report {
    /// The backup's outcome.
    pub result: Result<Outcome>,
    /// Wall time, hooks included.
    pub seconds: f64,
    /// Things that went wrong without failing the job (notifications, retention).
    pub warnings: Vec<String>,
    /// What retention did after the backup.
    pub retention: Vec<crate::catalog::retention::Row>,
}

/// Runs job `name` with its hooks, notifications and metrics.
/// Runs `body` under the job's `max_runtime`: past it, the run is cancelled
/// (its tools stopped, its partial objects removed) and the result is a
/// failure that says so.
fn within<T>(
    name: &str,
    limit: Option<std::time::Duration>,
    body: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let Some(limit) = limit else {
        return body();
    };
    use crate::util::signal::Run;
    let run = crate::util::signal::current_run().unwrap_or_default();
    let _entered = Run::enter(&run);
    let timed_out = std::sync::atomic::AtomicBool::new(false);
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let result = std::thread::scope(|scope| {
        let (timed_out, run) = (&timed_out, &run);
        scope.spawn(move || {
            if wait.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                timed_out.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::error!(job = name, max_runtime = %crate::util::duration::format(limit), "the job ran too long; stopping it");
                run.cancel();
            }
        });
        let result = body();
        let _ = done.send(());
        result
    });
    // A backup that finished as the limit passed stands.
    if result.is_err() && timed_out.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!(
            "job `{name}` ran longer than its `max_runtime` of {} and was stopped; nothing was stored",
            crate::util::duration::format(limit)
        );
    }
    result
}

pub fn execute(name: &str, job: &Job, targets: &[Target], around: &Surroundings<'_>) -> Report {
    let clock = Instant::now();
    let started_at = Utc::now();
    around.notifiers.started(name);
    let mut env = HookEnv {
        job: name.to_string(),
        status: "running".into(),
        ..HookEnv::default()
    };
    let mut warnings = Vec::new();
    let mut pruned = Vec::new();
    let body = || {
        let result = hooks::run(Stage::Before, around.global_hooks, &env)
            .and_then(|()| hooks::run(Stage::Before, &job.hooks, &env))
            .map_err(|e| e.context("a `before` hook failed, so nothing was dumped"))
            .and_then(|()| {
                let counters = std::sync::Arc::new(crate::pipeline::progress::Counters::for_mode(
                    around.progress,
                ));
                let _reporter = crate::pipeline::progress::Reporter::start(
                    name,
                    counters.clone(),
                    around.progress,
                );
                within(name, job.max_runtime, || {
                    crate::app::backup::run(name, job, targets, &counters)
                })
            });
        // Retention only ever follows a successful backup, and only where
        // the backup arrived.
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        if let Ok(o) = &result
            && job.retention.has_rules()
        {
            let key = job
                .signing
                .as_ref()
                .map(crate::catalog::manifest::SigningKey::load)
                .transpose();
            for t in targets {
                if o.failed_storages.iter().any(|(s, _)| s == t.storage.name()) {
                    continue;
                }
                let how = key.as_ref().map(|key| crate::catalog::retention::Pruning {
                    now: Utc::now(),
                    dry_run: false,
                    force: false,
                    protect: Some(&o.manifest.id),
                    key: key.as_ref(),
                });
                let pruned = match how {
                    Ok(how) => {
                        crate::catalog::retention::prune(t, name, &job.retention, job.timezone, how)
                    }
                    Err(e) => Err(anyhow::anyhow!("{e:#}")),
                };
                let pruned = pruned.and_then(|r| {
                    if job.source.is_physical() || job.source.has_binlog() {
                        let key = key.as_ref().ok().and_then(|k| k.as_ref());
                        let w = crate::app::pitr::prune_after(t, job, name, key, &r, false)?;
                        if !w.deleted.is_empty() {
                            tracing::info!(job = name, storage = t.storage.name(), files = w.deleted.len(), kept_from = ?w.kept_from, "pruned the log archive");
                        }
                    }
                    Ok(r)
                });
                match pruned {
                    Ok(r) => rows.extend(r),
                    Err(e) => {
                        let why = notify::clean(&format!("{e:#}"));
                        tracing::warn!(job = name, storage = t.storage.name(), error = %why, "retention failed");
                        problems.push(format!(
                            "retention in storage `{}` failed: {why}",
                            t.storage.name()
                        ));
                    }
                }
            }
        }
        (result, rows, problems)
    };
    let result = match around.lock {
        Some(options) => crate::app::lock::hold(targets, name, "backup", options, body).and_then(
            |(result, rows, problems)| {
                pruned = rows;
                warnings.extend(problems);
                result
            },
        ),
        None => {
            let (result, rows, problems) = body();
            pruned = rows;
            warnings.extend(problems);
            result
        }
    };
    env.duration = clock.elapsed().as_secs_f64();
    match &result {
        Ok(o) => {
            env.status = "success".into();
            env.backup_id = o.manifest.id.clone();
            env.size = o.manifest.stored_size;
            hooks::run_logged(Stage::After, &job.hooks, &env);
            hooks::run_logged(Stage::After, around.global_hooks, &env);
        }
        Err(e) => {
            env.status = "failure".into();
            env.error = notify::tail(&format!("{e:#}"));
            hooks::run_logged(Stage::OnFailure, &job.hooks, &env);
            hooks::run_logged(Stage::OnFailure, around.global_hooks, &env);
        }
    }
    hooks::run_logged(Stage::Finally, &job.hooks, &env);
    hooks::run_logged(Stage::Finally, around.global_hooks, &env);

    let seconds = clock.elapsed().as_secs_f64();
    let finished_at = Utc::now();
    let event = Event {
        event: "backup",
        job: name.to_string(),
        status: if result.is_ok() {
            Status::Success
        } else {
            Status::Failure
        },
        backup_id: result.as_ref().ok().map(|o| o.manifest.id.clone()),
        started_at,
        finished_at,
        duration_seconds: seconds,
        stored_size: result.as_ref().map(|o| o.manifest.stored_size).unwrap_or(0),
        raw_size: result.as_ref().map(|o| o.manifest.raw_size).unwrap_or(0),
        storages: targets
            .iter()
            .map(|t| t.storage.name().to_string())
            .collect(),
        databases: result
            .as_ref()
            .map(|o| o.manifest.databases.clone())
            .unwrap_or_default(),
        error: result
            .as_ref()
            .err()
            .map(|e| notify::tail(&format!("{e:#}"))),
        host: crate::util::hostname(),
        dbkeep_version: env!("CARGO_PKG_VERSION"),
    };
    let failed = around.notifiers.finished(&event);
    if let Some(m) = around.metrics {
        crate::notify::metrics::record(
            m,
            &crate::notify::metrics::Run {
                job: name.to_string(),
                success: result.is_ok(),
                finished: finished_at.timestamp_millis() as f64 / 1000.0,
                duration: seconds,
                size: event.stored_size,
                notification_failures: failed.len() as u64,
            },
        );
    }
    warnings.extend(
        failed
            .into_iter()
            .map(|n| format!("notification `{n}` could not be delivered")),
    );
    Report {
        result,
        seconds,
        warnings,
        retention: pruned,
    }
}

/// Runs `work` on each item, on up to `width` threads at once and never more
/// than `per_host` at once against one server (`server` names it; `None`
/// counts against no limit). Results come back in the items' order; an item
/// not started because a signal arrived gives `None`.
pub fn run_limited<T: Sync, R: Send>(
    items: &[T],
    width: usize,
    per_host: Option<usize>,
    server: impl Fn(&T) -> Option<String> + Sync,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    use std::collections::BTreeMap;
    use std::sync::{Condvar, Mutex};
    struct State<R> {
        pending: Vec<usize>,
        busy: BTreeMap<String, usize>,
        results: Vec<Option<R>>,
    }
    let servers: Vec<Option<String>> = items.iter().map(&server).collect();
    let state = Mutex::new(State {
        pending: (0..items.len()).collect(),
        busy: BTreeMap::new(),
        results: (0..items.len()).map(|_| None).collect(),
    });
    let changed = Condvar::new();
    let fits = |busy: &BTreeMap<String, usize>, i: usize| match (&servers[i], per_host) {
        (Some(s), Some(limit)) => busy.get(s).copied().unwrap_or(0) < limit,
        _ => true,
    };
    std::thread::scope(|scope| {
        for _ in 0..width.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let i = loop {
                        if s.pending.is_empty() || crate::util::signal::cancelled() {
                            s.pending.clear();
                            changed.notify_all();
                            return;
                        }
                        if let Some(at) = s.pending.iter().position(|&i| fits(&s.busy, i)) {
                            break s.pending.remove(at);
                        }
                        s = changed.wait(s).unwrap_or_else(|e| e.into_inner());
                    };
                    if let Some(server) = &servers[i] {
                        *s.busy.entry(server.clone()).or_insert(0) += 1;
                    }
                    drop(s);
                    let r = work(&items[i]);
                    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(server) = &servers[i]
                        && let Some(n) = s.busy.get_mut(server)
                    {
                        *n -= 1;
                    }
                    s.results[i] = Some(r);
                    changed.notify_all();
                }
            });
        }
    });
    state
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The most items that ran at once.
    fn widest(items: &[&str], width: usize, per_host: Option<usize>) -> (usize, Vec<String>) {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let done = run_limited(
            items,
            width,
            per_host,
            |s| Some(s.split(':').next().unwrap().to_string()),
            |s| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                now.fetch_sub(1, Ordering::SeqCst);
                s.to_string()
            },
        );
        (
            most.load(Ordering::SeqCst),
            done.into_iter().map(Option::unwrap).collect(),
        )
    }

    #[test]
    fn jobs_run_side_by_side_within_the_per_server_limit() {
        let items = ["a:1", "a:2", "b:1", "b:2"];
        let (most, order) = widest(&items, 4, Some(1));
        assert_eq!(most, 2, "one job per server at a time, two servers");
        assert_eq!(order, items);
        assert_eq!(widest(&items, 4, None).0, 4);
        assert_eq!(widest(&items, 1, None).0, 1);
        assert_eq!(widest(&items, 3, Some(2)).0, 3);
    }
}
