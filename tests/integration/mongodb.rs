//! MongoDB: argv and config-file construction, streaming and failure paths.
