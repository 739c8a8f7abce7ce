//! The shard's input watch: readiness of sockets whose input is rare and never
//! urgent (RTMP players: acknowledgements, ping responses, now and then a command),
//! collected once per flush tick instead of one wake-up of the shard per message.
//!
//! A standing read per player costs a wake-up of the shard's thread for every
//! acknowledgement a player sends (at 2000 players, about 80 a second, each tens of
//! microseconds in a VM). Here the sockets sit in one epoll set that nobody waits
//! on: input only marks them ready in the kernel. The shard's flush tick, which
//! runs anyway, asks the set once (`epoll_wait` with a zero timeout) and wakes the
//! tasks whose sockets have input; they read it without blocking, in the same
//! wake-up. Input, end of stream and errors are seen within one tick (the merge
//! window's lane period).
//!
//! Level-triggered: a socket stays ready until its task has read everything, so a
//! socket not reported in one sweep (more ready than [`SWEEP_EVENTS`]) is reported
//! in the next, and a stale report only costs one `recv` that finds nothing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Poll, Waker};

use crate::net::sys::{Epoll, EpollEvent};
use crate::stats::ShardStats;

/// Sockets reported per sweep at most.
pub const SWEEP_EVENTS: usize = 512;

#[derive(Default)]
struct Readiness {
    ready: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// One shard's watch (the shard's thread only).
pub struct InputWatch {
    epoll: Epoll,
    next: Cell<u64>,
    watched: RefCell<HashMap<u64, Rc<Readiness>>>,
    /// `watched_inputs` is kept equal to the number of watched sockets.
    stats: Arc<ShardStats>,
}

impl InputWatch {
    pub fn new(stats: Arc<ShardStats>) -> io::Result<Rc<Self>> {
        Ok(Rc::new(InputWatch { epoll: Epoll::new()?, next: Cell::new(1), watched: RefCell::default(), stats }))
    }

    /// Sockets being watched.
    pub fn len(&self) -> usize {
        self.watched.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a socket. It stays watched until the returned guard drops, which must
    /// happen before the socket is closed.
    pub fn watch(self: &Rc<Self>, fd: RawFd) -> io::Result<Watched> {
        let token = self.next.get();
        self.next.set(token + 1);
        self.epoll.add(fd, token)?;
        let readiness = Rc::new(Readiness::default());
        self.watched.borrow_mut().insert(token, readiness.clone());
        self.stats.watched_inputs.fetch_add(1, Ordering::Relaxed);
        Ok(Watched { watch: self.clone(), fd, token, readiness })
    }

    /// Wakes the tasks of the sockets that have input (or end of stream, or an
    /// error); one system call, none when nothing is watched. Returns how many.
    pub fn sweep(&self) -> usize {
        if self.watched.borrow().is_empty() {
            return 0;
        }
        let mut evs = [EpollEvent { events: 0, u64: 0 }; SWEEP_EVENTS];
        let n = self.epoll.poll_now(&mut evs);
        if n == 0 {
            return 0;
        }
        let watched = self.watched.borrow();
        let mut woken = 0;
        for ev in &evs[..n] {
            let token = ev.u64;
            if let Some(r) = watched.get(&token) {
                r.ready.set(true);
                if let Some(w) = r.waker.borrow_mut().take() {
                    w.wake();
                }
                woken += 1;
            }
        }
        woken
    }
}

/// A watched socket; dropping it takes the socket out of the watch.
pub struct Watched {
    watch: Rc<InputWatch>,
    fd: RawFd,
    token: u64,
    readiness: Rc<Readiness>,
}

impl Watched {
    /// Reads what the socket has without blocking, waiting for a sweep to report
    /// it ready when it has nothing. `Ok(0)` is the end of the stream.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let e = match crate::net::sys::recv_nonblocking(self.fd, buf) {
                Ok(n) => return Ok(n),
                Err(e) => e,
            };
            match e.kind() {
                io::ErrorKind::WouldBlock => self.ready().await,
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
        }
    }

    /// Until a sweep reports the socket (at once if one did since the last wait).
    async fn ready(&self) {
        poll_fn(|cx| {
            if self.readiness.ready.replace(false) {
                Poll::Ready(())
            } else {
                *self.readiness.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.watch.watched.borrow_mut().remove(&self.token);
        self.watch.stats.watched_inputs.fetch_sub(1, Ordering::Relaxed);
        self.watch.epoll.remove(self.fd);
    }
}

#[cfg(test)]
mod tests;
