//! Fuzz body for the H.264 RTP packetizer and depacketizer.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::avcc_nalus;

use crate::rtp_h264::*;

/// Fuzz body: packetize access units taken from `data`, lose, reorder and
/// duplicate packets as `data` says, depacketize, and check that nothing
/// panics and every access unit that comes out is exactly one that went in
/// (less the NAL units either side drops). Then feed `data` itself as raw
/// RTP payloads.
///
/// Layout: byte 0 picks the payload size (16 + 4 × b), byte 1 seeds the
/// loss/reorder pattern, then access units as a big-endian u16 length and
/// that many bytes of AVCC (4-byte NAL unit lengths).
pub fn fuzz_rtp_h264(data: &[u8], now: Instant) {
    let [mtu, seed, rest @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = rest;
    let mut packetizer = H264Packetizer::new(H264PacketizerConfig {
        max_payload_size: 16 + usize::from(*mtu) * 4,
        ..Default::default()
    });
    // The SPS/PPS of testdata/media/small.flv.
    packetizer.set_parameter_sets(
        Some(Bytes::from_static(&[
            0x67, 0x64, 0x00, 0x0C, 0xAC, 0xB4, 0x0A, 0x0F, 0xD8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00,
            0x0F, 0x07, 0x8A, 0x15, 0x50,
        ])),
        Some(Bytes::from_static(&[0x68, 0xEF, 0x06, 0x72, 0xC0])),
    );
    packetizer.nalu_length_size = Some(4);
    let mut expected: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut packets = Vec::new();
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (au, tail) = tail.split_at(len);
        rest = tail;
        let timestamp = expected.len() as u32 * 3000;
        let au = Bytes::copy_from_slice(au);
        let before = packets.len();
        if packetizer.packetize(timestamp, &au, &mut packets).is_err() {
            assert_eq!(packets.len(), before, "nothing emitted on error");
            continue;
        }
        let mut want = Vec::new();
        for nal in avcc_nalus(&au, 4).map_while(Result::ok) {
            if !matches!(nal.first().map(|h| h & 0x1F), None | Some(0 | 6..=12 | 24..=31)) {
                want.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                want.extend_from_slice(nal);
            }
        }
        expected.push((timestamp, want));
    }
    let max = packetizer.config.max_payload_size;
    assert!(packets.iter().all(|p| p.payload.len() <= max));
    // Lose, swap and duplicate packets (xorshift, seeded by `seed`).
    let mut state = u64::from(*seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut fed = Vec::with_capacity(packets.len());
    for p in &packets {
        match next() % 16 {
            0 => {}
            1 => {
                fed.push(p.clone());
                fed.push(p.clone());
            }
            2 if !fed.is_empty() => {
                let last = fed.len() - 1;
                fed.push(p.clone());
                fed.swap(last, last + 1);
            }
            _ => fed.push(p.clone()),
        }
    }
    let start = now;
    let mut depacketizer = H264Depacketizer::new(H264DepacketizerConfig::default());
    let check = |d: &mut H264Depacketizer| {
        while let Some(output) = d.poll_output() {
            if let DepacketizerOutput::AccessUnit(au) = output {
                let want = expected.iter().find(|(ts, _)| *ts == au.rtp_timestamp).map(|(_, w)| w);
                assert_eq!(Some(&au.avcc()[..]), want.map(|w| &w[..]), "access unit intact");
            }
        }
    };
    for (i, p) in fed.iter().enumerate() {
        let now = start + Duration::from_millis(i as u64);
        depacketizer.handle_timeout(now);
        depacketizer.handle_packet(now, p.sequence_number, p.timestamp, p.marker, p.payload.clone());
        check(&mut depacketizer);
    }
    depacketizer.handle_timeout(start + Duration::from_secs(3600));
    check(&mut depacketizer);
    // The input itself as RTP payloads of 1 to 64 bytes.
    let mut raw = H264Depacketizer::new(H264DepacketizerConfig { max_access_unit_size: 4096, ..Default::default() });
    let mut at = 0;
    let mut seq = 0u16;
    while at < data.len() {
        let len = (usize::from(data[at]) % 64 + 1).min(data.len() - at);
        let payload = Bytes::copy_from_slice(&data[at..at + len]);
        raw.handle_packet(start, seq, u32::from(data[at] >> 6) * 3000, data[at] & 1 == 1, payload);
        while raw.poll_output().is_some() {}
        seq = seq.wrapping_add(1 + u16::from(data[at] >> 7));
        at += len;
    }
}
