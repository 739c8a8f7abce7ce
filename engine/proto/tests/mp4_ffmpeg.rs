//! The fragmented MP4 writer against the real ffmpeg/ffprobe: clips made by ffmpeg
//! (with and without B-frames) are read with the crate's FLV reader, muxed, and
//! the files checked by ffprobe (duration, frame count) and by decoding; then a
//! file cut inside its last fragment (a crash) and the HLS VOD playlist over a file.
//! ffmpeg and ffprobe must be installed (scripts/setup): a missing one fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use microvibe_proto::flv::{FlvReader, TagType};
use microvibe_proto::mp4::{Fmp4Options, Fmp4Writer, Mp4Output, scan, vod_playlist};

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("mp4_ffmpeg_{name}_{}_{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool, failing loudly if it is missing; returns (success, stdout, stderr).
fn run(tool: &str, args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{tool} must be installed (scripts/setup): {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A 6 s 640x360 30 fps H.264 + 48 kHz AAC clip in FLV, with `bf` B-frames.
fn make_clip(dir: &Path, bf: u32) -> PathBuf {
    let bf = bf.to_string();
    let args = [
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "60",
        "-bf",
        &bf,
        "-c:a",
        "aac",
        "-f",
        "flv",
        "clip.flv",
    ];
    let (ok, _, err) = run("ffmpeg", &args, dir);
    assert!(ok, "ffmpeg made the clip: {err}");
    dir.join("clip.flv")
}

/// Muxes an FLV file; returns the MP4 bytes and the number of video frames.
fn mux(flv: &Path) -> (Vec<u8>, usize) {
    let mut reader = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
    reader.handle_input(&std::fs::read(flv).unwrap());
    let mut w = Fmp4Writer::new(Fmp4Options::default());
    let mut outputs = Vec::new();
    let mut frames = 0;
    while let Some(tag) = reader.poll_tag().unwrap() {
        match tag.tag_type {
            TagType::Video => {
                frames += usize::from(tag.body.get(1) == Some(&1));
                w.push_video(tag.timestamp_ms, &tag.body).unwrap();
            }
            TagType::Audio => w.push_audio(tag.timestamp_ms, &tag.body).unwrap(),
            _ => {}
        }
        outputs.extend(std::iter::from_fn(|| w.poll()));
    }
    outputs.extend(w.finish());
    outputs.extend(std::iter::from_fn(|| w.poll()));
    assert!(!w.codecs_changed());
    assert!(w.codecs().is_some_and(|c| c.starts_with("avc1.64") && c.ends_with(",mp4a.40.2")), "{:?}", w.codecs());
    let mut file = Vec::new();
    for (i, o) in outputs.into_iter().enumerate() {
        match o {
            Mp4Output::Init(init) => {
                assert_eq!(i, 0, "one init, first");
                file.extend_from_slice(&init);
            }
            Mp4Output::Fragment { data, .. } => file.extend_from_slice(&data),
        }
    }
    (file, frames)
}

/// ffprobe's format duration (s) and the video stream's decoded frame count.
fn probe(dir: &Path, file: &str) -> (f64, u64, String) {
    let args = [
        "-v",
        "error",
        "-count_frames",
        "-show_entries",
        "format=duration:stream=codec_type,nb_read_frames",
        "-of",
        "default=nw=1",
        file,
    ];
    let (ok, out, err) = run("ffprobe", &args, dir);
    assert!(ok, "ffprobe {file}: {err}");
    eprintln!("ffprobe {}: {}", file, out.replace('\n', " "));
    let mut duration = None;
    let mut video_frames = None;
    let mut in_video = false;
    for line in out.lines() {
        match line.split_once('=') {
            Some(("codec_type", t)) => in_video = t == "video",
            Some(("nb_read_frames", n)) if in_video => video_frames = n.parse().ok(),
            Some(("duration", d)) => duration = d.parse().ok(),
            _ => {}
        }
    }
    (
        duration.unwrap_or_else(|| panic!("duration in {out}")),
        video_frames.unwrap_or_else(|| panic!("frames in {out}")),
        err,
    )
}

/// Decodes a file (or playlist) to nothing; returns (success, stderr).
fn decode(dir: &Path, input: &str) -> (bool, String) {
    let (ok, _, err) = run("ffmpeg", &["-v", "error", "-i", input, "-f", "null", "-"], dir);
    (ok, err)
}

fn check_clip(name: &str, bf: u32) {
    let dir = TempDir::new(name);
    let d = dir.0.as_path();
    let flv = make_clip(d, bf);
    let (file, frames) = mux(&flv);
    std::fs::write(d.join("out.mp4"), &file).unwrap();

    // The whole file: duration, every video frame, a clean decode.
    let (duration, video_frames, _) = probe(d, "out.mp4");
    assert!((duration - 6.0).abs() <= 0.1, "{name}: duration {duration}");
    assert_eq!(video_frames, frames as u64, "{name}: video frames");
    assert_eq!(frames, 180);
    let (ok, err) = decode(d, "out.mp4");
    assert!(ok && err.is_empty(), "{name}: decoding out.mp4: {err}");
    let s = scan(&file).unwrap();
    assert_eq!(s.valid_len, file.len() as u64);
    assert_eq!(s.fragments.len(), 3, "{name}: 2 s GOPs make 2 s fragments");
    let total: u64 = s.fragments.iter().map(|f| f.duration_ms).sum();
    assert!((5900..=6100).contains(&total), "{name}: scanned {total} ms");

    // A crash in the middle of the last fragment: ffmpeg still reads the file and
    // every complete fragment decodes (it also takes what it can of the cut one:
    // its moof is whole, so ffprobe's duration still counts it).
    let last = s.fragments.last().unwrap();
    let cut = &file[..(last.offset + last.len / 2) as usize];
    std::fs::write(d.join("cut.mp4"), cut).unwrap();
    let cut_scan = scan(cut).unwrap();
    assert_eq!(cut_scan.fragments, s.fragments[..s.fragments.len() - 1]);
    let kept_ms: u64 = cut_scan.fragments.iter().map(|f| f.duration_ms).sum();
    let (_, video_frames, _) = probe(d, "cut.mp4");
    assert!(video_frames >= kept_ms * 30 / 1000, "{name}: cut video frames {video_frames} for {kept_ms} ms");
    let (ok, err) = decode(d, "cut.mp4");
    assert!(ok, "{name}: decoding cut.mp4 failed: {err}");
    // Recovery cuts the file at valid_len: exactly the complete fragments, clean.
    std::fs::write(d.join("fixed.mp4"), &cut[..cut_scan.valid_len as usize]).unwrap();
    let (duration, video_frames, _) = probe(d, "fixed.mp4");
    assert!((duration - kept_ms as f64 / 1000.0).abs() <= 0.1, "{name}: fixed duration {duration} vs {kept_ms} ms");
    assert_eq!(video_frames, kept_ms * 30 / 1000, "{name}: fixed video frames");
    let (ok, err) = decode(d, "fixed.mp4");
    assert!(ok && err.is_empty(), "{name}: decoding fixed.mp4: {err}");
    // A cut inside the last moof: ffmpeg 5.1 refuses such a file outright ("error
    // reading header"), but the playlist of its complete fragments plays.
    let cut_moof = &file[..(last.offset + 40) as usize];
    std::fs::write(d.join("cut_moof.mp4"), cut_moof).unwrap();
    let moof_scan = scan(cut_moof).unwrap();
    assert_eq!(moof_scan, cut_scan);
    std::fs::write(d.join("cut_moof.m3u8"), vod_playlist(&moof_scan, "cut_moof.mp4")).unwrap();
    let (duration, video_frames, _) = probe(d, "cut_moof.m3u8");
    assert!((duration - kept_ms as f64 / 1000.0).abs() <= 0.1, "{name}: cut_moof playlist duration {duration}");
    assert_eq!(video_frames, kept_ms * 30 / 1000, "{name}: cut_moof playlist video frames");
    let (ok, err) = decode(d, "cut_moof.m3u8");
    assert!(ok && err.is_empty(), "{name}: decoding the cut_moof playlist: {err}");

    // The VOD playlist over the whole file, by byte ranges.
    std::fs::write(d.join("out.m3u8"), vod_playlist(&s, "out.mp4")).unwrap();
    let (duration, video_frames, err) = probe(d, "out.m3u8");
    assert!((duration - 6.0).abs() <= 0.1, "{name}: playlist duration {duration} ({err})");
    assert_eq!(video_frames, 180, "{name}: playlist video frames");
    let (ok, err) = decode(d, "out.m3u8");
    assert!(ok && err.is_empty(), "{name}: decoding the playlist: {err}");
}

#[test]
fn ffmpeg_reads_the_fmp4_of_a_clip_without_b_frames() {
    check_clip("nobf", 0);
}

#[test]
fn ffmpeg_reads_the_fmp4_of_a_clip_with_b_frames() {
    check_clip("bf", 2);
}
