//! PES packet headers and 33-bit timestamps (ISO/IEC 13818-1, 2.4.3.6
//! `PES_packet()` and 2.4.3.7 semantics; PTS/DTS in 90 kHz units).

/// Timestamps wrap at 2^33 ticks of 90 kHz (about 26.5 hours).
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// `stream_id` of the first video stream (`1110 xxxx`).
pub const STREAM_ID_VIDEO: u8 = 0xE0;

/// `stream_id` of the first audio stream (`110x xxxx`).
pub const STREAM_ID_AUDIO: u8 = 0xC0;

/// Converts milliseconds to 90 kHz ticks, wrapped to 33 bits.
pub fn ms_to_90k(ms: i64) -> u64 {
    (ms.wrapping_mul(90)).rem_euclid(1 << 33) as u64
}

/// Encodes a PTS or DTS field (5 bytes): a 4-bit prefix (`0010` PTS only,
/// `0011` PTS of a PTS+DTS pair, `0001` DTS), then the 33 bits split 3/15/15
/// with marker bits.
pub fn encode_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & TIMESTAMP_MASK;
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

/// Decodes a 5-byte PTS/DTS field (marker bits are not checked).
pub fn decode_timestamp(b: [u8; 5]) -> u64 {
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// Appends a PES header. `payload_len` is the ES bytes that will follow;
/// `PES_packet_length` is written as 0 (unbounded, allowed for video only)
/// when `payload_len` does not fit in 16 bits with the header, or when
/// `unbounded` is asked. `data_alignment_indicator` is set: every PES this
/// muxer writes starts with an access unit. A DTS is written only when it
/// differs from the PTS.
pub fn write_pes_header(
    out: &mut Vec<u8>,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: usize,
    unbounded: bool,
) {
    let dts = dts.filter(|&d| d & TIMESTAMP_MASK != pts & TIMESTAMP_MASK);
    let header_data_len: u8 = if dts.is_some() { 10 } else { 5 };
    // Bytes after PES_packet_length: 3 flag/length bytes + header data + payload.
    let after_len = 3 + usize::from(header_data_len) + payload_len;
    let packet_len = if unbounded || after_len > 0xFFFF { 0 } else { after_len as u16 };
    out.extend_from_slice(&[0, 0, 1, stream_id]);
    out.extend_from_slice(&packet_len.to_be_bytes());
    // '10', not scrambled, no priority, data_alignment_indicator, no copyright, copy.
    out.push(0x84);
    out.push(if dts.is_some() { 0xC0 } else { 0x80 });
    out.push(header_data_len);
    match dts {
        Some(dts) => {
            out.extend_from_slice(&encode_timestamp(0b0011, pts));
            out.extend_from_slice(&encode_timestamp(0b0001, dts));
        }
        None => out.extend_from_slice(&encode_timestamp(0b0010, pts)),
    }
}

#[cfg(test)]
mod tests;
