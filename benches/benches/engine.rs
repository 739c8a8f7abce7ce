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
//! The workloads live in `benches::micro`, shared with the `instr` binary that
//! counts their instructions under callgrind (`benches/compare/instr.sh`).
//!
//! Run: `cargo bench -p benches --bench engine` (add `-- --quick` for a short run).

use benches::micro::{self, Gop, VIDEO_HEADER};
use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use engine::proto::flv::{TagType, encode_tag};
use engine::proto::rtmp::chunk::{ChunkEncoder, MessageHeader, encode_message_bytes};
use engine::stream::frame::{Frame, FrameKind};
use std::hint::black_box;

fn rtmp_chunk(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtmp_chunk");
    let payload = micro::video_payload(10_000);
    let h = VIDEO_HEADER;
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
    let wire = micro::small_flv_chunk_stream();
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_small_flv", |b| b.iter(|| black_box(micro::decode_chunk_stream(&wire))));
    g.finish();
}

fn flv_tag(c: &mut Criterion) {
    let mut g = c.benchmark_group("flv_tag");
    let payload = micro::video_payload(10_000);
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("encode_tag_10k", |b| {
        b.iter(|| black_box(encode_tag(TagType::Video, 123_456, &payload).unwrap()))
    });
    g.bench_function("frame_new_and_flv_wire_10k", |b| {
        b.iter(|| {
            let f = Frame::new(FrameKind::Video, 123_456, payload.clone());
            black_box(f.flv_wire())
        })
    });
    g.bench_function("frame_new_and_rtmp_parts_10k", |b| {
        b.iter(|| {
            let f = Frame::new(FrameKind::Video, 123_456, payload.clone());
            black_box(f.rtmp_parts(4096, 0))
        })
    });
    g.finish();
}

fn mpegts(c: &mut Criterion) {
    let gop = Gop::of_small_flv();
    let mut g = c.benchmark_group("mpegts");
    g.throughput(Throughput::Bytes(gop.gop_bytes() as u64));
    g.bench_function(format!("gop_{}_tags", gop.gop.len()), |b| {
        b.iter_batched(|| gop.segmenter(), |s| black_box(gop.mux(s)), BatchSize::SmallInput)
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    const N: usize = 1000;
    let players = micro::fanout_players(N);
    let mut ts = 0u32;
    let mut batch = || micro::fanout_batch(&mut ts);
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements((N * 15) as u64));
    g.bench_function("queue_only_15_msgs_to_1000", |b| {
        b.iter_batched(
            &mut batch,
            |frames| black_box(micro::cycle(&players, &frames, |fs| fs.len())),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("rtmp_wire_15_msgs_to_1000", |b| {
        b.iter_batched(
            &mut batch,
            |frames| black_box(micro::cycle(&players, &frames, micro::rtmp_wire)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("httpflv_wire_15_msgs_to_1000", |b| {
        b.iter_batched(
            &mut batch,
            |frames| black_box(micro::cycle(&players, &frames, micro::httpflv_wire)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, rtmp_chunk, flv_tag, mpegts, fanout);
criterion_main!(benches);
