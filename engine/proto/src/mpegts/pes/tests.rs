use super::*;

#[test]
fn timestamp_round_trip() {
    for ts in [0, 1, 90_000, 0x1_0000_0000, TIMESTAMP_MASK, 0x1_2345_6789, 126_000] {
        for prefix in [0b0010, 0b0011, 0b0001] {
            let b = encode_timestamp(prefix, ts);
            assert_eq!(b[0] >> 4, prefix);
            assert_eq!(b[0] & 1, 1);
            assert_eq!(b[2] & 1, 1);
            assert_eq!(b[4] & 1, 1);
            assert_eq!(decode_timestamp(b), ts);
        }
    }
    // From an ffmpeg-written TS: PTS 144000 then DTS 126000 (1.4 s, its
    // default start), as `31 00 09 65 01 11 00 07 d8 61`.
    assert_eq!(encode_timestamp(0b0011, 144_000), [0x31, 0x00, 0x09, 0x65, 0x01]);
    assert_eq!(encode_timestamp(0b0001, 126_000), [0x11, 0x00, 0x07, 0xD8, 0x61]);
}

#[test]
fn ms_conversion_wraps() {
    assert_eq!(ms_to_90k(1000), 90_000);
    assert_eq!(ms_to_90k(-1), (1 << 33) - 90);
    let wrap_ms = (1i64 << 33) / 90 + 1;
    assert!(ms_to_90k(wrap_ms) < 90);
}

#[test]
fn header_layout() {
    let mut out = Vec::new();
    write_pes_header(&mut out, STREAM_ID_AUDIO, 126_000, Some(126_000), 100, false);
    assert_eq!(&out[..9], &[0, 0, 1, 0xC0, 0, 108, 0x84, 0x80, 5]);
    assert_eq!(out.len(), 14);
    out.clear();
    write_pes_header(&mut out, STREAM_ID_VIDEO, 129_600, Some(126_000), 100, true);
    assert_eq!(&out[..9], &[0, 0, 1, 0xE0, 0, 0, 0x84, 0xC0, 10]);
    assert_eq!(decode_timestamp(out[9..14].try_into().unwrap()), 129_600);
    assert_eq!(decode_timestamp(out[14..19].try_into().unwrap()), 126_000);
    out.clear();
    write_pes_header(&mut out, STREAM_ID_VIDEO, 0, None, 70_000, false);
    assert_eq!(&out[4..6], &[0, 0], "too long for the 16-bit length");
}
