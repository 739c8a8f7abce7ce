//! ICE-lite connectivity checks: the STUN Binding requests a full ICE agent
//! sends us, answered with short-term credentials (RFC 8445 §7.3 and §2.5 for
//! the lite role, RFC 8489 / 5389 §10.1 for the authentication, RFC 7675 for
//! consent freshness, which reuses the same requests).
//!
//! A request is accepted when:
//! - it is a Binding request carrying FINGERPRINT (RFC 8445 §7.3: ICE requires
//!   it) that checks out;
//! - USERNAME is `<our ufrag>:<their ufrag>` (RFC 8445 §7.2.2);
//! - MESSAGE-INTEGRITY is the HMAC-SHA1 keyed with *our* password.
//!
//! The answer is a Binding success response with XOR-MAPPED-ADDRESS set to the
//! source address (which may be a peer-reflexive address not among the offer's
//! candidates: accepted, RFC 8445 §7.3.1.3), MESSAGE-INTEGRITY and FINGERPRINT.
//! Missing attributes get a 400, bad credentials a 401 (RFC 8489 §9.1.3);
//! both without MESSAGE-INTEGRITY, with FINGERPRINT.
//!
//! [`peek_username`] reads USERNAME without allocating, so that the shard can
//! route the first request from an unknown address to its session by ufrag.

use core::net::SocketAddr;

use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_PRIORITY, ATTR_USE_CANDIDATE, ATTR_USERNAME, AttrType,
};
use rtc_stun::error_code::{CODE_BAD_REQUEST, CODE_UNAUTHORIZED, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, CLASS_REQUEST, MAGIC_COOKIE, METHOD_BINDING, Message, Setter,
    TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::cert::crypto_provider;
use super::error::WebRtcError;

/// Our side of ICE credentials (RFC 8839 §5.4: ufrag 4..=256 and pwd 22..=256
/// `ice-char`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
}

impl IceCredentials {
    /// Random credentials: 8 `ice-char`s of ufrag (48 bits), 24 of password
    /// (144 bits, above the 128 bits RFC 8445 §5.3 asks for).
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        IceCredentials { ufrag: random_ice_chars(rng, 8), pwd: random_ice_chars(rng, 24) }
    }
}

/// `ice-char = ALPHA / DIGIT / "+" / "/"` (RFC 8839 §5.4).
fn random_ice_chars<R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// An authenticated Binding request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRequest {
    /// The request's transaction id.
    pub transaction_id: [u8; 12],
    /// The part of USERNAME after `:` (the peer's ufrag).
    pub remote_ufrag: String,
    /// USE-CANDIDATE present: the controlling agent nominates this pair
    /// (RFC 8445 §7.3.1.5).
    pub use_candidate: bool,
    /// PRIORITY, if present.
    pub priority: Option<u32>,
    /// ICE-CONTROLLING tie-breaker, if the peer is controlling (it must be: a
    /// full agent facing a lite agent always controls, RFC 8445 §6.1.1).
    pub ice_controlling: Option<u64>,
    /// ICE-CONTROLLED tie-breaker, if the peer (wrongly) claims that role.
    pub ice_controlled: Option<u64>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunReject {
    /// Not parsable as STUN, or FINGERPRINT missing/wrong: dropped silently.
    Malformed,
    /// USERNAME or MESSAGE-INTEGRITY missing: 400.
    MissingCredentials,
    /// USERNAME names another ufrag: 401.
    UnknownUser,
    /// MESSAGE-INTEGRITY does not verify with our password: 401.
    BadIntegrity,
}

/// The outcome of one STUN datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StunOutcome {
    /// An authenticated request: send `response` back to the source address.
    Binding {
        /// The parsed request.
        request: BindingRequest,
        /// The encoded success response.
        response: Vec<u8>,
    },
    /// A refused request; `response` (an error response) goes back if present.
    Rejected {
        /// Why.
        reason: StunReject,
        /// The encoded error response, if one is due.
        response: Option<Vec<u8>>,
    },
    /// Not a request (indication, response): nothing to do. ICE-lite agents
    /// send no requests, so no response is expected.
    Ignored,
}

/// Handles one STUN datagram for ICE-lite (see the module docs).
pub fn handle_binding(data: &[u8], from: SocketAddr, local: &IceCredentials) -> StunOutcome {
    let mut msg = Message::new();
    if msg.unmarshal_binary(data).is_err() {
        return rejected(StunReject::Malformed, None);
    }
    if msg.typ.class != CLASS_REQUEST {
        return StunOutcome::Ignored;
    }
    if msg.typ.method != METHOD_BINDING {
        // Only Binding is defined for ICE; anything else is not ours.
        return rejected(StunReject::Malformed, None);
    }
    if FINGERPRINT.check(&msg).is_err() {
        return rejected(StunReject::Malformed, None);
    }
    let tid = msg.transaction_id;
    let username = match TextAttribute::get_from_as(&msg, ATTR_USERNAME) {
        Ok(u) => u.text,
        Err(_) => {
            let resp = error_response(tid, CODE_BAD_REQUEST.0, "Bad Request");
            return rejected(StunReject::MissingCredentials, resp);
        }
    };
    if !msg.contains(rtc_stun::attributes::ATTR_MESSAGE_INTEGRITY) {
        let resp = error_response(tid, CODE_BAD_REQUEST.0, "Bad Request");
        return rejected(StunReject::MissingCredentials, resp);
    }
    let Some((ours, theirs)) = username.split_once(':') else {
        let resp = error_response(tid, CODE_UNAUTHORIZED.0, "Unauthorized");
        return rejected(StunReject::UnknownUser, resp);
    };
    if ours != local.ufrag {
        let resp = error_response(tid, CODE_UNAUTHORIZED.0, "Unauthorized");
        return rejected(StunReject::UnknownUser, resp);
    }
    let Ok(provider) = crypto_provider() else {
        return rejected(StunReject::BadIntegrity, None);
    };
    if MessageIntegrity::check(&mut msg, local.pwd.as_bytes(), provider.crypto()).is_err() {
        let resp = error_response(tid, CODE_UNAUTHORIZED.0, "Unauthorized");
        return rejected(StunReject::BadIntegrity, resp);
    }
    let request = BindingRequest {
        transaction_id: tid.0,
        remote_ufrag: theirs.to_owned(),
        use_candidate: msg.contains(ATTR_USE_CANDIDATE),
        priority: get_u32(&msg, ATTR_PRIORITY),
        ice_controlling: get_u64(&msg, ATTR_ICE_CONTROLLING),
        ice_controlled: get_u64(&msg, ATTR_ICE_CONTROLLED),
    };
    match success_response(tid, from, &local.pwd) {
        Ok(response) => StunOutcome::Binding { request, response },
        Err(_) => rejected(StunReject::Malformed, None),
    }
}

fn rejected(reason: StunReject, response: Option<Vec<u8>>) -> StunOutcome {
    StunOutcome::Rejected { reason, response }
}

fn get_u32(msg: &Message, t: AttrType) -> Option<u32> {
    let v = msg.get(t).ok()?;
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

fn get_u64(msg: &Message, t: AttrType) -> Option<u64> {
    let v = msg.get(t).ok()?;
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// A Binding success response: XOR-MAPPED-ADDRESS = `mapped`, then
/// MESSAGE-INTEGRITY keyed with `pwd`, then FINGERPRINT (RFC 8445 §7.3.1.1).
pub fn success_response(tid: TransactionId, mapped: SocketAddr, pwd: &str) -> Result<Vec<u8>, WebRtcError> {
    let provider = crypto_provider()?;
    let mut m = Message::new();
    m.typ = BINDING_SUCCESS;
    m.transaction_id = tid;
    m.write_header();
    let xor = XorMappedAddress { ip: mapped.ip(), port: mapped.port() };
    xor.add_to(&mut m).map_err(WebRtcError::internal)?;
    MessageIntegrity::new_short_term_integrity_with_provider(pwd.to_owned(), provider.crypto())
        .add_to(&mut m)
        .map_err(WebRtcError::internal)?;
    FINGERPRINT.add_to(&mut m).map_err(WebRtcError::internal)?;
    Ok(m.raw)
}

fn error_response(tid: TransactionId, code: u16, reason: &str) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.typ = BINDING_ERROR;
    m.transaction_id = tid;
    m.write_header();
    ErrorCodeAttribute { code: rtc_stun::error_code::ErrorCode(code), reason: reason.as_bytes().to_vec() }
        .add_to(&mut m)
        .ok()?;
    FINGERPRINT.add_to(&mut m).ok()?;
    Some(m.raw)
}

/// Reads USERNAME from a STUN message without allocating or authenticating
/// (for routing only: the session still checks MESSAGE-INTEGRITY).
pub fn peek_username(data: &[u8]) -> Option<&str> {
    if data.len() < 20 || u32::from_be_bytes(data[4..8].try_into().ok()?) != MAGIC_COOKIE {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let typ = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + alen)?;
        if typ == ATTR_USERNAME.0 {
            return std::str::from_utf8(value).ok();
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// The local (server) ufrag of a USERNAME `ours:theirs`.
pub fn local_ufrag(username: &str) -> &str {
    username.split_once(':').map_or(username, |(ours, _)| ours)
}

/// Builds a Binding request as a controlling full agent sends it (for the
/// client side in tests and load generators): USERNAME `server:client`,
/// PRIORITY, ICE-CONTROLLING, optional USE-CANDIDATE, MESSAGE-INTEGRITY keyed
/// with the *server's* password, FINGERPRINT.
pub fn binding_request(
    transaction_id: [u8; 12],
    server: &IceCredentials,
    client_ufrag: &str,
    use_candidate: bool,
    tie_breaker: u64,
) -> Result<Vec<u8>, WebRtcError> {
    let provider = crypto_provider()?;
    let mut m = Message::new();
    m.typ = BINDING_REQUEST;
    m.transaction_id = TransactionId(transaction_id);
    m.write_header();
    m.add(ATTR_USERNAME, format!("{}:{}", server.ufrag, client_ufrag).as_bytes());
    m.add(ATTR_PRIORITY, &0x6e00_1eff_u32.to_be_bytes());
    m.add(ATTR_ICE_CONTROLLING, &tie_breaker.to_be_bytes());
    if use_candidate {
        m.add(ATTR_USE_CANDIDATE, &[]);
    }
    MessageIntegrity::new_short_term_integrity_with_provider(server.pwd.clone(), provider.crypto())
        .add_to(&mut m)
        .map_err(WebRtcError::internal)?;
    FINGERPRINT.add_to(&mut m).map_err(WebRtcError::internal)?;
    Ok(m.raw)
}

/// Checks a Binding success response (integrity with `pwd`, fingerprint) and
/// returns its transaction id and XOR-MAPPED-ADDRESS (the client side).
pub fn parse_success_response(data: &[u8], pwd: &str) -> Result<([u8; 12], SocketAddr), WebRtcError> {
    let provider = crypto_provider()?;
    let mut m = Message::new();
    m.unmarshal_binary(data).map_err(|e| WebRtcError::peer(format!("STUN: {e}")))?;
    if m.typ != BINDING_SUCCESS {
        return Err(WebRtcError::peer(format!("STUN: not a success: {}", m.typ)));
    }
    FINGERPRINT.check(&m).map_err(|e| WebRtcError::peer(format!("STUN fingerprint: {e}")))?;
    MessageIntegrity::check(&mut m, pwd.as_bytes(), provider.crypto())
        .map_err(|e| WebRtcError::peer(format!("STUN integrity: {e}")))?;
    let mut xor = XorMappedAddress::default();
    xor.get_from_as(&m, rtc_stun::attributes::ATTR_XORMAPPED_ADDRESS)
        .map_err(|e| WebRtcError::peer(format!("STUN address: {e}")))?;
    Ok((m.transaction_id.0, SocketAddr::new(xor.ip, xor.port)))
}

#[cfg(test)]
mod tests;
