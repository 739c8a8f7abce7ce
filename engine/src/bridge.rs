//! Protocol bridging on a stream's home shard, run lazily (only while someone
//! watches the other side) and once per stream, not per viewer:
//!
//! - [`RtmpToRtc`]: FLV-tag media (RTMP publishers) → RTP for WebRTC viewers:
//!   H.264 repacketized per RFC 6184, AAC transcoded to Opus.
//! - [`RtcToRtmp`]: a WebRTC publisher's RTP → FLV-tag media for RTMP, HTTP-FLV,
//!   WebSocket-FLV and HLS: H.264 depacketized (skip to the next keyframe on loss),
//!   Opus transcoded to AAC-LC.
//!
//! Outputs are ordinary [`Frame`]s that the home forwards like any other.

use crate::frame::{Frame, MediaKind};
use crate::proto::audio_bridge::{AacToOpus, AacToOpusConfig};
use crate::proto::rtp_h264::{BFrameDetector, H264Packetizer, H264PacketizerConfig, H264RtpPacket};
use crate::proto::webrtc::rtp::RtpHeader;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// SSRCs of bridged RTP (the subscriber sessions rewrite them anyway).
const VIDEO_SSRC: u32 = 0x5649_4430;
const AUDIO_SSRC: u32 = 0x4155_4430;

fn rtp_bytes(ssrc: u32, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(12 + payload.len());
    RtpHeader { payload_type: 0, marker, sequence_number: seq, timestamp: ts, ssrc, extension: None }
        .write(payload, &mut v);
    Bytes::from(v)
}

/// RTMP (H.264 + AAC) → WebRTC (H.264 + Opus).
pub struct RtmpToRtc {
    video: H264Packetizer,
    audio: Option<AacToOpus>,
    audio_failed: Option<String>,
    bframes: BFrameDetector,
    scratch: Vec<H264RtpPacket>,
    /// Time spent transcoding audio (for stats).
    pub audio_cpu: Duration,
    pub audio_frames: u64,
}

impl Default for RtmpToRtc {
    fn default() -> Self {
        Self::new()
    }
}

impl RtmpToRtc {
    pub fn new() -> Self {
        Self {
            video: H264Packetizer::new(H264PacketizerConfig::default()),
            audio: Some(AacToOpus::new(AacToOpusConfig::default())),
            audio_failed: None,
            bframes: BFrameDetector::new(),
            scratch: Vec::new(),
            audio_cpu: Duration::ZERO,
            audio_frames: 0,
        }
    }

    /// Problems viewers should know about (B-frames, undecodable audio).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = vec![];
        if self.bframes.has_b_frames() {
            w.push("the stream uses B-frames, which WebRTC viewers cannot play smoothly: encode with -bf 0 (OBS: x264 options bframes=0)".into());
        }
        if let Some(e) = &self.audio_failed {
            w.push(format!("audio cannot be transcoded to Opus ({e}): WebRTC viewers get video only"));
        }
        w
    }

    /// Converts one FLV-tag frame; the RTP frames go to WebRTC viewers.
    /// Returns whether the warnings changed.
    pub fn push(&mut self, f: &Frame, out: &mut Vec<Frame>) -> bool {
        let before = (self.bframes.has_b_frames(), self.audio_failed.is_some());
        match f.kind {
            MediaKind::Video => {
                self.bframes.observe_tag(f.timestamp, &f.payload);
                self.scratch.clear();
                if let Err(e) = self.video.handle_video_tag(f.timestamp, &f.payload, &mut self.scratch) {
                    tracing::debug!(error = %e, "video frame not packetized");
                }
                for p in self.scratch.drain(..) {
                    out.push(Frame::rtp(
                        MediaKind::RtpVideo,
                        rtp_bytes(VIDEO_SSRC, p.sequence_number, p.timestamp, p.marker, &p.payload),
                    ));
                }
            }
            MediaKind::Audio => {
                if let Some(a) = &mut self.audio {
                    let t0 = Instant::now();
                    let r = a.handle_audio_tag(f.timestamp, &f.payload);
                    match r {
                        Ok(()) => {
                            while let Some(p) = a.poll_output() {
                                self.audio_frames += 1;
                                out.push(Frame::rtp(
                                    MediaKind::RtpAudio,
                                    rtp_bytes(AUDIO_SSRC, p.sequence_number, p.timestamp, p.marker, &p.payload),
                                ));
                            }
                        }
                        // One bad frame: skip it (it is concealed by the timeline).
                        Err(crate::proto::audio_bridge::AudioBridgeError::Malformed(why)) => {
                            tracing::debug!(%why, "AAC frame skipped");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "AAC → Opus transcoding stopped: WebRTC viewers get video only");
                            self.audio_failed = Some(e.to_string());
                            self.audio = None;
                        }
                    }
                    self.audio_cpu += t0.elapsed();
                }
            }
            _ => {}
        }
        before != (self.bframes.has_b_frames(), self.audio_failed.is_some())
    }
}

/// Maps one RTP clock to the FLV millisecond clock: the first packet is anchored
/// at its arrival time relative to the stream's origin, later ones follow the RTP
/// clock. Audio and video anchored this way stay in sync within the difference
/// of their first packets' delays.
struct ClockMap {
    rate: u32,
    first: Option<(u32, i64)>,
    last: Option<u32>,
}

/// The bridge's clock starts this far in, so that output stamped slightly before the
/// first packet (encoder delay) does not clamp at zero.
const CLOCK_HEADROOM_MS: i64 = 1000;

impl ClockMap {
    fn new(rate: u32) -> Self {
        Self { rate, first: None, last: None }
    }

    /// Milliseconds for an RTP time; strictly increasing (muxers refuse equal or
    /// decreasing decode times).
    fn ms(&mut self, rtp: u32, arrival_ms: i64) -> u32 {
        let (r0, m0) = *self.first.get_or_insert((rtp, arrival_ms + CLOCK_HEADROOM_MS));
        let delta = rtp.wrapping_sub(r0) as i32 as i64;
        let mut ms = (m0 + delta * 1000 / self.rate as i64).clamp(0, u32::MAX as i64) as u32;
        if let Some(l) = self.last {
            ms = ms.max(l.saturating_add(1));
        }
        self.last = Some(ms);
        ms
    }
}

/// WebRTC (H.264 + Opus) → RTMP/FLV/HLS (H.264 + AAC).
pub struct RtcToRtmp {
    origin: Instant,
    video: Option<crate::proto::rtp_h264::H264Depacketizer>,
    /// The publisher's video SSRC: a new one (restart) resets the depacketizer.
    video_ssrc: Option<u32>,
    vclock: ClockMap,
    #[cfg(feature = "fdk-aac")]
    audio: Option<crate::proto::audio_bridge::OpusToAac>,
    aclock: ClockMap,
    sent_aac_header: bool,
    pub audio_cpu: Duration,
    warnings: Vec<String>,
}

impl RtcToRtmp {
    /// `h264`: whether the publisher's video is H.264 (VP8/VP9 cannot go to FLV).
    pub fn new(now: Instant, h264: bool) -> Self {
        let mut warnings = vec![];
        if !h264 {
            warnings
                .push("the WebRTC publisher sends VP8/VP9, not H.264: RTMP, HTTP-FLV and HLS carry audio only".into());
        }
        #[cfg(not(feature = "fdk-aac"))]
        warnings.push("built without the fdk-aac feature: RTMP, HTTP-FLV and HLS carry no audio from WebRTC".into());
        Self {
            origin: now,
            video: h264.then(|| crate::proto::rtp_h264::H264Depacketizer::new(Default::default())),
            video_ssrc: None,
            vclock: ClockMap::new(90_000),
            #[cfg(feature = "fdk-aac")]
            audio: Some(crate::proto::audio_bridge::OpusToAac::new(Default::default())),
            aclock: ClockMap::new(48_000),
            sent_aac_header: false,
            audio_cpu: Duration::ZERO,
            warnings,
        }
    }

    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Converts one RTP frame into FLV-tag frames; returns true when the publisher
    /// should be asked for a keyframe (loss, or a start mid-GOP).
    pub fn push(&mut self, now: Instant, f: &Frame, out: &mut Vec<Frame>) -> bool {
        use crate::proto::rtp_h264::DepacketizerOutput;
        let Ok(p) = crate::proto::webrtc::RtpPacket::parse(f.payload.clone()) else { return false };
        let arrival = now.saturating_duration_since(self.origin).as_millis() as i64;
        let mut pli = false;
        match f.kind {
            MediaKind::RtpVideo => {
                let Some(v) = &mut self.video else { return false };
                if self.video_ssrc.is_some_and(|s| s != p.ssrc) {
                    v.reset();
                }
                self.video_ssrc = Some(p.ssrc);
                v.handle_rtp(now, &p);
                while let Some(o) = v.poll_output() {
                    match o {
                        DepacketizerOutput::ParameterSets { sps, pps } => {
                            if let Ok(body) = crate::proto::rtp_h264::avc_sequence_header_tag_body(&sps, &pps) {
                                let ts = self.vclock.ms(p.timestamp, arrival);
                                out.push(Frame::new(MediaKind::Video, ts, Bytes::from(body)));
                            }
                        }
                        DepacketizerOutput::AccessUnit(au) => {
                            let ts = self.vclock.ms(au.rtp_timestamp, arrival);
                            out.push(Frame::new(MediaKind::Video, ts, au.flv_tag_body));
                        }
                        DepacketizerOutput::NeedKeyframe => pli = true,
                    }
                }
            }
            MediaKind::RtpAudio =>
            {
                #[cfg(feature = "fdk-aac")]
                if let Some(a) = &mut self.audio {
                    let t0 = Instant::now();
                    match a.handle_packet(p.timestamp, &p.payload()) {
                        Ok(()) => {
                            if !self.sent_aac_header {
                                if let Some(h) = a.sequence_header_tag_body() {
                                    let ts = self.aclock.ms(p.timestamp, arrival);
                                    out.push(Frame::new(MediaKind::Audio, ts, Bytes::from(h)));
                                    self.sent_aac_header = true;
                                }
                            }
                            while let Some(fr) = a.poll_output() {
                                let ts = self.aclock.ms(fr.rtp_timestamp, arrival);
                                out.push(Frame::new(MediaKind::Audio, ts, fr.flv_tag_body));
                            }
                        }
                        Err(crate::proto::audio_bridge::AudioBridgeError::Malformed(_)) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "Opus → AAC transcoding stopped");
                            self.warnings.push(format!("audio cannot be transcoded to AAC ({e})"));
                            self.audio = None;
                        }
                    }
                    self.audio_cpu += t0.elapsed();
                }
            }
            _ => {}
        }
        pli
    }
}
