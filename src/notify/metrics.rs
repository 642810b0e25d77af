//! Prometheus metrics: a textfile for node_exporter's textfile collector,
//! and an optional Pushgateway.
//!
//! The file holds, per job: `dbkeep_last_success_timestamp_seconds`,
//! `dbkeep_last_run_timestamp_seconds`, `dbkeep_last_success` (1 or 0),
//! `dbkeep_last_duration_seconds`, `dbkeep_last_size_bytes` (stored bytes of
//! the last successful backup), `dbkeep_failures_total` and
//! `dbkeep_notification_failures_total`. Each run rewrites it atomically (temp
//! file and rename) under a lock, keeping the other jobs' series.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::util::problem::{Problem, Problems};

/// Metrics output.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A `.prom` file for node_exporter's textfile collector, rewritten atomically.
    pub textfile: Option<std::path::PathBuf>,
    /// A Prometheus Pushgateway base URL (metrics are pushed under job `dbkeep`).
    pub pushgateway: Option<String>,
}

impl MetricsConfig {
    /// At least one output, and a pushgateway URL that is http(s); its
    /// password is registered as a secret.
    pub fn validate(&self, at: &str, problems: &mut Problems) {
        let m = self;
        if m.textfile.is_none() && m.pushgateway.is_none() {
            problems.push(Problem::new(at, "give `textfile`, `pushgateway`, or both"));
        }
        // Credentials in the URL are secrets: `config show`, logs and errors hide them.
        if let Some(password) = m
            .pushgateway
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.password().map(str::to_string))
        {
            crate::util::secret::register(&password);
            if let Ok(plain) = url::form_urlencoded::parse(format!("p={password}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .ok_or(())
            {
                crate::util::secret::register(&plain);
            }
        }
        if let Some(url) = &m.pushgateway
            && !matches!(
                url::Url::parse(url)
                    .map(|u| u.scheme().to_string())
                    .as_deref(),
                Ok("http" | "https")
            )
        {
            problems.push(Problem::new(
                format!("{at}.pushgateway"),
                format!("`{url}` is not an http(s) URL"),
            ));
        }
    }
}

/// One run's outcome, as the metrics see it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The job.
    pub job: String,
    /// Whether it succeeded.
    pub success: bool,
    /// When it ended (Unix seconds).
    pub finished: f64,
    /// Wall time.
    pub duration: f64,
    /// Bytes stored (success only).
    pub size: u64,
    /// Notifications that failed.
    pub notification_failures: u64,
}

const SERIES: [(&str, &str, &str); 7] = [
    (
        "dbkeep_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the job's last successful backup.",
    ),
    (
        "dbkeep_last_run_timestamp_seconds",
        "gauge",
        "Unix time the job last finished, successful or not.",
    ),
    (
        "dbkeep_last_success",
        "gauge",
        "1 if the job's last run succeeded, else 0.",
    ),
    (
        "dbkeep_last_duration_seconds",
        "gauge",
        "Wall time of the job's last run.",
    ),
    (
        "dbkeep_last_size_bytes",
        "gauge",
        "Bytes stored by the job's last successful backup.",
    ),
    (
        "dbkeep_failures_total",
        "counter",
        "Failed runs of the job.",
    ),
    (
        "dbkeep_notification_failures_total",
        "counter",
        "Notifications about the job that could not be delivered.",
    ),
];

type Values = BTreeMap<String, BTreeMap<&'static str, f64>>;

/// Reads the series this module wrote earlier (other lines are dropped).
fn parse(text: &str) -> Values {
    let mut values: Values = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once("{job=\"") else {
            continue;
        };
        let Some((job, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let Some((series, _, _)) = SERIES.iter().find(|(n, _, _)| *n == name) else {
            continue;
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            values.entry(job.to_string()).or_default().insert(series, v);
        }
    }
    values
}

fn render(values: &Values) -> String {
    let mut out = String::new();
    for (name, kind, help) in SERIES {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (job, series) in values {
            if let Some(v) = series.get(name) {
                out.push_str(&format!("{name}{{job=\"{job}\"}} {v}\n"));
            }
        }
    }
    out
}

fn apply(values: &mut Values, run: &Run) {
    let s = values.entry(run.job.clone()).or_default();
    s.insert("dbkeep_last_run_timestamp_seconds", run.finished);
    s.insert("dbkeep_last_duration_seconds", run.duration);
    s.insert("dbkeep_last_success", if run.success { 1.0 } else { 0.0 });
    if run.success {
        s.insert("dbkeep_last_success_timestamp_seconds", run.finished);
        s.insert("dbkeep_last_size_bytes", run.size as f64);
    }
    *s.entry("dbkeep_failures_total").or_insert(0.0) += if run.success { 0.0 } else { 1.0 };
    *s.entry("dbkeep_notification_failures_total").or_insert(0.0) +=
        run.notification_failures as f64;
}

/// Records a run in the textfile and the Pushgateway. Failures are warnings.
pub fn record(config: &MetricsConfig, run: &Run) {
    if let Some(path) = &config.textfile
        && let Err(e) = write_textfile(path, run)
    {
        tracing::warn!(file = %path.display(), error = %format!("{e:#}"), "cannot write the metrics file");
    }
    if let Some(url) = &config.pushgateway
        && let Err(e) = push(url, run)
    {
        tracing::warn!(error = %crate::util::secret::clean(&format!("{e:#}")), "cannot push metrics");
    }
}

fn write_textfile(path: &Path, run: &Run) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .context("the metrics path has no file name")?
        .to_string_lossy()
        .into_owned();
    // One writer at a time: several jobs may finish together.
    // A planted symlink is not followed (O_NOFOLLOW).
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(format!(".{name}.lock")))
        .with_context(|| format!("cannot open the lock file in {}", dir.display()))?;
    // SAFETY: flock on an open descriptor; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        anyhow::bail!("cannot lock {}", path.display());
    }
    let mut values = parse(&fs::read_to_string(path).unwrap_or_default());
    apply(&mut values, run);
    // A new file with a random name (O_EXCL), never one someone prepared.
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    temp.write_all(render(&values).as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    drop(lock);
    Ok(())
}

fn push(base: &str, run: &Run) -> Result<()> {
    let mut values = Values::new();
    apply(&mut values, run);
    let url = format!(
        "{}/metrics/job/dbkeep/dbkeep_job/{}",
        base.trim_end_matches('/'),
        run.job
    );
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .put(url)
        .body(render(&values))
        .send()?;
    if !response.status().is_success() {
        anyhow::bail!("the Pushgateway answered HTTP {}", response.status());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_rewrites_and_other_jobs_are_kept() {
        let mut values = Values::new();
        let run = |job: &str, success: bool| Run {
            job: job.into(),
            success,
            finished: 1000.0,
            duration: 2.5,
            size: 42,
            notification_failures: 0,
        };
        apply(&mut values, &run("a", true));
        apply(&mut values, &run("b", false));
        let mut again = parse(&render(&values));
        apply(&mut again, &run("b", false));
        let text = render(&again);
        assert!(
            text.contains("dbkeep_failures_total{job=\"b\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("dbkeep_failures_total{job=\"a\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("dbkeep_last_size_bytes{job=\"a\"} 42\n"),
            "{text}"
        );
        assert!(
            !text.contains("dbkeep_last_success_timestamp_seconds{job=\"b\"}"),
            "{text}"
        );
    }
}
