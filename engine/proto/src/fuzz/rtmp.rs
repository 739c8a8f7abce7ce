//! Fuzz bodies for the RTMP layer (kept in the crate; fuzz/ only wraps them): compiled with the crate, called
//! by thin `fuzz/fuzz_targets/*.rs` wrappers. None of them may panic, whatever
//! the input. Each crash found becomes a regression test in this file.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::rtmp::amf0::{self, Amf0Limits};
use crate::rtmp::chunk::{ChunkDecoder, ChunkLimits};
use crate::rtmp::handshake::{ClientHandshake, DigestScheme, HandshakeKind, ServerHandshake};
use crate::rtmp::message::{Command, RtmpMessage, split_aggregate, strip_set_data_frame};
use crate::rtmp::session::{ServerSession, SessionConfig, SessionEvent};

/// Small bounds so that fuzzing explores the limit paths quickly.
fn fuzz_chunk_limits() -> ChunkLimits {
    ChunkLimits {
        max_message_size: 64 * 1024,
        max_chunk_size: 64 * 1024,
        max_chunk_streams: 16,
        max_buffered_bytes: 256 * 1024,
    }
}

fn split_len(selector: u8) -> usize {
    match selector % 4 {
        0 => 1,
        1 => 7,
        2 => 64 + usize::from(selector),
        _ => usize::MAX,
    }
}

/// Server and client handshakes fed arbitrary bytes (first byte picks the split).
pub fn fuzz_handshake(data: &[u8]) {
    let mut rng = SmallRng::seed_from_u64(0);
    let split = split_len(data.first().copied().unwrap_or(0));
    let mut server = ServerHandshake::new();
    let mut out = Vec::new();
    for piece in data.chunks(split.min(data.len().max(1))) {
        let mut input = piece;
        match server.handle_input(&mut input, &mut rng, &mut out) {
            Ok(true) | Err(_) => break,
            Ok(false) => {}
        }
    }
    for kind in [
        HandshakeKind::Simple,
        HandshakeKind::Digest(DigestScheme::OffsetAt8),
        HandshakeKind::Digest(DigestScheme::OffsetAt772),
    ] {
        let mut out = Vec::new();
        let mut client = ClientHandshake::new(kind, &mut rng, &mut out);
        let mut input = data;
        let _ = client.handle_input(&mut input, &mut rng, &mut out);
    }
}

/// The chunk decoder fed arbitrary bytes; complete messages are parsed further.
pub fn fuzz_chunk_decoder(data: &[u8]) {
    let split = split_len(data.first().copied().unwrap_or(0));
    let mut dec = ChunkDecoder::new(fuzz_chunk_limits());
    for piece in data.chunks(split.min(data.len().max(1))) {
        let mut input = piece;
        loop {
            match dec.decode(&mut input) {
                Ok(Some(msg)) => {
                    if let Ok(parsed) = RtmpMessage::parse(msg.type_id, msg.payload.clone(), Amf0Limits::default()) {
                        let _ = parsed.payload_bytes();
                        match parsed {
                            RtmpMessage::Aggregate(p) => {
                                let _ = split_aggregate(&p, msg.timestamp);
                            }
                            RtmpMessage::Data { payload, .. } => {
                                let _ = strip_set_data_frame(&payload);
                            }
                            _ => {}
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// AMF0 decoding of arbitrary bytes, re-encoding and re-decoding what parsed,
/// and command parsing.
pub fn fuzz_amf0(data: &[u8]) {
    let limits = Amf0Limits { max_depth: 32, max_values: 4096, max_string_bytes: 1 << 20 };
    if let Ok(values) = amf0::decode_all(data, limits) {
        let mut b = Vec::new();
        amf0::encode_all(&values, &mut b);
        let _ = amf0::decode_all(&b, limits);
    }
    let _ = Command::parse(data, data.first() == Some(&0), limits);
}

/// A valid client handshake (C0, C1, C2) for [`fuzz_server_session`].
fn handshake_prefix() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend(std::iter::repeat_n(0u8, 2 * crate::rtmp::handshake::HANDSHAKE_SIZE));
    v
}

/// A server session fed a valid handshake and then arbitrary bytes, with the
/// engine's decisions and the clock driven by the first byte.
pub fn fuzz_server_session(data: &[u8], now: Instant) {
    let flags = data.first().copied().unwrap_or(0);
    let config = SessionConfig {
        chunk_limits: fuzz_chunk_limits(),
        max_deferred_bytes: 256 * 1024,
        rng_seed: 1,
        ..SessionConfig::default()
    };
    let mut now = now;
    let mut s = ServerSession::new(config, now);
    let _ = s.handle_input(now, &handshake_prefix());
    let split = split_len(flags >> 4);
    let body = data.get(1..).unwrap_or(&[]);
    for piece in body.chunks(split.min(body.len().max(1))) {
        if s.handle_input(now, piece).is_err() {
            break;
        }
        drive_engine(&mut s, flags);
        while s.poll_transmit().is_some() {}
        now += Duration::from_millis(700 * u64::from(flags & 0x0F));
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
    s.close();
    while s.poll_event().is_some() {}
}

/// Plays the engine: accepts or rejects requests according to `flags`.
fn drive_engine(session: &mut ServerSession, flags: u8) {
    while let Some(ev) = session.poll_event() {
        let _ = match ev {
            SessionEvent::ConnectRequested { .. } if flags & 1 == 0 => session.accept_connect(),
            SessionEvent::ConnectRequested { .. } => session.reject_connect("fuzz"),
            SessionEvent::PublishRequested { stream_id, .. } if flags & 2 == 0 => session.accept_publish(stream_id),
            SessionEvent::PublishRequested { stream_id, .. } => {
                session.reject_publish(stream_id, "NetStream.Publish.BadName", "fuzz")
            }
            SessionEvent::PlayRequested { stream_id, .. } if flags & 4 == 0 => session
                .accept_play(stream_id)
                .and_then(|()| if flags & 8 != 0 { session.send_stream_eof(stream_id) } else { Ok(()) }),
            SessionEvent::PlayRequested { stream_id, .. } => {
                session.reject_play(stream_id, "NetStream.Play.StreamNotFound", "fuzz")
            }
            _ => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests;
