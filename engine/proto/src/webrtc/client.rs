//! A minimal WebRTC *client* peer, sans-IO: offers, runs controlling ICE
//! checks with USE-CANDIDATE against one server candidate, is the DTLS client
//! (`a=setup:active`), and sends/receives SRTP.
//!
//! It exists to test [`super::WebRtcSession`] deterministically (two ends in
//! memory with an injected clock, as quinn-proto's test `Pair` does) and for
//! load generators (WHIP publishers / WHEP players without a browser). It is
//! not a general WebRTC stack: one audio and one video section, fixed codecs.

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::io::Cursor;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtc_sdp::description::session::SessionDescription;

use super::cert::{DtlsCertificate, parse_sha256_fingerprint};
use super::demux::{PacketKind, classify};
use super::dtls::{DtlsEvent, DtlsOptions, DtlsRole, DtlsTransport};
use super::error::WebRtcError;
use super::rtcp::{self, RtcpFeedback, RtcpPacket};
use super::rtp::RtpPacket;
use super::srtp::{ReplayWindows, SrtpProfile, SrtpSession};
use super::stun::{IceCredentials, binding_request, parse_success_response};

/// Payload types of the client's offer.
pub mod pt {
    /// Opus.
    pub const OPUS: u8 = 111;
    /// VP8.
    pub const VP8: u8 = 96;
    /// RTX for VP8.
    pub const VP8_RTX: u8 = 97;
    /// H.264 constrained baseline, packetization-mode 1.
    pub const H264: u8 = 102;
    /// RTX for H.264.
    pub const H264_RTX: u8 = 103;
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// SRTP keyed.
    Connected(SrtpProfile),
    /// A decrypted RTP packet.
    Rtp(RtpPacket),
    /// A parsed RTCP packet.
    Rtcp(RtcpPacket),
    /// DTLS closed by the server.
    Closed,
}

/// The server side as learnt from the answer.
#[derive(Debug, Clone)]
pub struct ParsedAnswer {
    /// Server ICE credentials.
    pub ice: IceCredentials,
    /// Server certificate digest.
    pub fingerprint: [u8; 32],
    /// Server candidates.
    pub candidates: Vec<SocketAddr>,
    /// `a=ice-lite` present.
    pub ice_lite: bool,
    /// `a=setup` value of the first section.
    pub setup: String,
    /// (mid, kind, payload types, direction, ssrcs) per accepted section.
    pub sections: Vec<AnswerSection>,
}

/// One accepted section of an answer.
#[derive(Debug, Clone)]
pub struct AnswerSection {
    /// `a=mid`.
    pub mid: String,
    /// `audio` / `video`.
    pub media: String,
    /// Payload types of the `m=` line.
    pub payload_types: Vec<u8>,
    /// Direction attribute.
    pub direction: String,
    /// `a=ssrc` ids.
    pub ssrcs: Vec<u32>,
}

/// Parses an answer from [`super::sdp::build_answer`] (or any ICE-lite server).
pub fn parse_answer(text: &str) -> Result<ParsedAnswer, WebRtcError> {
    let sd = SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
        .map_err(|e| WebRtcError::peer(format!("answer SDP: {e}")))?;
    let mut out = ParsedAnswer {
        ice: IceCredentials { ufrag: String::new(), pwd: String::new() },
        fingerprint: [0; 32],
        candidates: vec![],
        ice_lite: sd.attributes.iter().any(|a| a.key == "ice-lite"),
        setup: String::new(),
        sections: vec![],
    };
    for md in &sd.media_descriptions {
        if md.media_name.port.value == 0 {
            continue;
        }
        let get = |k: &str| md.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone());
        if out.ice.ufrag.is_empty() {
            out.ice.ufrag = get("ice-ufrag").unwrap_or_default();
            out.ice.pwd = get("ice-pwd").unwrap_or_default();
            out.setup = get("setup").unwrap_or_default();
            if let Some(fp) = get("fingerprint")
                && let Some((_, v)) = fp.split_once(' ')
            {
                out.fingerprint =
                    parse_sha256_fingerprint(v).ok_or_else(|| WebRtcError::peer("bad answer fingerprint"))?;
            }
            for a in md.attributes.iter().filter(|a| a.key == "candidate") {
                let v = a.value.as_deref().unwrap_or("");
                let f: Vec<&str> = v.split_whitespace().collect();
                if f.len() >= 6
                    && let (Ok(ip), Ok(port)) = (f[4].parse(), f[5].parse())
                {
                    out.candidates.push(SocketAddr::new(ip, port));
                }
            }
        }
        let direction = ["sendonly", "recvonly", "sendrecv", "inactive"]
            .into_iter()
            .find(|d| md.attributes.iter().any(|a| a.key == *d))
            .unwrap_or("sendrecv")
            .to_owned();
        let mut ssrcs: Vec<u32> = Vec::new();
        for a in md.attributes.iter().filter(|a| a.key == "ssrc") {
            if let Some(s) = a.value.as_deref().and_then(|v| v.split_whitespace().next()).and_then(|s| s.parse().ok())
                && !ssrcs.contains(&s)
            {
                ssrcs.push(s);
            }
        }
        out.sections.push(AnswerSection {
            mid: get("mid").unwrap_or_default(),
            media: md.media_name.media.clone(),
            payload_types: md.media_name.formats.iter().filter_map(|f| f.parse().ok()).collect(),
            direction,
            ssrcs,
        });
    }
    Ok(out)
}

/// The client peer (see the module docs).
pub struct WebRtcClient {
    cert: DtlsCertificate,
    ice: IceCredentials,
    answer: Option<ParsedAnswer>,
    server: Option<SocketAddr>,
    dtls: Option<DtlsTransport>,
    srtp: Option<SrtpSession>,
    tie_breaker: u64,
    next_check: Option<Instant>,
    ice_ok: bool,
    transmits: VecDeque<(SocketAddr, Bytes)>,
    events: VecDeque<ClientEvent>,
    /// STUN transaction ids; seeded from the caller's random source.
    rng: SmallRng,
    /// Our SSRCs: audio, video, video RTX.
    pub ssrcs: [u32; 3],
}

impl std::fmt::Debug for WebRtcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcClient").field("server", &self.server).field("ice_ok", &self.ice_ok).finish()
    }
}

impl WebRtcClient {
    /// A client with a fresh certificate, and credentials and SSRCs drawn from `rng`.
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> Result<Self, WebRtcError> {
        Ok(WebRtcClient {
            cert: DtlsCertificate::generate()?,
            ice: IceCredentials::random(rng),
            answer: None,
            server: None,
            dtls: None,
            srtp: None,
            tie_breaker: rng.random(),
            next_check: None,
            ice_ok: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            ssrcs: [rng.random::<u32>() | 1, rng.random::<u32>() | 2, rng.random::<u32>() | 4],
            rng: SmallRng::seed_from_u64(rng.random()),
        })
    }

    /// A browser-shaped offer: BUNDLE of audio (mid 0, Opus) and video (mid 1,
    /// VP8 + RTX, H.264 + RTX), MID extension, NACK/PLI/FIR, `a=setup:actpass`.
    /// `send`: the client publishes (sendonly, with SSRCs), else recvonly.
    pub fn offer(&self, send: bool) -> String {
        let dir = if send { "sendonly" } else { "recvonly" };
        let mut s = String::new();
        s += "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
        s += "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS test\r\n";
        let common = format!(
            "c=IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=ice-options:trickle\r\na=fingerprint:{}\r\na=setup:actpass\r\n",
            self.ice.ufrag,
            self.ice.pwd,
            self.cert.sdp_fingerprint()
        );
        s += &format!("m=audio 9 UDP/TLS/RTP/SAVPF {}\r\n", pt::OPUS);
        s += &common;
        s += &format!("a=mid:0\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na={dir}\r\n");
        s += "a=rtcp-mux\r\n";
        s += &format!("a=rtpmap:{0} opus/48000/2\r\na=fmtp:{0} minptime=10;useinbandfec=1\r\n", pt::OPUS);
        if send {
            s += &format!("a=ssrc:{} cname:testclient\r\n", self.ssrcs[0]);
        }
        s += &format!("m=video 9 UDP/TLS/RTP/SAVPF {} {} {} {}\r\n", pt::VP8, pt::VP8_RTX, pt::H264, pt::H264_RTX);
        s += &common;
        s += &format!("a=mid:1\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na={dir}\r\n");
        s += "a=rtcp-mux\r\na=rtcp-rsize\r\n";
        for (p, rtx, name, fmtp) in [
            (pt::VP8, pt::VP8_RTX, "VP8", None),
            (
                pt::H264,
                pt::H264_RTX,
                "H264",
                Some("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
            ),
        ] {
            s += &format!("a=rtpmap:{p} {name}/90000\r\n");
            for fb in ["nack", "nack pli", "ccm fir", "goog-remb"] {
                s += &format!("a=rtcp-fb:{p} {fb}\r\n");
            }
            if let Some(f) = fmtp {
                s += &format!("a=fmtp:{p} {f}\r\n");
            }
            s += &format!("a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={p}\r\n");
        }
        if send {
            s += &format!(
                "a=ssrc-group:FID {} {}\r\na=ssrc:{} cname:testclient\r\na=ssrc:{} cname:testclient\r\n",
                self.ssrcs[1], self.ssrcs[2], self.ssrcs[1], self.ssrcs[2]
            );
        }
        s
    }

    /// Takes the answer; checks start at the first [`handle_timeout`](Self::handle_timeout).
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<ParsedAnswer, WebRtcError> {
        let a = parse_answer(answer)?;
        let server = *a.candidates.first().ok_or_else(|| WebRtcError::peer("answer has no candidate"))?;
        self.server = Some(server);
        let opts = DtlsOptions {
            profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80],
            ..DtlsOptions::default()
        };
        self.dtls = Some(DtlsTransport::new(DtlsRole::Client, &self.cert, a.fingerprint, &opts)?);
        self.answer = Some(a.clone());
        self.next_check = Some(now);
        Ok(a)
    }

    fn send_check(&mut self, now: Instant) {
        let (Some(a), Some(server)) = (self.answer.as_ref(), self.server) else {
            return;
        };
        let tid: [u8; 12] = self.rng.random();
        if let Ok(req) = binding_request(tid, &a.ice, &self.ice.ufrag, true, self.tie_breaker) {
            self.transmits.push_back((server, Bytes::from(req)));
        }
        let every = if self.ice_ok { Duration::from_secs(2) } else { Duration::from_millis(50) };
        self.next_check = Some(now + every);
    }

    /// One datagram from the server.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Result<(), WebRtcError> {
        match classify(data) {
            PacketKind::Stun => {
                let Some(a) = self.answer.as_ref() else {
                    return Ok(());
                };
                if parse_success_response(data, &a.ice.pwd).is_ok() && !self.ice_ok {
                    self.ice_ok = true;
                    if let Some(d) = self.dtls.as_mut() {
                        d.connect(now, from)?;
                    }
                    self.drain_dtls();
                }
            }
            PacketKind::Dtls => {
                let Some(d) = self.dtls.as_mut() else {
                    return Ok(());
                };
                let events = d.handle_datagram(now, from, data);
                self.drain_dtls();
                for e in events? {
                    match e {
                        DtlsEvent::Connected => {
                            let srtp = self.dtls.as_ref().map(|d| d.srtp(ReplayWindows::default())).transpose()?;
                            if let Some(s) = srtp {
                                self.events.push_back(ClientEvent::Connected(s.profile()));
                                self.srtp = Some(s);
                            }
                        }
                        DtlsEvent::PeerClosed => self.events.push_back(ClientEvent::Closed),
                    }
                }
            }
            PacketKind::Rtp => {
                if let Some(s) = self.srtp.as_mut()
                    && let Ok(p) = s.unprotect_rtp(data)
                    && let Ok(p) = RtpPacket::parse(p.freeze())
                {
                    self.events.push_back(ClientEvent::Rtp(p));
                }
            }
            PacketKind::Rtcp => {
                if let Some(s) = self.srtp.as_mut()
                    && let Ok(p) = s.unprotect_rtcp(data)
                    && let Ok(ps) = rtcp::parse(&p)
                {
                    self.events.extend(ps.into_iter().map(ClientEvent::Rtcp));
                }
            }
            PacketKind::Unknown => {}
        }
        Ok(())
    }

    fn drain_dtls(&mut self) {
        let Some(server) = self.server else { return };
        if let Some(d) = self.dtls.as_mut() {
            while let Some(b) = d.poll_transmit() {
                self.transmits.push_back((server, b.freeze()));
            }
        }
    }

    /// Timers: checks (50 ms until answered, then 2 s consent), DTLS.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebRtcError> {
        if self.next_check.is_some_and(|t| now >= t) {
            self.send_check(now);
        }
        if let Some(d) = self.dtls.as_mut()
            && d.poll_timeout().is_some_and(|t| now >= t)
        {
            d.handle_timeout(now)?;
        }
        self.drain_dtls();
        Ok(())
    }

    /// Next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let d = self.dtls.as_ref().and_then(|d| d.poll_timeout());
        match (self.next_check, d) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stops consent checks (to test consent expiry).
    pub fn stop_checks(&mut self) {
        self.next_check = None;
    }

    /// Encrypts and queues a plain RTP packet.
    pub fn send_rtp(&mut self, plain: &[u8]) -> Result<(), WebRtcError> {
        let (Some(s), Some(to)) = (self.srtp.as_mut(), self.server) else {
            return Err(WebRtcError::InvalidUse("client not connected"));
        };
        let wire = s.protect_rtp(plain)?;
        self.transmits.push_back((to, wire.freeze()));
        Ok(())
    }

    /// Encrypts and queues one RTCP feedback packet (non-compound).
    pub fn send_rtcp(&mut self, fb: &RtcpFeedback) -> Result<(), WebRtcError> {
        let (Some(s), Some(to)) = (self.srtp.as_mut(), self.server) else {
            return Err(WebRtcError::InvalidUse("client not connected"));
        };
        let plain = rtcp::encode(&[rtcp::feedback_packet(self.ssrcs[1], fb)])?;
        let wire = s.protect_rtcp(&plain)?;
        self.transmits.push_back((to, wire.freeze()));
        Ok(())
    }

    /// Sends DTLS close_notify.
    pub fn close(&mut self, now: Instant) {
        if let Some(d) = self.dtls.as_mut() {
            d.close(now);
        }
        self.drain_dtls();
    }

    /// True once SRTP is keyed.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }
}
