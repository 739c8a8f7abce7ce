//! `instr OP ITERATIONS`: runs one micro-bench workload (`benches::micro`) a given
//! number of times inside `measured`, for instruction counts under callgrind where
//! wall time is too noisy:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect=instr::measured target/release/instr fanout_rtmp_1000 10
//! ```
//!
//! Everything the workload needs is built before `measured` is entered, so the
//! collected instructions are the workload's own. `benches/compare/instr.sh` runs
//! each OP at two iteration counts and reports the difference per iteration (what
//! `measured` costs once, its own loop aside, cancels out). `instr list` prints
//! the OPs.

use benches::micro::{self, Gop, VIDEO_HEADER};
use bytes::Bytes;
use engine::proto::flv::{TagType, encode_tag};
use engine::proto::hls::Segmenter;
use engine::proto::rtmp::chunk::encode_message_bytes;
use engine::stream::frame::{Frame, FrameKind};
use std::hint::black_box;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

const OPS: &[(&str, &str)] = &[
    ("rtmp_encode_10k", "encode_message_bytes: a 10 KB video message at chunk size 4096"),
    ("rtmp_decode_small_flv", "ChunkDecoder: all of small.flv's media (129 messages), 64 KiB reads"),
    ("flv_encode_tag_10k", "encode_tag: a 10 KB video tag"),
    ("frame_flv_wire_10k", "Frame::new (classification) + flv_wire of a 10 KB video frame"),
    ("frame_rtmp_wire_10k", "Frame::new + rtmp_parts(4096) of a 10 KB video frame"),
    ("mpegts_gop", "Segmenter: one GOP of small.flv (62 tags) muxed to MPEG-TS + end()"),
    ("fanout_queue_1000", "15 frames to 1000 socketless players: push, flush tick, drain"),
    ("fanout_rtmp_1000", "the same + each player's RTMP wire buffers"),
    ("fanout_httpflv_1000", "the same + each player's HTTP-FLV wire buffers"),
];

/// Inputs built before measuring, one per iteration where a workload consumes one.
enum Input {
    Payload(Bytes),
    Wire(Bytes),
    Gop(Gop, Vec<Segmenter>),
    Fanout(Vec<Rc<engine::fanout::player::Player>>, Vec<Vec<Arc<Frame>>>),
}

fn prepare(op: &str, iterations: usize) -> Option<Input> {
    Some(match op {
        "rtmp_encode_10k" | "flv_encode_tag_10k" | "frame_flv_wire_10k" | "frame_rtmp_wire_10k" => {
            Input::Payload(micro::video_payload(10_000))
        }
        "rtmp_decode_small_flv" => Input::Wire(micro::small_flv_chunk_stream()),
        "mpegts_gop" => {
            let gop = Gop::of_small_flv();
            let segmenters = (0..iterations).map(|_| gop.segmenter()).collect();
            Input::Gop(gop, segmenters)
        }
        "fanout_queue_1000" | "fanout_rtmp_1000" | "fanout_httpflv_1000" => {
            let mut ts = 0;
            let batches = (0..iterations).map(|_| micro::fanout_batch(&mut ts)).collect();
            Input::Fanout(micro::fanout_players(1000), batches)
        }
        _ => return None,
    })
}

/// The measured region: callgrind collects only inside this function.
#[inline(never)]
fn measured(op: &str, iterations: usize, input: &mut Input) -> usize {
    let mut sum = 0usize;
    match input {
        Input::Payload(p) => {
            for _ in 0..iterations {
                sum += match op {
                    "rtmp_encode_10k" => encode_message_bytes(4096, &VIDEO_HEADER, p).unwrap().len(),
                    "flv_encode_tag_10k" => encode_tag(TagType::Video, 123_456, p).unwrap().len(),
                    "frame_flv_wire_10k" => Frame::new(FrameKind::Video, 123_456, p.clone()).flv_wire().len(),
                    _ => {
                        let (head, rest) = Frame::new(FrameKind::Video, 123_456, p.clone()).rtmp_parts(4096, 0);
                        head.len() + rest.map_or(0, |r| r.len())
                    }
                };
            }
        }
        Input::Wire(w) => {
            for _ in 0..iterations {
                sum += micro::decode_chunk_stream(w);
            }
        }
        Input::Gop(gop, segmenters) => {
            for s in segmenters.drain(..) {
                sum += gop.mux(s);
            }
        }
        Input::Fanout(players, batches) => {
            for frames in batches.drain(..) {
                sum += match op {
                    "fanout_queue_1000" => micro::cycle(players, &frames, |fs| fs.len()),
                    "fanout_rtmp_1000" => micro::cycle(players, &frames, micro::rtmp_wire),
                    _ => micro::cycle(players, &frames, micro::httpflv_wire),
                };
            }
        }
    }
    black_box(sum)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("list") {
        for (op, what) in OPS {
            println!("{op}\t{what}");
        }
        return ExitCode::SUCCESS;
    }
    let (Some(op), Some(Ok(iterations))) = (args.first(), args.get(1).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: instr OP ITERATIONS | instr list");
        return ExitCode::from(2);
    };
    let Some(mut input) = prepare(op, iterations) else {
        eprintln!("instr: unknown OP {op:?} (instr list)");
        return ExitCode::from(2);
    };
    let sum = measured(op, iterations, &mut input);
    println!("{op} {iterations} {sum}");
    ExitCode::SUCCESS
}
