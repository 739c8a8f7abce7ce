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
        if f.is_rtp() {
            // WebRTC joiners get a keyframe by PLI, not from a cache.
            return;
        }
        if f.header {
            match f.kind {
                FrameKind::Video => self.video_header = Some(f.clone()),
                FrameKind::Audio => self.audio_header = Some(f.clone()),
                FrameKind::Data => self.meta = Some(f.clone()),
                FrameKind::RtpAudio | FrameKind::RtpVideo => {}
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
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> Arc<Frame> {
        // FLV AVC NALU tag: frame type 1 (key) / 2 (inter), codec 7, packet type 1, cts 0, one NAL.
        let b0 = if key { 0x17 } else { 0x27 };
        Arc::new(Frame::new(
            FrameKind::Video,
            ts,
            Bytes::from(vec![b0, 1, 0, 0, 0, 0, 0, 0, 1, if key { 0x65 } else { 0x41 }]),
        ))
    }
    fn vheader() -> Arc<Frame> {
        Arc::new(Frame::new(
            FrameKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0xe0]),
        ))
    }

    #[test]
    fn starts_at_keyframes_and_bounds() {
        let mut g = GopCache::new(1 << 20, Duration::from_secs(10));
        g.push(&vheader());
        g.push(&video(0, false)); // no keyframe yet: not cached
        assert_eq!(g.snapshot().len(), 1);
        g.push(&video(33, true));
        g.push(&video(66, false));
        let s = g.snapshot();
        assert_eq!(s.len(), 3);
        assert!(s[1].keyframe);
        // New keyframes: the GOPs before stay until the later ones have keyframes and
        // frames enough for a player's start.
        g.push(&video(99, true));
        assert_eq!(g.snapshot().len(), 4);
        g.push(&video(132, true));
        for i in 1..START_VIDEO_FRAMES as u32 {
            g.push(&video(132 + i * 33, false));
        }
        // The first GOP went (two keyframes and 46 frames after it), not the second.
        let s = g.snapshot();
        assert_eq!(s.len(), 2 + START_VIDEO_FRAMES);
        assert!(s[1].keyframe && s[1].timestamp == 99 && s[2].keyframe);
        // A third keyframe: the first GOP goes (the two after it are a start).
        g.push(&video(3000, true));
        let s = g.snapshot();
        assert_eq!(s.len(), 2 + START_VIDEO_FRAMES);
        assert!(s[1].keyframe && s[1].timestamp == 132 && s.last().is_some_and(|f| f.keyframe));
        // Duration bound: a GOP longer than 10 s is dropped until the next keyframe.
        g.push(&video(20_000, false));
        assert_eq!(g.snapshot().len(), 1);
        g.push(&video(20_033, false));
        assert_eq!(g.snapshot().len(), 1);
        g.push(&video(20_066, true));
        assert_eq!(g.snapshot().len(), 2);
        // The bounds drop older GOPs first.
        let mut g = GopCache::new(1 << 20, Duration::from_millis(800));
        g.push(&vheader());
        for k in 0..3u32 {
            g.push(&video(k * 400, true));
            g.push(&video(k * 400 + 33, false));
        }
        let s: Vec<u32> = g.snapshot().iter().skip(1).map(|f| f.timestamp).collect();
        assert_eq!(s, [400, 433, 800, 833], "within 800 ms, from a keyframe");
    }

    #[test]
    fn snapshot_headers_take_the_first_frames_time() {
        let mut g = GopCache::new(1 << 20, Duration::from_secs(10));
        g.push(&vheader()); // cached at 0
        assert_eq!(g.snapshot()[0].timestamp, 0, "no media yet: the header as cached");
        g.push(&video(60_000, true));
        g.push(&video(60_033, false));
        let s = g.snapshot();
        assert!(s[0].header);
        assert_eq!(s.iter().map(|f| f.timestamp).collect::<Vec<_>>(), [60_000, 60_000, 60_033]);
    }

    #[test]
    fn live_edge_keeps_only_the_latest_gop() {
        let mut g = GopCache::new(1 << 20, Duration::from_secs(10)).with_start(JoinStart::LiveEdge);
        let mut quick = GopCache::new(1 << 20, Duration::from_secs(10));
        let video = |ts: u32, key: bool| {
            let body = if key { vec![0x17, 1, 0, 0, 0, 1, 2, 3] } else { vec![0x27, 1, 0, 0, 0, 4, 5, 6] };
            Arc::new(Frame::new(FrameKind::Video, ts, Bytes::from(body)))
        };
        let header = Arc::new(Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2])));
        for c in [&mut g, &mut quick] {
            c.push(&header);
            // Two GOPs of 60 frames, then 10 frames of a third.
            for i in 0..130u32 {
                c.push(&video(i * 33, i % 60 == 0));
            }
        }
        let media = |c: &GopCache| c.snapshot().into_iter().filter(|f| !f.header).collect::<Vec<_>>();
        let edge = media(&g);
        assert_eq!(edge.len(), 10, "the latest GOP only");
        assert!(edge[0].keyframe && edge[0].timestamp == 120 * 33);
        let q = media(&quick);
        assert!(q.len() >= START_VIDEO_FRAMES && q.iter().filter(|f| f.keyframe).count() >= START_KEYFRAMES);
        assert_eq!(q[0].timestamp, 60 * 33, "one GOP further back");
    }
}
