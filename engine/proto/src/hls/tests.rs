//! Segmenter tests with synthetic media and the ffmpeg-made FLV files.

use std::time::Duration;

use super::*;
use crate::codec::test_util::{hex, testdata};
use crate::codec::{AudioSpecificConfig, AvcConfig, VideoTag, annexb_nalus, nal_unit_type};
use crate::flv::{FlvReader, TagType};
use crate::mpegts::test_demux::demux;
use crate::mpegts::{AUDIO_PID, VIDEO_PID};

const AVC_SEQ_HEADER: &str =
    "17000000000164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800";

fn avc_config() -> AvcConfig {
    let body = hex(AVC_SEQ_HEADER);
    AvcConfig::parse(VideoTag::parse(&body).unwrap().data).unwrap()
}

fn aac_config() -> AudioSpecificConfig {
    AudioSpecificConfig::parse(&[0x11, 0x88]).unwrap() // LC 48 kHz mono
}

fn config(fragment_ms: u64, playlist_ms: u64) -> HlsConfig {
    HlsConfig {
        fragment: Duration::from_millis(fragment_ms),
        playlist_length: Duration::from_millis(playlist_ms),
        uri_prefix: "cam/".into(),
        ..HlsConfig::default()
    }
}

/// An AVCC access unit: one IDR or non-IDR slice of `size` bytes.
fn access_unit(key: bool, size: usize) -> Vec<u8> {
    let mut nal = vec![if key { 0x65 } else { 0x41 }];
    nal.resize(size.max(1), 0x5A);
    let mut au = (nal.len() as u32).to_be_bytes().to_vec();
    au.extend_from_slice(&nal);
    au
}

/// Feeds `secs` of 25 fps video (key every `gop` frames) and 48 kHz AAC,
/// starting at `start_ms`, interleaved by time.
fn feed(seg: &mut Segmenter, start_ms: u32, secs: u32, gop: u32, with_audio: bool, with_video: bool) {
    let frames = secs * 25;
    let mut audio_index = 0u64;
    for i in 0..frames {
        let video_ms = i * 40;
        if with_audio {
            while audio_index * 1024 * 1000 / 48_000 <= u64::from(video_ms) {
                let ts = start_ms.wrapping_add((audio_index * 1024 * 1000 / 48_000) as u32);
                seg.push(&MediaFrame {
                    kind: Track::Audio,
                    timestamp_ms: ts,
                    composition_time_ms: 0,
                    keyframe: false,
                    payload: &[0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C],
                })
                .unwrap();
                audio_index += 1;
            }
        }
        if with_video {
            let key = i % gop == 0;
            let au = access_unit(key, if key { 2000 } else { 300 });
            seg.push(&MediaFrame {
                kind: Track::Video,
                timestamp_ms: start_ms.wrapping_add(video_ms),
                composition_time_ms: 0,
                keyframe: key,
                payload: &au,
            })
            .unwrap();
        }
    }
}

fn drain(seg: &mut Segmenter) -> Vec<HlsEvent> {
    std::iter::from_fn(|| seg.poll_event()).collect()
}

fn completed(events: &[HlsEvent]) -> Vec<(u64, Duration, bytes::Bytes)> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::SegmentCompleted { seq, duration, data } => Some((*seq, *duration, data.clone())),
            _ => None,
        })
        .collect()
}

fn removed(events: &[HlsEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            HlsEvent::SegmentRemoved { seq } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Checks a segment: clean TS, PAT/PMT first, first video PES is a random
/// access point holding SPS, PPS and an IDR.
fn check_segment_starts_with_keyframe(data: &[u8]) {
    assert_eq!(&data[..4], &[0x47, 0x40, 0x00, 0x10 | (data[3] & 0x0F)], "PAT first");
    let d = demux(data).unwrap();
    assert_eq!((d.pat_count, d.pmt_count), (1, 1));
    let first_video = d.pes.iter().find(|p| p.pid == VIDEO_PID).expect("video in segment");
    assert!(first_video.random_access);
    let types: Vec<u8> = annexb_nalus(&first_video.data).map(nal_unit_type).collect();
    assert_eq!(&types[..3], &[9, 7, 8], "AUD, SPS, PPS");
    assert!(types.contains(&5), "an IDR slice");
}

fn playlist_text(seg: &Segmenter) -> String {
    String::from_utf8(seg.playlist().to_vec()).unwrap()
}

#[test]
fn cuts_on_keyframes_once_fragment_reached() {
    let mut seg = Segmenter::new(config(3000, 60_000));
    seg.set_video_config(avc_config());
    seg.set_audio_config(aac_config()).unwrap();
    // 2 s GOP, 3 s fragment → 4 s segments.
    feed(&mut seg, 1000, 21, 50, true, true);
    let events = drain(&mut seg);
    let done = completed(&events);
    assert_eq!(done.len(), 5);
    for (i, (seq, duration, data)) in done.iter().enumerate() {
        assert_eq!(*seq, i as u64);
        assert_eq!(*duration, Duration::from_secs(4));
        check_segment_starts_with_keyframe(data);
        let d = demux(data).unwrap();
        assert!(d.pes.iter().any(|p| p.pid == AUDIO_PID));
        assert_eq!(seg.segment(*seq).as_ref(), Some(data));
    }
    assert_eq!(seg.target_duration_secs(), 4);
    let text = playlist_text(&seg);
    assert!(text.starts_with(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.000,\ncam/0.ts\n"
    ));
    assert!(!text.contains("ENDLIST"));
    // end() closes the open segment (1 s of video, ends after its last frame).
    seg.end();
    let done = completed(&drain(&mut seg));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1, Duration::from_millis(1000));
    assert!(playlist_text(&seg).ends_with("#EXTINF:1.000,\ncam/5.ts\n#EXT-X-ENDLIST\n"));
    assert!(seg.is_ended());
}

#[test]
fn playlist_slides_and_old_segments_go() {
    let mut seg = Segmenter::new(HlsConfig { retained_segments: 1, ..config(2000, 10_000) });
    seg.set_video_config(avc_config());
    feed(&mut seg, 0, 61, 50, false, true);
    let events = drain(&mut seg);
    let done = completed(&events);
    assert_eq!(done.len(), 30);
    // Window of 10 s = 5 segments of 2 s, plus 1 retained.
    assert_eq!(seg.playlist_segment_count(), 5);
    assert_eq!(seg.media_sequence(), 25);
    assert_eq!(removed(&events), (0..24).collect::<Vec<_>>());
    assert!(seg.segment(23).is_none());
    assert!(seg.segment(24).is_some(), "retained after leaving the playlist");
    assert!(seg.segment(29).is_some());
    assert!(seg.segment(30).is_none(), "still open");
    let text = playlist_text(&seg);
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:25\n"));
    assert!(text.contains("#EXT-X-TARGETDURATION:2\n"));
    assert_eq!(text.matches("#EXTINF:2.000,").count(), 5);
    assert!(text.contains("cam/25.ts\n") && text.contains("cam/29.ts\n") && !text.contains("cam/24.ts"));
    let held: usize = (24..30).map(|s| seg.segment(s).unwrap().len()).sum();
    assert_eq!(seg.bytes_held(), held);
    // Playlist-updated events accompany changes.
    assert!(events.iter().filter(|e| **e == HlsEvent::PlaylistUpdated).count() >= 30);
}

#[test]
fn byte_bound_drops_oldest() {
    let mut seg = Segmenter::new(HlsConfig { max_bytes: 60_000, ..config(1000, 60_000) });
    seg.set_video_config(avc_config());
    feed(&mut seg, 0, 20, 25, false, true);
    let events = drain(&mut seg);
    assert!(seg.bytes_held() <= 60_000);
    assert!(!removed(&events).is_empty());
    // Everything held is inside the 60 s window, so the playlist starts at
    // the oldest segment held.
    assert_eq!(seg.media_sequence(), removed(&events).len() as u64);
    assert!(seg.segment(seg.media_sequence()).is_some());
}

#[test]
fn audio_only_cuts_on_time() {
    let mut seg = Segmenter::new(config(3000, 60_000));
    seg.set_audio_config(aac_config()).unwrap();
    feed(&mut seg, 500, 10, 25, true, false);
    let done = completed(&drain(&mut seg));
    assert_eq!(done.len(), 3);
    for (_, duration, data) in &done {
        // Cut at the first AAC frame at or after 3 s (frames are 21.33 ms).
        assert!(*duration >= Duration::from_millis(3000) && *duration < Duration::from_millis(3022));
        let d = demux(data).unwrap();
        assert_eq!(d.streams.len(), 1);
        assert_eq!(d.pcr_pid, Some(AUDIO_PID));
        assert!(d.pes.first().unwrap().random_access);
    }
}

#[test]
fn waits_for_keyframe_and_drops_audio_before_it() {
    let mut seg = Segmenter::new(config(1000, 60_000));
    seg.set_video_config(avc_config());
    seg.set_audio_config(aac_config()).unwrap();
    let inter = access_unit(false, 100);
    for ts in [0, 40] {
        seg.push(&MediaFrame {
            kind: Track::Video,
            timestamp_ms: ts,
            composition_time_ms: 0,
            keyframe: false,
            payload: &inter,
        })
        .unwrap();
    }
    seg.push(&MediaFrame {
        kind: Track::Audio,
        timestamp_ms: 50,
        composition_time_ms: 0,
        keyframe: false,
        payload: &[1, 2],
    })
    .unwrap();
    assert_eq!(seg.dropped_frames(), 3);
    feed(&mut seg, 100, 3, 25, true, true);
    seg.end();
    let done = completed(&drain(&mut seg));
    assert_eq!(done.len(), 3);
    for (_, _, data) in &done {
        check_segment_starts_with_keyframe(data);
    }
}

#[test]
fn discontinuity_then_endlist() {
    let mut seg = Segmenter::new(config(2000, 60_000));
    seg.set_video_config(avc_config());
    seg.set_audio_config(aac_config()).unwrap();
    feed(&mut seg, 10_000, 5, 50, true, true);
    seg.discontinuity();
    // Configs are forgotten until the new publisher's headers arrive.
    let au = access_unit(true, 10);
    let frame =
        MediaFrame { kind: Track::Video, timestamp_ms: 0, composition_time_ms: 0, keyframe: true, payload: &au };
    assert!(seg.push(&frame).is_err());
    seg.set_video_config(avc_config());
    seg.set_audio_config(aac_config()).unwrap();
    // The new publisher starts again at 0.
    feed(&mut seg, 0, 5, 50, true, true);
    seg.end();
    let done = completed(&drain(&mut seg));
    let durations: Vec<u64> = done.iter().map(|d| d.1.as_millis() as u64).collect();
    assert_eq!(durations, [2000, 2000, 1000, 2000, 2000, 1000]);
    let text = playlist_text(&seg);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(text.contains("cam/2.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000,\ncam/3.ts\n"));
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    // New media after end() reopens the playlist with a discontinuity.
    feed(&mut seg, 60_000, 3, 50, false, true);
    let text = playlist_text(&seg);
    assert!(!text.contains("ENDLIST"));
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
}

#[test]
fn discontinuity_sequence_counts_tags_that_slid_out() {
    let mut seg = Segmenter::new(HlsConfig { retained_segments: 0, ..config(1000, 3000) });
    seg.set_video_config(avc_config());
    feed(&mut seg, 0, 3, 25, false, true);
    seg.discontinuity();
    seg.set_video_config(avc_config());
    feed(&mut seg, 0, 10, 25, false, true);
    let text = playlist_text(&seg);
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
}

#[test]
fn timestamp_wrap_and_jumps() {
    let mut seg = Segmenter::new(config(1000, 60_000));
    seg.set_video_config(avc_config());
    // Starts 2 s before the 32-bit wrap: durations stay exact across it.
    feed(&mut seg, u32::MAX - 1999, 4, 25, false, true);
    let done = completed(&drain(&mut seg));
    assert_eq!(done.iter().map(|d| d.1).collect::<Vec<_>>(), vec![Duration::from_secs(1); 3]);
    // A jump back by 30 s without discontinuity() is detected.
    feed(&mut seg, 2000u32.wrapping_sub(30_000), 2, 25, false, true);
    seg.end();
    let text = playlist_text(&seg);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    for (_, _, data) in completed(&drain(&mut seg)) {
        check_segment_starts_with_keyframe(&data);
    }
}

#[test]
fn empty_playlist_before_media() {
    let seg = Segmenter::new(config(3000, 60_000));
    assert_eq!(playlist_text(&seg), "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n");
    assert!(seg.segment(0).is_none());
}

#[test]
fn refuses_other_codecs_and_bad_data() {
    let mut seg = Segmenter::new(HlsConfig::default());
    assert_eq!(seg.push_flv_tag(Track::Audio, 0, &[0x2F, 0xFF]), Err(HlsError::UnsupportedCodec("MP3")));
    let mut hevc = vec![0x90];
    hevc.extend_from_slice(b"hvc1");
    assert_eq!(seg.push_flv_tag(Track::Video, 0, &hevc), Err(HlsError::UnsupportedCodec("HEVC")));
    seg.set_video_config(avc_config());
    assert!(seg.push_flv_tag(Track::Video, 0, &[0x17, 1, 0, 0, 0, 0, 0, 0, 9, 0x65]).is_err());
    assert!(seg.push_flv_tag(Track::Video, 0, &[]).is_err());
}

/// The ffmpeg-made FLV through `push_flv_tag`; with `MEDIA_DUMP_DIR` set the
/// playlist and segments are written there for ffmpeg/ffprobe checks.
#[test]
fn real_flv_to_hls() {
    for (file, fragment_ms, want_segments) in [("media/small.flv", 1000, 2), ("media/small_bframes.flv", 300, 3)] {
        let mut seg = Segmenter::new(config(fragment_ms, 60_000));
        let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        reader.handle_input(&testdata(file));
        while let Some(tag) = reader.poll_tag().unwrap() {
            let kind = match tag.tag_type {
                TagType::Video => Track::Video,
                TagType::Audio => Track::Audio,
                TagType::Script => continue,
            };
            seg.push_flv_tag(kind, tag.timestamp_ms, &tag.body).unwrap();
        }
        seg.end();
        let done = completed(&drain(&mut seg));
        assert_eq!(done.len(), want_segments, "{file}");
        for (_, _, data) in &done {
            check_segment_starts_with_keyframe(data);
        }
        if let Ok(dir) = std::env::var("MEDIA_DUMP_DIR") {
            let name = file.trim_start_matches("media/").trim_end_matches(".flv");
            let out = format!("{dir}/hls-{name}");
            std::fs::create_dir_all(format!("{out}/cam")).unwrap();
            for (seq, _, data) in &done {
                std::fs::write(format!("{out}/cam/{seq}.ts"), data).unwrap();
            }
            std::fs::write(format!("{out}/index.m3u8"), seg.playlist()).unwrap();
        }
    }
}
