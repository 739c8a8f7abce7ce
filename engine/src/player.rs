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

use crate::frame::{Frame, MediaKind};
use crate::link::Protocol;
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

/// Turns a batch of queued frames into the player's wire buffers (framing, and
/// whatever the protocol session has to send); an empty batch means "only the
/// session's output".
pub type Wire = Box<dyn FnMut(&[Arc<Frame>], &mut Vec<Bytes>)>;

thread_local! {
    /// Players with frames waiting for this shard's next flush tick.
    static FLUSH_LIST: RefCell<Vec<Rc<Player>>> = const { RefCell::new(Vec::new()) };
    /// Buffers the flush tick reuses for every player.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    frames: Vec<Arc<Frame>>,
    bufs: Vec<Bytes>,
    iov: Vec<libc::iovec>,
}

/// What one flush tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Players on the list (written for, woken, or busy).
    pub players: usize,
    /// Players written for by the tick itself, without waking their writer.
    pub direct: usize,
    /// Bytes those writes sent.
    pub bytes: u64,
}

/// Flushes every player listed since the last tick (called by the shard's flush
/// tick): writes for idle writers directly, wakes writers that must wait for their
/// socket or have something else to do.
pub fn flush_tick() -> Flushed {
    let players = FLUSH_LIST.with(|l| std::mem::take(&mut *l.borrow_mut()));
    let mut out = Flushed { players: players.len(), ..Flushed::default() };
    SCRATCH.with(|sc| {
        let mut sc = sc.borrow_mut();
        for p in &players {
            if let Some(n) = p.flush_direct(&mut sc) {
                out.direct += 1;
                out.bytes += n as u64;
            }
        }
    });
    // Hand the list's storage back for the next tick.
    FLUSH_LIST.with(|l| {
        let mut l = l.borrow_mut();
        if l.is_empty() {
            let mut v = players;
            v.clear();
            *l = v;
        }
    });
    out
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
    pub id: u64,
    pub protocol: Protocol,
    pub addr: SocketAddr,
    limits: PlayerLimits,
    q: RefCell<Queue>,
    waker: Cell<Option<Waker>>,
    /// Counters for stats.
    pub dropped: Cell<u64>,
    pub sent_bytes: Cell<u64>,
    pub joined: Instant,
    /// The socket, shut down on a kick so that a blocked write returns, and written
    /// by the flush tick while the writer task is idle.
    fd: Cell<i32>,
    /// On the shard's flush list.
    listed: Cell<bool>,
    /// The wire of the running `write_loop` (none before it starts and after it ends).
    wire: RefCell<Option<Wire>>,
    /// What a tick's write could not send: the writer task sends it first.
    carry: RefCell<Vec<Bytes>>,
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
            q: RefCell::new(Queue { awaiting_key: true, ..Queue::default() }),
            waker: Cell::new(None),
            dropped: Cell::new(0),
            sent_bytes: Cell::new(0),
            joined: Instant::now(),
            fd: Cell::new(-1),
            listed: Cell::new(false),
            wire: RefCell::new(None),
            carry: RefCell::new(Vec::new()),
        }
    }

    pub fn set_fd(&self, fd: i32) {
        self.fd.set(fd);
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Queues a frame, applying the overflow policy.
    pub fn push(self: &Rc<Self>, f: &Arc<Frame>, now: Instant) {
        let mut q = self.q.borrow_mut();
        if q.end.is_some() {
            return;
        }
        if f.kind == MediaKind::Video && !f.header {
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
            if f.kind == MediaKind::Video && !f.header && !f.keyframe {
                self.dropped.set(self.dropped.get() + 1);
                return;
            }
        }
        q.bytes += f.len();
        if !f.header && q.first_media.is_none() {
            q.first_media = Some(f.timestamp);
        }
        q.frames.push_back(f.clone());
        let first = q.frames.len() == 1;
        drop(q);
        if first {
            if self.limits.merge {
                if !self.listed.replace(true) {
                    FLUSH_LIST.with(|l| l.borrow_mut().push(self.clone()));
                }
            } else {
                self.wake();
            }
        }
    }

    /// The flush tick's work for this player: `Some(bytes)` when it wrote (or had
    /// nothing to write) without waking the writer task, `None` when the task was
    /// woken or is busy.
    fn flush_direct(&self, sc: &mut Scratch) -> Option<usize> {
        self.listed.set(false);
        // No waker: the writer is busy with a write and drains the queue after it.
        let waker = self.waker.take()?;
        let fd = self.fd.get();
        let (simple, nothing) = {
            let q = self.q.borrow();
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
        {
            let mut q = self.q.borrow_mut();
            q.bytes = 0;
            q.overflow_since = None;
            q.first_media = None;
            sc.frames.extend(q.frames.drain(..));
        }
        sc.bufs.clear();
        wire(&sc.frames, &mut sc.bufs);
        sc.frames.clear();
        let total: usize = sc.bufs.iter().map(Bytes::len).sum();
        if total == 0 {
            self.waker.set(Some(waker));
            return Some(0);
        }
        let sent = match send_now(fd, &sc.bufs, &mut sc.iov) {
            Ok(n) => n,
            // Full (EAGAIN) or broken: the writer task waits for the socket, or meets
            // the error with its own write and ends.
            Err(_) => 0,
        };
        self.sent_bytes.set(self.sent_bytes.get() + sent as u64);
        if sent == total {
            sc.bufs.clear();
            self.waker.set(Some(waker));
            return Some(sent);
        }
        *self.carry.borrow_mut() = rest_after(&mut sc.bufs, sent);
        waker.wake();
        None
    }

    /// Queues the start of a stream (GOP cache snapshot) for a joining player.
    pub fn push_all(self: &Rc<Self>, frames: &[Arc<Frame>], now: Instant) {
        for f in frames {
            self.push(f, now);
        }
    }

    /// Frames were lost upstream: skip video until the next keyframe.
    pub fn resync(&self) {
        self.q.borrow_mut().awaiting_key = true;
    }

    pub fn end(&self, how: PlayerEnd) {
        let mut q = self.q.borrow_mut();
        if q.end.is_none() || how == PlayerEnd::Kicked {
            q.end = Some(how);
        }
        drop(q);
        if how == PlayerEnd::Kicked && self.fd.get() >= 0 {
            // SAFETY: shutting down the player's own socket; the connection task still owns
            // (and later closes) the fd.
            unsafe {
                libc::shutdown(self.fd.get(), libc::SHUT_RDWR);
            }
        }
        self.wake();
    }

    pub fn is_ended(&self) -> bool {
        self.q.borrow().end.is_some()
    }

    /// Wakes the writer without media (the session has output to send).
    pub fn notify(&self) {
        self.q.borrow_mut().notified = true;
        self.wake();
    }

    pub fn queued_bytes(&self) -> usize {
        self.q.borrow().bytes
    }

    /// Waits until woken with work (by the flush tick, or at once without merging),
    /// then drains the queue.
    pub async fn next_batch(&self) -> Batch {
        poll_fn(|cx| {
            let q = self.q.borrow();
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
        let mut q = self.q.borrow_mut();
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
    w: &mut W,
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
        let (res, v) = w.writev(v).await;
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

/// Sends `bufs` (at most `MAX_IOVECS` of them) with one non-blocking `sendmsg`.
fn send_now(fd: i32, bufs: &[Bytes], iov: &mut Vec<libc::iovec>) -> std::io::Result<usize> {
    iov.clear();
    iov.extend(
        bufs.iter()
            .filter(|b| !b.is_empty())
            .take(MAX_IOVECS)
            .map(|b| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() }),
    );
    // SAFETY: msghdr is plain data; zeroed is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    loop {
        // SAFETY: the iovecs point into `bufs`, alive for the call; `fd` is the player's
        // socket, open while its writer task (idle in `next_batch`) holds the write half.
        let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
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
    }
}

/// Runs a player's write side until its stream ends, it is kicked, or a write fails.
/// `wire` turns a batch of frames into wire buffers (and may add its own, e.g.
/// session output or framing); the flush tick uses the same wire while this loop
/// is idle.
pub async fn write_loop<W: monoio::io::AsyncWriteRent>(
    player: &Player,
    w: &mut W,
    stats: &crate::engine::ShardStats,
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
                    wire(&frames, &mut bufs);
                }
                if bufs.is_empty() {
                    continue;
                }
                let n = write_all_vectored(w, bufs).await?;
                player.sent_bytes.set(player.sent_bytes.get() + n as u64);
                stats.bytes_out.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// A player writing to a real loopback socket whose reader starts late, so the
    /// tick's writes fill the socket and become partial: every byte must arrive once,
    /// in order, whether the tick or the writer task wrote it.
    async fn tick_and_writer_share_a_socket() -> (Vec<u8>, Vec<u8>, Flushed) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let mut got = vec![];
            s.read_to_end(&mut got).unwrap();
            got
        });
        let sock = std::net::TcpStream::connect(addr).unwrap();
        let small: libc::c_int = 4096;
        // SAFETY: setsockopt on our own socket with a valid option pointer.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                &small as *const _ as *const libc::c_void,
                4,
            );
        }
        sock.set_nonblocking(true).unwrap();
        let fd = sock.as_raw_fd();
        let mut stream = monoio::net::TcpStream::from_std(sock).unwrap();
        let limits =
            PlayerLimits { max_bytes: 64 << 20, max_ms: 600_000, disconnect_after: Duration::from_secs(60), merge: true };
        let player = Rc::new(Player::new(1, Protocol::HttpFlv, addr, limits));
        player.set_fd(fd);
        let p2 = player.clone();
        let writer = monoio::spawn(async move {
            let stats = crate::engine::ShardStats::default();
            let wire: Wire = Box::new(|frames: &[Arc<Frame>], bufs: &mut Vec<Bytes>| {
                bufs.extend(frames.iter().map(|f| f.payload.clone()));
            });
            let end = write_loop(&p2, &mut stream, &stats, wire).await;
            assert_eq!(end.unwrap(), PlayerEnd::StreamEnded);
            assert!(p2.wire.borrow().is_none(), "the wire is dropped when the loop ends");
            // The reader sees EOF (io_uring closes a dropped stream only on a later turn).
            let _ = monoio::io::AsyncWriteRent::shutdown(&mut stream).await;
        });
        monoio::time::sleep(Duration::from_millis(5)).await;
        let mut expected = vec![];
        let mut total = Flushed::default();
        let now = Instant::now();
        for round in 0..40u32 {
            for i in 0..8u32 {
                let n = (round * 8 + i) as u8;
                // AAC frames (always queued), 3 KiB each, numbered in every byte.
                let mut payload = vec![0xaf, 0x01];
                payload.resize(3072, n);
                expected.extend_from_slice(&payload);
                player.push(&Arc::new(Frame::new(MediaKind::Audio, round * 100 + i, Bytes::from(payload))), now);
            }
            let f = flush_tick();
            total.players += f.players;
            total.direct += f.direct;
            total.bytes += f.bytes;
            monoio::time::sleep(Duration::from_millis(2)).await;
        }
        player.end(PlayerEnd::StreamEnded);
        writer.await;
        (reader.join().unwrap(), expected, total)
    }

    #[test]
    fn tick_writes_directly_and_hands_partial_writes_to_the_writer_in_order() {
        let legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build();
        let (got, expected, f) = legacy.unwrap().block_on(tick_and_writer_share_a_socket());
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes lost, doubled or reordered");
        assert!(f.direct > 0 && f.bytes > 0, "the tick wrote itself: {f:?}");
        assert!(f.bytes < expected.len() as u64, "the writer task wrote the rest: {f:?}");
        // The same with io_uring, where the machine has it.
        if let Ok(mut rt) = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build() {
            let (got, expected, f) = rt.block_on(tick_and_writer_share_a_socket());
            assert!(got == expected, "io_uring: bytes lost, doubled or reordered");
            assert!(f.direct > 0 && f.bytes < expected.len() as u64, "io_uring: {f:?}");
        }
    }

    #[test]
    fn rest_after_slices_the_partly_sent_buffer() {
        let mut bufs = vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg"), Bytes::from_static(b"h")];
        assert_eq!(rest_after(&mut bufs.clone(), 0), bufs);
        assert_eq!(rest_after(&mut bufs.clone(), 3), vec![Bytes::from_static(b"defg"), Bytes::from_static(b"h")]);
        assert_eq!(rest_after(&mut bufs.clone(), 5), vec![Bytes::from_static(b"fg"), Bytes::from_static(b"h")]);
        assert!(rest_after(&mut bufs, 8).is_empty());
        assert!(bufs.is_empty());
    }
}
