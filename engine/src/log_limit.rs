//! Rate limit for the log lines that peers cause with bad input (malformed RTMP,
//! timeouts, refused keys): at most one line per client address per interval,
//! which then says how many were suppressed since the previous one. Without it,
//! junk from one address writes a line or two per connection, as fast as it can
//! connect. The table is bounded: when it is full, the addresses it cannot hold
//! share one entry.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// One line per address per this interval.
pub const PEER_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Most addresses tracked at once.
pub const PEER_LOG_ADDRESSES: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    logged_at: Instant,
    suppressed: u64,
}

/// Per-address log rate limit (the clock is passed in).
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    max_entries: usize,
    entries: HashMap<IpAddr, Entry>,
}

/// The shared entry of addresses the full table cannot hold.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(PEER_LOG_INTERVAL, PEER_LOG_ADDRESSES)
    }
}

impl LogLimiter {
    pub fn new(interval: Duration, max_entries: usize) -> Self {
        LogLimiter { interval, max_entries: max_entries.max(1), entries: HashMap::new() }
    }

    /// Whether a line about `ip` may be written now: `Some(n)` if so, `n` lines
    /// having been suppressed since the last one written; `None` to suppress it.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut key = ip;
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.max_entries {
            // Forget addresses whose interval is over and that have nothing to report.
            let interval = self.interval;
            self.entries.retain(|k, e| {
                *k == OVERFLOW || e.suppressed > 0 || now.saturating_duration_since(e.logged_at) < interval
            });
            if self.entries.len() >= self.max_entries {
                key = OVERFLOW;
            }
        }
        match self.entries.get_mut(&key) {
            Some(e) if now.saturating_duration_since(e.logged_at) < self.interval => {
                e.suppressed += 1;
                None
            }
            Some(e) => {
                let n = e.suppressed;
                *e = Entry { logged_at: now, suppressed: 0 };
                Some(n)
            }
            None => {
                self.entries.insert(key, Entry { logged_at: now, suppressed: 0 });
                Some(0)
            }
        }
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests;
