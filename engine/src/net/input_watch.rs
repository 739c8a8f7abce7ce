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
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn a_sweep_reports_only_sockets_with_input_and_end_of_stream() {
        let watch = InputWatch::new(Arc::default()).unwrap();
        let (mut a1, b1) = pair();
        let (a2, b2) = pair();
        let (a3, b3) = pair();
        let w1 = watch.watch(b1.as_raw_fd()).unwrap();
        let w2 = watch.watch(b2.as_raw_fd()).unwrap();
        let w3 = watch.watch(b3.as_raw_fd()).unwrap();
        assert_eq!(watch.len(), 3);
        assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 3);
        assert_eq!(watch.sweep(), 0, "nothing sent yet");

        a1.write_all(b"ack").unwrap();
        drop(a3); // end of stream
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(watch.sweep(), 2);
        assert!(w1.readiness.ready.get() && !w2.readiness.ready.get() && w3.readiness.ready.get());

        // Level-triggered: still ready until read.
        w1.readiness.ready.set(false);
        assert_eq!(watch.sweep(), 2);

        let mut buf = [0u8; 16];
        let n = futures_lite_block_on(w1.recv(&mut buf)).unwrap();
        assert_eq!(&buf[..n], b"ack");
        let n = futures_lite_block_on(w3.recv(&mut buf)).unwrap();
        assert_eq!(n, 0, "end of stream reads as 0");
        drop(w3);
        assert_eq!(watch.sweep(), 0, "read sockets and removed ones are not reported");

        // A dropped guard takes the socket out for good.
        drop(w2);
        let mut a2 = a2;
        a2.write_all(b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(watch.sweep(), 0);
        assert_eq!(watch.len(), 1, "w1 still held");
        assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 1);
        drop(w1);
        assert!(watch.is_empty());
        assert_eq!(watch.stats.watched_inputs.load(Ordering::Relaxed), 0);
        drop((a1, b1, b2));
    }

    #[test]
    fn a_waiting_reader_is_woken_by_the_sweep_and_reads_in_order() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
        rt.block_on(async {
            let watch = InputWatch::new(Arc::default()).unwrap();
            let (mut a, b) = pair();
            let w = Rc::new(watch.watch(b.as_raw_fd()).unwrap());
            let got = Rc::new(RefCell::new(Vec::new()));
            let (w2, got2) = (w.clone(), got.clone());
            let reader = monoio::spawn(async move {
                let mut buf = [0u8; 4];
                loop {
                    let n = w2.recv(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got2.borrow_mut().extend_from_slice(&buf[..n]);
                }
            });
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            a.write_all(b"first-").unwrap();
            monoio::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(got.borrow().is_empty(), "no sweep, no read");
            assert_eq!(watch.sweep(), 1);
            monoio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(&got.borrow()[..], b"first-");
            a.write_all(b"second").unwrap();
            drop(a);
            monoio::time::sleep(std::time::Duration::from_millis(20)).await;
            watch.sweep();
            reader.await;
            assert_eq!(&got.borrow()[..], b"first-second");
            drop(b);
        });
    }

    /// Polls a future that is ready at once (the socket has input).
    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("not ready"),
        }
    }
}
