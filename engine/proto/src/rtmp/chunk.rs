//! The RTMP chunk stream (Adobe RTMP specification 1.0, §5.3 "Chunking"):
//! an incremental decoder that reassembles messages from chunks, a stateless
//! encoder whose output can be shared by every connection using the same chunk
//! size, and a stateful per-connection encoder that compresses headers.
//!
//! # Timestamp rules
//!
//! * Type 0 carries the absolute timestamp; types 1 and 2 carry a delta that is
//!   added to the previous message's timestamp on the same chunk stream (§5.3.1.2).
//! * A type 3 chunk that starts a new message repeats the previous "timestamp
//!   field" as a delta (§5.3.1.2.4, "take values from the preceding chunk"); after a
//!   type 0 chunk that field is the absolute timestamp. This is how ffmpeg and SRS
//!   read it; our stateful encoder never emits a new-message type 3 right after a
//!   type 0 chunk, so it does not depend on the reading.
//! * Extended timestamps (§5.3.1.3) are present when the 24-bit field is 0xFFFFFF,
//!   and on type 3 chunks when the most recent type 0/1/2 header on that chunk
//!   stream had one. Some encoders omit it on continuation chunks of a message;
//!   the decoder accepts both: it consumes the 4 bytes of a continuation chunk only
//!   if they equal the message's extended timestamp.
//!
//! # Control messages inside the decoder
//!
//! Set Chunk Size (type 1, §5.4.1) and Abort (type 2, §5.4.2) change how the
//! following chunks are read, so the decoder applies them itself, at the exact
//! point in the byte stream where they complete, and still returns them.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::RtmpError;

/// Chunk size both ends start with (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size the specification allows (31 bits, §5.4.1).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Largest message length a chunk header can carry (24 bits, §5.3.1.2.1).
pub const MAX_MESSAGE_LENGTH: u32 = 0xFF_FFFF;
/// Smallest chunk stream id (0 and 1 select the 2- and 3-byte basic headers).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (3-byte basic header, §5.3.1.1).
pub const MAX_CSID: u32 = 65_599;
/// A 24-bit timestamp field of this value means "extended timestamp follows".
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// Basic header (≤3) + type 0 message header (11) + extended timestamp (4).
const MAX_HEADER_LEN: usize = 18;
/// Initial buffer for a message being reassembled; grows as data arrives so a
/// header claiming a huge length does not allocate it up front. Also at most
/// `max_buffered_bytes / max_chunk_streams`, so that headers alone (one per chunk
/// stream, no payload yet) never reserve more than `max_buffered_bytes` in all.
const INITIAL_REASSEMBLY_CAPACITY: usize = 64 * 1024;

/// Message type ids the decoder acts on (§5.4).
const TYPE_SET_CHUNK_SIZE: u8 = 1;
const TYPE_ABORT: u8 = 2;

/// One complete RTMP message (§5.3.1: the chunk stream's unit of delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (wrapping).
    pub timestamp: u32,
    /// Message type id (§5.4, §7.1).
    pub type_id: u8,
    /// Message stream id (0 for the NetConnection).
    pub stream_id: u32,
    /// The reassembled payload.
    pub payload: Bytes,
}

/// Bounds on what a peer may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest message length accepted. Default 16 MiB (any 24-bit length).
    pub max_message_size: u32,
    /// Largest chunk size the peer may set. Default 16 MiB.
    pub max_chunk_size: u32,
    /// Most distinct chunk stream ids one connection may use. Default 64.
    pub max_chunk_streams: usize,
    /// Most bytes held in partially received messages across all chunk streams.
    /// Default 32 MiB.
    pub max_buffered_bytes: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits {
            max_message_size: 16 << 20,
            max_chunk_size: 16 << 20,
            max_chunk_streams: 64,
            max_buffered_bytes: 32 << 20,
        }
    }
}

impl ChunkLimits {
    /// Bounds for a connection that only sends commands and control messages
    /// (before it may publish, and players): 64 KiB per message, 128 KiB held in
    /// partial messages, 16 chunk streams.
    pub fn commands() -> Self {
        ChunkLimits {
            max_message_size: 64 << 10,
            max_chunk_streams: 16,
            max_buffered_bytes: 128 << 10,
            ..ChunkLimits::default()
        }
    }
}

/// Per chunk stream state (§5.3.1.2: headers inherit from the previous chunk).
#[derive(Debug, Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field (delta, or absolute for type 0), for type 3 reuse.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The latest type 0/1/2 header used an extended timestamp.
    extended: bool,
    /// The extended timestamp value of that header (for continuation chunks).
    ext_value: u32,
    /// The message being reassembled, if any.
    partial: Option<BytesMut>,
}

/// A parsed chunk header, not yet applied to the chunk stream state.
#[derive(Debug)]
struct Header {
    len: usize,
    fmt: u8,
    csid: u32,
    timestamp_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    ext: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Payload { csid: u32, left_in_chunk: u32 },
}

/// Incremental chunk stream decoder (§5.3). Feed it bytes in any split; it yields
/// the same messages as if the whole stream had arrived at once.
#[derive(Debug)]
pub struct ChunkDecoder {
    limits: ChunkLimits,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    state: State,
    /// Bytes logically in front of the next input: an incomplete header, or
    /// peeked bytes that turned out to be payload.
    stash: [u8; MAX_HEADER_LEN],
    stash_len: usize,
    buffered: usize,
}

impl ChunkDecoder {
    /// A decoder at the default chunk size of 128.
    pub fn new(limits: ChunkLimits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            state: State::Header,
            stash: [0; MAX_HEADER_LEN],
            stash_len: 0,
            buffered: 0,
        }
    }

    /// The chunk size the peer currently sends with.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes currently held in partially received messages.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// The bounds in force.
    pub fn limits(&self) -> ChunkLimits {
        self.limits
    }

    /// Changes the bounds for the following input (e.g. larger ones once a
    /// connection is allowed to publish). Limits are checked as bytes and headers
    /// arrive, so smaller limits apply to the next chunk, not to what is held.
    pub fn set_limits(&mut self, limits: ChunkLimits) {
        self.limits = limits;
    }

    /// Consumes bytes from the front of `input` until one message completes or
    /// `input` is exhausted (then `Ok(None)`; incomplete data is kept inside).
    /// Call in a loop until it returns `Ok(None)`. After an error the decoder is
    /// in an unspecified state and the connection must be closed.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Message>, RtmpError> {
        loop {
            match self.state {
                State::Payload { csid, left_in_chunk } => {
                    let from_stash = self.stash_len > 0;
                    let avail = if from_stash { self.stash_len } else { input.len() };
                    if avail == 0 {
                        return Ok(None);
                    }
                    let n = avail.min(left_in_chunk as usize);
                    let completed = if from_stash {
                        let mut tmp = [0u8; MAX_HEADER_LEN];
                        tmp[..n].copy_from_slice(&self.stash[..n]);
                        self.stash.copy_within(n..self.stash_len, 0);
                        self.stash_len -= n;
                        self.append_payload(csid, &tmp[..n])?
                    } else {
                        let (head, tail) = input.split_at(n);
                        *input = tail;
                        self.append_payload(csid, head)?
                    };
                    let left = left_in_chunk - n as u32;
                    if let Some(msg) = completed {
                        self.state = State::Header;
                        return Ok(Some(msg));
                    }
                    self.state = if left == 0 { State::Header } else { State::Payload { csid, left_in_chunk: left } };
                }
                State::Header => {
                    let Some(header) = self.take_header(input)? else {
                        return Ok(None);
                    };
                    if let Some(msg) = self.apply_header(&header)? {
                        return Ok(Some(msg));
                    }
                }
            }
        }
    }

    /// Parses the next chunk header from stash + input, consuming its bytes.
    fn take_header(&mut self, input: &mut &[u8]) -> Result<Option<Header>, RtmpError> {
        if self.stash_len == 0 {
            if input.is_empty() {
                return Ok(None);
            }
            return match self.parse_header(input)? {
                Some(h) => {
                    *input = input.get(h.len..).unwrap_or(&[]);
                    Ok(Some(h))
                }
                None => {
                    // Incomplete: fewer than MAX_HEADER_LEN bytes by construction.
                    let n = input.len().min(MAX_HEADER_LEN);
                    self.stash[..n].copy_from_slice(&input[..n]);
                    self.stash_len = n;
                    *input = &input[n..];
                    Ok(None)
                }
            };
        }
        let old = self.stash_len;
        let take = (MAX_HEADER_LEN - old).min(input.len());
        let mut buf = self.stash;
        buf[old..old + take].copy_from_slice(&input[..take]);
        match self.parse_header(&buf[..old + take])? {
            None => {
                self.stash = buf;
                self.stash_len = old + take;
                *input = &input[take..];
                Ok(None)
            }
            Some(h) if h.len >= old => {
                self.stash_len = 0;
                *input = &input[h.len - old..];
                Ok(Some(h))
            }
            Some(h) => {
                // Peeked stash bytes beyond the header are payload: keep them.
                self.stash.copy_within(h.len..old, 0);
                self.stash_len = old - h.len;
                Ok(Some(h))
            }
        }
    }

    /// Parses a chunk header (§5.3.1) from the front of `b` without changing any
    /// state. `Ok(None)` if more bytes are needed.
    fn parse_header(&self, input: &[u8]) -> Result<Option<Header>, RtmpError> {
        let Some(&b0) = input.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        // §5.3.1.1 basic header: 1, 2 or 3 bytes.
        let (csid, mut pos) = match b0 & 0x3F {
            0 => match input.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match (input.get(1), input.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::PeerMisbehaviour("chunk stream starts with a type 1/2/3 chunk"));
        }
        if prev.is_none() && self.streams.len() >= self.limits.max_chunk_streams {
            return Err(RtmpError::limit(
                "chunk streams",
                self.streams.len() as u64 + 1,
                self.limits.max_chunk_streams as u64,
            ));
        }
        let mh_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = input.get(pos..pos + mh_len) else {
            return Ok(None);
        };
        pos += mh_len;
        let be24 = |s: &[u8]| u32::from_be_bytes([0, s[0], s[1], s[2]]);
        let mut h = Header { len: 0, fmt, csid, timestamp_field: 0, length: 0, type_id: 0, stream_id: 0, ext: None };
        // §5.3.1.2.1-3: timestamp (delta), length, type id, stream id (LE).
        if fmt <= 2 {
            h.timestamp_field = be24(&mh[0..3]);
        }
        if fmt <= 1 {
            h.length = be24(&mh[3..6]);
            h.type_id = mh[6];
        }
        if fmt == 0 {
            h.stream_id = u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]]);
        }
        let read_ext = |pos: usize| -> Option<u32> {
            input.get(pos..pos + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        match prev {
            _ if fmt <= 2 && h.timestamp_field == EXTENDED_TIMESTAMP => {
                let Some(v) = read_ext(pos) else {
                    return Ok(None);
                };
                h.ext = Some(v);
                pos += 4;
            }
            _ if fmt <= 2 => {}
            Some(st) if st.extended => {
                let Some(v) = read_ext(pos) else {
                    return Ok(None);
                };
                if st.partial.is_none() || v == st.ext_value {
                    h.ext = Some(v);
                    pos += 4;
                }
                // else: a continuation chunk without the repeated extended
                // timestamp; the 4 bytes are payload.
            }
            _ => {}
        }
        h.len = pos;
        Ok(Some(h))
    }

    /// Applies a parsed header to its chunk stream; returns a message if it is
    /// a complete zero-length one.
    fn apply_header(&mut self, header: &Header) -> Result<Option<Message>, RtmpError> {
        let st = self.streams.entry(header.csid).or_default();
        let continuation = header.fmt == 3 && st.partial.is_some();
        if !continuation {
            if let Some(p) = st.partial.take() {
                // A new header while a message is unfinished: the peer abandoned
                // it without an Abort message. Drop it, as if aborted.
                self.buffered -= p.len();
            }
            let field = header.ext.unwrap_or(header.timestamp_field);
            match header.fmt {
                0 => {
                    st.timestamp = field;
                    st.delta = field;
                }
                1 | 2 => {
                    st.delta = field;
                    st.timestamp = st.timestamp.wrapping_add(field);
                }
                _ => {
                    if let Some(v) = header.ext {
                        st.delta = v;
                    }
                    st.timestamp = st.timestamp.wrapping_add(st.delta);
                }
            }
            if header.fmt <= 2 {
                st.extended = header.ext.is_some();
            }
            if let Some(v) = header.ext {
                st.ext_value = v;
            }
            if header.fmt <= 1 {
                st.length = header.length;
                st.type_id = header.type_id;
            }
            if header.fmt == 0 {
                st.stream_id = header.stream_id;
            }
            if st.length > self.limits.max_message_size {
                return Err(RtmpError::limit(
                    "message size",
                    u64::from(st.length),
                    u64::from(self.limits.max_message_size),
                ));
            }
            if st.length == 0 {
                let msg = Message {
                    csid: header.csid,
                    timestamp: st.timestamp,
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    payload: Bytes::new(),
                };
                self.state = State::Header;
                self.on_complete(&msg)?;
                return Ok(Some(msg));
            }
            let initial = INITIAL_REASSEMBLY_CAPACITY
                .min(self.limits.max_buffered_bytes / self.limits.max_chunk_streams.max(1))
                .min(st.length as usize);
            st.partial = Some(BytesMut::with_capacity(initial));
        }
        let received = st.partial.as_ref().map_or(0, |p| p.len() as u32);
        let left = st.length.saturating_sub(received).min(self.chunk_size);
        self.state = State::Payload { csid: header.csid, left_in_chunk: left };
        Ok(None)
    }

    fn append_payload(&mut self, csid: u32, data: &[u8]) -> Result<Option<Message>, RtmpError> {
        let Some(st) = self.streams.get_mut(&csid) else {
            return Err(RtmpError::InvalidUse("payload for unknown chunk stream"));
        };
        let Some(partial) = st.partial.as_mut() else {
            return Err(RtmpError::InvalidUse("payload without a message"));
        };
        partial.extend_from_slice(data);
        self.buffered += data.len();
        if self.buffered > self.limits.max_buffered_bytes {
            return Err(RtmpError::limit(
                "buffered partial messages",
                self.buffered as u64,
                self.limits.max_buffered_bytes as u64,
            ));
        }
        if partial.len() < st.length as usize {
            return Ok(None);
        }
        let payload = st.partial.take().map(BytesMut::freeze).unwrap_or_default();
        self.buffered -= payload.len();
        let msg = Message { csid, timestamp: st.timestamp, type_id: st.type_id, stream_id: st.stream_id, payload };
        self.on_complete(&msg)?;
        Ok(Some(msg))
    }

    /// Applies Set Chunk Size (§5.4.1) and Abort (§5.4.2) where they complete.
    fn on_complete(&mut self, msg: &Message) -> Result<(), RtmpError> {
        let first4 = || -> Result<u32, RtmpError> {
            msg.payload
                .get(..4)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or_else(|| RtmpError::malformed("control message", "shorter than 4 bytes"))
        };
        match msg.type_id {
            TYPE_SET_CHUNK_SIZE => {
                // The first bit must be zero (§5.4.1); mask it like other peers do.
                let size = first4()? & MAX_CHUNK_SIZE;
                if size == 0 {
                    return Err(RtmpError::malformed("Set Chunk Size", "chunk size 0"));
                }
                if size > self.limits.max_chunk_size {
                    return Err(RtmpError::limit("chunk size", u64::from(size), u64::from(self.limits.max_chunk_size)));
                }
                self.chunk_size = size;
            }
            TYPE_ABORT => {
                let csid = first4()?;
                if let Some(p) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
                    self.buffered -= p.len();
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Header fields of an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Chunk stream id, 2..=65599.
    pub csid: u32,
    /// Absolute timestamp in milliseconds.
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
}

fn basic_header_len(csid: u32) -> usize {
    match csid {
        ..64 => 1,
        64..320 => 2,
        _ => 3,
    }
}

/// §5.3.1.1 basic header.
fn put_basic_header(out: &mut impl BufMut, fmt: u8, csid: u32) {
    let csid = csid.clamp(MIN_CSID, MAX_CSID);
    match csid {
        ..64 => out.put_u8((fmt << 6) | csid as u8),
        64..320 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8((fmt << 6) | 1);
            out.put_u16_le((csid - 64) as u16);
        }
    }
}

fn put_u24(out: &mut impl BufMut, v: u32) {
    out.put_slice(&v.to_be_bytes()[1..]);
}

fn check_len(payload: &[u8]) -> Result<(), RtmpError> {
    if payload.len() > MAX_MESSAGE_LENGTH as usize {
        return Err(RtmpError::InvalidUse("message longer than 0xFFFFFF bytes"));
    }
    Ok(())
}

/// Number of bytes [`encode_message`] writes.
pub fn encoded_len(chunk_size: u32, header: &MessageHeader, payload_len: usize) -> usize {
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK_SIZE) as usize;
    let ext = if header.timestamp >= EXTENDED_TIMESTAMP { 4 } else { 0 };
    let chunks = payload_len.div_ceil(chunk_size).max(1);
    let basic = basic_header_len(header.csid.clamp(MIN_CSID, MAX_CSID));
    payload_len + 11 + chunks * (basic + ext)
}

/// Writes one whole message as chunks (§5.3.1): a type 0 chunk, then type 3
/// continuation chunks, each repeating the extended timestamp when the timestamp
/// is ≥ 0xFFFFFF (§5.3.1.3). Stateless, so the bytes can be shared by every
/// connection that uses `chunk_size` and does not compress headers on
/// `header.csid`. A `chunk_size` of 0 is treated as 1.
pub fn encode_message(
    out: &mut impl BufMut,
    chunk_size: u32,
    header: &MessageHeader,
    payload: &[u8],
) -> Result<(), RtmpError> {
    check_len(payload)?;
    write_chunks(out, chunk_size, 0, header, payload, header.timestamp);
    Ok(())
}

/// [`encode_message`] into a new, exactly sized buffer.
pub fn encode_message_bytes(chunk_size: u32, header: &MessageHeader, payload: &[u8]) -> Result<Bytes, RtmpError> {
    let mut out = BytesMut::with_capacity(encoded_len(chunk_size, header, payload.len()));
    encode_message(&mut out, chunk_size, header, payload)?;
    Ok(out.freeze())
}

/// Writes the first chunk with header type `fmt` (timestamp field `ts_field`:
/// absolute for type 0, delta otherwise) and type 3 continuations.
fn write_chunks(
    out: &mut impl BufMut,
    chunk_size: u32,
    fmt: u8,
    header: &MessageHeader,
    payload: &[u8],
    ts_field: u32,
) {
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK_SIZE) as usize;
    let extended = ts_field >= EXTENDED_TIMESTAMP;
    put_basic_header(out, fmt, header.csid);
    if fmt <= 2 {
        put_u24(out, ts_field.min(EXTENDED_TIMESTAMP));
    }
    if fmt <= 1 {
        put_u24(out, payload.len() as u32);
        out.put_u8(header.type_id);
    }
    if fmt == 0 {
        out.put_u32_le(header.stream_id);
    }
    if extended {
        out.put_u32(ts_field);
    }
    let mut chunks = payload.chunks(chunk_size);
    if let Some(first) = chunks.next() {
        out.put_slice(first);
    }
    for c in chunks {
        put_basic_header(out, 3, header.csid);
        if extended {
            out.put_u32(ts_field);
        }
        out.put_slice(c);
    }
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    was_type0: bool,
}

/// Stateful encoder for one connection: compresses headers with types 1, 2 and 3
/// (§5.3.1.2) per chunk stream. Do not mix it with [`encode_message`] output on
/// the same chunk stream id (the peer's view of the previous header would differ).
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    last: HashMap<u32, LastSent>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size of 128.
    pub fn new() -> Self {
        ChunkEncoder { chunk_size: DEFAULT_CHUNK_SIZE, last: HashMap::new() }
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the chunk size for the following messages. Send Set Chunk Size
    /// (§5.4.1) before the first message that uses it.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends one message, choosing the smallest header type that the decoder
    /// rules of this module reconstruct exactly.
    pub fn encode(&mut self, out: &mut impl BufMut, header: &MessageHeader, payload: &[u8]) -> Result<(), RtmpError> {
        check_len(payload)?;
        let length = payload.len() as u32;
        let prev = self.last.get(&header.csid).copied();
        let (fmt, field) = match prev {
            Some(p)
                if p.stream_id == header.stream_id
                    && header.timestamp >= p.timestamp
                    && header.timestamp - p.timestamp < EXTENDED_TIMESTAMP =>
            {
                let delta = header.timestamp - p.timestamp;
                if p.length != length || p.type_id != header.type_id {
                    (1, delta)
                } else if p.was_type0 || p.delta != delta {
                    (2, delta)
                } else {
                    (3, delta)
                }
            }
            _ => (0, header.timestamp),
        };
        write_chunks(out, self.chunk_size, fmt, header, payload, field);
        self.last.insert(
            header.csid,
            LastSent {
                timestamp: header.timestamp,
                delta: field,
                length,
                type_id: header.type_id,
                stream_id: header.stream_id,
                was_type0: fmt == 0,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
