//! The WebRTC shell of a shard: one UDP socket (`webrtc_port_base + shard`), the
//! shard's WebRTC sessions, and their link to the stream registry.
//!
//! - A WHIP publisher's session is created on the stream's home shard, so its RTP
//!   enters the stream there without a hop; its frames fan out to subscribed
//!   shards like RTMP frames (an `Arc` per shard).
//! - WHEP subscribers are spread over the shards (round robin, decided by the
//!   engine); each subscriber's SRTP is encrypted on its own shard.
//! - Datagrams go to a session by source address once ICE has authenticated it,
//!   or for a first STUN request by the ufrag in USERNAME.
//! - Sends use `sendto(2)` on the non-blocking socket directly (a full socket
//!   buffer drops the datagram, which RTP tolerates and NACK repairs).

use crate::fanout::player::{Batch, Player, PlayerEnd, PlayerLimits};
use crate::link::{Protocol, RoomId};
use crate::proto::http::StreamName;
use crate::proto::webrtc::rtx_cache::RtxStore;
use crate::proto::webrtc::sdp::Role;
use crate::proto::webrtc::{
    AnswerOptions, IceCredentials, MediaPacket, Offer, RtcpPacket, RtpPacket, SessionConfig, SessionEvent, Track,
    WebRtcError, WebRtcSession, build_answer, stun,
};
use crate::shard::{ClaimError, PublisherCodecs, PublisherCtl, Shard, ShardHooks};
use crate::stream::frame::{Frame, FrameKind};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What the control plane asks for.
#[derive(Debug, Clone)]
pub enum RtcRole {
    Publisher {
        room_id: RoomId,
    },
    /// A viewer; `client` is the address that asked (for the per-address bound on
    /// sessions that have not connected yet), when known.
    Subscriber {
        client: Option<std::net::IpAddr>,
    },
}

/// A viewer session's place among those not connected yet: taken before the
/// session is created, given back (on drop) when it connects or ends.
pub struct PendingSlot {
    shared: Arc<crate::shard::EngineShared>,
    client: Option<std::net::IpAddr>,
    stream: StreamName,
}

impl std::fmt::Debug for PendingSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSlot").field("client", &self.client).field("stream", &self.stream).finish()
    }
}

impl PendingSlot {
    /// Takes a place, or says which bound is reached.
    pub fn reserve(
        shared: &Arc<crate::shard::EngineShared>,
        client: Option<std::net::IpAddr>,
        stream: &StreamName,
    ) -> Result<PendingSlot, RtcError> {
        let cfg = &shared.cfg;
        let mut m = shared.rtc_pending.lock().unwrap_or_else(|p| p.into_inner());
        if m.total >= cfg.webrtc_pending_total {
            return Err(RtcError::Unavailable("too many WebRTC viewers connecting; try again shortly".into()));
        }
        if let Some(ip) = client
            && m.per_ip.get(&ip).copied().unwrap_or(0) >= cfg.webrtc_pending_per_ip
        {
            return Err(RtcError::TooMany("too many WebRTC sessions connecting from this address".into()));
        }
        if m.per_stream.get(stream).copied().unwrap_or(0) >= cfg.webrtc_pending_per_stream {
            return Err(RtcError::TooMany(
                "too many WebRTC viewers connecting to this stream; try again shortly".into(),
            ));
        }
        m.total += 1;
        if let Some(ip) = client {
            *m.per_ip.entry(ip).or_insert(0) += 1;
        }
        *m.per_stream.entry(stream.clone()).or_insert(0) += 1;
        Ok(PendingSlot { shared: shared.clone(), client, stream: stream.clone() })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut m = self.shared.rtc_pending.lock().unwrap_or_else(|p| p.into_inner());
        m.total = m.total.saturating_sub(1);
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, k: &K) {
            if let Some(n) = map.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(k);
                }
            }
        }
        if let Some(ip) = self.client {
            release(&mut m.per_ip, &ip);
        }
        release(&mut m.per_stream, &self.stream);
    }
}

/// A created session: its id (for PATCH/DELETE) and the SDP answer.
#[derive(Debug, Clone)]
pub struct RtcAnswer {
    pub session_id: RtcSessionId,
    pub sdp: String,
}

/// A WebRTC session's id in the engine: the shard that runs the session and the
/// session's number on that shard. Its text, `{shard}-{number}`, is what the
/// control plane keeps and hands back to end the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RtcSessionId {
    pub shard: usize,
    pub number: u64,
}

impl RtcSessionId {
    /// The id written as `{shard}-{number}`, if `s` is one.
    pub fn parse(s: &str) -> Option<RtcSessionId> {
        let (shard, number) = s.split_once('-')?;
        Some(RtcSessionId { shard: shard.parse().ok()?, number: number.parse().ok()? })
    }
}

impl std::fmt::Display for RtcSessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.shard, self.number)
    }
}

/// Why a session could not be created. The control plane answers each by its
/// [`RtcError::refusal`] and says its `Display` text; it never reads the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcError {
    /// The offer is malformed or asks for what we do not do (the protocol
    /// code's reason, for the client).
    Offer(WebRtcError),
    /// The offer is valid but none of its audio or video sections could be accepted.
    NothingAccepted,
    /// Another publisher is live on this stream.
    AlreadyPublishing,
    /// Nothing is being published on this stream.
    NotLive,
    /// WebRTC is disabled, the engine is stopping, or it is full (why).
    Unavailable(String),
    /// This client (or stream) has too many sessions that are not connected yet.
    TooMany(String),
    /// The session could not be set up on our side (certificate, crypto).
    Session(WebRtcError),
}

/// How signaling answers an [`RtcError`]: the wire reaction sits next to the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcRefusal {
    /// The client's offer: 400.
    BadOffer,
    /// The stream has a publisher: 409.
    Conflict,
    /// Nothing to watch: 404.
    NotLive,
    /// Try later: 503.
    Unavailable,
    /// Too many pending sessions: 429.
    TooMany,
    /// Our failure: 500.
    Internal,
}

impl RtcError {
    pub fn refusal(&self) -> RtcRefusal {
        match self {
            RtcError::Offer(e) if e.http_status() == 400 => RtcRefusal::BadOffer,
            RtcError::Offer(_) | RtcError::Session(_) => RtcRefusal::Internal,
            RtcError::NothingAccepted => RtcRefusal::BadOffer,
            RtcError::AlreadyPublishing => RtcRefusal::Conflict,
            RtcError::NotLive => RtcRefusal::NotLive,
            RtcError::Unavailable(_) => RtcRefusal::Unavailable,
            RtcError::TooMany(_) => RtcRefusal::TooMany,
        }
    }
}

impl std::fmt::Display for RtcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The protocol code's text already names it ("bad SDP offer: …", "unsupported: …").
            RtcError::Offer(e) => write!(f, "{e}"),
            RtcError::NothingAccepted => f.write_str("bad SDP offer: no audio or video section could be accepted"),
            RtcError::AlreadyPublishing => f.write_str("this stream already has a live publisher"),
            RtcError::NotLive => f.write_str("stream is not live"),
            RtcError::Unavailable(why) | RtcError::TooMany(why) => f.write_str(why),
            RtcError::Session(e) => write!(f, "WebRTC session setup failed: {e}"),
        }
    }
}

impl std::error::Error for RtcError {}

struct Sess {
    session: WebRtcSession,
    stream: StreamName,
    /// Publisher: its publisher id; subscriber: its player.
    pub_id: u64,
    ctl: Option<Rc<PublisherCtl>>,
    player: Option<Rc<Player>>,
    room_id: RoomId,
    addrs: Vec<SocketAddr>,
    ufrag: String,
    /// Subscribers: the stream's packets kept for NACKs, shared with the
    /// stream's other subscribers on this shard.
    rtx: Option<Rc<RefCell<RtxStore>>>,
    /// A viewer (joins its stream once connected, then has `player`).
    viewer: bool,
    /// A viewer's place among the sessions not connected yet (until connected).
    pending: Option<PendingSlot>,
}

/// One shard's WebRTC state.
pub struct RtcShard {
    fd: i32,
    _socket: std::net::UdpSocket,
    port: u16,
    sessions: RefCell<HashMap<u64, Sess>>,
    by_addr: RefCell<HashMap<SocketAddr, u64>>,
    by_ufrag: RefCell<HashMap<String, u64>>,
    /// Stream name → the publisher session on this (home) shard.
    publishers: RefCell<HashMap<StreamName, u64>>,
    next: Cell<u64>,
    /// Stream name → its retransmission store on this shard (while it has
    /// subscribers here).
    rtx_stores: RefCell<HashMap<StreamName, Rc<RefCell<RtxStore>>>>,
    /// The last frames' parsed RTP, shared by every subscriber writer (they all
    /// send the same `Arc<Frame>`s, one after another).
    parsed: RefCell<ParsedFrames>,
}

/// Recently parsed frames, newest last, found by pointer (the `Arc` kept here
/// makes the pointer unique while the entry lives).
#[derive(Default)]
struct ParsedFrames {
    entries: std::collections::VecDeque<(Arc<Frame>, Option<MediaPacket>)>,
}

/// Frames whose parse is kept: a subscriber's batch is normally one frame's
/// packets (1-16); a larger one (a writer catching up) re-parses.
const PARSED_FRAMES: usize = 32;

impl ParsedFrames {
    /// The frame's RTP as a packet to send (`None`: not RTP).
    fn get(&mut self, f: &Arc<Frame>) -> Option<&MediaPacket> {
        let i = match self.entries.iter().rposition(|(g, _)| Arc::ptr_eq(f, g)) {
            Some(i) => i,
            None => {
                let packet = RtpPacket::parse(f.payload.clone())
                    .ok()
                    .map(|p| MediaPacket { media_ms: f.media_clock.then_some(f.timestamp), ..MediaPacket::from(&p) });
                if self.entries.len() == PARSED_FRAMES {
                    self.entries.pop_front();
                }
                self.entries.push_back((f.clone(), packet));
                self.entries.len() - 1
            }
        };
        self.entries[i].1.as_ref()
    }
}

// Thread-local because the WebRTC sessions belong to their shard's thread (its UDP
// socket task and the shard's hooks reach them) while the shard, a layer below,
// holds no WebRTC type.
thread_local! {
    /// This shard's WebRTC sessions (set by `start`).
    static RTC: RefCell<Option<Rc<RtcShard>>> = const { RefCell::new(None) };
}

fn rtc() -> Option<Rc<RtcShard>> {
    RTC.with(|r| r.borrow().clone())
}

/// Most viewer sessions one shard holds.
const MAX_VIEWER_SESSIONS: usize = 10_000;
/// Most publisher sessions one shard holds (a budget of their own: viewers never
/// make a publisher wait).
const MAX_PUBLISHER_SESSIONS: usize = 2_000;

/// Binds the shard's UDP socket and starts its receive loop and timer.
pub fn start(shard: &Rc<Shard>) -> std::io::Result<()> {
    let cfg = &shard.shared.cfg;
    if cfg.webrtc_port_base == 0 {
        return Ok(());
    }
    let port = cfg.webrtc_port_base + shard.index as u16;
    let sock = std::net::UdpSocket::bind(SocketAddr::new(cfg.webrtc_bind, port))?;
    sock.set_nonblocking(true)?;
    let recv = monoio::net::udp::UdpSocket::from_std(sock.try_clone()?)?;
    let r = Rc::new(RtcShard {
        fd: sock.as_raw_fd(),
        _socket: sock,
        port,
        sessions: RefCell::new(HashMap::new()),
        by_addr: RefCell::new(HashMap::new()),
        by_ufrag: RefCell::new(HashMap::new()),
        publishers: RefCell::new(HashMap::new()),
        next: Cell::new(1),
        rtx_stores: RefCell::new(HashMap::new()),
        parsed: RefCell::new(ParsedFrames::default()),
    });
    RTC.with(|x| *x.borrow_mut() = Some(r.clone()));
    let sh = shard.clone();
    let rr = r.clone();
    monoio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        // monoio sets `buf`'s length to what it last received: the non-blocking
        // reads use a buffer of their own.
        let mut more = vec![0u8; 2048];
        loop {
            let (res, b) = recv.recv_from(buf).await;
            buf = b;
            match res {
                Ok((n, from)) => {
                    sh.stats().bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    rr.on_datagram(&sh, from, &buf[..n]);
                    // Take what else has arrived (a frame's packets come in a burst)
                    // before the subscriber writers woken by this one run: each then
                    // wakes once per burst instead of once per packet.
                    for _ in 0..RECV_DRAIN {
                        let Some((n, from)) = crate::net::sys::recv_from_nonblocking(rr.fd, &mut more) else { break };
                        sh.stats().bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                        rr.on_datagram(&sh, from, &more[..n]);
                    }
                }
                Err(e) => {
                    if sh.shared.shutting_down.load(Ordering::Relaxed) {
                        break;
                    }
                    tracing::debug!(error = %e, "UDP receive failed");
                }
            }
        }
    });
    let sh = shard.clone();
    monoio::spawn(async move {
        loop {
            monoio::time::sleep(Duration::from_millis(10)).await;
            if sh.shared.shutting_down.load(Ordering::Relaxed) {
                r.close_all(&sh);
                break;
            }
            r.on_tick(&sh);
        }
    });
    Ok(())
}

impl RtcShard {
    fn send_to(&self, shard: &Shard, to: SocketAddr, data: &[u8]) {
        // A full socket buffer drops the datagram, as the network may.
        if let Ok(n) = crate::net::sys::send_to_nonblocking(self.fd, to, data) {
            shard.stats().bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn flush(&self, shard: &Shard, s: &mut Sess) {
        while let Some((to, data)) = s.session.poll_transmit() {
            self.send_to(shard, to, &data);
        }
    }

    fn on_datagram(&self, shard: &Rc<Shard>, from: SocketAddr, data: &[u8]) {
        let sid = match self.by_addr.borrow().get(&from) {
            Some(s) => Some(*s),
            None => stun::peek_username(data)
                .and_then(|u| u.split(':').next())
                .and_then(|ours| self.by_ufrag.borrow().get(ours).copied()),
        };
        let Some(sid) = sid else { return };
        let now = Instant::now();
        {
            let mut sessions = self.sessions.borrow_mut();
            let Some(s) = sessions.get_mut(&sid) else { return };
            if let Err(e) = s.session.handle_input(now, from, data) {
                tracing::debug!(%from, error = %e, "WebRTC input rejected");
            }
        }
        self.process(shard, sid, now);
    }

    fn on_tick(&self, shard: &Rc<Shard>) {
        let now = Instant::now();
        // Publishers replaced by a takeover (or dropped) close their session.
        let kicked: Vec<u64> = self
            .sessions
            .borrow()
            .iter()
            .filter(|(_, s)| s.ctl.as_ref().is_some_and(|c| c.kicked.get()))
            .map(|(k, _)| *k)
            .collect();
        for sid in kicked {
            delete(shard, sid);
        }
        let due: Vec<u64> = self
            .sessions
            .borrow()
            .iter()
            .filter(|(_, s)| s.session.poll_timeout().is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for sid in due {
            if let Some(s) = self.sessions.borrow_mut().get_mut(&sid) {
                s.session.handle_timeout(now);
            }
            self.process(shard, sid, now);
        }
    }

    /// Acts on a session's events and sends its output.
    fn process(&self, shard: &Rc<Shard>, sid: u64, now: Instant) {
        let mut closed = false;
        let mut frames: Vec<(StreamName, u64, Frame)> = Vec::new();
        let mut keyframe_for: Option<StreamName> = None;
        let mut joins: Vec<(StreamName, SocketAddr)> = Vec::new();
        {
            let mut sessions = self.sessions.borrow_mut();
            let Some(s) = sessions.get_mut(&sid) else { return };
            while let Some(ev) = s.session.poll_event() {
                match ev {
                    SessionEvent::PeerAddress { addr, .. } => {
                        if !s.addrs.contains(&addr) && s.addrs.len() < 8 {
                            s.addrs.push(addr);
                            self.by_addr.borrow_mut().insert(addr, sid);
                        }
                    }
                    SessionEvent::Connected { remote, profile } => {
                        tracing::info!(%remote, ?profile, stream = %s.stream, "WebRTC session connected");
                        if s.viewer && s.player.is_none() {
                            // A viewer counts (and gets media) only from here on.
                            s.pending = None;
                            joins.push((s.stream.clone(), remote));
                        }
                    }
                    SessionEvent::Rtp { kind, packet, .. } => {
                        if s.ctl.is_some() {
                            if let Some(c) = &s.ctl {
                                c.bytes_in.set(c.bytes_in.get() + packet.raw().len() as u64);
                            }
                            frames.push((s.stream.clone(), s.pub_id, rtp_frame(kind, &packet)));
                        }
                    }
                    SessionEvent::Rtcp {
                        kind: Some(kind),
                        packet: RtcpPacket::SenderReport { ssrc, ntp_time, rtp_time, .. },
                    } if s.ctl.is_some() => {
                        let fk = match kind {
                            Track::Audio => FrameKind::RtpAudio,
                            Track::Video => FrameKind::RtpVideo,
                        };
                        frames.push((s.stream.clone(), s.pub_id, Frame::sender_report(fk, ssrc, ntp_time, rtp_time)));
                    }
                    SessionEvent::KeyframeRequested { .. } => keyframe_for = Some(s.stream.clone()),
                    SessionEvent::Nacked { kind, packets } => {
                        if let Some(store) = &s.rtx {
                            let store = store.borrow();
                            for n in &packets {
                                let got = store.get(now, n.source_ssrc, n.source_seq);
                                s.session.retransmit(kind, n, got.map(|g| (g.marker, g.timestamp, &g.payload)));
                            }
                        }
                    }
                    SessionEvent::Closed { reason } => {
                        tracing::info!(stream = %s.stream, ?reason, "WebRTC session closed");
                        closed = true;
                    }
                    _ => {}
                }
            }
            self.flush(shard, s);
        }
        for (name, pub_id, f) in frames {
            shard.publish_frame(&name, pub_id, f);
        }
        if let Some(name) = keyframe_for {
            shard.request_keyframe(&name);
        }
        for (name, remote) in joins {
            monoio::spawn(join_viewer(shard.clone(), sid, name, remote));
        }
        if closed {
            self.remove(shard, sid);
        }
    }

    fn remove(&self, shard: &Rc<Shard>, sid: u64) {
        let Some(s) = self.sessions.borrow_mut().remove(&sid) else { return };
        let st = shard.stats();
        st.webrtc_sessions.fetch_sub(1, Ordering::Relaxed);
        let ss = s.session.stats();
        st.webrtc_retransmits.fetch_add(ss.retransmits, Ordering::Relaxed);
        st.webrtc_nacks_sent.fetch_add(ss.nacks_sent, Ordering::Relaxed);
        st.webrtc_keyframe_requests.fetch_add(ss.keyframe_requests_out, Ordering::Relaxed);
        tracing::info!(stream = %s.stream, stats = ?ss, "WebRTC session stats");
        for a in &s.addrs {
            self.by_addr.borrow_mut().remove(a);
        }
        self.by_ufrag.borrow_mut().remove(&s.ufrag);
        if s.ctl.is_some() {
            // A takeover registers the new publisher before the old one is removed:
            // only forget the stream's entries if they are still this session's.
            let mine = self.publishers.borrow().get(&s.stream) == Some(&sid);
            if mine {
                self.publishers.borrow_mut().remove(&s.stream);
                shard.shared.rtc_codecs.lock().unwrap_or_else(|p| p.into_inner()).remove(&s.stream);
            }
            shard.unpublish(&s.stream, s.pub_id);
        }
        if let Some(p) = &s.player {
            p.end(PlayerEnd::Kicked);
            shard.leave(&s.stream, p, s.room_id);
        }
        if let Some(store) = s.rtx {
            // The map's and this session's: the stream's last subscriber here.
            if Rc::strong_count(&store) <= 2 {
                self.rtx_stores.borrow_mut().remove(&s.stream);
            }
        }
    }

    fn close_all(&self, shard: &Rc<Shard>) {
        let now = Instant::now();
        let ids: Vec<u64> = self.sessions.borrow().keys().copied().collect();
        for sid in ids {
            if let Some(s) = self.sessions.borrow_mut().get_mut(&sid) {
                s.session.close(now);
                self.flush(shard, s);
            }
            self.remove(shard, sid);
        }
    }

    /// Sends a keyframe request to the publisher of `name` (this is its home).
    pub fn keyframe_request(&self, shard: &Shard, name: &StreamName) {
        let Some(sid) = self.publishers.borrow().get(name).copied() else { return };
        if let Some(s) = self.sessions.borrow_mut().get_mut(&sid) {
            if s.session.request_keyframe(Instant::now()) {
                self.flush(shard, s);
            }
        }
    }

    fn sessions_for(&self, name: &StreamName) -> Vec<u64> {
        self.sessions.borrow().iter().filter(|(_, s)| s.stream == *name).map(|(k, _)| *k).collect()
    }
}

/// A publisher's RTP packet as a frame for the fan-out.
fn rtp_frame(kind: Track, p: &RtpPacket) -> Frame {
    let fk = match kind {
        Track::Audio => FrameKind::RtpAudio,
        Track::Video => FrameKind::RtpVideo,
    };
    Frame::rtp(fk, p.raw().clone())
}

/// Datagrams read without waiting after each awaited one.
const RECV_DRAIN: usize = 32;

/// Creates a session on this shard (called through [`ShardMsg::RtcCreate`]).
pub async fn create(
    shard: Rc<Shard>,
    role: RtcRole,
    name: StreamName,
    offer: String,
    pending: Option<PendingSlot>,
) -> Result<RtcAnswer, RtcError> {
    let Some(r) = rtc() else {
        return Err(RtcError::Unavailable("WebRTC is disabled (webrtc.udp_port_base = 0)".into()));
    };
    let publishers = r.publishers.borrow().len();
    let viewers = r.sessions.borrow().len().saturating_sub(publishers);
    let full = match role {
        RtcRole::Publisher { .. } => publishers >= MAX_PUBLISHER_SESSIONS,
        RtcRole::Subscriber { .. } => viewers >= MAX_VIEWER_SESSIONS,
    };
    if full {
        return Err(RtcError::Unavailable("too many WebRTC sessions on this shard".into()));
    }
    let offer = Offer::parse(&offer).map_err(RtcError::Offer)?;
    let cfg = &shard.shared.cfg;
    let candidates: Vec<SocketAddr> = cfg.webrtc_candidates.iter().map(|ip| SocketAddr::new(*ip, r.port)).collect();
    let ice = IceCredentials::random(&mut rand::rng());
    let (sdp_role, is_pub) = match role {
        RtcRole::Publisher { .. } => (Role::Publisher, true),
        RtcRole::Subscriber { .. } => (Role::Subscriber, false),
    };
    let cert = shard.shared.cert();
    let mut opts = AnswerOptions::new(sdp_role, ice.clone(), &cert, candidates, &mut rand::rng());
    if !is_pub {
        // Subscribers get what the publisher sends (no transcoding between codecs).
        let codecs = shard.shared.rtc_codecs.lock().unwrap_or_else(|p| p.into_inner()).get(&name).cloned();
        match codecs {
            Some(c) => {
                if let Some(v) = c.video {
                    opts.video_codecs = vec![v];
                }
                if let Some(p) = c.h264_profile {
                    opts.h264_profiles = vec![p];
                }
            }
            // Not a WebRTC publisher: RTMP media bridged as H.264 + Opus.
            None => opts.video_codecs = vec![crate::proto::webrtc::Codec::H264],
        }
    }
    let (sdp, negotiated) = build_answer(&offer, &opts).map_err(RtcError::Offer)?;
    if negotiated.audio.is_none() && negotiated.video.is_none() {
        return Err(RtcError::NothingAccepted);
    }
    let now = Instant::now();
    // A publisher's media never pauses for seconds: 4 s of silence is a closed tab
    // or a lost network (the room then leaves `live` after the unpublish grace).
    let silence_timeout = is_pub.then_some(PUBLISHER_SILENCE_TIMEOUT);
    // A viewer that does not connect soon holds its place among the pending
    // sessions for nothing: a WHEP flood must not fill the shard for 30 s.
    let connect_timeout =
        if is_pub { SessionConfig::default().connect_timeout } else { shard.shared.cfg.webrtc_viewer_connect_timeout };
    let config = SessionConfig { shared_rtx: !is_pub, silence_timeout, connect_timeout, ..SessionConfig::default() };
    let rtx_limits = config.rtx_cache;
    let session = WebRtcSession::new(config, negotiated, &cert, now, &mut rand::rng()).map_err(RtcError::Session)?;
    let sid = r.next.get();
    r.next.set(sid + 1);
    let stream = name.clone();
    let mut sess = Sess {
        session,
        stream: stream.clone(),
        pub_id: 0,
        ctl: None,
        player: None,
        room_id: RoomId::default(),
        addrs: vec![],
        ufrag: ice.ufrag.clone(),
        rtx: None,
        viewer: !is_pub,
        pending,
    };
    if is_pub {
        let RtcRole::Publisher { room_id } = role else { unreachable!("is_pub implies Publisher") };
        let ctl = Rc::new(PublisherCtl {
            name: name.clone(),
            fd: -1,
            kicked: Cell::new(false),
            id: Cell::new(0),
            addr: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0),
            protocol: Protocol::WebRtc,
            started: Instant::now(),
            bytes_in: Cell::new(0),
        });
        let pub_id = shard.claim_stream(&name, room_id, ctl.clone(), false).await.map_err(|e| match e {
            ClaimError::Taken => RtcError::AlreadyPublishing,
            ClaimError::HomeUnreachable => RtcError::Unavailable(e.to_string()),
        })?;
        sess.pub_id = pub_id;
        sess.ctl = Some(ctl);
        let v = sess.session.negotiated().video.clone();
        let codecs = PublisherCodecs {
            video: v.as_ref().map(|m| m.codec),
            h264_profile: v.as_ref().and_then(|m| {
                m.fmtp
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("profile-level-id=").map(|x| x.to_ascii_lowercase()))
            }),
        };
        shard.shared.rtc_codecs.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone(), codecs);
        sess.room_id = room_id;
        r.publishers.borrow_mut().insert(stream.clone(), sid);
    } else {
        // The viewer joins its stream (and is counted) once connected: see
        // `join_viewer`. Here only whether the stream is live at all.
        if !shard.is_live(&name) && !shard.stream_known(&name).await {
            return Err(RtcError::NotLive);
        }
        sess.rtx = Some(
            r.rtx_stores
                .borrow_mut()
                .entry(stream.clone())
                .or_insert_with(|| Rc::new(RefCell::new(RtxStore::new(rtx_limits))))
                .clone(),
        );
    }
    r.by_ufrag.borrow_mut().insert(ice.ufrag.clone(), sid);
    r.sessions.borrow_mut().insert(sid, sess);
    shard.stats().webrtc_sessions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(stream = %name, publisher = is_pub, session = sid, "WebRTC session created");
    Ok(RtcAnswer { session_id: RtcSessionId { shard: shard.index, number: sid }, sdp })
}

/// A viewer session has connected: joins its stream (the viewer counts from now),
/// then starts sending it media. A stream that is not live ends the session.
async fn join_viewer(shard: Rc<Shard>, sid: u64, name: StreamName, remote: SocketAddr) {
    let Some(r) = rtc() else { return };
    let player = Rc::new(Player::new(
        shard.shared.next_id(),
        Protocol::WebRtc,
        remote,
        PlayerLimits::from_config(&shard.shared.cfg).unmerged(),
    ));
    let room_id = match shard.join(&name, player.clone(), shard.shared.cfg.http_wait).await {
        Ok(id) => id,
        Err(e) => {
            tracing::info!(stream = %name, session = sid, error = ?e, "WebRTC viewer's stream is not live; closing");
            delete(&shard, sid);
            return;
        }
    };
    let joined = match r.sessions.borrow_mut().get_mut(&sid) {
        Some(s) => {
            s.player = Some(player.clone());
            s.room_id = room_id;
            true
        }
        None => false,
    };
    if !joined {
        // The session ended while joining.
        player.end(PlayerEnd::Kicked);
        shard.leave(&name, &player, room_id);
        return;
    }
    monoio::spawn(subscriber_writer(shard.clone(), r.clone(), sid, player));
    shard.request_keyframe(&name);
}

/// A WebRTC publisher that sent nothing for this long is gone.
const PUBLISHER_SILENCE_TIMEOUT: Duration = Duration::from_secs(4);

/// Ends a session on this shard; false if there is no such session.
pub fn delete(shard: &Rc<Shard>, sid: u64) -> bool {
    let Some(r) = rtc() else { return false };
    let exists = {
        let mut sessions = r.sessions.borrow_mut();
        match sessions.get_mut(&sid) {
            Some(s) => {
                s.session.close(Instant::now());
                r.flush(shard, s);
                true
            }
            None => false,
        }
    };
    if exists {
        r.remove(shard, sid);
    }
    exists
}

/// Closes every session of a stream on this shard (room ended or dropped).
pub fn drop_stream(shard: &Rc<Shard>, name: &StreamName) {
    let Some(r) = rtc() else { return };
    for sid in r.sessions_for(name) {
        delete(shard, sid);
    }
}

/// Number of WebRTC sessions on this shard.
pub fn session_count() -> usize {
    rtc().map_or(0, |r| r.sessions.borrow().len())
}

/// Asks this (home) shard's publisher session for a keyframe.
/// What the shard asks of its WebRTC sessions.
pub struct RtcHooks;

impl ShardHooks for RtcHooks {
    fn request_keyframe(&self, shard: &Shard, name: &StreamName) {
        keyframe_request(shard, name);
    }

    fn stream_dropped(&self, shard: &Rc<Shard>, name: &StreamName) {
        drop_stream(shard, name);
    }

    fn start_relay(&self, shard: &Rc<Shard>, name: &StreamName, origin: std::net::SocketAddr, room_id: RoomId) {
        crate::serve::relay::start(shard, name, origin, room_id);
    }

    fn set_forwards(
        &self,
        shard: &Rc<Shard>,
        name: &StreamName,
        room_id: RoomId,
        targets: Vec<crate::link::ForwardTarget>,
    ) {
        crate::serve::forward::set(shard, name, room_id, targets);
    }
}

pub fn keyframe_request(shard: &Shard, name: &StreamName) {
    if let Some(r) = rtc() {
        r.keyframe_request(shard, name);
    }
}

/// Sends the stream's RTP to one subscriber session as it arrives.
async fn subscriber_writer(shard: Rc<Shard>, r: Rc<RtcShard>, sid: u64, player: Rc<Player>) {
    loop {
        match player.next_batch().await {
            Batch::End(PlayerEnd::StreamEnded) => {
                // The broadcast is over: the session ends now (DTLS close_notify), not
                // when the viewer's consent checks time out.
                tracing::info!(session = sid, "stream ended; closing the WebRTC viewer session");
                delete(&shard, sid);
                break;
            }
            Batch::End(_) => break,
            Batch::Frames(frames) => {
                let now = Instant::now();
                let mut sessions = r.sessions.borrow_mut();
                let Some(s) = sessions.get_mut(&sid) else { break };
                let mut store = s.rtx.as_ref().map(|st| st.borrow_mut());
                let mut parsed = r.parsed.borrow_mut();
                for f in &frames {
                    let kind = match f.kind {
                        FrameKind::RtpAudio => Track::Audio,
                        FrameKind::RtpVideo => Track::Video,
                        _ => continue,
                    };
                    if s.session.negotiated().media(kind).is_none() {
                        continue;
                    }
                    let Some(packet) = parsed.get(f) else { continue };
                    if let (Ok(true), Some(st)) = (s.session.send_rtp(now, kind, packet), store.as_mut()) {
                        st.insert(
                            now,
                            packet.source_ssrc,
                            packet.sequence_number,
                            packet.marker,
                            packet.timestamp,
                            &packet.payload,
                        );
                    }
                }
                drop(parsed);
                drop(store);
                r.flush(&shard, s);
            }
        }
    }
}

#[cfg(test)]
mod tests;
