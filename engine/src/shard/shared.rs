//! What every shard shares (all `Sync`): the config, the shards' inboxes and
//! counters, connection admission, WebRTC publishers' codecs and pending viewers,
//! and the errors of starting.

use super::ShardMsg;
use crate::config::EngineConfig;
use crate::link::EventSink;
use crate::link::inbox::Inbox;
use crate::proto::http::StreamName;
use crate::stats::ShardStats;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind { addr: std::net::SocketAddr, key: &'static str, source: std::io::Error },
    #[error("shard {shard}: cannot start the {driver} runtime: {source}")]
    Runtime { shard: usize, driver: &'static str, source: std::io::Error },
    #[error("cannot start shard thread: {0}")]
    Thread(std::io::Error),
}

/// Viewer sessions not connected yet, by client address and by stream, for the
/// whole engine.
#[derive(Debug, Default)]
pub struct PendingCounts {
    pub(crate) total: usize,
    pub(crate) per_ip: HashMap<std::net::IpAddr, usize>,
    pub(crate) per_stream: HashMap<StreamName, usize>,
}

/// What a WebRTC publisher sends: subscribers must be answered with the same.
#[derive(Debug, Clone)]
pub struct PublisherCodecs {
    pub video: Option<crate::proto::webrtc::Codec>,
    /// The H.264 `profile-level-id` in use, if H.264.
    pub h264_profile: Option<String>,
}

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
    pub(crate) next_subscriber_shard: AtomicUsize,
    /// What each WebRTC publisher sends (video codec, H.264 profile), so that
    /// subscribers on any shard answer with the same codec. Touched only when
    /// sessions are created, never on the media path.
    pub rtc_codecs: Mutex<HashMap<StreamName, PublisherCodecs>>,
    /// WebRTC viewer sessions not connected yet (see `rtc::PendingSlot`).
    pub rtc_pending: Mutex<PendingCounts>,
    /// Lines about peers' bad input: one per address per interval.
    pub peer_log: Mutex<crate::log_limit::LogLimiter>,
    /// A JSON object the control plane keeps current (cluster mode: the cluster's
    /// totals and each node's figures), shown as `cluster` in `/stat.json`.
    pub cluster_stat: Mutex<Option<Arc<str>>>,
    /// The recordings' disk writer (when `recording_path` is set).
    pub disk: Option<super::disk::DiskWriter>,
    /// The private rooms' streams (the serve layer's admission reads it); None until the
    /// control plane has sent the first list. Read once per viewer admission.
    pub access: std::sync::RwLock<Option<HashMap<StreamName, crate::link::RoomAccess>>>,
}

impl EngineShared {
    /// The shared state of a new engine: `cfg.shard_count()` inboxes and counters,
    /// a fresh DTLS certificate.
    pub fn new(cfg: EngineConfig, events: EventSink) -> Result<Self, StartError> {
        let disk = match cfg.recording_path.as_os_str().is_empty() {
            true => None,
            false => Some(
                super::disk::DiskWriter::start(cfg.recording_path.clone(), cfg.recording_queue_bytes, events.clone())
                    .map_err(StartError::Thread)?,
            ),
        };
        let n = cfg.shard_count();
        Ok(EngineShared {
            inboxes: (0..n).map(|_| Arc::new(Inbox::new(cfg.shard_queue))).collect(),
            stats: (0..n).map(|_| Arc::new(ShardStats::default())).collect(),
            events,
            next_id: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            started: Instant::now(),
            cert: crate::proto::webrtc::DtlsCertificate::generate()
                .map_err(|e| StartError::Thread(std::io::Error::other(format!("DTLS certificate: {e}"))))?,
            next_subscriber_shard: AtomicUsize::new(0),
            rtc_codecs: Mutex::new(HashMap::new()),
            rtc_pending: Mutex::new(PendingCounts::default()),
            peer_log: Mutex::new(crate::log_limit::LogLimiter::default()),
            cluster_stat: Mutex::new(None),
            disk,
            // Without a key nothing is private: the table is complete (empty) at once.
            access: std::sync::RwLock::new(if cfg.play_key.is_some() { None } else { Some(HashMap::new()) }),
            cfg,
        })
    }

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
    pub fn tags_unavailable(&self, stream_name: &str) -> Option<String> {
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
