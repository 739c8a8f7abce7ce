//! Muxer tests: synthetic media and the ffmpeg-made FLV files, parsed back
//! with the strict test demuxer.

use super::test_demux::{Pes, adts_frames, demux};
use super::*;
use crate::codec::test_util::{hex, testdata};
use crate::codec::{
    AudioSpecificConfig, AudioTag, AvcConfig, VideoPacket, VideoTag, annexb_nalus, avcc_nalus, nal_unit_type,
};
use crate::flv::{FlvReader, TagType};

const AVC_SEQ_HEADER: &str =
    "17000000000164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800";

fn avc_config() -> AvcConfig {
    let body = hex(AVC_SEQ_HEADER);
    AvcConfig::parse(VideoTag::parse(&body).unwrap().data).unwrap()
}

fn aac_config() -> AudioSpecificConfig {
    AudioSpecificConfig::parse(&[0x11, 0x88]).unwrap() // LC 48 kHz mono
}

fn pes_on(d: &super::test_demux::Demuxed, pid: u16) -> Vec<&Pes> {
    d.pes.iter().filter(|p| p.pid == pid).collect()
}

/// Writes `ts` to `$MEDIA_DUMP_DIR/name` when set, for manual ffprobe checks.
fn dump(name: &str, ts: &[u8]) {
    if let Ok(dir) = std::env::var("MEDIA_DUMP_DIR") {
        std::fs::write(format!("{dir}/{name}"), ts).unwrap();
    }
}

#[test]
fn synthetic_av_stream() {
    let mut mux = TsMuxer::default();
    mux.set_video_config(avc_config());
    mux.set_audio_config(aac_config()).unwrap();
    let mut out = Vec::new();
    mux.write_psi(&mut out);
    // 10 frames at 40 ms, key every 5; AAC frames every 21.33 ms.
    let mut audio_ms = 0.0f64;
    for i in 0..10u64 {
        let key = i % 5 == 0;
        let slice: &[u8] = if key { &[0x65, 0x88, 0x84] } else { &[0x41, 0x9A] };
        let mut avcc = vec![0, 0, 0, 2, 0x09, 0xF0]; // an AUD to be dropped
        avcc.extend_from_slice(&(slice.len() as u32).to_be_bytes());
        avcc.extend_from_slice(slice);
        avcc.extend(std::iter::repeat_n(0xAB, 300 * i as usize));
        let n = avcc.len() - 10;
        avcc[6..10].copy_from_slice(&(n as u32).to_be_bytes());
        mux.write_video(&mut out, i * 40, 0, key, &avcc).unwrap();
        while audio_ms < (i as f64 + 1.0) * 40.0 {
            mux.write_audio(&mut out, audio_ms as u64, &[0x21, 0x10, 0x05]).unwrap();
            audio_ms += 1024.0 * 1000.0 / 48_000.0;
        }
    }
    mux.flush_audio(&mut out);
    assert!(!mux.has_pending_audio());
    dump("synthetic.ts", &out);

    let d = demux(&out).unwrap();
    assert_eq!((d.pat_count, d.pmt_count), (1, 1));
    assert_eq!(d.pmt_pid, Some(PMT_PID));
    assert_eq!(d.pcr_pid, Some(VIDEO_PID));
    assert_eq!(d.streams, vec![(STREAM_TYPE_H264, VIDEO_PID), (STREAM_TYPE_AAC_ADTS, AUDIO_PID)]);

    let video = pes_on(&d, VIDEO_PID);
    assert_eq!(video.len(), 10);
    for (i, pes) in video.iter().enumerate() {
        let key = i % 5 == 0;
        assert_eq!(pes.stream_id, 0xE0);
        assert_eq!(pes.random_access, key);
        let dts = TIMESTAMP_OFFSET_90K + i as u64 * 40 * 90;
        assert_eq!(pes.pts, Some(dts));
        assert_eq!(pes.dts, None, "DTS omitted when equal to PTS");
        assert_eq!(pes.pcr, Some(dts - PCR_DELAY_90K));
        let types: Vec<u8> = annexb_nalus(&pes.data).map(nal_unit_type).collect();
        if key {
            assert_eq!(types, [9, 7, 8, 5], "AUD, SPS, PPS, IDR");
        } else {
            assert_eq!(types, [9, 1]);
        }
    }

    let audio = pes_on(&d, AUDIO_PID);
    let frames: usize = audio.iter().map(|p| adts_frames(&p.data).unwrap().len()).sum();
    assert_eq!(frames, 19);
    assert!(audio.len() < frames, "frames are grouped");
    for pes in &audio {
        assert!(pes.random_access && pes.pcr.is_none());
        let n = adts_frames(&pes.data).unwrap().len() as u64;
        assert!(n * 1920 <= 100 * 90, "group within 100 ms");
    }
    // Grouped PTS follow the first frame of each group.
    assert_eq!(audio[0].pts, Some(TIMESTAMP_OFFSET_90K));
}

#[test]
fn audio_only_uses_audio_pcr_and_ungrouped_mode() {
    let mut mux = TsMuxer::new(TsMuxerConfig { audio_group_ms: 0 });
    mux.set_audio_config(aac_config()).unwrap();
    let mut out = Vec::new();
    mux.write_psi(&mut out);
    for i in 0..5u64 {
        mux.write_audio(&mut out, i * 21, &[0x21; 40]).unwrap();
    }
    assert!(!mux.has_pending_audio());
    let d = demux(&out).unwrap();
    assert_eq!(d.pcr_pid, Some(AUDIO_PID));
    assert_eq!(d.streams, vec![(STREAM_TYPE_AAC_ADTS, AUDIO_PID)]);
    let audio = pes_on(&d, AUDIO_PID);
    assert_eq!(audio.len(), 5);
    for (i, pes) in audio.iter().enumerate() {
        let pts = TIMESTAMP_OFFSET_90K + i as u64 * 21 * 90;
        assert_eq!((pes.pts, pes.pcr), (Some(pts), Some(pts - PCR_DELAY_90K)));
    }
}

#[test]
fn audio_gap_starts_a_new_group() {
    let mut mux = TsMuxer::default();
    mux.set_audio_config(aac_config()).unwrap();
    let mut out = Vec::new();
    mux.write_audio(&mut out, 0, &[1]).unwrap();
    mux.write_audio(&mut out, 21, &[2]).unwrap();
    mux.write_audio(&mut out, 500, &[3]).unwrap();
    mux.flush_audio(&mut out);
    let d = demux(&out).unwrap();
    let pts: Vec<_> = d.pes.iter().map(|p| p.pts.unwrap() - TIMESTAMP_OFFSET_90K).collect();
    assert_eq!(pts, vec![0, 500 * 90]);
}

#[test]
fn errors_and_psi_versions() {
    let mut mux = TsMuxer::default();
    let mut out = Vec::new();
    assert_eq!(mux.write_video(&mut out, 0, 0, true, &[0, 0, 0, 1, 0x65]), Err(TsError::NoVideoConfig));
    assert_eq!(mux.write_audio(&mut out, 0, &[1]), Err(TsError::NoAudioConfig));
    // AAC-LC with an explicit 96 kHz rate (index 15) cannot go in ADTS.
    let explicit = AudioSpecificConfig::parse(&[0x17, 0x80, 0xBB, 0x80, 0x10]).unwrap();
    assert!(mux.set_audio_config(explicit).is_err());
    mux.write_psi(&mut out);
    mux.set_video_config(avc_config());
    mux.write_psi(&mut out);
    mux.set_video_config(avc_config()); // same track set: same version
    mux.set_audio_config(aac_config()).unwrap();
    mux.write_psi(&mut out);
    let d = demux(&out).unwrap();
    assert_eq!(d.pmt_versions, vec![0, 1, 2]);
    assert!(!out.is_empty() && d.pes.is_empty());
    // Truncated AVCC is refused without output.
    let before = out.len();
    assert!(matches!(mux.write_video(&mut out, 0, 0, true, &[0, 0, 0, 9, 0x65]), Err(TsError::Codec(_))));
    assert_eq!(out.len(), before);
}

#[test]
fn continuity_counters_wrap_across_calls() {
    let mut mux = TsMuxer::default();
    mux.set_video_config(avc_config());
    let mut out = Vec::new();
    for seg in 0..3u64 {
        mux.write_psi(&mut out);
        for i in 0..7u64 {
            let au = [0, 0, 0, 3, 0x41, 0x9A, 0x00];
            mux.write_video(&mut out, seg * 1000 + i * 33, 0, false, &au).unwrap();
        }
    }
    let d = demux(&out).unwrap();
    assert_eq!(d.pat_count, 3);
    assert!(d.packets > 16);
}

/// A video frame as given to the muxer: (dts ms, cts ms, key, NAL types).
type VideoIn = (u64, i32, bool, Vec<u8>);
/// An audio frame as given to the muxer: (pts ms, raw AAC).
type AudioIn = (u64, Vec<u8>);

/// Muxes an FLV file; returns the TS and what went in.
fn mux_flv(file: &str) -> (Vec<u8>, Vec<VideoIn>, Vec<AudioIn>) {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&testdata(file));
    let mut mux = TsMuxer::default();
    let mut out = Vec::new();
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    let mut psi_written = false;
    while let Some(tag) = reader.poll_tag().unwrap() {
        let ts = u64::from(tag.timestamp_ms);
        match tag.tag_type {
            TagType::Video => {
                let v = VideoTag::parse(&tag.body).unwrap();
                if v.is_sequence_header() {
                    mux.set_video_config(AvcConfig::parse(v.data).unwrap());
                    continue;
                }
                if v.packet != VideoPacket::Frame {
                    // The end-of-sequence tag ffmpeg writes last: no picture.
                    let before = out.len();
                    mux.write_video(&mut out, ts, 0, false, v.data).unwrap();
                    assert_eq!(out.len(), before, "empty access unit writes nothing");
                    continue;
                }
                if !psi_written {
                    mux.write_psi(&mut out);
                    psi_written = true;
                }
                let len = mux.video_config().unwrap().nalu_length_size;
                let types = avcc_nalus(v.data, len).map(|n| nal_unit_type(n.unwrap())).collect();
                video.push((ts, v.composition_time_ms, v.is_keyframe(), types));
                mux.write_video(&mut out, ts, v.composition_time_ms, v.is_keyframe(), v.data).unwrap();
            }
            TagType::Audio => {
                let a = AudioTag::parse(&tag.body).unwrap();
                if a.is_sequence_header() {
                    mux.set_audio_config(AudioSpecificConfig::parse(a.data).unwrap()).unwrap();
                    continue;
                }
                if !psi_written {
                    mux.write_psi(&mut out);
                    psi_written = true;
                }
                audio.push((ts, a.data.to_vec()));
                mux.write_audio(&mut out, ts, a.data).unwrap();
            }
            TagType::Script => {}
        }
    }
    mux.flush_audio(&mut out);
    (out, video, audio)
}

#[test]
fn real_flv_round_trips_through_ts() {
    for (file, name) in [("media/small.flv", "small.ts"), ("media/small_bframes.flv", "small_bframes.ts")] {
        let (ts, video, audio) = mux_flv(file);
        dump(name, &ts);
        let d = demux(&ts).unwrap();
        assert_eq!(d.streams.len(), 2);

        let vpes = pes_on(&d, VIDEO_PID);
        assert_eq!(vpes.len(), video.len(), "{file}");
        for (pes, (dts_ms, cts, key, types)) in vpes.iter().zip(&video) {
            let dts = TIMESTAMP_OFFSET_90K + dts_ms * 90;
            let pts = (dts as i64 + i64::from(*cts) * 90) as u64;
            assert_eq!(pes.pts, Some(pts));
            assert_eq!(pes.dts.unwrap_or(pts), dts);
            assert_eq!(pes.random_access, *key);
            let got: Vec<u8> = annexb_nalus(&pes.data).map(nal_unit_type).collect();
            let mut want = vec![9];
            if *key && !types.contains(&7) {
                want.extend_from_slice(&[7, 8]);
            }
            want.extend(types.iter().filter(|&&t| t != 9));
            assert_eq!(got, want, "{file} at {dts_ms} ms");
        }
        assert!(video.iter().any(|v| v.2));

        let apes = pes_on(&d, AUDIO_PID);
        let mut frames = Vec::new();
        for pes in &apes {
            for (_, raw) in adts_frames(&pes.data).unwrap() {
                frames.push(raw.to_vec());
            }
        }
        let want: Vec<Vec<u8>> = audio.iter().map(|(_, raw)| raw.clone()).collect();
        assert_eq!(frames, want, "{file}: every AAC frame, in order");
        // Each group's PTS is the FLV time of its first frame.
        assert_eq!(apes[0].pts, Some(TIMESTAMP_OFFSET_90K + audio[0].0 * 90));
    }
}
