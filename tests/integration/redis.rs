//! Redis: round trips against the real server.
