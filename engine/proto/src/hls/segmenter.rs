//! The HLS segmenter: media in, MPEG-TS segments and a sliding-window media
//! playlist out (RFC 8216; segments per 3, playlist per 4.3 and 6.2.2).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::HlsError;
use super::playlist::{PlaylistHeader, PlaylistSegment, render_media_playlist, target_duration_secs};
use crate::codec::avc::nal_type;
use crate::codec::{
    AudioCodec, AudioPacket, AudioSpecificConfig, AudioTag, AvcConfig, VideoCodec, VideoPacket, VideoTag, avcc_nalus,
    nal_unit_type,
};
use crate::mpegts::{TsError, TsMuxer, TsMuxerConfig};

/// Segmenter settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlsConfig {
    /// Target segment length: a segment is cut at the first video key frame
    /// once it is this long (audio-only: at the first audio frame).
    pub fragment: Duration,
    /// Media time listed in the playlist (the sliding window).
    pub playlist_length: Duration,
    /// Segments kept in memory after leaving the playlist, for players that
    /// fetched the playlist just before (RFC 8216 6.2.2).
    pub retained_segments: usize,
    /// Bound on the bytes of all segments kept; the oldest go first.
    pub max_bytes: usize,
    /// Bound on one segment: a longer one is cut even without a key frame.
    pub max_segment_bytes: usize,
    /// Prefix of segment URIs in the playlist, relative to it: segments are
    /// listed as `{uri_prefix}{seq}.ts` (e.g. `"mystream/"`).
    pub uri_prefix: String,
    /// MPEG-TS muxer settings.
    pub muxer: TsMuxerConfig,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self {
            fragment: Duration::from_secs(3),
            playlist_length: Duration::from_secs(60),
            retained_segments: 2,
            max_bytes: 64 << 20,
            max_segment_bytes: 16 << 20,
            uri_prefix: String::new(),
            muxer: TsMuxerConfig::default(),
        }
    }
}

/// Hard bound on segments kept, whatever the durations say.
const MAX_SEGMENTS: usize = 1024;
/// Hard bound on undrained events; older ones are dropped beyond it.
const MAX_EVENTS: usize = 1024;
/// A timestamp this far behind the newest one seen is a restart.
const MAX_BACKWARD_MS: u64 = 5_000;
/// A timestamp this far beyond the newest one seen is a discontinuity.
const MAX_FORWARD_MS: u64 = 30_000;

pub use crate::Track;

/// One coded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaFrame<'a> {
    /// Audio or video.
    pub kind: Track,
    /// Decode timestamp in milliseconds (RTMP/FLV time; wraps at 2^32).
    pub timestamp_ms: u32,
    /// PTS − DTS in milliseconds (video; 0 for audio).
    pub composition_time_ms: i32,
    /// Video key frame (an IDR in the data is detected as well).
    pub keyframe: bool,
    /// Video: an H.264 access unit in AVCC form; audio: one raw AAC frame.
    pub payload: &'a [u8],
}

/// What changed, for a caller mirroring segments and playlist elsewhere
/// (e.g. on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HlsEvent {
    /// A segment was completed and is now served.
    SegmentCompleted {
        /// Sequence number (its URI is `{uri_prefix}{seq}.ts`).
        seq: u64,
        /// Media duration.
        duration: Duration,
        /// The segment bytes (shared, not copied).
        data: Bytes,
    },
    /// A segment was dropped from memory.
    SegmentRemoved {
        /// Sequence number.
        seq: u64,
    },
    /// The playlist text changed; read it with [`Segmenter::playlist`].
    PlaylistUpdated,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    duration_ms: u64,
    discontinuity: bool,
    data: Bytes,
}

#[derive(Debug)]
struct OpenSegment {
    start_ms: u64,
    /// End of the last frame written (its time plus its estimated duration).
    end_ms: u64,
    discontinuity: bool,
    /// Started on a video key frame (else audio-only).
    video_mode: bool,
    frames: u64,
    data: Vec<u8>,
}

/// Turns one stream's media into HLS segments and a media playlist.
///
/// Getters: [`playlist`](Self::playlist), [`segment`](Self::segment),
/// [`media_sequence`](Self::media_sequence) and friends. Input:
/// [`set_video_config`](Self::set_video_config),
/// [`set_audio_config`](Self::set_audio_config), [`push`](Self::push) or
/// [`push_flv_tag`](Self::push_flv_tag). Commands:
/// [`discontinuity`](Self::discontinuity), [`end`](Self::end). Output:
/// [`poll_event`](Self::poll_event), drained until `None` after each input.
///
/// Time comes only from the media timestamps. Memory is bounded by the
/// playlist window plus [`HlsConfig::retained_segments`], by
/// [`HlsConfig::max_bytes`] and by a hard segment count.
#[derive(Debug)]
pub struct Segmenter {
    config: HlsConfig,
    muxer: TsMuxer,
    segments: VecDeque<Segment>,
    /// Index in `segments` of the first segment listed in the playlist.
    playlist_start: usize,
    total_bytes: usize,
    open: Option<OpenSegment>,
    next_seq: u64,
    next_discontinuity: bool,
    discontinuity_sequence: u64,
    /// Cut at the next opportunity (the track set changed mid-segment).
    cut_pending: bool,
    max_duration_ms: u64,
    ended: bool,
    playlist: Bytes,
    events: VecDeque<HlsEvent>,
    dropped_events: u64,
    dropped_frames: u64,
    /// Last raw timestamp and its unwrapped value.
    last_raw_ms: Option<(u32, u64)>,
    /// Newest unwrapped timestamp seen.
    newest_ms: u64,
    last_video_ms: Option<u64>,
    last_segment_len: usize,
}

impl Segmenter {
    /// A segmenter with no media yet (its playlist lists no segments).
    pub fn new(config: HlsConfig) -> Self {
        let muxer = TsMuxer::new(config.muxer.clone());
        let mut s = Self {
            config,
            muxer,
            segments: VecDeque::new(),
            playlist_start: 0,
            total_bytes: 0,
            open: None,
            next_seq: 0,
            next_discontinuity: false,
            discontinuity_sequence: 0,
            cut_pending: false,
            max_duration_ms: 0,
            ended: false,
            playlist: Bytes::new(),
            events: VecDeque::new(),
            dropped_events: 0,
            dropped_frames: 0,
            last_raw_ms: None,
            newest_ms: 0,
            last_video_ms: None,
            last_segment_len: 0,
        };
        s.rebuild_playlist(false);
        s
    }

    // ---- getters ----

    /// The current media playlist (rebuilt only when it changes).
    pub fn playlist(&self) -> Bytes {
        self.playlist.clone()
    }

    /// A segment still held in memory (listed or recently listed).
    pub fn segment(&self, seq: u64) -> Option<Bytes> {
        let first = self.segments.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        let seg = self.segments.get(index)?;
        (seg.seq == seq).then(|| seg.data.clone())
    }

    /// `#EXT-X-MEDIA-SEQUENCE` of the current playlist.
    pub fn media_sequence(&self) -> u64 {
        self.segments.get(self.playlist_start).map_or(self.next_seq, |s| s.seq)
    }

    /// Segments listed in the playlist.
    pub fn playlist_segment_count(&self) -> usize {
        self.segments.len() - self.playlist_start
    }

    /// Bytes of all segments held in memory.
    pub fn bytes_held(&self) -> usize {
        self.total_bytes
    }

    /// `#EXT-X-TARGETDURATION` in seconds.
    pub fn target_duration_secs(&self) -> u64 {
        target_duration_secs(self.max_duration_ms.max(self.config.fragment.as_millis() as u64))
    }

    /// True after [`end`](Self::end) until new media arrives.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Frames dropped while waiting for a key frame.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Events dropped because the caller did not drain them.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// The settings in force.
    pub fn config(&self) -> &HlsConfig {
        &self.config
    }

    // ---- input ----

    /// Sets the H.264 configuration (from the video sequence header).
    pub fn set_video_config(&mut self, config: AvcConfig) {
        if self.muxer.video_config().is_none() && self.open.is_some() {
            self.cut_pending = true;
        }
        self.muxer.set_video_config(config);
    }

    /// Sets the AAC configuration (from the audio sequence header). Fails
    /// when ADTS cannot carry it (then audio is left out of the segments).
    pub fn set_audio_config(&mut self, config: AudioSpecificConfig) -> Result<(), HlsError> {
        let adding = self.muxer.audio_config().is_none();
        self.muxer.set_audio_config(config)?;
        if adding && self.open.is_some() {
            self.cut_pending = true;
        }
        Ok(())
    }

    /// Feeds one FLV tag body (= RTMP audio/video message payload): sequence
    /// headers set the configurations, coded frames are pushed, other
    /// packets are ignored. Codecs other than H.264 and AAC are refused with
    /// [`HlsError::UnsupportedCodec`].
    pub fn push_flv_tag(&mut self, kind: Track, timestamp_ms: u32, body: &[u8]) -> Result<(), HlsError> {
        match kind {
            Track::Video => {
                let tag = VideoTag::parse(body)?;
                if tag.codec != VideoCodec::Avc {
                    return Err(HlsError::UnsupportedCodec(tag.codec.name()));
                }
                match tag.packet {
                    VideoPacket::SequenceHeader => self.set_video_config(AvcConfig::parse(tag.data)?),
                    VideoPacket::Frame => self.push(&MediaFrame {
                        kind,
                        timestamp_ms,
                        composition_time_ms: tag.composition_time_ms,
                        keyframe: tag.is_keyframe(),
                        payload: tag.data,
                    })?,
                    _ => {}
                }
            }
            Track::Audio => {
                let tag = AudioTag::parse(body)?;
                if tag.codec != AudioCodec::Aac {
                    return Err(HlsError::UnsupportedCodec(tag.codec.name()));
                }
                match tag.packet {
                    AudioPacket::SequenceHeader => self.set_audio_config(AudioSpecificConfig::parse(tag.data)?)?,
                    AudioPacket::Frame => self.push(&MediaFrame {
                        kind,
                        timestamp_ms,
                        composition_time_ms: 0,
                        keyframe: false,
                        payload: tag.data,
                    })?,
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Feeds one coded frame.
    ///
    /// Video waits for a key frame; while video is configured, audio before
    /// the first key frame is dropped too, so every segment starts with a key
    /// frame. A segment is cut at a key frame once it reaches
    /// [`HlsConfig::fragment`] (audio-only: at any audio frame).
    pub fn push(&mut self, frame: &MediaFrame<'_>) -> Result<(), HlsError> {
        if self.ended {
            // New media after end(): a new period.
            self.ended = false;
            self.next_discontinuity = true;
            self.last_raw_ms = None;
            self.rebuild_playlist(true);
        }
        match frame.kind {
            Track::Video => self.push_video(frame),
            Track::Audio => self.push_audio(frame),
        }
    }

    fn push_video(&mut self, frame: &MediaFrame<'_>) -> Result<(), HlsError> {
        let config = self.muxer.video_config().ok_or(TsError::NoVideoConfig)?;
        // Validate before any state change, and find IDR slices.
        let mut idr = false;
        for nal in avcc_nalus(frame.payload, config.nalu_length_size) {
            idr |= nal_unit_type(nal?) == nal_type::IDR;
        }
        let keyframe = frame.keyframe || idr;
        let ts = self.unwrap_timestamp(frame.timestamp_ms);
        let fragment_ms = self.config.fragment.as_millis() as u64;
        let cut = match &self.open {
            None => {
                if !keyframe {
                    self.dropped_frames += 1;
                    return Ok(());
                }
                true
            }
            Some(open) => {
                (keyframe && (ts.saturating_sub(open.start_ms) >= fragment_ms || self.cut_pending || !open.video_mode))
                    || open.data.len() >= self.config.max_segment_bytes
            }
        };
        if cut {
            self.close_open(Some(ts));
            self.start_segment(ts, true);
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(()); // start_segment just set it
        };
        let written = self.muxer.write_video(&mut open.data, ts, frame.composition_time_ms, keyframe, frame.payload);
        if let Err(e) = written {
            if open.frames == 0 {
                self.open = None;
            }
            return Err(e.into());
        }
        open.frames += 1;
        let interval = self.last_video_ms.map_or(0, |last| ts.saturating_sub(last));
        open.end_ms = open.end_ms.max(ts + interval.min(1000));
        self.last_video_ms = Some(ts);
        Ok(())
    }

    fn push_audio(&mut self, frame: &MediaFrame<'_>) -> Result<(), HlsError> {
        let config = self.muxer.audio_config().ok_or(TsError::NoAudioConfig)?;
        let frame_ms = u64::from(config.frame_length) * 1000 / u64::from(config.sample_rate.max(1));
        let ts = self.unwrap_timestamp(frame.timestamp_ms);
        let has_video = self.muxer.video_config().is_some();
        let fragment_ms = self.config.fragment.as_millis() as u64;
        let cut = match &self.open {
            None if has_video => {
                self.dropped_frames += 1;
                return Ok(());
            }
            None => true,
            Some(open) => {
                (!open.video_mode
                    && !has_video
                    && (ts.saturating_sub(open.start_ms) >= fragment_ms || self.cut_pending))
                    || open.data.len() >= self.config.max_segment_bytes
            }
        };
        if cut {
            self.close_open(Some(ts));
            self.start_segment(ts, false);
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        self.muxer.write_audio(&mut open.data, ts, frame.payload)?;
        open.frames += 1;
        open.end_ms = open.end_ms.max(ts + frame_ms);
        Ok(())
    }

    /// Unwraps a 32-bit millisecond timestamp and detects jumps (a restart
    /// without [`discontinuity`](Self::discontinuity), or a long gap), which
    /// close the open segment and mark a discontinuity.
    fn unwrap_timestamp(&mut self, raw: u32) -> u64 {
        let Some((last_raw, last)) = self.last_raw_ms else {
            // First timestamp of a period: start well above zero so that
            // small backward steps stay representable.
            let ts = (1u64 << 32) + u64::from(raw);
            self.last_raw_ms = Some((raw, ts));
            self.newest_ms = ts;
            return ts;
        };
        let delta = i64::from(raw.wrapping_sub(last_raw) as i32);
        let ts = (last as i64 + delta).max(0) as u64;
        if ts + MAX_BACKWARD_MS < self.newest_ms || ts > self.newest_ms + MAX_FORWARD_MS {
            self.close_open(None);
            self.mark_discontinuity();
            let ts = (1u64 << 32) + u64::from(raw);
            self.last_raw_ms = Some((raw, ts));
            self.newest_ms = ts;
            return ts;
        }
        self.last_raw_ms = Some((raw, ts));
        self.newest_ms = self.newest_ms.max(ts);
        ts
    }

    fn mark_discontinuity(&mut self) {
        if self.next_seq > 0 {
            self.next_discontinuity = true;
        }
        self.last_video_ms = None;
    }

    // ---- commands ----

    /// The publisher went away and another one (or the same one again)
    /// follows: closes the open segment, marks the next segment with
    /// `#EXT-X-DISCONTINUITY`, forgets the codec configurations (the new
    /// publisher's sequence headers set them again) and waits for a key frame.
    pub fn discontinuity(&mut self) {
        self.close_open(None);
        self.mark_discontinuity();
        self.muxer.clear();
        self.cut_pending = false;
        self.last_raw_ms = None;
        if self.ended {
            self.ended = false;
            self.rebuild_playlist(true);
        }
    }

    /// The stream ended: closes the open segment and adds `#EXT-X-ENDLIST`.
    pub fn end(&mut self) {
        self.close_open(None);
        if !self.ended {
            self.ended = true;
            self.rebuild_playlist(true);
        }
    }

    // ---- output ----

    /// The next event, `None` when drained.
    pub fn poll_event(&mut self) -> Option<HlsEvent> {
        self.events.pop_front()
    }

    fn emit(&mut self, event: HlsEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(event);
    }

    fn start_segment(&mut self, ts: u64, video_mode: bool) {
        let mut data = Vec::with_capacity(self.last_segment_len + self.last_segment_len / 4);
        self.muxer.write_psi(&mut data);
        self.open = Some(OpenSegment {
            start_ms: ts,
            end_ms: ts,
            discontinuity: std::mem::take(&mut self.next_discontinuity) || std::mem::take(&mut self.cut_pending),
            video_mode,
            frames: 0,
            data,
        });
        self.cut_pending = false;
    }

    /// Completes the open segment, ending at `end_ms` (the next segment's
    /// start) or, when `None`, at the end of its last frame.
    fn close_open(&mut self, end_ms: Option<u64>) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        self.muxer.flush_audio(&mut open.data);
        if open.frames == 0 {
            return;
        }
        let end = end_ms.unwrap_or(open.end_ms).max(open.start_ms);
        let duration_ms = end - open.start_ms;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.last_segment_len = open.data.len();
        let data = Bytes::from(open.data);
        self.max_duration_ms = self.max_duration_ms.max(duration_ms);
        self.total_bytes += data.len();
        self.segments.push_back(Segment { seq, duration_ms, discontinuity: open.discontinuity, data: data.clone() });
        self.emit(HlsEvent::SegmentCompleted { seq, duration: Duration::from_millis(duration_ms), data });
        self.slide_window();
        self.rebuild_playlist(true);
    }

    /// Moves the playlist window and drops segments beyond the bounds.
    fn slide_window(&mut self) {
        let window_ms = self.config.playlist_length.as_millis() as u64;
        let mut sum = 0u64;
        let mut start = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate().rev() {
            if start < self.segments.len() && sum + seg.duration_ms > window_ms {
                break;
            }
            sum += seg.duration_ms;
            start = i;
        }
        self.advance_playlist_start(start);
        while self.playlist_start > self.config.retained_segments {
            self.pop_front();
        }
        while self.segments.len() > 1
            && (self.total_bytes > self.config.max_bytes || self.segments.len() > MAX_SEGMENTS)
        {
            self.pop_front();
        }
    }

    fn advance_playlist_start(&mut self, new_start: usize) {
        if new_start > self.playlist_start {
            let leaving = self.segments.range(self.playlist_start..new_start);
            self.discontinuity_sequence += leaving.filter(|s| s.discontinuity).count() as u64;
            self.playlist_start = new_start;
        }
    }

    fn pop_front(&mut self) {
        if self.playlist_start == 0 {
            self.advance_playlist_start(1);
        }
        if let Some(seg) = self.segments.pop_front() {
            self.playlist_start -= 1;
            self.total_bytes -= seg.data.len();
            self.emit(HlsEvent::SegmentRemoved { seq: seg.seq });
        }
    }

    fn rebuild_playlist(&mut self, notify: bool) {
        let header = PlaylistHeader {
            target_duration_secs: self.target_duration_secs(),
            media_sequence: self.media_sequence(),
            discontinuity_sequence: self.discontinuity_sequence,
            ended: self.ended,
        };
        let listed = self.segments.range(self.playlist_start..).map(|s| PlaylistSegment {
            seq: s.seq,
            duration_ms: s.duration_ms,
            discontinuity: s.discontinuity,
        });
        let text = render_media_playlist(&header, listed, &self.config.uri_prefix);
        self.playlist = Bytes::from(text);
        if notify {
            self.emit(HlsEvent::PlaylistUpdated);
        }
    }
}
