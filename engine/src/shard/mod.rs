//! One shard: the streams homed here, the local players of any stream, and the
//! cross-shard messages that move media between them.
//!
//! A stream's *home* shard (hash of its name) owns its publisher state, GOP cache
//! and timestamp rebasing. Every shard with players of the stream *subscribes* to
//! the home and keeps a mirror of its GOP cache, so a new player starts at once
//! from local memory. The home sends each frame once to each subscribed shard (an
//! `Arc` clone through that shard's bounded inbox); shards fan out locally.

pub mod disk;
mod shared;
pub use shared::{Admission, EngineShared, PendingCounts, PublisherCodecs, StartError};

use crate::fanout::player::{Player, PlayerEnd};
use crate::link::{Command, EngineEvent, Protocol, RoomId, StreamAnswer};
use crate::proto::http::StreamName;
use crate::stats::{ClientSnap, DropFilter, HomeSnap, ShardSnapshot, ShardStats};
use crate::stream::frame::Frame;
use crate::stream::gop::GopCache;
pub use crate::stream::hub::ClaimError;
use crate::stream::hub::{HomeStream, HubConfig, HubOutput};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub type Reply<T> = futures_channel::oneshot::Sender<T>;

/// What a layer above the shard does for it: the shard's streams need the WebRTC
/// sessions (which live above, in `rtc`) now and then.
pub trait ShardHooks {
    /// Ask `name`'s WebRTC publisher, if it is on this shard, for a keyframe.
    fn request_keyframe(&self, shard: &Shard, name: &StreamName);
    /// The control plane dropped `name`: end its WebRTC sessions on this shard.
    fn stream_dropped(&self, shard: &Rc<Shard>, name: &StreamName);
    /// Pull `name` from another node's HTTP media port `origin` (cluster relay);
    /// called on the stream's home shard when no relay of it runs here.
    fn start_relay(&self, shard: &Rc<Shard>, name: &StreamName, origin: std::net::SocketAddr, room_id: RoomId);
    /// Push `name` to exactly these destinations (restreaming); called on the
    /// stream's home shard.
    fn set_forwards(
        &self,
        shard: &Rc<Shard>,
        name: &StreamName,
        room_id: RoomId,
        targets: Vec<crate::link::ForwardTarget>,
    );
}

/// Mirrors a home stream's HLS output to `hls.path` (when set): segment files and
/// the playlist, removing segments that left memory. Small synchronous writes on
/// the home shard.
fn mirror_hls(path: &str, name: &str, ev: &crate::proto::hls::HlsEvent, playlist: &[u8]) {
    use crate::proto::hls::HlsEvent;
    if path.is_empty() {
        return;
    }
    let dir = std::path::Path::new(path).join(name);
    let write_playlist = || -> std::io::Result<()> {
        let tmp = std::path::Path::new(path).join(format!(".{name}.m3u8.tmp"));
        std::fs::write(&tmp, playlist)?;
        std::fs::rename(&tmp, std::path::Path::new(path).join(format!("{name}.m3u8")))
    };
    let res = match ev {
        HlsEvent::SegmentCompleted { seq, data, .. } => std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join(format!("{seq}.ts")), data))
            .and_then(|()| write_playlist()),
        HlsEvent::SegmentRemoved { seq, .. } => {
            let _ = std::fs::remove_file(dir.join(format!("{seq}.ts")));
            Ok(())
        }
        _ => write_playlist(),
    };
    if let Err(e) = res {
        tracing::warn!(stream = %name, error = %e, "cannot mirror HLS to disk");
    }
}

/// The home streams' settings, from the engine config.
fn hub_config(config: &crate::config::EngineConfig) -> HubConfig {
    HubConfig {
        gop_cache_bytes: config.gop_cache_bytes,
        gop_cache_duration: config.gop_cache_duration,
        join_start: config.join_start,
        idle_publisher_timeout: config.idle_publisher_timeout,
        unpublish_grace: config.unpublish_grace,
        hls_fragment: config.hls_fragment,
        hls_window: config.hls_window,
        hls_mirror: !config.hls_path.is_empty(),
        bridge_always: config.webrtc_bridge_always,
        relay_opus: !config.relay_token.is_empty(),
    }
}

/// Messages between shards (and commands from the control plane).
pub enum ShardMsg {
    Command(Command),
    /// To the home: a publisher (on `shard`) wants the stream.
    Claim {
        name: StreamName,
        room_id: RoomId,
        pub_id: u64,
        shard: usize,
        /// A relay from another node (cluster): no PublishStarted/Ended, and a local
        /// publisher takes the stream from it at once.
        relay: bool,
        reply: Reply<Result<(), ClaimError>>,
    },
    /// To the home: pull `name` from the node whose HTTP media port is `origin`.
    Relay {
        name: StreamName,
        origin: std::net::SocketAddr,
        room_id: RoomId,
    },
    /// To the home: a publisher's media.
    PublisherFrame {
        name: StreamName,
        pub_id: u64,
        frame: Arc<Frame>,
    },
    /// To the home: a publisher's connection ended.
    PublisherGone {
        name: StreamName,
        pub_id: u64,
    },
    /// To the home: `shard` has players (or waiting players) of `name`.
    Subscribe {
        name: StreamName,
        shard: usize,
    },
    Unsubscribe {
        name: StreamName,
        shard: usize,
    },
    /// Home → subscriber: the stream's current start (headers + GOP).
    Snapshot {
        name: StreamName,
        room_id: RoomId,
        frames: Vec<Arc<Frame>>,
        seq: u64,
    },
    /// Home → subscriber: one frame.
    Frame {
        name: StreamName,
        frame: Arc<Frame>,
        seq: u64,
    },
    /// Home → subscriber: the stream is over.
    StreamEnded {
        name: StreamName,
    },
    /// Home → a publisher's shard: disconnect it (replaced after going silent).
    Kick {
        pub_id: u64,
    },
    /// To the home: an HLS playlist (`seq: None`) or segment, for `client` (counted
    /// as a viewer session, see `hls_viewers`).
    Hls {
        name: StreamName,
        seq: Option<u64>,
        client: Option<crate::fanout::hls_viewers::HlsClient>,
        reply: Reply<HlsAnswer>,
    },
    /// To every shard: what it holds, for /stat.
    Stats {
        reply: Reply<ShardSnapshot>,
    },
    /// To every shard: drop matching clients; replies with the count.
    DropClients {
        filter: DropFilter,
        reply: Reply<usize>,
    },
    /// Work of a layer above the shard (creating or ending a WebRTC session) to run
    /// on this shard's thread.
    Run(Box<dyn FnOnce(&Rc<Shard>) + Send>),
    /// To the home: a subscriber wants a keyframe from the publisher.
    KeyframeRequest {
        name: StreamName,
    },
    /// To the home: `shard` has (`want`) or no longer has WebRTC viewers of `name`.
    WantRtp {
        name: StreamName,
        shard: usize,
        want: bool,
    },
    /// To the home: `shard` has (`want`) or no longer has RTMP/FLV players of `name`.
    WantTags {
        name: StreamName,
        shard: usize,
        want: bool,
    },
}

/// The home's answer to an HLS request.
#[derive(Debug)]
pub enum HlsAnswer {
    Found(bytes::Bytes),
    /// The stream is not live here (and has no recent HLS).
    NoStream,
    /// The stream is live but its codecs cannot go into MPEG-TS (reason).
    Unsupported(String),
    /// The stream is live but the segment is not (or no longer) there.
    NoSegment,
}

/// A local publisher connection, so that it can be kicked.
pub struct PublisherCtl {
    pub name: StreamName,
    pub fd: i32,
    pub kicked: std::cell::Cell<bool>,
    pub id: std::cell::Cell<u64>,
    pub addr: std::net::SocketAddr,
    pub protocol: crate::link::Protocol,
    pub started: Instant,
    pub bytes_in: std::cell::Cell<u64>,
}

impl PublisherCtl {
    pub fn kick(&self) {
        self.kicked.set(true);
        // A socket we own; the fd stays open until the task drops it.
        crate::net::sys::shutdown(self.fd);
    }
}

struct SubStream {
    room_id: RoomId,
    players: Vec<Rc<Player>>,
    /// How many of `players` are WebRTC viewers.
    rtc_players: usize,
    /// How many are RTMP/FLV players.
    tag_players: usize,
    cache: GopCache,
    /// The RTMP/FLV players that are in step: a frame is queued once for them all
    /// (none without a merge window: there is no tick).
    cohort: Option<Rc<crate::fanout::player::Cohort>>,
    live: bool,
    waiting: usize,
    next_seq: u64,
}

#[derive(Default)]
struct State {
    /// Ended streams' HLS, kept for a while so that players see EXT-X-ENDLIST.
    ended_hls: HashMap<StreamName, (crate::proto::hls::Segmenter, Instant)>,
    homes: HashMap<StreamName, HomeStream>,
    subs: HashMap<StreamName, SubStream>,
    publishers: HashMap<u64, Rc<PublisherCtl>>,
    /// HLS viewer sessions of the streams homed here.
    hls_viewers: crate::fanout::hls_viewers::HlsViewers,
    /// Streams homed here that a relay task is pulling from another node.
    relays: std::collections::HashSet<StreamName>,
}

pub struct Shard {
    pub index: usize,
    pub shared: Arc<EngineShared>,
    /// What every home stream of this shard is configured with.
    hub_cfg: Arc<HubConfig>,
    /// What the layers above do for the shard (WebRTC sessions).
    hooks: Box<dyn ShardHooks>,
    state: RefCell<State>,
    /// Where RTMP players' input is watched, swept by the flush tick; `None` when
    /// there is no tick (merge window 0) or no epoll: players then keep a read.
    pub input_watch: Option<Rc<crate::net::input_watch::InputWatch>>,
}

/// Why a play request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayError {
    NotFound,
    ShuttingDown,
}

impl Shard {
    pub fn stats(&self) -> &ShardStats {
        &self.shared.stats[self.index]
    }

    /// A shard for this thread (registered for the tasks its methods spawn).
    pub fn new(
        index: usize,
        shared: Arc<EngineShared>,
        input_watch: Option<Rc<crate::net::input_watch::InputWatch>>,
        hooks: Box<dyn ShardHooks>,
    ) -> Rc<Shard> {
        let hub_cfg = Arc::new(hub_config(&shared.cfg));
        let shard =
            Rc::new(Shard { index, shared, hub_cfg, hooks, state: RefCell::new(State::default()), input_watch });
        SHARD.with(|s| *s.borrow_mut() = Some(shard.clone()));
        shard
    }

    /// Ends every player (stream ended) and every publisher: the engine stops.
    pub fn end_everything(&self) {
        let st = self.state.borrow();
        for s in st.subs.values() {
            for p in &s.players {
                p.end(PlayerEnd::StreamEnded);
            }
        }
        for p in st.publishers.values() {
            p.kick();
        }
    }

    fn to(&self, shard: usize, msg: ShardMsg) {
        if shard == self.index {
            // Local delivery is synchronous (and never re-enters a borrow: callers drop theirs first).
            self.handle(msg);
        } else if !self.shared.send(shard, msg) {
            self.stats().dropped_frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn handle(&self, msg: ShardMsg) {
        match msg {
            ShardMsg::Command(Command::DropStream { stream_name }) => self.drop_stream(&stream_name),
            ShardMsg::Command(Command::Record { stream_name, spec }) => self.record(&stream_name, spec),
            ShardMsg::Command(Command::EndViewers { stream_name }) => self.end_viewers(&stream_name),
            ShardMsg::Command(Command::Shutdown) => {}
            ShardMsg::Command(Command::SetForwards { stream_name, room_id, targets }) => {
                if self.shared.home_of(&stream_name) == self.index {
                    self.hooks.set_forwards(&self.self_rc(), &stream_name, room_id, targets);
                }
            }
            ShardMsg::Claim { name, room_id, pub_id, shard, relay, reply } => {
                let r = self.claim(&name, room_id, pub_id, shard, relay);
                let _ = reply.send(r);
            }
            ShardMsg::Relay { name, origin, room_id } => {
                let start = {
                    let mut st = self.state.borrow_mut();
                    let local = st.homes.get(&name).is_some_and(|h| h.has_publisher() && !h.relayed());
                    !local && st.relays.insert(name.clone())
                };
                if start {
                    self.hooks.start_relay(&self.self_rc(), &name, origin, room_id);
                }
            }
            ShardMsg::PublisherFrame { name, pub_id, frame } => self.home_frame(&name, pub_id, frame),
            ShardMsg::PublisherGone { name, pub_id } => self.publisher_gone(&name, pub_id),
            ShardMsg::Subscribe { name, shard } => self.subscribe(&name, shard),
            ShardMsg::Unsubscribe { name, shard } => {
                let mut st = self.state.borrow_mut();
                if let Some(h) = st.homes.get_mut(&name) {
                    h.unsubscribe(shard);
                    if h.is_unused() {
                        st.homes.remove(&name);
                    }
                }
            }
            ShardMsg::Snapshot { name, room_id, frames, seq } => {
                let mut st = self.state.borrow_mut();
                let Some(s) = st.subs.get_mut(&name) else { return };
                s.cache.reset();
                for f in &frames {
                    s.cache.push(f);
                }
                s.room_id = room_id;
                s.live = true;
                s.next_seq = seq;
            }
            ShardMsg::Frame { name, frame, seq } => self.deliver(&name, &frame, seq),
            ShardMsg::StreamEnded { name } => {
                let mut st = self.state.borrow_mut();
                if let Some(mut s) = st.subs.remove(&name) {
                    for p in s.players.drain(..) {
                        p.end(PlayerEnd::StreamEnded);
                    }
                    // Players still waiting keep an (empty, not live) entry.
                    if s.waiting > 0 {
                        s.live = false;
                        s.cache.reset();
                        st.subs.insert(name.clone(), s);
                        drop(st);
                        self.to(self.shared.home_of(&name), ShardMsg::Subscribe { name, shard: self.index });
                    }
                }
            }
            ShardMsg::Kick { pub_id } => {
                if let Some(p) = self.state.borrow().publishers.get(&pub_id) {
                    p.kick();
                }
            }
            ShardMsg::Hls { name, seq, client, reply } => {
                let a = self.hls_answer(&name, seq);
                if let (HlsAnswer::Found(b), Some(c)) = (&a, &client) {
                    self.hls_viewer(&name, c, b.len() as u64);
                }
                let _ = reply.send(a);
            }
            ShardMsg::Stats { reply } => {
                let _ = reply.send(self.snapshot());
            }
            ShardMsg::DropClients { filter, reply } => {
                let _ = reply.send(self.drop_clients(&filter));
            }
            ShardMsg::Run(work) => work(&self.self_rc()),
            ShardMsg::KeyframeRequest { name } => self.hooks.request_keyframe(self, &name),
            ShardMsg::WantTags { name, shard, want } => {
                let mut st = self.state.borrow_mut();
                self.home_entry(&mut st, &name).want_tags(Instant::now(), shard, want);
            }
            ShardMsg::WantRtp { name, shard, want } => {
                let mut st = self.state.borrow_mut();
                self.home_entry(&mut st, &name).want_rtp(shard, want);
            }
        }
    }

    fn hls_answer(&self, name: &StreamName, seq: Option<u64>) -> HlsAnswer {
        if let Some(h) = self.state.borrow_mut().homes.get_mut(name) {
            h.hls_requested(Instant::now());
        }
        let st = self.state.borrow();
        let seg = match st.homes.get(name) {
            Some(h) if h.is_live() => match h.hls() {
                Ok(seg) => seg,
                Err(e) => return HlsAnswer::Unsupported(e.to_owned()),
            },
            _ => st.ended_hls.get(name).map(|(s, _)| s),
        };
        let Some(seg) = seg else { return HlsAnswer::NoStream };
        match seq {
            None if seg.playlist_segment_count() == 0 => HlsAnswer::NoSegment,
            None => HlsAnswer::Found(seg.playlist()),
            Some(n) => seg.segment(n).map_or(HlsAnswer::NoSegment, HlsAnswer::Found),
        }
    }

    /// Counts an answered HLS request of a live stream homed here: its client's
    /// session is refreshed, or joins (a viewer of the room, like any player).
    fn hls_viewer(&self, name: &StreamName, client: &crate::fanout::hls_viewers::HlsClient, bytes: u64) {
        let joined = {
            let mut st = self.state.borrow_mut();
            let Some(room_id) = st.homes.get(name).filter(|h| h.is_live()).map(|h| h.room_id()) else { return };
            let shared = &self.shared;
            st.hls_viewers.touch(name, room_id, client, bytes, Instant::now(), || shared.next_id())
        };
        if let Some(c) = joined {
            self.hls_changed(c, true);
        }
    }

    fn hls_changed(&self, change: crate::fanout::hls_viewers::Change, joined: bool) {
        let slot = &self.stats().players[ShardStats::player_slot(Protocol::Hls)];
        let (room_id, stream_name, protocol) = (change.room_id, change.stream, Protocol::Hls);
        if joined {
            slot.fetch_add(1, Ordering::Relaxed);
            self.shared.events.send(EngineEvent::PlayerJoined { room_id, stream_name, protocol });
        } else {
            slot.fetch_sub(1, Ordering::Relaxed);
            self.shared.events.send(EngineEvent::PlayerLeft { room_id, stream_name, protocol, addr: None });
        }
    }

    /// Ends the HLS sessions idle for [`hls_viewers::IDLE_TARGETS`] target durations
    /// (the stream's, at least a second each).
    ///
    /// [`hls_viewers::IDLE_TARGETS`]: crate::fanout::hls_viewers::IDLE_TARGETS
    pub fn sweep_hls_viewers(&self) {
        let left = {
            let mut st = self.state.borrow_mut();
            if st.hls_viewers.total() == 0 {
                return;
            }
            let State { hls_viewers, homes, .. } = &mut *st;
            let fallback = self.shared.cfg.hls_fragment.as_secs().max(1);
            hls_viewers.sweep(Instant::now(), |name| {
                let target = homes.get(name).and_then(|h| h.hls_target_secs()).unwrap_or(fallback);
                Duration::from_secs(target.max(1)) * crate::fanout::hls_viewers::IDLE_TARGETS
            })
        };
        for c in left {
            self.hls_changed(c, false);
        }
    }

    /// Ends the HLS sessions of a stream that is gone.
    fn end_hls_viewers(&self, name: &StreamName) {
        let left = self.state.borrow_mut().hls_viewers.end_stream(name);
        for c in left {
            self.hls_changed(c, false);
        }
    }

    /// On the home shard: whether `name` is live here from a publisher of this node
    /// (in its unpublish grace too), not relayed from another node.
    pub fn home_live(&self, name: &StreamName) -> bool {
        self.state.borrow().homes.get(name).is_some_and(|h| h.is_live() && !h.relayed())
    }

    /// Whether `name` is live as far as this shard knows.
    pub fn is_live(&self, name: &StreamName) -> bool {
        let st = self.state.borrow();
        st.subs.get(name).is_some_and(|s| s.live) || st.homes.get(name).is_some_and(|h| h.is_live())
    }

    fn snapshot(&self) -> ShardSnapshot {
        let st = self.state.borrow();
        let now = Instant::now();
        let mut snap = ShardSnapshot { index: self.index, ..Default::default() };
        for (name, h) in &st.homes {
            if !h.is_live() {
                continue;
            }
            let v = h.view(now);
            snap.homes.push(HomeSnap {
                name: name.clone(),
                room_id: v.room_id,
                info: v.info,
                uptime_ms: v.uptime.as_millis() as u64,
                bytes_in: v.bytes_in,
                publishing: v.publishing,
                hls_error: v.hls_error,
                audio_transcode_ms: v.audio_transcode.as_millis() as u64,
                bridges: v.bridges,
            });
        }
        for p in st.publishers.values() {
            snap.clients.push(ClientSnap {
                id: p.id.get(),
                stream: p.name.clone(),
                addr: p.addr,
                protocol: p.protocol,
                relay: false,
                publishing: true,
                time_ms: now.duration_since(p.started).as_millis() as u64,
                bytes: p.bytes_in.get(),
                dropped: 0,
            });
        }
        for (name, v) in st.hls_viewers.sessions() {
            snap.clients.push(ClientSnap {
                id: v.id,
                stream: name.clone(),
                addr: std::net::SocketAddr::new(v.ip, 0),
                protocol: Protocol::Hls,
                relay: false,
                publishing: false,
                time_ms: now.duration_since(v.joined).as_millis() as u64,
                bytes: v.bytes,
                dropped: 0,
            });
        }
        for (name, s) in &st.subs {
            for p in &s.players {
                snap.clients.push(ClientSnap {
                    id: p.id,
                    stream: name.clone(),
                    addr: p.addr,
                    protocol: p.protocol,
                    relay: p.relay.get(),
                    publishing: false,
                    time_ms: now.duration_since(p.joined).as_millis() as u64,
                    bytes: p.bytes_sent(),
                    dropped: p.dropped.get(),
                });
            }
        }
        snap
    }

    fn drop_clients(&self, filter: &DropFilter) -> usize {
        let st = self.state.borrow();
        let mut n = 0;
        if filter.publishers {
            for p in st.publishers.values() {
                if filter.matches(&p.name, &p.addr, p.id.get()) {
                    p.kick();
                    n += 1;
                }
            }
        }
        if filter.players {
            for (name, s) in &st.subs {
                for p in &s.players {
                    if filter.matches(name, &p.addr, p.id) {
                        p.end(PlayerEnd::Kicked);
                        n += 1;
                    }
                }
            }
        }
        n
    }

    // ---- home side ----

    fn home_entry<'a>(&self, state: &'a mut State, name: &StreamName) -> &'a mut HomeStream {
        state.homes.entry(name.clone()).or_insert_with(|| HomeStream::new(name, self.hub_cfg.clone(), Instant::now()))
    }

    /// Carries out what `name`'s home stream asked for (see [`HubOutput`]): taken in
    /// one borrow (with the subscribers as they are now), then done in order without
    /// it: a message to this same shard is handled at once and may reach the home.
    fn run_home(&self, name: &StreamName) {
        let (outputs, subs, shared_name) = {
            let mut st = self.state.borrow_mut();
            let Some(h) = st.homes.get_mut(name) else { return };
            let mut outputs = Vec::with_capacity(4);
            while let Some(o) = h.poll_output() {
                outputs.push(o);
            }
            if outputs.is_empty() {
                return;
            }
            (outputs, h.subscribers().to_vec(), h.name().clone())
        };
        for output in outputs {
            match output {
                HubOutput::Frame { frame, seq } => {
                    for &s in &subs {
                        self.to(s, ShardMsg::Frame { name: shared_name.clone(), frame: frame.clone(), seq });
                    }
                }
                HubOutput::Snapshot { shard, room_id, frames, seq } => {
                    self.to(shard, ShardMsg::Snapshot { name: name.clone(), room_id, frames, seq })
                }
                HubOutput::Kick { shard, pub_id } => self.to(shard, ShardMsg::Kick { pub_id }),
                HubOutput::Event(ev) => self.shared.events.send(ev),
                HubOutput::RequestKeyframe => self.hooks.request_keyframe(self, name),
                HubOutput::HlsMirror { event, playlist } => {
                    mirror_hls(&self.shared.cfg.hls_path, name, &event, &playlist)
                }
                HubOutput::Record(op) => self.record_op(name, op),
                HubOutput::Ended { subscribers } => {
                    {
                        let mut st = self.state.borrow_mut();
                        self.finish_home(&mut st, name);
                    }
                    self.end_hls_viewers(name);
                    for s in subscribers {
                        self.to(s, ShardMsg::StreamEnded { name: name.clone() });
                    }
                }
            }
        }
    }

    fn claim(
        &self,
        name: &StreamName,
        room_id: RoomId,
        pub_id: u64,
        shard: usize,
        relay: bool,
    ) -> Result<(), ClaimError> {
        {
            let mut st = self.state.borrow_mut();
            // An ended broadcast's HLS continues (after a discontinuity) only in a
            // home that is not live: a live one keeps its own, and a refused claim
            // must not lose it.
            let ended = match st.homes.get(name) {
                Some(h) if h.is_live() => None,
                _ => st.ended_hls.remove(name).map(|(seg, _)| seg),
            };
            let h = self.home_entry(&mut st, name);
            if let Err(e) = h.handle_claim(Instant::now(), room_id, pub_id, shard, ended, relay) {
                return Err(e);
            }
        }
        self.run_home(name);
        Ok(())
    }

    fn home_frame(&self, name: &StreamName, pub_id: u64, frame: Arc<Frame>) {
        {
            let mut st = self.state.borrow_mut();
            let Some(h) = st.homes.get_mut(name) else { return };
            let shared = &self.shared;
            let h264 = || {
                let codecs = shared.rtc_codecs.lock().unwrap_or_else(|p| p.into_inner());
                codecs.get(name).is_some_and(|c| c.video == Some(crate::proto::webrtc::Codec::H264))
            };
            h.handle_frame(Instant::now(), &Instant::now, pub_id, frame, &h264);
        }
        self.run_home(name);
    }

    fn publisher_gone(&self, name: &StreamName, pub_id: u64) {
        let deadline = {
            let mut st = self.state.borrow_mut();
            let Some(h) = st.homes.get_mut(name) else { return };
            h.handle_publisher_gone(Instant::now(), pub_id);
            h.poll_timeout()
        };
        // Keep players for a reconnect; end the stream if nobody comes back.
        let Some(deadline) = deadline else { return };
        let shard = self.self_rc();
        let name = name.clone();
        monoio::spawn(async move {
            monoio::time::sleep_until(monoio::time::Instant::from_std(deadline)).await;
            let due = shard.state.borrow_mut().homes.get_mut(&name).map(|h| h.handle_timeout(Instant::now()));
            if due.is_some() {
                shard.run_home(&name);
            }
        });
    }

    fn self_rc(&self) -> Rc<Shard> {
        SHARD.with(|s| s.borrow().clone()).expect("the shard is registered for its thread")
    }

    /// The home stream is over: its HLS playlist gets `#EXT-X-ENDLIST` and stays
    /// served for the playlist's length (players see the end, not a 404), and the
    /// home entry goes.
    fn finish_home(&self, state: &mut State, name: &StreamName) {
        let Some(mut h) = state.homes.remove(name) else { return };
        if let Some(seg) = h.finish() {
            state.ended_hls.insert(name.clone(), (seg, Instant::now()));
        }
        while let Some(o) = h.poll_output() {
            match o {
                HubOutput::HlsMirror { event, playlist } => {
                    mirror_hls(&self.shared.cfg.hls_path, name, &event, &playlist)
                }
                HubOutput::Record(op) => self.record_op(name, op),
                _ => {}
            }
        }
        let keep = self.shared.cfg.hls_window;
        state.ended_hls.retain(|_, (_, at)| at.elapsed() < keep);
    }

    /// The control plane's recording command, carried out by the stream's home.
    fn record(&self, name: &StreamName, spec: Option<crate::link::RecordSpec>) {
        if self.shared.home_of(name) != self.index {
            return;
        }
        if spec.is_some() && self.shared.disk.is_none() {
            tracing::warn!(stream = %name, "recording asked for, but no recording path is set");
            return;
        }
        {
            let mut st = self.state.borrow_mut();
            let Some(h) = st.homes.get_mut(name) else { return };
            h.handle_record(spec);
        }
        self.run_home(name);
    }

    fn record_op(&self, name: &StreamName, op: crate::stream::record::RecordOp) {
        if let Some(disk) = &self.shared.disk {
            disk.submit(name, op);
        }
    }

    fn subscribe(&self, name: &StreamName, shard: usize) {
        {
            let mut st = self.state.borrow_mut();
            self.home_entry(&mut st, name).subscribe(shard);
        }
        self.run_home(name);
    }

    /// Disconnects the stream's players on this shard, relays aside (a private
    /// room's tokens changed: viewers must come back with a valid one).
    fn end_viewers(&self, name: &StreamName) {
        let st = self.state.borrow();
        if let Some(s) = st.subs.get(name) {
            let mut n = 0;
            for p in s.players.iter().filter(|p| !p.relay.get()) {
                p.end(PlayerEnd::Kicked);
                n += 1;
            }
            if n > 0 {
                tracing::info!(stream = %name, players = n, "viewers disconnected: the room's play tokens changed");
            }
        }
    }

    fn drop_stream(&self, name: &StreamName) {
        self.hooks.stream_dropped(&self.self_rc(), name);
        let home = self.shared.home_of(name) == self.index;
        let mut st = self.state.borrow_mut();
        for p in st.publishers.values() {
            if p.name == *name {
                p.kick();
            }
        }
        // Players are told the stream ended (RTMP StreamEOF, the last HTTP chunk,
        // WebSocket close 1000) after what is queued for them.
        if let Some(mut s) = st.subs.remove(name) {
            for p in s.players.drain(..) {
                p.end(PlayerEnd::StreamEnded);
            }
        }
        if home {
            // No grace and no PublishEnded: the control plane asked for this.
            self.finish_home(&mut st, name);
            drop(st);
            self.end_hls_viewers(name);
        }
    }

    // ---- subscriber side ----

    fn deliver(&self, name: &StreamName, frame: &Arc<Frame>, seq: u64) {
        let mut st = self.state.borrow_mut();
        let Some(s) = st.subs.get_mut(name) else { return };
        if !s.live {
            return;
        }
        let gap = s.next_seq != 0 && seq != s.next_seq + 1;
        s.next_seq = seq;
        s.cache.push(frame);
        let now = Instant::now();
        let rtp = frame.is_rtp();
        // Players in step get FLV-tag media through the cohort (once for them all),
        // the others one by one; a gap takes every player out of step first.
        match &s.cohort {
            Some(c) if !gap && !rtp => c.push_outside(frame, now),
            _ => {
                for p in &s.players {
                    if gap {
                        p.resync();
                    }
                    // WebRTC subscribers take RTP; the others take FLV-tag media.
                    if rtp == (p.protocol == Protocol::WebRtc) {
                        p.push(frame, now);
                    }
                }
            }
        }
        if let Some(c) = &s.cohort
            && !rtp
        {
            c.push(frame);
        }
    }

    /// Adds a player of `name` on this shard, waiting up to `wait` for the stream to
    /// go live. Returns the room id.
    pub async fn join(&self, name: &StreamName, player: Rc<Player>, wait: Duration) -> Result<RoomId, PlayError> {
        let live_here = self.state.borrow().subs.get(name).is_some_and(|s| s.live);
        if !live_here && !self.stream_known(name).await {
            return Err(PlayError::NotFound);
        }
        let home = self.shared.home_of(name);
        let first = {
            let mut st = self.state.borrow_mut();
            let cfg = &self.shared.cfg;
            let mut first = false;
            let s = st.subs.entry(name.clone()).or_insert_with(|| {
                first = true;
                SubStream {
                    room_id: RoomId::default(),
                    players: vec![],
                    rtc_players: 0,
                    tag_players: 0,
                    cache: GopCache::new(cfg.gop_cache_bytes, cfg.gop_cache_duration).with_start(cfg.join_start),
                    cohort: (!cfg.merge_window.is_zero()).then(crate::fanout::player::Cohort::new),
                    live: false,
                    waiting: 0,
                    next_seq: 0,
                }
            });
            s.waiting += 1;
            first
        };
        if first {
            self.to(home, ShardMsg::Subscribe { name: name.clone(), shard: self.index });
        }
        let deadline = Instant::now() + wait;
        loop {
            if self.shared.shutting_down.load(Ordering::Relaxed) {
                self.unwait(name);
                return Err(PlayError::ShuttingDown);
            }
            {
                let mut st = self.state.borrow_mut();
                if let Some(s) = st.subs.get_mut(name) {
                    if s.live {
                        s.waiting -= 1;
                        if player.protocol != Protocol::WebRtc {
                            let snapshot = s.cache.snapshot();
                            player.set_tracks(s.cache.tracks());
                            player.push_all(&snapshot, Instant::now());
                        }
                        s.players.push(player.clone());
                        let room_id = s.room_id;
                        let rtc = player.protocol == Protocol::WebRtc;
                        if !rtc {
                            if let Some(c) = &s.cohort {
                                player.set_cohort(Some(c.clone()));
                            }
                        }
                        let first = if rtc {
                            s.rtc_players += 1;
                            s.rtc_players == 1
                        } else {
                            s.tag_players += 1;
                            s.tag_players == 1
                        };
                        drop(st);
                        if !rtc {
                            // A WebRTC publisher's next keyframe starts this player at
                            // once (no-op for RTMP publishers: the GOP cache did).
                            self.request_keyframe(name);
                        }
                        if first {
                            let (name, shard) = (name.clone(), self.index);
                            let msg = if rtc {
                                ShardMsg::WantRtp { name, shard, want: true }
                            } else {
                                ShardMsg::WantTags { name, shard, want: true }
                            };
                            self.to(home, msg);
                        }
                        if !player.relay.get() {
                            self.stats().players[ShardStats::player_slot(player.protocol)]
                                .fetch_add(1, Ordering::Relaxed);
                            self.shared.events.send(EngineEvent::PlayerJoined {
                                room_id,
                                stream_name: name.clone(),
                                protocol: player.protocol,
                            });
                        }
                        return Ok(room_id);
                    }
                }
            }
            if Instant::now() >= deadline {
                self.unwait(name);
                return Err(PlayError::NotFound);
            }
            monoio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a room has this stream name, by the control plane (when
    /// `ask_stream_known` is on; otherwise every name is). An unanswered question
    /// counts as known: the player then waits as it would have. A stream live on
    /// another node is pulled from there (its home starts one relay).
    pub async fn stream_known(&self, name: &StreamName) -> bool {
        match self.ask_stream(name).await {
            StreamAnswer::Unknown => false,
            StreamAnswer::Wait => true,
            StreamAnswer::Relay { origin, room_id } => {
                self.to(self.shared.home_of(name), ShardMsg::Relay { name: name.clone(), origin, room_id });
                true
            }
        }
    }

    /// Asks the control plane where `name` is ([`StreamAnswer::Wait`] unasked or unanswered).
    pub async fn ask_stream(&self, name: &StreamName) -> StreamAnswer {
        if !self.shared.cfg.ask_stream_known {
            return StreamAnswer::Wait;
        }
        let (reply, rx) = futures_channel::oneshot::channel();
        self.shared.events.send(EngineEvent::StreamQuery { stream_name: name.clone(), reply });
        match monoio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(answer)) => answer,
            _ => StreamAnswer::Wait,
        }
    }

    /// On the home shard: whether `name` has any audience (players on any shard,
    /// waiting players, or HLS viewer sessions).
    pub fn has_audience(&self, name: &StreamName) -> bool {
        let st = self.state.borrow();
        st.homes.get(name).is_some_and(|h| !h.subscribers().is_empty())
            || st.hls_viewers.sessions().any(|(stream, _)| stream == name)
    }

    /// On the home shard: the relay of `name` stopped.
    pub fn relay_ended(&self, name: &StreamName) {
        self.state.borrow_mut().relays.remove(name);
    }

    fn unwait(&self, name: &StreamName) {
        let mut st = self.state.borrow_mut();
        if let Some(s) = st.subs.get_mut(name) {
            s.waiting = s.waiting.saturating_sub(1);
        }
        drop(st);
        self.maybe_unsubscribe(name);
    }

    fn maybe_unsubscribe(&self, name: &StreamName) {
        let gone = {
            let mut st = self.state.borrow_mut();
            match st.subs.get(name) {
                Some(s) if s.players.is_empty() && s.waiting == 0 => {
                    st.subs.remove(name);
                    true
                }
                None => true,
                _ => false,
            }
        };
        if gone {
            self.to(self.shared.home_of(name), ShardMsg::Unsubscribe { name: name.clone(), shard: self.index });
        }
    }

    /// Removes a player (its connection ended).
    pub fn leave(&self, name: &StreamName, player: &Rc<Player>, room_id: RoomId) {
        player.set_cohort(None);
        let rtc = player.protocol == Protocol::WebRtc;
        let last = {
            let mut st = self.state.borrow_mut();
            match st.subs.get_mut(name) {
                Some(s) => {
                    let before = s.players.len();
                    s.players.retain(|p| p.id != player.id);
                    let removed = s.players.len() < before;
                    let n = if rtc { &mut s.rtc_players } else { &mut s.tag_players };
                    removed && {
                        *n = n.saturating_sub(1);
                        *n == 0
                    }
                }
                None => false,
            }
        };
        if last {
            let (n, shard) = (name.clone(), self.index);
            let msg = if rtc {
                ShardMsg::WantRtp { name: n, shard, want: false }
            } else {
                ShardMsg::WantTags { name: n, shard, want: false }
            };
            self.to(self.shared.home_of(name), msg);
        }
        self.stats().dropped_frames.fetch_add(player.dropped.get(), Ordering::Relaxed);
        if !player.relay.get() {
            self.stats().players[ShardStats::player_slot(player.protocol)].fetch_sub(1, Ordering::Relaxed);
            self.shared.events.send(EngineEvent::PlayerLeft {
                room_id,
                stream_name: name.clone(),
                protocol: player.protocol,
                addr: Some(player.addr),
            });
        }
        self.maybe_unsubscribe(name);
    }

    // ---- publisher side (the connection's shard) ----

    /// Registers a local publisher connection and claims the stream at its home.
    pub async fn claim_stream(
        &self,
        name: &StreamName,
        room_id: RoomId,
        ctl: Rc<PublisherCtl>,
        relay: bool,
    ) -> Result<u64, ClaimError> {
        let pub_id = self.shared.next_id();
        ctl.id.set(pub_id);
        self.state.borrow_mut().publishers.insert(pub_id, ctl);
        let (tx, rx) = futures_channel::oneshot::channel();
        self.to(
            self.shared.home_of(name),
            ShardMsg::Claim { name: name.clone(), room_id, pub_id, shard: self.index, relay, reply: tx },
        );
        let r = match monoio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(r)) => r,
            _ => Err(ClaimError::HomeUnreachable),
        };
        match r {
            Ok(()) => {
                self.stats().publishers.fetch_add(1, Ordering::Relaxed);
                Ok(pub_id)
            }
            Err(e) => {
                self.state.borrow_mut().publishers.remove(&pub_id);
                Err(e)
            }
        }
    }

    /// Asks the stream's publisher (on its home) for a keyframe.
    pub fn request_keyframe(&self, name: &StreamName) {
        self.to(self.shared.home_of(name), ShardMsg::KeyframeRequest { name: name.clone() });
    }

    /// Sends a publisher's frame to the stream's home.
    pub fn publish_frame(&self, name: &StreamName, pub_id: u64, frame: Frame) {
        self.to(
            self.shared.home_of(name),
            ShardMsg::PublisherFrame { name: name.clone(), pub_id, frame: Arc::new(frame) },
        );
    }

    /// A local publisher's connection ended.
    pub fn unpublish(&self, name: &StreamName, pub_id: u64) {
        self.state.borrow_mut().publishers.remove(&pub_id);
        self.stats().publishers.fetch_sub(1, Ordering::Relaxed);
        self.to(self.shared.home_of(name), ShardMsg::PublisherGone { name: name.clone(), pub_id });
    }
}

// Thread-local because a task spawned from a `&self` method needs its shard's
// `Rc`, and the runtime carries no per-task context: one shard per thread.
thread_local! {
    /// The shard of this thread (for tasks spawned from `&self` methods).
    pub static SHARD: RefCell<Option<Rc<Shard>>> = const { RefCell::new(None) };
}
