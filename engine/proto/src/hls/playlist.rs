//! Media playlist text (RFC 8216, 4.3: `#EXTM3U` 4.3.1.1, `#EXT-X-VERSION`
//! 4.3.1.2, `#EXTINF` 4.3.2.1, `#EXT-X-DISCONTINUITY` 4.3.2.3,
//! `#EXT-X-TARGETDURATION` 4.3.3.1, `#EXT-X-MEDIA-SEQUENCE` 4.3.3.2,
//! `#EXT-X-DISCONTINUITY-SEQUENCE` 4.3.3.3, `#EXT-X-ENDLIST` 4.3.3.4).

use std::fmt::Write;

/// Protocol version: 3 allows decimal-floating-point `#EXTINF` durations
/// (RFC 8216 7).
pub const VERSION: u8 = 3;

/// The playlist-wide values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistHeader {
    /// `#EXT-X-TARGETDURATION` in whole seconds.
    pub target_duration_secs: u64,
    /// `#EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment.
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that slid out of the
    /// window (omitted while 0).
    pub discontinuity_sequence: u64,
    /// Whether `#EXT-X-ENDLIST` closes the playlist.
    pub ended: bool,
}

/// One segment line pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistSegment {
    /// Sequence number, also the file name: `{uri_prefix}{seq}.ts`.
    pub seq: u64,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Preceded by `#EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
}

/// Whole seconds covering `duration_ms` (RFC 8216 4.3.3.1: every `#EXTINF`
/// rounded to the nearest integer must not exceed the target; rounding up
/// always satisfies that).
pub fn target_duration_secs(duration_ms: u64) -> u64 {
    duration_ms.div_ceil(1000).max(1)
}

/// Renders a media playlist. Segment URIs are `{uri_prefix}{seq}.ts`,
/// relative to the playlist's own URI.
pub fn render_media_playlist(
    header: &PlaylistHeader,
    segments: impl IntoIterator<Item = PlaylistSegment>,
    uri_prefix: &str,
) -> String {
    let mut s = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:{VERSION}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
        header.target_duration_secs, header.media_sequence
    );
    if header.discontinuity_sequence > 0 {
        let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", header.discontinuity_sequence);
    }
    for seg in segments {
        if seg.discontinuity {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = write!(
            s,
            "#EXTINF:{}.{:03},\n{uri_prefix}{}.ts\n",
            seg.duration_ms / 1000,
            seg.duration_ms % 1000,
            seg.seq
        );
    }
    if header.ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    s
}

#[cfg(test)]
mod tests;
