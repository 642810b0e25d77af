//! dbkeep backs up and restores databases.
//!
//! A backup streams a dump tool's output (pg_dump, mariadb-dump) or a SQLite
//! online copy through compression (zstd, gzip, none) into one or more
//! storages, hashing as it goes; `manifest.json` is written last, and only
//! when the tool exited 0 and its output was complete. A restore checks every
//! object's size and sha256 before it touches a database, and refuses a
//! non-empty target unless forced.
//!
//! Config search order: `-c FILE`, `DBKEEP_CONFIG`, `./dbkeep.yaml`, the user
//! config dir's `dbkeep/config.yaml`, `/etc/dbkeep/config.yaml`.
//!
//! Exit codes are listed in [`exit`].

pub mod backup;
pub mod cli;
pub mod config;
pub mod connector;
pub mod crypt;
pub mod daemon;
pub mod hooks;
pub mod job;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod progress;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod storage;
pub mod util;
pub mod verify;
