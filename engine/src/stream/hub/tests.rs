//! The home stream's rules, driven with an injected clock and real media
//! (engine/testdata/media/small.flv: 2 s of H.264 at 15 fps with a keyframe every
//! second, and AAC).

use super::*;

fn name(s: &str) -> StreamName {
    StreamName::parse(s).unwrap()
}

const SUB: usize = 1;
const PUB_SHARD: usize = 2;

fn cfg() -> Arc<HubConfig> {
    Arc::new(HubConfig {
        gop_cache_bytes: 16 << 20,
        gop_cache_duration: Duration::from_secs(12),
        join_start: JoinStart::QuickStart,
        idle_publisher_timeout: Duration::from_secs(10),
        unpublish_grace: Duration::from_secs(5),
        hls_fragment: Duration::from_secs(1),
        hls_window: Duration::from_secs(60),
        hls_mirror: false,
        bridge_always: false,
        relay_opus: false,
    })
}

fn media() -> Vec<Arc<Frame>> {
    crate::stream::test_media::small_flv()
}

fn never_h264() -> bool {
    false
}

struct Drained {
    frames: Vec<(Arc<Frame>, u64)>,
    snapshots: Vec<(usize, Vec<Arc<Frame>>, u64)>,
    kicks: Vec<(usize, u64)>,
    events: Vec<EngineEvent>,
    keyframe_requests: usize,
    ended: Vec<Vec<usize>>,
}

fn drain(h: &mut HomeStream) -> Drained {
    let mut d = Drained {
        frames: vec![],
        snapshots: vec![],
        kicks: vec![],
        events: vec![],
        keyframe_requests: 0,
        ended: vec![],
    };
    while let Some(o) = h.poll_output() {
        match o {
            HubOutput::Frame { frame, seq } => d.frames.push((frame, seq)),
            HubOutput::Snapshot { shard, frames, seq, .. } => d.snapshots.push((shard, frames, seq)),
            HubOutput::Kick { shard, pub_id } => d.kicks.push((shard, pub_id)),
            HubOutput::Event(e) => d.events.push(e),
            HubOutput::RequestKeyframe => d.keyframe_requests += 1,
            HubOutput::HlsMirror { .. } | HubOutput::Record(_) => {}
            HubOutput::Ended { subscribers } => d.ended.push(subscribers),
        }
    }
    d
}

/// Feeds `frames` from `pub_id`, one per 33 ms of the clock from `t`.
fn feed(h: &mut HomeStream, t: Instant, pub_id: u64, frames: &[Arc<Frame>]) -> Instant {
    let mut now = t;
    for f in frames {
        h.handle_frame(now, &Instant::now, pub_id, f.clone(), &never_h264);
        now += Duration::from_millis(33);
    }
    now
}

fn live_home(t0: Instant) -> HomeStream {
    let mut h = HomeStream::new(&name("cam"), cfg(), t0);
    h.subscribe(SUB);
    h.handle_claim(t0, RoomId(7), 100, PUB_SHARD, None, false).unwrap();
    h
}

#[test]
fn frames_are_numbered_for_the_subscribers_and_a_late_subscriber_gets_the_gop() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let d = drain(&mut h);
    assert_eq!(d.snapshots.len(), 1, "the subscriber's mirror is reset on claim");
    assert!(matches!(&d.events[..], [EngineEvent::PublishStarted { room_id: RoomId(7), .. }]));
    let media = media();
    feed(&mut h, t0, 100, &media[..40]);
    let d = drain(&mut h);
    let seqs: Vec<u64> = d.frames.iter().map(|(_, s)| *s).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "one numbered Frame per frame, in order");
    assert!(d.events.iter().any(|e| matches!(e, EngineEvent::StreamInfo { .. })), "codec info told");
    h.subscribe(3);
    let d = drain(&mut h);
    let (shard, frames, seq) = &d.snapshots[0];
    assert_eq!((*shard, *seq), (3, 40));
    assert!(frames[0].header && frames.iter().any(|f| f.keyframe), "headers and the cached GOP");
}

#[test]
fn a_silent_publisher_is_taken_over_and_its_late_frames_are_ignored() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    let t = feed(&mut h, t0, 100, &media[..10]);
    drain(&mut h);
    // Still sending: a second publisher is refused.
    assert_eq!(h.handle_claim(t, RoomId(7), 200, 5, None, false), Err(ClaimError::Taken));
    assert!(drain(&mut h).kicks.is_empty());
    // Silent past the idle timeout: the newcomer takes over; the old one is kicked.
    let later = t + Duration::from_secs(11);
    h.handle_claim(later, RoomId(7), 200, 5, None, false).unwrap();
    let d = drain(&mut h);
    assert_eq!(d.kicks, [(PUB_SHARD, 100)]);
    assert_eq!(d.snapshots.iter().map(|s| s.0).collect::<Vec<_>>(), [SUB], "the mirror resets; players stay");
    // The old publisher's late frame goes nowhere; the new one's does.
    h.handle_frame(later, &Instant::now, 100, media[10].clone(), &never_h264);
    assert!(drain(&mut h).frames.is_empty());
    h.handle_frame(later, &Instant::now, 200, media[0].clone(), &never_h264);
    assert_eq!(drain(&mut h).frames.len(), 1);
}

#[test]
fn the_unpublish_grace_keeps_players_and_its_expiry_ends_the_stream() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let t = feed(&mut h, t0, 100, &media()[..10]);
    drain(&mut h);
    // A stranger's leaving changes nothing.
    h.handle_publisher_gone(t, 999);
    assert_eq!(h.poll_timeout(), None);
    h.handle_publisher_gone(t, 100);
    let deadline = t + Duration::from_secs(5);
    assert_eq!(h.poll_timeout(), Some(deadline));
    h.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut h).ended.is_empty() && h.is_live(), "not before the grace ends");
    h.handle_timeout(deadline);
    let d = drain(&mut h);
    assert!(matches!(&d.events[..], [EngineEvent::PublishEnded { room_id: RoomId(7), .. }]));
    assert_eq!(d.ended, [vec![SUB]], "the subscribers' players end");
    let seg = h.finish().expect("the HLS of the ended stream is kept");
    assert!(String::from_utf8_lossy(&seg.playlist()).contains("#EXT-X-ENDLIST"));
    assert!(!h.is_live());
}

#[test]
fn a_publisher_back_within_the_grace_continues_the_stream() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let t = feed(&mut h, t0, 100, &media()[..10]);
    h.handle_publisher_gone(t, 100);
    let back = t + Duration::from_secs(2);
    h.handle_claim(back, RoomId(7), 101, PUB_SHARD, None, false).unwrap();
    assert_eq!(h.poll_timeout(), None, "the grace is over");
    h.handle_timeout(t + Duration::from_secs(6));
    let d = drain(&mut h);
    assert!(d.ended.is_empty() && h.is_live());
    assert!(!d.events.iter().any(|e| matches!(e, EngineEvent::PublishEnded { .. })));
}

#[test]
fn timestamps_continue_across_publishers() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    let t = feed(&mut h, t0, 100, &media);
    let last = drain(&mut h).frames.iter().filter(|(f, _)| !f.header).map(|(f, _)| f.timestamp).max().unwrap();
    h.handle_publisher_gone(t, 100);
    h.handle_claim(t + Duration::from_secs(1), RoomId(7), 101, PUB_SHARD, None, false).unwrap();
    // The new publisher's clock is somewhere else entirely.
    let shifted: Vec<Arc<Frame>> = media.iter().map(|f| Arc::new(f.with_timestamp(f.timestamp + 50_000))).collect();
    feed(&mut h, t + Duration::from_secs(1), 101, &shifted[..20]);
    let out = drain(&mut h).frames;
    let first_media = out.iter().find(|(f, _)| !f.header).unwrap().0.timestamp;
    assert_eq!(first_media as i64, last as i64 + REBASE_GAP_MS, "starts just after the old publisher");
    let headers: Vec<u32> = out.iter().filter(|(f, _)| f.header).map(|(f, _)| f.timestamp).collect();
    assert!(headers.iter().all(|t| *t == first_media), "its headers are stamped where its media starts");
    let ts: Vec<u32> = out.iter().filter(|(f, _)| !f.header).map(|(f, _)| f.timestamp).collect();
    let input: Vec<u32> = shifted[..20].iter().filter(|f| !f.header).map(|f| f.timestamp).collect();
    for (o, i) in ts.iter().zip(&input) {
        assert_eq!(*o as i64 - first_media as i64, *i as i64 - input[0] as i64, "spacing kept");
    }
}

/// A new publisher whose second track starts before its first (by its own clock)
/// moves its clock on instead of stepping that track back.
#[test]
fn rebase_keeps_each_track_after_the_previous_publisher() {
    let mut r = Rebase::default();
    let video = |ts| Frame::new(FrameKind::Video, ts, Bytes::from_static(&[0x27, 1, 0, 0, 0]));
    let audio = |ts| Frame::new(FrameKind::Audio, ts, Bytes::from_static(&[0xAF, 1, 0]));
    assert_eq!(r.map(&video(1000)), 1000);
    assert_eq!(r.map(&audio(1010)), 1010);
    r.new_publisher();
    // The new publisher's first frame (video, its ts 5000) goes after the old clock.
    assert_eq!(r.map(&video(5000)), 1050);
    // Its audio starts 100 ms earlier by its clock: moved to the floor (old audio +
    // gap), and the whole clock moves on by the difference.
    assert_eq!(r.map(&audio(4900)), 1050);
    assert_eq!(r.map(&video(5033)), 1050 + 33 + 100);
    // Floors apply once per track.
    assert_eq!(r.map(&audio(4901)), 1051);
}

#[test]
fn the_gop_cache_starts_over_with_a_new_publisher() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    let t = feed(&mut h, t0, 100, &media[..30]);
    drain(&mut h);
    h.subscribe(4);
    let cached = drain(&mut h).snapshots.remove(0).1.len();
    assert!(cached >= 20, "the first publisher's GOP is cached: {cached}");
    h.handle_publisher_gone(t, 100);
    h.handle_claim(t, RoomId(7), 101, PUB_SHARD, None, false).unwrap();
    feed(&mut h, t, 101, &media[..3]);
    drain(&mut h);
    h.subscribe(5);
    let d = drain(&mut h);
    let (_, frames, _) = &d.snapshots[0];
    assert!(frames.len() <= 3, "only the new publisher's frames: {}", frames.len());
    assert!(frames.iter().all(|f| f.timestamp >= media[29].timestamp), "none of the old publisher's");
}

#[test]
fn hls_marks_a_discontinuity_at_a_new_publisher() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    let t = feed(&mut h, t0, 100, &media);
    let before = String::from_utf8_lossy(&h.hls().unwrap().unwrap().playlist()).into_owned();
    assert!(before.contains("#EXTINF") && !before.contains("#EXT-X-DISCONTINUITY\n"), "{before}");
    h.handle_publisher_gone(t, 100);
    h.handle_claim(t, RoomId(7), 101, PUB_SHARD, None, false).unwrap();
    feed(&mut h, t, 101, &media);
    let after = String::from_utf8_lossy(&h.hls().unwrap().unwrap().playlist()).into_owned();
    assert!(after.contains("#EXT-X-DISCONTINUITY\n"), "{after}");
    // A broadcast that ended and comes back continues its playlist the same way.
    h.handle_publisher_gone(t, 101);
    h.handle_timeout(t + Duration::from_secs(5));
    let kept = h.finish().unwrap();
    let mut again = HomeStream::new(&name("cam"), cfg(), t);
    again.handle_claim(t, RoomId(7), 102, PUB_SHARD, Some(kept), false).unwrap();
    feed(&mut again, t, 102, &media);
    let text = String::from_utf8_lossy(&again.hls().unwrap().unwrap().playlist()).into_owned();
    assert!(!text.contains("#EXT-X-ENDLIST") && text.matches("#EXT-X-DISCONTINUITY\n").count() >= 2, "{text}");
}

/// RTP from a WebRTC publisher, as the session hands it over (a minimal packet).
fn rtp(seq: u16) -> Frame {
    let mut p = vec![0x80, 96, (seq >> 8) as u8, seq as u8, 0, 0, 0, 1, 0, 0, 0, 9];
    p.extend_from_slice(&[0x41, 0x9a, 0x00]);
    Frame::rtp(FrameKind::RtpVideo, Bytes::from(p))
}

#[test]
fn the_webrtc_to_rtmp_bridge_runs_while_watched_and_asks_for_keyframes() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    drain(&mut h);
    // Nobody watches over RTMP/FLV/HLS: RTP is forwarded, no bridge.
    h.handle_frame(t0, &Instant::now, 100, Arc::new(rtp(1)), &never_h264);
    let d = drain(&mut h);
    assert_eq!((d.frames.len(), d.keyframe_requests), (1, 0));
    assert!(h.view(t0).bridges.is_empty());
    // An RTMP player's shard wants it: the bridge starts and asks for a keyframe.
    h.want_tags(t0, SUB, true);
    h.handle_frame(t0, &Instant::now, 100, Arc::new(rtp(2)), &|| true);
    assert_eq!(drain(&mut h).keyframe_requests, 1);
    assert_eq!(h.view(t0).bridges, ["webrtc->rtmp"]);
    // The last player leaves: the bridge lingers, then stops, and the mirrors reset.
    h.want_tags(t0, SUB, false);
    h.handle_frame(t0 + Duration::from_secs(1), &Instant::now, 100, Arc::new(rtp(3)), &|| true);
    assert_eq!(h.view(t0).bridges, ["webrtc->rtmp"], "lingers for players that come back");
    drain(&mut h);
    h.handle_frame(t0 + TAGS_BRIDGE_LINGER + Duration::from_secs(1), &Instant::now, 100, Arc::new(rtp(4)), &|| true);
    let d = drain(&mut h);
    assert!(h.view(t0).bridges.is_empty());
    assert_eq!(d.snapshots.len(), 1, "the mirror drops the bridge's stale GOP");
    // An HLS request alone brings it back.
    let t = t0 + Duration::from_secs(30);
    h.hls_requested(t);
    h.handle_frame(t, &Instant::now, 100, Arc::new(rtp(5)), &|| true);
    assert_eq!(drain(&mut h).keyframe_requests, 1);
}

#[test]
fn the_rtmp_to_webrtc_bridge_starts_with_a_webrtc_viewer_and_stops_after_the_last() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    feed(&mut h, t0, 100, &media[..20]);
    assert!(drain(&mut h).frames.iter().all(|(f, _)| !f.is_rtp()), "no RTP while nobody watches over WebRTC");
    h.want_rtp(SUB, true);
    feed(&mut h, t0, 100, &media[20..40]);
    let d = drain(&mut h);
    assert!(d.frames.iter().any(|(f, _)| f.is_rtp()), "RTP for the WebRTC viewers");
    assert!(d.frames.windows(2).all(|w| w[1].1 == w[0].1 + 1), "one numbering for both");
    assert_eq!(h.view(t0).bridges, ["rtmp->webrtc"]);
    h.want_rtp(SUB, false);
    feed(&mut h, t0, 100, &media[40..50]);
    assert!(drain(&mut h).frames.iter().all(|(f, _)| !f.is_rtp()));
    assert!(h.view(t0).bridges.is_empty());
}

#[test]
fn the_bit_rate_is_told_each_window() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    feed(&mut h, t0, 100, &media);
    drain(&mut h);
    let t = t0 + BITRATE_WINDOW;
    h.handle_frame(t, &Instant::now, 100, media[5].clone(), &never_h264);
    let d = drain(&mut h);
    let bitrate = d.events.iter().find_map(|e| match e {
        EngineEvent::StreamInfo { info, .. } => info.bitrate,
        _ => None,
    });
    let bytes: u64 = media.iter().map(|f| f.len() as u64).sum::<u64>() + media[5].len() as u64;
    assert_eq!(bitrate, Some(bytes * 8 * 1000 / BITRATE_WINDOW.as_millis() as u64));
}

/// A new publisher's RTMP → WebRTC bridge numbers its RTP from its own start: under
/// new SSRCs, so that the WebRTC viewers' sessions (which keep one numbering per
/// source) take it as a new source and go on, instead of dropping it as old packets.
#[test]
fn a_new_publishers_bridge_sends_under_new_ssrcs() {
    let t0 = Instant::now();
    let mut h = live_home(t0);
    let media = media();
    h.want_rtp(SUB, true);
    feed(&mut h, t0, 100, &media[..30]);
    let ssrcs = |d: &Drained| -> std::collections::BTreeSet<u32> {
        d.frames
            .iter()
            .filter(|(f, _)| f.is_rtp())
            .map(|(f, _)| crate::proto::webrtc::RtpPacket::parse(f.payload.clone()).unwrap().ssrc)
            .collect()
    };
    let first = ssrcs(&drain(&mut h));
    assert!(!first.is_empty());
    h.handle_publisher_gone(t0, 100);
    h.handle_claim(t0 + Duration::from_secs(1), RoomId(7), 101, PUB_SHARD, None, false).unwrap();
    feed(&mut h, t0 + Duration::from_secs(1), 101, &media[..30]);
    let second = ssrcs(&drain(&mut h));
    assert!(!second.is_empty());
    assert!(first.is_disjoint(&second), "{first:?} then {second:?}");
}
