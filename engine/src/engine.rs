//! Starting and stopping the engine: one OS thread per shard, each running one
//! monoio runtime (io_uring or epoll), and the handle the control plane holds.

use crate::config::{EngineConfig, IoMode};
use crate::link::inbox::Inbox;
use crate::link::{Command, EngineEvent, EventSink};
use crate::proto::http::StreamName;
use crate::shard::{EngineShared, Shard, ShardMsg, StartError};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A started engine, held by the control plane.
pub struct Engine {
    shared: Arc<EngineShared>,
    events: Arc<Inbox<EngineEvent>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
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
        let shared = Arc::new(EngineShared::new(cfg, EventSink::new(events.clone()))?);
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
        stream_name: &StreamName,
        role: crate::serve::rtc::RtcRole,
        offer: String,
    ) -> Result<crate::serve::rtc::RtcAnswer, crate::serve::rtc::RtcError> {
        use crate::serve::rtc::{RtcError, RtcRole};
        if self.shared.cfg.webrtc_port_base == 0 {
            return Err(RtcError::Unavailable("WebRTC is disabled (webrtc.udp_port_base = 0)".into()));
        }
        let n = self.shared.shard_count();
        let (shard, pending) = match role {
            RtcRole::Publisher { .. } => (self.shared.home_of(stream_name), None),
            RtcRole::Subscriber { client } => {
                // Viewers need no credentials: bound the sessions that have not
                // connected yet, per address, per stream and in all.
                let slot = crate::serve::rtc::PendingSlot::reserve(&self.shared, client, stream_name)?;
                (self.shared.next_subscriber_shard.fetch_add(1, Ordering::Relaxed) % n, Some(slot))
            }
        };
        let (tx, rx) = futures_channel::oneshot::channel();
        let name = stream_name.clone();
        let msg = ShardMsg::Run(Box::new(move |shard: &Rc<Shard>| {
            let shard = shard.clone();
            monoio::spawn(async move {
                let _ = tx.send(crate::serve::rtc::create(shard, role, name, offer, pending).await);
            });
        }));
        if !self.shared.send(shard, msg) {
            return Err(RtcError::Unavailable("engine busy".into()));
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(RtcError::Unavailable("engine stopped".into())),
        }
    }

    /// Ends a WebRTC session by the id `create_webrtc` returned.
    pub async fn delete_webrtc(&self, session_id: crate::serve::rtc::RtcSessionId) -> bool {
        if session_id.shard >= self.shared.shard_count() {
            return false;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        let msg = ShardMsg::Run(Box::new(move |shard: &Rc<Shard>| {
            let _ = tx.send(crate::serve::rtc::delete(shard, session_id.number));
        }));
        if !self.shared.send(session_id.shard, msg) {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// One room's access: `Some` private (its players need a token of this room and
    /// epoch), `None` public. Takes effect for the next admission on every shard; a
    /// stream that became private, or whose room or epoch changed, loses its current
    /// viewers ([`Command::EndViewers`]).
    pub fn set_access(&self, stream_name: StreamName, access: Option<crate::link::RoomAccess>) {
        let stricter = {
            let mut table = self.shared.access.write().unwrap_or_else(|p| p.into_inner());
            let Some(table) = table.as_mut() else {
                // Not loaded yet: the full list (replace_access) will carry it.
                return;
            };
            let before = match access {
                Some(a) => table.insert(stream_name.clone(), a),
                None => table.remove(&stream_name),
            };
            access.is_some() && before != access
        };
        if stricter {
            self.command(Command::EndViewers { stream_name });
        }
    }

    /// Every private room at once (at start-up, and as a periodic refresh in a
    /// cluster, where other nodes change rooms too): streams not listed are public.
    /// Viewers are admitted only once this has been called (when a play key is set).
    pub fn replace_access(&self, all: HashMap<StreamName, crate::link::RoomAccess>) {
        let stricter: Vec<StreamName> = {
            let mut table = self.shared.access.write().unwrap_or_else(|p| p.into_inner());
            let changed = match table.as_ref() {
                Some(old) => all.iter().filter(|(n, a)| old.get(*n) != Some(*a)).map(|(n, _)| n.clone()).collect(),
                // Nobody was admitted before the first list.
                None => vec![],
            };
            *table = Some(all);
            changed
        };
        for stream_name in stricter {
            self.command(Command::EndViewers { stream_name });
        }
    }

    /// Sends a command to every shard.
    pub fn command(&self, command: Command) {
        for i in 0..self.shared.shard_count() {
            // Commands must not be lost: retry briefly if a shard's inbox is full.
            let mut msg = ShardMsg::Command(command.clone());
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

fn run_shard(index: usize, shared: Arc<EngineShared>, ready: std::sync::mpsc::Sender<Result<(), StartError>>) {
    if shared.cfg.pin_cores {
        crate::net::sys::pin_to_core(index);
    }
    let mode = shared.cfg.io;
    let try_uring = mode != IoMode::Epoll && monoio::utils::detect_uring();
    if mode == IoMode::IoUring && !try_uring {
        let _ = ready.send(Err(StartError::Runtime {
            shard: index,
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
                *shared.stats[index].driver.lock().unwrap_or_else(|p| p.into_inner()) = "io_uring";
                tracing::info!(shard = index, driver = "io_uring", "shard started");
                rt.block_on(shard_main(index, shared, ready));
                return;
            }
            Err(e) if mode == IoMode::IoUring => {
                let _ = ready.send(Err(StartError::Runtime { shard: index, driver: "io_uring", source: e }));
                return;
            }
            Err(e) => tracing::warn!(shard = index, error = %e, "io_uring unavailable, falling back to epoll"),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => {
            *shared.stats[index].driver.lock().unwrap_or_else(|p| p.into_inner()) = "epoll";
            tracing::info!(shard = index, driver = "epoll", "shard started");
            rt.block_on(shard_main(index, shared, ready));
        }
        Err(e) => {
            let _ = ready.send(Err(StartError::Runtime { shard: index, driver: "epoll", source: e }));
        }
    }
}

/// A shard's main task: listeners, then the inbox loop until shutdown.
async fn shard_main(index: usize, shared: Arc<EngineShared>, ready: std::sync::mpsc::Sender<Result<(), StartError>>) {
    let merge = shared.cfg.merge_window;
    let input_watch = if merge.is_zero() {
        None
    } else {
        crate::net::input_watch::InputWatch::new(shared.stats[index].clone())
            .inspect_err(|e| tracing::warn!(shard = index, error = %e, "no input watch; players keep a read"))
            .ok()
    };
    let shard = Shard::new(index, shared.clone(), input_watch, Box::new(crate::serve::rtc::RtcHooks));
    // Before any player or cohort exists: they take their lanes from it.
    crate::fanout::player::set_lanes(crate::fanout::player::lanes_for(shared.cfg.merge_window));
    shared.stats[index].flush_lanes.store(crate::fanout::player::lanes() as u64, Ordering::Relaxed);
    let listeners = match crate::serve::listen::start(&shard) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if let Err(source) = crate::serve::rtc::start(&shard) {
        let addr = std::net::SocketAddr::new(shared.cfg.webrtc_bind, shared.cfg.webrtc_port_base + index as u16);
        let _ = ready.send(Err(StartError::Bind { addr, key: "webrtc.udp_port_base", source }));
        listeners.close();
        return;
    }
    let _ = ready.send(Ok(()));
    if !merge.is_zero() {
        let shared = shared.clone();
        let watch = shard.input_watch.clone();
        monoio::spawn(async move {
            // The merge window is split into lanes (player::lanes_for), each flushed
            // once per window at its own phase. A fixed period (the flush's own time
            // is inside it, not added to it); under load, lanes whose turn passed
            // are flushed at once, at most one window's worth, and the rest of the
            // missed turns are skipped, not bunched.
            let lanes = crate::fanout::player::lanes();
            let period = merge / lanes as u32;
            let start = monoio::time::Instant::now();
            let mut done: u64 = 0;
            loop {
                let at = Duration::from_nanos((period.as_nanos() * u128::from(done + 1)) as u64);
                monoio::time::sleep_until(start + at).await;
                let due = (start.elapsed().as_nanos() / period.as_nanos()) as u64;
                let turns = crate::fanout::player::turns_due(done, due, lanes);
                let to = *turns.end();
                for turn in turns {
                    let f = crate::fanout::player::flush_lane((turn % lanes as u64) as usize);
                    if f.bytes > 0 {
                        shared.stats[index].bytes_out.fetch_add(f.bytes, Ordering::Relaxed);
                    }
                    if f.in_step > 0 {
                        shared.stats[index].in_step_writes.fetch_add(f.in_step as u64, Ordering::Relaxed);
                    }
                }
                done = to;
                // Players' input (acknowledgements, commands, end of stream), in
                // this same wake-up.
                if let Some(w) = &watch {
                    w.sweep();
                }
            }
        });
    }
    {
        // HLS viewers leave by going quiet: look for them every second.
        let weak = Rc::downgrade(&shard);
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(Duration::from_secs(1)).await;
                match weak.upgrade() {
                    Some(s) => s.sweep_hls_viewers(),
                    None => break,
                }
            }
        });
    }
    let inbox = shared.inboxes[index].clone();
    loop {
        let msg = inbox.recv().await;
        if let ShardMsg::Command(Command::Shutdown) = msg {
            break;
        }
        shard.handle(msg);
    }
    // Shutdown: stop accepting, end players cleanly, close publishers, then give
    // the connection tasks a moment to say goodbye.
    listeners.close();
    shard.end_everything();
    let deadline = Instant::now() + Duration::from_secs(2);
    while shard.stats().connections.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(shard = index, "shard stopped");
}
