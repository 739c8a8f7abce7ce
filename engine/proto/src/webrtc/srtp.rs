//! SRTP/SRTCP contexts keyed from DTLS (RFC 5764 §4.2: the exporter label
//! `EXTRACTOR-dtls_srtp`, client key | server key | client salt | server salt),
//! with the transforms of RFC 3711 (AES_CM_128_HMAC_SHA1_80) and RFC 7714
//! (AEAD_AES_128_GCM), as implemented by `rtc-srtp`.
//!
//! Replay protection (RFC 3711 §3.3.2) is on for everything we decrypt; the
//! window sizes come from the session config. `rtc-srtp` leaves it off unless
//! asked, so it is set explicitly here.

use bytes::BytesMut;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_dtls::state::State;
use rtc_srtp::config::{Config, LABEL_EXTRACTOR_DTLS_SRTP};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::cert::crypto_provider;
use super::error::WebRtcError;

/// The negotiated SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpProfile {
    /// `SRTP_AEAD_AES_128_GCM` (0x0007).
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008).
    AeadAes256Gcm,
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001).
    Aes128CmHmacSha1_80,
}

impl SrtpProfile {
    fn rtc(self) -> ProtectionProfile {
        match self {
            SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
            SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
            SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        }
    }

    pub(crate) fn from_dtls(p: SrtpProtectionProfile) -> Option<Self> {
        match p {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(SrtpProfile::AeadAes128Gcm),
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => Some(SrtpProfile::AeadAes256Gcm),
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => Some(SrtpProfile::Aes128CmHmacSha1_80),
            _ => None,
        }
    }

    pub(crate) fn to_dtls(self) -> SrtpProtectionProfile {
        match self {
            SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProfile::AeadAes256Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
            SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        }
    }
}

/// Replay windows for inbound SRTP and SRTCP (packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindows {
    /// SRTP window. Default 1024: video bursts reorder and RTX arrives late.
    pub srtp: usize,
    /// SRTCP window. Default 128.
    pub srtcp: usize,
}

impl Default for ReplayWindows {
    fn default() -> Self {
        ReplayWindows { srtp: 1024, srtcp: 128 }
    }
}

/// Outbound and inbound SRTP contexts of one DTLS association.
pub struct SrtpSession {
    profile: SrtpProfile,
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession").field("profile", &self.profile).finish()
    }
}

impl SrtpSession {
    /// Keys from a completed DTLS handshake (RFC 5764 §4.2).
    pub(crate) fn from_dtls(state: &State, windows: ReplayWindows) -> Result<Self, WebRtcError> {
        let profile = SrtpProfile::from_dtls(state.srtp_protection_profile())
            .ok_or_else(|| WebRtcError::peer("no SRTP profile negotiated (use_srtp missing)"))?;
        let len = Config { profile: profile.rtc(), ..Default::default() }.keying_material_len();
        let material = state
            .export_keying_material(LABEL_EXTRACTOR_DTLS_SRTP, &[], len)
            .map_err(|e| WebRtcError::peer(format!("DTLS exporter: {e}")))?;
        Self::from_keying_material(profile, material.as_ref(), state.is_client(), windows)
    }

    /// Keys from exporter output (`is_client`: which half is ours).
    pub fn from_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        is_client: bool,
        windows: ReplayWindows,
    ) -> Result<Self, WebRtcError> {
        let provider = crypto_provider()?;
        let mut cfg = Config { profile: profile.rtc(), ..Default::default() };
        cfg.set_session_keys_from_keying_material(material, is_client).map_err(WebRtcError::internal)?;
        let outbound = Context::new(
            &cfg.keys.local_master_key,
            &cfg.keys.local_master_salt,
            cfg.profile,
            None,
            None,
            provider.crypto(),
        )
        .map_err(WebRtcError::internal)?;
        let inbound = Context::new(
            &cfg.keys.remote_master_key,
            &cfg.keys.remote_master_salt,
            cfg.profile,
            Some(srtp_replay_protection(windows.srtp.max(1))),
            Some(srtcp_replay_protection(windows.srtcp.max(1))),
            provider.crypto(),
        )
        .map_err(WebRtcError::internal)?;
        Ok(SrtpSession { profile, outbound, inbound })
    }

    /// The profile in use.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Encrypts a plain RTP packet.
    pub fn protect_rtp(&mut self, plain: &[u8]) -> Result<BytesMut, WebRtcError> {
        self.outbound.encrypt_rtp(plain).map_err(|e| WebRtcError::internal(format!("SRTP protect: {e}")))
    }

    /// Decrypts an SRTP packet (authentication and replay checked).
    pub fn unprotect_rtp(&mut self, data: &[u8]) -> Result<BytesMut, WebRtcError> {
        self.inbound.decrypt_rtp(data).map_err(|e| WebRtcError::peer(format!("SRTP: {e}")))
    }

    /// Encrypts a plain RTCP compound packet.
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<BytesMut, WebRtcError> {
        self.outbound.encrypt_rtcp(plain).map_err(|e| WebRtcError::internal(format!("SRTCP protect: {e}")))
    }

    /// Decrypts an SRTCP packet (authentication and replay checked).
    pub fn unprotect_rtcp(&mut self, data: &[u8]) -> Result<BytesMut, WebRtcError> {
        self.inbound.decrypt_rtcp(data).map_err(|e| WebRtcError::peer(format!("SRTCP: {e}")))
    }
}

#[cfg(test)]
mod tests;
