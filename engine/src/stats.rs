//! Counters of each shard, written by the shard's thread and read by any (the
//! control plane's metrics, `/stat`). The lowest layer of the shell: it knows only
//! the protocol names.

use crate::link::Protocol;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// Counters of one shard, readable from any thread.
#[derive(Default)]
pub struct ShardStats {
    pub accepted: AtomicU64,
    pub connections: AtomicU64,
    pub publishers: AtomicU64,
    pub players: [AtomicU64; 5],
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped_frames: AtomicU64,
    /// Flush-tick writes of a cohort's shared bytes (players in step; see `player`).
    pub in_step_writes: AtomicU64,
    /// Lanes the merge window is split into (`player::lanes_for`), set at start.
    pub flush_lanes: AtomicU64,
    /// Sockets in the shard's input watch now (RTMP players; see `input_watch`).
    pub watched_inputs: AtomicU64,
    pub webrtc_sessions: AtomicU64,
    /// Totals of ended WebRTC sessions: retransmissions sent for NACKs, NACKs we
    /// sent upstream, keyframe requests we sent.
    pub webrtc_retransmits: AtomicU64,
    pub webrtc_nacks_sent: AtomicU64,
    pub webrtc_keyframe_requests: AtomicU64,
    /// "io_uring" or "epoll" once the runtime runs.
    pub driver: Mutex<&'static str>,
}

impl ShardStats {
    pub fn player_slot(p: Protocol) -> usize {
        match p {
            Protocol::Rtmp => 0,
            Protocol::HttpFlv => 1,
            Protocol::WsFlv => 2,
            Protocol::Hls => 3,
            Protocol::WebRtc => 4,
        }
    }
}
