//! Real media for the stream layer's unit tests: engine/testdata/media/small.flv
//! (2 s of H.264 at 15 fps with a keyframe every second, and AAC).

use crate::proto::flv::{FlvReader, TagType};
use crate::stream::frame::{Frame, FrameKind};
use std::sync::Arc;

/// small.flv's audio and video as publisher frames (codec headers first).
pub fn small_flv() -> Vec<Arc<Frame>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/media/small.flv");
    let mut reader = FlvReader::new(1 << 20);
    reader.handle_input(&std::fs::read(path).unwrap());
    let mut frames = vec![];
    while let Some(tag) = reader.poll_tag().unwrap() {
        let kind = match tag.tag_type {
            TagType::Video => FrameKind::Video,
            TagType::Audio => FrameKind::Audio,
            TagType::Script => continue,
        };
        frames.push(Arc::new(Frame::new(kind, tag.timestamp_ms, tag.body)));
    }
    assert!(frames.len() > 50 && frames[0].header, "read small.flv");
    frames
}
