//! RTCP the session produces on its own: answers to NACKs from the
//! retransmission cache (RFC 4585 §6.2.1, RFC 4588 §4), receiver reports to
//! publishers and sender reports to subscribers (RFC 3550 §6.4).

use std::time::{Duration, Instant};

use super::super::rtcp;
use bytes::Bytes;

use super::super::rtp::{RtpHeader, rtx_payload};
use super::super::rtx_cache::CachedRtp;
use super::super::sdp::Track;
use super::types::{NackedPacket, SessionEvent};
use super::{KINDS, NTP_UNIX_OFFSET, WebRtcSession, idx};

impl WebRtcSession {
    /// Retransmits NACKed packets from the cache (RFC 4585 §6.2.1), as RTX
    /// when negotiated (RFC 4588 §4), else as the same packet. With a shared
    /// store ([`SessionConfig::shared_rtx`](super::SessionConfig::shared_rtx)) the
    /// losses go to the shell as [`SessionEvent::Nacked`] instead.
    pub(super) fn answer_nack(&mut self, now: Instant, media_ssrc: u32, lost: &[u16]) {
        let Some(kind) = KINDS.into_iter().find(|&k| self.send[idx(k)].as_ref().is_some_and(|s| s.ssrc == media_ssrc))
        else {
            return;
        };
        if self.config.shared_rtx {
            let Some(stream) = self.send[idx(kind)].as_ref() else { return };
            let packets: Vec<NackedPacket> = lost
                .iter()
                .take(256)
                .filter_map(|&seq| {
                    let (source_ssrc, source_seq, ts_offset) = stream.source_of(seq)?;
                    Some(NackedPacket { seq, source_ssrc, source_seq, ts_offset })
                })
                .collect();
            self.stats.nack_requests += lost.len().min(256) as u64;
            let misses = lost.len().min(256) - packets.len();
            self.stats.nack_misses += misses as u64;
            if !packets.is_empty() {
                self.push_event(SessionEvent::Nacked { kind, packets });
            }
            if misses > 0 {
                self.unrepairable(kind);
            }
            return;
        }
        let mut missed = false;
        for &seq in lost.iter().take(256) {
            self.stats.nack_requests += 1;
            let Some(cached) = self.rtx_cache.get(now, media_ssrc, seq).cloned() else {
                self.stats.nack_misses += 1;
                missed = true;
                continue;
            };
            self.resend(kind, seq, &cached);
        }
        if missed {
            self.unrepairable(kind);
        }
    }

    /// A NACKed packet that cannot be resent (never had, or no longer kept): the
    /// peer's decoder cannot get past that gap without a new keyframe, so video asks
    /// the publisher for one (throttled there) instead of waiting for the peer to
    /// give up on its NACKs and send a PLI itself.
    fn unrepairable(&mut self, kind: Track) {
        // One request per batch of misses (the shell resends a NACK's packets one by one).
        let queued = self.events.iter().any(|e| matches!(e, SessionEvent::KeyframeRequested { .. }));
        if kind == Track::Video && !queued {
            self.stats.miss_keyframe_requests += 1;
            self.push_event(SessionEvent::KeyframeRequested { kind });
        }
    }

    /// Answers one [`SessionEvent::Nacked`] packet with the source packet the shell
    /// found (`None`: no longer kept, counted as a miss).
    pub fn retransmit(&mut self, kind: Track, nacked: &NackedPacket, source: Option<(bool, u32, &Bytes)>) {
        let Some((marker, source_ts, payload)) = source else {
            self.stats.nack_misses += 1;
            self.unrepairable(kind);
            return;
        };
        let Some(pt) = self.send[idx(kind)].as_ref().map(|s| s.payload_type) else { return };
        let cached = CachedRtp {
            payload_type: pt,
            marker,
            timestamp: source_ts.wrapping_add(nacked.ts_offset),
            payload: payload.clone(),
        };
        self.resend(kind, nacked.seq, &cached);
    }

    fn resend(&mut self, kind: Track, seq: u16, cached: &CachedRtp) {
        let Some(to) = self.selected else { return };
        let Some(stream) = self.send[idx(kind)].as_mut() else {
            return;
        };
        let media_ssrc = stream.ssrc;
        let mid_ext = self.negotiated.media(kind).and_then(|m| m.mid_extension_id);
        let mid = self.negotiated.media(kind).map(|m| m.mid.clone()).unwrap_or_default();
        self.scratch.clear();
        match (stream.rtx_ssrc, stream.rtx_payload_type) {
            (Some(rtx_ssrc), Some(rtx_pt)) => {
                let rtx_seq = stream.rtx_seq;
                stream.rtx_seq = rtx_seq.wrapping_add(1);
                let mut body = Vec::with_capacity(2 + cached.payload.len());
                rtx_payload(seq, &cached.payload, &mut body);
                RtpHeader {
                    payload_type: rtx_pt,
                    marker: cached.marker,
                    sequence_number: rtx_seq,
                    timestamp: cached.timestamp,
                    ssrc: rtx_ssrc,
                    extension: mid_ext.map(|id| (id, mid.as_bytes())),
                }
                .write(&body, &mut self.scratch);
            }
            _ => RtpHeader {
                payload_type: cached.payload_type,
                marker: cached.marker,
                sequence_number: seq,
                timestamp: cached.timestamp,
                ssrc: media_ssrc,
                extension: mid_ext.map(|id| (id, mid.as_bytes())),
            }
            .write(&cached.payload, &mut self.scratch),
        }
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        match srtp.protect_rtp(&self.scratch) {
            Ok(wire) => {
                self.stats.retransmits += 1;
                self.queue_media(to, wire.freeze());
            }
            Err(e) => tracing::debug!(%e, "SRTP protect (RTX) failed"),
        }
    }

    pub(super) fn send_receiver_report(&mut self, now: Instant) {
        let blocks: Vec<_> = self.recv.iter_mut().flatten().filter_map(|r| r.report(now)).collect();
        if blocks.is_empty() {
            return;
        }
        let sender = KINDS.into_iter().find_map(|k| self.negotiated.media(k).map(|m| m.local_ssrc)).unwrap_or(0);
        let _ = self.send_rtcp_packets(&[rtcp::receiver_report(sender, &blocks)]);
    }

    fn ntp_time(&self, now: Instant) -> u64 {
        let (base_instant, base_unix) = self.config.wallclock.unwrap_or((self.created, Duration::ZERO));
        let since = now.saturating_duration_since(base_instant) + base_unix;
        let secs = since.as_secs() + NTP_UNIX_OFFSET;
        let frac = ((since.subsec_nanos() as u64) << 32) / 1_000_000_000;
        (secs << 32) | frac
    }

    pub(super) fn send_sender_reports(&mut self, now: Instant) {
        let ntp = self.ntp_time(now);
        // When every track that has sent carries the source's common media clock
        // (RTP made from RTMP media), "now" is the newest media time plus the time
        // since it was sent, the same instant for all tracks: receivers then sync
        // them as the source had them, whatever each track's processing delay
        // (AAC → Opus holds audio back ~40 ms). Otherwise each track extrapolates
        // from its own last packet.
        let sent: Vec<_> = self.send.iter().flatten().filter(|s| s.rtp_time_at(now).is_some()).collect();
        let media_now = if !sent.is_empty() && sent.iter().all(|s| s.media_clock().is_some()) {
            sent.iter().filter_map(|s| s.media_clock()).max_by_key(|&(_, at)| at)
        } else {
            None
        };
        let reports: Vec<_> = self
            .send
            .iter()
            .flatten()
            .filter_map(|s| {
                let rtp = match media_now {
                    Some((ms, at)) => s.rtp_time_at_media(ms, now.saturating_duration_since(at))?,
                    None => s.rtp_time_at(now)?,
                };
                Some(rtcp::sender_report(s.ssrc, ntp, rtp, s.packets, s.octets))
            })
            .collect();
        if !reports.is_empty() {
            let _ = self.send_rtcp_packets(&reports);
        }
    }
}
