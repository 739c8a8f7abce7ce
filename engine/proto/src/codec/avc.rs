//! FLV / Enhanced RTMP video tag bodies and H.264 (AVC) bitstream helpers.
//!
//! - Legacy `VideoTagHeader` and `AVCVIDEOPACKET`: Adobe Flash Video File
//!   Format Specification v10.1, E.4.3.1 and annex E.4.3.2 (FrameType,
//!   CodecID, AVCPacketType, CompositionTime SI24).
//! - `ExVideoTagHeader`: Enhanced RTMP v2 (veovera, 2024), "Enhanced Video"
//!   (IsExHeader bit, VideoPacketType, ModEx, Multitrack, video FourCC).
//! - `AVCDecoderConfigurationRecord`: ISO/IEC 14496-15:2019, 5.3.3.1.
//! - AVCC (length-prefixed) and Annex B (start-code) byte streams:
//!   ISO/IEC 14496-15 5.3.2 and H.264 Annex B.

use super::CodecError;
use super::VideoCodec;
use super::sps::Sps;

/// H.264 `nal_unit_type` values used here (H.264 table 7-1).
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The 4-byte Annex B start code written by this module.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// `VideoFrameType` (FLV v10.1 E.4.3.1; E-RTMP keeps the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VideoFrameType {
    /// 1: a seekable frame (IDR for AVC).
    Key,
    /// 2: a non-seekable frame.
    Inter,
    /// 3: disposable inter frame (H.263 only).
    DisposableInter,
    /// 4: generated key frame (server use only).
    GeneratedKey,
    /// 5: video info / command frame.
    Command,
    /// 0, 6, 7: reserved values, kept for diagnostics.
    Reserved(u8),
}

impl VideoFrameType {
    fn from_bits(v: u8) -> Self {
        match v {
            1 => Self::Key,
            2 => Self::Inter,
            3 => Self::DisposableInter,
            4 => Self::GeneratedKey,
            5 => Self::Command,
            other => Self::Reserved(other),
        }
    }
}

/// What a video tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VideoPacket {
    /// Decoder configuration (AVCPacketType 0 / E-RTMP SequenceStart); `data`
    /// is e.g. an `AVCDecoderConfigurationRecord`.
    SequenceHeader,
    /// Coded frame data (AVCPacketType 1 / CodedFrames / CodedFramesX, or a
    /// legacy non-AVC codec's frame).
    Frame,
    /// End of sequence (AVCPacketType 2 / SequenceEnd); `data` is empty.
    EndOfSequence,
    /// E-RTMP `Metadata`: `data` is AMF-encoded (e.g. HDR colorInfo).
    Metadata,
    /// E-RTMP `MPEG2TSSequenceStart`: `data` is a TS descriptor.
    Mpeg2TsSequenceStart,
    /// A command frame (`FrameType` 5) with its `VideoCommand` byte
    /// (0 start / 1 end of client-side seeking); `data` is empty.
    Command(u8),
}

/// A parsed FLV video tag body (equal to an RTMP video message payload).
///
/// `data` borrows the input; to keep a zero-copy handle on it from a
/// `Bytes` body use `body.slice_ref(tag.data)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoTag<'a> {
    /// The codec (from CodecID, or from the E-RTMP FourCC).
    pub codec: VideoCodec,
    /// The frame type from the first byte.
    pub frame_type: VideoFrameType,
    /// What the body carries.
    pub packet: VideoPacket,
    /// PTS − DTS in milliseconds (SI24; zero when absent).
    pub composition_time_ms: i32,
    /// True when the E-RTMP `ExVideoTagHeader` was used.
    pub enhanced: bool,
    /// E-RTMP multitrack track id (0 when not multitrack). Only the first
    /// track of a multitrack message is exposed.
    pub track_id: u8,
    /// The payload after all headers.
    pub data: &'a [u8],
}

impl<'a> VideoTag<'a> {
    /// Parses a video tag body: legacy `VideoTagHeader` or E-RTMP
    /// `ExVideoTagHeader` (when bit 7 of the first byte, IsExHeader, is set).
    pub fn parse(body: &'a [u8]) -> Result<Self, CodecError> {
        let (&first, rest) = body.split_first().ok_or(CodecError::Truncated)?;
        let frame_type = VideoFrameType::from_bits((first >> 4) & 0x07);
        if first & 0x80 != 0 {
            return parse_enhanced(first, rest, frame_type);
        }
        let codec = match first & 0x0F {
            1 => VideoCodec::Jpeg,
            2 => VideoCodec::SorensonH263,
            3 => VideoCodec::ScreenVideo,
            4 => VideoCodec::Vp6,
            5 => VideoCodec::Vp6Alpha,
            6 => VideoCodec::ScreenVideo2,
            7 => VideoCodec::Avc,
            // Not in FLV v10.1: the widely deployed pre-E-RTMP HEVC extension
            // (CodecID 12, same layout as AVC).
            12 => VideoCodec::Hevc,
            _ => return Err(CodecError::Unsupported("video CodecID")),
        };
        let mut tag = VideoTag {
            codec,
            frame_type,
            packet: VideoPacket::Frame,
            composition_time_ms: 0,
            enhanced: false,
            track_id: 0,
            data: &[],
        };
        if frame_type == VideoFrameType::Command {
            let cmd = rest.first().copied().unwrap_or(0);
            tag.packet = VideoPacket::Command(cmd);
            return Ok(tag);
        }
        if !matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
            tag.data = rest;
            return Ok(tag);
        }
        // AVCVIDEOPACKET: AVCPacketType UI8, CompositionTime SI24, data.
        let (&packet_type, rest) = rest.split_first().ok_or(CodecError::Truncated)?;
        let (ct, data) = split_si24(rest)?;
        tag.packet = match packet_type {
            0 => VideoPacket::SequenceHeader,
            1 => VideoPacket::Frame,
            2 => VideoPacket::EndOfSequence,
            _ => return Err(CodecError::Malformed("AVCPacketType > 2")),
        };
        tag.composition_time_ms = ct;
        tag.data = data;
        Ok(tag)
    }

    /// True for a key frame carrying coded data (not a sequence header).
    pub fn is_keyframe(&self) -> bool {
        self.packet == VideoPacket::Frame
            && matches!(self.frame_type, VideoFrameType::Key | VideoFrameType::GeneratedKey)
    }

    /// True for a decoder configuration record.
    pub fn is_sequence_header(&self) -> bool {
        self.packet == VideoPacket::SequenceHeader
    }
}

/// Reads an SI24 (big-endian two's complement) and returns it with the rest.
fn split_si24(data: &[u8]) -> Result<(i32, &[u8]), CodecError> {
    match data {
        [a, b, c, rest @ ..] => {
            let raw = (u32::from(*a) << 16) | (u32::from(*b) << 8) | u32::from(*c);
            // Sign-extend 24 → 32 bits.
            Ok((((raw << 8) as i32) >> 8, rest))
        }
        _ => Err(CodecError::Truncated),
    }
}

/// Maps an E-RTMP video FourCC to a codec.
fn video_fourcc(cc: [u8; 4]) -> Result<VideoCodec, CodecError> {
    Ok(match &cc {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        b"vp08" => VideoCodec::Vp8,
        b"vvc1" => VideoCodec::Vvc,
        _ => return Err(CodecError::Unsupported("video FourCC")),
    })
}

fn split_fourcc(data: &[u8]) -> Result<([u8; 4], &[u8]), CodecError> {
    match data {
        [a, b, c, d, rest @ ..] => Ok(([*a, *b, *c, *d], rest)),
        _ => Err(CodecError::Truncated),
    }
}

/// Skips E-RTMP ModEx blocks and returns the final packet type and the rest.
///
/// `ModEx` (packet type 7) carries `UI8 + 1` bytes (or `UI16 + 1` when the
/// UI8 is 255), then a byte `ModExType << 4 | next packet type`.
pub(super) fn skip_mod_ex(mut packet_type: u8, mut rest: &[u8]) -> Result<(u8, &[u8]), CodecError> {
    const MOD_EX: u8 = 7;
    while packet_type == MOD_EX {
        let (&size8, r) = rest.split_first().ok_or(CodecError::Truncated)?;
        let (size, r) = if size8 == 255 {
            match r {
                [hi, lo, r @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])) + 1, r),
                _ => return Err(CodecError::Truncated),
            }
        } else {
            (usize::from(size8) + 1, r)
        };
        let r = r.get(size..).ok_or(CodecError::Truncated)?;
        let (&next, r) = r.split_first().ok_or(CodecError::Truncated)?;
        packet_type = next & 0x0F;
        rest = r;
    }
    Ok((packet_type, rest))
}

/// The first track of an E-RTMP multitrack message.
pub(super) struct FirstTrack<'a> {
    pub(super) fourcc: [u8; 4],
    pub(super) track_id: u8,
    /// The packet type shared by the tracks.
    pub(super) packet_type: u8,
    /// The first track's body.
    pub(super) data: &'a [u8],
}

/// Parses an E-RTMP multitrack prefix (after `VideoPacketType` /
/// `AudioPacketType` = Multitrack) and returns the first track.
///
/// `AvMultitrackType`: 0 OneTrack, 1 ManyTracks, 2 ManyTracksManyCodecs.
pub(super) fn first_track(rest: &[u8]) -> Result<FirstTrack<'_>, CodecError> {
    let (&b, rest) = rest.split_first().ok_or(CodecError::Truncated)?;
    let multitrack_type = b >> 4;
    let packet_type = b & 0x0F;
    if packet_type == 6 {
        return Err(CodecError::Malformed("nested multitrack"));
    }
    if multitrack_type > 2 {
        return Err(CodecError::Unsupported("AvMultitrackType"));
    }
    // OneTrack / ManyTracks: one FourCC shared by all tracks; ManyTracksManyCodecs:
    // a FourCC before each track. Either way the first track's FourCC is next.
    let (cc, rest) = split_fourcc(rest)?;
    let (&track_id, mut rest) = rest.split_first().ok_or(CodecError::Truncated)?;
    if multitrack_type != 0 {
        let (size, r) = match rest {
            [a, b, c, r @ ..] => ((usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c), r),
            _ => return Err(CodecError::Truncated),
        };
        rest = r.get(..size).ok_or(CodecError::Truncated)?;
    }
    Ok(FirstTrack { fourcc: cc, track_id, packet_type, data: rest })
}

/// Parses an E-RTMP `ExVideoTagHeader` and the start of `ExVideoTagBody`.
fn parse_enhanced(first: u8, rest: &[u8], frame_type: VideoFrameType) -> Result<VideoTag<'_>, CodecError> {
    let (packet_type, rest) = skip_mod_ex(first & 0x0F, rest)?;
    const METADATA: u8 = 4;
    const MULTITRACK: u8 = 6;
    if packet_type != METADATA && frame_type == VideoFrameType::Command {
        // A VideoCommand byte without a FourCC: no codec to report.
        return Err(CodecError::Unsupported("E-RTMP video command frame"));
    }
    let (cc, track_id, packet_type, rest) = if packet_type == MULTITRACK {
        let t = first_track(rest)?;
        (t.fourcc, t.track_id, t.packet_type, t.data)
    } else {
        let (cc, rest) = split_fourcc(rest)?;
        (cc, 0, packet_type, rest)
    };
    let codec = video_fourcc(cc)?;
    let mut composition_time_ms = 0;
    let (packet, data) = match packet_type {
        0 => (VideoPacket::SequenceHeader, rest),
        1 => {
            if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc | VideoCodec::Vvc) {
                let (ct, data) = split_si24(rest)?;
                composition_time_ms = ct;
                (VideoPacket::Frame, data)
            } else {
                (VideoPacket::Frame, rest)
            }
        }
        2 => (VideoPacket::EndOfSequence, &[][..]),
        3 => (VideoPacket::Frame, rest),
        4 => (VideoPacket::Metadata, rest),
        5 => (VideoPacket::Mpeg2TsSequenceStart, rest),
        _ => return Err(CodecError::Unsupported("VideoPacketType")),
    };
    Ok(VideoTag { codec, frame_type, packet, composition_time_ms, enhanced: true, track_id, data })
}

/// Most SPS or PPS NAL units kept from one configuration record.
const MAX_PARAMETER_SETS: usize = 32;

/// An `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15:2019, 5.3.3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (a copy of the SPS `profile_idc`).
    pub profile: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub compatibility: u8,
    /// `AVCLevelIndication`.
    pub level: u8,
    /// `lengthSizeMinusOne + 1`: bytes in each NAL unit length prefix (1, 2 or 4).
    pub nalu_length_size: u8,
    /// SPS NAL units, with NAL headers, without length prefixes.
    pub sps: Vec<Vec<u8>>,
    /// PPS NAL units, with NAL headers, without length prefixes.
    pub pps: Vec<Vec<u8>>,
    /// The first SPS, parsed; `None` if it could not be parsed.
    pub sps_info: Option<Sps>,
}

impl AvcConfig {
    /// Parses a record (the `data` of a video sequence header tag).
    pub fn parse(record: &[u8]) -> Result<AvcConfig, CodecError> {
        let [version, profile, compatibility, level, len_byte, sps_count, rest @ ..] = record else {
            return Err(CodecError::Truncated);
        };
        if *version != 1 {
            return Err(CodecError::Unsupported("AVCDecoderConfigurationRecord version"));
        }
        let nalu_length_size = (len_byte & 0x03) + 1;
        if nalu_length_size == 3 {
            return Err(CodecError::Malformed("lengthSizeMinusOne = 2"));
        }
        let (sps, rest) = read_parameter_sets(rest, usize::from(sps_count & 0x1F))?;
        let (&pps_count, rest) = rest.split_first().ok_or(CodecError::Truncated)?;
        let (pps, _rest) = read_parameter_sets(rest, usize::from(pps_count))?;
        // Any High-profile extension (chroma_format etc.) after the PPS list is
        // ignored: the SPS carries the same information.
        if sps.is_empty() {
            return Err(CodecError::Malformed("no SPS in AVC configuration"));
        }
        let sps_info = sps.first().and_then(|s| Sps::parse(s).ok());
        Ok(AvcConfig {
            profile: *profile,
            compatibility: *compatibility,
            level: *level,
            nalu_length_size,
            sps,
            pps,
            sps_info,
        })
    }

    /// Appends every SPS then every PPS, each behind a 4-byte start code.
    pub fn write_annexb_parameter_sets(&self, out: &mut Vec<u8>) {
        for nal in self.sps.iter().chain(self.pps.iter()) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        }
    }

    /// The RFC 6381 codecs string, e.g. `avc1.64001f`.
    pub fn codecs_string(&self) -> String {
        format!("avc1.{:02x}{:02x}{:02x}", self.profile, self.compatibility, self.level)
    }
}

fn read_parameter_sets(mut data: &[u8], count: usize) -> Result<(Vec<Vec<u8>>, &[u8]), CodecError> {
    let mut sets = Vec::with_capacity(count.min(MAX_PARAMETER_SETS));
    for _ in 0..count {
        let [hi, lo, rest @ ..] = data else {
            return Err(CodecError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let nal = rest.get(..len).ok_or(CodecError::Truncated)?;
        if nal.is_empty() {
            return Err(CodecError::Malformed("empty parameter set"));
        }
        if sets.len() < MAX_PARAMETER_SETS {
            sets.push(nal.to_vec());
        }
        data = &rest[len..];
    }
    Ok((sets, data))
}

/// Iterates over the NAL units of an AVCC (length-prefixed) access unit.
///
/// Yields `Err(CodecError::Truncated)` once (then stops) when a length runs
/// past the end of the input.
#[derive(Debug, Clone)]
pub struct AvccNalus<'a> {
    data: &'a [u8],
    length_size: usize,
}

/// NAL units of `data`, each prefixed by a `length_size`-byte big-endian length.
pub fn avcc_nalus(data: &[u8], length_size: u8) -> AvccNalus<'_> {
    AvccNalus { data, length_size: usize::from(length_size) }
}

impl<'a> Iterator for AvccNalus<'a> {
    type Item = Result<&'a [u8], CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        if !(1..=4).contains(&self.length_size) {
            self.data = &[];
            return Some(Err(CodecError::Malformed("NAL length size not in 1..=4")));
        }
        let Some(prefix) = self.data.get(..self.length_size) else {
            self.data = &[];
            return Some(Err(CodecError::Truncated));
        };
        let len = prefix.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let end = self.length_size.checked_add(len);
        match end.and_then(|end| self.data.get(self.length_size..end)) {
            Some(nal) => {
                // `end` is in bounds: `get` just succeeded.
                self.data = &self.data[self.length_size + len..];
                Some(Ok(nal))
            }
            None => {
                self.data = &[];
                Some(Err(CodecError::Truncated))
            }
        }
    }
}

/// The `nal_unit_type` of a NAL unit (0 for an empty one).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// Converts an AVCC access unit to Annex B, appending to `out`: each NAL unit
/// gets a 4-byte start code. On error `out` is left as it was.
pub fn avcc_to_annexb(avcc: &[u8], length_size: u8, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.reserve(avcc.len() + 16);
    for nal in avcc_nalus(avcc, length_size) {
        match nal {
            Ok(nal) => {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(nal);
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// True when the AVCC access unit contains an IDR slice (a key frame by the
/// bitstream, whatever the container's flag says). Malformed input is `false`.
pub fn avcc_contains_idr(avcc: &[u8], length_size: u8) -> bool {
    avcc_nalus(avcc, length_size).map_while(Result::ok).any(|nal| nal_unit_type(nal) == nal_type::IDR)
}

/// Iterates over the NAL units of an Annex B byte stream (3- or 4-byte start
/// codes). Bytes before the first start code are skipped.
#[derive(Debug, Clone)]
pub struct AnnexBNalus<'a> {
    rest: &'a [u8],
}

/// NAL units of an Annex B byte stream.
pub fn annexb_nalus(data: &[u8]) -> AnnexBNalus<'_> {
    let rest = match find_start_code(data) {
        Some((_, after)) => &data[after..],
        None => &[],
    };
    AnnexBNalus { rest }
}

/// Finds the next `00 00 01`; returns (index of the first zero of the start
/// code, including one extra leading zero if present, index after it).
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let pos = data.windows(3).position(|w| w == [0, 0, 1])?;
    let begin = if pos > 0 && data[pos - 1] == 0 { pos - 1 } else { pos };
    Some((begin, pos + 3))
}

impl<'a> Iterator for AnnexBNalus<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (nal, rest) = match find_start_code(self.rest) {
                Some((end, after)) => (&self.rest[..end], &self.rest[after..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // Trailing zero bytes belong to the stream, not the NAL unit.
            let trimmed_len = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            if trimmed_len > 0 {
                return Some(&nal[..trimmed_len]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
