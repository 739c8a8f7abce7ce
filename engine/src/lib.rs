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

pub mod bridge;
pub mod config;
pub mod engine;
pub mod flv_play;
pub mod frame;
pub mod gop;
pub mod hls_serve;
pub mod hls_viewers;
pub mod http;
pub mod http_io;
pub mod hub;
pub mod inbox;
pub mod input_watch;
pub mod link;
pub mod listen;
pub mod log_limit;
pub mod player;
pub mod rtc;
pub mod rtmp_conn;
pub mod shard;
pub mod stat;
pub mod stats;
pub mod sys;

/// The sans-IO protocol crate (engine/proto), under the name the shell uses.
pub use ::proto;

pub use config::{EngineConfig, IoMode};
pub use engine::Engine;
pub use link::{Command, EngineEvent, Protocol, PublishDecision, StreamInfo};
pub use shard::StartError;
