//! The GOP cache: codec headers, metadata and the media since the last keyframe,
//! bounded in bytes and media duration. A new player starts from it at once.

use crate::stream::frame::{Frame, FrameKind};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Video frames a new player should get at once: ffmpeg (and ffprobe) reading FLV
/// without probing options estimate the frame rate from 40 frame durations
/// (`avformat_find_stream_info`, millisecond time base) before they output
/// anything; a start with fewer frames makes them wait for the live ones (up to
/// 1.3 s at 30 fps).
pub const START_VIDEO_FRAMES: usize = 45;

/// Keyframes a new player should get at once: a player that does not probe
/// (ffmpeg `-fflags nobuffer -probesize 32`) decodes the first packet to learn the
/// picture size and throws it away, so it shows the second keyframe; with only one,
/// it waits for the next live keyframe (a GOP, seconds).
pub const START_KEYFRAMES: usize = 2;

/// Where a new RTMP/FLV player starts (the GOP cache keeps what that needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinStart {
    /// Enough for players that probe (ffmpeg, ffprobe, VLC) to show their first
    /// frame at once and for ones that do not probe to show one within a second:
    /// [`START_KEYFRAMES`] keyframes and [`START_VIDEO_FRAMES`] video frames, so the
    /// player starts up to one GOP further behind live.
    QuickStart,
    /// The latest keyframe: the least latency; probing players may take up to
    /// ~1.3 s to show a first frame, non-probing ones wait for the next keyframe.
    LiveEdge,
}

impl JoinStart {
    /// (keyframes, video frames) a start should hold.
    fn needs(self) -> (usize, usize) {
        match self {
            JoinStart::QuickStart => (START_KEYFRAMES, START_VIDEO_FRAMES),
            JoinStart::LiveEdge => (1, 0),
        }
    }
}

pub struct GopCache {
    meta: Option<Arc<Frame>>,
    video_header: Option<Arc<Frame>>,
    audio_header: Option<Arc<Frame>>,
    /// The media from the first kept keyframe on: the last GOPs, as many as a start
    /// needs (see [`START_VIDEO_FRAMES`], [`START_KEYFRAMES`]) within the bounds;
    /// audio-only: a sliding window.
    frames: VecDeque<Arc<Frame>>,
    /// Video frames in each kept GOP; front = oldest.
    gops: VecDeque<usize>,
    bytes: usize,
    max_bytes: usize,
    max_ms: u32,
    start: JoinStart,
    /// The current GOP was dropped for size; wait for the next keyframe.
    overflowed: bool,
}

impl GopCache {
    pub fn new(max_bytes: usize, max_duration: Duration) -> Self {
        Self {
            meta: None,
            video_header: None,
            audio_header: None,
            frames: VecDeque::new(),
            gops: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_ms: max_duration.as_millis().min(u32::MAX as u128) as u32,
            start: JoinStart::QuickStart,
            overflowed: false,
        }
    }

    /// Keeps what a player start of this kind needs (default: quick start).
    pub fn with_start(mut self, start: JoinStart) -> Self {
        self.start = start;
        self
    }

    pub fn push(&mut self, f: &Arc<Frame>) {
        if f.is_rtp() || f.relay_only() {
            // WebRTC joiners get a keyframe by PLI, not from a cache; a relay's Opus
            // starts with the live stream (its edge transcodes the cached AAC till then).
            return;
        }
        if f.header {
            match f.kind {
                FrameKind::Video => self.video_header = Some(f.clone()),
                FrameKind::Audio => self.audio_header = Some(f.clone()),
                FrameKind::Data => self.meta = Some(f.clone()),
                FrameKind::RtpAudio | FrameKind::RtpVideo | FrameKind::OpusTag => {}
            }
            return;
        }
        let has_video = self.video_header.is_some();
        if f.kind == FrameKind::Video && f.keyframe {
            if self.overflowed || !has_video {
                self.clear_frames();
            }
            self.overflowed = false;
            self.gops.push_back(0);
        } else if has_video && (self.frames.is_empty() || self.overflowed) {
            // No keyframe to start from yet.
            return;
        }
        if f.kind == FrameKind::Video
            && let Some(g) = self.gops.back_mut()
        {
            *g += 1;
        }
        self.bytes += f.len();
        self.frames.push_back(f.clone());
        if has_video {
            // Older GOPs go once the ones after them are enough for a start.
            let (keyframes, video_frames) = self.start.needs();
            while self.gops.len() > keyframes && self.gops.iter().skip(1).sum::<usize>() >= video_frames {
                self.drop_first_gop();
            }
            // Bounds: older GOPs first; a single GOP too large waits for the next keyframe.
            while self.over_bounds() {
                if self.gops.len() > 1 {
                    self.drop_first_gop();
                } else {
                    self.clear_frames();
                    self.overflowed = true;
                    break;
                }
            }
        } else {
            // Audio-only: keep a sliding window.
            while self.bytes > self.max_bytes || self.span() > self.max_ms.min(2_000) {
                match self.frames.pop_front() {
                    Some(x) => self.bytes -= x.len(),
                    None => break,
                }
            }
        }
    }

    fn span(&self) -> u32 {
        self.frames.back().map_or(0, |b| b.timestamp).wrapping_sub(self.frames.front().map_or(0, |a| a.timestamp))
    }

    fn over_bounds(&self) -> bool {
        self.bytes > self.max_bytes || self.span() > self.max_ms
    }

    /// Drops the oldest kept GOP (there is a later one): its keyframe at the front,
    /// and what follows up to the next keyframe.
    fn drop_first_gop(&mut self) {
        self.gops.pop_front();
        if let Some(x) = self.frames.pop_front() {
            self.bytes -= x.len();
        }
        while self.frames.front().is_some_and(|x| !(x.kind == FrameKind::Video && x.keyframe)) {
            if let Some(x) = self.frames.pop_front() {
                self.bytes -= x.len();
            }
        }
    }

    fn clear_frames(&mut self) {
        self.frames.clear();
        self.gops.clear();
        self.bytes = 0;
    }

    /// Forgets everything (a new publisher with possibly other codecs).
    pub fn reset(&mut self) {
        *self = GopCache::new(self.max_bytes, Duration::from_millis(self.max_ms as u64)).with_start(self.start);
    }

    /// Headers first, then the cached media from its first keyframe.
    ///
    /// The headers are stamped with the first cached frame's time: they were cached
    /// when the publisher started, possibly minutes back, and a player that sees its
    /// codec headers far behind its first media (ffmpeg guesses frame rates from such
    /// steps) may mistime the whole stream.
    pub fn snapshot(&self) -> Vec<Arc<Frame>> {
        let mut v = Vec::with_capacity(3 + self.frames.len());
        let start = self.frames.front().map(|f| f.timestamp);
        let headers = self.meta.iter().chain(&self.video_header).chain(&self.audio_header);
        v.extend(headers.map(|h| match start {
            Some(ts) if ts != h.timestamp => Arc::new(h.with_timestamp(ts)),
            _ => h.clone(),
        }));
        v.extend(self.frames.iter().cloned());
        v
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn has_video(&self) -> bool {
        self.video_header.is_some()
    }

    /// The tracks (audio, video) the stream has, by the codec headers seen; `None`
    /// before any.
    pub fn tracks(&self) -> Option<(bool, bool)> {
        let t = (self.audio_header.is_some(), self.video_header.is_some());
        (t != (false, false)).then_some(t)
    }
}

#[cfg(test)]
mod tests;
