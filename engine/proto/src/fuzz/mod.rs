//! Fuzz bodies for the parsers outside RTMP (kept in the crate so that normal builds compile them; fuzz/ only wraps them): the HTTP request
//! head and router, the FLV reader, codec parsing, the HLS/MPEG-TS segmenter
//! and WebSocket client frames. RTMP's are in [`super::rtmp::fuzz`].
//!
//! They are compiled with the crate and called by thin
//! `fuzz/fuzz_targets/*.rs` wrappers (see docs/fuzzing.md). None of them may
//! panic, whatever the input; the few `assert!`s state properties of the code
//! under test (round trips, bounds), so a failure there is a bug too. Each
//! crash found becomes a regression test in this file.
//!
//! Where a body needs knobs (how to split the input, which limits), it takes
//! them from the input's *last* byte when the first bytes are the protocol's
//! own (an HTTP method, the `FLV` signature), so real captures work as seeds.

use std::time::Duration;

use crate::http::{self, HeadError};

pub mod rtmp;
pub mod rtp_h264;
pub mod webrtc;

use crate::codec::{
    AudioCodec, AudioPacket, AudioSpecificConfig, AudioTag, AvcConfig, MediaInfo, OpusHead, Sps, VideoCodec,
    VideoPacket, VideoTag, annexb_nalus, avcc_contains_idr, avcc_nalus, avcc_to_annexb, nal_unit_type,
};
use crate::flv::{FlvReader, FlvTag, encode_tag, file_header};
use crate::hls::{HlsConfig, HlsEvent, Segmenter, Track};
use crate::mpegts::{SYNC_BYTE, TS_PACKET_LEN, TsMuxerConfig};
use crate::websocket::{self, ClientFrame};

/// How many bytes each simulated read delivers, picked by a knob byte.
fn split_len(selector: u8) -> usize {
    match selector % 4 {
        0 => 1,
        1 => 7,
        2 => 64 + usize::from(selector),
        _ => usize::MAX,
    }
}

/// `data` in pieces of `split` bytes (at least one piece, possibly empty).
fn pieces(data: &[u8], split: usize) -> std::slice::Chunks<'_, u8> {
    data.chunks(split.min(data.len()).max(1))
}

// ---- HTTP ----

/// The HTTP request path as the shard runs it: bytes arrive in pieces, each
/// time [`http::parse_head`] is tried on what is buffered (as
/// `http::read_head` does), a complete head is drained (pipelining) and its
/// path goes through [`http::route`], its query through `query_param`.
pub fn fuzz_http_request(data: &[u8]) {
    let split = split_len(data.last().copied().unwrap_or(0));
    let mut buf = Vec::new();
    'read: for piece in pieces(data, split) {
        buf.extend_from_slice(piece);
        loop {
            match http::parse_head(&buf) {
                Ok(Some((req, used))) => {
                    assert!(used > 0 && used <= buf.len(), "head of {used} bytes in a buffer of {}", buf.len());
                    assert!(used <= http::MAX_HEAD);
                    let _ = http::route(&req.path);
                    let _ = req.is_websocket();
                    let _ = req.header("host");
                    for kv in req.query.split('&') {
                        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
                        let _ = req.query_param(key);
                    }
                    buf.drain(..used);
                }
                Ok(None) => {
                    assert!(buf.len() < http::MAX_HEAD, "a partial head stays bounded");
                    break;
                }
                Err(HeadError::TooLarge | HeadError::Malformed(_)) => break 'read,
                Err(e) => panic!("parse_head returned an I/O-level error: {e:?}"),
            }
        }
    }
    // Any path the router may see, not only what httparse lets through.
    let _ = http::route(&String::from_utf8_lossy(data));
}

// ---- FLV ----

/// The FLV reader fed a byte stream in pieces (the last byte picks the split
/// and the tag size bound). Every tag read must encode back to a tag that
/// reads the same.
pub fn fuzz_flv_reader(data: &[u8]) {
    let knob = data.last().copied().unwrap_or(0);
    let max_tag_size = match knob >> 6 {
        0 => 0,
        1 => 100,
        2 => 4096,
        _ => FlvReader::DEFAULT_MAX_TAG_SIZE,
    };
    let mut reader = FlvReader::new(max_tag_size);
    for piece in pieces(data, split_len(knob)) {
        reader.handle_input(piece);
        loop {
            match reader.poll_tag() {
                Ok(Some(tag)) => {
                    assert!(tag.body.len() <= max_tag_size);
                    check_flv_round_trip(&tag);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(reader.poll_tag(), Err(e), "a failed reader stays failed");
                    assert_eq!(reader.buffered(), 0, "a failed reader holds no bytes");
                    return;
                }
            }
        }
    }
}

fn check_flv_round_trip(tag: &FlvTag) {
    let encoded = encode_tag(tag.tag_type, tag.timestamp_ms, &tag.body).expect("a tag that was read fits the format");
    let mut again = FlvReader::new(tag.body.len());
    again.handle_input(&file_header(true, true));
    again.handle_input(&encoded);
    let back = again.poll_tag().expect("re-encoded tag reads").expect("complete");
    assert_eq!((back.tag_type, back.timestamp_ms, &back.body), (tag.tag_type, tag.timestamp_ms, &tag.body));
    assert_eq!(again.buffered(), 0);
}

// ---- codecs ----

/// Every codec parser on the raw input, then the input as a tag body with
/// what the media path does to each kind of tag, then the input split into
/// a run of tag bodies updating one [`MediaInfo`].
pub fn fuzz_codec(data: &[u8]) {
    // The parsers on their own.
    if let Ok(cfg) = AvcConfig::parse(data) {
        check_avc_config(&cfg);
    }
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        check_asc(&asc, data.len());
    }
    let _ = Sps::parse(data);
    let _ = Sps::parse_rbsp(data);
    let _ = OpusHead::parse(data);
    for nal in annexb_nalus(data) {
        assert!(!nal.is_empty());
        if nal_unit_type(nal) == 7 {
            let _ = Sps::parse(nal);
        }
    }
    for length_size in [1, 2, 3, 4] {
        codec_frame(data, length_size);
    }

    // The input as one tag body.
    codec_video_tag(data);
    codec_audio_tag(data);

    // The input as a run of tag bodies: [kind: u8][len: u8][body], where
    // bit 0 of kind picks video or audio.
    let mut info = MediaInfo::default();
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let (body, after) = tail.split_at(usize::from(*len).min(tail.len()));
        let _ = if kind & 1 == 1 { info.update_from_video_tag(body) } else { info.update_from_audio_tag(body) };
        rest = after;
    }
    let _ = info.video.as_ref().map(|v| v.codec.name());
    let _ = info.audio.as_ref().map(|a| a.codec.name());
}

fn codec_video_tag(body: &[u8]) {
    let Ok(tag) = VideoTag::parse(body) else {
        return;
    };
    let _ = tag.is_keyframe();
    if tag.codec != VideoCodec::Avc {
        return;
    }
    match tag.packet {
        VideoPacket::SequenceHeader => {
            if let Ok(cfg) = AvcConfig::parse(tag.data) {
                check_avc_config(&cfg);
                // The frame that could follow, framed as the record says.
                codec_frame(tag.data, cfg.nalu_length_size);
            }
        }
        VideoPacket::Frame => codec_frame(tag.data, 4),
        _ => {}
    }
}

fn codec_audio_tag(body: &[u8]) {
    let Ok(tag) = AudioTag::parse(body) else {
        return;
    };
    match (tag.codec, tag.packet) {
        (AudioCodec::Aac, AudioPacket::SequenceHeader) => {
            if let Ok(asc) = AudioSpecificConfig::parse(tag.data) {
                check_asc(&asc, tag.data.len());
            }
        }
        (AudioCodec::Opus, AudioPacket::SequenceHeader) => {
            let _ = OpusHead::parse(tag.data);
        }
        _ => {}
    }
}

fn check_avc_config(cfg: &AvcConfig) {
    assert!(matches!(cfg.nalu_length_size, 1 | 2 | 4));
    let _ = cfg.codecs_string();
    let mut annexb = Vec::new();
    cfg.write_annexb_parameter_sets(&mut annexb);
    assert!(annexb.len() >= 5 * cfg.sps.len());
    if let Some(sps) = &cfg.sps_info {
        assert!(sps.width <= 16_384 && sps.height <= 16_384);
    }
}

fn check_asc(asc: &AudioSpecificConfig, payload_len: usize) {
    let _ = asc.channels();
    let _ = asc.frame_duration_90k();
    let _ = asc.codecs_string();
    let mut out = Vec::new();
    match asc.write_adts(&vec![0; payload_len], &mut out) {
        Ok(()) => {
            assert_eq!(out.len(), payload_len + 7);
            let header = asc.adts_header(payload_len).expect("write_adts succeeded");
            let frame_len =
                (usize::from(header[3] & 0x03) << 11) | (usize::from(header[4]) << 3) | usize::from(header[5] >> 5);
            assert_eq!(frame_len, payload_len + 7, "aac_frame_length");
        }
        Err(_) => assert!(out.is_empty()),
    }
}

/// An AVCC access unit with `length_size`-byte NAL lengths.
fn codec_frame(data: &[u8], length_size: u8) {
    let nalus = avcc_nalus(data, length_size).count();
    let _ = avcc_contains_idr(data, length_size);
    let mut out = vec![0xEE];
    match avcc_to_annexb(data, length_size, &mut out) {
        Ok(()) => {
            assert_eq!(out.len(), 1 + data.len() + (4 - usize::from(length_size)) * nalus);
            let _ = annexb_nalus(&out).count();
        }
        Err(_) => assert_eq!(out, [0xEE], "left as it was on error"),
    }
}

// ---- HLS / MPEG-TS ----

/// The segmenter fed pseudo FLV tags, as a shard feeds it RTMP media.
///
/// Input: one flags byte (segmenter bounds), then records
/// `[kind: u8][timestamp delta: i16 BE][len: u16 BE][body]` (a short last
/// body is cut). Bit 0 of kind: video, else audio; bit 7: after the tag,
/// `discontinuity()` when bit 6 is set, else `end()`. The delta is added to
/// a running 32-bit timestamp (wrapping), so jumps, restarts and wrap-around
/// are all reachable. [`flv_to_ts_mux_input`] turns a real FLV file into
/// this form.
///
/// Every completed segment must be whole 188-byte packets, each starting
/// with the sync byte, and the playlist must be UTF-8 text.
pub fn fuzz_ts_mux(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut seg = Segmenter::new(HlsConfig {
        fragment: Duration::from_millis(200 * u64::from(flags & 0x07)),
        playlist_length: Duration::from_millis(500 * u64::from((flags >> 3) & 0x03)),
        retained_segments: usize::from((flags >> 5) & 0x01),
        max_bytes: if flags & 0x40 != 0 { 4096 } else { 1 << 20 },
        max_segment_bytes: if flags & 0x80 != 0 { 2048 } else { 1 << 20 },
        uri_prefix: "s/".into(),
        muxer: TsMuxerConfig { audio_group_ms: if flags & 0x10 != 0 { 0 } else { 100 } },
    });
    let mut timestamp = 0u32;
    while let [kind, d0, d1, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (body, after) = tail.split_at(len);
        rest = after;
        timestamp = timestamp.wrapping_add_signed(i32::from(i16::from_be_bytes([*d0, *d1])));
        let media = if kind & 1 == 1 { Track::Video } else { Track::Audio };
        let _ = seg.push_flv_tag(media, timestamp, body);
        if kind & 0x80 != 0 {
            if kind & 0x40 != 0 {
                seg.discontinuity();
            } else {
                seg.end();
            }
        }
        drain_hls(&mut seg);
    }
    seg.end();
    drain_hls(&mut seg);
}

fn drain_hls(seg: &mut Segmenter) {
    while let Some(event) = seg.poll_event() {
        if let HlsEvent::SegmentCompleted { seq, data, .. } = event {
            check_ts(&data);
            if let Some(held) = seg.segment(seq) {
                assert_eq!(held, data);
            }
        }
    }
    let playlist = seg.playlist();
    assert!(std::str::from_utf8(&playlist).is_ok(), "playlist is text");
    assert!(seg.playlist_segment_count() <= 1024);
}

fn check_ts(data: &[u8]) {
    assert!(!data.is_empty(), "an empty segment");
    assert_eq!(data.len() % TS_PACKET_LEN, 0, "whole TS packets");
    for packet in data.chunks(TS_PACKET_LEN) {
        assert_eq!(packet[0], SYNC_BYTE);
    }
}

// ---- fragmented MP4 ----

/// The fragmented MP4 writer fed pseudo FLV tags, in [`fuzz_ts_mux`]'s input form
/// (built by [`flv_to_ts_mux_input`]): the flags byte sets `fragment_ms` (100 ms ×
/// its low 5 bits); bit 7 of a record's kind calls `finish()`.
///
/// Properties: an `Init` comes before any fragment; every fragment is one `moof`
/// plus one `mdat`; and [`mp4::scan`](crate::mp4::scan) of each file finds exactly
/// the fragments the writer reported (offsets, lengths and times), to its end.
pub fn fuzz_mp4(data: &[u8]) {
    mp4_files(data).check();
}

/// Runs a [`fuzz_mp4`] input through the writer.
fn mp4_files(data: &[u8]) -> Mp4Files {
    use crate::mp4::{Fmp4Options, Fmp4Writer};
    let mut files = Mp4Files::default();
    let Some((&flags, mut rest)) = data.split_first() else {
        return files;
    };
    let mut w = Fmp4Writer::new(Fmp4Options { fragment_ms: 100 * u32::from(flags & 0x1F) });
    let mut timestamp = 0u32;
    while let [kind, d0, d1, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (body, after) = tail.split_at(len);
        rest = after;
        timestamp = timestamp.wrapping_add_signed(i32::from(i16::from_be_bytes([*d0, *d1])));
        let _ = if kind & 1 == 1 { w.push_video(timestamp, body) } else { w.push_audio(timestamp, body) };
        if kind & 0x80 != 0 {
            files.add(w.finish());
        }
        while let Some(out) = w.poll() {
            files.add(Some(out));
        }
    }
    files.add(w.finish());
    while let Some(out) = w.poll() {
        files.add(Some(out));
    }
    files
}

/// The files a [`fuzz_mp4`] run wrote, with the fragments the writer reported.
#[derive(Default)]
struct Mp4Files(Vec<(Vec<u8>, Vec<crate::mp4::FragmentInfo>)>);

impl Mp4Files {
    fn add(&mut self, out: Option<crate::mp4::Mp4Output>) {
        use crate::mp4::{FragmentInfo, Mp4Output};
        match out {
            None => {}
            Some(Mp4Output::Init(init)) => self.0.push((init.to_vec(), Vec::new())),
            Some(Mp4Output::Fragment { data, start_ms, duration_ms }) => {
                let (file, frags) = self.0.last_mut().expect("an init before the first fragment");
                let (offset, len) = (file.len() as u64, data.len() as u64);
                frags.push(FragmentInfo { offset, len, start_ms, duration_ms });
                file.extend_from_slice(&data);
            }
        }
    }

    fn check(&self) {
        for (file, frags) in &self.0 {
            let scan = crate::mp4::scan(file).expect("the init scans");
            assert_eq!(&scan.fragments, frags, "scan agrees with the writer");
            assert_eq!(scan.valid_len, file.len() as u64);
        }
    }
}

/// Turns an FLV byte stream into a [`fuzz_ts_mux`] input (audio and video
/// tags only; bodies over 64 KiB are cut), for seeds and tests.
pub fn flv_to_ts_mux_input(flags: u8, flv: &[u8]) -> Vec<u8> {
    use crate::flv::TagType;
    let mut out = vec![flags];
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(flv);
    let mut last = 0u32;
    while let Ok(Some(tag)) = reader.poll_tag() {
        let kind = match tag.tag_type {
            TagType::Video => 1,
            TagType::Audio => 0,
            TagType::Script => continue,
        };
        let delta = tag.timestamp_ms.wrapping_sub(last) as i32;
        let delta = delta.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        last = last.wrapping_add_signed(i32::from(delta));
        let body = &tag.body[..tag.body.len().min(usize::from(u16::MAX))];
        out.push(kind);
        out.extend_from_slice(&delta.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

// ---- WebSocket ----

/// Client frames parsed from a byte stream, under the server's payload
/// limit and a small one. Each frame parsed must need all the bytes it used,
/// and must parse back the same when masked again.
pub fn fuzz_websocket(data: &[u8]) {
    for max_payload in [64 * 1024, 125] {
        let mut buf = data;
        while let Ok(Some((frame, used))) = websocket::parse_client_frame(buf, max_payload) {
            assert!(used >= 6 && used <= buf.len());
            assert!(frame.payload.len() <= max_payload);
            assert!(frame.opcode <= 0x0F);
            assert_eq!(
                websocket::parse_client_frame(&buf[..used - 1], max_payload),
                Ok(None),
                "a frame is not complete before its last byte"
            );
            let again = mask_client_frame(&frame, [buf[used - 1], 0x5A, 0, 0xFF]);
            assert_eq!(websocket::parse_client_frame(&again, max_payload), Ok(Some((frame, again.len()))));
            buf = &buf[used..];
        }
    }
    let _ = websocket::accept_key(&String::from_utf8_lossy(data));
}

/// A client frame on the wire (RFC 6455 §5.2, masked per §5.3).
fn mask_client_frame(frame: &ClientFrame, mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    websocket::frame_header(frame.opcode, frame.payload.len(), &mut out);
    if !frame.fin {
        out[0] &= 0x7F;
    }
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(frame.payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// xorshift64*: deterministic pseudo-random bytes for the fuzz bodies' tests, without
/// a dependency.
#[cfg(test)]
pub(crate) struct XorShift(pub(crate) u64);

#[cfg(test)]
impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    pub(crate) fn pick<'a>(&mut self, seeds: &'a [Vec<u8>]) -> &'a [u8] {
        &seeds[self.below(seeds.len())]
    }

    /// A valid input with 1 to `edits.rounds` random edits: bit flips, byte changes,
    /// truncation, random insertions, bytes overwritten with one of the format's
    /// boundary values (when it has any), and its boundary run spliced in.
    #[cfg(test)]
    pub(crate) fn mutate(&mut self, seed: &[u8], edits: &Edits) -> Vec<u8> {
        let mut v = seed.to_vec();
        let kinds = if edits.boundaries.is_empty() { 5 } else { 6 };
        for _ in 0..=self.below(edits.rounds) {
            match self.below(kinds) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next() as u8;
                }
                2 => {
                    let n = self.below(v.len() + 1);
                    v.truncate(n);
                }
                3 => {
                    let i = self.below(v.len() + 1);
                    let n = self.below(16);
                    let extra = self.bytes(n);
                    v.splice(i..i, extra);
                }
                4 if !v.is_empty() && !edits.boundaries.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = edits.boundaries[self.below(edits.boundaries.len())];
                }
                _ => {
                    let i = self.below(v.len() + 1);
                    v.splice(i..i, edits.splice);
                }
            }
        }
        v
    }
}

/// How a format's fuzz test edits its seeds (see [`XorShift::mutate`]).
#[cfg(test)]
pub(crate) struct Edits {
    /// At most this many edits (less one) per input.
    pub rounds: usize,
    /// Bytes an edit may put in place of one (lengths, counts); empty: no such edit.
    pub boundaries: &'static [u8],
    /// A run spliced in somewhere (an extreme length field).
    pub splice: [u8; 4],
}

#[cfg(test)]
mod tests;
