//! `schedule list`, `schedule install` (checked with systemd-analyze where it
//! exists) and the `schedule run` daemon, with SQLite jobs in a local storage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// A config with SQLite jobs; `jobs` is `(name, extra job yaml lines)`.
fn config(dir: &Path, top: &str, jobs: &[(&str, &str)]) -> PathBuf {
    let db = dir.join("app.db");
    if !db.exists() {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x');")
            .unwrap();
    }
    let mut text = format!(
        "{top}\nstorages:\n  local: {{ type: local, path: {} }}\njobs:\n",
        dir.join("backups").display()
    );
    for (name, extra) in jobs {
        text.push_str(&format!(
            "  {name}:\n    source: {{ type: sqlite, path: {} }}\n",
            db.display()
        ));
        for l in extra.lines() {
            text.push_str(&format!("    {l}\n"));
        }
    }
    let path = dir.join("dbkeep.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn list_shows_fire_times_in_the_zone_and_in_utc_across_dst() {
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        "",
        &[
            (
                "berlin",
                "schedule: \"30 2 * * *\"\ntimezone: Europe/Berlin",
            ),
            ("plain", "schedule: \"@daily\""),
            ("manual", ""),
        ],
    );
    let out = ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "schedule",
        "list",
        "--after",
        "2026-03-27T12:00:00Z",
        "-n",
        "3",
        "--json",
    ])));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let jobs = v.as_array().unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "a job without a schedule is not listed: {out}"
    );
    let berlin = &jobs[0];
    assert_eq!(berlin["job"], "berlin");
    assert_eq!(berlin["timezone"], "Europe/Berlin");
    let utc: Vec<&str> = berlin["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["utc"].as_str().unwrap())
        .collect();
    // 02:30 does not exist on 2026-03-29: it fires once, when the clock jumps.
    assert_eq!(
        utc,
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z"
        ]
    );
    assert_eq!(berlin["next"][1]["local"], "2026-03-29 03:00:00 CEST");
    assert_eq!(jobs[1]["timezone"], "UTC", "the default time zone is UTC");
    assert_eq!(jobs[1]["next"][0]["utc"], "2026-03-28T00:00:00Z");

    let human = ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "schedule",
        "list",
        "berlin",
        "--after",
        "2026-10-24",
        "-n",
        "3",
    ])));
    assert!(
        human.contains("berlin  30 2 * * *  (Europe/Berlin)"),
        "{human}"
    );
    assert!(
        human.contains("2026-10-25 02:30:00 CEST") && human.contains("2026-10-26 02:30:00 CET"),
        "the repeated 02:30 fires once: {human}"
    );
}

#[test]
fn bad_schedules_and_time_zones_name_their_key() {
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        "",
        &[
            ("a", "schedule: \"0 3 * * 1-5\""),
            ("b", "schedule: \"0 3 * *\""),
            ("c", "schedule: \"@daily\"\ntimezone: Mars/Olympus"),
            ("d", "retention: { keep_within: 3 days }"),
        ],
    );
    let out = run(dbkeep().arg("-c").arg(&cfg).args(["config", "validate"]));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "jobs.a.schedule",
        "names",
        "jobs.b.schedule",
        "jobs.c.timezone",
        "IANA",
        "jobs.d.retention.keep_within",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

const SERVICE: &str = "[Unit]
Description=dbkeep backup job app
Documentation=man:dbkeep-backup(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/bin/dbkeep --config CONFIG --no-progress backup app
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
";

const TIMER: &str = "[Unit]
Description=Schedule of dbkeep backup job app (15 2 * * Mon-Fri)

[Timer]
OnCalendar=Mon..Fri *-*-* 02:15:00 Europe/Berlin
Persistent=true
RandomizedDelaySec=600
Unit=dbkeep-app.service

[Install]
WantedBy=timers.target
";

#[test]
fn install_writes_systemd_units_and_crontab_lines() {
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        "",
        &[
            (
                "app",
                "schedule: \"15 2 * * Mon-Fri\"\ntimezone: Europe/Berlin",
            ),
            ("manual", ""),
        ],
    );
    let cfg = std::fs::canonicalize(cfg).unwrap();
    let units = dir.path().join("units");
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args([
            "schedule",
            "install",
            "--systemd",
            "--randomized-delay",
            "10m",
            "--binary",
            "/usr/local/bin/dbkeep",
            "--dir",
        ])
        .arg(&units));
    ok(out.clone());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("enable --now dbkeep-app.timer"),
        "{}",
        text(&out)
    );
    assert_eq!(
        files(&units),
        ["dbkeep-app.service", "dbkeep-app.timer"],
        "only scheduled jobs get units"
    );
    let service = std::fs::read_to_string(units.join("dbkeep-app.service")).unwrap();
    assert_eq!(
        service,
        SERVICE.replace("CONFIG", &cfg.display().to_string())
    );
    assert_eq!(
        std::fs::read_to_string(units.join("dbkeep-app.timer")).unwrap(),
        TIMER
    );

    let cron = ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "schedule",
        "install",
        "--cron",
        "--user",
        "--binary",
        "/usr/local/bin/dbkeep",
    ])));
    assert_eq!(
        cron,
        format!(
            "# dbkeep backup jobs; written by `dbkeep schedule install --cron`.
# app: 15 2 * * Mon-Fri (Europe/Berlin); cron implementations without CRON_TZ use the system time zone
CRON_TZ=Europe/Berlin
15 2 * * 1-5 /usr/local/bin/dbkeep --config {} --no-progress backup app
",
            cfg.display()
        )
    );

    // Seconds cannot be cron.
    let cfg = config(dir.path(), "", &[("fast", "schedule: \"*/10 * * * * *\"")]);
    let out = run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["schedule", "install", "--cron", "--print"]));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("jobs.fast.schedule"),
        "{}",
        text(&out)
    );
}

/// Where systemd-analyze exists, its reading of each generated `OnCalendar=`
/// gives the same next fire times as dbkeep's own schedule.
#[test]
fn systemd_agrees_with_the_calendar_expressions() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!(
            "skipped: systemd-analyze is not installed, so calendar expressions are not cross-checked"
        );
        return;
    };
    let dir = tempdir();
    let schedules = [
        ("daily", "0 3 * * *", "UTC"),
        ("weekdays", "30 2 * * Mon-Fri", "Europe/Berlin"),
        ("quarter", "*/15 9-17 * * *", "America/New_York"),
        ("monthly", "0 4 1,15 * *", "Asia/Tokyo"),
        ("weekend", "0 0 6 * * Sat,Sun", "UTC"),
        ("yearly", "@yearly", "Europe/Berlin"),
    ];
    let jobs: Vec<(String, String)> = schedules
        .iter()
        .map(|(n, s, tz)| (n.to_string(), format!("schedule: \"{s}\"\ntimezone: {tz}")))
        .collect();
    let refs: Vec<(&str, &str)> = jobs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let cfg = config(dir.path(), "", &refs);
    let listed: serde_json::Value = serde_json::from_str(&ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["schedule", "list", "-n", "3", "--json"]))))
    .unwrap();
    let units = ok(run(dbkeep().arg("-c").arg(&cfg).args([
        "schedule",
        "install",
        "--systemd",
        "--print",
    ])));
    for job in listed.as_array().unwrap() {
        let name = job["job"].as_str().unwrap();
        let timer = units
            .split(&format!("# --- dbkeep-{name}.timer ---"))
            .nth(1)
            .unwrap();
        let expr = timer
            .lines()
            .find_map(|l| l.strip_prefix("OnCalendar="))
            .unwrap();
        let out = run(std::process::Command::new(&analyze).env("TZ", "UTC").args([
            "calendar",
            "--iterations=3",
            expr,
        ]));
        let said = ok(out);
        let theirs: Vec<String> = said
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                (l.starts_with("Next elapse:") || l.starts_with("Iter. #"))
                    .then(|| l.split_once(": ").unwrap().1.to_string())
            })
            .map(|l| {
                // "Mon 2026-11-23 02:00:00 UTC" -> "2026-11-23T02:00:00Z"
                let parts: Vec<&str> = l.split_whitespace().collect();
                format!("{}T{}Z", parts[1], parts[2])
            })
            .collect();
        let ours: Vec<String> = job["next"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["utc"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(theirs, ours, "job {name}: `{expr}`\n{said}");
    }
}

// ---------------------------------------------------------------- the daemon

/// `dbkeep schedule run` in the background, its stderr collected.
struct Daemon {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(cfg: &Path) -> Daemon {
        let mut child = dbkeep()
            .arg("-c")
            .arg(cfg)
            .args(["schedule", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Daemon { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `cond` holds on the log, or fails after `limit`.
    fn wait_log(&self, limit: Duration, what: &str, cond: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while !cond(&self.log()) {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Sends SIGTERM and returns the exit code, failing after `limit`.
    fn stop(mut self, limit: Duration) -> (Option<i32>, String) {
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "the daemon did not stop within {limit:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

fn backups(dir: &Path, job: &str) -> usize {
    manifests(&dir.join("backups"))
        .iter()
        .filter(|m| m["job"] == job)
        .count()
}

#[test]
fn the_daemon_runs_jobs_on_time_and_stops_on_sigterm() {
    let dir = tempdir();
    let cfg = config(dir.path(), "", &[("tick", "schedule: \"* * * * * *\"")]);
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(30), "two runs", |l| {
        count(l, "backup stored") >= 2
    });
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("scheduler stopped"), "{log}");
    assert!(backups(dir.path(), "tick") >= 2, "{log}");
}

#[test]
fn a_job_never_overlaps_itself_and_slots_are_shared() {
    let dir = tempdir();
    let trace = dir.path().join("trace");
    let hook = |tag: &str| {
        format!(
            "hooks: {{ before: [[sh, -c, \"echo start {tag} >> {0}; sleep 1.5\"]], finally: [[sh, -c, \"echo end {tag} >> {0}\"]] }}",
            trace.display()
        )
    };
    let cfg = config(
        dir.path(),
        "scheduler: { max_concurrent_jobs: 1 }",
        &[
            (
                "one",
                &format!("schedule: \"* * * * * *\"\n{}", hook("one")),
            ),
            (
                "two",
                &format!("schedule: \"* * * * * *\"\n{}", hook("two")),
            ),
        ],
    );
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(40), "runs of both jobs", |l| {
        count(l, "backup stored") >= 4 && l.contains("skipped: the previous run is still going")
    });
    let (code, log) = d.stop(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    // With one slot, every start is followed by its own end before the next start.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert!(lines.len() >= 8, "{trace}");
    for pair in lines.chunks(2) {
        match pair {
            [start, end] => assert_eq!(
                start.replace("start", "end"),
                *end,
                "runs overlapped:\n{trace}"
            ),
            [last] => assert!(last.starts_with("start"), "{trace}"),
            _ => unreachable!(),
        }
    }
    assert!(
        trace.contains("start one") && trace.contains("start two"),
        "{trace}"
    );
}

#[test]
fn sigterm_lets_a_running_job_finish_within_the_grace_period() {
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        "scheduler: { shutdown_grace: 30s }",
        &[(
            "slow",
            "schedule: \"@yearly\"\ncatch_up: true\nhooks: { before: [[sleep, \"2\"]] }",
        )],
    );
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "the catch-up run", |l| {
        l.contains("run started")
    });
    let (code, log) = d.stop(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("waiting for running jobs to finish"), "{log}");
    assert_eq!(backups(dir.path(), "slow"), 1, "{log}");
}

#[test]
fn after_the_grace_period_a_running_job_is_stopped_and_leaves_nothing() {
    let dir = tempdir();
    let cfg = config(
        dir.path(),
        "scheduler: { shutdown_grace: 1s }",
        &[(
            "slow",
            "schedule: \"@yearly\"\ncatch_up: true\nhooks: { before: [[sleep, \"30\"]] }",
        )],
    );
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "the catch-up run", |l| {
        l.contains("run started")
    });
    std::thread::sleep(Duration::from_millis(300));
    let (code, log) = d.stop(Duration::from_secs(15));
    assert_eq!(code, Some(130), "{log}");
    assert!(log.contains("shutdown grace is over"), "{log}");
    assert_eq!(backups(dir.path(), "slow"), 0, "{log}");
    assert!(
        !dir.path().join("backups/slow/lock.json").exists(),
        "the lock was left behind"
    );
}

#[test]
fn sighup_reloads_the_config_and_keeps_the_old_one_when_the_new_is_invalid() {
    let dir = tempdir();
    let cfg = config(dir.path(), "", &[("first", "schedule: \"@yearly\"")]);
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "start", |l| {
        l.contains("scheduler started")
    });
    // Invalid: the old config stays.
    std::fs::write(&cfg, "jobs: [this is not a config").unwrap();
    d.signal(libc::SIGHUP);
    d.wait_log(Duration::from_secs(20), "the refusal", |l| {
        l.contains("keeping the old config")
    });
    // Valid: a new job runs every second.
    config(
        dir.path(),
        "",
        &[
            ("first", "schedule: \"@yearly\""),
            ("second", "schedule: \"* * * * * *\""),
        ],
    );
    d.signal(libc::SIGHUP);
    d.wait_log(Duration::from_secs(30), "the new job's run", |l| {
        l.contains("config reloaded") && l.contains("backup stored")
    });
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(backups(dir.path(), "second") >= 1, "{log}");
    assert_eq!(backups(dir.path(), "first"), 0, "{log}");
}

#[test]
fn catch_up_runs_a_missed_backup_once_judged_by_the_newest_manifest() {
    let dir = tempdir();
    // A daily job whose newest backup is two days old: a run was missed.
    let cfg = config(
        dir.path(),
        "",
        &[
            ("daily", "schedule: \"0 3 * * *\"\ncatch_up: true"),
            ("nocatch", "schedule: \"0 3 * * *\""),
        ],
    );
    ok(run(dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["backup", "daily", "nocatch"])));
    for m in crate::util::files(&dir.path().join("backups")) {
        if m.ends_with("manifest.json") {
            let p = dir.path().join("backups").join(&m);
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
            v["started_at"] = old.clone().into();
            v["finished_at"] = old.into();
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        }
    }
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "the catch-up run", |l| {
        l.contains("backup stored")
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(backups(dir.path(), "daily"), 2, "one catch-up run:\n{log}");
    assert_eq!(backups(dir.path(), "nocatch"), 1, "{log}");

    // Now the newest backup is recent: no catch-up at the next start.
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "start", |l| {
        l.contains("scheduler started")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(backups(dir.path(), "daily"), 2, "{log}");
}

#[test]
fn a_reload_that_removes_a_running_job_keeps_the_daemon_alive() {
    let dir = tempdir();
    let slow = "schedule: \"* * * * * *\"\nhooks: { before: [[sleep, \"3\"]] }";
    let cfg = config(
        dir.path(),
        "",
        &[("slow", slow), ("other", "schedule: \"@yearly\"")],
    );
    let d = Daemon::start(&cfg);
    d.wait_log(Duration::from_secs(20), "the slow run", |l| {
        l.contains("run started")
    });
    // The running job leaves the config; its old fire times come due while
    // it still runs.
    config(dir.path(), "", &[("other", "schedule: \"@yearly\"")]);
    d.signal(libc::SIGHUP);
    d.wait_log(Duration::from_secs(20), "the reload", |l| {
        l.contains("config reloaded")
    });
    d.wait_log(Duration::from_secs(30), "the removed job's end", |l| {
        l.contains("run finished")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(backups(dir.path(), "slow"), 1, "{log}");
}

#[test]
fn a_panicking_run_is_a_failed_run_and_the_daemon_still_stops() {
    let dir = tempdir();
    let cfg = config(dir.path(), "", &[("tick", "schedule: \"* * * * * *\"")]);
    let mut child = dbkeep()
        .arg("-c")
        .arg(&cfg)
        .args(["schedule", "run"])
        .env("DBKEEP_DEBUG_PANIC", "job-thread")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let d = Daemon { child, log };
    d.wait_log(Duration::from_secs(20), "two failed runs", |l| {
        count(l, "it counts as failed") >= 2
    });
    let (code, log) = d.stop(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(backups(dir.path(), "tick"), 0, "{log}");
}
