//! The recorder's rules on real media (engine/testdata/media/small.flv: 2 s of
//! H.264 at 15 fps, a keyframe every second, and AAC), in FLV files read back with
//! the crate's FLV reader.

use super::*;
use crate::link::RoomId;
use crate::proto::flv::FlvReader;
use std::time::Duration;

fn media() -> Vec<Arc<Frame>> {
    crate::stream::test_media::small_flv()
}

fn spec(max_secs: u64, budget: u64) -> RecordSpec {
    RecordSpec {
        room_id: RoomId(7),
        broadcast_id: 3,
        label: "20261207T120000Z".into(),
        format: RecordFormat::Flv,
        max_file_duration: Duration::from_secs(max_secs),
        max_file_bytes: u64::MAX,
        budget_bytes: budget,
    }
}

/// Each file's path, its bytes and its close summary.
fn files(ops: Vec<RecordOp>) -> Vec<(String, Vec<u8>, Option<RecordingSummary>)> {
    let mut out: Vec<(String, Vec<u8>, Option<RecordingSummary>)> = vec![];
    for op in ops {
        match op {
            RecordOp::Open { file, .. } => out.push((file.path, vec![], None)),
            RecordOp::Write { data } => out.last_mut().expect("write after open").1.extend_from_slice(&data),
            RecordOp::Close { summary } => out.last_mut().expect("close after open").2 = Some(summary),
        }
    }
    out
}

/// (tag type, timestamp, keyframe) of each tag of an FLV file; a codec header is
/// no keyframe.
fn tags(bytes: &[u8]) -> Vec<(TagType, u32, bool)> {
    let mut reader = FlvReader::new(1 << 20);
    reader.handle_input(bytes);
    let mut out = vec![];
    while let Some(tag) = reader.poll_tag().unwrap() {
        let key = tag.tag_type == TagType::Video
            && tag.body.first().is_some_and(|b| b >> 4 == 1)
            && tag.body.get(1) == Some(&1);
        out.push((tag.tag_type, tag.timestamp_ms, key));
    }
    out
}

/// Whether the first video frame after the headers is a keyframe.
fn media_starts_at_keyframe(t: &[(TagType, u32, bool)], headers: usize) -> bool {
    t.iter().skip(headers).find(|x| x.0 == TagType::Video).is_some_and(|x| x.2)
}

fn record(frames: &[Arc<Frame>], spec: RecordSpec) -> (Recorder, Vec<RecordOp>) {
    let name = StreamName::parse("cam").unwrap();
    let mut r = Recorder::new(&name, spec);
    let mut ops = vec![];
    for f in frames {
        r.push(f, &mut ops);
    }
    (r, ops)
}

#[test]
fn a_recording_starts_at_a_keyframe_with_the_headers_and_time_zero() {
    let frames = media();
    // Join mid-stream: past the first keyframe (and the headers).
    let first_key = frames.iter().position(|f| f.keyframe).unwrap();
    let (mut r, mut ops) = record(&frames[first_key + 1..], spec(3600, u64::MAX));
    assert!(ops.is_empty(), "no keyframe and no headers yet: nothing to write");
    // Headers arrive as a new publisher's would, then media.
    for f in &frames {
        r.push(f, &mut ops);
    }
    r.finish(&mut ops);
    let files = files(ops);
    assert_eq!(files.len(), 1);
    let (path, bytes, summary) = &files[0];
    assert_eq!(path, "cam/20261207T120000Z.flv");
    let t = tags(bytes);
    assert_eq!((t[0].0, t[0].2), (TagType::Video, false), "the video header first: {t:?}");
    assert_eq!(t[1].0, TagType::Audio, "then the audio header: {t:?}");
    assert!(media_starts_at_keyframe(&t, 2), "media starts at a keyframe: {t:?}");
    let first_media = t.iter().find(|x| x.2).unwrap();
    assert_eq!(first_media.1, 0, "each file's time starts at zero");
    let summary = summary.as_ref().expect("closed");
    assert!(summary.error.is_none());
    assert!((1800..=2100).contains(&summary.duration_ms), "{summary:?}");
    assert_eq!(summary.codecs.as_deref().map(|c| c.contains("avc1") && c.contains("mp4a")), Some(true), "{summary:?}");
}

#[test]
fn a_long_recording_is_split_at_keyframes_each_file_with_its_headers() {
    let frames = media();
    // Ten copies of the 2 s clip on one timeline: 20 s, split at 5 s.
    let mut timeline = vec![];
    let headers: Vec<_> = frames.iter().filter(|f| f.header).cloned().collect();
    timeline.extend(headers.iter().cloned());
    for i in 0..10u32 {
        for f in frames.iter().filter(|f| !f.header) {
            timeline.push(Arc::new(f.with_timestamp(f.timestamp + i * 2000)));
        }
    }
    let (mut r, mut ops) =
        record(&timeline, RecordSpec { max_file_duration: Duration::from_secs(5), ..spec(5, u64::MAX) });
    r.finish(&mut ops);
    let files = files(ops);
    assert!((3..=5).contains(&files.len()), "{} files", files.len());
    assert_eq!(files[1].0, "cam/20261207T120000Z-2.flv");
    for (path, bytes, summary) in &files {
        let t = tags(bytes);
        let summary = summary.as_ref().unwrap_or_else(|| panic!("{path} closed"));
        assert!(summary.duration_ms <= 6000, "{path}: {summary:?}");
        assert_eq!((t[0].0, t[0].2, t[1].0), (TagType::Video, false, TagType::Audio), "{path} begins with the headers");
        assert!(media_starts_at_keyframe(&t, 2), "{path} starts at a keyframe");
    }
}

#[test]
fn the_budget_and_a_write_error_stop_the_recording() {
    let frames = media();
    let (r, ops) = record(&frames, spec(3600, 10_000));
    assert!(r.is_stopped());
    let files = files(ops);
    assert_eq!(files.len(), 1);
    let summary = files[0].2.as_ref().expect("closed at the quota");
    assert!(summary.error.as_deref().is_some_and(|e| e.contains("quota")), "{summary:?}");
    assert!((10_000..30_000).contains(&files[0].1.len()), "stops just past the budget: {}", files[0].1.len());

    // The writer raised `failed`: nothing more is produced, and no close (the
    // writer reported it).
    let name = StreamName::parse("cam").unwrap();
    let mut r = Recorder::new(&name, spec(3600, u64::MAX));
    let mut ops = vec![];
    r.push(&frames[0], &mut ops);
    r.push(&frames[1], &mut ops);
    let mut failed = None;
    for f in &frames {
        r.push(f, &mut ops);
        if failed.is_none()
            && let Some(RecordOp::Open { failed: flag, .. }) = ops.first()
        {
            failed = Some(flag.clone());
        }
    }
    failed.expect("opened").store(true, Ordering::Relaxed);
    let mut after = vec![];
    for f in &frames {
        r.push(f, &mut after);
    }
    r.finish(&mut after);
    assert!(after.is_empty(), "nothing after a failure: {after:?}");
    assert!(r.is_stopped());
}

#[test]
fn an_mp4_recording_indexes_its_fragments_as_a_scan_of_the_file_finds_them() {
    let frames = media();
    let (mut r, mut ops) = record(&frames, RecordSpec { format: RecordFormat::Mp4, ..spec(3600, u64::MAX) });
    r.finish(&mut ops);
    let files = files(ops);
    assert_eq!(files.len(), 1);
    let (path, bytes, summary) = &files[0];
    assert_eq!(path, "cam/20261207T120000Z.mp4");
    let summary = summary.as_ref().expect("closed");
    let index = summary.index.as_ref().expect("an MP4 file's index");
    let scanned = crate::proto::mp4::scan(bytes).expect("a valid fragmented MP4");
    assert_eq!(&scanned, index, "the index kept while writing is what a scan of the file finds");
    assert_eq!(scanned.valid_len, bytes.len() as u64);
    assert!(!index.fragments.is_empty());
    assert!((1800..=2100).contains(&summary.duration_ms), "{summary:?}");
    let codecs = summary.codecs.as_deref().unwrap_or_default();
    assert!(codecs.contains("avc1") && codecs.contains("mp4a"), "{summary:?}");
}
