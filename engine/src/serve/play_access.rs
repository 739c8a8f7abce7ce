//! Viewer admission to private rooms: the one check every way of watching goes
//! through (RTMP play, HTTP-FLV, WS-FLV, HLS playlists and segments, WebRTC
//! sessions the engine creates). A stream the control plane has not named private
//! plays without a token (a token given is ignored); a private one needs a valid
//! play token of its room ([`crate::proto::play_token`]), checked here with the
//! engine's own key: no round trip to the control plane.
//!
//! Cluster relays are not viewers: an origin's relay pull shows the relay token and
//! is never asked for a play token; the edge's own players are checked on the edge.

use crate::link::Protocol;
use crate::proto::http::StreamName;
use crate::proto::play_token::{self, TokenError};
use crate::shard::EngineShared;
use std::net::SocketAddr;

/// Why a viewer is refused, with the HTTP status to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The room is private and the token is missing or not valid (401 / 403).
    Token(TokenError),
    /// The control plane has not said yet which rooms are private (start-up).
    NotReady,
}

impl Refusal {
    pub fn http_status(self) -> u16 {
        match self {
            Refusal::Token(TokenError::Missing) => 401,
            Refusal::Token(_) => 403,
            Refusal::NotReady => 503,
        }
    }

    /// A short reason for the client (no secret in it).
    pub fn reason(self) -> String {
        match self {
            Refusal::Token(e) => format!("private room: {e}"),
            Refusal::NotReady => "server starting: try again".into(),
        }
    }
}

/// Whether the stream is private (its players need a token), as far as known.
pub fn is_private(shared: &EngineShared, name: &StreamName) -> bool {
    let table = shared.access.read().unwrap_or_else(|p| p.into_inner());
    table.as_ref().is_none_or(|t| t.contains_key(name.as_str()))
}

/// Admits a viewer of `name` showing `token` (none: no token given). Logs a
/// refusal with the stream and the client's address (never the token).
pub fn admit(
    shared: &EngineShared,
    name: &StreamName,
    token: Option<&str>,
    protocol: Protocol,
    addr: SocketAddr,
) -> Result<(), Refusal> {
    let access = {
        let table = shared.access.read().unwrap_or_else(|p| p.into_inner());
        match table.as_ref() {
            None => Err(Refusal::NotReady),
            Some(t) => Ok(t.get(name.as_str()).copied()),
        }
    };
    let result = match (access, &shared.cfg.play_key) {
        (Err(r), _) => Err(r),
        (Ok(None), _) => Ok(()),
        // A private room without a key cannot be watched (not configured so).
        (Ok(Some(_)), None) => Err(Refusal::Token(TokenError::BadSignature)),
        (Ok(Some(a)), Some(key)) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            play_token::verify(key, token, name.as_str(), a.room_id.0, a.epoch, now).map(drop).map_err(Refusal::Token)
        }
    };
    if let Err(r) = result
        && let Some(suppressed) = shared.peer_log(addr.ip())
    {
        tracing::info!(%addr, stream = %name, protocol = protocol.as_str(), reason = %r.reason(), suppressed, "viewer refused");
    }
    result
}
