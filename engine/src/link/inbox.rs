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
mod tests;
