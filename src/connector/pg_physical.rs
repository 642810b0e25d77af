//! PostgreSQL base backups (`method: physical`): what `pg_basebackup -Ft`
//! streams, and what a backup records to be restorable to a point in time.
//!
//! The tar stream is checked as it passes ([`base_check`]): every header and
//! path must be sound (no links: extra tablespaces are refused), the end
//! marker must arrive, and `backup_label` and `backup_manifest` must be in
//! it. From those two files come the start and stop of the WAL the backup
//! needs ([`BaseBackup`]).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use super::DumpCheck;
use super::pg_wal::{self as wal, Lsn};
use crate::util::chan::ChanWriter;

/// What a base backup needs to be restored, as its manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseBackup {
    /// The cluster's system identifier.
    pub system_identifier: u64,
    /// The timeline the backup was taken on.
    pub timeline: u32,
    /// Where the WAL it needs starts (`backup_label`'s START WAL LOCATION).
    pub start_lsn: String,
    /// Where that WAL ends: the backup is consistent from here on.
    pub stop_lsn: String,
    /// The first WAL segment it needs.
    pub start_wal: String,
    /// The last WAL segment it needs.
    pub stop_wal: String,
    /// The size of the cluster's WAL segments, in bytes.
    pub wal_segment_size: u64,
    /// The server's clock when the backup ended (UTC): a recovery target
    /// time must come after it.
    pub stopped_at: chrono::DateTime<chrono::Utc>,
}

impl BaseBackup {
    /// The first and last segment numbers the backup needs.
    pub fn segments(&self) -> (u64, u64) {
        let seg = self.wal_segment_size;
        let start = wal::parse_segment(&self.start_wal, seg).map_or(0, |(_, s)| s);
        let stop = wal::parse_segment(&self.stop_wal, seg).map_or(start, |(_, s)| s);
        (start, stop.max(start))
    }

    /// The stop position.
    pub fn stop(&self) -> Lsn {
        Lsn::parse(&self.stop_lsn).unwrap_or_default()
    }

    /// Checks a record read back from a storage (hostile input).
    pub fn check(&self) -> Result<(), String> {
        let seg = self.wal_segment_size;
        let sane_size = seg.is_power_of_two() && ((1 << 20)..=(1 << 30)).contains(&seg);
        let start = Lsn::parse(&self.start_lsn).ok();
        let stop = Lsn::parse(&self.stop_lsn).ok();
        let names = [&self.start_wal, &self.stop_wal]
            .iter()
            .all(|n| wal::parse_segment(n, seg).is_some_and(|(t, _)| t == self.timeline));
        match (sane_size, start, stop, names) {
            (true, Some(a), Some(b), true) if a <= b => Ok(()),
            _ => Err(
                "its base backup record (LSNs, segments, timeline, segment size) does not add up"
                    .into(),
            ),
        }
    }
}

/// What `backup_label` and `backup_manifest` say.
#[derive(Debug, Default, Clone)]
pub struct Label {
    /// START WAL LOCATION.
    pub start: Option<Lsn>,
    /// START TIMELINE.
    pub timeline: Option<u32>,
    /// The end of the WAL range in `backup_manifest`.
    pub stop: Option<Lsn>,
    /// Whether `backup_manifest` was seen.
    pub manifest: bool,
}

impl Label {
    fn read_label(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("START WAL LOCATION: ") {
                self.start = rest
                    .split_whitespace()
                    .next()
                    .and_then(|l| Lsn::parse(l).ok());
            } else if let Some(rest) = line.strip_prefix("START TIMELINE: ") {
                self.timeline = rest.trim().parse().ok();
            }
        }
    }

    fn read_manifest(&mut self, bytes: &[u8]) {
        #[derive(Deserialize)]
        struct Manifest {
            #[serde(rename = "WAL-Ranges", default)]
            wal_ranges: Vec<Range>,
        }
        #[derive(Deserialize)]
        struct Range {
            #[serde(rename = "End-LSN")]
            end: String,
        }
        self.manifest = true;
        if let Ok(m) = serde_json::from_slice::<Manifest>(bytes) {
            self.stop = m
                .wal_ranges
                .iter()
                .filter_map(|r| Lsn::parse(&r.end).ok())
                .max();
        }
    }

    /// The backup's record, with what the server said besides.
    pub fn base_backup(
        &self,
        system_identifier: u64,
        wal_segment_size: u64,
        stopped_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<BaseBackup, String> {
        let (Some(start), Some(tli), Some(stop)) = (self.start, self.timeline, self.stop) else {
            return Err(
                "the base backup's backup_label or backup_manifest lacks its WAL location".into(),
            );
        };
        // The WAL up to (not including) `stop` is needed.
        let last = Lsn(stop.0.saturating_sub(1).max(start.0));
        let seg = wal_segment_size;
        Ok(BaseBackup {
            system_identifier,
            timeline: tli,
            start_lsn: start.to_string(),
            stop_lsn: stop.to_string(),
            start_wal: wal::segment_name(tli, wal::segment_of(start, seg), seg),
            stop_wal: wal::segment_name(tli, wal::segment_of(last, seg), seg),
            wal_segment_size: seg,
            stopped_at,
        })
    }
}

/// Checks a `pg_basebackup -Ft` stream as it passes.
pub struct BaseCheck {
    tx: Option<ChanWriter>,
    walker: Option<JoinHandle<std::io::Result<crate::util::tar::Summary>>>,
    label: Arc<Mutex<Label>>,
    seen: u64,
}

/// The check of a base backup's stream, and where it leaves what
/// `backup_label` and `backup_manifest` say.
pub fn base_check() -> (Box<dyn DumpCheck>, Arc<Mutex<Label>>) {
    let (tx, rx) = crate::util::chan::channel(4);
    let label = Arc::new(Mutex::new(Label::default()));
    let found = label.clone();
    let walker = std::thread::spawn(move || {
        let reader = std::io::BufReader::with_capacity(256 << 10, rx);
        crate::util::tar::scan(reader, &mut |name, bytes| {
            let mut l = found.lock().unwrap_or_else(|e| e.into_inner());
            match name {
                "backup_label" => l.read_label(&String::from_utf8_lossy(bytes)),
                _ => l.read_manifest(bytes),
            }
        })
    });
    (
        Box::new(BaseCheck {
            tx: Some(tx),
            walker: Some(walker),
            label: label.clone(),
            seen: 0,
        }),
        label,
    )
}

impl DumpCheck for BaseCheck {
    fn update(&mut self, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        if let Some(tx) = &mut self.tx
            && tx.write_all(bytes).is_err()
        {
            // The walker stopped at an error; `finish` reports it.
            self.tx = None;
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.tx = None;
        let result = match self.walker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => return Err("the tar check stopped unexpectedly".into()),
            None => return Ok(()),
        };
        if self.seen == 0 {
            return Err("pg_basebackup produced no output".into());
        }
        result.map_err(|e| format!("the base backup's tar stream is not sound: {e}"))?;
        let label = self.label.lock().unwrap_or_else(|e| e.into_inner());
        if label.start.is_none() || label.timeline.is_none() {
            return Err("the base backup holds no usable backup_label".into());
        }
        if !label.manifest || label.stop.is_none() {
            return Err("the base backup holds no usable backup_manifest (pg_basebackup 13 or newer writes one)".into());
        }
        Ok(())
    }
}

/// pg_basebackup's output, watched: a base backup streams without pause
/// until the server waits, at the very end, for its last WAL segment to be
/// archived, and it waits for ever when `archive_command` fails. Nothing
/// for `limit` stops pg_basebackup and fails the backup.
pub struct Watched {
    inner: Option<crate::util::process::ChildReader>,
    last: Arc<std::sync::atomic::AtomicU64>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    started: std::time::Instant,
    limit: std::time::Duration,
}

impl Watched {
    /// Watches `inner`.
    pub fn new(inner: crate::util::process::ChildReader, limit: std::time::Duration) -> Watched {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let last = Arc::new(AtomicU64::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let started = std::time::Instant::now();
        let pid = inner.id();
        let (l, st, sp) = (last.clone(), stalled.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let idle = started.elapsed().as_millis() as u64 - l.load(Ordering::Relaxed);
                if idle > limit.as_millis() as u64 {
                    st.store(true, Ordering::Relaxed);
                    crate::util::signal::kill_group(pid, libc::SIGKILL);
                    return;
                }
            }
        });
        Watched {
            inner: Some(inner),
            last,
            stalled,
            stop,
            started,
            limit,
        }
    }

    fn why(&self) -> String {
        format!(
            "pg_basebackup sent nothing for {} s, which is how the server waits for the backup's WAL to be \
             archived: check that archive_command is `dbkeep -c CONFIG wal push JOB %p` and that pg_stat_archiver \
             shows no failures, or raise `wal_wait`",
            self.limit.as_secs()
        )
    }
}

impl std::io::Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        let Some(inner) = &mut self.inner else {
            return Ok(0);
        };
        let n = inner.read(buf);
        if self.stalled.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(self.why()));
        }
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        n
    }
}

impl super::DumpSource for Watched {
    fn finish(mut self: Box<Self>) -> anyhow::Result<String> {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        let result = match self.inner.take() {
            Some(inner) => inner.finish(),
            None => Ok(String::new()),
        };
        if self.stalled.load(Ordering::Relaxed) {
            anyhow::bail!("{}", self.why());
        }
        result
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_and_manifest_give_the_wal_range() {
        let mut l = Label::default();
        l.read_label(
            "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n\
             BACKUP METHOD: streamed\nSTART TIMELINE: 1\n",
        );
        l.read_manifest(
            br#"{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [],
                "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/3000000"}]}"#,
        );
        let b = l.base_backup(42, 16 << 20, chrono::Utc::now()).unwrap();
        assert_eq!(b.start_wal, "000000010000000000000002");
        // The range ends at a segment boundary: the segment before it is the last needed.
        assert_eq!(b.stop_wal, "000000010000000000000002");
        assert_eq!(b.segments(), (2, 2));
        assert!(b.check().is_ok());
        let mut bad = b.clone();
        bad.stop_wal = "000000020000000000000009".into();
        assert!(bad.check().is_err());
        assert!(
            Label::default()
                .base_backup(1, 16 << 20, chrono::Utc::now())
                .is_err()
        );
    }
}
