//! Application state shared by routes and services, and backend construction.

use crate::auth::JwtKeys;
use crate::cache::{Cache, memory::MemoryCache, redis::RedisCache};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, postgres::PgStore, sqlite::SqliteStore};
use std::sync::Arc;

/// The engine as seen from the control plane (implemented over the control link).
#[async_trait::async_trait]
pub trait EngineControl: Send + Sync + 'static {
    /// Creates a WebRTC session (WHIP publisher / WHEP subscriber); the SDP answer.
    async fn create_webrtc(
        &self,
        stream_name: &str,
        role: engine::serve::rtc::RtcRole,
        offer: String,
    ) -> Result<engine::serve::rtc::RtcAnswer, engine::serve::rtc::RtcError>;
    /// Ends a WebRTC session by its engine id.
    async fn delete_webrtc(&self, engine_session: &str) -> bool;
    /// Disconnects the publisher and players of a stream (room ended or deleted).
    fn drop_stream(&self, stream_name: &str);
    /// Problems with a stream's media that viewers should know about.
    fn warnings(&self, stream_name: &str) -> Vec<String>;
    /// What the stream carries (codecs, resolution), once known.
    fn media(&self, stream_name: &str) -> Option<serde_json::Value>;
    /// Players connected now, by protocol ("rtmp", "http-flv", "ws-flv", "hls" (sessions),
    /// "webrtc").
    fn players(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    /// Viewers of a room connected to this engine now, counted from its own events
    /// (the truth the cache's count is rebuilt from). None: no engine count.
    fn viewers(&self, _room_id: i64) -> Option<i64> {
        None
    }
    /// Media bytes sent since start (all shards).
    fn bytes_out(&self) -> u64 {
        0
    }
    /// Viewers connected to this engine now, by room id.
    fn room_viewers(&self) -> Vec<(i64, i64)> {
        Vec::new()
    }
    /// The `cluster` object of `/stat.json` (a JSON object; cluster mode only).
    fn set_cluster_stat(&self, _json: String) {}
    /// Start (`Some`) or stop recording a live stream.
    fn record(&self, _stream_name: engine::proto::http::StreamName, _spec: Option<engine::link::RecordSpec>) {}
    /// One room's access: `Some((room_id, epoch))` private, None public.
    fn set_access(&self, _stream_name: &str, _access: Option<(i64, u32)>) {}
    /// Every private room: (stream_name, room_id, epoch); the others are public.
    fn replace_access(&self, _private: Vec<(String, i64, u32)>) {}
    /// Push a room's stream to exactly these destinations while it is live here
    /// (restreaming; ignored by the engine when the stream is not live on it).
    fn set_forwards(&self, _room_id: i64, _stream_name: &str, _targets: Vec<engine::link::ForwardTarget>) {}
}

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn Cache>,
    pub jwt: JwtKeys,
    /// Bounds the argon2 work of registrations and logins (concurrency and memory).
    pub passwords: Arc<crate::auth::PasswordPool>,
    pub metrics: Arc<Metrics>,
    /// Held while the revoked tokens are reloaded from the store into the cache.
    pub(crate) revocations_reload: Arc<tokio::sync::Mutex<()>>,
    pub engine: Option<Arc<dyn EngineControl>>,
    /// WHIP/WHEP sessions by their public (unguessable) id.
    pub rtc_sessions: Arc<std::sync::Mutex<std::collections::HashMap<String, RtcSessionRef>>>,
    /// Cluster mode: membership, origin leases and placement (None: one node).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Restreaming: each forward's last state, by forward id (from the engine).
    pub forward_status: Arc<std::sync::Mutex<std::collections::HashMap<i64, crate::services::forwards::ForwardStatus>>>,
    /// Outbound hooks: nginx-rtmp-style callbacks and webhooks (docs/hooks.md).
    pub hooks: Arc<crate::hooks::Hooks>,
}

/// What the control plane remembers of a WHIP/WHEP session.
#[derive(Debug, Clone)]
pub struct RtcSessionRef {
    pub engine_id: String,
    pub stream_name: String,
    pub publisher: bool,
    pub room_id: i64,
    pub etag: String,
}

impl AppState {
    pub fn new(cfg: Config, store: Arc<dyn Store>, cache: Arc<dyn Cache>) -> Self {
        if crate::auth::is_public_secret(&cfg.jwt.secret) {
            tracing::warn!(
                "jwt.secret is empty or the publicly known shipped one: signing tokens with a random secret that lasts until this process exits"
            );
        }
        let jwt = JwtKeys::new(&cfg.jwt.secret, &cfg.jwt.issuer, cfg.jwt.expire_hours);
        let passwords = Arc::new(crate::auth::PasswordPool::new(
            cfg.auth.hash_concurrency,
            std::time::Duration::from_millis(cfg.auth.hash_wait_ms),
        ));
        let metrics = Arc::new(Metrics::new());
        let hooks = crate::hooks::Hooks::new(&cfg, metrics.clone());
        Self {
            passwords,
            cfg: Arc::new(cfg),
            store,
            cache,
            jwt,
            metrics,
            hooks: Arc::new(hooks),
            revocations_reload: Arc::default(),
            engine: None,
            rtc_sessions: Arc::default(),
            cluster: None,
            forward_status: Arc::default(),
        }
    }

    pub fn with_engine(mut self, engine: Arc<dyn EngineControl>) -> Self {
        self.engine = Some(engine);
        self
    }

    pub fn with_cluster(mut self, cluster: Arc<crate::cluster::Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    pub(crate) fn engine_drop_stream(&self, stream_name: &str) {
        if let Some(e) = &self.engine {
            e.drop_stream(stream_name);
        }
    }

    pub(crate) fn engine_warnings(&self, stream_name: &str) -> Vec<String> {
        self.engine.as_ref().map(|e| e.warnings(stream_name)).unwrap_or_default()
    }

    pub(crate) fn engine_media(&self, stream_name: &str) -> Option<serde_json::Value> {
        self.engine.as_ref().and_then(|e| e.media(stream_name))
    }
}

/// Opens the configured store (SQLite when `database.host` is empty).
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, StoreError> {
    if cfg.database.is_postgres() {
        Ok(Arc::new(PgStore::connect(&cfg.database).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(&cfg.database.sqlite_path)?))
    }
}

/// Opens the configured cache (in-process when `redis.host` is empty).
pub fn open_cache(cfg: &Config) -> anyhow::Result<Arc<dyn Cache>> {
    if cfg.redis.is_redis() {
        Ok(Arc::new(RedisCache::new(&cfg.redis).map_err(|e| anyhow::anyhow!("redis: {e}"))?))
    } else {
        Ok(Arc::new(MemoryCache::new()))
    }
}
