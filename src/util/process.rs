//! Child processes: dump tools streamed from, restore tools streamed to.
//!
//! argv is always a list, never a shell string, and never holds a secret.
//! stderr is drained on its own thread (a full stderr pipe would stall the
//! child) and its tail is kept for the error message. A child that is not
//! finished explicitly is killed on drop, and SIGINT/SIGTERM stop it too.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::util::signal;

/// How many bytes of a tool's stderr are kept for its error message.
const STDERR_TAIL: usize = 4096;

/// A tool that failed: its name, how it ended, and the end of its stderr.
#[derive(Debug, thiserror::Error)]
#[error("`{tool}` {status}{}", stderr_suffix(.stderr))]
pub struct ToolFailed {
    /// The tool's name, e.g. `pg_dump`.
    pub tool: String,
    /// How it ended, e.g. "exited with code 1".
    pub status: String,
    /// The tail of its stderr.
    pub stderr: String,
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Describes an exit status in words.
pub fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with code {code}")
    } else if let Some(sig) = status.signal() {
        format!(
            "was killed by signal {sig}{}",
            if sig == 9 {
                " (SIGKILL)"
            } else if sig == 15 {
                " (SIGTERM)"
            } else {
                ""
            }
        )
    } else {
        "ended abnormally".to_string()
    }
}

/// Finds a tool: in `bin_dir` when given, else on PATH; the first name found wins.
pub fn find_tool(names: &[&str], bin_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = bin_dir {
        for name in names {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(p);
            }
        }
        anyhow::bail!(
            "`{}` not found in `bin_dir` {}; install the client tools or fix `bin_dir`",
            names.join("` or `"),
            dir.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if is_executable(&p) {
                return Ok(p);
            }
        }
    }
    anyhow::bail!(
        "`{}` not found on PATH; install the database's client tools (for example the Debian package {}) or set `bin_dir`",
        names.join("` or `"),
        package_hint(names[0])
    )
}

fn package_hint(tool: &str) -> &'static str {
    match tool {
        "pg_dump" | "pg_restore" | "psql" | "pg_dumpall" => "`postgresql-client`",
        "mariadb-dump" | "mariadb" | "mysqldump" | "mysql" => "`mariadb-client`",
        _ => "that ships it",
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Variables of dbkeep's environment that no tool inherits.
pub fn withheld(name: &str) -> bool {
    const PREFIXES: [&str; 5] = ["DBKEEP_", "AWS_", "AZURE_", "GOOGLE_", "GCS_"];
    const NAMES: [&str; 12] = [
        "PGPASSWORD",
        "MYSQL_PWD",
        "REDISCLI_AUTH",
        "STORAGE_EMULATOR_HOST",
        "MONGODB_URI",
        "GCE_METADATA_HOST",
        // Azure's managed identity endpoints and their secrets.
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// A command under construction.
pub struct Tool {
    cmd: Command,
    name: String,
    /// Read ends of secret pipes, open until the child has its copies.
    secret_fds: Vec<std::os::fd::OwnedFd>,
}

impl Tool {
    /// A command running `program`, named after its file name in messages.
    pub fn new(program: &Path) -> Tool {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null());
        // A tool gets no secret it does not need: none of dbkeep's own
        // variables, no cloud credentials, no other engine's password. A
        // connector passes its own secret with `env`, or `inherit`s one.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(withheld) {
                cmd.env_remove(k);
            }
        }
        // Its own process group: a terminal's Ctrl-C reaches dbkeep alone,
        // which then stops the tool and everything it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Tool {
            cmd,
            name,
            secret_fds: Vec::new(),
        }
    }

    /// Hands `content` (a password file, a connection string) to the child
    /// through an unnamed pipe, and returns the `/dev/fd/N` path it reads it
    /// at. Nothing is written to disk, so nothing is left behind by a kill.
    pub fn secret_fd(mut self, content: &[u8]) -> Result<(Tool, String)> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        // A pipe buffer holds at least 4 KiB; the content is written before
        // the child starts, so it must fit.
        anyhow::ensure!(
            content.len() <= 4096,
            "a secret for `{}` is too long to pass through a pipe",
            self.name
        );
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two descriptors, which are owned right after.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("cannot create a pipe for a secret");
        }
        // SAFETY: both descriptors were just created and belong to nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        std::fs::File::from(write)
            .write_all(content)
            .context("cannot write a secret to its pipe")?;
        let raw = read.as_raw_fd();
        // SAFETY: only async-signal-safe fcntl runs between fork and exec; it
        // lets this one descriptor (close-on-exec everywhere else) reach the tool.
        unsafe {
            self.cmd.pre_exec(move || {
                if libc::fcntl(raw, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.secret_fds.push(read);
        Ok((self, format!("/dev/fd/{raw}")))
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Tool {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Tool {
        self.cmd.args(args);
        self
    }

    /// Passes `key` from dbkeep's environment although it is withheld by
    /// default (a user's own `PGPASSWORD` for pg_dump).
    pub fn inherit(mut self, key: &str) -> Tool {
        if let Some(v) = std::env::var_os(key) {
            self.cmd.env(key, v);
        }
        self
    }

    /// Sets an environment variable (the way secrets reach a child).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Tool {
        self.cmd.env(key, value);
        self
    }

    /// Runs to the end and returns stdout; a non-zero exit is a [`ToolFailed`].
    pub fn output(mut self) -> Result<String> {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.spawn()?;
        let out = child
            .wait_with_output()
            .with_context(|| format!("cannot wait for `{}`", self.name))?;
        if !out.status.success() {
            return Err(ToolFailed {
                tool: self.name,
                status: describe_status(out.status),
                stderr: tail(&String::from_utf8_lossy(&out.stderr)),
            }
            .into());
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("`{}` printed invalid UTF-8", self.name))
    }

    /// Runs to the end with stdout and stderr captured; returns both, any status.
    pub fn run_capture(mut self) -> Result<(ExitStatus, String, String)> {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.spawn()?;
        let out = child
            .wait_with_output()
            .with_context(|| format!("cannot wait for `{}`", self.name))?;
        Ok((
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Starts the tool with stdout as a stream to read.
    pub fn spawn_reader(mut self) -> Result<ChildReader> {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.spawn()?;
        let stdout = child.stdout.take().context("child has no stdout")?;
        grow_pipe(&stdout);
        let stderr = child.stderr.take().map(|e| drain(e, &self.name));
        signal::track(child.id());
        Ok(ChildReader {
            child,
            stdout: Some(stdout),
            stderr,
            name: self.name,
            finished: false,
        })
    }

    /// Starts the tool with stdin as a stream to write.
    pub fn spawn_writer(mut self) -> Result<ChildWriter> {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.spawn()?;
        let stdin = child.stdin.take().context("child has no stdin")?;
        let stdout = child.stdout.take().map(|o| drain(o, &self.name));
        let stderr = child.stderr.take().map(|e| drain(e, &self.name));
        signal::track(child.id());
        Ok(ChildWriter {
            child,
            stdin: Some(stdin),
            stdout,
            stderr,
            name: self.name,
            finished: false,
        })
    }

    /// Starts the tool to be spoken to over its stdin and stdout (a
    /// protocol on a pipe, like an SSH subsystem).
    pub fn spawn_duplex(mut self) -> Result<(ChildDuplex, ChildStdin, ChildStdout)> {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.spawn()?;
        let stdin = child.stdin.take().context("child has no stdin")?;
        let stdout = child.stdout.take().context("child has no stdout")?;
        grow_pipe(&stdin);
        grow_pipe(&stdout);
        let stderr = child.stderr.take().map(|e| drain(e, &self.name));
        signal::track(child.id());
        Ok((
            ChildDuplex {
                child,
                stderr,
                name: self.name,
            },
            stdin,
            stdout,
        ))
    }

    fn spawn(&mut self) -> Result<Child> {
        tracing::debug!(tool = %self.name, args = ?self.cmd.get_args().collect::<Vec<_>>(), "starting");
        self.cmd.spawn().with_context(|| {
            format!(
                "cannot start `{}`",
                self.cmd.get_program().to_string_lossy()
            )
        })
    }
}

/// Asks for a 1 MiB pipe buffer (Linux), so the tool and dbkeep wake each
/// other less often. A refusal only costs speed.
fn grow_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: fcntl on a valid, owned descriptor; F_SETPIPE_SZ takes an int.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// Keeps the last [`STDERR_TAIL`] bytes, cut at a line start.
fn tail(text: &str) -> String {
    let text = text.trim();
    if text.len() <= STDERR_TAIL {
        return text.to_string();
    }
    let mut start = text.len() - STDERR_TAIL;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) => format!("...{}", &cut[i..]),
        None => format!("...{cut}"),
    }
}

/// Reads a child's pipe to its end on a thread, logging lines at debug level;
/// the thread returns the tail.
fn drain<R: Read + Send + 'static>(pipe: R, tool: &str) -> JoinHandle<String> {
    let tool = tool.to_string();
    std::thread::spawn(move || {
        let mut kept = String::new();
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    tracing::debug!(tool = %tool, line = %crate::util::secret::redact(text.trim_end()), "tool output");
                    kept.push_str(&text);
                    if kept.len() > 2 * STDERR_TAIL {
                        kept = tail(&kept);
                    }
                }
            }
        }
        tail(&kept)
    })
}

fn join_tail(handle: Option<JoinHandle<String>>) -> String {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// A running dump tool whose stdout is read.
pub struct ChildReader {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
    name: String,
    finished: bool,
}

impl ChildReader {
    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tool's process id (also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the tool; any ending but exit 0 is a [`ToolFailed`] with its
    /// stderr. On success returns the tail of its stderr.
    pub fn finish(mut self) -> Result<String> {
        self.stdout.take();
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for `{}`", self.name));
        self.finished = true;
        signal::untrack(self.child.id());
        let stderr = join_tail(self.stderr.take());
        let status = status?;
        if status.success() {
            return Ok(stderr);
        }
        Err(ToolFailed {
            tool: self.name.clone(),
            status: describe_status(status),
            stderr,
        }
        .into())
    }
}

impl ChildReader {
    /// Whether the tool has already ended (without waiting for it).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.stdout {
            Some(out) => out.read(buf),
            None => Ok(0),
        }
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        if !self.finished {
            signal::kill_group(self.child.id(), libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
            signal::untrack(self.child.id());
        }
    }
}

/// A running tool spoken to over its pipes; dropping it stops it.
pub struct ChildDuplex {
    child: Child,
    stderr: Option<JoinHandle<String>>,
    name: String,
}

impl ChildDuplex {
    /// Whether the tool has already ended (without waiting for it).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the tool; any ending but exit 0 is a [`ToolFailed`] with
    /// its stderr.
    pub fn finish(&mut self) -> Result<()> {
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for `{}`", self.name))?;
        let stderr = join_tail(self.stderr.take());
        if status.success() {
            return Ok(());
        }
        Err(ToolFailed {
            tool: self.name.clone(),
            status: describe_status(status),
            stderr,
        }
        .into())
    }

    /// The tool's stderr tail, once it has ended (waits for it to end).
    pub fn stopped(&mut self) -> String {
        let status = self.child.wait().map(describe_status).unwrap_or_default();
        let tail = join_tail(self.stderr.take());
        format!("`{}` {status}: {}", self.name, tail.trim())
    }
}

impl Drop for ChildDuplex {
    fn drop(&mut self) {
        signal::kill_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        signal::untrack(self.child.id());
    }
}

/// A running restore tool whose stdin is written.
pub struct ChildWriter {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    name: String,
    finished: bool,
}

impl ChildWriter {
    /// Closes stdin and waits; any ending but exit 0 is a [`ToolFailed`].
    /// Returns the tail of the tool's stderr (warnings) on success.
    pub fn finish(mut self) -> Result<String> {
        self.stdin.take();
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for `{}`", self.name));
        self.finished = true;
        signal::untrack(self.child.id());
        let _ = join_tail(self.stdout.take());
        let stderr = join_tail(self.stderr.take());
        let status = status?;
        if status.success() {
            return Ok(stderr);
        }
        Err(ToolFailed {
            tool: self.name.clone(),
            status: describe_status(status),
            stderr,
        }
        .into())
    }

    /// Kills the tool without letting it finish (so a transaction rolls back).
    pub fn kill(mut self) {
        self.stdin.take();
        signal::kill_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finished = true;
        signal::untrack(self.child.id());
    }
}

impl Write for ChildWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stdin {
            Some(i) => i.write(buf),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stdin {
            Some(i) => i.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for ChildWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.stdin.take();
            signal::kill_group(self.child.id(), libc::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
            signal::untrack(self.child.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_carries_status_and_stderr() {
        let sh = find_tool(&["sh"], None).unwrap();
        let mut r = Tool::new(&sh)
            .arg("-c")
            .arg("echo partial; echo 'boom: disk full' >&2; exit 3")
            .spawn_reader()
            .unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "partial\n");
        let err = r.finish().unwrap_err().to_string();
        assert_eq!(err, "`sh` exited with code 3: boom: disk full");
    }

    #[test]
    fn killed_child_is_reported_with_its_signal() {
        let sh = find_tool(&["sh"], None).unwrap();
        let r = Tool::new(&sh)
            .arg("-c")
            .arg("kill -9 $$")
            .spawn_reader()
            .unwrap();
        let err = r.finish().unwrap_err().to_string();
        assert!(err.contains("killed by signal 9"), "{err}");
    }

    #[test]
    fn tail_keeps_the_end() {
        let long = format!("{}\nlast line", "x\n".repeat(5000));
        let t = tail(&long);
        assert!(t.len() <= STDERR_TAIL + 4 && t.ends_with("last line"));
    }
}
