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

/// Where a live stream is pushed (restreaming, "forward"): an RTMP or RTMPS ingest,
/// as the control plane checked it (the address is resolved and allowed there, so
/// the engine connects to exactly what was checked).
#[derive(Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    /// The forward's id in the control plane's store.
    pub id: i64,
    /// RTMPS (RTMP over TLS) rather than plain RTMP.
    pub tls: bool,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The URL's host: TLS server name and part of `tc_url`.
    pub host: String,
    /// `app` of `connect` (the URL's path without its leading slash).
    pub app: String,
    /// `tcUrl` of `connect`: the ingest URL without the key.
    pub tc_url: String,
    /// The stream key (`publish` name): a secret, never logged.
    pub key: String,
}

impl std::fmt::Debug for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardTarget")
            .field("id", &self.id)
            .field("tls", &self.tls)
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("app", &self.app)
            .field("key", &"<secret>")
            .finish()
    }
}

/// Where a forward stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardState {
    /// Connecting (or handshaking) with the destination.
    Connecting,
    /// Publishing to it.
    Live,
    /// The last attempt failed; the next one is due after a backoff.
    Retrying,
    /// Stopped: the stream ended or the forward was removed.
    Stopped,
}

impl ForwardState {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardState::Connecting => "connecting",
            ForwardState::Live => "live",
            ForwardState::Retrying => "retrying",
            ForwardState::Stopped => "idle",
        }
    }
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
    /// A recording file was created (its first bytes are queued for the disk).
    RecordingOpened {
        file: RecordingFile,
    },
    /// A recording file is complete: closed at the broadcast's end, at a split, on
    /// a command, or stopped by `error` (disk full, a write error, the quota, a disk
    /// too slow for the stream). What it holds up to there stays playable.
    RecordingClosed {
        file: RecordingFile,
        summary: RecordingSummary,
    },
    /// A forward changed state (and, while live, every few seconds with its byte
    /// count). `error` says why the last attempt failed (no secrets in it).
    ForwardStatus {
        room_id: RoomId,
        forward_id: i64,
        state: ForwardState,
        error: Option<String>,
        bytes_sent: u64,
    },
}

/// Where and how a stream is recorded ([`Command::Record`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSpec {
    pub room_id: RoomId,
    /// The broadcast (a live period of the room) the files belong to.
    pub broadcast_id: i64,
    /// The first file's name without extension (the broadcast's start, e.g.
    /// `20261207T171500Z`); later parts of the same broadcast add `-2`, `-3`...
    pub label: String,
    pub format: RecordFormat,
    /// A file longer or larger than this is closed at the next keyframe and the
    /// recording goes on in a new one.
    pub max_file_duration: std::time::Duration,
    pub max_file_bytes: u64,
    /// What this recording may write in all (what is left of the room's and the
    /// server's quotas); beyond it the recording stops.
    pub budget_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// Fragmented MP4: playable up to its last complete fragment after a crash.
    Mp4,
    /// FLV as nginx-rtmp's `record all` writes it.
    Flv,
}

impl RecordFormat {
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Mp4 => "mp4",
            RecordFormat::Flv => "flv",
        }
    }
}

/// One recording file, as its events name it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingFile {
    pub room_id: RoomId,
    pub broadcast_id: i64,
    pub stream_name: StreamName,
    /// Relative to the recordings directory: `{stream_name}/{label}.{ext}`.
    pub path: String,
    pub format: RecordFormat,
}

/// What a closed recording file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingSummary {
    pub bytes: u64,
    pub duration_ms: u64,
    /// RFC 6381 codec strings, e.g. `avc1.64001f,mp4a.40.2`, when known.
    pub codecs: Option<String>,
    /// Why the recording stopped early, if it did.
    pub error: Option<String>,
    /// An MP4 file's layout (init segment, fragments), for its HLS VOD playlist.
    pub index: Option<crate::proto::mp4::Scan>,
}

/// A private room's stream, as the engine checks its play tokens
/// ([`crate::proto::play_token`]). Streams without one are public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomAccess {
    pub room_id: RoomId,
    /// The room's token generation (tokens of another one are revoked).
    pub epoch: u32,
}

/// Control plane → a shard.
#[derive(Debug, Clone)]
pub enum Command {
    /// Disconnect the publisher and every player of a stream (room ended/deleted).
    DropStream { stream_name: StreamName },
    /// Start recording a live stream (from its cached GOP, so nothing since its
    /// last keyframe is lost), or stop (`None`). The stream's home shard does it; a
    /// stream already recorded with the same broadcast keeps its recording.
    Record { stream_name: StreamName, spec: Option<RecordSpec> },
    /// The stream became private or its tokens were revoked: disconnect its players
    /// (not relays, nor the publisher); they come back with a valid token.
    EndViewers { stream_name: StreamName },
    /// To a live stream's home shard: push the stream to exactly these destinations
    /// (restreaming). Forwards already running with the same target go on; the
    /// others stop; new ones start. Ignored for a stream not live there (with
    /// targets), so a late command cannot start forwards of an ended stream. Every
    /// forward of a stream stops when the stream ends.
    SetForwards { stream_name: StreamName, room_id: RoomId, targets: Vec<ForwardTarget> },
    /// Stop accepting, end every connection cleanly, and stop.
    Shutdown,
}

/// The engine's side of the link, shared by the shards.
#[derive(Clone)]
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

    /// Sends an event, or hands it back when the queue is full.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, ev: EngineEvent) -> Result<(), EngineEvent> {
        self.events.push(ev)
    }
}
