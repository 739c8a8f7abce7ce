//! The GOP cache: codec headers, metadata and the media since the last keyframe,
//! bounded in bytes and media duration. A new player starts from it at once.

use crate::frame::{Frame, MediaKind};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

pub struct GopCache {
    meta: Option<Arc<Frame>>,
    video_header: Option<Arc<Frame>>,
    audio_header: Option<Arc<Frame>>,
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
    max_bytes: usize,
    max_ms: u32,
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
            bytes: 0,
            max_bytes,
            max_ms: max_duration.as_millis().min(u32::MAX as u128) as u32,
            overflowed: false,
        }
    }

    pub fn push(&mut self, f: &Arc<Frame>) {
        if f.is_rtp() {
            // WebRTC joiners get a keyframe by PLI, not from a cache.
            return;
        }
        if f.header {
            match f.kind {
                MediaKind::Video => self.video_header = Some(f.clone()),
                MediaKind::Audio => self.audio_header = Some(f.clone()),
                MediaKind::Data => self.meta = Some(f.clone()),
                MediaKind::RtpAudio | MediaKind::RtpVideo => {}
            }
            return;
        }
        let has_video = self.video_header.is_some();
        if f.kind == MediaKind::Video && f.keyframe {
            self.clear_frames();
            self.overflowed = false;
        } else if has_video && (self.frames.is_empty() || self.overflowed) {
            // No keyframe to start from yet.
            return;
        }
        self.bytes += f.len();
        self.frames.push_back(f.clone());
        if has_video {
            let span = self
                .frames
                .back()
                .map_or(0, |b| b.timestamp)
                .wrapping_sub(self.frames.front().map_or(0, |a| a.timestamp));
            if self.bytes > self.max_bytes || span > self.max_ms {
                self.clear_frames();
                self.overflowed = true;
            }
        } else {
            // Audio-only: keep a sliding window.
            while self.bytes > self.max_bytes
                || self
                    .frames
                    .back()
                    .map_or(0, |b| b.timestamp)
                    .wrapping_sub(self.frames.front().map_or(0, |a| a.timestamp))
                    > self.max_ms.min(2_000)
            {
                match self.frames.pop_front() {
                    Some(x) => self.bytes -= x.len(),
                    None => break,
                }
            }
        }
    }

    fn clear_frames(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// Forgets everything (a new publisher with possibly other codecs).
    pub fn reset(&mut self) {
        *self = GopCache::new(self.max_bytes, Duration::from_millis(self.max_ms as u64));
    }

    /// Headers first, then the cached media from its keyframe.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> Arc<Frame> {
        // FLV AVC NALU tag: frame type 1 (key) / 2 (inter), codec 7, packet type 1, cts 0, one NAL.
        let b0 = if key { 0x17 } else { 0x27 };
        Arc::new(Frame::new(
            MediaKind::Video,
            ts,
            Bytes::from(vec![b0, 1, 0, 0, 0, 0, 0, 0, 1, if key { 0x65 } else { 0x41 }]),
        ))
    }
    fn vheader() -> Arc<Frame> {
        Arc::new(Frame::new(
            MediaKind::Video,
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
        g.push(&video(99, true));
        assert_eq!(g.snapshot().len(), 2, "a new keyframe starts a new GOP");
        // Duration bound: a GOP longer than 10 s is dropped until the next keyframe.
        g.push(&video(20_000, false));
        assert_eq!(g.snapshot().len(), 1);
        g.push(&video(20_033, false));
        assert_eq!(g.snapshot().len(), 1);
        g.push(&video(20_066, true));
        assert_eq!(g.snapshot().len(), 2);
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
}
