//! A player's queue and writer: bounded in bytes and media duration, dropping video
//! to the next keyframe on overflow, and coalescing pending messages into one
//! vectored write per merge window.
//!
//! Merging is shard-wide: a player that gets its first pending frame goes on the
//! shard's flush list; the shard's flush tick (every merge window) writes for every
//! listed player whose writer task is idle, itself: it drains the queue, builds the
//! wire buffers with the player's [`Wire`] and sends them with one non-blocking
//! `sendmsg`. The writer task is neither woken nor polled, and no io_uring request
//! is made (the floor writer of benches/ does the same: one write per socket per
//! tick). Only when the socket cannot take it all does the tick hand the rest to the
//! writer task, which waits for the socket with an io_uring write as before. A writer
//! busy with a write collects its frames itself when that write completes.
//!
//! Players of a stream that are in step (all they were given is sent, nothing is
//! waiting) form the stream's [`Cohort`] on the shard: a frame is then queued once
//! for all of them, not once per player, and the tick sends the cohort's shared bytes
//! to each member with one `send`. A member leaves the cohort for anything of its
//! own (a full socket, a gap to resync, an end, session output) with the cohort's
//! pending frames copied to its queue, and goes the per-player way above until a
//! tick finds it in step again.

use crate::link::Protocol;
use crate::stream::frame::{Frame, FrameKind};
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct PlayerLimits {
    pub max_bytes: usize,
    pub max_ms: u32,
    pub disconnect_after: Duration,
    /// Park media wake-ups until the shard's next flush tick (merge window > 0).
    pub merge: bool,
}

impl PlayerLimits {
    /// The configured queue bounds; merged writes when there is a merge window.
    pub fn from_config(config: &crate::config::EngineConfig) -> Self {
        PlayerLimits {
            max_bytes: config.player_queue_bytes,
            max_ms: config.player_queue_duration.as_millis().min(u32::MAX as u128) as u32,
            disconnect_after: config.player_overflow_disconnect,
            merge: !config.merge_window.is_zero(),
        }
    }

    /// The same bounds for players that must not wait for the flush tick (WebRTC).
    pub fn unmerged(self) -> Self {
        PlayerLimits { merge: false, ..self }
    }
}

/// Turns a batch of queued frames into the player's wire buffers (framing, and
/// whatever the protocol session has to send); an empty batch means "only the
/// session's output". The frames go out on the player's timeline, which starts at
/// the given base on the stream's (`Player::base`, see `Frame::ts_on`).
pub type Wire = Box<dyn FnMut(&[Arc<Frame>], Option<u32>, &mut Vec<Bytes>)>;

// Thread-local because each shard is one thread running one monoio runtime: a
// player (`Rc`) never leaves its shard, and its pushes and the flush tick share
// these lists and buffers without a lock or a pointer to the shard.
thread_local! {
    /// Per lane: players with frames waiting for the lane's next flush.
    static FLUSH_LISTS: RefCell<Vec<Vec<Rc<Player>>>> = RefCell::new(vec![Vec::new()]);
    /// Per lane: cohorts whose lane has frames waiting for the lane's next flush.
    static COHORT_LISTS: RefCell<Vec<Vec<Rc<Cohort>>>> = RefCell::new(vec![Vec::new()]);
    /// Buffers the flush tick reuses for every player.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    frames: Vec<Arc<Frame>>,
    bufs: Vec<Bytes>,
    iov: Vec<libc::iovec>,
    /// This tick's shared wire buffers: players of a stream that are in step (the
    /// common case) have the same frames queued and send the same bytes.
    shared: Vec<SharedEntry>,
}

struct SharedEntry {
    form: SharedForm,
    base: Option<u32>,
    /// Held (not just compared by address) so that no frame of the key can be freed
    /// and its address reused while the entry lives.
    frames: Vec<Arc<Frame>>,
    bytes: Bytes,
}

/// A protocol whose media bytes depend only on the frames (not on the player), so
/// players with the same queued frames can send one buffer built once per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedForm {
    /// HTTP-FLV: one HTTP/1.1 chunk of FLV tags.
    HttpFlv,
    /// WebSocket-FLV: one binary frame of FLV tags.
    WsFlv,
    /// RTMP on the play message stream, at the engine's chunk size.
    Rtmp { chunk_size: u32 },
}

impl SharedForm {
    /// The media bytes of `frames` (RTP frames have none here) on a player timeline
    /// starting at `base`, as pieces: per tag a small header of that timeline's and
    /// the tag's rest, shared by every player (no copy of media), inside the form's
    /// framing. Exactly what the players' own wires produce for them.
    pub fn pieces(self, frames: &[Arc<Frame>], base: Option<u32>, out: &mut Vec<Bytes>) {
        let media = || frames.iter().filter(|f| !f.is_rtp());
        match self {
            SharedForm::HttpFlv | SharedForm::WsFlv => {
                let n = media().count();
                if n == 0 {
                    return;
                }
                let len: usize = media().map(|f| f.flv_wire().len()).sum();
                let mut framing = Vec::with_capacity(16);
                if self == SharedForm::HttpFlv {
                    framing.extend_from_slice(format!("{len:x}\r\n").as_bytes());
                } else {
                    crate::proto::websocket::frame_header(crate::proto::websocket::OP_BINARY, len, &mut framing);
                }
                out.push(Bytes::from(framing));
                // The tag headers of this timeline in one buffer, sliced per tag.
                let mut heads = Vec::with_capacity(n * crate::proto::flv::TAG_HEADER_LEN);
                let mut rests = Vec::with_capacity(n);
                for f in media() {
                    let (head, rest) = f.flv_parts(f.ts_on(base));
                    heads.extend_from_slice(&head);
                    rests.push(rest);
                }
                let heads = Bytes::from(heads);
                for (i, rest) in rests.into_iter().enumerate() {
                    let at = i * crate::proto::flv::TAG_HEADER_LEN;
                    out.push(heads.slice(at..at + crate::proto::flv::TAG_HEADER_LEN));
                    out.push(rest);
                }
                if self == SharedForm::HttpFlv {
                    out.push(Bytes::from_static(b"\r\n"));
                }
            }
            SharedForm::Rtmp { chunk_size } => {
                for f in media() {
                    let (head, rest) = f.rtmp_parts(chunk_size, f.ts_on(base));
                    out.push(head);
                    out.extend(rest);
                }
            }
        }
    }

    /// [`pieces`](Self::pieces) in one buffer (one copy, shared by the players of
    /// that timeline).
    fn build(self, frames: &[Arc<Frame>], base: Option<u32>) -> Bytes {
        let mut pieces = Vec::new();
        self.pieces(frames, base, &mut pieces);
        match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().unwrap_or_default(),
            _ => {
                let mut v = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
                for p in &pieces {
                    v.extend_from_slice(p);
                }
                Bytes::from(v)
            }
        }
    }
}

impl Scratch {
    /// The media bytes of `frames` in `form` on the timeline starting at `base`,
    /// appended to `bufs`: the buffer built on first use this tick for these frames
    /// and timeline; for a timeline other than the one a buffer was built for, its
    /// pieces (shared tag bodies, headers of this timeline), so that players of many
    /// timelines never cost a copy of the media each.
    fn shared(&mut self, form: SharedForm, frames: &[Arc<Frame>], base: Option<u32>, bufs: &mut Vec<Bytes>) {
        let same = |e: &SharedEntry| {
            e.form == form
                && e.frames.len() == frames.len()
                && e.frames.iter().zip(frames).all(|(a, b)| Arc::ptr_eq(a, b))
        };
        let mut built_for_other = false;
        for e in self.shared.iter().filter(|e| same(e)) {
            if e.base == base {
                if !e.bytes.is_empty() {
                    bufs.push(e.bytes.clone());
                }
                return;
            }
            built_for_other = true;
        }
        if built_for_other {
            form.pieces(frames, base, bufs);
            return;
        }
        let bytes = form.build(frames, base);
        // A handful per tick (streams × forms); players out of step add their own.
        if self.shared.len() < 64 {
            self.shared.push(SharedEntry { form, base, frames: frames.to_vec(), bytes: bytes.clone() });
        }
        if !bytes.is_empty() {
            bufs.push(bytes);
        }
    }
}

/// Puts a player on its lane's flush list.
fn list_for_flush(p: &Rc<Player>) {
    FLUSH_LISTS.with(|l| {
        let mut l = l.borrow_mut();
        let n = l.len();
        l[p.lane % n].push(p.clone());
    });
}

/// What one flush tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Players on the list (written for, woken, or busy).
    pub players: usize,
    /// Players written for by the tick itself, without waking their writer.
    pub direct: usize,
    /// Cohort members written for (one write each, the cohort's shared bytes).
    pub in_step: usize,
    /// Bytes those writes (players' and members') sent.
    pub bytes: u64,
}

/// Target time between two lanes' flushes: the merge window is split into lanes of
/// about this length (see [`lanes_for`]).
pub const LANE_PERIOD: Duration = Duration::from_millis(25);
/// Most lanes a merge window is split into.
pub const MAX_LANES: usize = 32;

/// How many lanes a merge window of `merge` is split into: one per [`LANE_PERIOD`]
/// (at least one).
///
/// Each player belongs to one lane (by id) and each lane is flushed once per merge
/// window, at its own phase: lane `k` at `k × merge / lanes` into the window. So a
/// player still gets one write per merge window, but the shard's writes are spread
/// over the window in small bursts instead of one burst of every player. That
/// keeps the time between two writes to a socket close to the merge window: in one
/// big burst, a socket's place in it moves with the burst's length (tens of ms at
/// thousands of players), and a receiving Linux TCP that sees a gap longer than its
/// RTO (200 ms at least) acknowledges the next segments at once instead of delaying
/// the ACK, which the server then pays for inside its `send` (BENCHMARKS.md, "Lanes").
pub fn lanes_for(merge: Duration) -> usize {
    ((merge.as_nanos() / LANE_PERIOD.as_nanos()) as usize).clamp(1, MAX_LANES)
}

/// The turns to flush now, after `done` turns with `due` turns' time passed (turn
/// `t` is lane `t % lanes`): at least the next one; under load, the missed ones too,
/// but at most one per lane (older missed turns are skipped, not bunched).
pub fn turns_due(done: u64, due: u64, lanes: usize) -> std::ops::RangeInclusive<u64> {
    let to = due.max(done + 1);
    let from = (done + 1).max(to.saturating_sub(lanes.max(1) as u64 - 1));
    from..=to
}

/// Splits this shard's flushes into `n` lanes (see [`lanes_for`]). Called once when
/// the shard starts, before any player or cohort exists.
pub fn set_lanes(n: usize) {
    let n = n.clamp(1, MAX_LANES);
    FLUSH_LISTS.with(|l| l.borrow_mut().resize_with(n, Vec::new));
    COHORT_LISTS.with(|l| l.borrow_mut().resize_with(n, Vec::new));
}

/// This shard's number of lanes.
pub fn lanes() -> usize {
    FLUSH_LISTS.with(|l| l.borrow().len())
}

/// Flushes every lane (tests; a shard flushes one lane per flush).
pub fn flush_tick() -> Flushed {
    let mut out = Flushed::default();
    for lane in 0..lanes() {
        let f = flush_lane(lane);
        out.players += f.players;
        out.direct += f.direct;
        out.in_step += f.in_step;
        out.bytes += f.bytes;
    }
    out
}

/// Flushes every cohort and player of `lane` listed since the lane's last flush
/// (called by the shard's flush tick): sends each cohort's frames to its members of
/// the lane, then writes for listed players whose writers are idle, wakes writers
/// that must wait for their socket or have something else to do. Players found in
/// step join their cohort.
pub fn flush_lane(lane: usize) -> Flushed {
    let mut out = Flushed::default();
    let n = lanes();
    let lane = lane % n;
    let cohorts = COHORT_LISTS.with(|l| std::mem::take(&mut l.borrow_mut()[lane]));
    // Cohorts first: a player that joins one below has had every frame queued until
    // now in its own queue, and gets the cohort's from the next flush on.
    for c in &cohorts {
        c.flush(lane, &mut out);
    }
    let players = FLUSH_LISTS.with(|l| std::mem::take(&mut l.borrow_mut()[lane]));
    out.players = players.len();
    SCRATCH.with(|sc| {
        let mut sc = sc.borrow_mut();
        sc.shared.clear();
        for p in &players {
            if let Some(n) = p.flush_direct(&mut sc) {
                out.direct += 1;
                out.bytes += n as u64;
                p.step_in();
            }
        }
        // Frames are not kept alive by the cache past the tick.
        sc.shared.clear();
    });
    // Hand the lists' storage back for the next flush.
    FLUSH_LISTS.with(|l| {
        let mut l = l.borrow_mut();
        if l[lane].is_empty() {
            let mut v = players;
            v.clear();
            l[lane] = v;
        }
    });
    COHORT_LISTS.with(|l| {
        let mut l = l.borrow_mut();
        if l[lane].is_empty() {
            let mut v = cohorts;
            v.clear();
            l[lane] = v;
        }
    });
    out
}

/// The players of one stream on a shard that are in step: each has sent all it was
/// given, has nothing queued and its writer is idle. The stream's frames are queued
/// here once for all of them (`push`), and the tick sends the same bytes to each.
///
/// Members are kept in a table of small slots (socket, wire form, bytes sent), so
/// that the tick's loop over thousands of members reads one contiguous array and
/// never the players themselves: between the kernel's copies of each send, a
/// player's own memory is out of every cache (and, in a VM, often out of the TLB),
/// and touching it cost about 1 µs per member (measured with `perf`, BENCHMARKS.md).
/// There is one table per lane (a member sits in its player's lane, see
/// [`lanes_for`]), each with the frames since that lane's last flush.
pub struct Cohort {
    lanes: Vec<Lane>,
    /// The stream's other RTMP/FLV players on the shard (out of step: they take
    /// frames one by one), and players that stepped in since the list was walked.
    outside: RefCell<Vec<Rc<Player>>>,
    /// How many players are in step.
    stepped: Cell<usize>,
}

/// The members of a cohort in one lane.
#[derive(Default)]
struct Lane {
    /// Frames since the lane's last flush, for each of its members.
    pending: RefCell<Vec<Arc<Frame>>>,
    /// Members by slot; a slot without a player is free.
    slots: RefCell<Vec<Slot>>,
    /// Free slots.
    free: RefCell<Vec<usize>>,
    /// How many members.
    members: Cell<usize>,
    /// On the shard's cohort list of the lane (has pending frames).
    listed: Cell<bool>,
}

/// A member's slot: what the tick needs to send to it.
struct Slot {
    fd: i32,
    form: SharedForm,
    /// Where the member's timeline starts on the stream's (`Player::base`).
    base: Option<u32>,
    /// Bytes sent since the player stepped in (added to its count when it leaves).
    sent: u64,
    player: Option<Rc<Player>>,
}

/// No slot (a player out of step).
const NO_SLOT: usize = usize::MAX;

/// Most buffers a cohort lane's flush builds (one per form and timeline met first);
/// members of further timelines send pieces (see `SharedForm::pieces`).
const MAX_BUILDS: usize = 4;

impl Cohort {
    /// A cohort with a lane for each of this shard's lanes.
    pub fn new() -> Rc<Cohort> {
        Rc::new(Cohort {
            lanes: (0..lanes()).map(|_| Lane::default()).collect(),
            outside: RefCell::new(Vec::new()),
            stepped: Cell::new(0),
        })
    }

    /// The lane of a player with lane number `lane`.
    fn lane(&self, lane: usize) -> &Lane {
        &self.lanes[lane % self.lanes.len()]
    }

    /// How many players are in step (a frame pushed here reaches them all).
    pub fn stepped(&self) -> usize {
        self.stepped.get()
    }

    /// Queues a frame for every member (RTP frames are for WebRTC viewers, which are
    /// never members).
    pub fn push(self: &Rc<Self>, f: &Arc<Frame>) {
        if self.stepped.get() == 0 || f.is_rtp() || f.relay_only() {
            return;
        }
        for (i, lane) in self.lanes.iter().enumerate() {
            if lane.members.get() == 0 {
                continue;
            }
            lane.pending.borrow_mut().push(f.clone());
            if !lane.listed.replace(true) {
                COHORT_LISTS.with(|l| {
                    let mut l = l.borrow_mut();
                    let n = l.len();
                    l[i % n].push(self.clone());
                });
            }
        }
    }

    /// Gives a frame to every player out of step, one by one (`Player::push`).
    pub fn push_outside(&self, f: &Arc<Frame>, now: Instant) {
        self.outside.borrow_mut().retain(|p| {
            if p.is_in_step() {
                p.in_outside.set(false);
                return false;
            }
            p.push(f, now);
            true
        });
    }

    /// How many players are on the `outside` list (for tests).
    pub fn outside_len(&self) -> usize {
        self.outside.borrow().len()
    }

    /// The member in `slot` of `lane`, if any.
    fn member(&self, lane: usize, slot: usize) -> Option<Rc<Player>> {
        self.lane(lane).slots.borrow().get(slot).and_then(|s| s.player.clone())
    }

    /// A lane's flush: its pending frames to each of its members, one write each.
    fn flush(&self, lane: usize, out: &mut Flushed) {
        let lane = self.lane(lane);
        lane.listed.set(false);
        let frames = std::mem::take(&mut *lane.pending.borrow_mut());
        // Members whose socket did not take it all: (player, unsent rest).
        let mut short: Vec<(Rc<Player>, Vec<Bytes>)> = vec![];
        if !frames.is_empty() {
            // Members' forms (RTMP, HTTP-FLV, WebSocket-FLV) on their timelines, each
            // built once, for the first few (form, timeline) pairs met; members of
            // further timelines send the pieces of theirs (the shared tag bodies and
            // headers of their own), in one `sendmsg`.
            let mut built: Vec<(SharedForm, Option<u32>, Bytes)> = Vec::with_capacity(MAX_BUILDS);
            let mut pieces: Vec<Bytes> = Vec::new();
            let mut iov: Vec<libc::iovec> = Vec::new();
            let mut slots = lane.slots.borrow_mut();
            for slot in slots.iter_mut() {
                if slot.player.is_none() {
                    continue;
                }
                let (form, base) = (slot.form, slot.base);
                let found = built.iter().find(|(f, b, _)| *f == form && *b == base).map(|(_, _, x)| x.clone());
                let bytes = match found {
                    Some(b) => Some(b),
                    None if built.len() < MAX_BUILDS => {
                        let b = form.build(&frames, base);
                        built.push((form, base, b.clone()));
                        Some(b)
                    }
                    None => None,
                };
                // Full (EAGAIN) or broken: the writer task waits for the socket, or
                // meets the error with its own write and ends.
                let (sent, total) = match &bytes {
                    Some(b) if b.is_empty() => continue,
                    Some(b) => (crate::net::sys::send_nonblocking(slot.fd, b).unwrap_or(0), b.len()),
                    None => {
                        pieces.clear();
                        form.pieces(&frames, base, &mut pieces);
                        let total: usize = pieces.iter().map(Bytes::len).sum();
                        if total == 0 {
                            continue;
                        }
                        (send_now(slot.fd, &pieces, &mut iov).unwrap_or(0), total)
                    }
                };
                slot.sent += sent as u64;
                out.in_step += 1;
                out.bytes += sent as u64;
                if sent < total
                    && let Some(p) = &slot.player
                {
                    let rest = match bytes {
                        Some(b) => vec![b.slice(sent..)],
                        None => rest_after(&mut pieces, sent),
                    };
                    short.push((p.clone(), rest));
                }
            }
        }
        for (p, rest) in short {
            p.leave_step(&p);
            *p.carry.borrow_mut() = rest;
            p.wake();
        }
        // Hand the storage back.
        let mut frames = frames;
        frames.clear();
        let mut pending = lane.pending.borrow_mut();
        if pending.is_empty() {
            *pending = frames;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerEnd {
    /// The stream ended: flush what is queued, then say goodbye.
    StreamEnded,
    /// Dropped by an operator, the room's end, overflow or shutdown: close now.
    Kicked,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
    /// Timestamp of the first queued non-header frame (headers carry old timestamps).
    first_media: Option<u32>,
    awaiting_key: bool,
    overflow_since: Option<Instant>,
    end: Option<PlayerEnd>,
    notified: bool,
}

/// What the writer should do next.
pub enum Batch {
    /// Frames to write (possibly none when only the session has output).
    Frames(Vec<Arc<Frame>>),
    End(PlayerEnd),
}

pub struct Player {
    /// Another node's relay pull (cluster): not a viewer, not counted as one.
    pub relay: Cell<bool>,
    pub id: u64,
    pub protocol: Protocol,
    pub addr: SocketAddr,
    limits: PlayerLimits,
    queue: RefCell<Queue>,
    waker: Cell<Option<Waker>>,
    /// Counters for stats.
    pub dropped: Cell<u64>,
    pub sent_bytes: Cell<u64>,
    pub joined: Instant,
    /// The socket, shut down on a kick so that a blocked write returns, and written
    /// by the flush tick while the writer task is idle.
    fd: Cell<i32>,
    /// On the shard's flush list of its lane.
    listed: Cell<bool>,
    /// The player's lane (see [`lanes_for`]): the flush that writes for it, and the
    /// lane of its cohort it joins.
    lane: usize,
    /// The wire of the running `write_loop` (none before it starts and after it ends).
    wire: RefCell<Option<Wire>>,
    /// Set when the media part of `wire`'s output is a `SharedForm`: the tick then
    /// asks the wire only for the player's own output and adds the shared bytes.
    shared_form: Cell<Option<SharedForm>>,
    /// What a tick's write could not send: the writer task sends it first.
    carry: RefCell<Vec<Bytes>>,
    /// The stream's cohort on this shard (players that merge and share their bytes).
    cohort: RefCell<Option<Rc<Cohort>>>,
    /// The cohort slot while in step (frames reach this player through the cohort,
    /// not `push`), else `NO_SLOT`.
    slot: Cell<usize>,
    /// On the cohort's `outside` list (it may have stepped in since: pruned when
    /// the list is next walked).
    in_outside: Cell<bool>,
    /// Where this player's timeline starts on the stream's: its first media frame
    /// (the earliest of the GOP it starts with) goes out at about 0, its codec
    /// headers and metadata at 0 (see `Frame::ts_on`). Set with the first media
    /// frame queued, fixed after: the stream's own clock is continuous across
    /// publishers (the home's rebase), so the player's is too. Players of one
    /// stream mostly have different bases; the media bodies stay shared (only the
    /// small tag or chunk headers are the player's own, see `SharedForm::pieces`).
    base: Cell<Option<u32>>,
    /// The tracks the stream had when the player joined (audio, video), for the
    /// FLV header's flags; `None` when it did not know yet.
    tracks: Cell<Option<(bool, bool)>>,
}

impl Player {
    pub fn new(id: u64, protocol: Protocol, addr: SocketAddr, limits: PlayerLimits) -> Self {
        Self {
            id,
            protocol,
            addr,
            limits,
            // Video starts at a keyframe: the GOP snapshot begins with one; without a
            // cached GOP the player waits for the next keyframe.
            queue: RefCell::new(Queue { awaiting_key: true, ..Queue::default() }),
            waker: Cell::new(None),
            dropped: Cell::new(0),
            sent_bytes: Cell::new(0),
            joined: Instant::now(),
            fd: Cell::new(-1),
            listed: Cell::new(false),
            lane: (id % lanes() as u64) as usize,
            wire: RefCell::new(None),
            shared_form: Cell::new(None),
            carry: RefCell::new(Vec::new()),
            cohort: RefCell::new(None),
            slot: Cell::new(NO_SLOT),
            in_outside: Cell::new(false),
            base: Cell::new(None),
            tracks: Cell::new(None),
            relay: Cell::new(false),
        }
    }

    /// Where this player's timeline starts on the stream's (see the field).
    pub fn base(&self) -> Option<u32> {
        self.base.get()
    }

    /// The stream's tracks (audio, video) as known when the player joined.
    pub fn tracks(&self) -> Option<(bool, bool)> {
        self.tracks.get()
    }

    pub fn set_tracks(&self, tracks: Option<(bool, bool)>) {
        self.tracks.set(tracks);
    }

    pub fn set_fd(&self, fd: i32) {
        self.fd.set(fd);
    }

    /// Declares that the media part of this player's wire is `form` (see `Wire`):
    /// its wire must then produce exactly `form`'s bytes for the frames, after its own
    /// output, and must only have own output after a `notify()`.
    pub fn set_shared_form(&self, form: Option<SharedForm>) {
        self.shared_form.set(form);
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Queues a frame, applying the overflow policy.
    pub fn push(self: &Rc<Self>, f: &Arc<Frame>, now: Instant) {
        if self.is_in_step() {
            // The cohort has it.
            return;
        }
        if f.relay_only() && !self.relay.get() {
            return;
        }
        let mut q = self.queue.borrow_mut();
        if q.end.is_some() {
            return;
        }
        if f.kind == FrameKind::Video && !f.header {
            if q.awaiting_key && !f.keyframe {
                self.dropped.set(self.dropped.get() + 1);
                return;
            }
            if f.keyframe {
                q.awaiting_key = false;
            }
        }
        let span = q.first_media.map_or(0, |t| f.timestamp.wrapping_sub(t));
        if q.bytes + f.len() > self.limits.max_bytes || (span > self.limits.max_ms && span < u32::MAX / 2) {
            // Overflow: keep headers, drop media, resume at the next keyframe.
            let before = q.frames.len();
            q.frames.retain(|x| x.header);
            q.first_media = None;
            q.bytes = q.frames.iter().map(|x| x.len()).sum();
            self.dropped.set(self.dropped.get() + (before - q.frames.len()) as u64);
            q.awaiting_key = true;
            let since = *q.overflow_since.get_or_insert(now);
            if now.duration_since(since) > self.limits.disconnect_after {
                drop(q);
                tracing::info!(player = self.id, addr = %self.addr, "player too slow for too long; disconnecting");
                self.end(PlayerEnd::Kicked);
                return;
            }
            if f.kind == FrameKind::Video && !f.header && !f.keyframe {
                self.dropped.set(self.dropped.get() + 1);
                return;
            }
        }
        q.bytes += f.len();
        if !f.header && q.first_media.is_none() {
            q.first_media = Some(f.timestamp);
        }
        if !f.header && !f.is_rtp() && !f.relay_only() && self.base.get().is_none() {
            self.base.set(Some(f.timestamp));
        }
        q.frames.push_back(f.clone());
        let first = q.frames.len() == 1;
        drop(q);
        if first {
            if self.limits.merge {
                if !self.listed.replace(true) {
                    list_for_flush(self);
                }
            } else {
                self.wake();
            }
        }
    }

    /// The flush tick's work for this player: `Some(bytes)` when it wrote (or had
    /// nothing to write) without waking the writer task, `None` when the task was
    /// woken or is busy.
    fn flush_direct(&self, scratch: &mut Scratch) -> Option<usize> {
        self.listed.set(false);
        // No waker: the writer is busy with a write and drains the queue after it.
        let waker = self.waker.take()?;
        let fd = self.fd.get();
        let (simple, nothing) = {
            let q = self.queue.borrow();
            let quiet = q.end.is_none() && !q.notified;
            (quiet && !q.frames.is_empty(), quiet && q.frames.is_empty())
        };
        if nothing {
            // The queue was cleared since (overflow): stay parked.
            self.waker.set(Some(waker));
            return Some(0);
        }
        let mut wire = self.wire.borrow_mut();
        let Some(wire) = wire.as_mut().filter(|_| simple && fd >= 0 && self.carry.borrow().is_empty()) else {
            waker.wake();
            return None;
        };
        scratch.bufs.clear();
        {
            let mut q = self.queue.borrow_mut();
            q.bytes = 0;
            q.overflow_since = None;
            q.first_media = None;
            if let Some(form) = self.shared_form.get() {
                // Only media: the player's own output (session messages, pongs) comes
                // with a notify(), which sends this player down the writer's path.
                let mut bufs = std::mem::take(&mut scratch.bufs);
                scratch.shared(form, q.frames.make_contiguous(), self.base.get(), &mut bufs);
                scratch.bufs = bufs;
                q.frames.clear();
            } else {
                scratch.frames.extend(q.frames.drain(..));
            }
        }
        if self.shared_form.get().is_none() {
            wire(&scratch.frames, self.base.get(), &mut scratch.bufs);
            scratch.frames.clear();
        }
        let total: usize = scratch.bufs.iter().map(Bytes::len).sum();
        if total == 0 {
            self.waker.set(Some(waker));
            return Some(0);
        }
        // Full (EAGAIN) or broken (0): the writer task waits for the socket, or meets
        // the error with its own write and ends.
        let sent = send_now(fd, &scratch.bufs, &mut scratch.iov).unwrap_or_default();
        self.sent_bytes.set(self.sent_bytes.get() + sent as u64);
        if sent == total {
            scratch.bufs.clear();
            self.waker.set(Some(waker));
            return Some(sent);
        }
        *self.carry.borrow_mut() = rest_after(&mut scratch.bufs, sent);
        waker.wake();
        None
    }

    /// Gives this player its stream's cohort on the shard (or takes it away). The
    /// player starts out of step (on the cohort's `outside` list); only players that
    /// merge (the tick writes for them) ever step in.
    pub fn set_cohort(self: &Rc<Self>, cohort: Option<Rc<Cohort>>) {
        self.step_out(None, Some(self));
        let old = self.cohort.replace(cohort.clone());
        if let Some(c) = old
            && self.in_outside.replace(false)
        {
            c.outside.borrow_mut().retain(|p| !Rc::ptr_eq(p, self));
        }
        if let Some(c) = cohort {
            self.in_outside.set(true);
            c.outside.borrow_mut().push(self.clone());
        }
    }

    /// Whether frames reach this player through its cohort.
    pub fn is_in_step(&self) -> bool {
        self.slot.get() != NO_SLOT
    }

    /// Bytes sent to this player (by its writer, the tick, and its cohort).
    pub fn bytes_sent(&self) -> u64 {
        let in_cohort = match (self.slot.get(), self.cohort.borrow().as_ref()) {
            (NO_SLOT, _) | (_, None) => 0,
            (i, Some(c)) => c.lane(self.lane).slots.borrow().get(i).map_or(0, |s| s.sent),
        };
        self.sent_bytes.get() + in_cohort
    }

    /// Joins the cohort if this player is in step: every frame given to it is sent,
    /// its writer is idle and nothing of its own waits (called by the tick after a
    /// complete write). From here until it leaves, only `step_out` wakes its writer.
    fn step_in(self: &Rc<Self>) {
        let Some(form) = self.shared_form.get() else { return };
        // A player without a timeline has had no media yet: it takes its first frames
        // one by one (`push` places its timeline).
        if self.is_in_step() || !self.limits.merge || self.fd.get() < 0 || self.base.get().is_none() {
            return;
        }
        let cohort = self.cohort.borrow();
        let Some(c) = cohort.as_ref() else { return };
        {
            let q = self.queue.borrow();
            if !q.frames.is_empty() || q.awaiting_key || q.end.is_some() || q.notified {
                return;
            }
        }
        if !self.carry.borrow().is_empty() || self.wire.borrow().is_none() {
            return;
        }
        // The writer's waker is parked (idle); take and put back to look.
        let Some(w) = self.waker.take() else { return };
        self.waker.set(Some(w));
        let slot = Slot { fd: self.fd.get(), form, base: self.base.get(), sent: 0, player: Some(self.clone()) };
        let lane = c.lane(self.lane);
        let mut slots = lane.slots.borrow_mut();
        let i = match lane.free.borrow_mut().pop() {
            Some(i) => {
                slots[i] = slot;
                i
            }
            None => {
                slots.push(slot);
                slots.len() - 1
            }
        };
        self.slot.set(i);
        lane.members.set(lane.members.get() + 1);
        c.stepped.set(c.stepped.get() + 1);
        // Left on `outside` until that list is next walked (which prunes it).
    }

    /// Leaves the cohort without taking its pending frames (they were sent): back
    /// on the `outside` list, where `deliver` reaches it frame by frame.
    fn leave_step(&self, me: &Rc<Player>) {
        let i = self.slot.replace(NO_SLOT);
        if i == NO_SLOT {
            return;
        }
        if let Some(c) = self.cohort.borrow().as_ref() {
            let lane = c.lane(self.lane);
            let freed = {
                let mut slots = lane.slots.borrow_mut();
                slots.get_mut(i).map(|s| (std::mem::take(&mut s.sent), s.player.take()))
            };
            if let Some((sent, p)) = freed {
                self.sent_bytes.set(self.sent_bytes.get() + sent);
                lane.free.borrow_mut().push(i);
                lane.members.set(lane.members.get().saturating_sub(1));
                // Dropped outside the borrow (`me` keeps the player alive).
                drop(p);
            }
            c.stepped.set(c.stepped.get().saturating_sub(1));
            if !self.in_outside.replace(true) {
                c.outside.borrow_mut().push(me.clone());
            }
        }
    }

    /// Leaves the cohort with the frames it has not sent yet (`frames`, or the
    /// cohort's pending ones) moved to this player's own queue. `me` is this
    /// player's `Rc` when the caller has it (else the cohort's slot has it).
    fn step_out(&self, frames: Option<&[Arc<Frame>]>, me: Option<&Rc<Player>>) {
        let i = self.slot.get();
        if i == NO_SLOT {
            return;
        }
        let me = match me {
            Some(me) => me.clone(),
            None => match self.cohort.borrow().as_ref().and_then(|c| c.member(self.lane, i)) {
                Some(me) => me,
                None => {
                    // Unreachable: a player in step holds its slot.
                    debug_assert!(false, "a player in step has a slot");
                    self.slot.set(NO_SLOT);
                    return;
                }
            },
        };
        self.leave_step(&me);
        let cohort = self.cohort.borrow();
        let pending;
        let frames = match (frames, cohort.as_ref()) {
            (Some(f), _) => f,
            (None, Some(c)) => {
                pending = c.lane(self.lane).pending.borrow();
                &pending[..]
            }
            (None, None) => return,
        };
        if frames.is_empty() {
            return;
        }
        let mut q = self.queue.borrow_mut();
        for f in frames {
            q.bytes += f.len();
            if !f.header && q.first_media.is_none() {
                q.first_media = Some(f.timestamp);
            }
            q.frames.push_back(f.clone());
        }
        drop(q);
        if !self.listed.replace(true) {
            list_for_flush(&me);
        }
    }

    /// Queues the start of a stream (GOP cache snapshot) for a joining player. Its
    /// timeline starts at the snapshot's earliest media frame (an audio frame may
    /// come a little before the keyframe that starts the GOP).
    pub fn push_all(self: &Rc<Self>, frames: &[Arc<Frame>], now: Instant) {
        // A start longer than 3/4 of the queue's bounds (the cache holds more than one
        // GOP, see `gop::START_VIDEO_FRAMES`) starts at a later keyframe instead.
        let headers: Vec<Arc<Frame>> = frames.iter().filter(|f| f.header).cloned().collect();
        let media: Vec<&Arc<Frame>> = frames.iter().filter(|f| !f.header).collect();
        let fits = |from: usize| {
            let rest = &media[from..];
            let bytes: usize = rest.iter().map(|f| f.len()).sum();
            let span = match (rest.first(), rest.last()) {
                (Some(a), Some(b)) => b.timestamp.wrapping_sub(a.timestamp),
                _ => 0,
            };
            bytes <= self.limits.max_bytes / 4 * 3 && (span <= self.limits.max_ms / 4 * 3 || span > u32::MAX / 2)
        };
        let mut from = 0;
        if !fits(0) {
            let keys: Vec<usize> = media
                .iter()
                .enumerate()
                .filter(|(_, f)| f.kind == FrameKind::Video && f.keyframe)
                .map(|(i, _)| i)
                .collect();
            from = keys.iter().copied().find(|&i| fits(i)).or(keys.last().copied()).unwrap_or(0);
        }
        let frames: Vec<Arc<Frame>> = headers.into_iter().chain(media[from..].iter().map(|f| (*f).clone())).collect();
        let frames = &frames[..];
        if self.base.get().is_none() {
            let earliest = frames
                .iter()
                .filter(|f| !f.header && !f.is_rtp())
                .map(|f| f.timestamp)
                .reduce(|a, b| if b.wrapping_sub(a) > i32::MAX as u32 { b } else { a });
            self.base.set(earliest);
        }
        for f in frames {
            self.push(f, now);
        }
    }

    /// Frames were lost upstream: skip video until the next keyframe.
    pub fn resync(&self) {
        self.step_out(None, None);
        self.queue.borrow_mut().awaiting_key = true;
    }

    pub fn end(&self, how: PlayerEnd) {
        // A stream's end sends what the cohort still has for this player first.
        self.step_out(None, None);
        let mut q = self.queue.borrow_mut();
        if q.end.is_none() || how == PlayerEnd::Kicked {
            q.end = Some(how);
        }
        drop(q);
        if how == PlayerEnd::Kicked && self.fd.get() >= 0 {
            // The player's own socket; the connection task still owns (and later closes) it.
            crate::net::sys::shutdown(self.fd.get());
        }
        self.wake();
    }

    pub fn is_ended(&self) -> bool {
        self.queue.borrow().end.is_some()
    }

    /// Wakes the writer without media (the session has output to send).
    pub fn notify(&self) {
        self.step_out(None, None);
        self.queue.borrow_mut().notified = true;
        self.wake();
    }

    pub fn queued_bytes(&self) -> usize {
        self.queue.borrow().bytes
    }

    /// Waits until woken with work (by the flush tick, or at once without merging),
    /// then drains the queue.
    pub async fn next_batch(&self) -> Batch {
        poll_fn(|cx| {
            let q = self.queue.borrow();
            if !q.frames.is_empty() || q.end.is_some() || q.notified || !self.carry.borrow().is_empty() {
                // A registered waker means "idle" to the flush tick: never leave one
                // behind while the writer works.
                self.waker.take();
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        let mut q = self.queue.borrow_mut();
        q.notified = false;
        if q.end == Some(PlayerEnd::Kicked) {
            return Batch::End(PlayerEnd::Kicked);
        }
        if !self.carry.borrow().is_empty() && q.frames.is_empty() {
            // The rest of a tick's write goes out before a goodbye.
            return Batch::Frames(Vec::new());
        }
        if q.frames.is_empty() {
            if let Some(e) = q.end {
                return Batch::End(e);
            }
            return Batch::Frames(Vec::new());
        }
        q.bytes = 0;
        q.overflow_since = None;
        q.first_media = None;
        Batch::Frames(q.frames.drain(..).collect())
    }
}

/// Owned buffers for one vectored write (`writev` / io_uring `IORING_OP_WRITEV`):
/// the `Bytes` keep the memory alive while the kernel reads it.
pub struct IoVecs {
    bufs: Vec<Bytes>,
    iov: Vec<libc::iovec>,
}

/// Most buffers in one write (IOV_MAX is 1024 on Linux).
pub const MAX_IOVECS: usize = 512;

impl IoVecs {
    pub fn new(bufs: Vec<Bytes>) -> Self {
        let iov = bufs
            .iter()
            .filter(|b| !b.is_empty())
            .map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() })
            .collect();
        Self { bufs, iov }
    }

    pub fn total_len(&self) -> usize {
        self.iov.iter().map(|v| v.iov_len).sum()
    }

    pub fn into_bufs(self) -> Vec<Bytes> {
        self.bufs
    }
}

// SAFETY: the iovecs point into `bufs`, whose heap memory does not move while
// `IoVecs` exists (moving a `Bytes` handle does not move its data), and `iov` is
// never changed after construction.
unsafe impl monoio::buf::IoVecBuf for IoVecs {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }
    fn read_iovec_len(&self) -> usize {
        self.iov.len()
    }
}

/// Writes `bufs` with as few vectored writes as possible.
///
/// A short write is resumed by slicing the `Bytes` that were not (fully) sent and
/// writing those: monoio 0.2.4's `write_vectored_all` does not advance an iovec's
/// base after a partial write (`IoVecMeta::consume` drops the `add`), so it would
/// resend bytes already sent and corrupt the stream of any player whose socket fills.
pub async fn write_all_vectored<W: monoio::io::AsyncWriteRent>(
    writer: &mut W,
    mut bufs: Vec<Bytes>,
) -> std::io::Result<usize> {
    let mut total = 0;
    while !bufs.is_empty() {
        let rest = if bufs.len() > MAX_IOVECS { bufs.split_off(MAX_IOVECS) } else { Vec::new() };
        let v = IoVecs::new(std::mem::replace(&mut bufs, rest));
        let len = v.total_len();
        if len == 0 {
            continue;
        }
        let (res, v) = writer.writev(v).await;
        let n = match res {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        total += n;
        if n < len {
            let mut unsent = rest_after(&mut v.into_bufs(), n);
            unsent.append(&mut bufs);
            bufs = unsent;
        }
    }
    Ok(total)
}

/// Sends `bufs` (at most `MAX_IOVECS` of them) without blocking: one `send` for one
/// buffer, one `sendmsg` for more. `fd` is the player's socket, open while its
/// writer task (idle in `next_batch`) holds the write half.
fn send_now(fd: i32, bufs: &[Bytes], iov: &mut Vec<libc::iovec>) -> std::io::Result<usize> {
    match bufs {
        [one] => crate::net::sys::send_nonblocking(fd, one),
        _ => crate::net::sys::sendmsg_nonblocking(fd, bufs, MAX_IOVECS, iov),
    }
}

/// What is left of `bufs` after the first `sent` bytes (`bufs` is emptied).
fn rest_after(bufs: &mut Vec<Bytes>, mut sent: usize) -> Vec<Bytes> {
    let mut rest = Vec::with_capacity(bufs.len());
    for b in bufs.drain(..) {
        if sent >= b.len() {
            sent -= b.len();
        } else {
            rest.push(b.slice(sent..));
            sent = 0;
        }
    }
    rest
}

/// Takes the player's wire away when `write_loop` ends, however it ends (the wire
/// may hold the connection, which holds the player).
struct WireGuard<'a>(&'a Player);

impl Drop for WireGuard<'_> {
    fn drop(&mut self) {
        self.0.wire.borrow_mut().take();
        self.0.carry.borrow_mut().clear();
        // Not written to any more: out of step (the shard's `leave` then takes its
        // cohort away).
        self.0.step_out(None, None);
    }
}

/// Runs a player's write side until its stream ends, it is kicked, or a write fails.
/// `wire` turns a batch of frames into wire buffers (and may add its own, e.g.
/// session output or framing); the flush tick uses the same wire while this loop
/// is idle.
pub async fn write_loop<W: monoio::io::AsyncWriteRent>(
    player: &Player,
    writer: &mut W,
    stats: &crate::stats::ShardStats,
    wire: Wire,
) -> Result<PlayerEnd, std::io::Error> {
    *player.wire.borrow_mut() = Some(wire);
    let _guard = WireGuard(player);
    loop {
        match player.next_batch().await {
            Batch::End(e) => return Ok(e),
            Batch::Frames(frames) => {
                let mut bufs = std::mem::take(&mut *player.carry.borrow_mut());
                if let Some(wire) = player.wire.borrow_mut().as_mut() {
                    wire(&frames, player.base.get(), &mut bufs);
                }
                if bufs.is_empty() {
                    continue;
                }
                let n = write_all_vectored(writer, bufs).await?;
                player.sent_bytes.set(player.sent_bytes.get() + n as u64);
                stats.bytes_out.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
