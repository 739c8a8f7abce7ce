//! A stream's recording at its home shard, without I/O: the frames a home stream
//! gives it become file operations ([`RecordOp`]) that the shard hands to the disk
//! writer thread. Files are fragmented MP4 (every fragment starts at a keyframe and
//! is playable on its own once written, so a crash loses at most the last one) or
//! FLV. A file is closed and the next one begun at a keyframe once it is longer or
//! larger than the spec allows; the recording stops at its byte budget (quotas), at
//! a write error (the writer thread raises the shared `failed` flag) or when told.
//! Each file's timestamps start at zero.

use crate::link::{RecordFormat, RecordSpec, RecordingFile, RecordingSummary};
use crate::proto::codec::MediaInfo;
use crate::proto::flv::{self, TagType};
use crate::proto::http::StreamName;
use crate::proto::mp4::{Fmp4Options, Fmp4Writer, FragmentInfo, Mp4Output, Scan};
use crate::stream::frame::{Frame, FrameKind};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Fragment length of recorded MP4 (a fragment is also an HLS VOD segment).
const FRAGMENT_MS: u32 = 2000;

/// What the disk writer does for a recording.
#[derive(Debug)]
pub enum RecordOp {
    /// Create the file (and its directory). `failed` is raised by the writer when a
    /// write fails; the recorder then stops.
    Open { file: RecordingFile, failed: Arc<AtomicBool> },
    /// Append to the file opened last for this recording.
    Write { data: Bytes },
    /// Close it and report it with `summary` (the writer fills in the byte count).
    Close { summary: RecordingSummary },
}

/// The codec headers and metadata a new file starts with.
#[derive(Default)]
struct Headers {
    video: Option<Arc<Frame>>,
    audio: Option<Arc<Frame>>,
    meta: Option<Arc<Frame>>,
}

enum Muxer {
    Mp4(Box<Fmp4Writer>),
    Flv { started: bool, last_ms: u64 },
}

/// One open file.
struct Part {
    muxer: Muxer,
    /// Its first frame's stream timestamp (the file's zero).
    base: Option<u32>,
    bytes: u64,
    /// MP4: where its init segment and fragments are (the VOD playlist's index).
    index: Scan,
}

pub struct Recorder {
    spec: RecordSpec,
    stream_name: StreamName,
    failed: Arc<AtomicBool>,
    headers: Headers,
    part: Option<Part>,
    /// Files begun so far (the next one's number).
    parts: u32,
    written: u64,
    stopped: bool,
    has_video: bool,
    /// The codecs, from the headers (what a closed file reports).
    info: MediaInfo,
}

impl Recorder {
    pub fn new(stream_name: &StreamName, spec: RecordSpec) -> Self {
        Recorder {
            spec,
            stream_name: stream_name.clone(),
            failed: Arc::new(AtomicBool::new(false)),
            headers: Headers::default(),
            part: None,
            parts: 0,
            written: 0,
            stopped: false,
            has_video: false,
            info: MediaInfo::default(),
        }
    }

    pub fn spec(&self) -> &RecordSpec {
        &self.spec
    }

    /// Whether it has stopped for good (error or budget): the home drops it.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// One frame of the stream's tag side (rebased timestamps).
    pub fn push(&mut self, frame: &Arc<Frame>, out: &mut Vec<RecordOp>) {
        if self.stopped {
            return;
        }
        if self.failed.load(Ordering::Relaxed) {
            // The writer reported the file closed with its error already.
            self.stopped = true;
            self.part = None;
            return;
        }
        if !matches!(frame.kind, FrameKind::Audio | FrameKind::Video | FrameKind::Data) {
            return;
        }
        if frame.header {
            match frame.kind {
                FrameKind::Video => {
                    let _ = self.info.update_from_video_tag(&frame.payload);
                    self.headers.video = Some(frame.clone());
                }
                FrameKind::Audio => {
                    let _ = self.info.update_from_audio_tag(&frame.payload);
                    self.headers.audio = Some(frame.clone());
                }
                _ => self.headers.meta = Some(frame.clone()),
            }
        }
        if frame.kind == FrameKind::Video {
            self.has_video = true;
        }
        // A file starts at a keyframe whose codec header is known (without video, at
        // any audio frame after its header).
        let starts_file = if self.has_video {
            frame.keyframe && self.headers.video.is_some()
        } else {
            frame.kind == FrameKind::Audio && !frame.header && self.headers.audio.is_some()
        };
        if self.part.is_none() {
            if !starts_file {
                return;
            }
            self.open(out);
        } else if starts_file && self.part_full() {
            self.close(out, None);
            self.open(out);
        }
        self.feed(frame, out);
        if self.written >= self.spec.budget_bytes {
            self.close(out, Some("the recording quota is used up".into()));
            self.stopped = true;
        }
    }

    /// Ends the recording (the broadcast ended, or the command said stop).
    pub fn finish(&mut self, out: &mut Vec<RecordOp>) {
        if !self.stopped && !self.failed.load(Ordering::Relaxed) {
            self.close(out, None);
        }
        self.stopped = true;
    }

    fn part_full(&self) -> bool {
        let Some(p) = &self.part else { return false };
        p.bytes >= self.spec.max_file_bytes || self.part_ms() >= self.spec.max_file_duration.as_millis() as u64
    }

    fn part_ms(&self) -> u64 {
        match &self.part {
            Some(Part { muxer: Muxer::Mp4(w), .. }) => w.media_ms(),
            Some(Part { muxer: Muxer::Flv { last_ms, .. }, .. }) => *last_ms,
            None => 0,
        }
    }

    fn open(&mut self, out: &mut Vec<RecordOp>) {
        let muxer = match self.spec.format {
            RecordFormat::Mp4 => Muxer::Mp4(Box::new(Fmp4Writer::new(Fmp4Options { fragment_ms: FRAGMENT_MS }))),
            RecordFormat::Flv => Muxer::Flv { started: false, last_ms: 0 },
        };
        self.begin(out, muxer, None);
        // The new file begins with the stream's codec headers.
        let headers: Vec<Arc<Frame>> =
            [&self.headers.meta, &self.headers.video, &self.headers.audio].into_iter().flatten().cloned().collect();
        for h in headers {
            self.feed(&h, out);
        }
    }

    /// Opens the next file of the recording, written by `muxer`.
    fn begin(&mut self, out: &mut Vec<RecordOp>, muxer: Muxer, base: Option<u32>) {
        self.parts += 1;
        let label =
            if self.parts == 1 { self.spec.label.clone() } else { format!("{}-{}", self.spec.label, self.parts) };
        let file = RecordingFile {
            room_id: self.spec.room_id,
            broadcast_id: self.spec.broadcast_id,
            stream_name: self.stream_name.clone(),
            path: format!("{}/{label}.{}", self.stream_name, self.spec.format.extension()),
            format: self.spec.format,
        };
        out.push(RecordOp::Open { file, failed: self.failed.clone() });
        self.part = Some(Part { muxer, base, bytes: 0, index: Scan::default() });
    }

    fn codecs(&self) -> Option<String> {
        let codecs: Vec<String> = [
            self.info.video.as_ref().and_then(|v| v.codecs.clone()),
            self.info.audio.as_ref().and_then(|a| a.codecs.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!codecs.is_empty()).then(|| codecs.join(","))
    }

    /// Muxes one frame into the open file.
    fn feed(&mut self, frame: &Arc<Frame>, out: &mut Vec<RecordOp>) {
        let Some(part) = &mut self.part else { return };
        // Headers (replayed at each file's start) take time zero; media count from
        // the file's first media frame.
        let ts = if frame.header {
            0
        } else {
            let base = *part.base.get_or_insert(frame.timestamp);
            frame.timestamp.wrapping_sub(base).min(i32::MAX as u32)
        };
        let mut data = vec![];
        let mut mp4_out = vec![];
        match &mut part.muxer {
            Muxer::Mp4(w) => {
                let res = match frame.kind {
                    FrameKind::Video => w.push_video(ts, &frame.payload),
                    FrameKind::Audio => w.push_audio(ts, &frame.payload),
                    _ => Ok(()),
                };
                if let Err(e) = res {
                    tracing::debug!(stream = %self.stream_name, error = %e, "recording: frame skipped");
                }
                mp4_out.extend(std::iter::from_fn(|| w.poll()));
            }
            Muxer::Flv { started, last_ms } => {
                let tag_type = match frame.kind {
                    FrameKind::Video => TagType::Video,
                    FrameKind::Audio => TagType::Audio,
                    _ => TagType::Script,
                };
                let mut buf = Vec::with_capacity(frame.payload.len() + 32);
                if !*started {
                    buf.extend_from_slice(&flv::writer::file_header(true, true));
                    *started = true;
                }
                if flv::writer::write_tag(&mut buf, tag_type, ts, &frame.payload).is_ok() {
                    *last_ms = (*last_ms).max(u64::from(ts));
                    data.push(Bytes::from(buf));
                }
            }
        }
        for d in data {
            self.write(d, out);
        }
        for o in mp4_out {
            // Each init segment begins a file: a second one in this file means the
            // codecs changed (a new publisher): the file ends, the writer goes on
            // in the next one.
            if matches!(o, Mp4Output::Init(_)) && self.part.as_ref().is_some_and(|p| p.index.init_len > 0) {
                self.next_file_same_writer(out);
            }
            let Some(part) = &mut self.part else { return };
            let d = part.index.note(part.bytes, o);
            self.write(d, out);
        }
    }

    fn write(&mut self, data: Bytes, out: &mut Vec<RecordOp>) {
        if let Some(part) = &mut self.part {
            part.bytes += data.len() as u64;
        }
        self.written += data.len() as u64;
        out.push(RecordOp::Write { data });
    }

    /// Closes the MP4 file and opens the next, moving the writer to it (its next
    /// output is the new file's init segment).
    fn next_file_same_writer(&mut self, out: &mut Vec<RecordOp>) {
        let Some(part) = self.part.take() else { return };
        let Muxer::Mp4(writer) = part.muxer else { return };
        let duration_ms = part.index.fragments.iter().map(|f| f.duration_ms).sum();
        let summary =
            RecordingSummary { duration_ms, codecs: self.codecs(), index: Some(part.index), ..Default::default() };
        out.push(RecordOp::Close { summary });
        self.begin(out, Muxer::Mp4(writer), part.base);
    }

    fn close(&mut self, out: &mut Vec<RecordOp>, error: Option<String>) {
        let Some(part) = self.part.take() else { return };
        let (duration_ms, index) = match part.muxer {
            Muxer::Mp4(mut w) => {
                // The last fragment (finish, then whatever else it queued).
                let last: Vec<Mp4Output> = w.finish().into_iter().chain(std::iter::from_fn(|| w.poll())).collect();
                let mut index = part.index;
                let mut at = part.bytes;
                for o in last {
                    let d = index.note(at, o);
                    at += d.len() as u64;
                    self.written += d.len() as u64;
                    out.push(RecordOp::Write { data: d });
                }
                (index.fragments.iter().map(|f| f.duration_ms).sum(), Some(index))
            }
            Muxer::Flv { last_ms, .. } => (last_ms, None),
        };
        let codecs = self.codecs();
        out.push(RecordOp::Close { summary: RecordingSummary { bytes: 0, duration_ms, codecs, error, index } });
    }
}

trait NoteOutput {
    /// Notes where an output lands (at `offset` in the file); returns its bytes.
    fn note(&mut self, offset: u64, o: Mp4Output) -> Bytes;
}

impl NoteOutput for Scan {
    fn note(&mut self, offset: u64, o: Mp4Output) -> Bytes {
        match o {
            Mp4Output::Init(b) => {
                self.init_len = b.len() as u64;
                self.valid_len = offset + b.len() as u64;
                b
            }
            Mp4Output::Fragment { data, start_ms, duration_ms } => {
                let len = data.len() as u64;
                self.fragments.push(FragmentInfo { offset, len, start_ms, duration_ms });
                self.valid_len = offset + len;
                data
            }
        }
    }
}

#[cfg(test)]
mod tests;
