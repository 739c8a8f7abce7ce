use super::*;
use crate::codec::test_util::{hex, testdata};

/// Edits of the codec and container inputs.
fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let edits = Edits { rounds: 8, boundaries: &[0x00, 0x7F, 0x80, 0xFF], splice: [0xFF, 0xFF, 0xFF, 0x7F] };
    rng.mutate(seed, &edits)
}

/// Runs `body` on `rounds` random inputs and as many mutated seeds.
fn run(rng_seed: u64, rounds: usize, seeds: &[Vec<u8>], body: fn(&[u8])) {
    let mut rng = XorShift(rng_seed);
    for seed in seeds {
        body(seed);
    }
    for i in 0..rounds {
        let n = rng.below(if i % 10 == 0 { 2000 } else { 200 });
        body(&rng.bytes(n));
        let seed = rng.pick(seeds);
        body(&mutate(&mut rng, seed));
    }
}

fn http_seeds() -> Vec<Vec<u8>> {
    [
        // ffmpeg 5.1 playing HTTP-FLV.
        &b"GET /live/cam1.flv HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\nAccept: */*\r\n\
           Range: bytes=0-\r\nConnection: close\r\nHost: 127.0.0.1:8080\r\n\
           Icy-MetaData: 1\r\n\r\n"[..],
        // A browser (flv.js) opening WebSocket-FLV, with a token.
        b"GET /flv/cam1.flv?token=a%2Bb+c&x HTTP/1.1\r\nHost: live.example:8080\r\n\
          Connection: Upgrade\r\nPragma: no-cache\r\nUpgrade: websocket\r\n\
          Origin: http://live.example\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        // hls.js fetching a playlist then a segment, pipelined.
        b"GET /hls/cam1.m3u8 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n\
          GET /hls/cam1/17.ts HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
        b"HEAD /stat.json HTTP/1.0\r\n\r\n",
        b"POST /control/drop/publisher?stream=cam1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect()
}

fn flv_seeds() -> Vec<Vec<u8>> {
    let small = testdata("media/small.flv");
    let bframes = testdata("media/small_bframes.flv");
    vec![
        small[..small.len().min(6000)].to_vec(),
        bframes[..bframes.len().min(3000)].to_vec(),
        file_header(false, true).to_vec(),
    ]
}

/// Tag bodies from the test files: sequence headers and the first frames.
fn tag_bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in ["media/small.flv", "media/small_bframes.flv"] {
        let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        reader.handle_input(&testdata(file));
        for _ in 0..8 {
            let Ok(Some(tag)) = reader.poll_tag() else {
                break;
            };
            out.push(tag.body[..tag.body.len().min(400)].to_vec());
        }
    }
    out
}

fn codec_seeds() -> Vec<Vec<u8>> {
    let mut seeds = tag_bodies();
    // The raw structures on their own.
    let seq_header =
        hex("17000000000164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800");
    seeds.push(seq_header[5..].to_vec()); // AVCDecoderConfigurationRecord
    seeds.push(seq_header[13..36].to_vec()); // the SPS NAL unit
    seeds.push(vec![0x11, 0x88]); // AAC LC 48 kHz mono
    seeds.push(vec![0x2B, 0x92, 0x08, 0x00]); // HE-AAC (SBR) explicit
    seeds.push(b"OpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00".to_vec());
    // E-RTMP: HEVC sequence start, Opus sequence start.
    seeds.push(b"\x90hvc1\x01\x02\x03".to_vec());
    seeds.push(b"\x90OpusOpusHead\x01\x02\x38\x01\x80\xBB\x00\x00\x00\x00\x00".to_vec());
    // A run of [kind][len][body] for the MediaInfo part.
    let mut run = vec![1, seq_header.len() as u8];
    run.extend_from_slice(&seq_header);
    run.extend_from_slice(&[0, 4, 0xAF, 0x00, 0x11, 0x88, 1, 5, 0x27, 1, 0, 0, 0]);
    seeds.push(run);
    seeds
}

fn ts_mux_seeds() -> Vec<Vec<u8>> {
    let small = testdata("media/small.flv");
    let bframes = testdata("media/small_bframes.flv");
    vec![
        flv_to_ts_mux_input(0x01, &small[..small.len().min(8000)]),
        flv_to_ts_mux_input(0xC9, &bframes[..bframes.len().min(6000)]),
    ]
}

fn websocket_seeds() -> Vec<Vec<u8>> {
    let mut two = mask_client_frame(
        &ClientFrame { fin: true, opcode: websocket::OP_PING, payload: b"hi".to_vec() },
        [1, 2, 3, 4],
    );
    two.extend(mask_client_frame(
        &ClientFrame { fin: false, opcode: websocket::OP_BINARY, payload: vec![7; 300] },
        [9, 8, 7, 6],
    ));
    vec![
        // RFC 6455 §5.7: a masked "Hello".
        vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
        // A close with status 1000.
        vec![0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8],
        two,
    ]
}

#[test]
fn seeds_reach_deep_states() {
    // Mutating seeds that fail early would test little.
    for seed in http_seeds() {
        assert!(matches!(http::parse_head(&seed), Ok(Some(_))));
    }
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&flv_seeds()[0]);
    assert!(std::iter::from_fn(|| reader.poll_tag().ok().flatten()).count() > 5);
    assert!(tag_bodies().iter().any(|b| VideoTag::parse(b).is_ok_and(|t| t.is_sequence_header())));

    let input = &ts_mux_seeds()[0];
    let mut seg = Segmenter::new(HlsConfig { fragment: Duration::from_millis(200), ..HlsConfig::default() });
    let mut rest = &input[1..];
    let mut timestamp = 0u32;
    while let [kind, d0, d1, l0, l1, tail @ ..] = rest {
        let (body, after) = tail.split_at(usize::from(u16::from_be_bytes([*l0, *l1])));
        rest = after;
        timestamp = timestamp.wrapping_add_signed(i32::from(i16::from_be_bytes([*d0, *d1])));
        let kind = if kind & 1 == 1 { Track::Video } else { Track::Audio };
        seg.push_flv_tag(kind, timestamp, body).unwrap();
    }
    seg.end();
    let completed =
        std::iter::from_fn(|| seg.poll_event()).filter(|e| matches!(e, HlsEvent::SegmentCompleted { .. })).count();
    assert!(completed >= 1, "the ts_mux seed makes segments");

    for seed in websocket_seeds() {
        assert!(matches!(websocket::parse_client_frame(&seed, 1024), Ok(Some(_))));
    }
}

#[test]
fn http_request_pseudo_random_inputs() {
    run(0x9E37_79B9_7F4A_7C15, 3000, &http_seeds(), fuzz_http_request);
}

#[test]
fn flv_reader_pseudo_random_inputs() {
    run(0xD1B5_4A32_D192_ED03, 2000, &flv_seeds(), fuzz_flv_reader);
}

#[test]
fn codec_pseudo_random_inputs() {
    run(0x2545_F491_4F6C_DD1D, 4000, &codec_seeds(), fuzz_codec);
}

#[test]
fn ts_mux_pseudo_random_inputs() {
    run(0xA076_1D64_78BD_642F, 2000, &ts_mux_seeds(), fuzz_ts_mux);
}

#[test]
fn mp4_pseudo_random_inputs() {
    // The seeds reach deep: several fragments, and two files when finishing midway.
    let seeds = mp4_seeds();
    let files = mp4_files(&seeds[0]);
    assert!(files.0.len() == 1 && files.0[0].1.len() >= 2, "{} files", files.0.len());
    let files = mp4_files(&seeds[2]);
    assert!(files.0.len() == 2 && files.0.iter().all(|f| !f.1.is_empty()), "{} files", files.0.len());
    run(0x9E37_79B9_7F4A_7C15, 2000, &mp4_seeds(), fuzz_mp4);
}

/// Both test files whole with a 300 ms fragment knob (several fragments per file),
/// and one that calls finish() midway (bit 7 of a record's kind): two files.
fn mp4_seeds() -> Vec<Vec<u8>> {
    let mut seeds = vec![
        flv_to_ts_mux_input(3, &testdata("media/small.flv")),
        flv_to_ts_mux_input(3, &testdata("media/small_bframes.flv")),
    ];
    let mut finishing = seeds[0].clone();
    let mut at = 1;
    let mut records = 0;
    while at + 5 <= finishing.len() {
        if records == 60 {
            finishing[at] |= 0x80;
        }
        at += 5 + usize::from(u16::from_be_bytes([finishing[at + 3], finishing[at + 4]]));
        records += 1;
    }
    assert!(records > 60, "the seed has {records} records");
    seeds.push(finishing);
    seeds
}

#[test]
fn websocket_pseudo_random_inputs() {
    run(0xE703_7ED1_A0B4_28DB, 3000, &websocket_seeds(), fuzz_websocket);
}

#[test]
fn regression_inputs() {
    // Edge cases: empty, one byte, knob bytes alone.
    for input in [&[][..], &[0x00], &[0xFF], &[0x03, 0x03], b"FLV"] {
        fuzz_http_request(input);
        fuzz_flv_reader(input);
        fuzz_codec(input);
        fuzz_ts_mux(input);
        fuzz_mp4(input);
        fuzz_websocket(input);
    }
}
