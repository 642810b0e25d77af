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
