//! Fuzz bodies for the WebRTC wire formats (kept in the crate; fuzz/ only wraps them): STUN as the
//! ICE-lite agent answers it, RTP and RTCP as the session reads and writes
//! them (with the RTX cache), and SDP offers as signaling answers them. The
//! other protocols' bodies are in [`crate::fuzz`] and
//! [`crate::rtmp::fuzz`].
//!
//! They are compiled with the crate and called by thin
//! `fuzz/fuzz_targets/*.rs` wrappers (see docs/fuzzing.md). None of them may
//! panic, whatever the input; the few `assert!`s state properties of the code
//! under test (round trips, responses that verify, bounds), so a failure
//! there is a bug too. Each crash found becomes a regression test in this
//! file.
//!
//! STUN and SDP take no knob bytes at the front, so a captured datagram or
//! offer works as a seed as it is; `fuzz_sdp` reads option knobs from its
//! last byte, `fuzz_rtp_rtcp` from its first.

use core::net::SocketAddr;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_sdp::description::common::Attribute;
use rtc_sdp::description::session::SessionDescription;
use rtc_shared::marshal::{Marshal, Unmarshal};
use rtc_stun::attributes::{ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_USERNAME};
use rtc_stun::error_code::{CODE_BAD_REQUEST, CODE_UNAUTHORIZED, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_ERROR, BINDING_REQUEST, Getter, Message, Setter};

use crate::webrtc::cert::{crypto_provider, parse_sha256_fingerprint, sha256_fingerprint};
use crate::webrtc::client::parse_answer;
use crate::webrtc::demux::{PacketKind, classify};
use crate::webrtc::rtcp::{self, RtcpFeedback, RtcpPacket};
use crate::webrtc::rtp::{RtpHeader, RtpPacket, SeqExtender, rtx_payload, rtx_unwrap};
use crate::webrtc::rtx_cache::{CachedRtp, ENTRY_OVERHEAD, RtxCache, RtxCacheLimits};
use crate::webrtc::sdp::{
    AnswerOptions, Codec, LocalSsrcs, Negotiated, NegotiatedMedia, Offer, PREFERRED_H264_PROFILES, Role, Track,
    build_answer,
};
use crate::webrtc::stun::{self, IceCredentials, StunOutcome, StunReject};

/// Our ICE credentials in the STUN and SDP bodies: those of RFC 5769 §2.1,
/// so that its sample request is accepted as it is.
const ICE_UFRAG: &str = "evtj";
const ICE_PWD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

fn local_ice() -> IceCredentials {
    IceCredentials { ufrag: ICE_UFRAG.to_owned(), pwd: ICE_PWD.to_owned() }
}

// ---- STUN ----

/// Inputs longer than this are not re-sealed (the rebuilt message must keep
/// within STUN's 16-bit length; real requests are about 100 bytes).
const MAX_RESEAL_LEN: usize = 8 * 1024;

/// One datagram as the shard and the session take it: [`stun::peek_username`]
/// (routing a first request by ufrag), then the RFC 7983 first-byte
/// [`classify`], then [`stun::handle_binding`] with fixed credentials for
/// what is STUN. Input: the datagram, as it is.
///
/// A fuzzer cannot forge FINGERPRINT (a CRC) or MESSAGE-INTEGRITY (an HMAC),
/// so whatever `rtc-stun` can decode is also rebuilt and tried twice more:
/// with FINGERPRINT recomputed (the input's own MESSAGE-INTEGRITY is kept, so
/// a real request with changes after it still verifies), and signed afresh
/// with our password. The second must never fail integrity.
///
/// An accepted request must be routable by its USERNAME and its response must
/// verify with our password and map the source address; a refusal comes with
/// a 400/401 that carries FINGERPRINT, or with nothing when malformed.
pub fn fuzz_stun(data: &[u8]) {
    let local = local_ice();
    if let Some(username) = stun::peek_username(data) {
        assert!(username.starts_with(stun::local_ufrag(username)));
    }
    stun_datagram(data, &local);

    if data.len() > MAX_RESEAL_LEN {
        return;
    }
    let mut parsed = Message::new();
    if parsed.unmarshal_binary(data).is_err() {
        return;
    }
    // The decoders agree on USERNAME (the first one, if UTF-8).
    let first_username = parsed.attributes.0.iter().find(|a| a.typ == ATTR_USERNAME).map(|a| a.value.clone());
    let first_username = first_username.as_deref().and_then(|v| std::str::from_utf8(v).ok());
    assert_eq!(stun::peek_username(data), first_username, "peek_username and rtc-stun differ");

    if let Some(resealed) = reseal(&parsed, None) {
        assert_eq!(stun::peek_username(&resealed), first_username);
        stun_datagram(&resealed, &local);
    }
    if let Some(signed) = reseal(&parsed, Some(&local.pwd)) {
        assert_eq!(stun::peek_username(&signed), first_username);
        let outcome = stun_datagram(&signed, &local);
        if parsed.typ == BINDING_REQUEST {
            // USERNAME `<our ufrag>:<theirs>` decides, nothing else.
            let for_us = first_username.is_some_and(|u| u.split_once(':').is_some_and(|(ours, _)| ours == ICE_UFRAG));
            match outcome.expect("a Binding request classifies as STUN") {
                StunOutcome::Binding { .. } => assert!(for_us),
                StunOutcome::Rejected { reason: StunReject::MissingCredentials | StunReject::UnknownUser, .. } => {
                    assert!(!for_us, "{first_username:?} refused");
                }
                other => panic!("a Binding request signed with our password: {other:?}"),
            }
        }
    }
}

/// `data` through demux and [`stun::handle_binding`] with the checks of
/// [`fuzz_stun`]; `None` if it does not classify as STUN.
fn stun_datagram(data: &[u8], local: &IceCredentials) -> Option<StunOutcome> {
    if classify(data) != PacketKind::Stun {
        return None;
    }
    let from = source_address(data);
    let outcome = stun::handle_binding(data, from, local);
    match &outcome {
        StunOutcome::Binding { request, response } => {
            assert_eq!(request.transaction_id[..], data[8..20]);
            let username = format!("{}:{}", local.ufrag, request.remote_ufrag);
            assert_eq!(stun::peek_username(data), Some(username.as_str()), "an accepted request routes by USERNAME");
            assert_eq!(classify(response), PacketKind::Stun);
            assert_eq!(stun::peek_username(response), None);
            let back = stun::parse_success_response(response, &local.pwd).expect("our success response verifies");
            assert_eq!(back, (request.transaction_id, from));
        }
        StunOutcome::Rejected { reason, response: Some(response) } => {
            assert_ne!(*reason, StunReject::Malformed, "a malformed datagram gets no answer");
            check_error_response(response, &data[8..20], *reason);
        }
        StunOutcome::Rejected { reason, response: None } => {
            assert!(matches!(reason, StunReject::Malformed | StunReject::BadIntegrity));
        }
        StunOutcome::Ignored => {}
    }
    Some(outcome)
}

/// A 400 or 401 Binding error response: same transaction, FINGERPRINT, no
/// MESSAGE-INTEGRITY.
fn check_error_response(response: &[u8], transaction_id: &[u8], reason: StunReject) {
    assert_eq!(classify(response), PacketKind::Stun);
    let mut m = Message::new();
    m.unmarshal_binary(response).expect("our error response decodes");
    assert_eq!(m.typ, BINDING_ERROR);
    assert_eq!(m.transaction_id.0[..], *transaction_id);
    assert!(FINGERPRINT.check(&m).is_ok());
    assert!(!m.contains(ATTR_MESSAGE_INTEGRITY));
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&m).expect("ERROR-CODE");
    let want = if reason == StunReject::MissingCredentials { CODE_BAD_REQUEST } else { CODE_UNAUTHORIZED };
    assert_eq!(code.code.0, want.0);
}

/// A source address from the transaction id (IPv4 or IPv6, any port), so
/// XOR-MAPPED-ADDRESS sees both families.
fn source_address(data: &[u8]) -> SocketAddr {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let port = u16::from_be_bytes([byte(8), byte(9)]);
    if byte(10) & 1 == 0 {
        SocketAddr::from(([192, 0, 2, byte(11)], port))
    } else {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(byte(11))], port))
    }
}

/// `parsed` written again by `rtc-stun`: its attributes without FINGERPRINT
/// (and, with `sign`, without MESSAGE-INTEGRITY), then MESSAGE-INTEGRITY
/// keyed with `sign` if given, then a fresh FINGERPRINT.
fn reseal(parsed: &Message, sign: Option<&str>) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.typ = parsed.typ;
    m.transaction_id = parsed.transaction_id;
    m.write_header();
    for a in &parsed.attributes.0 {
        if a.typ == ATTR_FINGERPRINT || (sign.is_some() && a.typ == ATTR_MESSAGE_INTEGRITY) {
            continue;
        }
        m.add(a.typ, &a.value);
    }
    if let Some(pwd) = sign {
        let provider = crypto_provider().ok()?;
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), provider.crypto())
            .add_to(&mut m)
            .ok()?;
    }
    FINGERPRINT.add_to(&mut m).ok()?;
    Some(m.raw)
}

// ---- RTP / RTCP ----

/// RTP and RTCP as the session reads them after SRTP, and what it writes.
///
/// Input: `[knob][rest]`. With knob bit 7 clear, `rest` is one (decrypted)
/// datagram, given to both [`RtpPacket::parse`] and [`rtcp::parse`]
/// whatever [`classify`] says, and read as big-endian u16s by a
/// [`SeqExtender`]; knob bits 0-3 are the header extension id that the RTP
/// round trip carries over.
///
/// - RTP: the view must agree with `rtc-rtp` and with the bytes; the packet
///   written again with [`RtpHeader::write`] (and the extension, if it fits a
///   one-byte element) must parse back the same; the payload as RTX
///   ([`rtx_unwrap`]) must wrap back ([`rtx_payload`]) and restore as the
///   session does it.
/// - RTCP: every SR, RR, PLI, FIR and NACK parsed is built again with the
///   session's encoders and must parse back the same (NACK: the same set).
///
/// With knob bit 7 set, `rest` drives an [`RtxCache`] instead (see
/// [`rtx_cache_ops`]).
pub fn fuzz_rtp_rtcp(data: &[u8], now: Instant) {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    if knob & 0x80 != 0 {
        rtx_cache_ops(knob, rest, now);
        return;
    }
    rtp_checks(rest, knob & 0x0F);
    rtcp_checks(rest);
    seq_extender_checks(rest);
}

fn rtp_checks(datagram: &[u8], ext_id: u8) {
    let Ok(p) = RtpPacket::parse(Bytes::copy_from_slice(datagram)) else {
        return;
    };
    assert!(matches!(classify(datagram), PacketKind::Rtp | PacketKind::Rtcp));
    assert_eq!(&p.raw()[..], datagram);
    assert_eq!(
        (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc),
        (
            datagram[1] & 0x7F,
            datagram[1] & 0x80 != 0,
            u16::from_be_bytes([datagram[2], datagram[3]]),
            u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
        )
    );
    let payload = p.payload();
    let start = p.header_len();
    assert!(start >= 12 && start + payload.len() <= datagram.len());
    assert_eq!(&datagram[start..start + payload.len()], &payload[..]);
    assert_eq!(p.is_padding_only(), payload.is_empty());
    // Extension values lie inside the header, after the extension's own 4 bytes.
    let base = p.raw().as_ptr() as usize;
    for id in (0..=15).chain([ext_id + 16, 255]) {
        if let Some(v) = p.extension(id) {
            let at = v.as_ptr() as usize - base;
            assert!(at >= 16 && at + v.len() <= start, "extension {id} at {at}+{} outside the header", v.len());
        }
    }

    // rtc-rtp, the reference, reads the same header and payload end. Where
    // the payload starts may differ with a header extension: rtc-rtp stops at
    // a reserved id 15 or reads an element that overruns the extension block
    // and starts the payload there, where RFC 3550 §5.3.1 starts it after the
    // block's declared length (as `RtpPacket` does).
    if let Ok(q) = rtc_rtp::Packet::unmarshal(&mut &datagram[..]) {
        let h = &q.header;
        assert_eq!(
            (h.payload_type, h.marker, h.sequence_number, h.timestamp, h.ssrc),
            (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc)
        );
        if datagram[0] & 0x10 == 0 {
            assert_eq!(q.payload, payload, "payload differs from rtc-rtp's in {datagram:02x?}");
        } else {
            assert!(q.payload.ends_with(&payload) || payload.ends_with(&q.payload), "in {datagram:02x?}");
        }
    }

    // Written again as the session writes packets.
    let ext = p.extension(ext_id).filter(|v| (1..=14).contains(&ext_id) && (1..=16).contains(&v.len()));
    let header = RtpHeader {
        payload_type: p.payload_type,
        marker: p.marker,
        sequence_number: p.sequence_number,
        timestamp: p.timestamp,
        ssrc: p.ssrc,
        extension: ext.map(|v| (ext_id, v)),
    };
    let mut out = Vec::new();
    header.write(&payload, &mut out);
    let again = RtpPacket::parse(Bytes::from(out.clone())).expect("a written packet parses");
    assert_eq!(
        (again.payload_type, again.marker, again.sequence_number, again.timestamp, again.ssrc),
        (p.payload_type, p.marker, p.sequence_number, p.timestamp, p.ssrc)
    );
    assert_eq!(again.payload(), payload);
    if (1..=14).contains(&ext_id) {
        assert_eq!(again.extension(ext_id), ext);
    }
    let q = rtc_rtp::Packet::unmarshal(&mut &out[..]).expect("rtc-rtp reads a written packet");
    assert_eq!(q.payload, payload);
    if let Some(v) = ext {
        assert_eq!(q.header.get_extension(ext_id).as_deref(), Some(v));
    }
    assert_eq!(&q.marshal().expect("rtc-rtp writes it back")[..], &out[..]);

    // The payload as RTX (RFC 4588 §4).
    match rtx_unwrap(&payload) {
        Some((osn, original)) => {
            assert_eq!(original.len() + 2, payload.len());
            let mut wrapped = Vec::new();
            rtx_payload(osn, &original, &mut wrapped);
            assert_eq!(wrapped, payload);
            // Restored as WebRtcSession::unwrap_rtx does it.
            let mut buf = Vec::new();
            RtpHeader { sequence_number: osn, extension: None, ..header }.write(&original, &mut buf);
            let restored = RtpPacket::parse(Bytes::from(buf)).expect("a restored packet parses");
            assert_eq!((restored.sequence_number, restored.payload()), (osn, original));
        }
        None => assert!(payload.len() < 2),
    }
}

fn rtcp_checks(datagram: &[u8]) {
    let Ok(packets) = rtcp::parse(datagram) else {
        return;
    };
    assert!(matches!(classify(datagram), PacketKind::Rtp | PacketKind::Rtcp));
    let mut rebuilt: Vec<Box<dyn rtc_rtcp::packet::Packet>> = Vec::new();
    let mut expected = Vec::new();
    for p in &packets {
        match p {
            RtcpPacket::SenderReport { ssrc, ntp_time, rtp_time, packet_count, octet_count, .. } => {
                rebuilt.push(rtcp::sender_report(*ssrc, *ntp_time, *rtp_time, *packet_count, *octet_count));
                expected.push(RtcpPacket::SenderReport {
                    ssrc: *ssrc,
                    ntp_time: *ntp_time,
                    rtp_time: *rtp_time,
                    packet_count: *packet_count,
                    octet_count: *octet_count,
                    reports: vec![],
                });
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                rebuilt.push(rtcp::receiver_report(*ssrc, reports));
                let reports = reports.iter().take(31).copied().collect();
                expected.push(RtcpPacket::ReceiverReport { ssrc: *ssrc, reports });
            }
            RtcpPacket::Pli { sender_ssrc, media_ssrc } => {
                rebuilt.push(rtcp::feedback_packet(*sender_ssrc, &RtcpFeedback::Pli { media_ssrc: *media_ssrc }));
                expected.push(p.clone());
            }
            RtcpPacket::Fir { sender_ssrc, entries } => {
                if let Some(&(media_ssrc, seq)) = entries.first() {
                    rebuilt.push(rtcp::feedback_packet(*sender_ssrc, &RtcpFeedback::Fir { media_ssrc, seq }));
                    expected.push(RtcpPacket::Fir { sender_ssrc: *sender_ssrc, entries: vec![(media_ssrc, seq)] });
                }
            }
            RtcpPacket::Nack { sender_ssrc, media_ssrc, lost } if !lost.is_empty() => {
                let fb = RtcpFeedback::Nack { media_ssrc: *media_ssrc, lost: lost.clone() };
                rebuilt.push(rtcp::feedback_packet(*sender_ssrc, &fb));
                expected.push(p.clone());
            }
            _ => {}
        }
    }
    if rebuilt.is_empty() {
        return;
    }
    let wire = rtcp::encode(&rebuilt).expect("the session's RTCP encodes");
    assert_eq!(classify(&wire), PacketKind::Rtcp);
    let back = rtcp::parse(&wire).expect("the session's RTCP parses");
    assert_eq!(back.len(), expected.len());
    for (got, want) in back.iter().zip(&expected) {
        match (got, want) {
            (
                RtcpPacket::Nack { sender_ssrc: s1, media_ssrc: m1, lost: l1 },
                RtcpPacket::Nack { sender_ssrc: s2, media_ssrc: m2, lost: l2 },
            ) => {
                assert_eq!((s1, m1), (s2, m2));
                let set = |l: &[u16]| l.iter().copied().collect::<std::collections::BTreeSet<u16>>();
                assert_eq!(set(l1), set(l2), "NACK round trip");
            }
            _ => assert_eq!(got, want),
        }
    }
}

/// Sequence numbers extended across wrap-arounds stay within half a cycle
/// of the highest and keep their low 16 bits.
fn seq_extender_checks(bytes: &[u8]) {
    let mut extender = SeqExtender::default();
    let mut highest = 0;
    for pair in bytes.chunks_exact(2) {
        let seq = u16::from_be_bytes([pair[0], pair[1]]);
        let v = extender.extend(seq);
        assert_eq!(v & 0xFFFF, u64::from(seq));
        let h = extender.highest().expect("set by extend");
        assert!(h >= highest && h >= 1 << 16 && v <= h && h - v <= 0x8000, "seq {seq}: {v} against {h}");
        highest = h;
    }
}

/// An [`RtxCache`] with small limits from `knob` — packets per SSRC
/// `1 << (bits 0-2)`, SSRCs tracked `1 + (bits 3-4)`, byte budget by bits
/// 5-6 (256 B, 1 KiB, 4 KiB, 64 KiB), age 1 s — run by 4-byte ops
/// `[op][a][b][c]`, by `op % 4`:
/// 0. insert at the current time: SSRC `a % 8`, sequence number `bc`, a
///    payload of `op / 4 * 4` bytes;
/// 1. get SSRC `a % 8`, sequence number `bc`;
/// 2. the clock moves on `bc` ms, then evict;
/// 3. remove SSRC `a % 8`.
///
/// The cache must keep to its limits, and what it returns must be the packet
/// last inserted under that SSRC and sequence number, young enough.
pub fn rtx_cache_ops(knob: u8, ops: &[u8], now: Instant) {
    let limits = RtxCacheLimits {
        packets_per_ssrc: 1 << (knob & 0x07),
        max_ssrcs: 1 + usize::from((knob >> 3) & 0x03),
        max_bytes: [256, 1024, 4096, 64 * 1024][usize::from((knob >> 5) & 0x03)],
        max_age: Duration::from_secs(1),
    };
    let mut cache = RtxCache::new(limits);
    let mut now = now;
    let mut sent = BTreeMap::new();
    for (i, op) in ops.chunks_exact(4).enumerate() {
        let ssrc = u32::from(op[1] % 8);
        let seq = u16::from_be_bytes([op[2], op[3]]);
        match op[0] % 4 {
            0 => {
                let len = usize::from(op[0] / 4) * 4;
                let pkt = CachedRtp {
                    payload_type: op[1] & 0x7F,
                    marker: op[3] & 1 == 1,
                    timestamp: i as u32,
                    payload: Bytes::from(vec![op[2]; len]),
                };
                cache.insert(now, ssrc, seq, pkt.clone());
                if len + ENTRY_OVERHEAD <= limits.max_bytes {
                    assert_eq!(cache.get(now, ssrc, seq), Some(&pkt), "a packet just inserted is there");
                }
                sent.insert((ssrc, seq), (now, pkt));
            }
            1 => {
                if let Some(got) = cache.get(now, ssrc, seq) {
                    let (at, pkt) = sent.get(&(ssrc, seq)).expect("only what was inserted comes out");
                    assert_eq!(got, pkt, "the last packet inserted under {ssrc}/{seq}");
                    assert!(now.duration_since(*at) <= limits.max_age);
                }
            }
            2 => {
                now += Duration::from_millis(u64::from(seq));
                cache.evict(now);
            }
            _ => cache.remove_ssrc(ssrc),
        }
        assert!(cache.bytes() <= limits.max_bytes, "{} bytes held", cache.bytes());
        let held = cache.len();
        assert!(held <= limits.packets_per_ssrc * limits.max_ssrcs);
        assert_eq!(cache.is_empty(), held == 0);
    }
}

// ---- SDP ----

/// The signaling path: the input (lossily decoded as UTF-8) through
/// [`Offer::parse`], and a parsed offer answered with [`build_answer`] for
/// both roles, with fixed credentials, certificate fingerprint and SSRCs.
/// Input: the offer, as it is; its last byte XOR `\n` picks option variants
/// (so an offer ending in a newline gets the defaults): bit 0 RTX off, bit 1
/// VP8 before H.264, bit 2 only the H.264 profile 640c1f, bit 3 no audio
/// codecs, bit 4 no video codecs, bit 5 no candidates.
///
/// An answer must be SDP that `rtc-sdp` and our client read back, with one
/// `m=` line per offered section in the offer's order, the accepted ones
/// (non-zero port) being exactly the negotiated sections.
pub fn fuzz_sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(offer) = Offer::parse(&text) else {
        return;
    };
    assert!(!offer.media.is_empty() && !offer.bundle.is_empty());
    assert!(offer.media.iter().enumerate().all(|(i, m)| m.index == i));
    assert!((4..=256).contains(&offer.ice_ufrag.len()) && (22..=256).contains(&offer.ice_pwd.len()));
    let knob = data.last().map_or(0, |b| b ^ b'\n');
    for role in [Role::Publisher, Role::Subscriber] {
        let opts = answer_options(role, knob);
        if let Ok((sdp, negotiated)) = build_answer(&offer, &opts) {
            check_answer(&offer, &opts, &sdp, &negotiated);
        }
    }
}

fn answer_options(role: Role, knob: u8) -> AnswerOptions {
    let candidates = if knob & 0x20 != 0 {
        vec![]
    } else {
        vec![SocketAddr::from(([192, 0, 2, 10], 5000)), SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 10], 5001))]
    };
    let video_codecs = match (knob & 0x10 != 0, knob & 0x02 != 0) {
        (true, _) => vec![],
        (false, false) => vec![Codec::H264, Codec::Vp8],
        (false, true) => vec![Codec::Vp8, Codec::H264],
    };
    let listed_only = knob & 0x04 != 0;
    AnswerOptions {
        role,
        ice: local_ice(),
        fingerprint: sha256_fingerprint(b"microvibe fuzz certificate"),
        candidates,
        audio_codecs: if knob & 0x08 != 0 { vec![] } else { vec![Codec::Opus] },
        video_codecs,
        h264_profiles: if listed_only {
            vec!["640c1f".to_owned()]
        } else {
            PREFERRED_H264_PROFILES.iter().map(|p| p.to_string()).collect()
        },
        h264_listed_only: listed_only,
        rtx: knob & 0x01 == 0,
        ssrcs: LocalSsrcs { audio: 0x1111_1111, video: 0x2222_2222, video_rtx: 0x3333_3333 },
        cname: "fuzzcname".to_owned(),
        stream_id: "microvibe".to_owned(),
        session_id: 0x0123_4567_89AB_CDEF,
    }
}

fn check_answer(offer: &Offer, opts: &AnswerOptions, sdp: &str, n: &Negotiated) {
    let accepted: Vec<&NegotiatedMedia> = [&n.audio, &n.video].into_iter().flatten().collect();
    assert!(!accepted.is_empty(), "an answer accepts a section");
    assert_eq!(n.bundle.len(), accepted.len());
    assert_eq!((&n.local_ice, &n.candidates), (&opts.ice, &opts.candidates));
    assert_eq!(n.remote_fingerprint, offer.fingerprint);
    for nm in &accepted {
        assert!(n.bundle.contains(&nm.mid));
        let offered = offer
            .media
            .iter()
            .find(|m| m.mid == nm.mid && m.kind == Some(nm.kind))
            .expect("a negotiated section was offered");
        assert!(offered.codecs.iter().any(|c| c.payload_type == nm.payload_type));
        assert_eq!(nm.codec.kind(), nm.kind);
        let allowed = if nm.kind == Track::Audio { &opts.audio_codecs } else { &opts.video_codecs };
        assert!(allowed.contains(&nm.codec));
        assert!(nm.rtx_payload_type.is_none() || (opts.rtx && nm.kind == Track::Video));
        assert!(nm.mid_extension_id.is_none_or(|id| (1..=14).contains(&id)));
        let ssrc = if nm.kind == Track::Audio { opts.ssrcs.audio } else { opts.ssrcs.video };
        assert_eq!(nm.local_ssrc, ssrc);
    }

    // rtc-sdp reads it back: one m= line per offered section, in order.
    let sd = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .unwrap_or_else(|e| panic!("our answer is not SDP ({e}):\n{sdp}"));
    assert_eq!(sd.media_descriptions.len(), offer.media.len(), "every m= line of the offer is answered");
    let value = |attrs: &[Attribute], key: &str| {
        attrs.iter().find(|a| a.key == key).map(|a| a.value.clone().unwrap_or_default())
    };
    let mut answered = 0;
    for (md, om) in sd.media_descriptions.iter().zip(&offer.media) {
        assert_eq!(md.media_name.media, om.media_type);
        if md.media_name.port.value == 0 {
            continue;
        }
        answered += 1;
        let mid = value(&md.attributes, "mid").unwrap_or_default();
        let nm = accepted.iter().find(|nm| nm.mid == mid).expect("an accepted section is negotiated");
        assert_eq!(Some(nm.kind), om.kind, "mid '{mid}' answered as another kind:\n{sdp}");
        assert_eq!(md.media_name.formats.first(), Some(&nm.payload_type.to_string()));
    }
    assert_eq!(answered, accepted.len(), "the accepted sections are the negotiated ones");
    assert!(value(&sd.attributes, "group").is_some_and(|g| g.starts_with("BUNDLE")));

    // And so does our client, as a browser would.
    let parsed = parse_answer(sdp).unwrap_or_else(|e| panic!("our client cannot read the answer ({e}):\n{sdp}"));
    assert!(parsed.ice_lite);
    assert_eq!(parsed.ice, opts.ice);
    assert_eq!(parsed.setup, "passive");
    assert_eq!(Some(parsed.fingerprint), parse_sha256_fingerprint(&opts.fingerprint));
    assert_eq!(parsed.candidates, opts.candidates);
    assert_eq!(parsed.sections.len(), accepted.len());
    let direction = if opts.role == Role::Publisher { "recvonly" } else { "sendonly" };
    assert!(parsed.sections.iter().all(|s| s.direction == direction));
}

#[cfg(test)]
mod tests;
