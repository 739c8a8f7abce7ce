use super::*;

fn check_packets(out: &[u8], pid: u16, payload: &[u8], first_cc: u8) {
    assert_eq!(out.len() % TS_PACKET_LEN, 0);
    let mut collected = Vec::new();
    for (i, p) in out.chunks(TS_PACKET_LEN).enumerate() {
        assert_eq!(p[0], SYNC_BYTE);
        assert_eq!((u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]), pid);
        assert_eq!(p[1] & 0x40 != 0, i == 0, "PUSI only on the first");
        assert_eq!(p[3] & 0x0F, (first_cc + i as u8) & 0x0F);
        let mut pos = 4;
        if p[3] & 0x20 != 0 {
            pos += 1 + usize::from(p[4]);
        }
        collected.extend_from_slice(&p[pos..]);
    }
    assert_eq!(collected, payload);
}

#[test]
fn every_payload_length_packs_exactly() {
    for len in [1, 2, 100, 170, 176, 177, 178, 182, 183, 184, 185, 367, 368, 369, 1000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for flags in [
            FirstPacketFlags::default(),
            FirstPacketFlags { pcr: Some(0x1_2345_6789), random_access: true, discontinuity: false },
            FirstPacketFlags { random_access: true, ..Default::default() },
        ] {
            let mut out = Vec::new();
            let mut cc = 14;
            write_pes_packets(&mut out, 0x101, &mut cc, flags, &payload);
            check_packets(&out, 0x101, &payload, 14);
            assert_eq!(usize::from(cc), (14 + out.len() / TS_PACKET_LEN) % 16);
        }
    }
}

#[test]
fn pcr_and_random_access_encoding() {
    let mut out = Vec::new();
    let mut cc = 0;
    let flags = FirstPacketFlags { pcr: Some(0x1_2345_6789), random_access: true, discontinuity: false };
    write_pes_packets(&mut out, 0x100, &mut cc, flags, &[0xAB; 500]);
    assert_eq!(&out[..4], &[0x47, 0x41, 0x00, 0x30]);
    assert_eq!(out[4], 7, "adaptation_field_length");
    assert_eq!(out[5], 0x50, "random_access_indicator | PCR_flag");
    let b = &out[6..12];
    let base = (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | u64::from(b[4] >> 7);
    assert_eq!(base, 0x1_2345_6789);
    assert_eq!(b[4] & 0x7E, 0x7E, "reserved bits set");
}

#[test]
fn section_packet_is_padded() {
    let mut out = Vec::new();
    let mut cc = 15;
    write_section_packet(&mut out, 0, &mut cc, &[1, 2, 3]);
    assert_eq!(out.len(), TS_PACKET_LEN);
    assert_eq!(&out[..8], &[0x47, 0x40, 0x00, 0x1F, 0x00, 1, 2, 3]);
    assert!(out[8..].iter().all(|&b| b == 0xFF));
    assert_eq!(cc, 0);
}
