//! RTMP messages (Adobe RTMP specification 1.0): protocol control messages
//! (§5.4), user control messages (§6.2, §7.1.7), command messages (§7.1.1,
//! §7.2), data messages (§7.1.2), audio/video (§7.1.4-5) and aggregate messages
//! (§7.1.6). Parsing into [`RtmpMessage`]; builders for everything we send.
//!
//! Chunk stream ids are a convention, not part of a message: see [`csid`].

use bytes::{BufMut, Bytes, BytesMut};

use super::amf0::{self, Amf0Limits, Value};
use super::chunk::{self, MessageHeader};
use super::error::RtmpError;
use super::reader::Reader;

/// Message type ids (§5.4, §7.1).
pub mod type_id {
    /// Set Chunk Size (§5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (§5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (§5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (§6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (§5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (§5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio (§7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video (§7.1.5).
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 (§7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 (§7.1.3).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command message, AMF3 (§7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 (§7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0 (§7.1.3).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command message, AMF0 (§7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (§7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids used by this implementation. Protocol control messages go on
/// 2 as §5.4 requires; the sessions send commands on 3. Media uses separate ids
/// so that pre-chunked media (always starting with a type 0 chunk) never follows a
/// compressed header of the session on the same chunk stream.
pub mod csid {
    /// Protocol control and user control messages (§5.4, §6.2).
    pub const PROTOCOL_CONTROL: u32 = 2;
    /// Commands and the session's own data messages (onStatus, |RtmpSampleAccess).
    pub const COMMAND: u32 = 3;
    /// Audio messages.
    pub const AUDIO: u32 = 4;
    /// Data (metadata) messages that accompany media.
    pub const DATA: u32 = 5;
    /// Video messages.
    pub const VIDEO: u32 = 6;
}

/// User control event types (§6.2, §7.1.7).
pub mod event_type {
    /// Stream Begin.
    pub const STREAM_BEGIN: u16 = 0;
    /// Stream EOF.
    pub const STREAM_EOF: u16 = 1;
    /// Stream Dry.
    pub const STREAM_DRY: u16 = 2;
    /// Set Buffer Length.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// Stream Is Recorded.
    pub const STREAM_IS_RECORDED: u16 = 4;
    /// Ping Request.
    pub const PING_REQUEST: u16 = 6;
    /// Ping Response.
    pub const PING_RESPONSE: u16 = 7;
}

/// User control message events (§7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// The stream became functional (server → client).
    StreamBegin(u32),
    /// Playback of the stream is over (server → client).
    StreamEof(u32),
    /// No more data on the stream for now (server → client).
    StreamDry(u32),
    /// Client's buffer length in milliseconds (client → server).
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        buffer_ms: u32,
    },
    /// The stream is a recorded stream (server → client).
    StreamIsRecorded(u32),
    /// Liveness probe carrying a timestamp (server → client).
    PingRequest(u32),
    /// Answer to a ping, echoing its timestamp (client → server).
    PingResponse(u32),
    /// Any other event (e.g. Flash's buffer empty/ready 31/32).
    Unknown {
        /// Event type.
        event_type: u16,
        /// Event data.
        data: Bytes,
    },
}

impl UserControl {
    /// Parses a user control message payload (§7.1.7).
    pub fn parse(payload: &Bytes) -> Result<UserControl, RtmpError> {
        let mut r = Reader::new(payload, "user control message");
        let event = r.u16()?;
        Ok(match event {
            event_type::STREAM_BEGIN => UserControl::StreamBegin(r.u32()?),
            event_type::STREAM_EOF => UserControl::StreamEof(r.u32()?),
            event_type::STREAM_DRY => UserControl::StreamDry(r.u32()?),
            event_type::SET_BUFFER_LENGTH => UserControl::SetBufferLength { stream_id: r.u32()?, buffer_ms: r.u32()? },
            event_type::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(r.u32()?),
            event_type::PING_REQUEST => UserControl::PingRequest(r.u32()?),
            event_type::PING_RESPONSE => UserControl::PingResponse(r.u32()?),
            _ => UserControl::Unknown { event_type: event, data: payload.slice(2..) },
        })
    }

    /// Appends the payload (event type + event data).
    pub fn encode(&self, out: &mut impl BufMut) {
        let (t, a, b) = match self {
            UserControl::StreamBegin(id) => (event_type::STREAM_BEGIN, *id, None),
            UserControl::StreamEof(id) => (event_type::STREAM_EOF, *id, None),
            UserControl::StreamDry(id) => (event_type::STREAM_DRY, *id, None),
            UserControl::SetBufferLength { stream_id, buffer_ms } => {
                (event_type::SET_BUFFER_LENGTH, *stream_id, Some(*buffer_ms))
            }
            UserControl::StreamIsRecorded(id) => (event_type::STREAM_IS_RECORDED, *id, None),
            UserControl::PingRequest(t) => (event_type::PING_REQUEST, *t, None),
            UserControl::PingResponse(t) => (event_type::PING_RESPONSE, *t, None),
            UserControl::Unknown { event_type, data } => {
                out.put_u16(*event_type);
                out.put_slice(data);
                return;
            }
        };
        out.put_u16(t);
        out.put_u32(a);
        if let Some(b) = b {
            out.put_u32(b);
        }
    }
}

/// The limit type of Set Peer Bandwidth (§5.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerBandwidthLimit {
    /// 0: limit output to the window size.
    Hard,
    /// 1: limit to this window or the one in effect, whichever is smaller.
    Soft,
    /// 2: hard if the previous limit was hard, else ignore.
    Dynamic,
}

impl PeerBandwidthLimit {
    /// Unknown limit types are read as dynamic (the mildest), not rejected.
    fn from_u8(v: u8) -> Self {
        match v {
            0 => PeerBandwidthLimit::Hard,
            1 => PeerBandwidthLimit::Soft,
            _ => PeerBandwidthLimit::Dynamic,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            PeerBandwidthLimit::Hard => 0,
            PeerBandwidthLimit::Soft => 1,
            PeerBandwidthLimit::Dynamic => 2,
        }
    }
}

/// A command message (§7.1.1): procedure name, transaction id, command object,
/// optional arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Procedure name (`connect`, `publish`, `_result`, `onStatus`, ...).
    pub name: String,
    /// Transaction id; 0 when no reply is expected.
    pub transaction_id: f64,
    /// Command object (Null if absent).
    pub command_object: Value,
    /// Further arguments.
    pub args: Vec<Value>,
}

impl Command {
    /// A command from its parts.
    pub fn new(name: &str, transaction_id: f64, command_object: Value, args: Vec<Value>) -> Self {
        Command { name: name.to_owned(), transaction_id, command_object, args }
    }

    /// `_result` for a transaction (§7.2.1.1, §7.2.1.3).
    pub fn result(transaction_id: f64, command_object: Value, args: Vec<Value>) -> Self {
        Command::new("_result", transaction_id, command_object, args)
    }

    /// `_error` for a transaction, with an info object.
    pub fn error(transaction_id: f64, code: &str, description: &str) -> Self {
        Command::new("_error", transaction_id, Value::Null, vec![status_info("error", code, description)])
    }

    /// `onStatus` with an info object (§7.2.2).
    pub fn on_status(level: &str, code: &str, description: &str) -> Self {
        Command::new("onStatus", 0.0, Value::Null, vec![status_info(level, code, description)])
    }

    /// Parses a command message payload. For the AMF3 variant (type 17) a leading
    /// format byte 0 is skipped; the values are AMF0 with possible AVM+ switches.
    pub fn parse(payload: &[u8], amf3: bool, limits: Amf0Limits) -> Result<Command, RtmpError> {
        let body = match payload {
            [0, rest @ ..] if amf3 => rest,
            _ => payload,
        };
        let mut values = amf0::decode_all(body, limits)?.into_iter();
        let name = match values.next() {
            Some(Value::String(s)) | Some(Value::LongString(s)) => s,
            Some(Value::Avmplus(super::amf3::Value::String(s))) => s,
            _ => return Err(RtmpError::malformed("command", "name is not a string")),
        };
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Value::Null);
        Ok(Command { name, transaction_id, command_object, args: values.collect() })
    }

    /// Appends the AMF0 payload (type 20).
    pub fn encode(&self, out: &mut impl BufMut) {
        amf0::encode(&Value::String(self.name.clone()), out);
        amf0::encode(&Value::Number(self.transaction_id), out);
        amf0::encode(&self.command_object, out);
        amf0::encode_all(&self.args, out);
    }

    /// The AMF0 payload as bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }

    /// Argument `i` (0 is the first after the command object).
    pub fn arg(&self, i: usize) -> Option<&Value> {
        self.args.get(i)
    }

    /// Argument `i` as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.arg(i)?.as_str()
    }

    /// The info object of an `onStatus` / `_result` / `_error` (the first object
    /// argument), if any.
    pub fn info(&self) -> Option<&Value> {
        self.args.iter().find(|v| v.properties().is_some())
    }
}

/// An info object `{level, code, description}` (§7.2.2).
pub fn status_info(level: &str, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::string(level)),
        ("code", Value::string(code)),
        ("description", Value::string(description)),
    ])
}

/// One message, typed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtmpMessage {
    /// §5.4.1: new maximum chunk size (31 bits).
    SetChunkSize(u32),
    /// §5.4.2: discard the partial message on this chunk stream.
    Abort {
        /// Chunk stream id.
        csid: u32,
    },
    /// §5.4.3: bytes received so far.
    Acknowledgement {
        /// Sequence number.
        sequence_number: u32,
    },
    /// §6.2.
    UserControl(UserControl),
    /// §5.4.4: acknowledge every this many bytes.
    WindowAckSize(u32),
    /// §5.4.5.
    SetPeerBandwidth {
        /// Window size.
        window_size: u32,
        /// Limit type.
        limit: PeerBandwidthLimit,
    },
    /// §7.1.4: an FLV audio tag body.
    Audio(Bytes),
    /// §7.1.5: an FLV video tag body.
    Video(Bytes),
    /// §7.1.2: AMF data, kept unparsed (media path).
    Data {
        /// True for type 15.
        amf3: bool,
        /// The payload as received.
        payload: Bytes,
    },
    /// §7.1.1.
    Command {
        /// True for type 17.
        amf3: bool,
        /// The parsed command.
        command: Command,
    },
    /// §7.1.3: not interpreted.
    SharedObject {
        /// True for type 16.
        amf3: bool,
        /// The payload as received.
        payload: Bytes,
    },
    /// §7.1.6: see [`split_aggregate`].
    Aggregate(Bytes),
    /// Any other type id.
    Unknown {
        /// Message type id.
        type_id: u8,
        /// The payload as received.
        payload: Bytes,
    },
}

fn control_u32(payload: &Bytes, what: &'static str) -> Result<u32, RtmpError> {
    Reader::new(payload, what).u32()
}

impl RtmpMessage {
    /// Parses a message of type `type_id`. Audio, video and data payloads are kept
    /// as the received `Bytes` (no copy).
    pub fn parse(msg_type: u8, payload: Bytes, limits: Amf0Limits) -> Result<Self, RtmpError> {
        use type_id as t;
        Ok(match msg_type {
            t::SET_CHUNK_SIZE => RtmpMessage::SetChunkSize(control_u32(&payload, "Set Chunk Size")? & 0x7FFF_FFFF),
            t::ABORT => RtmpMessage::Abort { csid: control_u32(&payload, "Abort")? },
            t::ACKNOWLEDGEMENT => {
                RtmpMessage::Acknowledgement { sequence_number: control_u32(&payload, "Acknowledgement")? }
            }
            t::USER_CONTROL => RtmpMessage::UserControl(UserControl::parse(&payload)?),
            t::WINDOW_ACK_SIZE => RtmpMessage::WindowAckSize(control_u32(&payload, "Window Acknowledgement Size")?),
            t::SET_PEER_BANDWIDTH => {
                let mut r = Reader::new(&payload, "Set Peer Bandwidth");
                let window_size = r.u32()?;
                // Some clients omit the limit type; treat that as dynamic.
                let limit = r.peek_u8().map_or(PeerBandwidthLimit::Dynamic, PeerBandwidthLimit::from_u8);
                RtmpMessage::SetPeerBandwidth { window_size, limit }
            }
            t::AUDIO => RtmpMessage::Audio(payload),
            t::VIDEO => RtmpMessage::Video(payload),
            t::DATA_AMF0 | t::DATA_AMF3 => RtmpMessage::Data { amf3: msg_type == t::DATA_AMF3, payload },
            t::COMMAND_AMF0 | t::COMMAND_AMF3 => {
                let amf3 = msg_type == t::COMMAND_AMF3;
                RtmpMessage::Command { amf3, command: Command::parse(&payload, amf3, limits)? }
            }
            t::SHARED_OBJECT_AMF0 | t::SHARED_OBJECT_AMF3 => {
                RtmpMessage::SharedObject { amf3: msg_type == t::SHARED_OBJECT_AMF3, payload }
            }
            t::AGGREGATE => RtmpMessage::Aggregate(payload),
            _ => RtmpMessage::Unknown { type_id: msg_type, payload },
        })
    }

    /// The message type id.
    pub fn type_id(&self) -> u8 {
        use type_id as t;
        match self {
            RtmpMessage::SetChunkSize(_) => t::SET_CHUNK_SIZE,
            RtmpMessage::Abort { .. } => t::ABORT,
            RtmpMessage::Acknowledgement { .. } => t::ACKNOWLEDGEMENT,
            RtmpMessage::UserControl(_) => t::USER_CONTROL,
            RtmpMessage::WindowAckSize(_) => t::WINDOW_ACK_SIZE,
            RtmpMessage::SetPeerBandwidth { .. } => t::SET_PEER_BANDWIDTH,
            RtmpMessage::Audio(_) => t::AUDIO,
            RtmpMessage::Video(_) => t::VIDEO,
            RtmpMessage::Data { amf3: true, .. } => t::DATA_AMF3,
            RtmpMessage::Data { amf3: false, .. } => t::DATA_AMF0,
            // Commands are always sent as AMF0 (type 20).
            RtmpMessage::Command { .. } => t::COMMAND_AMF0,
            RtmpMessage::SharedObject { amf3: true, .. } => t::SHARED_OBJECT_AMF3,
            RtmpMessage::SharedObject { amf3: false, .. } => t::SHARED_OBJECT_AMF0,
            RtmpMessage::Aggregate(_) => t::AGGREGATE,
            RtmpMessage::Unknown { type_id, .. } => *type_id,
        }
    }

    /// The chunk stream this implementation sends the message on.
    pub fn default_csid(&self) -> u32 {
        match self {
            RtmpMessage::SetChunkSize(_)
            | RtmpMessage::Abort { .. }
            | RtmpMessage::Acknowledgement { .. }
            | RtmpMessage::UserControl(_)
            | RtmpMessage::WindowAckSize(_)
            | RtmpMessage::SetPeerBandwidth { .. } => csid::PROTOCOL_CONTROL,
            RtmpMessage::Audio(_) => csid::AUDIO,
            RtmpMessage::Video(_) => csid::VIDEO,
            _ => csid::COMMAND,
        }
    }

    /// Appends the payload.
    pub fn encode_payload(&self, out: &mut impl BufMut) {
        match self {
            RtmpMessage::SetChunkSize(v) => out.put_u32(*v & 0x7FFF_FFFF),
            RtmpMessage::Abort { csid } => out.put_u32(*csid),
            RtmpMessage::Acknowledgement { sequence_number } => out.put_u32(*sequence_number),
            RtmpMessage::UserControl(uc) => uc.encode(out),
            RtmpMessage::WindowAckSize(v) => out.put_u32(*v),
            RtmpMessage::SetPeerBandwidth { window_size, limit } => {
                out.put_u32(*window_size);
                out.put_u8(limit.as_u8());
            }
            RtmpMessage::Audio(p)
            | RtmpMessage::Video(p)
            | RtmpMessage::Data { payload: p, .. }
            | RtmpMessage::SharedObject { payload: p, .. }
            | RtmpMessage::Aggregate(p)
            | RtmpMessage::Unknown { payload: p, .. } => out.put_slice(p),
            RtmpMessage::Command { command, .. } => command.encode(out),
        }
    }

    /// The payload as bytes.
    pub fn payload_bytes(&self) -> Bytes {
        match self {
            RtmpMessage::Audio(p) | RtmpMessage::Video(p) => p.clone(),
            _ => {
                let mut b = BytesMut::new();
                self.encode_payload(&mut b);
                b.freeze()
            }
        }
    }
}

/// The type of a media message (8 audio, 9 video, 18/15 data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// Type 8, an FLV audio tag body.
    Audio,
    /// Type 9, an FLV video tag body.
    Video,
    /// Type 18, AMF0 data such as `onMetaData`.
    Data,
}

impl MediaType {
    /// The message type id.
    pub fn type_id(self) -> u8 {
        match self {
            MediaType::Audio => type_id::AUDIO,
            MediaType::Video => type_id::VIDEO,
            MediaType::Data => type_id::DATA_AMF0,
        }
    }

    /// The chunk stream id media of this kind uses (see [`csid`]).
    pub fn csid(self) -> u32 {
        match self {
            MediaType::Audio => csid::AUDIO,
            MediaType::Video => csid::VIDEO,
            MediaType::Data => csid::DATA,
        }
    }

    /// The kind of a message type id, if it is media.
    pub fn from_type_id(t: u8) -> Option<MediaType> {
        match t {
            type_id::AUDIO => Some(MediaType::Audio),
            type_id::VIDEO => Some(MediaType::Video),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => Some(MediaType::Data),
            _ => None,
        }
    }
}

/// The header for a media message of `kind` on the play/publish stream `stream_id`.
pub fn media_header(kind: MediaType, stream_id: u32, timestamp: u32) -> MessageHeader {
    MessageHeader { csid: kind.csid(), timestamp, type_id: kind.type_id(), stream_id }
}

/// Chunks one media message for players (stateless, shareable): the bytes can be
/// written to any connection whose outgoing chunk size is `chunk_size` and whose
/// play stream id is `stream_id`.
pub fn encode_media(
    chunk_size: u32,
    kind: MediaType,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
) -> Result<Bytes, RtmpError> {
    chunk::encode_message_bytes(chunk_size, &media_header(kind, stream_id, timestamp), payload)
}

/// The AMF0 encoding of the string `@setDataFrame` (marker, length, text).
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Strips the `@setDataFrame` wrapper that encoders (ffmpeg, OBS) put in front of
/// `onMetaData` in a data message; other payloads are returned as they are. For
/// type 15 payloads a leading AMF3 format byte 0 is dropped too. No copy.
pub fn strip_set_data_frame(payload: &Bytes) -> Bytes {
    let mut p = payload.clone();
    if p.first() == Some(&0) && p.get(1) == Some(&amf0::marker::STRING) {
        p = p.slice(1..);
    }
    if p.starts_with(SET_DATA_FRAME) {
        p = p.slice(SET_DATA_FRAME.len()..);
    }
    p
}

/// The handler name (first AMF0 string) of a data message, e.g. `onMetaData`.
pub fn data_name(payload: &[u8]) -> Option<String> {
    let mut r = Reader::new(payload, "data message");
    if r.u8().ok()? != amf0::marker::STRING {
        return None;
    }
    let len = r.u16().ok()? as usize;
    Some(String::from_utf8_lossy(r.bytes(len).ok()?).into_owned())
}

/// One message from an aggregate message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage {
    /// Message type id.
    pub type_id: u8,
    /// Timestamp renormalised to the aggregate's timescale.
    pub timestamp: u32,
    /// Payload (a slice of the aggregate, no copy).
    pub payload: Bytes,
}

/// Splits an aggregate message (§7.1.6): FLV-tag-like sub-messages (type, 24-bit
/// size, 24+8-bit timestamp, 24-bit stream id, body, 32-bit back pointer). The
/// first sub-message's timestamp is mapped to `timestamp`; sub-message stream ids
/// are overridden by the aggregate's.
pub fn split_aggregate(payload: &Bytes, timestamp: u32) -> Result<Vec<SubMessage>, RtmpError> {
    let mut r = Reader::new(payload, "aggregate message");
    let mut out = Vec::new();
    let mut base = None;
    while !r.is_empty() {
        let type_id = r.u8()?;
        let size = r.u24()? as usize;
        let ts_low = r.u24()?;
        let ts = (u32::from(r.u8()?) << 24) | ts_low;
        let _stream_id = r.u24()?;
        let start = r.position();
        r.bytes(size)?;
        let _back_pointer = r.u32()?;
        let first = *base.get_or_insert(ts);
        out.push(SubMessage {
            type_id,
            timestamp: timestamp.wrapping_add(ts.wrapping_sub(first)),
            payload: payload.slice(start..start + size),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
