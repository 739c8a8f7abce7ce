//! The WebRTC load generator: one WHIP publisher and N WHEP subscribers of the same
//! stream, all from one thread (non-blocking UDP sockets, epoll, `recvmmsg`), with
//! the engine's sans-IO [`WebRtcClient`] for ICE, DTLS and SRTP.
//!
//! # What runs
//!
//! * **Signalling** (HTTP POST of the offer, 201 + answer) runs on a few helper
//!   threads so that a slow answer never stalls the media loop; they wake the main
//!   loop through a pipe registered in its epoll.
//! * **The publisher** sends synthetic H.264 (packetization-mode 1) at the requested
//!   bitrate, 30 frames/s: a keyframe (STAP-A with SPS and PPS, then the IDR slice as
//!   FU-A) every `gop` and on PLI/FIR, otherwise P slices; frames are split into RTP
//!   payloads of at most 1200 bytes, marker on the last. A keyframe is 3× a P frame and
//!   the sizes are chosen so the GOP averages the bitrate. Plus Opus-like audio, 100 bytes
//!   every 20 ms. Every media payload carries a mark at a fixed offset (after the FU-A
//!   or NAL header for video, at 0 for audio): `"MVWL"`, the send time (CLOCK_REALTIME ns,
//!   written just before the packet is encrypted and sent), a packet id, the payload
//!   length; the rest is filled with the id's low byte.
//! * **Subscribers** each have their own UDP socket (the server tells sessions apart by
//!   source address). One in `sample_every` (by join order) is *sampled*: it decrypts
//!   every packet, checks the mark and the filler, and turns (kernel receive timestamp −
//!   embedded send time) into the latency histogram. The kernel timestamp
//!   (`SO_TIMESTAMPNS`) is taken when the server's `sendto` queues the datagram on the
//!   loopback device, so the latency is the server's (plus two loopback hops), not the
//!   load generator's reading delay. The other subscribers only count SRTP datagrams
//!   (first byte 0x80..=0xBF, not an RTCP type) and their bytes; STUN, DTLS and SRTCP go
//!   through the client for all of them (ICE consent checks every 2 s, SRTCP sender
//!   reports decrypted).
//!
//! # The window
//!
//! After every subscriber has received media or failed, plus `warmup`, a window of
//! `duration` starts. Over it: the watched server's utime + stime (`/proc/PID/stat`), the
//! SRTP datagrams all subscribers received, the packets the publisher sent, latency
//! samples. Server µs per outbound packet = server CPU seconds / datagrams delivered
//! (all of the server's work: the publisher's inbound SRTP, RTCP, STUN, timers, the
//! control plane, divided by the outbound packets).

use crate::hist::{LogHist, quantile_of};
use crate::sys::{self, CpuTimes, Epoll};
use crate::udp::{self, RecvBatch};
use engine::proto::webrtc::RtcpPacket;
use engine::proto::webrtc::client::{ClientEvent, WebRtcClient, pt};
use engine::proto::webrtc::rtp::RtpHeader;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::RawFd;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Configuration

/// Where the control plane's HTTP API is.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub host: String,
    /// Path prefix (no trailing slash), usually empty.
    pub base: String,
}

impl Api {
    /// Parses `http://host:port[/prefix]`; loopback only.
    pub fn parse(url: &str) -> Result<Api, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: expected http://host:port"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            hostport.to_owned()
        } else {
            format!("{hostport}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{hostport}: {e}"))?
            .find(|a| a.is_ipv4())
            .ok_or_else(|| format!("{hostport}: no IPv4 address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{url}: only loopback targets are allowed (got {})", addr.ip()));
        }
        Ok(Api { addr, host: hostport.to_owned(), base: path.to_owned() })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub api: Api,
    pub api_url: String,
    /// Stream name and key; `None`: register a user and create a room first.
    pub room: Option<(String, String)>,
    pub subscribers: usize,
    /// Subscribers started per second (0 = all at once).
    pub ramp: f64,
    pub duration: Duration,
    pub warmup: Duration,
    /// Video bitrate (audio adds ~40 kbit/s).
    pub bitrate_kbps: u32,
    /// Keyframe interval.
    pub gop: Duration,
    /// One subscriber in this many decrypts and verifies everything (1 = all).
    pub sample_every: usize,
    /// A subscriber without media this long after its POST fails.
    pub setup_timeout: Duration,
    /// Processes whose CPU is recorded over the window (the server).
    pub watch_pids: Vec<u32>,
    /// Signalling threads.
    pub signal_threads: usize,
    pub audio: bool,
}

impl Config {
    pub fn new(api_url: &str) -> Result<Config, String> {
        Ok(Config {
            api: Api::parse(api_url)?,
            api_url: api_url.to_owned(),
            room: None,
            subscribers: 100,
            ramp: 100.0,
            duration: Duration::from_secs(15),
            warmup: Duration::from_secs(3),
            bitrate_kbps: 1000,
            gop: Duration::from_secs(2),
            sample_every: 16,
            setup_timeout: Duration::from_secs(15),
            watch_pids: vec![],
            signal_threads: 4,
            audio: true,
        })
    }
}

// ---------------------------------------------------------------------------
// A minimal blocking HTTP/1.1 client (Connection: close)

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request; `headers` are extra request headers.
pub fn http(
    api: &Api,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let mut s = TcpStream::connect_timeout(&api.addr, Duration::from_secs(5)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let mut req = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: microvibe-whep-load\r\nContent-Length: {}\r\n",
        api.base,
        api.host,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::with_capacity(4096);
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let head = crate::scan::parse_response_head(&raw)
        .map_err(|e| e.0)?
        .ok_or_else(|| format!("incomplete response ({} bytes)", raw.len()))?;
    let text = String::from_utf8_lossy(&raw[..head.len]);
    let headers = text
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[head.len..];
    let mut body = Vec::new();
    if head.chunked {
        let mut c = crate::scan::Chunked::new();
        c.feed(rest, |d| {
            body.extend_from_slice(d);
            Ok(())
        })
        .map_err(|e| e.0)?;
    } else {
        body.extend_from_slice(rest);
    }
    Ok(HttpResponse { status: head.status, headers, body })
}

fn json_req(api: &Api, method: &str, path: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value), String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    let r = http(api, method, path, &h, body.to_string().as_bytes())?;
    Ok((r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
}

/// Registers a user, logs in and creates a room; returns (stream name, stream key).
pub fn create_room(api: &Api) -> Result<(String, String), String> {
    let user = format!("whepload{}x{}", std::process::id(), udp::realtime_ns() % 1_000_000);
    let cred = json!({"username": user, "password": "password123"});
    let (st, v) = json_req(api, "POST", "/api/v1/auth/register", None, &cred)?;
    if !(200..300).contains(&st) {
        return Err(format!("register: HTTP {st}: {v}"));
    }
    let (st, v) = json_req(api, "POST", "/api/v1/auth/login", None, &cred)?;
    let token = v["data"]["token"].as_str().ok_or_else(|| format!("login: HTTP {st}: {v}"))?.to_owned();
    let (st, v) = json_req(
        api,
        "POST",
        "/api/v1/live/create",
        Some(&token),
        &json!({"title": "whep-load", "push_protocol": "rtmp"}),
    )?;
    let d = &v["data"];
    match (d["stream_name"].as_str(), d["stream_key"].as_str()) {
        (Some(n), Some(k)) => Ok((n.to_owned(), k.to_owned())),
        _ => Err(format!("live/create: HTTP {st}: {v}")),
    }
}

// ---------------------------------------------------------------------------
// The synthetic source

/// The mark at the start of every media payload (after the FU-A / NAL header).
pub const MAGIC: &[u8; 4] = b"MVWL";
/// magic, send time (i64 ns), packet id (u32), payload length (u16).
pub const MARK_LEN: usize = 4 + 8 + 4 + 2;
/// Largest RTP payload the publisher sends.
pub const MAX_PAYLOAD: usize = 1200;
const SPS: &[u8] = &[
    0x67, 0x42, 0xe0, 0x1f, 0x8d, 0x68, 0x05, 0x00, 0x5b, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00,
    0x3c, 0x8f, 0x14, 0x2a, 0xa0,
];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
const FRAME_NS: u64 = 1_000_000_000 / 30;
const AUDIO_EVERY: Duration = Duration::from_millis(20);
const AUDIO_PAYLOAD: usize = 100;

/// One plain RTP packet to send.
pub struct SrcPacket {
    pub video: bool,
    pub data: Vec<u8>,
    /// Where the send time goes (patched right before sending).
    pub time_at: Option<usize>,
}

/// Paces synthetic H.264 and Opus-like packets.
pub struct Source {
    t0: Instant,
    frame: u64,
    audio_n: u64,
    p_bytes: usize,
    key_bytes: usize,
    gop_frames: u64,
    force_key: bool,
    audio: bool,
    vseq: u16,
    aseq: u16,
    vts0: u32,
    ats0: u32,
    pub vpt: u8,
    pub apt: u8,
    pub vssrc: u32,
    pub assrc: u32,
    pub next_id: u32,
    pub keyframes: u64,
}

impl Source {
    pub fn new(
        t0: Instant,
        bitrate_kbps: u32,
        gop: Duration,
        audio: bool,
        ssrcs: [u32; 3],
        vpt: u8,
        apt: u8,
    ) -> Source {
        let avg = (bitrate_kbps as usize * 1000 / 8 / 30).max(64);
        let gop_frames = ((gop.as_secs_f64() * 30.0).round() as u64).max(1);
        // key = 3 p; (gop - 1) p + 3 p = gop * avg.
        let p = (avg as u64 * gop_frames / (gop_frames + 2)) as usize;
        Source {
            t0,
            frame: 0,
            audio_n: 0,
            p_bytes: p.max(MARK_LEN + 2),
            key_bytes: (3 * p).max(MARK_LEN + 2),
            gop_frames,
            force_key: false,
            audio,
            vseq: 1000,
            aseq: 5000,
            vts0: 90_000,
            ats0: 48_000,
            vpt,
            apt,
            vssrc: ssrcs[1],
            assrc: ssrcs[0],
            next_id: 1,
            keyframes: 0,
        }
    }

    /// Sends a keyframe with the next frame (PLI/FIR).
    pub fn request_keyframe(&mut self) {
        self.force_key = true;
    }

    fn video_due(&self) -> Instant {
        self.t0 + Duration::from_nanos(self.frame * FRAME_NS)
    }

    fn audio_due(&self) -> Instant {
        self.t0 + AUDIO_EVERY * self.audio_n as u32
    }

    pub fn next_due(&self) -> Instant {
        if self.audio { self.video_due().min(self.audio_due()) } else { self.video_due() }
    }

    fn marked(&mut self, prefix: &[u8], len: usize) -> (Vec<u8>, Option<usize>) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let fill = id as u8;
        let mut p = Vec::with_capacity(len);
        p.extend_from_slice(prefix);
        if len >= prefix.len() + MARK_LEN {
            p.extend_from_slice(MAGIC);
            p.extend_from_slice(&[0; 8]);
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        let at = (p.len() > prefix.len()).then_some(prefix.len() + 4);
        p.resize(len, fill);
        (p, at)
    }

    fn push_rtp(
        &mut self,
        video: bool,
        marker: bool,
        ts: u32,
        payload: &[u8],
        time_at: Option<usize>,
        out: &mut Vec<SrcPacket>,
    ) {
        let (pt, seq, ssrc, mid) = if video {
            self.vseq = self.vseq.wrapping_add(1);
            (self.vpt, self.vseq, self.vssrc, b"1")
        } else {
            self.aseq = self.aseq.wrapping_add(1);
            (self.apt, self.aseq, self.assrc, b"0")
        };
        let mut data = Vec::with_capacity(payload.len() + 20);
        RtpHeader { payload_type: pt, marker, sequence_number: seq, timestamp: ts, ssrc, extension: Some((4, mid)) }
            .write(payload, &mut data);
        let hl = data.len() - payload.len();
        out.push(SrcPacket { video, data, time_at: time_at.map(|a| hl + a) });
    }

    fn video_frame(&mut self, out: &mut Vec<SrcPacket>) {
        let key = self.frame.is_multiple_of(self.gop_frames) || self.force_key;
        self.force_key = false;
        let ts = self.vts0.wrapping_add((self.frame * 3000) as u32);
        let size = if key { self.key_bytes } else { self.p_bytes };
        let nal = if key { 0x65u8 } else { 0x41u8 };
        if key {
            self.keyframes += 1;
            let mut stap = vec![0x78u8];
            for ps in [SPS, PPS] {
                stap.extend_from_slice(&(ps.len() as u16).to_be_bytes());
                stap.extend_from_slice(ps);
            }
            self.push_rtp(true, false, ts, &stap, None, out);
        }
        if size <= MAX_PAYLOAD {
            let (p, at) = self.marked(&[nal], size);
            self.push_rtp(true, true, ts, &p, at, out);
        } else {
            // FU-A (RFC 6184 §5.8): the NAL header's F/NRI in the indicator, its type in
            // the FU header; the NAL body is split into pieces of MAX_PAYLOAD - 2.
            let body = size - 1;
            let piece = MAX_PAYLOAD - 2;
            let n = body.div_ceil(piece);
            for i in 0..n {
                let len = if i + 1 == n { body - piece * (n - 1) } else { piece };
                let fu = [
                    (nal & 0xe0) | 28,
                    (if i == 0 { 0x80 } else { 0 }) | (if i + 1 == n { 0x40 } else { 0 }) | (nal & 0x1f),
                ];
                let (p, at) = self.marked(&fu, 2 + len);
                self.push_rtp(true, i + 1 == n, ts, &p, at, out);
            }
        }
        self.frame += 1;
    }

    /// Appends every packet due at `now`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<SrcPacket>) {
        loop {
            let v = self.video_due();
            let a = if self.audio { self.audio_due() } else { v + Duration::from_secs(1) };
            if v.min(a) > now {
                return;
            }
            if a < v {
                let ts = self.ats0.wrapping_add((self.audio_n * 960) as u32);
                let (p, at) = self.marked(&[], AUDIO_PAYLOAD);
                self.push_rtp(false, false, ts, &p, at, out);
                self.audio_n += 1;
            } else {
                self.video_frame(out);
            }
        }
    }
}

/// A payload whose mark or filler is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadMark;

/// Checks a received payload's mark; `Some((send_ns, id))` if it is intact, `None`
/// for payloads without a mark (SPS/PPS aggregates), `Err` for a damaged one.
pub fn check_mark(video: bool, payload: &[u8]) -> Result<Option<(i64, u32)>, BadMark> {
    let off = if video {
        match payload.first().map(|b| b & 0x1f) {
            Some(28) => 2,
            Some(24) => return Ok(None),
            Some(1..=23) => 1,
            _ => return Err(BadMark),
        }
    } else {
        0
    };
    let Some(m) = payload.get(off..off + MARK_LEN) else {
        return if payload.len() >= off { Ok(None) } else { Err(BadMark) };
    };
    if &m[..4] != MAGIC {
        return Err(BadMark);
    }
    let t = i64::from_be_bytes(m[4..12].try_into().unwrap_or_default());
    let id = u32::from_be_bytes(m[12..16].try_into().unwrap_or_default());
    let len = u16::from_be_bytes([m[16], m[17]]) as usize;
    if len != payload.len() {
        return Err(BadMark);
    }
    if payload.len() > off + MARK_LEN && payload[payload.len() - 1] != id as u8 {
        return Err(BadMark);
    }
    Ok(Some((t, id)))
}

// ---------------------------------------------------------------------------
// Signalling helpers

struct Job {
    idx: usize,
    path: String,
    key: Option<String>,
    offer: String,
}

struct JobResult {
    idx: usize,
    answer: Result<String, String>,
}

struct Signalling {
    jobs: Option<Sender<Job>>,
    results: Receiver<JobResult>,
    wake_r: RawFd,
    wake_w: RawFd,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Signalling {
    fn start(api: &Api, n: usize) -> Result<Signalling, String> {
        let mut fds = [0; 2];
        // SAFETY: valid out array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(format!("pipe: {}", std::io::Error::last_os_error()));
        }
        let (jobs_tx, jobs_rx) = channel::<Job>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (res_tx, res_rx) = channel::<JobResult>();
        let mut threads = vec![];
        for i in 0..n.max(1) {
            let (rx, tx, api, wfd) = (jobs_rx.clone(), res_tx.clone(), api.clone(), fds[1]);
            let t = std::thread::Builder::new()
                .name(format!("whep-signal-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let auth = job.key.as_ref().map(|k| format!("Bearer {k}"));
                        let mut h = vec![("Content-Type", "application/sdp")];
                        if let Some(a) = &auth {
                            h.push(("Authorization", a.as_str()));
                        }
                        let answer = match http(&api, "POST", &job.path, &h, job.offer.as_bytes()) {
                            Ok(r) if r.status == 201 => Ok(String::from_utf8_lossy(&r.body).into_owned()),
                            Ok(r) => Err(format!("HTTP {}", r.status)),
                            Err(e) => Err(format!("post: {e}")),
                        };
                        if tx.send(JobResult { idx: job.idx, answer }).is_err() {
                            return;
                        }
                        // SAFETY: writing one byte to our pipe (EAGAIN when full is fine).
                        unsafe {
                            libc::write(wfd, b"x".as_ptr() as *const libc::c_void, 1);
                        }
                    }
                })
                .map_err(|e| format!("spawn: {e}"))?;
            threads.push(t);
        }
        Ok(Signalling { jobs: Some(jobs_tx), results: res_rx, wake_r: fds[0], wake_w: fds[1], threads })
    }

    fn post(&self, job: Job) {
        if let Some(j) = &self.jobs {
            let _ = j.send(job);
        }
    }

    fn drain_wake(&self) {
        let mut b = [0u8; 256];
        while sys::read(self.wake_r, &mut b).is_ok_and(|n| n > 0) {}
    }
}

impl Drop for Signalling {
    fn drop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        sys::close(self.wake_r);
        sys::close(self.wake_w);
    }
}

// ---------------------------------------------------------------------------
// Peers and statistics

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Posting,
    Connecting,
    Media,
    Failed,
}

struct Peer {
    client: WebRtcClient,
    fd: RawFd,
    server: Option<SocketAddr>,
    publisher: bool,
    sampled: bool,
    st: St,
    t_post: Instant,
    connected: bool,
    got_media: bool,
    rtp: u64,
    rtp_win0: u64,
    /// Sampled: RTP datagrams that decrypted and parsed.
    decrypted: u64,
    /// Sampled: latency samples in the window (µs).
    lat: Option<Box<LogHist>>,
}

/// Counters over a span of time.
struct Span {
    rtp: u64,
    bytes: u64,
    rtcp: u64,
    other: u64,
    lat: LogHist,
    verified: u64,
    bad: u64,
    sampled_rtp: u64,
    sampled_ok: u64,
    pub_video: u64,
    pub_audio: u64,
    plis: u64,
    nacks: u64,
}

impl Span {
    fn new() -> Span {
        Span {
            rtp: 0,
            bytes: 0,
            rtcp: 0,
            other: 0,
            lat: LogHist::new(),
            verified: 0,
            bad: 0,
            sampled_rtp: 0,
            sampled_ok: 0,
            pub_video: 0,
            pub_audio: 0,
            plis: 0,
            nacks: 0,
        }
    }
    fn add(&mut self, o: &Span) {
        self.rtp += o.rtp;
        self.bytes += o.bytes;
        self.rtcp += o.rtcp;
        self.other += o.other;
        self.lat.merge(&o.lat);
        self.verified += o.verified;
        self.bad += o.bad;
        self.sampled_rtp += o.sampled_rtp;
        self.sampled_ok += o.sampled_ok;
        self.pub_video += o.pub_video;
        self.pub_audio += o.pub_audio;
        self.plis += o.plis;
        self.nacks += o.nacks;
    }
    fn reset(&mut self) {
        self.lat.clear();
        self.rtp = 0;
        self.bytes = 0;
        self.rtcp = 0;
        self.other = 0;
        self.verified = 0;
        self.bad = 0;
        self.sampled_rtp = 0;
        self.sampled_ok = 0;
        self.pub_video = 0;
        self.pub_audio = 0;
        self.plis = 0;
        self.nacks = 0;
    }
}

/// One per-second report.
#[derive(Debug, Clone)]
pub struct Tick {
    pub json: Value,
    pub line: String,
}

/// The final report.
#[derive(Debug, Clone)]
pub struct Report {
    pub json: Value,
    pub table: String,
}

struct Watch {
    pid: u32,
    cpu0: Option<CpuTimes>,
    sched0: Option<(u64, u64)>,
    rss0: Option<u64>,
    last: Option<CpuTimes>,
}

/// Per-CPU jiffies from /proc/stat: (name, [user, nice, system, idle, iowait, irq, softirq, steal]).
fn proc_stat_cpus() -> Vec<(String, [u64; 8])> {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else { return vec![] };
    s.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(|b| b.is_ascii_digit()))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_owned();
            let mut v = [0u64; 8];
            for x in v.iter_mut() {
                *x = f.next()?.parse().ok()?;
            }
            Some((name, v))
        })
        .collect()
}

/// Each CPU's use over a span (% of the span): busy (user+nice+system+irq+softirq),
/// softirq, iowait and steal (the hypervisor ran something else).
fn cpu_use(a: &[(String, [u64; 8])], b: &[(String, [u64; 8])]) -> Value {
    let v: Vec<Value> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.0 == y.0)
        .map(|((name, x), (_, y))| {
            let d: Vec<f64> = (0..8).map(|i| y[i].saturating_sub(x[i]) as f64).collect();
            let all: f64 = d.iter().sum::<f64>().max(1.0);
            let pct = |v: f64| (1000.0 * v / all).round() / 10.0;
            json!({
                "cpu": name,
                "busy_pct": pct(d[0] + d[1] + d[2] + d[5] + d[6]),
                "softirq_pct": pct(d[6]),
                "iowait_pct": pct(d[4]),
                "steal_pct": pct(d[7]),
            })
        })
        .collect();
    Value::from(v)
}

const PUB: usize = 0;
const WAKE_TOKEN: u64 = u64::MAX;
const TIMER_SCAN: Duration = Duration::from_millis(5);

fn fail(p: &mut Peer, ep: &Epoll, why: String, errors: &mut BTreeMap<String, u64>) {
    if p.st == St::Failed {
        return;
    }
    if p.fd >= 0 {
        let _ = ep.delete(p.fd);
        sys::close(p.fd);
        p.fd = -1;
    }
    p.st = St::Failed;
    *errors.entry(why).or_default() += 1;
}

fn flush(p: &mut Peer) {
    while let Some((_, b)) = p.client.poll_transmit() {
        if p.fd >= 0 {
            let _ = udp::send(p.fd, &b);
        }
    }
}

/// Runs the load; calls `on_tick` every second. Returns the final report.
pub fn run(cfg: &Config, mut on_tick: impl FnMut(&Tick)) -> Result<Report, String> {
    let nofile = sys::raise_nofile();
    if (nofile as usize) < cfg.subscribers + 64 {
        return Err(format!("RLIMIT_NOFILE is {nofile}: too low for {} subscribers", cfg.subscribers));
    }
    let (stream, key) = match &cfg.room {
        Some(r) => r.clone(),
        None => create_room(&cfg.api)?,
    };
    let mut ep = Epoll::new(1024).map_err(|e| format!("epoll: {e}"))?;
    let sig = Signalling::start(&cfg.api, cfg.signal_threads)?;
    ep.add(sig.wake_r, sys::IN, WAKE_TOKEN).map_err(|e| format!("epoll: {e}"))?;
    let mut batch = RecvBatch::new(64);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut join_us: Vec<u64> = Vec::with_capacity(cfg.subscribers);
    let mut peers: Vec<Peer> = Vec::with_capacity(cfg.subscribers + 1);
    let lo: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "addr")?;

    let start = Instant::now();
    let new_peer = |publisher: bool, sampled: bool, now: Instant| -> Result<Peer, String> {
        Ok(Peer {
            client: WebRtcClient::new(&mut rand::rng()).map_err(|e| format!("client: {e}"))?,
            fd: -1,
            server: None,
            publisher,
            sampled,
            st: St::Posting,
            t_post: now,
            connected: false,
            got_media: false,
            rtp: 0,
            rtp_win0: 0,
            decrypted: 0,
            lat: sampled.then(|| Box::new(LogHist::new())),
        })
    };
    // The publisher first.
    {
        let p = new_peer(true, false, start)?;
        sig.post(Job {
            idx: PUB,
            path: format!("/whip/{stream}"),
            key: Some(key.clone()),
            offer: p.client.offer(true),
        });
        peers.push(p);
    }
    let mut source: Option<Source> = None;
    let mut out_pkts: Vec<SrcPacket> = Vec::with_capacity(32);
    let mut subs_start: Option<Instant> = None;
    let ramp_gap = if cfg.ramp > 0.0 { Duration::from_secs_f64(1.0 / cfg.ramp) } else { Duration::ZERO };
    let mut started = 0usize;
    let mut answered = 0u64;
    let mut connected = 0u64;
    let mut receiving = 0u64;
    let mut failed = 0u64;

    let mut tick = Span::new();
    let mut win = Span::new();
    let mut total = Span::new();
    let mut watches: Vec<Watch> = cfg
        .watch_pids
        .iter()
        .map(|&pid| Watch { pid, cpu0: None, sched0: None, rss0: None, last: sys::proc_cpu(pid) })
        .collect();
    let mut watch_results: Vec<Value> = vec![];
    let mut next_tick = start + Duration::from_secs(1);
    let mut tick_t0 = start;
    let mut cpu_last_tick = sys::self_cpu();
    let mut next_scan = start;
    let mut win_start: Option<Instant> = None;
    let mut win_end: Option<Instant> = None;
    let mut in_window = false;
    let mut win_t0 = start;
    let mut cpu_win0 = sys::self_cpu();
    let mut stat_win0 = vec![];
    let mut machine = Value::Null;
    let mut win_cpu = CpuTimes::default();
    let mut win_secs = 0.0;
    let mut done = false;
    let mut pub_vpt = pt::H264;
    let mut all_settled = false;

    while !done {
        let now = Instant::now();
        // The publisher's media.
        if let Some(src) = source.as_mut().filter(|s| s.next_due() <= now) {
            out_pkts.clear();
            src.poll(now, &mut out_pkts);
            let p = &mut peers[PUB];
            for pk in out_pkts.iter_mut() {
                if let Some(at) = pk.time_at {
                    pk.data[at..at + 8].copy_from_slice(&udp::realtime_ns().to_be_bytes());
                }
                if pk.video {
                    tick.pub_video += 1;
                } else {
                    tick.pub_audio += 1;
                }
                if p.client.send_rtp(&pk.data).is_ok() {
                    flush(p);
                }
            }
        }
        // Ramp: post the subscribers that are due.
        if let Some(s0) = subs_start {
            while started < cfg.subscribers && s0 + ramp_gap * started as u32 <= now {
                let sampled = started.is_multiple_of(cfg.sample_every.max(1));
                let p = new_peer(false, sampled, Instant::now())?;
                let offer = p.client.offer(false);
                peers.push(p);
                started += 1;
                sig.post(Job { idx: peers.len() - 1, path: format!("/whep/{stream}"), key: None, offer });
                if ramp_gap.is_zero() && started.is_multiple_of(64) {
                    break;
                }
            }
        }
        // Timers (ICE checks and consent, DTLS retransmits) and setup timeouts.
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + TIMER_SCAN;
            all_settled = started == cfg.subscribers
                && subs_start.is_some()
                && peers[1..].iter().all(|p| p.got_media || p.st == St::Failed);
            for p in peers.iter_mut() {
                match p.st {
                    St::Failed => continue,
                    St::Posting | St::Connecting if now.duration_since(p.t_post) > cfg.setup_timeout => {
                        let why = if p.st == St::Posting {
                            "timeout: no answer"
                        } else if p.connected {
                            "timeout: no media"
                        } else {
                            "timeout: no DTLS"
                        };
                        if p.publisher {
                            return Err(format!("publisher: {why}"));
                        }
                        fail(p, &ep, why.into(), &mut errors);
                        failed += 1;
                        continue;
                    }
                    St::Posting => continue,
                    _ => {}
                }
                if p.client.poll_timeout().is_some_and(|t| t <= now) {
                    if let Err(e) = p.client.handle_timeout(now) {
                        if p.publisher {
                            return Err(format!("publisher: {e}"));
                        }
                        fail(p, &ep, format!("timer: {e}"), &mut errors);
                        failed += 1;
                        continue;
                    }
                    flush(p);
                }
            }
        }

        // Window edges and the per-second report.
        let now = Instant::now();
        if win_start.is_none() && all_settled {
            {
                win_start = Some(now + cfg.warmup);
                win_end = Some(now + cfg.warmup + cfg.duration);
            }
        }
        if now >= next_tick || win_start.is_some_and(|w| !in_window && now >= w) || win_end.is_some_and(|w| now >= w) {
            let cpu = sys::self_cpu();
            let server_cpu = watches.first_mut().and_then(|w| {
                let c = sys::proc_cpu(w.pid)?;
                let d = w.last.map(|l| c.since(&l));
                w.last = Some(c);
                d
            });
            let secs = now.duration_since(tick_t0).as_secs_f64().max(1e-9);
            if now >= next_tick {
                let t = make_tick(
                    now.duration_since(start),
                    secs,
                    &tick,
                    cpu.since(&cpu_last_tick),
                    server_cpu,
                    in_window,
                    [started as u64, connected, receiving, failed],
                );
                on_tick(&t);
                next_tick += Duration::from_secs(1);
                if next_tick < now {
                    next_tick = now + Duration::from_secs(1);
                }
            }
            if in_window {
                win.add(&tick);
            }
            total.add(&tick);
            tick.reset();
            tick_t0 = now;
            cpu_last_tick = cpu;
            if !in_window && win_start.is_some_and(|w| now >= w) {
                in_window = true;
                win_t0 = now;
                cpu_win0 = sys::self_cpu();
                stat_win0 = proc_stat_cpus();
                for w in &mut watches {
                    w.cpu0 = sys::proc_cpu(w.pid);
                    w.sched0 = sys::proc_schedstat(w.pid);
                    w.rss0 = sys::proc_rss_kb(w.pid);
                }
                for p in peers.iter_mut() {
                    p.rtp_win0 = p.rtp;
                }
            }
            if in_window && win_end.is_some_and(|w| now >= w) {
                win_cpu = sys::self_cpu().since(&cpu_win0);
                machine = cpu_use(&stat_win0, &proc_stat_cpus());
                win_secs = now.duration_since(win_t0).as_secs_f64().max(1e-9);
                for w in &watches {
                    let c1 = sys::proc_cpu(w.pid);
                    let wait_pct = match (w.sched0, sys::proc_schedstat(w.pid)) {
                        (Some(a), Some(b)) => Some(100.0 * (b.1.saturating_sub(a.1)) as f64 / 1e9 / win_secs),
                        _ => None,
                    };
                    let v = match (w.cpu0, c1) {
                        (Some(a), Some(b)) => {
                            let d = b.since(&a);
                            let pk = win.rtp.max(1) as f64;
                            json!({
                                "pid": w.pid,
                                "user_s": d.user.as_secs_f64(),
                                "sys_s": d.sys.as_secs_f64(),
                                "cpu_pct": 100.0 * d.total().as_secs_f64() / win_secs,
                                "user_pct": 100.0 * d.user.as_secs_f64() / win_secs,
                                "sys_pct": 100.0 * d.sys.as_secs_f64() / win_secs,
                                "us_per_pkt": d.total().as_secs_f64() * 1e6 / pk,
                                "user_us_per_pkt": d.user.as_secs_f64() * 1e6 / pk,
                                "sys_us_per_pkt": d.sys.as_secs_f64() * 1e6 / pk,
                                "rss_kb_start": w.rss0,
                                "rss_kb_end": sys::proc_rss_kb(w.pid),
                                "runqueue_wait_pct": wait_pct,
                            })
                        }
                        _ => json!({"pid": w.pid, "error": "process not found"}),
                    };
                    watch_results.push(v);
                }
                done = true;
                continue;
            }
        }

        // Wait for datagrams (or answers) until the next timed event.
        let now = Instant::now();
        let mut next = next_tick.min(next_scan);
        if let Some(s) = &source {
            next = next.min(s.next_due());
        }
        if let (Some(s0), true) = (subs_start, started < cfg.subscribers) {
            next = next.min(s0 + ramp_gap * started as u32);
        }
        if let Some(w) = win_start.filter(|_| !in_window) {
            next = next.min(w);
        }
        if let Some(w) = win_end {
            next = next.min(w);
        }
        let timeout = next.saturating_duration_since(now);
        let events: Vec<u64> =
            ep.wait(timeout).map_err(|e| format!("epoll_wait: {e}"))?.iter().map(|e| e.u64).collect();
        for token in events {
            if token == WAKE_TOKEN {
                sig.drain_wake();
                while let Ok(r) = sig.results.try_recv() {
                    let now = Instant::now();
                    let p = &mut peers[r.idx];
                    if p.st != St::Posting {
                        continue;
                    }
                    let setup = match r.answer {
                        Ok(sdp) => {
                            p.client.accept_answer(now, &sdp).map_err(|e| format!("answer: {e}")).and_then(|a| {
                                if p.publisher {
                                    let v = a.sections.iter().find(|s| s.media == "video");
                                    pub_vpt = v.and_then(|s| s.payload_types.first().copied()).unwrap_or(pt::H264);
                                }
                                let server = *a.candidates.first().ok_or("answer: no candidate")?;
                                let fd = udp::bind(&lo, Some(1 << 20)).map_err(|e| format!("bind: {e}"))?;
                                p.fd = fd;
                                udp::connect(fd, &server).map_err(|e| format!("connect: {e}"))?;
                                if p.sampled {
                                    udp::enable_rx_timestamps(fd).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
                                }
                                ep.add(fd, sys::IN, r.idx as u64).map_err(|e| format!("epoll: {e}"))?;
                                p.server = Some(server);
                                Ok(())
                            })
                        }
                        Err(e) => Err(e),
                    };
                    match setup {
                        Ok(()) => {
                            p.st = St::Connecting;
                            if !p.publisher {
                                answered += 1;
                            }
                            let _ = p.client.handle_timeout(now);
                            flush(p);
                        }
                        Err(e) => {
                            if p.publisher {
                                return Err(format!("WHIP publisher: {e}"));
                            }
                            fail(p, &ep, e, &mut errors);
                            failed += 1;
                        }
                    }
                }
                continue;
            }
            let idx = token as usize;
            loop {
                let p = &mut peers[idx];
                if p.fd < 0 {
                    break;
                }
                let n = match batch.recv(p.fd) {
                    Ok(n) => n,
                    Err(e) => {
                        if p.publisher {
                            return Err(format!("publisher recv: {e}"));
                        }
                        fail(p, &ep, format!("recv: {}", sys::errno_name(&e)), &mut errors);
                        failed += 1;
                        break;
                    }
                };
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let Some(server) = p.server else { break };
                for i in 0..n {
                    let d = batch.data(i);
                    let is_rtp = d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1]);
                    if is_rtp && !p.publisher {
                        p.rtp += 1;
                        tick.rtp += 1;
                        tick.bytes += d.len() as u64;
                        if !p.got_media {
                            p.got_media = true;
                            p.st = St::Media;
                            receiving += 1;
                            join_us.push(now.duration_since(p.t_post).as_micros() as u64);
                        }
                        if !p.sampled {
                            continue;
                        }
                        tick.sampled_rtp += 1;
                    } else if is_rtp {
                        tick.other += 1;
                    } else if (128..=191).contains(&d[0]) {
                        tick.rtcp += 1;
                    } else {
                        tick.other += 1;
                    }
                    let rx_ns = batch.rx_time_ns(i);
                    if let Err(e) = p.client.handle_input(now, server, d)
                        && !p.connected
                    {
                        if p.publisher {
                            return Err(format!("publisher: {e}"));
                        }
                        fail(p, &ep, format!("input: {e}"), &mut errors);
                        failed += 1;
                        break;
                    }
                    while let Some(ev) = p.client.poll_event() {
                        match ev {
                            ClientEvent::Connected(_) => {
                                p.connected = true;
                                if p.publisher {
                                    p.st = St::Media;
                                    source = Some(Source::new(
                                        now,
                                        cfg.bitrate_kbps,
                                        cfg.gop,
                                        cfg.audio,
                                        p.client.ssrcs,
                                        pub_vpt,
                                        pt::OPUS,
                                    ));
                                    // Subscribers once the stream has media flowing.
                                    subs_start = Some(now + Duration::from_millis(500));
                                } else {
                                    connected += 1;
                                }
                            }
                            ClientEvent::Rtp(pkt) => {
                                p.decrypted += 1;
                                tick.sampled_ok += 1;
                                let video = pkt.payload_type != pt::OPUS;
                                match check_mark(video, &pkt.payload()) {
                                    Ok(Some((sent, _))) => {
                                        tick.verified += 1;
                                        if let Some(rx) = rx_ns {
                                            let us = ((rx - sent) / 1000).max(0) as u64;
                                            tick.lat.add(us);
                                            if let (true, Some(h)) = (in_window, p.lat.as_mut()) {
                                                h.add(us);
                                            }
                                        }
                                    }
                                    Ok(None) => tick.verified += 1,
                                    Err(BadMark) => tick.bad += 1,
                                }
                            }
                            ClientEvent::Rtcp(r) => match r {
                                RtcpPacket::Pli { .. } | RtcpPacket::Fir { .. } if p.publisher => {
                                    tick.plis += 1;
                                    if let Some(s) = source.as_mut() {
                                        s.request_keyframe();
                                    }
                                }
                                RtcpPacket::Nack { .. } if p.publisher => tick.nacks += 1,
                                _ => {}
                            },
                            ClientEvent::Closed => {
                                if p.publisher {
                                    return Err("the server closed the publisher's session".into());
                                }
                                fail(p, &ep, "closed by server".into(), &mut errors);
                                failed += 1;
                            }
                        }
                    }
                    if p.st == St::Failed {
                        break;
                    }
                }
                flush(p);
                if n < 64 {
                    break;
                }
            }
        }
    }

    // Close everything: DTLS close_notify to the server, then the sockets.
    let now = Instant::now();
    let receiving_at_end = peers[1..].iter().filter(|p| p.st == St::Media).count();
    let per_sub: Vec<u64> = peers[1..].iter().filter(|p| p.st == St::Media).map(|p| p.rtp - p.rtp_win0).collect();
    let sampled = peers[1..].iter().filter(|p| p.sampled && p.st == St::Media).count();
    // Latency by join order (the server's fan-out order): the first subscriber's is
    // the server's pipeline delay, later ones add their place in the fan-out.
    let by_position: Vec<Value> = peers[1..]
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let h = p.lat.as_ref().filter(|h| h.count() > 0)?;
            Some(json!({"join_index": i, "p50": h.quantile(0.5), "p99": h.quantile(0.99), "max": h.max(), "samples": h.count()}))
        })
        .collect();
    for p in peers.iter_mut() {
        if p.fd >= 0 {
            p.client.close(now);
            flush(p);
            sys::close(p.fd);
            p.fd = -1;
        }
    }
    drop(sig);
    let src = source.as_ref();
    let run_secs = start.elapsed().as_secs_f64();
    Ok(report(
        cfg,
        &stream,
        win_secs,
        &win,
        &total,
        win_cpu,
        run_secs,
        &mut join_us,
        &errors,
        watch_results,
        [started as u64, answered, connected, receiving, failed],
        receiving_at_end,
        sampled,
        &per_sub,
        src.map_or(0, |s| s.keyframes),
        by_position,
        machine,
    ))
}

fn make_tick(
    t: Duration,
    secs: f64,
    s: &Span,
    cpu: CpuTimes,
    server: Option<CpuTimes>,
    in_window: bool,
    c: [u64; 4],
) -> Tick {
    let pps = s.rtp as f64 / secs;
    let mbps = s.bytes as f64 * 8.0 / secs / 1e6;
    let pct = 100.0 * cpu.total().as_secs_f64() / secs;
    let spct = server.map(|d| 100.0 * d.total().as_secs_f64() / secs);
    let us = server.filter(|_| s.rtp > 0).map(|d| d.total().as_secs_f64() * 1e6 / s.rtp as f64);
    let q = |x: f64| s.lat.quantile(x);
    let json = json!({
        "type": "tick",
        "t": (t.as_secs_f64() * 10.0).round() / 10.0,
        "in_window": in_window,
        "started": c[0], "connected": c[1], "receiving": c[2], "failed": c[3],
        "pkts_per_s": pps.round(),
        "mbps": (mbps * 10.0).round() / 10.0,
        "lat_us_p50": q(0.5), "lat_us_p99": q(0.99), "lat_us_max": s.lat.max(),
        "published": s.pub_video + s.pub_audio,
        "bad": s.bad,
        "server_cpu_pct": spct,
        "server_us_per_pkt": us,
        "loadgen_cpu_pct": (pct * 10.0).round() / 10.0,
    });
    let f = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    let line = format!(
        "{:>6.1}s{} subs {:>4} up {:>4} media {:>4} failed {:>3} | {:>7.0} pkt/s {:>6.1} Mbit/s | lat us p50 {:>5} p99 {:>6} max {:>6} | server {:>5} ({} us/pkt) | loadgen {:>5.1}%",
        t.as_secs_f64(),
        if in_window { "*" } else { " " },
        c[0],
        c[1],
        c[2],
        c[3],
        pps,
        mbps,
        f(q(0.5)),
        f(q(0.99)),
        f(s.lat.max()),
        spct.map_or("-".into(), |v| format!("{v:.1}%")),
        us.map_or("-".into(), |v| format!("{v:.2}")),
        pct,
    );
    Tick { json, line }
}

#[allow(clippy::too_many_arguments)]
fn report(
    cfg: &Config,
    stream: &str,
    wsecs: f64,
    win: &Span,
    total: &Span,
    win_cpu: CpuTimes,
    run_secs: f64,
    join_us: &mut [u64],
    errors: &BTreeMap<String, u64>,
    watch: Vec<Value>,
    c: [u64; 5],
    receiving_at_end: usize,
    sampled: usize,
    per_sub: &[u64],
    keyframes: u64,
    by_position: Vec<Value>,
    machine: Value,
) -> Report {
    let q = |h: &LogHist, x: f64| h.quantile(x).map_or(Value::Null, Value::from);
    let jq = |x: f64| {
        quantile_of(&mut join_us.to_vec(), x).map_or(Value::Null, |v| json!((v as f64 / 100.0).round() / 10.0))
    };
    let published = win.pub_video + win.pub_audio;
    let expected = published * receiving_at_end as u64;
    let delivery = if expected > 0 { win.rtp as f64 / expected as f64 } else { 0.0 };
    let per_sub_min = per_sub.iter().min().copied();
    let per_sub_max = per_sub.iter().max().copied();
    let first = by_position.first().cloned().unwrap_or(Value::Null);
    let last = by_position.last().cloned().unwrap_or(Value::Null);
    let window = json!({
        "seconds": wsecs,
        "published_pkts": published,
        "published_video_pkts": win.pub_video,
        "published_audio_pkts": win.pub_audio,
        "published_pkts_per_s": published as f64 / wsecs,
        "keyframe_requests": win.plis,
        "nacks_to_publisher": win.nacks,
        "rtp_pkts": win.rtp,
        "rtp_bytes": win.bytes,
        "pkts_per_s": win.rtp as f64 / wsecs,
        "mbps": win.bytes as f64 * 8.0 / wsecs / 1e6,
        "expected_pkts": expected,
        "delivery_ratio": delivery,
        "per_subscriber_pkts": {"min": per_sub_min, "max": per_sub_max},
        "rtcp_pkts": win.rtcp,
        "sampled_rtp_pkts": win.sampled_rtp,
        "sampled_decrypted": win.sampled_ok,
        "verified": win.verified,
        "bad_payloads": win.bad,
        "latency_us": {
            "p50": q(&win.lat, 0.5), "p90": q(&win.lat, 0.9), "p99": q(&win.lat, 0.99),
            "p999": q(&win.lat, 0.999), "max": win.lat.max(), "samples": win.lat.count(),
            "first_subscriber": first,
            "last_sampled_subscriber": last,
            "by_join_order": by_position,
        },
        "loadgen_cpu": {
            "user_s": win_cpu.user.as_secs_f64(),
            "sys_s": win_cpu.sys.as_secs_f64(),
            "pct": 100.0 * win_cpu.total().as_secs_f64() / wsecs,
        },
        "watch": watch,
        "machine_cpus": machine,
    });
    let json = json!({
        "type": "summary",
        "api": cfg.api_url,
        "stream": stream,
        "subscribers": cfg.subscribers,
        "sample_every": cfg.sample_every,
        "sampled_subscribers": sampled,
        "ramp_per_s": cfg.ramp,
        "bitrate_kbps": cfg.bitrate_kbps,
        "gop_s": cfg.gop.as_secs_f64(),
        "audio": cfg.audio,
        "started": c[0],
        "answered": c[1],
        "connected": c[2],
        "receiving": c[3],
        "failed": c[4],
        "receiving_at_end": receiving_at_end,
        "errors": errors,
        "join_ms": {"p50": jq(0.5), "p99": jq(0.99), "max": jq(1.0), "samples": join_us.len()},
        "window": window,
        "run": {
            "seconds": run_secs,
            "rtp_pkts": total.rtp,
            "published_pkts": total.pub_video + total.pub_audio,
            "keyframes_sent": keyframes,
            "keyframe_requests": total.plis,
            "bad_payloads": total.bad,
        },
    });
    let w = &json["window"];
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.0}"));
    let num1 = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    let mut t = String::new();
    t.push_str(&format!(
        "whep-load {} stream {}: 1 publisher ({} kbit/s video{}) -> {} subscribers ({} sampled)\n",
        cfg.api_url,
        stream,
        cfg.bitrate_kbps,
        if cfg.audio { " + audio" } else { "" },
        cfg.subscribers,
        sampled
    ));
    t.push_str(&format!(
        "  subscribers    started {}  answered {}  connected {}  receiving {}  failed {}  receiving at end {}\n",
        c[0], c[1], c[2], c[3], c[4], receiving_at_end
    ));
    t.push_str(&format!(
        "  join (ms)      p50 {}  p99 {}  max {}   (WHEP POST -> first SRTP packet)\n",
        num1(&json["join_ms"]["p50"]),
        num1(&json["join_ms"]["p99"]),
        num1(&json["join_ms"]["max"])
    ));
    t.push_str(&format!(
        "  window         {:.1} s: published {} pkts ({:.1}/s, {} keyframe requests); delivered {} pkts = {:.0} pkt/s, {:.1} Mbit/s; delivery {:.2}% (per subscriber {}..{})\n",
        wsecs,
        published,
        published as f64 / wsecs,
        win.plis,
        win.rtp,
        win.rtp as f64 / wsecs,
        w["mbps"].as_f64().unwrap_or(0.0),
        delivery * 100.0,
        per_sub_min.map_or("-".into(), |v| v.to_string()),
        per_sub_max.map_or("-".into(), |v| v.to_string()),
    ));
    t.push_str(&format!(
        "  latency (us)   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples; payload checks ok {} bad {})\n",
        num(&w["latency_us"]["p50"]),
        num(&w["latency_us"]["p90"]),
        num(&w["latency_us"]["p99"]),
        num(&w["latency_us"]["p999"]),
        num(&w["latency_us"]["max"]),
        win.lat.count(),
        win.verified,
        win.bad
    ));
    let l = &w["latency_us"];
    t.push_str(&format!(
        "  by join order  first subscriber p50 {} p99 {};  last sampled (#{}) p50 {} p99 {}\n",
        num(&l["first_subscriber"]["p50"]),
        num(&l["first_subscriber"]["p99"]),
        l["last_sampled_subscriber"]["join_index"],
        num(&l["last_sampled_subscriber"]["p50"]),
        num(&l["last_sampled_subscriber"]["p99"]),
    ));
    for v in w["watch"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  server pid {:<7} user {:.2} s  sys {:.2} s = {:.1}% of a core; {:.2} us/packet (user {:.2}, sys {:.2}); run-queue wait {}%\n",
            v["pid"],
            v["user_s"].as_f64().unwrap_or(0.0),
            v["sys_s"].as_f64().unwrap_or(0.0),
            v["cpu_pct"].as_f64().unwrap_or(0.0),
            v["us_per_pkt"].as_f64().unwrap_or(0.0),
            v["user_us_per_pkt"].as_f64().unwrap_or(0.0),
            v["sys_us_per_pkt"].as_f64().unwrap_or(0.0),
            num1(&v["runqueue_wait_pct"]),
        ));
    }
    t.push_str(&format!(
        "  loadgen cpu    {:.1}% of a core in the window\n",
        w["loadgen_cpu"]["pct"].as_f64().unwrap_or(0.0)
    ));
    for c in w["machine_cpus"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  {:<14} busy {}% (softirq {}%), iowait {}%, steal {}% (all processes)\n",
            c["cpu"].as_str().unwrap_or("?"),
            c["busy_pct"],
            c["softirq_pct"],
            c["iowait_pct"],
            c["steal_pct"]
        ));
    }
    if !errors.is_empty() {
        t.push_str("  errors        ");
        for (k, n) in errors {
            t.push_str(&format!(" {k}: {n};"));
        }
        t.push('\n');
    }
    Report { json, table: t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_paces_bitrate_and_marks_payloads() {
        let t0 = Instant::now();
        let mut s = Source::new(t0, 1000, Duration::from_secs(2), true, [11, 22, 33], pt::H264, pt::OPUS);
        let mut out = vec![];
        s.poll(t0 + Duration::from_millis(3999), &mut out);
        let video: Vec<_> = out.iter().filter(|p| p.video).collect();
        let audio = out.len() - video.len();
        assert_eq!(audio, 200);
        let bytes: usize = video.iter().map(|p| p.data.len() - 20).sum();
        // 4 s at 1 Mbit/s = 500 kB of video payload (within 5 %).
        assert!((475_000..525_000).contains(&bytes), "{bytes}");
        assert_eq!(s.keyframes, 2);
        let mut marked = 0;
        for p in &out {
            assert!(p.data.len() - 20 <= MAX_PAYLOAD);
            let pkt = engine::proto::webrtc::RtpPacket::parse(bytes::Bytes::from(p.data.clone())).unwrap();
            let r = check_mark(p.video, &pkt.payload()).unwrap();
            assert_eq!(r.is_some(), p.time_at.is_some());
            marked += usize::from(r.is_some());
        }
        assert!(marked > out.len() - 3);
        // A frame's last packet carries the marker bit.
        let markers = video.iter().filter(|p| p.data[1] & 0x80 != 0).count();
        assert_eq!(markers, 120);
        // Damage is detected.
        let p = video.iter().find(|p| p.time_at.is_some()).unwrap();
        let mut d =
            engine::proto::webrtc::RtpPacket::parse(bytes::Bytes::from(p.data.clone())).unwrap().payload().to_vec();
        let n = d.len();
        d[n - 1] ^= 0xff;
        assert!(check_mark(true, &d).is_err());
    }

    #[test]
    fn parses_api() {
        let a = Api::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(a.addr.port(), 8080);
        assert_eq!(a.base, "");
        assert!(Api::parse("http://10.1.2.3:80").is_err());
    }
}
