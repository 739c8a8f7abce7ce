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
