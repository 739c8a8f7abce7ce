//! The MPEG-TS muxer: H.264 + AAC in, 188-byte transport packets out.
//!
//! One program (ISO/IEC 13818-1 2.4.4): PAT on PID 0, PMT on [`PMT_PID`],
//! H.264 (`stream_type` 0x1B, ISO/IEC 13818-1 table 2-34 and 2.14) on
//! [`VIDEO_PID`], AAC in ADTS (`stream_type` 0x0F) on [`AUDIO_PID`]. The PCR
//! rides on the video PID, or on the audio PID when there is no video.
//! Video access units become Annex B with an access unit delimiter first and
//! SPS/PPS before every IDR (H.264 7.4.1.2.3 order; as Apple's HLS authoring
//! spec and hls.js expect). AAC frames get ADTS headers and several may share
//! one PES (up to [`TsMuxerConfig::audio_group_ms`]).

use super::TsError;
use super::packet::{FirstPacketFlags, write_pes_packets, write_section_packet};
use super::pes::{STREAM_ID_AUDIO, STREAM_ID_VIDEO, TIMESTAMP_MASK, ms_to_90k, write_pes_header};
use super::psi::{PmtStream, pat_section, pmt_section};
use crate::codec::avc::{START_CODE, nal_type};
use crate::codec::{AudioSpecificConfig, AvcConfig, avcc_nalus, nal_unit_type};

/// PID of the program map table (as ffmpeg uses).
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the AAC elementary stream.
pub const AUDIO_PID: u16 = 0x101;
/// `stream_type` for H.264 (ISO/IEC 13818-1 table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// `stream_type` for AAC with ADTS transport syntax (ISO/IEC 13818-7).
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;

/// Added to every PTS/DTS (1.4 s, ffmpeg's default start) so that PCR, which
/// runs [`PCR_DELAY_90K`] behind DTS, and PTS with a small negative
/// composition offset never fall below zero.
pub const TIMESTAMP_OFFSET_90K: u64 = 126_000;
/// How far the PCR runs behind the DTS of the packet carrying it (0.7 s).
pub const PCR_DELAY_90K: u64 = 63_000;

/// The access unit delimiter written before every video access unit:
/// `nal_unit_type` 9, `primary_pic_type` 7 (any slice type), stop bit.
const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];

/// Largest ES payload of one audio PES (keeps `PES_packet_length` in 16 bits).
const MAX_AUDIO_PES_PAYLOAD: usize = 32 * 1024;

/// Largest video access unit accepted, in bytes.
const MAX_ACCESS_UNIT: usize = 16 << 20;

/// Bytes of the audio PES header this muxer writes (PTS only).
const AUDIO_PES_HEADER_LEN: usize = 14;

/// Muxer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsMuxerConfig {
    /// Longest run of AAC audio, in milliseconds, grouped into one PES.
    /// 0 writes one PES per AAC frame.
    pub audio_group_ms: u32,
}

impl Default for TsMuxerConfig {
    fn default() -> Self {
        Self { audio_group_ms: 100 }
    }
}

/// A sans-IO MPEG-TS muxer for one H.264 + AAC program.
///
/// Commands: [`set_video_config`](Self::set_video_config),
/// [`set_audio_config`](Self::set_audio_config), [`clear`](Self::clear).
/// Input and output together: [`write_psi`](Self::write_psi),
/// [`write_video`](Self::write_video), [`write_audio`](Self::write_audio),
/// [`flush_audio`](Self::flush_audio) append whole packets to a caller's
/// `Vec<u8>` (at most one access unit is converted in a reused scratch
/// buffer; audio may be held back until the group is full or flushed).
/// Continuity counters persist across calls, so consecutive outputs (HLS
/// segments) form one continuous stream.
#[derive(Debug)]
pub struct TsMuxer {
    config: TsMuxerConfig,
    video: Option<AvcConfig>,
    audio: Option<AudioSpecificConfig>,
    psi_version: u8,
    pat: Vec<u8>,
    pmt: Vec<u8>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    /// Reused buffer for one video PES.
    scratch: Vec<u8>,
    /// Pending audio PES: header space then ADTS frames.
    audio_pending: Vec<u8>,
    /// PTS (90 kHz, offset applied) of the first pending audio frame.
    audio_pending_pts: u64,
    /// Duration of the pending audio frames in 90 kHz ticks.
    audio_pending_ticks: u64,
}

impl Default for TsMuxer {
    fn default() -> Self {
        Self::new(TsMuxerConfig::default())
    }
}

impl TsMuxer {
    /// A muxer with no tracks yet.
    pub fn new(config: TsMuxerConfig) -> Self {
        let mut muxer = Self {
            config,
            video: None,
            audio: None,
            psi_version: 0,
            pat: Vec::new(),
            pmt: Vec::new(),
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            scratch: Vec::new(),
            audio_pending: Vec::new(),
            audio_pending_pts: 0,
            audio_pending_ticks: 0,
        };
        muxer.rebuild_psi();
        muxer
    }

    /// The H.264 configuration, if set.
    pub fn video_config(&self) -> Option<&AvcConfig> {
        self.video.as_ref()
    }

    /// The AAC configuration, if set.
    pub fn audio_config(&self) -> Option<&AudioSpecificConfig> {
        self.audio.as_ref()
    }

    /// The PCR PID in force (video if present, else audio).
    pub fn pcr_pid(&self) -> u16 {
        if self.video.is_some() { VIDEO_PID } else { AUDIO_PID }
    }

    /// Sets or replaces the H.264 configuration (SPS/PPS inserted before IDRs).
    /// Adding the video track changes the PMT (new version).
    pub fn set_video_config(&mut self, config: AvcConfig) {
        let added = self.video.is_none();
        self.video = Some(config);
        if added {
            self.rebuild_psi();
        }
    }

    /// Sets or replaces the AAC configuration. It must be expressible in ADTS
    /// (object type 1–4 after SBR/PS signalling, a table sampling rate,
    /// channel configuration 1–7). Adding the audio track changes the PMT.
    pub fn set_audio_config(&mut self, config: AudioSpecificConfig) -> Result<(), TsError> {
        config.adts_header(0)?;
        let added = self.audio.is_none();
        if self.audio.as_ref().is_some_and(|a| *a != config) && !self.audio_pending.is_empty() {
            // Pending frames belong to the old config; they cannot be
            // flushed without an output buffer, so drop them.
            self.drop_pending_audio();
        }
        self.audio = Some(config);
        if added {
            self.rebuild_psi();
        }
        Ok(())
    }

    /// Forgets both tracks and pending audio (a new publisher). Continuity
    /// counters are kept.
    pub fn clear(&mut self) {
        self.video = None;
        self.audio = None;
        self.drop_pending_audio();
        self.rebuild_psi();
    }

    fn drop_pending_audio(&mut self) {
        self.audio_pending.clear();
        self.audio_pending_ticks = 0;
    }

    fn rebuild_psi(&mut self) {
        if !self.pmt.is_empty() {
            self.psi_version = (self.psi_version + 1) & 0x1F;
        }
        let mut streams = Vec::with_capacity(2);
        if self.video.is_some() {
            streams.push(PmtStream { stream_type: STREAM_TYPE_H264, pid: VIDEO_PID });
        }
        if self.audio.is_some() {
            streams.push(PmtStream { stream_type: STREAM_TYPE_AAC_ADTS, pid: AUDIO_PID });
        }
        self.pat = pat_section(1, 1, PMT_PID, 0);
        self.pmt = pmt_section(1, self.psi_version, self.pcr_pid(), &streams);
    }

    /// Appends a PAT and a PMT packet (at the start of every segment).
    pub fn write_psi(&mut self, out: &mut Vec<u8>) {
        write_section_packet(out, 0, &mut self.cc_pat, &self.pat);
        write_section_packet(out, PMT_PID, &mut self.cc_pmt, &self.pmt);
    }

    /// Appends one H.264 access unit given in AVCC form (the data of an FLV
    /// video tag). `dts_ms` is the decode time, `cts_ms` the composition
    /// offset (PTS − DTS). `keyframe` (or an IDR slice in the data) sets
    /// `random_access_indicator` and makes the muxer insert SPS/PPS when the
    /// access unit does not carry them. An access unit without NAL units
    /// (other than delimiters) writes nothing.
    pub fn write_video(
        &mut self,
        out: &mut Vec<u8>,
        dts_ms: u64,
        cts_ms: i32,
        keyframe: bool,
        avcc: &[u8],
    ) -> Result<(), TsError> {
        let config = self.video.as_ref().ok_or(TsError::NoVideoConfig)?;
        if avcc.len() > MAX_ACCESS_UNIT {
            return Err(TsError::TooLarge(avcc.len()));
        }
        let len_size = config.nalu_length_size;
        let (mut has_idr, mut has_sps, mut has_content) = (false, false, false);
        for nal in avcc_nalus(avcc, len_size) {
            match nal_unit_type(nal?) {
                nal_type::IDR => has_idr = true,
                nal_type::SPS => has_sps = true,
                nal_type::AUD => continue,
                _ => {}
            }
            has_content = true;
        }
        if !has_content {
            // Nothing but delimiters (or nothing at all): a lone AUD would be
            // an access unit without a picture.
            return Ok(());
        }
        let random_access = keyframe || has_idr;
        let dts = to_90k(dts_ms as i64);
        let pts = to_90k(dts_ms as i64 + i64::from(cts_ms));

        let scratch = &mut self.scratch;
        scratch.clear();
        write_pes_header(scratch, STREAM_ID_VIDEO, pts, Some(dts), 0, true);
        scratch.extend_from_slice(&AUD);
        if random_access && !has_sps {
            config.write_annexb_parameter_sets(scratch);
        }
        for nal in avcc_nalus(avcc, len_size) {
            // Validated by the first pass.
            let Ok(nal) = nal else { break };
            if nal_unit_type(nal) == nal_type::AUD {
                continue;
            }
            scratch.extend_from_slice(&START_CODE);
            scratch.extend_from_slice(nal);
        }
        let flags = FirstPacketFlags {
            pcr: Some(dts.wrapping_sub(PCR_DELAY_90K) & TIMESTAMP_MASK),
            random_access,
            discontinuity: false,
        };
        write_pes_packets(out, VIDEO_PID, &mut self.cc_video, flags, scratch);
        // Do not keep a huge buffer alive after an outsized key frame.
        if scratch.capacity() > 4 << 20 {
            *scratch = Vec::new();
        }
        Ok(())
    }

    /// Adds one raw AAC frame (the data of an FLV AAC tag) presented at
    /// `pts_ms`. The frame is grouped with pending frames when contiguous and
    /// the group stays within `audio_group_ms`; completed groups are appended
    /// to `out`. Call [`flush_audio`](Self::flush_audio) before cutting.
    pub fn write_audio(&mut self, out: &mut Vec<u8>, pts_ms: u64, raw: &[u8]) -> Result<(), TsError> {
        let config = self.audio.as_ref().ok_or(TsError::NoAudioConfig)?;
        let header = config.adts_header(raw.len())?;
        let frame_ticks = config.frame_duration_90k();
        let pts = to_90k(pts_ms as i64);
        if !self.audio_pending.is_empty() {
            let expected = (self.audio_pending_pts + self.audio_pending_ticks) & TIMESTAMP_MASK;
            // Distance on the 33-bit circle; ms rounding makes small drift normal.
            let drift = pts.wrapping_sub(expected) & TIMESTAMP_MASK;
            let drift = drift.min((1 << 33) - drift);
            let too_long = self.audio_pending_ticks + frame_ticks > u64::from(self.config.audio_group_ms) * 90;
            let too_big =
                self.audio_pending.len() + header.len() + raw.len() > AUDIO_PES_HEADER_LEN + MAX_AUDIO_PES_PAYLOAD;
            if drift > frame_ticks / 2 || too_long || too_big {
                self.flush_audio(out);
            }
        }
        if self.audio_pending.is_empty() {
            self.audio_pending.resize(AUDIO_PES_HEADER_LEN, 0);
            self.audio_pending_pts = pts;
            self.audio_pending_ticks = 0;
        }
        self.audio_pending.extend_from_slice(&header);
        self.audio_pending.extend_from_slice(raw);
        self.audio_pending_ticks += frame_ticks;
        if self.audio_pending_ticks >= u64::from(self.config.audio_group_ms) * 90 {
            self.flush_audio(out);
        }
        Ok(())
    }

    /// True when audio frames are held back waiting for more.
    pub fn has_pending_audio(&self) -> bool {
        !self.audio_pending.is_empty()
    }

    /// Appends any pending audio as one PES.
    pub fn flush_audio(&mut self, out: &mut Vec<u8>) {
        if self.audio_pending.is_empty() {
            return;
        }
        let payload_len = self.audio_pending.len() - AUDIO_PES_HEADER_LEN;
        let mut header = Vec::with_capacity(AUDIO_PES_HEADER_LEN);
        write_pes_header(&mut header, STREAM_ID_AUDIO, self.audio_pending_pts, None, payload_len, false);
        debug_assert_eq!(header.len(), AUDIO_PES_HEADER_LEN);
        self.audio_pending[..AUDIO_PES_HEADER_LEN].copy_from_slice(&header);
        let flags = FirstPacketFlags {
            pcr: self.video.is_none().then(|| self.audio_pending_pts.wrapping_sub(PCR_DELAY_90K) & TIMESTAMP_MASK),
            random_access: true,
            discontinuity: false,
        };
        write_pes_packets(out, AUDIO_PID, &mut self.cc_audio, flags, &self.audio_pending);
        self.drop_pending_audio();
    }
}

/// Milliseconds (possibly negative after a composition offset) to 90 kHz
/// with [`TIMESTAMP_OFFSET_90K`] added, wrapped to 33 bits.
fn to_90k(ms: i64) -> u64 {
    (ms_to_90k(ms) + TIMESTAMP_OFFSET_90K) & TIMESTAMP_MASK
}
