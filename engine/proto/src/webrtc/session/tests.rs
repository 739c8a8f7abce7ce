//! Two ends in memory with an injected clock: [`WebRtcSession`] (server)
//! against [`WebRtcClient`] — ICE-lite checks, the DTLS handshake, SRTP both
//! ways, NACK/RTX, PLI, reports, consent expiry and closing.

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::cert::DtlsCertificate;
use super::super::client::{ClientEvent, WebRtcClient, pt};
use super::super::rtcp::{RtcpFeedback, RtcpPacket};
use super::super::rtp::{RtpHeader, RtpPacket, rtx_payload};
use super::super::sdp::{AnswerOptions, Codec, Offer, Role, Track, build_answer};
use super::super::stun::IceCredentials;
use super::*;

const SERVER: &str = "127.0.0.1:5000";
const CLIENT: &str = "127.0.0.1:40000";

type DropFilter = Box<dyn FnMut(&[u8]) -> bool>;

struct Pair {
    now: Instant,
    server: WebRtcSession,
    client: WebRtcClient,
    server_addr: SocketAddr,
    client_addr: SocketAddr,
    /// Drop client→server datagrams for which this returns true.
    drop_up: DropFilter,
    /// Drop server→client datagrams for which this returns true.
    drop_down: DropFilter,
    server_events: Vec<SessionEvent>,
    client_events: Vec<ClientEvent>,
}

impl Pair {
    /// The `Nacked` events the server raised so far.
    fn nacked(&self) -> Vec<(Track, Vec<NackedPacket>)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Nacked { kind, packets } => Some((*kind, packets.clone())),
                _ => None,
            })
            .collect()
    }

    fn new(role: Role, video: Codec) -> Pair {
        Self::with(role, video, |_| {})
    }

    fn with(role: Role, video: Codec, tweak: impl FnOnce(&mut super::super::sdp::Negotiated)) -> Pair {
        Self::with_config(role, video, SessionConfig::default(), tweak)
    }

    fn with_config(
        role: Role,
        video: Codec,
        config: SessionConfig,
        tweak: impl FnOnce(&mut super::super::sdp::Negotiated),
    ) -> Pair {
        let now = Instant::now();
        let server_addr: SocketAddr = SERVER.parse().unwrap();
        let cert = DtlsCertificate::generate().unwrap();
        let mut client = WebRtcClient::new(&mut rand::rng()).unwrap();
        let offer = Offer::parse(&client.offer(role == Role::Publisher)).unwrap();
        let mut opts = AnswerOptions::new(
            role,
            IceCredentials::random(&mut rand::rng()),
            &cert,
            vec![server_addr],
            &mut rand::rng(),
        );
        opts.video_codecs = vec![video];
        let (answer, mut negotiated) = build_answer(&offer, &opts).unwrap();
        tweak(&mut negotiated);
        let server = WebRtcSession::new(config, negotiated, &cert, now, &mut rand::rng()).unwrap();
        client.accept_answer(now, &answer).unwrap();
        Pair {
            now,
            server,
            client,
            server_addr,
            client_addr: CLIENT.parse().unwrap(),
            drop_up: Box::new(|_| false),
            drop_down: Box::new(|_| false),
            server_events: vec![],
            client_events: vec![],
        }
    }

    /// Moves datagrams until both sides are quiet, then drains events.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some((to, b)) = self.client.poll_transmit() {
                assert_eq!(to, self.server_addr);
                moved = true;
                if !(self.drop_up)(&b) {
                    let _ = self.server.handle_input(self.now, self.client_addr, &b);
                }
            }
            while let Some((to, b)) = self.server.poll_transmit() {
                assert_eq!(to, self.client_addr);
                moved = true;
                if !(self.drop_down)(&b) {
                    let _ = self.client.handle_input(self.now, self.server_addr, &b);
                }
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
    }

    /// Advances the clock by `dt`, running both sides' timers.
    fn advance(&mut self, dt: Duration) {
        let end = self.now + dt;
        loop {
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            self.client.handle_timeout(self.now).unwrap();
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
        self.client.handle_timeout(self.now).unwrap();
        self.server.handle_timeout(self.now);
        self.pump();
    }

    fn connect(&mut self) {
        for _ in 0..200 {
            self.advance(Duration::from_millis(5));
            if self.server.is_connected() && self.client.is_connected() {
                return;
            }
        }
        panic!("did not connect: {:?} {:?}", self.server, self.server_events);
    }

    fn server_rtp(&self) -> Vec<(Track, RtpPacket, bool)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Rtp { kind, packet, repaired } => Some((*kind, packet.clone(), *repaired)),
                _ => None,
            })
            .collect()
    }

    fn client_rtp(&self) -> Vec<RtpPacket> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Rtp(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    fn client_rtcp(&self) -> Vec<RtcpPacket> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Rtcp(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }
}

fn plain(payload_type: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    RtpHeader {
        payload_type,
        marker: seq.is_multiple_of(3),
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        extension: Some((4, b"1")),
    }
    .write(payload, &mut v);
    v
}

#[test]
fn publisher_connects_and_media_flows_with_nack_and_rtx_repair() {
    let mut p = Pair::new(Role::Publisher, Codec::H264);
    p.connect();
    assert!(matches!(
        p.server_events.iter().find(|e| matches!(e, SessionEvent::PeerAddress { .. })),
        Some(SessionEvent::PeerAddress { nominated: true, .. })
    ));
    let profile = p.server.srtp_profile().unwrap();
    assert_eq!(profile, super::super::srtp::SrtpProfile::AeadAes128Gcm);
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::Connected { .. })));
    assert_eq!(p.server.remote_addr(), Some(p.client_addr));

    // 100 video packets (seq 10 and 11 lost on the way) and 50 audio packets.
    let [assrc, vssrc, rtx_ssrc] = p.client.ssrcs;
    p.drop_up = Box::new(|b: &[u8]| {
        b.len() > 12 && b[0] & 0xc0 == 0x80 && b[1] & 0x7f == pt::H264 && {
            let seq = u16::from_be_bytes([b[2], b[3]]);
            seq == 10 || seq == 11
        }
    });
    for i in 0..100u16 {
        let body = format!("video frame {i}");
        p.client.send_rtp(&plain(pt::H264, i, i as u32 * 3000, vssrc, body.as_bytes())).unwrap();
        if i < 50 {
            p.client.send_rtp(&plain(pt::OPUS, i, i as u32 * 960, assrc, b"opus")).unwrap();
        }
        p.advance(Duration::from_millis(5));
    }
    let rtp = p.server_rtp();
    let video: Vec<_> = rtp.iter().filter(|(k, ..)| *k == Track::Video).collect();
    let audio: Vec<_> = rtp.iter().filter(|(k, ..)| *k == Track::Audio).collect();
    assert_eq!(video.len(), 98);
    assert_eq!(audio.len(), 50);
    let (_, v20, _) = video.iter().find(|(_, p, _)| p.sequence_number == 20).unwrap();
    assert_eq!(&v20.payload()[..], b"video frame 20");
    assert_eq!(v20.ssrc, vssrc);
    assert_eq!(v20.extension(4), Some(&b"1"[..]));

    // The server NACKed 10 and 11.
    let nacked: Vec<u16> = p
        .client_rtcp()
        .iter()
        .filter_map(|r| match r {
            RtcpPacket::Nack { media_ssrc, lost, .. } if *media_ssrc == vssrc => Some(lost.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(nacked.contains(&10) && nacked.contains(&11), "{nacked:?}");
    assert!(p.server.stats().nacks_sent >= 1);
    // Receiver reports arrived, with the loss counted.
    p.advance(Duration::from_millis(1100));
    assert!(p.client_rtcp().iter().any(|r| matches!(r, RtcpPacket::ReceiverReport { reports, .. }
        if reports.iter().any(|b| b.ssrc == vssrc && b.total_lost == 2))));

    // Repair 10 via RTX: the server unwraps it into the original stream.
    let mut body = Vec::new();
    rtx_payload(10, b"video frame 10", &mut body);
    p.client.send_rtp(&plain(pt::H264_RTX, 0, 30000, rtx_ssrc, &body)).unwrap();
    p.advance(Duration::from_millis(5));
    let repaired: Vec<_> = p.server_rtp().into_iter().filter(|(_, _, r)| *r).collect();
    assert_eq!(repaired.len(), 1);
    let (_, r, _) = &repaired[0];
    assert_eq!((r.sequence_number, r.ssrc, r.payload_type), (10, vssrc, pt::H264));
    assert_eq!(&r.payload()[..], b"video frame 10");

    // A replayed SRTP packet is refused (replay protection on).
    let before = p.server.stats().srtp_errors;
    let mut captured = None;
    p.client.send_rtp(&plain(pt::OPUS, 500, 0, assrc, b"x")).unwrap();
    while let Some((_, b)) = p.client.poll_transmit() {
        let _ = p.server.handle_input(p.now, p.client_addr, &b);
        captured = Some(b);
    }
    let b = captured.unwrap();
    let _ = p.server.handle_input(p.now, p.client_addr, &b);
    assert_eq!(p.server.stats().srtp_errors, before + 1);

    // PLI towards the publisher, throttled.
    assert!(p.server.request_keyframe(p.now));
    assert!(!p.server.request_keyframe(p.now + Duration::from_millis(100)));
    p.pump();
    assert!(p.client_rtcp().iter().any(|r| matches!(r, RtcpPacket::Pli { media_ssrc, .. } if *media_ssrc == vssrc)));
}

/// With a shared store the session caches nothing: NACKs come out as `Nacked`,
/// mapped back to the source packets across a publisher restart, and the shell's
/// answers go out as RTX with our sequence numbers.
#[test]
fn shared_rtx_store_answers_nacks_across_a_restart() {
    use super::super::rtx_cache::{RtxCacheLimits, RtxStore};
    let config = SessionConfig { shared_rtx: true, ..SessionConfig::default() };
    let mut p = Pair::with_config(Role::Subscriber, Codec::Vp8, config, |_| {});
    p.connect();
    let v = p.server.negotiated().video.clone().unwrap();
    let mut store = RtxStore::new(RtxCacheLimits::default());
    let mut t = p.now;
    let mut send = |p: &mut Pair, t: Instant, ssrc: u32, seq: u16, ts: u32, body: String| {
        let pkt = MediaPacket {
            source_ssrc: ssrc,
            sequence_number: seq,
            timestamp: ts,
            marker: true,
            payload: Bytes::from(body),
            media_ms: None,
        };
        assert!(p.server.send_rtp(t, Track::Video, &pkt).unwrap());
        store.insert(t, ssrc, seq, pkt.marker, ts, &pkt.payload);
    };
    for i in 0..5u16 {
        send(&mut p, t, 0xAAAA, 65534u16.wrapping_add(i), 1000 + 3000 * i as u32, format!("a{i}"));
        t += Duration::from_millis(33);
    }
    for i in 0..5u16 {
        send(&mut p, t, 0xCCCC, 100 + i, 77 + 3000 * i as u32, format!("c{i}"));
        t += Duration::from_millis(33);
    }
    p.pump();
    let video: Vec<_> = p.client_rtp().into_iter().filter(|r| r.ssrc == v.local_ssrc).collect();
    assert_eq!(video.len(), 10);
    let (a2, c3) = (&video[2], &video[8]);
    let never = video[9].sequence_number.wrapping_add(5);
    p.client
        .send_rtcp(&RtcpFeedback::Nack {
            media_ssrc: v.local_ssrc,
            lost: vec![a2.sequence_number, c3.sequence_number, never],
        })
        .unwrap();
    p.pump();
    let nacked = p.nacked();
    assert_eq!(nacked.len(), 1);
    let (kind, packets) = &nacked[0];
    assert_eq!(*kind, Track::Video);
    // The unsent one maps to source C's seq 110, which the store does not have.
    let sources: Vec<_> = packets.iter().map(|n| (n.source_ssrc, n.source_seq)).collect();
    assert_eq!(sources, vec![(0xAAAA, 0), (0xCCCC, 103), (0xCCCC, 109)]);
    for n in packets {
        let got = store.get(p.now, n.source_ssrc, n.source_seq);
        p.server.retransmit(*kind, n, got.map(|g| (g.marker, g.timestamp, &g.payload)));
    }
    p.pump();
    let rtx: Vec<_> = p.client_rtp().into_iter().filter(|r| Some(r.ssrc) == v.local_rtx_ssrc).collect();
    assert_eq!(rtx.len(), 2);
    for (r, orig, body) in [(&rtx[0], a2, "a2"), (&rtx[1], c3, "c3")] {
        let (osn, payload) = super::super::rtp::rtx_unwrap(&r.payload()).unwrap();
        assert_eq!(osn, orig.sequence_number);
        assert_eq!(&payload[..], body.as_bytes());
        assert_eq!(r.timestamp, orig.timestamp, "our timestamp, not the source's");
    }
    assert_eq!(p.server.stats().nack_misses, 1);
    assert_eq!(p.server.stats().retransmits, 2);
    // The packet nobody can resend: a keyframe is asked for instead.
    assert_eq!(p.server.stats().miss_keyframe_requests, 1);
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::KeyframeRequested { kind: Track::Video })));
}

/// A packet dropped because the session's transmit queue was full keeps its sequence
/// number: the viewer sees a gap, NACKs it, and the shared store repairs it (the
/// number maps back to the source packet); nothing asks for a keyframe.
#[test]
fn a_packet_dropped_for_a_full_queue_is_repaired_from_the_shared_store() {
    use super::super::rtx_cache::{RtxCacheLimits, RtxStore};
    // A queue that takes one packet at a time.
    let config = SessionConfig { shared_rtx: true, max_queued_bytes: 1, ..SessionConfig::default() };
    let mut p = Pair::with_config(Role::Subscriber, Codec::Vp8, config, |_| {});
    p.connect();
    let v = p.server.negotiated().video.clone().unwrap();
    let mut store = RtxStore::new(RtxCacheLimits::default());
    let t = p.now;
    let mut sent = vec![];
    for seq in 10..13u16 {
        let pkt = MediaPacket {
            source_ssrc: 0xBBBB,
            sequence_number: seq,
            timestamp: 3000 * u32::from(seq),
            marker: true,
            payload: Bytes::from(format!("b{seq}")),
            media_ms: None,
        };
        store.insert(t, 0xBBBB, seq, true, pkt.timestamp, &pkt.payload);
        sent.push(p.server.send_rtp(t, Track::Video, &pkt).unwrap());
        // The first two go out back to back (the second finds the queue full); the
        // third after the queue drained.
        if seq == 11 {
            p.pump();
        }
    }
    assert_eq!(sent, vec![true, false, true]);
    assert_eq!(p.server.stats().dropped_out, 1);
    p.pump();
    let video: Vec<_> = p.client_rtp().into_iter().filter(|r| r.ssrc == v.local_ssrc).collect();
    assert_eq!(video.len(), 2);
    let gap = video[0].sequence_number.wrapping_add(1);
    assert_eq!(video[1].sequence_number, gap.wrapping_add(1), "the dropped packet's number is kept");
    p.client.send_rtcp(&RtcpFeedback::Nack { media_ssrc: v.local_ssrc, lost: vec![gap] }).unwrap();
    p.pump();
    let nacked = p.nacked();
    assert_eq!(nacked.len(), 1);
    let (kind, packets) = &nacked[0];
    assert_eq!(packets.iter().map(|n| (n.source_ssrc, n.source_seq)).collect::<Vec<_>>(), vec![(0xBBBB, 11)]);
    for n in packets {
        let got = store.get(p.now, n.source_ssrc, n.source_seq);
        p.server.retransmit(*kind, n, got.map(|g| (g.marker, g.timestamp, &g.payload)));
    }
    p.pump();
    let rtx: Vec<_> = p.client_rtp().into_iter().filter(|r| Some(r.ssrc) == v.local_rtx_ssrc).collect();
    assert_eq!(rtx.len(), 1);
    let (osn, payload) = super::super::rtp::rtx_unwrap(&rtx[0].payload()).unwrap();
    assert_eq!((osn, &payload[..]), (gap, &b"b11"[..]));
    assert_eq!(p.server.stats().nack_misses, 0);
    assert_eq!(p.server.stats().miss_keyframe_requests, 0);
}

/// A late repair from the publisher must not start a subscriber's numbering:
/// the packets that went by while it connected would be a gap nothing fills.
#[test]
fn a_late_packet_does_not_start_a_subscribers_numbering() {
    let mut p = Pair::new(Role::Subscriber, Codec::Vp8);
    let v = p.server.negotiated().video.clone().unwrap();
    let pkt = |seq: u16| MediaPacket {
        source_ssrc: 0xAAAA,
        sequence_number: seq,
        timestamp: seq as u32 * 3000,
        marker: true,
        payload: Bytes::from(format!("vp8 {seq}")),
        media_ms: None,
    };
    // While connecting, 101 and 102 go by unsent.
    for seq in [101, 102] {
        assert!(!p.server.send_rtp(p.now, Track::Video, &pkt(seq)).unwrap());
    }
    p.connect();
    // The late repair of 100 would start the numbering behind them: not sent.
    assert!(!p.server.send_rtp(p.now, Track::Video, &pkt(100)).unwrap());
    // 103 starts it; 105 is missing upstream and comes late, after 106: sent.
    for seq in [103, 104, 106, 105] {
        assert!(p.server.send_rtp(p.now, Track::Video, &pkt(seq)).unwrap(), "{seq}");
    }
    p.pump();
    let got: Vec<_> = p.client_rtp().into_iter().filter(|r| r.ssrc == v.local_ssrc).collect();
    let first = got[0].sequence_number;
    let seqs: Vec<u16> = got.iter().map(|r| r.sequence_number.wrapping_sub(first)).collect();
    assert_eq!(seqs, [0, 1, 3, 2]);
    assert_eq!(&got[3].payload()[..], b"vp8 105");
}

#[test]
fn subscriber_receives_rewritten_media_and_gets_rtx_for_nacks() {
    let mut p = Pair::new(Role::Subscriber, Codec::Vp8);
    p.connect();
    let v = p.server.negotiated().video.clone().unwrap();
    assert_eq!((v.codec, v.payload_type, v.rtx_payload_type), (Codec::Vp8, pt::VP8, Some(pt::VP8_RTX)));
    let a = p.server.negotiated().audio.clone().unwrap();

    // A publisher's packets (its own SSRC/PT/numbering), then a restart.
    let mut t = p.now;
    for i in 0..50u16 {
        let pkt = MediaPacket {
            source_ssrc: 0xAAAA,
            sequence_number: 60000u16.wrapping_add(i * 2), // upstream lost every other packet
            timestamp: 1000 + i as u32 * 3000,
            marker: true,
            payload: Bytes::from(format!("vp8 {i}")),
            media_ms: None,
        };
        assert!(p.server.send_rtp(t, Track::Video, &pkt).unwrap());
        let apkt = MediaPacket {
            source_ssrc: 0xBBBB,
            sequence_number: i,
            timestamp: i as u32 * 960,
            marker: false,
            payload: Bytes::from_static(b"opus"),
            media_ms: None,
        };
        assert!(p.server.send_rtp(t, Track::Audio, &apkt).unwrap());
        t += Duration::from_millis(20);
    }
    p.pump();
    let got = p.client_rtp();
    let video: Vec<_> = got.iter().filter(|r| r.ssrc == v.local_ssrc).collect();
    let audio: Vec<_> = got.iter().filter(|r| r.ssrc == a.local_ssrc).collect();
    assert_eq!(video.len(), 50);
    assert_eq!(audio.len(), 50);
    assert!(video.iter().all(|r| r.payload_type == pt::VP8));
    assert!(audio.iter().all(|r| r.payload_type == pt::OPUS));
    assert_eq!(video[1].sequence_number, video[0].sequence_number.wrapping_add(2));
    assert_eq!(video[1].timestamp, video[0].timestamp.wrapping_add(3000));
    assert_eq!(video[3].extension(v.mid_extension_id.unwrap()), Some(&b"1"[..]));
    assert_eq!(&video[7].payload()[..], b"vp8 7");

    // The player NACKs the gap after video[0]: answered as RTX with the OSN.
    let missing = video[0].sequence_number.wrapping_add(1);
    let present = video[4].sequence_number;
    p.client.send_rtcp(&RtcpFeedback::Nack { media_ssrc: v.local_ssrc, lost: vec![missing, present] }).unwrap();
    p.pump();
    let rtx: Vec<_> = p.client_rtp().into_iter().filter(|r| Some(r.ssrc) == v.local_rtx_ssrc).collect();
    assert_eq!(rtx.len(), 1, "only the cached packet is resent");
    assert_eq!(rtx[0].payload_type, pt::VP8_RTX);
    let (osn, payload) = super::super::rtp::rtx_unwrap(&rtx[0].payload()).unwrap();
    assert_eq!(osn, present);
    assert_eq!(&payload[..], b"vp8 4");
    assert_eq!(p.server.stats().nack_misses, 1);
    // The missing one cannot be resent: the publisher is asked for a keyframe.
    assert_eq!(p.server.stats().miss_keyframe_requests, 1);
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::KeyframeRequested { kind: Track::Video })));
    // An audio packet that cannot be resent asks for nothing.
    p.server_events.clear();
    let audio_gap = audio[0].sequence_number.wrapping_add(1000);
    p.client.send_rtcp(&RtcpFeedback::Nack { media_ssrc: a.local_ssrc, lost: vec![audio_gap] }).unwrap();
    p.pump();
    assert_eq!(p.server.stats().nack_misses, 2);
    assert_eq!(p.server.stats().miss_keyframe_requests, 1);
    assert!(!p.server_events.iter().any(|e| matches!(e, SessionEvent::KeyframeRequested { .. })));

    // PLI from the player becomes a keyframe request.
    p.client.send_rtcp(&RtcpFeedback::Pli { media_ssrc: v.local_ssrc }).unwrap();
    p.pump();
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::KeyframeRequested { kind: Track::Video })));

    // Publisher restart: new SSRC, unrelated numbers; the player sees continuity.
    let last = (*video.last().unwrap()).clone();
    let t2 = t + Duration::from_millis(40);
    p.server
        .send_rtp(
            t2,
            Track::Video,
            &MediaPacket {
                source_ssrc: 0xCCCC,
                sequence_number: 7,
                timestamp: 5,
                marker: true,
                payload: Bytes::from_static(b"after restart"),
                media_ms: None,
            },
        )
        .unwrap();
    p.pump();
    let after = p.client_rtp().into_iter().find(|r| &r.payload()[..] == b"after restart").unwrap();
    assert_eq!(after.sequence_number, last.sequence_number.wrapping_add(1));
    assert_eq!(after.ssrc, v.local_ssrc);
    // 60 ms after the last packet (sent at t - 20 ms): 60 * 90 ticks.
    assert_eq!(after.timestamp, last.timestamp.wrapping_add(60 * 90));

    // Sender reports follow within a second.
    p.advance(Duration::from_millis(1100));
    assert!(p.client_rtcp().iter().any(|r| matches!(r, RtcpPacket::SenderReport { ssrc, packet_count, .. }
        if *ssrc == v.local_ssrc && *packet_count == 51)));
}

/// A lost handshake flight is sent again: each of the client's ClientHello with
/// the cookie (flight 3) and its flight 5 (Certificate ... Finished), and the
/// server's flight 4 (ServerHello ... ServerHelloDone) and flight 6
/// (ChangeCipherSpec + Finished), dropped once.
#[test]
fn handshake_survives_a_lost_flight() {
    // DTLS record: content type 22 = handshake, epoch at 3..5, the handshake
    // message type at 13 (1 = ClientHello, 2 = ServerHello, 11 = Certificate);
    // content type 20 = ChangeCipherSpec. The cookie ClientHello is the second.
    let handshake = |b: &[u8], ty: u8| b.len() > 13 && b[0] == 22 && b[13] == ty;
    // (name, client → server, which datagram: (bytes, ClientHellos seen so far)).
    type Case = (&'static str, bool, Box<dyn Fn(&[u8], u32) -> bool>);
    let cases: [Case; 4] = [
        ("flight 3", true, Box::new(move |b, seen| handshake(b, 1) && seen == 1)),
        ("flight 4", false, Box::new(move |b, _| handshake(b, 2))),
        ("flight 5", true, Box::new(move |b, _| handshake(b, 11))),
        ("flight 6", false, Box::new(|b, _| b.len() > 13 && (b[0] == 20 || (b[0] == 22 && b[3..5] == [0, 1])))),
    ];
    for (name, up, is_flight) in cases {
        let mut p = Pair::new(Role::Subscriber, Codec::Vp8);
        let dropped = std::rc::Rc::new(std::cell::Cell::new(0));
        let (d, mut hellos) = (dropped.clone(), 0);
        let filter: DropFilter = Box::new(move |b: &[u8]| {
            let drop = d.get() == 0 && is_flight(b, hellos);
            hellos += u32::from(handshake(b, 1));
            d.set(d.get() + u32::from(drop));
            drop
        });
        if up {
            p.drop_up = filter;
        } else {
            p.drop_down = filter;
        }
        for _ in 0..100 {
            p.advance(Duration::from_millis(100));
            if p.server.is_connected() && p.client.is_connected() {
                break;
            }
        }
        assert_eq!(dropped.get(), 1, "{name}: nothing dropped");
        assert!(p.server.is_connected() && p.client.is_connected(), "{name} lost: no handshake in 10 s");
    }
}

#[test]
fn a_silent_peer_is_gone_after_the_silence_timeout() {
    let config = SessionConfig { silence_timeout: Some(Duration::from_secs(4)), ..SessionConfig::default() };
    let mut p = Pair::with_config(Role::Publisher, Codec::H264, config, |_| {});
    p.connect();
    // Consent checks are input: while they come, the session stays.
    p.advance(Duration::from_secs(10));
    assert!(!p.server.is_closed());
    // A closed tab: nothing at all arrives any more (the last check came at most 2 s
    // ago: the test client checks every 2 s).
    p.client.stop_checks();
    p.advance(Duration::from_millis(1900));
    assert!(!p.server.is_closed(), "closed before the silence timeout");
    p.advance(Duration::from_secs(3));
    assert!(p.server.is_closed());
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::Closed { reason: CloseReason::Silent })));
}

#[test]
fn consent_expires_without_checks() {
    let mut p = Pair::new(Role::Publisher, Codec::H264);
    p.connect();
    p.client.stop_checks();
    p.advance(Duration::from_secs(29));
    assert!(!p.server.is_closed());
    p.advance(Duration::from_secs(2));
    assert!(p.server.is_closed());
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::Closed { reason: CloseReason::ConsentExpired })));
    assert_eq!(p.server.poll_timeout(), None);
}

#[test]
fn fingerprint_mismatch_fails_the_handshake() {
    let mut p = Pair::with(Role::Publisher, Codec::H264, |n| n.remote_fingerprint[0] ^= 1);
    for _ in 0..100 {
        p.advance(Duration::from_millis(5));
    }
    assert!(!p.server.is_connected());
    assert!(p.server.is_closed());
    assert!(
        p.server_events.iter().any(|e| matches!(e, SessionEvent::Closed { reason: CloseReason::Error(_) })),
        "{:?}",
        p.server_events
    );
}

#[test]
fn dtls_from_unauthenticated_addresses_is_dropped_and_connect_times_out() {
    let mut p = Pair::new(Role::Publisher, Codec::H264);
    // A DTLS-looking datagram from an address that passed no check.
    let stranger: SocketAddr = "127.0.0.9:1".parse().unwrap();
    p.server.handle_input(p.now, stranger, &[22, 0xfe, 0xfd, 0, 0]).unwrap();
    assert_eq!(p.server.stats().dropped_in, 1);
    assert!(p.server.poll_transmit().is_none());
    // Nobody completes ICE: the session gives up after connect_timeout.
    p.client.stop_checks();
    p.now += Duration::from_secs(31);
    p.server.handle_timeout(p.now);
    assert!(p.server.is_closed());
}

#[test]
fn close_sends_close_notify_and_peer_close_is_reported() {
    let mut p = Pair::new(Role::Subscriber, Codec::H264);
    p.connect();
    p.server.close(p.now);
    p.pump();
    assert!(p.client_events.iter().any(|e| matches!(e, ClientEvent::Closed)));
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::Closed { reason: CloseReason::Local })));

    let mut p = Pair::new(Role::Publisher, Codec::H264);
    p.connect();
    p.client.close(p.now);
    p.pump();
    assert!(p.server.is_closed());
    assert!(p.server_events.iter().any(|e| matches!(e, SessionEvent::Closed { reason: CloseReason::PeerClosed })));
}

#[test]
fn peer_reflexive_address_change_follows_use_candidate() {
    let mut p = Pair::new(Role::Subscriber, Codec::H264);
    p.connect();
    // The same client appears from a new (peer-reflexive) address.
    p.client_addr = "127.0.0.1:40001".parse().unwrap();
    p.advance(Duration::from_secs(3));
    assert_eq!(p.server.remote_addr(), Some(p.client_addr));
    assert_eq!(p.server.peer_addresses().len(), 2);
    assert!(
        p.server_events
            .iter()
            .any(|e| matches!(e, SessionEvent::PeerAddress { addr, nominated: true } if *addr == p.client_addr))
    );
    // Media now goes there.
    let v = p.server.negotiated().video.clone().unwrap();
    let pkt = MediaPacket {
        source_ssrc: 1,
        sequence_number: 1,
        timestamp: 1,
        marker: true,
        payload: Bytes::from_static(b"x"),
        media_ms: None,
    };
    assert!(p.server.send_rtp(p.now, Track::Video, &pkt).unwrap());
    p.pump();
    assert!(p.client_rtp().iter().any(|r| r.ssrc == v.local_ssrc));
}

#[test]
fn sending_before_connect_is_dropped_not_an_error() {
    let mut p = Pair::new(Role::Subscriber, Codec::H264);
    let pkt = MediaPacket {
        source_ssrc: 1,
        sequence_number: 1,
        timestamp: 1,
        marker: true,
        payload: Bytes::from_static(b"x"),
        media_ms: None,
    };
    assert!(!p.server.send_rtp(p.now, Track::Video, &pkt).unwrap());
    assert_eq!(p.server.stats().dropped_out, 1);
    let mut p2 = Pair::new(Role::Publisher, Codec::H264);
    p2.connect();
    assert!(p2.server.send_rtp(p2.now, Track::Video, &pkt).is_err());
    let _ = &mut p;
}

/// RTP made from RTMP media carries the stream's media clock: the sender reports
/// relate audio and video by it, not by when each track's packets went out (the
/// AAC → Opus path sends audio ~40 ms after video of the same instant).
#[test]
fn sender_reports_follow_the_media_clock_when_there_is_one() {
    let mut p = Pair::new(Role::Subscriber, Codec::H264);
    p.connect();
    let v = p.server.negotiated().video.clone().unwrap();
    let a = p.server.negotiated().audio.clone().unwrap();
    let mut t = p.now;
    // 30 video frames at 33 ms; audio of the same media time sent 40 ms later.
    for i in 0..30u32 {
        let ms = 10_000 + i * 33;
        let vp = MediaPacket {
            source_ssrc: 1,
            sequence_number: i as u16,
            timestamp: ms * 90,
            marker: true,
            payload: Bytes::from_static(b"v"),
            media_ms: Some(ms),
        };
        assert!(p.server.send_rtp(t, Track::Video, &vp).unwrap());
        let ap = MediaPacket {
            source_ssrc: 2,
            sequence_number: i as u16,
            timestamp: ms * 48,
            marker: false,
            payload: Bytes::from_static(b"a"),
            media_ms: Some(ms),
        };
        assert!(p.server.send_rtp(t + Duration::from_millis(40), Track::Audio, &ap).unwrap());
        t += Duration::from_millis(33);
    }
    p.pump();
    let got = p.client_rtp();
    let first = |ssrc| got.iter().find(|r| r.ssrc == ssrc).map(|r| r.timestamp).unwrap();
    let (v0, a0) = (first(v.local_ssrc), first(a.local_ssrc));
    p.advance(Duration::from_millis(1100));
    let srs: Vec<(u32, u64, u32)> = p
        .client_rtcp()
        .iter()
        .filter_map(|r| match r {
            RtcpPacket::SenderReport { ssrc, ntp_time, rtp_time, .. } => Some((*ssrc, *ntp_time, *rtp_time)),
            _ => None,
        })
        .collect();
    let sr = |ssrc| srs.iter().rev().find(|s| s.0 == ssrc).copied().expect("a sender report per track");
    let ((_, vn, vr), (_, an, ar)) = (sr(v.local_ssrc), sr(a.local_ssrc));
    // Media ms each report names, relative to the first packet (10 000 ms).
    let vms = vr.wrapping_sub(v0) as f64 / 90.0;
    let ams = ar.wrapping_sub(a0) as f64 / 48.0;
    let ntp_ms = |n: u64| (n >> 32) as f64 * 1000.0 + (n & 0xffff_ffff) as f64 * 1000.0 / 4_294_967_296.0;
    // The two reports' instants differ by the difference of their media times.
    let skew = (ams - vms) - (ntp_ms(an) - ntp_ms(vn));
    assert!(skew.abs() < 1.0, "A/V skew in the sender reports: {skew} ms (video {vms}, audio {ams})");
}
