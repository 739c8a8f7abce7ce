//! FLV / Enhanced RTMP audio tag bodies, AAC `AudioSpecificConfig` and ADTS.
//!
//! - Legacy `AudioTagHeader` and `AACAUDIODATA`: Adobe Flash Video File
//!   Format Specification v10.1, E.4.2.1 and E.4.2.2 (SoundFormat, SoundRate,
//!   SoundSize, SoundType, AACPacketType).
//! - `ExAudioTagHeader`: Enhanced RTMP v2 (veovera, 2024), "Enhanced Audio"
//!   (SoundFormat 9 = ExHeader, AudioPacketType, ModEx, Multitrack, FourCC).
//! - `AudioSpecificConfig`: ISO/IEC 14496-3:2019, 1.6.2.1 (with
//!   `GetAudioObjectType()` escape 31 and the explicit 24-bit frequency).
//! - ADTS header: ISO/IEC 14496-3:2019, 1.A.3.2.1 `adts_fixed_header()` and
//!   `adts_variable_header()` (also ISO/IEC 13818-7 6.2).

use super::AudioCodec;
use super::CodecError;
use super::avc::{first_track, skip_mod_ex};
use super::bits::BitReader;

/// `AACPacketType` / `AudioPacketType`: what an audio tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudioPacket {
    /// Decoder configuration (AAC: an `AudioSpecificConfig`; Opus: `OpusHead`).
    SequenceHeader,
    /// Raw coded audio (an AAC access unit without ADTS header, an MP3 frame...).
    Frame,
    /// E-RTMP `SequenceEnd`; `data` is empty.
    EndOfSequence,
    /// E-RTMP `MultichannelConfig`; `data` is the channel layout description.
    MultichannelConfig,
}

/// A parsed FLV audio tag body (equal to an RTMP audio message payload).
///
/// `data` borrows the input; from a `Bytes` body use `body.slice_ref(tag.data)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTag<'a> {
    /// The codec (from SoundFormat, or from the E-RTMP FourCC).
    pub codec: AudioCodec,
    /// What the body carries.
    pub packet: AudioPacket,
    /// The legacy SoundRate field in Hz (5512, 11025, 22050, 44100; fixed
    /// rates for Nellymoser 8/16 kHz and MP3 8 kHz). Zero for E-RTMP. For AAC
    /// the real rate is in the `AudioSpecificConfig`.
    pub sound_rate_hz: u32,
    /// The legacy SoundSize field: 8 or 16 bits per sample (0 for E-RTMP).
    pub sample_bits: u8,
    /// The legacy SoundType field: stereo (false for E-RTMP).
    pub stereo: bool,
    /// True when the E-RTMP `ExAudioTagHeader` was used.
    pub enhanced: bool,
    /// E-RTMP multitrack track id (0 when not multitrack; only the first
    /// track of a multitrack message is exposed).
    pub track_id: u8,
    /// The payload after all headers.
    pub data: &'a [u8],
}

impl<'a> AudioTag<'a> {
    /// Parses an audio tag body: legacy `AudioTagHeader` or, when SoundFormat
    /// is 9, the E-RTMP `ExAudioTagHeader`.
    pub fn parse(body: &'a [u8]) -> Result<Self, CodecError> {
        let (&first, rest) = body.split_first().ok_or(CodecError::Truncated)?;
        let format = first >> 4;
        if format == 9 {
            return parse_enhanced(first, rest);
        }
        let codec = match format {
            0 => AudioCodec::LinearPcm,
            1 => AudioCodec::Adpcm,
            2 | 14 => AudioCodec::Mp3,
            3 => AudioCodec::LinearPcmLe,
            4..=6 => AudioCodec::Nellymoser,
            7 => AudioCodec::G711ALaw,
            8 => AudioCodec::G711MuLaw,
            10 => AudioCodec::Aac,
            11 => AudioCodec::Speex,
            15 => AudioCodec::DeviceSpecific,
            _ => return Err(CodecError::Unsupported("SoundFormat")),
        };
        let sound_rate_hz = match format {
            4 => 16_000,
            5 | 14 => 8_000,
            _ => [5_512, 11_025, 22_050, 44_100][usize::from((first >> 2) & 0x03)],
        };
        let mut tag = AudioTag {
            codec,
            packet: AudioPacket::Frame,
            sound_rate_hz,
            sample_bits: if first & 0x02 != 0 { 16 } else { 8 },
            stereo: first & 0x01 != 0,
            enhanced: false,
            track_id: 0,
            data: rest,
        };
        if codec == AudioCodec::Aac {
            let (&packet_type, data) = rest.split_first().ok_or(CodecError::Truncated)?;
            tag.packet = match packet_type {
                0 => AudioPacket::SequenceHeader,
                1 => AudioPacket::Frame,
                _ => return Err(CodecError::Malformed("AACPacketType > 1")),
            };
            tag.data = data;
        }
        Ok(tag)
    }

    /// True for a decoder configuration (e.g. AAC `AudioSpecificConfig`).
    pub fn is_sequence_header(&self) -> bool {
        self.packet == AudioPacket::SequenceHeader
    }
}

/// Maps an E-RTMP audio FourCC to a codec.
fn audio_fourcc(cc: [u8; 4]) -> Result<AudioCodec, CodecError> {
    Ok(match &cc {
        b"mp4a" => AudioCodec::Aac,
        b"Opus" => AudioCodec::Opus,
        b".mp3" => AudioCodec::Mp3,
        b"fLaC" => AudioCodec::Flac,
        b"ac-3" => AudioCodec::Ac3,
        b"ec-3" => AudioCodec::Eac3,
        _ => return Err(CodecError::Unsupported("audio FourCC")),
    })
}

/// Parses an E-RTMP `ExAudioTagHeader` and the start of `ExAudioTagBody`.
fn parse_enhanced(first: u8, rest: &[u8]) -> Result<AudioTag<'_>, CodecError> {
    const MULTITRACK: u8 = 5;
    let (packet_type, rest) = skip_mod_ex(first & 0x0F, rest)?;
    let (cc, track_id, packet_type, data) = if packet_type == MULTITRACK {
        let t = first_track(rest)?;
        (t.fourcc, t.track_id, t.packet_type, t.data)
    } else {
        match rest {
            [a, b, c, d, data @ ..] => ([*a, *b, *c, *d], 0, packet_type, data),
            _ => return Err(CodecError::Truncated),
        }
    };
    let codec = audio_fourcc(cc)?;
    let (packet, data) = match packet_type {
        0 => (AudioPacket::SequenceHeader, data),
        1 => (AudioPacket::Frame, data),
        2 => (AudioPacket::EndOfSequence, &[][..]),
        4 => (AudioPacket::MultichannelConfig, data),
        _ => return Err(CodecError::Unsupported("AudioPacketType")),
    };
    Ok(AudioTag { codec, packet, sound_rate_hz: 0, sample_bits: 0, stereo: false, enhanced: true, track_id, data })
}

/// `samplingFrequencyIndex` table (ISO/IEC 14496-3 1.6.3.4, table 1.22).
const SAMPLING_FREQUENCIES: [u32; 13] =
    [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350];

/// The index of `rate` in the sampling frequency table, if it is listed.
pub fn sampling_frequency_index(rate: u32) -> Option<u8> {
    SAMPLING_FREQUENCIES.iter().position(|&r| r == rate).map(|i| i as u8)
}

/// An AAC `AudioSpecificConfig` (ISO/IEC 14496-3 1.6.2.1), parsed up to the
/// first bit of `GASpecificConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The signalled `audioObjectType` (2 = AAC LC, 5 = SBR, 29 = PS, ...).
    pub object_type: u8,
    /// The core object type: equal to `object_type`, or the one after the
    /// explicit SBR/PS signalling (what an ADTS header carries).
    pub core_object_type: u8,
    /// `samplingFrequencyIndex` of the core, `None` when explicit (index 15).
    pub sampling_frequency_index: Option<u8>,
    /// The core sampling rate in Hz.
    pub sample_rate: u32,
    /// The output sampling rate in Hz (doubled by explicitly signalled SBR).
    pub output_sample_rate: u32,
    /// `channelConfiguration` (0 = defined in a program config element).
    pub channel_config: u8,
    /// Samples per frame: 1024, or 960 when `frameLengthFlag` is set.
    pub frame_length: u16,
    /// SBR (HE-AAC) explicitly signalled.
    pub sbr: bool,
    /// Parametric stereo (HE-AAC v2) explicitly signalled.
    pub parametric_stereo: bool,
}

/// `GetAudioObjectType()`: 5 bits, escape 31 → 32 + 6 bits.
fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, CodecError> {
    let aot = r.read_bits(5)? as u8;
    if aot == 31 { Ok(32 + r.read_bits(6)? as u8) } else { Ok(aot) }
}

/// `samplingFrequencyIndex` and, for index 15, the 24-bit `samplingFrequency`.
fn read_frequency(r: &mut BitReader<'_>) -> Result<(Option<u8>, u32), CodecError> {
    let index = r.read_bits(4)? as u8;
    if index == 0x0F {
        let rate = r.read_bits(24)?;
        if rate == 0 {
            return Err(CodecError::Malformed("zero samplingFrequency"));
        }
        return Ok((None, rate));
    }
    let rate = *SAMPLING_FREQUENCIES
        .get(usize::from(index))
        .ok_or(CodecError::Malformed("reserved samplingFrequencyIndex"))?;
    Ok((Some(index), rate))
}

impl AudioSpecificConfig {
    /// Parses a config (the `data` of an AAC sequence header tag).
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig, CodecError> {
        let mut r = BitReader::new(data);
        let object_type = read_object_type(&mut r)?;
        if object_type == 0 {
            return Err(CodecError::Malformed("audioObjectType 0"));
        }
        let (sampling_frequency_index, sample_rate) = read_frequency(&mut r)?;
        let channel_config = r.read_bits(4)? as u8;
        let mut core_object_type = object_type;
        let mut output_sample_rate = sample_rate;
        let (mut sbr, mut parametric_stereo) = (false, false);
        if object_type == 5 || object_type == 29 {
            sbr = true;
            parametric_stereo = object_type == 29;
            (_, output_sample_rate) = read_frequency(&mut r)?;
            core_object_type = read_object_type(&mut r)?;
            if core_object_type == 22 {
                let _extension_channel_configuration = r.read_bits(4)?;
            }
        }
        // GASpecificConfig (1.6.2.1 and 4.4.1) starts with frameLengthFlag for
        // the GA object types; a missing bit means the default.
        let mut frame_length = 1024;
        if matches!(core_object_type, 1..=4 | 6 | 7 | 17 | 19..=23) && r.read_bit() == Ok(true) {
            frame_length = 960;
        }
        Ok(AudioSpecificConfig {
            object_type,
            core_object_type,
            sampling_frequency_index,
            sample_rate,
            output_sample_rate,
            channel_config,
            frame_length,
            sbr,
            parametric_stereo,
        })
    }

    /// Channel count from `channelConfiguration` (table 1.19): 1–6 as is,
    /// 7 → 8 (7.1); 0 (program config element) and reserved values → `None`.
    pub fn channels(&self) -> Option<u8> {
        match self.channel_config {
            1..=6 => Some(self.channel_config),
            7 => Some(8),
            _ => None,
        }
    }

    /// Duration of one frame in 90 kHz ticks, rounded down.
    pub fn frame_duration_90k(&self) -> u64 {
        u64::from(self.frame_length) * 90_000 / u64::from(self.sample_rate.max(1))
    }

    /// The 7-byte ADTS header (no CRC) for a raw AAC frame of `payload_len`
    /// bytes: MPEG-4 ID, `profile_ObjectType = core_object_type − 1`, core
    /// sampling frequency index, channel configuration, `aac_frame_length`,
    /// buffer fullness 0x7FF (VBR), one raw data block.
    pub fn adts_header(&self, payload_len: usize) -> Result<[u8; 7], CodecError> {
        if !(1..=4).contains(&self.core_object_type) {
            return Err(CodecError::Unsupported("ADTS needs object type 1..=4"));
        }
        let index =
            self.sampling_frequency_index.ok_or(CodecError::Unsupported("ADTS needs a sampling frequency index"))?;
        if !(1..=7).contains(&self.channel_config) {
            return Err(CodecError::Unsupported("ADTS needs channel configuration 1..=7"));
        }
        let frame_len = payload_len + 7;
        if frame_len > 0x1FFF {
            return Err(CodecError::TooLarge("ADTS frame"));
        }
        let profile = self.core_object_type - 1;
        let ch = self.channel_config;
        let len = frame_len as u16;
        Ok([
            0xFF,
            // syncword low 4 bits, ID 0 (MPEG-4), layer 00, protection_absent 1
            0xF1,
            (profile << 6) | (index << 2) | ((ch >> 2) & 0x01),
            ((ch & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            (((len & 0x07) as u8) << 5) | 0x1F,
            // buffer fullness low 6 bits (all ones), number_of_raw_data_blocks 0
            0xFC,
        ])
    }

    /// Appends an ADTS header then `raw` to `out`.
    pub fn write_adts(&self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let header = self.adts_header(raw.len())?;
        out.extend_from_slice(&header);
        out.extend_from_slice(raw);
        Ok(())
    }

    /// The RFC 6381 codecs string, e.g. `mp4a.40.2`.
    pub fn codecs_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// Fields of an Opus `OpusHead` (RFC 7845 5.1) used for stream info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    /// Output channel count.
    pub channels: u8,
    /// The original input sample rate (informative; Opus decodes at 48 kHz).
    pub input_sample_rate: u32,
}

impl OpusHead {
    /// Parses the identification header ("OpusHead", version, channels, ...).
    pub fn parse(data: &[u8]) -> Result<OpusHead, CodecError> {
        let head = data.get(..19).ok_or(CodecError::Truncated)?;
        if &head[..8] != b"OpusHead" {
            return Err(CodecError::Malformed("missing OpusHead magic"));
        }
        Ok(OpusHead {
            channels: head[9],
            input_sample_rate: u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
        })
    }
}

#[cfg(test)]
mod tests;
