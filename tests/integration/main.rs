//! Integration tests: the real dbkeep binary against real PostgreSQL, MariaDB
//! and SQLite, with stand-in tools only where a failure must be injected.

mod azure;
mod binlog;
mod cli;
mod concurrency;
mod config;
mod encryption;
mod entra;
mod failures;
mod gcs;
mod inspect;
mod layers;
mod mongodb;
mod mysql;
mod notify;
mod pitr;
mod postgres;
mod progress;
mod redis;
mod redis_hostile;
mod retention;
mod s3;
mod schedule;
mod selection;
mod sftp;
mod sqlite;
mod ssh;
mod storage;
mod tls;
mod trust;
mod util;
