//! Tests of the H.264 RTP bridge on the real H.264 of `testdata/media/*.flv`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::avc::nal_type;
use crate::codec::test_util::testdata;
use crate::codec::{AvcConfig, VideoTag, avcc_nalus, nal_unit_type};
use crate::flv::{FlvReader, TagType};

/// One coded frame of a test file.
struct Frame {
    timestamp_ms: u32,
    body: Bytes,
    keyframe: bool,
    /// The AVCC data, as the depacketizer should give it back (4-byte
    /// lengths; no SPS, PPS, AUD, SEI).
    expected_avcc: Vec<u8>,
}

struct Clip {
    sequence_header: Bytes,
    config: AvcConfig,
    frames: Vec<Frame>,
}

fn load(path: &str) -> Clip {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&testdata(path));
    let (mut sequence_header, mut config, mut frames) = (None, None, Vec::new());
    while let Some(tag) = reader.poll_tag().unwrap() {
        if tag.tag_type != TagType::Video {
            continue;
        }
        let v = VideoTag::parse(&tag.body).unwrap();
        if v.is_sequence_header() {
            config = Some(AvcConfig::parse(v.data).unwrap());
            sequence_header = Some(tag.body.clone());
            continue;
        }
        if v.packet != crate::codec::VideoPacket::Frame {
            continue; // ffmpeg ends the file with an end-of-sequence tag.
        }
        let cfg = config.as_ref().unwrap();
        let mut expected_avcc = Vec::new();
        for nal in avcc_nalus(v.data, cfg.nalu_length_size) {
            let nal = nal.unwrap();
            if matches!(nal_unit_type(nal), nal_type::SPS | nal_type::PPS | nal_type::AUD | nal_type::SEI) {
                continue;
            }
            expected_avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            expected_avcc.extend_from_slice(nal);
        }
        frames.push(Frame {
            timestamp_ms: tag.timestamp_ms,
            keyframe: v.is_keyframe(),
            body: tag.body.clone(),
            expected_avcc,
        });
    }
    Clip { sequence_header: sequence_header.unwrap(), config: config.unwrap(), frames }
}

/// Packetizes a clip: the packets of each frame, in order.
fn packetize(clip: &Clip, config: H264PacketizerConfig) -> Vec<Vec<H264RtpPacket>> {
    let mut p = H264Packetizer::new(config);
    let mut out = Vec::new();
    p.handle_video_tag(0, &clip.sequence_header, &mut out).unwrap();
    assert!(out.is_empty() && p.has_parameter_sets());
    clip.frames
        .iter()
        .map(|f| {
            let mut out = Vec::new();
            p.handle_video_tag(f.timestamp_ms, &f.body, &mut out).unwrap();
            out
        })
        .collect()
}

/// Drains a depacketizer.
fn drain(d: &mut H264Depacketizer, out: &mut Vec<DepacketizerOutput>) {
    while let Some(o) = d.poll_output() {
        out.push(o);
    }
}

fn feed(d: &mut H264Depacketizer, now: Instant, packets: &[H264RtpPacket], out: &mut Vec<DepacketizerOutput>) {
    for p in packets {
        d.handle_packet(now, p.sequence_number, p.timestamp, p.marker, p.payload.clone());
        drain(d, out);
    }
}

fn access_units(out: &[DepacketizerOutput]) -> Vec<&H264AccessUnit> {
    out.iter()
        .filter_map(|o| match o {
            DepacketizerOutput::AccessUnit(au) => Some(au),
            _ => None,
        })
        .collect()
}

#[test]
fn packetizes_small_flv_per_rfc_6184() {
    let clip = load("media/small.flv");
    let frames = packetize(&clip, H264PacketizerConfig::default());
    let mut seq = 0u16;
    let (mut fu_packets, mut keyframes) = (0, 0);
    for (frame, packets) in clip.frames.iter().zip(&frames) {
        assert!(!packets.is_empty());
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p.sequence_number, seq);
            seq = seq.wrapping_add(1);
            assert_eq!(p.timestamp, frame.timestamp_ms * 90);
            assert_eq!(p.marker, i + 1 == packets.len(), "marker on the last packet only");
            assert!(p.payload.len() <= DEFAULT_MAX_PAYLOAD_SIZE);
            let t = p.payload[0] & 0x1F;
            assert!(matches!(t, 1 | 5 | 24 | 28), "type {t}");
            assert_ne!(t, nal_type::SEI, "SEI dropped by default");
            fu_packets += usize::from(t == 28);
        }
        if frame.keyframe {
            keyframes += 1;
            // STAP-A with exactly the sequence header's SPS and PPS first.
            let stap = &packets[0].payload;
            let mut want = vec![0x78];
            for nal in [&clip.config.sps[0], &clip.config.pps[0]] {
                want.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                want.extend_from_slice(nal);
            }
            assert_eq!(&stap[..], &want[..]);
        } else {
            assert_ne!(packets[0].payload[0] & 0x1F, 24, "no STAP-A before P frames");
        }
    }
    assert_eq!(keyframes, 2);
    assert!(fu_packets > 0, "the 3 KB key frames need FU-A");
    let sei_kept = packetize(&clip, H264PacketizerConfig { keep_sei: true, ..Default::default() });
    assert!(
        sei_kept[0].iter().any(|p| p.payload[0] & 0x1F == 28 && p.payload[1] & 0x1F == 6 || p.payload[0] & 0x1F == 6)
    );
}

#[test]
fn round_trip_small_flv_in_order() {
    let clip = load("media/small.flv");
    let frames = packetize(&clip, H264PacketizerConfig::default());
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let now = Instant::now();
    let mut out = Vec::new();
    for packets in &frames {
        feed(&mut d, now, packets, &mut out);
    }
    let DepacketizerOutput::ParameterSets { sps, pps } = &out[0] else {
        panic!("parameter sets first: {:?}", out[0]);
    };
    assert_eq!(&sps[..], &clip.config.sps[0][..]);
    assert_eq!(&pps[..], &clip.config.pps[0][..]);
    // The rebuilt sequence header is byte-identical to ffmpeg's.
    assert_eq!(avc_sequence_header_tag_body(sps, pps).unwrap(), &clip.sequence_header[..]);
    let aus = access_units(&out);
    assert_eq!(aus.len(), clip.frames.len());
    for (au, frame) in aus.iter().zip(&clip.frames) {
        assert_eq!(au.rtp_timestamp, frame.timestamp_ms * 90);
        assert_eq!(au.keyframe, frame.keyframe);
        assert_eq!(&au.avcc()[..], &frame.expected_avcc[..]);
        assert_eq!(&au.flv_tag_body[..], &avc_frame_tag_body(&frame.expected_avcc, frame.keyframe, 0)[..]);
    }
    assert!(!out.contains(&DepacketizerOutput::NeedKeyframe));
    assert_eq!(d.stats().lost, 0);
    assert_eq!(d.stats().access_units, clip.frames.len() as u64);
}

#[test]
fn fu_a_boundaries_at_the_mtu() {
    let max = 100;
    let mut p = H264Packetizer::new(H264PacketizerConfig { max_payload_size: max, ..Default::default() });
    let cfg = AvcConfig::parse(&hex_record()).unwrap();
    p.set_avc_config(&cfg);
    for (len, want_packets) in [(max, 1), (max + 1, 2), (2 * (max - 2) + 1, 2), (2 * (max - 2) + 2, 3)] {
        // One non-IDR slice NAL unit of `len` bytes (header included).
        let mut nal = vec![0x41];
        nal.extend((1..len).map(|i| (i % 251) as u8));
        let mut avcc = (len as u32).to_be_bytes().to_vec();
        avcc.extend_from_slice(&nal);
        let mut out = Vec::new();
        p.packetize(1234, &Bytes::from(avcc.clone()), &mut out).unwrap();
        assert_eq!(out.len(), want_packets, "NAL of {len} bytes");
        assert!(out.iter().all(|p| p.payload.len() <= max));
        if want_packets > 1 {
            assert_eq!(out[0].payload[0], 0x40 | 28, "FU indicator keeps NRI");
            assert_eq!(out[0].payload[1], 0x80 | 1, "start bit");
            assert!(out[1..want_packets - 1].iter().all(|p| p.payload[1] == 1));
            assert_eq!(out[want_packets - 1].payload[1], 0x40 | 1, "end bit");
            assert!(out[..want_packets - 1].iter().all(|p| p.payload.len() == max));
        }
        // And back.
        let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
        let mut outputs = Vec::new();
        d.waiting_for_keyframe = false;
        d.loss_before_next_au = false;
        feed(&mut d, Instant::now(), &out, &mut outputs);
        let aus = access_units(&outputs);
        assert_eq!(aus.len(), 1);
        assert_eq!(&aus[0].avcc()[..], &avcc[..]);
    }
}

/// The sequence header record of small.flv.
fn hex_record() -> Vec<u8> {
    crate::codec::test_util::hex(
        "0164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800",
    )
}

#[test]
fn in_band_parameter_sets_and_stap_a_before_each_idr() {
    let cfg = AvcConfig::parse(&hex_record()).unwrap();
    let mut p = H264Packetizer::new(H264PacketizerConfig::default());
    let mut out = Vec::new();
    // A frame before any configuration is refused.
    assert_eq!(
        p.packetize(0, &Bytes::from_static(&[0, 0, 0, 1, 0x65]), &mut out),
        Err(RtpH264Error::MissingSequenceHeader)
    );
    p.set_avc_config(&cfg);
    // AUD, SPS', PPS', IDR in-band: the STAP-A carries the in-band sets.
    let sps2 = [0x67, 0x42, 0xC0, 0x1E, 0xAA];
    let pps2 = [0x68, 0xCE, 0x3C, 0x80];
    let mut avcc = Vec::new();
    for nal in [&[0x09, 0xF0][..], &sps2, &pps2, &[0x65, 0x88, 0x80]] {
        avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        avcc.extend_from_slice(nal);
    }
    p.packetize(90, &Bytes::from(avcc), &mut out).unwrap();
    assert_eq!(out.len(), 2);
    let mut stap = vec![0x78, 0, 5];
    stap.extend_from_slice(&sps2);
    stap.extend_from_slice(&[0, 4]);
    stap.extend_from_slice(&pps2);
    assert_eq!(&out[0].payload[..], &stap[..]);
    assert_eq!(&out[1].payload[..], &[0x65, 0x88, 0x80]);
    assert!(!out[0].marker && out[1].marker);
    assert_eq!(p.stats().dropped_nal_units, 1);
    // A truncated access unit emits nothing.
    let before = out.len();
    assert!(p.packetize(0, &Bytes::from_static(&[0, 0, 0, 9, 0x41]), &mut out).is_err());
    assert_eq!(out.len(), before);
    // MediaPacket conversion.
    let m = out[1].to_media_packet(7);
    assert_eq!((m.source_ssrc, m.sequence_number, m.marker), (7, 1, true));
}

/// Deterministic xorshift for the loss/reorder tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn reordering_within_the_window_is_transparent() {
    let clip = load("media/small.flv");
    let packets: Vec<_> = packetize(&clip, H264PacketizerConfig::default()).into_iter().flatten().collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Swap neighbours within windows of 8 packets.
    let mut shuffled = packets.clone();
    // (The first packet defines where the stream starts: keep it first.)
    for chunk in shuffled[1..].chunks_mut(8) {
        for i in (1..chunk.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            chunk.swap(i, j);
        }
    }
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let mut out = Vec::new();
    feed(&mut d, Instant::now(), &shuffled, &mut out);
    // Duplicates are ignored too.
    feed(&mut d, Instant::now(), &packets[packets.len() - 3..], &mut out);
    let aus = access_units(&out);
    assert_eq!(aus.len(), clip.frames.len());
    for (au, f) in aus.iter().zip(&clip.frames) {
        assert_eq!(&au.avcc()[..], &f.expected_avcc[..]);
    }
    assert_eq!(d.stats().lost, 0);
    assert_eq!(d.stats().late_or_duplicate, 3);
    assert!(!out.contains(&DepacketizerOutput::NeedKeyframe));
}

/// Feeds `packets` with every packet for which `drop` is true removed, one
/// packet per millisecond, and checks the output never contains a frame
/// that could be broken: every access unit equals the original, and each
/// non-key access unit follows its predecessor in the stream.
fn lossy_run(
    clip: &Clip,
    packets: &[H264RtpPacket],
    mut drop: impl FnMut(usize, &H264RtpPacket) -> bool,
) -> (Vec<DepacketizerOutput>, DepacketizerStats) {
    let start = Instant::now();
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        d.handle_timeout(now);
        if !drop(i, p) {
            d.handle_packet(now, p.sequence_number, p.timestamp, p.marker, p.payload.clone());
        }
        drain(&mut d, &mut out);
    }
    d.handle_timeout(start + Duration::from_secs(10));
    drain(&mut d, &mut out);
    let by_ts: HashMap<u32, usize> = clip.frames.iter().enumerate().map(|(i, f)| (f.timestamp_ms * 90, i)).collect();
    let mut previous: Option<usize> = None;
    for au in access_units(&out) {
        let i = by_ts[&au.rtp_timestamp];
        let f = &clip.frames[i];
        assert_eq!(&au.avcc()[..], &f.expected_avcc[..], "frame {i} intact");
        assert_eq!(au.keyframe, f.keyframe);
        if !au.keyframe {
            assert_eq!(previous, Some(i - 1), "frame {i} follows its reference");
        }
        previous = Some(i);
    }
    (out, d.stats().clone())
}

#[test]
fn loss_skips_to_the_next_idr() {
    let clip = load("media/small.flv");
    let per_frame = packetize(&clip, H264PacketizerConfig::default());
    let packets: Vec<_> = per_frame.iter().flatten().cloned().collect();
    // Lose the (only) packet of frame 5, a P frame of the first GOP.
    let victim = per_frame[5][0].sequence_number;
    let (out, stats) = lossy_run(&clip, &packets, |_, p| p.sequence_number == victim);
    assert_eq!(stats.lost, 1);
    let aus = access_units(&out);
    let emitted: Vec<u32> = aus.iter().map(|a| a.rtp_timestamp / 90).collect();
    let second_idr = clip.frames.iter().rposition(|f| f.keyframe).unwrap();
    // Frames 0-4, then nothing until the second IDR, then everything.
    assert_eq!(emitted.len(), 5 + clip.frames.len() - second_idr);
    assert!(aus[5].keyframe);
    let need = out.iter().position(|o| *o == DepacketizerOutput::NeedKeyframe).unwrap();
    let fifth = out
        .iter()
        .position(|o| matches!(o, DepacketizerOutput::AccessUnit(a) if a.rtp_timestamp == aus[4].rtp_timestamp))
        .unwrap();
    assert!(need > fifth, "keyframe requested once the loss is known");

    // Losing the STAP-A of the second IDR, or its first or last FU-A,
    // withholds it: the stream stays withheld to the end.
    let idr = &per_frame[second_idr];
    for victim in [idr[0].sequence_number, idr[1].sequence_number, idr[idr.len() - 1].sequence_number] {
        let (out, stats) = lossy_run(&clip, &packets, |_, p| {
            p.sequence_number == victim || p.sequence_number == per_frame[5][0].sequence_number
        });
        assert_eq!(stats.lost, 2);
        if victim == idr[0].sequence_number {
            // Only the STAP-A was lost: the IDR starts clean and the SPS/PPS
            // are known from the first IDR, so it is usable.
            assert_eq!(access_units(&out).len(), 5 + clip.frames.len() - second_idr);
        } else {
            assert_eq!(access_units(&out).len(), 5, "victim {victim}");
        }
    }
}

#[test]
fn random_loss_and_reorder_never_emit_broken_frames() {
    let clip = load("media/small.flv");
    let packets: Vec<_> = packetize(&clip, H264PacketizerConfig { max_payload_size: 300, ..Default::default() })
        .into_iter()
        .flatten()
        .collect();
    for seed in 1..200u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut shuffled = packets.clone();
        for i in 1..shuffled.len() {
            if rng.next().is_multiple_of(10) {
                shuffled.swap(i - 1, i);
            }
        }
        let loss = 1 + seed % 20;
        let mut rng2 = Rng(seed);
        // lossy_run checks every emitted frame.
        let (_, stats) = lossy_run(&clip, &shuffled, |i, _| i > 0 && rng2.next() % 100 < loss);
        assert!(stats.lost > 0 || loss < 5, "seed {seed}");
    }
}

#[test]
fn joining_mid_gop_waits_for_an_idr_and_asks_for_it() {
    let clip = load("media/small.flv");
    let per_frame = packetize(&clip, H264PacketizerConfig::default());
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let start = Instant::now();
    let mut out = Vec::new();
    // Start in the middle of the first IDR (its FU-A continuation), then P frames.
    feed(&mut d, start, &per_frame[0][3..], &mut out);
    feed(&mut d, start, &per_frame[1], &mut out);
    assert_eq!(out, vec![DepacketizerOutput::NeedKeyframe]);
    // Requests repeat at most once per interval while waiting.
    feed(&mut d, start + Duration::from_millis(500), &per_frame[2], &mut out);
    assert_eq!(out.len(), 1);
    feed(&mut d, start + Duration::from_millis(1000), &per_frame[3], &mut out);
    assert_eq!(out.len(), 2);
    let second_idr = clip.frames.iter().rposition(|f| f.keyframe).unwrap();
    // Skip ahead to the second IDR (a sequence jump within the window).
    out.clear();
    let t = start + Duration::from_millis(1100);
    for f in &per_frame[second_idr..] {
        feed(&mut d, t, f, &mut out);
    }
    // The gap before the IDR is given up on after the reorder delay.
    assert!(out.is_empty());
    d.handle_timeout(t + Duration::from_millis(100));
    drain(&mut d, &mut out);
    assert!(matches!(out[0], DepacketizerOutput::ParameterSets { .. }), "{:?}", out[0]);
    let aus = access_units(&out);
    assert!(aus[0].keyframe);
    assert_eq!(aus.len(), clip.frames.len() - second_idr);
}

#[test]
fn a_gap_is_given_up_after_the_reorder_delay() {
    let clip = load("media/small.flv");
    let per_frame = packetize(&clip, H264PacketizerConfig::default());
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let t0 = Instant::now();
    let mut out = Vec::new();
    feed(&mut d, t0, &per_frame[0], &mut out);
    feed(&mut d, t0, &per_frame[1], &mut out);
    assert_eq!(access_units(&out).len(), 2);
    assert_eq!(d.poll_timeout(), None);
    // Frame 3 arrives, frame 2 does not.
    let t1 = t0 + Duration::from_millis(40);
    feed(&mut d, t1, &per_frame[3], &mut out);
    assert_eq!(d.poll_timeout(), Some(t1 + Duration::from_millis(100)));
    d.handle_timeout(t1 + Duration::from_millis(99));
    drain(&mut d, &mut out);
    assert_eq!(access_units(&out).len(), 2);
    assert!(!out.contains(&DepacketizerOutput::NeedKeyframe));
    d.handle_timeout(t1 + Duration::from_millis(100));
    drain(&mut d, &mut out);
    assert_eq!(out.last(), Some(&DepacketizerOutput::NeedKeyframe));
    assert_eq!(access_units(&out).len(), 2, "frame 3 withheld");
    assert_eq!(d.stats().lost, 1);
    assert_eq!(d.poll_timeout(), None);
    // The late packet is dropped.
    feed(&mut d, t1, &per_frame[2], &mut out);
    assert_eq!(d.stats().late_or_duplicate, 1);
}

#[test]
fn sequence_numbers_wrap_and_restarts_recover() {
    let clip = load("media/small.flv");
    let packets: Vec<_> =
        packetize(&clip, H264PacketizerConfig { initial_sequence_number: 65_500, ..Default::default() })
            .into_iter()
            .flatten()
            .collect();
    let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
    let mut out = Vec::new();
    let now = Instant::now();
    feed(&mut d, now, &packets, &mut out);
    assert_eq!(access_units(&out).len(), clip.frames.len());
    // The publisher restarts with a lower sequence number space: after a
    // window of "late" packets the depacketizer starts over.
    out.clear();
    let restarted: Vec<_> =
        packetize(&clip, H264PacketizerConfig { initial_sequence_number: 1000, ..Default::default() })
            .into_iter()
            .flatten()
            .collect();
    feed(&mut d, now, &restarted, &mut out);
    feed(&mut d, now, &restarted, &mut out);
    assert!(out.contains(&DepacketizerOutput::NeedKeyframe));
    assert!(access_units(&out).iter().any(|a| a.keyframe));
    // reset() also starts over at once.
    d.reset();
    out.clear();
    feed(&mut d, now, &packets, &mut out);
    assert_eq!(access_units(&out).len(), clip.frames.len());
}

#[test]
fn malformed_payloads_never_panic() {
    let mut d = H264Depacketizer::new(H264DepacketizerConfig { max_access_unit_size: 2000, ..Default::default() });
    let mut rng = Rng(42);
    let start = Instant::now();
    for i in 0..20_000u32 {
        let len = (rng.next() % 40) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(b) = payload.first_mut() {
            // Mostly valid-looking types.
            *b = (*b & 0x60) | [1, 5, 7, 8, 24, 28, 25, 29, 0, 31][(rng.next() % 10) as usize];
        }
        d.handle_packet(
            start + Duration::from_millis(u64::from(i)),
            (rng.next() % 70) as u16 + i as u16,
            (i / 5) * 3000,
            rng.next().is_multiple_of(4),
            Bytes::from(payload),
        );
        while d.poll_output().is_some() {}
    }
    assert!(d.stats().malformed > 0);
    for len in 0..60 {
        let _ = avc_decoder_configuration_record(&hex_record()[8..8 + len.min(23)], &[0x68, 1]);
    }
}

#[test]
fn sequence_header_builder_checks_its_input() {
    assert!(avc_decoder_configuration_record(&[0x68, 1, 2, 3], &[0x68]).is_err());
    assert!(avc_decoder_configuration_record(&[0x67, 66, 0, 30], &[0x67]).is_err());
    // Baseline: no High profile extension.
    let rec = avc_decoder_configuration_record(&[0x67, 66, 0xC0, 30, 0xAA], &[0x68, 0xCE]).unwrap();
    assert_eq!(rec, [1, 66, 0xC0, 30, 0xFF, 0xE1, 0, 5, 0x67, 66, 0xC0, 30, 0xAA, 1, 0, 2, 0x68, 0xCE]);
    let parsed = AvcConfig::parse(&rec).unwrap();
    assert_eq!(parsed.nalu_length_size, 4);
    assert_eq!(avc_frame_tag_body(&[1, 2], false, -1), [0x27, 1, 0xFF, 0xFF, 0xFF, 1, 2]);
    assert_eq!(rtp_timestamp_90k(1000, 40), 93_600);
    assert_eq!(rtp_timestamp_90k(0, -40), (-3600i32) as u32);
    assert_eq!(rtp_timestamp_90k(u32::MAX, 0), (u64::from(u32::MAX) * 90) as u32);
}

#[test]
fn b_frames_are_detected_in_flv() {
    for (file, want) in [("media/small.flv", false), ("media/small_bframes.flv", true)] {
        let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        reader.handle_input(&testdata(file));
        let mut tags = Vec::new();
        while let Some(tag) = reader.poll_tag().unwrap() {
            if tag.tag_type == TagType::Video {
                tags.push((tag.timestamp_ms, tag.body));
            }
        }
        assert_eq!(flv_video_uses_b_frames(tags.iter().map(|(ts, b)| (*ts, &b[..]))), want, "{file}");
    }
    let mut d = BFrameDetector::new();
    // A constant composition offset is not reordering.
    assert!(!d.observe_frame(0, 80));
    assert!(!d.observe_frame(40, 80));
    // A picture presented before an earlier-decoded one is.
    assert!(d.observe_frame(80, 0));
    assert!(!d.observe_frame(120, 80), "reported once");
    assert!(d.has_b_frames());
    assert_eq!(d.frames(), 4);
}

/// ffmpeg decodes the depacketized stream, with loss injected, without a
/// single error: skipping to the IDR leaves nothing broken. Skipped when
/// ffmpeg is not installed.
#[test]
fn ffmpeg_decodes_the_depacketized_stream_with_loss() {
    use crate::flv::{file_header, write_tag};
    if std::process::Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!("ffmpeg not found: skipped");
        return;
    }
    let clip = load("media/small.flv");
    let per_frame = packetize(&clip, H264PacketizerConfig::default());
    let packets: Vec<_> = per_frame.iter().flatten().cloned().collect();
    let victim = per_frame[3][0].sequence_number;
    let (out, _) = lossy_run(&clip, &packets, |_, p| p.sequence_number == victim);
    let mut flv = file_header(false, true).to_vec();
    let mut frames = 0;
    for o in &out {
        match o {
            DepacketizerOutput::ParameterSets { sps, pps } => {
                let body = avc_sequence_header_tag_body(sps, pps).unwrap();
                write_tag(&mut flv, TagType::Video, 0, &body).unwrap();
            }
            DepacketizerOutput::AccessUnit(au) => {
                frames += 1;
                write_tag(&mut flv, TagType::Video, au.rtp_timestamp / 90, &au.flv_tag_body).unwrap();
            }
            _ => {}
        }
    }
    let path = std::env::temp_dir().join(format!("rtp_h264_{}.flv", std::process::id()));
    std::fs::write(&path, &flv).unwrap();
    let result = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success() && stderr.trim().is_empty(), "ffmpeg: {stderr}");
    assert_eq!(frames, 3 + clip.frames.len() - clip.frames.iter().rposition(|f| f.keyframe).unwrap());
}

/// An IDR of two slices, each in its own single NAL unit packet: losing the
/// packet of the first slice (first_mb_in_slice 0) between access units
/// leaves an access unit that looks whole but is not: it is withheld.
#[test]
fn idr_missing_its_first_slice_is_withheld() {
    let cfg = AvcConfig::parse(&hex_record()).unwrap();
    let mut p = H264Packetizer::new(H264PacketizerConfig::default());
    p.set_avc_config(&cfg);
    // first_mb_in_slice: ue(0) = "1", ue(40) = "00000101001".
    let slice0 = [0x65, 0x88, 0x84, 0x00];
    let slice1 = [0x65, 0x05, 0x28, 0x84];
    let p_slice = [0x41, 0x9A, 0x02];
    let au = |nals: &[&[u8]]| {
        let mut avcc = Vec::new();
        for nal in nals {
            avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            avcc.extend_from_slice(nal);
        }
        Bytes::from(avcc)
    };
    let mut packets = Vec::new();
    for (i, nals) in [&[&slice0[..], &slice1[..]][..], &[&p_slice[..]], &[&slice0[..], &slice1[..]], &[&p_slice[..]]]
        .iter()
        .enumerate()
    {
        let mut out = Vec::new();
        p.packetize(i as u32 * 3000, &au(nals), &mut out).unwrap();
        packets.push(out);
    }
    // Each IDR: STAP-A, slice 0, slice 1 (marker).
    assert_eq!(packets[2].len(), 3);
    let t0 = Instant::now();
    let run = |lose: &[usize]| {
        let mut d = H264Depacketizer::new(H264DepacketizerConfig::default());
        let mut out = Vec::new();
        for (i, pk) in packets.iter().flatten().enumerate() {
            if !lose.contains(&i) {
                d.handle_packet(t0, pk.sequence_number, pk.timestamp, pk.marker, pk.payload.clone());
            }
        }
        d.handle_timeout(t0 + Duration::from_secs(1));
        drain(&mut d, &mut out);
        access_units(&out).iter().map(|a| a.rtp_timestamp).collect::<Vec<_>>()
    };
    assert_eq!(run(&[]), [0, 3000, 6000, 9000]);
    // Lose the P frame: the second IDR recovers.
    assert_eq!(run(&[3]), [0, 6000, 9000]);
    // Lose the P frame and the second IDR's STAP-A: still fine (known SPS/PPS).
    assert_eq!(run(&[3, 4]), [0, 6000, 9000]);
    // Lose the second IDR's first slice (and the STAP-A): withheld, and so
    // is the P frame after it.
    assert_eq!(run(&[4, 5]), [0, 3000]);
    assert_eq!(run(&[5]), [0, 3000]);
    // Joining at the second slice of the first IDR: nothing until a clean IDR.
    assert_eq!(run(&[0, 1]), [6000, 9000]);
}

/// The fuzz body on small.flv's access units with many loss patterns, and
/// on random bytes.
#[test]
fn fuzz_body_holds_on_real_and_random_input() {
    let clip = load("media/small.flv");
    let mut data = vec![40, 0];
    for f in clip.frames.iter().take(20) {
        let v = VideoTag::parse(&f.body).unwrap();
        data.extend_from_slice(&(v.data.len() as u16).to_be_bytes());
        data.extend_from_slice(v.data);
    }
    for seed in 0..=255u8 {
        data[1] = seed;
        data[0] = seed.wrapping_mul(7);
        crate::fuzz::rtp_h264::fuzz_rtp_h264(&data, Instant::now());
    }
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let len = (rng.next() % 300) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        crate::fuzz::rtp_h264::fuzz_rtp_h264(&bytes, Instant::now());
    }
}
