//! MariaDB/MySQL binary logs for point-in-time recovery (`binlog: true`):
//! where a dump stands in the binlog, the names of binlog files, and the
//! check that reads the position from mariadb-dump's `--master-data=2`
//! comments as the dump streams by.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::DumpCheck;

/// Where a dump stands in the server's binary log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinlogPosition {
    /// The binlog file the dump's snapshot is in.
    pub file: String,
    /// The position in it just after the snapshot.
    pub position: u64,
    /// The GTID position (MariaDB), if the dump gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl BinlogPosition {
    /// Checks a position read back from a storage (hostile input).
    pub fn check(&self) -> Result<(), String> {
        let gtid_ok = self.gtid.as_deref().is_none_or(|g| {
            g.len() < 4096
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
        });
        if binlog_name_ok(&self.file) && self.position >= 4 && gtid_ok {
            Ok(())
        } else {
            Err(
                "its binlog position (file, offset, GTID) does not look like one a server gives"
                    .into(),
            )
        }
    }
}

/// The sequence number of a binlog file name (`mysql-bin.000042` → 42).
pub fn binlog_number(name: &str) -> Option<u64> {
    let (_, number) = name.rsplit_once('.')?;
    (number.len() >= 6 && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse().ok())
        .flatten()
}

/// Whether `name` is a binlog file name a server writes: a base name of
/// letters, digits, `_`, `-` and `.` that does not start with `-` or `.`,
/// then a dot and a sequence number of at least six digits.
pub fn binlog_name_ok(name: &str) -> bool {
    let Some((base, _)) = name.rsplit_once('.') else {
        return false;
    };
    !base.is_empty()
        && name.len() <= 255
        && !base.starts_with(['-', '.'])
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && binlog_number(name).is_some()
}

/// The other files of a binlog chain between `from` and `to` (inclusive),
/// by sequence number: `from`'s base name with each number in between.
pub fn binlog_chain(from: &str, to_number: u64) -> Vec<String> {
    let Some((base, number)) = from.rsplit_once('.') else {
        return Vec::new();
    };
    let width = number.len();
    let Some(start) = binlog_number(from) else {
        return Vec::new();
    };
    (start..=to_number)
        .map(|n| format!("{base}.{n:0width$}"))
        .collect()
}

/// Reads `-- CHANGE MASTER TO MASTER_LOG_FILE='…', MASTER_LOG_POS=…;` and
/// `-- SET GLOBAL gtid_slave_pos='…';` from the start of the dump's lines,
/// and leaves what it found in `found`. It never fails a dump itself: a
/// dump without a position is refused by the backup, which asked for one.
pub struct PositionCheck {
    line: Vec<u8>,
    capturing: bool,
    found: Arc<Mutex<Option<BinlogPosition>>>,
}

/// The longest line looked at.
const LINE_MAX: usize = 1024;

impl PositionCheck {
    /// A check that leaves the position in `found`.
    pub fn new(found: Arc<Mutex<Option<BinlogPosition>>>) -> PositionCheck {
        PositionCheck {
            line: Vec::new(),
            capturing: true,
            found,
        }
    }

    fn judge(&mut self) {
        let text = String::from_utf8_lossy(&self.line).into_owned();
        let mut found = self.found.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rest) = text.strip_prefix("-- CHANGE MASTER TO MASTER_LOG_FILE='") {
            let Some((file, rest)) = rest.split_once('\'') else {
                return;
            };
            let Some(pos) = rest
                .strip_prefix(", MASTER_LOG_POS=")
                .and_then(|p| p.trim_end_matches(';').trim().parse::<u64>().ok())
            else {
                return;
            };
            let gtid = found.as_ref().and_then(|f| f.gtid.clone());
            *found = Some(BinlogPosition {
                file: file.to_string(),
                position: pos,
                gtid,
            });
        } else if let Some(rest) = text.strip_prefix("-- SET GLOBAL gtid_slave_pos='")
            && let Some((gtid, _)) = rest.split_once('\'')
            && let Some(f) = found.as_mut()
        {
            f.gtid = Some(gtid.to_string());
        }
    }
}

impl DumpCheck for PositionCheck {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                if self.capturing {
                    self.judge();
                }
                self.line.clear();
                self.capturing = true;
            } else if self.capturing {
                if self.line.len() < LINE_MAX
                    && (self.line.len() >= 3 || b"-- ".get(self.line.len()) == Some(&b))
                {
                    self.line.push(b);
                } else {
                    self.capturing = false;
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Two checks on one stream: both must pass.
pub struct Both(pub Box<dyn DumpCheck>, pub Box<dyn DumpCheck>);

impl DumpCheck for Both {
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
        self.1.update(bytes);
    }

    fn finish(&mut self) -> Result<(), String> {
        let a = self.0.finish();
        let b = self.1.finish();
        a.and(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_position_is_read_from_its_comments() {
        let found = Arc::new(Mutex::new(None));
        let mut c = PositionCheck::new(found.clone());
        let dump = "-- MariaDB dump 10.19\n--\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\
                    -- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=589;\n\
                    CREATE TABLE t (v text);\nINSERT INTO t VALUES ('-- CHANGE MASTER TO MASTER_LOG_FILE=''x.000009'', MASTER_LOG_POS=9;');\n\
                    -- SET GLOBAL gtid_slave_pos='0-1-4';\n-- Dump completed\n";
        for chunk in dump.as_bytes().chunks(7) {
            c.update(chunk);
        }
        assert!(c.finish().is_ok());
        assert_eq!(
            found.lock().unwrap().clone(),
            Some(BinlogPosition {
                file: "binlog.000002".into(),
                position: 589,
                gtid: Some("0-1-4".into())
            })
        );
    }

    #[test]
    fn binlog_names_are_checked() {
        for ok in ["binlog.000001", "mysql-bin.000123", "host_1-bin.1234567"] {
            assert!(binlog_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "binlog",
            "binlog.1",
            "-x.000001",
            ".x.000001",
            "a/b.000001",
            "binlog.000001.json",
            "x y.000001",
        ] {
            assert!(!binlog_name_ok(bad), "{bad}");
        }
        assert_eq!(
            binlog_chain("binlog.000008", 11),
            [
                "binlog.000008",
                "binlog.000009",
                "binlog.000010",
                "binlog.000011"
            ]
        );
        assert!(
            BinlogPosition {
                file: "binlog.000002".into(),
                position: 589,
                gtid: None
            }
            .check()
            .is_ok()
        );
        assert!(
            BinlogPosition {
                file: "../x".into(),
                position: 589,
                gtid: None
            }
            .check()
            .is_err()
        );
    }
}
