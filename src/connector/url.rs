//! Database URLs for one-off runs: `postgres://user@host:port/db`,
//! `mysql://…`, `mariadb://…`, `sqlite:///path/app.db`, or a bare SQLite path.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Engine;
use super::source::{
    Databases, MongoConfig, RedisConfig, ServerConfig, SourceConfig, SqliteConfig, TlsConfig,
    TlsMode,
};
use super::tunnel::SshConfig;
use crate::util::secret::Secret;

/// Parses a database URL or a bare SQLite file path.
pub fn parse(text: &str) -> Result<SourceConfig> {
    let mut source = read(text)?;
    // The same rules as a source in the config file.
    let mut problems = crate::util::problem::Problems::new();
    source.validate(".", &mut problems);
    if problems.is_empty() {
        return Ok(source);
    }
    let shown: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
    anyhow::bail!(
        "database URL `{}`: {}",
        crate::util::secret::redact(text),
        shown.join("; ")
    )
}

fn read(text: &str) -> Result<SourceConfig> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Ok(SourceConfig::Sqlite(SqliteConfig {
            path: PathBuf::from(text),
        }));
    };
    let engine = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Engine::Postgres,
        "mysql" => Engine::Mysql,
        "mariadb" => Engine::Mariadb,
        "mongodb" | "mongodb+srv" => return mongodb(text),
        "redis" | "rediss" => Engine::Redis,
        "sqlite" | "sqlite3" => {
            if rest.is_empty() {
                anyhow::bail!("`{text}` names no SQLite file: use sqlite:///path/to/app.db");
            }
            return Ok(SourceConfig::Sqlite(SqliteConfig {
                path: PathBuf::from(rest),
            }));
        }
        other => anyhow::bail!(
            "unknown database URL scheme `{other}`: use postgres://, mysql://, mariadb://, mongodb://, redis://, \
             sqlite:// or a SQLite file path"
        ),
    };
    let url = url::Url::parse(text).with_context(|| {
        format!(
            "cannot read database URL `{}`",
            crate::util::secret::redact(text)
        )
    })?;
    let (tls, ssh) = tls_params(engine, scheme, &url)?;
    let decode = |s: &str| -> Result<String> {
        percent_encoding_decode(s).context("the URL holds invalid percent-encoding")
    };
    let password = match url.password() {
        Some(p) => {
            let p = Secret::new(decode(p)?);
            tracing::warn!(
                "a password in the URL is visible to other users in `ps` while dbkeep runs; prefer {}",
                if engine == Engine::Postgres {
                    "PGPASSWORD or ~/.pgpass"
                } else {
                    "a config file with `password_file`"
                }
            );
            Some(p)
        }
        None => None,
    };
    let user = (!url.username().is_empty())
        .then(|| decode(url.username()))
        .transpose()?;
    let db = decode(url.path().trim_start_matches('/'))?;
    if engine == Engine::Redis {
        // redis://[user[:password]@]host[:port][/db]; rediss:// is TLS.
        let databases = if db.is_empty() {
            Databases::All
        } else if db.parse::<u32>().is_ok() {
            Databases::List(vec![db])
        } else {
            anyhow::bail!("the path of a redis URL is a db number, not `{db}`");
        };
        return Ok(SourceConfig::Redis(RedisConfig {
            host: url
                .host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()),
            port: url.port(),
            user,
            password,
            databases: Some(databases),
            tls,
            ssh,
            ..RedisConfig::default()
        }));
    }
    if db.is_empty() {
        anyhow::bail!("the URL names no database: add it as the path, e.g. {scheme}://host/app");
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
    let source = ServerConfig {
        host,
        port: url.port(),
        user,
        password,
        tls,
        ssh,
        ..ServerConfig::new(Databases::List(vec![db]))
    };
    Ok(match engine {
        Engine::Postgres => SourceConfig::Postgres(source),
        Engine::Mysql => SourceConfig::Mysql(source),
        _ => SourceConfig::Mariadb(source),
    })
}

/// The TLS settings a URL's parameters give, with each engine's own names:
/// libpq's (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslcrl`) for
/// PostgreSQL, the MySQL clients' (`ssl-mode`, `ssl-ca`, `ssl-cert`,
/// `ssl-key`) for MySQL and MariaDB; `rediss://` for Redis. A parameter
/// without a mode means `verify-full`.
fn tls_params(
    engine: Engine,
    scheme: &str,
    url: &url::Url,
) -> Result<(Option<TlsConfig>, Option<SshConfig>)> {
    let mut tls: Option<TlsConfig> = None;
    let mut ssh: Option<SshConfig> = None;
    if engine == Engine::Redis && scheme.eq_ignore_ascii_case("rediss") {
        tls = Some(TlsConfig::default());
    }
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "ssh" => {
                let parsed = SshConfig::parse(&value)?;
                let s = ssh.get_or_insert_with(SshConfig::default);
                (s.host, s.port, s.user) = (parsed.host, parsed.port, parsed.user);
                continue;
            }
            "ssh_key_file" | "ssh_known_hosts" | "ssh_accept_new_host_key" => {
                let s = ssh.get_or_insert_with(SshConfig::default);
                match key.as_ref() {
                    "ssh_key_file" => s.key_file = Some(PathBuf::from(value.as_ref())),
                    "ssh_known_hosts" => s.known_hosts = Some(PathBuf::from(value.as_ref())),
                    _ => s.accept_new_host_key = value == "true" || value == "1",
                }
                continue;
            }
            _ => {}
        }
        let t = tls.get_or_insert_with(TlsConfig::default);
        let path = || Some(PathBuf::from(value.as_ref()));
        match (engine, key.as_ref()) {
            (Engine::Postgres, "sslmode") => {
                t.mode = match value.as_ref() {
                    "disable" => TlsMode::Disable,
                    "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => anyhow::bail!(
                        "`sslmode={other}` is not supported: use disable, prefer, require, verify-ca or verify-full"
                    ),
                }
            }
            (Engine::Postgres, "sslrootcert") => t.ca_file = path(),
            (Engine::Postgres, "sslcert") => t.cert_file = path(),
            (Engine::Postgres, "sslkey") => t.key_file = path(),
            (Engine::Postgres, "sslcrl") => t.crl_file = path(),
            (Engine::Mysql | Engine::Mariadb, "ssl-mode") => {
                t.mode = match value.to_ascii_uppercase().as_str() {
                    "DISABLED" => TlsMode::Disable,
                    "PREFERRED" => TlsMode::Prefer,
                    "REQUIRED" => TlsMode::Require,
                    "VERIFY_CA" => TlsMode::VerifyCa,
                    "VERIFY_IDENTITY" => TlsMode::VerifyFull,
                    other => anyhow::bail!(
                        "`ssl-mode={other}` is not supported: use DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY"
                    ),
                }
            }
            (Engine::Mysql | Engine::Mariadb, "ssl-ca") => t.ca_file = path(),
            (Engine::Mysql | Engine::Mariadb, "ssl-cert") => t.cert_file = path(),
            (Engine::Mysql | Engine::Mariadb, "ssl-key") => t.key_file = path(),
            (Engine::Postgres, other) => anyhow::bail!(
                "unknown parameter `{other}` in a postgres:// URL: use sslmode, sslrootcert, sslcert, sslkey, sslcrl \
                 or ssh, ssh_key_file, ssh_known_hosts, or a config file for other connection options"
            ),
            (Engine::Mysql | Engine::Mariadb, other) => anyhow::bail!(
                "unknown parameter `{other}` in a {scheme}:// URL: use ssl-mode, ssl-ca, ssl-cert or ssl-key, \
                 or a config file for other connection options"
            ),
            (_, other) => anyhow::bail!(
                "unknown parameter `{other}` in a {scheme}:// URL: use rediss:// for TLS, or a config file"
            ),
        }
    }
    if let Some(s) = &ssh
        && s.host.is_empty()
    {
        anyhow::bail!("the URL's SSH options need `ssh=user@host:port`");
    }
    Ok((tls, ssh))
}

/// A MongoDB connection string is kept whole (it is handed to mongodump in a
/// 0600 config file); its path names the database, or all when empty.
fn mongodb(text: &str) -> Result<SourceConfig> {
    let uri = Secret::new(text);
    let rest = text.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let after_host = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
    let db = after_host.split('?').next().unwrap_or_default();
    let db = percent_encoding_decode(db).context("the URL holds invalid percent-encoding")?;
    let databases = if db.is_empty() {
        Databases::All
    } else {
        Databases::List(vec![db])
    };
    Ok(SourceConfig::Mongodb(MongoConfig {
        uri: Some(uri),
        databases: Some(databases),
        ..MongoConfig::default()
    }))
}

fn percent_encoding_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A job name for a one-off backup: the database name or file stem, made plain.
pub fn default_job_name(source: &SourceConfig) -> String {
    let raw = match (source, source.databases()) {
        (SourceConfig::Sqlite(s), _) => s
            .path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (SourceConfig::Redis(_), Some(Databases::List(l))) => {
            format!("redis-{}", l.first().cloned().unwrap_or_default())
        }
        (_, Some(Databases::List(l))) => l.first().cloned().unwrap_or_default(),
        (_, _) => format!("{}-all", source.engine()),
    };
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_start_matches('.').to_string();
    if name.is_empty() {
        "backup".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let source = parse("postgres://bob:p%40ss@db.example:5433/app%20x").unwrap();
        let SourceConfig::Postgres(s) = &source else {
            panic!()
        };
        assert_eq!(source.engine(), Engine::Postgres);
        assert_eq!(s.user.as_deref(), Some("bob"));
        assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("p@ss"));
        assert_eq!(s.host.as_deref(), Some("db.example"));
        assert_eq!(s.port, Some(5433));
        assert_eq!(s.databases(), &Databases::List(vec!["app x".into()]));
        let SourceConfig::Mariadb(s) = parse("mariadb://root@127.0.0.1/shop").unwrap() else {
            panic!()
        };
        assert_eq!(s.port, None);
        assert!(parse("postgres://host/").is_err());
        assert!(parse("ftp://x/y").is_err());
        let e = parse("postgres://host/-oops").unwrap_err().to_string();
        assert!(e.contains("starts with `-`"), "{e}");
        let SourceConfig::Postgres(s) =
            parse("postgres://h/app?sslmode=verify-ca&sslrootcert=/ca.pem&sslcrl=/crl.pem")
                .unwrap()
        else {
            panic!()
        };
        let tls = s.tls.unwrap();
        assert_eq!(tls.mode, TlsMode::VerifyCa);
        assert_eq!(tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(tls.crl_file, Some(PathBuf::from("/crl.pem")));
        let SourceConfig::Mariadb(s) =
            parse("mariadb://u@h/shop?ssl-mode=verify_identity&ssl-ca=/ca.pem").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.tls.unwrap().mode, TlsMode::VerifyFull);
        for bad in [
            "postgres://h/app?sslmode=allow",
            "postgres://h/app?connect_timeout=3",
            "mysql://h/app?sslmode=require",
            "postgres://h/app?sslcert=/c.pem",
            "mysql://h/app?ssl-mode=REQUIRED&sslcrl=/x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mongodb_and_redis_urls() {
        let SourceConfig::Mongodb(s) =
            parse("mongodb://u:secret-pw@h1:27017,h2/app?replicaSet=rs0").unwrap()
        else {
            panic!()
        };
        assert_eq!(s.databases(), &Databases::List(vec!["app".into()]));
        assert!(s.uri.is_some() && s.host.is_none());
        let SourceConfig::Mongodb(s) = parse("mongodb://h1/").unwrap() else {
            panic!()
        };
        assert_eq!(s.databases(), &Databases::All);
        let source = parse("rediss://default:pw-x@cache:6380/3").unwrap();
        let SourceConfig::Redis(s) = &source else {
            panic!()
        };
        assert_eq!(
            (s.port, s.tls.as_ref().map(|t| t.mode)),
            (Some(6380), Some(TlsMode::VerifyFull))
        );
        assert_eq!(s.databases(), &Databases::List(vec!["3".into()]));
        assert_eq!(default_job_name(&source), "redis-3");
        assert!(parse("redis://cache/x").is_err());
    }

    #[test]
    fn sqlite_urls_and_paths() {
        let SourceConfig::Sqlite(s) = parse("sqlite:///var/lib/app.db").unwrap() else {
            panic!()
        };
        assert_eq!(s.path, PathBuf::from("/var/lib/app.db"));
        let source = parse("data/app.db").unwrap();
        let SourceConfig::Sqlite(s) = &source else {
            panic!()
        };
        assert_eq!(s.path, PathBuf::from("data/app.db"));
        assert_eq!(default_job_name(&source), "app");
    }
}
