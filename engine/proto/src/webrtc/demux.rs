//! Demultiplexing one UDP port by the first byte of each datagram (RFC 7983 §7,
//! updating RFC 5764 §5.1.2), and RTP from RTCP by payload type (RFC 5761 §4).

/// What a datagram on a WebRTC port is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// First byte 0..=3: STUN (ICE connectivity checks, consent).
    Stun,
    /// First byte 20..=63: DTLS record.
    Dtls,
    /// First byte 128..=191 and not an RTCP packet type: SRTP.
    Rtp,
    /// First byte 128..=191, second byte 192..=223 (RTCP packet types 192-223,
    /// RFC 5761 §4): SRTCP.
    Rtcp,
    /// Anything else (ZRTP 16..=19, TURN channels 64..=79, junk): dropped.
    Unknown,
}

/// Classifies a datagram (RFC 7983 §7).
pub fn classify(data: &[u8]) -> PacketKind {
    let Some(&first) = data.first() else {
        return PacketKind::Unknown;
    };
    match first {
        0..=3 => PacketKind::Stun,
        20..=63 => PacketKind::Dtls,
        128..=191 => match data.get(1) {
            Some(pt) if (192..=223).contains(pt) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests;
