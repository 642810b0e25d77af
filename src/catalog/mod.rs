//! What a storage holds: the backup record ([`manifest`]), reading and
//! checking it back, which backups to keep ([`retention`]), and a
//! PostgreSQL job's WAL archive ([`wal`]).

pub mod manifest;
pub mod retention;
pub mod wal;
