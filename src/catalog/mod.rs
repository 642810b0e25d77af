//! What a storage holds: the backup record ([`manifest`]), reading and
//! checking it back, and which backups to keep ([`retention`]).

pub mod manifest;
pub mod retention;
