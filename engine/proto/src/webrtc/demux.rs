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
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(classify(&[0, 1]), PacketKind::Stun);
        assert_eq!(classify(&[3, 1]), PacketKind::Stun);
        assert_eq!(classify(&[22, 0xfe]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 96]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80, 111 | 0x80]), PacketKind::Rtp); // marker + PT 111
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp); // SR
        assert_eq!(classify(&[0x81, 206]), PacketKind::Rtcp); // PSFB
        assert_eq!(classify(&[64]), PacketKind::Unknown);
        assert_eq!(classify(&[17]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }
}
