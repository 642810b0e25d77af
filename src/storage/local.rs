//! Local storage: a folder on a local or mounted file system.
//!
//! Objects are written to a hidden temp name in their final folder, fsynced,
//! then renamed into place and the folder fsynced, so a crash never leaves a
//! file that looks complete. Files are created 0600 and folders 0700.
//!
//! Conditional writes (`create_if_absent`, `replace_if`, `delete_if`) hold an
//! exclusive `flock` on a hidden sidecar file beside the object while they
//! compare and rename; an object's version is the SHA-256 of its bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{ObjectWriter, Storage, Version, check_key};

/// A folder of backups.
pub struct Local {
    name: String,
    root: PathBuf,
}

impl Local {
    /// A storage rooted at `root` (created on first write).
    pub fn new(name: &str, root: &Path) -> Local {
        Local {
            name: name.to_string(),
            root: root.to_path_buf(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn is_temp(name: &str) -> bool {
    name.starts_with('.') && (name.contains(".tmp-") || name.ends_with(FLOCK))
}

/// The suffix of the sidecar files conditional writes lock.
const FLOCK: &str = ".flock";

fn version_of(data: &[u8]) -> Version {
    let digest = Sha256::digest(data);
    Version(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The object's bytes, or `None` when there is no file.
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    if let Err(e) = fs::symlink_metadata(path)
        && e.kind() == io::ErrorKind::NotFound
    {
        return Ok(None);
    }
    let data = crate::util::read_capped(open_regular(path)?, crate::util::SMALL_OBJECT_MAX)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(data))
}

/// An exclusive `flock` on the sidecar of one object, held until dropped.
struct Flock {
    file: File,
    path: PathBuf,
}

impl Flock {
    /// Waits for the lock of `object`'s sidecar, making its folder if needed.
    fn take(object: &Path, root: &Path) -> Result<Flock> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let dir = object.parent().unwrap_or(root);
        let name = object
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object");
        let path = dir.join(format!(".{name}{FLOCK}"));
        for _ in 0..100 {
            create_dirs(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => f,
                // The folder was removed as it emptied: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            };
            // SAFETY: a valid descriptor; flock has no memory preconditions.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                let e = io::Error::last_os_error();
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
            // A holder removes the sidecar before it unlocks; then this lock
            // is on a file nobody else can find, and must be taken again.
            let held = file.metadata().map(|m| (m.dev(), m.ino()));
            let named = fs::metadata(&path).map(|m| (m.dev(), m.ino()));
            if let (Ok(held), Ok(named)) = (held, named)
                && held == named
            {
                return Ok(Flock { file, path });
            }
        }
        anyhow::bail!("cannot lock {}: it keeps being replaced", path.display())
    }

    /// Removes the sidecar (its object is gone), then unlocks.
    fn remove(self) {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
    }
}

impl Local {
    /// Writes `data` to `path` through a temp file and a rename.
    fn write_whole(&self, key: &str, data: &[u8]) -> Result<()> {
        let mut w = self.create(key)?;
        w.write_all(data)?;
        w.commit()
    }
}

fn create_dirs(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl Storage for Local {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        create_dirs(&dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object");
        let mut attempt = 0u32;
        loop {
            let temp = dir.join(format!(
                ".{file_name}.tmp-{}-{}",
                std::process::id(),
                attempt
            ));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
            {
                Ok(file) => {
                    let root = self.root.clone();
                    return Ok(Box::new(LocalWriter {
                        file: Some(file),
                        written: 0,
                        flushed: 0,
                        temp,
                        path,
                        dir,
                        root,
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", temp.display()));
                }
            }
        }
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        let path = self.path(key)?;
        Ok(Box::new(open_regular(&path)?))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.trim_matches('/');
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)?
        };
        if !self.root.is_dir() {
            anyhow::bail!(
                "storage `{}`: folder {} does not exist; check `path` or run a backup first",
                self.name,
                self.root.display()
            );
        }
        let mut keys = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
            };
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let kind = entry.file_type()?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() && !is_temp(name) {
                    let rel = entry.path();
                    let rel = rel.strip_prefix(&self.root).unwrap_or(&rel);
                    let key: Vec<String> = rel
                        .iter()
                        .map(|s| s.to_string_lossy().into_owned())
                        .collect();
                    keys.push(key.join("/"));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>> {
        let path = self.path(key)?;
        let lock = Flock::take(&path, &self.root)?;
        if fs::symlink_metadata(&path).is_ok() {
            return Ok(None);
        }
        self.write_whole(key, data)?;
        drop(lock);
        Ok(Some(version_of(data)))
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(key)?;
        Ok(read_if_exists(&path)?.map(|data| {
            let version = version_of(&data);
            (data, version)
        }))
    }

    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>> {
        let path = self.path(key)?;
        let lock = Flock::take(&path, &self.root)?;
        match read_if_exists(&path)? {
            Some(now) if version_of(&now) == *version => {}
            Some(_) => return Ok(None),
            None => {
                lock.remove();
                remove_empty_dirs(path.parent(), &self.root);
                return Ok(None);
            }
        }
        self.write_whole(key, data)?;
        drop(lock);
        Ok(Some(version_of(data)))
    }

    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        let path = self.path(key)?;
        let lock = Flock::take(&path, &self.root)?;
        match read_if_exists(&path)? {
            Some(now) if version_of(&now) == *version => {}
            Some(_) => return Ok(false),
            None => {
                lock.remove();
                remove_empty_dirs(path.parent(), &self.root);
                return Ok(false);
            }
        }
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        lock.remove();
        remove_empty_dirs(path.parent(), &self.root);
        Ok(true)
    }

    fn leftovers(&self, prefix: &str) -> Result<Vec<(String, std::time::SystemTime)>> {
        let start = match prefix.trim_matches('/') {
            "" => self.root.clone(),
            p => self.path(p)?,
        };
        let mut found = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file()
                    && is_temp(name)
                    && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                {
                    let rel = entry.path();
                    let rel = rel.strip_prefix(&self.root).unwrap_or(&rel);
                    let key: Vec<String> = rel
                        .iter()
                        .map(|s| s.to_string_lossy().into_owned())
                        .collect();
                    found.push((key.join("/"), modified));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        remove_empty_dirs(path.parent(), &self.root);
        Ok(())
    }
}

/// Opens an object for reading: never through a symlink (O_NOFOLLOW), and
/// only a regular file (no FIFO that blocks, no device).
fn open_regular(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "{} is not a regular file; refusing to read it",
            path.display()
        );
    }
    Ok(file)
}

/// Starts writing a range of the file to disk without waiting (Linux
/// `sync_file_range`), so dirty pages do not pile up for the final fsync.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: a valid descriptor; the call only schedules I/O. Errors are
    // ignored: the fsync in `commit` is what guarantees durability.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Removes `dir` and its parents while they are empty, stopping at `root`.
fn remove_empty_dirs(mut dir: Option<&Path>, root: &Path) {
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Start writeback every this many bytes, so the final fsync is short.
const WRITEBACK_EVERY: u64 = 8 << 20;

struct LocalWriter {
    file: Option<File>,
    written: u64,
    flushed: u64,
    temp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    root: PathBuf,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(f) = &mut self.file else {
            return Err(io::Error::other("object already closed"));
        };
        let n = f.write(buf)?;
        self.written += n as u64;
        if self.written - self.flushed >= WRITEBACK_EVERY {
            start_writeback(f, self.flushed, self.written - self.flushed);
            self.flushed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let file = self.file.take().context("object already closed")?;
        file.sync_all()
            .with_context(|| format!("cannot fsync {}", self.temp.display()))?;
        drop(file);
        fs::rename(&self.temp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.temp.display(),
                self.path.display()
            )
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot fsync folder {}", self.dir.display()))?;
        Ok(())
    }

    fn abort(self: Box<Self>) {
        // Drop removes the temp file.
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp);
            remove_empty_dirs(Some(&self.dir), &self.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn commit_publishes_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Local::new("t", &dir.path().join("b"));
        let mut w = s.create("job/1/data.zst").unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(
            s.list("").unwrap(),
            Vec::<String>::new(),
            "nothing visible before commit"
        );
        w.commit().unwrap();
        assert_eq!(s.list("job").unwrap(), ["job/1/data.zst"]);
        assert_eq!(s.get("job/1/data.zst").unwrap(), b"hello");
        let mode = fs::metadata(dir.path().join("b/job/1/data.zst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(dir.path().join("b/job/1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        let mut w = s.create("job/2/data.zst").unwrap();
        w.write_all(b"partial").unwrap();
        w.abort();
        assert_eq!(s.list("").unwrap(), ["job/1/data.zst"]);
        assert!(
            !dir.path().join("b/job/2").exists(),
            "an aborted object leaves no folder"
        );

        s.delete("job/1/data.zst").unwrap();
        assert!(
            !dir.path().join("b/job").exists(),
            "emptied folders are removed"
        );
    }

    #[test]
    fn keys_may_not_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = Local::new("t", dir.path());
        assert!(s.create("../x").is_err());
        assert!(s.create("/etc/x").is_err());
        assert!(s.open("a/../../x").is_err());
    }
}
