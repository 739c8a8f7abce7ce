//! Starting and stopping the engine: one OS thread per shard, each running one
//! monoio runtime (io_uring or epoll), and the handle the control plane holds.

use crate::config::{EngineConfig, IoMode};
use crate::inbox::Inbox;
use crate::link::{Command, EngineEvent, EventSink};
use crate::shard::{Shard, ShardMsg};
pub use crate::stats::ShardStats;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What every shard shares (all `Sync`): config, the shards' inboxes, admission
/// counters, the event sink.
pub struct EngineShared {
    pub cfg: EngineConfig,
    pub inboxes: Vec<Arc<Inbox<ShardMsg>>>,
    pub stats: Vec<Arc<ShardStats>>,
    pub events: EventSink,
    next_id: AtomicU64,
    connections: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub shutting_down: AtomicBool,
    pub started: Instant,
    /// The DTLS certificate of every WebRTC session of this process.
    cert: crate::proto::webrtc::DtlsCertificate,
    next_subscriber_shard: AtomicUsize,
    /// What each WebRTC publisher sends (video codec, H.264 profile), so that
    /// subscribers on any shard answer with the same codec. Touched only when
    /// sessions are created, never on the media path.
    pub rtc_codecs: Mutex<HashMap<String, crate::rtc::PublisherCodecs>>,
    /// WebRTC viewer sessions not connected yet (see [`crate::rtc::PendingSlot`]).
    pub rtc_pending: Mutex<crate::rtc::PendingCounts>,
    /// Lines about peers' bad input: one per address per interval.
    pub peer_log: Mutex<crate::log_limit::LogLimiter>,
}

impl EngineShared {
    /// Whether a line about a peer's bad input from `ip` may be logged now (see
    /// [`crate::log_limit`]): `Some(suppressed since the last one)`.
    pub fn peer_log(&self, ip: IpAddr) -> Option<u64> {
        self.peer_log.lock().unwrap_or_else(|p| p.into_inner()).check(ip, Instant::now())
    }

    pub fn shard_count(&self) -> usize {
        self.inboxes.len()
    }

    /// The home shard of a stream: a stable hash of its name.
    pub fn home_of(&self, stream_name: &str) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        stream_name.hash(&mut h);
        (h.finish() % self.inboxes.len() as u64) as usize
    }

    /// Why `stream_name` cannot be played over FLV/RTMP/HLS, if it cannot: a WebRTC
    /// publisher whose video is not H.264.
    pub fn flv_unavailable(&self, stream_name: &str) -> Option<String> {
        let codecs = self.rtc_codecs.lock().unwrap_or_else(|p| p.into_inner());
        let c = codecs.get(stream_name)?;
        match c.video {
            Some(crate::proto::webrtc::Codec::H264) | None => None,
            Some(v) => Some(format!(
                "the WebRTC publisher sends {v:?} video; RTMP, HTTP-FLV and HLS need H.264 (publish H.264, or watch over WebRTC)"
            )),
        }
    }

    pub fn cert(&self) -> crate::proto::webrtc::DtlsCertificate {
        self.cert.clone()
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Admits a new connection under the total and per-IP limits.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        if self.shutting_down.load(Ordering::Relaxed) {
            return None;
        }
        if self.connections.fetch_add(1, Ordering::AcqRel) >= self.cfg.max_connections {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.cfg.max_connections_per_ip {
            drop(m);
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *n += 1;
        Some(Admission { shared: self.clone(), ip })
    }

    /// Sends a message to a shard's inbox; a full inbox drops it (counted).
    pub fn send(&self, shard: usize, msg: ShardMsg) -> bool {
        match self.inboxes.get(shard) {
            Some(i) => i.push(msg).is_ok(),
            None => false,
        }
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Held for the life of an admitted connection.
pub struct Admission {
    shared: Arc<EngineShared>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
        let mut m = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A started engine, held by the control plane.
pub struct Engine {
    shared: Arc<EngineShared>,
    events: Arc<Inbox<EngineEvent>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind { addr: std::net::SocketAddr, key: &'static str, source: std::io::Error },
    #[error("shard {shard}: cannot start the {driver} runtime: {source}")]
    Runtime { shard: usize, driver: &'static str, source: std::io::Error },
    #[error("cannot start shard thread: {0}")]
    Thread(std::io::Error),
}

/// Checks that nobody else holds `addr` (a plain bind, without SO_REUSEPORT, fails
/// when another socket holds it, even one with SO_REUSEPORT).
fn probe(addr: std::net::SocketAddr, key: &'static str) -> Result<(), StartError> {
    std::net::TcpListener::bind(addr).map(drop).map_err(|source| StartError::Bind { addr, key, source })
}

impl Engine {
    /// Binds the media ports and starts the shards. Returns once every shard listens.
    pub fn start(cfg: EngineConfig) -> Result<Engine, StartError> {
        probe(cfg.rtmp_listen, "rtmp.listen")?;
        probe(cfg.http_listen, "http_media.listen")?;
        let n = cfg.shard_count();
        let events = Arc::new(Inbox::new(65_536));
        let shared = Arc::new(EngineShared {
            inboxes: (0..n).map(|_| Arc::new(Inbox::new(cfg.shard_queue))).collect(),
            stats: (0..n).map(|_| Arc::new(ShardStats::default())).collect(),
            events: EventSink::new(events.clone()),
            next_id: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            cert: crate::proto::webrtc::DtlsCertificate::generate()
                .map_err(|e| StartError::Thread(std::io::Error::other(format!("DTLS certificate: {e}"))))?,
            next_subscriber_shard: AtomicUsize::new(0),
            rtc_codecs: Mutex::new(HashMap::new()),
            rtc_pending: Mutex::new(crate::rtc::PendingCounts::default()),
            peer_log: Mutex::new(crate::log_limit::LogLimiter::default()),
            cfg,
        });
        let mut threads = vec![];
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), StartError>>();
        for i in 0..n {
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || run_shard(i, shared, ready))
                .map_err(StartError::Thread)?;
            threads.push(t);
        }
        drop(ready_tx);
        let engine = Engine { shared, events, threads: Mutex::new(threads) };
        for _ in 0..n {
            match ready_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    engine.shutdown(Duration::from_secs(2));
                    return Err(e);
                }
                Err(_) => {
                    return Err(StartError::Thread(std::io::Error::other("a shard did not start in 10 s")));
                }
            }
        }
        Ok(engine)
    }

    pub fn shared(&self) -> &Arc<EngineShared> {
        &self.shared
    }

    /// The next event for the control plane.
    pub async fn next_event(&self) -> EngineEvent {
        self.events.recv().await
    }

    /// Events waiting, for a non-async drain.
    pub fn try_event(&self) -> Option<EngineEvent> {
        self.events.try_recv()
    }

    pub fn events(&self) -> Arc<Inbox<EngineEvent>> {
        self.events.clone()
    }

    /// The io driver each shard runs ("io_uring" or "epoll").
    pub fn drivers(&self) -> Vec<&'static str> {
        self.shared.stats.iter().map(|s| *s.driver.lock().unwrap_or_else(|p| p.into_inner())).collect()
    }

    /// Creates a WebRTC session: a publisher on the stream's home shard, a
    /// subscriber on the next shard in turn. Returns the SDP answer.
    pub async fn create_webrtc(
        &self,
        stream_name: &str,
        role: crate::rtc::RtcRole,
        offer: String,
    ) -> Result<crate::rtc::RtcAnswer, crate::rtc::RtcError> {
        use crate::rtc::{RtcError, RtcRole};
        if self.shared.cfg.webrtc_port_base == 0 {
            return Err(RtcError::Unavailable("WebRTC is disabled (webrtc.udp_port_base = 0)".into()));
        }
        let n = self.shared.shard_count();
        let (shard, pending) = match role {
            RtcRole::Publisher { .. } => (self.shared.home_of(stream_name), None),
            RtcRole::Subscriber { client } => {
                // Viewers need no credentials: bound the sessions that have not
                // connected yet, per address, per stream and in all.
                let slot = crate::rtc::PendingSlot::reserve(&self.shared, client, stream_name)?;
                (self.shared.next_subscriber_shard.fetch_add(1, Ordering::Relaxed) % n, Some(slot))
            }
        };
        let (tx, rx) = futures_channel::oneshot::channel();
        let msg = ShardMsg::RtcCreate { role, name: stream_name.to_owned(), offer, pending, reply: tx };
        if !self.shared.send(shard, msg) {
            return Err(RtcError::Unavailable("engine busy".into()));
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(RtcError::Unavailable("engine stopped".into())),
        }
    }

    /// Ends a WebRTC session by the id `create_webrtc` returned.
    pub async fn delete_webrtc(&self, session_id: &str) -> bool {
        let Some((shard, sid)) = session_id.split_once('-') else { return false };
        let (Ok(shard), Ok(sid)) = (shard.parse::<usize>(), sid.parse::<u64>()) else { return false };
        if shard >= self.shared.shard_count() {
            return false;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        if !self.shared.send(shard, ShardMsg::RtcDelete { sid, reply: tx }) {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Sends a command to every shard.
    pub fn command(&self, c: Command) {
        for i in 0..self.shared.shard_count() {
            // Commands must not be lost: retry briefly if a shard's inbox is full.
            let mut msg = ShardMsg::Command(c.clone());
            for _ in 0..1000 {
                match self.shared.inboxes[i].push(msg) {
                    Ok(()) => break,
                    Err(m) => {
                        msg = m;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
    }

    /// Stops accepting, ends every connection cleanly and waits for the shards
    /// (at most `timeout`).
    pub fn shutdown(&self, timeout: Duration) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.command(Command::Shutdown);
        let deadline = Instant::now() + timeout;
        let threads: Vec<_> = self.threads.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn pin(i: usize) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it; the call only
    // affects this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(i % cores, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn run_shard(i: usize, shared: Arc<EngineShared>, ready: std::sync::mpsc::Sender<Result<(), StartError>>) {
    if shared.cfg.pin_cores {
        pin(i);
    }
    let mode = shared.cfg.io;
    let try_uring = mode != IoMode::Epoll && monoio::utils::detect_uring();
    if mode == IoMode::IoUring && !try_uring {
        let _ = ready.send(Err(StartError::Runtime {
            shard: i,
            driver: "io_uring",
            source: std::io::Error::other(
                "io_uring is not available (kernel, seccomp or RLIMIT_MEMLOCK); use engine.io = \"epoll\" or \"auto\"",
            ),
        }));
        return;
    }
    if try_uring {
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().with_entries(1024).enable_timer().build() {
            Ok(mut rt) => {
                *shared.stats[i].driver.lock().unwrap_or_else(|p| p.into_inner()) = "io_uring";
                tracing::info!(shard = i, driver = "io_uring", "shard started");
                rt.block_on(Shard::run(i, shared, ready));
                return;
            }
            Err(e) if mode == IoMode::IoUring => {
                let _ = ready.send(Err(StartError::Runtime { shard: i, driver: "io_uring", source: e }));
                return;
            }
            Err(e) => tracing::warn!(shard = i, error = %e, "io_uring unavailable, falling back to epoll"),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => {
            *shared.stats[i].driver.lock().unwrap_or_else(|p| p.into_inner()) = "epoll";
            tracing::info!(shard = i, driver = "epoll", "shard started");
            rt.block_on(Shard::run(i, shared, ready));
        }
        Err(e) => {
            let _ = ready.send(Err(StartError::Runtime { shard: i, driver: "epoll", source: e }));
        }
    }
}
