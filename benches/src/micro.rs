//! The workloads of the micro benches, shared by the criterion benches
//! (`benches/benches/engine.rs`, wall time) and the `instr` binary (instruction
//! counts under callgrind, `benches/compare/instr.sh`), so both measure the same
//! code on the same inputs.

use bytes::{Bytes, BytesMut};
use engine::fanout::player::{Batch, IoVecs, Player, PlayerLimits, SharedForm, flush_tick};
use engine::link::Protocol;
use engine::proto::Track;
use engine::proto::flv::{FlvReader, FlvTag, TagType};
use engine::proto::hls::{HlsConfig, HlsEvent, Segmenter};
use engine::proto::rtmp::chunk::{ChunkDecoder, ChunkLimits, MessageHeader, encode_message};
use engine::stream::frame::{Frame, FrameKind};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The tags of `engine/testdata/media/small.flv`.
pub fn small_flv() -> Vec<FlvTag> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../engine/testdata/media/small.flv");
    let data = std::fs::read(path).expect("engine/testdata/media/small.flv");
    let mut r = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    r.handle_input(&data);
    let mut tags = vec![];
    while let Some(t) = r.poll_tag().expect("valid FLV") {
        tags.push(t);
    }
    tags
}

/// A 720p30 2.5 Mbit/s stream has ~10 KB video frames: a synthetic one.
pub fn video_payload(len: usize) -> Bytes {
    let mut v = vec![0x27u8, 1, 0, 0, 0];
    v.resize(len, 0x55);
    Bytes::from(v)
}

/// The header of the chunk benches' 10 KB video message.
pub const VIDEO_HEADER: MessageHeader = MessageHeader { csid: 6, timestamp: 123_456, type_id: 9, stream_id: 1 };

/// The media of small.flv as an RTMP chunk stream at chunk size 4096 (Set Chunk
/// Size first).
pub fn small_flv_chunk_stream() -> Bytes {
    let mut wire = BytesMut::new();
    encode_message(
        &mut wire,
        128,
        &MessageHeader { csid: 2, timestamp: 0, type_id: 1, stream_id: 0 },
        &4096u32.to_be_bytes(),
    )
    .unwrap();
    for t in &small_flv() {
        let csid = match t.tag_type {
            TagType::Audio => 4,
            TagType::Video => 6,
            TagType::Script => 5,
        };
        let h = MessageHeader { csid, timestamp: t.timestamp_ms, type_id: t.tag_type.as_u8(), stream_id: 1 };
        encode_message(&mut wire, 4096, &h, &t.body).unwrap();
    }
    wire.freeze()
}

/// Decodes a whole chunk stream fed in 64 KiB reads, like a socket; returns the
/// payload bytes.
pub fn decode_chunk_stream(wire: &[u8]) -> usize {
    let mut d = ChunkDecoder::new(ChunkLimits::default());
    let mut input = wire;
    let mut n = 0;
    while !input.is_empty() {
        let take = input.len().min(64 * 1024);
        let mut piece = &input[..take];
        while let Some(m) = d.decode(&mut piece).unwrap() {
            n += m.payload.len();
        }
        input = &input[take..];
    }
    n
}

/// small.flv split for the MPEG-TS bench: the sequence headers, then one GOP (from
/// the first keyframe to the next), script tags left out.
pub struct Gop {
    pub headers: Vec<FlvTag>,
    pub gop: Vec<FlvTag>,
}

impl Gop {
    pub fn of_small_flv() -> Gop {
        let tags = small_flv();
        let is_key =
            |t: &FlvTag| t.tag_type == TagType::Video && t.body.len() > 1 && t.body[0] >> 4 == 1 && t.body[1] == 1;
        let first_key = tags.iter().position(is_key).expect("a keyframe");
        let next_key = tags[first_key + 1..].iter().position(is_key).map_or(tags.len(), |i| first_key + 1 + i);
        let media = |ts: &[FlvTag]| ts.iter().filter(|t| t.tag_type != TagType::Script).cloned().collect();
        Gop { headers: media(&tags[..first_key]), gop: media(&tags[first_key..next_key]) }
    }

    pub fn gop_bytes(&self) -> usize {
        self.gop.iter().map(|t| t.body.len()).sum()
    }

    fn kind(t: &FlvTag) -> Track {
        if t.tag_type == TagType::Video { Track::Video } else { Track::Audio }
    }

    /// A segmenter that has seen the sequence headers.
    pub fn segmenter(&self) -> Segmenter {
        let mut s = Segmenter::new(HlsConfig::default());
        for t in &self.headers {
            s.push_flv_tag(Self::kind(t), t.timestamp_ms, &t.body).unwrap();
        }
        s
    }

    /// Muxes the GOP into one segment; returns its size.
    pub fn mux(&self, mut s: Segmenter) -> usize {
        for t in &self.gop {
            s.push_flv_tag(Self::kind(t), t.timestamp_ms, &t.body).unwrap();
        }
        s.end();
        let mut n = 0;
        while let Some(ev) = s.poll_event() {
            if let HlsEvent::SegmentCompleted { data, .. } = ev {
                n += data.len();
            }
        }
        assert!(n > 0);
        n
    }
}

/// `n` socketless RTMP players with the engine's default queue limits.
pub fn fanout_players(n: usize) -> Vec<Rc<Player>> {
    let limits =
        PlayerLimits { max_bytes: 4 << 20, max_ms: 6000, disconnect_after: Duration::from_secs(15), merge: true };
    let addr = "127.0.0.1:1".parse().unwrap();
    (0..n as u64).map(|i| Rc::new(Player::new(i, Protocol::Rtmp, addr, limits))).collect()
}

/// 200 ms of a 720p30 stream after `ts`: 6 video frames (~10 KB) and 9 AAC frames,
/// as `Arc<Frame>` shared by all players like the shard's `deliver`.
pub fn fanout_batch(ts: &mut u32) -> Vec<Arc<Frame>> {
    let mut v = vec![];
    for i in 0..15u32 {
        *ts += 13;
        let f = if i % 5 < 2 {
            Frame::new(FrameKind::Video, *ts, video_payload(10_000))
        } else {
            Frame::new(FrameKind::Audio, *ts, Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]))
        };
        v.push(Arc::new(f));
    }
    v
}

/// One writer wake-up cycle of the players, as on a shard: every writer is parked
/// in `Player::next_batch` (its waker registered), the shard's `deliver` pushes each
/// frame to every player (the first frame puts the player on the shard's flush
/// list), the flush tick (`player::flush_tick`) wakes them all (these players have
/// no socket, so the tick cannot write for them), and each writer drains its queue
/// and builds its wire buffers (`wire`).
pub fn cycle(players: &[Rc<Player>], frames: &[Arc<Frame>], mut wire: impl FnMut(Vec<Arc<Frame>>) -> usize) -> usize {
    let mut cx = Context::from_waker(Waker::noop());
    let mut parked: Vec<_> = players.iter().map(|p| Box::pin(p.next_batch())).collect();
    for f in parked.iter_mut() {
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    let now = Instant::now();
    for f in frames {
        for p in players {
            p.push(f, now);
        }
    }
    assert_eq!(flush_tick().players, players.len());
    let mut total = 0;
    for f in parked.iter_mut() {
        if let Poll::Ready(Batch::Frames(fs)) = f.as_mut().poll(&mut cx) {
            total += wire(fs);
        }
    }
    total
}

/// An RTMP player writer's wire buffers for its frames (`rtmp_conn::player_writer`:
/// the player's own chunk headers on its timeline, the chunks' rest shared).
pub fn rtmp_wire(fs: Vec<Arc<Frame>>) -> usize {
    let mut bufs = Vec::with_capacity(2 * fs.len() + 2);
    SharedForm::Rtmp { chunk_size: 4096 }.pieces(&fs, Some(0), &mut bufs);
    IoVecs::new(bufs).total_len()
}

/// An HTTP-FLV player writer's wire buffers for its frames (`flv_play::serve`: one
/// HTTP chunk, per-player tag headers, shared tag bodies).
pub fn httpflv_wire(fs: Vec<Arc<Frame>>) -> usize {
    let mut bufs = Vec::with_capacity(2 * fs.len() + 2);
    SharedForm::HttpFlv.pieces(&fs, Some(0), &mut bufs);
    IoVecs::new(bufs).total_len()
}
