//! The server's DTLS certificate: ECDSA P-256, self-signed, made once per
//! process and shared by every session (RFC 8827 §6.5: WebRTC endpoints
//! authenticate by the SDP `a=fingerprint`, RFC 8122, not by a CA chain).

use std::fmt;
use std::sync::{Arc, OnceLock};

use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use sha2::{Digest, Sha256};

use super::error::WebRtcError;

/// The crypto provider every WebRTC piece uses (aws-lc-rs, the workspace's
/// provider). Built once; it is stateless.
pub(crate) fn crypto_provider() -> Result<Arc<dyn RTCCryptoProvider>, WebRtcError> {
    static PROVIDER: OnceLock<Result<Arc<dyn RTCCryptoProvider>, String>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| rtc_dtls::crypto_provider::default_provider().map_err(|e| e.to_string()))
        .clone()
        .map_err(WebRtcError::Internal)
}

/// A DTLS certificate with its SHA-256 fingerprint. Cheap to clone (the key is
/// behind an `Arc`), `Send + Sync`: make one at start-up and hand it to every
/// shard.
#[derive(Clone)]
pub struct DtlsCertificate {
    cert: Certificate,
    fingerprint: String,
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCertificate").field("fingerprint", &self.fingerprint).finish()
    }
}

impl DtlsCertificate {
    /// Generates a fresh self-signed ECDSA P-256 / SHA-256 certificate (rcgen's
    /// default key type, which `rtc-dtls` signs ServerKeyExchange with).
    pub fn generate() -> Result<Self, WebRtcError> {
        let provider = crypto_provider()?;
        let cert = Certificate::generate_self_signed(vec!["microvibe".to_owned()], provider.crypto())
            .map_err(WebRtcError::internal)?;
        Ok(Self::from_dtls(cert))
    }

    /// Loads a certificate saved with [`to_pem`](Self::to_pem) (PKCS#8 key
    /// block, then the certificate).
    pub fn from_pem(pem: &str) -> Result<Self, WebRtcError> {
        let provider = crypto_provider()?;
        let cert = Certificate::from_pem(pem, provider.crypto()).map_err(WebRtcError::internal)?;
        Ok(Self::from_dtls(cert))
    }

    /// Key and certificate as PEM (keep it private).
    pub fn to_pem(&self) -> Result<String, WebRtcError> {
        self.cert.serialize_pem().map_err(WebRtcError::internal)
    }

    fn from_dtls(cert: Certificate) -> Self {
        let der = cert.certificate.first().map(|c| c.as_ref()).unwrap_or(&[]);
        let fingerprint = sha256_fingerprint(der);
        DtlsCertificate { cert, fingerprint }
    }

    /// The SHA-256 fingerprint as SDP writes it (RFC 8122 §5): upper-case hex
    /// pairs joined by `:`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The value of `a=fingerprint:` — `sha-256 AB:CD:...`.
    pub fn sdp_fingerprint(&self) -> String {
        format!("sha-256 {}", self.fingerprint)
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        self.cert.certificate.first().map(|c| c.as_ref()).unwrap_or(&[])
    }

    pub(crate) fn dtls(&self) -> Certificate {
        self.cert.clone()
    }
}

/// SHA-256 over `der`, as `AB:CD:...` (RFC 8122 §5).
pub fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Parses `AB:CD:...` (either case) into the 32 digest bytes.
pub(crate) fn parse_sha256_fingerprint(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut n = 0;
    for part in text.trim().split(':') {
        if n == 32 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 32).then_some(out)
}

#[cfg(test)]
mod tests;
