//! The `mongodump --archive` stream: a streaming structure check and a
//! prelude reader.
//!
//! Layout: a magic number; a prelude of BSON documents (the archive header,
//! then one metadata document per collection) ended by a terminator
//! (`FF FF FF FF`); then segments, each a namespace header document followed
//! by data documents and a terminator. A namespace ends with a header whose
//! `EOF` is true, followed by a terminator. A stream that stops early, or in
//! which a collection of the prelude never reaches its end, is incomplete.

use std::collections::BTreeSet;

use super::DumpCheck;

/// The magic number's bytes, as written (little-endian 0x8199e26d).
pub const MAGIC: [u8; 4] = [0x6d, 0xe2, 0x99, 0x81];
const TERMINATOR: [u8; 4] = [0xff; 4];
/// Largest header document accepted (BSON's own limit is 16 MiB).
const MAX_HEADER: usize = 16 << 20;
/// Largest data document accepted (16 MiB plus the server's slack).
const MAX_DOC: usize = (16 << 20) + (16 << 10);

/// One collection named in the prelude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// Database name.
    pub db: String,
    /// Collection name.
    pub collection: String,
    /// `view`, `timeseries`, or empty for a plain collection.
    pub kind: String,
}

/// What the prelude says.
#[derive(Debug, Clone, Default)]
pub struct Prelude {
    /// The server version mongodump recorded, when it did.
    pub server_version: Option<String>,
    /// The collections, in prelude order.
    pub collections: Vec<Collection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Magic,
    Header,
    Metadata,
    Segment,
    Body,
    EofTerminator,
    Failed,
}

/// A streaming parser of the archive's structure; memory is bounded by the
/// largest header document, data documents are skipped.
pub struct ArchiveCheck {
    state: State,
    /// Bytes of the unit being collected (length word or header document).
    buf: Vec<u8>,
    /// Data bytes still to skip in the current document.
    skip: usize,
    prelude: Prelude,
    prelude_done: bool,
    open: BTreeSet<(String, String)>,
    ended: BTreeSet<(String, String)>,
    bytes: u64,
    /// Bytes the parser has consumed: where the unit being read ends.
    pos: u64,
    error: Option<String>,
    /// A dump of one named database must hold at least one collection.
    require: Option<String>,
}

impl ArchiveCheck {
    /// A check for a whole archive.
    pub fn new() -> ArchiveCheck {
        ArchiveCheck {
            state: State::Magic,
            buf: Vec::new(),
            skip: 0,
            prelude: Prelude::default(),
            prelude_done: false,
            open: BTreeSet::new(),
            ended: BTreeSet::new(),
            bytes: 0,
            pos: 0,
            error: None,
            require: None,
        }
    }

    /// A check that also fails when the archive holds no collection of `db`
    /// (MongoDB has no empty databases, so that is a wrong name).
    pub fn for_database(db: &str) -> ArchiveCheck {
        ArchiveCheck {
            require: Some(db.to_string()),
            ..ArchiveCheck::new()
        }
    }

    /// The prelude, once it has been read whole.
    pub fn prelude(&self) -> Option<&Prelude> {
        self.prelude_done.then_some(&self.prelude)
    }

    /// The error that stopped the parse, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, why: String) {
        if self.error.is_none() {
            self.error = Some(why);
        }
        self.state = State::Failed;
    }

    fn step(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.state != State::Failed {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                self.pos += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            // Collect the length word (or magic), then a whole header document.
            let want = if self.buf.len() < 4 {
                4
            } else {
                doc_len(&self.buf)
            };
            let n = (want - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            self.pos += n as u64;
            bytes = &bytes[n..];
            if self.buf.len() < want {
                continue;
            }
            if want == 4 {
                self.on_word();
            } else {
                let doc = std::mem::take(&mut self.buf);
                self.on_document(&doc);
            }
        }
    }

    /// A 4-byte word has arrived: the magic, a terminator or a length.
    fn on_word(&mut self) {
        let word: [u8; 4] = self.buf[..4].try_into().expect("four bytes");
        if self.state == State::Magic {
            self.buf.clear();
            if word != MAGIC {
                self.fail(
                    "it does not start with the mongodump archive magic number: this is not \
                     `mongodump --archive` output"
                        .to_string(),
                );
            } else {
                self.state = State::Header;
            }
            return;
        }
        if word == TERMINATOR {
            self.buf.clear();
            match self.state {
                State::Metadata => {
                    self.state = State::Segment;
                    self.prelude_done = true;
                }
                State::Body | State::EofTerminator => self.state = State::Segment,
                State::Header => self.fail("the archive header is missing".to_string()),
                _ => self.fail("a namespace segment has no header".to_string()),
            }
            return;
        }
        let len = i32::from_le_bytes(word);
        let max = if self.state == State::Body {
            MAX_DOC
        } else {
            MAX_HEADER
        };
        if len < 5 || len as usize > max {
            self.fail(format!(
                "a document length of {len} at byte {} is not valid BSON",
                self.pos - 4
            ));
            return;
        }
        if self.state == State::EofTerminator {
            self.fail("a namespace end is not followed by a terminator".to_string());
            return;
        }
        if self.state == State::Body {
            // Data documents are skipped, not kept.
            self.buf.clear();
            self.skip = len as usize - 4;
        }
    }

    fn on_document(&mut self, doc: &[u8]) {
        if doc.last() != Some(&0) {
            self.fail("a header document is not valid BSON".to_string());
            return;
        }
        let fields = top_fields(doc);
        let text = |k: &str| {
            fields.iter().find_map(|(key, v)| match v {
                Value::Str(s) if key == k => Some(s.clone()),
                _ => None,
            })
        };
        match self.state {
            State::Header => {
                self.prelude.server_version = text("server_version").filter(|s| !s.is_empty());
                self.state = State::Metadata;
            }
            State::Metadata => {
                let (Some(db), Some(collection)) = (text("db"), text("collection")) else {
                    self.fail("a collection entry of the prelude has no name".to_string());
                    return;
                };
                let kind = text("type").unwrap_or_default();
                self.prelude.collections.push(Collection {
                    db,
                    collection,
                    kind,
                });
            }
            State::Segment => {
                let (Some(db), Some(collection)) = (text("db"), text("collection")) else {
                    self.fail("a namespace header has no name".to_string());
                    return;
                };
                let eof = fields
                    .iter()
                    .any(|(k, v)| k == "EOF" && matches!(v, Value::Bool(true)));
                let ns = (db, collection);
                if eof {
                    self.open.remove(&ns);
                    self.ended.insert(ns);
                    self.state = State::EofTerminator;
                } else {
                    if self.ended.contains(&ns) {
                        self.fail(format!("`{}.{}` has data after its end", ns.0, ns.1));
                        return;
                    }
                    self.open.insert(ns);
                    self.state = State::Body;
                }
            }
            _ => self.fail("unexpected document".to_string()),
        }
    }
}

impl Default for ArchiveCheck {
    fn default() -> Self {
        ArchiveCheck::new()
    }
}

fn doc_len(buf: &[u8]) -> usize {
    i32::from_le_bytes(buf[..4].try_into().expect("four bytes")) as usize
}

impl DumpCheck for ArchiveCheck {
    fn update(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        self.step(bytes);
    }

    fn finish(&mut self) -> Result<(), String> {
        let incomplete = |why: &str| {
            Err(format!(
                "the mongodump archive is incomplete ({why}): the dump did not finish"
            ))
        };
        if let Some(e) = &self.error {
            return Err(format!("the mongodump archive is damaged: {e}"));
        }
        if self.bytes == 0 {
            return Err("mongodump wrote nothing".to_string());
        }
        if self.state != State::Segment || self.skip > 0 || !self.buf.is_empty() {
            return incomplete("it stops in the middle of a document");
        }
        if let Some(ns) = self.open.iter().next() {
            return incomplete(&format!("`{}.{}` never reached its end", ns.0, ns.1));
        }
        for c in &self.prelude.collections {
            let plain = c.kind.is_empty() || c.kind == "collection";
            if plain && !self.ended.contains(&(c.db.clone(), c.collection.clone())) {
                return incomplete(&format!(
                    "`{}.{}` is announced but its data never ended",
                    c.db, c.collection
                ));
            }
        }
        if let Some(db) = &self.require
            && !self.prelude.collections.iter().any(|c| &c.db == db)
        {
            return Err(format!(
                "database `{db}` has no collections on the server: check the name under `databases`"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Other,
}

/// The top-level fields of a BSON document (strings and booleans kept; the
/// walk stops at a type it does not know).
fn top_fields(doc: &[u8]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let end = doc.len().saturating_sub(1);
    let mut i = 4;
    let int32 = |at: usize| -> Option<usize> {
        let b = doc.get(at..at + 4)?;
        usize::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok()
    };
    while i < end {
        let ty = doc[i];
        i += 1;
        let Some(nul) = doc[i..end].iter().position(|&b| b == 0) else {
            break;
        };
        let key = String::from_utf8_lossy(&doc[i..i + nul]).into_owned();
        i += nul + 1;
        let (value, size) = match ty {
            0x02 => {
                let Some(n) = int32(i) else { break };
                let Some(bytes) = doc.get(i + 4..i + 4 + n.saturating_sub(1)) else {
                    break;
                };
                (
                    Value::Str(String::from_utf8_lossy(bytes).into_owned()),
                    4 + n,
                )
            }
            0x08 => (Value::Bool(doc.get(i) == Some(&1)), 1),
            0x01 | 0x09 | 0x11 | 0x12 => (Value::Other, 8),
            0x10 => (Value::Other, 4),
            0x07 => (Value::Other, 12),
            0x13 => (Value::Other, 16),
            0x0a => (Value::Other, 0),
            0x03 | 0x04 => {
                let Some(n) = int32(i) else { break };
                (Value::Other, n)
            }
            0x05 => {
                let Some(n) = int32(i) else { break };
                (Value::Other, 5 + n)
            }
            _ => break,
        };
        out.push((key, value));
        i += size;
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A BSON document of string, bool and int64 fields.
    pub fn doc(fields: &[(&str, &str)], flags: &[(&str, bool)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in fields {
            body.push(0x02);
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(&(v.len() as i32 + 1).to_le_bytes());
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        for (k, v) in flags {
            body.push(0x08);
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.push(u8::from(*v));
        }
        body.push(0x12);
        body.extend_from_slice(b"CRC\0");
        body.extend_from_slice(&7i64.to_le_bytes());
        let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
        out.extend(body);
        out.push(0);
        out
    }

    /// An archive of `collections` in database `db`, each with `docs` documents.
    pub fn archive(db: &str, collections: &[&str], docs: usize) -> Vec<u8> {
        let mut a = MAGIC.to_vec();
        a.extend(doc(&[("version", "0.1"), ("server_version", "7.0.2")], &[]));
        for c in collections {
            a.extend(doc(
                &[("db", db), ("collection", c), ("metadata", "{}")],
                &[],
            ));
        }
        a.extend(TERMINATOR);
        for c in collections {
            a.extend(doc(&[("db", db), ("collection", c)], &[]));
            for i in 0..docs {
                a.extend(doc(&[("name", &format!("row {i}"))], &[]));
            }
            a.extend(TERMINATOR);
        }
        for c in collections {
            a.extend(doc(&[("db", db), ("collection", c)], &[("EOF", true)]));
            a.extend(TERMINATOR);
        }
        a
    }

    fn check(bytes: &[u8], chunk: usize) -> Result<(), String> {
        let mut c = ArchiveCheck::new();
        for piece in bytes.chunks(chunk.max(1)) {
            c.update(piece);
        }
        c.finish()
    }

    #[test]
    fn a_whole_archive_passes_in_any_chunking() {
        let a = archive("app", &["users", "orders"], 50);
        for chunk in [1, 3, 7, 64, 4096, a.len()] {
            check(&a, chunk).unwrap();
        }
        let mut c = ArchiveCheck::new();
        c.update(&a);
        let p = c.prelude().unwrap();
        assert_eq!(p.server_version.as_deref(), Some("7.0.2"));
        assert_eq!(p.collections.len(), 2);
        assert_eq!(p.collections[1].collection, "orders");
    }

    #[test]
    fn every_truncation_fails() {
        let a = archive("app", &["users"], 3);
        for cut in 0..a.len() {
            assert!(check(&a[..cut], 5).is_err(), "a cut at {cut} passed");
        }
    }

    #[test]
    fn garbage_and_missing_databases_fail() {
        assert!(
            check(b"-- PostgreSQL dump", 4)
                .unwrap_err()
                .contains("magic")
        );
        let empty = archive("app", &[], 0);
        check(&empty, 9).unwrap();
        let mut c = ArchiveCheck::for_database("app");
        c.update(&empty);
        assert!(c.finish().unwrap_err().contains("no collections"));
    }

    #[test]
    fn a_bad_length_is_reported_at_its_offset_in_any_chunking() {
        let mut a = archive("app", &["users"], 2);
        let header =
            MAGIC.len() + doc(&[("version", "0.1"), ("server_version", "7.0.2")], &[]).len();
        a[header..header + 4].copy_from_slice(&0x7374_6f00i32.to_le_bytes());
        let want = format!(
            "the mongodump archive is damaged: a document length of 1937010432 at byte {header} \
             is not valid BSON"
        );
        for chunk in [1, 3, 7, 64, a.len()] {
            assert_eq!(check(&a, chunk).unwrap_err(), want, "chunks of {chunk}");
        }
    }
}
