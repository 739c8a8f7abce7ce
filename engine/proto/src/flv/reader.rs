//! Incremental FLV stream reader (Adobe FLV v10.1, annex E.2–E.4.1).
//!
//! Sans-IO: feed bytes with [`FlvReader::handle_input`] in any chunking, then
//! drain [`FlvReader::poll_tag`] until it returns `Ok(None)`.

use bytes::{Buf, Bytes, BytesMut};

use super::{FlvError, TagType};

/// Bodies up to this size are copied out of the receive buffer so that a
/// small tag never pins a large buffer; larger ones are split off zero-copy.
const COPY_BELOW: usize = 4096;

/// Largest `DataOffset` accepted in the header (the spec's value is 9).
const MAX_DATA_OFFSET: u32 = 1024;

/// The FLV file header (E.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvHeader {
    /// The version byte (1).
    pub version: u8,
    /// `TypeFlagsAudio`.
    pub has_audio: bool,
    /// `TypeFlagsVideo`.
    pub has_video: bool,
}

/// One FLV tag (E.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// Audio, video or script data.
    pub tag_type: TagType,
    /// Timestamp in milliseconds (`TimestampExtended` as the upper 8 bits).
    pub timestamp_ms: u32,
    /// `StreamID` (always 0 in valid files).
    pub stream_id: u32,
    /// The tag body (an RTMP message payload).
    pub body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 9+ byte header and `PreviousTagSize0`.
    Header,
    /// Reading tag header, body, trailer triples.
    Tags,
}

/// Parses an FLV byte stream into tags.
///
/// Getters: [`header`](Self::header), [`buffered`](Self::buffered),
/// [`skipped_tags`](Self::skipped_tags). Input: [`handle_input`](Self::handle_input).
/// Output: [`poll_tag`](Self::poll_tag), drained until `Ok(None)`.
///
/// Bounded: a tag whose `DataSize` exceeds `max_tag_size` is an error before
/// any of its body is buffered. The buffer holds what the caller pushed and
/// has not drained: push at most a read's worth, then drain.
/// After an error the reader stays failed and keeps returning it.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    state: State,
    max_tag_size: usize,
    header: Option<FlvHeader>,
    skipped_tags: u64,
    failed: Option<FlvError>,
}

impl FlvReader {
    /// A default bound on tag bodies (8 MiB: a 4K key frame fits easily).
    pub const DEFAULT_MAX_TAG_SIZE: usize = 8 << 20;

    /// A reader expecting the FLV header first, accepting tag bodies up to
    /// `max_tag_size` bytes.
    pub fn new(max_tag_size: usize) -> Self {
        Self { buf: BytesMut::new(), state: State::Header, max_tag_size, header: None, skipped_tags: 0, failed: None }
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes pushed and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Tags of unknown type skipped so far.
    pub fn skipped_tags(&self) -> u64 {
        self.skipped_tags
    }

    /// Appends received bytes.
    pub fn handle_input(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete tag, `Ok(None)` when more input is needed.
    pub fn poll_tag(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.poll_inner() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
            ok => ok,
        }
    }

    fn poll_inner(&mut self) -> Result<Option<FlvTag>, FlvError> {
        if self.state == State::Header && !self.read_header()? {
            return Ok(None);
        }
        loop {
            let Some(head) = self.buf.get(..11) else {
                return Ok(None);
            };
            let type_byte = head[0];
            let size = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
            let timestamp_ms = u32::from_be_bytes([head[7], head[4], head[5], head[6]]);
            let stream_id = (u32::from(head[8]) << 16) | (u32::from(head[9]) << 8) | u32::from(head[10]);
            if type_byte & 0x20 != 0 {
                return Err(FlvError::Unsupported("filtered (encrypted) tag"));
            }
            if size > self.max_tag_size {
                return Err(FlvError::TagTooLarge { size, limit: self.max_tag_size });
            }
            let total = 11 + size + 4;
            if self.buf.len() < total {
                // No reservation from the claimed size: the buffer grows only
                // with bytes actually received.
                return Ok(None);
            }
            // PreviousTagSize is not checked: some writers get it wrong and
            // the tag header alone delimits the stream.
            self.buf.advance(11);
            let body = if size < COPY_BELOW {
                let body = Bytes::copy_from_slice(&self.buf[..size]);
                self.buf.advance(size);
                body
            } else {
                self.buf.split_to(size).freeze()
            };
            self.buf.advance(4);
            match TagType::from_u8(type_byte & 0x1F) {
                Some(tag_type) => {
                    return Ok(Some(FlvTag { tag_type, timestamp_ms, stream_id, body }));
                }
                None => self.skipped_tags += 1,
            }
        }
    }

    /// Consumes the header and `PreviousTagSize0`; false if more input is needed.
    fn read_header(&mut self) -> Result<bool, FlvError> {
        let Some(fixed) = self.buf.get(..9) else {
            if !b"FLV".starts_with(&self.buf[..self.buf.len().min(3)]) {
                return Err(FlvError::NotFlv);
            }
            return Ok(false);
        };
        if &fixed[..3] != b"FLV" {
            return Err(FlvError::NotFlv);
        }
        let header = FlvHeader { version: fixed[3], has_audio: fixed[4] & 0x04 != 0, has_video: fixed[4] & 0x01 != 0 };
        let data_offset = u32::from_be_bytes([fixed[5], fixed[6], fixed[7], fixed[8]]);
        if !(9..=MAX_DATA_OFFSET).contains(&data_offset) {
            return Err(FlvError::Malformed("FLV DataOffset"));
        }
        // Bounded by MAX_DATA_OFFSET.
        let needed = data_offset as usize + 4;
        if self.buf.len() < needed {
            return Ok(false);
        }
        self.buf.advance(needed);
        self.header = Some(header);
        self.state = State::Tags;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
