//! The stream a dump takes: source → check → compressor → hash/count → storage,
//! and back: storage → hash/count → decompressor → restore tool.
//!
//! Buffers are fixed-size, so memory does not grow with the database. Nothing
//! is committed here: [`store`] hands back a [`Staged`] object that the caller
//! commits only after the dump tool's exit status and the dump's own end
//! marker have been checked.

pub mod codec;
pub mod crypt;
pub mod progress;

use std::io::{self, Read, Write};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

pub use codec::{Decoder, Encoder};

use crate::pipeline::crypt::{Keys, Sealed, Sealing};

use crate::connector::DumpCheck;
use crate::pipeline::codec::Compression;
use crate::storage::ObjectWriter;
use crate::util::signal;

/// Size of the copy buffer between stages.
pub const BUF_SIZE: usize = 256 * 1024;

/// How a dump is packed.
#[derive(Debug, Clone, Copy)]
pub struct Packing {
    /// Compression.
    pub compression: Compression,
    /// Level.
    pub level: i32,
    /// zstd workers (0: one per core, at most 4).
    pub threads: u32,
}

/// Counts and hashes the bytes that pass through it.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    count: u64,
}

impl<T> Hashing<T> {
    /// Wraps a reader or writer.
    pub fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner value, the byte count and the hex sha256.
    pub fn into_parts(self) -> (T, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// One object of a fan-out, in one storage.
pub struct Output {
    /// The storage's position in the job's list.
    pub index: usize,
    /// Whether a failure here fails the whole write.
    pub required: bool,
    /// The object.
    pub writer: Box<dyn ObjectWriter>,
}

/// What committing a fan-out did.
pub struct CommitReport {
    /// Storages (by index) whose object is now visible.
    pub committed: Vec<usize>,
    /// Storages (by index) that failed, during the write or the commit.
    pub failed: Vec<(usize, anyhow::Error)>,
}

/// Writes one stream to several objects (one dump, several storages). An
/// optional output that fails is dropped and reported; a required one
/// fails the write.
pub struct Fanout {
    outputs: Vec<Output>,
    failed: Vec<(usize, anyhow::Error)>,
    counters: Option<std::sync::Arc<crate::pipeline::progress::Counters>>,
}

impl Fanout {
    /// Writes to all of `outputs`.
    pub fn new(outputs: Vec<Output>) -> Fanout {
        Fanout {
            outputs,
            failed: Vec::new(),
            counters: None,
        }
    }

    /// Counts what is written (and what the source gave) into `counters`.
    pub fn counted(
        mut self,
        counters: std::sync::Arc<crate::pipeline::progress::Counters>,
    ) -> Fanout {
        self.counters = Some(counters);
        self
    }

    /// Commits every object; failures are reported, not raised.
    pub fn commit(self) -> CommitReport {
        let mut report = CommitReport {
            committed: Vec::new(),
            failed: self.failed,
        };
        for o in self.outputs {
            match o.writer.commit() {
                Ok(()) => report.committed.push(o.index),
                Err(e) => report.failed.push((o.index, e)),
            }
        }
        report
    }

    /// Discards every object.
    pub fn abort(self) {
        self.outputs.into_iter().for_each(|o| o.writer.abort());
    }
}

impl Write for Fanout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut i = 0;
        while i < self.outputs.len() {
            match self.outputs[i].writer.write_all(buf) {
                Ok(()) => i += 1,
                Err(e) if self.outputs[i].required => return Err(e),
                Err(e) => {
                    let o = self.outputs.remove(i);
                    o.writer.abort();
                    self.failed.push((o.index, anyhow::Error::new(e)));
                    if self.outputs.is_empty() {
                        return Err(io::Error::other("every storage failed"));
                    }
                }
            }
        }
        if let Some(c) = &self.counters {
            c.stored
                .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        for o in &mut self.outputs {
            if let Err(e) = o.writer.flush()
                && o.required
            {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A stored object waiting for the go-ahead.
pub struct Staged {
    /// The uncommitted objects.
    pub out: Fanout,
    /// Bytes read from the dump tool.
    pub raw_size: u64,
    /// Bytes stored.
    pub stored_size: u64,
    /// sha256 of the stored bytes.
    pub sha256: String,
}

/// Streams `source` through `check` and the compressor into `out`.
///
/// Errors from writing are storage errors; errors from reading are the
/// source's. On any error `out` is aborted before returning.
pub fn store(
    source: &mut dyn Read,
    check: &mut dyn DumpCheck,
    packing: Packing,
    sealing: Option<&Sealing>,
    out: Fanout,
) -> Result<Staged> {
    let counters = out.counters.clone();
    let sealed = Sealed::new(sealing, Hashing::new(out)).context("cannot start the encryption")?;
    let mut encoder = Encoder::new(packing, sealed).context("cannot start the compressor")?;
    let mut buf = vec![0u8; BUF_SIZE];
    let mut raw: u64 = 0;
    loop {
        if let Err(e) = signal::check() {
            encoder.abort();
            return Err(e.into());
        }
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                encoder.abort();
                return Err(e).context("cannot read the dump");
            }
        };
        raw += n as u64;
        if let Some(c) = &counters {
            c.dumped
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        check.update(&buf[..n]);
        if let Err(e) = encoder.write_all(&buf[..n]) {
            encoder.abort();
            return Err(e).context("cannot write to storage");
        }
    }
    signal::check()?;
    let hashing = encoder
        .finish()
        .and_then(Sealed::finish)
        .context("cannot write to storage")?;
    let (out, stored_size, sha256) = hashing.into_parts();
    Ok(Staged {
        out,
        raw_size: raw,
        stored_size,
        sha256,
    })
}

/// What a stored object is expected to be.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Stored size.
    pub size: u64,
    /// sha256 of the stored bytes.
    pub sha256: String,
    /// Bytes the object decompresses to: decompression stops as soon as it
    /// would produce more (a decompression bomb), and fails when it ends
    /// with fewer.
    pub raw_size: u64,
}

/// A stored object that does not match its manifest.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {what}; the backup is corrupt or was changed after it was written")]
pub struct Mismatch {
    /// The object.
    pub key: String,
    /// What differs.
    pub what: String,
}

/// Reads a stored object to its end and checks its size and sha256.
pub fn check_object(reader: &mut dyn Read, key: &str, expected: &Expected) -> Result<()> {
    let mut hashing = Hashing::new(reader);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        signal::check()?;
        match hashing.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {key}")),
        }
    }
    let (_, size, sha) = hashing.into_parts();
    compare(key, expected, size, &sha)
}

fn compare(key: &str, expected: &Expected, size: u64, sha: &str) -> Result<()> {
    if size != expected.size {
        return Err(Mismatch {
            key: key.to_string(),
            what: format!("size is {size} bytes, the manifest says {}", expected.size),
        }
        .into());
    }
    if sha != expected.sha256 {
        return Err(Mismatch {
            key: key.to_string(),
            what: format!("sha256 is {sha}, the manifest says {}", expected.sha256),
        }
        .into());
    }
    Ok(())
}

/// Decompresses a stored object into `sink`, checking size and sha256 of
/// the stored bytes on the way.
///
/// The last `hold_back` bytes of output are only written once the checksum
/// has matched, so a restore tool never sees the end of a stream that turns
/// out to be wrong. Returns the decompressed size.
#[allow(clippy::too_many_arguments)]
pub fn unpack(
    reader: &mut dyn Read,
    key: &str,
    compression: Compression,
    keys: Option<&Keys>,
    expected: &Expected,
    sink: &mut dyn Write,
    hold_back: usize,
) -> Result<u64> {
    let mut hashing = Hashing::new(reader);
    let plain: Box<dyn Read + '_> = match keys {
        Some(k) => Box::new(k.open(&mut hashing, key)?),
        None => Box::new(&mut hashing),
    };
    let mut decoder = Decoder::new(compression, plain).context("cannot start the decompressor")?;
    let mut buf = vec![0u8; BUF_SIZE];
    let mut held: Vec<u8> = Vec::with_capacity(hold_back + BUF_SIZE);
    let mut total: u64 = 0;
    loop {
        signal::check()?;
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot decompress {key} ({}): the backup is corrupt or truncated",
                        compression.as_str()
                    )
                });
            }
        };
        total += n as u64;
        if total > expected.raw_size {
            anyhow::bail!(
                "{key} decompresses to more than the {} bytes its manifest records: stopped; the backup is \
                 corrupt or crafted",
                expected.raw_size
            );
        }
        held.extend_from_slice(&buf[..n]);
        if held.len() > hold_back {
            let release = held.len() - hold_back;
            write_sink(sink, &held[..release])?;
            held.drain(..release);
        }
    }
    drop(decoder);
    // Anything after the end of the compressed stream is still stored bytes.
    io::copy(&mut hashing, &mut io::sink()).with_context(|| format!("cannot read {key}"))?;
    let (_, size, sha) = hashing.into_parts();
    compare(key, expected, size, &sha)?;
    if total != expected.raw_size {
        anyhow::bail!(
            "{key} decompressed to {total} bytes, the manifest says {}",
            expected.raw_size
        );
    }
    write_sink(sink, &held)?;
    Ok(total)
}

fn write_sink(sink: &mut dyn Write, bytes: &[u8]) -> Result<()> {
    sink.write_all(bytes)
        .map_err(|e| anyhow::Error::new(SinkError(e)))
}

/// Writing to the restore target failed (often: the restore tool exited).
#[derive(Debug, thiserror::Error)]
#[error("cannot write to the restore target: {0}")]
pub struct SinkError(pub io::Error);

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCheck;
    impl DumpCheck for NoCheck {
        fn update(&mut self, _: &[u8]) {}
        fn finish(&mut self) -> std::result::Result<(), String> {
            Ok(())
        }
    }

    struct Mem(std::sync::Arc<std::sync::Mutex<Vec<u8>>>, Vec<u8>);
    impl Write for Mem {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl ObjectWriter for Mem {
        fn commit(self: Box<Self>) -> Result<()> {
            *self.0.lock().unwrap() = self.1.clone();
            Ok(())
        }
        fn abort(self: Box<Self>) {}
    }

    fn round_trip(compression: Compression) {
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = Fanout::new(vec![Output {
            index: 0,
            required: true,
            writer: Box::new(Mem(stored.clone(), Vec::new())),
        }]);
        let packing = Packing {
            compression,
            level: compression.default_level(),
            threads: 2,
        };
        let staged = store(&mut &data[..], &mut NoCheck, packing, None, out).unwrap();
        assert_eq!(staged.raw_size, data.len() as u64);
        assert_eq!(staged.out.commit().committed, [0]);
        let stored = stored.lock().unwrap().clone();
        assert_eq!(stored.len() as u64, staged.stored_size);
        let expected = Expected {
            size: staged.stored_size,
            sha256: staged.sha256.clone(),
            raw_size: staged.raw_size,
        };
        let mut restored = Vec::new();
        let n = unpack(
            &mut &stored[..],
            "k",
            compression,
            None,
            &expected,
            &mut restored,
            1024,
        )
        .unwrap();
        assert_eq!(n, data.len() as u64);
        assert!(restored == data);

        // One flipped byte: nothing past the held-back tail reaches the sink,
        // and the mismatch is reported.
        let mut bad = stored.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let mut sink = Vec::new();
        let err = unpack(
            &mut &bad[..],
            "k",
            compression,
            None,
            &expected,
            &mut sink,
            1 << 30,
        )
        .unwrap_err();
        assert!(sink.is_empty(), "{compression:?}");
        let msg = format!("{err:#}");
        assert!(msg.contains("corrupt"), "{msg}");
    }

    #[test]
    fn round_trip_zstd() {
        round_trip(Compression::Zstd);
    }

    #[test]
    fn round_trip_gzip() {
        round_trip(Compression::Gzip);
    }

    #[test]
    fn round_trip_none() {
        round_trip(Compression::None);
    }

    #[test]
    fn truncated_object_is_refused() {
        let data = vec![7u8; 100_000];
        let stored = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = Fanout::new(vec![Output {
            index: 0,
            required: true,
            writer: Box::new(Mem(stored.clone(), Vec::new())),
        }]);
        let packing = Packing {
            compression: Compression::Zstd,
            level: 3,
            threads: 0,
        };
        let staged = store(&mut &data[..], &mut NoCheck, packing, None, out).unwrap();
        assert_eq!(staged.out.commit().committed, [0]);
        let stored = stored.lock().unwrap().clone();
        let expected = Expected {
            size: staged.stored_size,
            sha256: staged.sha256,
            raw_size: staged.raw_size,
        };
        let short = &stored[..stored.len() - 3];
        let err = check_object(&mut &short[..], "k", &expected).unwrap_err();
        assert!(err.to_string().contains("size is"), "{err}");
    }
}
