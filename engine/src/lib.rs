//! MicroVibe Live media engine.
//!
//! How the pieces run: `proto` holds sans-IO protocol code (bytes and `now` in,
//! bytes and events out). The shard runtime (one monoio runtime per core) drives it.

pub mod proto;
