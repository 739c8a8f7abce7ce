//! HTTP Live Streaming output (RFC 8216): MPEG-TS segments and a sliding
//! window media playlist, kept in memory.
//!
//! How the pieces run: a stream owns one [`Segmenter`]. It is fed codec
//! configurations and frames (or FLV tag bodies straight from RTMP), muxes
//! them with [`crate::mpegts::TsMuxer`] into the open segment, cuts
//! segments on key frames ([`segmenter`]), and re-renders the playlist text
//! ([`playlist`]) only when it changes. HTTP handlers read
//! [`Segmenter::playlist`] and [`Segmenter::segment`] (cheap `Bytes` clones);
//! [`HlsEvent`]s let a caller mirror segments elsewhere. No clock: segment
//! durations come from media timestamps.

pub mod playlist;
pub mod segmenter;

pub use playlist::{PlaylistHeader, PlaylistSegment, render_media_playlist};
pub use segmenter::{HlsConfig, HlsEvent, MediaFrame, Segmenter, Track};

use crate::codec::CodecError;
use crate::mpegts::TsError;

/// Errors from feeding the segmenter. The segmenter stays usable after any
/// of them; the offending frame or header is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HlsError {
    /// A malformed tag, configuration or frame.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The muxer refused the frame (no configuration yet, too large, or an
    /// AAC configuration ADTS cannot express).
    #[error(transparent)]
    Mux(#[from] TsError),
    /// A codec HLS-TS output does not carry (only H.264 and AAC are muxed).
    #[error("codec {0} is not supported for HLS")]
    UnsupportedCodec(&'static str),
}

#[cfg(test)]
mod tests;
