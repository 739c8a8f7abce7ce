//! Tests of the chunk decoder and encoders (RTMP spec §5.3).

use super::*;

fn decode_whole(dec: &mut ChunkDecoder, mut input: &[u8]) -> Result<Vec<Message>, RtmpError> {
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut input)? {
        out.push(m);
    }
    assert!(input.is_empty());
    Ok(out)
}

fn decode_split(bytes: &[u8], split: impl Fn(usize) -> usize) -> Vec<Message> {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let n = split(i).max(1).min(bytes.len() - pos);
        out.extend(decode_whole(&mut dec, &bytes[pos..pos + n]).unwrap());
        pos += n;
        i += 1;
    }
    out
}

/// Decodes whole, byte by byte, and in odd-sized pieces; all must agree.
fn decode_every_way(bytes: &[u8]) -> Vec<Message> {
    let whole = decode_whole(&mut ChunkDecoder::new(ChunkLimits::default()), bytes).unwrap();
    assert_eq!(decode_split(bytes, |_| 1), whole, "byte by byte");
    assert_eq!(decode_split(bytes, |i| (i * 7 + 3) % 23), whole, "odd pieces");
    whole
}

fn hdr(csid: u32, timestamp: u32, type_id: u8, stream_id: u32) -> MessageHeader {
    MessageHeader { csid, timestamp, type_id, stream_id }
}

fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn stateless_roundtrip_all_csid_forms_and_sizes() {
    for csid in [2, 3, 63, 64, 65, 319, 320, 1000, MAX_CSID] {
        for chunk_size in [1, 128, 4096] {
            for len in [0, 1, 127, 128, 129, 1000, 9000] {
                let h = hdr(csid, 1234, 9, 1);
                let p = payload(len, csid as u8);
                let bytes = encode_message_bytes(chunk_size, &h, &p).unwrap();
                assert_eq!(bytes.len(), encoded_len(chunk_size, &h, len));
                let mut dec = ChunkDecoder::new(ChunkLimits::default());
                // The decoder reads at 128; tell it about other sizes first.
                let mut all = Vec::new();
                if chunk_size != DEFAULT_CHUNK_SIZE {
                    encode_message(&mut all, 128, &hdr(2, 0, 1, 0), &chunk_size.to_be_bytes()).unwrap();
                }
                all.extend_from_slice(&bytes);
                let msgs = decode_whole(&mut dec, &all).unwrap();
                let m = msgs.last().unwrap();
                assert_eq!((m.csid, m.timestamp, m.type_id, m.stream_id), (csid, 1234, 9, 1));
                assert_eq!(&m.payload[..], &p[..]);
            }
        }
    }
}

#[test]
fn all_four_header_types() {
    // csid 4, stream 1: type 0 at ts 1000, type 1 (+40, new length), type 2 (+20),
    // type 3 new message (+20 again), each a single chunk.
    let mut b = vec![0x04];
    b.extend_from_slice(&[0x00, 0x03, 0xE8, 0x00, 0x00, 0x02, 0x08, 1, 0, 0, 0]);
    b.extend_from_slice(&[0xAA, 0xBB]);
    b.push(0x44);
    b.extend_from_slice(&[0x00, 0x00, 0x28, 0x00, 0x00, 0x03, 0x09]);
    b.extend_from_slice(&[1, 2, 3]);
    b.push(0x84);
    b.extend_from_slice(&[0x00, 0x00, 0x14]);
    b.extend_from_slice(&[4, 5, 6]);
    b.push(0xC4);
    b.extend_from_slice(&[7, 8, 9]);
    let msgs = decode_every_way(&b);
    let summary: Vec<_> = msgs.iter().map(|m| (m.timestamp, m.type_id, m.stream_id, m.payload.to_vec())).collect();
    assert_eq!(
        summary,
        vec![
            (1000, 8, 1, vec![0xAA, 0xBB]),
            (1040, 9, 1, vec![1, 2, 3]),
            (1060, 9, 1, vec![4, 5, 6]),
            (1080, 9, 1, vec![7, 8, 9]),
        ]
    );
}

#[test]
fn type3_after_type0_repeats_the_timestamp_field() {
    // ffmpeg/SRS reading: the type 0 field (absolute 40) is reused as a delta.
    let mut b = vec![0x04, 0x00, 0x00, 0x28, 0x00, 0x00, 0x01, 0x08, 1, 0, 0, 0, 0xAA];
    b.extend_from_slice(&[0xC4, 0xBB]);
    let msgs = decode_every_way(&b);
    assert_eq!(msgs[1].timestamp, 80);
}

#[test]
fn extended_timestamp_repeated_on_continuations() {
    let ts = 0x0100_0000;
    let p = payload(300, 1);
    let bytes = encode_message_bytes(128, &hdr(6, ts, 9, 1), &p).unwrap();
    // 3 chunks, each continuation carries the 4-byte timestamp.
    assert_eq!(bytes.len(), 1 + 11 + 4 + 300 + 2 * (1 + 4));
    assert_eq!(&bytes[12..16], &ts.to_be_bytes());
    let msgs = decode_every_way(&bytes);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].timestamp, ts);
    assert_eq!(&msgs[0].payload[..], &p[..]);
}

#[test]
fn extended_timestamp_omitted_on_continuations_is_tolerated() {
    let ts: u32 = 0x0123_4567;
    let p = payload(300, 9);
    let mut b = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x2C, 0x09, 1, 0, 0, 0];
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&p[..128]);
    b.push(0xC6);
    b.extend_from_slice(&p[128..256]);
    b.push(0xC6);
    b.extend_from_slice(&p[256..]);
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].timestamp, ts);
    assert_eq!(&msgs[0].payload[..], &p[..]);
}

#[test]
fn extended_omitted_with_short_tail_is_tolerated() {
    // The last continuation has only 2 payload bytes, followed by another message.
    let ts: u32 = 0x0200_0000;
    let p = payload(130, 3);
    let mut b = vec![0x06, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x82, 0x09, 1, 0, 0, 0];
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&p[..128]);
    b.push(0xC6);
    b.extend_from_slice(&p[128..]);
    b.extend_from_slice(&encode_message_bytes(128, &hdr(3, 5, 20, 0), b"xyz").unwrap());
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 2);
    assert_eq!(&msgs[0].payload[..], &p[..]);
    assert_eq!(&msgs[1].payload[..], b"xyz");
}

#[test]
fn extended_timestamp_on_new_message_type3() {
    // Type 1 with an extended delta, then a type 3 new message repeating it.
    let delta: u32 = 0x0100_0000;
    let mut b = vec![0x04, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x08, 1, 0, 0, 0, 0xA0];
    b.extend_from_slice(&[0x44, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x01, 0x08]);
    b.extend_from_slice(&delta.to_be_bytes());
    b.push(0xA1);
    b.push(0xC4);
    b.extend_from_slice(&delta.to_be_bytes());
    b.push(0xA2);
    let msgs = decode_every_way(&b);
    let ts: Vec<u32> = msgs.iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, vec![1, 1 + delta, 1 + 2 * delta]);
}

#[test]
fn set_chunk_size_applies_mid_stream() {
    let mut b = Vec::new();
    let p1 = payload(1000, 1);
    let p2 = payload(9000, 2);
    encode_message(&mut b, 128, &hdr(4, 0, 8, 1), &p1).unwrap();
    encode_message(&mut b, 128, &hdr(2, 0, 1, 0), &4096u32.to_be_bytes()).unwrap();
    encode_message(&mut b, 4096, &hdr(4, 10, 8, 1), &p2).unwrap();
    encode_message(&mut b, 4096, &hdr(2, 0, 1, 0), &100u32.to_be_bytes()).unwrap();
    encode_message(&mut b, 100, &hdr(4, 20, 8, 1), &p1).unwrap();
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 5);
    assert_eq!(&msgs[2].payload[..], &p2[..]);
    assert_eq!(&msgs[4].payload[..], &p1[..]);
}

#[test]
fn abort_drops_partial_message() {
    let mut b = Vec::new();
    let big = payload(300, 1);
    let full = encode_message_bytes(128, &hdr(4, 0, 9, 1), &big).unwrap();
    // First chunk only (1 + 11 + 128 bytes), then Abort(4), then a fresh message.
    b.extend_from_slice(&full[..140]);
    encode_message(&mut b, 128, &hdr(2, 0, 2, 0), &4u32.to_be_bytes()).unwrap();
    encode_message(&mut b, 128, &hdr(4, 5, 9, 1), b"fresh").unwrap();
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].type_id, 2);
    assert_eq!(&msgs[1].payload[..], b"fresh");
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    decode_whole(&mut dec, &b).unwrap();
    assert_eq!(dec.buffered_bytes(), 0);
}

#[test]
fn interleaved_chunk_streams() {
    // Chunks of two messages on csid 4 and 6 interleaved (§5.3.2.2 style).
    let a = payload(200, 1);
    let v = payload(200, 2);
    let ea = encode_message_bytes(128, &hdr(4, 0, 8, 1), &a).unwrap();
    let ev = encode_message_bytes(128, &hdr(6, 0, 9, 1), &v).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&ea[..140]);
    b.extend_from_slice(&ev[..140]);
    b.extend_from_slice(&ea[140..]);
    b.extend_from_slice(&ev[140..]);
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 2);
    assert_eq!((msgs[0].csid, &msgs[0].payload[..]), (4, &a[..]));
    assert_eq!((msgs[1].csid, &msgs[1].payload[..]), (6, &v[..]));
}

#[test]
fn stateful_encoder_roundtrip_with_compression() {
    let mut enc = ChunkEncoder::new();
    enc.set_chunk_size(4096);
    let mut b = Vec::new();
    encode_message(&mut b, 128, &hdr(2, 0, 1, 0), &4096u32.to_be_bytes()).unwrap();
    let mut expected = Vec::new();
    let mut ts = 0u32;
    for i in 0..200u32 {
        // Audio on csid 4 every 23 ms with equal sizes (type 2/3), video on 6
        // with varying sizes (type 1), an occasional jump backwards (type 0)
        // and an extended timestamp range.
        let (csid, type_id, len) = if i % 3 == 0 { (6, 9, 100 + (i as usize * 37) % 9000) } else { (4, 8, 200) };
        ts = if i == 100 { 5 } else { ts + 23 };
        if i == 150 {
            ts = 0x00FF_FFF0;
        }
        let h = hdr(csid, ts, type_id, 1);
        let p = payload(len, i as u8);
        enc.encode(&mut b, &h, &p).unwrap();
        expected.push((csid, ts, type_id, p));
    }
    let msgs = decode_every_way(&b);
    let got: Vec<_> = msgs[1..].iter().map(|m| (m.csid, m.timestamp, m.type_id, m.payload.to_vec())).collect();
    assert_eq!(got, expected);
    // Compression actually happened: the stream is smaller than type-0-only.
    let plain: usize = expected.iter().map(|(c, t, ty, p)| encoded_len(4096, &hdr(*c, *t, *ty, 1), p.len())).sum();
    assert!(b.len() < plain + 16);
}

#[test]
fn first_chunk_must_be_type0() {
    let mut dec = ChunkDecoder::new(ChunkLimits::default());
    let err = decode_whole(&mut dec, &[0x44, 0, 0, 0, 0, 0, 1, 8]).unwrap_err();
    assert_eq!(err.kind(), super::super::error::ErrorKind::PeerMisbehaviour);
}

#[test]
fn limits_are_enforced() {
    let limits =
        ChunkLimits { max_message_size: 1000, max_chunk_size: 8192, max_chunk_streams: 3, max_buffered_bytes: 1500 };
    // Message too large.
    let b = encode_message_bytes(128, &hdr(4, 0, 9, 1), &payload(1001, 0)).unwrap();
    let mut dec = ChunkDecoder::new(limits);
    assert!(matches!(decode_whole(&mut dec, &b), Err(RtmpError::LimitExceeded { what: "message size", .. })));
    // Chunk size too large, and zero.
    for size in [8193u32, 0] {
        let b = encode_message_bytes(128, &hdr(2, 0, 1, 0), &size.to_be_bytes()).unwrap();
        let mut dec = ChunkDecoder::new(limits);
        assert!(decode_whole(&mut dec, &b).is_err());
    }
    // Too many chunk streams.
    let mut b = Vec::new();
    for csid in 3..7 {
        encode_message(&mut b, 128, &hdr(csid, 0, 9, 1), b"x").unwrap();
    }
    let mut dec = ChunkDecoder::new(limits);
    assert!(matches!(decode_whole(&mut dec, &b), Err(RtmpError::LimitExceeded { what: "chunk streams", .. })));
    // Too many bytes in partial messages: two 900-byte messages, interleaved.
    let e1 = encode_message_bytes(128, &hdr(4, 0, 9, 1), &payload(900, 0)).unwrap();
    let e2 = encode_message_bytes(128, &hdr(5, 0, 9, 1), &payload(900, 0)).unwrap();
    let mut b = Vec::new();
    // Chunk-aligned interleaving: first chunks are 12 + 128 bytes, then 1 + 128.
    let (mut p1, mut p2) = (&e1[..], &e2[..]);
    let mut first = true;
    while !p1.is_empty() || !p2.is_empty() {
        for p in [&mut p1, &mut p2] {
            let n = p.len().min(if first { 140 } else { 129 });
            b.extend_from_slice(&p[..n]);
            *p = &p[n..];
        }
        first = false;
    }
    let mut dec = ChunkDecoder::new(limits);
    assert!(matches!(
        decode_whole(&mut dec, &b),
        Err(RtmpError::LimitExceeded { what: "buffered partial messages", .. })
    ));
}

#[test]
fn encoder_rejects_oversized_payload() {
    let p = vec![0u8; MAX_MESSAGE_LENGTH as usize + 1];
    assert!(encode_message_bytes(4096, &hdr(4, 0, 9, 1), &p).is_err());
}

#[test]
fn zero_length_message_and_timestamp_wrap() {
    let mut b = Vec::new();
    encode_message(&mut b, 128, &hdr(3, u32::MAX, 20, 0), b"").unwrap();
    let mut enc = ChunkEncoder::new();
    enc.encode(&mut b, &hdr(5, u32::MAX - 1, 18, 1), b"a").unwrap();
    enc.encode(&mut b, &hdr(5, u32::MAX, 18, 1), b"b").unwrap();
    let msgs = decode_every_way(&b);
    assert_eq!(msgs.len(), 3);
    assert!(msgs[0].payload.is_empty());
    assert_eq!(msgs[0].timestamp, u32::MAX);
    assert_eq!(msgs[2].timestamp, u32::MAX);
}
