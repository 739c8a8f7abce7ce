use super::*;
use crate::fuzz::{Edits, XorShift};

/// Edits of the WebRTC packets (fewer per input: one bad field is what a
/// parser must survive; 0x01 and 0x0004 are common lengths and counts there).
fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let edits = Edits { rounds: 6, boundaries: &[0x00, 0x01, 0x7F, 0x80, 0xFF], splice: [0xFF, 0xFF, 0x00, 0x04] };
    rng.mutate(seed, &edits)
}

/// Line edits of a text input (SDP): drop, repeat, swap or cut lines.
fn mutate_lines(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = seed.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..=rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(4) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let line = lines[i].clone();
                let at = rng.below(lines.len() + 1);
                lines.insert(at, line);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            _ => {
                let keep = rng.below(lines[i].len() + 1);
                lines[i].truncate(keep);
            }
        }
    }
    let v = lines.concat();
    if rng.below(2) == 0 { mutate(rng, &v) } else { v }
}

/// Runs `body` on each seed, then on `rounds` random inputs and as many
/// mutated seeds.
fn run(rng_seed: u64, rounds: usize, seeds: &[Vec<u8>], body: fn(&[u8]), mutator: fn(&mut XorShift, &[u8]) -> Vec<u8>) {
    let mut rng = XorShift(rng_seed);
    for seed in seeds {
        body(seed);
    }
    for i in 0..rounds {
        let n = rng.below(if i % 10 == 0 { 1500 } else { 120 });
        body(&rng.bytes(n));
        let seed = &seeds[rng.below(seeds.len())];
        body(&mutator(&mut rng, seed));
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// RFC 5769 §2.1 "Sample Request" (USERNAME `evtj:h6vY`, our credentials).
const RFC5769_REQUEST: &str = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf";
/// RFC 5769 §2.2 "Sample IPv4 Response".
const RFC5769_RESPONSE_V4: &str = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";

/// A USERNAME + FINGERPRINT request without MESSAGE-INTEGRITY (a 400).
fn unsigned_request() -> Vec<u8> {
    let mut m = Message::new();
    m.typ = BINDING_REQUEST;
    m.transaction_id = rtc_stun::message::TransactionId([5; 12]);
    m.write_header();
    m.add(ATTR_USERNAME, b"evtj:cliU");
    FINGERPRINT.add_to(&mut m).unwrap();
    m.raw
}

fn stun_seeds() -> Vec<Vec<u8>> {
    let other_user = IceCredentials { ufrag: "zzzz".into(), pwd: ICE_PWD.into() };
    let other_pwd = IceCredentials { ufrag: ICE_UFRAG.into(), pwd: "another-password-22ch+".into() };
    vec![
        hex(RFC5769_REQUEST),
        hex(RFC5769_RESPONSE_V4),
        // As our client (and a browser, controlling) sends them.
        stun::binding_request([1; 12], &local_ice(), "cliU", true, 42).unwrap(),
        stun::binding_request([0xFE; 12], &local_ice(), "a/b+c", false, u64::MAX).unwrap(),
        stun::binding_request([2; 12], &other_user, "cliU", true, 7).unwrap(),
        stun::binding_request([3; 12], &other_pwd, "cliU", false, 7).unwrap(),
        unsigned_request(),
    ]
}

/// `[knob][datagram]` inputs for [`fuzz_rtp_rtcp`].
fn rtp_rtcp_seeds() -> Vec<Vec<u8>> {
    let with_knob = |knob: u8, datagram: &[u8]| [&[knob][..], datagram].concat();
    let mut seeds = Vec::new();
    // Opus with the MID extension (id 3) as the session sends it.
    let mut opus = Vec::new();
    RtpHeader {
        payload_type: 111,
        marker: true,
        sequence_number: 65535,
        timestamp: 960,
        ssrc: 0x1111_1111,
        extension: Some((3, b"0")),
    }
    .write(&[0x78, 0x0B, 0xE4, 0xC1, 0x36, 0xEC, 0xC5, 0x8D], &mut opus);
    seeds.push(with_knob(3, &opus));
    // Video with CSRCs, a two-byte extension (id 5) and 4 bytes of padding.
    let mut video = vec![0xB2, 0x66, 0x00, 0x07, 0, 0, 0x0B, 0xB8, 0x22, 0x22, 0x22, 0x22];
    video.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    video.extend_from_slice(&[0x10, 0x00, 0x00, 0x02, 5, 3, b'a', b'b', b'c', 0, 0, 0]);
    video.extend_from_slice(&[0x7C, 0x85, 0x88, 0x84, 0x00, 0x00, 0x00, 0x04]);
    seeds.push(with_knob(5, &video));
    // RTX of that video packet (OSN 7), with the MID extension.
    let mut body = Vec::new();
    rtx_payload(7, &[0x7C, 0x85, 0x88, 0x84], &mut body);
    let mut rtx = Vec::new();
    RtpHeader {
        payload_type: 103,
        marker: false,
        sequence_number: 1,
        timestamp: 3000,
        ssrc: 0x3333_3333,
        extension: Some((4, b"1")),
    }
    .write(&body, &mut rtx);
    seeds.push(with_knob(4, &rtx));
    // The session's own RTCP: RR, PLI, FIR, NACK, SR in one compound.
    let report = rtcp::ReportBlock {
        ssrc: 0x2222_2222,
        fraction_lost: 3,
        total_lost: 70,
        extended_highest_seq: 70_000,
        jitter: 12,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65536,
    };
    let compound = rtcp::encode(&[
        rtcp::receiver_report(1, &[report]),
        rtcp::feedback_packet(1, &RtcpFeedback::Pli { media_ssrc: 0x2222_2222 }),
        rtcp::feedback_packet(1, &RtcpFeedback::Fir { media_ssrc: 0x2222_2222, seq: 4 }),
        rtcp::feedback_packet(1, &RtcpFeedback::Nack { media_ssrc: 0x2222_2222, lost: vec![10, 11, 13, 40, 65535] }),
        rtcp::sender_report(5, 0xE9A6_0C00_8000_0000, 90_000, 10, 1000),
    ])
    .unwrap();
    seeds.push(with_knob(0, &compound));
    // A browser's: SR, SDES CNAME, REMB, BYE.
    use rtc_rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};
    let sdes = SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: 9,
            items: vec![SourceDescriptionItem { sdes_type: SdesType::SdesCname, text: Bytes::from_static(b"x1y2") }],
        }],
    };
    let remb = rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate {
        sender_ssrc: 9,
        bitrate: 2_000_000.0,
        ssrcs: vec![0x2222_2222],
    };
    let bye = rtc_rtcp::goodbye::Goodbye { sources: vec![9], reason: Bytes::new() };
    let browser =
        rtcp::encode(&[rtcp::sender_report(9, 1, 2, 3, 4), Box::new(sdes), Box::new(remb), Box::new(bye)]).unwrap();
    seeds.push(with_knob(0, &browser));
    // RTX cache ops: 4 slots, 2 SSRCs, 1 KiB: inserts, lookups, time, removal.
    let mut ops = vec![0x80 | 0x02 | 0x08 | 0x20];
    for seq in 0..6u8 {
        ops.extend_from_slice(&[0x40, seq % 2, 0, seq]);
    }
    ops.extend_from_slice(&[1, 0, 0, 4, 1, 1, 0, 5, 2, 0, 0x03, 0x20, 1, 0, 0, 4, 3, 1, 0, 0, 0xFC, 2, 0xFF, 0xFF]);
    seeds.push(ops);
    seeds
}

macro_rules! offer {
    ($name:literal) => {
        include_str!(concat!("../../../../testdata/webrtc/", $name, ".sdp"))
    };
}

/// The captured offers, with the role each is answered as.
fn sdp_offers() -> Vec<(&'static str, Role)> {
    vec![
        (offer!("aiortc_publisher_offer"), Role::Publisher),
        (offer!("aiortc_subscriber_offer"), Role::Subscriber),
        (offer!("chromium_publisher_offer"), Role::Publisher),
        (offer!("chromium_subscriber_offer"), Role::Subscriber),
        (offer!("firefox_publisher_offer"), Role::Publisher),
        (offer!("obs30_whip_offer"), Role::Publisher),
        (offer!("safari_subscriber_offer"), Role::Subscriber),
    ]
}

fn sdp_seeds() -> Vec<Vec<u8>> {
    sdp_offers().into_iter().map(|(text, _)| text.as_bytes().to_vec()).collect()
}

#[test]
fn seeds_reach_deep_states() {
    // Mutating seeds that fail early would test little.
    let from: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let outcomes: Vec<_> = stun_seeds().iter().map(|s| stun::handle_binding(s, from, &local_ice())).collect();
    assert!(matches!(outcomes[0], StunOutcome::Binding { .. }));
    assert_eq!(outcomes[1], StunOutcome::Ignored);
    assert!(matches!(&outcomes[2], StunOutcome::Binding { request, .. } if request.use_candidate));
    assert!(matches!(outcomes[3], StunOutcome::Binding { .. }));
    assert!(matches!(outcomes[4], StunOutcome::Rejected { reason: StunReject::UnknownUser, .. }));
    assert!(matches!(outcomes[5], StunOutcome::Rejected { reason: StunReject::BadIntegrity, .. }));
    assert!(matches!(outcomes[6], StunOutcome::Rejected { reason: StunReject::MissingCredentials, .. }));

    let seeds = rtp_rtcp_seeds();
    for seed in &seeds[..3] {
        let p = RtpPacket::parse(Bytes::copy_from_slice(&seed[1..])).unwrap();
        assert!(p.extension(seed[0]).is_some(), "the knob names the seed's extension");
    }
    assert_eq!(rtcp::parse(&seeds[3][1..]).unwrap().len(), 5);
    assert_eq!(rtcp::parse(&seeds[4][1..]).unwrap().len(), 4);

    for (text, role) in sdp_offers() {
        let offer = Offer::parse(text).unwrap();
        let opts = answer_options(role, text.as_bytes().last().unwrap() ^ b'\n');
        assert!(opts.rtx && opts.candidates.len() == 2, "a captured offer gets the default options");
        let (_, n) = build_answer(&offer, &opts).unwrap();
        assert!(n.audio.is_some() && n.video.is_some());
    }
}

#[test]
fn stun_pseudo_random_inputs() {
    run(0x9E37_79B9_7F4A_7C15, 3000, &stun_seeds(), fuzz_stun, mutate);
}

#[test]
fn rtp_rtcp_pseudo_random_inputs() {
    run(0xD1B5_4A32_D192_ED03, 4000, &rtp_rtcp_seeds(), |d| fuzz_rtp_rtcp(d, Instant::now()), mutate);
}

#[test]
fn sdp_pseudo_random_inputs() {
    run(0x2545_F491_4F6C_DD1D, 2000, &sdp_seeds(), fuzz_sdp, mutate_lines);
}

#[test]
fn sdp_duplicate_mids_are_refused() {
    // Found by sdp_pseudo_random_inputs: two sections with mid 0, both in
    // the BUNDLE group, were both answered (`a=group:BUNDLE 0 0`).
    let offer = offer!("obs30_whip_offer").replace("a=mid:1", "a=mid:0");
    fuzz_sdp(offer.as_bytes());
    let err = Offer::parse(&offer).expect_err("duplicate mids");
    assert!(err.to_string().contains("mid '0'"), "{err}");
}

#[test]
fn regression_inputs() {
    // Edge cases: empty, one byte, knob bytes alone, bare headers.
    for input in [&[][..], &[0x00], &[0x80], &[0xFF], &[0x80, 0x80], b"v=0\r\n", &[0; 20]] {
        fuzz_stun(input);
        fuzz_rtp_rtcp(input, Instant::now());
        fuzz_sdp(input);
    }
}
