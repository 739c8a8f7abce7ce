//! Reading back a fragmented MP4 recording: [`scan`] finds the init and every
//! complete fragment of a file (or of what a crash left of it), and
//! [`vod_playlist`] serves those fragments as an HLS VOD playlist with byte ranges.

use std::fmt::Write as _;

use super::{Mp4Error, ticks_to_ms};

/// What [`scan`] found in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of the init segment (`ftyp` + `moov` and anything before `moov`).
    pub init_len: u64,
    /// Every complete fragment, in file order.
    pub fragments: Vec<FragmentInfo>,
    /// Bytes up to the end of the last complete box after the init: a file cut
    /// there (e.g. after a crash) holds exactly these fragments.
    pub valid_len: u64,
}

/// One complete fragment (`moof` + `mdat`) of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of its `moof` in the file.
    pub offset: u64,
    /// Bytes of `moof` + `mdat`.
    pub len: u64,
    /// Decode time of its first sample (video track if any), ms from the file's start.
    pub start_ms: u64,
    /// Sum of that track's sample durations, in ms.
    pub duration_ms: u64,
}

/// A box found in a buffer: its type, its body, and its total length.
pub(super) struct BoxRef<'a> {
    pub(super) kind: [u8; 4],
    pub(super) body: &'a [u8],
    pub(super) len: usize,
}

/// The box at the start of `data`: `None` if `data` ends before the box does
/// (or the size is 0, "to the end of the file", which a crash makes unknowable),
/// `Err` if the size is smaller than the header.
pub(super) fn read_box(data: &[u8]) -> Result<Option<BoxRef<'_>>, Mp4Error> {
    let Some(head) = data.get(..8) else { return Ok(None) };
    let kind = [head[4], head[5], head[6], head[7]];
    let (size, header) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        0 => return Ok(None),
        1 => {
            let Some(large) = data.get(8..16) else { return Ok(None) };
            let mut b = [0; 8];
            b.copy_from_slice(large);
            (u64::from_be_bytes(b), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header as u64 {
        return Err(Mp4Error::Malformed("box size below its header"));
    }
    let Ok(len) = usize::try_from(size) else { return Ok(None) };
    match data.get(header..len) {
        Some(body) => Ok(Some(BoxRef { kind, body, len })),
        None => Ok(None),
    }
}

/// The child boxes of a container body; a child running past the end is malformed.
pub(super) fn children(mut body: &[u8]) -> Result<Vec<BoxRef<'_>>, Mp4Error> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let b = read_box(body)?.ok_or(Mp4Error::Malformed("child box past its parent"))?;
        body = &body[b.len..];
        out.push(b);
    }
    Ok(out)
}

fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Result<Option<BoxRef<'a>>, Mp4Error> {
    Ok(children(body)?.into_iter().find(|b| &b.kind == kind))
}

/// A big-endian reader over a box body that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Mp4Error> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(Mp4Error::Malformed("box body too short"))?;
        self.0 = rest;
        let mut out = [0; N];
        out.copy_from_slice(head);
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, Mp4Error> {
        self.take::<4>().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, Mp4Error> {
        self.take::<8>().map(u64::from_be_bytes)
    }
    /// Version and flags of a full box.
    fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
    /// A 32- or 64-bit field by the box version.
    fn versioned(&mut self, version: u8) -> Result<u64, Mp4Error> {
        if version == 1 { self.u64() } else { self.u32().map(u64::from) }
    }
}

/// A track of the `moov`, as fragments need it.
#[derive(Debug, Clone, Copy)]
struct TrackInfo {
    id: u32,
    timescale: u32,
    video: bool,
    default_duration: u32,
}

fn parse_moov(body: &[u8]) -> Result<Vec<TrackInfo>, Mp4Error> {
    let mut tracks = Vec::new();
    let boxes = children(body)?;
    for trak in boxes.iter().filter(|b| &b.kind == b"trak") {
        tracks.push(parse_trak(trak.body)?);
    }
    if let Some(mvex) = boxes.iter().find(|b| &b.kind == b"mvex") {
        for trex in children(mvex.body)?.iter().filter(|b| &b.kind == b"trex") {
            let mut r = Reader(trex.body);
            r.version_flags()?;
            let id = r.u32()?;
            r.u32()?;
            let duration = r.u32()?;
            if let Some(t) = tracks.iter_mut().find(|t| t.id == id) {
                t.default_duration = duration;
            }
        }
    }
    if tracks.is_empty() {
        return Err(Mp4Error::Malformed("moov without tracks"));
    }
    Ok(tracks)
}

fn parse_trak(body: &[u8]) -> Result<TrackInfo, Mp4Error> {
    let tkhd = child(body, b"tkhd")?.ok_or(Mp4Error::Malformed("trak without tkhd"))?;
    let mut r = Reader(tkhd.body);
    let (version, _) = r.version_flags()?;
    r.versioned(version)?;
    r.versioned(version)?;
    let id = r.u32()?;
    let mdia = child(body, b"mdia")?.ok_or(Mp4Error::Malformed("trak without mdia"))?;
    let mdhd = child(mdia.body, b"mdhd")?.ok_or(Mp4Error::Malformed("mdia without mdhd"))?;
    let mut r = Reader(mdhd.body);
    let (version, _) = r.version_flags()?;
    r.versioned(version)?;
    r.versioned(version)?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(Mp4Error::Malformed("zero timescale"));
    }
    let hdlr = child(mdia.body, b"hdlr")?.ok_or(Mp4Error::Malformed("mdia without hdlr"))?;
    let video = hdlr.body.get(8..12) == Some(b"vide");
    Ok(TrackInfo { id, timescale, video, default_duration: 0 })
}

/// One `traf`'s timing: its track, `tfdt` and summed durations.
struct TrafTiming {
    track: TrackInfo,
    base: u64,
    duration: u64,
}

/// Reads a `moof`'s timing and checks that every `trun`'s data lies inside the
/// `mdat` that follows (`mdat_body` = its payload range, relative to the `moof`).
fn parse_moof(body: &[u8], tracks: &[TrackInfo], mdat_body: (u64, u64)) -> Result<(u64, u64), Mp4Error> {
    let mut timings = Vec::new();
    for traf in children(body)?.iter().filter(|b| &b.kind == b"traf") {
        timings.push(parse_traf(traf.body, tracks, mdat_body)?);
    }
    let primary =
        timings.iter().find(|t| t.track.video).or(timings.first()).ok_or(Mp4Error::Malformed("moof without traf"))?;
    let scale = primary.track.timescale;
    let start = ticks_to_ms(primary.base, scale);
    let end = ticks_to_ms(primary.base.saturating_add(primary.duration), scale);
    Ok((start, end - start))
}

fn parse_traf(body: &[u8], tracks: &[TrackInfo], mdat_body: (u64, u64)) -> Result<TrafTiming, Mp4Error> {
    let boxes = children(body)?;
    let tfhd = boxes.iter().find(|b| &b.kind == b"tfhd").ok_or(Mp4Error::Malformed("traf without tfhd"))?;
    let mut r = Reader(tfhd.body);
    let (_, flags) = r.version_flags()?;
    let id = r.u32()?;
    let track = *tracks.iter().find(|t| t.id == id).ok_or(Mp4Error::Malformed("traf of an unknown track"))?;
    let explicit_base = flags & 0x01 != 0;
    if explicit_base {
        r.u64()?;
    }
    if flags & 0x02 != 0 {
        r.u32()?;
    }
    let default_duration = if flags & 0x08 != 0 { r.u32()? } else { track.default_duration };
    let default_size = if flags & 0x10 != 0 { r.u32()? } else { 0 };
    let base = match boxes.iter().find(|b| &b.kind == b"tfdt") {
        Some(tfdt) => {
            let mut r = Reader(tfdt.body);
            let (version, _) = r.version_flags()?;
            r.versioned(version)?
        }
        None => return Err(Mp4Error::Malformed("traf without tfdt")),
    };
    let mut duration = 0u64;
    for trun in boxes.iter().filter(|b| &b.kind == b"trun") {
        let run = parse_trun(trun.body, default_duration, default_size)?;
        duration = duration.saturating_add(run.duration);
        if let (Some(offset), false) = (run.data_offset, explicit_base) {
            let (start, end) = (offset, offset.saturating_add(run.size));
            if start < mdat_body.0 as i64 || end > mdat_body.1 as i64 {
                return Err(Mp4Error::Malformed("trun data outside the mdat"));
            }
        }
    }
    Ok(TrafTiming { track, base, duration })
}

struct TrunSums {
    data_offset: Option<i64>,
    duration: u64,
    size: i64,
}

fn parse_trun(body: &[u8], default_duration: u32, default_size: u32) -> Result<TrunSums, Mp4Error> {
    let mut r = Reader(body);
    let (_, flags) = r.version_flags()?;
    let count = r.u32()?;
    let data_offset = if flags & 0x01 != 0 { Some(i64::from(r.u32()? as i32)) } else { None };
    if flags & 0x04 != 0 {
        r.u32()?;
    }
    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|&&f| flags & f != 0).count() * 4;
    if (count as usize).saturating_mul(per_sample) > r.0.len() {
        return Err(Mp4Error::Malformed("trun sample count past its box"));
    }
    let mut sums = TrunSums { data_offset, duration: 0, size: 0 };
    if per_sample == 0 {
        // All samples take the defaults: no loop over a count read from the file.
        sums.duration = u64::from(count) * u64::from(default_duration);
        sums.size = i64::from(count) * i64::from(default_size);
        return Ok(sums);
    }
    for _ in 0..count {
        let d = if flags & 0x100 != 0 { r.u32()? } else { default_duration };
        let s = if flags & 0x200 != 0 { r.u32()? } else { default_size };
        if flags & 0x400 != 0 {
            r.u32()?;
        }
        if flags & 0x800 != 0 {
            r.u32()?;
        }
        sums.duration += u64::from(d);
        sums.size += i64::from(s);
    }
    Ok(sums)
}

/// Finds the init segment and every complete fragment of a fragmented MP4 file's
/// bytes (or a prefix of them).
///
/// A recording that crashed ends inside a fragment: the scan stops at the first box
/// that is incomplete or malformed (a `moof` without its complete `mdat`, a `trun`
/// pointing outside its `mdat`), so everything reported decodes. Fragment times
/// come from `tfdt` and the `trun` durations of the video track (the audio track
/// in an audio-only file), as [`super::Fmp4Writer`] reports them.
///
/// Errors when the init (`ftyp` … `moov`) itself is incomplete or malformed: such
/// a file holds nothing playable.
pub fn scan(data: &[u8]) -> Result<Scan, Mp4Error> {
    let mut pos = 0usize;
    let tracks = loop {
        let Some(b) = read_box(&data[pos..]).ok().flatten() else {
            return Err(Mp4Error::NoInit);
        };
        pos += b.len;
        if &b.kind == b"moov" {
            break parse_moov(b.body)?;
        }
        if pos > 1 << 20 {
            return Err(Mp4Error::NoInit);
        }
    };
    let mut out = Scan { init_len: pos as u64, fragments: Vec::new(), valid_len: pos as u64 };
    while let Ok(Some(b)) = read_box(&data[pos..]) {
        if &b.kind != b"moof" {
            // free, skip, styp...: complete boxes that hold no samples.
            pos += b.len;
            out.valid_len = pos as u64;
            continue;
        }
        let Ok(Some(mdat)) = read_box(&data[pos + b.len..]) else { break };
        if &mdat.kind != b"mdat" {
            break;
        }
        let mdat_body = ((b.len + mdat.len - mdat.body.len()) as u64, (b.len + mdat.len) as u64);
        let Ok((start_ms, duration_ms)) = parse_moof(b.body, &tracks, mdat_body) else { break };
        let len = b.len + mdat.len;
        out.fragments.push(FragmentInfo { offset: pos as u64, len: len as u64, start_ms, duration_ms });
        pos += len;
        out.valid_len = pos as u64;
    }
    Ok(out)
}

/// Makes `uri` safe inside an M3U8 quoted string and on its own line: `"`, CR
/// and LF are percent-encoded (they cannot appear there).
fn playlist_uri(uri: &str) -> String {
    uri.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// An HLS VOD playlist (RFC 8216, version 7) over one fMP4 file: the init by
/// `EXT-X-MAP` with a byte range and each complete fragment as a byte-range
/// segment of the same `uri` (given by the caller, e.g. with `?token=...`).
pub fn vod_playlist(scan: &Scan, uri: &str) -> String {
    let uri = playlist_uri(uri);
    let longest = scan.fragments.iter().map(|f| f.duration_ms).max().unwrap_or(0);
    let target = longest.div_ceil(1000).max(1);
    let mut out = String::with_capacity(200 + scan.fragments.len() * (60 + uri.len()));
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{}@0\"", scan.init_len);
    for f in &scan.fragments {
        let _ = writeln!(out, "#EXTINF:{}.{:03},", f.duration_ms / 1000, f.duration_ms % 1000);
        let _ = writeln!(out, "#EXT-X-BYTERANGE:{}@{}\n{uri}", f.len, f.offset);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}
