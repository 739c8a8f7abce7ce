//! A minimal client side of an RTMP connection (sans-IO), for tests and the load
//! generator: handshake (§5.2), `connect` (§7.2.1.1), `createStream`
//! (§7.2.1.3), then `publish` (§7.2.2.6) or `play` (§7.2.2.1), with media events
//! and [`ClientSession::send_media`]. It follows the command order of ffmpeg's
//! RTMP client (`releaseStream`, `FCPublish`, `createStream`, `publish`).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::amf0::{Amf0Limits, Value};
use super::chunk::{ChunkLimits, Message};
use super::conn::Conn;
use super::error::RtmpError;
use super::handshake::{ClientHandshake, HandshakeKind};
use super::message::{Command, MediaType, RtmpMessage, UserControl, media_header};

/// Configuration of a [`ClientSession`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `app` of `connect`, e.g. `live`.
    pub app: String,
    /// `tcUrl` of `connect`, e.g. `rtmp://127.0.0.1:1935/live`.
    pub tc_url: String,
    /// Handshake variant to use. Default simple.
    pub handshake: HandshakeKind,
    /// Chunk size announced after the handshake. Default 4096.
    pub out_chunk_size: u32,
    /// Buffer length announced when playing (Set Buffer Length). Default 3000 ms.
    pub buffer_ms: u32,
    /// Chunk decoder bounds.
    pub chunk_limits: ChunkLimits,
    /// AMF decoding bounds.
    pub amf_limits: Amf0Limits,
    /// `flashVer` of `connect`.
    pub flash_ver: String,
    /// Seed for the handshake's random bytes (they carry no secret). The caller
    /// passes a fresh one per connection; this crate draws no randomness itself.
    pub rng_seed: u64,
}

impl ClientConfig {
    /// Defaults for `app` and `tc_url`.
    pub fn new(app: &str, tc_url: &str) -> Self {
        ClientConfig {
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            handshake: HandshakeKind::Simple,
            out_chunk_size: 4096,
            buffer_ms: 3000,
            chunk_limits: ChunkLimits::default(),
            amf_limits: Amf0Limits::default(),
            flash_ver: "FMLE/3.0 (compatible; MicroVibe)".to_owned(),
            rng_seed: 0,
        }
    }
}

/// What the client does once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientGoal {
    /// Publish a stream (`live`) under this name (may include `?query`).
    Publish {
        /// Stream name (stream key).
        name: String,
    },
    /// Play this stream name.
    Play {
        /// Stream name.
        name: String,
    },
}

/// What a [`ClientSession`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// S2 read, C2 sent.
    HandshakeComplete,
    /// `connect` succeeded.
    Connected,
    /// `createStream` returned this id.
    StreamCreated {
        /// Message stream id.
        stream_id: u32,
    },
    /// `NetStream.Publish.Start` arrived: `send_media` may be used.
    PublishStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// `NetStream.Play.Start` arrived.
    PlayStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// Any `onStatus` (and `_error` answers to our requests, on stream 0).
    Status {
        /// Message stream id.
        stream_id: u32,
        /// `status`, `warning` or `error`.
        level: String,
        /// E.g. `NetStream.Play.Start`.
        code: String,
        /// Human-readable text.
        description: String,
    },
    /// Media received while playing.
    Media {
        /// Audio, video or data.
        kind: MediaType,
        /// Timestamp in milliseconds.
        timestamp: u32,
        /// Payload.
        payload: Bytes,
    },
    /// Stream EOF user control event (§7.1.7).
    StreamEof {
        /// Message stream id.
        stream_id: u32,
    },
    /// The session closed (an error-level status or `_error` closes it too).
    Closed {
        /// Why, `None` for an orderly close.
        error: Option<RtmpError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Connecting,
    CreatingStream,
    Starting,
    Active,
    Closed,
}

/// Client side of one RTMP connection (sans-IO). Same four API groups as
/// [`super::session::ServerSession`]; no timers.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    goal: ClientGoal,
    handshake: ClientHandshake,
    conn: Conn,
    rng: SmallRng,
    phase: Phase,
    next_txn: f64,
    connect_txn: f64,
    create_txn: f64,
    stream_id: Option<u32>,
    events: VecDeque<ClientEvent>,
}

impl ClientSession {
    /// Starts a connection: C0+C1 are queued for `poll_transmit`.
    pub fn new(config: ClientConfig, goal: ClientGoal, _now: Instant) -> Self {
        let mut rng = SmallRng::seed_from_u64(config.rng_seed);
        let mut conn = Conn::new(config.chunk_limits, config.amf_limits);
        let handshake = ClientHandshake::new(config.handshake, &mut rng, conn.out_buf());
        ClientSession {
            config,
            goal,
            handshake,
            conn,
            rng,
            phase: Phase::Handshake,
            next_txn: 1.0,
            connect_txn: 0.0,
            create_txn: 0.0,
            stream_id: None,
            events: VecDeque::new(),
        }
    }

    /// The stream id from `createStream`, once known.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// True once publishing or playing has started.
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Chunk size the server sends with.
    pub fn in_chunk_size(&self) -> u32 {
        self.conn.decoder.chunk_size()
    }

    /// Chunk size we send with.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size()
    }

    /// Whether the server's digest handshake validated (digest handshakes only).
    pub fn server_digest_valid(&self) -> Option<bool> {
        self.handshake.server_digest_valid()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// All bytes queued for the socket.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.conn.take_output()
    }

    /// Closes the session (queues `Closed { error: None }`).
    pub fn close(&mut self) {
        self.close_with(None);
    }

    fn close_with(&mut self, error: Option<RtmpError>) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.events.push_back(ClientEvent::Closed { error });
        }
    }

    fn txn(&mut self) -> f64 {
        let t = self.next_txn;
        self.next_txn += 1.0;
        t
    }

    /// Sends a media message on the publishing stream (stateful header
    /// compression; audio on chunk stream 4, data 5, video 6).
    pub fn send_media(&mut self, kind: MediaType, timestamp: u32, payload: &[u8]) -> Result<(), RtmpError> {
        match (self.phase, self.stream_id, &self.goal) {
            (Phase::Active, Some(id), ClientGoal::Publish { .. }) => {
                self.conn.send_raw(&media_header(kind, id, timestamp), payload)
            }
            _ => Err(RtmpError::InvalidUse("not publishing")),
        }
    }

    /// Sends an arbitrary command on a message stream.
    pub fn send_command(&mut self, stream_id: u32, cmd: &Command) {
        self.conn.send_command(stream_id, cmd);
    }

    /// Feeds bytes read from the socket. On error the session is closed.
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) -> Result<(), RtmpError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        self.conn.count_input(data.len());
        let res = self.input(data);
        if let Err(e) = &res {
            self.close_with(Some(e.clone()));
        }
        res
    }

    fn input(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        let mut input = data;
        if self.phase == Phase::Handshake {
            if !self.handshake.handle_input(&mut input, &mut self.rng, self.conn.out_buf())? {
                return Ok(());
            }
            self.events.push_back(ClientEvent::HandshakeComplete);
            self.start_connect();
        }
        while self.phase != Phase::Closed {
            let Some(msg) = self.conn.decoder.decode(&mut input)? else {
                break;
            };
            self.on_message(msg)?;
        }
        self.conn.maybe_ack();
        Ok(())
    }

    fn start_connect(&mut self) {
        self.conn.set_out_chunk_size(self.config.out_chunk_size);
        self.connect_txn = self.txn();
        let obj = Value::object([
            ("app", Value::string(self.config.app.as_str())),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string(self.config.flash_ver.as_str())),
            ("tcUrl", Value::string(self.config.tc_url.as_str())),
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(15.0)),
            ("audioCodecs", Value::Number(4071.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
            ("objectEncoding", Value::Number(0.0)),
        ]);
        let cmd = Command::new("connect", self.connect_txn, obj, vec![]);
        self.conn.send_command(0, &cmd);
        self.phase = Phase::Connecting;
    }

    fn on_message(&mut self, msg: Message) -> Result<(), RtmpError> {
        let Some(parsed) = self.conn.handle_control(&msg)? else {
            return Ok(());
        };
        match parsed {
            RtmpMessage::UserControl(UserControl::StreamEof(stream_id)) => {
                self.events.push_back(ClientEvent::StreamEof { stream_id });
            }
            RtmpMessage::Command { command, .. } => self.on_command(msg.stream_id, command),
            RtmpMessage::Audio(p) | RtmpMessage::Video(p) | RtmpMessage::Data { payload: p, .. } => {
                let kind = MediaType::from_type_id(msg.type_id).unwrap_or(MediaType::Data);
                if self.phase == Phase::Active {
                    self.events.push_back(ClientEvent::Media { kind, timestamp: msg.timestamp, payload: p });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn status_event(&mut self, stream_id: u32, cmd: &Command) -> (String, String) {
        let info = cmd.info();
        let get = |k: &str| info.and_then(|i| i.get_str(k)).unwrap_or_default().to_owned();
        let (level, code) = (get("level"), get("code"));
        self.events.push_back(ClientEvent::Status {
            stream_id,
            level: level.clone(),
            code: code.clone(),
            description: get("description"),
        });
        (level, code)
    }

    fn on_command(&mut self, stream_id: u32, cmd: Command) {
        let txn = cmd.transaction_id;
        match cmd.name.as_str() {
            "_result" if self.phase == Phase::Connecting && txn == self.connect_txn => {
                self.events.push_back(ClientEvent::Connected);
                if let ClientGoal::Publish { name } = self.goal.clone() {
                    for proc in ["releaseStream", "FCPublish"] {
                        let t = self.txn();
                        let c = Command::new(proc, t, Value::Null, vec![Value::string(name.as_str())]);
                        self.conn.send_command(0, &c);
                    }
                }
                self.create_txn = self.txn();
                let c = Command::new("createStream", self.create_txn, Value::Null, vec![]);
                self.conn.send_command(0, &c);
                self.phase = Phase::CreatingStream;
            }
            "_result" if self.phase == Phase::CreatingStream && txn == self.create_txn => {
                let Some(id) = cmd.arg(0).and_then(Value::as_f64).filter(|v| *v >= 0.0) else {
                    self.close_with(Some(RtmpError::malformed("createStream result", "no stream id")));
                    return;
                };
                let id = id as u32;
                self.stream_id = Some(id);
                self.events.push_back(ClientEvent::StreamCreated { stream_id: id });
                match self.goal.clone() {
                    ClientGoal::Publish { name } => {
                        let t = self.txn();
                        let args = vec![Value::string(name), Value::string("live")];
                        self.conn.send_command(id, &Command::new("publish", t, Value::Null, args));
                    }
                    ClientGoal::Play { name } => {
                        let t = self.txn();
                        let args = vec![Value::string(name), Value::Number(-2000.0)];
                        self.conn.send_command(id, &Command::new("play", t, Value::Null, args));
                        let buf = UserControl::SetBufferLength { stream_id: id, buffer_ms: self.config.buffer_ms };
                        self.conn.send(0, 0, &RtmpMessage::UserControl(buf));
                    }
                }
                self.phase = Phase::Starting;
            }
            "_error" if txn == self.connect_txn || txn == self.create_txn => {
                self.status_event(stream_id, &cmd);
                self.close_with(None);
            }
            "onStatus" => {
                let (level, code) = self.status_event(stream_id, &cmd);
                if level == "error" {
                    self.close_with(None);
                    return;
                }
                let started = match code.as_str() {
                    "NetStream.Publish.Start" => Some(ClientEvent::PublishStarted { stream_id }),
                    "NetStream.Play.Start" => Some(ClientEvent::PlayStarted { stream_id }),
                    _ => None,
                };
                if let Some(ev) = started
                    && self.phase == Phase::Starting
                {
                    self.phase = Phase::Active;
                    self.events.push_back(ev);
                }
            }
            _ => {}
        }
    }
}
