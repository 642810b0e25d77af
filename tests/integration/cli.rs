//! The command line itself: help, version, usage errors, the demo.

use crate::util::*;

#[test]
fn help_lists_commands_examples_and_exit_codes() {
    let out = ok(run(dbkeep().arg("--help")));
    for want in [
        "backup",
        "restore",
        "list",
        "verify",
        "config",
        "Examples:",
        "Exit codes:",
        "78",
        "130",
    ] {
        assert!(out.contains(want), "missing `{want}` in --help");
    }
    for sub in ["backup", "restore", "list", "verify"] {
        let out = ok(run(dbkeep().args([sub, "--help"])));
        assert!(out.contains("Examples:"), "`{sub} --help` has no examples");
    }
    let out = ok(run(dbkeep().arg("--version")));
    assert!(out.starts_with("dbkeep "), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(dbkeep().args(["backup", "--frobnicate"]));
    assert_eq!(out.status.code(), Some(2));
    let dir = tempdir();
    let out = run(dbkeep().args(["backup", "a", "b", "--to"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = run(dbkeep().args(["restore", "--from"]).arg(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target"));
}

#[test]
fn demo_backs_up_restores_and_compares() {
    let dir = tempdir();
    let out = ok(run(dbkeep().current_dir(dir.path()).arg("demo")));
    assert!(out.contains("identical"), "{out}");
    assert_eq!(manifests(&dir.path().join("backups")).len(), 1);
}

#[test]
fn man_pages_and_completions_are_current() {
    let dir = tempdir();
    // A broken config must not matter: generating never loads it.
    let out = run(dbkeep()
        .env("DBKEEP_CONFIG", "/nonexistent/broken.yaml")
        .args(["generate", "--out"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["man", "completions"] {
        let fresh = files(&dir.path().join(folder));
        let committed = files(&root.join(folder));
        assert_eq!(
            fresh, committed,
            "the set of files in {folder}/ changed: run `cargo run -- generate` and commit"
        );
        for f in &fresh {
            let a = std::fs::read(dir.path().join(folder).join(f)).unwrap();
            let b = std::fs::read(root.join(folder).join(f)).unwrap();
            assert!(
                a == b,
                "{folder}/{f} is stale: run `cargo run -- generate` and commit the result"
            );
        }
    }
    assert!(files(&root.join("man")).contains(&"dbkeep-restore.1".to_string()));
    for shell in [
        "dbkeep.bash",
        "_dbkeep",
        "dbkeep.fish",
        "dbkeep.elv",
        "_dbkeep.ps1",
    ] {
        assert!(
            files(&root.join("completions")).contains(&shell.to_string()),
            "{shell}"
        );
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempdir();
    let db = dir.path().join("x.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("create table t (v int);")
        .unwrap();
    let out = run(dbkeep()
        .args(["--log-format", "json", "backup"])
        .arg(&db)
        .arg("--to")
        .arg(dir.path().join("b")));
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut messages = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        messages.contains(&"backup complete".to_string()),
        "{messages:?}"
    );
    // Results stay on stdout, logs on stderr.
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("x: backup "));
}

/// Digits become `N`, sizes `SIZE`, and the unique job name `JOB`.
fn normalize(line: &str, job: &str) -> String {
    let mut out = digits(line, job);
    for unit in ["N.N GiB", "N.N MiB", "N.N KiB", "N B"] {
        out = out.replace(unit, "SIZE");
    }
    out
}

fn digits(line: &str, job: &str) -> String {
    let line = line.replace(job, "JOB");
    let mut out = String::new();
    let mut last_digit = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            out.push(c);
            last_digit = false;
        }
    }
    out
}

#[test]
fn progress_lines_when_not_on_a_terminal() {
    let db = PgDb::new("progress");
    psql(
        &db.name,
        "create table t (v text); insert into t select repeat('x', 200) from generate_series(1, 2000)",
    );
    let dir = tempdir();
    let archive = dir.path().join("a.pgdump");
    pg_archive(&db.name, &archive);
    // A stand-in pg_dump that sends a real archive in two halves, 1 s apart.
    let tools = tempdir();
    stand_in(
        tools.path(),
        "pg_dump",
        &format!(
            "for a in \"$@\"; do [ \"$a\" = --version ] && {{ {} --version; exit 0; }}; done\n\
             head -c 20000 '{a}'; sleep 1; tail -c +20001 '{a}'",
            which("pg_dump").display(),
            a = archive.display()
        ),
    );
    let backup = |extra: &[&str]| {
        run(dbkeep()
            .env("PATH", path_with(tools.path()))
            .env("DBKEEP_PROGRESS_INTERVAL", "0.3")
            .args(extra)
            .args(["backup", &pg_url(&db.name), "--to"])
            .arg(dir.path().join("b")))
    };
    let out = backup(&[]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(" progress "))
        .map(|l| normalize(l.split_once("INFO ").unwrap().1, &db.name))
        .collect();
    assert!(lines.len() >= 2, "{stderr}");
    // The ETA comes once there is a rate and while the dump is below the estimate.
    let without_eta = |l: &str| match l.find(" eta=\"") {
        Some(at) => {
            let end = l[at + 6..].find('"').unwrap() + at + 7;
            format!("{}{}", &l[..at], &l[end..])
        }
        None => l.to_string(),
    };
    // Lines before the server answered the estimate have no percent.
    let plain =
        "progress job=\"JOB\" dumped=\"SIZE\" stored=\"SIZE\" rate=\"SIZE/s\" elapsed=\"N.Ns\"";
    let estimated = "progress (percent and ETA are estimates) job=\"JOB\" dumped=\"SIZE\" stored=\"SIZE\" \
                     rate=\"SIZE/s\" elapsed=\"N.Ns\" estimated=\"~SIZE\" percent=\"~N%\"";
    for line in &lines {
        let line = without_eta(line);
        assert!(line == plain || line == estimated, "{line}");
    }
    assert!(
        lines.iter().any(|l| without_eta(l) == estimated),
        "{stderr}"
    );

    let out = backup(&["--no-progress"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains(" progress "));
}
