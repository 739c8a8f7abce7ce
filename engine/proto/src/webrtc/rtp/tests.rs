use super::*;
use rtc_shared::marshal::{Marshal, Unmarshal};

#[test]
fn write_then_parse_round_trip_matches_rtc_rtp() {
    let mut out = Vec::new();
    RtpHeader {
        payload_type: 96,
        marker: true,
        sequence_number: 65535,
        timestamp: 0xdead_beef,
        ssrc: 0x1234_5678,
        extension: Some((3, b"1")),
    }
    .write(b"hello", &mut out);
    let p = RtpPacket::parse(Bytes::from(out.clone())).unwrap();
    assert_eq!(p.payload_type, 96);
    assert!(p.marker);
    assert_eq!(p.sequence_number, 65535);
    assert_eq!(p.timestamp, 0xdead_beef);
    assert_eq!(p.ssrc, 0x1234_5678);
    assert_eq!(p.extension(3), Some(&b"1"[..]));
    assert_eq!(p.extension(4), None);
    assert_eq!(&p.payload()[..], b"hello");
    // rtc-rtp reads the same packet and writes the same bytes back.
    let mut buf = &out[..];
    let q = rtc_rtp::Packet::unmarshal(&mut buf).unwrap();
    assert_eq!(q.header.sequence_number, 65535);
    assert_eq!(q.header.get_extension(3).as_deref(), Some(&b"1"[..]));
    assert_eq!(&q.payload[..], b"hello");
    assert_eq!(&q.marshal().unwrap()[..], &out[..]);
}

#[test]
fn parses_rtc_rtp_packets_with_padding_csrcs_and_two_byte_extensions() {
    let mut header = rtc_rtp::Header {
        version: 2,
        padding: false,
        marker: false,
        payload_type: 111,
        sequence_number: 7,
        timestamp: 960,
        ssrc: 99,
        csrc: vec![1, 2],
        ..Default::default()
    };
    header.extension = true;
    header.extension_profile = 0x1000;
    header.set_extension(20, Bytes::from_static(b"abc")).unwrap();
    let pkt = rtc_rtp::Packet { header, payload: Bytes::from_static(b"opus-frame") };
    let mut raw = pkt.marshal().unwrap().to_vec();
    // Add 4 bytes of padding by hand (P bit + count in the last byte).
    raw[0] |= 0x20;
    raw.extend_from_slice(&[0, 0, 0, 4]);
    let p = RtpPacket::parse(Bytes::from(raw)).unwrap();
    assert_eq!(p.extension(20), Some(&b"abc"[..]));
    assert_eq!(&p.payload()[..], b"opus-frame");
    assert_eq!(p.ssrc, 99);
}

#[test]
fn junk_is_rejected_without_panics() {
    assert!(RtpPacket::parse(Bytes::from_static(&[0x80; 5])).is_err());
    assert!(RtpPacket::parse(Bytes::from_static(&[0x40; 12])).is_err());
    let mut bad = vec![0xa0u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    bad.push(200); // padding longer than the packet
    assert!(RtpPacket::parse(Bytes::from(bad)).is_err());
    for n in 0..40u8 {
        let v: Vec<u8> = (0..n).map(|i| 0x90u8.wrapping_add(i.wrapping_mul(31))).collect();
        if let Ok(p) = RtpPacket::parse(Bytes::from(v)) {
            let _ = (p.payload(), p.extension(1));
        }
    }
}

#[test]
fn rtx_round_trip() {
    let mut out = Vec::new();
    rtx_payload(4242, b"frame", &mut out);
    let (osn, p) = rtx_unwrap(&Bytes::from(out)).unwrap();
    assert_eq!(osn, 4242);
    assert_eq!(&p[..], b"frame");
    assert!(rtx_unwrap(&Bytes::from_static(&[1])).is_none());
}

#[test]
fn seq_extender_wraps() {
    let mut e = SeqExtender::default();
    let a = e.extend(65534);
    assert_eq!(e.extend(65535), a + 1);
    assert_eq!(e.extend(0), a + 2);
    assert_eq!(e.extend(65535), a + 1); // late packet
    assert_eq!(e.highest(), Some(a + 2));
}
