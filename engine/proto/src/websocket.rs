//! WebSocket (RFC 6455) for WebSocket-FLV: the opening handshake's accept value
//! (§4.2.2), server frame headers (§5.2, unmasked) and a bounded client frame
//! parser (masked frames, §5.3) that the server uses to see pings and closes.

use base64::Engine as _;
use sha1::{Digest, Sha1};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (§4.2.2 step 5.4).
pub fn accept_key(client_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(client_key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// Why an opening handshake is refused (§4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[error("missing Sec-WebSocket-Key")]
    MissingKey,
    /// The key is not the base64 of 16 bytes (§4.2.1 item 5).
    #[error("Sec-WebSocket-Key must be the base64 of 16 bytes")]
    BadKey,
    /// Not version 13 (§4.2.1 item 6): answered 426 with `Sec-WebSocket-Version: 13`.
    #[error("unsupported Sec-WebSocket-Version (this server speaks 13)")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// The HTTP status the handshake is refused with (§4.2.2 item 4).
    pub fn http_status(self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::MissingKey | HandshakeError::BadKey => 400,
        }
    }
}

/// Checks a client's opening handshake headers (`Sec-WebSocket-Version`,
/// `Sec-WebSocket-Key`).
pub fn check_handshake(version: Option<&str>, key: Option<&str>) -> Result<(), HandshakeError> {
    if version.map(str::trim) != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = key.ok_or(HandshakeError::MissingKey)?;
    match base64::engine::general_purpose::STANDARD.decode(key.trim()) {
        Ok(raw) if raw.len() == 16 => Ok(()),
        _ => Err(HandshakeError::BadKey),
    }
}

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The header of an unmasked server frame with FIN set (§5.2).
pub fn frame_header(opcode: u8, len: usize, out: &mut Vec<u8>) {
    out.push(0x80 | (opcode & 0x0F));
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A whole server frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 10);
    frame_header(opcode, payload.len(), &mut v);
    v.extend_from_slice(payload);
    v
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    pub fin: bool,
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    #[error("client frame is not masked (RFC 6455 §5.1)")]
    Unmasked,
    #[error("client frame of {0} bytes exceeds the limit")]
    TooLarge(u64),
    #[error("reserved bits set without an extension")]
    Reserved,
}

/// Parses one client frame from the front of `buf`. Returns the frame and the
/// bytes it used, `Ok(None)` when more input is needed.
pub fn parse_client_frame(buf: &[u8], max_payload: usize) -> Result<Option<(ClientFrame, usize)>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(WsError::Reserved);
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::Unmasked);
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as u64, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0xFF; 8])), 10),
            None => return Ok(None),
        },
        n => (n as u64, 2),
    };
    if len > max_payload as u64 {
        return Err(WsError::TooLarge(len));
    }
    let Some(mask) = buf.get(at..at + 4) else { return Ok(None) };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let end = at + len as usize;
    let Some(data) = buf.get(at..end) else { return Ok(None) };
    let payload = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
    Ok(Some((ClientFrame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0F, payload }, end)))
}

#[cfg(test)]
mod tests;
