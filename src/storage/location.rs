//! Storages written as URLs on the command line: a folder, `file://`,
//! `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`,
//! with storage keys as query parameters (`?endpoint=...&region=...`).

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{StorageConfig, StorageKind, StorageSettings};

/// Parses a `--to`/`--from` location.
pub fn parse(text: &str) -> Result<StorageConfig> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(StorageConfig::local(PathBuf::from(text)));
    };
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "file" => return Ok(StorageConfig::local(PathBuf::from(rest))),
        "s3" => StorageKind::S3,
        "gs" | "gcs" => StorageKind::Gcs,
        "az" | "azure" => StorageKind::Azure,
        other => anyhow::bail!(
            "storage `{text}`: unknown scheme `{other}://`; use a folder, s3://, gs:// or az://"
        ),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        anyhow::bail!("storage `{text}` names no bucket or container: use {scheme}://NAME/prefix");
    }
    let mut s = StorageSettings {
        kind,
        prefix: Some(prefix.trim_matches('/').to_string()),
        ..Default::default()
    };
    match kind {
        StorageKind::Azure => s.container = Some(bucket.to_string()),
        _ => s.bucket = Some(bucket.to_string()),
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = url::form_urlencoded::parse(format!("v={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        match (k, kind) {
            ("endpoint", _) => s.endpoint = Some(v),
            ("region", StorageKind::S3) => s.region = Some(v),
            ("path_style", StorageKind::S3) => s.path_style = Some(v == "true" || v == "1"),
            ("storage_class", StorageKind::S3 | StorageKind::Gcs) => s.storage_class = Some(v),
            ("account", StorageKind::Azure) => s.account = Some(v),
            ("part_size_mib", _) => s.part_size_mib = Some(number(text, k, &v)?),
            ("parallel_parts", _) => s.parallel_parts = Some(number(text, k, &v)?),
            _ => anyhow::bail!("storage `{text}`: unknown parameter `{k}` for {scheme}://"),
        }
    }
    // The same rules as a storage in the config file.
    crate::config::validate_storage(text, &s)
}

fn number<T: std::str::FromStr>(text: &str, key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("storage `{text}`: `{key}={value}` is not a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let c = parse(
            "s3://bkt/some/prefix?endpoint=http://127.0.0.1:9000&path_style=true&region=eu-west-1",
        )
        .unwrap();
        assert_eq!(c.kind(), StorageKind::S3);
        assert_eq!(c.settings.bucket.as_deref(), Some("bkt"));
        assert_eq!(c.prefix, "some/prefix");
        assert_eq!(
            c.settings.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(c.settings.path_style, Some(true));
        let c = parse("az://ctr?account=devstoreaccount1").unwrap();
        assert_eq!(
            (c.settings.container.as_deref(), c.prefix.as_str()),
            (Some("ctr"), "")
        );
        let c = parse("/srv/backups").unwrap();
        assert_eq!(c.settings.path, Some(PathBuf::from("/srv/backups")));
        assert!(parse("s3:///x").is_err());
        assert!(parse("ftp://x/y").is_err());
        assert!(parse("gs://b?bogus=1").is_err());
        let e = parse("s3://b?part_size_mib=0").unwrap_err().to_string();
        assert!(e.contains("part_size_mib"), "{e}");
        assert!(parse("s3://b?parallel_parts=many").is_err());
    }
}
