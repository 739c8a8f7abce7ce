use super::scan::{BoxRef, children, read_box};
use super::*;
use crate::codec::test_util::testdata;
use crate::flv::{FlvReader, TagType};

/// The (type, timestamp, body) of every audio/video tag of a test file.
fn tags(file: &str) -> Vec<(TagType, u32, Vec<u8>)> {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&testdata(file));
    std::iter::from_fn(|| reader.poll_tag().unwrap())
        .filter(|t| matches!(t.tag_type, TagType::Audio | TagType::Video))
        .map(|t| (t.tag_type, t.timestamp_ms, t.body.to_vec()))
        .collect()
}

fn push_all(w: &mut Fmp4Writer, tags: &[(TagType, u32, Vec<u8>)]) {
    for (kind, ts, body) in tags {
        match kind {
            TagType::Video => w.push_video(*ts, body).unwrap(),
            _ => w.push_audio(*ts, body).unwrap(),
        }
    }
}

fn drain(w: &mut Fmp4Writer) -> Vec<Mp4Output> {
    std::iter::from_fn(|| w.poll()).collect()
}

fn finish_all(w: &mut Fmp4Writer) -> Vec<Mp4Output> {
    let mut out = drain(w);
    out.extend(w.finish());
    out.extend(drain(w));
    out
}

/// Muxes tags with `fragment_ms`, returning all outputs.
fn mux(tags: &[(TagType, u32, Vec<u8>)], fragment_ms: u32) -> Vec<Mp4Output> {
    let mut w = Fmp4Writer::new(Fmp4Options { fragment_ms });
    push_all(&mut w, tags);
    finish_all(&mut w)
}

/// Splits outputs into files (each starts at an `Init`); each file's bytes and
/// its fragments as the writer reported them.
fn files(outputs: &[Mp4Output]) -> Vec<(Vec<u8>, Vec<FragmentInfo>)> {
    let mut files: Vec<(Vec<u8>, Vec<FragmentInfo>)> = Vec::new();
    for o in outputs {
        match o {
            Mp4Output::Init(init) => files.push((init.to_vec(), Vec::new())),
            Mp4Output::Fragment { data, start_ms, duration_ms } => {
                let (file, frags) = files.last_mut().expect("a fragment before any init");
                let info = FragmentInfo {
                    offset: file.len() as u64,
                    len: data.len() as u64,
                    start_ms: *start_ms,
                    duration_ms: *duration_ms,
                };
                frags.push(info);
                file.extend_from_slice(data);
            }
        }
    }
    files
}

const CONTAINERS: [&[u8; 4]; 10] =
    [b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"mvex", b"moof", b"traf", b"edts"];

/// Checks that box sizes add up exactly in `data`, recursing into containers;
/// returns the box types seen (depth-first).
fn walk(data: &[u8], seen: &mut Vec<[u8; 4]>) {
    let boxes = children(data).expect("box sizes add up");
    for b in boxes {
        seen.push(b.kind);
        if CONTAINERS.contains(&&b.kind) {
            walk(b.body, seen);
        }
    }
}

fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<BoxRef<'a>> {
    let (first, rest) = path.split_first()?;
    let b = children(data).ok()?.into_iter().find(|b| &b.kind == *first)?;
    if rest.is_empty() { Some(b) } else { find(b.body, rest) }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A trun's samples: (duration, size, flags, cts) with the data offset.
fn trun_samples(trun: &[u8]) -> (i32, Vec<(u32, u32, u32, i32)>) {
    let flags = be32(trun, 0) & 0xFF_FFFF;
    let count = be32(trun, 4) as usize;
    let offset = be32(trun, 8) as i32;
    let mut at = 12;
    let mut out = Vec::new();
    for _ in 0..count {
        let mut field = |f: u32| {
            if flags & f == 0 {
                return 0;
            }
            at += 4;
            be32(trun, at - 4)
        };
        let s = (field(0x100), field(0x200), field(0x400), field(0x800) as i32);
        out.push(s);
    }
    assert_eq!(at, trun.len(), "trun length");
    (offset, out)
}

#[test]
fn init_has_both_tracks_with_codec_config_and_sizes_that_add_up() {
    let out = mux(&tags("media/small.flv"), 2000);
    let Mp4Output::Init(init) = &out[0] else { panic!("first output is the init") };
    let mut seen = Vec::new();
    walk(init, &mut seen);
    let names: Vec<String> = seen.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    for k in ["ftyp", "moov", "mvhd", "trak", "tkhd", "mdhd", "hdlr", "vmhd", "smhd", "stsd", "stts", "stsc"] {
        assert!(names.iter().any(|n| n == k), "{k} in {names:?}");
    }
    assert_eq!(names.iter().filter(|n| *n == "trex").count(), 2);
    // avc1 width/height from the SPS (320x240), mp4a with an esds.
    let stsd = find(init, &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
    let avc1 = read_box(&stsd.body[8..]).unwrap().unwrap();
    assert_eq!(&avc1.kind, b"avc1");
    assert_eq!((u16::from_be_bytes([avc1.body[24], avc1.body[25]]), avc1.body[26..28].to_vec()), (320, vec![0, 240]));
    assert!(children(&avc1.body[78..]).unwrap().iter().any(|b| &b.kind == b"avcC"));
    let mdhd = find(init, &[b"moov", b"trak", b"mdia", b"mdhd"]).unwrap();
    assert_eq!(be32(mdhd.body, 12), 90_000);
    let w = {
        let mut w = Fmp4Writer::new(Fmp4Options { fragment_ms: 500 });
        push_all(&mut w, &tags("media/small.flv"));
        w
    };
    assert_eq!(w.codecs().as_deref(), Some("avc1.64000c,mp4a.40.2"));
    assert!((900..=1100).contains(&w.media_ms()), "one 1 s GOP written before finish: {}", w.media_ms());
}

#[test]
fn fragments_start_with_keyframes_have_continuous_tfdt_and_offsets_inside_mdat() {
    let out = mux(&tags("media/small.flv"), 500);
    let files = files(&out);
    assert_eq!(files.len(), 1);
    let (file, frags) = &files[0];
    assert_eq!(frags.len(), 2, "2 s at 500 ms with a 1 s GOP");
    let mut next_dts = std::collections::HashMap::new();
    for f in frags {
        let bytes = &file[f.offset as usize..(f.offset + f.len) as usize];
        let boxes = children(bytes).unwrap();
        assert_eq!(boxes.iter().map(|b| b.kind).collect::<Vec<_>>(), vec![*b"moof", *b"mdat"]);
        let (moof_len, mdat_len) = (boxes[0].len, boxes[1].len);
        for traf in children(boxes[0].body).unwrap().iter().filter(|b| &b.kind == b"traf") {
            let tfhd = find(traf.body, &[b"tfhd"]).unwrap();
            assert_eq!(be32(tfhd.body, 0), 0x02_0000, "default-base-is-moof");
            let id = be32(tfhd.body, 4);
            let tfdt = find(traf.body, &[b"tfdt"]).unwrap();
            assert_eq!(tfdt.body[0], 1, "tfdt version 1");
            let dts = u64::from_be_bytes(tfdt.body[4..12].try_into().unwrap());
            if let Some(expected) = next_dts.get(&id) {
                assert_eq!(dts, *expected, "track {id}: tfdt continues the previous fragment");
            }
            let (offset, samples) = trun_samples(find(traf.body, &[b"trun"]).unwrap().body);
            let size: u32 = samples.iter().map(|s| s.1).sum();
            assert!(offset as usize >= moof_len + 8 && offset as usize + size as usize <= moof_len + mdat_len);
            next_dts.insert(id, dts + samples.iter().map(|s| u64::from(s.0)).sum::<u64>());
            if id == 1 {
                assert_eq!(samples[0].2, boxes::SYNC_SAMPLE_FLAGS, "a fragment starts with a keyframe");
                assert!(
                    samples[1..].iter().all(|s| s.2 == boxes::NON_SYNC_SAMPLE_FLAGS || s.2 == boxes::SYNC_SAMPLE_FLAGS)
                );
            }
        }
    }
    // The whole 2 s (15 fps video from 21 ms) is there.
    let total: u64 = frags.iter().map(|f| f.duration_ms).sum();
    assert!((1900..=2100).contains(&total), "{total} ms");
}

#[test]
fn scan_finds_exactly_the_fragments_the_writer_emitted() {
    for (file_name, fragment_ms) in
        [("media/small.flv", 2000), ("media/small.flv", 300), ("media/small_bframes.flv", 400)]
    {
        let out = mux(&tags(file_name), fragment_ms);
        for (file, frags) in files(&out) {
            let scan = scan(&file).unwrap();
            assert_eq!(scan.fragments, frags, "{file_name}");
            assert_eq!(scan.valid_len, file.len() as u64);
            assert_eq!(scan.init_len, frags[0].offset);
        }
    }
}

#[test]
fn scan_of_a_file_cut_anywhere_keeps_exactly_the_complete_fragments() {
    let out = mux(&tags("media/small_bframes.flv"), 300);
    let (file, frags) = files(&out).remove(0);
    assert!(frags.len() >= 3);
    let init_len = frags[0].offset as usize;
    for cut in 0..=file.len() {
        match scan(&file[..cut]) {
            Err(e) => assert!(cut < init_len, "cut {cut}: {e}"),
            Ok(s) => {
                assert!(cut >= init_len, "cut {cut} inside the init scanned");
                let complete: Vec<_> = frags.iter().copied().filter(|f| f.offset + f.len <= cut as u64).collect();
                assert_eq!(s.fragments, complete, "cut {cut}");
                assert_eq!(s.valid_len, complete.last().map_or(init_len as u64, |f| f.offset + f.len));
            }
        }
    }
}

#[test]
fn scan_stops_at_a_corrupt_fragment() {
    let out = mux(&tags("media/small.flv"), 500);
    let (mut file, frags) = files(&out).remove(0);
    // Point the second fragment's video trun past its mdat.
    let second = frags[1].offset as usize;
    let trun_at = second + file[second..].windows(4).position(|w| w == b"trun").unwrap() + 4;
    file[trun_at + 8..trun_at + 12].copy_from_slice(&0x7FFF_0000u32.to_be_bytes());
    let s = scan(&file).unwrap();
    assert_eq!(s.fragments, frags[..1].to_vec());
    assert_eq!(s.valid_len, frags[0].offset + frags[0].len);
    assert_eq!(scan(b"not an mp4 at all"), Err(Mp4Error::NoInit));
}

#[test]
fn b_frames_get_composition_offsets() {
    let out = mux(&tags("media/small_bframes.flv"), 2000);
    let (file, frags) = files(&out).remove(0);
    let moof = read_box(&file[frags[0].offset as usize..]).unwrap().unwrap();
    let trun = find(moof.body, &[b"traf", b"trun"]).unwrap();
    assert_eq!(trun.body[0], 1, "trun version 1 (signed offsets)");
    let (_, samples) = trun_samples(trun.body);
    assert!(samples.iter().any(|s| s.3 > 0), "some sample has PTS > DTS");
    // 25 fps: 3600 ticks per frame.
    assert!(samples[..samples.len() - 1].iter().all(|s| s.0 == 3600), "{samples:?}");
}

#[test]
fn audio_only_and_video_only_streams() {
    let all = tags("media/small.flv");
    let audio: Vec<_> = all.iter().filter(|t| t.0 == TagType::Audio).cloned().collect();
    let out = mux(&audio, 500);
    let (file, frags) = files(&out).remove(0);
    let mut seen = Vec::new();
    walk(&file[..frags[0].offset as usize], &mut seen);
    assert_eq!(seen.iter().filter(|k| *k == b"trak").count(), 1);
    assert!(seen.contains(b"smhd") && !seen.contains(b"vmhd"));
    assert!(
        frags.len() >= 3 && frags[..frags.len() - 1].iter().all(|f| (500..=530).contains(&f.duration_ms)),
        "{frags:?}"
    );
    assert_eq!(scan(&file).unwrap().fragments, frags);

    let video: Vec<_> = all.iter().filter(|t| t.0 == TagType::Video).cloned().collect();
    let out = mux(&video, 500);
    let (file, frags) = files(&out).remove(0);
    let mut seen = Vec::new();
    walk(&file[..frags[0].offset as usize], &mut seen);
    assert_eq!(seen.iter().filter(|k| *k == b"trak").count(), 1);
    assert!(seen.contains(b"vmhd") && !seen.contains(b"smhd"));
    let total: u64 = frags.iter().map(|f| f.duration_ms).sum();
    assert!((1950..=2050).contains(&total), "{total}");
}

#[test]
fn a_new_sequence_header_starts_a_new_file() {
    let small = tags("media/small.flv");
    let other = tags("media/small_bframes.flv");
    let mut w = Fmp4Writer::new(Fmp4Options::default());
    push_all(&mut w, &small);
    assert!(!w.codecs_changed());
    // The same header again changes nothing.
    w.push_video(1900, &small[0].2).unwrap();
    assert!(!w.codecs_changed());
    let shifted: Vec<_> = other.iter().map(|(k, ts, b)| (*k, ts + 2100, b.clone())).collect();
    push_all(&mut w, &shifted[..2]);
    assert!(w.codecs_changed());
    let mut out = drain(&mut w);
    push_all(&mut w, &shifted[2..]);
    out.extend(finish_all(&mut w));
    assert!(!w.codecs_changed());
    let files = files(&out);
    assert_eq!(files.len(), 2);
    for (file, frags) in &files {
        assert_eq!(&scan(file).unwrap().fragments, frags);
        assert_eq!(frags[0].start_ms, 0, "each file starts at 0");
    }
    assert_eq!(w.codecs().as_deref(), Some("avc1.64000b,mp4a.40.2"));
}

#[test]
fn odd_inputs_do_not_panic() {
    let small = tags("media/small.flv");
    // Frames without sequence headers: nothing.
    let mut w = Fmp4Writer::new(Fmp4Options::default());
    for (kind, ts, body) in small.iter().skip(3) {
        let _ = if *kind == TagType::Video { w.push_video(*ts, body) } else { w.push_audio(*ts, body) };
    }
    assert_eq!(finish_all(&mut w), vec![]);
    // Unsupported codecs and garbage.
    assert_eq!(w.push_video(0, b"\x1c\x00\x00\x00\x00"), Err(Mp4Error::UnsupportedCodec("HEVC")));
    assert_eq!(w.push_video(0, b"\x90hvc1\x01\x02"), Err(Mp4Error::UnsupportedCodec("HEVC")));
    assert_eq!(w.push_audio(0, b"\x2f\xff\xfb"), Err(Mp4Error::UnsupportedCodec("MP3")));
    assert!(matches!(w.push_audio(0, b"\xaf\x00"), Err(Mp4Error::Codec(_))));
    assert!(w.push_video(0, b"").is_err());
    // Timestamps going back and jumping: durations stay sane.
    let mut w = Fmp4Writer::new(Fmp4Options { fragment_ms: 200 });
    let mut ts = 0u32;
    for (i, (kind, _, body)) in small.iter().enumerate() {
        ts = match i % 7 {
            3 => ts.wrapping_sub(500),
            5 => ts.wrapping_add(100_000),
            6 => ts.wrapping_sub(3_000_000),
            _ => ts.wrapping_add(20),
        };
        let _ = if *kind == TagType::Video { w.push_video(ts, body) } else { w.push_audio(ts, body) };
    }
    let out = finish_all(&mut w);
    for (file, frags) in files(&out) {
        assert_eq!(scan(&file).unwrap().fragments, frags);
        assert!(frags.iter().all(|f| f.duration_ms < 11_000), "{frags:?}");
    }
}

#[test]
fn playlist_text() {
    let scan = Scan {
        init_len: 700,
        fragments: vec![
            FragmentInfo { offset: 700, len: 1000, start_ms: 0, duration_ms: 2000 },
            FragmentInfo { offset: 1700, len: 900, start_ms: 2000, duration_ms: 2033 },
            FragmentInfo { offset: 2600, len: 50, start_ms: 4033, duration_ms: 67 },
        ],
        valid_len: 2650,
    };
    let expected = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:3\n\
        #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"r.mp4?token=a%2Bb\",BYTERANGE=\"700@0\"\n\
        #EXTINF:2.000,\n#EXT-X-BYTERANGE:1000@700\nr.mp4?token=a%2Bb\n\
        #EXTINF:2.033,\n#EXT-X-BYTERANGE:900@1700\nr.mp4?token=a%2Bb\n\
        #EXTINF:0.067,\n#EXT-X-BYTERANGE:50@2600\nr.mp4?token=a%2Bb\n#EXT-X-ENDLIST\n";
    assert_eq!(vod_playlist(&scan, "r.mp4?token=a%2Bb"), expected);
    let hostile = vod_playlist(&scan, "a\"b\nc");
    assert!(hostile.contains("URI=\"a%22b%0Ac\"") && !hostile.contains("\nc\n"));
    let empty = Scan { init_len: 10, fragments: vec![], valid_len: 10 };
    assert!(vod_playlist(&empty, "x").contains("#EXT-X-TARGETDURATION:1\n"));
}

#[test]
fn a_stalled_video_track_cuts_audio_fragments_by_the_length_bound_not_per_frame() {
    let small = tags("media/small.flv");
    let video_frames: Vec<_> = small.iter().filter(|t| t.0 == TagType::Video).skip(1).take(3).collect();
    let audio_frame = small.iter().filter(|t| t.0 == TagType::Audio).nth(2).unwrap();
    let mut w = Fmp4Writer::new(Fmp4Options::default());
    push_all(&mut w, &small[..3]); // both sequence headers
    for (i, (_, _, body)) in video_frames.iter().enumerate() {
        w.push_video(i as u32 * 66, body).unwrap();
    }
    // 25 s of audio, the video stalled.
    for i in 0..1200u32 {
        w.push_audio(i * 21, &audio_frame.2).unwrap();
    }
    let out = finish_all(&mut w);
    let (file, frags) = files(&out).remove(0);
    assert!((3..=5).contains(&frags.len()), "{} fragments: {frags:?}", frags.len());
    assert_eq!(scan(&file).unwrap().fragments, frags);
    let end = frags.iter().map(|f| f.start_ms + f.duration_ms).max().unwrap();
    assert_eq!(w.media_ms(), end, "the finished file's length");
    assert!((19_900..=20_100).contains(&end), "{end}");
}

#[test]
fn big_frames_cut_fragments_at_the_byte_bound() {
    let small = tags("media/small.flv");
    let mut w = Fmp4Writer::new(Fmp4Options::default());
    push_all(&mut w, &small[..3]); // both sequence headers
    // A keyframe then 1 MiB inter frames at 30 fps: 1 s holds 30 MiB.
    let mut key = vec![0x17, 1, 0, 0, 0, 0, 0, 0, 4, 0x65];
    key.resize(1000, 0);
    let mut inter = vec![0x27, 1, 0, 0, 0, 0, 0x10, 0, 0, 0x41];
    inter.resize(1 << 20, 0);
    w.push_video(0, &key).unwrap();
    for i in 1..40u32 {
        w.push_video(i * 33, &inter).unwrap();
    }
    let out = finish_all(&mut w);
    let (file, frags) = files(&out).remove(0);
    assert!(frags.len() >= 5, "{} fragments", frags.len());
    assert!(frags.iter().all(|f| f.len <= (MAX_FRAGMENT_BYTES + (2 << 20)) as u64), "{frags:?}");
    assert_eq!(scan(&file).unwrap().fragments, frags);
}

#[test]
fn scan_does_not_loop_over_a_huge_sample_count_without_per_sample_fields() {
    let out = mux(&tags("media/small.flv"), 2000);
    let (mut file, frags) = files(&out).remove(0);
    let first = frags[0].offset as usize;
    let trun_at = first + file[first..].windows(4).position(|w| w == b"trun").unwrap() + 4;
    // Flags: data offset only; sample_count 2^32 − 1.
    file[trun_at..trun_at + 4].copy_from_slice(&0x0000_0001u32.to_be_bytes());
    file[trun_at + 4..trun_at + 8].copy_from_slice(&u32::MAX.to_be_bytes());
    let s = scan(&file).unwrap();
    assert!(s.fragments.len() <= frags.len());
}
