//! The writer every cloud backend uploads through: it cuts the stream into
//! parts (S3 parts, Azure blocks, GCS chunks) and hands each full one to the
//! backend's [`Parts`]; an object smaller than one part goes up whole.

use std::io::{self, Write};

use anyhow::Result;
use bytes::Bytes;

use super::ObjectWriter;

/// Where a [`PartWriter`]'s parts go: one backend's multipart upload.
pub(super) trait Parts: Send {
    /// Takes the next full part, waiting while too many are in flight.
    fn send(&mut self, part: Bytes) -> Result<()>;

    /// Writes the whole object in one request: it never filled a part.
    fn put_whole(&mut self, data: Bytes) -> Result<()>;

    /// Takes what is left after the parts (maybe nothing) and makes the
    /// object visible.
    fn finish(&mut self, rest: Bytes) -> Result<()>;

    /// Stops what is in flight and discards what was sent.
    fn cancel(&mut self);
}

/// The size of each part: `base`, doubled every `every` parts (at most 20
/// times), never over `max`.
#[derive(Clone, Copy)]
pub(super) struct PartSizes {
    /// The first parts' size.
    pub base: usize,
    /// Parts of one size before the size doubles.
    pub every: u64,
    /// The largest part.
    pub max: usize,
}

impl PartSizes {
    /// Every part the same size.
    #[cfg(feature = "gcs")]
    pub fn fixed(size: usize) -> PartSizes {
        PartSizes {
            base: size,
            every: u64::MAX,
            max: size,
        }
    }

    /// The size of part `n` (from 0).
    pub fn of(&self, n: u64) -> usize {
        let doublings = (n / self.every).min(20) as u32;
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// An object being uploaded in parts; nothing is visible before `commit`,
/// and a writer dropped without it cancels the upload.
pub(super) struct PartWriter<P: Parts> {
    parts: P,
    sizes: PartSizes,
    /// What is uploaded, for messages: `storage `x` (s3://b/key): upload`.
    what: String,
    buf: Vec<u8>,
    /// Parts handed over.
    sent: u64,
    /// Whether a write failed: nothing may be committed after that.
    broken: bool,
    /// Whether it was committed or aborted.
    finished: bool,
}

impl<P: Parts> PartWriter<P> {
    /// A writer that hands its parts to `parts`.
    pub fn new(what: String, sizes: PartSizes, parts: P) -> PartWriter<P> {
        PartWriter {
            parts,
            sizes,
            what,
            buf: Vec::new(),
            sent: 0,
            broken: false,
            finished: false,
        }
    }

    fn finish(&mut self) -> Result<()> {
        if self.broken {
            self.parts.cancel();
            anyhow::bail!("{}: a write failed, so nothing is committed", self.what);
        }
        let rest = Bytes::from(std::mem::take(&mut self.buf));
        if self.sent == 0 {
            // Smaller than one part: one request.
            return self.parts.put_whole(rest);
        }
        self.parts.finish(rest)
    }
}

impl<P: Parts> Write for PartWriter<P> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::other("the upload already failed"));
        }
        let mut rest = data;
        while !rest.is_empty() {
            let size = self.sizes.of(self.sent);
            // Exactly one part's worth: a doubling Vec would hand the
            // uploader up to twice the memory it needs.
            if self.buf.capacity() < size {
                self.buf.reserve_exact(size - self.buf.len());
            }
            let take = (size - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() >= size {
                let part = Bytes::from(std::mem::take(&mut self.buf));
                self.sent += 1;
                if let Err(e) = self.parts.send(part) {
                    self.broken = true;
                    return Err(io::Error::other(format!("{e:#}")));
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<P: Parts> ObjectWriter for PartWriter<P> {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let result = self.finish();
        if result.is_err() {
            self.parts.cancel();
        }
        self.finished = true;
        result
    }

    fn abort(mut self: Box<Self>) {
        self.parts.cancel();
        self.finished = true;
    }
}

impl<P: Parts> Drop for PartWriter<P> {
    fn drop(&mut self) {
        if !self.finished {
            self.parts.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records what a writer hands over.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    impl Parts for Log {
        fn send(&mut self, part: Bytes) -> Result<()> {
            self.0.lock().unwrap().push(format!("part: {}", part.len()));
            if part.starts_with(b"x") {
                anyhow::bail!("refused");
            }
            Ok(())
        }
        fn put_whole(&mut self, data: Bytes) -> Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("whole: {}", data.len()));
            Ok(())
        }
        fn finish(&mut self, rest: Bytes) -> Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("finish: {}", rest.len()));
            Ok(())
        }
        fn cancel(&mut self) {
            self.0.lock().unwrap().push("cancel".into());
        }
    }

    fn sizes() -> PartSizes {
        PartSizes {
            base: 4,
            every: 2,
            max: 16,
        }
    }

    #[test]
    fn parts_grow_and_the_rest_goes_with_the_finish() {
        let log = Log::default();
        let mut w = Box::new(PartWriter::new("w".into(), sizes(), log.clone()));
        w.write_all(&[0; 4 + 4 + 8 + 3]).unwrap();
        w.commit().unwrap();
        assert_eq!(
            *log.0.lock().unwrap(),
            ["part: 4", "part: 4", "part: 8", "finish: 3"]
        );
        assert_eq!(sizes().of(40), 16);
        #[cfg(feature = "gcs")]
        assert_eq!(PartSizes::fixed(7).of(1 << 40), 7);
    }

    #[test]
    fn a_small_object_goes_whole_and_a_drop_cancels() {
        let log = Log::default();
        let mut w = Box::new(PartWriter::new("w".into(), sizes(), log.clone()));
        w.write_all(b"abc").unwrap();
        w.commit().unwrap();
        let mut w = Box::new(PartWriter::new("w".into(), sizes(), log.clone()));
        w.write_all(b"abcdef").unwrap();
        drop(w);
        assert_eq!(*log.0.lock().unwrap(), ["whole: 3", "part: 4", "cancel"]);
    }

    #[test]
    fn after_a_failed_part_nothing_is_committed() {
        let log = Log::default();
        let mut w = Box::new(PartWriter::new("`k`: upload".into(), sizes(), log.clone()));
        assert!(w.write_all(b"xxxxyy").is_err());
        let e = w.write(b"z").unwrap_err().to_string();
        assert_eq!(e, "the upload already failed");
        let e = w.commit().unwrap_err().to_string();
        assert_eq!(e, "`k`: upload: a write failed, so nothing is committed");
    }
}
