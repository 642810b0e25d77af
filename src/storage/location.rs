//! Storages written as URLs on the command line: a folder, `file://`,
//! `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` or
//! `sftp://user@host:port/path` (`/~/path` under the login's home), with
//! storage keys as query parameters (`?endpoint=...&region=...`).

use std::path::PathBuf;

use anyhow::Result;

use super::config::{AzureConfig, GcsConfig, S3Checksum, S3Config, SftpConfig, StorageConfig};

/// Parses a `--to`/`--from` location.
pub fn parse(text: &str) -> Result<StorageConfig> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(StorageConfig::local(PathBuf::from(text)));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if scheme.eq_ignore_ascii_case("sftp") {
        return sftp(text, path, query);
    }
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    let bucket = bucket.to_string();
    let prefix = Some(prefix.trim_matches('/').to_string());
    let mut config = match scheme.to_ascii_lowercase().as_str() {
        "file" => return Ok(StorageConfig::local(PathBuf::from(rest))),
        "s3" => StorageConfig::S3(S3Config {
            bucket,
            prefix,
            ..S3Config::default()
        }),
        "gs" | "gcs" => StorageConfig::Gcs(GcsConfig {
            bucket,
            prefix,
            ..GcsConfig::default()
        }),
        "az" | "azure" => StorageConfig::Azure(AzureConfig {
            container: bucket,
            prefix,
            ..AzureConfig::default()
        }),
        other => anyhow::bail!(
            "storage `{text}`: unknown scheme `{other}://`; use a folder, s3://, gs:// or az://"
        ),
    };
    if path.split('/').next().unwrap_or_default().is_empty() {
        anyhow::bail!("storage `{text}` names no bucket or container: use {scheme}://NAME/prefix");
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        let unknown =
            || anyhow::anyhow!("storage `{text}`: unknown parameter `{k}` for {scheme}://");
        match (&mut config, k) {
            (StorageConfig::S3(c), "endpoint") => c.endpoint = Some(v),
            (StorageConfig::Gcs(c), "endpoint") => c.endpoint = Some(v),
            (StorageConfig::Azure(c), "endpoint") => c.endpoint = Some(v),
            (StorageConfig::S3(c), "region") => c.region = Some(v),
            (StorageConfig::S3(c), "path_style") => c.path_style = Some(v == "true" || v == "1"),
            (StorageConfig::S3(c), "storage_class") => c.storage_class = Some(v),
            (StorageConfig::S3(c), "checksum") => {
                c.checksum = Some(S3Checksum::parse(&v).ok_or_else(|| {
                    anyhow::anyhow!(
                        "storage `{text}`: `checksum={v}`: use `when_supported` or `when_required`"
                    )
                })?)
            }
            (StorageConfig::Gcs(c), "storage_class") => c.storage_class = Some(v),
            (StorageConfig::Azure(c), "account") => c.account = Some(v),
            (StorageConfig::S3(c), "part_size_mib") => c.part_size_mib = Some(number(text, k, &v)?),
            (StorageConfig::Gcs(c), "part_size_mib") => {
                c.part_size_mib = Some(number(text, k, &v)?)
            }
            (StorageConfig::Azure(c), "part_size_mib") => {
                c.part_size_mib = Some(number(text, k, &v)?)
            }
            (StorageConfig::S3(c), "parallel_parts") => {
                c.parallel_parts = Some(number(text, k, &v)?)
            }
            (StorageConfig::Azure(c), "parallel_parts") => {
                c.parallel_parts = Some(number(text, k, &v)?)
            }
            _ => return Err(unknown()),
        }
    }
    // The same rules as a storage in the config file.
    let mut problems = crate::util::problem::Problems::new();
    config.validate(".", &mut problems);
    if problems.is_empty() {
        return Ok(config);
    }
    let shown: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.path.trim_start_matches(['.']), p.message))
        .collect();
    anyhow::bail!(
        "storage `{}`: {}",
        crate::util::secret::redact(text),
        shown.join("; ")
    )
}

/// `sftp://user@host:port/path?key_file=...&known_hosts=...`.
fn sftp(text: &str, rest: &str, query: &str) -> Result<StorageConfig> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(decode(u)), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h.trim_start_matches('[').trim_end_matches(']'),
            Some(number(text, "port", p)?),
        ),
        _ => (hostport, None),
    };
    let path = match path.strip_prefix("~/") {
        Some(home) => decode(home),
        None => format!("/{}", decode(path)),
    };
    let mut c = SftpConfig {
        host: host.to_string(),
        port,
        user,
        path,
        ..SftpConfig::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "key_file" => c.key_file = Some(PathBuf::from(v)),
            "password_file" => c.password_file = Some(PathBuf::from(v)),
            "known_hosts" => c.known_hosts = Some(PathBuf::from(v)),
            "accept_new_host_key" => c.accept_new_host_key = v == "true" || v == "1",
            _ => anyhow::bail!("storage `{text}`: unknown parameter `{k}` for sftp://"),
        }
    }
    let config = StorageConfig::Sftp(c);
    let mut problems = crate::util::problem::Problems::new();
    config.validate(".", &mut problems);
    if let Some(p) = problems.iter().next() {
        anyhow::bail!(
            "storage `{text}`: {}: {}",
            p.path.trim_start_matches('.'),
            p.message
        );
    }
    Ok(config)
}

fn decode(v: &str) -> String {
    url::form_urlencoded::parse(format!("v={v}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
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
        let StorageConfig::S3(s) = &c else { panic!() };
        assert_eq!(s.bucket, "bkt");
        assert_eq!(c.prefix(), "some/prefix");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.path_style, Some(true));
        let c = parse("az://ctr?account=devstoreaccount1").unwrap();
        let StorageConfig::Azure(s) = &c else {
            panic!()
        };
        assert_eq!((s.container.as_str(), c.prefix()), ("ctr", ""));
        let StorageConfig::Local(l) = parse("/srv/backups").unwrap() else {
            panic!()
        };
        assert_eq!(l.path, PathBuf::from("/srv/backups"));
        assert!(parse("s3:///x").is_err());
        assert!(parse("ftp://x/y").is_err());
        assert!(parse("gs://b?bogus=1").is_err());
        assert!(parse("gs://b?parallel_parts=2").is_err());
        let e = parse("s3://b?part_size_mib=0").unwrap_err().to_string();
        assert!(e.contains("part_size_mib"), "{e}");
        assert!(parse("s3://b?parallel_parts=many").is_err());
        let StorageConfig::Sftp(f) =
            parse("sftp://backup@nas.lan:2222/srv/dbkeep?known_hosts=/etc/kh&key_file=/k").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (f.user.as_deref(), f.host.as_str(), f.port, f.path.as_str()),
            (Some("backup"), "nas.lan", Some(2222), "/srv/dbkeep")
        );
        assert_eq!(f.known_hosts, Some(PathBuf::from("/etc/kh")));
        let StorageConfig::Sftp(f) = parse("sftp://nas/~/backups").unwrap() else {
            panic!()
        };
        assert_eq!((f.user, f.port, f.path.as_str()), (None, None, "backups"));
        assert!(parse("sftp://-oProxyCommand=x/y").is_err());
        assert!(parse("sftp://h/p?bogus=1").is_err());
        let StorageConfig::S3(s) = parse("s3://b/p?checksum=when_required").unwrap() else {
            panic!()
        };
        assert_eq!(s.checksum, Some(S3Checksum::WhenRequired));
        let e = parse("s3://b?checksum=never").unwrap_err().to_string();
        assert!(e.contains("when_required"), "{e}");
        assert!(parse("gs://b?checksum=when_required").is_err());
    }
}
