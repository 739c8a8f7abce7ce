//! Engine configuration (the control plane maps its TOML config onto this).

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring when the kernel allows it, else epoll.
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Shard threads; 0 = one per available core.
    pub shards: usize,
    pub io: IoMode,
    /// Pin shard N to core N (modulo the cores available).
    pub pin_cores: bool,
    pub rtmp_listen: SocketAddr,
    /// Allowed RTMP application names (`rtmp://host/{app}/...`).
    pub rtmp_apps: Vec<String>,
    pub http_listen: SocketAddr,
    /// Outgoing RTMP chunk size announced to every client.
    pub rtmp_chunk_size: u32,
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed (players: nothing read
    /// and nothing writable).
    pub idle_timeout: Duration,
    pub max_message_size: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub max_streams_per_connection: u32,
    /// How long a publish waits for the control plane's authorization.
    pub publish_auth_timeout: Duration,
    /// Ask the control plane before each RTMP / HTTP-FLV / WS-FLV player plays
    /// ([`crate::EngineEvent::PlayRequest`]: its `on_play` hook); no answer within
    /// `play_auth_timeout` refuses the player.
    pub play_hook: bool,
    pub play_auth_timeout: Duration,
    /// A publisher silent for this long may be replaced by a new one with the same key.
    pub idle_publisher_timeout: Duration,
    /// After the publisher leaves, players are kept this long for a reconnect before the
    /// stream (and the room) ends.
    pub unpublish_grace: Duration,
    /// How long a player waits for a stream that is not live yet.
    pub play_wait: Duration,
    /// Before a player waits for a stream that is not live, ask the control plane
    /// ([`crate::EngineEvent::StreamQuery`]) whether a room has that name: an unknown
    /// name fails at once. Off when nothing answers the engine's events.
    pub ask_stream_known: bool,
    /// Bridge WebRTC-published streams to RTMP/FLV/HLS from their first frame, not
    /// only while players of that side watch.
    pub webrtc_bridge_always: bool,
    /// How long an HTTP-FLV / HLS request waits for a stream that is not live yet
    /// before answering 404.
    pub http_wait: Duration,
    /// Per-player write coalescing: pending messages are merged into one write per
    /// window. 0 writes as soon as a message arrives (lowest latency, most syscalls).
    pub merge_window: Duration,
    /// TCP_NODELAY on the media ports' connections (RTMP, HTTP-FLV, HLS). true: each
    /// write goes out at once. false: Nagle holds a write back while the previous one
    /// is unacknowledged, which merges further at the cost of up to a delayed-ACK
    /// interval of latency. (It is set when a connection is accepted: turning it off
    /// later would leave Linux's TCP_NAGLE_PUSH set, and Nagle would stay off.)
    pub tcp_nodelay: bool,
    /// A player's queue bounds; beyond either, video is dropped to the next keyframe.
    pub player_queue_bytes: usize,
    pub player_queue_duration: Duration,
    /// A player that keeps overflowing this long is disconnected.
    pub player_overflow_disconnect: Duration,
    /// The GOP cache bounds (bytes and media duration).
    pub gop_cache_bytes: usize,
    pub gop_cache_duration: Duration,
    /// Where new RTMP/FLV players start: a quick first frame, or the least latency.
    pub join_start: crate::stream::gop::JoinStart,
    /// Capacity of each cross-shard queue (messages).
    pub shard_queue: usize,
    /// Token for /control on the HTTP media port; empty disables /control.
    pub admin_token: String,
    /// The secret a cluster node's relay pull shows (`X-Microvibe-Relay`): such a
    /// player is not counted as a viewer. Empty: no relays (every player counts).
    pub relay_token: String,
    /// The key of private rooms' play tokens. None: no private rooms (every stream
    /// plays without a token, as when the engine runs without a control plane).
    /// Some: viewers are refused until the control plane has said which rooms are
    /// private ([`crate::Engine::replace_access`]).
    pub play_key: Option<crate::proto::play_token::PlayKey>,
    /// Access-Control-Allow-Origin for the HTTP media port.
    pub cors_origin: String,
    pub hls_fragment: Duration,
    pub hls_window: Duration,
    /// Also write HLS files here (empty: memory only).
    pub hls_path: String,
    /// Restreaming over RTMPS: a PEM file of extra CA certificates trusted besides
    /// the system's (empty: the system's only).
    pub forward_ca_file: String,
    /// First WebRTC UDP port (shard N uses base + N); 0 disables WebRTC.
    pub webrtc_port_base: u16,
    /// Address the WebRTC UDP sockets bind to.
    pub webrtc_bind: std::net::IpAddr,
    /// Addresses advertised as ICE host candidates (with each shard's port).
    pub webrtc_candidates: Vec<std::net::IpAddr>,
    /// WebRTC viewer sessions not connected yet (ICE/DTLS pending), at most, from
    /// one client address / for one stream / in all. WHEP needs no credentials:
    /// these bound what offers that never connect can hold.
    pub webrtc_pending_per_ip: usize,
    pub webrtc_pending_per_stream: usize,
    pub webrtc_pending_total: usize,
    /// A WebRTC viewer session that has not connected (ICE + DTLS) by then is closed.
    pub webrtc_viewer_connect_timeout: Duration,
    /// Where recordings are written (`{stream_name}/{label}.{ext}` under it); empty:
    /// no recording.
    pub recording_path: std::path::PathBuf,
    /// Recording bytes queued for the disk, all streams together, at most: a disk
    /// slower than that stops the recordings it cannot keep up with (never the media).
    pub recording_queue_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            io: IoMode::Auto,
            pin_cores: false,
            rtmp_listen: "0.0.0.0:1935".parse().expect("static address"),
            rtmp_apps: vec!["live".into()],
            http_listen: "0.0.0.0:8081".parse().expect("static address"),
            rtmp_chunk_size: 4096,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_message_size: 16 << 20,
            max_connections: 20_000,
            max_connections_per_ip: 5_000,
            max_streams_per_connection: 8,
            publish_auth_timeout: Duration::from_secs(5),
            play_hook: false,
            play_auth_timeout: Duration::from_secs(5),
            idle_publisher_timeout: Duration::from_secs(10),
            unpublish_grace: Duration::from_secs(5),
            play_wait: Duration::from_secs(10),
            ask_stream_known: false,
            webrtc_bridge_always: false,
            http_wait: Duration::from_secs(3),
            merge_window: Duration::from_millis(30),
            tcp_nodelay: true,
            player_queue_bytes: 4 << 20,
            player_queue_duration: Duration::from_secs(6),
            player_overflow_disconnect: Duration::from_secs(15),
            gop_cache_bytes: 16 << 20,
            gop_cache_duration: Duration::from_secs(12),
            join_start: crate::stream::gop::JoinStart::QuickStart,
            shard_queue: 8192,
            admin_token: String::new(),
            relay_token: String::new(),
            play_key: None,
            cors_origin: "*".into(),
            hls_fragment: Duration::from_secs(3),
            hls_window: Duration::from_secs(60),
            hls_path: String::new(),
            forward_ca_file: String::new(),
            webrtc_port_base: 0,
            webrtc_pending_per_ip: 16,
            webrtc_pending_per_stream: 256,
            webrtc_pending_total: 2048,
            webrtc_viewer_connect_timeout: Duration::from_secs(10),
            webrtc_bind: std::net::Ipv4Addr::UNSPECIFIED.into(),
            webrtc_candidates: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            recording_path: std::path::PathBuf::new(),
            recording_queue_bytes: 64 << 20,
        }
    }
}

impl EngineConfig {
    /// The number of shards to run.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 { self.shards } else { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) }
    }
}
