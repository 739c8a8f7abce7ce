//! Writing FLV: the file header and complete tags (header, body, trailer).
//!
//! Adobe FLV v10.1: E.2 (header: "FLV", version 1, TypeFlagsAudio/Video,
//! DataOffset 9), E.3 (body: PreviousTagSize0 = 0, then tag + PreviousTagSize
//! pairs, PreviousTagSize = 11 + DataSize), E.4.1 (tag header: TagType, 24-bit
//! DataSize, 24-bit Timestamp + TimestampExtended upper byte, StreamID 0).

use bytes::{BufMut, Bytes, BytesMut};

use super::{FlvError, TagType};

/// Bytes of the FLV header plus `PreviousTagSize0`.
pub const FILE_HEADER_LEN: usize = 13;

/// Bytes of a tag header.
pub const TAG_HEADER_LEN: usize = 11;

/// Bytes of the `PreviousTagSize` trailer after each tag.
const TRAILER_LEN: usize = 4;

/// The largest body a tag can carry (24-bit `DataSize`).
pub const MAX_TAG_BODY_LEN: usize = 0xFF_FFFF;

/// The FLV header (E.2) followed by `PreviousTagSize0` (E.3): what an
/// HTTP-FLV response starts with.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// A tag header (E.4.1) for a body of `body_len` bytes. The timestamp's low
/// 24 bits go in `Timestamp`, the high 8 in `TimestampExtended`; StreamID 0.
pub fn tag_header(tag_type: TagType, timestamp_ms: u32, body_len: usize) -> Result<[u8; TAG_HEADER_LEN], FlvError> {
    if body_len > MAX_TAG_BODY_LEN {
        return Err(FlvError::TagTooLarge { size: body_len, limit: MAX_TAG_BODY_LEN });
    }
    let len = (body_len as u32).to_be_bytes();
    let ts = timestamp_ms.to_be_bytes();
    Ok([tag_type.as_u8(), len[1], len[2], len[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0])
}

/// The `PreviousTagSize` trailer for a tag whose body is `body_len` bytes.
/// `body_len` must be at most [`MAX_TAG_BODY_LEN`] (then the sum fits).
pub fn previous_tag_size(body_len: usize) -> [u8; 4] {
    ((TAG_HEADER_LEN + body_len.min(MAX_TAG_BODY_LEN)) as u32).to_be_bytes()
}

/// Appends one complete tag (header, body, `PreviousTagSize`) to `out`.
pub fn write_tag(out: &mut Vec<u8>, tag_type: TagType, timestamp_ms: u32, body: &[u8]) -> Result<(), FlvError> {
    let header = tag_header(tag_type, timestamp_ms, body.len())?;
    out.reserve(TAG_HEADER_LEN + body.len() + TRAILER_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out.extend_from_slice(&previous_tag_size(body.len()));
    Ok(())
}

/// One complete tag as a single `Bytes` (one allocation, one copy of the
/// body): build it once per media message and clone it to every player.
pub fn encode_tag(tag_type: TagType, timestamp_ms: u32, body: &[u8]) -> Result<Bytes, FlvError> {
    let header = tag_header(tag_type, timestamp_ms, body.len())?;
    let mut buf = BytesMut::with_capacity(TAG_HEADER_LEN + body.len() + TRAILER_LEN);
    buf.put_slice(&header);
    buf.put_slice(body);
    buf.put_slice(&previous_tag_size(body.len()));
    Ok(buf.freeze())
}

/// A tag as three pieces for a vectored write, without copying the body.
///
/// Writing `head`, `body`, `tail` in order gives the same bytes as
/// [`encode_tag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagParts {
    /// The 11-byte tag header.
    pub head: [u8; TAG_HEADER_LEN],
    /// The body, shared with the message it came from.
    pub body: Bytes,
    /// The 4-byte `PreviousTagSize`.
    pub tail: [u8; 4],
}

/// Builds [`TagParts`] around a shared body (no copy).
pub fn tag_parts(tag_type: TagType, timestamp_ms: u32, body: Bytes) -> Result<TagParts, FlvError> {
    Ok(TagParts { head: tag_header(tag_type, timestamp_ms, body.len())?, tail: previous_tag_size(body.len()), body })
}

impl TagParts {
    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        TAG_HEADER_LEN + self.body.len() + TRAILER_LEN
    }

    /// Always false: a tag has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The tag as one contiguous buffer (copies the body).
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.len());
        buf.put_slice(&self.head);
        buf.put_slice(&self.body);
        buf.put_slice(&self.tail);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests;
