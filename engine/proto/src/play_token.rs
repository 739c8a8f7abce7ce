//! Play tokens: what a viewer of a private room shows (`?token=`, or
//! `Authorization: Bearer` for WHEP). Compact and URL-safe:
//!
//! ```text
//! {room_id}.{epoch}.{expires}.{mac}
//! ```
//!
//! `expires` is a Unix time in seconds, `epoch` the room's token generation (raising
//! it revokes every token minted before), `mac` the unpadded base64url HMAC-SHA256
//! of the claims and the room's stream name under a key derived from the server's
//! secret ([`PlayKey::derive`]). The stream name is signed but not carried: a token
//! names no stream key and no stream, and a token of one room fails on another.
//!
//! Pure functions: the caller passes the time. The control plane mints
//! ([`mint`]); the engine, the control plane's WHEP and WebSocket routes and
//! recordings verify ([`verify`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Longest token [`verify`] looks at (a real one is about 70 characters).
pub const MAX_TOKEN_LEN: usize = 160;

/// The HMAC key of play tokens, derived from the server's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PlayKey([u8; 32]);

impl PlayKey {
    /// The key for `secret` (the JWT secret every node of a cluster shares), under
    /// its own label: SHA-256 of `microvibe-play-token:{secret}`, as the cluster's
    /// relay token is of `microvibe-relay:{secret}`. Neither can be computed from
    /// the other.
    pub fn derive(secret: &str) -> PlayKey {
        let mut h = Sha256::new();
        h.update(b"microvibe-play-token:");
        h.update(secret.as_bytes());
        PlayKey(h.finalize().into())
    }
}

impl std::fmt::Debug for PlayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlayKey(..)")
    }
}

/// What a token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub room_id: i64,
    pub epoch: u32,
    /// Unix seconds.
    pub expires: u64,
}

/// Why a token is refused. The texts are fit for the client (no secret in them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a play token is required")]
    Missing,
    #[error("malformed play token")]
    Malformed,
    #[error("invalid play token")]
    BadSignature,
    #[error("play token of another room")]
    OtherRoom,
    #[error("play token revoked")]
    Revoked,
    #[error("play token expired")]
    Expired,
}

fn mac(key: &PlayKey, stream_name: &str, c: &Claims) -> [u8; 32] {
    let mut m = match <HmacSha256 as KeyInit>::new_from_slice(&key.0) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(b"microvibe-play-token/1\0");
    m.update(stream_name.as_bytes());
    m.update(format!("\0{}\0{}\0{}", c.room_id, c.epoch, c.expires).as_bytes());
    m.finalize().into_bytes().into()
}

/// A token for `stream_name` with these claims.
pub fn mint(key: &PlayKey, stream_name: &str, claims: Claims) -> String {
    let sig = URL_SAFE_NO_PAD.encode(mac(key, stream_name, &claims));
    format!("{}.{}.{}.{}", claims.room_id, claims.epoch, claims.expires, sig)
}

fn num(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

fn parse(token: &str) -> Option<(Claims, [u8; 32])> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut it = token.split('.');
    let room_id = num(it.next())?.parse().ok()?;
    let epoch = num(it.next())?.parse().ok()?;
    let expires = num(it.next())?.parse().ok()?;
    let sig = URL_SAFE_NO_PAD.decode(it.next()?).ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((Claims { room_id, epoch, expires }, sig.try_into().ok()?))
}

/// Checks `token` for the room `room_id` whose stream is `stream_name` and whose
/// token generation is `epoch`, at Unix time `now`. The signature is compared in
/// constant time and checked before any claim, so that only a token this server
/// minted for this stream learns more than "invalid".
pub fn verify(
    key: &PlayKey,
    token: Option<&str>,
    stream_name: &str,
    room_id: i64,
    epoch: u32,
    now: u64,
) -> Result<Claims, TokenError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
    let (claims, sig) = parse(token).ok_or(TokenError::Malformed)?;
    let want = mac(key, stream_name, &claims);
    let diff = want.iter().zip(sig.iter()).fold(0u8, |d, (a, b)| d | (a ^ b));
    if diff != 0 {
        return Err(TokenError::BadSignature);
    }
    if claims.room_id != room_id {
        return Err(TokenError::OtherRoom);
    }
    if claims.epoch != epoch {
        return Err(TokenError::Revoked);
    }
    if claims.expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The value of `token` in a URL query (`a=1&token=...`), percent-decoded. Tokens
/// need no escaping, but a client may escape anything.
pub fn from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| crate::http::percent_decode(v))
    })
}

/// An HLS playlist whose URIs (segments, keys, maps: every line that is not a tag
/// or blank, and every `URI="..."` attribute) carry `token`, so that a player
/// fetching them as given shows it. The token must be URL-safe (minted ones are).
pub fn playlist_with_token(playlist: &[u8], token: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(playlist);
    let mut out = String::with_capacity(text.len() + 64 * 8);
    let with = |uri: &str| {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}token={token}")
    };
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let body_trim = body.trim_end_matches('\r');
        let cr = &body[body_trim.len()..];
        if body_trim.is_empty() {
            out.push_str(line);
        } else if body_trim.starts_with('#') {
            match body_trim.split_once("URI=\"").and_then(|(a, rest)| rest.split_once('"').map(|(u, b)| (a, u, b))) {
                Some((a, u, b)) => out.push_str(&format!("{a}URI=\"{}\"{b}{cr}{nl}", with(u))),
                None => out.push_str(line),
            }
        } else {
            out.push_str(&with(body_trim));
            out.push_str(cr);
            out.push_str(nl);
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests;
