//! A streamed HTTP download that resumes with a Range request where it was
//! cut, for the backends that speak plain HTTP.

use std::io::{self, Read};

use reqwest::blocking::Response;

use super::retry::Backoff;

/// Why a ranged GET did not give a body.
pub enum Refused {
    /// Worth another try: the reason.
    Transient(String),
    /// Not worth another try: the server's answer, for the message.
    Failed(String),
}

/// Reads `size` bytes through `fetch(offset)`, a GET from `offset` on;
/// a cut or failed read starts a new GET from the last byte received.
pub struct Download<F> {
    fetch: F,
    /// What is being read, for messages (`download az://c/key`).
    what: String,
    /// The service, for logs.
    service: &'static str,
    backoff: Backoff,
    size: u64,
    offset: u64,
    body: Option<Response>,
    attempt: u32,
}

impl<F> Download<F>
where
    F: FnMut(u64) -> Result<Response, Refused>,
{
    /// A download of `size` bytes.
    pub fn new(service: &'static str, what: String, size: u64, backoff: Backoff, fetch: F) -> Self {
        Download {
            fetch,
            what,
            service,
            backoff,
            size,
            offset: 0,
            body: None,
            attempt: 1,
        }
    }

    fn retry_or_fail(&mut self, why: String) -> io::Result<()> {
        self.body = None;
        if self.attempt >= self.backoff.attempts {
            return Err(io::Error::other(format!(
                "{}: {why} (after {} attempts)",
                self.what, self.attempt
            )));
        }
        tracing::debug!(offset = self.offset, error = %why, "{} download interrupted, resuming", self.service);
        std::thread::sleep(self.backoff.pause(self.attempt));
        self.attempt += 1;
        Ok(())
    }
}

impl<F> Read for Download<F>
where
    F: FnMut(u64) -> Result<Response, Refused>,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.offset >= self.size {
                return Ok(0);
            }
            let Some(body) = self.body.as_mut() else {
                match (self.fetch)(self.offset) {
                    Ok(r) => self.body = Some(r),
                    Err(Refused::Transient(why)) => self.retry_or_fail(why)?,
                    Err(Refused::Failed(why)) => {
                        return Err(io::Error::other(format!("{}: {why}", self.what)));
                    }
                }
                continue;
            };
            match body.read(buf) {
                Ok(0) => self.retry_or_fail(format!(
                    "the connection ended at byte {} of {}",
                    self.offset, self.size
                ))?,
                Ok(n) => {
                    self.offset += n as u64;
                    self.attempt = 1;
                    return Ok(n);
                }
                Err(e) => self.retry_or_fail(crate::util::secret::clean(&e.to_string()))?,
            }
        }
    }
}
