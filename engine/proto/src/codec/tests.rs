use super::test_util::hex;
use super::*;

#[test]
fn media_info_from_sequence_headers() {
    let mut info = MediaInfo::default();
    let video = hex("17000000000164000cffe100176764000cacb40a0fd80880000003008000000f078a155001000568ef0672c0fdf8f800");
    assert!(info.update_from_video_tag(&video).unwrap());
    assert!(!info.update_from_video_tag(&video).unwrap());
    // A frame of the same codec does not reset the size.
    assert!(!info.update_from_video_tag(&[0x27, 1, 0, 0, 0]).unwrap());
    let v = info.video.clone().unwrap();
    assert_eq!((v.codec.name(), v.width, v.height, v.fps), ("H264", 320, 240, Some(15.0)));
    assert_eq!(v.codecs.as_deref(), Some("avc1.64000c"));

    assert!(info.update_from_audio_tag(&[0xAF, 0x00, 0x11, 0x88]).unwrap());
    assert!(!info.update_from_audio_tag(&[0xAF, 0x01, 0x21]).unwrap());
    let a = info.audio.clone().unwrap();
    assert_eq!((a.codec.name(), a.sample_rate, a.channels), ("AAC", 48_000, 1));

    let mut mp3 = MediaInfo::default();
    assert!(mp3.update_from_audio_tag(&[0x2F, 0xFF]).unwrap());
    let a = mp3.audio.unwrap();
    assert_eq!((a.codec, a.sample_rate, a.channels), (AudioCodec::Mp3, 44_100, 2));
    assert!(MediaInfo::default().update_from_video_tag(&[]).is_err());
}

/// Every tag of the ffmpeg-made test files parses, and what it says
/// matches ffprobe (see testdata/media/README.txt).
#[test]
fn real_files_parse() {
    use crate::flv::{FlvReader, TagType};
    for (file, w, h, fps, rate, channels, keyframes, max_ct) in [
        ("media/small.flv", 320, 240, 15.0, 48_000, 1, 2, 0),
        ("media/small_bframes.flv", 170, 100, 25.0, 44_100, 2, 3, 160),
    ] {
        let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        reader.handle_input(&test_util::testdata(file));
        let mut info = MediaInfo::default();
        let (mut config, mut asc) = (None, None);
        let (mut seen_keyframes, mut seen_max_ct, mut frames) = (0, 0, 0);
        while let Some(tag) = reader.poll_tag().unwrap() {
            match tag.tag_type {
                TagType::Video => {
                    info.update_from_video_tag(&tag.body).unwrap();
                    let v = VideoTag::parse(&tag.body).unwrap();
                    if v.is_sequence_header() {
                        config = Some(AvcConfig::parse(v.data).unwrap());
                        continue;
                    }
                    let cfg = config.as_ref().unwrap();
                    frames += 1;
                    seen_max_ct = seen_max_ct.max(v.composition_time_ms);
                    assert!(avcc_nalus(v.data, cfg.nalu_length_size).all(|n| n.is_ok()));
                    assert_eq!(v.is_keyframe(), avcc_contains_idr(v.data, cfg.nalu_length_size));
                    seen_keyframes += usize::from(v.is_keyframe());
                    let mut annexb = Vec::new();
                    avcc_to_annexb(v.data, cfg.nalu_length_size, &mut annexb).unwrap();
                    let n = avcc_nalus(v.data, cfg.nalu_length_size).count();
                    assert_eq!(annexb_nalus(&annexb).count(), n);
                }
                TagType::Audio => {
                    info.update_from_audio_tag(&tag.body).unwrap();
                    let a = AudioTag::parse(&tag.body).unwrap();
                    if a.is_sequence_header() {
                        asc = Some(AudioSpecificConfig::parse(a.data).unwrap());
                    } else {
                        let mut adts = Vec::new();
                        asc.as_ref().unwrap().write_adts(a.data, &mut adts).unwrap();
                    }
                }
                TagType::Script => {}
            }
        }
        assert!(frames > 0);
        assert_eq!(seen_keyframes, keyframes, "{file}");
        assert_eq!(seen_max_ct, max_ct, "{file}");
        let v = info.video.unwrap();
        assert_eq!((v.width, v.height, v.fps), (w, h, Some(fps)), "{file}");
        let a = info.audio.unwrap();
        assert_eq!((a.sample_rate, a.channels), (rate, channels), "{file}");
    }
}
