//! Compression and decompression behind one enum each.

use std::io::{self, BufReader, Read, Write};

use flate2::write::GzEncoder;

use super::Packing;
use serde::{Deserialize, Serialize};

/// Compression of the stored dump.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd, multi-threaded (default).
    Zstd,
    /// gzip, for tools that only know gzip.
    Gzip,
    /// Store the dump as it is.
    None,
}

impl Compression {
    /// The file-name suffix, with its dot (empty for `none`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
            Compression::None => "",
        }
    }

    /// The name used in configs and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }

    /// The default level.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Zstd => 3,
            Compression::Gzip => 6,
            Compression::None => 0,
        }
    }

    /// The accepted levels.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::Zstd => 1..=19,
            Compression::Gzip => 1..=9,
            Compression::None => 0..=0,
        }
    }
}

/// A compressor writing into `W`.
pub enum Encoder<W: Write> {
    /// zstd (multi-threaded when workers > 0).
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// gzip.
    Gzip(GzEncoder<W>),
    /// No compression.
    None(W),
}

/// zstd workers for `threads` (0: one per core, at most 4).
fn workers(threads: u32) -> u32 {
    if threads > 0 {
        return threads;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    u32::try_from(cores.clamp(1, 4)).unwrap_or(1)
}

impl<W: Write> Encoder<W> {
    /// A compressor for `packing`.
    pub fn new(packing: Packing, out: W) -> io::Result<Encoder<W>> {
        Ok(match packing.compression {
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, packing.level)?;
                enc.multithread(workers(packing.threads))?;
                // 4 MiB jobs: each worker holds a job's input and output, so
                // this bounds memory (about 38 MiB peak at level 3 with two
                // workers, measured); levels above 9 add a larger window.
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(4 << 20))?;
                enc.include_checksum(true)?;
                Encoder::Zstd(enc)
            }
            Compression::Gzip => {
                let level = u32::try_from(packing.level).unwrap_or(6);
                Encoder::Gzip(GzEncoder::new(out, flate2::Compression::new(level)))
            }
            Compression::None => Encoder::None(out),
        })
    }

    /// Flushes the end of the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
        }
    }

    /// Drops the compressor without finishing the stream.
    pub fn abort(self) {}
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A decompressor reading from `R`.
pub enum Decoder<R: Read> {
    /// zstd.
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
    /// gzip (several members are read as one stream).
    Gzip(flate2::read::MultiGzDecoder<R>),
    /// No compression.
    None(R),
}

impl<R: Read> Decoder<R> {
    /// A decompressor for `compression`.
    pub fn new(compression: Compression, input: R) -> io::Result<Decoder<R>> {
        Ok(match compression {
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::new(input)?),
            Compression::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(input)),
            Compression::None => Decoder::None(input),
        })
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::None(r) => r.read(buf),
        }
    }
}
