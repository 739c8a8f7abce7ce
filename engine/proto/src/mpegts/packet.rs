//! Transport stream packets (ISO/IEC 13818-1, 2.4.3.2 `transport_packet()`,
//! 2.4.3.4 `adaptation_field()`): 188 bytes, sync byte 0x47, a 13-bit PID, a
//! 4-bit continuity counter per PID, payload either PES data or PSI sections.

/// Bytes in a transport packet.
pub const TS_PACKET_LEN: usize = 188;

/// The sync byte that opens every packet.
pub const SYNC_BYTE: u8 = 0x47;

/// Bytes of the fixed packet header.
const HEADER_LEN: usize = 4;

/// What to signal in the adaptation field of the first packet of a PES.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirstPacketFlags {
    /// `PCR_base` in 90 kHz units (33 bits; `PCR_extension` is written as 0).
    pub pcr: Option<u64>,
    /// `random_access_indicator`: the PES starts a random access point.
    pub random_access: bool,
    /// `discontinuity_indicator`: the time base or continuity restarts here.
    pub discontinuity: bool,
}

/// The next continuity counter value (4 bits, wrapping).
fn bump(cc: &mut u8) -> u8 {
    let now = *cc & 0x0F;
    *cc = (now + 1) & 0x0F;
    now
}

/// Encodes `program_clock_reference_base` (33 bits), 6 reserved bits and a
/// zero `program_clock_reference_extension` (2.4.3.5).
fn pcr_bytes(base: u64) -> [u8; 6] {
    let base = base & 0x1_FFFF_FFFF;
    [(base >> 25) as u8, (base >> 17) as u8, (base >> 9) as u8, (base >> 1) as u8, (((base & 1) as u8) << 7) | 0x7E, 0]
}

/// Appends the packets carrying one PES packet (`pes`, header included) on
/// `pid`. The first packet has `payload_unit_start_indicator` set and the
/// adaptation field for `flags`; the last is padded with adaptation field
/// stuffing (2.4.3.5: stuffing bytes 0xFF) so the PES ends exactly at a
/// packet boundary. `cc` is the PID's continuity counter, advanced per packet.
pub fn write_pes_packets(out: &mut Vec<u8>, pid: u16, cc: &mut u8, flags: FirstPacketFlags, pes: &[u8]) {
    out.reserve(pes.len().div_ceil(TS_PACKET_LEN - HEADER_LEN - 8) * TS_PACKET_LEN);
    let mut rest = pes;
    let mut first = true;
    while first || !rest.is_empty() {
        // Adaptation field content after its length byte: flags, PCR, stuffing.
        let mut af = [0u8; TS_PACKET_LEN];
        let mut af_len = 0usize;
        let mut has_af = false;
        if first && (flags.pcr.is_some() || flags.random_access || flags.discontinuity) {
            has_af = true;
            af[0] = (u8::from(flags.discontinuity) << 7)
                | (u8::from(flags.random_access) << 6)
                | (u8::from(flags.pcr.is_some()) << 4);
            af_len = 1;
            if let Some(pcr) = flags.pcr {
                af[1..7].copy_from_slice(&pcr_bytes(pcr));
                af_len = 7;
            }
        }
        let overhead = HEADER_LEN + if has_af { 1 + af_len } else { 0 };
        let room = TS_PACKET_LEN - overhead;
        if rest.len() < room {
            let mut stuffing = room - rest.len();
            if !has_af {
                // Opening an adaptation field costs its length byte; a lone
                // length byte of 0 is a valid 1-byte field.
                has_af = true;
                stuffing -= 1;
                if stuffing > 0 {
                    af[0] = 0; // no flags
                    af_len = 1;
                    stuffing -= 1;
                }
            }
            af[af_len..af_len + stuffing].fill(0xFF);
            af_len += stuffing;
        }
        let take = rest.len().min(TS_PACKET_LEN - HEADER_LEN - if has_af { 1 + af_len } else { 0 });
        let control = if has_af { 0x30 } else { 0x10 };
        out.extend_from_slice(&[
            SYNC_BYTE,
            (u8::from(first) << 6) | ((pid >> 8) as u8 & 0x1F),
            pid as u8,
            control | bump(cc),
        ]);
        if has_af {
            out.push(af_len as u8);
            out.extend_from_slice(&af[..af_len]);
        }
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        first = false;
    }
}

/// Appends one packet carrying one PSI section (at most 183 bytes) after a
/// zero `pointer_field`, padded with 0xFF (2.4.4.2).
pub fn write_section_packet(out: &mut Vec<u8>, pid: u16, cc: &mut u8, section: &[u8]) {
    debug_assert!(section.len() < TS_PACKET_LEN - HEADER_LEN);
    let section = &section[..section.len().min(TS_PACKET_LEN - HEADER_LEN - 1)];
    let start = out.len();
    out.extend_from_slice(&[SYNC_BYTE, 0x40 | ((pid >> 8) as u8 & 0x1F), pid as u8, 0x10 | bump(cc), 0]);
    out.extend_from_slice(section);
    out.resize(start + TS_PACKET_LEN, 0xFF);
}

#[cfg(test)]
mod tests {
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
}
