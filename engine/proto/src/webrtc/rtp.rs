//! RTP packets (RFC 3550 §5.1) as the session hands them out and takes them
//! in: a zero-copy view over one `Bytes` buffer, header extensions (RFC 8285),
//! and RTX wrapping (RFC 4588 §4).
//!
//! `rtc-rtp` is the reference implementation in the tests; the hot path uses
//! this view because it neither allocates nor copies the payload.

use bytes::Bytes;

use super::error::WebRtcError;

/// One-byte header extension profile (RFC 8285 §4.2).
const PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// Two-byte header extension profile prefix (RFC 8285 §4.3, `0x100` + 4 bits).
const PROFILE_TWO_BYTE_MASK: u16 = 0xFFF0;
const PROFILE_TWO_BYTE: u16 = 0x1000;

/// A parsed RTP packet over its (decrypted) bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct RtpPacket {
    raw: Bytes,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit (end of a video frame).
    pub marker: bool,
    /// Sequence number.
    pub sequence_number: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    ext: Option<(u16, usize, usize)>,
    payload_start: usize,
    payload_end: usize,
}

impl std::fmt::Debug for RtpPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpPacket")
            .field("pt", &self.payload_type)
            .field("seq", &self.sequence_number)
            .field("ts", &self.timestamp)
            .field("ssrc", &format_args!("{:#010x}", self.ssrc))
            .field("marker", &self.marker)
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

impl RtpPacket {
    /// Parses `raw` (RFC 3550 §5.1, padding per §5.1 P bit, extensions per §5.3.1).
    pub fn parse(raw: Bytes) -> Result<RtpPacket, WebRtcError> {
        let b = &raw[..];
        if b.len() < 12 {
            return Err(WebRtcError::peer("RTP shorter than 12 bytes"));
        }
        if b[0] >> 6 != 2 {
            return Err(WebRtcError::peer("RTP version is not 2"));
        }
        let padding = b[0] & 0x20 != 0;
        let has_ext = b[0] & 0x10 != 0;
        let cc = (b[0] & 0x0f) as usize;
        let mut at = 12 + cc * 4;
        if b.len() < at {
            return Err(WebRtcError::peer("RTP CSRC list truncated"));
        }
        let mut ext = None;
        if has_ext {
            if b.len() < at + 4 {
                return Err(WebRtcError::peer("RTP extension header truncated"));
            }
            let profile = u16::from_be_bytes([b[at], b[at + 1]]);
            let words = u16::from_be_bytes([b[at + 2], b[at + 3]]) as usize;
            let start = at + 4;
            let end = start + words * 4;
            if b.len() < end {
                return Err(WebRtcError::peer("RTP extension truncated"));
            }
            ext = Some((profile, start, end));
            at = end;
        }
        let mut end = b.len();
        if padding {
            let pad = *b.last().unwrap_or(&0) as usize;
            if pad == 0 || at + pad > end {
                return Err(WebRtcError::peer("RTP padding length invalid"));
            }
            end -= pad;
        }
        Ok(RtpPacket {
            payload_type: b[1] & 0x7f,
            marker: b[1] & 0x80 != 0,
            sequence_number: u16::from_be_bytes([b[2], b[3]]),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            ext,
            payload_start: at,
            payload_end: end,
            raw,
        })
    }

    /// The whole packet as received (decrypted), header included.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The payload without header and padding (a slice of [`raw`](Self::raw)).
    pub fn payload(&self) -> Bytes {
        self.raw.slice(self.payload_start..self.payload_end)
    }

    /// Header length (fixed + CSRCs + extensions).
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// True if the packet only carries padding (bandwidth probes).
    pub fn is_padding_only(&self) -> bool {
        self.payload_start == self.payload_end
    }

    /// The value of header extension `id` (RFC 8285 one- or two-byte form).
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        let (profile, start, end) = self.ext?;
        let b = &self.raw[start..end];
        let mut at = 0;
        if profile == PROFILE_ONE_BYTE {
            while at < b.len() {
                let h = b[at];
                if h == 0 {
                    at += 1; // padding
                    continue;
                }
                let eid = h >> 4;
                let len = (h & 0x0f) as usize + 1;
                if eid == 15 {
                    return None; // reserved: stop (RFC 8285 §4.2)
                }
                let v = b.get(at + 1..at + 1 + len)?;
                if eid == id {
                    return Some(v);
                }
                at += 1 + len;
            }
        } else if profile & PROFILE_TWO_BYTE_MASK == PROFILE_TWO_BYTE {
            while at + 1 < b.len() {
                let eid = b[at];
                if eid == 0 {
                    at += 1;
                    continue;
                }
                let len = b[at + 1] as usize;
                let v = b.get(at + 2..at + 2 + len)?;
                if eid == id {
                    return Some(v);
                }
                at += 2 + len;
            }
        }
        None
    }
}

/// Header fields of an RTP packet to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// One-byte header extension to carry (id 1..=14, value 1..=16 bytes), e.g. the MID.
    pub extension: Option<(u8, &'a [u8])>,
}

impl RtpHeader<'_> {
    /// Appends the header and `payload` to `out` (no padding, no CSRCs).
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        let ext = self.extension.filter(|(id, v)| (1..=14).contains(id) && (1..=16).contains(&v.len()));
        out.reserve(12 + 24 + payload.len());
        out.push(0x80 | if ext.is_some() { 0x10 } else { 0 });
        out.push((self.payload_type & 0x7f) | if self.marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        if let Some((id, v)) = ext {
            let body = 1 + v.len();
            let words = body.div_ceil(4);
            out.extend_from_slice(&PROFILE_ONE_BYTE.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            out.push((id << 4) | (v.len() as u8 - 1));
            out.extend_from_slice(v);
            out.resize(out.len() + words * 4 - body, 0);
        }
        out.extend_from_slice(payload);
    }
}

/// Splits an RTX payload (RFC 4588 §4): the original sequence number and the
/// original payload.
pub fn rtx_unwrap(rtx_payload: &Bytes) -> Option<(u16, Bytes)> {
    if rtx_payload.len() < 2 {
        return None;
    }
    let osn = u16::from_be_bytes([rtx_payload[0], rtx_payload[1]]);
    Some((osn, rtx_payload.slice(2..)))
}

/// Writes the RTX payload for `osn` + `payload` (RFC 4588 §4).
pub fn rtx_payload(osn: u16, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&osn.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Extends 16-bit sequence numbers to 64 bits across wrap-arounds (RFC 3550
/// Appendix A.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    /// The extended value of `seq`, relative to the highest seen so far, and
    /// remembers it if it is newer.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            let v = seq as u64 + (1 << 16);
            self.highest = Some(v);
            return v;
        };
        let hi_seq = (h & 0xffff) as u16;
        let diff = seq.wrapping_sub(hi_seq) as i16 as i64;
        let v = (h as i64 + diff).max(0) as u64;
        if v > h {
            self.highest = Some(v);
        }
        v
    }

    /// Highest extended sequence number seen.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests;
