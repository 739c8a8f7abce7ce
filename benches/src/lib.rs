//! Benchmarks and the load generator live here.
//!
//! * [`loadgen`]: N players of one stream (RTMP, HTTP-FLV, WebSocket-FLV) from one
//!   thread with epoll and batched reads; the `loadgen` binary wraps it.
//! * [`scan`]: the lean stream parsers the load generator uses.
//! * [`floor`]: the minimal fan-out writer used as the kernel floor (`floor` binary).
//! * `benches/`: criterion micro benches of the engine's hot paths.

pub mod floor;
pub mod hist;
pub mod loadgen;
pub mod scan;
pub mod sys;
