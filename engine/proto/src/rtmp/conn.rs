//! Plumbing shared by the server and client sessions: the chunk decoder, the
//! per-connection chunk encoder, the outgoing byte buffer, byte counting with
//! acknowledgements (§5.4.3-5.4.5) and the answers to protocol control and user
//! control messages that need no decision (§6.2, §7.1.7).

use bytes::{Bytes, BytesMut};

use super::amf0::Amf0Limits;
use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, Message, MessageHeader};
use super::error::RtmpError;
use super::message::{Command, RtmpMessage, UserControl, csid, type_id};

/// A chunk-level connection without session semantics.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    out: BytesMut,
    pub(crate) amf_limits: Amf0Limits,
    bytes_in: u64,
    bytes_out: u64,
    /// Window Acknowledgement Size the peer asked us to use (§5.4.4).
    ack_window: Option<u32>,
    acked_at: u64,
    /// The window size we last announced to the peer.
    sent_window: Option<u32>,
}

impl Conn {
    pub(crate) fn new(chunk_limits: ChunkLimits, amf_limits: Amf0Limits) -> Self {
        Conn {
            decoder: ChunkDecoder::new(chunk_limits),
            encoder: ChunkEncoder::new(),
            out: BytesMut::new(),
            amf_limits,
            bytes_in: 0,
            bytes_out: 0,
            ack_window: None,
            acked_at: 0,
            sent_window: None,
        }
    }

    pub(crate) fn out_buf(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    pub(crate) fn pending_output(&self) -> usize {
        self.out.len()
    }

    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    pub(crate) fn out_chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    pub(crate) fn count_input(&mut self, n: usize) {
        self.bytes_in += n as u64;
    }

    /// Takes everything queued for the peer.
    pub(crate) fn take_output(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            return None;
        }
        self.bytes_out += self.out.len() as u64;
        Some(self.out.split().freeze())
    }

    /// Queues one message on the chunk stream this implementation uses for it.
    pub(crate) fn send(&mut self, stream_id: u32, timestamp: u32, msg: &RtmpMessage) {
        self.send_on(msg.default_csid(), stream_id, timestamp, msg);
    }

    pub(crate) fn send_on(&mut self, csid: u32, stream_id: u32, timestamp: u32, msg: &RtmpMessage) {
        let payload = msg.payload_bytes();
        let header = MessageHeader { csid, timestamp, type_id: msg.type_id(), stream_id };
        // Our own messages are far below the 24-bit length limit.
        if let Err(e) = self.encoder.encode(&mut self.out, &header, &payload) {
            tracing::warn!(error = %e, "dropping oversized outgoing message");
        }
    }

    /// Queues a raw payload with an explicit type (media from a client session).
    pub(crate) fn send_raw(&mut self, header: &MessageHeader, payload: &[u8]) -> Result<(), RtmpError> {
        self.encoder.encode(&mut self.out, header, payload)
    }

    /// Queues an AMF0 command on the command chunk stream.
    pub(crate) fn send_command(&mut self, stream_id: u32, cmd: &Command) {
        let mut b = BytesMut::new();
        cmd.encode(&mut b);
        let header = MessageHeader { csid: csid::COMMAND, timestamp: 0, type_id: type_id::COMMAND_AMF0, stream_id };
        if let Err(e) = self.encoder.encode(&mut self.out, &header, &b) {
            tracing::warn!(error = %e, "dropping oversized outgoing command");
        }
    }

    /// Announces and starts using a new outgoing chunk size (§5.4.1).
    pub(crate) fn set_out_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, super::chunk::MAX_CHUNK_SIZE);
        self.send(0, 0, &RtmpMessage::SetChunkSize(size));
        self.encoder.set_chunk_size(size);
    }

    /// Announces our acknowledgement window (§5.4.4).
    pub(crate) fn send_window_ack_size(&mut self, size: u32) {
        self.sent_window = Some(size);
        self.send(0, 0, &RtmpMessage::WindowAckSize(size));
    }

    /// Sends an Acknowledgement once the peer's window has been received (§5.4.3).
    pub(crate) fn maybe_ack(&mut self) {
        if let Some(w) = self.ack_window.filter(|w| *w > 0)
            && self.bytes_in - self.acked_at >= u64::from(w)
        {
            self.acked_at = self.bytes_in;
            // The sequence number wraps at 32 bits.
            self.send(0, 0, &RtmpMessage::Acknowledgement { sequence_number: self.bytes_in as u32 });
        }
    }

    /// Handles protocol control messages and the user control events that need no
    /// decision. Returns the parsed message if it is something else.
    pub(crate) fn handle_control(&mut self, msg: &Message) -> Result<Option<RtmpMessage>, RtmpError> {
        let parsed = RtmpMessage::parse(msg.type_id, msg.payload.clone(), self.amf_limits)?;
        match &parsed {
            // Applied by the decoder where they completed.
            RtmpMessage::SetChunkSize(_) | RtmpMessage::Abort { .. } => {}
            RtmpMessage::Acknowledgement { .. } => {}
            RtmpMessage::WindowAckSize(w) => self.ack_window = Some(*w),
            RtmpMessage::SetPeerBandwidth { window_size, .. } => {
                // §5.4.5: answer with Window Acknowledgement Size if it differs from
                // the last one we sent. (Hard/soft limits on our output are not
                // applied: media output is paced by the engine's player queues.)
                if self.sent_window != Some(*window_size) {
                    self.send_window_ack_size(*window_size);
                }
            }
            RtmpMessage::UserControl(UserControl::PingRequest(t)) => {
                self.send(0, 0, &RtmpMessage::UserControl(UserControl::PingResponse(*t)));
            }
            RtmpMessage::UserControl(UserControl::PingResponse(_)) => {}
            _ => return Ok(Some(parsed)),
        }
        Ok(None)
    }
}
