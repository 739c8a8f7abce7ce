//! DTLS 1.2 for DTLS-SRTP (RFC 5764, RFC 8842), driven through `rtc-dtls`'s
//! sans-IO [`Endpoint`].
//!
//! - Role: the server answers `a=setup:passive` and is the DTLS server; the
//!   client role exists for tests and load generators.
//! - Certificates: our ECDSA P-256 certificate; the peer must present one
//!   (`RequireAnyClientCert`) whose SHA-256 equals the SDP `a=fingerprint`
//!   (RFC 8122 §5, RFC 8827 §6.5). No CA chain is involved.
//! - `use_srtp` (RFC 5764 §4.1.1) with our profiles; `rtc-dtls` picks the
//!   first of the *client's* list that we support, so AEAD_AES_128_GCM wins
//!   whenever the client lists it before AES_CM_128_HMAC_SHA1_80 (Chrome,
//!   Firefox and aiortc do).
//! - Extended master secret (RFC 7627): required by default.
//!
//! `rtc-dtls` keys its associations by remote address. ICE may move the peer
//! to another address (RFC 8445 §7.3.1.5 nominations, NAT rebinding), so the
//! association is keyed by the address of the *first* DTLS datagram and every
//! later datagram from an authenticated address is fed under that key.
//!
//! Why `rtc-dtls` and not `dimpl`: `rtc-dtls` 0.21 does all this job (server
//! role, ECDSA P-256, `use_srtp` + RFC 5705 exporter, a peer-certificate
//! callback for the fingerprint, retransmission timers through
//! `poll_timeout`/`handle_timeout`) without an async runtime, so the fallback was not
//! needed. One flaw is worked around here: its retransmission timer is
//! dropped when the peer repeats a flight (see `guard_timer`).

use core::net::SocketAddr;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, VerifyPeerCertificateFn};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_shared::TransportProtocol;
use sha2::{Digest, Sha256};

use super::cert::{DtlsCertificate, crypto_provider};
use super::error::WebRtcError;
use super::srtp::{ReplayWindows, SrtpProfile, SrtpSession};

/// DTLS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// Waits for the ClientHello (`a=setup:passive`).
    Server,
    /// Sends the ClientHello (`a=setup:active`).
    Client,
}

/// State of the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsState {
    /// Nothing received (server) / ClientHello not sent yet (client).
    New,
    /// Handshake running.
    Handshaking,
    /// Handshake done, SRTP keys available.
    Connected,
    /// `close_notify` sent or received.
    Closed,
}

/// What a datagram did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed with a verified peer certificate.
    Connected,
    /// The peer sent `close_notify` (RFC 5246 §7.2.1).
    PeerClosed,
}

/// Options of a [`DtlsTransport`].
#[derive(Debug, Clone)]
pub struct DtlsOptions {
    /// SRTP profiles, preferred first.
    pub profiles: Vec<SrtpProfile>,
    /// Require the extended master secret (RFC 7627). Default true.
    pub require_extended_master_secret: bool,
    /// Initial retransmission interval (RFC 6347 §4.2.4.1). Default 1 s.
    pub retransmit_interval: Duration,
    /// Largest datagram (path MTU minus IP/UDP). Default 1200.
    pub mtu: usize,
}

impl Default for DtlsOptions {
    fn default() -> Self {
        DtlsOptions {
            profiles: vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80],
            require_extended_master_secret: true,
            retransmit_interval: Duration::from_secs(1),
            mtu: 1200,
        }
    }
}

/// One DTLS association (see the module docs).
pub struct DtlsTransport {
    role: DtlsRole,
    endpoint: Endpoint,
    config: Arc<rtc_dtls::config::HandshakeConfig>,
    key: Option<SocketAddr>,
    state: DtlsState,
    out: VecDeque<BytesMut>,
    /// The datagrams of the last handshake flight sent, and a retransmission
    /// timer of our own for them: see [`guard_timer`](Self::guard_timer).
    last_flight: Vec<BytesMut>,
    resend: Option<Resend>,
    retransmit_interval: Duration,
}

/// Our own retransmission of the last flight: when, the interval after that,
/// and how many were sent.
#[derive(Debug, Clone, Copy)]
struct Resend {
    at: Instant,
    interval: Duration,
    sent: u32,
}

/// Our own retransmissions of one flight (the interval doubling from the
/// configured one, at most [`MAX_RESEND_INTERVAL`]); the session's connect
/// timeout ends a handshake that still does not complete.
const MAX_RESENDS: u32 = 6;
const MAX_RESEND_INTERVAL: Duration = Duration::from_secs(8);

impl std::fmt::Debug for DtlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsTransport")
            .field("role", &self.role)
            .field("key", &self.key)
            .field("state", &self.state)
            .finish()
    }
}

fn fingerprint_check(expected: [u8; 32]) -> VerifyPeerCertificateFn {
    Arc::new(move |certs: &[Vec<u8>], _| {
        let Some(leaf) = certs.first() else {
            return Err(rtc_shared::error::Error::Other("peer sent no certificate".into()));
        };
        let got = Sha256::digest(leaf);
        if got.as_slice() == expected {
            Ok(())
        } else {
            Err(rtc_shared::error::Error::Other("peer certificate does not match a=fingerprint".into()))
        }
    })
}

impl DtlsTransport {
    /// A new association that authenticates the peer by `remote_fingerprint`.
    pub fn new(
        role: DtlsRole,
        cert: &DtlsCertificate,
        remote_fingerprint: [u8; 32],
        opts: &DtlsOptions,
    ) -> Result<Self, WebRtcError> {
        let provider = crypto_provider()?;
        let ems = if opts.require_extended_master_secret {
            ExtendedMasterSecretType::Require
        } else {
            ExtendedMasterSecretType::Request
        };
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![cert.dtls()])
            .with_srtp_protection_profiles(opts.profiles.iter().map(|p| p.to_dtls()).collect())
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(fingerprint_check(remote_fingerprint)))
            .with_extended_master_secret(ems)
            .with_flight_interval(opts.retransmit_interval)
            .with_mtu(opts.mtu)
            .build(role == DtlsRole::Client, None)
            .map_err(WebRtcError::internal)?;
        let config = Arc::new(config);
        let placeholder: SocketAddr = ([0, 0, 0, 0], 0).into();
        let server_cfg = (role == DtlsRole::Server).then(|| config.clone());
        Ok(DtlsTransport {
            role,
            endpoint: Endpoint::new(placeholder, TransportProtocol::UDP, server_cfg),
            config,
            key: None,
            state: DtlsState::New,
            out: VecDeque::new(),
            last_flight: Vec::new(),
            resend: None,
            retransmit_interval: opts.retransmit_interval,
        })
    }

    /// The state.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// Client role: sends the ClientHello towards `remote`.
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<(), WebRtcError> {
        if self.role != DtlsRole::Client || self.key.is_some() {
            return Err(WebRtcError::InvalidUse("connect: not a fresh DTLS client"));
        }
        self.key = Some(remote);
        self.endpoint
            .connect(now, remote, self.config.clone(), None)
            .map_err(|e| WebRtcError::peer(format!("DTLS: {e}")))?;
        self.state = DtlsState::Handshaking;
        self.drain();
        Ok(())
    }

    fn drain(&mut self) {
        let mut flight = Vec::new();
        while let Some(t) = self.endpoint.poll_transmit() {
            if self.state != DtlsState::Connected {
                flight.push(t.message.clone());
            }
            self.out.push_back(t.message);
        }
        if !flight.is_empty() {
            self.last_flight = flight;
            self.resend = None;
        }
    }

    /// rtc-dtls 0.21 clears its retransmission timer whenever a handshake
    /// datagram arrives, and re-arms it only when that completes the peer's
    /// flight. A *repeated* flight from the peer (it lost ours) therefore leaves
    /// no timer and nothing is sent again: when the peer's timer fires just
    /// before ours (the usual case: it started one one-way delay earlier) and our
    /// flight was lost, the handshake stalls until the connect timeout. While the
    /// handshake runs without the library's timer, we keep one and send the last
    /// flight again ourselves (the same datagrams: the peer never got them, and a
    /// copy it did get is dropped as a replay).
    fn guard_timer(&mut self, now: Instant) {
        let library = self.key.and_then(|k| self.endpoint.poll_timeout(&k));
        if self.state != DtlsState::Handshaking || self.last_flight.is_empty() || library.is_some() {
            self.resend = None;
        } else if self.resend.is_none() {
            let interval = self.retransmit_interval;
            self.resend = Some(Resend { at: now + interval, interval, sent: 0 });
        }
    }

    /// Feeds one DTLS datagram (already known to come from an authenticated
    /// address). Errors are fatal for the association.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Vec<DtlsEvent>, WebRtcError> {
        if self.state == DtlsState::Closed {
            return Ok(vec![]);
        }
        let key = *self.key.get_or_insert(from);
        if self.state == DtlsState::New {
            self.state = DtlsState::Handshaking;
        }
        let res = self.endpoint.read(now, key, None, BytesMut::from(data));
        self.drain();
        let events = res.map_err(|e| WebRtcError::peer(format!("DTLS: {e}")))?;
        let mut out = Vec::new();
        for e in events {
            match e {
                EndpointEvent::HandshakeComplete => {
                    self.state = DtlsState::Connected;
                    out.push(DtlsEvent::Connected);
                }
                EndpointEvent::PeerClosed => {
                    self.state = DtlsState::Closed;
                    out.push(DtlsEvent::PeerClosed);
                }
                // WebRTC media never uses DTLS application data (no SCTP here).
                EndpointEvent::ApplicationData(_) => {}
                _ => {}
            }
        }
        self.guard_timer(now);
        Ok(out)
    }

    /// The next datagram to send (to the session's selected address).
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due (retransmission).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == DtlsState::Closed {
            return None;
        }
        let library = self.endpoint.poll_timeout(&self.key?);
        match (library, self.resend.map(|r| r.at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Retransmits a flight if its timer expired; fails when the handshake
    /// gave up.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), WebRtcError> {
        let Some(key) = self.key else { return Ok(()) };
        if self.state == DtlsState::Closed {
            return Ok(());
        }
        let res = self.endpoint.handle_timeout(key, now);
        self.drain();
        res.map_err(|e| WebRtcError::peer(format!("DTLS: {e}")))?;
        if let Some(r) = self.resend
            && now >= r.at
        {
            self.out.extend(self.last_flight.iter().cloned());
            let interval = (r.interval * 2).min(MAX_RESEND_INTERVAL);
            self.resend =
                (r.sent + 1 < MAX_RESENDS).then_some(Resend { at: now + interval, interval, sent: r.sent + 1 });
            return Ok(());
        }
        self.guard_timer(now);
        Ok(())
    }

    /// SRTP contexts from the completed handshake.
    pub fn srtp(&self, windows: ReplayWindows) -> Result<SrtpSession, WebRtcError> {
        let state = self
            .key
            .and_then(|k| self.endpoint.get_connection_state(k))
            .ok_or(WebRtcError::InvalidUse("DTLS is not connected"))?;
        SrtpSession::from_dtls(state, windows)
    }

    /// Sends `close_notify` and forgets the association.
    pub fn close(&mut self, now: Instant) {
        if let Some(key) = self.key
            && self.state != DtlsState::Closed
        {
            let _ = self.endpoint.stop(now, key);
            self.drain();
        }
        self.state = DtlsState::Closed;
    }
}

#[cfg(test)]
mod tests;
