//! A player's queue and writer: bounded in bytes and media duration, dropping video
//! to the next keyframe on overflow, and coalescing pending messages into one
//! vectored write per merge window.
//!
//! Merging is shard-wide: a player that gets its first pending frame parks its
//! writer's waker on the shard's flush list instead of waking it; the shard's
//! flush tick (every merge window) wakes all parked writers at once. That costs
//! one timer per shard per window, not one per player, and each player writes
//! everything that accumulated in one vectored write.

use crate::frame::{Frame, MediaKind};
use crate::link::Protocol;
use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
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

thread_local! {
    /// Writers waiting for this shard's next flush tick.
    static FLUSH_LIST: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Wakes every writer parked since the last tick (called by the shard's flush tick).
pub fn flush_tick() -> usize {
    let wakers = FLUSH_LIST.with(|l| std::mem::take(&mut *l.borrow_mut()));
    let n = wakers.len();
    for w in wakers {
        w.wake();
    }
    n
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
    /// The socket, shut down on a kick so that a blocked write returns.
    fd: Cell<i32>,
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
    pub fn push(&self, f: &Arc<Frame>, now: Instant) {
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
        // Headers carry old timestamps: measure the queued media from its first non-header frame.
        let span = q.frames.iter().take(4).find(|x| !x.header).map_or(0, |a| f.timestamp.wrapping_sub(a.timestamp));
        if q.bytes + f.len() > self.limits.max_bytes || (span > self.limits.max_ms && span < u32::MAX / 2) {
            // Overflow: keep headers, drop media, resume at the next keyframe.
            let before = q.frames.len();
            q.frames.retain(|x| x.header);
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
        q.frames.push_back(f.clone());
        let first = q.frames.len() == 1;
        drop(q);
        if first {
            if self.limits.merge {
                if let Some(w) = self.waker.take() {
                    FLUSH_LIST.with(|l| l.borrow_mut().push(w));
                }
            } else {
                self.wake();
            }
        }
    }

    /// Queues the start of a stream (GOP cache snapshot) for a joining player.
    pub fn push_all(&self, frames: &[Arc<Frame>], now: Instant) {
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
            if !q.frames.is_empty() || q.end.is_some() || q.notified {
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
        if q.frames.is_empty() {
            if let Some(e) = q.end {
                return Batch::End(e);
            }
            return Batch::Frames(Vec::new());
        }
        q.bytes = 0;
        q.overflow_since = None;
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
pub async fn write_all_vectored<W: monoio::io::AsyncWriteRent>(
    w: &mut W,
    mut bufs: Vec<Bytes>,
) -> std::io::Result<usize> {
    use monoio::io::AsyncWriteRentExt;
    let mut total = 0;
    while !bufs.is_empty() {
        let rest = if bufs.len() > MAX_IOVECS { bufs.split_off(MAX_IOVECS) } else { Vec::new() };
        let v = IoVecs::new(std::mem::replace(&mut bufs, rest));
        if v.total_len() == 0 {
            continue;
        }
        let (res, _) = w.write_vectored_all(v).await;
        total += res?;
    }
    Ok(total)
}

/// Runs a player's write side until its stream ends, it is kicked, or a write fails.
/// `wrap` turns a batch of frames into wire buffers (and may add its own, e.g.
/// session output or framing); an empty batch means "only the wrapper has output".
pub async fn write_loop<W: monoio::io::AsyncWriteRent>(
    player: &Player,
    w: &mut W,
    stats: &crate::engine::ShardStats,
    mut wrap: impl FnMut(Vec<Arc<Frame>>, &mut Vec<Bytes>),
) -> Result<PlayerEnd, std::io::Error> {
    loop {
        match player.next_batch().await {
            Batch::End(e) => return Ok(e),
            Batch::Frames(frames) => {
                let mut bufs = Vec::with_capacity(frames.len() + 2);
                wrap(frames, &mut bufs);
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
