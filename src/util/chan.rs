//! A bounded byte channel between two threads: what one side writes, the
//! other reads, with backpressure. It joins a push-style producer (the
//! pipeline's checks, a decompressor writing into a sink) to a pull-style
//! consumer (a tar reader).

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// The writing end. Dropping it ends the stream for the reader.
pub struct ChanWriter(SyncSender<Vec<u8>>);

/// The reading end: `read` returns 0 once the writer is gone and every
/// chunk was read.
pub struct ChanReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

/// A channel holding at most `depth` chunks in flight.
pub fn channel(depth: usize) -> (ChanWriter, ChanReader) {
    let (tx, rx) = sync_channel(depth);
    (
        ChanWriter(tx),
        ChanReader {
            rx,
            chunk: Vec::new(),
            at: 0,
        },
    )
}

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.0
            .send(buf.to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_in_order_and_end_with_the_writer() {
        let (mut w, mut r) = channel(2);
        let t = std::thread::spawn(move || {
            for i in 0..100u8 {
                w.write_all(&[i; 300]).unwrap();
            }
        });
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        t.join().unwrap();
        assert_eq!(all.len(), 30_000);
        assert!(
            all.chunks(300)
                .enumerate()
                .all(|(i, c)| c.iter().all(|b| *b == i as u8))
        );
    }

    #[test]
    fn a_writer_whose_reader_is_gone_gets_an_error() {
        let (mut w, r) = channel(1);
        drop(r);
        assert!(w.write_all(b"x").is_err());
    }
}
