//! A media message as the engine moves it: one publisher message, shared by every
//! player on every shard through an `Arc`. Its wire forms (RTMP chunks, FLV tag) are
//! built at most once, by whichever player needs them first, and shared after that.

use crate::proto::codec::{AudioTag, VideoTag};
use crate::proto::flv::TagType;
use crate::proto::rtmp::chunk::{MessageHeader, encode_message_bytes};
use bytes::Bytes;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Audio,
    Video,
    /// Script data (onMetaData).
    Data,
    /// A WebRTC publisher's RTP packet (decrypted), audio or video.
    RtpAudio,
    RtpVideo,
    /// A WebRTC publisher's Opus packet as an Enhanced-FLV audio tag (FourCC `Opus`),
    /// beside the AAC made from it, for cluster relays only: an edge node then gives
    /// its WebRTC viewers the publisher's Opus untouched instead of Opus re-encoded
    /// from that AAC. No other player, cache or muxer takes it.
    OpusTag,
}

/// The first bytes of an [`FrameKind::OpusTag`] body: Enhanced-FLV audio (sound
/// format 9, packet type 1 = coded frames) with the FourCC `Opus`.
const OPUS_TAG_HEAD: [u8; 5] = [0x91, b'O', b'p', b'u', b's'];

/// Chunk stream ids of outgoing media (distinct from the session's 2 and 3).
pub const CSID_AUDIO: u32 = 4;
pub const CSID_DATA: u32 = 5;
pub const CSID_VIDEO: u32 = 6;
/// The message stream id players receive media on (the first createStream's id).
pub const PLAY_STREAM_ID: u32 = 1;

#[derive(Debug)]
pub struct Frame {
    pub kind: FrameKind,
    /// Milliseconds (FLV/RTMP clock), already rebased by the stream's home shard.
    pub timestamp: u32,
    /// The FLV tag body / RTMP message payload.
    pub payload: Bytes,
    /// A video keyframe (a decoder can start here).
    pub keyframe: bool,
    /// A codec sequence header or metadata: state every player needs before media.
    pub header: bool,
    /// An RTP frame whose `timestamp` is the stream's media clock (RTP made by the
    /// RTMP → WebRTC bridge): viewers' sender reports relate the tracks by it.
    pub media_clock: bool,
    rtmp: OnceLock<Bytes>,
    flv: OnceLock<Bytes>,
}

impl Frame {
    /// Classifies a publisher message by its FLV tag header (legacy and Enhanced RTMP).
    pub fn new(kind: FrameKind, timestamp: u32, payload: Bytes) -> Frame {
        let (keyframe, header) = match kind {
            FrameKind::Video => match VideoTag::parse(&payload) {
                Ok(t) => (t.is_keyframe() && !t.is_sequence_header(), t.is_sequence_header()),
                // Unparseable (e.g. an unknown codec): forward it, treat by the frame-type bits.
                Err(_) => (payload.first().is_some_and(|b| (b >> 4) & 7 == 1), false),
            },
            FrameKind::Audio => (false, AudioTag::parse(&payload).is_ok_and(|t| t.is_sequence_header())),
            FrameKind::Data => (false, true),
            FrameKind::RtpAudio | FrameKind::RtpVideo | FrameKind::OpusTag => (false, false),
        };
        Frame {
            kind,
            timestamp,
            payload,
            keyframe,
            header,
            media_clock: false,
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        }
    }

    /// An Opus packet at `timestamp` as an [`FrameKind::OpusTag`] frame.
    pub fn opus_tag(timestamp: u32, packet: &[u8]) -> Frame {
        let mut body = Vec::with_capacity(OPUS_TAG_HEAD.len() + packet.len());
        body.extend_from_slice(&OPUS_TAG_HEAD);
        body.extend_from_slice(packet);
        Frame::new(FrameKind::OpusTag, timestamp, Bytes::from(body))
    }

    /// Whether an FLV audio tag body is an [`FrameKind::OpusTag`]'s (a relay reading
    /// its origin's HTTP-FLV tells the two kinds of audio tag apart by this).
    pub fn is_opus_tag_body(body: &[u8]) -> bool {
        body.starts_with(&OPUS_TAG_HEAD)
    }

    /// The Opus packet of an [`FrameKind::OpusTag`] frame.
    pub fn opus_packet(&self) -> Option<&[u8]> {
        (self.kind == FrameKind::OpusTag).then(|| self.payload.get(OPUS_TAG_HEAD.len()..)).flatten()
    }

    /// For cluster relays only (see [`FrameKind::OpusTag`]).
    pub fn relay_only(&self) -> bool {
        self.kind == FrameKind::OpusTag
    }

    /// A WebRTC publisher's RTP packet (`payload` is the whole plain RTP packet).
    pub fn rtp(kind: FrameKind, packet: Bytes) -> Frame {
        Frame {
            kind,
            timestamp: 0,
            payload: packet,
            keyframe: false,
            header: false,
            media_clock: false,
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        }
    }

    /// An RTP packet made from FLV media at `media_ms` on the stream's clock.
    pub fn rtp_at(kind: FrameKind, packet: Bytes, media_ms: u32) -> Frame {
        Frame { timestamp: media_ms, media_clock: true, ..Frame::rtp(kind, packet) }
    }

    /// A WebRTC publisher's RTCP sender report for the track of `kind`: the RTP time
    /// `rtp_time` of its SSRC `ssrc` was the sender's NTP time `ntp_time`. Marked
    /// `header` (RTP frames are never headers otherwise); it goes from the session to
    /// the stream's home, where the WebRTC → RTMP bridge syncs audio to video with it,
    /// and no further (never to viewers).
    pub fn sender_report(kind: FrameKind, ssrc: u32, ntp_time: u64, rtp_time: u32) -> Frame {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&ssrc.to_be_bytes());
        b.extend_from_slice(&ntp_time.to_be_bytes());
        b.extend_from_slice(&rtp_time.to_be_bytes());
        Frame { header: true, ..Frame::rtp(kind, Bytes::from(b)) }
    }

    /// `(ssrc, ntp_time, rtp_time)` of a [`sender_report`](Self::sender_report) frame.
    pub fn as_sender_report(&self) -> Option<(u32, u64, u32)> {
        if !(self.is_rtp() && self.header) || self.payload.len() != 16 {
            return None;
        }
        let p = &self.payload;
        let ssrc = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        let ntp = u64::from_be_bytes([p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]]);
        Some((ssrc, ntp, u32::from_be_bytes([p[12], p[13], p[14], p[15]])))
    }

    /// RTP (WebRTC) rather than FLV-tag media.
    pub fn is_rtp(&self) -> bool {
        matches!(self.kind, FrameKind::RtpAudio | FrameKind::RtpVideo)
    }

    /// A copy with another timestamp (the wire forms are rebuilt lazily).
    pub fn with_timestamp(&self, timestamp: u32) -> Frame {
        Frame {
            kind: self.kind,
            timestamp,
            payload: self.payload.clone(),
            keyframe: self.keyframe,
            header: self.header,
            media_clock: self.media_clock,
            rtmp: OnceLock::new(),
            flv: OnceLock::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    fn type_id(&self) -> u8 {
        match self.kind {
            FrameKind::Audio | FrameKind::RtpAudio | FrameKind::OpusTag => 8,
            FrameKind::Video | FrameKind::RtpVideo => 9,
            FrameKind::Data => 18,
        }
    }

    /// This frame's time on a player's timeline that starts at `base` on the
    /// stream's (see `Player`): the stream's time minus `base`, never before 0.
    ///
    /// Metadata is always at 0: ffmpeg's FLV demuxer reads an `onMetaData` tag as the
    /// stream's header only at time 0, and at any other time as a packet of an extra
    /// (text) stream, which then has no other packet.
    pub fn ts_on(&self, base: Option<u32>) -> u32 {
        if self.kind == FrameKind::Data {
            return 0;
        }
        match base {
            // Not placed yet: only headers are rendered before a player's first media.
            None => 0,
            Some(b) => {
                let d = self.timestamp.wrapping_sub(b);
                // Before the base (an audio frame a little before the first keyframe).
                if d > i32::MAX as u32 { 0 } else { d }
            }
        }
    }

    /// The RTMP chunks of this message at `chunk_size` on [`PLAY_STREAM_ID`], stamped
    /// 0: the template of [`rtmp_parts`](Self::rtmp_parts). Every player uses the
    /// engine's one outgoing chunk size, so one form suffices.
    fn rtmp_template(&self, chunk_size: u32) -> Bytes {
        self.rtmp
            .get_or_init(|| {
                // Payloads are bounded by the max message size (< 16 MiB), so encoding cannot fail.
                encode_message_bytes(chunk_size, &self.rtmp_header(0), &self.payload).unwrap_or_default()
            })
            .clone()
    }

    fn rtmp_header(&self, timestamp: u32) -> MessageHeader {
        let csid = match self.kind {
            FrameKind::Audio | FrameKind::RtpAudio | FrameKind::OpusTag => CSID_AUDIO,
            FrameKind::Video | FrameKind::RtpVideo => CSID_VIDEO,
            FrameKind::Data => CSID_DATA,
        };
        MessageHeader { csid, timestamp, type_id: self.type_id(), stream_id: PLAY_STREAM_ID }
    }

    /// The RTMP chunks of this message at `ts` (a player's time, see
    /// [`ts_on`](Self::ts_on)) as the player's own type-0 chunk header and the rest,
    /// shared by every player: the payload's chunks, whose type-3 headers carry no
    /// time. Only a time that needs the extended field (from 4.66 h on) changes the
    /// layout: that one message is then encoded for the player (`None` rest).
    pub fn rtmp_parts(&self, chunk_size: u32, ts: u32) -> (Bytes, Option<Bytes>) {
        use crate::proto::rtmp::chunk::EXTENDED_TIMESTAMP;
        if ts >= EXTENDED_TIMESTAMP {
            let own = encode_message_bytes(chunk_size, &self.rtmp_header(ts), &self.payload).unwrap_or_default();
            return (own, None);
        }
        let t = self.rtmp_template(chunk_size);
        // One-byte basic header (chunk stream ids below 64), then the 11-byte type-0
        // message header: timestamp, length, type, stream id.
        const HEAD: usize = 12;
        if t.len() < HEAD {
            return (t, None);
        }
        let mut head = [0u8; HEAD];
        head.copy_from_slice(&t[..HEAD]);
        head[1..4].copy_from_slice(&ts.to_be_bytes()[1..]);
        (Bytes::copy_from_slice(&head), Some(t.slice(HEAD..)))
    }

    /// The FLV tag of this frame at `ts` (a player's time) as its 11-byte header and
    /// the rest (body and PreviousTagSize), shared by every player.
    pub fn flv_parts(&self, ts: u32) -> ([u8; crate::proto::flv::TAG_HEADER_LEN], Bytes) {
        let wire = self.flv_wire();
        let n = crate::proto::flv::TAG_HEADER_LEN.min(wire.len());
        let mut head = [0u8; crate::proto::flv::TAG_HEADER_LEN];
        head[..n].copy_from_slice(&wire[..n]);
        let t = ts.to_be_bytes();
        // Timestamp (24 bits) then TimestampExtended (the high 8), E.4.1.
        head[4..8].copy_from_slice(&[t[1], t[2], t[3], t[0]]);
        (head, wire.slice(n..))
    }

    /// The complete FLV tag (header, body, PreviousTagSize).
    pub fn flv_wire(&self) -> Bytes {
        self.flv
            .get_or_init(|| {
                let t = match self.kind {
                    FrameKind::Audio | FrameKind::RtpAudio | FrameKind::OpusTag => TagType::Audio,
                    FrameKind::Video | FrameKind::RtpVideo => TagType::Video,
                    FrameKind::Data => TagType::Script,
                };
                crate::proto::flv::writer::encode_tag(t, self.timestamp, &self.payload).unwrap_or_default()
            })
            .clone()
    }
}
