//! Counters of each shard, written by the shard's thread and read by any (the
//! control plane's metrics, `/stat`), and the snapshot a shard gives of what it
//! holds. A low layer of the shell: it knows only the link's types.

use crate::link::{Protocol, RoomId, StreamInfo};
use crate::proto::http::StreamName;
use std::net::SocketAddr;
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
    pub fn player_slot(protocol: Protocol) -> usize {
        match protocol {
            Protocol::Rtmp => 0,
            Protocol::HttpFlv => 1,
            Protocol::WsFlv => 2,
            Protocol::Hls => 3,
            Protocol::WebRtc => 4,
        }
    }
}

/// What one shard holds, for `/stat`.
#[derive(Debug, Clone)]
pub struct ClientSnap {
    pub id: u64,
    pub stream: StreamName,
    pub addr: SocketAddr,
    pub protocol: Protocol,
    /// Another node's relay pull (cluster), not a viewer.
    pub relay: bool,
    pub publishing: bool,
    pub time_ms: u64,
    pub bytes: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone)]
pub struct HomeSnap {
    pub name: StreamName,
    pub room_id: RoomId,
    pub info: StreamInfo,
    pub uptime_ms: u64,
    pub bytes_in: u64,
    pub publishing: bool,
    pub hls_error: Option<String>,
    /// CPU spent transcoding this stream's audio (AAC → Opus, Opus → AAC), ms.
    pub audio_transcode_ms: u64,
    /// Bridges running for this stream ("rtmp->webrtc", "webrtc->rtmp").
    pub bridges: Vec<&'static str>,
}

#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    pub index: usize,
    pub homes: Vec<HomeSnap>,
    pub clients: Vec<ClientSnap>,
}

/// Which clients `/control/drop` drops.
#[derive(Debug, Clone, Default)]
pub struct DropFilter {
    pub publishers: bool,
    pub players: bool,
    pub name: Option<String>,
    pub addr: Option<String>,
    pub clientid: Option<u64>,
}

impl DropFilter {
    pub fn matches(&self, stream: &str, addr: &SocketAddr, id: u64) -> bool {
        self.name.as_deref().is_none_or(|n| n == stream)
            && self.addr.as_deref().is_none_or(|a| a == addr.ip().to_string() || a == addr.to_string())
            && self.clientid.is_none_or(|c| c == id)
    }
}
