//! A small, strict TS demuxer for tests: it checks what the muxer promises
//! (188-byte packets, sync bytes, continuity counters without jumps, PSI CRCs,
//! PES lengths, adaptation field bounds) and returns PSI and PES contents.

use super::crc::crc32_mpeg2;
use super::packet::{SYNC_BYTE, TS_PACKET_LEN};
use super::pes::decode_timestamp;
use std::collections::HashMap;

/// One reassembled PES packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pes {
    pub pid: u16,
    pub stream_id: u8,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    /// The elementary stream bytes after the PES header.
    pub data: Vec<u8>,
    /// `random_access_indicator` of the first packet.
    pub random_access: bool,
    /// PCR base of the first packet.
    pub pcr: Option<u64>,
}

/// What a TS byte string contains.
#[derive(Debug, Default)]
pub(crate) struct Demuxed {
    pub pmt_pid: Option<u16>,
    pub pcr_pid: Option<u16>,
    /// (stream_type, pid) from the last PMT.
    pub streams: Vec<(u8, u16)>,
    pub pmt_versions: Vec<u8>,
    pub pat_count: usize,
    pub pmt_count: usize,
    pub pes: Vec<Pes>,
    pub packets: usize,
}

/// Demuxes `ts`, failing on any structural error.
pub(crate) fn demux(ts: &[u8]) -> Result<Demuxed, String> {
    if !ts.len().is_multiple_of(TS_PACKET_LEN) {
        return Err(format!("length {} is not a multiple of 188", ts.len()));
    }
    let mut d = Demuxed::default();
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut open: HashMap<u16, (Pes, Option<usize>)> = HashMap::new();
    for (index, p) in ts.chunks(TS_PACKET_LEN).enumerate() {
        d.packets += 1;
        if p[0] != SYNC_BYTE {
            return Err(format!("packet {index}: sync byte {:#x}", p[0]));
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let control = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0F;
        if control & 0x01 == 0 {
            return Err(format!("packet {index}: no payload"));
        }
        if let Some(prev) = last_cc.insert(pid, cc)
            && cc != (prev + 1) & 0x0F
        {
            return Err(format!("packet {index}: PID {pid:#x} cc {prev} -> {cc}"));
        }
        let mut pos = 4;
        let (mut random_access, mut pcr) = (false, None);
        if control & 0x02 != 0 {
            let af_len = usize::from(p[4]);
            if af_len > 183 {
                return Err(format!("packet {index}: adaptation field length {af_len}"));
            }
            if af_len > 0 {
                random_access = p[5] & 0x40 != 0;
                if p[5] & 0x10 != 0 {
                    let b = &p[6..12];
                    pcr = Some(
                        (u64::from(b[0]) << 25)
                            | (u64::from(b[1]) << 17)
                            | (u64::from(b[2]) << 9)
                            | (u64::from(b[3]) << 1)
                            | u64::from(b[4] >> 7),
                    );
                }
            }
            pos += 1 + af_len;
        }
        let payload = &p[pos..];
        if pid == 0 || Some(pid) == d.pmt_pid {
            if !pusi || payload[0] != 0 {
                return Err(format!("packet {index}: PSI without pointer_field 0"));
            }
            let section = &payload[1..];
            let len = 3 + ((usize::from(section[1] & 0x0F) << 8) | usize::from(section[2]));
            let section = &section[..len];
            if crc32_mpeg2(section) != 0 {
                return Err(format!("packet {index}: PSI CRC mismatch"));
            }
            if pid == 0 {
                d.pat_count += 1;
                d.pmt_pid = Some((u16::from(section[10] & 0x1F) << 8) | u16::from(section[11]));
            } else {
                d.pmt_count += 1;
                d.pmt_versions.push((section[5] >> 1) & 0x1F);
                d.pcr_pid = Some((u16::from(section[8] & 0x1F) << 8) | u16::from(section[9]));
                let info_len = (usize::from(section[10] & 0x0F) << 8) | usize::from(section[11]);
                let mut es = &section[12 + info_len..len - 4];
                d.streams.clear();
                while es.len() >= 5 {
                    let es_pid = (u16::from(es[1] & 0x1F) << 8) | u16::from(es[2]);
                    d.streams.push((es[0], es_pid));
                    let es_info = (usize::from(es[3] & 0x0F) << 8) | usize::from(es[4]);
                    es = &es[5 + es_info..];
                }
            }
            continue;
        }
        if pusi {
            if let Some((pes, want)) = open.remove(&pid) {
                finish(&mut d, pes, want)?;
            }
            if payload.len() < 14 || payload[..3] != [0, 0, 1] {
                return Err(format!("packet {index}: bad PES start"));
            }
            let packet_len = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
            let flags = payload[7];
            let header_len = usize::from(payload[8]);
            let ts_at = |i: usize| decode_timestamp(payload[i..i + 5].try_into().unwrap());
            let pts = (flags & 0x80 != 0).then(|| ts_at(9));
            let dts = (flags & 0x40 != 0).then(|| ts_at(14));
            let pes = Pes {
                pid,
                stream_id: payload[3],
                pts,
                dts,
                data: payload[9 + header_len..].to_vec(),
                random_access,
                pcr,
            };
            let want = (packet_len != 0).then(|| packet_len - 3 - header_len);
            open.insert(pid, (pes, want));
        } else {
            let Some((pes, _)) = open.get_mut(&pid) else {
                return Err(format!("packet {index}: continuation without a PES start"));
            };
            pes.data.extend_from_slice(payload);
        }
    }
    let mut rest: Vec<_> = open.into_values().collect();
    rest.sort_by_key(|(p, _)| p.pid);
    for (pes, want) in rest {
        finish(&mut d, pes, want)?;
    }
    Ok(d)
}

fn finish(d: &mut Demuxed, pes: Pes, want: Option<usize>) -> Result<(), String> {
    if let Some(want) = want
        && want != pes.data.len()
    {
        return Err(format!("PES on {:#x}: length {want} but {} bytes", pes.pid, pes.data.len()));
    }
    d.pes.push(pes);
    Ok(())
}

/// An ADTS header and the raw frame after it.
pub(crate) type AdtsFrame<'a> = (&'a [u8], &'a [u8]);

/// Splits an ADTS stream into (header, raw frame) pairs.
pub(crate) fn adts_frames(mut data: &[u8]) -> Result<Vec<AdtsFrame<'_>>, String> {
    let mut frames = Vec::new();
    while !data.is_empty() {
        if data.len() < 7 || data[0] != 0xFF || data[1] & 0xF6 != 0xF0 {
            return Err("bad ADTS sync".into());
        }
        let len = (usize::from(data[3] & 0x03) << 11) | (usize::from(data[4]) << 3) | usize::from(data[5] >> 5);
        if len < 7 || len > data.len() {
            return Err(format!("bad ADTS length {len}"));
        }
        frames.push((&data[..7], &data[7..len]));
        data = &data[len..];
    }
    Ok(frames)
}
