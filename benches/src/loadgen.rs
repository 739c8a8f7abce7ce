//! The load generator: N players of one stream over RTMP, HTTP-FLV or
//! WebSocket-FLV, from one thread, with non-blocking sockets and epoll.
//!
//! # Read pattern (the same for every server)
//!
//! * Connecting and setup (TCP connect, RTMP handshake/connect/play, HTTP response
//!   head) are driven by level-triggered epoll: a socket is read as soon as it is
//!   readable.
//! * Once a player has received its first coded audio/video frame it leaves epoll
//!   (`EPOLL_CTL_DEL`) and is read on a timer instead: every `read_interval`
//!   (default 200 ms), at a phase fixed by the time of its first frame, so the reads
//!   of N players are spread evenly over the interval. Each such read drains the
//!   socket with `read(2)` into one shared 256 KiB buffer, repeating only while a
//!   read fills the whole buffer; a short read ends the drain. So a player costs
//!   about one `read` per interval whatever the server's write pattern.
//! * Small answers the protocol needs in the media phase (RTMP Acknowledgement and
//!   Ping Response, WebSocket Pong) are sent with `send(2)` right after the read that
//!   triggered them.
//!
//! # Lag
//!
//! For each player and each timed read, `off = (now - first_frame_wall) - (ts -
//! first_ts)` where `ts` is the newest coded audio/video timestamp received so far
//! (sequence headers and metadata are ignored). `lag_raw` is `off` itself (the
//! definition of issue 5; negative when a server starts a player with a burst of
//! cached GOP). `lag` is `off - min(off so far)`: re-anchored on the player's best
//! delivery, so a GOP-cache burst does not hide later delay. It includes up to one
//! read interval of the load generator's own batching, equally for every server.

use crate::hist::{Hist, quantile_of};
use crate::scan::{self, Chunked, FlvScan, ParseError, RtmpScan, Summary, WsFrames};
use crate::sys::{self, CpuTimes, Epoll};
use engine::proto::flv::FlvReader;
use engine::proto::rtmp::{ClientConfig, ClientEvent, ClientGoal, ClientSession};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// What to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Rtmp { addr: SocketAddr, app: String, name: String, tc_url: String },
    HttpFlv { addr: SocketAddr, host: String, path: String },
    WsFlv { addr: SocketAddr, host: String, path: String },
}

impl Target {
    /// Parses `rtmp://host:port/app/name`, `http://host:port/path.flv` or
    /// `ws://host:port/path.flv`. Only loopback addresses are accepted.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url}: no scheme"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = match scheme {
            "rtmp" => 1935,
            "http" | "ws" => 80,
            _ => return Err(format!("{url}: scheme must be rtmp, http or ws")),
        };
        let with_port = if hostport.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            hostport.to_owned()
        } else {
            format!("{hostport}:{default_port}")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("{hostport}: no address"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{url}: only loopback targets are allowed (got {})", addr.ip()));
        }
        Ok(match scheme {
            "rtmp" => {
                let p = path.trim_start_matches('/');
                let (app, name) =
                    p.split_once('/').ok_or_else(|| format!("{url}: expected rtmp://host:port/app/name"))?;
                Target::Rtmp {
                    addr,
                    app: app.to_owned(),
                    name: name.to_owned(),
                    tc_url: format!("rtmp://{hostport}/{app}"),
                }
            }
            "http" => Target::HttpFlv { addr, host: hostport.to_owned(), path: path.to_owned() },
            _ => Target::WsFlv { addr, host: hostport.to_owned(), path: path.to_owned() },
        })
    }

    pub fn protocol(&self) -> &'static str {
        match self {
            Target::Rtmp { .. } => "rtmp",
            Target::HttpFlv { .. } => "http-flv",
            Target::WsFlv { .. } => "ws-flv",
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Target::Rtmp { addr, .. } | Target::HttpFlv { addr, .. } | Target::WsFlv { addr, .. } => *addr,
        }
    }
}

/// Which parsers to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParserKind {
    /// The engine's ClientSession for setup, then [`RtmpScan`]; [`FlvScan`] for FLV.
    Lean,
    /// The engine's ClientSession / FlvReader for everything (full reassembly).
    Engine,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub url: String,
    pub target: Target,
    /// More streams to play: player `i` plays `target` when `i % (1 + more.len())` is
    /// 0, else `more[i % (1 + more.len()) - 1]` (round-robin over all the URLs).
    pub more: Vec<Target>,
    pub players: usize,
    /// New players per second (0 = all at once).
    pub ramp: f64,
    /// Measured window length.
    pub duration: Duration,
    /// Time between the last player's start and the measured window.
    pub warmup: Duration,
    pub read_interval: Duration,
    pub parser: ParserKind,
    /// A player without media this long after its start fails.
    pub setup_timeout: Duration,
    /// Processes whose CPU and RSS are recorded over the window (a server).
    pub watch_pids: Vec<u32>,
}

impl Config {
    pub fn new(url: &str) -> Result<Config, String> {
        Ok(Config {
            url: url.to_owned(),
            target: Target::parse(url)?,
            more: vec![],
            players: 100,
            ramp: 100.0,
            duration: Duration::from_secs(20),
            warmup: Duration::from_secs(2),
            read_interval: Duration::from_millis(200),
            parser: ParserKind::Lean,
            setup_timeout: Duration::from_secs(15),
            watch_pids: vec![],
        })
    }
}

impl Config {
    /// The stream player `idx` plays.
    pub fn target_of(&self, idx: usize) -> &Target {
        match idx % (1 + self.more.len()) {
            0 => &self.target,
            k => &self.more[k - 1],
        }
    }
}

// ---------------------------------------------------------------------------
// Per-player protocol state

enum Flv {
    Lean(FlvScan),
    Engine(FlvReader),
}

impl Flv {
    fn feed(&mut self, data: &[u8], sum: &mut Summary) -> Result<(), ParseError> {
        match self {
            Flv::Lean(s) => s.feed(data, sum),
            Flv::Engine(r) => {
                r.handle_input(data);
                loop {
                    match r.poll_tag() {
                        Ok(Some(tag)) => {
                            let n = tag.body.len().min(2);
                            sum.on_message(tag.tag_type.as_u8(), tag.timestamp_ms, &tag.body[..n]);
                        }
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(ParseError(format!("flv: {e}"))),
                    }
                }
            }
        }
    }
}

struct Http {
    ws: bool,
    head_buf: Vec<u8>,
    head_done: bool,
    chunked: Option<Chunked>,
    frames: Option<WsFrames>,
    flv: Flv,
}

enum Proto {
    /// RTMP before Play.Start: the engine's client session drives the dialogue; in
    /// lean mode a scanner follows the same bytes to take over afterwards.
    RtmpSetup {
        sess: Box<ClientSession>,
        scan: Option<Box<RtmpScan>>,
    },
    RtmpLean(Box<RtmpScan>),
    RtmpEngine(Box<ClientSession>),
    Http(Box<Http>),
}

#[derive(Default)]
struct Fed {
    connected: bool,
    /// The server ended the stream (EOF, close frame, stream EOF, error status).
    end: Option<String>,
}

fn rtmp_events(sess: &mut ClientSession, sum: &mut Summary, fed: &mut Fed) {
    while let Some(ev) = sess.poll_event() {
        match ev {
            ClientEvent::PlayStarted { .. } => fed.connected = true,
            ClientEvent::Media { kind, timestamp, payload } => {
                let n = payload.len().min(2);
                sum.on_message(kind.type_id(), timestamp, &payload[..n]);
            }
            ClientEvent::Status { level, code, .. } if level == "error" => {
                fed.end.get_or_insert(format!("rtmp status {code}"));
            }
            ClientEvent::StreamEof { .. } => {
                fed.end.get_or_insert("rtmp stream eof".into());
            }
            ClientEvent::Closed { error } => {
                let why = error.map_or("rtmp closed".to_owned(), |e| format!("rtmp {:?}", e.kind()));
                fed.end.get_or_insert(why);
            }
            _ => {}
        }
    }
}

impl Proto {
    fn new(target: &Target, parser: ParserKind, seed: u64, out: &mut Vec<u8>) -> Proto {
        match target {
            Target::Rtmp { app, name, tc_url, .. } => {
                let mut cfg = ClientConfig::new(app, tc_url);
                cfg.rng_seed = seed;
                let mut sess = ClientSession::new(cfg, ClientGoal::Play { name: name.clone() }, Instant::now());
                while let Some(b) = sess.poll_transmit() {
                    out.extend_from_slice(&b);
                }
                match parser {
                    ParserKind::Lean => {
                        let mut scan = RtmpScan::after_handshake();
                        scan.respond = false;
                        Proto::RtmpSetup { sess: Box::new(sess), scan: Some(Box::new(scan)) }
                    }
                    ParserKind::Engine => Proto::RtmpEngine(Box::new(sess)),
                }
            }
            Target::HttpFlv { host, path, .. } | Target::WsFlv { host, path, .. } => {
                let ws = matches!(target, Target::WsFlv { .. });
                out.extend_from_slice(
                    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: microvibe-loadgen\r\nAccept: */*\r\n")
                        .as_bytes(),
                );
                if ws {
                    out.extend_from_slice(
                        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                    );
                }
                out.extend_from_slice(b"\r\n");
                let flv = match parser {
                    ParserKind::Lean => Flv::Lean(FlvScan::new()),
                    ParserKind::Engine => Flv::Engine(FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE)),
                };
                Proto::Http(Box::new(Http {
                    ws,
                    head_buf: Vec::new(),
                    head_done: false,
                    chunked: None,
                    frames: None,
                    flv,
                }))
            }
        }
    }

    fn feed(&mut self, data: &[u8], now: Instant, sum: &mut Summary, out: &mut Vec<u8>) -> Result<Fed, String> {
        let mut fed = Fed::default();
        match self {
            Proto::RtmpSetup { sess, scan } => {
                if let Some(s) = scan {
                    s.feed(data, &mut Summary::default(), &mut Vec::new()).map_err(|e| e.0)?;
                }
                let r = sess.handle_input(now, data);
                while let Some(b) = sess.poll_transmit() {
                    out.extend_from_slice(&b);
                }
                rtmp_events(sess, sum, &mut fed);
                if let Err(e) = r {
                    return Err(format!("rtmp {:?}", e.kind()));
                }
                if fed.connected && fed.end.is_none() {
                    if let Some(mut s) = scan.take() {
                        s.respond = true;
                        *self = Proto::RtmpLean(s);
                    } else {
                        unreachable!("setup state only exists in lean mode");
                    }
                }
            }
            Proto::RtmpLean(s) => {
                s.feed(data, sum, out).map_err(|e| e.0)?;
                if s.notes.stream_eof {
                    fed.end = Some("rtmp stream eof".into());
                }
                if let Some((_, code)) = s.notes.statuses.iter().find(|(l, _)| l == "error") {
                    fed.end = Some(format!("rtmp status {code}"));
                }
                s.notes.statuses.clear();
            }
            Proto::RtmpEngine(sess) => {
                let r = sess.handle_input(now, data);
                while let Some(b) = sess.poll_transmit() {
                    out.extend_from_slice(&b);
                }
                rtmp_events(sess, sum, &mut fed);
                if let Err(e) = r {
                    return Err(format!("rtmp {:?}", e.kind()));
                }
            }
            Proto::Http(h) => {
                let mut body = data;
                if !h.head_done {
                    h.head_buf.extend_from_slice(data);
                    let Some(head) = scan::parse_response_head(&h.head_buf).map_err(|e| e.0)? else {
                        return Ok(fed);
                    };
                    let ok = if h.ws { 101 } else { 200 };
                    if head.status != ok {
                        return Err(format!("http status {}", head.status));
                    }
                    h.head_done = true;
                    fed.connected = true;
                    if h.ws {
                        h.frames = Some(WsFrames::new());
                    } else if head.chunked {
                        h.chunked = Some(Chunked::new());
                    }
                    let consumed_before = h.head_buf.len() - data.len();
                    body = &data[head.len - consumed_before..];
                    h.head_buf = Vec::new();
                }
                let Http { chunked, frames, flv, .. } = &mut **h;
                if let Some(w) = frames {
                    w.feed(body, out, |d| flv.feed(d, sum)).map_err(|e| e.0)?;
                    if w.notes.closed {
                        fed.end = Some("websocket close".into());
                    }
                } else if let Some(c) = chunked {
                    c.feed(body, |d| flv.feed(d, sum)).map_err(|e| e.0)?;
                    if c.is_done() {
                        fed.end = Some("http body end".into());
                    }
                } else {
                    flv.feed(body, sum).map_err(|e| e.0)?;
                }
            }
        }
        Ok(fed)
    }
}

// ---------------------------------------------------------------------------
// Players and statistics

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Setup,
    Media,
    Done,
}

struct Player {
    fd: RawFd,
    phase: Phase,
    proto: Option<Proto>,
    out: Vec<u8>,
    t0: Instant,
    connected: bool,
    first_frame: Option<Instant>,
    first_ts: u32,
    last_rel: i64,
    anchor: i64,
    last_media: Instant,
    stalled: bool,
    max_lag_win: i64,
    epoll_out: bool,
}

/// Counters over a span of time.
#[derive(Clone)]
struct Span {
    bytes: u64,
    media: u64,
    keyframes: u64,
    reads: u64,
    stalls: u64,
    lag: Hist,
    raw: Hist,
}

impl Span {
    fn new() -> Span {
        Span {
            bytes: 0,
            media: 0,
            keyframes: 0,
            reads: 0,
            stalls: 0,
            lag: Hist::new(0, 30_000),
            raw: Hist::new(-30_000, 30_000),
        }
    }
    fn reset(&mut self) {
        self.bytes = 0;
        self.media = 0;
        self.keyframes = 0;
        self.reads = 0;
        self.stalls = 0;
        self.lag.clear();
        self.raw.clear();
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    started: u64,
    connected: u64,
    receiving: u64,
    failed: u64,
    dropped: u64,
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
    rss0: Option<u64>,
    sched0: Option<(u64, u64)>,
}

const READ_BUF: usize = 256 * 1024;
const STALL: Duration = Duration::from_secs(1);

/// Runs the load; calls `on_tick` every second. Returns the final report.
pub fn run(cfg: &Config, mut on_tick: impl FnMut(&Tick)) -> Result<Report, String> {
    let nofile = sys::raise_nofile();
    if (nofile as usize) < cfg.players + 64 {
        return Err(format!("RLIMIT_NOFILE is {nofile}: too low for {} players (raise the hard limit)", cfg.players));
    }
    let mut ep = Epoll::new(1024).map_err(|e| format!("epoll: {e}"))?;
    let mut buf = vec![0u8; READ_BUF];
    let mut players: Vec<Player> = Vec::with_capacity(cfg.players);
    let mut queue: VecDeque<(Instant, u32)> = VecDeque::with_capacity(cfg.players);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut ttff: Vec<u64> = Vec::with_capacity(cfg.players);
    let mut counts = Counts::default();
    let mut tick = Span::new();
    let mut win = Span::new();
    let mut total = Span::new();
    let mut stalled_players_win = 0u64;

    let start = Instant::now();
    let ramp_gap = if cfg.ramp > 0.0 { Duration::from_secs_f64(1.0 / cfg.ramp) } else { Duration::ZERO };
    let ramp_end = start + ramp_gap * (cfg.players.saturating_sub(1) as u32);
    let win_start = ramp_end + cfg.warmup;
    let win_end = win_start + cfg.duration;
    let mut in_window = false;
    let mut cpu_start = sys::self_cpu();
    let cpu_run_start = cpu_start;
    let mut cpu_last_tick = cpu_start;
    let win_cpu: CpuTimes;
    let win_secs: f64;
    let mut watches: Vec<Watch> =
        cfg.watch_pids.iter().map(|&pid| Watch { pid, cpu0: None, rss0: None, sched0: None }).collect();
    let mut watch_results: Vec<Value> = vec![];
    let mut next_tick = start + Duration::from_secs(1);
    let mut tick_t0 = start;
    let mut win_t0 = win_start;

    let fail = |p: &mut Player, why: String, counts: &mut Counts, errors: &mut BTreeMap<String, u64>| {
        if p.phase == Phase::Done {
            return;
        }
        sys::close(p.fd);
        p.fd = -1;
        p.proto = None;
        p.out = Vec::new();
        if p.first_frame.is_some() {
            counts.dropped += 1;
        } else {
            counts.failed += 1;
        }
        p.phase = Phase::Done;
        *errors.entry(why).or_default() += 1;
    };

    loop {
        let now = Instant::now();
        // Ramp: start every player that is due.
        while players.len() < cfg.players && start + ramp_gap * players.len() as u32 <= now {
            let idx = players.len();
            let mut p = Player {
                fd: -1,
                phase: Phase::Connecting,
                proto: None,
                out: Vec::new(),
                t0: now,
                connected: false,
                first_frame: None,
                first_ts: 0,
                last_rel: i64::MIN,
                anchor: i64::MAX,
                last_media: now,
                stalled: false,
                max_lag_win: 0,
                epoll_out: true,
            };
            counts.started += 1;
            match sys::connect_nonblocking(&cfg.target_of(idx).addr()) {
                Ok(fd) => {
                    p.fd = fd;
                    if let Err(e) = ep.add(fd, sys::OUT | sys::IN, idx as u64) {
                        fail(&mut p, format!("epoll: {}", sys::errno_name(&e)), &mut counts, &mut errors);
                    }
                }
                Err(e) => fail(&mut p, format!("connect: {}", sys::errno_name(&e)), &mut counts, &mut errors),
            }
            players.push(p);
            if ramp_gap.is_zero() && players.len().is_multiple_of(256) {
                break; // let epoll run between bursts
            }
        }

        // Timed reads of players in the media phase.
        while let Some(&(due, idx)) = queue.front() {
            if due > now {
                break;
            }
            queue.pop_front();
            let p = &mut players[idx as usize];
            if p.phase != Phase::Media {
                continue;
            }
            let res = read_player(p, &mut buf, now, cfg.parser, &mut tick, &mut ttff, &mut counts);
            match res {
                Ok(()) => {
                    sample_lag(p, now, &mut tick, &mut stalled_players_win, in_window);
                    flush(p);
                    let next = (due + cfg.read_interval).max(now);
                    queue.push_back((next, idx));
                }
                Err(why) => fail(p, why, &mut counts, &mut errors),
            }
        }

        // Per-second report, setup timeouts, window edges.
        let now = Instant::now();
        if now >= next_tick || (!in_window && now >= win_start) || now >= win_end {
            for p in players.iter_mut() {
                if matches!(p.phase, Phase::Connecting | Phase::Setup) && now.duration_since(p.t0) > cfg.setup_timeout {
                    let why = if p.connected { "timeout: no media" } else { "timeout: setup" };
                    fail(p, why.into(), &mut counts, &mut errors);
                }
            }
            let cpu = sys::self_cpu();
            if now >= next_tick {
                let secs = now.duration_since(tick_t0).as_secs_f64();
                let d = cpu.since(&cpu_last_tick);
                let t = make_tick(now.duration_since(start), secs, &counts, &tick, d, in_window, players.len());
                on_tick(&t);
                total.bytes += tick.bytes;
                total.media += tick.media;
                total.keyframes += tick.keyframes;
                total.reads += tick.reads;
                total.stalls += tick.stalls;
                total.lag.merge(&tick.lag);
                total.raw.merge(&tick.raw);
                if in_window {
                    win.bytes += tick.bytes;
                    win.media += tick.media;
                    win.keyframes += tick.keyframes;
                    win.reads += tick.reads;
                    win.stalls += tick.stalls;
                    win.lag.merge(&tick.lag);
                    win.raw.merge(&tick.raw);
                }
                tick.reset();
                cpu_last_tick = cpu;
                tick_t0 = now;
                next_tick += Duration::from_secs(1);
                if next_tick < now {
                    next_tick = now + Duration::from_secs(1);
                }
            }
            if !in_window && now >= win_start {
                // Fold what the current tick holds so far into nothing: the window
                // starts with a fresh tick.
                flush_tick_into(&mut tick, &mut total);
                tick_t0 = now;
                cpu_last_tick = cpu;
                in_window = true;
                win_t0 = now;
                cpu_start = sys::self_cpu();
                for w in &mut watches {
                    w.cpu0 = sys::proc_cpu(w.pid);
                    w.rss0 = sys::proc_rss_kb(w.pid);
                    w.sched0 = sys::proc_schedstat(w.pid);
                }
                for p in players.iter_mut() {
                    p.max_lag_win = 0;
                }
                stalled_players_win = 0;
                win.reset();
            }
            if now >= win_end {
                let cpu_end = sys::self_cpu();
                win.bytes += tick.bytes;
                win.media += tick.media;
                win.keyframes += tick.keyframes;
                win.reads += tick.reads;
                win.stalls += tick.stalls;
                win.lag.merge(&tick.lag);
                win.raw.merge(&tick.raw);
                flush_tick_into(&mut tick, &mut total);
                win_cpu = cpu_end.since(&cpu_start);
                let wsecs = now.duration_since(win_t0).as_secs_f64().max(1e-9);
                win_secs = wsecs;
                for w in &watches {
                    let c1 = sys::proc_cpu(w.pid);
                    let rss1 = sys::proc_rss_kb(w.pid);
                    // Run-queue wait over the window (contention from other processes).
                    let wait_pct = match (w.sched0, sys::proc_schedstat(w.pid)) {
                        (Some(a), Some(b)) => Some(100.0 * (b.1.saturating_sub(a.1)) as f64 / 1e9 / wsecs),
                        _ => None,
                    };
                    let v = match (w.cpu0, c1) {
                        (Some(a), Some(b)) => {
                            let d = b.since(&a);
                            json!({
                                "pid": w.pid,
                                "user_s": d.user.as_secs_f64(),
                                "sys_s": d.sys.as_secs_f64(),
                                "cpu_pct": 100.0 * d.total().as_secs_f64() / wsecs,
                                "user_pct": 100.0 * d.user.as_secs_f64() / wsecs,
                                "sys_pct": 100.0 * d.sys.as_secs_f64() / wsecs,
                                "rss_kb_start": w.rss0,
                                "rss_kb_end": rss1,
                                "runqueue_wait_pct": wait_pct,
                            })
                        }
                        _ => json!({"pid": w.pid, "error": "process not found"}),
                    };
                    watch_results.push(v);
                }
                break;
            }
        }

        // Wait for I/O until the next timed event.
        let now = Instant::now();
        let mut next = next_tick.min(win_end);
        if !in_window {
            next = next.min(win_start);
        }
        if let Some(&(due, _)) = queue.front() {
            next = next.min(due);
        }
        if players.len() < cfg.players {
            next = next.min(start + ramp_gap * players.len() as u32);
        }
        let timeout = next.saturating_duration_since(now).min(Duration::from_millis(100));
        let events: Vec<(u64, u32)> =
            ep.wait(timeout).map_err(|e| format!("epoll_wait: {e}"))?.iter().map(|e| (e.u64, e.events)).collect();
        let now = Instant::now();
        for (token, evs) in events {
            let idx = token as usize;
            let p = &mut players[idx];
            match p.phase {
                Phase::Connecting => {
                    if let Err(e) = sys::socket_error(p.fd) {
                        fail(p, format!("connect: {}", sys::errno_name(&e)), &mut counts, &mut errors);
                        continue;
                    }
                    if evs & (sys::OUT | sys::ERR) == 0 {
                        continue;
                    }
                    p.phase = Phase::Setup;
                    let mut out = std::mem::take(&mut p.out);
                    p.proto = Some(Proto::new(cfg.target_of(idx), cfg.parser, idx as u64 + 1, &mut out));
                    p.out = out;
                    p.epoll_out = true;
                    flush(p);
                    if p.out.is_empty() {
                        let _ = ep.modify(p.fd, sys::IN, token);
                        p.epoll_out = false;
                    }
                }
                Phase::Setup => {
                    if evs & sys::OUT != 0 {
                        flush(p);
                        if p.out.is_empty() && p.epoll_out {
                            let _ = ep.modify(p.fd, sys::IN, token);
                            p.epoll_out = false;
                        }
                    }
                    if evs & (sys::IN | sys::ERR) == 0 {
                        continue;
                    }
                    match read_player(p, &mut buf, now, cfg.parser, &mut tick, &mut ttff, &mut counts) {
                        Ok(()) => {
                            flush(p);
                            if p.first_frame.is_some() {
                                // Media flows: leave epoll, read on the timer from now on.
                                let _ = ep.delete(p.fd);
                                p.phase = Phase::Media;
                                sample_lag(p, now, &mut tick, &mut stalled_players_win, in_window);
                                queue.push_back((now + cfg.read_interval, idx as u32));
                            } else if !p.out.is_empty() && !p.epoll_out {
                                let _ = ep.modify(p.fd, sys::IN | sys::OUT, token);
                                p.epoll_out = true;
                            }
                        }
                        Err(why) => fail(p, why, &mut counts, &mut errors),
                    }
                }
                Phase::Media | Phase::Done => {}
            }
        }
    }

    // Close everything (not counted as drops).
    let active = players.iter().filter(|p| p.phase != Phase::Done).count();
    let receiving_at_end = players.iter().filter(|p| p.phase == Phase::Media).count();
    let over_1s = players.iter().filter(|p| p.max_lag_win >= 1000).count();
    for p in &mut players {
        if p.phase != Phase::Done {
            sys::close(p.fd);
        }
    }
    let run_cpu = sys::self_cpu().since(&cpu_run_start);
    let run_secs = start.elapsed().as_secs_f64();
    Ok(report(
        cfg,
        win_secs,
        &counts,
        &win,
        &total,
        win_cpu,
        run_cpu,
        run_secs,
        &mut ttff,
        &errors,
        watch_results,
        active,
        receiving_at_end,
        over_1s,
        stalled_players_win,
    ))
}

fn flush_tick_into(tick: &mut Span, total: &mut Span) {
    total.bytes += tick.bytes;
    total.media += tick.media;
    total.keyframes += tick.keyframes;
    total.reads += tick.reads;
    total.stalls += tick.stalls;
    total.lag.merge(&tick.lag);
    total.raw.merge(&tick.raw);
    tick.reset();
}

/// Reads everything available (see the module docs) and feeds the parser.
fn read_player(
    p: &mut Player,
    buf: &mut [u8],
    now: Instant,
    _parser: ParserKind,
    tick: &mut Span,
    ttff: &mut Vec<u64>,
    counts: &mut Counts,
) -> Result<(), String> {
    let mut sum = Summary::default();
    let mut end: Option<String> = None;
    loop {
        let n = match sys::read(p.fd, buf) {
            Ok(0) => {
                end = Some(end.unwrap_or_else(|| "eof".into()));
                break;
            }
            Ok(n) => n,
            Err(e) if sys::is_would_block(&e) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {}", sys::errno_name(&e))),
        };
        tick.reads += 1;
        tick.bytes += n as u64;
        let Some(proto) = p.proto.as_mut() else { break };
        let fed = proto.feed(&buf[..n], now, &mut sum, &mut p.out)?;
        if fed.connected && !p.connected {
            p.connected = true;
            counts.connected += 1;
        }
        if let Some(e) = fed.end {
            end = Some(e);
        }
        if n < buf.len() {
            break;
        }
    }
    tick.media += u64::from(sum.media);
    tick.keyframes += u64::from(sum.keyframes);
    if let Some(ft) = sum.first_ts
        && p.first_frame.is_none()
    {
        p.first_frame = Some(now);
        p.first_ts = ft;
        counts.receiving += 1;
        ttff.push(now.duration_since(p.t0).as_millis() as u64);
    }
    if let Some(mt) = sum.max_ts
        && p.first_frame.is_some()
    {
        let rel = i64::from(mt.wrapping_sub(p.first_ts) as i32);
        p.last_rel = p.last_rel.max(rel);
        p.last_media = now;
        p.stalled = false;
    }
    match end {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn sample_lag(p: &mut Player, now: Instant, tick: &mut Span, stalled_players: &mut u64, in_window: bool) {
    let Some(ff) = p.first_frame else { return };
    if p.last_rel == i64::MIN {
        return;
    }
    let wall = now.duration_since(ff).as_millis() as i64;
    let off = wall - p.last_rel;
    p.anchor = p.anchor.min(off);
    let lag = off - p.anchor;
    tick.lag.add(lag);
    tick.raw.add(off);
    p.max_lag_win = p.max_lag_win.max(lag);
    if !p.stalled && now.duration_since(p.last_media) > STALL {
        p.stalled = true;
        tick.stalls += 1;
        if in_window {
            *stalled_players += 1;
        }
    }
}

/// Sends pending output; in setup an incomplete send is finished on EPOLLOUT, in the
/// media phase at the next timed read.
fn flush(p: &mut Player) {
    while !p.out.is_empty() {
        match sys::send(p.fd, &p.out) {
            Ok(n) => {
                p.out.drain(..n);
            }
            Err(e) if sys::is_would_block(&e) => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                // The read side reports the failure.
                p.out.clear();
                return;
            }
        }
    }
}

fn make_tick(t: Duration, secs: f64, c: &Counts, s: &Span, cpu: CpuTimes, in_window: bool, started: usize) -> Tick {
    let mbps = s.bytes as f64 * 8.0 / secs.max(1e-9) / 1e6;
    let pct = 100.0 * cpu.total().as_secs_f64() / secs.max(1e-9);
    let q = |h: &Hist, x: f64| h.quantile(x).map_or(Value::Null, Value::from);
    let json = json!({
        "type": "tick",
        "t": (t.as_secs_f64() * 10.0).round() / 10.0,
        "in_window": in_window,
        "started": started,
        "connected": c.connected,
        "receiving": c.receiving,
        "failed": c.failed,
        "dropped": c.dropped,
        "mbps": (mbps * 10.0).round() / 10.0,
        "media_msgs": s.media,
        "lag_p50_ms": q(&s.lag, 0.5),
        "lag_p99_ms": q(&s.lag, 0.99),
        "lag_max_ms": s.lag.max(),
        "stalls": s.stalls,
        "reads": s.reads,
        "loadgen_cpu_pct": (pct * 10.0).round() / 10.0,
    });
    let f = |h: &Hist, x: f64| h.quantile(x).map_or("-".to_owned(), |v| v.to_string());
    let line = format!(
        "{:>6.1}s{} started {:>5} up {:>5} media {:>5} failed {:>4} dropped {:>4} | {:>8.1} Mbit/s | lag p50 {:>5} p99 {:>5} max {:>5} ms | stalls {:>3} | loadgen cpu {:>5.1}%",
        t.as_secs_f64(),
        if in_window { "*" } else { " " },
        started,
        c.connected,
        c.receiving,
        c.failed,
        c.dropped,
        mbps,
        f(&s.lag, 0.5),
        f(&s.lag, 0.99),
        s.lag.max().map_or("-".into(), |v| v.to_string()),
        s.stalls,
        pct,
    );
    Tick { json, line }
}

#[allow(clippy::too_many_arguments)]
fn report(
    cfg: &Config,
    wsecs: f64,
    c: &Counts,
    win: &Span,
    total: &Span,
    win_cpu: CpuTimes,
    run_cpu: CpuTimes,
    run_secs: f64,
    ttff: &mut [u64],
    errors: &BTreeMap<String, u64>,
    watch: Vec<Value>,
    active: usize,
    receiving_at_end: usize,
    over_1s: usize,
    stalled_players: u64,
) -> Report {
    let span_json = |s: &Span, secs: f64, cpu: CpuTimes| {
        let q = |h: &Hist, x: f64| h.quantile(x).map_or(Value::Null, Value::from);
        let gb = s.bytes as f64 / 1e9;
        json!({
            "seconds": secs,
            "bytes": s.bytes,
            "mbps": s.bytes as f64 * 8.0 / secs / 1e6,
            "media_msgs": s.media,
            "keyframes": s.keyframes,
            "reads": s.reads,
            "stalls": s.stalls,
            "lag_ms": {"p50": q(&s.lag, 0.5), "p99": q(&s.lag, 0.99), "max": s.lag.max(), "samples": s.lag.count()},
            "lag_raw_ms": {"p50": q(&s.raw, 0.5), "p99": q(&s.raw, 0.99), "min": s.raw.min(), "max": s.raw.max()},
            "loadgen_cpu": {
                "user_s": cpu.user.as_secs_f64(),
                "sys_s": cpu.sys.as_secs_f64(),
                "pct": 100.0 * cpu.total().as_secs_f64() / secs,
                "cpu_s_per_gb": if gb > 0.0 { cpu.total().as_secs_f64() / gb } else { 0.0 },
            },
        })
    };
    let mut window = span_json(win, wsecs, win_cpu);
    window["players_lag_over_1s"] = json!(over_1s);
    window["stalled_players"] = json!(stalled_players);
    window["watch"] = json!(watch);
    let tt = |q: f64| quantile_of(&mut ttff.to_vec(), q);
    let json = json!({
        "type": "summary",
        "url": cfg.url,
        "streams": 1 + cfg.more.len(),
        "protocol": cfg.target.protocol(),
        "parser": match cfg.parser { ParserKind::Lean => "lean", ParserKind::Engine => "engine" },
        "players": cfg.players,
        "ramp_per_s": cfg.ramp,
        "warmup_s": cfg.warmup.as_secs_f64(),
        "read_interval_ms": cfg.read_interval.as_millis() as u64,
        "started": c.started,
        "connected": c.connected,
        "receiving": c.receiving,
        "failed": c.failed,
        "dropped": c.dropped,
        "active_at_end": active,
        "receiving_at_end": receiving_at_end,
        "ttff_ms": {"p50": tt(0.5), "p99": tt(0.99), "max": tt(1.0)},
        "errors": errors,
        "window": window,
        "run": span_json(total, run_secs, run_cpu),
    });
    let w = &json["window"];
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.0}"));
    let mut t = String::new();
    t.push_str(&format!(
        "loadgen {} x{} ({} parser, reads every {} ms)\n",
        cfg.url,
        cfg.players,
        json["parser"].as_str().unwrap_or(""),
        cfg.read_interval.as_millis()
    ));
    t.push_str(&format!(
        "  players        started {}  connected {}  receiving {}  failed {}  dropped {}  active at end {}\n",
        c.started, c.connected, c.receiving, c.failed, c.dropped, active
    ));
    t.push_str(&format!(
        "  window         {:.1} s, {:.1} Mbit/s delivered, {} media msgs, {} keyframes\n",
        wsecs,
        w["mbps"].as_f64().unwrap_or(0.0),
        win.media,
        win.keyframes
    ));
    t.push_str(&format!(
        "  lag (ms)       p50 {}  p99 {}  max {}   (raw: p50 {}  min {}  max {});  players with lag >= 1 s: {}\n",
        num(&w["lag_ms"]["p50"]),
        num(&w["lag_ms"]["p99"]),
        num(&w["lag_ms"]["max"]),
        num(&w["lag_raw_ms"]["p50"]),
        num(&w["lag_raw_ms"]["min"]),
        num(&w["lag_raw_ms"]["max"]),
        over_1s
    ));
    t.push_str(&format!("  stalls         {} (players stalled in window: {})\n", win.stalls, stalled_players));
    t.push_str(&format!(
        "  ttff (ms)      p50 {}  p99 {}  max {}\n",
        num(&json["ttff_ms"]["p50"]),
        num(&json["ttff_ms"]["p99"]),
        num(&json["ttff_ms"]["max"])
    ));
    t.push_str(&format!(
        "  loadgen cpu    window: user {:.2} s  sys {:.2} s  = {:.1}% of a core ({:.3} CPU-s/GB);  whole run: {:.1}%\n",
        win_cpu.user.as_secs_f64(),
        win_cpu.sys.as_secs_f64(),
        w["loadgen_cpu"]["pct"].as_f64().unwrap_or(0.0),
        w["loadgen_cpu"]["cpu_s_per_gb"].as_f64().unwrap_or(0.0),
        json["run"]["loadgen_cpu"]["pct"].as_f64().unwrap_or(0.0)
    ));
    for v in w["watch"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "  pid {:<8}   user {:.2} s  sys {:.2} s = {:.1}% of a core; RSS {} -> {} KiB\n",
            v["pid"],
            v["user_s"].as_f64().unwrap_or(0.0),
            v["sys_s"].as_f64().unwrap_or(0.0),
            v["cpu_pct"].as_f64().unwrap_or(0.0),
            v["rss_kb_start"],
            v["rss_kb_end"]
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
    fn parses_targets() {
        match Target::parse("rtmp://127.0.0.1:1935/live/abc").unwrap() {
            Target::Rtmp { app, name, tc_url, addr } => {
                assert_eq!((app.as_str(), name.as_str()), ("live", "abc"));
                assert_eq!(tc_url, "rtmp://127.0.0.1:1935/live");
                assert_eq!(addr.port(), 1935);
            }
            t => panic!("{t:?}"),
        }
        assert!(matches!(Target::parse("http://localhost:8081/flv/x.flv").unwrap(), Target::HttpFlv { .. }));
        assert!(matches!(Target::parse("ws://127.0.0.1:8081/flv/x.flv").unwrap(), Target::WsFlv { .. }));
        assert!(Target::parse("http://10.0.0.1/x.flv").is_err());
        assert!(Target::parse("ftp://127.0.0.1/x").is_err());
    }

    #[test]
    fn players_round_robin_over_urls() {
        let mut cfg = Config::new("http://127.0.0.1:8081/flv/a.flv").unwrap();
        cfg.more.push(Target::parse("http://127.0.0.1:8081/flv/b.flv").unwrap());
        cfg.more.push(Target::parse("http://127.0.0.1:8081/flv/c.flv").unwrap());
        let path = |i| match cfg.target_of(i) {
            Target::HttpFlv { path, .. } => path.clone(),
            t => panic!("{t:?}"),
        };
        let got: Vec<String> = (0..5).map(path).collect();
        assert_eq!(got, ["/flv/a.flv", "/flv/b.flv", "/flv/c.flv", "/flv/a.flv", "/flv/b.flv"]);
    }
}
