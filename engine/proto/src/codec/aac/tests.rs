use super::*;

#[test]
fn parses_legacy_aac_tags() {
    // From testdata/media/small.flv: AAC, 44 kHz flag, 16-bit, stereo flag,
    // sequence header with ASC 0x1188 (LC, 48 kHz, mono).
    let body = [0xAF, 0x00, 0x11, 0x88, 0x56, 0xE5, 0x00];
    let tag = AudioTag::parse(&body).unwrap();
    assert_eq!(tag.codec, AudioCodec::Aac);
    assert!(tag.is_sequence_header());
    assert_eq!((tag.sound_rate_hz, tag.sample_bits, tag.stereo), (44_100, 16, true));
    let asc = AudioSpecificConfig::parse(tag.data).unwrap();
    assert_eq!(asc.object_type, 2);
    assert_eq!(asc.sampling_frequency_index, Some(3));
    assert_eq!((asc.sample_rate, asc.channel_config, asc.channels()), (48_000, 1, Some(1)));
    assert_eq!(asc.frame_length, 1024);
    assert_eq!(asc.frame_duration_90k(), 1920);
    assert_eq!(asc.codecs_string(), "mp4a.40.2");

    let raw = AudioTag::parse(&[0xAF, 0x01, 0x21, 0x10]).unwrap();
    assert_eq!((raw.packet, raw.data), (AudioPacket::Frame, &[0x21, 0x10][..]));
    let mp3 = AudioTag::parse(&[0x2E, 0xFF, 0xFB]).unwrap();
    assert_eq!((mp3.codec, mp3.sound_rate_hz, mp3.stereo), (AudioCodec::Mp3, 44_100, false));
    assert_eq!(mp3.data, &[0xFF, 0xFB]);
    let pcmu = AudioTag::parse(&[0x82, 1]).unwrap();
    assert_eq!((pcmu.codec, pcmu.sound_rate_hz), (AudioCodec::G711MuLaw, 5_512));
    assert_eq!(AudioTag::parse(&[0xC0]), Err(CodecError::Unsupported("SoundFormat")));
    assert_eq!(AudioTag::parse(&[0xAF]), Err(CodecError::Truncated));
}

#[test]
fn parses_enhanced_audio() {
    // ExHeader | SequenceStart, "Opus", OpusHead(2 channels, 48 kHz).
    let mut body = vec![0x90];
    body.extend_from_slice(b"Opus");
    body.extend_from_slice(b"OpusHead");
    body.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]);
    let tag = AudioTag::parse(&body).unwrap();
    assert!(tag.enhanced && tag.is_sequence_header());
    assert_eq!(tag.codec, AudioCodec::Opus);
    let head = OpusHead::parse(tag.data).unwrap();
    assert_eq!((head.channels, head.input_sample_rate), (2, 48_000));

    let mut body = vec![0x91];
    body.extend_from_slice(b"mp4a");
    body.push(0x21);
    let tag = AudioTag::parse(&body).unwrap();
    assert_eq!((tag.codec, tag.packet, tag.data), (AudioCodec::Aac, AudioPacket::Frame, &[0x21][..]));

    // Multitrack ManyTracks, CodedFrames, ".mp3", track 1 of 2 bytes, then junk.
    let mut body = vec![0x95, 0x11];
    body.extend_from_slice(b".mp3");
    body.extend_from_slice(&[1, 0, 0, 2, 0xAA, 0xBB, 2, 0, 0, 1, 0xCC]);
    let tag = AudioTag::parse(&body).unwrap();
    assert_eq!((tag.codec, tag.track_id, tag.data), (AudioCodec::Mp3, 1, &[0xAA, 0xBB][..]));
}

#[test]
fn asc_escape_explicit_rate_and_sbr() {
    // AOT 31 escape → 32 + 10 = 42; index 15 → explicit 0x00BB80 (48000); ch 2.
    // bits: 11111 001010 1111 000000001011101110000000 0010
    let asc = AudioSpecificConfig::parse(&bits_to_bytes("1111100101011110000000010111011100000000010")).unwrap();
    assert_eq!(asc.object_type, 42);
    assert_eq!(asc.sampling_frequency_index, None);
    assert_eq!((asc.sample_rate, asc.channel_config), (48_000, 2));
    assert!(asc.adts_header(10).is_err());

    // HE-AAC explicit: AOT 5, core 24 kHz (6), ch 2, ext 48 kHz (3), core AOT 2.
    // bits: 00101 0110 0010 0011 00010 0
    let asc = AudioSpecificConfig::parse(&bits_to_bytes("001010110001000110001000")).unwrap();
    assert!(asc.sbr && !asc.parametric_stereo);
    assert_eq!((asc.object_type, asc.core_object_type), (5, 2));
    assert_eq!((asc.sample_rate, asc.output_sample_rate), (24_000, 48_000));
    let h = asc.adts_header(0).unwrap();
    assert_eq!(h[2] >> 6, 1, "ADTS profile is LC");
    assert_eq!((h[2] >> 2) & 0x0F, 6, "ADTS carries the core rate");

    // 960-sample frames.
    let asc = AudioSpecificConfig::parse(&bits_to_bytes("0001000110001100")).unwrap();
    assert_eq!(asc.frame_length, 960);
    assert!(AudioSpecificConfig::parse(&[0x16, 0x80]).is_err(), "reserved index 13");
    assert!(AudioSpecificConfig::parse(&[0x12]).is_err());
}

#[test]
fn adts_header_fields() {
    let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap(); // LC 44.1k stereo
    let h = asc.adts_header(100).unwrap();
    // Known-good header for LC/44100/stereo/107 bytes as written by ffmpeg.
    assert_eq!(h, [0xFF, 0xF1, 0x50, 0x80, 0x0D, 0x7F, 0xFC]);
    let len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    assert_eq!(len, 107);
    let mut out = Vec::new();
    asc.write_adts(&[1, 2, 3], &mut out).unwrap();
    assert_eq!(out.len(), 10);
    assert_eq!(asc.adts_header(8185), Err(CodecError::TooLarge("ADTS frame")));
    assert!(asc.adts_header(8184).is_ok());
}

#[test]
fn malformed_never_panics() {
    let mut seed = 99u32;
    for _ in 0..5000 {
        let mut b = Vec::new();
        for _ in 0..(seed % 20) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            b.push((seed >> 16) as u8);
        }
        if let Ok(tag) = AudioTag::parse(&b) {
            let _ = AudioSpecificConfig::parse(tag.data);
            let _ = OpusHead::parse(tag.data);
        }
        let _ = AudioSpecificConfig::parse(&b);
    }
}

fn bits_to_bytes(bits: &str) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, c) in bits.chars().enumerate() {
        if c == '1' {
            out[i / 8] |= 0x80 >> (i % 8);
        }
    }
    out
}
