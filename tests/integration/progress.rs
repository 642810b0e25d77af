//! Progress with an estimate of the dump's size from the server: log lines
//! with percent and ETA off a terminal, a bar on one.

use std::path::Path;

use crate::util::*;

/// A `pg_dump` stand-in on PATH that runs the real one, lets its first 64 KiB
/// through, then holds the rest for two seconds: a dump slow enough to watch.
fn slow_pg_dump(dir: &Path) {
    let real = which("pg_dump");
    stand_in(
        dir,
        "pg_dump",
        &format!(
            "case \"$1\" in --version) exec {real} --version;; esac\n\
             {real} \"$@\" | {{ dd bs=65536 count=1 iflag=fullblock 2>/dev/null; sleep 2; cat; }}",
            real = real.display()
        ),
    );
}

fn database() -> PgDb {
    let db = PgDb::new("progress");
    psql(
        &db.name,
        "create table t (id int, v text); insert into t select i, repeat('p', 200) from generate_series(1, 8000) i",
    );
    db
}

#[test]
fn log_lines_say_percent_and_eta_as_estimates() {
    let db = database();
    let tools = tempdir();
    slow_pg_dump(tools.path());
    let dir = tempdir();
    let out = run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .env("DBKEEP_PROGRESS_INTERVAL", "0.4")
        .args(["backup", &pg_url(&db.name), "--to"])
        .arg(dir.path()));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        log.contains("dump size estimated from the server's statistics"),
        "{log}"
    );
    // From the estimate on (a line may come before the server answered).
    let lines: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("dump size estimated"))
        .filter(|l| l.contains(" progress "))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("(percent and ETA are estimates)")
                && l.contains("percent=\"~")
                && l.contains("estimated=\"~")),
        "{log}"
    );
    // While the dump is held at 64 KiB of about 2 MB: a low percent, and an ETA.
    let percent = |l: &str| -> u32 {
        let at = l.find("percent=\"~").unwrap() + "percent=\"~".len();
        l[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    assert!(
        lines
            .iter()
            .any(|l| percent(l) < 10 && l.contains("eta=\"~")),
        "{log}"
    );

    // No progress wanted: no estimate asked for either.
    let quiet = run(dbkeep()
        .env("PATH", path_with(tools.path()))
        .args(["--no-progress", "backup", &pg_url(&db.name), "--to"])
        .arg(dir.path()));
    assert!(quiet.status.success(), "{}", text(&quiet));
    let log = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        !log.contains(" progress ") && !log.contains("dump size estimated"),
        "{log}"
    );
}

#[test]
fn a_terminal_gets_a_bar_with_percent_and_eta_marked_as_estimates() {
    let db = database();
    let tools = tempdir();
    slow_pg_dump(tools.path());
    let dir = tempdir();
    // `script` gives dbkeep a terminal for stderr.
    let command = format!(
        "{} backup '{}' --to '{}'",
        env!("CARGO_BIN_EXE_dbkeep"),
        pg_url(&db.name),
        dir.path().display()
    );
    let out = run(std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("PATH", path_with(tools.path()))
        .env("DBKEEP_LOG", "dbkeep=info"));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        shown.contains(&format!("{}: [", db.name)),
        "no bar: {shown}"
    );
    assert!(shown.contains("(estimate), ETA ~"), "{shown}");
    // While the dump is held at 64 KiB of about 2 MB.
    assert!(shown.contains("] ~3% (estimate)"), "{shown}");
    assert!(shown.contains(&format!("{}: backup ", db.name)), "{shown}");
}
