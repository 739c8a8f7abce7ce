//! Configuration, events and stream states of [`super::ServerSession`].

use std::time::Duration;

use bytes::Bytes;

use super::super::amf0::Amf0Limits;
use super::super::chunk::ChunkLimits;
use super::super::error::RtmpError;
use super::super::handshake::HandshakeKind;
use super::super::message::MediaType;

/// Configuration of a [`ServerSession`](super::ServerSession).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Chunk size announced right after `connect` is accepted and used for all
    /// output from then on. Default 4096.
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size sent to the client (§5.4.4): a player acknowledges
    /// every this many bytes it receives. Default 5 000 000 (nginx-rtmp's): each
    /// acknowledgement wakes the shard, and 2 000 players at 2.5 Mbit/s sent 260 a
    /// second with 2 500 000 (BENCHMARKS.md, "Lanes").
    pub window_ack_size: u32,
    /// Set Peer Bandwidth window sent to the client (§5.4.5, limit type dynamic).
    /// Default 2 500 000.
    pub peer_bandwidth: u32,
    /// Time allowed from creation to the end of the handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Time without a complete message (bytes of an unfinished message do not
    /// count: a peer dribbling a huge message byte by byte is idle) after which the
    /// session closes. Default 60 s.
    pub idle_timeout: Duration,
    /// Time from creation until a publish or a play is accepted; the session closes
    /// if neither happened by then. `None` = no limit. Default 30 s.
    pub start_timeout: Option<Duration>,
    /// Send a Ping Request after this long without input (§7.1.7), so that quiet
    /// players answer and stay inside `idle_timeout`. Default 20 s; `None` = off.
    pub ping_interval: Option<Duration>,
    /// Most NetStreams one connection may have open (`createStream`). Default 8.
    pub max_streams: usize,
    /// Chunk decoder bounds once a publish has been accepted (media frames).
    pub chunk_limits: ChunkLimits,
    /// Chunk decoder bounds until then, and for players: such a connection sends
    /// only commands and control messages of a few hundred bytes, so nobody can
    /// make the server hold megabytes before being authorized. Default 64 KiB per
    /// message, 128 KiB in partial messages, 16 chunk streams.
    pub command_chunk_limits: ChunkLimits,
    /// AMF decoding bounds.
    pub amf_limits: Amf0Limits,
    /// Most payload bytes held back while the engine decides on a connect, publish
    /// or play (messages that arrive meanwhile are replayed after the decision).
    /// Default 8 MiB.
    pub max_deferred_bytes: usize,
    /// [`max_deferred_bytes`](Self::max_deferred_bytes) before a publish has been
    /// accepted (a publisher's media waiting for its authorization must fit).
    /// Default 256 KiB.
    pub command_max_deferred_bytes: usize,
    /// Most bytes of not yet drained output before the session gives up on the
    /// peer. Default 4 MiB.
    pub max_pending_output: usize,
    /// `fmsVer` in the connect reply. Default `FMS/3,0,1,123`.
    pub fms_version: String,
    /// `capabilities` in the connect reply. Default 31.
    pub capabilities: f64,
    /// Seed for the handshake's random bytes (they carry no secret). The caller
    /// passes a fresh one per connection; this crate draws no randomness itself.
    pub rng_seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            out_chunk_size: 4096,
            window_ack_size: 5_000_000,
            peer_bandwidth: 2_500_000,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            start_timeout: Some(Duration::from_secs(30)),
            ping_interval: Some(Duration::from_secs(20)),
            max_streams: 8,
            chunk_limits: ChunkLimits::default(),
            command_chunk_limits: ChunkLimits::commands(),
            amf_limits: Amf0Limits::default(),
            max_deferred_bytes: 8 << 20,
            command_max_deferred_bytes: 256 << 10,
            max_pending_output: 4 << 20,
            fms_version: "FMS/3,0,1,123".to_owned(),
            capabilities: 31.0,
            rng_seed: 0,
        }
    }
}

/// The `type` argument of `publish` (§7.2.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishType {
    /// `live` (also used for anything unrecognised, as FMS does).
    Live,
    /// `record`.
    Record,
    /// `append`.
    Append,
}

impl PublishType {
    pub(super) fn parse(s: Option<&str>) -> PublishType {
        match s {
            Some(t) if t.eq_ignore_ascii_case("record") => PublishType::Record,
            Some(t) if t.eq_ignore_ascii_case("append") => PublishType::Append,
            _ => PublishType::Live,
        }
    }
}

/// What a [`ServerSession`](super::ServerSession) reports to the engine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// C2 has been read.
    HandshakeComplete {
        /// Simple or digest handshake.
        kind: HandshakeKind,
    },
    /// `connect` arrived: call [`ServerSession::accept_connect`](super::ServerSession::accept_connect) or
    /// [`ServerSession::reject_connect`](super::ServerSession::reject_connect). Later messages wait for the decision.
    ConnectRequested {
        /// The `app` property without any `?query` and trailing `/`.
        app: String,
        /// The part of `app` after `?`, if any (some clients put tokens there).
        app_query: Option<String>,
        /// The `tcUrl` property, if sent.
        tc_url: Option<String>,
    },
    /// `publish` arrived on a stream: call [`ServerSession::accept_publish`](super::ServerSession::accept_publish) or
    /// [`ServerSession::reject_publish`](super::ServerSession::reject_publish). Media sent meanwhile is held back.
    PublishRequested {
        /// Message stream id.
        stream_id: u32,
        /// The connection's app.
        app: String,
        /// Stream name without `?query`.
        name: String,
        /// The part of the name after `?`, if any.
        query: Option<String>,
        /// `live`, `record` or `append`.
        publish_type: PublishType,
    },
    /// `play` arrived on a stream: call [`ServerSession::accept_play`](super::ServerSession::accept_play) or
    /// [`ServerSession::reject_play`](super::ServerSession::reject_play).
    PlayRequested {
        /// Message stream id.
        stream_id: u32,
        /// The connection's app.
        app: String,
        /// Stream name without `?query`.
        name: String,
        /// The part of the name after `?`, if any.
        query: Option<String>,
    },
    /// A media message from a publishing stream. For data, the `@setDataFrame`
    /// wrapper is removed: the payload starts with the AMF0 string `onMetaData`
    /// (or another handler name), like a plain `onMetaData` message.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// Audio, video or data.
        kind: MediaType,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// The FLV tag body / AMF0 data.
        payload: Bytes,
    },
    /// A player paused or resumed (`pause`, §7.2.2.8).
    Paused {
        /// Message stream id.
        stream_id: u32,
        /// True for pause, false for resume.
        paused: bool,
    },
    /// A publishing or playing stream (or one awaiting a decision) ended:
    /// `closeStream`, `deleteStream`, `FCUnpublish`, or the session closing.
    StreamClosed {
        /// Message stream id.
        stream_id: u32,
    },
    /// The session is closed: flush `poll_transmit` and close the socket.
    /// Emitted once, after `StreamClosed` for every active stream.
    Closed {
        /// Why, or `None` for an orderly close (rejection, [`ServerSession::close`](super::ServerSession::close)).
        error: Option<RtmpError>,
    },
}

/// State of one NetStream as seen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// Created, not publishing or playing.
    Idle,
    /// `publish` awaiting a decision.
    PublishPending,
    /// Publishing.
    Publishing,
    /// `play` awaiting a decision.
    PlayPending,
    /// Playing.
    Playing,
}

impl StreamStatus {
    pub(super) fn is_active(self) -> bool {
        self != StreamStatus::Idle
    }

    pub(super) fn is_pending(self) -> bool {
        matches!(self, StreamStatus::PublishPending | StreamStatus::PlayPending)
    }
}
