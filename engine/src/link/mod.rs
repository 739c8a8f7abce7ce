//! The control link: how the control plane (tokio) and the shards (monoio) talk.
//!
//! Events flow out of the engine through one bounded lock-free [`Inbox`]; commands
//! flow into each shard through its own inbox. The only engine operations that wait
//! on the control plane are a publish authorization (one per publish, with a timeout)
//! and, when an `on_play` hook is configured, a play authorization.

pub mod inbox;

use crate::link::inbox::Inbox;
use crate::proto::http::StreamName;
use std::net::SocketAddr;
use std::sync::Arc;

/// A room of the control plane (its id in the control plane's store): what a
/// stream's publisher, players and events belong to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub i64);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Which protocol a publisher or player speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Rtmp,
    HttpFlv,
    WsFlv,
    Hls,
    WebRtc,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::Hls => "hls",
            Protocol::WebRtc => "webrtc",
        }
    }
}

/// The control plane's answer to a publish request.
#[derive(Debug, Clone)]
pub enum PublishDecision {
    Allow {
        room_id: RoomId,
        stream_name: StreamName,
    },
    /// `reason` is shown to the client (no secrets).
    Deny {
        reason: String,
    },
}

/// The control plane's answer to a play request (the `on_play` hook).
#[derive(Debug, Clone)]
pub enum PlayDecision {
    Allow,
    /// `reason` is shown to the client (no secrets).
    Deny {
        reason: String,
    },
}

/// What a client said about itself, for the control plane's outbound hooks (the
/// fields of nginx-rtmp's callbacks). Every string is the client's: escape it in logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// A number for the connection (nginx-rtmp's `clientid`).
    pub id: u64,
    /// RTMP `connect`'s `flashVer`, `swfUrl`, `tcUrl` and `pageUrl` (empty when not sent).
    pub flashver: String,
    pub swfurl: String,
    pub tcurl: String,
    pub pageurl: String,
    /// The query string after the stream name (without `?`; raw, still percent-encoded).
    pub args: String,
}

/// Where a stream that is not live here can be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAnswer {
    /// No room has this name: the player is refused at once.
    Unknown,
    /// A room has it: the player waits for its publisher here.
    Wait,
    /// Live on another node (cluster) whose HTTP media port is `origin`: this node
    /// pulls it from there once (a relay) and its players wait for that.
    Relay { origin: SocketAddr, room_id: RoomId },
}

/// What a live stream carries, once its codec headers are known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamInfo {
    pub video_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub audio_codec: Option<String>,
    pub audio_sample_rate: Option<u32>,
    pub audio_channels: Option<u8>,
    /// Bits per second measured over the last seconds.
    pub bitrate: Option<u64>,
    /// Problems viewers should know about (B-frames for WebRTC, codecs HLS can't carry...).
    pub warnings: Vec<String>,
}

/// Engine → control plane.
#[derive(Debug)]
pub enum EngineEvent {
    /// A publisher wants to publish with `key` (a secret: never log it).
    PublishRequest {
        app: String,
        key: String,
        addr: SocketAddr,
        protocol: Protocol,
        /// For the `on_publish` hook (the key may also be in `client.args`).
        client: Box<ClientInfo>,
        reply: futures_channel::oneshot::Sender<PublishDecision>,
    },
    /// A player wants to play `name` (sent only when `EngineConfig::play_hook` is on):
    /// the control plane asks its `on_play` hook. No answer in time denies.
    PlayRequest {
        app: String,
        name: StreamName,
        addr: SocketAddr,
        protocol: Protocol,
        client: Box<ClientInfo>,
        reply: futures_channel::oneshot::Sender<PlayDecision>,
    },
    PublishStarted {
        room_id: RoomId,
        stream_name: StreamName,
    },
    /// A player asks for a stream that is not live here: does a room have this name,
    /// and is it live on another node? No answer (or a dropped sender) counts as
    /// [`StreamAnswer::Wait`].
    StreamQuery {
        stream_name: StreamName,
        reply: futures_channel::oneshot::Sender<StreamAnswer>,
    },
    /// Codec information became known (or changed).
    StreamInfo {
        room_id: RoomId,
        stream_name: StreamName,
        info: StreamInfo,
    },
    /// The publisher is gone for good (after the grace period).
    PublishEnded {
        room_id: RoomId,
        stream_name: StreamName,
    },
    PlayerJoined {
        room_id: RoomId,
        stream_name: StreamName,
        protocol: Protocol,
    },
    PlayerLeft {
        room_id: RoomId,
        stream_name: StreamName,
        protocol: Protocol,
        /// The player's address (None for HLS sessions).
        addr: Option<SocketAddr>,
    },
}

/// Control plane → a shard.
#[derive(Debug, Clone)]
pub enum Command {
    /// Disconnect the publisher and every player of a stream (room ended/deleted).
    DropStream { stream_name: StreamName },
    /// Stop accepting, end every connection cleanly, and stop.
    Shutdown,
}

/// The engine's side of the link, shared by the shards.
pub struct EventSink {
    events: Arc<Inbox<EngineEvent>>,
}

impl EventSink {
    pub fn new(events: Arc<Inbox<EngineEvent>>) -> Self {
        Self { events }
    }

    /// Sends an event; a full queue drops it with a warning (the control plane is
    /// stuck; media must not wait for it).
    pub fn send(&self, ev: EngineEvent) {
        if let Err(ev) = self.events.push(ev) {
            tracing::warn!(event = ?std::mem::discriminant(&ev), "control link full; event dropped");
        }
    }
}
