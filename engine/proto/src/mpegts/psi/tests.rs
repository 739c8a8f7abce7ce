use super::*;
use crate::codec::test_util::hex;

#[test]
fn matches_ffmpeg_sections() {
    // Sections from an ffmpeg 5.1 `-f mpegts` file with H.264 + AAC.
    assert_eq!(pat_section(1, 1, 0x1000, 0), hex("00b00d0001c100000001f0002ab104b2"));
    let streams = [PmtStream { stream_type: 0x1B, pid: 0x100 }, PmtStream { stream_type: 0x0F, pid: 0x101 }];
    assert_eq!(pmt_section(1, 0, 0x100, &streams), hex("02b0170001c10000e100f0001be100f0000fe101f0002f44b99b"));
}

#[test]
fn sections_check_to_zero() {
    let s = pmt_section(1, 7, 0x101, &[PmtStream { stream_type: 0x0F, pid: 0x101 }]);
    assert_eq!(crc32_mpeg2(&s), 0);
    assert_eq!(s[5], 0xC0 | (7 << 1) | 1);
    assert_eq!(usize::from(s[2]), s.len() - 3);
}
