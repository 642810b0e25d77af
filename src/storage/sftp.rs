//! `type: sftp`: a folder on an SSH server.
//!
//! dbkeep speaks SFTP (version 3, the one OpenSSH serves) to the server's
//! `sftp` subsystem through the system `ssh` client, as it does for tunnels:
//! host keys, `~/.ssh/config`, the agent and hardware keys work as they do
//! for the operator's own `ssh`, and no SSH implementation is compiled in.
//!
//! - Uploads stream: writes are pipelined, a bounded number in flight, so
//!   memory stays at that many requests whatever the object's size.
//! - An object is written under a hidden temp name, synced
//!   (`fsync@openssh.com` where offered) and renamed into place on commit.
//! - A conditional create renames a complete temp file to the key: SFTP's
//!   rename refuses an existing target, so one writer wins. Compare-and-swap
//!   runs under a guard folder beside the object, which only one client can
//!   create (`mkdir`), so the object is never missing in between.
//! - Downloads are pipelined and resume at the last byte received after a
//!   lost connection.
//! - Every packet is length-capped and parsed without panics; the server's
//!   words are shown escaped.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use sha2::Digest;

use super::config::SftpConfig;
use super::{ObjectWriter, Storage, Version, check_key};
use crate::util::printable;
use crate::util::process::ChildDuplex;

// Packet types (draft-ietf-secsh-filexfer-02).
const INIT: u8 = 1;
const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const OPENDIR: u8 = 11;
const READDIR: u8 = 12;
const REMOVE: u8 = 13;
const MKDIR: u8 = 14;
const RMDIR: u8 = 15;
const STAT: u8 = 17;
const RENAME: u8 = 18;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const NAME: u8 = 104;
const ATTRS: u8 = 105;
const EXTENDED: u8 = 200;
const EXTENDED_REPLY: u8 = 201;

// Open flags.
const F_READ: u32 = 0x01;
const F_WRITE: u32 = 0x02;
const F_CREAT: u32 = 0x08;
const F_TRUNC: u32 = 0x10;
const F_EXCL: u32 = 0x20;

// Status codes.
const OK: u32 = 0;
const EOF: u32 = 1;
const NO_SUCH_FILE: u32 = 2;

/// The largest packet accepted from the server: a full read or a page of
/// directory entries, with room to spare.
const MAX_PACKET: usize = 1 << 20;
/// Request size without the server's `limits@openssh.com`: what every SFTP
/// server must accept.
const DEFAULT_CHUNK: usize = 32 * 1024;
/// The largest request size dbkeep uses, whatever the server allows.
const MAX_CHUNK: usize = 255 * 1024;
/// Bytes of requests in flight per upload or download.
const IN_FLIGHT_BYTES: usize = 8 << 20;
/// How long a compare-and-swap guard may be held before it counts as left
/// behind by a crashed run.
const GUARD_STALE: Duration = Duration::from_secs(30);
/// Reconnects of one download before it gives up.
const RESUMES: u32 = 5;

// ---------------------------------------------------------------- packets

#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
}

/// Reads the fields of one packet; running short is an error, never a panic.
struct Fields<'a> {
    data: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        anyhow::ensure!(n <= self.data.len(), "a truncated SFTP reply");
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn string(&mut self) -> Result<String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// What a file's attributes say that dbkeep uses.
#[derive(Debug, Clone, Copy, Default)]
struct Attrs {
    permissions: Option<u32>,
    mtime: Option<u32>,
}

impl Attrs {
    fn read(f: &mut Fields<'_>) -> Result<Attrs> {
        let flags = f.u32()?;
        let mut a = Attrs::default();
        if flags & 0x1 != 0 {
            f.u64()?;
        }
        if flags & 0x2 != 0 {
            f.u32()?;
            f.u32()?;
        }
        if flags & 0x4 != 0 {
            a.permissions = Some(f.u32()?);
        }
        if flags & 0x8 != 0 {
            f.u32()?;
            a.mtime = Some(f.u32()?);
        }
        if flags & 0x8000_0000 != 0 {
            for _ in 0..f.u32()? {
                f.bytes()?;
                f.bytes()?;
            }
        }
        Ok(a)
    }

    fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o040000)
    }

    fn is_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o100000)
    }
}

/// A reply to one request.
enum Reply {
    Status(u32, String),
    Handle(Vec<u8>),
    Data(Vec<u8>),
    Name(Vec<(String, Attrs)>),
    Attrs(Attrs),
    Extended(Vec<u8>),
}

impl Reply {
    fn parse(kind: u8, body: &[u8]) -> Result<Reply> {
        let mut f = Fields { data: body };
        Ok(match kind {
            STATUS => {
                let code = f.u32()?;
                let message = if f.data.is_empty() {
                    String::new()
                } else {
                    f.string()?
                };
                Reply::Status(code, message)
            }
            HANDLE => Reply::Handle(f.bytes()?.to_vec()),
            DATA => Reply::Data(f.bytes()?.to_vec()),
            NAME => {
                let n = f.u32()?;
                anyhow::ensure!(
                    n as usize <= body.len() / 12,
                    "an SFTP name list longer than its packet"
                );
                let mut names = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let name = f.string()?;
                    f.bytes()?;
                    names.push((name, Attrs::read(&mut f)?));
                }
                Reply::Name(names)
            }
            ATTRS => Reply::Attrs(Attrs::read(&mut f)?),
            EXTENDED_REPLY => Reply::Extended(f.data.to_vec()),
            other => anyhow::bail!("an SFTP reply of unknown type {other}"),
        })
    }
}

/// A status other than OK from the server.
#[derive(Debug)]
struct Refused {
    code: u32,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.code {
            1 => "end of file",
            2 => "no such file",
            3 => "permission denied",
            4 => "failure",
            5 => "bad message",
            8 => "operation unsupported",
            _ => "error",
        };
        write!(
            f,
            "the SFTP server said {what} ({})",
            printable(&self.message)
        )
    }
}

impl std::error::Error for Refused {}

fn refused(code: u32, message: String) -> anyhow::Error {
    Refused { code, message }.into()
}

fn code_of(e: &anyhow::Error) -> Option<u32> {
    e.downcast_ref::<Refused>().map(|r| r.code)
}

fn read_packet(from: &mut impl Read) -> Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    anyhow::ensure!(
        (1..=MAX_PACKET).contains(&len),
        "an SFTP packet of {len} bytes (at most {MAX_PACKET} are accepted)"
    );
    let mut body = vec![0u8; len];
    from.read_exact(&mut body)?;
    let kind = body[0];
    body.remove(0);
    Ok((kind, body))
}

// ---------------------------------------------------------------- session

type Answer = std::result::Result<Reply, String>;

#[derive(Default)]
struct Waiting {
    replies: HashMap<u32, SyncSender<Answer>>,
    /// Why the session ended, once it has.
    dead: Option<String>,
}

/// One `ssh -s sftp` process and the requests waiting for its replies.
struct Session {
    out: Mutex<ChildStdin>,
    waiting: Arc<Mutex<Waiting>>,
    next: AtomicU32,
    child: Arc<Mutex<ChildDuplex>>,
    extensions: Vec<String>,
    /// Bytes per read or write request.
    chunk: usize,
}

/// A request sent, its reply to come.
struct Pending(Receiver<Answer>);

impl Pending {
    fn wait(self) -> Result<Reply> {
        match self.0.recv() {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(why)) => Err(anyhow::anyhow!(why)),
            Err(_) => Err(anyhow::anyhow!("the SFTP session ended")),
        }
    }

    /// Waits for a plain OK.
    fn ok(self) -> Result<()> {
        match self.wait()? {
            Reply::Status(OK, _) => Ok(()),
            Reply::Status(code, m) => Err(refused(code, m)),
            _ => anyhow::bail!("an unexpected SFTP reply"),
        }
    }
}

impl Session {
    fn connect(config: &SftpConfig) -> Result<Session> {
        let login = config.login();
        let tool = login.command(&["-s"])?.arg("sftp");
        let (child, mut stdin, mut stdout) = tool.spawn_duplex()?;
        let child = Arc::new(Mutex::new(child));
        let hello = (|| -> Result<Vec<String>> {
            let mut init = Buf::default();
            init.u32(5).u8(INIT).u32(3);
            stdin.write_all(&init.0)?;
            let (kind, body) = read_packet(&mut stdout)?;
            anyhow::ensure!(kind == VERSION, "the server did not start SFTP");
            let mut f = Fields { data: &body };
            let version = f.u32()?;
            anyhow::ensure!(
                version >= 3,
                "the server speaks SFTP version {version}, not 3"
            );
            let mut extensions = Vec::new();
            while !f.data.is_empty() {
                extensions.push(f.string()?);
                f.bytes()?;
            }
            Ok(extensions)
        })();
        let extensions = match hello {
            Ok(e) => e,
            Err(e) => {
                let why = child.lock().map(|mut c| c.stopped()).unwrap_or_default();
                anyhow::bail!(
                    "cannot open an SFTP session on {}: {e:#}; {why}",
                    login.describe()
                );
            }
        };
        let waiting = Arc::new(Mutex::new(Waiting::default()));
        {
            let waiting = waiting.clone();
            let child = child.clone();
            std::thread::Builder::new()
                .name("sftp".into())
                .spawn(move || dispatch(stdout, &waiting, &child))?;
        }
        let mut session = Session {
            out: Mutex::new(stdin),
            waiting,
            next: AtomicU32::new(1),
            child,
            extensions,
            chunk: DEFAULT_CHUNK,
        };
        if session.has("limits@openssh.com")
            && let Ok(Reply::Extended(body)) = session
                .send(EXTENDED, |b| {
                    b.str("limits@openssh.com");
                })?
                .wait()
        {
            let mut f = Fields { data: &body };
            let (_packet, read, write) = (f.u64()?, f.u64()?, f.u64()?);
            let allowed = read.min(write) as usize;
            if allowed > 0 {
                session.chunk = allowed.min(MAX_CHUNK);
            }
        }
        Ok(session)
    }

    fn has(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }

    fn alive(&self) -> bool {
        self.waiting
            .lock()
            .map(|w| w.dead.is_none())
            .unwrap_or(false)
    }

    fn in_flight(&self) -> usize {
        (IN_FLIGHT_BYTES / self.chunk).clamp(4, 256)
    }

    fn send(&self, kind: u8, body: impl FnOnce(&mut Buf)) -> Result<Pending> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut packet = Buf::default();
        packet.u32(0).u8(kind).u32(id);
        body(&mut packet);
        let len = (packet.0.len() - 4) as u32;
        packet.0[..4].copy_from_slice(&len.to_be_bytes());
        self.send_raw(id, &packet.0)
    }

    /// Registers request `id` and sends its whole packet.
    fn send_raw(&self, id: u32, packet: &[u8]) -> Result<Pending> {
        let (tx, rx) = sync_channel(1);
        {
            let mut w = self
                .waiting
                .lock()
                .map_err(|_| anyhow::anyhow!("the SFTP session failed"))?;
            if let Some(why) = &w.dead {
                anyhow::bail!("{why}");
            }
            w.replies.insert(id, tx);
        }
        let sent = self
            .out
            .lock()
            .map_err(|_| io::Error::other("the SFTP session failed"))
            .and_then(|mut out| out.write_all(packet));
        if let Err(e) = sent {
            // The session is over: every request waiting on it fails, and
            // the next use opens a new one.
            let why = format!("cannot send to the SFTP server: {e}");
            if let Ok(mut w) = self.waiting.lock() {
                w.dead.get_or_insert_with(|| why.clone());
                for (_, tx) in w.replies.drain() {
                    let _ = tx.send(Err(why.clone()));
                }
            }
            anyhow::bail!("{why}");
        }
        Ok(Pending(rx))
    }

    /// Sends a WRITE built by [`write_packet`] with its data appended: the
    /// data is copied once, into the packet.
    fn send_write(&self, mut packet: Vec<u8>, header: usize) -> Result<Pending> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let len = (packet.len() - 4) as u32;
        let data_len = (packet.len() - header) as u32;
        packet[..4].copy_from_slice(&len.to_be_bytes());
        packet[5..9].copy_from_slice(&id.to_be_bytes());
        packet[header - 4..header].copy_from_slice(&data_len.to_be_bytes());
        self.send_raw(id, &packet)
    }

    fn open(&self, path: &str, flags: u32) -> Result<Vec<u8>> {
        let reply = self
            .send(OPEN, |b| {
                b.str(path).u32(flags);
                if flags & F_CREAT != 0 {
                    b.u32(0x4).u32(0o600);
                } else {
                    b.u32(0);
                }
            })?
            .wait()?;
        match reply {
            Reply::Handle(h) => Ok(h),
            Reply::Status(code, m) => Err(refused(code, m)),
            _ => anyhow::bail!("an unexpected SFTP reply to open"),
        }
    }

    fn close(&self, handle: &[u8]) -> Result<()> {
        self.send(CLOSE, |b| {
            b.bytes(handle);
        })?
        .ok()
    }

    fn write(&self, handle: &[u8], offset: u64, data: &[u8]) -> Result<Pending> {
        self.send(WRITE, |b| {
            b.bytes(handle).u64(offset).bytes(data);
        })
    }

    fn read(&self, handle: &[u8], offset: u64, len: usize) -> Result<Pending> {
        self.send(READ, |b| {
            b.bytes(handle).u64(offset).u32(len as u32);
        })
    }

    fn stat(&self, path: &str) -> Result<Option<Attrs>> {
        match self
            .send(STAT, |b| {
                b.str(path);
            })?
            .wait()?
        {
            Reply::Attrs(a) => Ok(Some(a)),
            Reply::Status(NO_SUCH_FILE, _) => Ok(None),
            Reply::Status(code, m) => Err(refused(code, m)),
            _ => anyhow::bail!("an unexpected SFTP reply to stat"),
        }
    }

    /// Removes a file; false when there was none.
    fn remove(&self, path: &str) -> Result<bool> {
        match self
            .send(REMOVE, |b| {
                b.str(path);
            })?
            .ok()
        {
            Ok(()) => Ok(true),
            Err(e) if code_of(&e) == Some(NO_SUCH_FILE) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Renames `from` to `to`, refused when `to` exists.
    fn rename_new(&self, from: &str, to: &str) -> Result<()> {
        self.send(RENAME, |b| {
            b.str(from).str(to);
        })?
        .ok()
    }

    /// Renames `from` to `to`, replacing `to` (POSIX rename where offered).
    fn rename_over(&self, from: &str, to: &str) -> Result<()> {
        if self.has("posix-rename@openssh.com") {
            return self
                .send(EXTENDED, |b| {
                    b.str("posix-rename@openssh.com").str(from).str(to);
                })?
                .ok();
        }
        let _ = self.remove(to);
        self.rename_new(from, to)
    }

    fn fsync(&self, handle: &[u8]) -> Result<()> {
        if !self.has("fsync@openssh.com") {
            return Ok(());
        }
        self.send(EXTENDED, |b| {
            b.str("fsync@openssh.com").bytes(handle);
        })?
        .ok()
    }

    /// Makes `dir` and its parents.
    fn mkdirs(&self, dir: &str) -> Result<()> {
        if self.stat(dir)?.is_some_and(|a| a.is_dir()) {
            return Ok(());
        }
        let mut path = String::new();
        for (i, part) in dir.split('/').enumerate() {
            if i > 0 || dir.starts_with('/') {
                path.push('/');
            }
            path.push_str(part);
            if part.is_empty() || part == "." {
                continue;
            }
            let made = self
                .send(MKDIR, |b| {
                    b.str(&path).u32(0x4).u32(0o700);
                })?
                .ok();
            if let Err(e) = made
                && !self.stat(&path)?.is_some_and(|a| a.is_dir())
            {
                return Err(e.context(format!("cannot create folder {path}")));
            }
        }
        Ok(())
    }

    /// The entries of `dir`; `None` when it does not exist.
    fn list_dir(&self, dir: &str) -> Result<Option<Vec<(String, Attrs)>>> {
        let handle = match self
            .send(OPENDIR, |b| {
                b.str(dir);
            })?
            .wait()?
        {
            Reply::Handle(h) => h,
            Reply::Status(NO_SUCH_FILE, _) => return Ok(None),
            Reply::Status(code, m) => return Err(refused(code, m)),
            _ => anyhow::bail!("an unexpected SFTP reply to opendir"),
        };
        let mut entries = Vec::new();
        let result = loop {
            match self
                .send(READDIR, |b| {
                    b.bytes(&handle);
                })?
                .wait()?
            {
                Reply::Name(names) => entries.extend(
                    names
                        .into_iter()
                        .filter(|(n, _)| n != "." && n != ".." && !n.contains('/')),
                ),
                Reply::Status(EOF, _) => break Ok(Some(entries)),
                Reply::Status(code, m) => break Err(refused(code, m)),
                _ => break Err(anyhow::anyhow!("an unexpected SFTP reply to readdir")),
            }
        };
        let _ = self.close(&handle);
        result
    }

    /// Why the session ended, with what `ssh` said.
    fn why_dead(&self) -> String {
        let mut why = self
            .waiting
            .lock()
            .ok()
            .and_then(|w| w.dead.clone())
            .unwrap_or_default();
        if let Ok(mut c) = self.child.try_lock()
            && c.has_exited()
        {
            why = format!("{why}; {}", c.stopped());
        }
        why
    }
}

/// Hands each reply to the request waiting for it, until the session ends.
fn dispatch(mut from: ChildStdout, waiting: &Mutex<Waiting>, child: &Mutex<ChildDuplex>) {
    let why = loop {
        let (kind, body) = match read_packet(&mut from) {
            Ok(p) => p,
            Err(e) => break format!("the SFTP session ended: {e:#}"),
        };
        if body.len() < 4 {
            break "an SFTP reply without a request id".to_string();
        }
        let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let answer = Reply::parse(kind, &body[4..]).map_err(|e| format!("{e:#}"));
        let bad = answer.as_ref().err().cloned();
        let tx = waiting.lock().ok().and_then(|mut w| w.replies.remove(&id));
        match tx {
            Some(tx) => {
                let _ = tx.send(answer);
            }
            None => break format!("an SFTP reply to request {id}, which was never sent"),
        }
        if let Some(bad) = bad {
            break bad;
        }
    };
    let why = match child.lock() {
        Ok(mut c) => {
            // ssh has ended, or is about to: its last words say why.
            std::thread::sleep(Duration::from_millis(50));
            if c.has_exited() {
                format!("{why}; {}", c.stopped())
            } else {
                why
            }
        }
        Err(_) => why,
    };
    if let Ok(mut w) = waiting.lock() {
        w.dead = Some(why.clone());
        for (_, tx) in w.replies.drain() {
            let _ = tx.send(Err(why.clone()));
        }
    }
}

/// The start of a WRITE of `handle` at `offset`, with room for `chunk` bytes
/// of data; the lengths and the request id are filled in when it is sent.
/// Returns the packet and the length of its header.
fn write_packet(handle: &[u8], offset: u64, chunk: usize) -> (Vec<u8>, usize) {
    let header = 4 + 1 + 4 + 4 + handle.len() + 8 + 4;
    let mut p = Buf(Vec::with_capacity(header + chunk));
    p.u32(0).u8(WRITE).u32(0).bytes(handle).u64(offset).u32(0);
    (p.0, header)
}

// ---------------------------------------------------------------- storage

/// The connection of one storage, opened when first needed and again after
/// it was lost.
struct Link {
    config: SftpConfig,
    session: Mutex<Option<Arc<Session>>>,
}

impl Link {
    fn session(&self) -> Result<Arc<Session>> {
        let mut slot = self
            .session
            .lock()
            .map_err(|_| anyhow::anyhow!("the SFTP session failed"))?;
        if let Some(s) = slot.as_ref()
            && s.alive()
        {
            return Ok(s.clone());
        }
        let s = Arc::new(Session::connect(&self.config)?);
        *slot = Some(s.clone());
        Ok(s)
    }
}

/// A folder on an SSH server.
pub struct Sftp {
    name: String,
    root: String,
    link: Arc<Link>,
}

fn version_of(data: &[u8]) -> Version {
    Version(hex::encode(sha2::Sha256::digest(data)))
}

fn is_temp(name: &str) -> bool {
    name.starts_with('.') && (name.contains(".tmp-") || name.contains(".cas-"))
}

/// A name no other writer uses: this process, a counter, the time.
fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or((".", path))
}

impl Sftp {
    /// The storage `name`; nothing is connected until it is used.
    pub fn new(name: &str, config: &SftpConfig) -> Result<Sftp> {
        if let Some(file) = &config.password_file {
            let text = std::fs::read(file).map_err(|e| {
                anyhow::anyhow!(
                    "storage `{name}`: cannot read `password_file` {}: {e}",
                    file.display()
                )
            })?;
            if text
                .split(|b| *b == b'\n')
                .next()
                .is_none_or(<[u8]>::is_empty)
            {
                anyhow::bail!(
                    "storage `{name}`: `password_file` {} is empty; its first line is the password",
                    file.display()
                );
            }
        }
        let root = match config.path.trim_end_matches('/') {
            "" if config.path.starts_with('/') => "/".to_string(),
            "" => ".".to_string(),
            p => p.to_string(),
        };
        Ok(Sftp {
            name: name.to_string(),
            root,
            link: Arc::new(Link {
                config: config.clone(),
                session: Mutex::new(None),
            }),
        })
    }

    fn path(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(if self.root == "/" {
            format!("/{key}")
        } else {
            format!("{}/{key}", self.root)
        })
    }

    fn key_of(&self, path: &str) -> String {
        let root = if self.root == "/" { "" } else { &self.root };
        path.strip_prefix(root)
            .unwrap_or(path)
            .trim_start_matches('/')
            .to_string()
    }

    fn session(&self) -> Result<Arc<Session>> {
        self.link.session()
    }

    fn context(&self, what: &str, key: &str) -> String {
        format!("storage `{}`: cannot {what} {key}", self.name)
    }

    /// Writes `data` to a fresh temp file beside `path`, synced and closed.
    fn write_temp(&self, s: &Session, path: &str, data: &[u8]) -> Result<String> {
        let (dir, file) = split(path);
        s.mkdirs(dir)?;
        let temp = format!("{dir}/.{file}.tmp-{}", unique());
        let handle = s.open(&temp, F_WRITE | F_CREAT | F_EXCL)?;
        let written = (|| {
            let mut pending = Vec::new();
            for (i, chunk) in data.chunks(s.chunk).enumerate() {
                pending.push(s.write(&handle, (i * s.chunk) as u64, chunk)?);
            }
            for p in pending {
                p.ok()?;
            }
            s.fsync(&handle)
        })();
        let closed = s.close(&handle);
        if let Err(e) = written.and(closed) {
            let _ = s.remove(&temp);
            return Err(e);
        }
        Ok(temp)
    }

    /// Reads a small file whole; `None` when there is none.
    fn read_small(&self, s: &Session, path: &str) -> Result<Option<Vec<u8>>> {
        let handle = match s.open(path, F_READ) {
            Ok(h) => h,
            Err(e) if code_of(&e) == Some(NO_SUCH_FILE) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut data = Vec::new();
        let result = loop {
            match s.read(&handle, data.len() as u64, s.chunk)?.wait()? {
                Reply::Data(d) if !d.is_empty() => {
                    data.extend_from_slice(&d);
                    if data.len() > crate::util::SMALL_OBJECT_MAX {
                        break Err(anyhow::anyhow!(
                            "{path} is larger than the {} bytes a small object may have",
                            crate::util::SMALL_OBJECT_MAX
                        ));
                    }
                }
                Reply::Status(EOF, _) | Reply::Data(_) => break Ok(Some(data)),
                Reply::Status(code, m) => break Err(refused(code, m)),
                _ => break Err(anyhow::anyhow!("an unexpected SFTP reply to read")),
            }
        };
        let _ = s.close(&handle);
        result
    }

    /// Holds the compare-and-swap guard of `path`: a folder beside it that
    /// only one client can create. One left by a crashed run is removed
    /// after [`GUARD_STALE`].
    fn guard(&self, s: &Arc<Session>, path: &str) -> Result<Guard> {
        let (dir, file) = split(path);
        s.mkdirs(dir)?;
        let guard = format!("{dir}/.{file}.cas-guard");
        let started = std::time::Instant::now();
        loop {
            let made = s
                .send(MKDIR, |b| {
                    b.str(&guard).u32(0x4).u32(0o700);
                })?
                .ok();
            if made.is_ok() {
                return Ok(Guard {
                    session: s.clone(),
                    path: guard,
                });
            }
            let age = s.stat(&guard)?.and_then(|a| a.mtime).map(|m| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                now.saturating_sub(u64::from(m))
            });
            if age.is_some_and(|a| a > GUARD_STALE.as_secs()) {
                tracing::warn!(storage = %self.name, guard, "removing a stale SFTP guard");
                let _ = s
                    .send(RMDIR, |b| {
                        b.str(&guard);
                    })
                    .and_then(Pending::ok);
                continue;
            }
            if started.elapsed() > GUARD_STALE * 2 {
                anyhow::bail!(
                    "{guard} has been held for over {}s",
                    GUARD_STALE.as_secs() * 2
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Removes folders left empty above `path`, up to the root.
    fn remove_empty_dirs(&self, s: &Session, path: &str) {
        let mut dir = split(path).0.to_string();
        while dir.len() > self.root.len() && dir.starts_with(&self.root) {
            let removed = s
                .send(RMDIR, |b| {
                    b.str(&dir);
                })
                .and_then(Pending::ok);
            if removed.is_err() {
                return;
            }
            dir = split(&dir).0.to_string();
        }
    }

    /// Every file under `start` (recursively): keys and attributes.
    fn walk(&self, s: &Session, start: &str) -> Result<Vec<(String, Attrs)>> {
        let mut found = Vec::new();
        let mut stack = vec![start.to_string()];
        while let Some(dir) = stack.pop() {
            let Some(entries) = s.list_dir(&dir)? else {
                continue;
            };
            for (name, attrs) in entries {
                let path = format!("{}/{name}", dir.trim_end_matches('/'));
                if attrs.is_dir() {
                    stack.push(path);
                } else if attrs.is_file() {
                    found.push((path, attrs));
                }
            }
        }
        Ok(found)
    }
}

impl Storage for Sftp {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> String {
        let login = self.link.config.login();
        let path = if self.root.starts_with('/') {
            self.root.clone()
        } else {
            format!("/~/{}", self.root)
        };
        format!("sftp://{}{path}", login.describe())
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>> {
        let path = self.path(key)?;
        let s = self.session()?;
        let (dir, file) = split(&path);
        s.mkdirs(dir)
            .with_context(|| self.context("create the folder of", key))?;
        let temp = format!("{dir}/.{file}.tmp-{}", unique());
        let handle = s
            .open(&temp, F_WRITE | F_CREAT | F_EXCL | F_TRUNC)
            .with_context(|| self.context("create", key))?;
        let (packet, header) = write_packet(&handle, 0, s.chunk);
        Ok(Box::new(SftpWriter {
            packet,
            header,
            session: s,
            handle: Some(handle),
            temp,
            path,
            offset: 0,
            in_flight: VecDeque::new(),
            failed: None,
            storage: self.name.clone(),
        }))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        let path = self.path(key)?;
        let s = self.session()?;
        let handle = s.open(&path, F_READ).map_err(|e| {
            let e = if code_of(&e) == Some(NO_SUCH_FILE) {
                anyhow::anyhow!("{key} does not exist")
            } else {
                e
            };
            e.context(format!("storage `{}`", self.name))
        })?;
        Ok(Box::new(SftpReader {
            link: self.link.clone(),
            session: s,
            handle: Some(handle),
            path,
            key: key.to_string(),
            storage: self.name.clone(),
            delivered: 0,
            next: 0,
            in_flight: VecDeque::new(),
            ready: Vec::new(),
            pos: 0,
            eof: false,
            resumes: 0,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let s = self.session()?;
        if s.stat(&self.root)?.is_none_or(|a| !a.is_dir()) {
            anyhow::bail!(
                "storage `{}`: folder {} does not exist on {}; check `path` or run a backup first",
                self.name,
                self.root,
                self.link.config.login().describe()
            );
        }
        let prefix = prefix.trim_matches('/');
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)?
        };
        let mut keys: Vec<String> = self
            .walk(&s, &start)
            .with_context(|| self.context("list", prefix))?
            .into_iter()
            .filter(|(p, _)| !is_temp(split(p).1))
            .map(|(p, _)| self.key_of(&p))
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let s = self.session()?;
        s.remove(&path)
            .with_context(|| self.context("delete", key))?;
        self.remove_empty_dirs(&s, &path);
        Ok(())
    }

    fn create_if_absent(&self, key: &str, data: &[u8]) -> Result<Option<Version>> {
        let path = self.path(key)?;
        let s = self.session()?;
        let temp = self
            .write_temp(&s, &path, data)
            .with_context(|| self.context("write", key))?;
        // A refused rename is an object already there, unless it is gone
        // when looked at: then its holder has just removed it, so try again.
        let mut tries = 0;
        let result = loop {
            tries += 1;
            match s.rename_new(&temp, &path) {
                Ok(()) => break Ok(Some(version_of(data))),
                Err(_) if s.stat(&path)?.is_some() => break Ok(None),
                Err(e) if tries >= 5 => break Err(e.context(self.context("create", key))),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if !matches!(result, Ok(Some(_))) {
            let _ = s.remove(&temp);
        }
        result
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>> {
        let path = self.path(key)?;
        let s = self.session()?;
        Ok(self
            .read_small(&s, &path)
            .with_context(|| self.context("read", key))?
            .map(|d| {
                let v = version_of(&d);
                (d, v)
            }))
    }

    fn replace_if(&self, key: &str, data: &[u8], version: &Version) -> Result<Option<Version>> {
        let path = self.path(key)?;
        let s = self.session()?;
        let _guard = self.guard(&s, &path)?;
        match self.read_small(&s, &path)? {
            Some(now) if version_of(&now) == *version => {}
            _ => return Ok(None),
        }
        let temp = self.write_temp(&s, &path, data)?;
        s.rename_over(&temp, &path)
            .with_context(|| self.context("replace", key))?;
        Ok(Some(version_of(data)))
    }

    fn delete_if(&self, key: &str, version: &Version) -> Result<bool> {
        let path = self.path(key)?;
        let s = self.session()?;
        let guard = self.guard(&s, &path)?;
        match self.read_small(&s, &path)? {
            Some(now) if version_of(&now) == *version => {}
            _ => return Ok(false),
        }
        s.remove(&path)
            .with_context(|| self.context("delete", key))?;
        drop(guard);
        self.remove_empty_dirs(&s, &path);
        Ok(true)
    }

    fn leftovers(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>> {
        let s = self.session()?;
        let start = match prefix.trim_matches('/') {
            "" => self.root.clone(),
            p => self.path(p)?,
        };
        let mut found: Vec<(String, SystemTime)> = self
            .walk(&s, &start)?
            .into_iter()
            .filter(|(p, _)| is_temp(split(p).1))
            .filter_map(|(p, a)| {
                let when = UNIX_EPOCH + Duration::from_secs(u64::from(a.mtime?));
                Some((self.key_of(&p), when))
            })
            .collect();
        found.sort();
        Ok(found)
    }
}

/// The compare-and-swap guard of one object, removed when dropped.
struct Guard {
    session: Arc<Session>,
    path: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self
            .session
            .send(RMDIR, |b| {
                b.str(&self.path);
            })
            .and_then(Pending::ok);
    }
}

// ---------------------------------------------------------------- streams

/// An upload: pipelined writes to a temp file, renamed into place on commit.
struct SftpWriter {
    session: Arc<Session>,
    handle: Option<Vec<u8>>,
    temp: String,
    path: String,
    offset: u64,
    /// The WRITE being filled, and the length of its header.
    packet: Vec<u8>,
    header: usize,
    in_flight: VecDeque<Pending>,
    failed: Option<String>,
    storage: String,
}

impl SftpWriter {
    fn buffered(&self) -> usize {
        self.packet.len() - self.header
    }

    fn fail(&mut self, e: anyhow::Error) -> io::Error {
        let msg = format!(
            "storage `{}`: cannot write {}: {e:#}",
            self.storage, self.path
        );
        self.failed = Some(msg.clone());
        io::Error::other(msg)
    }

    /// Sends the buffered bytes, waiting for the oldest write when enough
    /// are in flight.
    fn send_buf(&mut self) -> io::Result<()> {
        let n = self.buffered();
        if n == 0 {
            return Ok(());
        }
        let handle = self.handle.clone().unwrap_or_default();
        let (next, header) = write_packet(&handle, self.offset + n as u64, self.session.chunk);
        let full = std::mem::replace(&mut self.packet, next);
        match self.session.send_write(full, self.header) {
            Ok(p) => self.in_flight.push_back(p),
            Err(e) => return Err(self.fail(e)),
        }
        self.header = header;
        self.offset += n as u64;
        while self.in_flight.len() >= self.session.in_flight() {
            let oldest = self.in_flight.pop_front().map(Pending::ok);
            if let Some(Err(e)) = oldest {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(f) = &self.failed {
            anyhow::bail!("{f}");
        }
        self.send_buf()?;
        while let Some(p) = self.in_flight.pop_front() {
            p.ok()?;
        }
        let handle = self.handle.take().unwrap_or_default();
        self.session.fsync(&handle)?;
        self.session.close(&handle)?;
        self.session.rename_over(&self.temp, &self.path)
    }

    /// Drops what was written: waits out the writes, closes, removes the temp file.
    fn discard(&mut self) {
        for p in self.in_flight.drain(..) {
            let _ = p.wait();
        }
        if let Some(h) = self.handle.take() {
            let _ = self.session.close(&h);
        }
        let _ = self.session.remove(&self.temp);
    }
}

impl Write for SftpWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::other(f.clone()));
        }
        let room = self.session.chunk - self.buffered();
        let n = room.min(data.len());
        self.packet.extend_from_slice(&data[..n]);
        if self.buffered() == self.session.chunk {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ObjectWriter for SftpWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        match self.finish() {
            Ok(()) => {
                self.temp.clear();
                Ok(())
            }
            Err(e) => {
                self.discard();
                self.temp.clear();
                Err(e.context(format!(
                    "storage `{}`: cannot store {}",
                    self.storage, self.path
                )))
            }
        }
    }

    fn abort(mut self: Box<Self>) {
        self.discard();
        self.temp.clear();
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if !self.temp.is_empty() {
            self.discard();
        }
    }
}

/// A download: pipelined reads, resumed on a new connection after a cut.
struct SftpReader {
    link: Arc<Link>,
    session: Arc<Session>,
    handle: Option<Vec<u8>>,
    path: String,
    key: String,
    storage: String,
    /// Bytes handed to the caller so far (and the offset of `ready[pos]`).
    delivered: u64,
    /// The offset of the next read request.
    next: u64,
    in_flight: VecDeque<(u64, usize, Pending)>,
    ready: Vec<u8>,
    pos: usize,
    eof: bool,
    resumes: u32,
}

impl SftpReader {
    fn request_more(&mut self) -> Result<()> {
        let handle = self.handle.as_deref().unwrap_or_default();
        while !self.eof && self.in_flight.len() < self.session.in_flight() {
            let len = self.session.chunk;
            let p = self.session.read(handle, self.next, len)?;
            self.in_flight.push_back((self.next, len, p));
            self.next += len as u64;
        }
        Ok(())
    }

    /// Waits out the requests in flight and forgets their replies.
    fn drop_in_flight(&mut self) {
        for (_, _, p) in self.in_flight.drain(..) {
            let _ = p.wait();
        }
    }

    /// The next bytes in order; empty at the end.
    fn next_block(&mut self) -> Result<Vec<u8>> {
        self.request_more()?;
        let Some((offset, len, p)) = self.in_flight.pop_front() else {
            return Ok(Vec::new());
        };
        match p.wait()? {
            Reply::Data(d) if offset == self.delivered && !d.is_empty() => {
                if d.len() < len {
                    // A short read: the requests after it start too far on.
                    self.drop_in_flight();
                    self.next = offset + d.len() as u64;
                }
                Ok(d)
            }
            Reply::Status(EOF, _) => {
                self.eof = true;
                self.drop_in_flight();
                Ok(Vec::new())
            }
            Reply::Status(code, m) => Err(refused(code, m)),
            _ => anyhow::bail!("an unexpected SFTP reply to read"),
        }
    }

    /// Opens the file again on a new connection and carries on at `delivered`.
    fn resume(&mut self, why: &anyhow::Error) -> Result<()> {
        self.resumes += 1;
        tracing::warn!(storage = %self.storage, key = %self.key, at = self.delivered, error = %format!("{why:#}"), "SFTP download interrupted; resuming");
        std::thread::sleep(Duration::from_millis(250 * u64::from(self.resumes)));
        self.in_flight.clear();
        self.session = self.link.session()?;
        self.handle = Some(self.session.open(&self.path, F_READ)?);
        self.next = self.delivered;
        Ok(())
    }
}

impl Read for SftpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.ready.len() {
            if self.eof {
                return Ok(0);
            }
            match self.next_block() {
                Ok(block) if block.is_empty() => return Ok(0),
                Ok(block) => {
                    self.ready = block;
                    self.pos = 0;
                }
                Err(e) if !self.session.alive() && self.resumes < RESUMES => {
                    if let Err(again) = self.resume(&e) {
                        return Err(io::Error::other(format!(
                            "storage `{}`: cannot read {}: {again:#}",
                            self.storage, self.key
                        )));
                    }
                }
                Err(e) => {
                    let why = if self.session.alive() {
                        format!("{e:#}")
                    } else {
                        self.session.why_dead()
                    };
                    return Err(io::Error::other(format!(
                        "storage `{}`: cannot read {}: {why}",
                        self.storage, self.key
                    )));
                }
            }
        }
        let n = (self.ready.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.ready[self.pos..self.pos + n]);
        self.pos += n;
        self.delivered += n as u64;
        Ok(n)
    }
}

impl Drop for SftpReader {
    fn drop(&mut self) {
        if self.session.alive() {
            for (_, _, p) in self.in_flight.drain(..) {
                let _ = p.wait();
            }
            if let Some(h) = self.handle.take() {
                let _ = self.session.close(&h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_that_run_short_or_lie_are_errors_not_panics() {
        // A status with a message.
        let mut ok = Buf::default();
        ok.u32(2).str("no such file");
        assert!(
            matches!(Reply::parse(STATUS, &ok.0), Ok(Reply::Status(2, m)) if m == "no such file")
        );
        // Truncated in every place.
        let mut name = Buf::default();
        name.u32(1).str("a").str("long").u32(0x4).u32(0o100600);
        for cut in 0..name.0.len() {
            assert!(Reply::parse(NAME, &name.0[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Reply::parse(NAME, &name.0).is_ok());
        // A count the packet cannot hold.
        let mut lie = Buf::default();
        lie.u32(u32::MAX);
        assert!(Reply::parse(NAME, &lie.0).is_err());
        // A data length past the end.
        let mut data = Buf::default();
        data.u32(1000).0.extend_from_slice(b"abc");
        assert!(Reply::parse(DATA, &data.0).is_err());
        assert!(Reply::parse(99, b"").is_err());
    }

    #[test]
    fn packets_are_capped() {
        let mut huge = Vec::new();
        huge.extend_from_slice(&((MAX_PACKET + 1) as u32).to_be_bytes());
        assert!(read_packet(&mut huge.as_slice()).is_err());
        let zero = 0u32.to_be_bytes();
        assert!(read_packet(&mut zero.as_slice()).is_err());
        let mut one = Vec::new();
        one.extend_from_slice(&3u32.to_be_bytes());
        one.extend_from_slice(&[STATUS, 0, 0]);
        assert_eq!(
            read_packet(&mut one.as_slice()).unwrap(),
            (STATUS, vec![0, 0])
        );
    }

    #[test]
    fn temp_and_aside_names_are_hidden() {
        assert!(is_temp(".manifest.json.tmp-1-2-ab"));
        assert!(is_temp(".lock.json.cas-1-2-ab"));
        assert!(!is_temp("manifest.json"));
        assert!(!is_temp(".profile"));
    }
}
