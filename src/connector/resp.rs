//! The Redis reply (RESP2) parser.
//!
//! Replies come from a server that is not trusted: every length it announces
//! is checked against a cap before anything is allocated or read, bulks are
//! read as their bytes arrive, and nesting is bounded, so a hostile or broken
//! server costs an error, never a panic, an abort or unbounded memory.
//!
//! The caps:
//! - a bulk string holds at most [`MAX_BULK`] bytes (512 MiB, Redis's own
//!   `proto-max-bulk-len` default);
//! - an array holds at most [`MAX_ELEMENTS`] elements;
//! - arrays nest at most [`MAX_DEPTH`] levels;
//! - a line (a status, an error, an integer or a length) is at most
//!   [`MAX_LINE`] bytes before its CRLF.
//!
//! A length of -1 is a null bulk or array; any other negative length is
//! malformed. Every malformed reply is an [`io::ErrorKind::InvalidData`]
//! error, and a connection that ends inside a reply is
//! [`io::ErrorKind::UnexpectedEof`].

use std::io::{self, BufRead, Read};

/// The largest bulk string accepted (Redis's `proto-max-bulk-len` default).
pub const MAX_BULK: usize = 512 << 20;
/// The most elements one array may announce.
pub const MAX_ELEMENTS: usize = 1 << 20;
/// The deepest nesting of arrays accepted (the top-level reply is level 1).
pub const MAX_DEPTH: usize = 32;
/// The longest line accepted, without its CRLF.
pub const MAX_LINE: usize = 64 << 10;
/// A bulk's buffer grows by at most this much ahead of the bytes received.
const BULK_CHUNK: usize = 1 << 20;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Status(String),
    /// `-text`: the server refused the command.
    Error(String),
    /// `:n`
    Int(i64),
    /// `$len` and its bytes; `None` for the null bulk (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*n` and its elements; `None` for the null array (`*-1`).
    Array(Option<Vec<Reply>>),
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed reply: {msg}"),
    )
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-reply")
}

/// At most 32 bytes of `bytes`, escaped, for an error message.
fn shown(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(32)];
    let more = if bytes.len() > head.len() { "..." } else { "" };
    format!("`{}{more}`", head.escape_ascii())
}

/// One line without its CRLF; at most [`MAX_LINE`] bytes are read looking
/// for it.
fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    // One byte over the cap, and the CRLF, tells a long line from a full one.
    let limit = (MAX_LINE + 2) as u64;
    r.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        if line.len() as u64 >= limit {
            return Err(invalid(format!(
                "a reply line is longer than {} KiB",
                MAX_LINE >> 10
            )));
        }
        return Err(closed());
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid(format!(
            "a reply line ends without CR: {}",
            shown(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(bytes: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("{} is not an integer", shown(bytes))))
}

/// A bulk or array length: `None` for -1 (null), an error when it is another
/// negative number or over `max`.
fn parse_len(
    bytes: &[u8],
    what: &str,
    max: usize,
    limit: fn() -> String,
) -> io::Result<Option<usize>> {
    let n = parse_int(bytes)?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 {
        return Err(invalid(format!("negative {what} length {n}")));
    }
    match usize::try_from(n) {
        Ok(len) if len <= max => Ok(Some(len)),
        _ => Err(invalid(format!(
            "{what} length {n} exceeds the limit of {}",
            limit()
        ))),
    }
}

/// `len` bytes and the CRLF after them, read as they arrive.
fn read_bulk(r: &mut impl BufRead, len: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    while data.len() < len {
        let start = data.len();
        let want = (len - start).min(BULK_CHUNK);
        data.resize(start + want, 0);
        read_full(r, &mut data[start..])?;
    }
    let mut crlf = [0u8; 2];
    read_full(r, &mut crlf)?;
    if &crlf != b"\r\n" {
        return Err(invalid(format!(
            "a bulk of {len} bytes is followed by {} instead of CRLF",
            shown(&crlf)
        )));
    }
    Ok(data)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            closed()
        } else {
            e
        }
    })
}

/// Reads one complete reply.
pub fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    read_nested(r, 1)
}

fn read_nested(r: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    let line = read_line(r)?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| invalid("an empty line".into()))?;
    Ok(match kind {
        b'+' => Reply::Status(String::from_utf8_lossy(rest).into_owned()),
        b'-' => Reply::Error(String::from_utf8_lossy(rest).into_owned()),
        b':' => Reply::Int(parse_int(rest)?),
        b'$' => match parse_len(rest, "bulk", MAX_BULK, || format!("{} MiB", MAX_BULK >> 20))? {
            None => Reply::Bulk(None),
            Some(len) => Reply::Bulk(Some(read_bulk(r, len)?)),
        },
        b'*' => match parse_len(rest, "array", MAX_ELEMENTS, || {
            format!("{MAX_ELEMENTS} elements")
        })? {
            None => Reply::Array(None),
            Some(n) => {
                if n > 0 && depth >= MAX_DEPTH {
                    return Err(invalid(format!(
                        "arrays nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                // Grows with the elements that arrive, not the count announced.
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(read_nested(r, depth + 1)?);
                }
                Reply::Array(Some(items))
            }
        },
        other => {
            return Err(invalid(format!(
                "unknown reply type {}",
                shown(std::slice::from_ref(other))
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn parse(wire: &[u8]) -> io::Result<Reply> {
        read_reply(&mut BufReader::new(wire))
    }

    #[track_caller]
    fn invalid_with(wire: &[u8], needle: &str) {
        let e = parse(wire).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains(needle), "`{e}` lacks `{needle}`");
    }

    /// A reader that yields `head`, then `fill` forever: a server that never
    /// stops sending.
    struct Endless {
        head: Vec<u8>,
        fill: u8,
        served: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.head.get(self.served + i).copied().unwrap_or(self.fill);
            }
            self.served += buf.len();
            Ok(buf.len())
        }
    }

    #[test]
    fn every_reply_type_parses() {
        let wire = b"+OK\r\n-ERR no\r\n:42\r\n:-7\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n\
                     *2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n";
        let mut r = BufReader::new(&wire[..]);
        let mut next = || read_reply(&mut r).unwrap();
        assert_eq!(next(), Reply::Status("OK".into()));
        assert_eq!(next(), Reply::Error("ERR no".into()));
        assert_eq!(next(), Reply::Int(42));
        assert_eq!(next(), Reply::Int(-7));
        assert_eq!(next(), Reply::Bulk(Some(b"abc".to_vec())));
        assert_eq!(next(), Reply::Bulk(Some(Vec::new())));
        assert_eq!(next(), Reply::Bulk(None));
        assert_eq!(next(), Reply::Array(None));
        assert_eq!(next(), Reply::Array(Some(Vec::new())));
        assert_eq!(
            next(),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"0".to_vec())),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"k".to_vec()))])),
            ]))
        );
        assert_eq!(
            read_reply(&mut r).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn binary_bulks_keep_their_bytes() {
        let wire = b"$6\r\n\r\n\x00\xff\n\r\r\n";
        assert_eq!(
            parse(wire).unwrap(),
            Reply::Bulk(Some(b"\r\n\x00\xff\n\r".to_vec()))
        );
    }

    #[test]
    fn a_bulk_over_512_mib_is_refused_before_reading() {
        invalid_with(b"$9999999999999999\r\n", "exceeds the limit of 512 MiB");
        invalid_with(b"$536870913\r\n", "exceeds the limit of 512 MiB");
        invalid_with(b"$9223372036854775807\r\n", "exceeds the limit");
        invalid_with(b"$99999999999999999999999\r\n", "is not an integer");
    }

    #[test]
    fn a_bulk_at_the_cap_is_read_as_it_arrives() {
        // The header announces the most allowed, then the stream ends early:
        // the error comes after the bytes sent, with memory for those only.
        let mut wire = format!("${MAX_BULK}\r\n").into_bytes();
        wire.extend_from_slice(&[b'x'; 3 << 20]);
        let e = parse(&wire).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn a_bulk_must_end_with_crlf() {
        invalid_with(b"$3\r\nabcd\r\n", "instead of CRLF");
        assert_eq!(
            parse(b"$3\r\nabc").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            parse(b"$5\r\nab").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn negative_lengths_other_than_minus_one_are_refused() {
        invalid_with(b"$-2\r\n", "negative bulk length -2");
        invalid_with(b"*-2\r\n", "negative array length -2");
        invalid_with(
            b"*-9223372036854775808\r\n",
            "negative array length -9223372036854775808",
        );
    }

    #[test]
    fn an_array_over_the_element_cap_is_refused() {
        invalid_with(b"*9999999999\r\n", "array length 9999999999 exceeds");
        invalid_with(
            format!("*{}\r\n", MAX_ELEMENTS + 1).as_bytes(),
            "exceeds the limit of 1048576 elements",
        );
        // At the cap the count is believed only as far as elements arrive.
        let e = parse(format!("*{MAX_ELEMENTS}\r\n:1\r\n").as_bytes()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |levels: usize| {
            let mut wire = b"*1\r\n".repeat(levels - 1);
            wire.extend_from_slice(b"*0\r\n");
            wire
        };
        let mut reply = parse(&nested(MAX_DEPTH)).unwrap();
        let mut levels = 1;
        while let Reply::Array(Some(mut items)) = reply {
            match items.pop() {
                Some(inner) => {
                    reply = inner;
                    levels += 1;
                }
                None => break,
            }
        }
        assert_eq!(levels, MAX_DEPTH);
        invalid_with(&nested(MAX_DEPTH + 1), "nested deeper than 32 levels");
        // A million levels: an error, not a stack overflow.
        invalid_with(&b"*1\r\n".repeat(1_000_000), "nested deeper than 32 levels");
    }

    #[test]
    fn a_line_without_end_is_refused_after_the_cap() {
        let mut endless = BufReader::new(Endless {
            head: b"+".to_vec(),
            fill: b'a',
            served: 0,
        });
        let e = read_reply(&mut endless).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
        assert!(endless.get_ref().served < 2 * MAX_LINE, "read on and on");
        // The same for a length that never ends.
        let mut endless = BufReader::new(Endless {
            head: b"$".to_vec(),
            fill: b'9',
            served: 0,
        });
        assert!(
            read_reply(&mut endless)
                .unwrap_err()
                .to_string()
                .contains("longer than 64 KiB")
        );
        // At the cap exactly, the line is accepted.
        let mut wire = b"+".to_vec();
        wire.extend_from_slice(&[b'a'; MAX_LINE - 1]);
        wire.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&wire).unwrap(), Reply::Status(s) if s.len() == MAX_LINE - 1));
        let mut wire = b"+".to_vec();
        wire.extend_from_slice(&[b'a'; MAX_LINE]);
        wire.extend_from_slice(b"\r\n");
        invalid_with(&wire, "longer than 64 KiB");
    }

    #[test]
    fn malformed_lines_are_invalid_data() {
        invalid_with(b"\r\n", "an empty line");
        invalid_with(b"!oops\r\n", "unknown reply type `!`");
        invalid_with(b"\xff\r\n", "unknown reply type `\\xff`");
        invalid_with(b"+OK\n", "ends without CR");
        invalid_with(b":12a\r\n", "`12a` is not an integer");
        invalid_with(b":\r\n", "is not an integer");
        invalid_with(b"$\r\n", "is not an integer");
        invalid_with(b"*x\r\n", "is not an integer");
        invalid_with(b"*2\r\n$2\r\nab\r\n?\r\n", "unknown reply type `?`");
        assert_eq!(parse(b"").unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(
            parse(b"+OK").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn a_malformed_element_fails_the_whole_array() {
        invalid_with(b"*2\r\n:1\r\n$-5\r\n", "negative bulk length -5");
    }
}
