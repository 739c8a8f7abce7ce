//! One WebRTC peer of the server (a publisher or a subscriber), as a sans-IO
//! state machine: ICE-lite, DTLS-SRTP, RTP/RTCP over one bundled, RTCP-muxed
//! transport.
//!
//! Every datagram from the peer goes to [`WebRtcSession::handle_input`], which
//! demultiplexes by first byte (RFC 7983 §7): STUN is answered at once
//! ([`super::stun`]); DTLS is accepted only from addresses that passed a STUN
//! check (RFC 8445 §7.3: the pair must be validated before media); SRTP/SRTCP
//! only once DTLS keyed it (RFC 5764 §4.2). The address media goes to is the
//! last one nominated with USE-CANDIDATE, or the first authenticated one until
//! then (RFC 8445 §7.3.1.5 for ICE-lite).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use super::cert::DtlsCertificate;
use super::demux::{PacketKind, classify};
use super::dtls::{DtlsEvent, DtlsRole, DtlsState, DtlsTransport};
use super::error::WebRtcError;
use super::rtcp::{self, RtcpFeedback, RtcpPacket};
use super::rtp::{RtpHeader, RtpPacket};
use super::rtx_cache::{CachedRtp, RtxCache};
use super::sdp::{Negotiated, Role, Track};
use super::srtp::SrtpSession;
use super::stun::{StunOutcome, handle_binding};

mod feedback;
mod streams;
mod types;

pub use types::{CloseReason, MediaPacket, NackedPacket, SessionConfig, SessionEvent, SessionStats};

use streams::{RecvStream, SendStream};

/// Most peer addresses remembered (host, reflexive, relayed candidates).
const MAX_PEER_ADDRESSES: usize = 8;
/// Seconds between 1900 (NTP era 0) and 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for ICE and DTLS.
    Connecting,
    /// SRTP keyed.
    Connected,
    /// Done.
    Closed,
}

/// A WebRTC session, sans-IO.
///
/// The API has four groups, as in str0m's `Rtc` and quinn-proto's `Connection`:
///
/// 1. **Getters**: [`negotiated`](Self::negotiated), [`is_connected`](Self::is_connected),
///    [`is_closed`](Self::is_closed), [`remote_addr`](Self::remote_addr),
///    [`peer_addresses`](Self::peer_addresses), [`stats`](Self::stats), ...
/// 2. **Input**: [`handle_input`](Self::handle_input) with every datagram from
///    the peer's addresses, [`handle_timeout`](Self::handle_timeout) when
///    [`poll_timeout`](Self::poll_timeout)'s instant has passed.
/// 3. **Commands**: [`send_rtp`](Self::send_rtp), [`send_rtcp`](Self::send_rtcp),
///    [`request_keyframe`](Self::request_keyframe), [`close`](Self::close).
/// 4. **Output**: drain [`poll_event`](Self::poll_event) and
///    [`poll_transmit`](Self::poll_transmit) until `None` after every input or
///    command, then ask [`poll_timeout`](Self::poll_timeout).
///
/// # Shard integration
///
/// One UDP socket per shard serves every session on it. Route a datagram by
/// source address (every [`SessionEvent::PeerAddress`] adds one), and a STUN
/// request from an unknown address by the local ufrag in its USERNAME
/// ([`super::stun::peek_username`] + [`super::stun::local_ufrag`]).
///
/// # Sending media (subscribers)
///
/// [`send_rtp`](Self::send_rtp) takes the publisher's packet fields, rewrites
/// SSRC, payload type, sequence number and timestamp (continuous across
/// publisher restarts), adds the MID header extension when negotiated,
/// encrypts and queues. Sent packets are cached to answer NACKs (as RTX when
/// negotiated); PLI/FIR from the peer become [`SessionEvent::KeyframeRequested`].
///
/// # Receiving media (publishers)
///
/// Decrypted packets come out as [`SessionEvent::Rtp`]; the session sends
/// receiver reports and NACKs for gaps on its own, and a PLI (or FIR) on
/// [`request_keyframe`](Self::request_keyframe), throttled.
pub struct WebRtcSession {
    config: SessionConfig,
    negotiated: Negotiated,
    phase: Phase,
    created: Instant,
    // ICE
    peers: Vec<SocketAddr>,
    selected: Option<SocketAddr>,
    nominated: bool,
    last_consent: Instant,
    /// When the last datagram of the peer arrived.
    last_input: Instant,
    // DTLS / SRTP
    dtls: DtlsTransport,
    srtp: Option<SrtpSession>,
    // media
    recv: [Option<RecvStream>; 2],
    send: [Option<SendStream>; 2],
    rtx_cache: RtxCache,
    // timers
    next_rr: Option<Instant>,
    next_sr: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    fir_seq: u8,
    // output
    transmits: VecDeque<(SocketAddr, Bytes)>,
    queued_bytes: usize,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for WebRtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcSession")
            .field("role", &self.negotiated.role)
            .field("phase", &self.phase)
            .field("selected", &self.selected)
            .field("dtls", &self.dtls)
            .finish()
    }
}

fn idx(kind: Track) -> usize {
    match kind {
        Track::Audio => 0,
        Track::Video => 1,
    }
}

const KINDS: [Track; 2] = [Track::Audio, Track::Video];

impl WebRtcSession {
    /// A session for an answered offer ([`super::sdp::build_answer`]), created
    /// at `now`, authenticating with `cert` (the one whose fingerprint is in the
    /// answer). `rng` picks the sending streams' first sequence numbers and
    /// timestamps.
    pub fn new(
        config: SessionConfig,
        negotiated: Negotiated,
        cert: &DtlsCertificate,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<Self, WebRtcError> {
        let dtls = DtlsTransport::new(DtlsRole::Server, cert, negotiated.remote_fingerprint, &config.dtls)?;
        let mut send: [Option<SendStream>; 2] = [None, None];
        if negotiated.role == Role::Subscriber {
            for kind in KINDS {
                if let Some(m) = negotiated.media(kind) {
                    let rtx = m.local_rtx_ssrc.zip(m.rtx_payload_type);
                    send[idx(kind)] = Some(SendStream::new(
                        m.local_ssrc,
                        m.payload_type,
                        m.codec.clock_rate(),
                        rtx,
                        rng.random(),
                        rng.random(),
                    ));
                }
            }
        }
        let rtx_cache = RtxCache::new(config.rtx_cache);
        Ok(WebRtcSession {
            config,
            negotiated,
            phase: Phase::Connecting,
            created: now,
            peers: Vec::new(),
            selected: None,
            nominated: false,
            last_consent: now,
            last_input: now,
            dtls,
            srtp: None,
            recv: [None, None],
            send,
            rtx_cache,
            next_rr: None,
            next_sr: None,
            last_keyframe_request: None,
            fir_seq: 0,
            transmits: VecDeque::new(),
            queued_bytes: 0,
            events: VecDeque::new(),
            stats: SessionStats::default(),
            scratch: Vec::with_capacity(1500),
        })
    }

    // ---- getters ----

    /// The negotiated parameters.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Publisher or subscriber.
    pub fn role(&self) -> Role {
        self.negotiated.role
    }

    /// True once SRTP is keyed.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The address media goes to, once a check passed.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Every authenticated peer address (route these to the session).
    pub fn peer_addresses(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Our ICE ufrag (route STUN from unknown addresses by it).
    pub fn local_ufrag(&self) -> &str {
        &self.negotiated.local_ice.ufrag
    }

    /// The SRTP profile, once connected.
    pub fn srtp_profile(&self) -> Option<super::srtp::SrtpProfile> {
        self.srtp.as_ref().map(|s| s.profile())
    }

    /// The peer's SSRC for `kind` (declared in SDP or learned from RTP).
    pub fn remote_ssrc(&self, kind: Track) -> Option<u32> {
        self.recv[idx(kind)]
            .as_ref()
            .map(|r| r.ssrc)
            .or_else(|| self.negotiated.media(kind)?.remote_ssrcs.first().copied())
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Bytes waiting in `poll_transmit`.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    // ---- input ----

    /// Handles one datagram from `from`. Returns an error only when it closed
    /// the session (a [`SessionEvent::Closed`] is queued too); bad packets are
    /// counted and dropped.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Result<(), WebRtcError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += data.len() as u64;
        self.last_input = now;
        match classify(data) {
            PacketKind::Stun => {
                self.on_stun(now, from, data);
                Ok(())
            }
            PacketKind::Dtls => self.on_dtls(now, from, data),
            PacketKind::Rtp => {
                self.on_srtp(now, from, data);
                Ok(())
            }
            PacketKind::Rtcp => {
                self.on_srtcp(now, from, data);
                Ok(())
            }
            PacketKind::Unknown => {
                self.stats.dropped_in += 1;
                Ok(())
            }
        }
    }

    fn on_stun(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match handle_binding(data, from, &self.negotiated.local_ice) {
            StunOutcome::Binding { request, response } => {
                if request.remote_ufrag != self.negotiated.remote_ice.ufrag {
                    // Stale credentials (ICE restart is not supported): ignore.
                    self.stats.stun_rejected += 1;
                    return;
                }
                self.stats.stun_ok += 1;
                self.last_consent = now;
                let known = self.peers.contains(&from);
                if !known {
                    if self.peers.len() >= MAX_PEER_ADDRESSES {
                        self.peers.remove(0);
                    }
                    self.peers.push(from);
                }
                let select = if request.use_candidate {
                    let changed = self.selected != Some(from) || !self.nominated;
                    self.nominated = true;
                    changed
                } else {
                    self.selected.is_none()
                };
                if select {
                    self.selected = Some(from);
                }
                if !known || select {
                    self.events
                        .push_back(SessionEvent::PeerAddress { addr: from, nominated: self.selected == Some(from) });
                }
                self.queue_control(from, Bytes::from(response));
            }
            StunOutcome::Rejected { response, reason } => {
                tracing::debug!(?reason, %from, "STUN request refused");
                self.stats.stun_rejected += 1;
                if let Some(r) = response {
                    self.queue_control(from, Bytes::from(r));
                }
            }
            StunOutcome::Ignored => {}
        }
    }

    fn on_dtls(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> Result<(), WebRtcError> {
        if !self.peers.contains(&from) {
            self.stats.dropped_in += 1;
            return Ok(());
        }
        let res = self.dtls.handle_datagram(now, from, data);
        self.drain_dtls();
        match res {
            Ok(events) => {
                for e in events {
                    match e {
                        DtlsEvent::Connected => self.on_dtls_connected(now)?,
                        DtlsEvent::PeerClosed => self.close_with(CloseReason::PeerClosed),
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.close_with(CloseReason::Error(e.clone()));
                Err(e)
            }
        }
    }

    fn on_dtls_connected(&mut self, now: Instant) -> Result<(), WebRtcError> {
        match self.dtls.srtp(self.config.replay) {
            Ok(srtp) => {
                let profile = srtp.profile();
                self.srtp = Some(srtp);
                self.phase = Phase::Connected;
                self.next_rr = Some(now + self.config.receiver_report_interval);
                self.next_sr = Some(now + self.config.sender_report_interval);
                let remote = self.selected.unwrap_or_else(|| self.peers[0]);
                self.events.push_back(SessionEvent::Connected { remote, profile });
                Ok(())
            }
            Err(e) => {
                self.close_with(CloseReason::Error(e.clone()));
                Err(e)
            }
        }
    }

    fn drain_dtls(&mut self) {
        let Some(to) = self.selected.or_else(|| self.peers.first().copied()) else {
            while self.dtls.poll_transmit().is_some() {}
            return;
        };
        while let Some(d) = self.dtls.poll_transmit() {
            self.queue_control(to, d.freeze());
        }
    }

    fn accept_media_from(&mut self, from: SocketAddr) -> bool {
        if self.srtp.is_none() || !self.peers.contains(&from) {
            self.stats.dropped_in += 1;
            return false;
        }
        true
    }

    fn kind_of_ssrc(&self, ssrc: u32) -> Option<Track> {
        KINDS.into_iter().find(|&k| {
            self.recv[idx(k)].as_ref().is_some_and(|r| r.ssrc == ssrc)
                || self.send[idx(k)].as_ref().is_some_and(|s| s.ssrc == ssrc || s.rtx_ssrc == Some(ssrc))
                || self.negotiated.media(k).is_some_and(|m| {
                    m.remote_ssrcs.contains(&ssrc) || m.remote_rtx_ssrc == Some(ssrc) || m.local_ssrc == ssrc
                })
        })
    }

    fn on_srtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.accept_media_from(from) {
            return;
        }
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        let plain = match srtp.unprotect_rtp(data) {
            Ok(p) => p.freeze(),
            Err(e) => {
                tracing::trace!(%e, "SRTP drop");
                self.stats.srtp_errors += 1;
                return;
            }
        };
        let Ok(pkt) = RtpPacket::parse(plain) else {
            self.stats.dropped_in += 1;
            return;
        };
        if self.negotiated.role != Role::Publisher {
            self.stats.dropped_in += 1;
            return;
        }
        // Payload type → kind (RFC 8843 §9.2: PTs are unique across a bundle
        // for us, since we answer one codec per section).
        let mut found = None;
        for kind in KINDS {
            if let Some(m) = self.negotiated.media(kind) {
                if pkt.payload_type == m.payload_type {
                    found = Some((kind, false));
                } else if m.rtx_payload_type == Some(pkt.payload_type) {
                    found = Some((kind, true));
                }
            }
        }
        let Some((kind, is_rtx)) = found else {
            self.stats.dropped_in += 1;
            return;
        };
        if pkt.is_padding_only() {
            return; // bandwidth probe
        }
        let (pkt, repaired) = if is_rtx {
            match self.unwrap_rtx(kind, &pkt) {
                Some(p) => (p, true),
                None => {
                    self.stats.dropped_in += 1;
                    return;
                }
            }
        } else {
            (pkt, false)
        };
        let clock = self.negotiated.media(kind).map_or(90_000, |m| m.codec.clock_rate());
        let track_loss = self.config.send_nacks && self.negotiated.media(kind).is_some_and(|m| m.nack);
        let stream = self.recv[idx(kind)].get_or_insert_with(|| RecvStream::new(pkt.ssrc, clock));
        if stream.ssrc != pkt.ssrc {
            if repaired {
                self.stats.dropped_in += 1;
                return;
            }
            // The publisher switched SSRC (e.g. track replaced): start over.
            *stream = RecvStream::new(pkt.ssrc, clock);
        }
        let arrival = now.saturating_duration_since(self.created);
        if repaired {
            stream.on_repaired(pkt.sequence_number);
        } else {
            stream.on_packet(now, arrival, pkt.sequence_number, pkt.timestamp, track_loss);
        }
        self.stats.rtp_in += 1;
        self.push_event(SessionEvent::Rtp { kind, packet: pkt, repaired });
    }

    /// RFC 4588 §4: the original packet from an RTX packet.
    fn unwrap_rtx(&mut self, kind: Track, rtx: &RtpPacket) -> Option<RtpPacket> {
        let m = self.negotiated.media(kind)?;
        let ssrc = self.recv[idx(kind)].as_ref().map(|r| r.ssrc).or_else(|| m.remote_ssrcs.first().copied())?;
        let (osn, payload) = super::rtp::rtx_unwrap(&rtx.payload())?;
        let mut buf = Vec::with_capacity(12 + payload.len());
        RtpHeader {
            payload_type: m.payload_type,
            marker: rtx.marker,
            sequence_number: osn,
            timestamp: rtx.timestamp,
            ssrc,
            extension: None,
        }
        .write(&payload, &mut buf);
        RtpPacket::parse(Bytes::from(buf)).ok()
    }

    fn on_srtcp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.accept_media_from(from) {
            return;
        }
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        let plain = match srtp.unprotect_rtcp(data) {
            Ok(p) => p,
            Err(_) => {
                self.stats.srtp_errors += 1;
                return;
            }
        };
        let Ok(packets) = rtcp::parse(&plain) else {
            self.stats.dropped_in += 1;
            return;
        };
        self.stats.rtcp_in += 1;
        for p in packets {
            let kind = match &p {
                RtcpPacket::SenderReport { ssrc, .. } => self.kind_of_ssrc(*ssrc),
                RtcpPacket::Pli { media_ssrc, .. } | RtcpPacket::Nack { media_ssrc, .. } => {
                    self.kind_of_ssrc(*media_ssrc)
                }
                RtcpPacket::Fir { entries, .. } => entries.first().and_then(|(s, _)| self.kind_of_ssrc(*s)),
                RtcpPacket::ReceiverReport { reports, .. } => reports.first().and_then(|r| self.kind_of_ssrc(r.ssrc)),
                _ => None,
            };
            match &p {
                RtcpPacket::SenderReport { ssrc, ntp_time, .. } => {
                    if let Some(k) = kind
                        && let Some(r) = self.recv[idx(k)].as_mut()
                        && r.ssrc == *ssrc
                    {
                        r.on_sender_report(now, *ntp_time);
                    }
                }
                RtcpPacket::Nack { media_ssrc, lost, .. } => self.answer_nack(now, *media_ssrc, lost),
                RtcpPacket::Pli { .. } | RtcpPacket::Fir { .. }
                    if kind == Some(Track::Video) && self.negotiated.role == Role::Subscriber =>
                {
                    self.stats.keyframe_requests_in += 1;
                    self.push_event(SessionEvent::KeyframeRequested { kind: Track::Video });
                }
                _ => {}
            }
            self.push_event(SessionEvent::Rtcp { kind, packet: p });
        }
    }

    /// Handles expired timers: DTLS retransmission, consent and connect
    /// timeouts, RTCP reports, NACKs.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if now >= self.last_consent + self.config.consent_timeout {
            self.close_with(CloseReason::ConsentExpired);
            return;
        }
        if self.phase == Phase::Connecting && now >= self.created + self.config.connect_timeout {
            self.close_with(CloseReason::ConnectTimeout);
            return;
        }
        if let (Phase::Connected, Some(quiet)) = (self.phase, self.config.silence_timeout)
            && now >= self.last_input + quiet
        {
            self.close_with(CloseReason::Silent);
            return;
        }
        if self.dtls.poll_timeout().is_some_and(|t| now >= t) {
            let res = self.dtls.handle_timeout(now);
            self.drain_dtls();
            if let Err(e) = res {
                self.close_with(CloseReason::Error(e));
                return;
            }
        }
        if self.phase != Phase::Connected {
            return;
        }
        if self.next_rr.is_some_and(|t| now >= t) {
            self.next_rr = Some(now + self.config.receiver_report_interval);
            self.send_receiver_report(now);
        }
        if self.next_sr.is_some_and(|t| now >= t) {
            self.next_sr = Some(now + self.config.sender_report_interval);
            self.send_sender_reports(now);
        }
        for kind in KINDS {
            let due = match self.recv[idx(kind)].as_mut() {
                Some(r) if r.next_nack().is_some_and(|t| now >= t) => {
                    let lost = r.due_nacks(now);
                    (!lost.is_empty()).then_some((r.ssrc, lost))
                }
                _ => None,
            };
            if let Some((media_ssrc, lost)) = due {
                self.stats.nacks_sent += 1;
                let _ = self.send_rtcp(now, kind, &RtcpFeedback::Nack { media_ssrc, lost });
            }
        }
        self.rtx_cache.evict(now);
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) is due;
    /// `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut t = self.last_consent + self.config.consent_timeout;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        if self.phase == Phase::Connecting {
            consider(Some(self.created + self.config.connect_timeout));
        }
        if self.dtls.state() == DtlsState::Handshaking {
            consider(self.dtls.poll_timeout());
        }
        if self.phase == Phase::Connected {
            consider(self.config.silence_timeout.map(|q| self.last_input + q));
            consider(self.next_rr);
            consider(self.next_sr);
            for r in self.recv.iter().flatten() {
                consider(r.next_nack());
            }
        }
        Some(t)
    }

    // ---- commands ----

    /// Sends one media packet of `kind` (subscribers; see the type docs).
    /// Returns `Ok(false)` when it was dropped (not connected yet, or the
    /// transmit queue is full), an error when `kind` was not negotiated.
    pub fn send_rtp(&mut self, now: Instant, kind: Track, packet: &MediaPacket) -> Result<bool, WebRtcError> {
        if self.phase == Phase::Closed {
            return Ok(false);
        }
        let Some(media) = self.negotiated.media(kind) else {
            return Err(WebRtcError::InvalidUse("send_rtp: kind not negotiated"));
        };
        let Some(stream) = self.send[idx(kind)].as_mut() else {
            return Err(WebRtcError::InvalidUse("send_rtp: this session does not send"));
        };
        let offered = stream.offer(packet.source_ssrc, packet.sequence_number);
        let (Some(to), Some(srtp), true) = (self.selected, self.srtp.as_mut(), offered) else {
            self.stats.dropped_out += 1;
            return Ok(false);
        };
        if self.queued_bytes > self.config.max_queued_bytes {
            self.stats.dropped_out += 1;
            return Ok(false);
        }
        let (seq, ts) = stream.map(now, packet.source_ssrc, packet.sequence_number, packet.timestamp);
        self.scratch.clear();
        RtpHeader {
            payload_type: stream.payload_type,
            marker: packet.marker,
            sequence_number: seq,
            timestamp: ts,
            ssrc: stream.ssrc,
            extension: media.mid_extension_id.map(|id| (id, media.mid.as_bytes())),
        }
        .write(&packet.payload, &mut self.scratch);
        let wire = srtp.protect_rtp(&self.scratch)?;
        stream.on_sent(packet.payload.len());
        if let Some(ms) = packet.media_ms {
            stream.on_media_clock(now, ts, ms);
        }
        let ssrc = stream.ssrc;
        let pt = stream.payload_type;
        if media.nack && !self.config.shared_rtx {
            self.rtx_cache.insert(
                now,
                ssrc,
                seq,
                CachedRtp { payload_type: pt, marker: packet.marker, timestamp: ts, payload: packet.payload.clone() },
            );
        }
        self.stats.rtp_out += 1;
        self.queue_media(to, wire.freeze());
        Ok(true)
    }

    /// Convenience: [`send_rtp`](Self::send_rtp) with a received packet.
    pub fn send_rtp_packet(&mut self, now: Instant, kind: Track, packet: &RtpPacket) -> Result<bool, WebRtcError> {
        self.send_rtp(now, kind, &MediaPacket::from(packet))
    }

    /// Sends RTCP feedback about `kind` (e.g. a PLI or NACK to a publisher),
    /// as a compound with a receiver report unless `rtcp-rsize` was agreed.
    pub fn send_rtcp(&mut self, _now: Instant, kind: Track, feedback: &RtcpFeedback) -> Result<(), WebRtcError> {
        let sender = self
            .negotiated
            .media(kind)
            .map(|m| m.local_ssrc)
            .ok_or(WebRtcError::InvalidUse("send_rtcp: kind not negotiated"))?;
        let mut packets = Vec::with_capacity(2);
        if !self.negotiated.rtcp_rsize {
            packets.push(rtcp::receiver_report(sender, &[]));
        }
        packets.push(rtcp::feedback_packet(sender, feedback));
        self.send_rtcp_packets(&packets)
    }

    fn send_rtcp_packets(&mut self, packets: &[Box<dyn rtc_rtcp::packet::Packet>]) -> Result<(), WebRtcError> {
        let (Some(to), Some(srtp)) = (self.selected, self.srtp.as_mut()) else {
            return Err(WebRtcError::InvalidUse("RTCP before the session is connected"));
        };
        let plain = rtcp::encode(packets)?;
        let wire = srtp.protect_rtcp(&plain)?;
        self.stats.rtcp_out += 1;
        self.queue_control(to, wire.freeze());
        Ok(())
    }

    /// Asks the publisher for a keyframe: PLI if negotiated, else FIR (RFC
    /// 4585 §6.3.1, RFC 5104 §4.3.1), at most once per
    /// `keyframe_request_interval`. Returns true if one was sent.
    pub fn request_keyframe(&mut self, now: Instant) -> bool {
        if self.phase != Phase::Connected || self.negotiated.role != Role::Publisher {
            return false;
        }
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < self.config.keyframe_request_interval)
        {
            return false;
        }
        let Some(m) = self.negotiated.video.as_ref() else {
            return false;
        };
        let Some(media_ssrc) = self.remote_ssrc(Track::Video) else {
            return false;
        };
        let fb = if m.pli || !m.fir {
            RtcpFeedback::Pli { media_ssrc }
        } else {
            self.fir_seq = self.fir_seq.wrapping_add(1);
            RtcpFeedback::Fir { media_ssrc, seq: self.fir_seq }
        };
        if self.send_rtcp(now, Track::Video, &fb).is_ok() {
            self.last_keyframe_request = Some(now);
            self.stats.keyframe_requests_out += 1;
            true
        } else {
            false
        }
    }

    /// Closes the session: DTLS `close_notify` is queued, then
    /// [`SessionEvent::Closed`] with [`CloseReason::Local`].
    pub fn close(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        self.dtls.close(now);
        self.drain_dtls();
        self.close_with(CloseReason::Local);
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.srtp = None;
        self.rtx_cache = RtxCache::new(self.config.rtx_cache);
        self.events.push_back(SessionEvent::Closed { reason });
    }

    // ---- output ----

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The next datagram to send: (destination, bytes).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        let (to, b) = self.transmits.pop_front()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(b.len());
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += b.len() as u64;
        Some((to, b))
    }

    fn queue_control(&mut self, to: SocketAddr, b: Bytes) {
        self.queued_bytes += b.len();
        self.transmits.push_back((to, b));
    }

    fn queue_media(&mut self, to: SocketAddr, b: Bytes) {
        if self.queued_bytes > self.config.max_queued_bytes {
            self.stats.dropped_out += 1;
            return;
        }
        self.queue_control(to, b);
    }

    fn push_event(&mut self, e: SessionEvent) {
        if self.events.len() >= self.config.max_queued_events {
            if let Some(i) =
                self.events.iter().position(|e| matches!(e, SessionEvent::Rtp { .. } | SessionEvent::Rtcp { .. }))
            {
                self.events.remove(i);
            } else {
                self.events.pop_front();
            }
            self.stats.dropped_events += 1;
        }
        self.events.push_back(e);
    }
}

#[cfg(test)]
mod tests;
