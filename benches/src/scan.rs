//! Stream parsers of the load generator, "just deep enough": they count media
//! messages, bytes and keyframes and read media timestamps, and never copy or keep
//! a media payload (only its first two bytes are looked at).
//!
//! * [`RtmpScan`]: an RTMP chunk-stream scanner (Adobe RTMP 1.0 §5.3) for the media
//!   phase of a player. It applies Set Chunk Size / Abort, answers Ping Requests and
//!   sends Acknowledgements, and collects only small non-media messages (commands,
//!   user control) whole.
//! * [`FlvScan`]: an FLV tag scanner (FLV v10.1 annex E).
//! * [`Chunked`]: an HTTP/1.1 chunked transfer-coding decoder (RFC 9112 §7.1).
//! * [`WsFrames`]: a WebSocket client-side frame decoder (RFC 6455 §5.2).
//!
//! The engine's own parsers ([`engine::proto::rtmp::ClientSession`],
//! [`engine::proto::flv::FlvReader`]) do the same job with full reassembly (a copy of
//! every payload); `--parser engine` selects them and `benches/benches/loadgen_parse.rs`
//! compares the cost per byte.

/// What one batch of input contained.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Audio and video messages (sequence headers included).
    pub media: u32,
    /// Video keyframes (sequence headers excluded).
    pub keyframes: u32,
    /// Script data messages (onMetaData).
    pub data: u32,
    /// Timestamp of the first coded audio/video frame (not a sequence header).
    pub first_ts: Option<u32>,
    /// Newest coded audio/video timestamp (compared modulo 2^32).
    pub max_ts: Option<u32>,
}

impl Summary {
    /// Accounts one message by FLV/RTMP type (8 audio, 9 video, 18 data) from the
    /// first two bytes of its payload (`head`, possibly shorter).
    #[inline]
    pub fn on_message(&mut self, type_id: u8, ts: u32, head: &[u8]) {
        match type_id {
            8 | 9 => {
                self.media += 1;
                let b0 = head.first().copied().unwrap_or(0);
                let b1 = head.get(1).copied();
                let (header, key) = if type_id == 9 {
                    if b0 & 0x80 != 0 {
                        // Enhanced RTMP: packet type in the low nibble, 0 = sequence start.
                        let pt = b0 & 0x0f;
                        (pt == 0 || pt == 4, (b0 >> 4) & 7 == 1 && pt != 0 && pt != 4)
                    } else {
                        let seq = (b0 & 0x0f) == 7 && b1 == Some(0) || (b0 & 0x0f) == 12 && b1 == Some(0);
                        (seq, (b0 >> 4) == 1 && !seq)
                    }
                } else {
                    // AAC (sound format 10) packet type 0 is the AudioSpecificConfig.
                    ((b0 >> 4) == 10 && b1 == Some(0), false)
                };
                if key {
                    self.keyframes += 1;
                }
                if !header {
                    if self.first_ts.is_none() {
                        self.first_ts = Some(ts);
                    }
                    self.max_ts = Some(match self.max_ts {
                        Some(m) if (ts.wrapping_sub(m) as i32) < 0 => m,
                        _ => ts,
                    });
                }
            }
            18 | 15 => self.data += 1,
            _ => {}
        }
    }

    pub fn merge(&mut self, o: &Summary) {
        self.media += o.media;
        self.keyframes += o.keyframes;
        self.data += o.data;
        if self.first_ts.is_none() {
            self.first_ts = o.first_ts;
        }
        if let Some(t) = o.max_ts {
            self.on_ts(t);
        }
    }

    fn on_ts(&mut self, ts: u32) {
        self.max_ts = Some(match self.max_ts {
            Some(m) if (ts.wrapping_sub(m) as i32) < 0 => m,
            _ => ts,
        });
    }
}

/// A parse failure, by kind (for the "errors by kind" table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

// ---------------------------------------------------------------------------
// RTMP

const EXT_TS: u32 = 0xFF_FFFF;
/// Non-media messages larger than this are counted but not collected.
const MAX_CONTROL: usize = 16 * 1024;
/// Most chunk streams a server may use on one connection.
const MAX_CSIDS: usize = 64;

#[derive(Debug, Default, Clone)]
struct Cs {
    csid: u32,
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    extended: bool,
    ext_value: u32,
    in_msg: bool,
    received: u32,
    head: [u8; 2],
    /// Whole payload of a small non-media message.
    buf: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum RState {
    Header,
    Payload { cs: usize, left: u32 },
}

/// What an RTMP connection said besides media (for the loadgen's state machine).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RtmpNotes {
    /// `onStatus` codes seen (level, code), in order.
    pub statuses: Vec<(String, String)>,
    /// User control Stream EOF seen.
    pub stream_eof: bool,
}

/// RTMP chunk scanner (no payload copies). Feed it the bytes that follow the
/// handshake (or set `skip` to the handshake length and feed everything).
#[derive(Debug)]
pub struct RtmpScan {
    /// Input bytes still to ignore (S0+S1+S2 = 3073 from a server).
    pub skip: usize,
    chunk_size: u32,
    streams: Vec<Cs>,
    state: RState,
    stash: [u8; 18],
    stash_len: usize,
    /// Whether to answer pings and send acknowledgements (off while a
    /// ClientSession runs the same connection).
    pub respond: bool,
    bytes_in: u64,
    ack_window: u32,
    acked_at: u64,
    pub notes: RtmpNotes,
}

impl Default for RtmpScan {
    fn default() -> Self {
        Self::new()
    }
}

impl RtmpScan {
    pub fn new() -> Self {
        RtmpScan {
            skip: 0,
            chunk_size: 128,
            streams: Vec::new(),
            state: RState::Header,
            stash: [0; 18],
            stash_len: 0,
            respond: true,
            bytes_in: 0,
            ack_window: 0,
            acked_at: 0,
            notes: RtmpNotes::default(),
        }
    }

    /// A scanner for a client connection: the first 3073 bytes are the server's
    /// handshake.
    pub fn after_handshake() -> Self {
        RtmpScan { skip: 1 + 1536 + 1536, ..Self::new() }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    fn cs_index(&mut self, csid: u32, create: bool) -> Result<Option<usize>, ParseError> {
        if let Some(i) = self.streams.iter().position(|c| c.csid == csid) {
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        if self.streams.len() >= MAX_CSIDS {
            return Err(ParseError("rtmp: too many chunk streams".into()));
        }
        self.streams.push(Cs { csid, ..Cs::default() });
        Ok(Some(self.streams.len() - 1))
    }

    /// Consumes `input`; accounts media in `sum`; queues answers in `out`.
    pub fn feed(&mut self, mut input: &[u8], sum: &mut Summary, out: &mut Vec<u8>) -> Result<(), ParseError> {
        self.bytes_in += input.len() as u64;
        if self.skip > 0 {
            let n = self.skip.min(input.len());
            self.skip -= n;
            input = &input[n..];
        }
        while !input.is_empty() {
            match self.state {
                RState::Payload { cs, left } => {
                    let n = (left as usize).min(input.len());
                    let (chunk, rest) = input.split_at(n);
                    input = rest;
                    let c = &mut self.streams[cs];
                    let is_media = matches!(c.type_id, 8 | 9 | 18);
                    if c.received < 2 {
                        let k = (2 - c.received as usize).min(chunk.len());
                        c.head[c.received as usize..c.received as usize + k].copy_from_slice(&chunk[..k]);
                    }
                    if !is_media && c.length as usize <= MAX_CONTROL {
                        c.buf.extend_from_slice(chunk);
                    }
                    c.received += n as u32;
                    let left = left - n as u32;
                    if c.received >= c.length {
                        self.state = RState::Header;
                        self.complete(cs, sum, out)?;
                    } else if left == 0 {
                        self.state = RState::Header;
                    } else {
                        self.state = RState::Payload { cs, left };
                    }
                }
                RState::Header => {
                    // Parse from stash + input without copying more than a header.
                    let mut tmp = [0u8; 18];
                    let old = self.stash_len;
                    let take = (18 - old).min(input.len());
                    tmp[..old].copy_from_slice(&self.stash[..old]);
                    tmp[old..old + take].copy_from_slice(&input[..take]);
                    let avail = old + take;
                    match self.parse_header(&tmp[..avail])? {
                        None => {
                            self.stash[..avail].copy_from_slice(&tmp[..avail]);
                            self.stash_len = avail;
                            input = &input[take..];
                        }
                        Some(h) => {
                            // h.len > old: the stash alone was not a complete header.
                            input = &input[h.len - old..];
                            self.stash_len = 0;
                            self.apply(h, sum, out)?;
                        }
                    }
                }
            }
        }
        if self.respond && self.ack_window > 0 && self.bytes_in - self.acked_at >= u64::from(self.ack_window) {
            self.acked_at = self.bytes_in;
            // Acknowledgement (type 3) on csid 2, stream 0.
            out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0]);
            out.extend_from_slice(&(self.bytes_in as u32).to_be_bytes());
        }
        Ok(())
    }

    fn parse_header(&mut self, b: &[u8]) -> Result<Option<Hdr>, ParseError> {
        let Some(&b0) = b.first() else { return Ok(None) };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match b.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match (b.get(1), b.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let mh_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = b.get(pos..pos + mh_len) else { return Ok(None) };
        pos += mh_len;
        let be24 = |s: &[u8]| u32::from_be_bytes([0, s[0], s[1], s[2]]);
        let mut h = Hdr { len: 0, fmt, csid, ts: 0, length: 0, type_id: 0, ext: None };
        if fmt <= 2 {
            h.ts = be24(&mh[0..3]);
        }
        if fmt <= 1 {
            h.length = be24(&mh[3..6]);
            h.type_id = mh[6];
        }
        let extended = if fmt <= 2 {
            h.ts == EXT_TS
        } else {
            let i = self.cs_index(csid, false)?;
            match i {
                Some(i) => self.streams[i].extended,
                None => return Err(ParseError("rtmp: chunk stream starts with a type 3 chunk".into())),
            }
        };
        if extended {
            let Some(s) = b.get(pos..pos + 4) else { return Ok(None) };
            h.ext = Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
            pos += 4;
        }
        h.len = pos;
        Ok(Some(h))
    }

    fn apply(&mut self, h: Hdr, sum: &mut Summary, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(i) = self.cs_index(h.csid, true)? else { unreachable!() };
        let c = &mut self.streams[i];
        let continuation = h.fmt == 3 && c.in_msg;
        if !continuation {
            let field = h.ext.unwrap_or(h.ts);
            match h.fmt {
                0 => {
                    c.timestamp = field;
                    c.delta = field;
                }
                1 | 2 => {
                    c.delta = field;
                    c.timestamp = c.timestamp.wrapping_add(field);
                }
                _ => {
                    if let Some(v) = h.ext {
                        c.delta = v;
                    }
                    c.timestamp = c.timestamp.wrapping_add(c.delta);
                }
            }
            if h.fmt <= 2 {
                c.extended = h.ext.is_some();
            }
            if let Some(v) = h.ext {
                c.ext_value = v;
            }
            if h.fmt <= 1 {
                c.length = h.length;
                c.type_id = h.type_id;
            }
            c.in_msg = true;
            c.received = 0;
            c.buf.clear();
            if c.length == 0 {
                self.complete(i, sum, out)?;
                return Ok(());
            }
        }
        let c = &self.streams[i];
        let left = (c.length - c.received).min(self.chunk_size);
        self.state = RState::Payload { cs: i, left };
        Ok(())
    }

    fn complete(&mut self, i: usize, sum: &mut Summary, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let c = &mut self.streams[i];
        c.in_msg = false;
        let (type_id, ts) = (c.type_id, c.timestamp);
        match type_id {
            8 | 9 | 18 => {
                let n = (c.length as usize).min(2);
                sum.on_message(type_id, ts, &c.head[..n]);
            }
            22 => {
                // Aggregate: count it as one video message (neither server sends them to players).
                sum.on_message(9, ts, &[]);
            }
            _ => {
                let buf = std::mem::take(&mut c.buf);
                self.control(type_id, &buf, out)?;
                self.streams[i].buf = buf;
            }
        }
        Ok(())
    }

    fn control(&mut self, type_id: u8, p: &[u8], out: &mut Vec<u8>) -> Result<(), ParseError> {
        let u32be = |p: &[u8]| p.get(..4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        match type_id {
            1 => {
                let size = u32be(p).ok_or_else(|| ParseError("rtmp: short Set Chunk Size".into()))? & 0x7fff_ffff;
                if size == 0 {
                    return Err(ParseError("rtmp: chunk size 0".into()));
                }
                self.chunk_size = size;
            }
            2 => {
                if let Some(csid) = u32be(p)
                    && let Ok(Some(j)) = self.cs_index(csid, false)
                {
                    self.streams[j].in_msg = false;
                }
            }
            5 => self.ack_window = u32be(p).unwrap_or(0),
            4 => {
                let ev = p.get(..2).map(|s| u16::from_be_bytes([s[0], s[1]]));
                match ev {
                    Some(6) if self.respond => {
                        // Ping Request -> Ping Response with the same timestamp.
                        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 7]);
                        out.extend_from_slice(p.get(2..6).unwrap_or(&[0, 0, 0, 0]));
                    }
                    Some(1) => self.notes.stream_eof = true,
                    _ => {}
                }
            }
            20 | 17 => {
                if let Ok(cmd) = engine::proto::rtmp::message::Command::parse(p, type_id == 17, Default::default())
                    && cmd.name == "onStatus"
                    && let Some(info) = cmd.info()
                {
                    let level = info.get_str("level").unwrap_or_default().to_owned();
                    let code = info.get_str("code").unwrap_or_default().to_owned();
                    self.notes.statuses.push((level, code));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
struct Hdr {
    len: usize,
    fmt: u8,
    csid: u32,
    ts: u32,
    length: u32,
    type_id: u8,
    ext: Option<u32>,
}

// ---------------------------------------------------------------------------
// FLV

#[derive(Debug, Clone, Copy)]
enum FState {
    /// FLV header + PreviousTagSize0: bytes still to skip after the signature check.
    Header {
        got: usize,
    },
    TagHead,
    Body {
        left: u32,
    },
    Trailer {
        left: u8,
    },
}

/// FLV tag scanner (no payload copies).
#[derive(Debug)]
pub struct FlvScan {
    state: FState,
    sig: [u8; 3],
    head: [u8; 11],
    head_len: usize,
    body_head: [u8; 2],
    body_got: usize,
    tag_type: u8,
    tag_ts: u32,
    tag_size: u32,
}

impl Default for FlvScan {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvScan {
    pub fn new() -> Self {
        FlvScan {
            state: FState::Header { got: 0 },
            sig: [0; 3],
            head: [0; 11],
            head_len: 0,
            body_head: [0; 2],
            body_got: 0,
            tag_type: 0,
            tag_ts: 0,
            tag_size: 0,
        }
    }

    pub fn feed(&mut self, mut input: &[u8], sum: &mut Summary) -> Result<(), ParseError> {
        while !input.is_empty() {
            match self.state {
                FState::Header { got } => {
                    // 9-byte header (DataOffset 9 assumed, as every server writes) + 4.
                    let n = (13 - got).min(input.len());
                    for (k, &b) in input[..n].iter().enumerate() {
                        if got + k < 3 {
                            self.sig[got + k] = b;
                        }
                    }
                    input = &input[n..];
                    let got = got + n;
                    if got >= 3 && &self.sig != b"FLV" {
                        return Err(ParseError("flv: not an FLV stream".into()));
                    }
                    self.state = if got == 13 { FState::TagHead } else { FState::Header { got } };
                }
                FState::TagHead => {
                    let n = (11 - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len == 11 {
                        let h = self.head;
                        self.head_len = 0;
                        self.tag_type = h[0] & 0x1f;
                        self.tag_size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
                        self.tag_ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                        self.body_got = 0;
                        if self.tag_size == 0 {
                            sum.on_message(self.tag_type, self.tag_ts, &[]);
                            self.state = FState::Trailer { left: 4 };
                        } else {
                            self.state = FState::Body { left: self.tag_size };
                        }
                    }
                }
                FState::Body { left } => {
                    let n = (left as usize).min(input.len());
                    if self.body_got < 2 {
                        let k = (2 - self.body_got).min(n);
                        self.body_head[self.body_got..self.body_got + k].copy_from_slice(&input[..k]);
                        self.body_got += k;
                    }
                    input = &input[n..];
                    let left = left - n as u32;
                    if left == 0 {
                        let hn = (self.tag_size as usize).min(2);
                        sum.on_message(self.tag_type, self.tag_ts, &self.body_head[..hn]);
                        self.state = FState::Trailer { left: 4 };
                    } else {
                        self.state = FState::Body { left };
                    }
                }
                FState::Trailer { left } => {
                    let n = (left as usize).min(input.len());
                    input = &input[n..];
                    let left = left - n as u8;
                    self.state = if left == 0 { FState::TagHead } else { FState::Trailer { left } };
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// HTTP chunked transfer coding

#[derive(Debug, Clone, Copy)]
enum CState {
    Size {
        value: u64,
        digits: u8,
        ext: bool,
    },
    SizeLf {
        value: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// The last chunk (size 0) was read: the body is complete.
    Done,
}

/// Decoder of the chunked transfer coding; calls back with body slices.
#[derive(Debug)]
pub struct Chunked {
    state: CState,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::new()
    }
}

impl Chunked {
    pub fn new() -> Self {
        Chunked { state: CState::Size { value: 0, digits: 0, ext: false } }
    }

    /// True once the terminating zero-size chunk was read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, CState::Done)
    }

    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut body: impl FnMut(&[u8]) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let bad = || ParseError("http: bad chunked encoding".into());
        while !input.is_empty() {
            match self.state {
                CState::Size { value, digits, ext } => {
                    let b = input[0];
                    input = &input[1..];
                    self.state = match b {
                        b'\r' => CState::SizeLf { value },
                        _ if ext => CState::Size { value, digits, ext },
                        b';' | b' ' | b'\t' => CState::Size { value, digits, ext: true },
                        _ => {
                            let d = (b as char).to_digit(16).ok_or_else(bad)?;
                            if digits >= 15 {
                                return Err(bad());
                            }
                            CState::Size { value: value * 16 + u64::from(d), digits: digits + 1, ext }
                        }
                    };
                }
                CState::SizeLf { value } => {
                    if input[0] != b'\n' {
                        return Err(bad());
                    }
                    input = &input[1..];
                    self.state = if value == 0 { CState::Done } else { CState::Data { left: value } };
                }
                CState::Data { left } => {
                    let n = (left.min(input.len() as u64)) as usize;
                    body(&input[..n])?;
                    input = &input[n..];
                    let left = left - n as u64;
                    self.state = if left == 0 { CState::DataCr } else { CState::Data { left } };
                }
                CState::DataCr => {
                    if input[0] != b'\r' {
                        return Err(bad());
                    }
                    input = &input[1..];
                    self.state = CState::DataLf;
                }
                CState::DataLf => {
                    if input[0] != b'\n' {
                        return Err(bad());
                    }
                    input = &input[1..];
                    self.state = CState::Size { value: 0, digits: 0, ext: false };
                }
                CState::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// WebSocket frames (server to client: unmasked)

#[derive(Debug, Clone, Copy)]
enum WState {
    Head,
    Payload { left: u64, opcode: u8 },
}

/// What a WebSocket frame stream said besides data.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WsNotes {
    pub closed: bool,
    /// Ping payloads to answer (masked pongs are queued by [`WsFrames::feed`]).
    pub pings: u32,
}

#[derive(Debug)]
pub struct WsFrames {
    state: WState,
    head: [u8; 14],
    head_len: usize,
    ping: Vec<u8>,
    pub notes: WsNotes,
}

impl Default for WsFrames {
    fn default() -> Self {
        Self::new()
    }
}

impl WsFrames {
    pub fn new() -> Self {
        WsFrames { state: WState::Head, head: [0; 14], head_len: 0, ping: Vec::new(), notes: WsNotes::default() }
    }

    /// Consumes frames; binary/continuation payload goes to `data`; pings are
    /// answered into `out`.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        mut data: impl FnMut(&[u8]) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        while !input.is_empty() {
            match self.state {
                WState::Head => {
                    let n = (self.head_need() - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len < self.head_need() {
                        continue;
                    }
                    let h = &self.head;
                    let len = match h[1] & 0x7f {
                        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                        127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
                        l => u64::from(l),
                    };
                    let opcode = h[0] & 0x0f;
                    self.head_len = 0;
                    self.ping.clear();
                    if len == 0 {
                        self.end_frame(opcode, out);
                    } else {
                        self.state = WState::Payload { left: len, opcode };
                    }
                }
                WState::Payload { left, opcode } => {
                    let n = (left.min(input.len() as u64)) as usize;
                    match opcode {
                        0 | 2 => data(&input[..n])?,
                        9 if self.ping.len() + n <= 125 => self.ping.extend_from_slice(&input[..n]),
                        _ => {}
                    }
                    input = &input[n..];
                    let left = left - n as u64;
                    if left == 0 {
                        self.state = WState::Head;
                        self.end_frame(opcode, out);
                    } else {
                        self.state = WState::Payload { left, opcode };
                    }
                }
            }
        }
        Ok(())
    }

    /// Header bytes needed given those read so far (2, then extended length + mask).
    fn head_need(&self) -> usize {
        if self.head_len < 2 {
            return 2;
        }
        let ext = match self.head[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if self.head[1] & 0x80 != 0 { 4 } else { 0 }
    }

    fn end_frame(&mut self, opcode: u8, out: &mut Vec<u8>) {
        match opcode {
            8 => self.notes.closed = true,
            9 => {
                self.notes.pings += 1;
                // Pong, masked with a zero key (RFC 6455 §5.3 requires masking).
                out.push(0x8a);
                out.push(0x80 | self.ping.len() as u8);
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&self.ping);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP response head

/// Result of reading a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub chunked: bool,
    /// Bytes of the head (including the blank line).
    pub len: usize,
}

/// Parses an HTTP/1.1 response head from the start of `buf`; `Ok(None)` until
/// the blank line arrives.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, ParseError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > 16 * 1024 {
            return Err(ParseError("http: response head too long".into()));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError("http: head not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ParseError("http: bad status line".into()))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok(Some(ResponseHead { status, chunked, len: end + 4 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use engine::proto::flv::{FlvReader, TagType, encode_tag, file_header};
    use engine::proto::rtmp::chunk::{ChunkEncoder, MessageHeader, encode_message};

    fn msgs() -> Vec<(u8, u32, Vec<u8>)> {
        let mut v = vec![(18u8, 0u32, vec![2, 0, 10])];
        v.push((9, 0, vec![0x17, 0, 0, 0, 0, 1, 2]));
        v.push((8, 0, vec![0xaf, 0, 0x12, 0x10]));
        for i in 0..60u32 {
            let key = i % 30 == 0;
            v.push((9, 40 + i * 33, {
                let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
                p.resize(5 + (i as usize * 997) % 9000, 7);
                p
            }));
            v.push((8, 40 + i * 21, vec![0xaf, 1, 3, 4, 5]));
        }
        v
    }

    #[test]
    fn rtmp_scan_counts_stateless_and_compressed_chunks() {
        for stateful in [false, true] {
            let mut wire = BytesMut::new();
            // Set Chunk Size 4096 first (at chunk size 128).
            let mut enc = ChunkEncoder::new();
            enc.encode(
                &mut wire,
                &MessageHeader { csid: 2, timestamp: 0, type_id: 1, stream_id: 0 },
                &4096u32.to_be_bytes(),
            )
            .unwrap();
            enc.set_chunk_size(4096);
            for (t, ts, p) in msgs() {
                let csid = match t {
                    8 => 4,
                    9 => 6,
                    _ => 5,
                };
                let h = MessageHeader { csid, timestamp: ts, type_id: t, stream_id: 1 };
                if stateful {
                    enc.encode(&mut wire, &h, &p).unwrap();
                } else {
                    encode_message(&mut wire, 4096, &h, &p).unwrap();
                }
            }
            for split in [1usize, 7, 1000, wire.len()] {
                let mut s = RtmpScan::new();
                let mut sum = Summary::default();
                let mut out = Vec::new();
                for piece in wire.chunks(split) {
                    s.feed(piece, &mut sum, &mut out).unwrap();
                }
                assert_eq!(sum.media, 122, "stateful={stateful} split={split}");
                assert_eq!(sum.keyframes, 2);
                assert_eq!(sum.data, 1);
                assert_eq!(sum.first_ts, Some(40));
                assert_eq!(sum.max_ts, Some(40 + 59 * 33));
                assert_eq!(s.chunk_size(), 4096);
            }
        }
    }

    #[test]
    fn rtmp_scan_answers_pings_and_acks() {
        let mut wire = BytesMut::new();
        let h = |t| MessageHeader { csid: 2, timestamp: 0, type_id: t, stream_id: 0 };
        encode_message(&mut wire, 128, &h(5), &40u32.to_be_bytes()).unwrap();
        encode_message(&mut wire, 128, &h(4), &[0, 6, 0, 0, 1, 2]).unwrap();
        encode_message(
            &mut wire,
            128,
            &MessageHeader { csid: 4, timestamp: 5, type_id: 8, stream_id: 1 },
            &[0xaf, 1, 0, 0],
        )
        .unwrap();
        let mut s = RtmpScan::new();
        let mut sum = Summary::default();
        let mut out = Vec::new();
        s.feed(&wire, &mut sum, &mut out).unwrap();
        assert_eq!(&out[..18], &[0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 7, 0, 0, 1, 2]);
        assert_eq!(out.len(), 18 + 16, "an ack follows the pong");
        assert_eq!(sum.media, 1);
    }

    #[test]
    fn flv_scan_matches_flv_reader() {
        let mut stream = file_header(true, true).to_vec();
        for (t, ts, p) in msgs() {
            let tt = TagType::from_u8(t).unwrap();
            stream.extend_from_slice(&encode_tag(tt, ts, &p).unwrap());
        }
        for split in [1usize, 5, 4096] {
            let mut s = FlvScan::new();
            let mut sum = Summary::default();
            let mut r = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
            let mut sum2 = Summary::default();
            for piece in stream.chunks(split) {
                s.feed(piece, &mut sum).unwrap();
                r.handle_input(piece);
                while let Some(tag) = r.poll_tag().unwrap() {
                    sum2.on_message(tag.tag_type.as_u8(), tag.timestamp_ms, &tag.body[..tag.body.len().min(2)]);
                }
            }
            assert_eq!(sum, sum2);
            assert_eq!(sum.media, 122);
        }
    }

    #[test]
    fn chunked_and_websocket_framing() {
        let mut c = Chunked::new();
        let mut got = Vec::new();
        let wire = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        for b in wire.chunks(1) {
            c.feed(b, |d| {
                got.extend_from_slice(d);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(got, b"hello world");
        assert!(c.is_done());

        let mut w = WsFrames::new();
        let mut frames = vec![0x82, 3, 1, 2, 3, 0x89, 2, 9, 9, 0x82, 126, 0, 200];
        frames.extend(std::iter::repeat_n(5u8, 200));
        let mut got = Vec::new();
        let mut out = Vec::new();
        for b in frames.chunks(1) {
            w.feed(b, &mut out, |d| {
                got.extend_from_slice(d);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(got.len(), 203);
        assert_eq!(out, vec![0x8a, 0x82, 0, 0, 0, 0, 9, 9]);
    }

    #[test]
    fn response_head() {
        assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n").unwrap(), None);
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nxx").unwrap().unwrap();
        assert_eq!((h.status, h.chunked, h.len), (200, true, 47));
    }
}
