//! Benchmarks and the load generator live here.
//!
//! * [`loadgen`]: N players of one stream (RTMP, HTTP-FLV, WebSocket-FLV) from one
//!   thread with epoll and batched reads; the `loadgen` binary wraps it.
//! * [`scan`]: the lean stream parsers the load generator uses.
//! * [`floor`]: the minimal fan-out writer used as the kernel floor (`floor` binary).
//! * [`whep`]: one WHIP publisher and N WHEP subscribers from one thread (`whep-load`
//!   binary); [`udp`]: its UDP socket helpers; [`srtp_floor`]: the SRTP encrypt +
//!   `sendto` floor (`srtp-floor` binary).
//! * [`micro`]: the micro benches' workloads, shared by `benches/` (criterion, wall
//!   time) and the `instr` binary (instruction counts under callgrind).

pub mod floor;
pub mod hist;
pub mod loadgen;
pub mod micro;
pub mod scan;
pub mod srtp_floor;
pub mod sys;
pub mod udp;
pub mod whep;
