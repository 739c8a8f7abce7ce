//! MPEG-2 transport stream muxing (ISO/IEC 13818-1) for HLS segments.
//!
//! How the pieces run: [`TsMuxer`] takes H.264 access units (AVCC, as in FLV)
//! and raw AAC frames with their codec configurations and appends 188-byte
//! packets to a caller's buffer: [`psi`] builds PAT/PMT sections (checked by
//! [`crc`]), [`pes`] the PES headers and 33-bit timestamps, [`packet`] splits
//! a PES into transport packets with adaptation fields (PCR, random access,
//! stuffing) and per-PID continuity counters. No I/O, no clock: timestamps
//! come from the media.

pub mod crc;
pub mod muxer;
pub mod packet;
pub mod pes;
pub mod psi;

#[cfg(test)]
pub(crate) mod test_demux;
pub use muxer::{
    AUDIO_PID, PCR_DELAY_90K, PMT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, TIMESTAMP_OFFSET_90K, TsMuxer,
    TsMuxerConfig, VIDEO_PID,
};
pub use packet::{SYNC_BYTE, TS_PACKET_LEN};

use crate::codec::CodecError;

/// Errors from muxing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// The media itself is malformed or unsupported (bad AVCC lengths, an
    /// AAC configuration ADTS cannot express, an oversized frame).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A video frame arrived before any H.264 configuration.
    #[error("video frame before the H.264 sequence header")]
    NoVideoConfig,
    /// An audio frame arrived before any AAC configuration.
    #[error("audio frame before the AAC sequence header")]
    NoAudioConfig,
    /// An access unit larger than the muxer accepts.
    #[error("access unit of {0} bytes is too large")]
    TooLarge(usize),
}

#[cfg(test)]
mod tests;
