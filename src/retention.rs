//! Which backups to keep: restic's `forget` rules, and pruning a storage by them.
//!
//! # Rules
//!
//! Backups are taken newest first. Each `keep_*` rule has a counter and a
//! calendar bucket (hour, day, ISO week, month, year, in the job's time zone):
//! - `keep_last: n` keeps the n newest backups;
//! - `keep_hourly: n` keeps the newest backup of each of the n newest hours
//!   that have a backup, and likewise `keep_daily`, `keep_weekly`,
//!   `keep_monthly`, `keep_yearly`;
//! - `keep_within: 30d` keeps every backup started less than 30 days before
//!   the newest one.
//!
//! A backup is kept when any rule keeps it. Hours, days or weeks without a
//! backup do not use up a counter. The newest backup is always kept, whatever
//! the rules say; with no rule at all, every backup is kept.
//!
//! # Deleting
//!
//! A backup's manifest is deleted first and its data second, so a backup that
//! is half deleted is invisible to `list` and `restore`. Such folders, and
//! the leftovers of runs that died, have no manifest; they are removed once
//! they are older than `incomplete_after` (by the time in their backup id).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::backup::Target;
use crate::config::Retention;
use crate::manifest::{self, MANIFEST, Manifest};

/// Why a backup is kept.
pub fn decide(policy: &Retention, times: &[DateTime<Utc>], tz: Tz) -> Vec<Vec<String>> {
    let mut reasons = vec![Vec::new(); times.len()];
    let Some(newest) = times.iter().max().copied() else {
        return reasons;
    };
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|a, b| times[*b].cmp(&times[*a]).then(b.cmp(a)));
    type Bucket = fn(DateTime<Tz>) -> i64;
    let buckets: [(&str, u32, Bucket); 5] = [
        ("hourly", policy.keep_hourly, |t| {
            i64::from(t.year()) * 1_000_000 + i64::from(t.ordinal()) * 100 + i64::from(t.hour())
        }),
        ("daily", policy.keep_daily, |t| {
            i64::from(t.year()) * 1000 + i64::from(t.ordinal())
        }),
        ("weekly", policy.keep_weekly, |t| {
            let w = t.iso_week();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }),
        ("monthly", policy.keep_monthly, |t| {
            i64::from(t.year()) * 100 + i64::from(t.month())
        }),
        ("yearly", policy.keep_yearly, |t| i64::from(t.year())),
    ];
    let mut left: Vec<u32> = buckets.iter().map(|b| b.1).collect();
    let mut last: Vec<Option<i64>> = vec![None; buckets.len()];
    for (rank, &i) in order.iter().enumerate() {
        let t = times[i];
        if (rank as u32) < policy.keep_last {
            reasons[i].push("last".to_string());
        }
        let local = t.with_timezone(&tz);
        for (b, (name, _, bucket)) in buckets.iter().enumerate() {
            if left[b] == 0 {
                continue;
            }
            let value = bucket(local);
            if last[b] != Some(value) {
                last[b] = Some(value);
                left[b] -= 1;
                reasons[i].push(name.to_string());
            }
        }
        if let Some(within) = policy.keep_within
            && newest.signed_duration_since(t).to_std().unwrap_or_default() < within
        {
            reasons[i].push(format!("within {}", crate::duration::format(within)));
        }
    }
    let newest_index = order[0];
    if reasons[newest_index].is_empty() || !policy.has_rules() {
        reasons[newest_index].insert(0, "newest".to_string());
    }
    if !policy.has_rules() {
        for r in reasons.iter_mut() {
            if r.is_empty() {
                r.push("no retention rules".to_string());
            }
        }
    }
    reasons
}

/// What happens to one backup folder.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The storage's name.
    pub storage: String,
    /// The backup id.
    pub id: String,
    /// When it started (from the manifest, or the id for incomplete ones).
    pub started_at: DateTime<Utc>,
    /// `keep` or `delete`.
    pub action: &'static str,
    /// The rules that keep it; empty for deletions.
    pub reasons: Vec<String>,
    /// Whether the folder has no manifest (a dead run or a half-deleted backup).
    pub incomplete: bool,
    /// Whether the deletion was carried out (false with `--dry-run`).
    pub done: bool,
}

/// A backup folder found in a storage.
struct Folder {
    dir: String,
    id: String,
    keys: Vec<String>,
    manifest: Option<Manifest>,
}

fn folders(target: &Target, job: &str) -> Result<Vec<Folder>> {
    let base = manifest::join_key(&[&target.prefix, job]);
    let keys = target.storage.list(&base).with_context(|| {
        format!(
            "cannot list the backups of job `{job}` in storage `{}`",
            target.storage.name()
        )
    })?;
    let mut by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in keys {
        let rel = if base.is_empty() {
            key.as_str()
        } else {
            match key.strip_prefix(&format!("{base}/")) {
                Some(r) => r,
                None => continue,
            }
        };
        let Some((id, _)) = rel.split_once('/') else {
            continue; // the job's lock, and anything else beside the folders
        };
        by_dir.entry(id.to_string()).or_default().push(key.clone());
    }
    let mut out = Vec::new();
    for (id, keys) in by_dir {
        let dir = manifest::join_key(&[&base, &id]);
        let manifest_key = manifest::join_key(&[&dir, MANIFEST]);
        let manifest = if keys.contains(&manifest_key) {
            let bytes = target
                .storage
                .get(&manifest_key)
                .with_context(|| format!("cannot read {manifest_key}"))?;
            match manifest::parse(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(key = manifest_key, error = %e, "unreadable manifest: the backup is kept");
                    continue;
                }
            }
        } else {
            None
        };
        out.push(Folder {
            dir,
            id,
            keys,
            manifest,
        });
    }
    Ok(out)
}

/// Applies `policy` to job `job`'s backups in `target`; deletes unless `dry_run`.
pub fn prune(
    target: &Target,
    job: &str,
    policy: &Retention,
    tz: Tz,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<Row>> {
    let storage = target.storage.name().to_string();
    let found = folders(target, job)?;
    let (complete, incomplete): (Vec<Folder>, Vec<Folder>) =
        found.into_iter().partition(|f| f.manifest.is_some());
    let times: Vec<DateTime<Utc>> = complete
        .iter()
        .filter_map(|f| f.manifest.as_ref().map(|m| m.started_at))
        .collect();
    let reasons = decide(policy, &times, tz);
    let mut rows = Vec::new();
    let mut deletions = Vec::new();
    for (folder, reasons) in complete.iter().zip(reasons) {
        let started_at = folder
            .manifest
            .as_ref()
            .map(|m| m.started_at)
            .unwrap_or_default();
        let keep = !reasons.is_empty();
        if !keep {
            deletions.push((folder, rows.len()));
        }
        rows.push(Row {
            storage: storage.clone(),
            id: folder.id.clone(),
            started_at,
            action: if keep { "keep" } else { "delete" },
            reasons,
            incomplete: false,
            done: false,
        });
    }
    for folder in &incomplete {
        let Some(started_at) = manifest::id_time(&folder.id) else {
            tracing::warn!(
                storage,
                dir = folder.dir,
                "a folder without a manifest or a backup id: left alone"
            );
            continue;
        };
        let age = now.signed_duration_since(started_at).to_std().ok();
        let old = age.is_some_and(|a| a > policy.incomplete_after);
        if old {
            deletions.push((folder, rows.len()));
        }
        rows.push(Row {
            storage: storage.clone(),
            id: folder.id.clone(),
            started_at,
            action: if old { "delete" } else { "keep" },
            reasons: if old {
                Vec::new()
            } else {
                vec![format!(
                    "incomplete, younger than {}",
                    crate::duration::format(policy.incomplete_after)
                )]
            },
            incomplete: true,
            done: false,
        });
    }
    if !dry_run {
        for (folder, row) in deletions {
            delete_folder(target, folder)?;
            rows[row].done = true;
            tracing::info!(storage, id = folder.id, "deleted backup");
        }
    }
    rows.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    Ok(rows)
}

/// Deletes the manifest first, then the data.
fn delete_folder(target: &Target, folder: &Folder) -> Result<()> {
    let manifest_key = manifest::join_key(&[&folder.dir, MANIFEST]);
    let what = |key: &str| {
        format!(
            "cannot delete {key} from storage `{}`",
            target.storage.name()
        )
    };
    if folder.keys.contains(&manifest_key) {
        target
            .storage
            .delete(&manifest_key)
            .with_context(|| what(&manifest_key))?;
    }
    for key in folder.keys.iter().filter(|k| **k != manifest_key) {
        target.storage.delete(key).with_context(|| what(key))?;
    }
    Ok(())
}

/// The default grace period for folders without a manifest.
pub const INCOMPLETE_AFTER: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn kept(policy: &Retention, times: &[DateTime<Utc>]) -> Vec<usize> {
        decide(policy, times, Tz::UTC)
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn last_and_daily() {
        let times = [
            t("2026-01-03T10:00:00Z"),
            t("2026-01-03T04:00:00Z"),
            t("2026-01-02T10:00:00Z"),
            t("2026-01-01T10:00:00Z"),
            t("2025-12-31T10:00:00Z"),
        ];
        let p = Retention {
            keep_last: 2,
            ..Retention::default()
        };
        assert_eq!(kept(&p, &times), vec![0, 1]);
        let p = Retention {
            keep_daily: 2,
            ..Retention::default()
        };
        // The newest of each of the two newest days.
        assert_eq!(kept(&p, &times), vec![0, 2]);
    }

    #[test]
    fn newest_is_always_kept_and_no_rules_keep_all() {
        let times = [t("2026-01-03T10:00:00Z"), t("2026-01-01T10:00:00Z")];
        let p = Retention {
            keep_within: Some(Duration::from_secs(1)),
            ..Retention::default()
        };
        let r = decide(&p, &times, Tz::UTC);
        assert!(r[0].iter().any(|x| x.starts_with("within")));
        assert!(r[1].is_empty());
        assert_eq!(kept(&Retention::default(), &times), vec![0, 1]);
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        // Two UTC days, but one day in Tokyo (08:30 and 09:30 on Jan 2).
        let times = [t("2026-01-02T00:30:00Z"), t("2026-01-01T23:30:00Z")];
        let p = Retention {
            keep_daily: 5,
            ..Retention::default()
        };
        assert_eq!(kept(&p, &times), vec![0, 1]);
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let r = decide(&p, &times, tokyo);
        assert!(r[1].is_empty(), "same Tokyo day: {r:?}");
    }
}
