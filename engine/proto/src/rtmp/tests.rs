//! Client ↔ server session tests, driven in memory with an injected clock (in the
//! manner of quinn-proto's `Pair` harness).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::amf0::{self, Value};
use super::chunk::{ChunkDecoder, ChunkLimits, Message, MessageHeader, encode_message_bytes};
use super::client::{ClientConfig, ClientEvent, ClientGoal, ClientSession};
use super::error::RtmpError;
use super::handshake::{DigestScheme, HANDSHAKE_SIZE, HandshakeKind};
use super::message::{Command, MediaType, RtmpMessage, UserControl, encode_media, type_id};
use super::session::{PublishType, ServerSession, SessionConfig, SessionEvent, StreamStatus};

struct Pair {
    now: Instant,
    server: ServerSession,
    client: ClientSession,
    s_events: Vec<SessionEvent>,
    c_events: Vec<ClientEvent>,
    s_errors: Vec<RtmpError>,
    /// Everything each side sent, for inspection.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Transfer granularity, to exercise arbitrary splits.
    split: usize,
    /// When false the client neither reads nor writes (a stalled peer).
    client_alive: bool,
}

fn base() -> Instant {
    // Test harness start point; the sessions only see instants derived from it.
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

impl Pair {
    fn new(goal: ClientGoal, config: SessionConfig, handshake: HandshakeKind, split: usize) -> Pair {
        let now = base();
        let mut cc = ClientConfig::new("live", "rtmp://127.0.0.1:1935/live");
        cc.handshake = handshake;
        cc.rng_seed = 7;
        let config = SessionConfig { rng_seed: 9, ..config };
        Pair {
            now,
            server: ServerSession::new(config, now),
            client: ClientSession::new(cc, goal, now),
            s_events: Vec::new(),
            c_events: Vec::new(),
            s_errors: Vec::new(),
            c2s: Vec::new(),
            s2c: Vec::new(),
            split,
            client_alive: true,
        }
    }

    fn publisher(name: &str) -> Pair {
        Pair::new(ClientGoal::Publish { name: name.into() }, SessionConfig::default(), HandshakeKind::Simple, 1000)
    }

    fn player(name: &str) -> Pair {
        Pair::new(ClientGoal::Play { name: name.into() }, SessionConfig::default(), HandshakeKind::Simple, 333)
    }

    fn deliver_to_client(&mut self, bytes: &[u8]) {
        self.s2c.extend_from_slice(bytes);
        for piece in bytes.chunks(self.split) {
            self.client.handle_input(self.now, piece).unwrap();
        }
    }

    fn step(&mut self) -> bool {
        let mut progress = false;
        if self.client_alive {
            while let Some(b) = self.client.poll_transmit() {
                progress = true;
                self.c2s.extend_from_slice(&b);
                for piece in b.chunks(self.split) {
                    if let Err(e) = self.server.handle_input(self.now, piece) {
                        self.s_errors.push(e);
                    }
                }
            }
        }
        while let Some(ev) = self.server.poll_event() {
            progress = true;
            self.s_events.push(ev);
        }
        if self.client_alive {
            while let Some(b) = self.server.poll_transmit() {
                progress = true;
                self.deliver_to_client(&b);
            }
            while let Some(ev) = self.client.poll_event() {
                progress = true;
                self.c_events.push(ev);
            }
        }
        progress
    }

    fn drive(&mut self) {
        while self.step() {}
    }

    fn take_s_events(&mut self) -> Vec<SessionEvent> {
        self.drive();
        std::mem::take(&mut self.s_events)
    }

    fn take_c_events(&mut self) -> Vec<ClientEvent> {
        self.drive();
        std::mem::take(&mut self.c_events)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
        self.drive();
    }

    /// The engine's side: connect accepted, publish or play accepted.
    fn establish(&mut self) -> u32 {
        let ev = self.take_s_events();
        assert!(matches!(ev[0], SessionEvent::HandshakeComplete { .. }), "{ev:?}");
        assert!(matches!(ev[1], SessionEvent::ConnectRequested { .. }), "{ev:?}");
        self.server.accept_connect().unwrap();
        let ev = self.take_s_events();
        let stream_id = match &ev[..] {
            [SessionEvent::PublishRequested { stream_id, .. }] => {
                self.server.accept_publish(*stream_id).unwrap();
                *stream_id
            }
            [SessionEvent::PlayRequested { stream_id, .. }] => {
                self.server.accept_play(*stream_id).unwrap();
                *stream_id
            }
            other => panic!("unexpected {other:?}"),
        };
        self.drive();
        assert!(self.client.is_active(), "{:?}", self.c_events);
        stream_id
    }

    /// Messages the server sent after the handshake.
    fn server_messages(&self) -> Vec<(Message, RtmpMessage)> {
        decode_all(&self.s2c[1 + 2 * HANDSHAKE_SIZE..])
    }

    /// Messages the client sent after the handshake.
    fn client_messages(&self) -> Vec<(Message, RtmpMessage)> {
        decode_all(&self.c2s[1 + 2 * HANDSHAKE_SIZE..])
    }
}

fn decode_all(mut bytes: &[u8]) -> Vec<(Message, RtmpMessage)> {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut bytes).unwrap() {
        let parsed = RtmpMessage::parse(m.type_id, m.payload.clone(), Default::default()).unwrap();
        out.push((m, parsed));
    }
    out
}

fn commands(msgs: &[(Message, RtmpMessage)]) -> Vec<(u32, Command)> {
    msgs.iter()
        .filter_map(|(m, p)| match p {
            RtmpMessage::Command { command, .. } => Some((m.stream_id, command.clone())),
            _ => None,
        })
        .collect()
}

fn status_codes(events: &[ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect()
}

fn metadata() -> Vec<u8> {
    let mut b = Vec::new();
    amf0::encode_all(
        &[
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray(vec![
                ("width".into(), Value::Number(1280.0)),
                ("encoder".into(), Value::string("Lavf61")),
            ]),
        ],
        &mut b,
    );
    b
}

#[test]
fn connect_reply_sequence() {
    let mut p = Pair::publisher("key");
    let ev = p.take_s_events();
    assert_eq!(
        ev[1],
        SessionEvent::ConnectRequested {
            app: "live".into(),
            app_query: None,
            tc_url: Some("rtmp://127.0.0.1:1935/live".into()),
        }
    );
    assert_eq!(p.server.app(), "live");
    assert_eq!(p.server.out_chunk_size(), 128);
    p.server.accept_connect().unwrap();
    p.drive();
    assert_eq!(p.server.out_chunk_size(), 4096);
    assert_eq!(p.client.in_chunk_size(), 4096);
    let msgs = p.server_messages();
    let kinds: Vec<_> = msgs.iter().map(|(m, _)| m.type_id).take(4).collect();
    assert_eq!(kinds, vec![5, 6, 1, 20]);
    assert_eq!(msgs[0].1, RtmpMessage::WindowAckSize(5_000_000));
    let (_, result) = &commands(&msgs)[0];
    assert_eq!(result.name, "_result");
    assert_eq!(result.transaction_id, 1.0);
    assert_eq!(result.command_object.get_str("fmsVer"), Some("FMS/3,0,1,123"));
    let info = result.info().unwrap();
    assert_eq!(info.get_str("code"), Some("NetConnection.Connect.Success"));
    assert_eq!(info.get_f64("objectEncoding"), Some(0.0));
    // releaseStream and FCPublish are answered, FCPublish with onFCPublish too.
    let names: Vec<_> = commands(&msgs).iter().map(|(_, c)| c.name.clone()).collect();
    assert!(names.contains(&"onFCPublish".to_string()), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "_result").count(), 4, "{names:?}");
}

#[test]
fn publish_flow_with_media() {
    let mut p = Pair::publisher("key?token=abc");
    p.take_s_events();
    p.server.accept_connect().unwrap();
    let ev = p.take_s_events();
    assert_eq!(
        ev,
        vec![SessionEvent::PublishRequested {
            stream_id: 1,
            app: "live".into(),
            name: "key".into(),
            query: Some("token=abc".into()),
            publish_type: PublishType::Live,
        }]
    );
    p.server.accept_publish(1).unwrap();
    p.drive();
    assert!(p.c_events.contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    assert_eq!(p.server.stream_status(1), Some(StreamStatus::Publishing));
    assert_eq!(p.server.stream_name(1), Some("key"));
    let status = commands(&p.server_messages()).into_iter().find(|(_, c)| c.name == "onStatus").unwrap();
    assert_eq!(status.0, 1);
    assert_eq!(status.1.info().unwrap().get_str("code"), Some("NetStream.Publish.Start"));

    p.client.send_media(MediaType::Data, 0, &metadata()).unwrap();
    let mut sent = Vec::new();
    for i in 0..300u32 {
        let video: Vec<u8> = (0..(500 + i * 37 % 9000)).map(|b| b as u8).collect();
        p.client.send_media(MediaType::Video, i * 33, &video).unwrap();
        sent.push((MediaType::Video, i * 33, video));
        let audio = vec![0xAF, 0x01, i as u8];
        p.client.send_media(MediaType::Audio, i * 33 + 5, &audio).unwrap();
        sent.push((MediaType::Audio, i * 33 + 5, audio));
    }
    let ev = p.take_s_events();
    let media: Vec<_> = ev
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Media { stream_id: 1, kind, timestamp, payload } => Some((kind, timestamp, payload.to_vec())),
            _ => None,
        })
        .collect();
    let (meta_kind, _, meta) = &media[0];
    assert_eq!(*meta_kind, MediaType::Data);
    // @setDataFrame stripped: the payload starts with "onMetaData".
    assert_eq!(&meta[..13], b"\x02\x00\x0aonMetaData");
    assert_eq!(&media[1..], &sent[..]);
    assert!(p.s_errors.is_empty());
}

#[test]
fn media_sent_before_accept_is_held_back() {
    let mut p = Pair::publisher("key");
    p.take_s_events();
    p.server.accept_connect().unwrap();
    let ev = p.take_s_events();
    assert!(matches!(ev[0], SessionEvent::PublishRequested { .. }));
    // An eager client sends metadata and a sequence header before the answer.
    let h = MessageHeader { csid: 7, timestamp: 0, type_id: type_id::DATA_AMF0, stream_id: 1 };
    let early = encode_message_bytes(4096, &h, &metadata()).unwrap();
    p.server.handle_input(p.now, &early).unwrap();
    let h = MessageHeader { type_id: type_id::VIDEO, ..h };
    let early = encode_message_bytes(4096, &h, &[0x17, 0, 0, 0, 0]).unwrap();
    p.server.handle_input(p.now, &early).unwrap();
    assert!(p.take_s_events().is_empty());
    p.server.accept_publish(1).unwrap();
    let ev = p.take_s_events();
    let kinds: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Media { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![MediaType::Data, MediaType::Video]);
}

#[test]
fn play_flow_with_shared_media_and_eof() {
    let mut p = Pair::player("room1");
    p.take_s_events();
    p.server.accept_connect().unwrap();
    let ev = p.take_s_events();
    assert_eq!(
        ev,
        vec![SessionEvent::PlayRequested { stream_id: 1, app: "live".into(), name: "room1".into(), query: None }]
    );
    p.server.accept_play(1).unwrap();
    p.drive();
    let codes = status_codes(&p.c_events);
    assert_eq!(codes, vec!["NetStream.Play.Reset", "NetStream.Play.Start"]);
    assert!(p.c_events.contains(&ClientEvent::PlayStarted { stream_id: 1 }));
    // StreamBegin precedes the statuses; |RtmpSampleAccess follows them.
    let msgs = p.server_messages();
    let begin = msgs.iter().position(|(_, m)| *m == RtmpMessage::UserControl(UserControl::StreamBegin(1))).unwrap();
    let access = msgs
        .iter()
        .position(|(_, m)| {
            matches!(m, RtmpMessage::Data { payload, .. } if payload.starts_with(b"\x02\x00\x11|RtmpSampleAccess"))
        })
        .unwrap();
    assert!(begin < access);

    // The engine writes media pre-chunked at the session's chunk size.
    let chunk_size = p.server.out_chunk_size();
    p.c_events.clear();
    let mut expected = Vec::new();
    for i in 0..200u32 {
        let payload: Vec<u8> = (0..(100 + i * 97 % 20_000)).map(|b| (b * 7) as u8).collect();
        let kind = if i % 2 == 0 { MediaType::Video } else { MediaType::Audio };
        // Timestamps crossing the extended timestamp boundary.
        let ts = 0xFF_FF00 + i * 20;
        let bytes = encode_media(chunk_size, kind, 1, ts, &payload).unwrap();
        assert!(p.server.poll_transmit().is_none());
        p.deliver_to_client(&bytes);
        expected.push(ClientEvent::Media { kind, timestamp: ts, payload: Bytes::from(payload) });
    }
    assert_eq!(p.take_c_events(), expected);

    p.server.send_stream_eof(1).unwrap();
    let ev = p.take_c_events();
    assert!(ev.contains(&ClientEvent::StreamEof { stream_id: 1 }));
    assert_eq!(status_codes(&ev), vec!["NetStream.Play.UnpublishNotify", "NetStream.Play.Stop"]);
    assert_eq!(p.server.stream_status(1), Some(StreamStatus::Idle));
}

#[test]
fn client_acknowledges_the_server_window() {
    let mut p = Pair::player("room1");
    p.establish();
    let payload = vec![0u8; 100_000];
    for i in 0..60 {
        let bytes = encode_media(4096, MediaType::Video, 1, i * 40, &payload).unwrap();
        p.deliver_to_client(&bytes);
    }
    p.drive();
    let acks: Vec<u32> = p
        .client_messages()
        .into_iter()
        .filter_map(|(_, m)| match m {
            RtmpMessage::Acknowledgement { sequence_number } => Some(sequence_number),
            _ => None,
        })
        .collect();
    assert_eq!(acks.len(), 1, "6 MB received with a 5 MB window");
    assert!(acks[0] >= 5_000_000);
}

#[test]
fn server_acknowledges_and_answers_pings() {
    let mut p = Pair::publisher("key");
    p.establish();
    // The client asks for acknowledgements every 1000 bytes and pings.
    let mut b = Vec::new();
    for m in [RtmpMessage::WindowAckSize(1000), RtmpMessage::UserControl(UserControl::PingRequest(42))] {
        let h = MessageHeader { csid: 2, timestamp: 0, type_id: m.type_id(), stream_id: 0 };
        b.extend_from_slice(&encode_message_bytes(4096, &h, &m.payload_bytes()).unwrap());
    }
    p.server.handle_input(p.now, &b).unwrap();
    p.client.send_media(MediaType::Video, 0, &[0u8; 3000]).unwrap();
    p.drive();
    let msgs = p.server_messages();
    assert!(msgs.iter().any(|(_, m)| *m == RtmpMessage::UserControl(UserControl::PingResponse(42))));
    let acks = msgs.iter().filter(|(_, m)| matches!(m, RtmpMessage::Acknowledgement { .. })).count();
    assert!(acks >= 1);
}

#[test]
fn reject_publish_closes_session() {
    let mut p = Pair::publisher("badkey");
    p.take_s_events();
    p.server.accept_connect().unwrap();
    p.take_s_events();
    p.server.reject_publish(1, "NetStream.Publish.BadName", "invalid stream key").unwrap();
    let ev = p.take_s_events();
    assert_eq!(ev, vec![SessionEvent::Closed { error: None }]);
    assert!(p.server.is_closed());
    let cev = &p.c_events;
    assert!(cev.contains(&ClientEvent::Status {
        stream_id: 1,
        level: "error".into(),
        code: "NetStream.Publish.BadName".into(),
        description: "invalid stream key".into(),
    }));
    assert!(cev.contains(&ClientEvent::Closed { error: None }));
    // Commands after closing are refused; input is ignored.
    assert!(p.server.accept_publish(1).is_err());
    p.server.handle_input(p.now, b"garbage").unwrap();
}

#[test]
fn reject_connect_and_reject_play() {
    let mut p = Pair::player("x");
    p.take_s_events();
    p.server.reject_connect("app not allowed").unwrap();
    p.drive();
    assert!(p.server.is_closed());
    assert_eq!(status_codes(&p.c_events), vec!["NetConnection.Connect.Rejected"]);

    let mut p = Pair::player("missing");
    p.take_s_events();
    p.server.accept_connect().unwrap();
    p.take_s_events();
    p.server.reject_play(1, "NetStream.Play.StreamNotFound", "no such stream").unwrap();
    p.drive();
    assert!(!p.server.is_closed());
    assert_eq!(status_codes(&p.c_events), vec!["NetStream.Play.StreamNotFound"]);
    assert_eq!(p.server.stream_status(1), Some(StreamStatus::Idle));
}

#[test]
fn delete_stream_and_close_report_stream_closed() {
    let mut p = Pair::publisher("key");
    let id = p.establish();
    p.client.send_command(0, &Command::new("deleteStream", 0.0, Value::Null, vec![Value::Number(1.0)]));
    assert_eq!(p.take_s_events(), vec![SessionEvent::StreamClosed { stream_id: id }]);
    assert_eq!(p.server.stream_status(1), None);

    let mut p = Pair::player("room");
    let id = p.establish();
    p.server.close();
    assert_eq!(
        p.take_s_events(),
        vec![SessionEvent::StreamClosed { stream_id: id }, SessionEvent::Closed { error: None }]
    );
}

#[test]
fn unknown_commands_get_error_and_stream_limit() {
    let mut p = Pair::publisher("key");
    p.establish();
    p.client.send_command(0, &Command::new("someRpc", 7.0, Value::Null, vec![]));
    p.client.send_command(0, &Command::new("noReplyWanted", 0.0, Value::Null, vec![]));
    for t in 0..9 {
        p.client.send_command(0, &Command::new("createStream", 100.0 + f64::from(t), Value::Null, vec![]));
    }
    p.drive();
    let cmds = commands(&p.server_messages());
    let err = cmds.iter().find(|(_, c)| c.transaction_id == 7.0).unwrap();
    assert_eq!(err.1.name, "_error");
    let results: Vec<_> =
        cmds.iter().filter(|(_, c)| c.transaction_id >= 100.0).map(|(_, c)| c.name.as_str()).collect();
    // One stream exists already: 7 more fit in the default limit of 8.
    assert_eq!(results.iter().filter(|n| **n == "_result").count(), 7);
    assert_eq!(results.iter().filter(|n| **n == "_error").count(), 2);
    assert!(!p.server.is_closed());
}

#[test]
fn aggregate_messages_are_split() {
    let mut p = Pair::publisher("key");
    p.establish();
    let mut agg = Vec::new();
    for (t, ts, body) in [(9u8, 500u32, &b"vid"[..]), (8, 520, b"au")] {
        agg.push(t);
        agg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.extend_from_slice(&[0, 0, 0, 1]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    let h = MessageHeader { csid: 9, timestamp: 1000, type_id: type_id::AGGREGATE, stream_id: 1 };
    let bytes = encode_message_bytes(4096, &h, &agg).unwrap();
    p.server.handle_input(p.now, &bytes).unwrap();
    let ev = p.take_s_events();
    assert_eq!(
        ev,
        vec![
            SessionEvent::Media {
                stream_id: 1,
                kind: MediaType::Video,
                timestamp: 1000,
                payload: Bytes::from_static(b"vid")
            },
            SessionEvent::Media {
                stream_id: 1,
                kind: MediaType::Audio,
                timestamp: 1020,
                payload: Bytes::from_static(b"au")
            },
        ]
    );
}

#[test]
fn handshake_timeout() {
    let now = base();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(10)));
    s.handle_input(now, &[3; 100]).unwrap();
    s.handle_timeout(now + Duration::from_secs(9));
    assert!(!s.is_closed());
    s.handle_timeout(now + Duration::from_secs(10));
    assert!(s.is_closed());
    assert!(matches!(
        s.poll_event(),
        Some(SessionEvent::Closed { error: Some(RtmpError::Timeout { what: "handshake", .. }) })
    ));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn pings_keep_a_quiet_player_alive_and_idle_timeout_closes() {
    let mut p = Pair::player("room");
    p.establish();
    // Two minutes of silence from the client side, but it answers pings.
    for _ in 0..120 {
        p.advance(Duration::from_secs(1));
    }
    assert!(!p.server.is_closed(), "{:?}", p.s_events);
    let pings = p
        .server_messages()
        .into_iter()
        .filter(|(_, m)| matches!(m, RtmpMessage::UserControl(UserControl::PingRequest(_))))
        .count();
    assert!(pings >= 5, "{pings}");
    // A stalled client does not answer: idle timeout after 60 s.
    p.client_alive = false;
    for _ in 0..59 {
        p.advance(Duration::from_secs(1));
    }
    assert!(!p.server.is_closed());
    p.advance(Duration::from_secs(2));
    assert!(p.server.is_closed());
    assert!(
        p.s_events
            .iter()
            .any(|e| matches!(e, SessionEvent::Closed { error: Some(RtmpError::Timeout { what: "idle", .. }) }))
    );
    assert!(p.s_events.contains(&SessionEvent::StreamClosed { stream_id: 1 }));
}

#[test]
fn digest_handshake_session() {
    for scheme in [DigestScheme::OffsetAt8, DigestScheme::OffsetAt772] {
        let mut p = Pair::new(
            ClientGoal::Publish { name: "k".into() },
            SessionConfig::default(),
            HandshakeKind::Digest(scheme),
            1,
        );
        let ev = p.take_s_events();
        assert_eq!(ev[0], SessionEvent::HandshakeComplete { kind: HandshakeKind::Digest(scheme) });
        assert_eq!(p.client.server_digest_valid(), Some(true));
    }
}

#[test]
fn garbage_after_handshake_closes_with_error() {
    let now = base();
    let mut s = ServerSession::new(SessionConfig::default(), now);
    let mut input = vec![3u8];
    input.extend(std::iter::repeat_n(0u8, 2 * HANDSHAKE_SIZE));
    s.handle_input(now, &input).unwrap();
    // A type 1 chunk on a fresh chunk stream.
    let err = s.handle_input(now, &[0x44, 0, 0, 0, 0, 0, 1, 20]).unwrap_err();
    assert!(err.is_peer_fault());
    assert!(s.is_closed());
    let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(matches!(ev.last(), Some(SessionEvent::Closed { error: Some(_) })));
}

/// Minutes of media in milliseconds: publisher → server → engine (shared
/// pre-chunked bytes) → server of a player → player.
#[test]
fn relay_two_minutes_of_media() {
    let mut publisher = Pair::publisher("room");
    publisher.establish();
    let mut player = Pair::player("room");
    let play_id = player.establish();
    player.c_events.clear(); // |RtmpSampleAccess
    let chunk_size = player.server.out_chunk_size();
    publisher.client.send_media(MediaType::Data, 0, &metadata()).unwrap();
    let (mut sent, mut received) = (0usize, 0usize);
    for ms in (0..120_000u32).step_by(10) {
        if ms % 33 < 10 {
            let len = if ms % 2000 < 10 { 30_000 } else { 1500 };
            let payload: Vec<u8> = (0..len).map(|i| (i as u32 ^ ms) as u8).collect();
            publisher.client.send_media(MediaType::Video, ms, &payload).unwrap();
            sent += 1;
        }
        if ms % 23 < 10 {
            publisher.client.send_media(MediaType::Audio, ms, &[0xAF, 1, 2, 3]).unwrap();
            sent += 1;
        }
        publisher.now += Duration::from_millis(10);
        player.now += Duration::from_millis(10);
        for ev in publisher.take_s_events() {
            if let SessionEvent::Media { kind, timestamp, payload, .. } = ev {
                let bytes = encode_media(chunk_size, kind, play_id, timestamp, &payload).unwrap();
                player.deliver_to_client(&bytes);
            }
        }
        for ev in player.take_c_events() {
            if let ClientEvent::Media { .. } = ev {
                received += 1;
            }
        }
        publisher.advance(Duration::ZERO);
        player.advance(Duration::ZERO);
    }
    assert_eq!(received, sent + 1);
    assert!(!publisher.server.is_closed() && !player.server.is_closed());
}

/// Replays a captured client byte stream into a server that accepts everything.
fn replay(capture: &[u8], split: usize) -> (ServerSession, Vec<SessionEvent>) {
    let now = base();
    let mut s = ServerSession::new(SessionConfig { rng_seed: 3, ..SessionConfig::default() }, now);
    let mut events = Vec::new();
    for piece in capture.chunks(split) {
        s.handle_input(now, piece).unwrap();
        while let Some(ev) = s.poll_event() {
            match &ev {
                SessionEvent::ConnectRequested { .. } => s.accept_connect().unwrap(),
                SessionEvent::PublishRequested { stream_id, .. } => s.accept_publish(*stream_id).unwrap(),
                SessionEvent::PlayRequested { stream_id, .. } => s.accept_play(*stream_id).unwrap(),
                _ => {}
            }
            events.push(ev);
        }
    }
    (s, events)
}

#[test]
fn ffmpeg_publish_capture() {
    let capture = include_bytes!("../../../testdata/rtmp/ffmpeg-publish.bin");
    let (whole, ev) = replay(capture, usize::MAX);
    for split in [1, 100, 1460] {
        assert_eq!(replay(capture, split).1, ev, "split {split}");
    }
    assert_eq!(ev[0], SessionEvent::HandshakeComplete { kind: HandshakeKind::Digest(DigestScheme::OffsetAt8) });
    assert_eq!(
        ev[1],
        SessionEvent::ConnectRequested {
            app: "live".into(),
            app_query: None,
            tc_url: Some("rtmp://127.0.0.1:19350/live".into()),
        }
    );
    assert_eq!(
        ev[2],
        SessionEvent::PublishRequested {
            stream_id: 1,
            app: "live".into(),
            name: "key".into(),
            query: Some("token=1".into()),
            publish_type: PublishType::Live,
        }
    );
    let media: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Media { kind, payload, .. } => Some((*kind, payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(media.len(), 100);
    let (kind, meta) = &media[0];
    assert_eq!(*kind, MediaType::Data);
    let values = amf0::decode_all(meta, Default::default()).unwrap();
    assert_eq!(values[0].as_str(), Some("onMetaData"));
    assert_eq!(values[1].get_f64("width"), Some(160.0));
    // AVC sequence header, AAC sequence header.
    assert_eq!(&media[1].1[..2], &[0x17, 0x00]);
    assert_eq!(&media[2].1[..2], &[0xAF, 0x00]);
    assert_eq!(media.iter().filter(|(k, _)| *k == MediaType::Video).count(), 32);
    // FCUnpublish ends the stream; deleteStream then removes it.
    assert_eq!(ev.last(), Some(&SessionEvent::StreamClosed { stream_id: 1 }));
    assert_eq!(whole.stream_status(1), None);
    assert_eq!(whole.in_chunk_size(), 4096);
    assert!(!whole.is_closed());
}

#[test]
fn ffmpeg_play_capture() {
    let capture = include_bytes!("../../../testdata/rtmp/ffmpeg-play.bin");
    let (mut s, ev) = replay(capture, 7);
    assert!(ev.contains(&SessionEvent::PlayRequested {
        stream_id: 1,
        app: "live".into(),
        name: "key".into(),
        query: None,
    }));
    assert_eq!(s.stream_status(1), Some(StreamStatus::Playing));
    let mut out = Vec::new();
    while let Some(b) = s.poll_transmit() {
        out.extend_from_slice(&b);
    }
    let cmds = commands(&decode_all(&out[1 + 2 * HANDSHAKE_SIZE..]));
    let answered: Vec<(String, f64)> =
        cmds.iter().filter(|(_, c)| c.name == "_result").map(|(_, c)| (c.name.clone(), c.transaction_id)).collect();
    // connect (1), createStream (2), _checkbw (3), getStreamLength (4).
    let txns: Vec<f64> = answered.iter().map(|(_, t)| *t).collect();
    assert_eq!(txns, vec![1.0, 2.0, 3.0, 4.0]);
}

/// A session past the handshake (C0+C1+C2 of zeros), nothing else sent.
fn after_handshake(config: SessionConfig) -> (ServerSession, Instant) {
    let now = base();
    let mut s = ServerSession::new(config, now);
    let mut input = vec![3u8];
    input.extend(std::iter::repeat_n(0u8, 2 * HANDSHAKE_SIZE));
    s.handle_input(now, &input).unwrap();
    (s, now)
}

/// A type 0 chunk header on chunk stream `csid` announcing a `len`-byte message.
fn header_for(csid: u8, len: u32) -> Vec<u8> {
    let l = len.to_be_bytes();
    vec![csid, 0, 0, 0, l[1], l[2], l[3], type_id::COMMAND_AMF0, 0, 0, 0, 0]
}

#[test]
fn before_publishing_only_small_messages_are_accepted() {
    let (mut s, now) = after_handshake(SessionConfig::default());
    // A header announcing the largest message the chunk format allows: refused at
    // once, before any of its bytes are held.
    let err = s.handle_input(now, &header_for(3, 0xFF_FFFF)).unwrap_err();
    assert!(matches!(err, RtmpError::LimitExceeded { what: "message size", .. }), "{err:?}");
    assert!(s.is_closed());

    // Half messages under the cap on several chunk streams: the total held is capped.
    let (mut s, now) = after_handshake(SessionConfig::default());
    // Chunk size 30 000: each message's first chunk ends mid-message.
    s.handle_input(now, &[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x75, 0x30]).unwrap();
    let mut err = None;
    for csid in 3..10u8 {
        let mut b = header_for(csid, 60_000);
        b.extend(std::iter::repeat_n(0u8, 30_000));
        if let Err(e) = s.handle_input(now, &b) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(RtmpError::LimitExceeded { what: "buffered partial messages", .. })), "{err:?}");
}

#[test]
fn a_publisher_may_send_large_frames() {
    let mut p = Pair::publisher("key");
    p.establish();
    let big: Vec<u8> = (0..1_000_000u32).map(|b| b as u8).collect();
    p.client.send_media(MediaType::Video, 0, &big).unwrap();
    let ev = p.take_s_events();
    assert!(p.s_errors.is_empty(), "{:?}", p.s_errors);
    assert!(ev.iter().any(|e| matches!(e, SessionEvent::Media { payload, .. } if payload.len() == big.len())));
}

#[test]
fn a_player_stays_under_the_small_limits() {
    let mut p = Pair::player("room");
    p.establish();
    let err = p.server.handle_input(p.now, &header_for(9, 1 << 20)).unwrap_err();
    assert!(matches!(err, RtmpError::LimitExceeded { .. }), "{err:?}");
}

#[test]
fn dribbled_bytes_do_not_keep_a_session_alive() {
    let (mut s, mut now) =
        after_handshake(SessionConfig { ping_interval: None, start_timeout: None, ..SessionConfig::default() });
    s.handle_input(now, &header_for(3, 60_000)).unwrap();
    // One byte every 10 s of a message that never completes: idle after 60 s.
    for _ in 0..5 {
        now += Duration::from_secs(10);
        s.handle_input(now, &[0]).unwrap();
        s.handle_timeout(now);
        assert!(!s.is_closed());
    }
    now += Duration::from_secs(10);
    s.handle_input(now, &[0]).unwrap();
    assert!(s.poll_timeout().is_some_and(|t| t <= now));
    s.handle_timeout(now);
    assert!(s.is_closed());
    let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(ev.last(), Some(SessionEvent::Closed { error: Some(RtmpError::Timeout { what: "idle", .. }) })),
        "{ev:?}"
    );
}

#[test]
fn a_connection_that_never_publishes_or_plays_is_closed() {
    let (mut s, mut now) = after_handshake(SessionConfig::default());
    // Complete messages (acknowledgements) every 5 s keep it from idling...
    let ack = encode_message_bytes(
        128,
        &MessageHeader { csid: 2, timestamp: 0, type_id: type_id::ACKNOWLEDGEMENT, stream_id: 0 },
        &[0, 0, 0, 1],
    )
    .unwrap();
    for _ in 0..5 {
        now += Duration::from_secs(5);
        s.handle_input(now, &ack).unwrap();
        s.handle_timeout(now);
        assert!(!s.is_closed());
    }
    // ...but not past the start timeout (30 s).
    now += Duration::from_secs(5);
    s.handle_timeout(now);
    assert!(s.is_closed());
    let ev: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(
            ev.last(),
            Some(SessionEvent::Closed { error: Some(RtmpError::Timeout { what: "publish or play", .. }) })
        ),
        "{ev:?}"
    );
    // Started sessions have no such deadline.
    let mut p = Pair::player("room");
    p.establish();
    p.advance(Duration::from_secs(40));
    assert!(!p.server.is_closed());
}
