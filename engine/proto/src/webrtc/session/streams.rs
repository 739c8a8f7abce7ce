//! Per-stream state: reception statistics and loss tracking for what we
//! receive (RFC 3550 §6.4.1, Appendix A.3 and A.8), sequence/timestamp
//! rewriting and sender statistics for what we send (RFC 3550 §6.4.1 SR).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::super::rtcp::ReportBlock;
use super::super::rtp::SeqExtender;

/// A gap larger than this is a stream restart, not loss.
const MAX_NACK_GAP: u64 = 512;
/// Most sequence numbers tracked as missing.
const MAX_MISSING: usize = 512;
/// Wait this long before the first NACK (reordering tolerance).
const NACK_DELAY: Duration = Duration::from_millis(10);
/// Retry a NACK after this long.
const NACK_RETRY: Duration = Duration::from_millis(100);
/// NACK a packet at most this many times.
const NACK_TRIES: u8 = 3;
/// Give up on a missing packet after this long.
const NACK_GIVE_UP: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Missing {
    first_seen: Instant,
    last_sent: Option<Instant>,
    tries: u8,
}

/// Reception state of one inbound stream (one SSRC).
#[derive(Debug)]
pub(crate) struct RecvStream {
    pub ssrc: u32,
    clock_rate: u32,
    ext: SeqExtender,
    base_seq: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// RFC 3550 A.8 jitter, in timestamp units, scaled by 16.
    jitter_q4: u64,
    last_transit: Option<i64>,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
    missing: BTreeMap<u64, Missing>,
}

impl RecvStream {
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        RecvStream {
            ssrc,
            clock_rate,
            ext: SeqExtender::default(),
            base_seq: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            last_sr: None,
            missing: BTreeMap::new(),
        }
    }

    /// Records a packet; `arrival` is `now` relative to the session's start.
    pub fn on_packet(&mut self, now: Instant, arrival: Duration, seq: u16, timestamp: u32, track_loss: bool) {
        let before = self.ext.highest();
        let ext = self.ext.extend(seq);
        if before.is_none() {
            self.base_seq = ext;
        }
        self.received += 1;
        // RFC 3550 A.8: transit = arrival - timestamp, in timestamp units.
        let arrival_ts = (arrival.as_micros() as u64 * self.clock_rate as u64 / 1_000_000) as i64;
        let transit = arrival_ts.wrapping_sub(timestamp as i64);
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);

        if !track_loss {
            return;
        }
        self.missing.remove(&ext);
        if let Some(h) = before
            && ext > h + 1
        {
            if ext - h > MAX_NACK_GAP {
                self.missing.clear(); // restart or huge burst: not worth NACKing
            } else {
                for s in h + 1..ext {
                    self.missing.insert(s, Missing { first_seen: now, last_sent: None, tries: 0 });
                }
                while self.missing.len() > MAX_MISSING {
                    self.missing.pop_first();
                }
            }
        }
    }

    /// A packet repaired by RTX (removes it from the missing set only).
    pub fn on_repaired(&mut self, seq: u16) {
        let mut probe = self.ext;
        let ext = probe.extend(seq);
        if self.missing.remove(&ext).is_some() {
            self.received += 1;
        }
    }

    /// Sequence numbers to NACK now (and marks them sent).
    pub fn due_nacks(&mut self, now: Instant) -> Vec<u16> {
        self.missing.retain(|_, m| now.saturating_duration_since(m.first_seen) < NACK_GIVE_UP && m.tries < NACK_TRIES);
        let mut out = Vec::new();
        for (seq, m) in self.missing.iter_mut() {
            let due = match m.last_sent {
                None => now.saturating_duration_since(m.first_seen) >= NACK_DELAY,
                Some(t) => now.saturating_duration_since(t) >= NACK_RETRY,
            };
            if due {
                m.last_sent = Some(now);
                m.tries += 1;
                out.push(*seq as u16);
            }
        }
        out
    }

    /// When [`due_nacks`](Self::due_nacks) next has something.
    pub fn next_nack(&self) -> Option<Instant> {
        self.missing
            .values()
            .map(|m| match m.last_sent {
                None => m.first_seen + NACK_DELAY,
                Some(t) => t + NACK_RETRY,
            })
            .min()
    }

    pub fn on_sender_report(&mut self, now: Instant, ntp_time: u64) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now));
    }

    /// The report block for an RR (RFC 3550 §6.4.1, A.3), advancing the
    /// "prior" counters.
    pub fn report(&mut self, now: Instant) -> Option<ReportBlock> {
        let highest = self.ext.highest()?;
        let expected = highest - self.base_seq + 1;
        let lost = expected.saturating_sub(self.received);
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                (lsr, (d.as_micros() as u64 * 65536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            total_lost: lost.min(0x7f_ffff) as u32,
            extended_highest_seq: highest as u32,
            jitter: (self.jitter_q4 >> 4) as u32,
            last_sr,
            delay_since_last_sr,
        })
    }
}

/// Rewriting and counters of one outbound stream.
#[derive(Debug)]
pub(crate) struct SendStream {
    pub ssrc: u32,
    pub payload_type: u8,
    pub clock_rate: u32,
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    /// Highest sequence number sent (extended).
    highest: SeqExtender,
    last_ts: u32,
    last_sent_at: Option<Instant>,
    /// The last packet on the session's common media clock: (our RTP time, media
    /// ms, when it was sent).
    media: Option<(u32, u32, Instant)>,
    pub packets: u32,
    pub octets: u32,
    pub rtx_ssrc: Option<u32>,
    pub rtx_payload_type: Option<u8>,
    pub rtx_seq: u16,
    /// The sources sent so far, newest last (at most [`MAX_EPOCHS`]): our first
    /// sequence number of each, its SSRC and the offsets in use, so a NACKed
    /// sequence number of ours maps back to the source's packet.
    epochs: std::collections::VecDeque<Epoch>,
    /// The newest source packet offered for sending, sent or not: (SSRC,
    /// sequence number). See [`offer`](Self::offer).
    offered: Option<(u32, u16)>,
}

#[derive(Debug, Clone, Copy)]
struct Epoch {
    first_seq: u16,
    source: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// Sources remembered for mapping NACKs back (restarts within the last second).
const MAX_EPOCHS: usize = 4;

impl SendStream {
    pub fn new(
        ssrc: u32,
        payload_type: u8,
        clock_rate: u32,
        rtx: Option<(u32, u8)>,
        initial_seq: u16,
        initial_ts: u32,
    ) -> Self {
        SendStream {
            ssrc,
            payload_type,
            clock_rate,
            source: None,
            seq_offset: initial_seq,
            ts_offset: initial_ts,
            highest: SeqExtender::default(),
            last_ts: initial_ts,
            last_sent_at: None,
            media: None,
            packets: 0,
            octets: 0,
            rtx_ssrc: rtx.map(|r| r.0),
            rtx_payload_type: rtx.map(|r| r.1),
            rtx_seq: initial_seq ^ 0x5a5a,
            epochs: std::collections::VecDeque::new(),
            offered: None,
        }
    }

    /// Notes a source packet offered for sending (before the session can send:
    /// the offers while connecting count too); false when it must not be sent:
    /// it is older than one offered before and no packet of its source has been
    /// sent yet. Such a packet (a late repair from the publisher) would start our
    /// numbering behind packets that went by unsent while the session connected:
    /// the receiver would see them as a gap that nothing can fill and NACK it
    /// forever (aiortc then holds every later frame until its jitter buffer
    /// overflows, ~17 s).
    pub fn offer(&mut self, source_ssrc: u32, seq: u16) -> bool {
        let newest = match self.offered {
            Some((s, h)) if s == source_ssrc => seq.wrapping_sub(h) < 0x8000,
            _ => true,
        };
        if newest {
            self.offered = Some((source_ssrc, seq));
        }
        newest || self.source == Some(source_ssrc)
    }

    /// The source packet behind our sequence number `seq`: (source SSRC, source
    /// sequence number, our timestamp minus the source's).
    pub fn source_of(&self, seq: u16) -> Option<(u32, u16, u32)> {
        let e = self.epochs.iter().rev().find(|e| seq.wrapping_sub(e.first_seq) < 0x8000)?;
        Some((e.source, seq.wrapping_sub(e.seq_offset), e.ts_offset))
    }

    /// Maps a source (ssrc, seq, ts) to ours. A new source SSRC continues our
    /// numbering right after the last packet sent, and our timestamps by the
    /// wall time elapsed (at least one tick), so receivers see one stream.
    pub fn map(&mut self, now: Instant, source_ssrc: u32, seq: u16, ts: u32) -> (u16, u32) {
        if self.source != Some(source_ssrc) {
            match (self.source, self.highest.highest(), self.last_sent_at) {
                (Some(_), Some(h), Some(at)) => {
                    let next_seq = (h as u16).wrapping_add(1);
                    let elapsed = now.saturating_duration_since(at);
                    let ticks = (elapsed.as_micros() as u64 * self.clock_rate as u64 / 1_000_000).max(1) as u32;
                    let next_ts = self.last_ts.wrapping_add(ticks);
                    self.seq_offset = next_seq.wrapping_sub(seq);
                    self.ts_offset = next_ts.wrapping_sub(ts);
                }
                _ => {
                    // First source: the initial values are the random offsets
                    // chosen at creation (RFC 3550 §5.1).
                    let (s0, t0) = (self.seq_offset, self.ts_offset);
                    self.seq_offset = s0.wrapping_sub(seq);
                    self.ts_offset = t0.wrapping_sub(ts);
                }
            }
            self.source = Some(source_ssrc);
            if self.epochs.len() == MAX_EPOCHS {
                self.epochs.pop_front();
            }
            self.epochs.push_back(Epoch {
                first_seq: seq.wrapping_add(self.seq_offset),
                source: source_ssrc,
                seq_offset: self.seq_offset,
                ts_offset: self.ts_offset,
            });
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        let before = self.highest.highest();
        let ext = self.highest.extend(out_seq);
        if before.is_none_or(|h| ext >= h) {
            self.last_ts = out_ts;
            self.last_sent_at = Some(now);
        }
        (out_seq, out_ts)
    }

    pub fn on_sent(&mut self, payload_len: usize) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
    }

    /// Records the media-clock time of the packet just mapped to `out_ts`.
    pub fn on_media_clock(&mut self, now: Instant, out_ts: u32, media_ms: u32) {
        self.media = Some((out_ts, media_ms, now));
    }

    /// Our RTP time at media time `media_ms` + `plus` (the clock the session's
    /// tracks share), for sender reports that keep the tracks in sync.
    pub fn rtp_time_at_media(&self, media_ms: u32, plus: Duration) -> Option<u32> {
        let (ts, ms, _) = self.media?;
        let delta_us = media_ms.wrapping_sub(ms) as i32 as i64 * 1000 + plus.as_micros() as i64;
        Some(ts.wrapping_add((delta_us * self.clock_rate as i64 / 1_000_000) as u32))
    }

    /// The last media-clock time (ms) and when it was sent.
    pub fn media_clock(&self) -> Option<(u32, Instant)> {
        self.media.map(|(_, ms, at)| (ms, at))
    }

    /// The RTP timestamp corresponding to `now` (extrapolated from the last
    /// packet), for a sender report.
    pub fn rtp_time_at(&self, now: Instant) -> Option<u32> {
        let at = self.last_sent_at?;
        let ticks = (now.saturating_duration_since(at).as_micros() as u64 * self.clock_rate as u64 / 1_000_000) as u32;
        Some(self.last_ts.wrapping_add(ticks))
    }
}

#[cfg(test)]
mod tests;
