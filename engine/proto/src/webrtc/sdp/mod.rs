//! SDP offer/answer for a WHIP/WHEP-style server (RFC 8829 JSEP, RFC 8839
//! ICE attributes, RFC 8843 BUNDLE, RFC 8842 DTLS attributes).
//!
//! The client always offers; the server always answers, as an ICE-lite
//! (`a=ice-lite`, RFC 8445 §2.5), DTLS-passive (`a=setup:passive`) endpoint with
//! every media section bundled on one transport and RTCP multiplexed (RFC 8035).
//!
//! - [`offer`]: parse with `rtc-sdp`, then validate into an [`Offer`].
//! - [`answer`]: choose codecs and build the answer text plus the
//!   [`Negotiated`] parameters that a [`WebRtcSession`](super::WebRtcSession)
//!   runs with.

use core::net::SocketAddr;

pub mod answer;
pub mod offer;

pub use answer::{AnswerOptions, LocalSsrcs, build_answer};
pub use offer::{Offer, OfferedCodec, OfferedMedia};

use super::stun::IceCredentials;

/// Which way media flows for the client that sent the offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The client sends media (WHIP, OBS, a browser publishing): its offer is
    /// `sendonly` or `sendrecv`, our answer `recvonly`.
    Publisher,
    /// The client receives media (WHEP, a viewer): its offer is `recvonly` (or
    /// `sendrecv`), our answer `sendonly` with our SSRCs.
    Subscriber,
}

pub use crate::Track;

/// Direction attribute of a media section (RFC 8866 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default when absent).
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// `a=setup` (RFC 8842 §5.1, RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The offerer can be either DTLS role (browsers).
    ActPass,
    /// The offerer will be the DTLS client.
    Active,
    /// The offerer wants to be the DTLS server: we cannot accept that.
    Passive,
}

/// The codecs this server forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264, RFC 6184, packetization-mode 1 only.
    H264,
    /// VP8, RFC 7741.
    Vp8,
    /// Opus, RFC 7587, always `opus/48000/2`.
    Opus,
}

impl Codec {
    /// The kind of media the codec carries.
    pub fn kind(self) -> Track {
        match self {
            Codec::Opus => Track::Audio,
            Codec::H264 | Codec::Vp8 => Track::Video,
        }
    }

    /// The encoding name as `a=rtpmap` writes it.
    pub fn rtpmap_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
            Codec::Opus => "opus",
        }
    }

    /// RTP clock rate (90 kHz video, 48 kHz Opus).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }
}

/// One negotiated media section: what a session needs to send or receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// `a=mid` of the section.
    pub mid: String,
    /// Audio or video.
    pub kind: Track,
    /// The chosen codec.
    pub codec: Codec,
    /// Its payload type (the offer's number, kept).
    pub payload_type: u8,
    /// The `a=fmtp` parameters we answered with for it ("" if none).
    pub fmtp: String,
    /// The RTX payload type (RFC 4588, `apt=` the codec's), if negotiated.
    pub rtx_payload_type: Option<u8>,
    /// Extension id of `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 8843 §15.2), if negotiated.
    pub mid_extension_id: Option<u8>,
    /// Generic NACK negotiated (`a=rtcp-fb:* nack`, RFC 4585 §4.2).
    pub nack: bool,
    /// PLI negotiated (`nack pli`, RFC 4585 §6.3.1).
    pub pli: bool,
    /// FIR negotiated (`ccm fir`, RFC 5104 §7.1).
    pub fir: bool,
    /// The client's SSRCs declared with `a=ssrc` (primary first when a FID
    /// group names it), possibly empty (the session learns them from RTP).
    pub remote_ssrcs: Vec<u32>,
    /// The client's RTX SSRC from `a=ssrc-group:FID primary rtx`, if any.
    pub remote_rtx_ssrc: Option<u32>,
    /// Our SSRC for this section (subscribers: we send with it; publishers:
    /// the sender SSRC of our RTCP).
    pub local_ssrc: u32,
    /// Our RTX SSRC when we send and RTX is negotiated.
    pub local_rtx_ssrc: Option<u32>,
}

/// Everything a [`WebRtcSession`](super::WebRtcSession) needs from the
/// offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Publisher or subscriber.
    pub role: Role,
    /// Our ICE credentials (in the answer).
    pub local_ice: IceCredentials,
    /// The client's `ice-ufrag` / `ice-pwd`.
    pub remote_ice: IceCredentials,
    /// The client's certificate SHA-256 digest (`a=fingerprint:sha-256`).
    pub remote_fingerprint: [u8; 32],
    /// The BUNDLE group of the answer (accepted mids, offer order).
    pub bundle: Vec<String>,
    /// The accepted audio section, if any.
    pub audio: Option<NegotiatedMedia>,
    /// The accepted video section, if any.
    pub video: Option<NegotiatedMedia>,
    /// Our candidates, as put in the answer.
    pub candidates: Vec<SocketAddr>,
    /// `a=rtcp-rsize` accepted (RFC 5506): non-compound feedback allowed.
    pub rtcp_rsize: bool,
}

impl Negotiated {
    /// The section of `kind`, if negotiated.
    pub fn media(&self, kind: Track) -> Option<&NegotiatedMedia> {
        match kind {
            Track::Audio => self.audio.as_ref(),
            Track::Video => self.video.as_ref(),
        }
    }
}

/// The URI of the MID header extension (RFC 8843 §15.2).
pub const MID_EXTENSION_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// H.264 `profile-level-id`s we prefer, in order (RFC 6184 §8.1): Constrained
/// Baseline 3.1 (browsers, OBS), Baseline 3.1, Constrained High 1.2.
pub const PREFERRED_H264_PROFILES: [&str; 3] = ["42e01f", "42001f", "640c1f"];

#[cfg(test)]
mod tests;
