//! A strict, streaming reader and extractor for POSIX ustar archives.
//!
//! It reads the tar stream that PostgreSQL 15's `pg_basebackup -Ft -D -`
//! writes for a data directory: ustar headers (with the `prefix` field),
//! pax extended headers (`x`) and GNU long names (`L`/`K`) for long paths,
//! regular files, directories and symbolic links (tablespaces), then zero
//! blocks. The archive comes back from remote storage, so it is treated as
//! hostile input: every header is checksummed, numbers are parsed with checked
//! arithmetic, extended headers are size-capped, member paths must be plain
//! relative paths, links and special files are refused, nothing is written
//! outside the target directory (not even through symlinks already there),
//! and only zero bytes may follow the end marker. Every problem is an
//! `std::io::Error` with a lowercase message; no input makes it panic.
//!
//! Headers are read 512 bytes at a time: wrap unbuffered sources (stdin,
//! sockets) in a `std::io::BufReader`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Size of a tar block; headers and member data are aligned to it.
const BLOCK: usize = 512;
/// Largest pax extended header or GNU long name/link accepted.
const EXTENDED_CAP: u64 = 64 * 1024;
/// Largest `backup_label` / `backup_manifest` handed to `on_file`.
const CAPTURE_CAP: u64 = 16 * 1024 * 1024;
/// Buffer used to copy member data into files.
const COPY_BUF: usize = 256 * 1024;

/// An `InvalidData` error with the given message.
fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// A file-system error, with what we were doing and where.
fn fs_error(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {path:?}: {e}"))
}

fn truncated() -> io::Error {
    bad("the archive is truncated inside member data")
}

/// One `read` call, retried on `Interrupted`, checked against a reader
/// that claims more bytes than the buffer holds.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Ok(n) if n > buf.len() => return Err(bad("the input returned more bytes than asked")),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The kind of an archive member that this reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One member header, with pax / GNU overrides already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored, not yet checked (see [`safe_path`]).
    pub path: String,
    pub kind: Kind,
    /// Data size in bytes (always 0 for directories and links).
    pub size: u64,
    /// Permission bits from the header.
    pub mode: u32,
    /// Link target (symbolic links; empty otherwise).
    pub link: String,
}

/// Counts of what [`extract`] or [`scan`] went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Overrides from pax / GNU extended headers, for the next real member.
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
}

/// Streaming reader: call [`TarReader::next_entry`], then optionally
/// [`TarReader::read_data`] for that member's contents.
pub struct TarReader<R: Read> {
    inner: R,
    /// Unread data bytes of the current member, and the padding after them.
    remaining: u64,
    padding: u64,
    /// Headers seen so far (numbers them in messages, from 1).
    headers: u64,
    /// The end marker has been read.
    done: bool,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            headers: 0,
            done: false,
        }
    }

    /// Returns the next member (skipping the unread data of the previous
    /// one), or `None` at the end-of-archive marker.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        self.skip(
            self.remaining
                .checked_add(self.padding)
                .ok_or_else(truncated)?,
        )?;
        (self.remaining, self.padding) = (0, 0);
        let mut pending = Pending::default();
        loop {
            let mut h = [0u8; BLOCK];
            match self.read_block(&mut h)? {
                0 => return Err(bad("the archive ends without its end marker (truncated)")),
                BLOCK => {}
                _ => return Err(bad("the archive is truncated inside a member header")),
            }
            if h.iter().all(|&b| b == 0) {
                if pending.path.is_some() || pending.link.is_some() || pending.size.is_some() {
                    return Err(bad("an extended header is not followed by a member"));
                }
                // The second zero block may be missing, but not be non-zero.
                self.read_block(&mut h)?;
                if h.iter().any(|&b| b != 0) {
                    return Err(bad("data after the end of the archive"));
                }
                self.done = true;
                return Ok(None);
            }

            self.headers = self.headers.saturating_add(1);
            let n = self.headers;
            if !checksum_ok(&h) {
                return Err(bad(format!("member header {n} is damaged (checksum)")));
            }
            if &h[257..262] != b"ustar" {
                return Err(bad(format!("member header {n} is not a ustar header")));
            }
            let size = parse_size(&h[124..136])
                .ok_or_else(|| bad(format!("member header {n} has an invalid size field")))?;
            let flag = h[156];
            match flag {
                b'x' => parse_pax(&self.read_extended(size, n)?, &mut pending, n)?,
                b'L' => pending.path = Some(utf8(cstr(&self.read_extended(size, n)?), n)?),
                b'K' => pending.link = Some(utf8(cstr(&self.read_extended(size, n)?), n)?),
                // Global pax headers carry nothing we use.
                b'g' => self.skip(size.checked_add(padding(size)).ok_or_else(truncated)?)?,
                _ => {}
            }
            if matches!(flag, b'x' | b'L' | b'K' | b'g') {
                continue;
            }

            let path = match pending.path.take() {
                Some(p) => p,
                None => header_path(&h, n)?,
            };
            let link = match pending.link.take() {
                Some(l) => l,
                None => utf8(cstr(&h[157..257]), n)?,
            };
            let size = pending.size.take().unwrap_or(size);
            let kind = match flag {
                b'0' | 0 => Kind::File,
                b'5' => Kind::Dir,
                b'2' => Kind::Symlink,
                other => {
                    let what = match other {
                        b'1' => "hard link",
                        b'3' => "character device",
                        b'4' => "block device",
                        b'6' => "fifo",
                        _ => "unknown",
                    };
                    let c = char::from(other);
                    return Err(bad(format!(
                        "member {path:?} has unsupported type {what} ({c:?})"
                    )));
                }
            };
            if kind != Kind::File && size != 0 {
                return Err(bad(format!(
                    "member {path:?} is not a regular file but has data"
                )));
            }
            let mode = parse_octal(&h[100..108])
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| bad(format!("member {path:?} has an invalid mode field")))?;
            if size.checked_add(padding(size)).is_none() {
                return Err(bad(format!("member {path:?} has an impossible size")));
            }
            (self.remaining, self.padding) = (size, padding(size));
            return Ok(Some(Entry {
                path,
                kind,
                size,
                mode,
                link,
            }));
        }
    }

    /// Reads the current member's data; returns 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let dst = buf.get_mut(..want).unwrap_or_default();
        if dst.is_empty() {
            return Ok(0);
        }
        let n = read_some(&mut self.inner, dst)?;
        if n == 0 {
            return Err(truncated());
        }
        // n <= want <= remaining, so this cannot fail.
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }

    /// After `next_entry` returned `None`: checks that what follows the end
    /// marker (tar pads to its record size) is only zero bytes.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.done {
            return Err(bad("the end of the archive has not been reached"));
        }
        let mut buf = [0u8; 8192];
        loop {
            let n = read_some(&mut self.inner, &mut buf)?;
            let chunk = buf.get(..n).unwrap_or_default();
            if chunk.iter().any(|&b| b != 0) {
                return Err(bad("data after the end of the archive"));
            }
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Fills `h` as far as the input allows; returns the bytes read.
    fn read_block(&mut self, h: &mut [u8; BLOCK]) -> io::Result<usize> {
        let mut filled = 0;
        while let Some(dst) = h.get_mut(filled..).filter(|d| !d.is_empty()) {
            match read_some(&mut self.inner, dst)? {
                0 => break,
                k => filled += k, // bounded by BLOCK thanks to read_some
            }
        }
        Ok(filled)
    }

    /// Discards exactly `n` bytes; running out is a truncation.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied < n { Err(truncated()) } else { Ok(()) }
    }

    /// Reads the (capped) body of an extended header, and its padding.
    fn read_extended(&mut self, size: u64, n: u64) -> io::Result<Vec<u8>> {
        if size > EXTENDED_CAP {
            return Err(bad(format!(
                "member header {n} has an extended header of {size} bytes, over the 64 KiB limit"
            )));
        }
        let mut data = vec![0u8; usize::try_from(size).map_err(|_| truncated())?];
        self.inner
            .read_exact(&mut data)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => truncated(),
                _ => e,
            })?;
        self.skip(padding(size))?;
        Ok(data)
    }
}

/// Bytes needed after `size` bytes of data to reach a block boundary.
fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The bytes of a NUL-terminated (or full-width) field.
fn cstr(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or_default()
}

fn utf8(bytes: &[u8], n: u64) -> io::Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        bad(format!(
            "member header {n} has a name that is not valid utf-8"
        ))
    })
}

/// `prefix/name` for POSIX ustar headers, else just `name`.
fn header_path(h: &[u8; BLOCK], n: u64) -> io::Result<String> {
    let name = utf8(cstr(&h[0..100]), n)?;
    // Only POSIX ustar ("ustar\0") has a prefix; GNU tar uses those bytes otherwise.
    let prefix = if &h[257..263] == b"ustar\0" {
        utf8(cstr(&h[345..500]), n)?
    } else {
        String::new()
    };
    Ok(if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    })
}

/// Octal number, optionally space-padded in front, NUL/space-terminated.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let mut bytes = field.iter().copied().skip_while(|&b| b == b' ').peekable();
    let mut value: u64 = 0;
    while let Some(d) = bytes.next_if(|b| (b'0'..=b'7').contains(b)) {
        value = value.checked_mul(8)?.checked_add(u64::from(d - b'0'))?;
    }
    bytes.all(|b| b == 0 || b == b' ').then_some(value)
}

/// Size field: octal, or GNU base-256 (high bit of the first byte set,
/// next bit the sign; negative sizes are refused).
fn parse_size(field: &[u8]) -> Option<u64> {
    match field.split_first() {
        Some((&first, _)) if first & 0xc0 == 0xc0 => None,
        Some((&first, rest)) if first & 0x80 != 0 => {
            rest.iter().try_fold(u64::from(first & 0x3f), |v, &b| {
                v.checked_mul(256)?.checked_add(u64::from(b))
            })
        }
        _ => parse_octal(field),
    }
}

/// Header checksum, counting the checksum field as spaces. Both unsigned
/// (POSIX) and signed (old Sun / GNU) byte sums are accepted. The sums
/// cannot overflow: 512 bytes of at most 255 each.
fn checksum_ok(h: &[u8; BLOCK]) -> bool {
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Applies the `path`, `linkpath` and `size` records of a pax header:
/// `"<len> <key>=<value>\n"`, where len counts the whole record.
fn parse_pax(data: &[u8], pending: &mut Pending, n: u64) -> io::Result<()> {
    let malformed = || {
        bad(format!(
            "member header {n} has a malformed pax extended header"
        ))
    };
    let decimal = |s: &[u8]| -> Option<u64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        s.iter().try_fold(0u64, |v, &d| {
            v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    };
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(malformed)?;
        let len = rest.get(..space).and_then(decimal).ok_or_else(malformed)?;
        let len = usize::try_from(len).map_err(|_| malformed())?;
        let record = rest
            .get(..len)
            .filter(|r| r.ends_with(b"\n"))
            .ok_or_else(malformed)?;
        // The record ends with '\n', so len >= 1.
        let body = record.get(space + 1..len - 1).ok_or_else(malformed)?;
        let eq = body.iter().position(|&b| b == b'=').ok_or_else(malformed)?;
        let (key, value) = body.split_at(eq);
        let value = value.get(1..).unwrap_or_default();
        match key {
            b"path" => pending.path = Some(utf8(value, n)?),
            b"linkpath" => pending.link = Some(utf8(value, n)?),
            b"size" => pending.size = Some(decimal(value).ok_or_else(malformed)?),
            _ => {} // mtime, uid, ...: not needed
        }
        rest = rest.get(len..).ok_or_else(malformed)?;
    }
    Ok(())
}

/// Checks a member path and returns it normalised: relative, no `..`,
/// no empty name, no NUL; `.` names and one trailing `/` are dropped.
pub fn safe_path(path: &str) -> Result<PathBuf, String> {
    let refuse = |why: &str| Err(format!("member path {path:?} {why}"));
    if path.contains('\0') {
        return refuse("contains a nul byte");
    }
    if path.starts_with('/') {
        return refuse("is absolute");
    }
    let mut out = PathBuf::new();
    for name in path.strip_suffix('/').unwrap_or(path).split('/') {
        match name {
            "" => return refuse("has an empty name"),
            "." => {}
            ".." => return refuse("goes up with \"..\""),
            _ => out.push(name),
        }
    }
    if out.as_os_str().is_empty() {
        return refuse("names no file");
    }
    Ok(out)
}

/// Creates `root/rel` and missing parents (mode 0700), refusing to pass
/// through anything inside `root` that is a symlink or not a directory.
/// (The directory is assumed not to be changed by others meanwhile.)
fn ensure_dirs(root: &Path, rel: &Path) -> io::Result<()> {
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(bad(format!(
                    "{cur:?} is a symbolic link; refusing to write through it"
                )));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(bad(format!("{cur:?} exists and is not a directory"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
                .mode(0o700)
                .create(&cur)
                .map_err(|e| fs_error(e, "create", &cur))?,
            Err(e) => return Err(fs_error(e, "inspect", &cur)),
        }
    }
    Ok(())
}

/// Creates the new file `root/rel`; `create_new` (O_EXCL) never replaces
/// or follows anything already there.
fn create_file(root: &Path, rel: &Path, mode: u32) -> io::Result<File> {
    ensure_dirs(root, rel.parent().unwrap_or(Path::new("")))?;
    let target = root.join(rel);
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode((mode & 0o700) | 0o600);
    options
        .open(&target)
        .map_err(|e| fs_error(e, "create", &target))
}

/// The walk shared by [`extract`] (`dir` is `Some`) and [`scan`].
fn walk<R: Read>(
    reader: R,
    dir: Option<&Path>,
    on_file: &mut dyn FnMut(&str, &[u8]),
) -> io::Result<Summary> {
    let mut tar = TarReader::new(reader);
    let mut summary = Summary::default();
    let mut buf = vec![0u8; if dir.is_some() { COPY_BUF } else { 64 * 1024 }];
    while let Some(entry) = tar.next_entry()? {
        if entry.kind == Kind::Symlink {
            let p = &entry.path;
            return Err(bad(format!(
                "member {p:?} is a symbolic link; tablespaces and links are not restored"
            )));
        }
        let rel = safe_path(&entry.path).map_err(bad)?;
        if entry.kind == Kind::Dir {
            if let Some(root) = dir {
                ensure_dirs(root, &rel)?;
            }
            summary.dirs = summary.dirs.saturating_add(1);
            continue;
        }
        let capture = rel == Path::new("backup_label") || rel == Path::new("backup_manifest");
        if capture && entry.size > CAPTURE_CAP {
            let (p, s) = (&entry.path, entry.size);
            return Err(bad(format!(
                "member {p:?} is {s} bytes, over the 16 MiB limit"
            )));
        }
        let mut out = dir
            .map(|root| create_file(root, &rel, entry.mode))
            .transpose()?;
        let mut contents = Vec::with_capacity(if capture { entry.size as usize } else { 0 });
        // Data nobody wants (scan, ordinary file) is skipped by next_entry.
        while out.is_some() || capture {
            let n = tar.read_data(&mut buf)?;
            let chunk = buf.get(..n).unwrap_or_default();
            if chunk.is_empty() {
                break;
            }
            if let (Some(file), Some(root)) = (out.as_mut(), dir) {
                file.write_all(chunk)
                    .map_err(|e| fs_error(e, "write", &root.join(&rel)))?;
            }
            if capture {
                contents.extend_from_slice(chunk);
            }
        }
        if capture {
            on_file(&rel.to_string_lossy(), &contents);
        }
        summary.files = summary.files.saturating_add(1);
        summary.bytes = summary.bytes.saturating_add(entry.size);
    }
    tar.finish()?;
    Ok(summary)
}

/// Extracts the archive into the existing directory `dir`, calling `on_file`
/// with the whole contents of `backup_label` and `backup_manifest`. On error,
/// what was already written stays in `dir`: the caller should discard it.
pub fn extract<R: Read>(
    reader: R,
    dir: &Path,
    on_file: &mut dyn FnMut(&str, &[u8]),
) -> io::Result<Summary> {
    walk(reader, Some(dir), on_file)
}

/// Validates the archive like [`extract`] does, without writing anything.
pub fn scan<R: Read>(reader: R, on_file: &mut dyn FnMut(&str, &[u8])) -> io::Result<Summary> {
    walk(reader, None, on_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    // ---- a tiny test-only ustar writer ----

    /// Zero-padded octal, NUL-terminated, filling `field`.
    fn octal(field: &mut [u8], v: u64) {
        let s = format!("{v:0w$o}", w = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
    }
    /// Writes the checksum (unsigned sum, checksum field counted as spaces).
    fn seal(h: &mut [u8; BLOCK]) {
        h[148..156].fill(b' ');
        let sum = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum);
    }
    fn header(name: &str, size: u64, flag: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], 0o644);
        octal(&mut h[124..136], size);
        h[156] = flag;
        h[257..265].copy_from_slice(b"ustar\x0000");
        seal(&mut h);
        h
    }
    /// Appends a header and its data, padded to a block.
    fn push(out: &mut Vec<u8>, h: [u8; BLOCK], data: &[u8]) {
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    /// A whole archive of (name, typeflag, data) members with its end marker.
    fn archive(members: &[(&str, u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, flag, data) in members {
            push(&mut out, header(name, data.len() as u64, *flag), data);
        }
        out.extend_from_slice(&[0; 2 * BLOCK]);
        out
    }
    /// One header (possibly edited by `edit`), its data, the end marker.
    fn one(name: &str, flag: u8, data: &[u8], edit: impl Fn(&mut [u8; BLOCK])) -> Vec<u8> {
        let mut h = header(name, data.len() as u64, flag);
        edit(&mut h);
        seal(&mut h);
        let mut out = Vec::new();
        push(&mut out, h, data);
        out.extend_from_slice(&[0; 2 * BLOCK]);
        out
    }
    fn pax(key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len += 1;
        }
        format!("{len}{body}").into_bytes()
    }
    fn data_of<R: Read>(r: &mut TarReader<R>) -> Vec<u8> {
        let (mut out, mut buf) = (Vec::new(), [0u8; 100]);
        while let n @ 1.. = r.read_data(&mut buf).unwrap() {
            out.extend_from_slice(&buf[..n]);
        }
        out
    }
    fn scan_err(a: &[u8]) -> String {
        scan(a, &mut |_, _| {}).unwrap_err().to_string()
    }

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("tarhelper-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir(&p).unwrap();
            TempDir(p)
        }
        fn extract(&self, a: &[u8]) -> io::Result<Summary> {
            extract(a, &self.0, &mut |_, _| {})
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn round_trip() {
        let block: Vec<u8> = (0..512u32).map(|i| (i % 251) as u8).collect();
        let big: Vec<u8> = (0..1300u32).map(|i| (i * 7 % 256) as u8).collect();
        let a = archive(&[
            ("base/", b'5', b""),
            ("base/1/", b'5', b""),
            ("base/1/empty", b'0', b""),
            ("base/1/block", b'0', &block),
            ("global/big", 0, &big), // its parent is not in the archive
        ]);
        let t = TempDir::new("round");
        let want = Summary {
            files: 3,
            dirs: 2,
            bytes: 1812,
        };
        assert_eq!(t.extract(&a).unwrap(), want);
        assert_eq!(scan(&a[..], &mut |_, _| {}).unwrap(), want);
        assert_eq!(fs::read(t.0.join("base/1/empty")).unwrap(), b"");
        assert_eq!(fs::read(t.0.join("base/1/block")).unwrap(), block);
        assert_eq!(fs::read(t.0.join("global/big")).unwrap(), big);
        let mode = |p: &str| fs::metadata(t.0.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            [mode("global"), mode("base/1"), mode("global/big")],
            [0o700, 0o700, 0o600]
        );
    }

    #[test]
    fn on_file_gets_label_and_manifest() {
        let label: &[u8] = b"START WAL LOCATION: 0/2000028\n";
        let a = archive(&[
            ("PG_VERSION", b'0', b"15\n"),
            ("backup_label", b'0', label),
            ("backup_manifest", b'0', b"{}"),
        ]);
        let mut seen = Vec::new();
        let t = TempDir::new("label");
        extract(&a[..], &t.0, &mut |p, d| {
            seen.push((p.to_string(), d.to_vec()))
        })
        .unwrap();
        scan(&a[..], &mut |p, d| seen.push((p.to_string(), d.to_vec()))).unwrap();
        let want = [
            ("backup_label".to_string(), label.to_vec()),
            ("backup_manifest".into(), b"{}".to_vec()),
        ];
        assert_eq!(seen, [want.clone(), want].concat());
    }

    #[test]
    fn prefix_pax_and_gnu_names() {
        let mut a = one("16384", b'0', b"abc", |h| {
            h[345..351].copy_from_slice(b"base/1")
        });
        a.truncate(a.len() - 2 * BLOCK);
        let long = format!("{}/file", "d".repeat(150));
        let records = [pax("mtime", "1.5"), pax("path", &long)].concat();
        a.extend(archive(&[
            ("pax", b'x', &records),
            ("ignored", b'0', b"xyz"),
            ("././@LongLink", b'L', b"gnu/long\0"),
            ("trunc", b'5', b""),
        ]));
        let mut r = TarReader::new(&a[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(
            (e.path.as_str(), e.size, e.mode, e.link.as_str()),
            ("base/1/16384", 3, 0o644, "")
        );
        assert_eq!(data_of(&mut r), b"abc");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.kind), (long.as_str(), Kind::File));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.path.as_str(), e.kind), ("gnu/long", Kind::Dir));
        assert!(r.next_entry().unwrap().is_none());
        let t = TempDir::new("pax");
        t.extract(&a).unwrap();
        assert_eq!(fs::read(t.0.join(&long)).unwrap(), b"xyz");
        assert!(t.0.join("base/1/16384").is_file() && t.0.join("gnu/long").is_dir());
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(safe_path("./a/b/").unwrap(), PathBuf::from("a/b"));
        for p in ["", ".", "./", "a//b", "a\0b", "/", "..", "a/.."] {
            assert!(safe_path(p).is_err(), "{p:?}");
        }
        for (i, evil) in ["../x", "/etc/x", "a/../../b"].iter().enumerate() {
            let t = TempDir::new(&format!("evil{i}"));
            let inner = t.0.join("inner");
            fs::create_dir(&inner).unwrap();
            let a = archive(&[(evil, b'0', b"evil")]);
            let e = extract(&a[..], &inner, &mut |_, _| {}).unwrap_err();
            assert!(e.to_string().contains(&format!("{evil:?}")), "{e}");
            assert!(scan_err(&a).contains(&format!("{evil:?}")));
            assert_eq!(fs::read_dir(&t.0).unwrap().count(), 1);
            assert_eq!(fs::read_dir(&inner).unwrap().count(), 0);
        }
    }

    #[test]
    fn symlinks_and_other_types_are_refused() {
        let a = one("pg_tblspc/16385", b'2', b"", |h| {
            h[157..164].copy_from_slice(b"/mnt/ts")
        });
        assert_eq!(
            TarReader::new(&a[..]).next_entry().unwrap().unwrap().link,
            "/mnt/ts"
        );
        let t = TempDir::new("symlink");
        let e = t.extract(&a).unwrap_err().to_string();
        assert_eq!(
            e,
            "member \"pg_tblspc/16385\" is a symbolic link; tablespaces and links are not restored"
        );
        assert_eq!(scan_err(&a), e);
        assert_eq!(fs::read_dir(&t.0).unwrap().count(), 0);
        for flag in [b'1', b'3', b'4', b'6'] {
            let e = scan_err(&archive(&[("node", flag, b"")]));
            assert!(e.starts_with("member \"node\" has unsupported type"), "{e}");
        }
    }

    #[test]
    fn existing_symlinked_dir_is_refused() {
        let t = TempDir::new("symdir");
        let (root, outside) = (t.0.join("root"), t.0.join("outside"));
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        for (name, flag) in [("link/file", b'0'), ("link/sub/", b'5'), ("link", b'0')] {
            let a = archive(&[(name, flag, b"")]);
            assert!(extract(&a[..], &root, &mut |_, _| {}).is_err(), "{name}");
            assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        }
    }

    #[test]
    fn truncation_is_an_error() {
        let a = archive(&[("f", b'0', &[1u8; 1300]), ("g", b'0', b"x")]);
        let body = a.len() - 2 * BLOCK;
        // Empty input, in a header, in data, in the second header, no end marker.
        for cut in [0, 100, 512 + 700, 512 + 1536 + 100, body] {
            assert!(scan(&a[..cut], &mut |_, _| {}).is_err(), "{cut}");
            assert!(
                TempDir::new(&format!("cut{cut}"))
                    .extract(&a[..cut])
                    .is_err(),
                "{cut}"
            );
        }
        assert_eq!(
            scan_err(&a[..body]),
            "the archive ends without its end marker (truncated)"
        );
        // A single zero block then EOF is accepted.
        assert!(scan(&a[..body + BLOCK], &mut |_, _| {}).is_ok());
    }

    #[test]
    fn bad_checksum_is_an_error() {
        let mut a = archive(&[("f", b'0', b"x")]);
        a[0] ^= 1;
        assert_eq!(scan_err(&a), "member header 1 is damaged (checksum)");
        // A signed checksum (bytes >= 0x80 counted as negative) is accepted.
        let mut h = header("caf\u{e9}", 0, b'0');
        h[148..156].fill(b' ');
        let sum: i64 = h.iter().map(|&b| i64::from(b as i8)).sum();
        octal(&mut h[148..155], sum as u64);
        let mut a = Vec::new();
        push(&mut a, h, b"");
        a.extend_from_slice(&[0; BLOCK]);
        assert_eq!(scan(&a[..], &mut |_, _| {}).unwrap().files, 1);
    }

    #[test]
    fn extended_headers_are_capped_and_checked() {
        let a = archive(&[("pax", b'x', &vec![b'a'; 70_000]), ("f", b'0', b"")]);
        assert!(scan_err(&a).contains("over the 64 KiB limit"));
        for body in [
            &b"99 path=x\n"[..],
            b"0 ",
            b"5 a=b\n",
            b"x path=y\n",
            b"8 path\n",
            b"7 size=\n",
        ] {
            let a = archive(&[("pax", b'x', body), ("f", b'0', b"")]);
            assert!(scan(&a[..], &mut |_, _| {}).is_err(), "{body:?}");
        }
        assert!(scan_err(&archive(&[("pax", b'x', &pax("path", "x"))])).contains("not followed"));
    }

    #[test]
    fn base256_size_is_parsed() {
        let size = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x14];
        let a = one("big", b'0', &[7u8; 1300], |h| {
            h[124..136].copy_from_slice(&size)
        });
        let mut r = TarReader::new(&a[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().size, 1300);
        assert_eq!(data_of(&mut r), vec![7u8; 1300]);
        assert_eq!(scan(&a[..], &mut |_, _| {}).unwrap().bytes, 1300);
        assert_eq!(parse_size(&[0xff; 12]), None); // negative
        assert_eq!(parse_size(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None); // too big
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let mut a = archive(&[("f", b'0', b"x")]);
        let mut padded = a.clone();
        padded.resize(10240, 0); // GNU tar record padding is fine
        assert!(scan(&padded[..], &mut |_, _| {}).is_ok());
        a.extend_from_slice(b"garbage");
        assert_eq!(scan_err(&a), "data after the end of the archive");
        assert!(TempDir::new("garbage").extract(&a).is_err());
        let second = archive(&[("f", b'0', b"x")]);
        a.truncate(2 * BLOCK + BLOCK); // one zero block, then another member
        a.extend(second);
        assert_eq!(scan_err(&a), "data after the end of the archive");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..200 {
            let mut buf: Vec<u8> = (0..2048).map(|_| next() as u8).collect();
            if i % 2 == 1 {
                // Make the first header plausible so that deeper code runs.
                let mut h: [u8; BLOCK] = buf[..BLOCK].try_into().unwrap();
                h[257..263].copy_from_slice(b"ustar\0");
                h[156] = b"0\x0052xLKg1"[(next() % 9) as usize];
                octal(&mut h[124..136], next() % 3000);
                if i % 4 == 3 {
                    h[..2].copy_from_slice(b"f\0");
                }
                seal(&mut h);
                buf[..BLOCK].copy_from_slice(&h);
            }
            let _ = scan(&buf[..], &mut |_, _| {});
        }
    }
}
