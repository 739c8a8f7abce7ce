//! Cost per byte of the load generator's parsers against the engine's (the choice
//! of `loadgen --parser`): 10 s of the 720p fixture (target/fixtures/bench-720p30.flv
//! or fixture-720p.flv when present, else engine/testdata/media/small.flv looped),
//! as RTMP chunks at 4096 and as an FLV byte stream, fed in 64 KiB reads.
//!
//! * `rtmp/lean_scan`: `benches::scan::RtmpScan` (no payload copies);
//! * `rtmp/engine_client_session`: the engine's `ClientSession` media path
//!   (`ChunkDecoder` reassembly + `RtmpMessage::parse`, one copy of each payload);
//! * `flv/lean_scan` vs `flv/engine_flv_reader`.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::proto::flv::{FlvReader, TagType, encode_tag, file_header};
use engine::proto::rtmp::RtmpMessage;
use engine::proto::rtmp::chunk::{ChunkDecoder, ChunkLimits, MessageHeader, encode_message};
use std::hint::black_box;

fn fixture() -> (String, Vec<(TagType, u32, Bytes)>) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let candidates =
        ["target/fixtures/bench-720p30.flv", "target/fixtures/fixture-720p.flv", "engine/testdata/media/small.flv"];
    for c in candidates {
        let Ok(data) = std::fs::read(format!("{root}/{c}")) else { continue };
        let mut r = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        r.handle_input(&data);
        let mut tags = vec![];
        while let Ok(Some(t)) = r.poll_tag() {
            tags.push((t.tag_type, t.timestamp_ms, t.body));
        }
        // Loop to 10 s of media.
        let span = tags.last().map_or(1, |t| t.1 + 33).max(1);
        let mut out = vec![];
        let mut lap = 0;
        while (lap * span) < 10_000 {
            out.extend(tags.iter().filter(|t| t.0 != TagType::Script).map(|t| (t.0, t.1 + lap * span, t.2.clone())));
            lap += 1;
        }
        return (c.to_owned(), out);
    }
    panic!("no fixture found");
}

fn parse(c: &mut Criterion) {
    let (name, tags) = fixture();
    eprintln!("loadgen_parse: {} ({} messages)", name, tags.len());
    let mut rtmp = BytesMut::new();
    encode_message(
        &mut rtmp,
        128,
        &MessageHeader { csid: 2, timestamp: 0, type_id: 1, stream_id: 0 },
        &4096u32.to_be_bytes(),
    )
    .unwrap();
    let mut flv = file_header(true, true).to_vec();
    for (t, ts, body) in &tags {
        let csid = if *t == TagType::Audio { 4 } else { 6 };
        encode_message(
            &mut rtmp,
            4096,
            &MessageHeader { csid, timestamp: *ts, type_id: t.as_u8(), stream_id: 1 },
            body,
        )
        .unwrap();
        flv.extend_from_slice(&encode_tag(*t, *ts, body).unwrap());
    }
    let mut g = c.benchmark_group("loadgen_parse_rtmp");
    g.throughput(Throughput::Bytes(rtmp.len() as u64));
    g.bench_function("lean_scan", |b| {
        b.iter(|| {
            let mut s = benches::scan::RtmpScan::new();
            let mut sum = benches::scan::Summary::default();
            let mut out = vec![];
            for piece in rtmp.chunks(64 * 1024) {
                s.feed(piece, &mut sum, &mut out).unwrap();
            }
            assert_eq!(sum.media as usize, tags.len());
            black_box(sum)
        })
    });
    g.bench_function("engine_client_session", |b| {
        b.iter(|| {
            let mut d = ChunkDecoder::new(ChunkLimits::default());
            let mut sum = benches::scan::Summary::default();
            for piece in rtmp.chunks(64 * 1024) {
                let mut input = piece;
                while let Some(m) = d.decode(&mut input).unwrap() {
                    let msg = RtmpMessage::parse(m.type_id, m.payload, Default::default()).unwrap();
                    if let RtmpMessage::Audio(p) | RtmpMessage::Video(p) = msg {
                        sum.on_message(m.type_id, m.timestamp, &p[..p.len().min(2)]);
                    }
                }
            }
            assert_eq!(sum.media as usize, tags.len());
            black_box(sum)
        })
    });
    g.finish();
    let mut g = c.benchmark_group("loadgen_parse_flv");
    g.throughput(Throughput::Bytes(flv.len() as u64));
    g.bench_function("lean_scan", |b| {
        b.iter(|| {
            let mut s = benches::scan::FlvScan::new();
            let mut sum = benches::scan::Summary::default();
            for piece in flv.chunks(64 * 1024) {
                s.feed(piece, &mut sum).unwrap();
            }
            black_box(sum)
        })
    });
    g.bench_function("engine_flv_reader", |b| {
        b.iter(|| {
            let mut r = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
            let mut sum = benches::scan::Summary::default();
            for piece in flv.chunks(64 * 1024) {
                r.handle_input(piece);
                while let Some(t) = r.poll_tag().unwrap() {
                    sum.on_message(t.tag_type.as_u8(), t.timestamp_ms, &t.body[..t.body.len().min(2)]);
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
