//! A bounded cache of recently sent RTP packets, per SSRC, keyed by sequence
//! number, to answer Generic NACKs (RFC 4585 §6.2.1) by retransmission — as
//! RTX (RFC 4588) when negotiated, else the same packet again.
//!
//! Bounded three ways: packets per SSRC (a power-of-two ring indexed by
//! `seq & mask`, so a lookup is one slot), total bytes (oldest evicted first)
//! and age (a NACK for a packet older than `max_age` is not worth answering:
//! the receiver's jitter buffer has moved on). Payloads are `Bytes` shared with
//! every other subscriber of the stream, so a cache costs little more than
//! its slots.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One cached packet: enough to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRtp {
    /// Payload type as sent.
    pub payload_type: u8,
    /// Marker bit as sent.
    pub marker: bool,
    /// Timestamp as sent.
    pub timestamp: u32,
    /// The payload (shared).
    pub payload: Bytes,
}

/// Limits of an [`RtxCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxCacheLimits {
    /// Packets kept per SSRC (rounded up to a power of two). Default 1024
    /// (about 1.5 s of 5 Mbit/s video).
    pub packets_per_ssrc: usize,
    /// Payload bytes kept over all SSRCs (each packet also counts
    /// [`ENTRY_OVERHEAD`]). Default 4 MiB.
    pub max_bytes: usize,
    /// Oldest packet worth retransmitting. Default 3 s: some receivers (aiortc)
    /// repeat a NACK only with their next loss report, often a second or more
    /// later, and hold every later frame until the gap is filled (its video
    /// jitter buffer gives up after 512 packets, ~17 s at 30 packets a second).
    /// The packet and byte bounds, not the age, bound the memory.
    pub max_age: Duration,
    /// Most SSRCs tracked (a subscriber has 2; more means churn). Default 8.
    pub max_ssrcs: usize,
}

impl Default for RtxCacheLimits {
    fn default() -> Self {
        RtxCacheLimits { packets_per_ssrc: 1024, max_bytes: 4 << 20, max_age: Duration::from_secs(3), max_ssrcs: 8 }
    }
}

/// Bytes charged per cached packet on top of its payload.
pub const ENTRY_OVERHEAD: usize = 48;

#[derive(Debug, Clone)]
struct Slot {
    id: u64,
    seq: u16,
    at: Instant,
    pkt: CachedRtp,
}

#[derive(Debug)]
struct Ring {
    ssrc: u32,
    slots: Vec<Option<Slot>>,
}

/// The retransmission cache (see the module docs).
#[derive(Debug)]
pub struct RtxCache {
    limits: RtxCacheLimits,
    mask: usize,
    rings: Vec<Ring>,
    /// Insertion order for byte eviction: (ssrc, seq, id).
    order: VecDeque<(u32, u16, u64)>,
    bytes: usize,
    next_id: u64,
}

impl RtxCache {
    /// An empty cache.
    pub fn new(limits: RtxCacheLimits) -> Self {
        let n = limits.packets_per_ssrc.clamp(1, 1 << 15).next_power_of_two();
        RtxCache { limits, mask: n - 1, rings: Vec::new(), order: VecDeque::new(), bytes: 0, next_id: 0 }
    }

    /// Payload bytes (plus overhead) held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.rings.iter().map(|r| r.slots.iter().filter(|s| s.is_some()).count()).sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    fn ring_index(&mut self, ssrc: u32) -> usize {
        if let Some(i) = self.rings.iter().position(|r| r.ssrc == ssrc) {
            return i;
        }
        if self.rings.len() >= self.limits.max_ssrcs.max(1) {
            // Drop the SSRC tracked longest (the front): streams are replaced, not mixed.
            let old = self.rings.remove(0);
            for s in old.slots.into_iter().flatten() {
                self.bytes = self.bytes.saturating_sub(cost(&s.pkt));
            }
        }
        self.rings.push(Ring { ssrc, slots: vec![None; self.mask + 1] });
        self.rings.len() - 1
    }

    /// Remembers a packet sent at `now` with `ssrc`/`seq` (replacing whatever
    /// held its slot) and enforces the limits.
    pub fn insert(&mut self, now: Instant, ssrc: u32, seq: u16, pkt: CachedRtp) {
        let mask = self.mask;
        let i = self.ring_index(ssrc);
        let id = self.next_id;
        self.next_id += 1;
        let c = cost(&pkt);
        let slot = &mut self.rings[i].slots[seq as usize & mask];
        if let Some(old) = slot.take() {
            self.bytes = self.bytes.saturating_sub(cost(&old.pkt));
        }
        *slot = Some(Slot { id, seq, at: now, pkt });
        self.bytes += c;
        self.order.push_back((ssrc, seq, id));
        self.evict(now);
    }

    /// The packet sent with `ssrc`/`seq`, if still cached and younger than
    /// `max_age` at `now`.
    pub fn get(&self, now: Instant, ssrc: u32, seq: u16) -> Option<&CachedRtp> {
        let ring = self.rings.iter().find(|r| r.ssrc == ssrc)?;
        let slot = ring.slots[seq as usize & self.mask].as_ref()?;
        (slot.seq == seq && now.saturating_duration_since(slot.at) <= self.limits.max_age).then_some(&slot.pkt)
    }

    /// Drops packets over the byte budget or older than `max_age`.
    pub fn evict(&mut self, now: Instant) {
        while let Some(&(ssrc, seq, id)) = self.order.front() {
            let mask = self.mask;
            let Some(ring) = self.rings.iter_mut().find(|r| r.ssrc == ssrc) else {
                self.order.pop_front();
                continue;
            };
            let slot = &mut ring.slots[seq as usize & mask];
            let live = slot.as_ref().filter(|s| s.id == id);
            let Some(s) = live else {
                self.order.pop_front(); // overwritten or gone
                continue;
            };
            let too_old = now.saturating_duration_since(s.at) > self.limits.max_age;
            if self.bytes > self.limits.max_bytes || too_old {
                let c = cost(&s.pkt);
                *slot = None;
                self.bytes = self.bytes.saturating_sub(c);
                self.order.pop_front();
            } else {
                break;
            }
        }
        // The order queue holds at most one live entry per slot plus stale ones;
        // compact it if stale entries pile up.
        if self.order.len() > 4 * (self.mask + 1) * self.rings.len().max(1) {
            let rings = &self.rings;
            let mask = self.mask;
            self.order.retain(|&(ssrc, seq, id)| {
                rings
                    .iter()
                    .any(|r| r.ssrc == ssrc && r.slots[seq as usize & mask].as_ref().is_some_and(|s| s.id == id))
            });
        }
    }

    /// Forgets everything about `ssrc`.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        if let Some(i) = self.rings.iter().position(|r| r.ssrc == ssrc) {
            let r = self.rings.remove(i);
            for s in r.slots.into_iter().flatten() {
                self.bytes = self.bytes.saturating_sub(cost(&s.pkt));
            }
        }
    }
}

fn cost(p: &CachedRtp) -> usize {
    p.payload.len() + ENTRY_OVERHEAD
}

/// The source packets of one stream on one shard, kept once for all its
/// subscribers there (sessions with
/// [`SessionConfig::shared_rtx`](super::SessionConfig::shared_rtx)): a NACK is
/// answered from here, so a subscriber costs no cache write per packet. Keyed by
/// the source's SSRC and sequence number; bounded by packets per SSRC, SSRCs
/// (a publisher restart brings new ones; the oldest goes), bytes (a packet that
/// would go over `max_bytes` is not kept; the ring frees older ones as it wraps)
/// and age (checked on lookup). Payloads are the `Bytes` the subscribers send, so
/// the store holds no copy.
#[derive(Debug)]
pub struct RtxStore {
    limits: RtxCacheLimits,
    mask: usize,
    rings: Vec<StoreRing>,
    /// Payload bytes (plus [`ENTRY_OVERHEAD`] each) held.
    bytes: usize,
}

#[derive(Debug)]
struct StoreRing {
    ssrc: u32,
    slots: Vec<Option<Stored>>,
}

/// A source packet in an [`RtxStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The source's sequence number.
    pub seq: u16,
    /// When it was stored.
    pub at: Instant,
    /// The source's marker bit and timestamp.
    pub marker: bool,
    pub timestamp: u32,
    /// The payload (shared).
    pub payload: Bytes,
}

impl RtxStore {
    /// An empty store.
    pub fn new(limits: RtxCacheLimits) -> Self {
        let n = limits.packets_per_ssrc.clamp(1, 1 << 15).next_power_of_two();
        RtxStore { limits, mask: n - 1, rings: Vec::new(), bytes: 0 }
    }

    /// Payload bytes (plus overhead) held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Keeps a source packet. Every subscriber of the stream on the shard calls
    /// this with the same packet; after the first it is one comparison.
    pub fn insert(&mut self, now: Instant, ssrc: u32, seq: u16, marker: bool, timestamp: u32, payload: &Bytes) {
        let ring = match self.rings.iter().position(|r| r.ssrc == ssrc) {
            Some(i) => i,
            None => {
                if self.rings.len() >= self.limits.max_ssrcs.max(1) {
                    let old = self.rings.remove(0);
                    let freed: usize = old.slots.iter().flatten().map(|s| s.payload.len() + ENTRY_OVERHEAD).sum();
                    self.bytes -= freed;
                }
                self.rings.push(StoreRing { ssrc, slots: vec![None; self.mask + 1] });
                self.rings.len() - 1
            }
        };
        let slot = &mut self.rings[ring].slots[seq as usize & self.mask];
        if let Some(s) = slot
            && s.seq == seq
            && s.payload.as_ptr() == payload.as_ptr()
            && s.payload.len() == payload.len()
        {
            return;
        }
        if let Some(old) = slot.take() {
            self.bytes -= old.payload.len() + ENTRY_OVERHEAD;
        }
        let c = payload.len() + ENTRY_OVERHEAD;
        if self.bytes + c <= self.limits.max_bytes {
            *slot = Some(Stored { seq, at: now, marker, timestamp, payload: payload.clone() });
            self.bytes += c;
        }
    }

    /// The source packet `ssrc`/`seq`, if kept and younger than `max_age`.
    pub fn get(&self, now: Instant, ssrc: u32, seq: u16) -> Option<&Stored> {
        let ring = self.rings.iter().find(|r| r.ssrc == ssrc)?;
        let s = ring.slots[seq as usize & self.mask].as_ref()?;
        (s.seq == seq && now.saturating_duration_since(s.at) <= self.limits.max_age).then_some(s)
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.rings.iter().map(|r| r.slots.iter().filter(|s| s.is_some()).count()).sum()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
