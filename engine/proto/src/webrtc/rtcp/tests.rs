use super::*;

#[test]
fn feedback_round_trips() {
    let pkts = vec![
        receiver_report(
            1,
            &[ReportBlock {
                ssrc: 9,
                fraction_lost: 3,
                total_lost: 70,
                extended_highest_seq: 70_000,
                jitter: 12,
                last_sr: 0x1234_5678,
                delay_since_last_sr: 65536,
            }],
        ),
        feedback_packet(1, &RtcpFeedback::Pli { media_ssrc: 9 }),
        feedback_packet(1, &RtcpFeedback::Fir { media_ssrc: 9, seq: 4 }),
        feedback_packet(1, &RtcpFeedback::Nack { media_ssrc: 9, lost: vec![10, 11, 13, 40, 65535, 0] }),
        sender_report(5, 0xaabb_ccdd_0011_2233, 90_000, 10, 1000),
    ];
    let wire = encode(&pkts).unwrap();
    let parsed = parse(&wire).unwrap();
    assert_eq!(parsed.len(), 5);
    assert!(matches!(&parsed[0], RtcpPacket::ReceiverReport { ssrc: 1, reports }
        if reports[0].total_lost == 70 && reports[0].extended_highest_seq == 70_000));
    assert_eq!(parsed[1], RtcpPacket::Pli { sender_ssrc: 1, media_ssrc: 9 });
    assert_eq!(parsed[2], RtcpPacket::Fir { sender_ssrc: 1, entries: vec![(9, 4)] });
    let RtcpPacket::Nack { lost, .. } = &parsed[3] else { panic!() };
    let mut lost = lost.clone();
    lost.sort();
    assert_eq!(lost, vec![0, 10, 11, 13, 40, 65535]);
    assert!(matches!(
        parsed[4],
        RtcpPacket::SenderReport { ssrc: 5, rtp_time: 90_000, packet_count: 10, octet_count: 1000, .. }
    ));
    // Re-encoding the parsed form gives the same bytes.
    let again = encode(&pkts).unwrap();
    assert_eq!(wire, again);
}

#[test]
fn parses_a_chrome_style_compound() {
    // SR + SDES(CNAME) + REMB as Chrome sends them.
    let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 1, bitrate: 2_000_000.0, ssrcs: vec![77] };
    let sdes = rtc_rtcp::source_description::SourceDescription {
        chunks: vec![rtc_rtcp::source_description::SourceDescriptionChunk {
            source: 1,
            items: vec![rtc_rtcp::source_description::SourceDescriptionItem {
                sdes_type: rtc_rtcp::source_description::SdesType::SdesCname,
                text: Bytes::from_static(b"abcd"),
            }],
        }],
    };
    let pkts: Vec<Box<dyn rtc_rtcp::packet::Packet>> = vec![
        sender_report(1, 1, 2, 3, 4),
        Box::new(sdes),
        Box::new(remb),
        Box::new(Goodbye { sources: vec![1], reason: Bytes::new() }),
    ];
    let parsed = parse(&encode(&pkts).unwrap()).unwrap();
    assert!(matches!(parsed[1], RtcpPacket::Other { packet_type: 202 }));
    assert!(matches!(&parsed[2], RtcpPacket::Remb { bitrate, ssrcs } if *bitrate > 1_900_000 && ssrcs == &vec![77]));
    assert_eq!(parsed[3], RtcpPacket::Bye { ssrcs: vec![1] });
}

#[test]
fn junk_is_an_error_not_a_panic() {
    assert!(parse(&[]).is_err());
    assert!(parse(&[0x81, 200, 0, 50]).is_err());
    for n in 0..48u8 {
        let v: Vec<u8> = (0..n).map(|i| 0x80u8 ^ i.wrapping_mul(29)).collect();
        let _ = parse(&v);
    }
}
