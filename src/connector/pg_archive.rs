//! Streaming completeness check for pg_dump's custom archive format (`-Fc`).
//!
//! A custom archive is a header, a table of contents (TOC), then one data block per TOC entry
//! that has data, in TOC order, each ending with a zero-length chunk. A `pg_dump` that stops
//! early can still exit 0, so this walks that structure as the bytes stream past (payloads are
//! skipped by counting) and accepts the stream only if it ends right after the last data block.

/// Magic bytes at the start of every custom archive (see WriteHead).
const MAGIC: &[u8; 5] = b"PGDMP";
/// `archCustom` in pg_backup.h's `ArchiveFormat`.
const FORMAT_CUSTOM: u8 = 1;
/// Data block types (pg_backup_archiver.h).
const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;
/// Data offset flags stored with each TOC entry (pg_backup_archiver.h).
const K_OFFSET_POS_NOT_SET: u8 = 1;
const K_OFFSET_POS_SET: u8 = 2;
const K_OFFSET_NO_DATA: u8 = 3;
/// Supported archive versions: 1.12 (PostgreSQL 9.0) to 1.16 (PostgreSQL 17 and 18).
const MIN_MINOR_VERSION: u8 = 12;
const MAX_MINOR_VERSION: u8 = 16;
/// pg_dump writes `sizeof(int)` and `sizeof(pgoff_t)`; anything outside these bounds is garbage.
const MAX_INT_SIZE: usize = 8;
const MAX_OFFSET_SIZE: usize = 16;
/// Header strings (database name, versions) are short; longer ones are truncated, not buffered.
const HEADER_STRING_CAP: usize = 1024;

/// What the check learned about a complete archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Archive format version, e.g. (1, 14, 0).
    pub version: (u8, u8, u8),
    /// Number of TOC entries.
    pub toc_entries: usize,
    /// Number of data blocks seen (table data and large objects).
    pub data_blocks: usize,
    /// Database name recorded in the header.
    pub database: String,
    /// pg_dump version string recorded in the header, e.g. "15.20 (Debian ...)".
    pub dump_version: String,
}

/// One field of a TOC entry, in the order ReadToc reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TocField {
    /// The entry's dump id (an int, must be positive).
    DumpId,
    /// An int whose value does not matter here.
    Int,
    /// A string (int length, -1 for NULL, then the bytes).
    Str,
    /// Dependency list: strings until a NULL string.
    Dependencies,
    /// Data offset (see _ReadExtraToc/ReadOffset): flag byte plus `offSize` bytes.
    DataOffset,
}

use TocField::{DataOffset, Dependencies, DumpId, Int, Str};

/// TOC entry layout for archive versions 1.12 and 1.13.
const TOC_FIELDS_1_12: &[TocField] = &[
    DumpId,       // dumpId
    Int,          // hadDumper
    Str,          // catalog tableoid
    Str,          // catalog oid
    Str,          // tag
    Str,          // desc
    Int,          // section
    Str,          // defn
    Str,          // dropStmt
    Str,          // copyStmt
    Str,          // namespace
    Str,          // tablespace
    Str,          // owner
    Str,          // "with oids" flag
    Dependencies, // dependency dump ids
    DataOffset,   // custom format extra: data offset
];

/// Versions 1.14 and 1.15 add the table access method after the tablespace.
const TOC_FIELDS_1_14: &[TocField] = &[
    DumpId,
    Int,
    Str,
    Str,
    Str,
    Str,
    Int,
    Str,
    Str,
    Str,
    Str,
    Str,
    Str, // tableam
    Str,
    Str,
    Dependencies,
    DataOffset,
];

/// Version 1.16 adds the relkind int after the table access method.
const TOC_FIELDS_1_16: &[TocField] = &[
    DumpId,
    Int,
    Str,
    Str,
    Str,
    Str,
    Int,
    Str,
    Str,
    Str,
    Str,
    Str,
    Str, // tableam
    Int, // relkind
    Str,
    Str,
    Dependencies,
    DataOffset,
];

/// Which header string is being read (see WriteHead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderString {
    Database,
    ServerVersion,
    DumpVersion,
}

/// Where the parser is; each phase reads one token (fixed bytes, or bytes to skip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Magic,
    /// Major, minor, revision bytes.
    Version,
    /// intSize, offSize and format bytes.
    Sizes,
    /// Compression algorithm byte (>= 1.15) or compression level int (older).
    Compression,
    /// The creation time, written as seven ints.
    CreationTime {
        ints_left: u8,
    },
    HeaderStringLength(HeaderString),
    HeaderStringBody(HeaderString),
    TocCount,
    /// Field `toc_field` of TOC entry `toc_entry`; for strings this is the length int.
    TocField,
    TocStringBody,
    BlockType,
    BlockDumpId {
        block_type: u8,
    },
    ChunkLength {
        in_large_object: bool,
    },
    ChunkBody {
        in_large_object: bool,
    },
    LargeObjectOid,
    /// Everything announced has been seen; nothing may follow.
    Complete,
}

/// Incremental parser: feed the raw dump bytes in order, in chunks of any size.
pub struct PgArchiveCheck {
    bytes_seen: u64,
    /// Bytes consumed by the parser (differs from `bytes_seen` only after an error).
    position: u64,
    error: Option<String>,
    phase: Phase,
    /// Current token: collect `collect` bytes into `token`, then skip `skip` bytes.
    token: Vec<u8>,
    collect: usize,
    skip: u64,
    token_start: u64,
    version: (u8, u8, u8),
    int_size: usize,
    offset_size: usize,
    database: String,
    dump_version: String,
    toc_fields: &'static [TocField],
    toc_count: usize,
    toc_entry: usize,
    toc_field: usize,
    entry_dump_id: i32,
    /// Dump ids of the TOC entries that have a data block, in TOC order.
    data_entries: Vec<i32>,
    blocks_seen: usize,
}

impl PgArchiveCheck {
    /// Starts a check at the first byte of an archive.
    pub fn new() -> Self {
        Self {
            bytes_seen: 0,
            position: 0,
            error: None,
            phase: Phase::Magic,
            token: Vec::with_capacity(MAGIC.len()),
            collect: MAGIC.len(),
            skip: 0,
            token_start: 0,
            version: (0, 0, 0),
            int_size: 4,
            offset_size: 8,
            database: String::new(),
            dump_version: String::new(),
            toc_fields: TOC_FIELDS_1_16,
            toc_count: 0,
            toc_entry: 0,
            toc_field: 0,
            entry_dump_id: 0,
            data_entries: Vec::new(),
            blocks_seen: 0,
        }
    }

    /// Feed the next bytes. Never panics on any input. After the first structural error, further input is ignored and `finish` reports that error.
    pub fn update(&mut self, bytes: &[u8]) {
        self.bytes_seen = self.bytes_seen.saturating_add(bytes.len() as u64);
        let mut input = bytes;
        while self.error.is_none() {
            if self.token_ready() {
                self.finish_token();
                continue;
            }
            if input.is_empty() {
                break;
            }
            if self.phase == Phase::Complete {
                self.error = Some(format!(
                    "unexpected bytes after the last data block (at byte {})",
                    self.position
                ));
                break;
            }
            let taken = self.consume(input);
            input = input.get(taken..).unwrap_or_default();
        }
    }

    /// Total bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.bytes_seen
    }

    /// Ends the stream: Ok with a summary when the archive is complete, Err with a short lowercase message otherwise
    /// (e.g. "archive ends inside the TOC (entry 12 of 40)", "archive ends inside the data of TOC entry 3391 (3 of 7 data blocks seen)",
    /// "not a pg_dump custom archive: missing `PGDMP` magic", "unexpected bytes after the last data block").
    pub fn finish(self) -> Result<ArchiveSummary, String> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let total_blocks = self.data_entries.len();
        let seen = self.blocks_seen;
        let next_entry = self.data_entries.get(seen).copied().unwrap_or_default();
        match self.phase {
            Phase::Complete => Ok(ArchiveSummary {
                version: self.version,
                toc_entries: self.toc_count,
                data_blocks: total_blocks,
                database: self.database,
                dump_version: self.dump_version,
            }),
            Phase::Magic if self.position == 0 => Err("archive is empty".to_string()),
            Phase::Magic if !MAGIC.starts_with(&self.token) => Err(missing_magic()),
            Phase::Magic
            | Phase::Version
            | Phase::Sizes
            | Phase::Compression
            | Phase::CreationTime { .. }
            | Phase::HeaderStringLength(_)
            | Phase::HeaderStringBody(_) => Err(format!(
                "archive ends inside the header (after {} bytes)",
                self.position
            )),
            Phase::TocCount => Err("archive ends at the start of the TOC".to_string()),
            Phase::TocField | Phase::TocStringBody => Err(format!(
                "archive ends inside the TOC (entry {} of {})",
                self.toc_entry + 1,
                self.toc_count
            )),
            Phase::BlockType => Err(format!(
                "archive ends before the data of TOC entry {next_entry} \
                 ({seen} of {total_blocks} data blocks seen)"
            )),
            Phase::BlockDumpId { .. }
            | Phase::ChunkLength { .. }
            | Phase::ChunkBody { .. }
            | Phase::LargeObjectOid => Err(format!(
                "archive ends inside the data of TOC entry {next_entry} \
                 ({seen} of {total_blocks} data blocks seen)"
            )),
        }
    }

    /// True when the current token has all its bytes and can be interpreted.
    fn token_ready(&self) -> bool {
        self.phase != Phase::Complete && self.token.len() == self.collect && self.skip == 0
    }

    /// Takes as many bytes of `input` as the current token needs; returns how many.
    fn consume(&mut self, input: &[u8]) -> usize {
        let taken = if self.token.len() < self.collect {
            let wanted = (self.collect - self.token.len()).min(input.len());
            self.token
                .extend_from_slice(input.get(..wanted).unwrap_or_default());
            wanted
        } else {
            // Skipping a payload: O(1) whatever its size.
            let wanted = usize::try_from(self.skip)
                .unwrap_or(usize::MAX)
                .min(input.len());
            self.skip -= wanted as u64;
            wanted
        };
        self.position += taken as u64;
        taken
    }

    fn finish_token(&mut self) {
        let phase = self.phase;
        if let Err(message) = self.advance() {
            self.error = Some(if phase == Phase::Magic {
                message
            } else {
                format!("{message} (at byte {})", self.token_start)
            });
        }
    }

    /// Starts a token of `count` bytes to collect and `skip` bytes to skip after them.
    fn expect(&mut self, phase: Phase, count: usize, skip: u64) {
        self.phase = phase;
        self.token.clear();
        self.collect = count;
        self.skip = skip;
        self.token_start = self.position;
    }

    fn expect_bytes(&mut self, phase: Phase, count: usize) {
        self.expect(phase, count, 0);
    }

    /// An int is a sign byte plus `intSize` little-endian bytes (see WriteInt).
    fn expect_int(&mut self, phase: Phase) {
        self.expect(phase, 1 + self.int_size, 0);
    }

    fn expect_skip(&mut self, phase: Phase, skip: u64) {
        self.expect(phase, 0, skip);
    }

    /// Decodes the current token as an int (see ReadInt). pg_dump only writes C `int`s.
    fn int_value(&self) -> Result<i32, String> {
        let Some((&sign, digits)) = self.token.split_first() else {
            return Err("truncated integer".to_string());
        };
        let magnitude = digits
            .iter()
            .rev()
            .fold(0u64, |value, &byte| (value << 8) | u64::from(byte));
        if sign > 1 {
            return Err(format!("invalid integer sign byte {sign}"));
        }
        if magnitude > 1 << 31 {
            return Err(format!("integer {magnitude} out of range"));
        }
        let magnitude = magnitude as i64;
        let value = if sign == 1 { -magnitude } else { magnitude };
        i32::try_from(value).map_err(|_| format!("integer {value} out of range"))
    }

    fn token_byte(&self, index: usize) -> u8 {
        self.token.get(index).copied().unwrap_or_default()
    }

    /// Interprets the completed token and sets up the next one.
    fn advance(&mut self) -> Result<(), String> {
        match self.phase {
            Phase::Magic => {
                if self.token.as_slice() != MAGIC {
                    return Err(missing_magic());
                }
                self.expect_bytes(Phase::Version, 3);
            }
            Phase::Version => {
                let (major, minor, revision) =
                    (self.token_byte(0), self.token_byte(1), self.token_byte(2));
                self.version = (major, minor, revision);
                if major != 1 || !(MIN_MINOR_VERSION..=MAX_MINOR_VERSION).contains(&minor) {
                    return Err(format!(
                        "unsupported archive version {major}.{minor}.{revision} \
                         (supported: 1.{MIN_MINOR_VERSION} to 1.{MAX_MINOR_VERSION})"
                    ));
                }
                self.toc_fields = match minor {
                    ..=13 => TOC_FIELDS_1_12,
                    14 | 15 => TOC_FIELDS_1_14,
                    _ => TOC_FIELDS_1_16,
                };
                self.expect_bytes(Phase::Sizes, 3);
            }
            Phase::Sizes => {
                let int_size = usize::from(self.token_byte(0));
                let offset_size = usize::from(self.token_byte(1));
                let format = self.token_byte(2);
                if !(1..=MAX_INT_SIZE).contains(&int_size) {
                    return Err(format!("unsupported integer size {int_size}"));
                }
                if !(1..=MAX_OFFSET_SIZE).contains(&offset_size) {
                    return Err(format!("unsupported offset size {offset_size}"));
                }
                if format != FORMAT_CUSTOM {
                    return Err(format!(
                        "not a custom-format archive (format byte {format}, expected {FORMAT_CUSTOM})"
                    ));
                }
                self.int_size = int_size;
                self.offset_size = offset_size;
                // ReadHead: 1.15 stores the compression algorithm as a byte, older
                // versions store the compression level as an int.
                if self.version.1 >= 15 {
                    self.expect_bytes(Phase::Compression, 1);
                } else {
                    self.expect_int(Phase::Compression);
                }
            }
            Phase::Compression => {
                if self.version.1 < 15 {
                    self.int_value()?;
                }
                self.expect_int(Phase::CreationTime { ints_left: 7 });
            }
            Phase::CreationTime { ints_left } => {
                self.int_value()?;
                if ints_left > 1 {
                    self.expect_int(Phase::CreationTime {
                        ints_left: ints_left - 1,
                    });
                } else {
                    self.expect_int(Phase::HeaderStringLength(HeaderString::Database));
                }
            }
            Phase::HeaderStringLength(which) => {
                let length = self.int_value()?;
                match u64::try_from(length) {
                    // Negative length: NULL string (see WriteStr).
                    Err(_) => self.store_header_string(which, String::new()),
                    Ok(length) => {
                        let kept = length.min(HEADER_STRING_CAP as u64);
                        self.expect(Phase::HeaderStringBody(which), kept as usize, length - kept);
                    }
                }
            }
            Phase::HeaderStringBody(which) => {
                let text = String::from_utf8_lossy(&self.token).into_owned();
                self.store_header_string(which, text);
            }
            Phase::TocCount => {
                let count = self.int_value()?;
                self.toc_count =
                    usize::try_from(count).map_err(|_| format!("negative TOC size {count}"))?;
                self.toc_entry = 0;
                self.toc_field = 0;
                if self.toc_count == 0 {
                    self.start_data();
                } else {
                    self.expect_toc_field();
                }
            }
            Phase::TocField => self.read_toc_field()?,
            Phase::TocStringBody => {
                if self.current_toc_field() == Some(Dependencies) {
                    // More dependency strings follow until a NULL one.
                    self.expect_toc_field();
                } else {
                    self.next_toc_field();
                }
            }
            Phase::BlockType => {
                let block_type = self.token_byte(0);
                if block_type != BLK_DATA && block_type != BLK_BLOBS {
                    return Err(format!(
                        "unknown data block type {block_type} where the data of TOC entry {} \
                         was expected",
                        self.expected_block_id()
                    ));
                }
                self.expect_int(Phase::BlockDumpId { block_type });
            }
            Phase::BlockDumpId { block_type } => {
                let dump_id = self.int_value()?;
                let expected = self.expected_block_id();
                if dump_id != expected {
                    return Err(format!(
                        "found the data of TOC entry {dump_id} where TOC entry {expected} \
                         was expected"
                    ));
                }
                if block_type == BLK_BLOBS {
                    self.expect_int(Phase::LargeObjectOid);
                } else {
                    self.expect_int(Phase::ChunkLength {
                        in_large_object: false,
                    });
                }
            }
            Phase::ChunkLength { in_large_object } => {
                let length = self.int_value()?;
                match u64::try_from(length) {
                    Err(_) => {
                        return Err(format!(
                            "negative chunk length {length} in the data of TOC entry {}",
                            self.expected_block_id()
                        ));
                    }
                    // A zero-length chunk ends the table data or the large object
                    // (see _EndData, _EndLO).
                    Ok(0) if in_large_object => self.expect_int(Phase::LargeObjectOid),
                    Ok(0) => self.end_block(),
                    Ok(length) => self.expect_skip(Phase::ChunkBody { in_large_object }, length),
                }
            }
            Phase::ChunkBody { in_large_object } => {
                self.expect_int(Phase::ChunkLength { in_large_object });
            }
            Phase::LargeObjectOid => {
                // A BLOBS block is a list of (oid, chunks..., zero chunk) ended by
                // oid 0 (see _StartLO, _EndLOs). OIDs above INT_MAX appear negative.
                if self.int_value()? == 0 {
                    self.end_block();
                } else {
                    self.expect_int(Phase::ChunkLength {
                        in_large_object: true,
                    });
                }
            }
            Phase::Complete => {}
        }
        Ok(())
    }

    fn store_header_string(&mut self, which: HeaderString, text: String) {
        match which {
            HeaderString::Database => {
                self.database = text;
                self.expect_int(Phase::HeaderStringLength(HeaderString::ServerVersion));
            }
            HeaderString::ServerVersion => {
                self.expect_int(Phase::HeaderStringLength(HeaderString::DumpVersion));
            }
            HeaderString::DumpVersion => {
                self.dump_version = text;
                self.expect_int(Phase::TocCount);
            }
        }
    }

    fn current_toc_field(&self) -> Option<TocField> {
        self.toc_fields.get(self.toc_field).copied()
    }

    fn expect_toc_field(&mut self) {
        if self.current_toc_field() == Some(DataOffset) {
            // WriteOffset: flag byte, then offSize bytes.
            self.expect_bytes(Phase::TocField, 1 + self.offset_size);
        } else {
            self.expect_int(Phase::TocField);
        }
    }

    fn next_toc_field(&mut self) {
        self.toc_field += 1;
        if self.toc_field >= self.toc_fields.len() {
            self.toc_field = 0;
            self.toc_entry += 1;
            if self.toc_entry >= self.toc_count {
                self.start_data();
                return;
            }
        }
        self.expect_toc_field();
    }

    fn read_toc_field(&mut self) -> Result<(), String> {
        match self.current_toc_field() {
            Some(DumpId) => {
                let dump_id = self.int_value()?;
                if dump_id <= 0 {
                    return Err(format!(
                        "invalid dump id {dump_id} in TOC entry {} of {}",
                        self.toc_entry + 1,
                        self.toc_count
                    ));
                }
                self.entry_dump_id = dump_id;
                self.next_toc_field();
            }
            Some(Int) => {
                self.int_value()?;
                self.next_toc_field();
            }
            Some(Str) => match u64::try_from(self.int_value()?) {
                Ok(length) if length > 0 => self.expect_skip(Phase::TocStringBody, length),
                // Empty or NULL.
                _ => self.next_toc_field(),
            },
            Some(Dependencies) => match u64::try_from(self.int_value()?) {
                Ok(length) if length > 0 => self.expect_skip(Phase::TocStringBody, length),
                Ok(_) => self.expect_toc_field(),
                // A NULL string ends the list.
                Err(_) => self.next_toc_field(),
            },
            Some(DataOffset) => {
                // In a non-seekable output the offset is never filled in: the flag alone
                // says whether a data block follows (see _ArchiveEntry, _WriteExtraToc).
                match self.token_byte(0) {
                    K_OFFSET_POS_NOT_SET | K_OFFSET_POS_SET => {
                        self.data_entries.push(self.entry_dump_id);
                    }
                    K_OFFSET_NO_DATA => {}
                    flag => {
                        return Err(format!(
                            "invalid data offset flag {flag} in TOC entry {}",
                            self.entry_dump_id
                        ));
                    }
                }
                self.next_toc_field();
            }
            None => return Err("internal error: TOC field out of range".to_string()),
        }
        Ok(())
    }

    /// After the TOC come the data blocks, in TOC order (see WriteDataChunks).
    fn start_data(&mut self) {
        self.blocks_seen = 0;
        self.next_block();
    }

    fn end_block(&mut self) {
        self.blocks_seen += 1;
        self.next_block();
    }

    /// _CloseArchive writes nothing after the last data block.
    fn next_block(&mut self) {
        if self.blocks_seen >= self.data_entries.len() {
            self.expect_bytes(Phase::Complete, 0);
        } else {
            self.expect_bytes(Phase::BlockType, 1);
        }
    }

    fn expected_block_id(&self) -> i32 {
        self.data_entries
            .get(self.blocks_seen)
            .copied()
            .unwrap_or_default()
    }
}

impl Default for PgArchiveCheck {
    fn default() -> Self {
        Self::new()
    }
}

fn missing_magic() -> String {
    "not a pg_dump custom archive: missing `PGDMP` magic".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::process::{Command, Output, Stdio};
    use std::sync::OnceLock;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The test server: `DBKEEP_TEST_PG_HOST`/`_PORT`, else 127.0.0.1:5432.
    fn pg_host() -> String {
        std::env::var("DBKEEP_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into())
    }

    fn pg_port() -> String {
        std::env::var("DBKEEP_TEST_PG_PORT").unwrap_or_else(|_| "5432".into())
    }
    const PG_USER: &str = "postgres";

    const SETUP_SQL: &str = r#"
        CREATE TABLE big_rows (id integer PRIMARY KEY, label text NOT NULL, payload bytea);
        INSERT INTO big_rows
            SELECT g, 'row ' || g || ' ' || repeat(md5(g::text), 2),
                   decode(md5(g::text) || md5((g * 7)::text), 'hex')
            FROM generate_series(1, 20000) AS g;
        CREATE TABLE empty_table (id integer, note text);
        CREATE TABLE small_table (key text PRIMARY KEY, value bytea);
        INSERT INTO small_table VALUES ('a', '\x00ff'::bytea), ('b', NULL);
        CREATE VIEW even_rows AS SELECT id, label FROM big_rows WHERE id % 2 = 0;
        CREATE SEQUENCE dbkeep_counter START 42;
        SELECT setval('dbkeep_counter', 100);
        SELECT lo_from_bytea(0, 'hello');
        SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 20000), 'hex'));
    "#;

    /// Tiny xorshift64 PRNG, deterministic per seed.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// Uniform-ish in `low..=high`.
        fn range(&mut self, low: usize, high: usize) -> usize {
            low + (self.next() % (high - low + 1) as u64) as usize
        }

        fn bytes(&mut self, count: usize) -> Vec<u8> {
            (0..count).map(|_| self.next() as u8).collect()
        }
    }

    /// Real archives from the local server, made once for all tests.
    struct Fixture {
        database: String,
        /// `pg_dump -Fc -Z0` output.
        uncompressed: Vec<u8>,
        /// `pg_dump -Fc` output (default compression).
        compressed: Vec<u8>,
        /// `pg_restore -l` of the uncompressed archive.
        listing: String,
        /// Version string of the pg_dump binary, e.g. "15.20 (Debian 15.20-0+deb12u1)".
        pg_dump_version: String,
    }

    /// Drops the test database when it goes out of scope, even on panic.
    struct DatabaseGuard(String);

    impl Drop for DatabaseGuard {
        fn drop(&mut self) {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\"", self.0);
            match psql("postgres").args(["-c", &sql]).output() {
                Ok(output) if output.status.success() => {}
                Ok(output) => eprintln!(
                    "could not drop test database {}: {}",
                    self.0,
                    String::from_utf8_lossy(&output.stderr)
                ),
                Err(error) => eprintln!("could not drop test database {}: {error}", self.0),
            }
        }
    }

    fn pg_command(program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .args(["-h", &pg_host(), "-p", &pg_port(), "-U", PG_USER])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null());
        command
    }

    fn psql(database: &str) -> Command {
        let mut command = pg_command("psql");
        command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database]);
        command
    }

    fn run(command: &mut Command, what: &str) -> Output {
        let output = command
            .output()
            .unwrap_or_else(|error| panic!("could not run {what}: {error}"));
        assert!(
            output.status.success(),
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn build_fixture() -> Fixture {
        let probe = psql("postgres").args(["-Atc", "SELECT 1"]).output();
        match probe {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!(
                "PostgreSQL is not reachable at {}:{} as user {PG_USER}; \
                 these tests need a running server: {}",
                pg_host(),
                pg_port(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => panic!("could not run psql (is PostgreSQL installed?): {error}"),
        }

        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let database = format!("dbkeep_pgarch_{}_{nanos}", std::process::id());
        run(pg_command("createdb").arg(&database), "createdb");
        let guard = DatabaseGuard(database.clone());

        run(psql(&database).args(["-c", SETUP_SQL]), "psql setup");
        let uncompressed = run(
            pg_command("pg_dump").args(["-Fc", "-Z0", "-d", &database]),
            "pg_dump -Fc -Z0",
        )
        .stdout;
        let compressed = run(
            pg_command("pg_dump").args(["-Fc", "-d", &database]),
            "pg_dump -Fc",
        )
        .stdout;
        drop(guard);

        let archive_path = std::env::temp_dir().join(format!("{database}.dump"));
        std::fs::write(&archive_path, &uncompressed).expect("write archive to a temp file");
        let listing = Command::new("pg_restore")
            .arg("-l")
            .arg(&archive_path)
            .output();
        let _ = std::fs::remove_file(&archive_path);
        let listing = listing.expect("run pg_restore -l");
        assert!(listing.status.success(), "pg_restore -l failed");
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();

        let version = run(
            Command::new("pg_dump").arg("--version"),
            "pg_dump --version",
        );
        let version = String::from_utf8_lossy(&version.stdout);
        let pg_dump_version = version
            .trim()
            .strip_prefix("pg_dump (PostgreSQL) ")
            .unwrap_or_else(|| panic!("unexpected pg_dump --version output: {version}"))
            .to_string();

        Fixture {
            database,
            uncompressed,
            compressed,
            listing,
            pg_dump_version,
        }
    }

    fn fixture() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(build_fixture)
    }

    /// Value of a `;     Key: value` header line of `pg_restore -l`.
    fn listing_value<'a>(listing: &'a str, key: &str) -> &'a str {
        listing
            .lines()
            .filter_map(|line| line.trim_start_matches(';').trim().strip_prefix(key))
            .find_map(|rest| rest.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no `{key}` in pg_restore -l output:\n{listing}"))
    }

    fn check(bytes: &[u8]) -> Result<ArchiveSummary, String> {
        let mut checker = PgArchiveCheck::new();
        checker.update(bytes);
        assert_eq!(checker.bytes_seen(), bytes.len() as u64);
        checker.finish()
    }

    fn check_in_chunks(bytes: &[u8], rng: &mut XorShift, max_chunk: usize) -> ArchiveSummary {
        let mut checker = PgArchiveCheck::default();
        let mut rest = bytes;
        while !rest.is_empty() {
            let size = rng.range(1, max_chunk).min(rest.len());
            let (chunk, tail) = rest.split_at(size);
            checker.update(chunk);
            checker.update(&[]);
            rest = tail;
        }
        assert_eq!(checker.bytes_seen(), bytes.len() as u64);
        checker
            .finish()
            .unwrap_or_else(|error| panic!("chunked archive rejected: {error}"))
    }

    fn expected_summary(fixture: &Fixture) -> ArchiveSummary {
        let listing = &fixture.listing;
        let dump_version = listing_value(listing, "Dump Version");
        let parts: Vec<u8> = dump_version
            .split(['.', '-'])
            .map(|part| part.parse().expect("numeric dump version"))
            .collect();
        let data_blocks = listing
            .lines()
            .filter(|line| !line.starts_with(';'))
            .filter(|line| line.contains(" TABLE DATA ") || line.contains(" BLOBS "))
            .count();
        assert_eq!(
            listing_value(listing, "Dumped by pg_dump version"),
            fixture.pg_dump_version
        );
        assert_eq!(listing_value(listing, "dbname"), fixture.database);
        ArchiveSummary {
            version: (parts[0], parts[1], parts[2]),
            toc_entries: listing_value(listing, "TOC Entries")
                .parse()
                .expect("numeric TOC entry count"),
            data_blocks,
            database: fixture.database.clone(),
            dump_version: fixture.pg_dump_version.clone(),
        }
    }

    #[test]
    fn accepts_the_whole_archive_in_one_update() {
        let fixture = fixture();
        let expected = expected_summary(fixture);
        // Three tables (one empty) and at least one large-object block.
        assert!(expected.data_blocks >= 4, "{expected:?}");
        assert_eq!(check(&fixture.uncompressed), Ok(expected));
    }

    #[test]
    fn accepts_the_archive_fed_in_random_chunks() {
        let fixture = fixture();
        let expected = expected_summary(fixture);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3 {
            assert_eq!(
                check_in_chunks(&fixture.uncompressed, &mut rng, 7),
                expected
            );
        }
        for _ in 0..20 {
            assert_eq!(
                check_in_chunks(&fixture.uncompressed, &mut rng, 65536),
                expected
            );
        }
    }

    #[test]
    fn accepts_a_default_compressed_archive() {
        let fixture = fixture();
        let expected = expected_summary(fixture);
        assert_eq!(check(&fixture.compressed), Ok(expected.clone()));
        let mut rng = XorShift(77);
        assert_eq!(check_in_chunks(&fixture.compressed, &mut rng, 7), expected);
        assert_eq!(
            check_in_chunks(&fixture.compressed, &mut rng, 65536),
            expected
        );
    }

    /// All lengths up to 4096, the last 4096, and about 2000 evenly spaced ones between.
    fn prefix_lengths(total: usize) -> BTreeSet<usize> {
        let mut lengths: BTreeSet<usize> = (0..=total.min(4096)).collect();
        lengths.extend(total.saturating_sub(4096)..=total);
        let step = (total / 2000).max(1);
        lengths.extend((0..=total).step_by(step));
        lengths.remove(&total);
        lengths
    }

    fn assert_prefixes_rejected(archive: &[u8]) -> usize {
        let lengths = prefix_lengths(archive.len());
        let mut inside_toc = 0;
        let mut inside_data = 0;
        for &length in &lengths {
            match check(&archive[..length]) {
                Ok(summary) => panic!("prefix of {length} bytes accepted: {summary:?}"),
                Err(message) => {
                    assert!(
                        message.starts_with("archive ends") || message == "archive is empty",
                        "prefix of {length} bytes: unexpected message {message:?}"
                    );
                    inside_toc += usize::from(message.contains("inside the TOC"));
                    inside_data += usize::from(message.contains("inside the data"));
                }
            }
        }
        assert!(inside_toc > 0 && inside_data > 0);
        lengths.len()
    }

    #[test]
    fn rejects_every_strict_prefix() {
        let fixture = fixture();
        let checked = assert_prefixes_rejected(&fixture.uncompressed);
        println!(
            "rejected {checked} strict prefixes of the {}-byte -Z0 archive",
            fixture.uncompressed.len()
        );
        let checked = assert_prefixes_rejected(&fixture.compressed);
        println!(
            "rejected {checked} strict prefixes of the {}-byte compressed archive",
            fixture.compressed.len()
        );
    }

    #[test]
    fn prefix_messages_name_the_missing_part() {
        let archive = &fixture().uncompressed;
        let expected = expected_summary(fixture());
        let message = check(&archive[..archive.len() - 1]).expect_err("truncated");
        assert!(
            message.starts_with("archive ends inside the data of TOC entry")
                && message.contains(&format!(
                    "({} of {} data blocks seen)",
                    expected.data_blocks - 1,
                    expected.data_blocks
                )),
            "{message}"
        );
        assert_eq!(
            check(&archive[..3]),
            Err("archive ends inside the header (after 3 bytes)".to_string())
        );
        assert_eq!(check(&[]), Err("archive is empty".to_string()));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let archive = &fixture().uncompressed;
        let mut rng = XorShift(4242);
        let mut suffixes = vec![vec![0u8], vec![1u8], vec![3u8], archive.clone()];
        suffixes.extend((0..20).map(|_| {
            let length = rng.range(1, 300);
            rng.bytes(length)
        }));
        for suffix in suffixes {
            let mut bytes = archive.clone();
            bytes.extend_from_slice(&suffix);
            let message = check(&bytes).expect_err("trailing bytes accepted");
            assert!(
                message.starts_with("unexpected bytes after the last data block"),
                "{message}"
            );
            let message = check_rejected_in_chunks(&bytes, &mut rng);
            assert!(
                message.starts_with("unexpected bytes after the last data block"),
                "{message}"
            );
        }
    }

    fn check_rejected_in_chunks(bytes: &[u8], rng: &mut XorShift) -> String {
        let mut checker = PgArchiveCheck::new();
        for chunk in bytes.chunks(rng.range(1, 4096)) {
            checker.update(chunk);
        }
        checker.finish().expect_err("accepted")
    }

    #[test]
    fn rejects_a_wrong_magic() {
        let magic_error = Err(missing_magic());
        let mut archive = fixture().uncompressed.clone();
        archive[0] = b'X';
        assert_eq!(check(&archive), magic_error);
        archive[0] = b'P';
        archive[4] = b'Q';
        assert_eq!(check(&archive), magic_error);
        assert_eq!(check(b"--\n-- PostgreSQL database dump\n--\n"), magic_error);
        assert_eq!(check(b"PGX"), magic_error);
        assert_eq!(
            check(b"PGD"),
            Err("archive ends inside the header (after 3 bytes)".to_string())
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0xdead_beef_cafe_f00d);
        for _ in 0..3000 {
            let length = rng.range(0, 600);
            let bytes = rng.bytes(length);
            assert!(check(&bytes).is_err());
            let mut magic_first = MAGIC.to_vec();
            magic_first.extend_from_slice(&bytes);
            assert!(check(&magic_first).is_err());
        }
        let archive = &fixture().uncompressed;
        for _ in 0..2000 {
            // A real header and part of the TOC, then noise.
            let keep = rng.range(0, 3000.min(archive.len()));
            let mut bytes = archive[..keep].to_vec();
            let length = rng.range(0, 400);
            bytes.extend(rng.bytes(length));
            let mut checker = PgArchiveCheck::new();
            for chunk in bytes.chunks(rng.range(1, 64)) {
                checker.update(chunk);
            }
            let _ = checker.finish();
        }
        for _ in 0..200 {
            // Random corruption anywhere: the verdict may go either way, but never panics.
            let mut bytes = archive.clone();
            for _ in 0..rng.range(1, 8) {
                let index = rng.range(0, bytes.len() - 1);
                bytes[index] = rng.next() as u8;
            }
            let _ = check(&bytes);
        }
    }

    /// Builds small archives by hand, for versions the local pg_dump does not write.
    struct Builder {
        bytes: Vec<u8>,
        minor: u8,
    }

    impl Builder {
        fn new(minor: u8) -> Self {
            let mut builder = Self {
                bytes: MAGIC.to_vec(),
                minor,
            };
            builder.bytes.extend([1, minor, 0, 4, 8, FORMAT_CUSTOM]);
            if minor >= 15 {
                builder.bytes.push(0);
            } else {
                builder.int(0);
            }
            for value in [1, 2, 3, 4, 5, 124, 0] {
                builder.int(value);
            }
            builder.string(Some("synthetic"));
            builder.string(Some("17.0"));
            builder.string(Some("17.0 (test)"));
            builder
        }

        fn int(&mut self, value: i64) -> &mut Self {
            self.bytes.push(u8::from(value < 0));
            self.bytes
                .extend_from_slice(&(value.unsigned_abs() as u32).to_le_bytes());
            self
        }

        fn string(&mut self, text: Option<&str>) -> &mut Self {
            match text {
                Some(text) => {
                    self.int(text.len() as i64);
                    self.bytes.extend_from_slice(text.as_bytes());
                }
                None => {
                    self.int(-1);
                }
            }
            self
        }

        fn toc_entry(&mut self, dump_id: i64, has_data: bool, deps: &[&str]) -> &mut Self {
            self.int(dump_id).int(i64::from(has_data));
            for text in ["1259", "16384", "tag", "TABLE DATA"] {
                self.string(Some(text));
            }
            self.int(2);
            self.string(Some(""))
                .string(None)
                .string(Some("COPY x FROM stdin;\n"));
            self.string(Some("public")).string(Some(""));
            if self.minor >= 14 {
                self.string(Some("heap"));
            }
            if self.minor >= 16 {
                self.int(i64::from(b'r'));
            }
            self.string(Some("postgres")).string(Some("false"));
            for dep in deps {
                self.string(Some(dep));
            }
            self.string(None);
            let flag = if has_data {
                K_OFFSET_POS_NOT_SET
            } else {
                K_OFFSET_NO_DATA
            };
            self.bytes.push(flag);
            self.bytes.extend_from_slice(&[0; 8]);
            self
        }

        fn chunk(&mut self, payload: &[u8]) -> &mut Self {
            self.int(payload.len() as i64);
            self.bytes.extend_from_slice(payload);
            self
        }
    }

    fn synthetic(minor: u8) -> Vec<u8> {
        let mut builder = Builder::new(minor);
        builder.int(3);
        builder.toc_entry(5, true, &["4"]);
        builder.toc_entry(6, false, &[]);
        builder.toc_entry(7, true, &["", "6"]);
        builder.bytes.push(BLK_DATA);
        builder.int(5).chunk(b"1\tone\n").chunk(b"2\ttwo\n").int(0);
        builder.bytes.push(BLK_BLOBS);
        builder.int(7);
        builder.int(16400).chunk(b"hello").int(0);
        builder.int(-5).int(0); // OID above INT_MAX, empty large object
        builder.int(0);
        builder.bytes
    }

    #[test]
    fn accepts_synthetic_archives_of_every_supported_version() {
        for minor in MIN_MINOR_VERSION..=MAX_MINOR_VERSION {
            let archive = synthetic(minor);
            let summary = check(&archive).unwrap_or_else(|error| panic!("1.{minor}: {error}"));
            assert_eq!(
                summary,
                ArchiveSummary {
                    version: (1, minor, 0),
                    toc_entries: 3,
                    data_blocks: 2,
                    database: "synthetic".to_string(),
                    dump_version: "17.0 (test)".to_string(),
                }
            );
            for length in 0..archive.len() {
                assert!(
                    check(&archive[..length]).is_err(),
                    "1.{minor} prefix {length}"
                );
            }
        }
    }

    #[test]
    fn accepts_an_archive_without_data() {
        let mut builder = Builder::new(16);
        builder.int(1).toc_entry(1, false, &[]);
        let summary = check(&builder.bytes).expect("no data blocks announced");
        assert_eq!((summary.toc_entries, summary.data_blocks), (1, 0));
        builder.bytes.push(BLK_DATA);
        assert!(
            check(&builder.bytes)
                .expect_err("block not announced")
                .starts_with("unexpected bytes after the last data block")
        );
    }

    #[test]
    fn rejects_structural_errors() {
        let mut unsupported = synthetic(14);
        unsupported[6] = 17;
        assert_eq!(
            check(&unsupported),
            Err(
                "unsupported archive version 1.17.0 (supported: 1.12 to 1.16) (at byte 5)"
                    .to_string()
            )
        );
        let mut directory_format = synthetic(14);
        directory_format[10] = 5;
        assert!(
            check(&directory_format)
                .expect_err("format 5")
                .starts_with("not a custom-format archive")
        );

        let mut builder = Builder::new(15);
        builder.int(1).toc_entry(9, true, &[]);
        let toc_end = builder.bytes.len();
        builder.bytes.push(BLK_DATA);
        builder.int(8).int(0);
        let message = check(&builder.bytes).expect_err("wrong block id");
        assert!(
            message.starts_with("found the data of TOC entry 8 where TOC entry 9 was expected"),
            "{message}"
        );

        builder.bytes.truncate(toc_end);
        builder.bytes.push(2);
        let message = check(&builder.bytes).expect_err("unknown block type");
        assert!(
            message.starts_with("unknown data block type 2"),
            "{message}"
        );

        builder.bytes.truncate(toc_end);
        builder.bytes.push(BLK_DATA);
        builder.int(9).int(-4);
        let message = check(&builder.bytes).expect_err("negative chunk");
        assert!(message.starts_with("negative chunk length -4"), "{message}");

        let mut bad_flag = Builder::new(13);
        bad_flag.int(1).toc_entry(1, false, &[]);
        let flag_index = bad_flag.bytes.len() - 9;
        bad_flag.bytes[flag_index] = 7;
        let message = check(&bad_flag.bytes).expect_err("bad offset flag");
        assert!(
            message.starts_with("invalid data offset flag 7"),
            "{message}"
        );

        let mut bad_id = Builder::new(13);
        bad_id.int(1).toc_entry(0, false, &[]);
        let message = check(&bad_id.bytes).expect_err("dump id 0");
        assert!(message.starts_with("invalid dump id 0"), "{message}");
    }

    #[test]
    fn errors_are_sticky() {
        let mut checker = PgArchiveCheck::new();
        checker.update(b"NOTADUMP");
        checker.update(&synthetic(14));
        assert_eq!(checker.bytes_seen(), 8 + synthetic(14).len() as u64);
        assert_eq!(checker.finish(), Err(missing_magic()));
    }
}
