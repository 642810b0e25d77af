//! Pure validation: raw YAML values to the effective [`Config`], reporting
//! every problem at once, each with its YAML path.
//!
//! serde stops at its first error, so deserialization runs in a loop: each
//! error is recorded with its path, the offending key is taken out of the
//! value tree, and the value is read again. Unknown keys, wrong types and bad
//! enum values are all found this way; after a missing key the whole
//! enclosing entry is set aside, so other entries are still checked.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use serde_path_to_error::Segment;

use super::schema::{RawConfig, RawHooks};
use super::{Config, Job};

pub use crate::util::problem::Problem;
use crate::util::problem::Problems;

/// Validates a config value tree.
pub fn validate(value: Value) -> Result<Config, Vec<Problem>> {
    let (raw, mut problems, set_aside) = deserialize_all(value);
    let config = check(&raw, &set_aside, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.into_vec())
    }
}

use crate::util::problem::{PathError, Variant};

/// Keys that moved elsewhere in an entry: (old, new).
type Moved = &'static [(&'static str, &'static str)];

/// Deserializes, collecting every serde error instead of the first. Also
/// returns the paths of entries set aside whole (a missing key, an unknown
/// `type`), which still count as defined for references to them.
fn deserialize_all(mut value: Value) -> (RawConfig, Problems, BTreeSet<String>) {
    let mut problems = Problems::new();
    let mut removed: BTreeSet<Vec<String>> = BTreeSet::new();
    // serde's tagged enums do not say where inside an entry an error is:
    // each tagged entry is first read on its own, by the struct its `type` picks.
    let mut tagged: Vec<(Vec<String>, &[Variant], Moved)> = Vec::new();
    for (section, variants) in [
        ("storages", crate::storage::config::TYPES),
        ("notifiers", crate::notify::TYPES),
    ] {
        if let Some(map) = value.get(section).and_then(Value::as_object) {
            for name in map.keys() {
                tagged.push((vec![section.to_string(), name.clone()], variants, &[]));
            }
        }
    }
    if let Some(jobs) = value.get("jobs").and_then(Value::as_object) {
        for name in jobs.keys() {
            tagged.push((
                vec!["jobs".into(), name.clone(), "source".into()],
                crate::connector::source::TYPES,
                crate::connector::source::MOVED,
            ));
        }
    }
    for (at, variants, moved) in tagged {
        read_tagged(&mut value, at, variants, moved, &mut problems, &mut removed);
    }
    for _ in 0..500 {
        let err = match serde_path_to_error::deserialize::<_, RawConfig>(&value) {
            Ok(raw) => return (raw, problems, set_aside(&removed)),
            Err(err) => err,
        };
        if !record(&err, &[], None, &mut value, &mut problems, &mut removed) {
            break;
        }
    }
    (RawConfig::default(), problems, set_aside(&removed))
}

fn set_aside(removed: &BTreeSet<Vec<String>>) -> BTreeSet<String> {
    removed.iter().map(|p| join(p)).collect()
}

/// Reads the tagged entry at `at` by the struct of its `type`, recording
/// each problem with its full path and taking the offending key out.
fn read_tagged(
    value: &mut Value,
    at: Vec<String>,
    variants: &[Variant],
    moved: Moved,
    problems: &mut Problems,
    removed: &mut BTreeSet<Vec<String>>,
) {
    let Some(tag) = node(value, &at).and_then(|n| n.get("type")).cloned() else {
        // Not a map, or no `type`: the whole-file pass reports it.
        return;
    };
    let Some(variant) = variants.iter().find(|v| tag.as_str() == Some(v.tag)) else {
        let types: Vec<&str> = variants.iter().map(|v| v.tag).collect();
        let mut at_type = at.clone();
        at_type.push("type".into());
        let shown = match tag.as_str() {
            Some(t) => format!("unknown value `{t}`"),
            None => format!("wrong type: {tag}"),
        };
        problems.add(
            join(&at_type),
            format!("{shown}, expected one of `{}`", types.join("`, `")),
        );
        remove(value, &at);
        removed.insert(at);
        return;
    };
    let own = (variant.keys)();
    let others: BTreeSet<String> = variants
        .iter()
        .flat_map(|v| (v.keys)())
        .filter(|k| !own.contains(k))
        .collect();
    for _ in 0..100 {
        let Some(mut fields) = node(value, &at).cloned() else {
            return;
        };
        if let Some(map) = fields.as_object_mut() {
            map.remove("type");
        }
        let Err(err) = (variant.read)(&fields) else {
            return;
        };
        if !record(
            &err,
            &at,
            Some((variant.tag, &others, moved)),
            value,
            problems,
            removed,
        ) {
            return;
        }
    }
}

/// The node at `path`, if there is one.
fn node<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| v.get(seg))
}

/// Records one serde error found under `prefix` and takes what it names out
/// of `value`, so that the next read goes further. False when nothing more
/// can be learned. `tag` is the entry's `type` and the keys of its other
/// types, for "does not apply" messages.
fn record(
    err: &PathError,
    prefix: &[String],
    tag: Option<(&str, &BTreeSet<String>, Moved)>,
    value: &mut Value,
    problems: &mut Problems,
    removed: &mut BTreeSet<Vec<String>>,
) -> bool {
    let mut path: Vec<String> = prefix.to_vec();
    path.extend(err.path().iter().map(|s| match s {
        Segment::Seq { index } => format!("[{index}]"),
        Segment::Map { key } => key.clone(),
        Segment::Enum { variant } => variant.clone(),
        Segment::Unknown => "?".to_string(),
    }));
    let message = err.inner().to_string();
    if let Some(field) = quoted_after(&message, "unknown field `") {
        let mut at = path.clone();
        if at.last() != Some(&field) {
            at.push(field.clone());
        }
        let text = match tag {
            Some((_, _, moved))
                if at.len() == prefix.len() + 1 && moved.iter().any(|(old, _)| *old == field) =>
            {
                let new = moved
                    .iter()
                    .find(|(old, _)| *old == field)
                    .map(|(_, new)| *new);
                format!("`{field}` moved to `{}`", new.unwrap_or_default())
            }
            Some((tag, others, _)) if others.contains(&field) && at.len() == prefix.len() + 1 => {
                format!("`{field}` does not apply to `type: {tag}`")
            }
            _ => unknown_key_message(&field, &message),
        };
        problems.push(Problem::new(join(&at), text));
        remove(value, &at)
    } else if let Some(field) = quoted_after(&message, "missing field `") {
        let mut at = path.clone();
        at.push(field.clone());
        if !removed.contains(&at) {
            problems.push(Problem::new(join(&at), "missing required key"));
        }
        if path.is_empty() || !remove(value, &path) {
            return false;
        }
        removed.insert(path);
        true
    } else {
        problems.push(Problem::new(join(&path), friendly(&message)));
        if path.is_empty() || !remove(value, &path) {
            return false;
        }
        removed.insert(path);
        true
    }
}

fn join(path: &[String]) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

/// The text between `prefix` and the next backtick.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let start = message.find(prefix)? + prefix.len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

fn unknown_key_message(field: &str, message: &str) -> String {
    let expected: Vec<String> = message
        .split_once("expected")
        .map(|(_, rest)| {
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let best = expected
        .iter()
        .map(|k| (edit_distance(field, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("unknown key `{field}`; did you mean `{k}`?"),
        None if expected.is_empty() => format!("unknown key `{field}`"),
        None => format!(
            "unknown key `{field}`; expected one of `{}`",
            expected.join("`, `")
        ),
    }
}

fn friendly(message: &str) -> String {
    message
        .replace("unknown variant", "unknown value")
        .replace("invalid type: ", "wrong type: ")
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Removes the node at `path`; false when there is nothing to remove.
fn remove(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for seg in parents {
        node = match (
            node,
            seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')),
        ) {
            (Value::Array(items), Some(i)) => {
                match i.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(n) => n,
                    None => return false,
                }
            }
            (Value::Object(map), _) => match map.get_mut(seg) {
                Some(n) => n,
                None => return false,
            },
            _ => return false,
        };
    }
    match (
        node,
        last.strip_prefix('[').and_then(|s| s.strip_suffix(']')),
    ) {
        (Value::Array(items), Some(i)) => match i.parse::<usize>() {
            Ok(i) if i < items.len() => {
                // Keep indexes stable for later paths: replace rather than shift.
                items[i] = Value::Null;
                true
            }
            _ => false,
        },
        (Value::Object(map), _) => map.remove(last).is_some(),
        _ => false,
    }
}

/// Checks what serde cannot: cross-field rules, references, ranges.
fn check(raw: &RawConfig, set_aside: &BTreeSet<String>, problems: &mut Problems) -> Config {
    let mut config = Config::default();
    for (name, storage) in &raw.storages {
        let at = format!("storages.{name}");
        check_name(&at, name, "storage", problems);
        storage.validate(&at, problems);
        config.storages.insert(name.clone(), storage.clone());
    }
    for (name, n) in &raw.notifiers {
        let at = format!("notifiers.{name}");
        check_name(&at, name, "notifier", problems);
        n.validate(&at, problems);
        config.notifiers.insert(name.clone(), n.clone());
    }
    if let Some(sig) = &raw.signing {
        sig.validate("signing", problems);
    }
    check_hooks("hooks", &raw.hooks, problems);
    config.hooks = raw.hooks.clone();
    config.signing = raw.signing.clone();
    if let Some(m) = &raw.metrics {
        m.validate("metrics", problems);
        config.metrics = Some(m.clone());
    }
    config.scheduler = check_scheduler(&raw.scheduler, problems);
    config.lock = check_lock(&raw.lock, problems);
    let d = &raw.defaults;
    for (key, value) in [("concurrency", d.concurrency), ("per_host", d.per_host)] {
        if value == Some(0) {
            problems.add(format!("defaults.{key}"), "must be at least 1");
        }
    }
    config.limits = super::Limits {
        concurrency: d.concurrency.unwrap_or(1).max(1) as usize,
        per_host: d.per_host.map(|n| n.max(1) as usize),
    };
    let names = Names { raw, set_aside };
    let inherited = check_defaults(&raw.defaults, &names, problems);
    for (name, job) in &raw.jobs {
        let at = format!("jobs.{name}");
        check_name(&at, name, "job", problems);
        if let Some(job) = check_job(&at, job, &inherited, &names, problems) {
            config.jobs.insert(name.clone(), job);
        }
    }
    config
}

fn check_scheduler(sch: &super::schema::RawScheduler, problems: &mut Problems) -> super::Scheduler {
    if sch.max_concurrent_jobs == Some(0) {
        problems.add("scheduler.max_concurrent_jobs", "must be at least 1");
    }
    super::Scheduler {
        max_concurrent_jobs: sch.max_concurrent_jobs.unwrap_or(1).max(1) as usize,
        shutdown_grace: problems.duration(
            "scheduler.shutdown_grace",
            sch.shutdown_grace.as_deref(),
            super::Scheduler::default().shutdown_grace,
        ),
    }
}

fn check_lock(lock: &super::schema::RawLock, problems: &mut Problems) -> super::LockSettings {
    let stale_after = problems.duration(
        "lock.stale_after",
        lock.stale_after.as_deref(),
        super::LockSettings::default().stale_after,
    );
    if stale_after < std::time::Duration::from_secs(3) {
        problems.add(
            "lock.stale_after",
            "must be at least 3s (a live run refreshes its lock every third of it)",
        );
    }
    super::LockSettings { stale_after }
}

/// The storages and notifiers that references may name: those defined,
/// and those set aside for a problem of their own (already reported).
struct Names<'a> {
    raw: &'a RawConfig,
    set_aside: &'a BTreeSet<String>,
}

impl Names<'_> {
    /// Reports each name of `list` that is not a storage.
    fn storages(&self, at: &str, list: &[String], problems: &mut Problems) {
        for n in list {
            if !(self.raw.storages.contains_key(n)
                || self.set_aside.contains(&format!("storages.{n}")))
            {
                problems.add(at, undefined("storage", n, self.raw.storages.keys()));
            }
        }
    }

    /// Reports each name of `list` that is not a notifier.
    fn notifiers(&self, at: &str, list: &[String], problems: &mut Problems) {
        for n in list {
            if !(self.raw.notifiers.contains_key(n)
                || self.set_aside.contains(&format!("notifiers.{n}")))
            {
                problems.add(at, undefined("notifier", n, self.raw.notifiers.keys()));
            }
        }
    }
}

/// `defaults:`, checked once, with what every job inherits from it.
struct Inherited<'a> {
    defaults: &'a super::schema::RawDefaults,
    timezone: chrono_tz::Tz,
    retention: super::Retention,
}

fn check_defaults<'a>(
    d: &'a super::schema::RawDefaults,
    names: &Names<'_>,
    problems: &mut Problems,
) -> Inherited<'a> {
    let timezone = timezone(
        "defaults.timezone",
        d.timezone.as_deref(),
        chrono_tz::Tz::UTC,
        problems,
    );
    let retention = d
        .retention
        .as_ref()
        .map(|r| r.validate("defaults.retention", problems))
        .unwrap_or_default();
    if let Some(list) = &d.notify {
        names.notifiers("defaults.notify", &list.0, problems);
    }
    if let Some(list) = &d.storage {
        names.storages("defaults.storage", &list.0, problems);
    }
    check_level("defaults", d.compression, d.compression_level, problems);
    if let Some(e) = &d.encryption {
        e.age.validate("defaults.encryption.age", problems);
    }
    Inherited {
        defaults: d,
        timezone,
        retention,
    }
}

fn timezone(
    at: &str,
    text: Option<&str>,
    default: chrono_tz::Tz,
    problems: &mut Problems,
) -> chrono_tz::Tz {
    match text {
        Some(t) => crate::schedule::parse_tz(t).unwrap_or_else(|e| {
            problems.add(at, e);
            chrono_tz::Tz::UTC
        }),
        None => default,
    }
}

/// One job, with what it inherits filled in; `None` when its source has a problem.
fn check_job(
    at: &str,
    job: &super::schema::RawJob,
    inherited: &Inherited<'_>,
    names: &Names<'_>,
    problems: &mut Problems,
) -> Option<Job> {
    let d = inherited.defaults;
    let storage: Vec<String> = match (&job.storage, &d.storage) {
        (Some(n), _) | (None, Some(n)) => n.0.clone(),
        (None, None) if names.raw.storages.len() == 1 => {
            names.raw.storages.keys().cloned().collect()
        }
        (None, None) => {
            problems.add(
                format!("{at}.storage"),
                "no storage given; set `storage:` on the job or `defaults.storage`",
            );
            Vec::new()
        }
    };
    if job.storage.is_some() {
        names.storages(&format!("{at}.storage"), &storage, problems);
        if storage.is_empty() {
            problems.add(format!("{at}.storage"), "the list of storages is empty");
        }
    }
    let compression = job
        .compression
        .or(d.compression)
        .unwrap_or(super::Compression::Zstd);
    let level = job.compression_level.or(d.compression_level);
    check_level(at, Some(compression), level, problems);
    if let Some(list) = &job.notify {
        names.notifiers(&format!("{at}.notify"), &list.0, problems);
    }
    check_hooks(&format!("{at}.hooks"), &job.hooks, problems);
    if let Some(e) = &job.encryption {
        e.age.validate(&format!("{at}.encryption.age"), problems);
    }
    let schedule = job.schedule.as_deref().and_then(|text| {
        crate::schedule::Cron::parse(text)
            .map_err(|e| problems.add(format!("{at}.schedule"), e))
            .ok()
    });
    let binlog_schedule = job.binlog_schedule.as_deref().and_then(|text| {
        crate::schedule::Cron::parse(text)
            .map_err(|e| problems.add(format!("{at}.binlog_schedule"), e))
            .ok()
    });
    if job.binlog_schedule.is_some() && !job.source.has_binlog() {
        problems.add(
            format!("{at}.binlog_schedule"),
            "`binlog_schedule` goes with a MariaDB or MySQL source with `binlog: true`",
        );
    }
    let timezone = timezone(
        &format!("{at}.timezone"),
        job.timezone.as_deref(),
        inherited.timezone,
        problems,
    );
    let retention = match &job.retention {
        Some(r) => r.validate(&format!("{at}.retention"), problems),
        None => inherited.retention.clone(),
    };
    let mut source = job.source.clone();
    let before = problems.len();
    source.validate(&format!("{at}.source"), problems);
    if problems.len() > before {
        return None;
    }
    Some(Job {
        source,
        storage,
        compression,
        compression_level: level.unwrap_or_else(|| compression.default_level()),
        compression_threads: job
            .compression_threads
            .or(d.compression_threads)
            .unwrap_or(0),
        temp_dir: d.temp_dir.clone(),
        notify: job
            .notify
            .as_ref()
            .or(d.notify.as_ref())
            .map(|n| n.0.clone())
            .unwrap_or_default(),
        hooks: job.hooks.clone(),
        encryption: job
            .encryption
            .as_ref()
            .or(d.encryption.as_ref())
            .map(|e| e.age.clone()),
        schedule,
        binlog_schedule,
        timezone,
        catch_up: job.catch_up.or(d.catch_up).unwrap_or(false),
        max_runtime: match (&job.max_runtime, &d.max_runtime) {
            (Some(t), _) => {
                Some(problems.duration(&format!("{at}.max_runtime"), Some(t), Duration::ZERO))
            }
            (None, Some(t)) => {
                Some(problems.duration("defaults.max_runtime", Some(t), Duration::ZERO))
            }
            (None, None) => None,
        }
        .filter(|d| !d.is_zero()),
        retention,
        signing: names.raw.signing.clone(),
    })
}

/// `what `name` is not defined`, with the names that are.
fn undefined<'k>(what: &str, name: &str, known: impl Iterator<Item = &'k String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("{what} `{name}` is not defined; add it under `{what}s:`")
    } else {
        format!(
            "{what} `{name}` is not defined under `{what}s:` (defined: {})",
            known.join(", ")
        )
    }
}

fn check_hooks(at: &str, hooks: &RawHooks, problems: &mut Problems) {
    for (kind, list) in [
        ("before", &hooks.before),
        ("after", &hooks.after),
        ("on_failure", &hooks.on_failure),
        ("finally", &hooks.finally),
    ] {
        for (i, argv) in list.iter().enumerate() {
            if argv.first().is_none_or(|p| p.value().is_empty()) {
                problems.push(Problem::new(
                    format!("{at}.{kind}[{i}]"),
                    "a hook is a non-empty argv list, e.g. [\"/usr/local/bin/notify\", \"--quiet\"] or [sh, -c, \"...\"]",
                ));
            }
        }
    }
    if hooks.timeout == Some(0) {
        problems.push(Problem::new(
            format!("{at}.timeout"),
            "a timeout of 0 seconds would stop every hook at once",
        ));
    }
    let env_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    for (i, name) in hooks.pass_env.iter().enumerate() {
        if !env_name(name) {
            problems.push(Problem::new(
                format!("{at}.pass_env[{i}]"),
                format!("`{name}` is not a variable name: use letters, digits and `_`"),
            ));
        }
    }
    for name in hooks.env.keys() {
        if !env_name(name) {
            problems.push(Problem::new(
                format!("{at}.env.{name}"),
                format!("`{name}` is not a variable name: use letters, digits and `_`"),
            ));
        }
    }
}

/// Job and storage names become folder names: keep them plain.
fn check_name(at: &str, name: &str, what: &str, problems: &mut Problems) {
    if !is_plain_name(name) {
        problems.push(Problem::new(
            at,
            format!("{what} name `{name}` may only hold letters, digits, `.`, `_` and `-`, and may not start with `.`"),
        ));
    }
}

/// Whether `name` is safe as one folder name.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_level(
    at: &str,
    compression: Option<super::Compression>,
    level: Option<i32>,
    problems: &mut Problems,
) {
    let (Some(c), Some(level)) = (compression.or(Some(super::Compression::Zstd)), level) else {
        return;
    };
    let range = c.levels();
    if !range.contains(&level) {
        problems.push(Problem::new(
            format!("{at}.compression_level"),
            format!(
                "level {level} is out of range for {}: use {} to {}",
                c.as_str(),
                range.start(),
                range.end()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        let value: Value = serde_yaml_ng::from_str(yaml).unwrap();
        match validate(value) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let got = problems(
            "storages:\n  local: { type: local, path: /tmp/x, colour: red }\n\
             jobs:\n  a:\n    source: { type: postgres, database: a, port: lots }\n  \
             b:\n    storage: local\n  c:\n    source: { type: sqlite, path: /x.db }\n    compression: lz4\n",
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("storages.local.colour: unknown key `colour`")),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("jobs.a.source.port: wrong type")),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|p| p == "jobs.b.source: missing required key"),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("jobs.c.compression: unknown value `lz4`")),
            "{got:#?}"
        );
        assert_eq!(got.len(), 4, "{got:#?}");
    }

    #[test]
    fn suggests_the_closest_key() {
        let got = problems(
            "storages: { s: { type: local, path: /b } }\njobs:\n  a:\n    source: { type: postgres, database: x, pasword: x }\n",
        );
        assert_eq!(
            got,
            ["jobs.a.source.pasword: unknown key `pasword`; did you mean `password`?"]
        );
    }

    #[test]
    fn cross_field_rules() {
        let got = problems(
            "storages:\n  s: { type: local, path: /tmp }\n\
             jobs:\n  a:\n    storage: nope\n    source: { type: postgres, database: x, databases: [y] }\n  \
             b:\n    source: { type: sqlite, path: /x.db, host: h }\n    compression: gzip\n    compression_level: 12\n",
        );
        assert!(
            got.contains(
                &"jobs.a.storage: storage `nope` is not defined under `storages:` (defined: s)"
                    .to_string()
            ),
            "{got:#?}"
        );
        assert!(
            got.contains(
                &"jobs.a.source.databases: give `database` or `databases`, not both".to_string()
            ),
            "{got:#?}"
        );
        assert!(
            got.contains(
                &"jobs.b.source.host: `host` does not apply to `type: sqlite`".to_string()
            ),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|p| p.starts_with("jobs.b.compression_level: level 12")),
            "{got:#?}"
        );
    }

    #[test]
    fn defaults_are_inherited() {
        let value: Value = serde_yaml_ng::from_str(
            "defaults: { compression: gzip, storage: [s] }\nstorages:\n  s: { type: local, path: /b }\n\
             jobs:\n  a: { source: { type: postgres, databases: all } }\n",
        )
        .unwrap();
        let config = validate(value).unwrap();
        let job = &config.jobs["a"];
        assert_eq!(job.compression, super::super::Compression::Gzip);
        assert_eq!(job.compression_level, 6);
        assert_eq!(job.storage, ["s"]);
    }

    #[test]
    fn keys_of_another_type_do_not_apply() {
        let got = problems(
            "storages:\n  g: { type: gcs, bucket: b, parallel_parts: 4, sas_token: t }\n\
             notifiers:\n  n: { type: slack, url: 'https://x.example', smtp_host: h }\n  \
             p: { type: healthcheck, url: 'https://x.example', on: [always] }\n\
             jobs:\n  a:\n    storage: g\n    notify: [m]\n    source: { type: postgres, database: x, replica_set: rs0 }\n",
        );
        for want in [
            "storages.g.parallel_parts: `parallel_parts` does not apply to `type: gcs`",
            "storages.g.sas_token: `sas_token` does not apply to `type: gcs`",
            "notifiers.n.smtp_host: `smtp_host` does not apply to `type: slack`",
            "notifiers.p.on: `on` does not apply to `type: healthcheck`",
            "jobs.a.source.replica_set: `replica_set` does not apply to `type: postgres`",
            "jobs.a.notify: notifier `m` is not defined under `notifiers:` (defined: n, p)",
        ] {
            assert!(
                got.iter().any(|p| p == want),
                "missing {want:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 6, "{got:#?}");
    }

    #[test]
    fn an_entry_set_aside_still_counts_as_defined() {
        // An email notifier without `smtp_host`, a storage of an unknown type:
        // one problem each, and no second one for the references to them.
        let got = problems(
            "storages:\n  s: { type: ftp, path: /x }\n\
             notifiers:\n  m: { type: email, from: a@example.com, to: [b@example.com] }\n\
             jobs:\n  a:\n    storage: s\n    notify: [m]\n    source: { type: sqlite, path: /x.db }\n",
        );
        assert_eq!(
            got,
            [
                "storages.s.type: unknown value `ftp`, expected one of `local`, `s3`, `gcs`, `azure`, `sftp`",
                "notifiers.m.smtp_host: missing required key",
            ],
            "{got:#?}"
        );
    }

    /// Each tagged section's table of readers names exactly the `type`s its
    /// enum accepts.
    #[test]
    fn every_type_has_its_reader() {
        fn tags(schema: schemars::Schema) -> BTreeSet<String> {
            let v = serde_json::to_value(schema).unwrap();
            v["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    o["properties"]["type"]["const"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        }
        for (schema, table) in [
            (
                schemars::schema_for!(crate::connector::SourceConfig),
                crate::connector::source::TYPES,
            ),
            (
                schemars::schema_for!(crate::storage::StorageConfig),
                crate::storage::config::TYPES,
            ),
            (
                schemars::schema_for!(crate::notify::NotifierConfig),
                crate::notify::TYPES,
            ),
        ] {
            let read: BTreeSet<String> = table.iter().map(|v| v.tag.to_string()).collect();
            assert_eq!(tags(schema), read);
        }
    }

    #[test]
    fn old_tls_keys_name_the_new_ones() {
        let got = problems(
            "storages: { s: { type: local, path: /b } }\njobs:\n  \
             r: { source: { type: redis, host: h, tls: true } }\n  \
             m: { source: { type: mongodb, host: h, tls_ca_file: /ca.pem } }\n  \
             p: { source: { type: redis, host: h, tls: { mode: prefer } } }\n  \
             q: { source: { type: mysql, database: x, tls: { crl_file: /c.pem, cert_file: /c.pem } } }\n",
        );
        for want in [
            "jobs.r.source.tls: `tls: true` is now a block: write `tls: { mode: verify-full }`",
            "jobs.m.source.tls_ca_file: `tls_ca_file` moved to `tls.ca_file`",
            "jobs.p.source.tls.mode: redis cannot fall back to a plain connection",
            "jobs.q.source.tls.crl_file: `crl_file` does not apply to `type: mysql`",
            "jobs.q.source.tls.cert_file: give both `cert_file` and `key_file`, or neither",
        ] {
            assert!(
                got.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 5, "{got:#?}");
    }
}
