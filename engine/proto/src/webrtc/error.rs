//! The error type of the WebRTC layer, grouped by whose fault it is.
//!
//! One wire reaction per group, decided by the caller in one place:
//!
//! | group | examples | reaction |
//! |---|---|---|
//! | [`BadOffer`](WebRtcError::BadOffer) | unparsable SDP, no BUNDLE, no fingerprint | HTTP 400 with the text |
//! | [`Unsupported`](WebRtcError::Unsupported) | no common codec, `a=setup:passive` | HTTP 400 (WHIP/WHEP) with the text |
//! | [`Peer`](WebRtcError::Peer) | fingerprint mismatch, DTLS alert, consent lost | close the session |
//! | [`InvalidUse`](WebRtcError::InvalidUse) | sending before DTLS is up | engine bug: log, drop the command |
//! | [`Internal`](WebRtcError::Internal) | certificate generation failed | log, HTTP 500 / close |

use std::fmt;

/// Errors of the WebRTC protocol code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebRtcError {
    /// The SDP offer is malformed or breaks a rule WebRTC requires (RFC 8829,
    /// 8839, 8843): the client's fault.
    BadOffer(String),
    /// The offer is valid but asks for something this server does not do.
    Unsupported(String),
    /// The peer misbehaved after signaling: DTLS failure, fingerprint mismatch,
    /// consent expired, SRTP setup impossible.
    Peer(String),
    /// The engine used the API wrongly (e.g. sent media before the session was
    /// connected, or for a kind that was not negotiated).
    InvalidUse(&'static str),
    /// Our own failure (crypto provider, certificate).
    Internal(String),
}

impl WebRtcError {
    /// HTTP status for WHIP/WHEP signaling errors (RFC 9725 §4.2: bad offers get
    /// 400); anything after signaling is a 500 if it ever reaches HTTP.
    pub fn http_status(&self) -> u16 {
        match self {
            WebRtcError::BadOffer(_) | WebRtcError::Unsupported(_) => 400,
            _ => 500,
        }
    }

    pub(crate) fn bad_offer(msg: impl Into<String>) -> Self {
        WebRtcError::BadOffer(msg.into())
    }

    pub(crate) fn unsupported(msg: impl Into<String>) -> Self {
        WebRtcError::Unsupported(msg.into())
    }

    pub(crate) fn peer(msg: impl Into<String>) -> Self {
        WebRtcError::Peer(msg.into())
    }

    pub(crate) fn internal(msg: impl fmt::Display) -> Self {
        WebRtcError::Internal(msg.to_string())
    }
}

impl fmt::Display for WebRtcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebRtcError::BadOffer(m) => write!(f, "bad SDP offer: {m}"),
            WebRtcError::Unsupported(m) => write!(f, "unsupported: {m}"),
            WebRtcError::Peer(m) => write!(f, "peer error: {m}"),
            WebRtcError::InvalidUse(m) => write!(f, "invalid use: {m}"),
            WebRtcError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for WebRtcError {}
