//! Redis: a logical export over the protocol, restored with `RESTORE`.
//!
//! Backup walks each db with `SCAN`, and for every key asks its expiry time
//! (`PEXPIRETIME`, or `PTTL` plus the clock before Redis 7) and `DUMP`,
//! pipelined a batch at a time. It needs no access to the server's files and
//! no `redis-cli`. Why this and not the RDB snapshot (`redis-cli --rdb`): an
//! RDB file can only be restored by replacing the server's `dump.rdb` and
//! restarting it, which needs the server's filesystem and takes every db at
//! once. `DUMP` payloads restore into a live server with `RESTORE`, into any
//! db number, keeping every type (strings, hashes, lists, sets, sorted sets,
//! streams, modules' types) exactly. The trade-off: a SCAN is not one
//! point-in-time snapshot. A key changed while the walk runs is saved as it
//! was when its turn came, and a key may be seen twice (restore replaces it).
//! Restore needs a Redis of the same or a newer version than the backup's.
//!
//! Expiry times are kept as absolute times and restored with `RESTORE ...
//! ABSTTL`, as Redis itself does when it loads an RDB file: a key expires when
//! it would have, and a key whose time passed between backup and restore is
//! not brought back (the restore logs how many).
//!
//! The stored stream (before compression), big-endian:
//!
//! ```text
//! "DBKEEP-REDIS\n" version:u8=1 db:u32
//! ( 'K' key_len:u32 key expire_at_unix_ms:i64 (-1: none) payload_len:u32 payload )*
//! 'E' key_count:u64
//! ```
//!
//! The end record is the stream's end marker: a stream without it, or with a
//! count that does not match, is incomplete.
//!
//! The password is sent with `AUTH` over the connection (from the config, or
//! `REDISCLI_AUTH` when the config has none), never on a command line.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DumpCheck;
use super::DumpFormat;
use super::Engine;
use super::resp::{Reply, read_reply};
use super::source::{Databases, TlsConfig, TlsMode};
use super::{
    Connector, DatabaseSize, DumpItem, DumpSource, RestoreOptions, RestoreSink, ServerInfo, Survey,
    TargetState, TlsInUse,
};
use crate::util::problem::Problems;
use crate::util::secret::Secret;
use crate::util::signal;

super::source::server_source! {
    /// `type: redis`: a server spoken to over its protocol (no tools needed).
    pub struct RedisConfig {
    }
}

impl RedisConfig {
    pub(super) fn validate(&mut self, at: &str, problems: &mut Problems) {
        let single = self.database.is_some();
        self.check_shared(at, Engine::Redis, true, problems);
        if let Some(Databases::List(list)) = &self.databases {
            for (i, db) in list.iter().enumerate() {
                if db.parse::<u32>().is_err() && !problems.has(&db_path(at, single, i)) {
                    problems.add(
                        db_path(at, single, i),
                        format!("redis databases are numbers, not `{db}`"),
                    );
                }
            }
        }
    }
}

fn db_path(at: &str, single: bool, i: usize) -> String {
    if single {
        format!("{at}.database")
    } else {
        format!("{at}.databases[{i}]")
    }
}

const MAGIC: &[u8; 13] = b"DBKEEP-REDIS\n";
const VERSION: u8 = 1;
const HEADER_LEN: usize = MAGIC.len() + 1 + 4;
/// Keys asked for per SCAN round trip.
const SCAN_COUNT: &str = "1000";
/// RESTOREs sent before their replies are read.
const RESTORE_BATCH: usize = 1000;
/// Bytes of RESTORE commands sent before their replies are read.
const RESTORE_BATCH_BYTES: usize = 16 << 20;
/// No key or payload in a valid stream is larger (Redis caps values at 512 MiB).
const MAX_FIELD: usize = 1 << 30;

/// A Redis server.
pub struct Redis {
    source: RedisConfig,
    password: Option<Secret>,
    version: Option<String>,
}

/// Milliseconds since the Unix epoch, by this machine's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Redis {
    /// A connector for `source`.
    pub fn new(source: RedisConfig) -> Result<Redis> {
        let password = match source.password()? {
            Some(p) => Some(p),
            None => std::env::var("REDISCLI_AUTH")
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
        };
        Ok(Redis {
            source,
            password,
            version: None,
        })
    }

    fn addr(&self) -> String {
        format!("{}:{}", self.host(), self.source.port.unwrap_or(6379))
    }

    fn host(&self) -> String {
        self.source
            .host
            .clone()
            .unwrap_or_else(|| "127.0.0.1".to_string())
    }

    /// Opens an authenticated connection.
    fn connect(&self) -> Result<Conn> {
        let addr = self.addr();
        let port = self.source.port.unwrap_or(6379);
        let host = self.host();
        let addrs: Vec<_> = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve redis host `{host}`"))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, Duration::from_secs(10)) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = match (tcp, last) {
            (Some(t), _) => t,
            (None, Some(e)) => {
                return Err(e).with_context(|| format!("cannot connect to redis at {addr}"));
            }
            (None, None) => anyhow::bail!("redis host `{host}` resolves to no address"),
        };
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(300)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(300)))?;
        let stream: Box<dyn Stream> = match &self.source.tls {
            Some(t) if t.mode != TlsMode::Disable => {
                Box::new(tls(tcp, &host, t).with_context(|| format!("TLS to redis at {addr}"))?)
            }
            _ => Box::new(tcp),
        };
        let mut conn = Conn {
            io: BufReader::with_capacity(1 << 16, stream),
            out: Vec::new(),
            addr: addr.clone(),
        };
        if let Some(pw) = &self.password {
            let reply = match &self.source.user {
                Some(user) => conn.call(&[b"AUTH", user.as_bytes(), pw.expose().as_bytes()]),
                None => conn.call(&[b"AUTH", pw.expose().as_bytes()]),
            };
            if let Err(e) = reply {
                let who = self
                    .source
                    .user
                    .as_deref()
                    .map(|u| format!(" for user `{u}`"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "redis at {addr} rejected the password{who}: {e:#}; check `password`/`password_file` or REDISCLI_AUTH"
                );
            }
        }
        if let Err(e) = conn.call(&[b"PING"]) {
            let text = format!("{e:#}");
            if text.contains("NOAUTH") {
                anyhow::bail!(
                    "redis at {addr} needs a password: set `password` or `password_file`, or REDISCLI_AUTH"
                );
            }
            return Err(e);
        }
        Ok(conn)
    }

    fn select(conn: &mut Conn, db: &str) -> Result<u32> {
        let n: u32 = db
            .parse()
            .map_err(|_| anyhow::anyhow!("redis databases are numbers, not `{db}`"))?;
        conn.call(&[b"SELECT", n.to_string().as_bytes()])
            .with_context(|| format!("cannot select db {n} on redis at {}", conn.addr))?;
        Ok(n)
    }
}

/// What a TLS or plain connection is.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn tls(
    tcp: TcpStream,
    host: &str,
    settings: &TlsConfig,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read `tls.ca_file` {}", path.display()))?
            {
                let cert = cert.with_context(|| {
                    format!(
                        "`tls.ca_file` {} holds an unreadable certificate",
                        path.display()
                    )
                })?;
                roots
                    .add(cert)
                    .context("cannot use a certificate of `tls.ca_file`")?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match settings.mode {
        TlsMode::VerifyFull => builder.with_root_certificates(roots),
        mode => {
            let strict = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .context("cannot set up TLS certificate checks")?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    strict,
                    chain: mode == TlsMode::VerifyCa,
                    provider,
                }))
        }
    };
    let config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("cannot read `tls.cert_file` {}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read `tls.key_file` {}", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .context("the client certificate and key do not belong together")?
        }
        _ => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("`{host}` is not a valid TLS server name"))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut tcp = tcp;
    // Handshake now, so certificate problems are reported as TLS problems.
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).context("TLS handshake failed")?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// The certificate checks of `verify-ca` (the chain, not the name) and
/// `require` (none); handshake signatures are always checked.
#[derive(Debug)]
struct Lenient {
    strict: Arc<rustls::client::WebPkiServerVerifier>,
    chain: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        if !self.chain {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        match self.strict.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An error reply from the server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ServerError(String);

/// One connection: commands are queued, sent together, and read back in order.
struct Conn {
    io: BufReader<Box<dyn Stream>>,
    out: Vec<u8>,
    addr: String,
}

impl Conn {
    fn queue(&mut self, args: &[&[u8]]) {
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.out
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    fn send(&mut self) -> Result<()> {
        let out = std::mem::take(&mut self.out);
        let io = self.io.get_mut();
        io.write_all(&out)
            .and_then(|()| io.flush())
            .with_context(|| format!("cannot write to redis at {}", self.addr))?;
        self.out = out;
        self.out.clear();
        Ok(())
    }

    fn read(&mut self) -> Result<Reply> {
        read_reply(&mut self.io).with_context(|| format!("cannot read from redis at {}", self.addr))
    }

    /// Sends one command and returns its reply; an error reply is an Err.
    fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        self.queue(args);
        self.send()?;
        match self.read()? {
            Reply::Error(e) => Err(ServerError(e).into()),
            r => Ok(r),
        }
    }
}

fn bulk_text(reply: Reply) -> String {
    match reply {
        Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Reply::Status(s) => s,
        _ => String::new(),
    }
}

/// `INFO section` as `field -> value`.
fn info(conn: &mut Conn, section: &str) -> Result<Vec<(String, String)>> {
    let text = bulk_text(conn.call(&[b"INFO", section.as_bytes()])?);
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

// ---------------------------------------------------------------- the stream

fn write_header(w: &mut dyn Write, db: u32) -> io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&[VERSION])?;
    w.write_all(&db.to_be_bytes())
}

fn write_key(w: &mut dyn Write, key: &[u8], expire_at: i64, payload: &[u8]) -> io::Result<()> {
    let len = |n: usize| {
        u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "value too large"))
    };
    w.write_all(b"K")?;
    w.write_all(&len(key.len())?.to_be_bytes())?;
    w.write_all(key)?;
    w.write_all(&expire_at.to_be_bytes())?;
    w.write_all(&len(payload.len())?.to_be_bytes())?;
    w.write_all(payload)
}

fn write_end(w: &mut dyn Write, count: u64) -> io::Result<()> {
    w.write_all(b"E")?;
    w.write_all(&count.to_be_bytes())
}

/// One key of a stream.
struct Record<'a> {
    key: &'a [u8],
    /// Unix milliseconds; -1 for none.
    expire_at: i64,
    payload: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Records,
    Done,
}

/// Incremental parser of the key stream; memory is the largest single key.
pub struct KeyStream {
    buf: Vec<u8>,
    start: usize,
    state: State,
    keys: u64,
    db: u32,
    error: Option<String>,
}

impl KeyStream {
    fn new() -> KeyStream {
        KeyStream {
            buf: Vec::new(),
            start: 0,
            state: State::Header,
            keys: 0,
            db: 0,
            error: None,
        }
    }

    fn fail(&mut self, msg: String) -> Result<()> {
        if self.error.is_none() {
            self.error = Some(msg.clone());
        }
        anyhow::bail!(msg)
    }

    /// Parses `bytes`, calling `on_key` for every complete key record.
    fn feed(
        &mut self,
        bytes: &[u8],
        on_key: &mut dyn FnMut(Record<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Some(e) = &self.error {
            anyhow::bail!(e.clone());
        }
        if self.state == State::Done && !bytes.is_empty() {
            return self
                .fail("unexpected bytes after the end record of the redis key stream".into());
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let avail = &self.buf[self.start..];
            match self.state {
                State::Done => {
                    if !avail.is_empty() {
                        return self.fail(
                            "unexpected bytes after the end record of the redis key stream".into(),
                        );
                    }
                    break;
                }
                State::Header => {
                    if avail.len() < HEADER_LEN {
                        if !MAGIC.starts_with(&avail[..avail.len().min(MAGIC.len())]) {
                            return self.fail("not a dbkeep redis key stream (bad magic)".into());
                        }
                        break;
                    }
                    if &avail[..MAGIC.len()] != MAGIC {
                        return self.fail("not a dbkeep redis key stream (bad magic)".into());
                    }
                    if avail[MAGIC.len()] != VERSION {
                        let v = avail[MAGIC.len()];
                        return self.fail(format!("redis key stream version {v} is not supported (this dbkeep reads {VERSION})"));
                    }
                    self.db = u32::from_be_bytes(be4(&avail[MAGIC.len() + 1..]));
                    self.start += HEADER_LEN;
                    self.state = State::Records;
                }
                State::Records => {
                    let Some(&tag) = avail.first() else { break };
                    match tag {
                        b'K' => {
                            if avail.len() < 5 {
                                break;
                            }
                            let klen = u32::from_be_bytes(be4(&avail[1..])) as usize;
                            if klen > MAX_FIELD {
                                return self.fail(format!(
                                    "corrupt redis key stream: key of {klen} bytes"
                                ));
                            }
                            if avail.len() < 5 + klen + 12 {
                                break;
                            }
                            let at = 5 + klen;
                            let expire_at = i64::from_be_bytes(be8(&avail[at..]));
                            let plen = u32::from_be_bytes(be4(&avail[at + 8..])) as usize;
                            if plen > MAX_FIELD {
                                return self.fail(format!(
                                    "corrupt redis key stream: value of {plen} bytes"
                                ));
                            }
                            let total = at + 12 + plen;
                            if avail.len() < total {
                                break;
                            }
                            let record = Record {
                                key: &avail[5..at],
                                expire_at,
                                payload: &avail[at + 12..total],
                            };
                            on_key(record)?;
                            self.keys += 1;
                            self.start += total;
                        }
                        b'E' => {
                            if avail.len() < 9 {
                                break;
                            }
                            let count = u64::from_be_bytes(be8(&avail[1..]));
                            if count != self.keys {
                                return self.fail(format!(
                                    "corrupt redis key stream: the end record counts {count} keys, the stream holds {}",
                                    self.keys
                                ));
                            }
                            self.start += 9;
                            self.state = State::Done;
                        }
                        other => {
                            return self.fail(format!(
                                "corrupt redis key stream: unknown record type 0x{other:02x}"
                            ));
                        }
                    }
                }
            }
        }
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(())
    }

    /// The db and key count of a complete stream.
    fn finish(&self) -> std::result::Result<(u32, u64), String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Done => Ok((self.db, self.keys)),
            State::Header => Err("the redis key stream ends inside its header".into()),
            State::Records => Err(format!(
                "the redis key stream ends after {} keys without its end record",
                self.keys
            )),
        }
    }
}

fn be4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    a
}

fn be8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

/// Checks a key stream's structure and its end record.
struct StreamCheck(KeyStream);

impl DumpCheck for StreamCheck {
    fn update(&mut self, bytes: &[u8]) {
        let _ = self.0.feed(bytes, &mut |_| Ok(()));
    }

    fn finish(&mut self) -> std::result::Result<(), String> {
        self.0.finish().map(|_| ())
    }
}

/// The check `verify` runs on a decompressed key stream.
pub fn stream_check() -> Box<dyn DumpCheck> {
    Box::new(StreamCheck(KeyStream::new()))
}

// ---------------------------------------------------------------- backup

/// Sends written bytes to the reading side in 256 KiB chunks.
struct ChanWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(256 * 1024));
            self.tx
                .send(chunk)
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        }
        Ok(())
    }
}

/// The reading side of a running export.
struct Export {
    rx: Option<Receiver<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    worker: Option<JoinHandle<Result<u64>>>,
}

impl Read for Export {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.as_ref().map(Receiver::recv) {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                _ => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl DumpSource for Export {
    fn finish(mut self: Box<Self>) -> Result<String> {
        // Hang up first, so a worker blocked on a full channel stops.
        self.rx.take();
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Ok(keys))) => {
                tracing::debug!(keys, "redis export finished");
                Ok(String::new())
            }
            Some(Ok(Err(e))) => Err(e),
            _ => anyhow::bail!("the redis export thread panicked"),
        }
    }
}

/// Writes every key of `db` to `out`; returns the key count. `exact_expiry`
/// asks the server for absolute expiry times (`PEXPIRETIME`, Redis 7+).
fn export(conn: &mut Conn, db: u32, exact_expiry: bool, out: &mut dyn Write) -> Result<u64> {
    let expiry_cmd: &[u8] = if exact_expiry {
        b"PEXPIRETIME"
    } else {
        b"PTTL"
    };
    conn.call(&[b"SELECT", db.to_string().as_bytes()])?;
    write_header(out, db)?;
    let mut cursor = b"0".to_vec();
    let mut count = 0u64;
    loop {
        signal::check()?;
        let reply = conn.call(&[b"SCAN", &cursor, b"COUNT", SCAN_COUNT.as_bytes()])?;
        let Reply::Array(Some(mut parts)) = reply else {
            anyhow::bail!("unexpected SCAN reply from redis")
        };
        if parts.len() != 2 {
            anyhow::bail!("unexpected SCAN reply from redis");
        }
        let keys = match parts.pop() {
            Some(Reply::Array(Some(keys))) => keys,
            _ => anyhow::bail!("unexpected SCAN reply from redis"),
        };
        let next = match parts.pop() {
            Some(Reply::Bulk(Some(c))) => c,
            _ => anyhow::bail!("unexpected SCAN cursor from redis"),
        };
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter_map(|k| match k {
                Reply::Bulk(Some(k)) => Some(k),
                _ => None,
            })
            .collect();
        for k in &keys {
            conn.queue(&[expiry_cmd, k]);
            conn.queue(&[b"DUMP", k]);
        }
        if !keys.is_empty() {
            conn.send()?;
        }
        let clock = now_ms();
        for k in &keys {
            let ttl = conn.read()?;
            let dump = conn.read()?;
            let expire_at = match ttl {
                Reply::Int(t) if t >= 0 && exact_expiry => t,
                Reply::Int(t) if t >= 0 => clock.saturating_add(t),
                Reply::Int(_) => -1,
                Reply::Error(e) => {
                    anyhow::bail!(
                        "redis refused {} of key `{}`: {e}",
                        String::from_utf8_lossy(expiry_cmd),
                        String::from_utf8_lossy(k)
                    )
                }
                _ => anyhow::bail!("unexpected expiry reply from redis"),
            };
            match dump {
                Reply::Bulk(Some(payload)) => {
                    write_key(out, k, expire_at, &payload)?;
                    count += 1;
                }
                // The key expired or was deleted since SCAN returned it.
                Reply::Bulk(None) => {}
                Reply::Error(e) => anyhow::bail!(
                    "redis refused DUMP of key `{}`: {e}",
                    String::from_utf8_lossy(k)
                ),
                _ => anyhow::bail!("unexpected DUMP reply from redis"),
            }
        }
        if next == b"0" {
            break;
        }
        cursor = next;
    }
    write_end(out, count)?;
    out.flush()?;
    Ok(count)
}

// ---------------------------------------------------------------- restore

/// Replays a key stream into a db with pipelined `RESTORE ... REPLACE`.
struct RedisSink {
    conn: Conn,
    parser: KeyStream,
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    source_version: Option<String>,
    /// Keys whose expiry time had passed: Redis drops them on RESTORE.
    expired: u64,
}

impl RedisSink {
    fn settle(
        conn: &mut Conn,
        pending: &mut Vec<Vec<u8>>,
        source_version: Option<&str>,
    ) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        conn.send()?;
        let mut first_error = None;
        for key in pending.drain(..) {
            if let Reply::Error(e) = conn.read()?
                && first_error.is_none()
            {
                let hint = if e.contains("payload version") {
                    format!(
                        " (the backup was made on Redis {}; restore into the same or a newer version)",
                        source_version.unwrap_or("unknown")
                    )
                } else {
                    String::new()
                };
                first_error = Some(format!(
                    "redis refused key `{}`: {e}{hint}",
                    String::from_utf8_lossy(&key)
                ));
            }
        }
        match first_error {
            Some(e) => anyhow::bail!(e),
            None => Ok(()),
        }
    }
}

impl Write for RedisSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let RedisSink {
            conn,
            parser,
            pending,
            pending_bytes,
            source_version,
            expired,
        } = self;
        let version = source_version.as_deref();
        let now = now_ms();
        parser
            .feed(buf, &mut |r| {
                if r.expire_at >= 0 {
                    if r.expire_at <= now {
                        *expired += 1;
                    }
                    // ABSTTL: an absolute Unix time in ms; a time in the past drops the key.
                    let at = r.expire_at.max(1).to_string();
                    conn.queue(&[
                        b"RESTORE",
                        r.key,
                        at.as_bytes(),
                        r.payload,
                        b"ABSTTL",
                        b"REPLACE",
                    ]);
                } else {
                    conn.queue(&[b"RESTORE", r.key, b"0", r.payload, b"REPLACE"]);
                }
                pending.push(r.key.to_vec());
                *pending_bytes += r.payload.len() + r.key.len();
                if pending.len() >= RESTORE_BATCH || *pending_bytes >= RESTORE_BATCH_BYTES {
                    *pending_bytes = 0;
                    Self::settle(conn, pending, version)?;
                }
                Ok(())
            })
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RestoreSink for RedisSink {
    fn finish(mut self: Box<Self>) -> Result<()> {
        let (_, keys) = self.parser.finish().map_err(|e| anyhow::anyhow!(e))?;
        let version = self.source_version.clone();
        Self::settle(&mut self.conn, &mut self.pending, version.as_deref())?;
        if self.expired > 0 {
            tracing::info!(
                expired = self.expired,
                "keys whose expiry time passed since the backup were not restored"
            );
        }
        tracing::info!(keys = keys - self.expired, "redis keys restored");
        Ok(())
    }

    fn abort(self: Box<Self>) {}
}

impl Connector for Redis {
    fn probe(&mut self) -> Result<ServerInfo> {
        let mut conn = self.connect()?;
        let version = info(&mut conn, "server")?
            .into_iter()
            .find(|(k, _)| k == "redis_version")
            .map(|(_, v)| v);
        self.version = version.clone();
        Ok(ServerInfo {
            server_version: version,
            tool: "redis-protocol".into(),
            tool_version: Some(format!(
                "dbkeep {} (SCAN/DUMP/PTTL)",
                env!("CARGO_PKG_VERSION")
            )),
        })
    }

    fn plan(&mut self) -> Result<Vec<DumpItem>> {
        let dbs: Vec<String> = match self.source.databases() {
            Databases::List(list) => list.clone(),
            Databases::All => {
                let mut conn = self.connect()?;
                let mut dbs: Vec<u32> = keyspace(&mut conn)?
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| !self.source.exclude_databases.contains(&n.to_string()))
                    .collect();
                dbs.sort_unstable();
                if dbs.is_empty() {
                    dbs.push(0);
                }
                dbs.iter().map(u32::to_string).collect()
            }
        };
        Ok(DumpItem::each(dbs, DumpFormat::RedisKeys))
    }

    fn dump(&mut self, item: &DumpItem) -> Result<(Box<dyn DumpSource>, Box<dyn DumpCheck>)> {
        let db = item.database_name()?;
        let mut conn = self.connect()?;
        let db = Self::select(&mut conn, db)?;
        let major = self
            .version
            .as_deref()
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok())
            .unwrap_or(0);
        let exact_expiry = major >= 7;
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let worker = std::thread::Builder::new()
            .name(format!("redis-db{db}"))
            .spawn(move || {
                let mut out = ChanWriter {
                    tx,
                    buf: Vec::with_capacity(256 * 1024),
                };
                export(&mut conn, db, exact_expiry, &mut out)
            })?;
        let export = Export {
            rx: Some(rx),
            chunk: Vec::new(),
            pos: 0,
            worker: Some(worker),
        };
        Ok((Box::new(export), stream_check()))
    }

    fn probe_restore(&mut self, _dumped_with: Option<&str>) -> Result<()> {
        self.connect()?;
        Ok(())
    }

    fn inspect(&mut self, database: &str) -> Result<TargetState> {
        let mut conn = self.connect()?;
        let db = Self::select(&mut conn, database)?;
        let size = match conn.call(&[b"DBSIZE"])? {
            Reply::Int(n) => n,
            _ => anyhow::bail!("unexpected DBSIZE reply from redis"),
        };
        if size == 0 {
            return Ok(TargetState::Empty);
        }
        let mut examples = Vec::new();
        if let Reply::Array(Some(mut parts)) = conn.call(&[b"SCAN", b"0", b"COUNT", b"20"])?
            && let Some(Reply::Array(Some(keys))) = parts.pop()
        {
            for k in keys.into_iter().take(5) {
                if let Reply::Bulk(Some(k)) = k {
                    examples.push(format!("`{}`", String::from_utf8_lossy(&k)));
                }
            }
        }
        Ok(TargetState::NonEmpty(format!(
            "db {db}: {size} keys ({}{})",
            examples.join(", "),
            if size > 5 { ", ..." } else { "" }
        )))
    }

    fn restore(
        &mut self,
        artifact: &DumpItem,
        database: &str,
        _opts: RestoreOptions,
    ) -> Result<Box<dyn RestoreSink>> {
        artifact.expect(DumpFormat::RedisKeys)?;
        let mut conn = self.connect()?;
        Self::select(&mut conn, database)?;
        Ok(Box::new(RedisSink {
            conn,
            parser: KeyStream::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            source_version: None,
            expired: 0,
        }))
    }

    fn drop_created(&mut self, _database: &str) -> Result<()> {
        Ok(())
    }

    fn estimate(&mut self, item: &DumpItem) -> Result<Option<u64>> {
        let Some(db) = &item.database else {
            return Ok(None);
        };
        // The server's dataset memory, shared out by keys: DUMP payloads
        // are about as compact as the server's own encoding.
        let mut conn = self.connect()?;
        let keys = keyspace(&mut conn)?;
        let total: u64 = keys.iter().map(|(_, n)| n).sum();
        let mine = keys
            .iter()
            .find(|(n, _)| n.to_string() == *db)
            .map_or(0, |(_, k)| *k);
        let memory = info(&mut conn, "memory")?
            .into_iter()
            .find(|(k, _)| k == "used_memory_dataset")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        Ok(match (memory, total) {
            (Some(m), t) if t > 0 => Some((m as f64 * mine as f64 / t as f64) as u64),
            _ => None,
        })
    }

    fn survey(&mut self, plan: &[DumpItem]) -> Result<Survey> {
        let mut conn = self.connect()?;
        let server = info(&mut conn, "server")?;
        let keys = keyspace(&mut conn)?;
        let memory = info(&mut conn, "memory")?
            .into_iter()
            .find(|(k, _)| k == "used_memory_dataset")
            .and_then(|(_, v)| v.parse::<u64>().ok());
        let mut survey = Survey {
            server_version: server
                .into_iter()
                .find(|(k, _)| k == "redis_version")
                .map(|(_, v)| v),
            client: Some(format!(
                "built in (Redis protocol, dbkeep {})",
                env!("CARGO_PKG_VERSION")
            )),
            tls: Some(TlsInUse {
                in_use: self
                    .source
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.mode != TlsMode::Disable),
                detail: None,
            }),
            ..Survey::default()
        };
        for db in plan.iter().filter_map(|i| i.database.as_deref()) {
            survey.databases.push(DatabaseSize {
                name: db.to_string(),
                bytes: None,
                keys: Some(
                    keys.iter()
                        .find(|(n, _)| n.to_string() == db)
                        .map_or(0, |(_, k)| *k),
                ),
            });
        }
        if let Some(m) = memory {
            survey.notes.push(format!(
                "the dataset takes {} of the server's memory (all dbs)",
                crate::util::human_size(m)
            ));
        }
        survey
            .notes
            .push("Redis has no tables: keys are not sized one by one".into());
        Ok(survey)
    }
}

/// `INFO keyspace` as `(db, keys)`.
fn keyspace(conn: &mut Conn) -> Result<Vec<(u32, u64)>> {
    Ok(info(conn, "keyspace")?
        .into_iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("db")?.parse::<u32>().ok()?;
            let keys = v.split(',').find_map(|f| f.strip_prefix("keys="))?;
            Some((n, keys.parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, 3).unwrap();
        write_key(&mut out, b"a", -1, b"payload-a").unwrap();
        write_key(&mut out, b"key with spaces \xff", 1500, &[0u8; 300]).unwrap();
        write_end(&mut out, 2).unwrap();
        out
    }

    #[test]
    fn stream_round_trips_in_any_chunking() {
        let data = sample();
        for size in [1, 2, 7, 64, data.len()] {
            let mut p = KeyStream::new();
            let mut seen = Vec::new();
            for chunk in data.chunks(size) {
                p.feed(chunk, &mut |r| {
                    seen.push((r.key.to_vec(), r.expire_at, r.payload.len()));
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(p.finish(), Ok((3, 2)));
            assert_eq!(
                seen,
                [
                    (b"a".to_vec(), -1, 9),
                    (b"key with spaces \xff".to_vec(), 1500, 300)
                ]
            );
        }
    }

    #[test]
    fn every_strict_prefix_and_any_trailer_is_rejected() {
        let data = sample();
        for len in 0..data.len() {
            let mut c = stream_check();
            c.update(&data[..len]);
            assert!(c.finish().is_err(), "prefix of {len} bytes accepted");
        }
        let mut c = stream_check();
        c.update(&data);
        c.update(b"x");
        assert!(c.finish().is_err());
        let mut bad = data.clone();
        let n = bad.len();
        bad[n - 1] = 9; // the end record's count
        let mut c = stream_check();
        c.update(&bad);
        assert!(c.finish().unwrap_err().contains("counts 9 keys"));
    }
}
