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

use crate::proto::audio_bridge::{AacToOpus, AacToOpusConfig};
use crate::proto::rtp_h264::{BFrameDetector, H264Packetizer, H264PacketizerConfig, H264RtpPacket};
use crate::proto::webrtc::rtp::RtpHeader;
use crate::stream::frame::{Frame, FrameKind};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// SSRCs of bridged RTP, plus the bridge's instance number: the subscriber sessions
/// rewrite SSRCs, sequence numbers and times, and start a new mapping (continuing
/// their own numbering) at a new source SSRC. A new bridge (a new publisher) must
/// therefore come with new SSRCs: under the old ones its numbering, which starts
/// over, would look like packets from the past and be dropped until it caught up.
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
    /// A relayed WebRTC stream's own Opus (see [`FrameKind::OpusTag`]): passed
    /// through, and the AAC beside it not transcoded, while it keeps coming. The
    /// stream time of the last one, and the RTP sequence number to go on with.
    opus_passthrough: Option<u32>,
    next_audio_seq: u16,
    /// The AAC sequence header (a new encoder after a passthrough starts from it).
    aac_header: Option<(u32, Bytes)>,
    video_ssrc: u32,
    audio_ssrc: u32,
}

/// The AAC is transcoded again when a relayed stream's Opus has been missing for
/// this long (its origin's publisher changed to an RTMP one, say).
const OPUS_PASSTHROUGH_LAPSE_MS: u32 = 1000;

impl Default for RtmpToRtc {
    fn default() -> Self {
        Self::new()
    }
}

impl RtmpToRtc {
    pub fn new() -> Self {
        Self::numbered(0)
    }

    /// The `instance`-th bridge of a stream (its RTP gets SSRCs of its own).
    pub fn numbered(instance: u32) -> Self {
        Self {
            video: H264Packetizer::new(H264PacketizerConfig::default()),
            audio: Some(AacToOpus::new(AacToOpusConfig::default())),
            audio_failed: None,
            bframes: BFrameDetector::new(),
            scratch: Vec::new(),
            audio_cpu: Duration::ZERO,
            audio_frames: 0,
            opus_passthrough: None,
            next_audio_seq: 0,
            aac_header: None,
            video_ssrc: VIDEO_SSRC.wrapping_add(instance),
            audio_ssrc: AUDIO_SSRC.wrapping_add(instance),
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

    /// Whether a relayed stream's own Opus is passed through now (no transcoding).
    pub fn passing_opus(&self) -> bool {
        self.opus_passthrough.is_some()
    }

    /// Converts one FLV-tag frame; the RTP frames go to WebRTC viewers.
    /// Returns whether the warnings changed. `clock` gives the time, read around
    /// the audio transcoding to measure its CPU.
    pub fn push(&mut self, clock: &dyn Fn() -> Instant, f: &Frame, out: &mut Vec<Frame>) -> bool {
        let before = (self.bframes.has_b_frames(), self.audio_failed.is_some());
        match f.kind {
            FrameKind::Video => {
                self.bframes.observe_tag(f.timestamp, &f.payload);
                // The frame's presentation time: what its RTP timestamp says too.
                let cts = crate::proto::codec::VideoTag::parse(&f.payload).map_or(0, |t| t.composition_time_ms);
                let media_ms = f.timestamp.wrapping_add_signed(cts);
                self.scratch.clear();
                if let Err(e) = self.video.handle_video_tag(f.timestamp, &f.payload, &mut self.scratch) {
                    tracing::debug!(error = %e, "video frame not packetized");
                }
                for p in self.scratch.drain(..) {
                    out.push(Frame::rtp_at(
                        FrameKind::RtpVideo,
                        rtp_bytes(self.video_ssrc, p.sequence_number, p.timestamp, p.marker, &p.payload),
                        media_ms,
                    ));
                }
            }
            FrameKind::OpusTag => {
                if let Some(packet) = f.opus_packet().filter(|p| !p.is_empty()) {
                    self.opus_passthrough = Some(f.timestamp);
                    let seq = self.next_audio_seq;
                    self.next_audio_seq = seq.wrapping_add(1);
                    let ts = f.timestamp.wrapping_mul(48);
                    out.push(Frame::rtp_at(
                        FrameKind::RtpAudio,
                        rtp_bytes(self.audio_ssrc, seq, ts, false, packet),
                        f.timestamp,
                    ));
                }
            }
            FrameKind::Audio => {
                if f.header {
                    self.aac_header = Some((f.timestamp, f.payload.clone()));
                }
                if let Some(last) = self.opus_passthrough {
                    // The AAC made from the Opus lags it a little (the transcoder's
                    // delay): only AAC well past the last Opus means the Opus stopped.
                    if (f.timestamp.wrapping_sub(last) as i32) < OPUS_PASSTHROUGH_LAPSE_MS as i32 || f.header {
                        return false;
                    }
                    tracing::info!("relayed Opus stopped: transcoding the AAC again");
                    self.opus_passthrough = None;
                    if self.audio_failed.is_none() {
                        // A new encoder numbers from its own start: a new source for
                        // the viewers' sessions.
                        self.audio_ssrc = self.audio_ssrc.wrapping_add(0x1_0000);
                        let mut a = AacToOpus::new(AacToOpusConfig::default());
                        if let Some((ts, h)) = &self.aac_header {
                            let _ = a.handle_audio_tag(*ts, h);
                        }
                        self.audio = Some(a);
                    }
                }
                if let Some(a) = &mut self.audio {
                    let started = clock();
                    let r = a.handle_audio_tag(f.timestamp, &f.payload);
                    match r {
                        Ok(()) => {
                            while let Some(p) = a.poll_output() {
                                self.audio_frames += 1;
                                self.next_audio_seq = p.sequence_number.wrapping_add(1);
                                // Opus timestamps are the FLV clock × 48 (less the decoder
                                // delay): back to ms, relative to this tag (wrap-proof).
                                let ahead = (f.timestamp.wrapping_mul(48)).wrapping_sub(p.timestamp) as i32 / 48;
                                out.push(Frame::rtp_at(
                                    FrameKind::RtpAudio,
                                    rtp_bytes(self.audio_ssrc, p.sequence_number, p.timestamp, p.marker, &p.payload),
                                    (i64::from(f.timestamp) - i64::from(ahead)) as u32,
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
                    self.audio_cpu += clock().saturating_duration_since(started);
                }
            }
            _ => {}
        }
        before != (self.bframes.has_b_frames(), self.audio_failed.is_some())
    }
}

/// Maps one RTP clock to the FLV millisecond clock. The first packet is anchored
/// at its arrival time relative to the stream's origin, later ones follow the RTP
/// clock. When the publisher's RTCP sender reports of both tracks are known, the
/// track that starts second is anchored on the first one's timeline instead, so
/// that the two keep the sender's own relation (its NTP clock) rather than the
/// difference of their first packets' delays (a large keyframe paced out over a slow
/// uplink arrives well after the audio captured at the same instant).
struct ClockMap {
    rate: u32,
    /// (RTP time, output ms) of the anchor.
    first: Option<(u32, i64)>,
    last: Option<u32>,
    /// The last sender report of this track: (SSRC, NTP time in µs, RTP time).
    sender_report: Option<(u32, i64, u32)>,
}

/// The bridge's clock starts this far in, so that output stamped slightly before the
/// first packet (encoder delay) does not clamp at zero.
const CLOCK_HEADROOM_MS: i64 = 1000;

impl ClockMap {
    fn new(rate: u32) -> Self {
        Self { rate, first: None, last: None, sender_report: None }
    }

    fn ticks_to_us(&self, delta: u32) -> i64 {
        delta as i32 as i64 * 1_000_000 / self.rate as i64
    }

    /// Milliseconds for an RTP time; strictly increasing (muxers refuse equal or
    /// decreasing decode times).
    fn ms(&mut self, rtp: u32, arrival_ms: i64) -> u32 {
        let mut ms = self.at(rtp, arrival_ms);
        if let Some(l) = self.last {
            ms = ms.max(l.saturating_add(1));
        }
        self.last = Some(ms);
        ms
    }

    /// Milliseconds for a codec header that goes with the media at `rtp` (in-band
    /// SPS/PPS before a keyframe): the media's time, without taking it, so that the
    /// keyframe is not pushed 1 ms later than its place in the cadence.
    fn header_ms(&mut self, rtp: u32, arrival_ms: i64) -> u32 {
        let ms = self.at(rtp, arrival_ms);
        self.last.map_or(ms, |l| ms.max(l))
    }

    /// The RTP time on the output clock (anchoring it on the first call).
    fn at(&mut self, rtp: u32, arrival_ms: i64) -> u32 {
        let (r0, m0) = *self.first.get_or_insert((rtp, arrival_ms + CLOCK_HEADROOM_MS));
        (m0 + self.ticks_to_us(rtp.wrapping_sub(r0)) / 1000).clamp(0, u32::MAX as i64) as u32
    }

    /// The sender's clock (µs) at an RTP time of `ssrc`, from the last sender report.
    fn sender_us(&self, ssrc: u32, rtp: u32) -> Option<i64> {
        let (s, ntp_us, sr_rtp) = self.sender_report?;
        (s == ssrc).then(|| ntp_us + self.ticks_to_us(rtp.wrapping_sub(sr_rtp)))
    }
}

/// NTP (32.32 fixed point seconds) to microseconds.
fn ntp_to_us(ntp: u64) -> i64 {
    ((ntp >> 32) * 1_000_000 + (((ntp & 0xffff_ffff) * 1_000_000) >> 32)) as i64
}

/// The output ms that `b`'s RTP time `b_rtp` has on `a`'s timeline, by the sender
/// reports of both (`None` until `a` is anchored and both have one).
fn aligned_ms(a: &ClockMap, a_ssrc: u32, b: &ClockMap, b_ssrc: u32, b_rtp: u32) -> Option<i64> {
    let (ar0, am0) = a.first?;
    let a_us = a.sender_us(a_ssrc, ar0)?;
    let b_us = b.sender_us(b_ssrc, b_rtp)?;
    Some(am0 + (b_us - a_us).div_euclid(1000))
}

/// A track's first output: when the other track already runs and both tracks'
/// sender reports are known, the track starts on the other's timeline instead of at
/// its arrival. Either may come first (audio is transcoded, video waits for a
/// keyframe). True when it did.
fn anchor_on(
    clock: &mut ClockMap,
    ssrc: Option<u32>,
    other: &ClockMap,
    other_ssrc: Option<u32>,
    rtp: u32,
    arrival_ms: i64,
) -> bool {
    let (Some(ssrc), Some(other_ssrc)) = (ssrc, other_ssrc) else { return false };
    match aligned_ms(other, other_ssrc, clock, ssrc, rtp) {
        Some(m) if (m - (arrival_ms + CLOCK_HEADROOM_MS)).abs() < MAX_SR_CORRECTION_MS => {
            clock.first = Some((rtp, m));
            true
        }
        _ => false,
    }
}

/// How long video waits for the AAC sequence header (a publisher without audio
/// starts this much later on the FLV side), and at most how many access units.
const AAC_HEADER_WAIT: Duration = Duration::from_millis(500);
const MAX_HELD_VIDEO: usize = 30;

/// How long a bridged H.264 publisher's audio waits for its first keyframe.
#[cfg(feature = "fdk-aac")]
const AUDIO_WAITS_FOR_VIDEO: Duration = Duration::from_secs(2);

/// Sender reports that disagree with arrival times by more than this are not
/// believed (a sender whose tracks use unrelated clocks).
const MAX_SR_CORRECTION_MS: i64 = 5000;

/// WebRTC (H.264 + Opus) → RTMP/FLV/HLS (H.264 + AAC).
pub struct RtcToRtmp {
    origin: Instant,
    video: Option<crate::proto::rtp_h264::H264Depacketizer>,
    /// The publisher's video SSRC: a new one (restart) resets the depacketizer.
    video_ssrc: Option<u32>,
    audio_ssrc: Option<u32>,
    vclock: ClockMap,
    #[cfg(feature = "fdk-aac")]
    audio: Option<crate::proto::audio_bridge::OpusToAac>,
    aclock: ClockMap,
    #[cfg_attr(not(feature = "fdk-aac"), allow(dead_code))]
    sent_aac_header: bool,
    /// Whether video has put out its first access unit (a keyframe).
    video_started: bool,
    /// Video access units held until the AAC sequence header is out (see
    /// [`AAC_HEADER_WAIT`]), and since when.
    held_video: Vec<Frame>,
    video_held_since: Option<Instant>,
    /// When the first AAC frame was ready (audio waits for video until
    /// `AUDIO_WAITS_FOR_VIDEO` after it).
    #[cfg(feature = "fdk-aac")]
    audio_ready_since: Option<Instant>,
    /// Also put out the publisher's Opus as relay-only tags (cluster mode).
    opus_tags: bool,
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
            audio_ssrc: None,
            vclock: ClockMap::new(90_000),
            #[cfg(feature = "fdk-aac")]
            audio: Some(crate::proto::audio_bridge::OpusToAac::new(Default::default())),
            aclock: ClockMap::new(48_000),
            sent_aac_header: false,
            video_started: false,
            held_video: vec![],
            video_held_since: None,
            #[cfg(feature = "fdk-aac")]
            audio_ready_since: None,
            audio_cpu: Duration::ZERO,
            warnings,
            opus_tags: false,
        }
    }

    /// With the publisher's Opus also as relay-only tags, for other nodes' relays
    /// (see [`FrameKind::OpusTag`]); off on a single node, where nothing takes them.
    pub fn with_opus_tags(mut self, on: bool) -> Self {
        self.opus_tags = on;
        self
    }

    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Whether an AAC sequence header is still to come (audio is transcoded).
    fn aac_header_to_come(&self) -> bool {
        #[cfg(feature = "fdk-aac")]
        return self.audio.is_some() && !self.sent_aac_header;
        #[cfg(not(feature = "fdk-aac"))]
        false
    }

    /// A publisher's sender report: remembered for starting video on audio's
    /// timeline. Running clocks are never moved by a report: a step in a running
    /// track (even forward) shows up as an irregular frame interval, from which
    /// players such as ffmpeg guess a wrong frame rate, and some senders' reports
    /// are only accurate to a frame anyway.
    fn sender_report(&mut self, kind: FrameKind, ssrc: u32, ntp: u64, rtp: u32) {
        if ntp == 0 {
            return;
        }
        let clock = if kind == FrameKind::RtpVideo { &mut self.vclock } else { &mut self.aclock };
        clock.sender_report = Some((ssrc, ntp_to_us(ntp), rtp));
    }

    /// Converts one RTP frame into FLV-tag frames; returns true when the publisher
    /// should be asked for a keyframe (loss, or a start mid-GOP). `now` is the
    /// frame's arrival; `clock` gives the time around the audio transcoding (its CPU).
    pub fn push(&mut self, now: Instant, clock: &dyn Fn() -> Instant, f: &Frame, out: &mut Vec<Frame>) -> bool {
        use crate::proto::rtp_h264::DepacketizerOutput;
        if let Some((ssrc, ntp, rtp)) = f.as_sender_report() {
            self.sender_report(f.kind, ssrc, ntp, rtp);
            return false;
        }
        let Ok(p) = crate::proto::webrtc::RtpPacket::parse(f.payload.clone()) else { return false };
        let arrival = now.saturating_duration_since(self.origin).as_millis() as i64;
        let mut pli = false;
        match f.kind {
            FrameKind::RtpVideo => {
                // Video waits for the AAC sequence header: a track that appears after
                // media started makes the HLS segmenter cut a segment with a
                // discontinuity (a one-frame segment at every publisher start), so the
                // audio header goes first when audio is coming (up to AAC_HEADER_WAIT).
                let aac_to_come = self.aac_header_to_come();
                let Some(v) = &mut self.video else { return false };
                if self.video_ssrc.is_some_and(|s| s != p.ssrc) {
                    v.reset();
                }
                self.video_ssrc = Some(p.ssrc);
                // Before video's first output: start it on audio's timeline when both
                // tracks' sender reports are known (any RTP time anchors the same line).
                if self.vclock.first.is_none()
                    && anchor_on(&mut self.vclock, Some(p.ssrc), &self.aclock, self.audio_ssrc, p.timestamp, arrival)
                {
                    tracing::info!("WebRTC → RTMP: video started on audio's timeline (synced by sender reports)");
                }
                v.handle_rtp(now, &p);
                while let Some(o) = v.poll_output() {
                    match o {
                        DepacketizerOutput::ParameterSets { sps, pps } => {
                            if let Ok(body) = crate::proto::rtp_h264::avc_sequence_header_tag_body(&sps, &pps) {
                                let ts = self.vclock.header_ms(p.timestamp, arrival);
                                out.push(Frame::new(FrameKind::Video, ts, Bytes::from(body)));
                            }
                        }
                        DepacketizerOutput::AccessUnit(au) => {
                            let ts = self.vclock.ms(au.rtp_timestamp, arrival);
                            let f = Frame::new(FrameKind::Video, ts, au.flv_tag_body);
                            let since = *self.video_held_since.get_or_insert(now);
                            let wait = aac_to_come && now.saturating_duration_since(since) < AAC_HEADER_WAIT;
                            if wait && self.held_video.len() < MAX_HELD_VIDEO {
                                self.held_video.push(f);
                            } else {
                                self.video_started = true;
                                out.append(&mut self.held_video);
                                out.push(f);
                            }
                        }
                        DepacketizerOutput::NeedKeyframe => pli = true,
                    }
                }
            }
            FrameKind::RtpAudio => {
                #[cfg(feature = "fdk-aac")]
                if let Some(a) = &mut self.audio {
                    self.audio_ssrc = Some(p.ssrc);
                    // Audio that starts after video (its encoder has not yet filled a
                    // frame, say) starts on video's timeline, likewise.
                    if self.aclock.first.is_none()
                        && anchor_on(
                            &mut self.aclock,
                            Some(p.ssrc),
                            &self.vclock,
                            self.video_ssrc,
                            p.timestamp,
                            arrival,
                        )
                    {
                        tracing::info!("WebRTC → RTMP: audio started on video's timeline (synced by sender reports)");
                    }
                    let started = clock();
                    match a.handle_packet(p.timestamp, &p.payload()) {
                        Ok(()) => {
                            if !self.sent_aac_header {
                                if let Some(h) = a.sequence_header_tag_body() {
                                    let ts = self.aclock.header_ms(p.timestamp, arrival);
                                    out.push(Frame::new(FrameKind::Audio, ts, Bytes::from(h)));
                                    self.sent_aac_header = true;
                                    if !self.held_video.is_empty() {
                                        self.video_started = true;
                                        out.append(&mut self.held_video);
                                    }
                                }
                            }
                            while let Some(fr) = a.poll_output() {
                                // An H.264 publisher's audio starts with its video: audio
                                // frames before the first keyframe would open an audio-only
                                // HLS segment, cut again (with a discontinuity) when video
                                // arrives. A publisher whose video does not come within
                                // `AUDIO_WAITS_FOR_VIDEO` is carried as audio only.
                                let since = *self.audio_ready_since.get_or_insert(now);
                                if self.video.is_some()
                                    && !self.video_started
                                    && now.saturating_duration_since(since) < AUDIO_WAITS_FOR_VIDEO
                                {
                                    continue;
                                }
                                let ts = self.aclock.ms(fr.rtp_timestamp, arrival);
                                out.push(Frame::new(FrameKind::Audio, ts, fr.flv_tag_body));
                            }
                        }
                        Err(crate::proto::audio_bridge::AudioBridgeError::Malformed(_)) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "Opus → AAC transcoding stopped");
                            self.warnings.push(format!("audio cannot be transcoded to AAC ({e})"));
                            self.audio = None;
                        }
                    }
                    self.audio_cpu += clock().saturating_duration_since(started);
                }
                // The publisher's Opus as it came, for cluster relays (their edges'
                // WebRTC viewers), on the same clock as the AAC made from it; like
                // the AAC, only once video has started (a stream's first media frame
                // places its timeline: an Opus tag first left the relay's video
                // waiting for a keyframe that a browser sends only when asked).
                let packet = p.payload();
                if self.opus_tags && !packet.is_empty() && (self.video.is_none() || self.video_started) {
                    self.audio_ssrc.get_or_insert(p.ssrc);
                    let ts = self.aclock.at(p.timestamp, arrival);
                    out.push(Frame::opus_tag(ts, &packet));
                }
            }
            _ => {}
        }
        pli
    }
}

#[cfg(test)]
mod tests;
