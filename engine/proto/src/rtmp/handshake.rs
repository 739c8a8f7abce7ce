//! The RTMP handshake (Adobe RTMP specification 1.0, §5.2): C0/C1/C2 and
//! S0/S1/S2, 1 + 1536 + 1536 bytes each way.
//!
//! Two variants are in use:
//!
//! * the **simple** handshake of the specification (§5.2.3): S1 is random with a
//!   zero version field, S2 echoes C1 and C2 echoes S1;
//! * the **digest** ("complex", Flash Player 9) handshake, which the 1.0
//!   specification does not describe: C1 bytes 4..8 carry a non-zero version and
//!   C1 embeds an HMAC-SHA256 digest at an offset derived from four bytes at
//!   either 8..12 ([`DigestScheme::OffsetAt8`]) or 772..776
//!   ([`DigestScheme::OffsetAt772`]); the digest covers the other 1504 bytes and is
//!   keyed by the first 30 bytes of the Flash Player key. S1 carries a digest keyed
//!   by the first 36 bytes of the Flash Media Server key; S2 is random with a last
//!   32-byte digest keyed by HMAC(full server key, client digest). Flash players,
//!   ffmpeg playing (it checks S1/S2 when S1 has a version) and some CDNs need it.
//!
//! The server answers a C1 without a valid digest with the simple handshake.
//! Encrypted RTMPE (C0 = 6 or 8) is not supported.

use bytes::BufMut;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::error::RtmpError;

/// The RTMP version byte in C0/S0 (§5.2.2).
pub const RTMP_VERSION: u8 = 3;
/// Size of C1/C2/S1/S2 (§5.2.3).
pub const HANDSHAKE_SIZE: usize = 1536;

const DIGEST_LEN: usize = 32;
/// Random part of S2/C2 covered by the digest in the digest handshake.
const SIGNED_LEN: usize = HANDSHAKE_SIZE - DIGEST_LEN;

/// Shared 32-byte tail of the Flash Player and Flash Media Server keys.
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D,
    0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const FP_KEY_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const FMS_KEY_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";

/// The version we announce in a digest S1 (FMS 4.5.0.1 style).
const SERVER_VERSION: [u8; 4] = [0x04, 0x05, 0x00, 0x01];
/// The version we announce in a digest C1 (Flash Player 9 style).
const CLIENT_VERSION: [u8; 4] = [0x80, 0x00, 0x07, 0x02];

fn full_key(text: &[u8]) -> Vec<u8> {
    let mut k = text.to_vec();
    k.extend_from_slice(&KEY_TAIL);
    k
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for p in parts {
        mac.update(p);
    }
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Where the digest of a digest-handshake C1/S1 sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestScheme {
    /// Offset bytes at 8..12, digest at `sum % 728 + 12` (ffmpeg, Flash Player).
    OffsetAt8,
    /// Offset bytes at 772..776, digest at `sum % 728 + 776`.
    OffsetAt772,
}

impl DigestScheme {
    fn offset(self, block: &[u8; HANDSHAKE_SIZE]) -> usize {
        let base = match self {
            DigestScheme::OffsetAt8 => 8,
            DigestScheme::OffsetAt772 => 772,
        };
        let sum: usize = block[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

/// Which handshake variant was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeKind {
    /// The specification's handshake (§5.2).
    Simple,
    /// The Flash Player 9 digest handshake.
    Digest(DigestScheme),
}

/// HMAC over the block without its 32 digest bytes at `offset`.
fn block_digest(block: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac_sha256(key, &[&block[..offset], &block[offset + DIGEST_LEN..]])
}

/// Finds and validates the digest of a C1 (client key) or S1 (server key).
fn find_digest(block: &[u8; HANDSHAKE_SIZE], key: &[u8]) -> Option<(DigestScheme, [u8; 32])> {
    [DigestScheme::OffsetAt8, DigestScheme::OffsetAt772].into_iter().find_map(|scheme| {
        let off = scheme.offset(block);
        let expected = block_digest(block, off, key);
        (block[off..off + DIGEST_LEN] == expected).then_some((scheme, expected))
    })
}

/// Fills `block` with a time, a version, random bytes and (for the digest
/// handshake) a digest keyed by `key`. Returns the digest.
fn fill_c1s1(
    block: &mut [u8; HANDSHAKE_SIZE],
    rng: &mut impl RngCore,
    version: [u8; 4],
    kind: HandshakeKind,
    key: &[u8],
) -> Option<[u8; DIGEST_LEN]> {
    rng.fill_bytes(&mut block[8..]);
    block[..4].copy_from_slice(&[0; 4]);
    match kind {
        HandshakeKind::Simple => {
            block[4..8].copy_from_slice(&[0; 4]);
            None
        }
        HandshakeKind::Digest(scheme) => {
            block[4..8].copy_from_slice(&version);
            let off = scheme.offset(block);
            let d = block_digest(block, off, key);
            block[off..off + DIGEST_LEN].copy_from_slice(&d);
            Some(d)
        }
    }
}

/// S2/C2 of the digest handshake: random, last 32 bytes = HMAC(HMAC(key, peer digest), random).
fn fill_digest_response(
    block: &mut [u8; HANDSHAKE_SIZE],
    rng: &mut impl RngCore,
    full_key: &[u8],
    peer_digest: &[u8; DIGEST_LEN],
) {
    rng.fill_bytes(&mut block[..SIGNED_LEN]);
    let k = hmac_sha256(full_key, &[peer_digest]);
    let d = hmac_sha256(&k, &[&block[..SIGNED_LEN]]);
    block[SIGNED_LEN..].copy_from_slice(&d);
}

fn response_valid(block: &[u8; HANDSHAKE_SIZE], full_key: &[u8], own_digest: &[u8; 32]) -> bool {
    let k = hmac_sha256(full_key, &[own_digest]);
    hmac_sha256(&k, &[&block[..SIGNED_LEN]])[..] == block[SIGNED_LEN..]
}

/// Checks C0/S0 (§5.2.2).
fn check_version(v: u8) -> Result<(), RtmpError> {
    match v {
        RTMP_VERSION => Ok(()),
        6 | 8 => Err(RtmpError::Unsupported("encrypted RTMPE handshake")),
        // 32..=255 are not RTMP (§5.2.2: they distinguish text protocols).
        32.. => Err(RtmpError::malformed("handshake", "C0 version is not RTMP")),
        // 0..=2 deprecated, 4..=31 reserved: answer with 3 (§5.2.2).
        _ => Ok(()),
    }
}

/// Appends bytes from `input` to `buf` until it holds `want` bytes.
fn fill(buf: &mut Vec<u8>, want: usize, input: &mut &[u8]) -> bool {
    let n = want.saturating_sub(buf.len()).min(input.len());
    buf.extend_from_slice(&input[..n]);
    *input = &input[n..];
    buf.len() == want
}

fn as_block(bytes: &[u8]) -> Result<&[u8; HANDSHAKE_SIZE], RtmpError> {
    bytes.try_into().map_err(|_| RtmpError::InvalidUse("handshake block of wrong size"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    WaitC0C1,
    WaitC2,
    Done,
}

/// Server side of the handshake: reads C0+C1, writes S0+S1+S2 at once, reads C2.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    buf: Vec<u8>,
    kind: Option<HandshakeKind>,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// Waiting for C0.
    pub fn new() -> Self {
        ServerHandshake { state: ServerState::WaitC0C1, buf: Vec::new(), kind: None }
    }

    /// The variant chosen once C1 has been read.
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }

    /// True once C2 has been read; later bytes are chunk stream data.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Consumes handshake bytes from the front of `input` (leaving any chunk data
    /// after C2 in it) and appends S0+S1+S2 to `out` when C1 is complete.
    /// Returns `is_done()`.
    pub fn handle_input(
        &mut self,
        input: &mut &[u8],
        rng: &mut impl RngCore,
        out: &mut impl BufMut,
    ) -> Result<bool, RtmpError> {
        if self.state == ServerState::WaitC0C1 {
            if let (true, Some(&v)) = (self.buf.is_empty(), input.first()) {
                check_version(v)?;
            }
            if !fill(&mut self.buf, 1 + HANDSHAKE_SIZE, input) {
                return Ok(false);
            }
            let c1 = as_block(&self.buf[1..])?;
            let mut s1 = [0u8; HANDSHAKE_SIZE];
            let mut s2 = [0u8; HANDSHAKE_SIZE];
            let client_digest = if c1[4..8] == [0; 4] { None } else { find_digest(c1, &FP_KEY_TEXT[..]) };
            match client_digest {
                Some((scheme, digest)) => {
                    let kind = HandshakeKind::Digest(scheme);
                    fill_c1s1(&mut s1, rng, SERVER_VERSION, kind, &FMS_KEY_TEXT[..]);
                    fill_digest_response(&mut s2, rng, &full_key(FMS_KEY_TEXT), &digest);
                    self.kind = Some(kind);
                }
                None => {
                    fill_c1s1(&mut s1, rng, [0; 4], HandshakeKind::Simple, &[]);
                    s2.copy_from_slice(c1);
                    self.kind = Some(HandshakeKind::Simple);
                }
            }
            out.put_u8(RTMP_VERSION);
            out.put_slice(&s1);
            out.put_slice(&s2);
            self.buf.clear();
            self.state = ServerState::WaitC2;
        }
        if self.state == ServerState::WaitC2 {
            // C2 is not validated: clients differ too much (§5.2.3 says it should
            // echo S1; digest clients sign it instead).
            if !fill(&mut self.buf, HANDSHAKE_SIZE, input) {
                return Ok(false);
            }
            self.buf = Vec::new();
            self.state = ServerState::Done;
        }
        Ok(true)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    WaitS0S1S2,
    Done,
}

/// Client side of the handshake: writes C0+C1 on creation, reads S0+S1+S2,
/// writes C2. With [`HandshakeKind::Digest`] it checks the server's S1 and S2
/// digests when the server answers with a digest S1.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    kind: HandshakeKind,
    c1: Box<[u8; HANDSHAKE_SIZE]>,
    c1_digest: Option<[u8; DIGEST_LEN]>,
    buf: Vec<u8>,
    server_digest_valid: Option<bool>,
}

impl ClientHandshake {
    /// Starts a handshake and appends C0+C1 to `out`.
    pub fn new(kind: HandshakeKind, rng: &mut impl RngCore, out: &mut impl BufMut) -> Self {
        let mut c1 = Box::new([0u8; HANDSHAKE_SIZE]);
        let c1_digest = fill_c1s1(&mut c1, rng, CLIENT_VERSION, kind, &FP_KEY_TEXT[..]);
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1[..]);
        ClientHandshake {
            state: ClientState::WaitS0S1S2,
            kind,
            c1,
            c1_digest,
            buf: Vec::new(),
            server_digest_valid: None,
        }
    }

    /// True once S2 has been read and C2 written.
    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// For a digest handshake: whether the server's S1 and S2 digests were valid
    /// (`None` before S2, or if the server fell back to the simple handshake).
    pub fn server_digest_valid(&self) -> Option<bool> {
        self.server_digest_valid
    }

    /// Consumes S0+S1+S2 from the front of `input` and appends C2 to `out`.
    /// A digest handshake fails if the server sent a digest S1 whose digests do
    /// not validate. Returns `is_done()`.
    pub fn handle_input(
        &mut self,
        input: &mut &[u8],
        rng: &mut impl RngCore,
        out: &mut impl BufMut,
    ) -> Result<bool, RtmpError> {
        if self.state == ClientState::Done {
            return Ok(true);
        }
        if let (true, Some(&v)) = (self.buf.is_empty(), input.first()) {
            check_version(v)?;
        }
        if !fill(&mut self.buf, 1 + 2 * HANDSHAKE_SIZE, input) {
            return Ok(false);
        }
        let s1 = as_block(&self.buf[1..1 + HANDSHAKE_SIZE])?;
        let s2 = as_block(&self.buf[1 + HANDSHAKE_SIZE..])?;
        let mut c2 = [0u8; HANDSHAKE_SIZE];
        match (self.kind, self.c1_digest, s1[4..8] != [0; 4]) {
            (HandshakeKind::Digest(_), Some(own), true) => {
                let Some((_, server_digest)) = find_digest(s1, &FMS_KEY_TEXT[..]) else {
                    self.server_digest_valid = Some(false);
                    return Err(RtmpError::PeerMisbehaviour("S1 digest does not validate"));
                };
                if !response_valid(s2, &full_key(FMS_KEY_TEXT), &own) {
                    self.server_digest_valid = Some(false);
                    return Err(RtmpError::PeerMisbehaviour("S2 digest does not validate"));
                }
                self.server_digest_valid = Some(true);
                fill_digest_response(&mut c2, rng, &full_key(FP_KEY_TEXT), &server_digest);
            }
            _ => c2.copy_from_slice(s1),
        }
        out.put_slice(&c2);
        self.buf = Vec::new();
        self.state = ClientState::Done;
        Ok(true)
    }

    /// The C1 that was sent.
    pub fn c1(&self) -> &[u8; HANDSHAKE_SIZE] {
        &self.c1
    }
}

/// Test helpers shared with the session tests and the fuzz bodies.
#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
mod tests;
