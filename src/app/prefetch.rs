//! Read-ahead for `wal fetch`: PostgreSQL asks for one segment at a time
//! and waits for each, so after a segment is fetched, a background dbkeep
//! fetches the next ones into a private spool folder, checked as usual. The
//! next `wal fetch` then only moves its file into place.
//!
//! The spool is `$TMPDIR/dbkeep-wal-<uid>-<job>-<hash of the data
//! directory>`, mode 0700; one that is not a plain folder owned by this
//! user and closed to others is not used. It holds at most [`AHEAD`]
//! segments, and is removed at the first file the archive lacks (its end,
//! or the end of recovery, which asks for the next timeline's history).

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::catalog::wal::{self, Log};
use crate::pipeline::crypt::Keys;
use crate::storage::Target;

/// Segments fetched ahead.
pub const AHEAD: u64 = 8;

/// The spool folder for `job` restoring into the current directory, created
/// when missing; `None` when it cannot be used safely.
pub fn spool(job: &str) -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let cwd = std::env::current_dir().ok()?.canonicalize().ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cwd.hash(&mut h);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let job: String = job
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let dir = std::env::temp_dir().join(format!("dbkeep-wal-{uid}-{job}-{:016x}", h.finish()));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0).then_some(dir)
}

/// Moves `name` from the spool to `dest` if it is there.
pub fn take(spool: &Path, name: &str, dest: &Path) -> bool {
    let file = spool.join(name);
    if !file.is_file() {
        return false;
    }
    if std::fs::rename(&file, dest).is_ok() {
        return true;
    }
    // Another file system: copy through a temp name, then rename.
    let temp = dest.with_file_name(format!(".{name}.dbkeep-{}", std::process::id()));
    let ok = std::fs::copy(&file, &temp).is_ok() && std::fs::rename(&temp, dest).is_ok();
    let _ = std::fs::remove_file(if ok { &file } else { &temp });
    ok
}

/// The segments after `name` worth fetching ahead, for segments of
/// `seg_size` bytes; none for anything but a segment.
pub fn next(name: &str, seg_size: u64) -> Vec<String> {
    let Some((tli, segno)) = wal::parse_segment(name, seg_size) else {
        return Vec::new();
    };
    (1..=AHEAD)
        .map(|i| wal::segment_name(tli, segno + i, seg_size))
        .collect()
}

/// Starts a detached `dbkeep wal prefetch` for `names`, unless one runs.
pub fn start(config: &Path, job: &str, spool: &Path, names: &[String]) {
    if names.is_empty() || busy(spool) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("-q")
        .arg("-c")
        .arg(config)
        .args(["wal", "prefetch", job, "--spool"])
        .arg(spool)
        .args(names)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own session: PostgreSQL waits for restore_command, not for it.
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let _ = cmd.spawn();
}

fn lock_path(spool: &Path) -> PathBuf {
    spool.join(".prefetch.lock")
}

/// Whether a prefetch holds the spool's lock.
fn busy(spool: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(spool))
    else {
        return true;
    };
    // SAFETY: flock on a valid descriptor.
    let got = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } == 0;
    !got
}

/// The background side: fetches each of `names` that the spool lacks,
/// checked, until one is not in the archive. Holds the spool's lock.
pub fn run(
    targets: &[Target],
    job: &str,
    spool: &Path,
    names: &[String],
    keys: &Keys,
) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(spool))?;
    // SAFETY: flock on a valid descriptor.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        return Ok(());
    }
    for name in names {
        wal::check_name(name)?;
        if spool.join(name).is_file() {
            continue;
        }
        if !wal::fetch(targets, Log::wal(job), name, &spool.join(name), keys)? {
            break;
        }
    }
    Ok(())
}

/// The archive ended: the spool goes.
pub fn clear(spool: &Path) {
    let _ = std::fs::remove_dir_all(spool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_segments_follow_on_the_timeline_and_only_for_segments() {
        let seg = 16 << 20;
        let n = next("0000000100000000000000FE", seg);
        assert_eq!(n.len() as u64, AHEAD);
        assert_eq!(n[0], "0000000100000000000000FF");
        assert_eq!(n[1], "000000010000000100000000");
        assert!(next("00000002.history", seg).is_empty());
        assert!(next("000000010000000000000003.partial", seg).is_empty());
    }

    #[test]
    fn a_spooled_file_is_moved_into_place_once() {
        let dir = std::env::temp_dir().join(format!("dbkeep-prefetch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("000000010000000000000003"), b"segment").unwrap();
        let dest = dir.join("RECOVERYXLOG");
        assert!(take(&dir, "000000010000000000000003", &dest));
        assert_eq!(std::fs::read(&dest).unwrap(), b"segment");
        assert!(!take(&dir, "000000010000000000000003", &dest));
        assert!(!busy(&dir));
        clear(&dir);
        assert!(!dir.exists());
    }
}
