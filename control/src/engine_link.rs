//! The control plane's side of the control link: starts the engine with the
//! configured settings, answers its publish requests, and turns its events into
//! room status and viewer counts.

use crate::app::{AppState, EngineControl};
use crate::config::{Config, IoDriver};
use crate::error::ErrorKind;
use crate::hooks::HookClient;
use crate::store::{EndReason, RoomFilter, RoomStatus};
use engine::link::{RoomId, StreamAnswer};
use engine::proto::http::StreamName;
use engine::{Command, Engine, EngineConfig, EngineEvent, IoMode, PlayDecision, PublishDecision, StreamInfo};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Maps the TOML config onto the engine's.
pub fn engine_config(cfg: &Config) -> anyhow::Result<EngineConfig> {
    let e = &cfg.engine;
    let parse = |key: &str, v: &str| -> anyhow::Result<std::net::SocketAddr> {
        v.parse().map_err(|_| anyhow::anyhow!("config key {key}: {v:?} is not an address like 0.0.0.0:1935"))
    };
    Ok(EngineConfig {
        shards: e.shards,
        io: match e.io {
            IoDriver::Auto => IoMode::Auto,
            IoDriver::IoUring => IoMode::IoUring,
            IoDriver::Epoll => IoMode::Epoll,
        },
        pin_cores: e.pin_cores,
        rtmp_listen: parse("rtmp.listen", &cfg.rtmp.listen)?,
        rtmp_apps: cfg.rtmp.apps.clone(),
        http_listen: parse("http_media.listen", &cfg.http_media.listen)?,
        rtmp_chunk_size: e.rtmp_chunk_size,
        idle_timeout: Duration::from_secs(e.idle_timeout_secs.max(5)),
        max_connections: e.max_connections,
        max_connections_per_ip: e.max_connections_per_ip,
        idle_publisher_timeout: Duration::from_secs(e.idle_publisher_timeout_secs),
        unpublish_grace: Duration::from_secs(e.unpublish_grace_secs),
        play_wait: Duration::from_secs(e.play_wait_secs),
        ask_stream_known: true,
        // The hooks' own timeout, and time for the store after it.
        play_hook: !cfg.hooks.on_play.trim().is_empty(),
        play_auth_timeout: Duration::from_millis(cfg.hooks.timeout_ms) + Duration::from_secs(2),
        publish_auth_timeout: Duration::from_secs(5)
            .max(Duration::from_millis(cfg.hooks.timeout_ms) + Duration::from_secs(2)),
        webrtc_bridge_always: e.webrtc_bridge_always,
        join_start: match e.join_start {
            crate::config::JoinStart::QuickStart => engine::stream::gop::JoinStart::QuickStart,
            crate::config::JoinStart::LiveEdge => engine::stream::gop::JoinStart::LiveEdge,
        },
        http_wait: Duration::from_secs(e.http_wait_secs),
        merge_window: Duration::from_millis(e.merge_window_ms),
        tcp_nodelay: e.tcp_nodelay,
        player_queue_bytes: e.player_queue_bytes,
        admin_token: cfg.server.admin_token.clone(),
        // Cluster nodes show it when they pull a stream from each other (relays are
        // not viewers); derived from the secret every node shares.
        relay_token: if cfg.cluster_on() {
            crate::auth::key_hash(&format!("microvibe-relay:{}", cfg.jwt.secret))
        } else {
            String::new()
        },
        // Private rooms' play tokens: checked by the engine itself, with a key
        // derived from the same secret under another label.
        play_key: Some(crate::services::play_tokens::play_key(&cfg.jwt.secret)),
        cors_origin: cfg.http_media.cors_origin.clone(),
        hls_fragment: Duration::from_secs(cfg.hls.fragment_secs),
        hls_window: Duration::from_secs(cfg.hls.playlist_secs),
        hls_path: cfg.hls.path.clone(),
        forward_ca_file: cfg.forward.ca_file.clone(),
        webrtc_port_base: if cfg.sfu.enabled { cfg.webrtc.udp_port_base } else { 0 },
        webrtc_bind: cfg
            .webrtc
            .bind
            .parse()
            .map_err(|_| anyhow::anyhow!("config key webrtc.bind: {:?} is not an IP address", cfg.webrtc.bind))?,
        webrtc_candidates: webrtc_candidates(cfg)?,
        recording_path: cfg.recording.path.clone().into(),
        recording_queue_bytes: (cfg.recording.queue_mb as usize).saturating_mul(1 << 20),
        ..EngineConfig::default()
    })
}

/// The ICE host candidates to advertise: `webrtc.candidates`, else the bind address
/// when it is a specific one, else the RTMP listen address when specific, else
/// 127.0.0.1 (with a warning: set `webrtc.candidates` to the public address).
fn webrtc_candidates(cfg: &Config) -> anyhow::Result<Vec<std::net::IpAddr>> {
    let mut out = vec![];
    for c in &cfg.webrtc.candidates {
        let ip = c
            .parse::<std::net::IpAddr>()
            .or_else(|_| c.parse::<std::net::SocketAddr>().map(|a| a.ip()))
            .map_err(|_| anyhow::anyhow!("config key webrtc.candidates: {c:?} is not an IP address"))?;
        out.push(ip);
    }
    if out.is_empty() {
        let bind: Option<std::net::IpAddr> =
            cfg.webrtc.bind.parse().ok().filter(|ip: &std::net::IpAddr| !ip.is_unspecified());
        let rtmp =
            cfg.rtmp.listen.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
        match bind.or(rtmp) {
            Some(ip) => out.push(ip),
            None => {
                tracing::warn!(
                    "webrtc.candidates is empty and the listen addresses are unspecified: advertising 127.0.0.1; set webrtc.candidates to the server's public address"
                );
                out.push(std::net::Ipv4Addr::LOCALHOST.into());
            }
        }
    }
    Ok(out)
}

/// The engine as the services see it.
pub struct EngineHandle {
    pub engine: Arc<Engine>,
    info: Mutex<HashMap<String, StreamInfo>>,
    /// Viewers per room, from the engine's PlayerJoined/PlayerLeft events: what a
    /// room's viewer count is, whatever happened to the cache (a Redis restart
    /// without persistence loses the cache's counters; this never does).
    viewers: Mutex<HashMap<i64, i64>>,
}

impl EngineHandle {
    /// A viewer joined (+1) or left (-1); the room's count after.
    fn count_viewer(&self, room_id: i64, delta: i64) -> i64 {
        let mut v = self.viewers.lock().unwrap_or_else(|p| p.into_inner());
        let n = v.entry(room_id).or_insert(0);
        *n = (*n + delta).max(0);
        let out = *n;
        if out == 0 {
            v.remove(&room_id);
        }
        out
    }
}

#[async_trait::async_trait]
impl EngineControl for EngineHandle {
    async fn create_webrtc(
        &self,
        stream_name: &str,
        role: engine::serve::rtc::RtcRole,
        offer: String,
    ) -> Result<engine::serve::rtc::RtcAnswer, engine::serve::rtc::RtcError> {
        // Rooms' names are checked when they are made: no other name is live.
        let Some(stream_name) = StreamName::parse(stream_name) else {
            return Err(engine::serve::rtc::RtcError::NotLive);
        };
        self.engine.create_webrtc(&stream_name, role, offer).await
    }

    async fn delete_webrtc(&self, engine_session: &str) -> bool {
        match engine::serve::rtc::RtcSessionId::parse(engine_session) {
            Some(id) => self.engine.delete_webrtc(id).await,
            None => false,
        }
    }

    fn drop_stream(&self, stream_name: &str) {
        if let Some(stream_name) = StreamName::parse(stream_name) {
            self.engine.command(Command::DropStream { stream_name });
        }
    }

    fn warnings(&self, stream_name: &str) -> Vec<String> {
        let info = self.info.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = vec![];
        if let Some(i) = info.get(stream_name) {
            w.extend(i.warnings.iter().cloned());
            if let Some(v) = &i.video_codec {
                if v != "H264" {
                    w.push(format!("video codec {v}: HLS needs H.264"));
                }
            }
            if let Some(a) = &i.audio_codec {
                if a != "AAC" {
                    w.push(format!("audio codec {a}: HLS needs AAC"));
                }
            }
        }
        w
    }

    fn players(&self) -> Vec<(&'static str, u64)> {
        use engine::link::Protocol;
        let stats = &self.engine.shared().stats;
        [Protocol::Rtmp, Protocol::HttpFlv, Protocol::WsFlv, Protocol::Hls, Protocol::WebRtc]
            .into_iter()
            .map(|p| {
                let slot = engine::stats::ShardStats::player_slot(p);
                let n = stats.iter().map(|s| s.players[slot].load(std::sync::atomic::Ordering::Relaxed)).sum();
                (p.as_str(), n)
            })
            .collect()
    }

    fn media(&self, stream_name: &str) -> Option<serde_json::Value> {
        let info = self.info.lock().unwrap_or_else(|p| p.into_inner());
        info.get(stream_name).map(|i| {
            serde_json::json!({
                "video_codec": i.video_codec, "width": i.width, "height": i.height, "fps": i.fps,
                "audio_codec": i.audio_codec, "audio_sample_rate": i.audio_sample_rate, "audio_channels": i.audio_channels,
                "bitrate": i.bitrate,
            })
        })
    }

    fn viewers(&self, room_id: i64) -> Option<i64> {
        Some(self.viewers.lock().unwrap_or_else(|p| p.into_inner()).get(&room_id).copied().unwrap_or(0))
    }

    fn bytes_out(&self) -> u64 {
        self.engine.shared().stats.iter().map(|s| s.bytes_out.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    fn set_cluster_stat(&self, json: String) {
        *self.engine.shared().cluster_stat.lock().unwrap_or_else(|p| p.into_inner()) = Some(json.into());
    }

    fn record(&self, stream_name: StreamName, spec: Option<engine::link::RecordSpec>) {
        self.engine.command(Command::Record { stream_name, spec });
    }

    fn set_access(&self, stream_name: &str, access: Option<(i64, u32)>) {
        if let Some(name) = StreamName::parse(stream_name) {
            let access = access.map(|(id, epoch)| engine::link::RoomAccess { room_id: RoomId(id), epoch });
            self.engine.set_access(name, access);
        }
    }

    fn replace_access(&self, private: Vec<(String, i64, u32)>) {
        let all = private
            .into_iter()
            .filter_map(|(n, id, epoch)| {
                Some((StreamName::parse(&n)?, engine::link::RoomAccess { room_id: RoomId(id), epoch }))
            })
            .collect();
        self.engine.replace_access(all);
    }

    fn set_forwards(&self, room_id: i64, stream_name: &str, targets: Vec<engine::link::ForwardTarget>) {
        if let Some(stream_name) = StreamName::parse(stream_name) {
            self.engine.command(Command::SetForwards { stream_name, room_id: RoomId(room_id), targets });
        }
    }

    fn room_viewers(&self) -> Vec<(i64, i64)> {
        self.viewers.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(r, n)| (*r, *n)).collect()
    }
}

/// Starts the engine; returns its handle for the services.
pub fn start(cfg: &Config) -> anyhow::Result<Arc<EngineHandle>> {
    let ecfg = engine_config(cfg)?;
    let (udp_base, udp_bind, candidates) = (ecfg.webrtc_port_base, ecfg.webrtc_bind, ecfg.webrtc_candidates.clone());
    let engine = Engine::start(ecfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let drivers = engine.drivers();
    tracing::info!(shards = drivers.len(), drivers = ?drivers, rtmp = %cfg.rtmp.listen, http = %cfg.http_media.listen, "media engine started");
    if udp_base == 0 {
        tracing::info!("WebRTC off (sfu.enabled = false or webrtc.udp_port_base = 0): no UDP ports");
    } else {
        let last = udp_base.saturating_add(drivers.len().saturating_sub(1) as u16);
        tracing::info!(bind = %udp_bind, ports = %format!("{udp_base}..{last}"), candidates = ?candidates, "WebRTC UDP ports (one per shard)");
    }
    Ok(Arc::new(EngineHandle {
        engine: Arc::new(engine),
        info: Mutex::new(HashMap::new()),
        viewers: Mutex::new(HashMap::new()),
    }))
}

/// A change of a room's stream, applied to the store in the engine's order.
#[derive(Debug, Clone)]
enum RoomChange {
    Started(i64, String),
    Ended(i64, String),
}

/// Applies stream starts and ends to the rooms one at a time, in the order the engine
/// reported them (a publisher leaving and the next one arriving must not swap), and
/// retries a change the store could not take (an outage) until it lands.
/// Rooms left live by an earlier run are reconciled first, before any change of this run.
///
/// In cluster mode a start first takes the stream's origin lease, and an end whose
/// lease another node has taken over (a newer publisher there) leaves the room live;
/// rooms left live by dead nodes are the cluster sweep's (`cluster::Cluster::run`).
async fn apply_room_changes(state: AppState, mut rx: tokio::sync::mpsc::UnboundedReceiver<RoomChange>) {
    if state.cluster.is_none() {
        reconcile_rooms(&state).await;
    }
    while let Some(change) = rx.recv().await {
        if let Some(cluster) = &state.cluster {
            match &change {
                RoomChange::Started(id, stream) => match cluster.acquire(stream, *id).await {
                    Ok(Some(prev)) => {
                        tracing::info!(room = id, stream = %stream, previous = %prev.node, "publisher moved here from another node; this node is the origin now")
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(room = id, stream = %stream, error = %e, "origin lease not taken; retrying with the heartbeat")
                    }
                },
                RoomChange::Ended(id, stream) => match cluster.release(stream).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(room = id, stream = %stream, "publisher left; another node is the origin now, the broadcast goes on");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(room = id, stream = %stream, error = %e, "origin lease not released (Redis unreachable); ending the broadcast")
                    }
                },
            }
        }
        let mut wait = Duration::from_millis(250);
        loop {
            let res = match &change {
                RoomChange::Started(id, _) => match state.stream_started(*id).await {
                    Ok(Some(room)) => {
                        state.apply_recording(&room).await;
                        Ok(())
                    }
                    other => other.map(|_| ()),
                },
                RoomChange::Ended(id, _) => state.stream_ended(*id, EndReason::PublisherLeft).await.map(|_| ()),
            };
            match res {
                Ok(()) => break,
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    tracing::warn!(?change, error = %e, retry_in = ?wait, "room state not saved; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(?change, error = %e, "room state not saved");
                    break;
                }
            }
        }
    }
}

/// The app of streams the hooks cannot tell one for (players, WHIP).
fn first_app(state: &AppState) -> &str {
    state.cfg.rtmp.apps.first().map(String::as_str).unwrap_or("live")
}

/// A publish request of the engine (RTMP): the `on_publish` hook first (when
/// configured: it may deny, or rename the key with a 3xx), then the room's key.
async fn authorize_engine_publish(
    state: &AppState,
    app: String,
    key: String,
    addr: std::net::SocketAddr,
    protocol: engine::link::Protocol,
    client: engine::link::ClientInfo,
) -> PublishDecision {
    let c = HookClient { app, name: key, addr: addr.ip().to_string(), client };
    let key = match state.hooks.on_publish(&c).await {
        Ok(None) => c.name.clone(),
        Ok(Some(renamed)) => renamed,
        Err(reason) => {
            tracing::debug!(%addr, app = ?c.app, protocol = protocol.as_str(), "publish refused by the on_publish hook");
            return PublishDecision::Deny { reason };
        }
    };
    match state.authorize_publish(&c.app, &key).await {
        Ok(Ok(g)) => match StreamName::parse(&g.stream_name) {
            Some(stream_name) => {
                state.hooks.publish_allowed(g.room_id, c);
                PublishDecision::Allow { room_id: RoomId(g.room_id), stream_name }
            }
            // Rooms' names are checked when they are made.
            None => PublishDecision::Deny { reason: "the room's stream name is not valid".into() },
        },
        Ok(Err(why)) => {
            // The engine logs refusals at INFO, one line per address per
            // interval (a key-guessing client would flood the log).
            tracing::debug!(%addr, app = ?c.app, protocol = protocol.as_str(), reason = ?why, "publish refused");
            PublishDecision::Deny { reason: why.reason().into() }
        }
        Err(e) => {
            tracing::warn!(error = %e, "publish authorization failed");
            PublishDecision::Deny { reason: "authorization unavailable".into() }
        }
    }
}

/// At start-up the engine publishes nothing yet: a room the store still calls live
/// (the server stopped without ending it: a crash, kill -9, power loss) has no stream
/// behind it, so its broadcast ends. Retries while the store is unreachable.
pub async fn reconcile_rooms(state: &AppState) {
    let mut wait = Duration::from_millis(500);
    let mut ended = 0u64;
    loop {
        let filter =
            RoomFilter { status: Some(RoomStatus::Live), owner_id: None, page: 1, page_size: 100, public_only: false };
        match state.list_rooms(&filter).await {
            Ok((rooms, _)) if rooms.is_empty() => break,
            Ok((rooms, _)) => {
                for r in rooms {
                    match state.stream_ended(r.id, EndReason::ServerRestart).await {
                        Ok(_) => ended += 1,
                        Err(e) if e.kind == ErrorKind::Unavailable => break,
                        Err(e) => {
                            tracing::error!(room = r.id, error = %e, "cannot end a stale broadcast");
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "cannot read rooms to reconcile; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
    if ended > 0 {
        tracing::warn!(rooms = ended, "rooms left live by an earlier run are idle again (their broadcasts ended)");
    }
}

/// A recording file's event, applied to the store in the engine's order.
#[derive(Debug)]
enum RecordingChange {
    Opened(engine::link::RecordingFile),
    Closed(engine::link::RecordingFile, engine::link::RecordingSummary),
}

/// Applies recording events one at a time (a file's close after its open), retrying
/// what the store could not take. Files left open by an earlier run are closed first.
async fn apply_recording_changes(state: AppState, mut rx: tokio::sync::mpsc::UnboundedReceiver<RecordingChange>) {
    state.reconcile_recordings().await;
    while let Some(change) = rx.recv().await {
        let mut wait = Duration::from_millis(250);
        for _ in 0..40 {
            let res = match &change {
                RecordingChange::Opened(f) => state.recording_opened(f).await,
                RecordingChange::Closed(f, s) => state.recording_closed(f, s).await,
            };
            match res {
                Ok(()) => break,
                Err(e) if e.kind == ErrorKind::Unavailable => {
                    tracing::warn!(error = %e, retry_in = ?wait, "recording state not saved; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(?change, error = %e, "recording state not saved");
                    break;
                }
            }
        }
    }
}

/// How often a cluster node re-reads which rooms are private (other nodes change
/// rooms too; changes made on this node reach its engine at once).
pub const ACCESS_REFRESH: Duration = Duration::from_secs(5);

/// Tells the engine which rooms are private: at start-up (until then the engine
/// refuses viewers: it cannot tell a private room from a public one), retrying
/// while the store is unreachable; then, in a cluster, every [`ACCESS_REFRESH`].
pub async fn sync_access(state: AppState) {
    let mut wait = Duration::from_millis(250);
    loop {
        match state.engine_sync_access().await {
            Ok(n) => {
                tracing::info!(private_rooms = n, "private rooms loaded into the engine");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "cannot read the private rooms; viewers wait");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
    if state.cluster.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(ACCESS_REFRESH);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state.engine_sync_access().await {
            tracing::debug!(error = %e, "private rooms not refreshed");
        }
    }
}

/// Serves the engine's events until the engine is gone.
pub async fn run_events(state: AppState, handle: Arc<EngineHandle>) {
    let (changes, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(apply_room_changes(state.clone(), rx));
    let (recordings, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(apply_recording_changes(state.clone(), rx));
    loop {
        let ev = handle.engine.next_event().await;
        match ev {
            EngineEvent::PublishRequest { app, key, addr, protocol, client, reply } => {
                let state = state.clone();
                tokio::spawn(async move {
                    let decision = authorize_engine_publish(&state, app, key, addr, protocol, *client).await;
                    let _ = reply.send(decision);
                });
            }
            EngineEvent::PlayRequest { app, name, addr, protocol, client, reply } => {
                let hooks = state.hooks.clone();
                tokio::spawn(async move {
                    let c = HookClient { app, name: name.to_string(), addr: addr.ip().to_string(), client: *client };
                    let decision = match hooks.on_play(&c).await {
                        Ok(()) => PlayDecision::Allow,
                        Err(reason) => {
                            tracing::debug!(%addr, stream = %name, protocol = protocol.as_str(), "play refused by the on_play hook");
                            PlayDecision::Deny { reason }
                        }
                    };
                    let _ = reply.send(decision);
                });
            }
            EngineEvent::PublishStarted { room_id, stream_name } => {
                let (room_id, stream_name) = (room_id.0, stream_name.to_string());
                tracing::info!(room = room_id, stream = %stream_name, "stream started");
                let _ = changes.send(RoomChange::Started(room_id, stream_name));
                // Restreaming: the room's destinations (a reconnect within the grace
                // names the same ones, and the engine keeps those running).
                let state = state.clone();
                tokio::spawn(async move {
                    match state.room(room_id).await {
                        Ok(room) => state.push_forwards(&room).await,
                        Err(e) => tracing::warn!(room = room_id, error = %e, "forwards not started: room not read"),
                    }
                });
            }
            EngineEvent::StreamQuery { stream_name, reply } => {
                let state = state.clone();
                tokio::spawn(async move {
                    // A store error is no answer: the player waits as for a known room.
                    let answer = match state.room_by_name(&stream_name).await {
                        Ok(None) => StreamAnswer::Unknown,
                        Err(_) => StreamAnswer::Wait,
                        // Live on another node: this node relays it from there.
                        Ok(Some(room)) => match &state.cluster {
                            Some(c) => match c.origin_media_addr(&stream_name).await {
                                Ok(Some(origin)) => StreamAnswer::Relay { origin, room_id: RoomId(room.id) },
                                _ => StreamAnswer::Wait,
                            },
                            None => StreamAnswer::Wait,
                        },
                    };
                    let _ = reply.send(answer);
                });
            }
            EngineEvent::StreamInfo { room_id, stream_name, info } => {
                let (room_id, stream_name) = (room_id.0, stream_name.to_string());
                tracing::info!(room = room_id, stream = %stream_name, ?info, "stream media");
                handle.info.lock().unwrap_or_else(|p| p.into_inner()).insert(stream_name, info);
            }
            EngineEvent::PublishEnded { room_id, stream_name } => {
                let (room_id, stream_name) = (room_id.0, stream_name.to_string());
                handle.info.lock().unwrap_or_else(|p| p.into_inner()).remove(&stream_name);
                state.hooks.publish_ended(room_id, first_app(&state), &stream_name);
                let _ = changes.send(RoomChange::Ended(room_id, stream_name));
            }
            EngineEvent::RecordingOpened { file } => {
                let _ = recordings.send(RecordingChange::Opened(file));
            }
            EngineEvent::RecordingClosed { file, summary } => {
                let _ = recordings.send(RecordingChange::Closed(file, summary));
            }
            EngineEvent::ForwardStatus { room_id, forward_id, state: fstate, error, bytes_sent } => {
                let failed = (fstate == engine::link::ForwardState::Retrying).then(|| error.clone());
                // One `forward.failed` per fall from another state (not per retry);
                // `error` never holds the stream key.
                if state.note_forward(forward_id, fstate, error, bytes_sent)
                    && let Some(error) = failed
                {
                    tracing::debug!(room = room_id.0, forward = forward_id, error = ?error, "forward failed; retrying");
                    state.hooks.emit(
                        room_id.0,
                        "forward.failed",
                        serde_json::json!({ "room_id": room_id.0, "forward_id": forward_id, "error": error, "retrying": true }),
                    );
                }
            }
            EngineEvent::PlayerJoined { room_id, .. } | EngineEvent::PlayerLeft { room_id, .. } => {
                if let EngineEvent::PlayerLeft { stream_name, protocol, addr, .. } = &ev {
                    // nginx-rtmp's on_done for players (HLS has no connection that leaves).
                    if *protocol != engine::link::Protocol::Hls {
                        state.hooks.player_left(first_app(&state), stream_name, *addr);
                    }
                }
                let room_id = room_id.0;
                let delta = if matches!(ev, EngineEvent::PlayerJoined { .. }) { 1 } else { -1 };
                let n = handle.count_viewer(room_id, delta);
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = state.viewer_delta(room_id, delta, n).await {
                        tracing::debug!(room = room_id, error = %e, "viewer count not updated");
                    }
                });
            }
        }
    }
}
