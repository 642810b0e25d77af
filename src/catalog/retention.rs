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
//!   now (the clock of the host that prunes, with [`SKEW`] to spare).
//!
//! A backup is kept when any rule keeps it. Hours, days or weeks without a
//! backup do not use up a counter. The newest backup is always kept, whatever
//! the rules say; with no rule at all, every backup is kept.
//!
//! # Odd manifests
//!
//! Manifests are read from the storage and are not trusted. One dated in the
//! future (by more than [`SKEW`]), whose time disagrees with its backup id,
//! that fails to parse, or (with a `signing` key) that is not signed, is
//! *suspect*: it is kept, reported, and left out of the ranking, so it can
//! neither push real backups out of `keep_last` nor move `keep_within`.
//! The backup the current run just made is never deleted, and a prune that
//! would delete more than half of a job's backups stops and asks for
//! `dbkeep prune --force`.
//!
//! # Deleting
//!
//! Before a backup is deleted, each of its objects is asked whether the
//! storage still retains it (S3 Object Lock). One that is retained keeps the
//! whole backup, reported as "object lock until DATE": nothing of it is
//! deleted, so a lock never leaves half a backup behind.
//!
//! A backup's manifest is deleted first and its data second, so a backup that
//! is half deleted is invisible to `list` and `restore`. Such folders, and
//! the leftovers of runs that died, have no manifest; they are removed once
//! they are older than `incomplete_after` (by the time in their backup id).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::manifest::{self, MANIFEST, Manifest, SigningKey, rfc3339};
use crate::storage::Target;
use crate::util::problem::Problems;

pub use crate::catalog::manifest::{SKEW, suspect};

/// Which backups to keep (restic's `forget` rules). A backup is kept when any
/// rule keeps it; the newest backup is always kept; no rule keeps everything.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep the n newest backups.
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the n newest hours that have one.
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the n newest days that have one.
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the n newest ISO weeks that have one.
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the n newest months that have one.
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the n newest years that have one.
    pub keep_yearly: Option<u32>,
    /// Keep every backup started within this duration of the newest one (`30d`, `8w`, `1y`).
    pub keep_within: Option<String>,
    /// Remove folders without a manifest (dead runs, half-deleted backups)
    /// once they are this old (default `24h`).
    pub incomplete_after: Option<String>,
}

/// Retention rules, validated (0 = rule unused).
#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    /// The n newest.
    pub keep_last: u32,
    /// Newest per hour, n hours.
    pub keep_hourly: u32,
    /// Newest per day, n days.
    pub keep_daily: u32,
    /// Newest per ISO week, n weeks.
    pub keep_weekly: u32,
    /// Newest per month, n months.
    pub keep_monthly: u32,
    /// Newest per year, n years.
    pub keep_yearly: u32,
    /// Everything within this duration of the newest.
    #[serde(
        serialize_with = "crate::util::duration::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub keep_within: Option<std::time::Duration>,
    /// Grace period of folders without a manifest.
    #[serde(serialize_with = "crate::util::duration::serialize")]
    pub incomplete_after: std::time::Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            keep_last: 0,
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            keep_within: None,
            incomplete_after: INCOMPLETE_AFTER,
        }
    }
}

impl Retention {
    /// Whether any keep rule is set (with none, everything is kept).
    pub fn has_rules(&self) -> bool {
        self.keep_last
            + self.keep_hourly
            + self.keep_daily
            + self.keep_weekly
            + self.keep_monthly
            + self.keep_yearly
            > 0
            || self.keep_within.is_some()
    }
}

/// The default grace period for folders without a manifest.
pub const INCOMPLETE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl RetentionConfig {
    /// The rules, checked; durations that do not parse are problems.
    pub fn validate(&self, at: &str, problems: &mut Problems) -> Retention {
        let r = self;
        let within = r.keep_within.as_deref().map(|t| {
            problems.duration(
                &format!("{at}.keep_within"),
                Some(t),
                std::time::Duration::ZERO,
            )
        });
        Retention {
            keep_last: r.keep_last.unwrap_or(0),
            keep_hourly: r.keep_hourly.unwrap_or(0),
            keep_daily: r.keep_daily.unwrap_or(0),
            keep_weekly: r.keep_weekly.unwrap_or(0),
            keep_monthly: r.keep_monthly.unwrap_or(0),
            keep_yearly: r.keep_yearly.unwrap_or(0),
            keep_within: within,
            incomplete_after: problems.duration(
                &format!("{at}.incomplete_after"),
                r.incomplete_after.as_deref(),
                INCOMPLETE_AFTER,
            ),
        }
    }
}

/// Why a backup is kept.
pub fn decide(
    policy: &Retention,
    times: &[DateTime<Utc>],
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<Vec<String>> {
    let mut reasons = vec![Vec::new(); times.len()];
    if times.is_empty() {
        return reasons;
    }
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
            && now.signed_duration_since(t).to_std().unwrap_or_default() < within + SKEW
        {
            reasons[i].push(format!("within {}", crate::util::duration::format(within)));
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
    /// Until when the storage retains one of its objects (S3 Object Lock),
    /// which keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retained_until: Option<DateTime<Utc>>,
}

/// A backup folder found in a storage.
struct Folder {
    dir: String,
    id: String,
    keys: Vec<String>,
    manifest: Option<Manifest>,
    /// Why its manifest could not be used, when it has one.
    problem: Option<String>,
}

fn folders(target: &Target, job: &str, key: Option<&SigningKey>) -> Result<Vec<Folder>> {
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
        let mut problem = None;
        let manifest = if keys.contains(&manifest_key) {
            let bytes = target
                .storage
                .get(&manifest_key)
                .with_context(|| format!("cannot read {manifest_key}"))?;
            let checked = manifest::parse(&bytes)
                .map_err(|e| format!("{e:#}"))
                .and_then(|m| m.validate(&id).map(|()| m))
                .and_then(|m| match key {
                    Some(k) => m.check_signature(k).map(|()| m),
                    None => Ok(m),
                });
            match checked {
                Ok(m) => Some(m),
                Err(why) => {
                    tracing::warn!(key = %crate::util::printable(&manifest_key), problem = %why, "odd manifest: the backup is kept");
                    problem = Some(format!("suspect: {why}"));
                    None
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
            problem,
        });
    }
    Ok(out)
}

/// How one prune runs.
#[derive(Clone, Copy)]
pub struct Pruning<'a> {
    /// This host's clock.
    pub now: DateTime<Utc>,
    /// Only say what would be deleted.
    pub dry_run: bool,
    /// Delete even when that is more than half of the job's backups.
    pub force: bool,
    /// The backup the current run made: never deleted.
    pub protect: Option<&'a str>,
    /// Trust only manifests signed with this key.
    pub key: Option<&'a SigningKey>,
}

/// Applies `policy` to job `job`'s backups in `target`; deletes unless `dry_run`.
pub fn prune(
    target: &Target,
    job: &str,
    policy: &Retention,
    tz: Tz,
    how: Pruning<'_>,
) -> Result<Vec<Row>> {
    let storage = target.storage.name().to_string();
    let now = how.now;
    let found = folders(target, job, how.key)?;
    let mut rows = Vec::new();
    let mut ranked = Vec::new();
    let mut incomplete = Vec::new();
    for folder in found {
        let why = match (&folder.manifest, &folder.problem) {
            (_, Some(p)) => Some(p.clone()),
            (Some(m), None) => suspect(m, now),
            (None, None) => {
                incomplete.push(folder);
                continue;
            }
        };
        match why {
            Some(why) => {
                tracing::warn!(storage, id = %crate::util::printable(&folder.id), problem = %why, "backup left out of retention");
                rows.push(Row {
                    storage: storage.clone(),
                    id: folder.id.clone(),
                    started_at: folder
                        .manifest
                        .as_ref()
                        .map(|m| m.started_at)
                        .or_else(|| manifest::id_time(&folder.id))
                        .unwrap_or_default(),
                    action: "keep",
                    reasons: vec![why],
                    incomplete: false,
                    done: false,
                    retained_until: None,
                });
            }
            None => ranked.push(folder),
        }
    }
    let times: Vec<DateTime<Utc>> = ranked
        .iter()
        .filter_map(|f| f.manifest.as_ref().map(|m| m.started_at))
        .collect();
    let reasons = decide(policy, &times, tz, now);
    let mut deletions = Vec::new();
    let total = rows.len() + ranked.len();
    for (folder, mut reasons) in ranked.iter().zip(reasons) {
        let started_at = folder
            .manifest
            .as_ref()
            .map(|m| m.started_at)
            .unwrap_or_default();
        if how.protect == Some(folder.id.as_str()) && reasons.is_empty() {
            reasons.push("made by this run".to_string());
        }
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
            retained_until: None,
        });
    }
    let mut deletions = hold_retained(target, deletions, &mut rows, now)?;
    if !how.force && !how.dry_run && deletions.len() * 2 > total {
        return Err(TooMany {
            job: job.to_string(),
            storage: storage.clone(),
            delete: deletions.len(),
            total,
        }
        .into());
    }
    let ranked_deletions = deletions.len();
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
                    crate::util::duration::format(policy.incomplete_after)
                )]
            },
            incomplete: true,
            done: false,
            retained_until: None,
        });
    }
    let old = deletions.split_off(ranked_deletions);
    deletions.extend(hold_retained(target, old, &mut rows, now)?);
    if !how.dry_run {
        for (folder, row) in deletions {
            // A lost lock or a signal stops the deletions between backups.
            crate::util::signal::check()?;
            delete_folder(target, folder)?;
            rows[row].done = true;
            tracing::info!(storage, id = folder.id, "deleted backup");
        }
    }
    remove_leftovers(target, job, policy, how)?;
    rows.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    Ok(rows)
}

/// Keeps, of the folders about to be deleted, those with an object the
/// storage still retains (S3 Object Lock), so that no backup is half deleted;
/// returns the others.
fn hold_retained<'f>(
    target: &Target,
    deletions: Vec<(&'f Folder, usize)>,
    rows: &mut [Row],
    now: DateTime<Utc>,
) -> Result<Vec<(&'f Folder, usize)>> {
    let storage = target.storage.name();
    let mut left = Vec::new();
    for (folder, row) in deletions {
        let mut until = None;
        for key in &folder.keys {
            let held = target.storage.retained_until(key).with_context(|| {
                format!("cannot tell whether storage `{storage}` still retains {key}")
            })?;
            until = until.max(held.filter(|t| *t > now));
        }
        match until {
            Some(until) => {
                tracing::info!(storage, id = folder.id, until = %rfc3339(until), "backup kept: object lock");
                let r = &mut rows[row];
                r.action = "keep";
                r.reasons = vec![format!("object lock until {}", rfc3339(until))];
                r.retained_until = Some(until);
            }
            None => left.push((folder, row)),
        }
    }
    Ok(left)
}

/// Removes the temp files of runs that died (local storage), once they are
/// older than `incomplete_after`.
fn remove_leftovers(
    target: &Target,
    job: &str,
    policy: &Retention,
    how: Pruning<'_>,
) -> Result<()> {
    let base = manifest::join_key(&[&target.prefix, job]);
    for (key, modified) in target.storage.leftovers(&base)? {
        let age = std::time::SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        if age <= policy.incomplete_after {
            continue;
        }
        if how.dry_run {
            tracing::info!(
                storage = target.storage.name(),
                key,
                "would remove a crash leftover"
            );
        } else {
            target.storage.delete(&key).with_context(|| {
                format!(
                    "cannot delete {key} from storage `{}`",
                    target.storage.name()
                )
            })?;
            tracing::info!(
                storage = target.storage.name(),
                key,
                "removed a crash leftover"
            );
        }
    }
    Ok(())
}

/// A prune would delete more than half of a job's backups.
#[derive(Debug, thiserror::Error)]
#[error(
    "retention would delete {delete} of the {total} backups of job `{job}` in storage `{storage}`, more than half, \
     so nothing was deleted; check with `dbkeep prune --dry-run {job}`, then run `dbkeep prune --force {job}`"
)]
pub struct TooMany {
    /// The job.
    pub job: String,
    /// The storage.
    pub storage: String,
    /// How many would go.
    pub delete: usize,
    /// How many there are.
    pub total: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn kept(policy: &Retention, times: &[DateTime<Utc>]) -> Vec<usize> {
        decide(policy, times, Tz::UTC, times[0])
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
            keep_within: Some(std::time::Duration::from_secs(1)),
            ..Retention::default()
        };
        let r = decide(&p, &times, Tz::UTC, times[0]);
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
        let r = decide(&p, &times, tokyo, times[0]);
        assert!(r[1].is_empty(), "same Tokyo day: {r:?}");
    }
}
