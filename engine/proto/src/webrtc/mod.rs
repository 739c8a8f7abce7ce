//! WebRTC for the engine, sans-IO: ICE-lite, DTLS-SRTP, RTP/RTCP, SDP
//! offer/answer with BUNDLE and rtcp-mux.
//!
//! # How the pieces run
//!
//! 1. **Signaling** (control plane → engine): the client's offer is parsed and
//!    validated ([`sdp::Offer::parse`]), answered ([`sdp::build_answer`]) with
//!    our ICE credentials ([`stun::IceCredentials`]), the fingerprint of the
//!    process-wide certificate ([`cert::DtlsCertificate`]) and every server
//!    candidate. The answer goes back over HTTP; the [`sdp::Negotiated`]
//!    parameters create a [`WebRtcSession`] on a shard.
//! 2. **Transport** (the shard's one UDP socket): every datagram goes to its
//!    session by source address, or for a first STUN request by the ufrag in
//!    USERNAME ([`stun::peek_username`]). The session demultiplexes by first
//!    byte (RFC 7983, [`demux`]), answers STUN checks ([`stun`], RFC 8445
//!    ICE-lite), runs the DTLS server handshake ([`dtls`], RFC 5764), keys
//!    SRTP ([`srtp`], RFC 3711 / RFC 7714) and from then on decrypts RTP
//!    ([`rtp`]) and RTCP ([`rtcp`]) into events and encrypts what the engine
//!    sends, answering NACKs from a bounded cache ([`rtx_cache`]).
//! 3. **Time**: the shard passes `now` into every call and calls
//!    `handle_timeout` at `poll_timeout` (DTLS retransmits, consent freshness
//!    RFC 7675, RTCP reports, NACKs). Nothing here reads a clock or owns a
//!    socket.
//!
//! The crypto and wire formats come from the runtime-free webrtc-rs crates
//! (`rtc-dtls`, `rtc-srtp`, `rtc-stun`, `rtc-sdp`, `rtc-rtp`, `rtc-rtcp`, on
//! the aws-lc-rs provider); [`client`] is a minimal client peer for tests and
//! load generators.

pub mod cert;
pub mod client;
pub mod demux;
pub mod dtls;
pub mod error;
pub mod rtcp;
pub mod rtp;
pub mod rtx_cache;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod stun;

pub use cert::DtlsCertificate;
pub use error::WebRtcError;
pub use rtcp::{RtcpFeedback, RtcpPacket};
pub use rtp::RtpPacket;
pub use sdp::{AnswerOptions, Codec, Negotiated, Offer, Role, Track, build_answer};
pub use session::{CloseReason, MediaPacket, SessionConfig, SessionEvent, SessionStats, WebRtcSession};
pub use stun::IceCredentials;
