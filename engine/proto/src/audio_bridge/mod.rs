//! Audio transcoding between RTMP/FLV (AAC) and WebRTC (Opus), sans-IO:
//! frames in with timestamps, frames out with timestamps, no clock.
//!
//! How the pieces run:
//! - RTMP → WebRTC: [`AacToOpus::handle_audio_tag`] takes each FLV audio tag
//!   body (= RTMP audio message) with its timestamp: the AAC sequence header
//!   configures an [`AacDecoder`]; frames are decoded, resampled to 48 kHz
//!   ([`Resampler`]) and cut into 20 ms Opus packets drained with
//!   [`AacToOpus::poll_output`] as [`OpusPacket`]s (→ `MediaPacket` for
//!   `WebRtcSession::send_rtp`). The RTP timestamp is the FLV time × 48
//!   (the same clock as the video's FLV time × 90, so sender reports keep
//!   lip sync), less the codec delays.
//! - WebRTC → RTMP/FLV/HLS (feature `fdk-aac`): [`OpusToAac::handle_packet`]
//!   takes each Opus RTP payload with its timestamp; losses are concealed;
//!   drained [`AacFrame`]s carry the 48 kHz RTP time of their first sample,
//!   mapped to FLV milliseconds with an [`RtpTimeline`] anchored like the
//!   video's. [`OpusToAac::sequence_header_tag_body`] is the FLV AAC
//!   sequence header.
//!
//! Run one transcoder per stream (never per viewer), and only while someone
//! watches the other side. CPU per 20 ms of audio, optimised build on the
//! 2-core dev machine (`tests::fdk::transcoding_cpu_cost`): AAC → Opus about
//! 45 µs (48 kHz mono) and 150 µs (44.1 kHz stereo, resampled); Opus → AAC
//! about 55 µs (mono) and 125 µs (stereo): under 1 % of a core per stream.
//! An unoptimised (debug) build of this crate is much slower in the resampler
//! (a few ms per frame). The shell measures the time spent in these calls per
//! stream for the stats.
//!
//! Specifications: RFC 7587 (RTP payload format for Opus: §4.1 48 kHz RTP
//! clock whatever the coded bandwidth, §4.2 one Opus packet per RTP packet,
//! §7 `opus/48000/2`); RFC 6716 (Opus, §3.1 TOC byte); ISO/IEC 14496-3
//! (AAC: 1.6.2.1 `AudioSpecificConfig`, 4.4.2 raw_data_block, 1024-sample
//! frames); Adobe FLV v10.1 E.4.2.1 (`AudioTagHeader`, `AACPacketType`).
//!
//! Licences: symphonia (AAC-LC decoder) is MPL-2.0; libopus is BSD-3-Clause;
//! the FDK AAC library (feature `fdk-aac`, default on) is under the
//! "Software License for The Fraunhofer FDK AAC Codec Library for Android",
//! which allows redistribution but grants no patent licence and is not
//! GPL-compatible. Without the feature, AAC-LC → Opus still works;
//! Opus → AAC and HE-AAC input do not.

mod aac_decoder;
mod aac_to_opus;
#[cfg(feature = "fdk-aac")]
mod opus_to_aac;
mod resample;
mod timeline;

pub use aac_decoder::{AacDecoder, AacDecoderKind};
pub use aac_to_opus::{AacToOpus, AacToOpusConfig, OpusPacket};
#[cfg(feature = "fdk-aac")]
pub use opus_to_aac::{AacFrame, OpusToAac, OpusToAacConfig};
pub use resample::Resampler;
pub use timeline::RtpTimeline;

/// The Opus RTP clock rate and the rate both transcoders work at (RFC 7587 §4.1).
pub const OPUS_CLOCK_RATE: u32 = 48_000;

/// Samples per channel in one 20 ms Opus frame at 48 kHz.
pub const OPUS_FRAME_SAMPLES: usize = 960;

/// Samples per channel in one AAC-LC frame (ISO/IEC 14496-3 4.5.1.1).
pub const AAC_FRAME_SAMPLES: usize = 1024;

/// Errors of the audio bridge, by whose fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioBridgeError {
    /// Valid audio this bridge cannot transcode (an AAC profile or channel
    /// layout the decoder lacks, a sequence header of another codec). Fatal
    /// for the stream's audio: carry on video-only and warn in stats.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// One frame or packet could not be decoded. Not fatal: it is skipped
    /// (and concealed) and the next one is tried.
    #[error("malformed audio: {0}")]
    Malformed(&'static str),
    /// A codec library failed where it should not (setup, encoding): our bug
    /// or resource exhaustion. Fatal for this transcoder.
    #[error("audio codec failure: {0}")]
    Codec(String),
}

/// Counters of a transcoder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscodeStats {
    /// Frames (AAC) or packets (Opus) taken in.
    pub frames_in: u64,
    /// Packets (Opus) or frames (AAC) produced.
    pub frames_out: u64,
    /// Input that could not be decoded.
    pub decode_errors: u64,
    /// Input dropped: before a usable configuration, or late/duplicate.
    pub skipped: u64,
    /// 48 kHz samples (per channel) synthesized by loss concealment.
    pub concealed_samples: u64,
    /// 48 kHz samples (per channel) of silence inserted for timestamp gaps.
    pub silence_samples: u64,
    /// Timestamp jumps that restarted the output timeline.
    pub discontinuities: u64,
    /// 48 kHz samples (per channel) encoded: the audio time processed, to
    /// relate measured CPU time to.
    pub encoded_samples: u64,
}

/// An FLV AAC audio tag header: SoundFormat 10 (AAC), SoundRate 3, 16-bit,
/// stereo flag set, as FLV v10.1 E.4.2.1 requires for AAC whatever the real
/// configuration; then `AACPacketType`.
const FLV_AAC_HEADER: u8 = 0xAF;

/// An FLV AAC sequence header tag body for an `AudioSpecificConfig`.
pub fn aac_sequence_header_tag_body(asc: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + asc.len());
    body.extend_from_slice(&[FLV_AAC_HEADER, 0]);
    body.extend_from_slice(asc);
    body
}

/// An FLV AAC raw frame tag body.
pub fn aac_frame_tag_body(raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + raw.len());
    body.extend_from_slice(&[FLV_AAC_HEADER, 1]);
    body.extend_from_slice(raw);
    body
}

#[cfg(test)]
mod tests;
