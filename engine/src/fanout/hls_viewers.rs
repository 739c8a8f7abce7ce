//! HLS viewers as sessions, kept by the stream's home shard (where every playlist and
//! segment request of the stream is answered).
//!
//! How a viewer is recognised: by its client address and User-Agent. HLS is stateless
//! HTTP, so a "viewer" has to be inferred from its requests; a session is the run of
//! playlist and segment requests from one (address, User-Agent) pair. It joins on its
//! first answered request and leaves after no request for about three target
//! durations (a playing client reloads the playlist every target duration and
//! fetches a segment as often).
//!
//! Why not a session id in the URLs (a redirect to `…m3u8?session=…` and segment URIs
//! rewritten with it): players differ in what they keep after a redirect (several
//! reload the original playlist URL, which would then open a new session on every
//! reload and count one viewer many times), segment URLs would stop being shared
//! and cacheable (`Cache-Control: public`) by CDNs and proxies, and a rewritten
//! playlist is one more copy per request. The cost of keying by address and
//! User-Agent: viewers behind one NAT with the same player count as one (an
//! undercount, never an overcount of real players).
//!
//! Bounds: sessions per stream, per client address within a stream (one client
//! rotating User-Agents cannot inflate a room's count past it) and per shard; a
//! request over a bound is served but not counted. User-Agents are kept as hashes
//! only, and never logged.

use crate::link::RoomId;
use crate::proto::http::StreamName;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most sessions of one stream.
pub const MAX_PER_STREAM: usize = 20_000;
/// Most sessions of one client address within one stream.
pub const MAX_PER_ADDR: usize = 32;
/// Most sessions on one shard (all its streams).
pub const MAX_TOTAL: usize = 100_000;
/// A session leaves after this many target durations without a request.
pub const IDLE_TARGETS: u32 = 3;
/// Longest User-Agent looked at (the rest is ignored).
pub const MAX_UA: usize = 256;

/// An HLS request's client, as the home needs it.
#[derive(Debug, Clone)]
pub struct HlsClient {
    pub ip: IpAddr,
    /// At most [`MAX_UA`] bytes.
    pub user_agent: String,
}

impl HlsClient {
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Self {
        let ua = user_agent.unwrap_or("");
        let mut end = ua.len().min(MAX_UA);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        Self { ip, user_agent: ua[..end].to_owned() }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: u64,
    pub ip: IpAddr,
    pub joined: Instant,
    pub last: Instant,
    /// Response bytes served to it.
    pub bytes: u64,
}

struct StreamSessions {
    room_id: RoomId,
    by_key: HashMap<(IpAddr, u64), Session>,
    per_addr: HashMap<IpAddr, usize>,
}

/// A session that joined or left: (room id, stream name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub room_id: RoomId,
    pub stream: StreamName,
}

/// The sessions of the streams homed on one shard.
pub struct HlsViewers {
    streams: HashMap<StreamName, StreamSessions>,
    total: usize,
    hasher: RandomState,
}

impl Default for HlsViewers {
    fn default() -> Self {
        Self { streams: HashMap::new(), total: 0, hasher: RandomState::new() }
    }
}

impl HlsViewers {
    /// A request of `client` for `stream` (live, of `room_id`) was answered with
    /// `bytes`: refreshes its session, or opens one (returned) within the bounds.
    pub fn touch(
        &mut self,
        stream: &StreamName,
        room_id: RoomId,
        client: &HlsClient,
        bytes: u64,
        now: Instant,
        new_id: impl FnOnce() -> u64,
    ) -> Option<Change> {
        let key = (client.ip, self.hasher.hash_one(client.user_agent.as_bytes()));
        if let Some(s) = self.streams.get_mut(stream)
            && let Some(sess) = s.by_key.get_mut(&key)
        {
            sess.last = now;
            sess.bytes += bytes;
            return None;
        }
        if self.total >= MAX_TOTAL {
            return None;
        }
        let s = self.streams.entry(stream.clone()).or_insert_with(|| StreamSessions {
            room_id,
            by_key: HashMap::new(),
            per_addr: HashMap::new(),
        });
        let per_addr = s.per_addr.get(&client.ip).copied().unwrap_or(0);
        if s.by_key.len() >= MAX_PER_STREAM || per_addr >= MAX_PER_ADDR {
            if s.by_key.is_empty() {
                self.streams.remove(stream);
            }
            return None;
        }
        s.room_id = room_id;
        s.by_key.insert(key, Session { id: new_id(), ip: client.ip, joined: now, last: now, bytes });
        *s.per_addr.entry(client.ip).or_insert(0) += 1;
        self.total += 1;
        Some(Change { room_id, stream: stream.clone() })
    }

    /// Ends the sessions idle for longer than `idle` (given per stream).
    pub fn sweep(&mut self, now: Instant, idle: impl Fn(&str) -> Duration) -> Vec<Change> {
        let mut left = vec![];
        for (name, s) in self.streams.iter_mut() {
            let limit = idle(name);
            let room_id = s.room_id;
            let per_addr = &mut s.per_addr;
            s.by_key.retain(|_, sess| {
                let keep = now.duration_since(sess.last) <= limit;
                if !keep {
                    if let Some(n) = per_addr.get_mut(&sess.ip) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            per_addr.remove(&sess.ip);
                        }
                    }
                    left.push(Change { room_id, stream: name.clone() });
                }
                keep
            });
        }
        self.streams.retain(|_, s| !s.by_key.is_empty());
        self.total = self.total.saturating_sub(left.len());
        left
    }

    /// Ends every session of `stream` (it ended or was dropped).
    pub fn end_stream(&mut self, stream: &StreamName) -> Vec<Change> {
        let Some(s) = self.streams.remove(stream) else { return vec![] };
        self.total = self.total.saturating_sub(s.by_key.len());
        s.by_key.values().map(|_| Change { room_id: s.room_id, stream: stream.clone() }).collect()
    }

    /// Every session: (stream, session).
    pub fn sessions(&self) -> impl Iterator<Item = (&StreamName, &Session)> {
        self.streams.iter().flat_map(|(n, s)| s.by_key.values().map(move |x| (n, x)))
    }

    pub fn total(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests;
