//! Fragmented MP4 for recordings: [`Fmp4Writer`] turns FLV/RTMP tag bodies (H.264
//! in AVCC with its `AVCDecoderConfigurationRecord`, AAC with its
//! `AudioSpecificConfig`) into an init segment and `moof`+`mdat` fragments;
//! [`scan`] finds the complete fragments of a file (e.g. one a crash cut short);
//! [`vod_playlist`] serves a file as an HLS VOD playlist with byte ranges.
//!
//! Why fragmented: every fragment is complete on its own once written, so a file
//! cut anywhere keeps all its earlier fragments playable, with no index to rewrite
//! at the end. Sans-IO: the caller writes the outputs to a file in order.
//!
//! ```
//! use microvibe_proto::mp4::{Fmp4Options, Fmp4Writer, Mp4Output};
//! let mut w = Fmp4Writer::new(Fmp4Options::default());
//! // w.push_video(ts, body)? / w.push_audio(ts, body)? for each tag, then:
//! let mut file = Vec::new();
//! while let Some(out) = w.poll() {
//!     match out {
//!         Mp4Output::Init(init) => { /* a new file starts here */ file = init.to_vec() }
//!         Mp4Output::Fragment { data, .. } => file.extend_from_slice(&data),
//!     }
//! }
//! ```
//!
//! Timing: the video timescale is 90 kHz (ms × 90), the audio one its sample rate.
//! A sample lasts until the next sample of its track, so the last sample of each
//! track is held back until the next one arrives (or [`Fmp4Writer::finish`], where
//! it takes the previous duration). Timestamps are made monotonic per track: a
//! small step back is clamped to +1 ms; a jump of more than 1 s back or 5 s forward
//! is a discontinuity, stitched to the previous sample, so durations are never
//! negative and a publisher's restart leaves no hole.

mod boxes;
mod scan;

use std::collections::VecDeque;

use bytes::Bytes;

pub use scan::{FragmentInfo, Scan, scan, vod_playlist};

use crate::codec::{AudioCodec, AudioPacket, AudioSpecificConfig, AudioTag, AvcConfig, CodecError, VideoCodec};
use crate::codec::{VideoPacket, VideoTag};
use boxes::{AUDIO_TRACK_ID, FragSample, TrackRun, VIDEO_TIMESCALE, VIDEO_TRACK_ID};

/// A fragment is cut once it holds this many bytes, keyframe or not (bounded memory).
pub const MAX_FRAGMENT_BYTES: usize = 8 << 20;
/// A fragment is cut once it spans this long, keyframe or not.
pub const MAX_FRAGMENT_MS: i64 = 10_000;
/// Before the init: how long (media time) to wait for the other track's sequence
/// header before starting a video-only or audio-only file.
pub const TRACK_WAIT_MS: i64 = 1_000;
/// A timestamp further back than this (ms) is a discontinuity, not jitter.
const MAX_BACKWARD_MS: i64 = 1_000;
/// A timestamp further ahead than this (ms) is a discontinuity, not a gap.
const MAX_FORWARD_MS: i64 = 5_000;
/// Duration of a lone last video sample (ms), when no previous one is known.
const DEFAULT_VIDEO_MS: u32 = 33;

/// Options of a [`Fmp4Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmp4Options {
    /// Target fragment length: a fragment is cut at the first video keyframe at or
    /// after this many ms (audio-only: at the first frame after it). Default 2000.
    pub fragment_ms: u32,
}

impl Default for Fmp4Options {
    fn default() -> Self {
        Self { fragment_ms: 2000 }
    }
}

/// What a [`Fmp4Writer`] produces, to be written to the file in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mp4Output {
    /// `ftyp` + `moov` (with `mvex`/`trex`): the start of a file. Every `Init`
    /// starts a NEW file (a second one comes only after a codec change, or after
    /// [`Fmp4Writer::finish`] when pushing goes on).
    Init(Bytes),
    /// `moof` + `mdat`; starts with a video keyframe when the file has video
    /// (unless cut by the size/length bounds). Times are ms from the file's start.
    Fragment {
        /// The fragment's bytes.
        data: Bytes,
        /// Decode time of its first sample (video track if any), ms from the file's start.
        start_ms: u64,
        /// Its duration in ms (the same track's).
        duration_ms: u64,
    },
}

/// Errors of the MP4 writer and of [`scan`]. The writer drops the tag and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mp4Error {
    /// A codec MP4 recording does not handle (HEVC, AV1, MP3, Opus...).
    #[error("unsupported codec for MP4 recording: {0}")]
    UnsupportedCodec(&'static str),
    /// A tag body or sequence header that does not parse.
    #[error("bad codec data: {0}")]
    Codec(#[from] CodecError),
    /// [`scan`]: the file has no complete init (`ftyp` + `moov`).
    #[error("no complete MP4 init segment (ftyp + moov)")]
    NoInit,
    /// [`scan`]: the init is not an MP4 we can read.
    #[error("malformed MP4: {0}")]
    Malformed(&'static str),
}

/// The video track's configuration (from the sequence header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    /// The `AVCDecoderConfigurationRecord`, as `avcC` carries it.
    record: Vec<u8>,
    width: u16,
    height: u16,
    codecs: String,
}

impl VideoConfig {
    fn parse(record: &[u8]) -> Result<Self, Mp4Error> {
        let cfg = AvcConfig::parse(record)?;
        let (w, h) = cfg.sps_info.as_ref().map_or((0, 0), |s| (s.width, s.height));
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        Ok(Self { record: record.to_vec(), width: clamp(w), height: clamp(h), codecs: cfg.codecs_string() })
    }
}

/// The audio track's configuration (from the sequence header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioConfig {
    /// The `AudioSpecificConfig`, as `esds` carries it.
    asc: Vec<u8>,
    /// Output sample rate: the track's timescale.
    sample_rate: u32,
    channels: u16,
    /// Output samples per frame (the duration of a lone last frame).
    frame_samples: u32,
    codecs: String,
}

impl AudioConfig {
    fn parse(data: &[u8]) -> Result<Self, Mp4Error> {
        let asc = AudioSpecificConfig::parse(data)?;
        if asc.output_sample_rate == 0 || asc.sample_rate == 0 {
            return Err(CodecError::Malformed("zero sample rate").into());
        }
        let frame_samples = u32::from(asc.frame_length) * (asc.output_sample_rate / asc.sample_rate).max(1);
        Ok(Self {
            asc: data.to_vec(),
            sample_rate: asc.output_sample_rate,
            channels: u16::from(asc.channels().unwrap_or(2)),
            frame_samples,
            codecs: asc.codecs_string(),
        })
    }
}

/// Millisecond time of `ticks` in `timescale` (floor). The writer and [`scan`] both
/// derive fragment times with it, so they agree to the millisecond.
pub(crate) fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * 1000 / u128::from(timescale.max(1))) as u64
}

/// Maps FLV timestamps (32-bit ms, wrapping) onto one 64-bit timeline for both
/// tracks, stitching discontinuities (see the module doc).
#[derive(Debug, Default)]
struct Clock {
    last_raw: Option<u32>,
    now: i64,
}

impl Clock {
    fn map(&mut self, raw: u32) -> i64 {
        let Some(last) = self.last_raw else {
            self.last_raw = Some(raw);
            self.now = i64::from(raw);
            return self.now;
        };
        let delta = i64::from(raw.wrapping_sub(last) as i32);
        if !(-MAX_BACKWARD_MS..=MAX_FORWARD_MS).contains(&delta) {
            self.last_raw = Some(raw);
            self.now += 1;
            return self.now;
        }
        if delta > 0 {
            self.last_raw = Some(raw);
            self.now += delta;
            return self.now;
        }
        // A small step back (the other track's interleaving): keep the reference.
        self.now + delta
    }
}

/// A sample waiting for its fragment; `t` is timeline ms.
#[derive(Debug, Clone)]
struct Sample {
    t: i64,
    cts_ms: i32,
    key: bool,
    data: Bytes,
}

/// One track's samples not yet in a fragment.
#[derive(Debug, Default)]
struct Queue {
    samples: VecDeque<Sample>,
    bytes: usize,
    last_t: Option<i64>,
    /// Duration (track ticks) of the last sample written: a lone last sample's.
    last_duration: Option<u32>,
}

impl Queue {
    fn push(&mut self, s: Sample) {
        self.bytes += s.data.len();
        self.samples.push_back(s);
    }

    fn pop_front(&mut self) -> Option<Sample> {
        let s = self.samples.pop_front()?;
        self.bytes -= s.data.len();
        Some(s)
    }

    fn clear(&mut self) {
        self.samples.clear();
        self.bytes = 0;
    }
}

/// The file being written: its tracks (fixed by its init) and timing.
#[derive(Debug)]
struct FileState {
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Timeline ms of the file's time 0.
    base_t: i64,
    sequence: u32,
    end_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

/// A fragmented MP4 writer over FLV tag bodies. Sans-IO: push tags, then drain
/// [`poll`](Self::poll) and write each output to the current file in order; an
/// [`Mp4Output::Init`] starts a new file.
///
/// The init is emitted once the sequence headers are known and the first video
/// keyframe has arrived; a stream whose other track's header has not come within
/// [`TRACK_WAIT_MS`] of media is recorded video-only or audio-only. Video frames
/// before the first keyframe, and frames before their sequence header, are dropped.
///
/// Codec change: a sequence header that differs from the file's (or adds a track
/// the file lacks) ends the file: what was pending is flushed as its last fragment,
/// [`codecs_changed`](Self::codecs_changed) turns true, and the next
/// [`Mp4Output::Init`] polled starts the new file (and turns it false again).
#[derive(Debug)]
pub struct Fmp4Writer {
    opts: Fmp4Options,
    clock: Clock,
    video_cfg: Option<VideoConfig>,
    audio_cfg: Option<AudioConfig>,
    file: Option<FileState>,
    video: Queue,
    audio: Queue,
    out: VecDeque<Mp4Output>,
    changed: bool,
    codecs: Option<String>,
    /// End of the current (or just finished) file's last fragment, ms.
    media_ms: u64,
}

impl Fmp4Writer {
    /// A writer waiting for sequence headers.
    pub fn new(opts: Fmp4Options) -> Self {
        Self {
            opts,
            clock: Clock::default(),
            video_cfg: None,
            audio_cfg: None,
            file: None,
            video: Queue::default(),
            audio: Queue::default(),
            out: VecDeque::new(),
            changed: false,
            codecs: None,
            media_ms: 0,
        }
    }

    /// Pushes a video tag body (an RTMP video message payload). H.264 only: other
    /// codecs are [`Mp4Error::UnsupportedCodec`]; the tag is dropped on any error.
    pub fn push_video(&mut self, timestamp_ms: u32, body: &[u8]) -> Result<(), Mp4Error> {
        let tag = VideoTag::parse(body)?;
        if tag.codec != VideoCodec::Avc {
            return Err(Mp4Error::UnsupportedCodec(tag.codec.name()));
        }
        match tag.packet {
            VideoPacket::SequenceHeader => {
                let cfg = VideoConfig::parse(tag.data)?;
                self.set_video_config(cfg);
            }
            VideoPacket::Frame if self.video_cfg.is_some() && !tag.data.is_empty() => {
                let t = self.clock.map(timestamp_ms);
                let s = Sample {
                    t,
                    cts_ms: tag.composition_time_ms,
                    key: tag.is_keyframe(),
                    data: Bytes::copy_from_slice(tag.data),
                };
                self.push_sample(Kind::Video, s);
            }
            _ => {}
        }
        Ok(())
    }

    /// Pushes an audio tag body (an RTMP audio message payload). AAC only: other
    /// codecs are [`Mp4Error::UnsupportedCodec`]; the tag is dropped on any error.
    pub fn push_audio(&mut self, timestamp_ms: u32, body: &[u8]) -> Result<(), Mp4Error> {
        let tag = AudioTag::parse(body)?;
        if tag.codec != AudioCodec::Aac {
            return Err(Mp4Error::UnsupportedCodec(tag.codec.name()));
        }
        match tag.packet {
            AudioPacket::SequenceHeader => {
                let cfg = AudioConfig::parse(tag.data)?;
                self.set_audio_config(cfg);
            }
            AudioPacket::Frame if self.audio_cfg.is_some() && !tag.data.is_empty() => {
                let t = self.clock.map(timestamp_ms);
                let s = Sample { t, cts_ms: 0, key: true, data: Bytes::copy_from_slice(tag.data) };
                self.push_sample(Kind::Audio, s);
            }
            _ => {}
        }
        Ok(())
    }

    /// True from a codec change (which ended the file) until the new file's
    /// [`Mp4Output::Init`] is polled. Callers may also just treat every `Init` as
    /// "start a new file".
    pub fn codecs_changed(&self) -> bool {
        self.changed
    }

    /// The next output, in file order.
    pub fn poll(&mut self) -> Option<Mp4Output> {
        let out = self.out.pop_front()?;
        if matches!(out, Mp4Output::Init(_)) {
            self.changed = false;
        }
        Some(out)
    }

    /// Ends the file: everything pending becomes the last fragment (each track's
    /// last sample taking the previous duration). If the init was still waiting
    /// (e.g. a stream shorter than [`TRACK_WAIT_MS`]) it is emitted first. Returns
    /// the next output; drain [`poll`](Self::poll) after it, as there may be two.
    /// Pushing after `finish` starts a new file with a new init.
    pub fn finish(&mut self) -> Option<Mp4Output> {
        if self.file.is_none() {
            let video = self.video_cfg.is_some() && !self.video.samples.is_empty();
            let audio = self.audio_cfg.is_some() && !self.audio.samples.is_empty();
            if video || audio {
                self.start_file(video, audio);
            }
        }
        self.end_file();
        self.poll()
    }

    /// RFC 6381 codecs of the current file (its last init), e.g.
    /// `avc1.64001f,mp4a.40.2`; `None` before the first init.
    pub fn codecs(&self) -> Option<String> {
        self.codecs.clone()
    }

    /// Media written to the current file so far, in ms (end of its last fragment,
    /// video track if any). Kept after [`finish`](Self::finish) or a codec change
    /// (the finished file's length) until the next init.
    pub fn media_ms(&self) -> u64 {
        self.media_ms
    }

    fn set_video_config(&mut self, cfg: VideoConfig) {
        if self.video_cfg.as_ref() != Some(&cfg) && self.file.is_none() {
            self.video.clear();
        }
        self.video_cfg = Some(cfg);
        self.split_if_changed();
    }

    fn set_audio_config(&mut self, cfg: AudioConfig) {
        if self.audio_cfg.as_ref() != Some(&cfg) && self.file.is_none() {
            self.audio.clear();
        }
        self.audio_cfg = Some(cfg);
        self.split_if_changed();
    }

    /// Ends the file if the known headers differ from the ones in its init.
    fn split_if_changed(&mut self) {
        let Some(file) = &self.file else { return };
        let video_differs = self.video_cfg.is_some() && file.video != self.video_cfg;
        let audio_differs = self.audio_cfg.is_some() && file.audio != self.audio_cfg;
        if video_differs || audio_differs {
            self.end_file();
            self.changed = true;
        }
    }

    fn queue(&mut self, kind: Kind) -> &mut Queue {
        match kind {
            Kind::Video => &mut self.video,
            Kind::Audio => &mut self.audio,
        }
    }

    fn push_sample(&mut self, kind: Kind, mut s: Sample) {
        // A track the file lacks, or a sample from before the file's start (audio
        // lagging the first keyframe), has no place in it.
        let in_file = match &self.file {
            None => true,
            Some(f) => {
                s.t >= f.base_t
                    && match kind {
                        Kind::Video => f.video.is_some(),
                        Kind::Audio => f.audio.is_some(),
                    }
            }
        };
        let pre_init = self.file.is_none();
        let q = self.queue(kind);
        let waiting_for_key = pre_init && kind == Kind::Video && q.samples.is_empty() && !s.key;
        if !in_file || waiting_for_key {
            return;
        }
        if let Some(last) = q.last_t {
            s.t = s.t.max(last + 1);
        }
        q.last_t = Some(s.t);
        let (t, key) = (s.t, s.key);
        q.push(s);
        if self.file.is_none() {
            self.bound_pending();
            self.try_start();
        } else {
            self.maybe_cut(kind, key, t);
        }
    }

    /// Before the init, keeps the queues within the fragment bounds: the oldest
    /// audio goes first; video that piles up without a start is dropped whole.
    fn bound_pending(&mut self) {
        if self.video.bytes > MAX_FRAGMENT_BYTES || self.queue_span(&self.video) > MAX_FRAGMENT_MS {
            self.video.clear(); // and wait for a keyframe again
        }
        while self.audio.bytes > MAX_FRAGMENT_BYTES || self.queue_span(&self.audio) > MAX_FRAGMENT_MS {
            self.audio.pop_front();
        }
    }

    fn queue_span(&self, q: &Queue) -> i64 {
        match (q.samples.front(), q.samples.back()) {
            (Some(a), Some(b)) => b.t - a.t,
            _ => 0,
        }
    }

    /// Span of everything pending, both tracks.
    fn pending_span(&self) -> i64 {
        let fronts = self.video.samples.front().into_iter().chain(self.audio.samples.front());
        let backs = self.video.samples.back().into_iter().chain(self.audio.samples.back());
        match (fronts.map(|s| s.t).min(), backs.map(|s| s.t).max()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }

    /// Starts the file once its tracks are settled (see the type's doc).
    fn try_start(&mut self) {
        let video_ready = self.video_cfg.is_some() && !self.video.samples.is_empty();
        let waited = self.pending_span() >= TRACK_WAIT_MS;
        if video_ready && (self.audio_cfg.is_some() || waited) {
            self.start_file(true, self.audio_cfg.is_some());
        } else if self.video_cfg.is_none() && self.audio_cfg.is_some() && waited {
            self.start_file(false, true);
        }
    }

    fn start_file(&mut self, with_video: bool, with_audio: bool) {
        let video = self.video_cfg.clone().filter(|_| with_video);
        let audio = self.audio_cfg.clone().filter(|_| with_audio);
        let base_t = match (video.is_some(), self.video.samples.front(), self.audio.samples.front()) {
            (true, Some(v), _) => v.t,
            (_, _, Some(a)) => a.t,
            _ => 0,
        };
        if video.is_none() {
            self.video.clear();
        }
        if audio.is_none() {
            self.audio.clear();
        }
        while self.audio.samples.front().is_some_and(|s| s.t < base_t) {
            self.audio.pop_front();
        }
        let init = boxes::init_segment(video.as_ref(), audio.as_ref());
        let codecs: Vec<&str> =
            video.iter().map(|v| v.codecs.as_str()).chain(audio.iter().map(|a| a.codecs.as_str())).collect();
        self.codecs = Some(codecs.join(","));
        self.out.push_back(Mp4Output::Init(Bytes::from(init)));
        self.file = Some(FileState { video, audio, base_t, sequence: 0, end_ms: 0 });
        self.media_ms = 0;
        self.replay_pending();
    }

    /// Feeds the samples queued while waiting for the init through the fragment
    /// cutting, in time order, so that waiting does not make a long first fragment.
    fn replay_pending(&mut self) {
        let mut pending: Vec<(Kind, Sample)> = Vec::with_capacity(self.video.samples.len() + self.audio.samples.len());
        pending.extend(self.video.samples.drain(..).map(|s| (Kind::Video, s)));
        pending.extend(self.audio.samples.drain(..).map(|s| (Kind::Audio, s)));
        (self.video.bytes, self.audio.bytes) = (0, 0);
        pending.sort_by_key(|(kind, s)| (s.t, *kind == Kind::Audio));
        for (kind, s) in pending {
            let (t, key) = (s.t, s.key);
            self.queue(kind).push(s);
            self.maybe_cut(kind, key, t);
        }
    }

    /// After a sample joined the file's queues: cut a fragment when it is due (a
    /// video keyframe `fragment_ms` after the fragment's start; audio-only: any
    /// frame) or too big / too long.
    fn maybe_cut(&mut self, kind: Kind, key: bool, t: i64) {
        let Some(file) = &self.file else { return };
        let has_video = file.video.is_some();
        let primary = if has_video { &self.video } else { &self.audio };
        let start = primary.samples.front().map_or(t, |s| s.t);
        let due = t - start >= i64::from(self.opts.fragment_ms)
            && if has_video { kind == Kind::Video && key } else { kind == Kind::Audio };
        // Per track: a stalled track's held sample must not force a cut per frame.
        let span = self.queue_span(&self.video).max(self.queue_span(&self.audio));
        let forced = self.video.bytes + self.audio.bytes > MAX_FRAGMENT_BYTES || span > MAX_FRAGMENT_MS;
        if due || forced {
            self.emit_fragment(false);
        }
    }

    /// Writes what is pending: with `all`, everything (end of file); otherwise all
    /// but each track's last sample, whose duration is not known yet.
    fn emit_fragment(&mut self, all: bool) {
        let Some(file) = &self.file else { return };
        let base_t = file.base_t;
        let mut runs = Vec::with_capacity(2);
        if file.video.is_some() {
            runs.push(take_run(&mut self.video, Kind::Video, VIDEO_TIMESCALE, base_t, all, DEFAULT_VIDEO_MS * 90));
        }
        if let Some(a) = &file.audio {
            runs.push(take_run(&mut self.audio, Kind::Audio, a.sample_rate, base_t, all, a.frame_samples));
        }
        let Some(primary) = runs.iter().find(|r| !r.samples.is_empty()) else { return };
        let scale = if primary.video {
            VIDEO_TIMESCALE
        } else {
            self.file.as_ref().and_then(|f| f.audio.as_ref()).map_or(1, |a| a.sample_rate)
        };
        let start_ms = ticks_to_ms(primary.base_dts, scale);
        let end_ms = ticks_to_ms(primary.base_dts + primary.duration(), scale);
        let Some(file) = self.file.as_mut() else { return };
        file.sequence = file.sequence.wrapping_add(1);
        file.end_ms = file.end_ms.max(end_ms);
        self.media_ms = file.end_ms;
        let data = Bytes::from(boxes::fragment(file.sequence, &runs));
        self.out.push_back(Mp4Output::Fragment { data, start_ms, duration_ms: end_ms - start_ms });
    }

    /// Flushes everything pending and closes the file.
    fn end_file(&mut self) {
        self.emit_fragment(true);
        self.file = None;
        self.video.clear();
        self.audio.clear();
        self.video.last_duration = None;
        self.audio.last_duration = None;
    }
}

/// Takes a track's samples for a fragment (see [`Fmp4Writer::emit_fragment`]) and
/// turns them into ticks from the file's start: durations from the next sample's
/// decode time, the lone last one's from the previous duration or `default`.
fn take_run(q: &mut Queue, kind: Kind, timescale: u32, base_t: i64, all: bool, default: u32) -> TrackRun {
    let ticks = |t: i64| ((t - base_t).max(0) as u64).saturating_mul(u64::from(timescale)) / 1000;
    let keep = usize::from(!all);
    let n = q.samples.len().saturating_sub(keep);
    let mut taken: Vec<Sample> = Vec::with_capacity(n);
    for _ in 0..n {
        taken.extend(q.pop_front());
    }
    let next_t = q.samples.front().map(|s| s.t);
    let mut samples = Vec::with_capacity(n);
    for (i, s) in taken.iter().enumerate() {
        let next = taken.get(i + 1).map(|n| n.t).or(next_t);
        let duration = match next {
            Some(nt) => u32::try_from(ticks(nt).saturating_sub(ticks(s.t))).unwrap_or(u32::MAX),
            None => q.last_duration.unwrap_or(default),
        };
        q.last_duration = Some(duration);
        let cts = if kind == Kind::Video { s.cts_ms.saturating_mul(90) } else { 0 };
        samples.push(FragSample { duration, cts, key: s.key, data: s.data.clone() });
    }
    let base_dts = taken.first().map_or(0, |s| ticks(s.t));
    let (track_id, video) = match kind {
        Kind::Video => (VIDEO_TRACK_ID, true),
        Kind::Audio => (AUDIO_TRACK_ID, false),
    };
    TrackRun { track_id, video, base_dts, samples }
}

#[cfg(test)]
mod tests;
