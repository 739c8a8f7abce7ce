//! The floor writer: the least work a fan-out server can do for N players.
//!
//! It plays an FLV fixture in real time (looped, timestamps continued) and every
//! `interval` appends the tags that became due to ONE shared buffer, then writes
//! that buffer to every connected socket with one `send(2)` each. Nothing else: no
//! per-player queue, no parsing, no wakeups per message. A player is an HTTP
//! client: on accept it gets a response head, the FLV header and the codec
//! headers, then the shared ticks (its request is never read).
//!
//! A partial write (the socket buffer is full) keeps the rest in a per-socket
//! backlog that is prepended to the next tick's write (still one write per tick);
//! these are counted and printed, and stay at 0 when the readers keep up.

use crate::sys;
use engine::proto::flv::{FlvReader, TagType, file_header, write_tag};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// The fixture split into what a joining player needs first and the media.
pub struct Fixture {
    /// Script data and codec sequence headers (written at timestamp 0).
    pub headers: Vec<(TagType, Vec<u8>)>,
    /// Coded media: (timestamp relative to the first, type, body).
    pub media: Vec<(u32, TagType, Vec<u8>)>,
    /// Media time of one loop.
    pub loop_ms: u32,
}

impl Fixture {
    pub fn load(path: &Path) -> Result<Fixture, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut r = FlvReader::new(FlvReader::DEFAULT_MAX_TAG_SIZE);
        r.handle_input(&data);
        let mut headers = vec![];
        let mut media = vec![];
        while let Some(tag) = r.poll_tag().map_err(|e| format!("{}: {e}", path.display()))? {
            let b = &tag.body;
            let is_header = match tag.tag_type {
                TagType::Script => true,
                TagType::Video => b.len() > 1 && b[0] & 0x0f == 7 && b[1] == 0,
                TagType::Audio => b.len() > 1 && b[0] >> 4 == 10 && b[1] == 0,
            };
            if is_header {
                headers.push((tag.tag_type, b.to_vec()));
            } else {
                media.push((tag.timestamp_ms, tag.tag_type, b.to_vec()));
            }
        }
        if media.is_empty() {
            return Err(format!("{}: no media tags", path.display()));
        }
        media.sort_by_key(|m| m.0);
        let first = media[0].0;
        for m in &mut media {
            m.0 -= first;
        }
        let last = media.last().map_or(0, |m| m.0);
        // One video frame interval after the last tag (30 fps fixture).
        Ok(Fixture { headers, media, loop_ms: last + 33 })
    }

    /// Bits per second of the media.
    pub fn bitrate(&self) -> f64 {
        let bytes: usize = self.media.iter().map(|m| m.2.len() + 15).sum();
        bytes as f64 * 8.0 / (f64::from(self.loop_ms) / 1000.0)
    }
}

/// Paces the fixture: the tags whose media time has come.
pub struct Pacer<'a> {
    fx: &'a Fixture,
    lap: u64,
    next: usize,
}

impl<'a> Pacer<'a> {
    pub fn new(fx: &'a Fixture) -> Self {
        Pacer { fx, lap: 0, next: 0 }
    }

    /// Appends every tag due at `now_ms` (media time) as a complete FLV tag.
    pub fn fill(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        loop {
            let (ts, t, body) = &self.fx.media[self.next];
            let media_ms = self.lap * u64::from(self.fx.loop_ms) + u64::from(*ts);
            if media_ms > now_ms {
                return;
            }
            let _ = write_tag(out, *t, media_ms as u32, body);
            self.next += 1;
            if self.next == self.fx.media.len() {
                self.next = 0;
                self.lap += 1;
            }
        }
    }
}

struct Sock {
    fd: RawFd,
    backlog: Vec<u8>,
}

/// Counters printed by the floor binary.
#[derive(Debug, Default, Clone, Copy)]
pub struct FloorStats {
    pub ticks: u64,
    pub writes: u64,
    pub partial: u64,
    pub bytes: u64,
    pub conns: usize,
    pub closed: u64,
}

/// Runs the floor writer until `duration` (forever if `None`), calling `status`
/// every 10 s.
pub fn run(
    listen: SocketAddr,
    interval: Duration,
    fx: &Fixture,
    duration: Option<Duration>,
    nodelay: bool,
    mut on_listen: impl FnMut(u16),
    mut status: impl FnMut(&FloorStats),
) -> Result<FloorStats, String> {
    sys::raise_nofile();
    let lfd = sys::listen_nonblocking(&listen, 4096).map_err(|e| format!("listen {listen}: {e}"))?;
    on_listen(sys::local_port(lfd).map_err(|e| e.to_string())?);
    let mut init = b"HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: video/x-flv\r\nConnection: close\r\nCache-Control: no-cache\r\n\r\n".to_vec();
    init.extend_from_slice(&file_header(true, true));
    for (t, body) in &fx.headers {
        let _ = write_tag(&mut init, *t, 0, body);
    }
    let mut socks: Vec<Sock> = vec![];
    let mut pacer = Pacer::new(fx);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut st = FloorStats::default();
    let start = Instant::now();
    let mut next_status = start + Duration::from_secs(10);
    let mut k: u32 = 0;
    loop {
        k += 1;
        let due = start + interval * k;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if duration.is_some_and(|d| due.duration_since(start) >= d) {
            break;
        }
        while let Ok(Some(fd)) = sys::accept(lfd) {
            if nodelay {
                let _ = sys::set_nodelay(fd, true);
            }
            // A few hundred bytes into an empty socket buffer: never partial.
            match sys::send(fd, &init) {
                Ok(n) if n == init.len() => socks.push(Sock { fd, backlog: vec![] }),
                _ => sys::close(fd),
            }
        }
        buf.clear();
        pacer.fill(due.duration_since(start).as_millis() as u64, &mut buf);
        st.ticks += 1;
        if buf.is_empty() {
            continue;
        }
        socks.retain_mut(|s| {
            let r = if s.backlog.is_empty() {
                sys::send(s.fd, &buf).inspect(|&n| {
                    if n < buf.len() {
                        s.backlog.extend_from_slice(&buf[n..]);
                    }
                })
            } else {
                s.backlog.extend_from_slice(&buf);
                sys::send(s.fd, &s.backlog).inspect(|&n| {
                    s.backlog.drain(..n);
                })
            };
            st.writes += 1;
            match r {
                Ok(n) => {
                    st.bytes += n as u64;
                    if !s.backlog.is_empty() {
                        st.partial += 1;
                    }
                    if s.backlog.len() > 16 << 20 {
                        sys::close(s.fd);
                        st.closed += 1;
                        return false;
                    }
                    true
                }
                Err(e) if sys::is_would_block(&e) => {
                    if s.backlog.is_empty() {
                        s.backlog.extend_from_slice(&buf);
                    }
                    st.partial += 1;
                    true
                }
                Err(_) => {
                    sys::close(s.fd);
                    st.closed += 1;
                    false
                }
            }
        });
        st.conns = socks.len();
        let now = Instant::now();
        if now >= next_status {
            status(&st);
            next_status = now + Duration::from_secs(10);
        }
    }
    for s in &socks {
        sys::close(s.fd);
    }
    sys::close(lfd);
    Ok(st)
}
