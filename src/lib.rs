//! dbkeep backs up and restores PostgreSQL, MariaDB/MySQL, SQLite, MongoDB
//! and Redis databases.
//!
//! A backup streams a dump tool's output (pg_dump, mariadb-dump, mongodump),
//! a SQLite online copy or a Redis key export through compression (zstd,
//! gzip, none) and optional age encryption into one or more storages, hashing
//! as it goes; `manifest.json` is written last, and only when the tool exited
//! 0 and its output was complete. A restore checks every object's size and
//! sha256 before it touches a database, and refuses a non-empty target unless
//! forced.
//!
//! # Layers
//!
//! Imports only run downward (a test in the integration suite keeps it so):
//!
//! ```text
//! cli                   flags, printing, the exit-code mapping
//!  └ app                use cases: job, backup, restore, verify, daemon, lock, hooks
//!     └ config          loading, layering and validating the YAML config
//!        ├ catalog      manifests, their signing, retention
//!        │  └ pipeline  compression, encryption, hashing, progress
//!        ├ notify       one module per notifier, with its config; metrics
//!        ├ connector    one module per engine, with its config, behind `Connector`
//!        ├ storage      one module per backend, with its config, behind `Storage`
//!        ├ schedule     cron expressions and time zones
//!        └ util         leaves: secrets, durations, signals, processes, problems
//! ```
//!
//! Each component owns its part of the config: its `type`s as serde
//! structs with their docs and defaults, and a `validate()` for the rules
//! that span keys. `config` only composes them, reports every problem with
//! its YAML path, and fills in what jobs inherit. The pipeline streams from
//! a connector's dump into a storage's writer; the catalog reads and writes
//! manifests through a storage.
//!
//! Config search order: `-c FILE`, `DBKEEP_CONFIG`, `./dbkeep.yaml`, the user
//! config dir's `dbkeep/config.yaml`, `/etc/dbkeep/config.yaml`.
//!
//! Exit codes are listed in [`util::exit`].

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod connector;
pub mod notify;
pub mod pipeline;
pub mod schedule;
pub mod storage;
pub mod util;
