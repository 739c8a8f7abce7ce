use super::*;
use bytes::Bytes;

fn video(ts: u32, key: bool) -> Arc<Frame> {
    // FLV AVC NALU tag: frame type 1 (key) / 2 (inter), codec 7, packet type 1, cts 0, one NAL.
    let b0 = if key { 0x17 } else { 0x27 };
    Arc::new(Frame::new(
        FrameKind::Video,
        ts,
        Bytes::from(vec![b0, 1, 0, 0, 0, 0, 0, 0, 1, if key { 0x65 } else { 0x41 }]),
    ))
}
fn vheader() -> Arc<Frame> {
    Arc::new(Frame::new(
        FrameKind::Video,
        0,
        Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0xe0]),
    ))
}

#[test]
fn starts_at_keyframes_and_bounds() {
    let mut g = GopCache::new(1 << 20, Duration::from_secs(10));
    g.push(&vheader());
    g.push(&video(0, false)); // no keyframe yet: not cached
    assert_eq!(g.snapshot().len(), 1);
    g.push(&video(33, true));
    g.push(&video(66, false));
    let s = g.snapshot();
    assert_eq!(s.len(), 3);
    assert!(s[1].keyframe);
    // New keyframes: the GOPs before stay until the later ones have keyframes and
    // frames enough for a player's start.
    g.push(&video(99, true));
    assert_eq!(g.snapshot().len(), 4);
    g.push(&video(132, true));
    for i in 1..START_VIDEO_FRAMES as u32 {
        g.push(&video(132 + i * 33, false));
    }
    // The first GOP went (two keyframes and 46 frames after it), not the second.
    let s = g.snapshot();
    assert_eq!(s.len(), 2 + START_VIDEO_FRAMES);
    assert!(s[1].keyframe && s[1].timestamp == 99 && s[2].keyframe);
    // A third keyframe: the first GOP goes (the two after it are a start).
    g.push(&video(3000, true));
    let s = g.snapshot();
    assert_eq!(s.len(), 2 + START_VIDEO_FRAMES);
    assert!(s[1].keyframe && s[1].timestamp == 132 && s.last().is_some_and(|f| f.keyframe));
    // Duration bound: a GOP longer than 10 s is dropped until the next keyframe.
    g.push(&video(20_000, false));
    assert_eq!(g.snapshot().len(), 1);
    g.push(&video(20_033, false));
    assert_eq!(g.snapshot().len(), 1);
    g.push(&video(20_066, true));
    assert_eq!(g.snapshot().len(), 2);
    // The bounds drop older GOPs first.
    let mut g = GopCache::new(1 << 20, Duration::from_millis(800));
    g.push(&vheader());
    for k in 0..3u32 {
        g.push(&video(k * 400, true));
        g.push(&video(k * 400 + 33, false));
    }
    let s: Vec<u32> = g.snapshot().iter().skip(1).map(|f| f.timestamp).collect();
    assert_eq!(s, [400, 433, 800, 833], "within 800 ms, from a keyframe");
}

#[test]
fn snapshot_headers_take_the_first_frames_time() {
    let mut g = GopCache::new(1 << 20, Duration::from_secs(10));
    g.push(&vheader()); // cached at 0
    assert_eq!(g.snapshot()[0].timestamp, 0, "no media yet: the header as cached");
    g.push(&video(60_000, true));
    g.push(&video(60_033, false));
    let s = g.snapshot();
    assert!(s[0].header);
    assert_eq!(s.iter().map(|f| f.timestamp).collect::<Vec<_>>(), [60_000, 60_000, 60_033]);
}

#[test]
fn live_edge_keeps_only_the_latest_gop() {
    let mut g = GopCache::new(1 << 20, Duration::from_secs(10)).with_start(JoinStart::LiveEdge);
    let mut quick = GopCache::new(1 << 20, Duration::from_secs(10));
    let video = |ts: u32, key: bool| {
        let body = if key { vec![0x17, 1, 0, 0, 0, 1, 2, 3] } else { vec![0x27, 1, 0, 0, 0, 4, 5, 6] };
        Arc::new(Frame::new(FrameKind::Video, ts, Bytes::from(body)))
    };
    let header = Arc::new(Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2])));
    for c in [&mut g, &mut quick] {
        c.push(&header);
        // Two GOPs of 60 frames, then 10 frames of a third.
        for i in 0..130u32 {
            c.push(&video(i * 33, i % 60 == 0));
        }
    }
    let media = |c: &GopCache| c.snapshot().into_iter().filter(|f| !f.header).collect::<Vec<_>>();
    let edge = media(&g);
    assert_eq!(edge.len(), 10, "the latest GOP only");
    assert!(edge[0].keyframe && edge[0].timestamp == 120 * 33);
    let q = media(&quick);
    assert!(q.len() >= START_VIDEO_FRAMES && q.iter().filter(|f| f.keyframe).count() >= START_KEYFRAMES);
    assert_eq!(q[0].timestamp, 60 * 33, "one GOP further back");
}
