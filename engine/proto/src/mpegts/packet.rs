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
/// packet boundary. `continuity_counter` is the PID's, advanced per packet.
pub fn write_pes_packets(
    out: &mut Vec<u8>,
    pid: u16,
    continuity_counter: &mut u8,
    flags: FirstPacketFlags,
    pes: &[u8],
) {
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
            control | bump(continuity_counter),
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
pub fn write_section_packet(out: &mut Vec<u8>, pid: u16, continuity_counter: &mut u8, section: &[u8]) {
    debug_assert!(section.len() < TS_PACKET_LEN - HEADER_LEN);
    let section = &section[..section.len().min(TS_PACKET_LEN - HEADER_LEN - 1)];
    let start = out.len();
    out.extend_from_slice(&[
        SYNC_BYTE,
        0x40 | ((pid >> 8) as u8 & 0x1F),
        pid as u8,
        0x10 | bump(continuity_counter),
        0,
    ]);
    out.extend_from_slice(section);
    out.resize(start + TS_PACKET_LEN, 0xFF);
}

#[cfg(test)]
mod tests;
