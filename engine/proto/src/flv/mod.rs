//! FLV container: the byte stream sent to HTTP-FLV / WebSocket-FLV players,
//! and a reader for FLV byte streams (tests, the load generator).
//!
//! How the pieces run: a stream writes [`file_header`] once per player, then
//! each media message becomes one complete tag built once with [`encode_tag`]
//! (or as zero-copy [`TagParts`] for vectored writes) and shared by every
//! player as `bytes::Bytes`. [`FlvReader`] turns an FLV byte stream, fed in
//! any chunking, back into [`FlvTag`]s.
//!
//! Format: Adobe Flash Video File Format Specification v10.1, annex E
//! (E.2 FLV header, E.3 FLV file body, E.4.1 FLV tag).

pub mod reader;
pub mod writer;

pub use reader::{FlvHeader, FlvReader, FlvTag};
pub use writer::{
    FILE_HEADER_LEN, MAX_TAG_BODY_LEN, TAG_HEADER_LEN, TagParts, encode_tag, file_header, previous_tag_size,
    tag_header, tag_parts, write_tag,
};

/// Errors from reading or writing FLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// The stream does not start with an FLV header.
    #[error("not an FLV stream")]
    NotFlv,
    /// A header or tag is malformed.
    #[error("malformed FLV: {0}")]
    Malformed(&'static str),
    /// A tag body is larger than the format (24-bit size) or our bound allows.
    #[error("FLV tag body of {size} bytes exceeds the limit of {limit}")]
    TagTooLarge {
        /// Body size in bytes.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A valid feature we do not handle (e.g. encrypted tags, FLV filter bit).
    #[error("unsupported FLV feature: {0}")]
    Unsupported(&'static str),
}

/// FLV `TagType` (E.4.1): 8 audio, 9 video, 18 script data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagType {
    /// 8: an audio tag (body = RTMP audio message payload).
    Audio,
    /// 9: a video tag (body = RTMP video message payload).
    Video,
    /// 18: script data (AMF0, e.g. `onMetaData`).
    Script,
}

impl TagType {
    /// The wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Audio => 8,
            Self::Video => 9,
            Self::Script => 18,
        }
    }

    /// From the wire value; `None` for unknown types.
    pub fn from_u8(v: u8) -> Option<TagType> {
        match v {
            8 => Some(Self::Audio),
            9 => Some(Self::Video),
            18 => Some(Self::Script),
            _ => None,
        }
    }
}
