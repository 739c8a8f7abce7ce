//! ISO BMFF box writing (ISO/IEC 14496-12) for fragmented MP4: the init segment
//! (`ftyp` + `moov` with empty sample tables and `mvex`) and the fragments
//! (`moof` + `mdat`). Hand-written: only the boxes a fragmented recording needs.

use bytes::Bytes;

use super::{AudioConfig, VideoConfig};

/// Track id of the video track (always 1, present or not).
pub(crate) const VIDEO_TRACK_ID: u32 = 1;
/// Track id of the audio track.
pub(crate) const AUDIO_TRACK_ID: u32 = 2;
/// The video timescale: the 90 kHz clock of MPEG systems, so ms × 90 is exact.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// `sample_flags` of a sync sample: `sample_depends_on` = 2 (depends on no other).
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// The identity transformation matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes a box: a size placeholder, the type, the body from `body`, then the
/// size patched in (every box we write is far below 4 GiB).
fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - at).unwrap_or(u32::MAX);
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box: a box whose body starts with a version byte and 24 bits of flags.
fn full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, kind, |o| {
        o.push(version);
        o.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(o);
    });
}

/// The init segment: `ftyp` then `moov` with one `trak` per present track and an
/// `mvex` announcing that the samples come in fragments.
pub(crate) fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        put_u32(o, 0);
        for brand in [b"iso6", b"isom", b"iso2", b"avc1", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    boxed(&mut out, b"moov", |o| {
        mvhd(o);
        if let Some(v) = video {
            video_trak(o, v);
        }
        if let Some(a) = audio {
            audio_trak(o, a);
        }
        boxed(o, b"mvex", |o| {
            if video.is_some() {
                trex(o, VIDEO_TRACK_ID, 0);
            }
            if audio.is_some() {
                trex(o, AUDIO_TRACK_ID, SYNC_SAMPLE_FLAGS);
            }
        });
    });
    out
}

fn mvhd(out: &mut Vec<u8>) {
    full_box(out, b"mvhd", 0, 0, |o| {
        put_u32(o, 0); // creation_time: unknown (no clock here)
        put_u32(o, 0); // modification_time
        put_u32(o, 1000); // timescale
        put_u32(o, 0); // duration: in the fragments
        put_u32(o, 0x0001_0000); // rate 1.0
        put_u16(o, 0x0100); // volume 1.0
        o.extend_from_slice(&[0; 10]);
        MATRIX.iter().for_each(|&m| put_u32(o, m));
        o.extend_from_slice(&[0; 24]); // pre_defined
        put_u32(o, AUDIO_TRACK_ID + 1); // next_track_ID
    });
}

fn tkhd(out: &mut Vec<u8>, track_id: u32, audio: bool, width: u16, height: u16) {
    // flags: track_enabled | track_in_movie
    full_box(out, b"tkhd", 0, 3, |o| {
        put_u32(o, 0);
        put_u32(o, 0);
        put_u32(o, track_id);
        put_u32(o, 0); // reserved
        put_u32(o, 0); // duration
        o.extend_from_slice(&[0; 8]);
        put_u16(o, 0); // layer
        put_u16(o, 0); // alternate_group
        put_u16(o, if audio { 0x0100 } else { 0 });
        put_u16(o, 0);
        MATRIX.iter().for_each(|&m| put_u32(o, m));
        put_u32(o, u32::from(width) << 16);
        put_u32(o, u32::from(height) << 16);
    });
}

fn mdhd(out: &mut Vec<u8>, timescale: u32) {
    full_box(out, b"mdhd", 0, 0, |o| {
        put_u32(o, 0);
        put_u32(o, 0);
        put_u32(o, timescale);
        put_u32(o, 0);
        put_u16(o, 0x55C4); // language "und"
        put_u16(o, 0);
    });
}

fn hdlr(out: &mut Vec<u8>, handler: &[u8; 4], name: &[u8]) {
    full_box(out, b"hdlr", 0, 0, |o| {
        put_u32(o, 0);
        o.extend_from_slice(handler);
        o.extend_from_slice(&[0; 12]);
        o.extend_from_slice(name);
        o.push(0);
    });
}

/// `dinf` + `stbl` shared by both tracks: the sample entry from `entry`, and the
/// sample tables empty (all samples are in fragments).
fn dinf_stbl(out: &mut Vec<u8>, entry: impl FnOnce(&mut Vec<u8>)) {
    boxed(out, b"dinf", |o| {
        full_box(o, b"dref", 0, 0, |o| {
            put_u32(o, 1);
            full_box(o, b"url ", 0, 1, |_| {}); // self-contained
        });
    });
    boxed(out, b"stbl", |o| {
        full_box(o, b"stsd", 0, 0, |o| {
            put_u32(o, 1);
            entry(o);
        });
        full_box(o, b"stts", 0, 0, |o| put_u32(o, 0));
        full_box(o, b"stsc", 0, 0, |o| put_u32(o, 0));
        full_box(o, b"stsz", 0, 0, |o| {
            put_u32(o, 0);
            put_u32(o, 0);
        });
        full_box(o, b"stco", 0, 0, |o| put_u32(o, 0));
    });
}

fn video_trak(out: &mut Vec<u8>, v: &VideoConfig) {
    boxed(out, b"trak", |o| {
        tkhd(o, VIDEO_TRACK_ID, false, v.width, v.height);
        boxed(o, b"mdia", |o| {
            mdhd(o, VIDEO_TIMESCALE);
            hdlr(o, b"vide", b"VideoHandler");
            boxed(o, b"minf", |o| {
                full_box(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]));
                dinf_stbl(o, |o| avc1(o, v));
            });
        });
    });
}

fn avc1(out: &mut Vec<u8>, v: &VideoConfig) {
    boxed(out, b"avc1", |o| {
        o.extend_from_slice(&[0; 6]);
        put_u16(o, 1); // data_reference_index
        o.extend_from_slice(&[0; 16]); // pre_defined, reserved
        put_u16(o, v.width);
        put_u16(o, v.height);
        put_u32(o, 0x0048_0000); // 72 dpi
        put_u32(o, 0x0048_0000);
        put_u32(o, 0);
        put_u16(o, 1); // frame_count
        o.extend_from_slice(&[0; 32]); // compressorname
        put_u16(o, 0x0018); // depth
        put_u16(o, 0xFFFF); // pre_defined = -1
        boxed(o, b"avcC", |o| o.extend_from_slice(&v.record));
    });
}

fn audio_trak(out: &mut Vec<u8>, a: &AudioConfig) {
    boxed(out, b"trak", |o| {
        tkhd(o, AUDIO_TRACK_ID, true, 0, 0);
        boxed(o, b"mdia", |o| {
            mdhd(o, a.sample_rate);
            hdlr(o, b"soun", b"SoundHandler");
            boxed(o, b"minf", |o| {
                full_box(o, b"smhd", 0, 0, |o| put_u32(o, 0));
                dinf_stbl(o, |o| mp4a(o, a));
            });
        });
    });
}

fn mp4a(out: &mut Vec<u8>, a: &AudioConfig) {
    boxed(out, b"mp4a", |o| {
        o.extend_from_slice(&[0; 6]);
        put_u16(o, 1); // data_reference_index
        o.extend_from_slice(&[0; 8]);
        put_u16(o, a.channels);
        put_u16(o, 16); // samplesize
        put_u32(o, 0);
        // 16.16 fixed point: rates above 65535 Hz do not fit; decoders use the ASC.
        put_u32(o, if a.sample_rate <= 0xFFFF { a.sample_rate << 16 } else { 0 });
        full_box(o, b"esds", 0, 0, |o| o.extend_from_slice(&es_descriptor(&a.asc)));
    });
}

/// An MPEG-4 descriptor (ISO/IEC 14496-1 7.2.2): tag, expandable size, body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    let groups = (1..4).take_while(|i| len >> (7 * i) != 0).count();
    for i in (1..=groups).rev() {
        out.push(0x80 | ((len >> (7 * i)) & 0x7F) as u8);
    }
    out.push((len & 0x7F) as u8);
    out.extend_from_slice(body);
    out
}

/// `ES_Descriptor` → `DecoderConfigDescriptor` (MPEG-4 audio, AudioStream) with the
/// `AudioSpecificConfig` as `DecoderSpecificInfo`, and `SLConfigDescriptor` (MP4).
fn es_descriptor(asc: &[u8]) -> Vec<u8> {
    let mut dcd = vec![0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dcd.extend(descriptor(0x05, asc));
    let mut es = vec![0, AUDIO_TRACK_ID as u8, 0];
    es.extend(descriptor(0x04, &dcd));
    es.extend(descriptor(0x06, &[0x02]));
    descriptor(0x03, &es)
}

fn trex(out: &mut Vec<u8>, track_id: u32, default_flags: u32) {
    full_box(out, b"trex", 0, 0, |o| {
        put_u32(o, track_id);
        put_u32(o, 1); // default_sample_description_index
        put_u32(o, 0);
        put_u32(o, 0);
        put_u32(o, default_flags);
    });
}

/// One sample of a fragment, in its track's timescale.
#[derive(Debug, Clone)]
pub(crate) struct FragSample {
    pub duration: u32,
    /// PTS − DTS (video only).
    pub cts: i32,
    pub key: bool,
    pub data: Bytes,
}

/// A track's samples in one fragment.
#[derive(Debug, Clone)]
pub(crate) struct TrackRun {
    pub track_id: u32,
    pub video: bool,
    /// Decode time of the first sample (`tfdt`).
    pub base_dts: u64,
    pub samples: Vec<FragSample>,
}

impl TrackRun {
    pub(crate) fn data_len(&self) -> usize {
        self.samples.iter().map(|s| s.data.len()).sum()
    }

    pub(crate) fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

/// A fragment: `moof` (`mfhd`, one `traf` per non-empty run) then one `mdat` with
/// the runs' data in order. Each `trun`'s data offset is relative to the `moof`
/// (`default-base-is-moof`), so a fragment decodes on its own bytes.
pub(crate) fn fragment(sequence: u32, runs: &[TrackRun]) -> Vec<u8> {
    let data_len: usize = runs.iter().map(TrackRun::data_len).sum();
    let mut out = Vec::with_capacity(data_len + 256 + 16 * runs.iter().map(|r| r.samples.len()).sum::<usize>());
    let mut offset_fields = Vec::with_capacity(runs.len());
    boxed(&mut out, b"moof", |o| {
        full_box(o, b"mfhd", 0, 0, |o| put_u32(o, sequence));
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            offset_fields.push((traf(o, run), run.data_len()));
        }
    });
    let mut data_pos = out.len() + 8;
    for (field, len) in offset_fields {
        let offset = i32::try_from(data_pos).unwrap_or(i32::MAX);
        out[field..field + 4].copy_from_slice(&offset.to_be_bytes());
        data_pos += len;
    }
    put_u32(&mut out, u32::try_from(data_len + 8).unwrap_or(u32::MAX));
    out.extend_from_slice(b"mdat");
    for run in runs {
        for s in &run.samples {
            out.extend_from_slice(&s.data);
        }
    }
    out
}

/// Writes a `traf`; returns the position of its `trun` data offset, patched later.
fn traf(out: &mut Vec<u8>, run: &TrackRun) -> usize {
    let mut field = 0;
    boxed(out, b"traf", |o| {
        full_box(o, b"tfhd", 0, 0x02_0000, |o| put_u32(o, run.track_id)); // default-base-is-moof
        full_box(o, b"tfdt", 1, 0, |o| put_u64(o, run.base_dts));
        // data_offset | sample_duration | sample_size, and for video sample_flags and
        // signed composition offsets (version 1).
        let (version, flags) = if run.video { (1, 0xF01) } else { (0, 0x301) };
        full_box(o, b"trun", version, flags, |o| {
            put_u32(o, u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
            field = o.len();
            put_u32(o, 0);
            for s in &run.samples {
                put_u32(o, s.duration);
                put_u32(o, u32::try_from(s.data.len()).unwrap_or(u32::MAX));
                if run.video {
                    put_u32(o, if s.key { SYNC_SAMPLE_FLAGS } else { NON_SYNC_SAMPLE_FLAGS });
                    o.extend_from_slice(&s.cts.to_be_bytes());
                }
            }
        });
    });
    field
}
