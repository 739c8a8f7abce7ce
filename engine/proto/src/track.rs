//! Audio or video: the one notion of a track the protocols share (an SDP media
//! section, an HLS elementary stream, a bridged stream's side).

/// An audio or a video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    Audio,
    Video,
}

impl Track {
    /// The SDP media type (`m=audio`, `m=video`).
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Audio => "audio",
            Track::Video => "video",
        }
    }
}
