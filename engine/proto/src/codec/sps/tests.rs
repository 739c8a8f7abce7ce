use super::*;
use crate::codec::test_util::hex;

/// The SPS from `testdata/media/small.flv` (x264, High profile level 1.2,
/// 320x240, 15 fps in VUI timing: num_units_in_tick 1, time_scale 30).
const SPS_320X240: &str = "6764000cacb40a0fd80880000003008000000f078a1550";
/// The SPS from `testdata/media/small_bframes.flv` (High, 170x100 coded as
/// 176x112 with cropping, 25 fps).
const SPS_170X100: &str = "6764000bacd942cfe49f011000000300100000030320f1429960";

#[test]
fn parses_x264_high_profile_sps() {
    let sps = Sps::parse(&hex(SPS_320X240)).unwrap();
    assert_eq!(sps.profile_idc, 100);
    assert_eq!(sps.level_idc, 12);
    assert_eq!((sps.width, sps.height), (320, 240));
    assert!(sps.frame_mbs_only);
    assert_eq!(sps.fps, Some(15.0));
    let sps = Sps::parse(&hex(SPS_170X100)).unwrap();
    assert_eq!((sps.width, sps.height), (170, 100));
    assert_eq!(sps.fps, Some(25.0));
}

#[test]
fn baseline_sps_with_cropping() {
    // Hand-assembled baseline SPS: 1920x1080 (coded 1920x1088, crop bottom 4
    // units of 2 rows), no VUI. Bits after level_idc:
    // id ue(0)=1, log2_max_frame_num-4 ue(0)=1, poc_type ue(0)=1,
    // log2_max_poc_lsb-4 ue(0)=1, max_num_ref ue(1)=010, gaps 0,
    // width_mbs-1 ue(119)=0000001111000, height_mus-1 ue(67)=0000001000100,
    // frame_mbs_only 1, direct_8x8 1, cropping 1, l ue(0)=1, r 1, t 1,
    // b ue(4)=00101, vui 0, then stop bit.
    let bits = "11110100\
                0000001111000\
                0000001000100\
                111\
                11100101\
                0\
                1";
    let mut rbsp = vec![66u8, 0xC0, 40];
    let mut acc = 0u8;
    let mut n = 0;
    for c in bits.chars() {
        acc = (acc << 1) | u8::from(c == '1');
        n += 1;
        if n == 8 {
            rbsp.push(acc);
            acc = 0;
            n = 0;
        }
    }
    if n > 0 {
        rbsp.push(acc << (8 - n));
    }
    let sps = Sps::parse_rbsp(&rbsp).unwrap();
    assert_eq!(sps.profile_idc, 66);
    assert_eq!((sps.width, sps.height), (1920, 1080));
    assert_eq!(sps.fps, None);
}

#[test]
fn truncated_sps_never_panics() {
    let full = hex(SPS_320X240);
    for len in 0..full.len() {
        let _ = Sps::parse(&full[..len]);
    }
    // Size fields come before the VUI: a cut inside the VUI keeps the size.
    let sps = Sps::parse(&full[..full.len() - 6]).unwrap();
    assert_eq!((sps.width, sps.height, sps.fps), (320, 240, None));
    assert!(Sps::parse(&[0x68, 0x64]).is_err());
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut nal = vec![0x67];
        for _ in 0..(seed % 40) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            nal.push((seed >> 16) as u8);
        }
        let _ = Sps::parse(&nal);
    }
}
