//! H.264 over RTP (RFC 6184, packetization-mode 1) for bridging RTMP ⇄ WebRTC,
//! plus B-frame detection on FLV video.
//!
//! How the pieces run:
//! - RTMP → WebRTC: each FLV video tag body goes through
//!   [`H264Packetizer::handle_video_tag`] (sequence headers set the parameter
//!   sets, coded frames become RTP payloads); each [`H264RtpPacket`] becomes a
//!   [`MediaPacket`] for `WebRtcSession::send_rtp`, which rewrites SSRC, payload
//!   type and sequence numbers per viewer. Run once per stream, not per viewer.
//! - WebRTC → RTMP/FLV/HLS: each received RTP packet goes into
//!   [`H264Depacketizer::handle_packet`]; drain [`H264Depacketizer::poll_output`]
//!   until `None` for new parameter sets (→ an FLV sequence header built with
//!   [`avc_sequence_header_tag_body`]), access units (already FLV video tag
//!   bodies) and keyframe requests (→ PLI to the publisher). Call
//!   [`H264Depacketizer::handle_timeout`] at [`H264Depacketizer::poll_timeout`].
//! - [`BFrameDetector`] watches FLV video tags for reordered pictures, which
//!   browsers cannot play over WebRTC (RTP timestamps must not go backwards
//!   in decode order for their jitter buffers).
//!
//! Specifications: RFC 6184 §5.6 (single NAL unit packet), §5.7.1 (STAP-A),
//! §5.8 (FU-A), §5.1 (marker bit, 90 kHz RTP timestamp = presentation time),
//! §6.2 (non-interleaved mode); H.264 table 7-1 (`nal_unit_type`), 7.3.3
//! (`first_mb_in_slice`); ISO/IEC 14496-15:2019 5.3.3.1
//! (`AVCDecoderConfigurationRecord`); Adobe FLV v10.1 E.4.3.1 (`VideoTagHeader`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::avc::nal_type;
use super::codec::bits::{BitReader, nal_to_rbsp};
use super::codec::{AvcConfig, CodecError, VideoCodec, VideoPacket, VideoTag, avcc_nalus};
use super::webrtc::MediaPacket;

/// RTP clock rate of H.264 video (RFC 6184 §5.1, §8.2.1).
pub const H264_CLOCK_RATE: u32 = 90_000;

/// Default largest RTP payload (bytes): leaves room for RTP, SRTP and header
/// extensions inside a 1280-byte IPv6 minimum MTU path.
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 1200;

/// RFC 6184 payload structure types (§5.4, table 1) used here.
mod rtp_type {
    /// Single-time aggregation packet (§5.7.1).
    pub const STAP_A: u8 = 24;
    /// STAP-B, MTAP16, MTAP24 (interleaved mode only, §5.7).
    pub const STAP_B: u8 = 25;
    pub const MTAP16: u8 = 26;
    pub const MTAP24: u8 = 27;
    /// Fragmentation unit (§5.8).
    pub const FU_A: u8 = 28;
    /// FU-B (interleaved mode only).
    pub const FU_B: u8 = 29;
}

/// H.264 `nal_unit_type` values dropped when sending (not needed by browsers).
const FILLER_DATA: u8 = 12;
const END_OF_SEQUENCE: u8 = 10;
const END_OF_STREAM: u8 = 11;

/// Errors of the H.264 RTP bridge. Network input to the depacketizer is never
/// an error (it is counted in [`DepacketizerStats`]); these concern the
/// packetizer's FLV input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpH264Error {
    /// The FLV tag or the AVCC access unit is malformed.
    #[error("malformed video: {0}")]
    Codec(#[from] CodecError),
    /// Valid video this bridge does not handle (a codec other than H.264).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A coded frame arrived before any AVC sequence header (its NAL unit
    /// length size is unknown).
    #[error("H.264 frame before the AVC sequence header")]
    MissingSequenceHeader,
}

/// The 90 kHz RTP timestamp of an FLV video frame: presentation time =
/// tag timestamp (DTS, ms) + `CompositionTime` (ms), wrapping at 2^32
/// (RFC 6184 §5.1: the timestamp is the sampling time of the picture).
pub fn rtp_timestamp_90k(dts_ms: u32, composition_time_ms: i32) -> u32 {
    let pts_ms = i64::from(dts_ms) + i64::from(composition_time_ms);
    // Wrapping by design: RTP timestamps are modulo 2^32.
    (pts_ms * i64::from(H264_CLOCK_RATE / 1000)) as u32
}

// ---------------------------------------------------------------------------
// Packetizer (RTMP → WebRTC)
// ---------------------------------------------------------------------------

/// Configuration of an [`H264Packetizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264PacketizerConfig {
    /// Largest RTP payload in bytes; larger NAL units are sent as FU-A
    /// fragments (RFC 6184 §5.8). Default 1200; at least 16.
    pub max_payload_size: usize,
    /// Keep SEI NAL units (type 6). Default off: browsers ignore them and
    /// x264 puts a ~600-byte version SEI in the first frame.
    pub keep_sei: bool,
    /// Sequence number of the first packet (the WebRTC session rewrites it).
    pub initial_sequence_number: u16,
}

impl Default for H264PacketizerConfig {
    fn default() -> Self {
        Self { max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE, keep_sei: false, initial_sequence_number: 0 }
    }
}

/// One RTP packet's worth of H.264: the fields of a [`MediaPacket`] except
/// the SSRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264RtpPacket {
    /// Consecutive per packetizer.
    pub sequence_number: u16,
    /// 90 kHz presentation time of the access unit.
    pub timestamp: u32,
    /// Set on the last packet of each access unit (RFC 6184 §5.1).
    pub marker: bool,
    /// The RTP payload (single NAL unit, STAP-A or FU-A).
    pub payload: Bytes,
}

impl H264RtpPacket {
    /// The packet as the WebRTC session takes it, from source `ssrc`.
    pub fn to_media_packet(&self, source_ssrc: u32) -> MediaPacket {
        MediaPacket {
            source_ssrc,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            marker: self.marker,
            payload: self.payload.clone(),
            media_ms: None,
        }
    }
}

/// Counters of an [`H264Packetizer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketizerStats {
    /// Access units packetized.
    pub access_units: u64,
    /// RTP packets produced.
    pub packets: u64,
    /// NAL units dropped (AUD, SEI unless kept, filler, end of sequence/stream,
    /// reserved types).
    pub dropped_nal_units: u64,
    /// IDR access units sent without any known SPS/PPS.
    pub idr_without_parameter_sets: u64,
}

/// Turns AVCC access units (FLV video tags) into RTP payloads (RFC 6184,
/// non-interleaved mode: single NAL unit packets, STAP-A, FU-A).
///
/// Getters: [`config`](Self::config), [`stats`](Self::stats),
/// [`has_parameter_sets`](Self::has_parameter_sets). Input:
/// [`handle_video_tag`](Self::handle_video_tag), or
/// [`set_avc_config`](Self::set_avc_config) and
/// [`packetize`](Self::packetize). Output is appended to the caller's `Vec`
/// (no queue, no clock).
///
/// Before every IDR access unit the current SPS and PPS go out aggregated in
/// one STAP-A (§5.7.1), so a viewer joining at any keyframe can decode. SPS/PPS
/// found in-band replace those of the sequence header.
#[derive(Debug)]
pub struct H264Packetizer {
    pub(crate) config: H264PacketizerConfig,
    pub(crate) nalu_length_size: Option<u8>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// The STAP-A (or, when too large, the single packets) for `sps`/`pps`.
    parameter_packets: Vec<Bytes>,
    sequence_number: u16,
    stats: PacketizerStats,
}

impl H264Packetizer {
    /// A packetizer waiting for its sequence header.
    pub fn new(mut config: H264PacketizerConfig) -> Self {
        config.max_payload_size = config.max_payload_size.max(16);
        let sequence_number = config.initial_sequence_number;
        Self {
            config,
            nalu_length_size: None,
            sps: None,
            pps: None,
            parameter_packets: Vec::new(),
            sequence_number,
            stats: PacketizerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &H264PacketizerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &PacketizerStats {
        &self.stats
    }

    /// True once an SPS and a PPS are known.
    pub fn has_parameter_sets(&self) -> bool {
        self.sps.is_some() && self.pps.is_some()
    }

    /// Takes the NAL unit length size and the first SPS and PPS of an
    /// `AVCDecoderConfigurationRecord` (from an AVC sequence header).
    pub fn set_avc_config(&mut self, config: &AvcConfig) {
        self.nalu_length_size = Some(config.nalu_length_size);
        let sps = config.sps.first().map(|s| Bytes::copy_from_slice(s));
        let pps = config.pps.first().map(|p| Bytes::copy_from_slice(p));
        self.set_parameter_sets(sps, pps);
    }

    /// Handles one FLV video tag body (= RTMP video message payload) with its
    /// tag timestamp, appending the packets of a coded frame to `out`.
    ///
    /// Sequence headers update the configuration and produce no packets; end
    /// of sequence is ignored. On error nothing is appended.
    pub fn handle_video_tag(
        &mut self,
        timestamp_ms: u32,
        body: &Bytes,
        out: &mut Vec<H264RtpPacket>,
    ) -> Result<(), RtpH264Error> {
        let tag = VideoTag::parse(body)?;
        if tag.codec != VideoCodec::Avc {
            return Err(RtpH264Error::Unsupported("video codec is not H.264"));
        }
        match tag.packet {
            VideoPacket::SequenceHeader => {
                let config = AvcConfig::parse(tag.data)?;
                self.set_avc_config(&config);
                Ok(())
            }
            VideoPacket::Frame => {
                let ts = rtp_timestamp_90k(timestamp_ms, tag.composition_time_ms);
                self.packetize(ts, &body.slice_ref(tag.data), out)
            }
            _ => Ok(()),
        }
    }

    /// Packetizes one AVCC access unit (length-prefixed NAL units, the prefix
    /// size from the sequence header) with its 90 kHz timestamp. Single NAL
    /// unit packets share `avcc`'s buffer; FU-A fragments are copied.
    /// On error nothing is appended.
    pub fn packetize(
        &mut self,
        rtp_timestamp: u32,
        avcc: &Bytes,
        out: &mut Vec<H264RtpPacket>,
    ) -> Result<(), RtpH264Error> {
        let length_size = self.nalu_length_size.ok_or(RtpH264Error::MissingSequenceHeader)?;
        // Validate the whole access unit before emitting anything.
        let mut nals: Vec<&[u8]> = Vec::with_capacity(8);
        for nal in avcc_nalus(avcc, length_size) {
            nals.push(nal?);
        }
        let (mut in_band_sps, mut in_band_pps, mut has_idr) = (None, None, false);
        let mut dropped = 0u64;
        nals.retain(|nal| {
            let Some(&header) = nal.first() else {
                dropped += 1;
                return false;
            };
            match header & 0x1F {
                nal_type::SPS => in_band_sps = Some(*nal),
                nal_type::PPS => in_band_pps = Some(*nal),
                nal_type::IDR => {
                    has_idr = true;
                    return true;
                }
                nal_type::SEI if self.config.keep_sei => return true,
                nal_type::SEI | nal_type::AUD | FILLER_DATA | END_OF_SEQUENCE | END_OF_STREAM => dropped += 1,
                0 | 24..=31 => dropped += 1,
                _ => return true,
            }
            false
        });
        self.stats.dropped_nal_units += dropped;
        let in_band = in_band_sps.is_some() || in_band_pps.is_some();
        if in_band {
            let sps = in_band_sps.map(|s| avcc.slice_ref(s)).or_else(|| self.sps.clone());
            let pps = in_band_pps.map(|p| avcc.slice_ref(p)).or_else(|| self.pps.clone());
            self.set_parameter_sets(sps, pps);
        }
        let first = out.len();
        if has_idr || in_band {
            if has_idr && !self.has_parameter_sets() {
                self.stats.idr_without_parameter_sets += 1;
            }
            for i in 0..self.parameter_packets.len() {
                let payload = self.parameter_packets[i].clone();
                self.push(out, rtp_timestamp, payload);
            }
        }
        let max = self.config.max_payload_size;
        for nal in nals {
            if nal.len() <= max {
                self.push(out, rtp_timestamp, avcc.slice_ref(nal));
                continue;
            }
            // FU-A (§5.8): FU indicator = F|NRI of the NAL header, type 28;
            // FU header = S|E|R|nal_unit_type; the NAL header itself is not sent.
            let header = nal[0];
            let body = &nal[1..];
            let chunk = max - 2;
            let count = body.len().div_ceil(chunk);
            for (i, part) in body.chunks(chunk).enumerate() {
                let mut fu_header = header & 0x1F;
                if i == 0 {
                    fu_header |= 0x80;
                }
                if i + 1 == count {
                    fu_header |= 0x40;
                }
                let mut buf = BytesMut::with_capacity(2 + part.len());
                buf.put_u8((header & 0xE0) | rtp_type::FU_A);
                buf.put_u8(fu_header);
                buf.put_slice(part);
                self.push(out, rtp_timestamp, buf.freeze());
            }
        }
        if let Some(last) = out[first..].last_mut() {
            last.marker = true;
            self.stats.access_units += 1;
        }
        Ok(())
    }

    fn push(&mut self, out: &mut Vec<H264RtpPacket>, timestamp: u32, payload: Bytes) {
        out.push(H264RtpPacket { sequence_number: self.sequence_number, timestamp, marker: false, payload });
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.stats.packets += 1;
    }

    /// Stores the parameter sets (copied, so they never pin a frame's
    /// buffer) and rebuilds their packets when they changed.
    pub(crate) fn set_parameter_sets(&mut self, sps: Option<Bytes>, pps: Option<Bytes>) {
        if sps == self.sps && pps == self.pps {
            return;
        }
        self.sps = sps.map(|s| Bytes::copy_from_slice(&s));
        self.pps = pps.map(|p| Bytes::copy_from_slice(&p));
        let sets: Vec<&Bytes> = self.sps.iter().chain(self.pps.iter()).collect();
        self.parameter_packets.clear();
        let stap_len = 1 + sets.iter().map(|s| 2 + s.len()).sum::<usize>();
        if sets.len() >= 2 && stap_len <= self.config.max_payload_size {
            // STAP-A (§5.7.1): F = OR of the F bits, NRI = the highest NRI.
            let f = sets.iter().fold(0, |acc, s| acc | (s[0] & 0x80));
            let nri = sets.iter().map(|s| s[0] & 0x60).max().unwrap_or(0x60);
            let mut buf = BytesMut::with_capacity(stap_len);
            buf.put_u8(f | nri | rtp_type::STAP_A);
            for s in &sets {
                // Fits: the whole STAP-A is at most max_payload_size.
                buf.put_u16(s.len() as u16);
                buf.put_slice(s);
            }
            self.parameter_packets.push(buf.freeze());
        } else {
            // Unusually large (or single) parameter sets: send each on its own
            // (a real SPS/PPS is far below any sane MTU).
            for s in sets {
                if s.len() <= self.config.max_payload_size {
                    self.parameter_packets.push(s.clone());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Depacketizer (WebRTC → RTMP / FLV / HLS)
// ---------------------------------------------------------------------------

/// Configuration of an [`H264Depacketizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264DepacketizerConfig {
    /// Most packets held while waiting for a missing one. Default 64.
    pub max_reorder_packets: usize,
    /// Longest wait for a missing packet. Default 100 ms.
    pub max_reorder_delay: Duration,
    /// Largest access unit (AVCC bytes); larger ones are dropped as broken.
    /// Default 4 MiB.
    pub max_access_unit_size: usize,
    /// Least time between two [`DepacketizerOutput::NeedKeyframe`] while
    /// waiting for a keyframe. Default 1 s (the caller may throttle further).
    pub keyframe_request_interval: Duration,
    /// Most outputs queued before the oldest is dropped (drain after each
    /// input). Default 64.
    pub max_queued_outputs: usize,
}

impl Default for H264DepacketizerConfig {
    fn default() -> Self {
        Self {
            max_reorder_packets: 64,
            max_reorder_delay: Duration::from_millis(100),
            max_access_unit_size: 4 << 20,
            keyframe_request_interval: Duration::from_secs(1),
            max_queued_outputs: 64,
        }
    }
}

/// A complete, decodable access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264AccessUnit {
    /// The RTP timestamp (90 kHz) of the access unit.
    pub rtp_timestamp: u32,
    /// True when it contains an IDR slice.
    pub keyframe: bool,
    /// The complete FLV video tag body: `VideoTagHeader` (frame type, codec 7),
    /// `AVCPacketType` 1, `CompositionTime` 0, then the AVCC NAL units with
    /// 4-byte lengths. SPS, PPS and AUD are not included (see
    /// [`DepacketizerOutput::ParameterSets`]).
    pub flv_tag_body: Bytes,
}

impl H264AccessUnit {
    /// The AVCC access unit (4-byte NAL unit lengths), sharing the buffer.
    pub fn avcc(&self) -> Bytes {
        self.flv_tag_body.slice(FLV_VIDEO_HEADER_LEN..)
    }
}

/// What the depacketizer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepacketizerOutput {
    /// The in-band SPS and PPS are new or changed: send a new AVC sequence
    /// header ([`avc_sequence_header_tag_body`]) before the next frame.
    /// Always comes before the first access unit.
    ParameterSets {
        /// The SPS NAL unit (with its header byte).
        sps: Bytes,
        /// The PPS NAL unit.
        pps: Bytes,
    },
    /// A complete access unit, in decode order.
    AccessUnit(H264AccessUnit),
    /// Data was lost (or the stream started mid-GOP): ask the publisher for a
    /// keyframe (RTCP PLI, RFC 4585 §6.3.1). Access units are withheld until
    /// the next complete IDR.
    NeedKeyframe,
}

/// Counters of an [`H264Depacketizer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepacketizerStats {
    /// Packets taken in.
    pub packets: u64,
    /// Packets never received (sequence number gaps given up on).
    pub lost: u64,
    /// Packets that arrived after their slot was given up on, or twice.
    pub late_or_duplicate: u64,
    /// Payloads that violate RFC 6184 or H.264 (incl. FU-A without start).
    pub malformed: u64,
    /// Interleaved-mode payloads (STAP-B, MTAP, FU-B), not negotiated by us.
    pub unsupported: u64,
    /// Access units emitted.
    pub access_units: u64,
    /// Access units withheld (broken, or while waiting for a keyframe).
    pub discarded_access_units: u64,
    /// Keyframe requests emitted.
    pub keyframe_requests: u64,
    /// Outputs dropped because the caller did not drain them.
    pub dropped_outputs: u64,
}

/// A packet waiting in the reorder buffer.
#[derive(Debug)]
struct Pending {
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrived: Instant,
}

/// An FU-A being reassembled into the access unit buffer.
#[derive(Debug, Clone, Copy)]
struct Fragment {
    /// Offset of its 4-byte length prefix in `au`.
    length_at: usize,
}

/// Bytes of the FLV video tag header written before the AVCC data.
const FLV_VIDEO_HEADER_LEN: usize = 5;

/// Turns RTP packets (RFC 6184 packetization-mode 0 or 1) back into access
/// units for FLV/RTMP/HLS, never emitting a frame that references lost data.
///
/// Getters: [`stats`](Self::stats), [`waiting_for_keyframe`](Self::waiting_for_keyframe).
/// Input: [`handle_packet`](Self::handle_packet) (or
/// [`handle_rtp`](Self::handle_rtp)) and [`handle_timeout`](Self::handle_timeout).
/// Commands: [`reset`](Self::reset) (on SSRC change / publisher restart).
/// Output: [`poll_output`](Self::poll_output) drained until `None`, then
/// [`poll_timeout`](Self::poll_timeout).
///
/// A bounded reorder buffer (packets and time) waits for late packets; a gap
/// not filled in time counts as loss: the access unit in progress is dropped,
/// [`DepacketizerOutput::NeedKeyframe`] is reported and nothing more is emitted
/// until an IDR access unit that arrived whole and starts at macroblock 0.
#[derive(Debug)]
pub struct H264Depacketizer {
    config: H264DepacketizerConfig,
    // Reorder buffer, keyed by extended sequence number.
    highest_seq: Option<u64>,
    next_seq: Option<u64>,
    buffer: BTreeMap<u64, Pending>,
    late_in_a_row: u32,
    // Access unit in progress.
    au_timestamp: Option<u32>,
    access_unit: BytesMut,
    au_nal_units: usize,
    au_has_idr: bool,
    au_broken: bool,
    /// Data may be missing before this access unit (loss, or joining).
    au_after_loss: bool,
    /// Whether the first slice seen has `first_mb_in_slice` 0.
    au_first_slice_clean: Option<bool>,
    fragment: Option<Fragment>,
    /// Loss happened between access units: the next one may lack its start.
    loss_before_next_au: bool,
    // Stream state.
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    emitted_parameter_sets: Option<(Bytes, Bytes)>,
    waiting_for_keyframe: bool,
    last_keyframe_request: Option<Instant>,
    outputs: VecDeque<DepacketizerOutput>,
    stats: DepacketizerStats,
}

impl H264Depacketizer {
    /// A depacketizer waiting for the first keyframe.
    pub fn new(config: H264DepacketizerConfig) -> Self {
        Self {
            config,
            highest_seq: None,
            next_seq: None,
            buffer: BTreeMap::new(),
            late_in_a_row: 0,
            au_timestamp: None,
            access_unit: BytesMut::new(),
            au_nal_units: 0,
            au_has_idr: false,
            au_broken: false,
            au_after_loss: false,
            au_first_slice_clean: None,
            fragment: None,
            loss_before_next_au: true,
            sps: None,
            pps: None,
            emitted_parameter_sets: None,
            waiting_for_keyframe: true,
            last_keyframe_request: None,
            outputs: VecDeque::new(),
            stats: DepacketizerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &DepacketizerStats {
        &self.stats
    }

    /// True while access units are withheld until the next keyframe.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting_for_keyframe
    }

    /// Forgets the sequence number space and any partial access unit (call
    /// when the source SSRC changes). Parameter sets are kept; output resumes
    /// at the next keyframe.
    pub fn reset(&mut self) {
        self.highest_seq = None;
        self.next_seq = None;
        self.buffer.clear();
        self.late_in_a_row = 0;
        self.clear_au();
        self.loss_before_next_au = true;
        self.waiting_for_keyframe = true;
    }

    /// Takes one received RTP packet (its payload shared, not copied into a
    /// queue beyond the bounded reorder buffer).
    pub fn handle_rtp(&mut self, now: Instant, packet: &super::webrtc::RtpPacket) {
        self.handle_packet(now, packet.sequence_number, packet.timestamp, packet.marker, packet.payload());
    }

    /// Takes one received RTP packet's fields.
    pub fn handle_packet(&mut self, now: Instant, sequence_number: u16, timestamp: u32, marker: bool, payload: Bytes) {
        self.stats.packets += 1;
        let mut seq = self.extend_sequence_number(sequence_number);
        let next = *self.next_seq.get_or_insert(seq);
        if seq < next || self.buffer.contains_key(&seq) {
            self.stats.late_or_duplicate += 1;
            self.late_in_a_row += 1;
            if self.late_in_a_row <= self.config.max_reorder_packets as u32 {
                return;
            }
            // A sender restart with a lower sequence number space looks like
            // endless late packets: start over from this packet.
            self.reset();
            self.request_keyframe(now);
            seq = self.extend_sequence_number(sequence_number);
            self.next_seq = Some(seq);
        }
        self.late_in_a_row = 0;
        self.buffer.insert(seq, Pending { timestamp, marker, payload, arrived: now });
        self.drain(now);
    }

    /// Gives up on missing packets whose wait expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.drain(now);
    }

    /// When [`handle_timeout`](Self::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.buffer.values().map(|p| p.arrived).min().map(|t| t + self.config.max_reorder_delay)
    }

    /// The next output, `None` when drained.
    pub fn poll_output(&mut self) -> Option<DepacketizerOutput> {
        self.outputs.pop_front()
    }

    /// Extends a 16-bit sequence number to 64 bits around the highest seen
    /// (RFC 3550 appendix A.1), starting at 2^32 so it never goes negative.
    fn extend_sequence_number(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest_seq else {
            let ext = (1u64 << 32) | u64::from(seq);
            self.highest_seq = Some(ext);
            return ext;
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let ext = (highest as i64 + delta) as u64;
        if ext > highest {
            self.highest_seq = Some(ext);
        }
        ext
    }

    /// Processes buffered packets in order; declares loss for a gap when
    /// the buffer is full or the oldest waiting packet waited long enough.
    fn drain(&mut self, now: Instant) {
        while let Some(next) = self.next_seq {
            if let Some(p) = self.buffer.remove(&next) {
                self.next_seq = Some(next + 1);
                self.process(now, p);
                continue;
            }
            let Some((&first, _)) = self.buffer.first_key_value() else {
                break;
            };
            let oldest = self.buffer.values().map(|p| p.arrived).min();
            let expired = oldest.is_some_and(|t| now >= t + self.config.max_reorder_delay);
            let too_far = first - next >= self.config.max_reorder_packets as u64;
            if self.buffer.len() > self.config.max_reorder_packets || expired || too_far {
                self.note_loss(now, first - next);
                self.next_seq = Some(first);
            } else {
                break;
            }
        }
    }

    /// `count` packets are gone for good.
    fn note_loss(&mut self, now: Instant, count: u64) {
        self.stats.lost += count;
        // The lost packets may end the access unit in progress and start the
        // next one.
        if self.au_timestamp.is_some() {
            self.au_broken = true;
        }
        self.loss_before_next_au = true;
        self.enter_waiting(now);
    }

    fn enter_waiting(&mut self, now: Instant) {
        if !self.waiting_for_keyframe {
            self.waiting_for_keyframe = true;
            self.request_keyframe(now);
        }
    }

    fn request_keyframe(&mut self, now: Instant) {
        self.last_keyframe_request = Some(now);
        self.stats.keyframe_requests += 1;
        self.queue(DepacketizerOutput::NeedKeyframe);
    }

    fn queue(&mut self, output: DepacketizerOutput) {
        if self.outputs.len() >= self.config.max_queued_outputs {
            self.outputs.pop_front();
            self.stats.dropped_outputs += 1;
            // A dropped access unit breaks the reference chain.
            self.waiting_for_keyframe = true;
        }
        self.outputs.push_back(output);
    }

    /// One packet, in sequence order.
    fn process(&mut self, now: Instant, p: Pending) {
        if self.au_timestamp.is_some_and(|ts| ts != p.timestamp) {
            // A new timestamp ends the previous access unit (its marker was
            // missing: some senders omit it).
            self.finish_au(now);
        }
        if self.au_timestamp.is_none() {
            self.au_timestamp = Some(p.timestamp);
            self.access_unit.reserve(FLV_VIDEO_HEADER_LEN + p.payload.len());
            self.access_unit.put_bytes(0, FLV_VIDEO_HEADER_LEN);
            // The start of this access unit may be what was lost: then it is
            // accepted only if its first slice starts at macroblock 0.
            self.au_after_loss = std::mem::take(&mut self.loss_before_next_au);
        }
        self.parse_payload(&p.payload);
        if p.marker {
            self.finish_au(now);
        }
    }

    fn parse_payload(&mut self, payload: &[u8]) {
        let Some(&header) = payload.first() else {
            return; // Padding-only packet.
        };
        if header & 0x80 != 0 {
            // forbidden_zero_bit set: the sender flags bit errors (§5.3).
            self.broken_by_malformed();
            return;
        }
        match header & 0x1F {
            1..=23 => {
                if self.fragment.is_some() {
                    self.broken_by_malformed();
                }
                self.push_nal(payload);
            }
            rtp_type::STAP_A => {
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    let [hi, lo, tail @ ..] = rest else {
                        self.broken_by_malformed();
                        return;
                    };
                    let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                    let Some(nal) = tail.get(..len).filter(|n| !n.is_empty()) else {
                        self.broken_by_malformed();
                        return;
                    };
                    self.push_nal(nal);
                    rest = &tail[len..];
                }
            }
            rtp_type::FU_A => self.push_fragment(payload),
            rtp_type::STAP_B | rtp_type::MTAP16 | rtp_type::MTAP24 | rtp_type::FU_B => {
                self.stats.unsupported += 1;
                self.au_broken = true;
            }
            _ => self.broken_by_malformed(),
        }
    }

    fn broken_by_malformed(&mut self) {
        self.stats.malformed += 1;
        self.au_broken = true;
    }

    /// A complete NAL unit from a single NAL unit packet or a STAP-A.
    fn push_nal(&mut self, nal: &[u8]) {
        match nal[0] & 0x1F {
            nal_type::SPS => self.sps = Some(Bytes::copy_from_slice(nal)),
            nal_type::PPS => self.pps = Some(Bytes::copy_from_slice(nal)),
            nal_type::AUD | FILLER_DATA => {}
            t => {
                if self.au_broken {
                    return;
                }
                if self.access_unit.len() + 4 + nal.len() > self.config.max_access_unit_size {
                    self.au_broken = true;
                    return;
                }
                self.note_slice(t, nal.get(1..).unwrap_or_default());
                // A NAL unit from one RTP payload is below 64 KiB.
                self.access_unit.put_u32(nal.len() as u32);
                self.access_unit.put_slice(nal);
                self.au_nal_units += 1;
            }
        }
    }

    /// Records IDR presence and whether the access unit's first slice
    /// starts at macroblock 0 (`first_mb_in_slice` = ue(v) 0 is a single 1
    /// bit, H.264 7.3.3).
    fn note_slice(&mut self, nal_type: u8, slice: &[u8]) {
        if nal_type == nal_type::IDR {
            self.au_has_idr = true;
        }
        if matches!(nal_type, 1..=5) && self.au_first_slice_clean.is_none() {
            self.au_first_slice_clean = Some(slice.first().is_some_and(|b| b & 0x80 != 0));
        }
    }

    /// An FU-A (§5.8), reassembled in place in the access unit buffer.
    fn push_fragment(&mut self, payload: &[u8]) {
        let [indicator, fu_header, data @ ..] = payload else {
            self.broken_by_malformed();
            return;
        };
        let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
        let nal_header = (indicator & 0xE0) | (fu_header & 0x1F);
        if start {
            if let Some(f) = self.fragment.take() {
                // The previous fragmented NAL unit never ended.
                self.access_unit.truncate(f.length_at);
                self.broken_by_malformed();
            }
            if start && end {
                // §5.8: a start bit and an end bit MUST NOT both be set.
                self.broken_by_malformed();
                return;
            }
            if self.au_broken {
                return;
            }
            self.note_slice(nal_header & 0x1F, data);
            self.fragment = Some(Fragment { length_at: self.access_unit.len() });
            self.access_unit.put_u32(0);
            self.access_unit.put_u8(nal_header);
        } else if self.fragment.is_none() {
            // A continuation whose start we never saw.
            if !self.au_broken {
                self.broken_by_malformed();
            }
            return;
        }
        if self.au_broken {
            self.fragment = None;
            return;
        }
        if self.access_unit.len() + data.len() > self.config.max_access_unit_size {
            self.au_broken = true;
            self.fragment = None;
            return;
        }
        self.access_unit.put_slice(data);
        if end {
            let Some(f) = self.fragment.take() else {
                return;
            };
            let nal_start = f.length_at + 4;
            let len = self.access_unit.len() - nal_start;
            match nal_header & 0x1F {
                t @ (nal_type::SPS | nal_type::PPS | nal_type::AUD | FILLER_DATA) => {
                    let nal = Bytes::copy_from_slice(&self.access_unit[nal_start..]);
                    self.access_unit.truncate(f.length_at);
                    if t == nal_type::SPS {
                        self.sps = Some(nal);
                    } else if t == nal_type::PPS {
                        self.pps = Some(nal);
                    }
                }
                _ => {
                    // Bounded by max_access_unit_size (< 4 GiB).
                    self.access_unit[f.length_at..nal_start].copy_from_slice(&(len as u32).to_be_bytes());
                    self.au_nal_units += 1;
                }
            }
        }
    }

    fn clear_au(&mut self) {
        self.au_timestamp = None;
        self.access_unit.clear();
        self.au_nal_units = 0;
        self.au_has_idr = false;
        self.au_broken = false;
        self.au_after_loss = false;
        self.au_first_slice_clean = None;
        self.fragment = None;
    }

    /// Ends the access unit in progress: emit it, or withhold it.
    fn finish_au(&mut self, now: Instant) {
        let Some(timestamp) = self.au_timestamp else {
            return;
        };
        if self.fragment.is_some() {
            // Its last fragment never came.
            self.au_broken = true;
        }
        if self.au_nal_units == 0 && !self.au_broken {
            // Parameter sets only (or padding): nothing to emit.
            self.clear_au();
            return;
        }
        let usable = !self.au_broken
            && (!self.au_after_loss || self.au_first_slice_clean == Some(true))
            && (!self.waiting_for_keyframe || (self.au_has_idr && self.sps.is_some() && self.pps.is_some()));
        if !usable {
            self.stats.discarded_access_units += 1;
            if self.waiting_for_keyframe {
                let due = self.last_keyframe_request.is_none_or(|t| now >= t + self.config.keyframe_request_interval);
                if due {
                    self.request_keyframe(now);
                }
            } else {
                self.enter_waiting(now);
            }
            self.clear_au();
            return;
        }
        self.waiting_for_keyframe = false;
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            let current = (sps.clone(), pps.clone());
            if self.emitted_parameter_sets.as_ref() != Some(&current) {
                self.emitted_parameter_sets = Some(current.clone());
                self.queue(DepacketizerOutput::ParameterSets { sps: current.0, pps: current.1 });
            }
        }
        let keyframe = self.au_has_idr;
        let mut body = std::mem::take(&mut self.access_unit);
        body[..FLV_VIDEO_HEADER_LEN].copy_from_slice(&flv_video_header(keyframe, 0));
        self.stats.access_units += 1;
        self.queue(DepacketizerOutput::AccessUnit(H264AccessUnit {
            rtp_timestamp: timestamp,
            keyframe,
            flv_tag_body: body.freeze(),
        }));
        self.clear_au();
    }
}

// ---------------------------------------------------------------------------
// FLV tag bodies from depacketized H.264
// ---------------------------------------------------------------------------

/// The 5-byte legacy `VideoTagHeader` + `AVCVIDEOPACKET` header (FLV v10.1
/// E.4.3.1): FrameType 1 (key) or 2 (inter), CodecID 7, AVCPacketType 1,
/// CompositionTime SI24.
fn flv_video_header(keyframe: bool, composition_time_ms: i32) -> [u8; 5] {
    let ct = composition_time_ms.clamp(-(1 << 23), (1 << 23) - 1) as u32;
    [if keyframe { 0x17 } else { 0x27 }, 1, (ct >> 16) as u8, (ct >> 8) as u8, ct as u8]
}

/// An FLV video tag body for one AVCC access unit (AVCPacketType 1).
pub fn avc_frame_tag_body(avcc: &[u8], keyframe: bool, composition_time_ms: i32) -> Vec<u8> {
    let mut body = Vec::with_capacity(FLV_VIDEO_HEADER_LEN + avcc.len());
    body.extend_from_slice(&flv_video_header(keyframe, composition_time_ms));
    body.extend_from_slice(avcc);
    body
}

/// Builds an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15:2019 5.3.3.1)
/// from one SPS and one PPS, with 4-byte NAL unit lengths and, for the High
/// profiles, the chroma format and bit depth extension read from the SPS.
pub fn avc_decoder_configuration_record(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, CodecError> {
    if sps.first().map(|h| h & 0x1F) != Some(nal_type::SPS) || sps.len() < 4 {
        return Err(CodecError::Malformed("not an SPS NAL unit"));
    }
    if pps.first().map(|h| h & 0x1F) != Some(nal_type::PPS) {
        return Err(CodecError::Malformed("not a PPS NAL unit"));
    }
    if sps.len() > usize::from(u16::MAX) || pps.len() > usize::from(u16::MAX) {
        return Err(CodecError::TooLarge("parameter set"));
    }
    let (profile, compatibility, level) = (sps[1], sps[2], sps[3]);
    let mut record = Vec::with_capacity(16 + sps.len() + pps.len());
    record.extend_from_slice(&[1, profile, compatibility, level, 0xFF, 0xE1]);
    record.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    record.extend_from_slice(sps);
    record.push(1);
    record.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    record.extend_from_slice(pps);
    if matches!(profile, 100 | 110 | 122 | 144) {
        let (chroma_format, luma_minus8, chroma_minus8) = sps_chroma_and_bit_depth(sps)?;
        record.push(0xFC | (chroma_format as u8 & 0x03));
        record.push(0xF8 | (luma_minus8 as u8 & 0x07));
        record.push(0xF8 | (chroma_minus8 as u8 & 0x07));
        record.push(0); // numOfSequenceParameterSetExt
    }
    Ok(record)
}

/// `chroma_format_idc`, `bit_depth_luma_minus8`, `bit_depth_chroma_minus8`
/// of a High-profile SPS (H.264 7.3.2.1.1).
fn sps_chroma_and_bit_depth(sps: &[u8]) -> Result<(u32, u32, u32), CodecError> {
    let mut rbsp = Vec::new();
    nal_to_rbsp(&sps[1..], &mut rbsp);
    let mut r = BitReader::new(&rbsp);
    r.skip_bits(24)?; // profile_idc, constraint flags, level_idc
    let _seq_parameter_set_id = r.read_ue()?;
    let chroma_format_idc = r.read_ue()?;
    if chroma_format_idc == 3 {
        let _separate_colour_plane_flag = r.read_bit()?;
    }
    let luma = r.read_ue()?;
    let chroma = r.read_ue()?;
    if chroma_format_idc > 3 || luma > 6 || chroma > 6 {
        return Err(CodecError::Malformed("SPS chroma format or bit depth"));
    }
    Ok((chroma_format_idc, luma, chroma))
}

/// An FLV AVC sequence header tag body (FrameType 1, CodecID 7,
/// AVCPacketType 0, CompositionTime 0, then the configuration record).
pub fn avc_sequence_header_tag_body(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, CodecError> {
    let record = avc_decoder_configuration_record(sps, pps)?;
    let mut body = Vec::with_capacity(5 + record.len());
    body.extend_from_slice(&[0x17, 0, 0, 0, 0]);
    body.extend_from_slice(&record);
    Ok(body)
}

// ---------------------------------------------------------------------------
// B-frame detection
// ---------------------------------------------------------------------------

/// Detects B-frames (pictures presented before a picture decoded earlier)
/// in an FLV/RTMP H.264 stream, which browsers cannot play over WebRTC.
///
/// Evidence, from FLV coded frames in decode order: a presentation time
/// (tag timestamp + `CompositionTime`) lower than an earlier frame's, or
/// composition time offsets that vary between frames (a constant offset is
/// just a shifted clock). Sequence headers and other codecs are ignored.
///
/// Advice for publishers: OBS x264 "Profile: baseline" or `bframes=0` in
/// x264 options (NVENC/QSV: "Max B-frames: 0"); ffmpeg `-bf 0` (or
/// `-profile:v baseline`).
#[derive(Debug, Clone, Default)]
pub struct BFrameDetector {
    max_pts_ms: Option<i64>,
    first_composition_time: Option<i32>,
    detected: bool,
    frames: u64,
}

impl BFrameDetector {
    /// A detector that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once B-frames were seen (stays true).
    pub fn has_b_frames(&self) -> bool {
        self.detected
    }

    /// Coded frames observed.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Observes one FLV video tag body with its tag timestamp. Returns true
    /// exactly when this tag is the first evidence of B-frames.
    pub fn observe_tag(&mut self, timestamp_ms: u32, body: &[u8]) -> bool {
        match VideoTag::parse(body) {
            Ok(tag) if tag.packet == VideoPacket::Frame && tag.codec == VideoCodec::Avc => {
                self.observe_frame(timestamp_ms, tag.composition_time_ms)
            }
            _ => false,
        }
    }

    /// Observes one coded frame's DTS (ms) and composition time offset (ms).
    /// Returns true exactly when this frame is the first evidence of B-frames.
    pub fn observe_frame(&mut self, dts_ms: u32, composition_time_ms: i32) -> bool {
        self.frames += 1;
        if self.detected {
            return false;
        }
        let pts = i64::from(dts_ms) + i64::from(composition_time_ms);
        let reordered = self.max_pts_ms.is_some_and(|max| pts < max);
        let varying = *self.first_composition_time.get_or_insert(composition_time_ms) != composition_time_ms;
        self.max_pts_ms = Some(self.max_pts_ms.map_or(pts, |m| m.max(pts)));
        self.detected = reordered || varying;
        self.detected
    }
}

/// True when the FLV video tags (timestamp, body) in decode order contain
/// B-frames (see [`BFrameDetector`]).
pub fn flv_video_uses_b_frames<'a>(tags: impl IntoIterator<Item = (u32, &'a [u8])>) -> bool {
    let mut detector = BFrameDetector::new();
    tags.into_iter().any(|(ts, body)| detector.observe_tag(ts, body))
}

#[cfg(test)]
mod tests;
