//! RTCP as the session reports and sends it: parsing compound packets (RFC 3550
//! §6, RFC 5506 reduced-size) into [`RtcpPacket`]s and building feedback
//! (RFC 4585 §6: Generic NACK, PLI; RFC 5104 §4.3.1: FIR) and reports (RFC 3550
//! §6.4: SR, RR). The wire format is `rtc-rtcp`'s.

use bytes::{Bytes, BytesMut};
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{TransportLayerNack, nack_pairs_from_sequence_numbers};

use super::error::WebRtcError;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, out of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits).
    pub total_lost: u32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP time (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// A parsed RTCP packet, reduced to what an SFU acts on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtcpPacket {
    /// Sender report (RFC 3550 §6.4.1).
    SenderReport {
        /// Sender SSRC.
        ssrc: u32,
        /// 64-bit NTP timestamp.
        ntp_time: u64,
        /// RTP timestamp for the same instant.
        rtp_time: u32,
        /// Packets sent.
        packet_count: u32,
        /// Payload octets sent.
        octet_count: u32,
        /// Reception report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report (RFC 3550 §6.4.2).
    ReceiverReport {
        /// Reporter SSRC.
        ssrc: u32,
        /// Reception report blocks.
        reports: Vec<ReportBlock>,
    },
    /// Picture Loss Indication (RFC 4585 §6.3.1): send a keyframe.
    Pli {
        /// Who asks.
        sender_ssrc: u32,
        /// Which stream.
        media_ssrc: u32,
    },
    /// Full Intra Request (RFC 5104 §4.3.1): send a keyframe.
    Fir {
        /// Who asks.
        sender_ssrc: u32,
        /// (stream, command sequence number) entries.
        entries: Vec<(u32, u8)>,
    },
    /// Generic NACK (RFC 4585 §6.2.1): retransmit these.
    Nack {
        /// Who asks.
        sender_ssrc: u32,
        /// Which stream.
        media_ssrc: u32,
        /// Lost sequence numbers.
        lost: Vec<u16>,
    },
    /// REMB (draft-alvestrand-rmcat-remb): the receiver's bandwidth estimate.
    Remb {
        /// Bits per second.
        bitrate: u64,
        /// Streams it applies to.
        ssrcs: Vec<u32>,
    },
    /// BYE (RFC 3550 §6.6).
    Bye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
    },
    /// Anything else (SDES, XR, TWCC, ...), by packet type.
    Other {
        /// RTCP packet type (200-207).
        packet_type: u8,
    },
}

fn block(r: &ReceptionReport) -> ReportBlock {
    ReportBlock {
        ssrc: r.ssrc,
        fraction_lost: r.fraction_lost,
        total_lost: r.total_lost,
        extended_highest_seq: r.last_sequence_number,
        jitter: r.jitter,
        last_sr: r.last_sender_report,
        delay_since_last_sr: r.delay,
    }
}

fn reception(b: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: b.ssrc,
        fraction_lost: b.fraction_lost,
        total_lost: b.total_lost & 0x00ff_ffff,
        last_sequence_number: b.extended_highest_seq,
        jitter: b.jitter,
        last_sender_report: b.last_sr,
        delay: b.delay_since_last_sr,
    }
}

/// Parses a (decrypted) compound or reduced-size RTCP datagram.
pub fn parse(data: &[u8]) -> Result<Vec<RtcpPacket>, WebRtcError> {
    let mut buf = Bytes::copy_from_slice(data);
    let packets = rtc_rtcp::packet::unmarshal(&mut buf).map_err(|e| WebRtcError::peer(format!("RTCP: {e}")))?;
    let mut out = Vec::with_capacity(packets.len());
    for p in &packets {
        let any = p.as_any();
        let parsed = if let Some(sr) = any.downcast_ref::<SenderReport>() {
            RtcpPacket::SenderReport {
                ssrc: sr.ssrc,
                ntp_time: sr.ntp_time,
                rtp_time: sr.rtp_time,
                packet_count: sr.packet_count,
                octet_count: sr.octet_count,
                reports: sr.reports.iter().map(block).collect(),
            }
        } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            RtcpPacket::ReceiverReport { ssrc: rr.ssrc, reports: rr.reports.iter().map(block).collect() }
        } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
            RtcpPacket::Pli { sender_ssrc: pli.sender_ssrc, media_ssrc: pli.media_ssrc }
        } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
            RtcpPacket::Fir {
                sender_ssrc: fir.sender_ssrc,
                entries: fir.fir.iter().map(|e| (e.ssrc, e.sequence_number)).collect(),
            }
        } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
            RtcpPacket::Nack {
                sender_ssrc: nack.sender_ssrc,
                media_ssrc: nack.media_ssrc,
                lost: nack.nacks.iter().flat_map(|n| n.packet_list()).collect(),
            }
        } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
            RtcpPacket::Remb { bitrate: remb.bitrate.max(0.0) as u64, ssrcs: remb.ssrcs.clone() }
        } else if let Some(bye) = any.downcast_ref::<Goodbye>() {
            RtcpPacket::Bye { ssrcs: bye.sources.clone() }
        } else {
            RtcpPacket::Other { packet_type: p.header().packet_type as u8 }
        };
        out.push(parsed);
    }
    Ok(out)
}

/// Feedback and reports the session sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpFeedback {
    /// PLI for `media_ssrc`.
    Pli {
        /// The stream that should send a keyframe.
        media_ssrc: u32,
    },
    /// FIR for `media_ssrc` with command sequence number `seq`.
    Fir {
        /// The stream that should send a keyframe.
        media_ssrc: u32,
        /// FIR command sequence number (incremented per new request).
        seq: u8,
    },
    /// Generic NACK for `lost` of `media_ssrc`.
    Nack {
        /// The stream with losses.
        media_ssrc: u32,
        /// Lost sequence numbers.
        lost: Vec<u16>,
    },
}

/// Serialises RTCP packets into one compound datagram (plain, before SRTCP).
pub(crate) fn encode(packets: &[Box<dyn rtc_rtcp::packet::Packet>]) -> Result<BytesMut, WebRtcError> {
    rtc_rtcp::packet::marshal(packets).map_err(WebRtcError::internal)
}

pub(crate) fn feedback_packet(sender_ssrc: u32, fb: &RtcpFeedback) -> Box<dyn rtc_rtcp::packet::Packet> {
    match fb {
        RtcpFeedback::Pli { media_ssrc } => Box::new(PictureLossIndication { sender_ssrc, media_ssrc: *media_ssrc }),
        RtcpFeedback::Fir { media_ssrc, seq } => Box::new(FullIntraRequest {
            sender_ssrc,
            media_ssrc: 0, // RFC 5104 §4.3.1.2: unused, 0
            fir: vec![FirEntry { ssrc: *media_ssrc, sequence_number: *seq }],
        }),
        RtcpFeedback::Nack { media_ssrc, lost } => Box::new(TransportLayerNack {
            sender_ssrc,
            media_ssrc: *media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(lost),
        }),
    }
}

pub(crate) fn receiver_report(ssrc: u32, reports: &[ReportBlock]) -> Box<dyn rtc_rtcp::packet::Packet> {
    Box::new(ReceiverReport {
        ssrc,
        reports: reports.iter().take(31).map(reception).collect(),
        profile_extensions: Bytes::new(),
    })
}

pub(crate) fn sender_report(
    ssrc: u32,
    ntp_time: u64,
    rtp_time: u32,
    packet_count: u32,
    octet_count: u32,
) -> Box<dyn rtc_rtcp::packet::Packet> {
    Box::new(SenderReport {
        ssrc,
        ntp_time,
        rtp_time,
        packet_count,
        octet_count,
        reports: vec![],
        profile_extensions: Bytes::new(),
    })
}

#[cfg(test)]
mod tests;
