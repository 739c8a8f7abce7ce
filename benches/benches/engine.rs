//! Micro benches of the engine's hot paths (criterion):
//!
//! * `rtmp_chunk/*`: RTMP chunk encoding (stateless shared form and the stateful
//!   per-connection encoder) and decoding (`engine::proto::rtmp::chunk`);
//! * `flv_tag/*`: FLV tag building (`proto::flv::writer::encode_tag`,
//!   `frame::Frame::flv_wire` including the frame's classification);
//! * `mpegts/gop`: HLS segmenting + MPEG-TS muxing of one GOP of
//!   `engine/testdata/media/small.flv` (`proto::hls::Segmenter`);
//! * `fanout/*`: 1 -> 1000 fan-out through `player::Player` (parked writers, push,
//!   the shard's flush tick, the writer's drain with `next_batch` and the RTMP /
//!   HTTP-FLV wire building of `rtmp_conn::player_writer` / `flv_play::serve`),
//!   without sockets. This is the path of players out of step; players in step
//!   take frames through their stream's cohort (`player::Cohort`: one queue entry
//!   per frame for all of them, one send each per tick), which needs real sockets
//!   and is measured end to end by `benches/compare` (BENCHMARKS.md, "Cohorts").
//!
//! Run: `cargo bench -p benches --bench engine` (add `-- --quick` for a short run).

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use engine::frame::{Frame, MediaKind};
use engine::link::Protocol;
use engine::player::{Batch, IoVecs, Player, PlayerLimits, flush_tick};
use engine::proto::flv::{FlvReader, FlvTag, TagType, encode_tag};
use engine::proto::hls::{HlsConfig, MediaKind as HlsKind, Segmenter};
use engine::proto::rtmp::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkLimits, MessageHeader, encode_message, encode_message_bytes,
};
use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

fn small_flv() -> Vec<FlvTag> {
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
fn video_payload(len: usize) -> Bytes {
    let mut v = vec![0x27u8, 1, 0, 0, 0];
    v.resize(len, 0x55);
    Bytes::from(v)
}

fn rtmp_chunk(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtmp_chunk");
    let payload = video_payload(10_000);
    let h = MessageHeader { csid: 6, timestamp: 123_456, type_id: 9, stream_id: 1 };
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("encode_shared_10k", |b| b.iter(|| black_box(encode_message_bytes(4096, &h, &payload).unwrap())));
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(4096);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut ts = 0u32;
    g.bench_function("encode_stateful_10k", |b| {
        b.iter(|| {
            out.clear();
            ts += 33;
            enc.encode(&mut out, &MessageHeader { timestamp: ts, ..h }, &payload).unwrap();
            black_box(out.len())
        })
    });

    // Decode: the media of small.flv at chunk size 4096 (Set Chunk Size first).
    let tags = small_flv();
    let mut wire = BytesMut::new();
    encode_message(
        &mut wire,
        128,
        &MessageHeader { csid: 2, timestamp: 0, type_id: 1, stream_id: 0 },
        &4096u32.to_be_bytes(),
    )
    .unwrap();
    for t in &tags {
        let csid = match t.tag_type {
            TagType::Audio => 4,
            TagType::Video => 6,
            TagType::Script => 5,
        };
        let h = MessageHeader { csid, timestamp: t.timestamp_ms, type_id: t.tag_type.as_u8(), stream_id: 1 };
        encode_message(&mut wire, 4096, &h, &t.body).unwrap();
    }
    let wire = wire.freeze();
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_small_flv", |b| {
        b.iter(|| {
            let mut d = ChunkDecoder::new(ChunkLimits::default());
            let mut input: &[u8] = &wire;
            let mut n = 0;
            // Feed in 64 KiB reads, like a socket.
            while !input.is_empty() {
                let take = input.len().min(64 * 1024);
                let mut piece = &input[..take];
                while let Some(m) = d.decode(&mut piece).unwrap() {
                    n += m.payload.len();
                }
                input = &input[take..];
            }
            black_box(n)
        })
    });
    g.finish();
}

fn flv_tag(c: &mut Criterion) {
    let mut g = c.benchmark_group("flv_tag");
    let payload = video_payload(10_000);
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("encode_tag_10k", |b| {
        b.iter(|| black_box(encode_tag(TagType::Video, 123_456, &payload).unwrap()))
    });
    g.bench_function("frame_new_and_flv_wire_10k", |b| {
        b.iter(|| {
            let f = Frame::new(MediaKind::Video, 123_456, payload.clone());
            black_box(f.flv_wire())
        })
    });
    g.bench_function("frame_new_and_rtmp_wire_10k", |b| {
        b.iter(|| {
            let f = Frame::new(MediaKind::Video, 123_456, payload.clone());
            black_box(f.rtmp_wire(4096))
        })
    });
    g.finish();
}

fn mpegts(c: &mut Criterion) {
    let tags = small_flv();
    // Sequence headers, then one GOP: from the first keyframe to the next.
    let is_key = |t: &FlvTag| t.tag_type == TagType::Video && t.body.len() > 1 && t.body[0] >> 4 == 1 && t.body[1] == 1;
    let first_key = tags.iter().position(is_key).expect("a keyframe");
    let next_key = tags[first_key + 1..].iter().position(is_key).map_or(tags.len(), |i| first_key + 1 + i);
    let headers: Vec<&FlvTag> = tags[..first_key].iter().filter(|t| t.tag_type != TagType::Script).collect();
    let gop: Vec<&FlvTag> = tags[first_key..next_key].iter().filter(|t| t.tag_type != TagType::Script).collect();
    let bytes: usize = gop.iter().map(|t| t.body.len()).sum();
    let mut g = c.benchmark_group("mpegts");
    g.throughput(Throughput::Bytes(bytes as u64));
    let kind = |t: &FlvTag| if t.tag_type == TagType::Video { HlsKind::Video } else { HlsKind::Audio };
    g.bench_function(format!("gop_{}_tags", gop.len()), |b| {
        b.iter_batched(
            || {
                let mut s = Segmenter::new(HlsConfig::default());
                for t in &headers {
                    s.push_flv_tag(kind(t), t.timestamp_ms, &t.body).unwrap();
                }
                s
            },
            |mut s| {
                for t in &gop {
                    s.push_flv_tag(kind(t), t.timestamp_ms, &t.body).unwrap();
                }
                s.end();
                let mut n = 0;
                while let Some(ev) = s.poll_event() {
                    if let engine::proto::hls::HlsEvent::SegmentCompleted { data, .. } = ev {
                        n += data.len();
                    }
                }
                assert!(n > 0);
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One writer wake-up cycle of 1000 players, as on a shard: every writer is parked
/// in `Player::next_batch` (its waker registered), the shard's `deliver` pushes each
/// frame to every player (the first frame puts the player on the shard's flush
/// list), the flush tick (`player::flush_tick`) wakes them all (these players have
/// no socket, so the tick cannot write for them), and each writer drains its queue
/// and builds its wire buffers (`wire`).
fn cycle(players: &[Rc<Player>], frames: &[Arc<Frame>], mut wire: impl FnMut(Vec<Arc<Frame>>) -> usize) -> usize {
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

fn fanout(c: &mut Criterion) {
    const N: usize = 1000;
    let limits =
        PlayerLimits { max_bytes: 4 << 20, max_ms: 6000, disconnect_after: Duration::from_secs(15), merge: true };
    let addr = "127.0.0.1:1".parse().unwrap();
    let players: Vec<Rc<Player>> =
        (0..N as u64).map(|i| Rc::new(Player::new(i, Protocol::Rtmp, addr, limits))).collect();
    // 200 ms of a 720p30 stream: 6 video frames (~10 KB) and 9 AAC frames, as
    // Arc<Frame> shared by all players like the shard's deliver().
    let mut ts = 0u32;
    let mut batch = || -> Vec<Arc<Frame>> {
        let mut v = vec![];
        for i in 0..15u32 {
            ts += 13;
            let f = if i % 5 < 2 {
                Frame::new(MediaKind::Video, ts, video_payload(10_000))
            } else {
                Frame::new(MediaKind::Audio, ts, Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]))
            };
            v.push(Arc::new(f));
        }
        v
    };
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements((N * 15) as u64));
    g.bench_function("queue_only_15_msgs_to_1000", |b| {
        b.iter_batched(&mut batch, |frames| black_box(cycle(&players, &frames, |fs| fs.len())), BatchSize::SmallInput)
    });
    g.bench_function("rtmp_wire_15_msgs_to_1000", |b| {
        b.iter_batched(
            &mut batch,
            |frames| {
                black_box(cycle(&players, &frames, |fs| {
                    let mut bufs = Vec::with_capacity(fs.len() + 2);
                    for f in fs {
                        bufs.push(f.rtmp_wire(4096));
                    }
                    IoVecs::new(bufs).total_len()
                }))
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("httpflv_wire_15_msgs_to_1000", |b| {
        b.iter_batched(
            &mut batch,
            |frames| {
                black_box(cycle(&players, &frames, |fs| {
                    let mut bufs = Vec::with_capacity(fs.len() + 2);
                    let tags: Vec<Bytes> = fs.iter().map(|f| f.flv_wire()).collect();
                    let len: usize = tags.iter().map(|t| t.len()).sum();
                    bufs.push(Bytes::from(format!("{len:x}\r\n")));
                    bufs.extend(tags);
                    bufs.push(Bytes::from_static(b"\r\n"));
                    IoVecs::new(bufs).total_len()
                }))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, rtmp_chunk, flv_tag, mpegts, fanout);
criterion_main!(benches);
