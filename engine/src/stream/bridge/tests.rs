use super::*;

const NTP_SEC: u64 = 1 << 32;

#[test]
fn ntp_converts_to_microseconds() {
    assert_eq!(ntp_to_us(3 * NTP_SEC + NTP_SEC / 2), 3_500_000);
}

#[test]
fn clock_is_strictly_increasing() {
    let mut c = ClockMap::new(90_000);
    assert_eq!(c.ms(1000, 0), 1000);
    assert_eq!(c.ms(1000 + 90, 0), 1001);
    assert_eq!(c.ms(1000 + 90, 0), 1002, "an equal RTP time still moves on");
    assert_eq!(c.ms(1000 + 9000, 0), 1100);
    // A header before the media at an RTP time takes the media's time and
    // leaves it to the media.
    assert_eq!(c.header_ms(1000 + 12000, 0), 1133);
    assert_eq!(c.ms(1000 + 12000, 0), 1133);
    assert_eq!(c.header_ms(1000 + 12000, 0), 1133, "never before the last media");
}

/// Reports put a video that starts after audio on audio's timeline; reports
/// arriving later never move running clocks.
#[test]
fn sender_reports_start_video_on_audio_and_leave_running_clocks_alone() {
    let mut b = RtcToRtmp::new(Instant::now(), true);
    (b.video_ssrc, b.audio_ssrc) = (Some(1), Some(2));
    b.aclock.first = Some((480_000, 2_000)); // audio RTP 480 000 = sender time 10 s
    b.sender_report(FrameKind::RtpAudio, 2, 10 * NTP_SEC, 480_000);
    b.sender_report(FrameKind::RtpVideo, 1, 10 * NTP_SEC, 90_000); // video RTP 90 000 = 10 s
    // Video's first packet, captured at 10.5 s, arrives "late" (at 1 900 ms + headroom).
    assert!(anchor_on(&mut b.vclock, b.video_ssrc, &b.aclock, b.audio_ssrc, 135_000, 1_900));
    assert_eq!(b.vclock.ms(135_000, 0), 2_500, "on audio's timeline, not at its arrival");
    assert_eq!(b.aclock.ms(480_000 + 24_000, 0), 2_500);
    // A later report that disagrees by 50 ms changes nothing that runs.
    let (v0, a0) = (b.vclock.first, b.aclock.first);
    b.sender_report(FrameKind::RtpAudio, 2, 20 * NTP_SEC + NTP_SEC / 20, 960_000);
    assert_eq!((b.vclock.first, b.aclock.first), (v0, a0));
    assert_eq!(b.aclock.ms(960_000, 0), 12_000);
    // Reports of another SSRC (an old track) do not anchor anything.
    let mut v = ClockMap::new(90_000);
    v.sender_report = Some((9, 0, 0));
    assert!(!anchor_on(&mut v, Some(1), &b.aclock, Some(2), 0, 0));
}

#[test]
fn video_starting_late_is_anchored_on_audio_by_reports() {
    let mut a = ClockMap::new(48_000);
    a.first = Some((0, 1_000));
    a.sender_report = Some((2, ntp_to_us(5 * NTP_SEC) as i64, 0));
    let mut v = ClockMap::new(90_000);
    v.sender_report = Some((1, ntp_to_us(5 * NTP_SEC) as i64, 0));
    // Video's first frame, captured 0.5 s after audio's first, arrives 300 ms later still.
    assert!(anchor_on(&mut v, Some(1), &a, Some(2), 45_000, 800));
    assert_eq!(v.ms(45_000, 800), 1_500);
    // Reports that disagree with arrival by more than 5 s are not believed.
    let mut v2 = ClockMap::new(90_000);
    v2.sender_report = Some((1, ntp_to_us(500 * NTP_SEC) as i64, 0));
    assert!(!anchor_on(&mut v2, Some(1), &a, Some(2), 45_000, 800));
}

/// Audio that starts after video (the CI case: a bridge started mid-stream whose
/// first keyframe came before the first AAC frame) goes on video's timeline.
#[test]
fn audio_starting_after_video_is_anchored_on_video_by_reports() {
    let mut b = RtcToRtmp::new(Instant::now(), true);
    (b.video_ssrc, b.audio_ssrc) = (Some(1), Some(2));
    b.vclock.first = Some((90_000, 3_000)); // video RTP 90 000 = sender time 10 s
    b.sender_report(FrameKind::RtpVideo, 1, 10 * NTP_SEC, 90_000);
    b.sender_report(FrameKind::RtpAudio, 2, 10 * NTP_SEC, 480_000);
    // Audio captured at 9.8 s arrives at 2 100 ms (+ headroom): it goes 200 ms
    // before video's first frame, as captured.
    assert!(anchor_on(&mut b.aclock, b.audio_ssrc, &b.vclock, b.video_ssrc, 480_000 - 9_600, 2_100));
    assert_eq!(b.aclock.ms(480_000 - 9_600, 0), 2_800);
    assert_eq!(b.aclock.ms(480_000, 0), 3_000);
    // Without video's report nothing is anchored.
    let mut a = ClockMap::new(48_000);
    a.sender_report = b.aclock.sender_report;
    let v = ClockMap { sender_report: None, ..ClockMap::new(90_000) };
    assert!(!anchor_on(&mut a, Some(2), &v, Some(1), 0, 0));
}

/// A relayed WebRTC stream's Opus reaches WebRTC viewers as it came (no AAC → Opus
/// transcode while it keeps coming); when it stops, the AAC is transcoded again.
#[test]
fn relayed_opus_goes_through_untouched_and_aac_takes_over_when_it_stops() {
    let mut b = RtmpToRtc::new();
    let clock = Instant::now;
    let mut out = vec![];
    let packets: [&[u8]; 2] = [b"\x78opus-one", b"\x78opus-two"];
    for (i, p) in packets.iter().enumerate() {
        b.push(&clock, &Frame::opus_tag(1000 + 20 * i as u32, p), &mut out);
    }
    assert!(b.passing_opus());
    let sent: Vec<(u16, u32, Vec<u8>)> = out
        .iter()
        .map(|f| {
            assert_eq!(f.kind, FrameKind::RtpAudio);
            let p = crate::proto::webrtc::RtpPacket::parse(f.payload.clone()).unwrap();
            (p.sequence_number, p.timestamp, p.payload().to_vec())
        })
        .collect();
    assert_eq!(sent, [(0, 48_000, packets[0].to_vec()), (1, 48_960, packets[1].to_vec())]);
    // The AAC beside it (a little behind: the transcoder's delay) is not transcoded meanwhile.
    out.clear();
    b.push(&clock, &Frame::new(FrameKind::Audio, 990, Bytes::from_static(&[0xaf, 0x01, 0x21, 0x10])), &mut out);
    assert!(b.passing_opus());
    b.push(&clock, &Frame::new(FrameKind::Audio, 1030, Bytes::from_static(&[0xaf, 0x01, 0x21, 0x10])), &mut out);
    assert!(out.is_empty() && b.audio_frames == 0 && b.audio_cpu == Duration::ZERO);
    // A second without Opus: the AAC is the source again.
    b.push(&clock, &Frame::new(FrameKind::Audio, 2100, Bytes::from_static(&[0xaf, 0x01, 0x21, 0x10])), &mut out);
    assert!(!b.passing_opus());
}

/// The WebRTC → RTMP bridge carries the publisher's Opus packets untouched as
/// relay-only tags beside the AAC, on the audio clock.
#[test]
fn webrtc_opus_is_also_carried_as_relay_only_tags() {
    let t0 = Instant::now();
    let opus = b"\x78\x01\x02\x03";
    // An H.264 publisher's Opus waits for its video, as its AAC does.
    let mut with_video = RtcToRtmp::new(t0, true).with_opus_tags(true);
    let mut out = vec![];
    with_video.push(t0, &Instant::now, &Frame::rtp(FrameKind::RtpAudio, rtp_bytes(7, 0, 0, false, opus)), &mut out);
    assert!(out.iter().all(|f| f.kind != FrameKind::OpusTag), "{out:?}");
    // Not in cluster mode: none at all.
    let mut single = RtcToRtmp::new(t0, false);
    single.push(t0, &Instant::now, &Frame::rtp(FrameKind::RtpAudio, rtp_bytes(7, 0, 0, false, opus)), &mut out);
    assert!(out.iter().all(|f| f.kind != FrameKind::OpusTag), "{out:?}");
    // Audio only (a VP8 publisher, whose video cannot go to FLV): at once.
    let mut b = RtcToRtmp::new(t0, false).with_opus_tags(true);
    let mut out = vec![];
    for i in 0..3u16 {
        let packet = rtp_bytes(7, i, 960 * u32::from(i), false, opus);
        b.push(
            t0 + Duration::from_millis(20 * u64::from(i)),
            &Instant::now,
            &Frame::rtp(FrameKind::RtpAudio, packet),
            &mut out,
        );
    }
    let tags: Vec<&Frame> = out.iter().filter(|f| f.kind == FrameKind::OpusTag).collect();
    assert_eq!(tags.len(), 3, "{out:?}");
    assert!(tags.iter().all(|f| f.opus_packet() == Some(&opus[..]) && f.relay_only()));
    let ts: Vec<u32> = tags.iter().map(|f| f.timestamp).collect();
    assert_eq!([ts[1] - ts[0], ts[2] - ts[1]], [20, 20], "the audio clock: {ts:?}");
    assert!(Frame::is_opus_tag_body(&tags[0].payload) && !Frame::is_opus_tag_body(&[0xaf, 1]));
}
