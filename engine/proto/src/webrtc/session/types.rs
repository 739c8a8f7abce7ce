//! Configuration, events and statistics of [`super::WebRtcSession`].

use core::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::super::dtls::DtlsOptions;
use super::super::error::WebRtcError;
use super::super::rtcp::RtcpPacket;
use super::super::rtp::RtpPacket;
use super::super::rtx_cache::RtxCacheLimits;
use super::super::sdp::Track;
use super::super::srtp::{ReplayWindows, SrtpProfile};

/// Configuration of a [`WebRtcSession`](super::WebRtcSession).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Close when no authenticated STUN request arrived for this long (RFC 7675
    /// §5.1: 30 s). Default 30 s.
    pub consent_timeout: Duration,
    /// Close when DTLS is not connected this long after creation. Default 30 s.
    pub connect_timeout: Duration,
    /// Once connected, close when nothing at all (STUN, DTLS, RTP, RTCP) arrived
    /// for this long. For publishers, whose media and reports never pause for
    /// seconds: a closed tab ends the session in seconds, not at consent expiry.
    /// Default `None` (consent freshness only).
    pub silence_timeout: Option<Duration>,
    /// DTLS options (profiles, EMS, retransmission, MTU).
    pub dtls: DtlsOptions,
    /// Inbound SRTP/SRTCP replay windows.
    pub replay: ReplayWindows,
    /// Retransmission cache bounds (sending side).
    pub rtx_cache: RtxCacheLimits,
    /// The shell keeps the packets for retransmission (one store shared by every
    /// subscriber of a stream, see [`RtxStore`](super::super::rtx_cache::RtxStore)):
    /// the session caches nothing and reports NACKs as
    /// [`SessionEvent::Nacked`], to be answered with
    /// [`retransmit`](super::WebRtcSession::retransmit). Default off.
    pub shared_rtx: bool,
    /// Most bytes waiting in `poll_transmit`; media beyond it is dropped (and
    /// counted), control traffic always queues. Default 1 MiB.
    pub max_queued_bytes: usize,
    /// Most events waiting in `poll_event`; the oldest media event is dropped
    /// beyond it. Default 4096.
    pub max_queued_events: usize,
    /// Least time between two keyframe requests we send (PLI/FIR). Default 500 ms.
    pub keyframe_request_interval: Duration,
    /// Receiver report interval while receiving (RFC 3550 §6.2). Default 1 s.
    pub receiver_report_interval: Duration,
    /// Sender report interval while sending. Default 1 s.
    pub sender_report_interval: Duration,
    /// Send NACKs for inbound losses when negotiated (RFC 4585 §6.2.1). Default on.
    pub send_nacks: bool,
    /// An `(instant, unix time)` pair read once by the shell, to put wall-clock
    /// NTP times in sender reports. `None`: NTP times count from the session's
    /// creation (enough for A/V sync within one session).
    pub wallclock: Option<(Instant, Duration)>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            consent_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(30),
            silence_timeout: None,
            dtls: DtlsOptions::default(),
            replay: ReplayWindows::default(),
            rtx_cache: RtxCacheLimits::default(),
            shared_rtx: false,
            max_queued_bytes: 1 << 20,
            max_queued_events: 4096,
            keyframe_request_interval: Duration::from_millis(500),
            receiver_report_interval: Duration::from_secs(1),
            sender_report_interval: Duration::from_secs(1),
            send_nacks: true,
            wallclock: None,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`WebRtcSession::close`](super::WebRtcSession::close) was called.
    Local,
    /// The peer sent DTLS `close_notify`.
    PeerClosed,
    /// No authenticated STUN request for `consent_timeout` (RFC 7675).
    ConsentExpired,
    /// ICE/DTLS did not complete within `connect_timeout`.
    ConnectTimeout,
    /// Nothing arrived for `silence_timeout` once connected.
    Silent,
    /// A fatal error (DTLS failure, fingerprint mismatch, ...).
    Error(WebRtcError),
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new address passed ICE authentication; `nominated` when it is now the
    /// selected address. The shard routes datagrams from `addr` to this session.
    PeerAddress {
        /// The peer's address (host or peer-reflexive).
        addr: SocketAddr,
        /// True if this address is now the one we send to.
        nominated: bool,
    },
    /// DTLS is up and SRTP keyed: media flows from now on.
    Connected {
        /// The address media goes to.
        remote: SocketAddr,
        /// The negotiated SRTP profile.
        profile: SrtpProfile,
    },
    /// A decrypted RTP packet from the peer (publishers). Retransmissions that
    /// came as RTX are unwrapped into the original stream (`repaired`).
    Rtp {
        /// Audio or video.
        kind: Track,
        /// The packet (plain RTP, the payload shares the buffer).
        packet: RtpPacket,
        /// True if it arrived as an RTX retransmission.
        repaired: bool,
    },
    /// A parsed RTCP packet from the peer (NACKs for us are already answered).
    Rtcp {
        /// The kind the packet concerns, if it names one of our or the peer's SSRCs.
        kind: Option<Track>,
        /// The packet.
        packet: RtcpPacket,
    },
    /// With [`SessionConfig::shared_rtx`]: the peer lost these packets of ours;
    /// answer each with [`retransmit`](super::WebRtcSession::retransmit).
    Nacked {
        /// The stream they belong to.
        kind: Track,
        /// What was lost, mapped back to the source.
        packets: Vec<NackedPacket>,
    },
    /// The peer asked for a keyframe (PLI or FIR for our video SSRC): forward to
    /// the publisher (throttled there).
    KeyframeRequested {
        /// Always video today.
        kind: Track,
    },
    /// The session is over; flush `poll_transmit` and forget it.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// A packet of ours a peer NACKed, and the source packet it was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackedPacket {
    /// Our sequence number.
    pub seq: u16,
    /// The source's SSRC and sequence number (look the packet up by these).
    pub source_ssrc: u32,
    pub source_seq: u16,
    /// Our timestamp minus the source's.
    pub ts_offset: u32,
}

/// A media packet to send: the source's fields; the session rewrites SSRC,
/// payload type and sequence/timestamp (keeping them continuous when the
/// source SSRC changes, e.g. a publisher restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPacket {
    /// The source stream's SSRC (a change starts a new offset).
    pub source_ssrc: u32,
    /// The source sequence number (gaps pass through, so receivers NACK them).
    pub sequence_number: u16,
    /// The source timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// The payload (shared, never copied until encryption).
    pub payload: Bytes,
    /// The packet's time (ms) on a clock common to all the session's tracks, when
    /// the source has one (RTP made from RTMP media): sender reports then relate the
    /// tracks by it rather than by when their packets happened to be sent.
    pub media_ms: Option<u32>,
}

impl From<&RtpPacket> for MediaPacket {
    fn from(p: &RtpPacket) -> Self {
        MediaPacket {
            source_ssrc: p.ssrc,
            sequence_number: p.sequence_number,
            timestamp: p.timestamp,
            marker: p.marker,
            payload: p.payload(),
            media_ms: None,
        }
    }
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Datagrams passed to `handle_input`.
    pub datagrams_in: u64,
    /// Bytes passed to `handle_input`.
    pub bytes_in: u64,
    /// Datagrams handed out by `poll_transmit`.
    pub datagrams_out: u64,
    /// Bytes handed out by `poll_transmit`.
    pub bytes_out: u64,
    /// Authenticated STUN requests.
    pub stun_ok: u64,
    /// Refused STUN requests.
    pub stun_rejected: u64,
    /// RTP packets decrypted and delivered.
    pub rtp_in: u64,
    /// RTP packets sent (originals).
    pub rtp_out: u64,
    /// RTCP packets (compounds) received.
    pub rtcp_in: u64,
    /// RTCP compounds sent.
    pub rtcp_out: u64,
    /// SRTP/SRTCP packets that failed authentication or replay checks.
    pub srtp_errors: u64,
    /// Datagrams dropped: unknown kind, unauthenticated source, before keys,
    /// unknown payload type.
    pub dropped_in: u64,
    /// Media packets not sent because the queue was full or not connected.
    pub dropped_out: u64,
    /// Events dropped because the event queue was full.
    pub dropped_events: u64,
    /// NACKed packets received.
    pub nack_requests: u64,
    /// Retransmissions sent in answer.
    pub retransmits: u64,
    /// NACKed packets not in the cache.
    pub nack_misses: u64,
    /// Keyframe requests made because a NACKed video packet could not be resent.
    pub miss_keyframe_requests: u64,
    /// NACK packets we sent.
    pub nacks_sent: u64,
    /// PLI/FIR received.
    pub keyframe_requests_in: u64,
    /// PLI/FIR sent.
    pub keyframe_requests_out: u64,
}
