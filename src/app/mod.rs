//! The use cases: what a command does, built from the components below.
//!
//! A backup job ([`job`] with its [`hooks`] and [`lock`] around [`backup`]),
//! [`restore`], [`verify`], and the `schedule run` [`daemon`]. This layer
//! decides the order of things; the components (connector, storage,
//! pipeline, catalog, notify) do them.

pub mod backup;
pub mod binlog;
pub mod daemon;
pub mod hooks;
pub mod inspect;
pub mod job;
pub mod lock;
pub mod pitr;
pub mod prefetch;
pub mod restore;
pub mod verify;
