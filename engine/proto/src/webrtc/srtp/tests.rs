use super::*;
use crate::webrtc::rtp::RtpHeader;

fn pair(profile: SrtpProfile) -> (SrtpSession, SrtpSession) {
    let len = Config { profile: profile.rtc(), ..Default::default() }.keying_material_len();
    let material: Vec<u8> = (0..len as u8).collect();
    let w = ReplayWindows::default();
    (
        SrtpSession::from_keying_material(profile, &material, false, w).unwrap(),
        SrtpSession::from_keying_material(profile, &material, true, w).unwrap(),
    )
}

#[test]
fn rtp_and_rtcp_round_trip_with_replay_protection() {
    for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80] {
        let (mut server, mut client) = pair(profile);
        let mut plain = Vec::new();
        RtpHeader { payload_type: 96, marker: true, sequence_number: 1, timestamp: 3000, ssrc: 42, extension: None }
            .write(b"payload bytes", &mut plain);
        let wire = server.protect_rtp(&plain).unwrap();
        assert_ne!(&wire[12..], &plain[12..]);
        let back = client.unprotect_rtp(&wire).unwrap();
        assert_eq!(&back[..], &plain[..]);
        // The same packet again is a replay.
        assert!(client.unprotect_rtp(&wire).is_err());
        // Tampering fails authentication.
        let mut bad = wire.to_vec();
        bad[14] ^= 1;
        assert!(client.unprotect_rtp(&bad).is_err());

        let rr = crate::webrtc::rtcp::encode(&[crate::webrtc::rtcp::receiver_report(7, &[])]).unwrap();
        let wire = client.protect_rtcp(&rr).unwrap();
        assert_eq!(&server.unprotect_rtcp(&wire).unwrap()[..], &rr[..]);
        assert!(server.unprotect_rtcp(&wire).is_err());
    }
}
