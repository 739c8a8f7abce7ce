//! MicroVibe Live media engine.
//!
//! How the pieces run: [`Engine::start`] starts one OS thread per shard, each
//! running one monoio runtime (io_uring, or epoll where io_uring is unavailable).
//! Every shard accepts RTMP and HTTP connections on the same ports (SO_REUSEPORT)
//! and drives the sans-IO protocol code in [`proto`] (bytes and `now` in, bytes and
//! events out). A stream lives on its home shard (hash of its name), which sends
//! each frame once to each shard with players; shards fan out locally, writing each
//! player's pending frames as one vectored write per merge window. The control
//! plane talks to the engine over the lock-free [`link`].

// Layers, from the bottom up (engine/tests/layers.rs checks that no module reaches
// one that reaches it back): `link`, `log_limit`, `stats`, `config`; `stream`;
// `net`; `fanout`; `shard`; `serve`; `engine`.
pub mod config;
pub mod engine;
pub mod fanout;
pub mod link;
pub mod log_limit;
pub mod net;
pub mod serve;
pub mod shard;
pub mod stats;
pub mod stream;

/// The sans-IO protocol crate (engine/proto), under the name the shell uses.
pub use ::proto;

pub use config::{EngineConfig, IoMode};
pub use engine::Engine;
pub use link::{ClientInfo, Command, EngineEvent, PlayDecision, Protocol, PublishDecision, StreamInfo};
pub use shard::StartError;
