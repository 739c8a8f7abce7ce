use super::*;
use crate::codec::test_util::hex;

/// The sequence header tag body of `testdata/media/small.flv`.
const SEQ_HEADER: &str =
    "17000000000164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800";

#[test]
fn parses_legacy_avc_sequence_header() {
    let body = hex(SEQ_HEADER);
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!(tag.codec, VideoCodec::Avc);
    assert_eq!(tag.frame_type, VideoFrameType::Key);
    assert!(tag.is_sequence_header());
    assert!(!tag.is_keyframe());
    assert!(!tag.enhanced);
    let cfg = AvcConfig::parse(tag.data).unwrap();
    assert_eq!((cfg.profile, cfg.compatibility, cfg.level), (100, 0, 12));
    assert_eq!(cfg.nalu_length_size, 4);
    assert_eq!(cfg.sps.len(), 1);
    // The trailing fdf8f800 is the High profile extension (chroma format, bit depths).
    assert_eq!(cfg.pps, vec![hex("68ef0672c0")]);
    let sps = cfg.sps_info.as_ref().unwrap();
    assert_eq!((sps.width, sps.height, sps.fps), (320, 240, Some(15.0)));
    assert_eq!(cfg.codecs_string(), "avc1.64000c");
    let mut out = Vec::new();
    cfg.write_annexb_parameter_sets(&mut out);
    assert_eq!(&out[..5], &[0, 0, 0, 1, 0x67]);
    assert_eq!(out.len(), 4 + 23 + 4 + 5);
}

#[test]
fn parses_frames_and_composition_time() {
    // Inter frame, NALU, composition time -2 (0xFFFFFE), one 2-byte NAL.
    let body = [0x27, 0x01, 0xFF, 0xFF, 0xFE, 0, 0, 0, 2, 0x41, 0x9A];
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!(tag.frame_type, VideoFrameType::Inter);
    assert_eq!(tag.packet, VideoPacket::Frame);
    assert_eq!(tag.composition_time_ms, -2);
    assert!(!tag.is_keyframe());
    let key = [0x17, 0x01, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0x65];
    let tag = VideoTag::parse(&key).unwrap();
    assert!(tag.is_keyframe());
    assert_eq!(tag.composition_time_ms, 80);
    assert!(avcc_contains_idr(tag.data, 4));
    let eos = VideoTag::parse(&[0x17, 0x02, 0, 0, 0]).unwrap();
    assert_eq!(eos.packet, VideoPacket::EndOfSequence);
    let vp6 = VideoTag::parse(&[0x24, 0xAA]).unwrap();
    assert_eq!((vp6.codec, vp6.data), (VideoCodec::Vp6, &[0xAA][..]));
    let cmd = VideoTag::parse(&[0x57, 0x01]).unwrap();
    assert_eq!(cmd.packet, VideoPacket::Command(1));
}

#[test]
fn parses_enhanced_headers() {
    // IsExHeader | Key<<4 | SequenceStart, "hvc1", record...
    let mut body = vec![0x90];
    body.extend_from_slice(b"hvc1");
    body.extend_from_slice(&[1, 2, 3]);
    let tag = VideoTag::parse(&body).unwrap();
    assert!(tag.enhanced && tag.is_sequence_header());
    assert_eq!((tag.codec, tag.data), (VideoCodec::Hevc, &[1, 2, 3][..]));

    // Key | CodedFrames for avc1: SI24 composition time present.
    let mut body = vec![0x91];
    body.extend_from_slice(b"avc1");
    body.extend_from_slice(&[0, 0, 40, 0, 0, 0, 1, 0x65]);
    let tag = VideoTag::parse(&body).unwrap();
    assert!(tag.is_keyframe());
    assert_eq!(tag.composition_time_ms, 40);
    assert_eq!(tag.data, &[0, 0, 0, 1, 0x65]);

    // Inter | CodedFramesX for av01: no composition time.
    let mut body = vec![0xA3];
    body.extend_from_slice(b"av01");
    body.push(0x12);
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!((tag.codec, tag.packet), (VideoCodec::Av1, VideoPacket::Frame));
    assert_eq!(tag.data, &[0x12]);

    // vp09 CodedFrames: no composition time either.
    let mut body = vec![0x91];
    body.extend_from_slice(b"vp09");
    body.extend_from_slice(&[7, 8]);
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!((tag.codec, tag.data), (VideoCodec::Vp9, &[7, 8][..]));

    // ModEx (TimestampOffsetNano, 3 bytes) wrapping CodedFramesX.
    let mut body = vec![0x97, 2, 0x00, 0x01, 0x00, 0x03];
    body.extend_from_slice(b"avc1");
    body.push(0x41);
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!((tag.packet, tag.data), (VideoPacket::Frame, &[0x41][..]));

    // Multitrack, OneTrack, CodedFramesX, avc1, trackId 3.
    let mut body = vec![0x96, 0x03];
    body.extend_from_slice(b"avc1");
    body.extend_from_slice(&[3, 0x65]);
    let tag = VideoTag::parse(&body).unwrap();
    assert_eq!((tag.track_id, tag.data), (3, &[0x65][..]));

    // Unknown FourCC fails in a controlled way.
    let mut body = vec![0x90];
    body.extend_from_slice(b"xxxx");
    assert_eq!(VideoTag::parse(&body), Err(CodecError::Unsupported("video FourCC")));
}

#[test]
fn avcc_annexb_round_trip() {
    let avcc = [0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x65, 0x88, 0x84];
    let mut out = vec![0xEE];
    avcc_to_annexb(&avcc, 4, &mut out).unwrap();
    assert_eq!(out, [0xEE, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x65, 0x88, 0x84]);
    let nalus: Vec<_> = annexb_nalus(&out[1..]).collect();
    assert_eq!(nalus, vec![&[0x09, 0xF0][..], &[0x65, 0x88, 0x84][..]]);
    // 3-byte start codes and trailing zeros.
    let nalus: Vec<_> = annexb_nalus(&[0xFF, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 0, 0]).collect();
    assert_eq!(nalus, vec![&[0x67, 1][..], &[0x68][..]]);
    // Truncation leaves the output untouched.
    let mut out = vec![1];
    assert_eq!(avcc_to_annexb(&avcc[..12], 4, &mut out), Err(CodecError::Truncated));
    assert_eq!(out, [1]);
    let two: Vec<_> = avcc_nalus(&[0, 1, 0x41, 0, 1, 0x65], 2).collect();
    assert_eq!(two, vec![Ok(&[0x41][..]), Ok(&[0x65][..])]);
}

#[test]
fn malformed_never_panics() {
    let body = hex(SEQ_HEADER);
    for len in 0..body.len() {
        if let Ok(tag) = VideoTag::parse(&body[..len]) {
            let _ = AvcConfig::parse(tag.data);
        }
    }
    let mut seed = 7u32;
    for _ in 0..5000 {
        let mut b = Vec::new();
        for _ in 0..(seed % 24) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b.push((seed >> 16) as u8);
        }
        if let Ok(tag) = VideoTag::parse(&b) {
            let _ = AvcConfig::parse(tag.data);
            let _ = avcc_nalus(tag.data, 4).count();
        }
        let _ = annexb_nalus(&b).count();
        let _ = avcc_to_annexb(&b, (seed % 5) as u8, &mut Vec::new());
    }
}
