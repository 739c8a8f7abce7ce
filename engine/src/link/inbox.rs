//! A bounded, lock-free, multi-producer queue with an async receiver that works
//! across runtimes (tokio ⇄ monoio): `crossbeam_queue::ArrayQueue` plus an
//! `AtomicWaker`. Producers never block: a full queue hands the value back.

use crossbeam_queue::ArrayQueue;
use futures_util::task::AtomicWaker;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

pub struct Inbox<T> {
    queue: ArrayQueue<T>,
    waker: AtomicWaker,
    dropped: AtomicU64,
}

impl<T> Inbox<T> {
    pub fn new(capacity: usize) -> Self {
        Self { queue: ArrayQueue::new(capacity.max(1)), waker: AtomicWaker::new(), dropped: AtomicU64::new(0) }
    }

    /// Queues `v` and wakes the receiver. A full queue returns `v` (and counts it).
    pub fn push(&self, v: T) -> Result<(), T> {
        match self.queue.push(v) {
            Ok(()) => {
                self.waker.wake();
                Ok(())
            }
            Err(v) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Err(v)
            }
        }
    }

    pub fn try_recv(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Waits for the next value. One receiver at a time.
    pub async fn recv(&self) -> T {
        poll_fn(|cx| {
            if let Some(v) = self.queue.pop() {
                return Poll::Ready(v);
            }
            self.waker.register(cx.waker());
            match self.queue.pop() {
                Some(v) => Poll::Ready(v),
                None => Poll::Pending,
            }
        })
        .await
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Values refused because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounded_and_ordered() {
        let q = Inbox::new(2);
        assert!(q.push(1).is_ok() && q.push(2).is_ok());
        assert_eq!(q.push(3), Err(3));
        assert_eq!(q.dropped(), 1);
        assert_eq!((q.try_recv(), q.try_recv(), q.try_recv()), (Some(1), Some(2), None));
    }

    #[test]
    fn wakes_a_receiver_on_another_runtime() {
        let q = Arc::new(Inbox::new(16));
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
            rt.block_on(async move {
                let mut got = vec![];
                for _ in 0..100 {
                    got.push(q2.recv().await);
                }
                got
            })
        });
        for i in 0..100 {
            while q.push(i).is_err() {
                std::thread::yield_now();
            }
            if i % 10 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        assert_eq!(t.join().unwrap(), (0..100).collect::<Vec<_>>());
    }
}
