//! Codec-level parsing shared by every media path: FLV/RTMP audio and video
//! tag bodies (legacy and Enhanced RTMP), H.264 configuration and SPS, AAC
//! configuration and ADTS, and a [`MediaInfo`] summary of a stream.
//!
//! How the pieces run: an RTMP video or audio message payload (equal to an
//! FLV tag body) goes through [`VideoTag::parse`] / [`AudioTag::parse`].
//! Sequence headers feed [`AvcConfig::parse`] / [`AudioSpecificConfig::parse`]
//! and [`MediaInfo::update_from_video_tag`] / [`MediaInfo::update_from_audio_tag`];
//! coded frames are handed on (zero-copy) to the FLV, MPEG-TS and HLS writers,
//! which use [`avcc_to_annexb`] and [`AudioSpecificConfig::write_adts`].
//! Nothing here allocates per frame except where a caller's buffer is passed.

pub mod aac;
pub mod avc;
pub mod bits;
pub mod sps;

pub use aac::{AudioPacket, AudioSpecificConfig, AudioTag, OpusHead};
pub use avc::{
    AnnexBNalus, AvcConfig, AvccNalus, VideoFrameType, VideoPacket, VideoTag, annexb_nalus, avcc_contains_idr,
    avcc_nalus, avcc_to_annexb, nal_unit_type,
};
pub use sps::Sps;

/// Errors from codec parsing. All are about the input; none is our bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before a complete structure.
    #[error("truncated codec data")]
    Truncated,
    /// The input violates the syntax or semantics of its specification.
    #[error("malformed codec data: {0}")]
    Malformed(&'static str),
    /// Valid input using a feature or codec this server does not handle.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The input exceeds a size bound of ours or of the format.
    #[error("too large: {0}")]
    TooLarge(&'static str),
}

/// A video codec, from the FLV CodecID or the Enhanced RTMP FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// CodecID 1 (JPEG, unused in practice).
    Jpeg,
    /// CodecID 2, Sorenson H.263.
    SorensonH263,
    /// CodecID 3, Screen video.
    ScreenVideo,
    /// CodecID 4, On2 VP6.
    Vp6,
    /// CodecID 5, On2 VP6 with alpha.
    Vp6Alpha,
    /// CodecID 6, Screen video version 2.
    ScreenVideo2,
    /// CodecID 7 / `avc1`: H.264.
    Avc,
    /// `hvc1` (or legacy extension CodecID 12): H.265.
    Hevc,
    /// `av01`.
    Av1,
    /// `vp08`.
    Vp8,
    /// `vp09`.
    Vp9,
    /// `vvc1`: H.266.
    Vvc,
}

impl VideoCodec {
    /// A short display name, as shown in stats (`H264`, `HEVC`, `AV1`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::SorensonH263 => "H263",
            Self::ScreenVideo => "ScreenVideo",
            Self::Vp6 => "VP6",
            Self::Vp6Alpha => "VP6A",
            Self::ScreenVideo2 => "ScreenVideo2",
            Self::Avc => "H264",
            Self::Hevc => "HEVC",
            Self::Av1 => "AV1",
            Self::Vp8 => "VP8",
            Self::Vp9 => "VP9",
            Self::Vvc => "VVC",
        }
    }
}

/// An audio codec, from the FLV SoundFormat or the Enhanced RTMP FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// SoundFormat 0: linear PCM, platform endian.
    LinearPcm,
    /// SoundFormat 1: ADPCM.
    Adpcm,
    /// SoundFormat 2 or 14 (8 kHz), or `.mp3`.
    Mp3,
    /// SoundFormat 3: linear PCM, little endian.
    LinearPcmLe,
    /// SoundFormat 4, 5, 6: Nellymoser.
    Nellymoser,
    /// SoundFormat 7: G.711 A-law.
    G711ALaw,
    /// SoundFormat 8: G.711 µ-law.
    G711MuLaw,
    /// SoundFormat 10 or `mp4a`.
    Aac,
    /// SoundFormat 11.
    Speex,
    /// SoundFormat 15: device-specific sound.
    DeviceSpecific,
    /// `Opus`.
    Opus,
    /// `fLaC`.
    Flac,
    /// `ac-3`.
    Ac3,
    /// `ec-3`.
    Eac3,
}

impl AudioCodec {
    /// A short display name, as shown in stats (`AAC`, `MP3`, `Opus`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::LinearPcm | Self::LinearPcmLe => "PCM",
            Self::Adpcm => "ADPCM",
            Self::Mp3 => "MP3",
            Self::Nellymoser => "Nellymoser",
            Self::G711ALaw => "PCMA",
            Self::G711MuLaw => "PCMU",
            Self::Aac => "AAC",
            Self::Speex => "Speex",
            Self::DeviceSpecific => "Native",
            Self::Opus => "Opus",
            Self::Flac => "FLAC",
            Self::Ac3 => "AC3",
            Self::Eac3 => "EAC3",
        }
    }
}

/// What is known about a stream's video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The codec.
    pub codec: VideoCodec,
    /// Width in pixels (0 while unknown, e.g. before a parsable sequence header).
    pub width: u32,
    /// Height in pixels (0 while unknown).
    pub height: u32,
    /// Frame rate from the bitstream (H.264 VUI timing), if signalled.
    pub fps: Option<f64>,
    /// RFC 6381 codecs string (e.g. `avc1.64001f`), when known.
    pub codecs: Option<String>,
}

/// What is known about a stream's audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInfo {
    /// The codec.
    pub codec: AudioCodec,
    /// Output sample rate in Hz (0 while unknown).
    pub sample_rate: u32,
    /// Channel count (0 while unknown).
    pub channels: u8,
    /// RFC 6381 codecs string (e.g. `mp4a.40.2`), when known.
    pub codecs: Option<String>,
}

/// A summary of a stream's media, updated from its tags (mostly from
/// sequence headers). Reported to the control plane and on `/stat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaInfo {
    /// Video, once a video tag was seen.
    pub video: Option<VideoInfo>,
    /// Audio, once an audio tag was seen.
    pub audio: Option<AudioInfo>,
}

impl MediaInfo {
    /// Updates from one video tag body. Returns whether anything changed.
    ///
    /// A sequence header replaces the video info (codec, size, fps); a frame
    /// of a codec not seen before records the codec with unknown size.
    pub fn update_from_video_tag(&mut self, body: &[u8]) -> Result<bool, CodecError> {
        let tag = VideoTag::parse(body)?;
        let new = if tag.is_sequence_header() {
            let mut info = VideoInfo { codec: tag.codec, width: 0, height: 0, fps: None, codecs: None };
            if tag.codec == VideoCodec::Avc {
                let cfg = AvcConfig::parse(tag.data)?;
                if let Some(sps) = &cfg.sps_info {
                    (info.width, info.height, info.fps) = (sps.width, sps.height, sps.fps);
                }
                info.codecs = Some(cfg.codecs_string());
            }
            info
        } else if tag.packet == VideoPacket::Frame && self.video.as_ref().is_none_or(|v| v.codec != tag.codec) {
            VideoInfo { codec: tag.codec, width: 0, height: 0, fps: None, codecs: None }
        } else {
            return Ok(false);
        };
        let changed = self.video.as_ref() != Some(&new);
        self.video = Some(new);
        Ok(changed)
    }

    /// Updates from one audio tag body. Returns whether anything changed.
    ///
    /// AAC and Opus take rate and channels from their sequence header; other
    /// legacy formats from the SoundRate / SoundType fields of any frame.
    pub fn update_from_audio_tag(&mut self, body: &[u8]) -> Result<bool, CodecError> {
        let tag = AudioTag::parse(body)?;
        let new = match (tag.codec, tag.packet) {
            (AudioCodec::Aac, AudioPacket::SequenceHeader) => {
                let asc = AudioSpecificConfig::parse(tag.data)?;
                AudioInfo {
                    codec: AudioCodec::Aac,
                    sample_rate: asc.output_sample_rate,
                    channels: asc.channels().unwrap_or(0),
                    codecs: Some(asc.codecs_string()),
                }
            }
            (AudioCodec::Opus, AudioPacket::SequenceHeader) => {
                let head = OpusHead::parse(tag.data)?;
                AudioInfo {
                    codec: AudioCodec::Opus,
                    sample_rate: 48_000,
                    channels: head.channels,
                    codecs: Some("opus".to_owned()),
                }
            }
            (codec, AudioPacket::Frame) if self.audio.as_ref().is_none_or(|a| a.codec != codec) => AudioInfo {
                codec,
                sample_rate: tag.sound_rate_hz,
                channels: match (tag.enhanced, tag.stereo) {
                    (true, _) => 0,
                    (false, true) => 2,
                    (false, false) => 1,
                },
                codecs: (codec == AudioCodec::Mp3).then(|| "mp4a.40.34".to_owned()),
            },
            _ => return Ok(false),
        };
        let changed = self.audio.as_ref() != Some(&new);
        self.audio = Some(new);
        Ok(changed)
    }
}

#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
mod tests;
