//! `dbkeep schedule`: run jobs on their schedules, show the next fire times,
//! or write systemd timers or crontab lines for them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{load_config, print, unknown_job};
use crate::config::{Config, Job};
use crate::util::exit::Failure;
use crate::util::rfc3339;

/// The `schedule` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run every scheduled job at its times, in the foreground, until
    /// SIGTERM (for systemd `Type=simple` and containers). SIGHUP reloads the config.
    Run,
    /// Show each scheduled job's next fire times, in its time zone and in UTC.
    List(ListArgs),
    /// Write a systemd service and timer, or crontab lines, for each scheduled job.
    Install(InstallArgs),
}

/// Arguments of `schedule list`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dbkeep schedule list
  dbkeep schedule list app -n 10 --json
  dbkeep schedule list --after 2026-03-28   fire times around a DST change")]
pub struct ListArgs {
    /// Only this job.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// How many fire times per job.
    #[arg(short = 'n', long, default_value_t = 5, value_name = "N")]
    pub count: usize,

    /// Fire times after this time instead of now (RFC 3339 or `YYYY-MM-DD [HH:MM]`, UTC).
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `schedule install`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
systemd: a `dbkeep-JOB.service` and `dbkeep-JOB.timer` per job, with
`OnCalendar=` translated from the job's schedule and time zone, and
`Persistent=true` (a run missed while the machine was off happens at boot).
Then: systemctl daemon-reload && systemctl enable --now dbkeep-JOB.timer

cron: /etc/cron.d/dbkeep, or with --user lines for `crontab -e`. cron has no
seconds or years, and runs a job when either the day of month or the
weekday matches, so such schedules are refused.

Examples:
  dbkeep schedule install --systemd --print
  dbkeep schedule install --systemd --randomized-delay 10m
  dbkeep schedule install --systemd --user
  dbkeep schedule install --cron --user --print | crontab -")]
#[command(group = clap::ArgGroup::new("scheduler").required(true).args(["systemd", "cron"]))]
pub struct InstallArgs {
    /// Write systemd units.
    #[arg(long)]
    pub systemd: bool,

    /// Write crontab lines.
    #[arg(long)]
    pub cron: bool,

    /// For the current user: systemd user units (~/.config/systemd/user), or
    /// lines for the user's crontab.
    #[arg(long)]
    pub user: bool,

    /// Print the files instead of writing them.
    #[arg(long)]
    pub print: bool,

    /// Write into this folder instead of the scheduler's own.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// systemd: spread starts over up to this long (`RandomizedDelaySec=`).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub randomized_delay: Option<std::time::Duration>,

    /// The dbkeep binary the units run (default: this one).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,

    /// Only these jobs (default: every job with a `schedule`).
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,
}

/// Runs a `schedule` subcommand.
pub fn run(cmd: Command, config_path: Option<&Path>) -> Result<()> {
    match cmd {
        Command::Run => {
            let path = crate::app::daemon::config_file(config_path)?;
            tracing::info!(file = %path.display(), "using config");
            crate::app::daemon::run(&path)
        }
        Command::List(args) => list(args, config_path),
        Command::Install(args) => install(args, config_path),
    }
}

#[derive(Serialize)]
struct Listed {
    job: String,
    schedule: String,
    timezone: String,
    next: Vec<FireTime>,
}

#[derive(Serialize)]
struct FireTime {
    local: String,
    utc: String,
}

fn selected<'a>(config: &'a Config, only: &[String]) -> Result<Vec<(&'a String, &'a Job)>> {
    for name in only {
        if !config.jobs.contains_key(name) {
            return Err(unknown_job(config, name));
        }
    }
    let jobs: Vec<(&String, &Job)> = config
        .jobs
        .iter()
        .filter(|(n, _)| only.is_empty() || only.contains(n))
        .collect();
    if let Some((name, _)) = jobs.iter().find(|(_, j)| j.schedule.is_none())
        && !only.is_empty()
    {
        return Err(Failure::Usage(format!(
            "job `{name}` has no `schedule`; add e.g. `schedule: \"0 3 * * *\"` to it"
        ))
        .into());
    }
    let jobs: Vec<(&String, &Job)> = jobs
        .into_iter()
        .filter(|(_, j)| j.schedule.is_some())
        .collect();
    if jobs.is_empty() {
        return Err(Failure::Config(
            "no job has a `schedule`; add e.g. `schedule: \"0 3 * * *\"` to a job".into(),
        )
        .into());
    }
    Ok(jobs)
}

fn list(args: ListArgs, config_path: Option<&Path>) -> Result<()> {
    let config = load_config(config_path)?;
    let after: DateTime<Utc> = match &args.after {
        Some(t) => {
            crate::catalog::manifest::parse_time(t).map_err(|e| Failure::Usage(format!("{e:#}")))?
        }
        None => Utc::now(),
    };
    let only: Vec<String> = args.job.iter().cloned().collect();
    let mut out = Vec::new();
    for (name, job) in selected(&config, &only)? {
        let Some(cron) = &job.schedule else { continue };
        let next = cron
            .upcoming(job.timezone, after, args.count)
            .into_iter()
            .map(|t| FireTime {
                local: t
                    .with_timezone(&job.timezone)
                    .format("%Y-%m-%d %H:%M:%S %Z")
                    .to_string(),
                utc: rfc3339(t),
            })
            .collect();
        out.push(Listed {
            job: name.clone(),
            schedule: cron.text().to_string(),
            timezone: job.timezone.name().to_string(),
            next,
        });
    }
    if args.json {
        return print(&format!("{}\n", serde_json::to_string_pretty(&out)?));
    }
    let mut text = String::new();
    for l in &out {
        let _ = writeln!(text, "{}  {}  ({})", l.job, l.schedule, l.timezone);
        for t in &l.next {
            let _ = writeln!(text, "  {:<26}  {}", t.local, t.utc);
        }
    }
    print(&text)
}

/// A file `install` writes.
struct File {
    name: String,
    text: String,
}

fn install(args: InstallArgs, config_path: Option<&Path>) -> Result<()> {
    let config_file = crate::app::daemon::config_file(config_path)?;
    let config = crate::config::load(&config_file)?;
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find this dbkeep binary's path")?,
    };
    let jobs = selected(&config, &args.jobs)?;
    let mut files = Vec::new();
    if args.systemd {
        for (name, job) in &jobs {
            files.extend(systemd_units(
                name,
                job,
                &binary,
                &config_file,
                args.randomized_delay,
            ));
        }
    } else {
        let mut text =
            String::from("# dbkeep backup jobs; written by `dbkeep schedule install --cron`.\n");
        if !args.user {
            text.push_str("SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
        }
        let user = if args.user {
            String::new()
        } else {
            format!("{} ", current_user())
        };
        for (name, job) in &jobs {
            let Some(cron) = &job.schedule else { continue };
            let fields = cron.crontab().map_err(|e| {
                Failure::Config(format!("jobs.{name}.schedule: {e}; use --systemd"))
            })?;
            let tz = job.timezone.name();
            let _ = writeln!(
                text,
                "# {name}: {} ({tz}); cron implementations without CRON_TZ use the system time zone",
                cron.text()
            );
            let _ = writeln!(text, "CRON_TZ={tz}");
            let _ = writeln!(
                text,
                "{fields} {user}{} --config {} --no-progress backup {}",
                quote(&binary.to_string_lossy()),
                quote(&config_file.to_string_lossy()),
                quote(name)
            );
        }
        files.push(File {
            name: "dbkeep".to_string(),
            text,
        });
    }
    if args.print || (args.cron && args.user && args.dir.is_none()) {
        let mut out = String::new();
        for f in &files {
            if files.len() > 1 || args.systemd {
                let _ = writeln!(out, "# --- {} ---", f.name);
            }
            out.push_str(&f.text);
        }
        return print(&out);
    }
    let dir = match (&args.dir, args.systemd, args.user) {
        (Some(d), _, _) => d.clone(),
        (None, true, false) => PathBuf::from("/etc/systemd/system"),
        (None, true, true) => dirs::config_dir()
            .context("cannot find the user's config folder; give --dir")?
            .join("systemd/user"),
        (None, false, _) => PathBuf::from("/etc/cron.d"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for f in &files {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.text).with_context(|| {
            format!(
                "cannot write {} (run as root, add --user, or give --dir)",
                path.display()
            )
        })?;
        eprintln!("wrote {}", path.display());
    }
    if args.systemd {
        let ctl = if args.user {
            "systemctl --user"
        } else {
            "systemctl"
        };
        let timers: Vec<String> = jobs
            .iter()
            .map(|(n, _)| format!("dbkeep-{}.timer", unit_escape(n)))
            .collect();
        eprintln!(
            "next: {ctl} daemon-reload && {ctl} enable --now {}",
            timers.join(" ")
        );
    }
    Ok(())
}

fn systemd_units(
    name: &str,
    job: &Job,
    binary: &Path,
    config: &Path,
    delay: Option<std::time::Duration>,
) -> Vec<File> {
    let unit = format!("dbkeep-{}", unit_escape(name));
    let Some(cron) = &job.schedule else {
        return Vec::new();
    };
    let service = format!(
        "[Unit]
Description=dbkeep backup job {name}
Documentation=man:dbkeep-backup(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={} --config {} --no-progress backup {}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
",
        quote(&binary.to_string_lossy()),
        quote(&config.to_string_lossy()),
        quote(name),
    );
    let mut timer = format!(
        "[Unit]
Description=Schedule of dbkeep backup job {name} ({})

[Timer]
OnCalendar={}
Persistent=true
",
        cron.text(),
        cron.on_calendar(job.timezone),
    );
    if let Some(d) = delay {
        let _ = writeln!(timer, "RandomizedDelaySec={}", d.as_secs());
    }
    let _ = write!(
        timer,
        "Unit={unit}.service

[Install]
WantedBy=timers.target
"
    );
    vec![
        File {
            name: format!("{unit}.service"),
            text: service,
        },
        File {
            name: format!("{unit}.timer"),
            text: timer,
        },
    ]
}

/// systemd unit name escaping of a job name (`\xNN` for anything unusual).
fn unit_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// Quotes a word for systemd's `ExecStart=` and for sh, when it needs it.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                "root".to_string()
            } else {
                "nobody".to_string()
            }
        })
}
