use super::*;

#[test]
fn check_value() {
    // The CRC-32/MPEG-2 catalogue check value.
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    assert_eq!(crc32_mpeg2(b""), 0xFFFF_FFFF);
}

#[test]
fn ffmpeg_pat_vector() {
    // The PAT section ffmpeg writes (program 1 → PMT PID 0x1000).
    let pat = [0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00];
    assert_eq!(crc32_mpeg2(&pat), 0x2AB1_04B2);
    let mut with_crc = pat.to_vec();
    with_crc.extend_from_slice(&0x2AB1_04B2u32.to_be_bytes());
    assert_eq!(crc32_mpeg2(&with_crc), 0);
}
