//! The server side of one RTMP connection, as a sans-IO state machine.
//!
//! It runs the handshake (§5.2), then the NetConnection and NetStream commands
//! (§7.2.1 `connect`, `createStream`, `deleteStream`; §7.2.2 `play`, `publish`,
//! `closeStream`, `pause`, plus the FMLE commands `releaseStream`, `FCPublish`,
//! `FCUnpublish` that ffmpeg and OBS send), answers protocol control messages
//! (§5.4) and ping requests (§7.1.7), and reports decisions and media to the engine
//! as [`SessionEvent`]s.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::amf0::Value;
use super::chunk::Message;
use super::conn::Conn;
use super::error::RtmpError;
use super::handshake::{HandshakeKind, ServerHandshake};
use super::message::{
    Command, MediaType, PeerBandwidthLimit, RtmpMessage, UserControl, data_name, split_aggregate, strip_set_data_frame,
    type_id,
};

mod commands;
mod types;

pub use types::{PublishType, SessionConfig, SessionEvent, StreamStatus};

#[derive(Debug)]
struct NetStream {
    status: StreamStatus,
    name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    WaitConnect,
    ConnectPending,
    Connected,
    Closed,
}

/// Bytes charged per deferred message on top of its payload.
const DEFERRED_OVERHEAD: usize = 64;

/// Server side of one RTMP connection (sans-IO).
///
/// The API has four groups, as in str0m's `Rtc` and quinn-proto's `Connection`:
///
/// 1. **Getters**: [`app`](Self::app), [`tc_url`](Self::tc_url),
///    [`out_chunk_size`](Self::out_chunk_size), [`stream_status`](Self::stream_status),
///    [`is_closed`](Self::is_closed), byte counters, ...
/// 2. **Input**: [`handle_input`](Self::handle_input) with bytes read from the
///    socket, [`handle_timeout`](Self::handle_timeout) when
///    [`poll_timeout`](Self::poll_timeout)'s instant has passed.
/// 3. **Commands** from the engine: [`accept_connect`](Self::accept_connect),
///    [`reject_connect`](Self::reject_connect), [`accept_publish`](Self::accept_publish),
///    [`reject_publish`](Self::reject_publish), [`accept_play`](Self::accept_play),
///    [`reject_play`](Self::reject_play), [`send_stream_eof`](Self::send_stream_eof),
///    [`send_on_status`](Self::send_on_status), [`close`](Self::close).
/// 4. **Output**: drain [`poll_event`](Self::poll_event) and
///    [`poll_transmit`](Self::poll_transmit) until `None` after every input or
///    command, then ask [`poll_timeout`](Self::poll_timeout) when to call again.
///
/// # Media to players and write ordering
///
/// The session never sends media. The engine writes media bytes built once per
/// distinct chunk size with [`super::message::encode_media`] (type 0 header, then
/// type 3 continuations) straight to the socket: use the player's
/// [`out_chunk_size`](Self::out_chunk_size) (fixed once `connect` is accepted) and
/// the play `stream_id`. Media uses chunk stream ids 4 (audio), 5 (data), 6 (video)
/// and the session uses only 2 and 3, so the two byte sources never share a chunk
/// stream. They must not interleave inside a message either: always write the
/// whole of a `poll_transmit` buffer, and whole pre-chunked messages, and drain
/// `poll_transmit` before writing media (in particular after `accept_play`, whose
/// `NetStream.Play.Start` must reach the player before the first media message).
///
/// # Errors and closing
///
/// Fatal errors close the session: `handle_input` returns the error, and a
/// [`SessionEvent::Closed`] is queued. When the socket reports EOF or an error,
/// call [`close`](Self::close) and drain events to learn which streams ended.
#[derive(Debug)]
pub struct ServerSession {
    config: SessionConfig,
    handshake: ServerHandshake,
    conn: Conn,
    rng: SmallRng,
    phase: Phase,
    created: Instant,
    last_input: Instant,
    last_ping: Option<Instant>,
    app: String,
    tc_url: Option<String>,
    connect_object: Option<Value>,
    object_encoding: f64,
    connect_txn: f64,
    streams: BTreeMap<u32, NetStream>,
    next_stream_id: u32,
    deferred: VecDeque<Message>,
    deferred_bytes: usize,
    events: VecDeque<SessionEvent>,
    /// A publish or play has been accepted (ends the start timeout).
    started: bool,
    /// A publish has been accepted: the larger `chunk_limits` apply.
    may_publish: bool,
}

fn deadline(base: Instant, after: Duration) -> Option<Instant> {
    base.checked_add(after)
}

impl ServerSession {
    /// A session for a freshly accepted connection, waiting for C0+C1.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let rng = SmallRng::seed_from_u64(config.rng_seed);
        let conn = Conn::new(config.command_chunk_limits, config.amf_limits);
        ServerSession {
            config,
            handshake: ServerHandshake::new(),
            conn,
            rng,
            phase: Phase::Handshake,
            created: now,
            last_input: now,
            last_ping: None,
            app: String::new(),
            tc_url: None,
            connect_object: None,
            object_encoding: 0.0,
            connect_txn: 0.0,
            streams: BTreeMap::new(),
            next_stream_id: 1,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            events: VecDeque::new(),
            started: false,
            may_publish: false,
        }
    }

    // ---- getters ----

    /// The `app` of `connect` (without `?query`), empty before it.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The `tcUrl` of `connect`, if sent.
    pub fn tc_url(&self) -> Option<&str> {
        self.tc_url.as_deref()
    }

    /// The whole `connect` command object, once received.
    pub fn connect_object(&self) -> Option<&Value> {
        self.connect_object.as_ref()
    }

    /// The handshake variant, once C1 has been read.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.handshake.kind()
    }

    /// True once `connect` has been accepted.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// True once the session is closed: flush `poll_transmit`, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Chunk size of everything sent to the peer (128 until `connect` is accepted,
    /// then [`SessionConfig::out_chunk_size`]). Pre-chunked media must use it.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size()
    }

    /// Chunk size the peer sends with.
    pub fn in_chunk_size(&self) -> u32 {
        self.conn.decoder.chunk_size()
    }

    /// Bytes passed to `handle_input` so far.
    pub fn bytes_received(&self) -> u64 {
        self.conn.bytes_in()
    }

    /// Bytes handed out by `poll_transmit` so far.
    pub fn bytes_sent(&self) -> u64 {
        self.conn.bytes_out()
    }

    /// Status of a NetStream, `None` if no such stream exists.
    pub fn stream_status(&self, stream_id: u32) -> Option<StreamStatus> {
        self.streams.get(&stream_id).map(|s| s.status)
    }

    /// The name (without query) a stream publishes or plays.
    pub fn stream_name(&self, stream_id: u32) -> Option<&str> {
        self.streams.get(&stream_id).filter(|s| s.status.is_active()).map(|s| s.name.as_str())
    }

    /// Ids of the open NetStreams.
    pub fn stream_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams.keys().copied()
    }

    // ---- input ----

    /// Feeds bytes read from the socket. On error the session is closed.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        self.conn.count_input(data.len());
        let res = self.input(now, data);
        if let Err(e) = &res {
            self.close_with(Some(e.clone()));
        }
        res
    }

    fn input(&mut self, now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        let mut input = data;
        if self.phase == Phase::Handshake {
            if !self.handshake.handle_input(&mut input, &mut self.rng, self.conn.out_buf())? {
                return Ok(());
            }
            self.phase = Phase::WaitConnect;
            self.last_input = now;
            if let Some(kind) = self.handshake.kind() {
                self.events.push_back(SessionEvent::HandshakeComplete { kind });
            }
        }
        while self.phase != Phase::Closed {
            let Some(msg) = self.conn.decoder.decode(&mut input)? else {
                break;
            };
            // Idle time counts from the last complete message, not the last byte.
            self.last_input = now;
            self.on_message(msg)?;
        }
        self.conn.maybe_ack();
        if self.conn.pending_output() > self.config.max_pending_output {
            return Err(RtmpError::limit(
                "pending output",
                self.conn.pending_output() as u64,
                self.config.max_pending_output as u64,
            ));
        }
        Ok(())
    }

    /// Handles expired timers: closes on handshake or idle timeout (queuing
    /// [`SessionEvent::Closed`]) and sends keep-alive pings.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::Handshake
            && deadline(self.created, self.config.handshake_timeout).is_some_and(|d| now >= d)
        {
            self.close_with(Some(RtmpError::Timeout { what: "handshake", after: self.config.handshake_timeout }));
            return;
        }
        if let Some(d) = self.start_deadline()
            && now >= d
        {
            let after = self.config.start_timeout.unwrap_or_default();
            self.close_with(Some(RtmpError::Timeout { what: "publish or play", after }));
            return;
        }
        if deadline(self.last_input, self.config.idle_timeout).is_some_and(|d| now >= d) {
            self.close_with(Some(RtmpError::Timeout { what: "idle", after: self.config.idle_timeout }));
            return;
        }
        if self.next_ping().is_some_and(|d| now >= d) {
            self.last_ping = Some(now);
            let ms = now.saturating_duration_since(self.created).as_millis() as u32;
            self.conn.send(0, 0, &RtmpMessage::UserControl(UserControl::PingRequest(ms)));
        }
    }

    /// When the session closes unless a publish or play has been accepted.
    fn start_deadline(&self) -> Option<Instant> {
        if self.started {
            return None;
        }
        deadline(self.created, self.config.start_timeout?)
    }

    fn next_ping(&self) -> Option<Instant> {
        if self.phase == Phase::Handshake {
            return None;
        }
        let base = match self.last_ping {
            Some(p) if p > self.last_input => p,
            _ => self.last_input,
        };
        deadline(base, self.config.ping_interval?)
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Handshake => deadline(self.created, self.config.handshake_timeout),
            _ => [deadline(self.last_input, self.config.idle_timeout), self.next_ping(), self.start_deadline()]
                .into_iter()
                .flatten()
                .min(),
        }
    }

    // ---- output ----

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// All bytes queued for the socket, as one buffer (write it whole).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.take_output()
    }

    /// Whether `poll_transmit` has something to send.
    pub fn has_output(&self) -> bool {
        self.conn.pending_output() > 0
    }

    // ---- message handling ----

    fn decision_pending(&self) -> bool {
        self.phase == Phase::ConnectPending || self.streams.values().any(|s| s.status.is_pending())
    }

    fn on_message(&mut self, msg: Message) -> Result<(), RtmpError> {
        if (type_id::SET_CHUNK_SIZE..=type_id::SET_PEER_BANDWIDTH).contains(&msg.type_id) {
            // Protocol and user control: handled at once, never deferred. Other
            // user control events (SetBufferLength, ...) need no answer.
            self.conn.handle_control(&msg)?;
            return Ok(());
        }
        if self.decision_pending() {
            self.deferred_bytes += msg.payload.len() + DEFERRED_OVERHEAD;
            let max =
                if self.may_publish { self.config.max_deferred_bytes } else { self.config.command_max_deferred_bytes };
            if self.deferred_bytes > max {
                return Err(RtmpError::limit(
                    "input held while awaiting a decision",
                    self.deferred_bytes as u64,
                    max as u64,
                ));
            }
            self.deferred.push_back(msg);
            return Ok(());
        }
        self.process(msg)
    }

    /// Processes messages held back during a decision, until the next decision.
    fn replay_deferred(&mut self) -> Result<(), RtmpError> {
        while self.phase != Phase::Closed && !self.decision_pending() {
            let Some(msg) = self.deferred.pop_front() else {
                break;
            };
            self.deferred_bytes = self.deferred_bytes.saturating_sub(msg.payload.len() + DEFERRED_OVERHEAD);
            if let Err(e) = self.process(msg) {
                self.close_with(Some(e.clone()));
                return Err(e);
            }
        }
        Ok(())
    }

    fn process(&mut self, msg: Message) -> Result<(), RtmpError> {
        let parsed = RtmpMessage::parse(msg.type_id, msg.payload, self.conn.amf_limits)?;
        let (sid, ts) = (msg.stream_id, msg.timestamp);
        match parsed {
            RtmpMessage::Command { command, .. } => self.on_command(sid, command),
            RtmpMessage::Audio(p) => self.on_media(sid, MediaType::Audio, ts, p),
            RtmpMessage::Video(p) => self.on_media(sid, MediaType::Video, ts, p),
            RtmpMessage::Data { payload, .. } => self.on_data(sid, ts, &payload),
            RtmpMessage::Aggregate(p) => {
                for sub in split_aggregate(&p, ts)? {
                    match MediaType::from_type_id(sub.type_id) {
                        Some(MediaType::Data) => self.on_data(sid, sub.timestamp, &sub.payload)?,
                        Some(kind) => self.on_media(sid, kind, sub.timestamp, sub.payload)?,
                        None => {}
                    }
                }
                Ok(())
            }
            // Shared objects and unknown types are ignored.
            _ => Ok(()),
        }
    }

    fn on_data(&mut self, stream_id: u32, timestamp: u32, payload: &Bytes) -> Result<(), RtmpError> {
        let body = strip_set_data_frame(payload);
        if data_name(&body).as_deref() == Some("@clearDataFrame") {
            return Ok(());
        }
        self.on_media(stream_id, MediaType::Data, timestamp, body)
    }

    fn on_media(&mut self, stream_id: u32, kind: MediaType, timestamp: u32, payload: Bytes) -> Result<(), RtmpError> {
        if self.stream_status(stream_id) == Some(StreamStatus::Publishing) {
            self.events.push_back(SessionEvent::Media { stream_id, kind, timestamp, payload });
        } else {
            tracing::trace!(stream_id, ?kind, "media on a stream that is not publishing");
        }
        Ok(())
    }

    /// Returns a stream to idle, reporting `StreamClosed` if it was active.
    fn end_stream(&mut self, stream_id: u32) {
        if let Some(s) = self.streams.get_mut(&stream_id)
            && s.status.is_active()
        {
            s.status = StreamStatus::Idle;
            self.events.push_back(SessionEvent::StreamClosed { stream_id });
        }
    }

    fn close_with(&mut self, error: Option<RtmpError>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        let active: Vec<u32> = self.streams.iter().filter(|(_, s)| s.status.is_active()).map(|(id, _)| *id).collect();
        for id in active {
            self.end_stream(id);
        }
        self.deferred.clear();
        self.deferred_bytes = 0;
        self.events.push_back(SessionEvent::Closed { error });
    }

    // ---- commands ----

    fn check_open(&self) -> Result<(), RtmpError> {
        if self.phase == Phase::Closed {
            return Err(RtmpError::InvalidUse("session is closed"));
        }
        Ok(())
    }

    /// Accepts the pending `connect`: Window Acknowledgement Size, Set Peer
    /// Bandwidth (dynamic), Set Chunk Size, `_result` with
    /// `NetConnection.Connect.Success`, then `onBWDone` (§7.2.1.1).
    pub fn accept_connect(&mut self) -> Result<(), RtmpError> {
        self.check_open()?;
        if self.phase != Phase::ConnectPending {
            return Err(RtmpError::InvalidUse("no connect is pending"));
        }
        self.conn.send_window_ack_size(self.config.window_ack_size);
        self.conn.send(
            0,
            0,
            &RtmpMessage::SetPeerBandwidth {
                window_size: self.config.peer_bandwidth,
                limit: PeerBandwidthLimit::Dynamic,
            },
        );
        self.conn.set_out_chunk_size(self.config.out_chunk_size);
        let props = Value::object([
            ("fmsVer", Value::string(self.config.fms_version.as_str())),
            ("capabilities", Value::Number(self.config.capabilities)),
            ("mode", Value::Number(1.0)),
        ]);
        let info = Value::object([
            ("level", Value::string("status")),
            ("code", Value::string("NetConnection.Connect.Success")),
            ("description", Value::string("Connection succeeded.")),
            ("objectEncoding", Value::Number(self.object_encoding)),
        ]);
        let txn = self.connect_txn;
        self.conn.send_command(0, &Command::result(txn, props, vec![info]));
        self.conn.send_command(0, &Command::new("onBWDone", 0.0, Value::Null, vec![]));
        self.phase = Phase::Connected;
        self.replay_deferred()
    }

    /// Rejects the pending `connect` with `_error` /
    /// `NetConnection.Connect.Rejected` and closes the session.
    pub fn reject_connect(&mut self, description: &str) -> Result<(), RtmpError> {
        self.check_open()?;
        if self.phase != Phase::ConnectPending {
            return Err(RtmpError::InvalidUse("no connect is pending"));
        }
        let txn = self.connect_txn;
        self.conn.send_command(0, &Command::error(txn, "NetConnection.Connect.Rejected", description));
        self.close_with(None);
        Ok(())
    }

    fn pending(&mut self, stream_id: u32, want: StreamStatus) -> Result<String, RtmpError> {
        self.check_open()?;
        match self.streams.get(&stream_id) {
            Some(s) if s.status == want => Ok(s.name.clone()),
            _ => Err(RtmpError::InvalidUse("no such request is pending on this stream")),
        }
    }

    fn set_status(&mut self, stream_id: u32, status: StreamStatus) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.status = status;
        }
    }

    /// Accepts a pending `publish`: Stream Begin, `onStatus`
    /// `NetStream.Publish.Start`; held-back media follows as events.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        let name = self.pending(stream_id, StreamStatus::PublishPending)?;
        self.set_status(stream_id, StreamStatus::Publishing);
        self.started = true;
        if !self.may_publish {
            self.may_publish = true;
            self.conn.decoder.set_limits(self.config.chunk_limits);
        }
        self.conn.send(0, 0, &RtmpMessage::UserControl(UserControl::StreamBegin(stream_id)));
        let text = format!("{name} is now published.");
        self.status(stream_id, "status", "NetStream.Publish.Start", &text);
        self.replay_deferred()
    }

    /// Rejects a pending `publish` with an error `onStatus` carrying `code` (e.g.
    /// `NetStream.Publish.BadName`) and closes the session.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), RtmpError> {
        self.pending(stream_id, StreamStatus::PublishPending)?;
        self.set_status(stream_id, StreamStatus::Idle);
        self.status(stream_id, "error", code, description);
        self.close_with(None);
        Ok(())
    }

    /// Accepts a pending `play`: Stream Begin, `onStatus` `NetStream.Play.Reset`
    /// and `NetStream.Play.Start`, `|RtmpSampleAccess`. Drain `poll_transmit`
    /// before writing media for this stream.
    pub fn accept_play(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        let name = self.pending(stream_id, StreamStatus::PlayPending)?;
        self.set_status(stream_id, StreamStatus::Playing);
        self.started = true;
        self.conn.send(0, 0, &RtmpMessage::UserControl(UserControl::StreamBegin(stream_id)));
        let reset = format!("Playing and resetting {name}.");
        self.status(stream_id, "status", "NetStream.Play.Reset", &reset);
        let start = format!("Started playing {name}.");
        self.status(stream_id, "status", "NetStream.Play.Start", &start);
        let mut access = Vec::new();
        super::amf0::encode_all(
            &[Value::string("|RtmpSampleAccess"), Value::Boolean(true), Value::Boolean(true)],
            &mut access,
        );
        self.conn.send(stream_id, 0, &RtmpMessage::Data { amf3: false, payload: access.into() });
        self.replay_deferred()
    }

    /// Rejects a pending `play` with an error `onStatus` carrying `code` (e.g.
    /// `NetStream.Play.StreamNotFound`). The connection stays open (the stream is
    /// idle again); call [`close`](Self::close) to end it.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), RtmpError> {
        self.pending(stream_id, StreamStatus::PlayPending)?;
        self.set_status(stream_id, StreamStatus::Idle);
        self.status(stream_id, "error", code, description);
        self.replay_deferred()
    }

    /// Tells a player its stream ended (the publisher left): `onStatus`
    /// `NetStream.Play.UnpublishNotify`, Stream EOF, `onStatus`
    /// `NetStream.Play.Stop`. The stream becomes idle (no `StreamClosed` follows).
    pub fn send_stream_eof(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        let name = self.pending(stream_id, StreamStatus::Playing)?;
        self.set_status(stream_id, StreamStatus::Idle);
        let text = format!("{name} is now unpublished.");
        self.status(stream_id, "status", "NetStream.Play.UnpublishNotify", &text);
        self.conn.send(0, 0, &RtmpMessage::UserControl(UserControl::StreamEof(stream_id)));
        let text = format!("Stopped playing {name}.");
        self.status(stream_id, "status", "NetStream.Play.Stop", &text);
        Ok(())
    }

    /// Sends any `onStatus` on a stream (e.g. `NetStream.Play.PublishNotify`).
    pub fn send_on_status(
        &mut self,
        stream_id: u32,
        level: &str,
        code: &str,
        description: &str,
    ) -> Result<(), RtmpError> {
        self.check_open()?;
        self.status(stream_id, level, code, description);
        Ok(())
    }

    /// Closes the session in an orderly way (also the reaction to socket EOF):
    /// queues `StreamClosed` for active streams and `Closed { error: None }`.
    pub fn close(&mut self) {
        self.close_with(None);
    }
}
