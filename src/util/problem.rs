//! Problems found while validating the config: each with its YAML path and
//! a message that says how to fix it. Every component's `validate()` reports
//! into one list, so `config validate` shows every problem at once.

use std::fmt;
use std::time::Duration;

/// One thing wrong with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// YAML path, e.g. `jobs.app.source.port`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The problems of one config, collected while each section checks itself.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// No problems yet.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records a problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Records a problem at `path`.
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// How many problems there are so far (compare before and after a check
    /// to learn whether it found any).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `path` already has a problem.
    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|p| p.path == path)
    }

    /// The problems so far.
    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// The problems, in the order they were found.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// A secret given both inline and as a file.
    pub fn not_both(&mut self, at: &str, key: &str, inline: bool, file: bool) {
        if inline && file {
            self.add(
                format!("{at}.{key}"),
                format!("give `{key}` or `{key}_file`, not both"),
            );
        }
    }

    /// A key that must be an http(s) URL.
    pub fn http_url(&mut self, at: &str, key: &str, url: Option<&str>, shown: &str) {
        if let Some(url) = url
            && !is_http_url(url)
        {
            self.add(
                format!("{at}.{key}"),
                format!("{shown} is not an http(s) URL"),
            );
        }
    }

    /// A duration key (`90s`, `15m`): parsed, or a problem and `default`.
    pub fn duration(&mut self, at: &str, text: Option<&str>, default: Duration) -> Duration {
        match text.map(super::duration::parse) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.add(at, e);
                default
            }
        }
    }

    /// A number that must lie in `range`.
    pub fn in_range<T>(
        &mut self,
        at: &str,
        value: Option<T>,
        range: std::ops::RangeInclusive<T>,
        unit: &str,
    ) where
        T: PartialOrd + fmt::Display + Copy,
    {
        if let Some(v) = value
            && !range.contains(&v)
        {
            self.add(
                at,
                format!("{v}{unit}: use {} to {}", range.start(), range.end()),
            );
        }
    }
}

/// Whether `text` parses as an `http://` or `https://` URL.
pub fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// A serde error with the path where it happened.
pub type PathError = serde_path_to_error::Error<serde_json::Error>;

/// One `type` of a tagged config section (`type: s3`), and how to read its
/// keys alone. serde's tagged enums do not say where inside an entry an
/// error is, so each entry is first read by the struct its `type` picks.
pub struct Variant {
    /// The `type` value.
    pub tag: &'static str,
    /// Reads an entry's keys (without `type`) by this type's struct.
    pub read: fn(&serde_json::Value) -> Result<(), PathError>,
    /// The keys this type accepts.
    pub keys: fn() -> std::collections::BTreeSet<String>,
}

/// Reads `value` as a `T`, keeping only the error.
pub fn read<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<(), PathError> {
    serde_path_to_error::deserialize::<_, T>(value).map(drop)
}

/// The keys of struct `T`, from its JSON Schema.
pub fn keys<T: schemars::JsonSchema>() -> std::collections::BTreeSet<String> {
    serde_json::to_value(schemars::schema_for!(T))
        .ok()
        .and_then(|s| s.get("properties").and_then(|p| p.as_object()).cloned())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// `variant!("s3", S3Config)`: the [`Variant`] of one `type`.
macro_rules! variant {
    ($tag:literal, $ty:ty) => {
        $crate::util::problem::Variant {
            tag: $tag,
            read: $crate::util::problem::read::<$ty>,
            keys: $crate::util::problem::keys::<$ty>,
        }
    };
}
pub(crate) use variant;
