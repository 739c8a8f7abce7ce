//! A live stream at its home shard, as a state machine without I/O: who publishes,
//! the timestamp rebase across publishers, the GOP cache, HLS segmenting, the
//! RTMP ⇄ WebRTC bridges and which shards mirror the stream. The shard feeds it
//! (`handle_*` with the time) and carries out what it asks for ([`HubOutput`],
//! drained with [`HomeStream::poll_output`]); the grace after a publisher leaves
//! is a deadline ([`HomeStream::poll_timeout`] / [`HomeStream::handle_timeout`]).
//! Nothing here sends, sleeps or reads a clock (the time, and a clock for the
//! bridges' CPU measurements, come from the shard), so every rule below has a unit
//! test that runs in microseconds.
//!
//! A stream has two sides: the *tag side* (media as FLV tags, for RTMP, HTTP-FLV,
//! WebSocket-FLV and HLS) and the *RTP side* (WebRTC). A publisher feeds one; the
//! other is bridged while someone watches it (`want_tags`, `want_rtp`).

use crate::link::RecordSpec;
use crate::link::{EngineEvent, RoomId, StreamInfo};
use crate::proto::codec::MediaInfo;
use crate::proto::hls::{HlsConfig, HlsError, HlsEvent, Segmenter};
use crate::proto::http::StreamName;
use crate::stream::bridge::{RtcToRtmp, RtmpToRtc};
use crate::stream::frame::{Frame, FrameKind};
use crate::stream::gop::{GopCache, JoinStart};
use crate::stream::record::{RecordOp, Recorder};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the WebRTC → RTMP bridge keeps running after its last RTMP/FLV player.
pub const TAGS_BRIDGE_LINGER: Duration = Duration::from_secs(15);
/// How long an HLS request keeps the WebRTC → RTMP bridge (which feeds HLS) running.
pub const HLS_BRIDGE_LINGER: Duration = Duration::from_secs(60);
/// The window the stream's bit rate is measured over.
pub const BITRATE_WINDOW: Duration = Duration::from_secs(5);
/// A new publisher's media starts this long after the previous one's last frame
/// (more than a frame at 30 fps: players that time frames in frame units would
/// otherwise see two in one slot).
pub const REBASE_GAP_MS: i64 = 40;

/// What a home stream is configured with (from the engine config).
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub gop_cache_bytes: usize,
    pub gop_cache_duration: Duration,
    pub join_start: JoinStart,
    /// A publisher silent this long may be replaced by a new one.
    pub idle_publisher_timeout: Duration,
    /// How long players wait for a publisher that left to come back.
    pub unpublish_grace: Duration,
    pub hls_fragment: Duration,
    pub hls_window: Duration,
    /// Whether HLS output is mirrored to disk (then [`HubOutput::HlsMirror`] carries
    /// each segmenter event with the playlist as it was).
    pub hls_mirror: bool,
    /// Run the WebRTC → RTMP bridge for every WebRTC publisher, watched or not.
    pub bridge_always: bool,
    /// Other nodes may relay this node's streams (cluster mode): the WebRTC → RTMP
    /// bridge then also carries the publisher's Opus (see `FrameKind::OpusTag`).
    pub relay_opus: bool,
}

impl HubConfig {
    fn segmenter(&self, name: &str) -> Segmenter {
        Segmenter::new(HlsConfig {
            fragment: self.hls_fragment,
            playlist_length: self.hls_window,
            uri_prefix: format!("{name}/"),
            ..Default::default()
        })
    }
}

/// What the home stream asks its shard to do.
#[derive(Debug)]
pub enum HubOutput {
    /// One frame, numbered, for every subscribing shard ([`HomeStream::subscribers`]).
    Frame { frame: Arc<Frame>, seq: u64 },
    /// Start a shard's mirror of the stream (`frames` empty: reset it, new headers follow).
    Snapshot { shard: usize, room_id: RoomId, frames: Vec<Arc<Frame>>, seq: u64 },
    /// Disconnect a replaced publisher (it went silent).
    Kick { shard: usize, pub_id: u64 },
    /// Tell the control plane.
    Event(EngineEvent),
    /// Ask the (WebRTC) publisher for a keyframe.
    RequestKeyframe,
    /// A segmenter event to mirror to disk, with the playlist after it.
    HlsMirror { event: HlsEvent, playlist: Bytes },
    /// The stream is over: these shards' players end.
    Ended { subscribers: Vec<usize> },
    /// A file operation of the stream's recording, for the disk writer.
    Record(RecordOp),
}

/// Why a publisher could not claim its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Another publisher holds the stream and is still sending.
    Taken,
    /// The stream's home shard did not answer in time (overloaded or stopping).
    HomeUnreachable,
}

impl std::fmt::Display for ClaimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClaimError::Taken => "the stream is already being published",
            ClaimError::HomeUnreachable => "the stream's shard did not answer",
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct PubRef {
    pub_id: u64,
    shard: usize,
    last_media: Instant,
    /// A relay from another node (cluster), not a publisher of this node.
    relay: bool,
}

/// Timestamp continuity across publishers: output = input + offset.
#[derive(Debug, Default)]
struct Rebase {
    offset: i64,
    /// Set on a new publisher: the next frame fixes the offset.
    pending: bool,
    last_out: Option<u32>,
    /// Last media timestamp out, per track (video, audio).
    track_last: [Option<u32>; 2],
    /// After a publisher change: the earliest time each track's first frame may
    /// take (its previous frame + [`REBASE_GAP_MS`]).
    floor: [Option<u32>; 2],
}

impl Rebase {
    fn new_publisher(&mut self) {
        self.pending = true;
        self.floor = self.track_last.map(|t| t.map(|t| t.saturating_add(REBASE_GAP_MS as u32)));
    }

    /// A new publisher's tracks may start apart from each other by its own clock
    /// (a bridged WebRTC publisher's second track is placed by its sender reports,
    /// possibly before the first): when a track's first frame would land before
    /// its floor, the whole clock moves on (a small forward step of the other track,
    /// never a step back of this one).
    fn apply_floor(&mut self, track: usize, out_ts: u32) -> u32 {
        match self.floor[track].take() {
            Some(f) if out_ts < f => {
                self.offset += (f - out_ts) as i64;
                f
            }
            _ => out_ts,
        }
    }

    /// The output timestamp of `frame` (and the bookkeeping for the next ones).
    fn map(&mut self, frame: &Frame) -> u32 {
        let out_ts = if self.pending {
            // The new publisher's first media frame fixes the offset; its codec headers,
            // which come first, are stamped where its media will start (not with the
            // old publisher's offset, which would put them seconds back).
            let target = self.last_out.map_or(0, |t| t as i64 + REBASE_GAP_MS);
            if !frame.header {
                self.offset = target - frame.timestamp as i64;
                self.pending = false;
            }
            target.clamp(0, u32::MAX as i64) as u32
        } else {
            (frame.timestamp as i64 + self.offset).clamp(0, u32::MAX as i64) as u32
        };
        let track = match frame.kind {
            FrameKind::Video => Some(0),
            FrameKind::Audio => Some(1),
            _ => None,
        };
        let out_ts = match track {
            Some(t) if !frame.header => self.apply_floor(t, out_ts),
            _ => out_ts,
        };
        if !frame.header {
            // The later of the tracks: a new publisher continues after both.
            self.last_out = Some(self.last_out.map_or(out_ts, |l| l.max(out_ts)));
            if let Some(t) = track {
                self.track_last[t] = Some(out_ts);
            }
        }
        out_ts
    }
}

/// One stream at its home shard.
pub struct HomeStream {
    /// The name, shared by every cross-shard frame message (no allocation per frame).
    name: StreamName,
    cfg: Arc<HubConfig>,
    room_id: RoomId,
    publisher: Option<PubRef>,
    cache: GopCache,
    subscribers: Vec<usize>,
    seq: u64,
    rebase: Rebase,
    info: MediaInfo,
    live: bool,
    /// The current (or last) publisher is a relay from another node.
    relayed: bool,
    /// When the stream ends if its publisher does not come back.
    grace_until: Option<Instant>,
    hls: Option<Segmenter>,
    /// Shards with WebRTC viewers of this stream.
    rtp_wanted: Vec<usize>,
    /// RTMP → WebRTC bridge, while someone watches over WebRTC.
    to_rtc: Option<RtmpToRtc>,
    /// How many RTMP → WebRTC bridges this stream has started (each numbers its RTP
    /// under SSRCs of its own).
    bridges_started: u32,
    /// Shards with RTMP/FLV players of this stream.
    tags_wanted: Vec<usize>,
    /// Last HLS request (keeps the WebRTC → HLS bridge running for a while).
    hls_requested: Option<Instant>,
    /// When the last RTMP/FLV player left (the bridge lingers: players reconnect,
    /// and a restarted bridge waits for a keyframe and leaves a gap in the timeline).
    tags_left: Option<Instant>,
    /// WebRTC → RTMP/FLV/HLS bridge, while someone watches that side.
    to_rtmp: Option<RtcToRtmp>,
    /// A WebRTC publisher's last RTCP sender reports (video, audio), for a bridge
    /// that starts later.
    last_sr: [Option<Arc<Frame>>; 2],
    /// When the current publisher started: the WebRTC → RTMP bridge's clock origin,
    /// so that a bridge stopped and started again (viewers left and came back)
    /// continues the timeline instead of restarting it.
    publisher_since: Instant,
    warnings: Vec<String>,
    /// Why this stream cannot be muxed to HLS, if it cannot.
    hls_error: Option<String>,
    started: Instant,
    bytes_in: u64,
    /// The publisher's bit rate over the last [`BITRATE_WINDOW`], once measured.
    bitrate: Option<u64>,
    /// Where the current bit-rate window started: (instant, `bytes_in` then).
    rate_mark: (Instant, u64),
    /// The recording, while the control plane wants one.
    recorder: Option<Recorder>,
    out: VecDeque<HubOutput>,
}

/// What `/stat` shows of a home stream.
#[derive(Debug, Clone)]
pub struct HomeView {
    pub room_id: RoomId,
    pub info: StreamInfo,
    pub uptime: Duration,
    pub bytes_in: u64,
    pub publishing: bool,
    pub hls_error: Option<String>,
    pub audio_transcode: Duration,
    pub bridges: Vec<&'static str>,
}

impl HomeStream {
    pub fn new(name: &StreamName, cfg: Arc<HubConfig>, now: Instant) -> Self {
        HomeStream {
            name: name.clone(),
            room_id: RoomId::default(),
            publisher: None,
            cache: GopCache::new(cfg.gop_cache_bytes, cfg.gop_cache_duration).with_start(cfg.join_start),
            subscribers: vec![],
            seq: 0,
            rebase: Rebase::default(),
            info: MediaInfo::default(),
            live: false,
            relayed: false,
            grace_until: None,
            hls: None,
            rtp_wanted: vec![],
            to_rtc: None,
            bridges_started: 0,
            tags_wanted: vec![],
            hls_requested: None,
            to_rtmp: None,
            last_sr: [None, None],
            publisher_since: now,
            tags_left: None,
            warnings: vec![],
            hls_error: None,
            started: now,
            bytes_in: 0,
            bitrate: None,
            rate_mark: (now, 0),
            recorder: None,
            out: VecDeque::new(),
            cfg,
        }
    }

    pub fn name(&self) -> &StreamName {
        &self.name
    }

    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn has_publisher(&self) -> bool {
        self.publisher.is_some()
    }

    /// Whether the stream's media comes (or last came) from another node's relay.
    pub fn relayed(&self) -> bool {
        self.relayed
    }

    /// The shards mirroring this stream.
    pub fn subscribers(&self) -> &[usize] {
        &self.subscribers
    }

    /// Nothing left to keep: no publisher, no subscriber, not live.
    pub fn is_unused(&self) -> bool {
        self.subscribers.is_empty() && self.publisher.is_none() && !self.live
    }

    /// The next thing for the shard to do.
    pub fn poll_output(&mut self) -> Option<HubOutput> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] must run next (the unpublish grace).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.grace_until
    }

    fn info_event(&mut self) {
        let mut info = stream_info(&self.info);
        info.warnings = self.warnings.clone();
        info.bitrate = self.bitrate;
        let (room_id, stream_name) = (self.room_id, self.name.clone());
        self.out.push_back(HubOutput::Event(EngineEvent::StreamInfo { room_id, stream_name, info }));
    }

    /// A publisher (its connection on `shard`) wants the stream. A new publisher
    /// takes over from one silent for `idle_publisher_timeout` (which is kicked);
    /// players stay and continue on one timeline. `ended_hls` is this stream's
    /// segmenter from a broadcast that ended lately, continued after a discontinuity.
    pub fn handle_claim(
        &mut self,
        now: Instant,
        room_id: RoomId,
        pub_id: u64,
        shard: usize,
        ended_hls: Option<Segmenter>,
        relay: bool,
    ) -> Result<(), ClaimError> {
        if let Some(p) = &self.publisher {
            // A publisher of this node replaces a relay at once (the stream moved here).
            let relay_replaced = p.relay && !relay;
            if !relay_replaced && now.saturating_duration_since(p.last_media) < self.cfg.idle_publisher_timeout {
                return Err(ClaimError::Taken);
            }
            tracing::info!(stream = %self.name, old = p.pub_id, new = pub_id, relay_replaced, "taking over from the publisher");
            self.out.push_back(HubOutput::Kick { shard: p.shard, pub_id: p.pub_id });
        }
        self.publisher = Some(PubRef { pub_id, shard, last_media: now, relay });
        let was_relayed = std::mem::replace(&mut self.relayed, relay);
        let was_live = self.live;
        self.grace_until = None;
        self.room_id = room_id;
        self.cache.reset();
        self.rebase.new_publisher();
        self.to_rtc = None;
        self.to_rtmp = None;
        self.last_sr = [None, None];
        self.publisher_since = now;
        if !self.live {
            self.started = now;
            self.bytes_in = 0;
            self.rate_mark = (now, 0);
            self.bitrate = None;
        }
        self.live = true;
        self.hls_error = None;
        match (&mut self.hls, ended_hls) {
            // A new publisher of a stream already being segmented: a discontinuity.
            (Some(seg), _) => seg.discontinuity(),
            (None, Some(mut seg)) => {
                seg.discontinuity();
                self.hls = Some(seg);
            }
            (None, None) => self.hls = Some(self.cfg.segmenter(&self.name)),
        }
        // Subscribers reset their mirrors (new headers follow); players stay connected.
        for &s in &self.subscribers {
            self.out.push_back(HubOutput::Snapshot { shard: s, room_id, frames: vec![], seq: self.seq });
        }
        let stream_name = self.name.clone();
        if !relay {
            self.out.push_back(HubOutput::Event(EngineEvent::PublishStarted { room_id, stream_name }));
        } else if was_live && !was_relayed {
            // A relay after a publisher of this node (it moved away within the grace):
            // the local broadcast is over for this node's control plane.
            self.out.push_back(HubOutput::Event(EngineEvent::PublishEnded { room_id, stream_name }));
        }
        Ok(())
    }

    /// A publisher's frame, arrived at `now`. `publisher_sends_h264` tells, when
    /// asked, whether a WebRTC publisher's video is H.264 (the WebRTC → RTMP bridge
    /// needs it); `clock` gives the time for the bridges' CPU measurements.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        clock: &dyn Fn() -> Instant,
        pub_id: u64,
        frame: Arc<Frame>,
        publisher_sends_h264: &dyn Fn() -> bool,
    ) {
        match &mut self.publisher {
            Some(p) if p.pub_id == pub_id => p.last_media = now,
            _ => return, // a replaced publisher's late frame
        }
        self.bytes_in += frame.len() as u64;
        // The bit rate, every window; the control plane hears of a change of more
        // than a tenth (room `media.bitrate`).
        let elapsed = now.saturating_duration_since(self.rate_mark.0);
        if elapsed >= BITRATE_WINDOW {
            let rate = self.bytes_in.saturating_sub(self.rate_mark.1) * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.rate_mark = (now, self.bytes_in);
            if self.bitrate.is_none_or(|old| rate.abs_diff(old) * 10 > old) {
                self.bitrate = Some(rate);
                self.info_event();
            }
        }
        if !frame.is_rtp() {
            self.home_tag(clock, frame);
            return;
        }
        if frame.as_sender_report().is_some() {
            self.last_sr[usize::from(frame.kind == FrameKind::RtpAudio)] = Some(frame.clone());
        }
        // WebRTC → RTMP/FLV/HLS, only while someone watches that side.
        if self.tags_needed(now) {
            let mut want_keyframe = false;
            let (last_sr, origin, relay_opus) = (&self.last_sr, self.publisher_since, self.cfg.relay_opus);
            let bridge = self.to_rtmp.get_or_insert_with(|| {
                want_keyframe = true;
                let mut b = RtcToRtmp::new(origin, publisher_sends_h264()).with_opus_tags(relay_opus);
                for sr in last_sr.iter().flatten() {
                    b.push(now, clock, sr, &mut vec![]);
                }
                b
            });
            let mut tags = vec![];
            want_keyframe |= bridge.push(now, clock, &frame, &mut tags);
            let w = bridge.warnings();
            if want_keyframe {
                self.out.push_back(HubOutput::RequestKeyframe);
            }
            if w != self.warnings {
                self.warnings = w;
                self.info_event();
            }
            for f in tags {
                self.home_tag(clock, Arc::new(f));
            }
        } else if self.to_rtmp.take().is_some() {
            tracing::info!(stream = %self.name, "WebRTC → RTMP bridge stopped: no viewers on that side");
            // Its GOP goes too, here and in the mirrors: the next player would
            // otherwise start on stale frames followed by a jump to the live ones of
            // the next bridge (ffmpeg then mistimes the stream).
            self.cache.reset();
            for &s in &self.subscribers {
                self.out.push_back(HubOutput::Snapshot {
                    shard: s,
                    room_id: self.room_id,
                    frames: vec![],
                    seq: self.seq,
                });
            }
        }
        // Sender reports stop here (the bridge's clock); WebRTC viewers get the
        // engine's own.
        if frame.as_sender_report().is_none() {
            self.forward(frame);
        }
    }

    fn forward(&mut self, frame: Arc<Frame>) {
        self.seq += 1;
        self.out.push_back(HubOutput::Frame { frame, seq: self.seq });
    }

    /// Whether FLV-side output (RTMP/FLV players, HLS) is wanted for a WebRTC stream.
    fn tags_needed(&self, now: Instant) -> bool {
        self.cfg.bridge_always
            || !self.tags_wanted.is_empty()
            || self.hls_requested.is_some_and(|t| now.saturating_duration_since(t) < HLS_BRIDGE_LINGER)
            || self.tags_left.is_some_and(|t| now.saturating_duration_since(t) < TAGS_BRIDGE_LINGER)
    }

    /// One FLV-tag frame: timestamp rebase, codec info, GOP cache, HLS, and the
    /// RTMP → WebRTC bridge while WebRTC viewers exist.
    fn home_tag(&mut self, clock: &dyn Fn() -> Instant, frame: Arc<Frame>) {
        // Rebase timestamps so that players see one continuous clock across publishers.
        let out_ts = self.rebase.map(&frame);
        let frame = if out_ts != frame.timestamp { Arc::new(frame.with_timestamp(out_ts)) } else { frame };
        if frame.header {
            let changed = match frame.kind {
                FrameKind::Video => self.info.update_from_video_tag(&frame.payload).unwrap_or(false),
                FrameKind::Audio => self.info.update_from_audio_tag(&frame.payload).unwrap_or(false),
                _ => false,
            };
            if changed {
                self.info_event();
            }
        }
        self.cache.push(&frame);
        self.segment(&frame);
        self.record(&frame);
        self.forward(frame.clone());
        // RTMP → WebRTC, only while WebRTC viewers exist (never for frames that came
        // from WebRTC in the first place).
        if !self.rtp_wanted.is_empty() && self.to_rtmp.is_none() {
            let mut start = vec![];
            let cache = &self.cache;
            let bridge = self.to_rtc.get_or_insert_with(|| {
                self.bridges_started = self.bridges_started.wrapping_add(1);
                let mut b = RtmpToRtc::numbered(self.bridges_started);
                // Start from the codec headers and the cached GOP (a keyframe first).
                for f in cache.snapshot() {
                    if !Arc::ptr_eq(&f, &frame) {
                        b.push(clock, &f, &mut start);
                    }
                }
                b
            });
            let mut rtp = vec![];
            let warned = bridge.push(clock, &frame, &mut rtp);
            let w = warned.then(|| bridge.warnings());
            for f in start.into_iter().chain(rtp) {
                self.forward(Arc::new(f));
            }
            if let Some(w) = w {
                self.warnings = w;
                self.info_event();
            }
        }
    }

    fn record(&mut self, frame: &Arc<Frame>) {
        let Some(r) = &mut self.recorder else { return };
        let mut ops = vec![];
        r.push(frame, &mut ops);
        if r.is_stopped() {
            self.recorder = None;
        }
        self.out.extend(ops.into_iter().map(HubOutput::Record));
    }

    /// Start recording (`Some`) or stop (`None`). A recording of the same
    /// broadcast goes on untouched; a new one starts from the cached GOP (headers
    /// and the frames since the last keyframe), so it misses nothing of it.
    pub fn handle_record(&mut self, spec: Option<RecordSpec>) {
        if let (Some(r), Some(spec)) = (&self.recorder, &spec)
            && r.spec().broadcast_id == spec.broadcast_id
        {
            return;
        }
        let mut ops = vec![];
        if let Some(mut r) = self.recorder.take() {
            r.finish(&mut ops);
        }
        if let Some(spec) = spec
            && self.live
        {
            let mut r = Recorder::new(&self.name, spec);
            for f in self.cache.snapshot() {
                r.push(&f, &mut ops);
            }
            self.recorder = Some(r);
        }
        self.out.extend(ops.into_iter().map(HubOutput::Record));
    }

    /// Whether the stream is being recorded (for `/stat`).
    pub fn recording(&self) -> bool {
        self.recorder.is_some()
    }

    fn segment(&mut self, frame: &Frame) {
        let (Some(seg), None) = (&mut self.hls, &self.hls_error) else { return };
        let kind = match frame.kind {
            FrameKind::Video => crate::proto::Track::Video,
            FrameKind::Audio => crate::proto::Track::Audio,
            _ => return,
        };
        if let Err(e) = seg.push_flv_tag(kind, frame.timestamp, &frame.payload) {
            if matches!(e, HlsError::UnsupportedCodec(_)) {
                tracing::warn!(stream = %self.name, error = %e, "HLS unavailable for this stream");
                self.hls_error = Some(e.to_string());
            } else {
                tracing::debug!(stream = %self.name, error = %e, "HLS: frame skipped");
            }
        }
        self.drain_segmenter();
    }

    fn drain_segmenter(&mut self) {
        let Some(seg) = &mut self.hls else { return };
        while let Some(event) = seg.poll_event() {
            if self.cfg.hls_mirror {
                self.out.push_back(HubOutput::HlsMirror { event, playlist: seg.playlist() });
            }
        }
    }

    /// The publisher's connection ended: players wait `unpublish_grace` for it (or
    /// another) to come back.
    pub fn handle_publisher_gone(&mut self, now: Instant, pub_id: u64) {
        if !self.publisher.is_some_and(|p| p.pub_id == pub_id) {
            return;
        }
        self.publisher = None;
        if self.live {
            self.grace_until = Some(now + self.cfg.unpublish_grace);
        }
    }

    /// Time passed: a grace that ran out ends the stream ([`HubOutput::Ended`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.grace_until {
            Some(t) if now >= t => {}
            _ => return,
        }
        self.grace_until = None;
        if self.publisher.is_some() || !self.live {
            return;
        }
        tracing::info!(stream = %self.name, "publisher gone; stream ended");
        let (room_id, stream_name) = (self.room_id, self.name.clone());
        if !self.relayed {
            self.out.push_back(HubOutput::Event(EngineEvent::PublishEnded { room_id, stream_name }));
        }
        let subscribers = std::mem::take(&mut self.subscribers);
        self.out.push_back(HubOutput::Ended { subscribers });
    }

    /// The stream is over (grace ran out, or the control plane dropped it): not
    /// live, and its segmenter, finished with `#EXT-X-ENDLIST`, is handed back so
    /// that players keep seeing the end for the playlist's length.
    pub fn finish(&mut self) -> Option<Segmenter> {
        self.live = false;
        self.grace_until = None;
        if let Some(mut r) = self.recorder.take() {
            let mut ops = vec![];
            r.finish(&mut ops);
            self.out.extend(ops.into_iter().map(HubOutput::Record));
        }
        let mut seg = self.hls.take()?;
        seg.end();
        while let Some(event) = seg.poll_event() {
            if self.cfg.hls_mirror {
                self.out.push_back(HubOutput::HlsMirror { event, playlist: seg.playlist() });
            }
        }
        Some(seg)
    }

    /// `shard` mirrors the stream now; it gets the current start when live.
    pub fn subscribe(&mut self, shard: usize) {
        if !self.subscribers.contains(&shard) {
            self.subscribers.push(shard);
        }
        if self.live {
            let (room_id, frames, seq) = (self.room_id, self.cache.snapshot(), self.seq);
            self.out.push_back(HubOutput::Snapshot { shard, room_id, frames, seq });
        }
    }

    pub fn unsubscribe(&mut self, shard: usize) {
        self.subscribers.retain(|s| *s != shard);
    }

    /// `shard` has (`want`) or no longer has RTMP/FLV players.
    pub fn want_tags(&mut self, now: Instant, shard: usize, want: bool) {
        self.tags_wanted.retain(|s| *s != shard);
        if want {
            self.tags_wanted.push(shard);
        } else if self.tags_wanted.is_empty() {
            self.tags_left = Some(now);
        }
    }

    /// `shard` has (`want`) or no longer has WebRTC viewers.
    pub fn want_rtp(&mut self, shard: usize, want: bool) {
        self.rtp_wanted.retain(|s| *s != shard);
        if want {
            self.rtp_wanted.push(shard);
        } else if self.rtp_wanted.is_empty() {
            // Nobody watches over WebRTC: stop bridging (and transcoding).
            self.to_rtc = None;
        }
    }

    /// An HLS request came (it keeps the WebRTC → RTMP bridge, which feeds HLS, running).
    pub fn hls_requested(&mut self, now: Instant) {
        self.hls_requested = Some(now);
    }

    /// The live stream's segmenter, or why it has none.
    pub fn hls(&self) -> Result<Option<&Segmenter>, &str> {
        match &self.hls_error {
            Some(e) => Err(e),
            None => Ok(self.hls.as_ref()),
        }
    }

    /// The HLS target duration, once the segmenter knows it.
    pub fn hls_target_secs(&self) -> Option<u64> {
        self.hls.as_ref().map(|s| s.target_duration_secs())
    }

    pub fn view(&self, now: Instant) -> HomeView {
        HomeView {
            room_id: self.room_id,
            info: stream_info(&self.info),
            uptime: now.saturating_duration_since(self.started),
            bytes_in: self.bytes_in,
            publishing: self.publisher.is_some(),
            hls_error: self.hls_error.clone(),
            audio_transcode: self.to_rtc.as_ref().map_or(Duration::ZERO, |b| b.audio_cpu)
                + self.to_rtmp.as_ref().map_or(Duration::ZERO, |b| b.audio_cpu),
            bridges: [
                self.to_rtc.as_ref().map(|_| "rtmp->webrtc"),
                self.to_rtmp.as_ref().map(|_| "webrtc->rtmp"),
                // A relayed WebRTC stream's Opus goes to WebRTC viewers as it came.
                self.to_rtc.as_ref().filter(|b| b.passing_opus()).map(|_| "opus-relayed"),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }
}

/// The codec summary the control plane gets.
pub fn stream_info(media: &MediaInfo) -> StreamInfo {
    StreamInfo {
        video_codec: media.video.as_ref().map(|v| v.codec.name().to_owned()),
        width: media.video.as_ref().map(|v| v.width).filter(|w| *w > 0),
        height: media.video.as_ref().map(|v| v.height).filter(|h| *h > 0),
        fps: media.video.as_ref().and_then(|v| v.fps),
        audio_codec: media.audio.as_ref().map(|a| a.codec.name().to_owned()),
        audio_sample_rate: media.audio.as_ref().map(|a| a.sample_rate).filter(|r| *r > 0),
        audio_channels: media.audio.as_ref().map(|a| a.channels).filter(|c| *c > 0),
        bitrate: None,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests;
