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
