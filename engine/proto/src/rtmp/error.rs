//! The one error type of the RTMP layer.
//!
//! Variants are grouped by whose fault the failure is (malformed input, peer misbehaviour, unsupported features, our own bugs):
//! the peer sent bytes that do not parse ([`RtmpError::Malformed`]), the peer sent
//! well-formed bytes that break the protocol ([`RtmpError::PeerMisbehaviour`]), the
//! peer asked for something we do not implement ([`RtmpError::Unsupported`]), the
//! peer went past one of our configured bounds ([`RtmpError::LimitExceeded`]), the
//! peer went quiet ([`RtmpError::Timeout`]), or the caller used the API wrongly
//! ([`RtmpError::InvalidUse`], our own bug, never caused by network input).
//!
//! The wire reaction is the same for every variant that reaches a session's caller:
//! close the connection (after flushing `poll_transmit`). Errors that only concern
//! one NetStream (a rejected publish, an unknown stream name) are not errors here:
//! the session answers them with an `onStatus` of level `error` itself.

use std::time::Duration;

/// Everything that can go wrong in the RTMP layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RtmpError {
    /// Bytes that do not parse as what they claim to be.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure being parsed (`"AMF0 value"`, `"chunk header"`, ...).
        what: &'static str,
        /// What was wrong with it.
        detail: &'static str,
    },
    /// Well-formed input that breaks the protocol (wrong order, unknown ids).
    #[error("peer misbehaviour: {0}")]
    PeerMisbehaviour(&'static str),
    /// A valid protocol feature that this implementation does not support.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A size or count from the network exceeds a configured bound.
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    LimitExceeded {
        /// The bounded quantity.
        what: &'static str,
        /// The value the peer asked for (or reached).
        value: u64,
        /// The configured bound.
        limit: u64,
    },
    /// The peer did not make progress in time.
    #[error("{what} timeout after {after:?}")]
    Timeout {
        /// `"handshake"` or `"idle"`.
        what: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The caller used the API in a way it does not allow (our bug, not the peer's).
    #[error("invalid use: {0}")]
    InvalidUse(&'static str),
}

/// Coarse classification of an [`RtmpError`], for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`RtmpError::Malformed`].
    Malformed,
    /// [`RtmpError::PeerMisbehaviour`].
    PeerMisbehaviour,
    /// [`RtmpError::Unsupported`].
    Unsupported,
    /// [`RtmpError::LimitExceeded`].
    Limit,
    /// [`RtmpError::Timeout`].
    Timeout,
    /// [`RtmpError::InvalidUse`].
    Local,
}

impl RtmpError {
    /// Whose fault the error is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RtmpError::Malformed { .. } => ErrorKind::Malformed,
            RtmpError::PeerMisbehaviour(_) => ErrorKind::PeerMisbehaviour,
            RtmpError::Unsupported(_) => ErrorKind::Unsupported,
            RtmpError::LimitExceeded { .. } => ErrorKind::Limit,
            RtmpError::Timeout { .. } => ErrorKind::Timeout,
            RtmpError::InvalidUse(_) => ErrorKind::Local,
        }
    }

    /// True when the remote peer caused the error (anything but [`ErrorKind::Local`]).
    pub fn is_peer_fault(&self) -> bool {
        self.kind() != ErrorKind::Local
    }

    pub(crate) fn malformed(what: &'static str, detail: &'static str) -> Self {
        RtmpError::Malformed { what, detail }
    }

    pub(crate) fn limit(what: &'static str, value: u64, limit: u64) -> Self {
        RtmpError::LimitExceeded { what, value, limit }
    }
}
