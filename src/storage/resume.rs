//! A streamed HTTP download that resumes with a Range request where it was
//! cut, for the backends that speak plain HTTP.

use std::io::{self, Read};

use reqwest::blocking::Response;

use super::retry::{self, Backoff, Failure, Stop, Transient};

/// Reads `size` bytes through `fetch(offset)`, a GET from `offset` on;
/// a cut or failed read starts a new GET from the last byte received.
/// `fetch` fails with the reason, transient or not.
pub struct Download<F> {
    fetch: F,
    /// What is being read, for messages (`download az://c/key`).
    what: String,
    backoff: Backoff,
    size: u64,
    offset: u64,
    body: Option<Response>,
}

impl<F> Download<F>
where
    F: FnMut(u64) -> Result<Response, Failure<String>>,
{
    /// A download of `size` bytes.
    pub fn new(what: String, size: u64, backoff: Backoff, fetch: F) -> Self {
        Download {
            fetch,
            what,
            backoff,
            size,
            offset: 0,
            body: None,
        }
    }

    /// One attempt at the next bytes: a new GET when there is no body.
    fn attempt(&mut self, buf: &mut [u8]) -> Result<usize, Failure<String>> {
        if self.offset >= self.size {
            return Ok(0);
        }
        let body = match self.body.as_mut() {
            Some(body) => body,
            None => self.body.insert((self.fetch)(self.offset)?),
        };
        let why = match body.read(buf) {
            Ok(0) => format!(
                "the connection ended at byte {} of {}",
                self.offset, self.size
            ),
            Ok(n) => {
                self.offset += n as u64;
                return Ok(n);
            }
            Err(e) => crate::util::secret::clean(&e.to_string()),
        };
        self.body = None;
        Err(Failure::Transient(Transient::new(why)))
    }
}

impl<F> Read for Download<F>
where
    F: FnMut(u64) -> Result<Response, Failure<String>>,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let backoff = self.backoff;
        let what = self.what.clone();
        retry::retry(&backoff, &what, |_| self.attempt(buf)).map_err(|stop| match stop {
            Stop::Fatal(why) => io::Error::other(format!("{what}: {why}")),
            Stop::Exhausted { why, attempts } => {
                io::Error::other(format!("{what}: {why} (after {attempts} attempts)"))
            }
        })
    }
}
