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
    RtpHeader { payload_type: 0, marker, sequence_number: seq, timestamp: ts, ssrc, extension: None }.write(payload, &mut v);
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
                    out.push(Frame::rtp(MediaKind::RtpVideo, rtp_bytes(VIDEO_SSRC, p.sequence_number, p.timestamp, p.marker, &p.payload)));
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
                                out.push(Frame::rtp(MediaKind::RtpAudio, rtp_bytes(AUDIO_SSRC, p.sequence_number, p.timestamp, p.marker, &p.payload)));
                            }
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
