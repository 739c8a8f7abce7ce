//! Configuration: `configs/microvibe.toml` (or `--config PATH`), then environment.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, the old stack's
//! environment names (`DATABASE_HOST`, `JWT_SECRET`, ...), `DATABASE_URL` /
//! `REDIS_URL`, and finally `MICROVIBE__SECTION__KEY` (double underscore).
//! Unknown keys and wrong types are errors that name the key.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The development JWT secret shipped in `configs/microvibe.toml`. It is public, so it
/// never signs or verifies a token: `debug` mode replaces it with a random secret kept
/// in `server.data_dir` (see `server::prepare_jwt_secret`), `release` mode refuses to
/// start with it.
pub const DEFAULT_JWT_SECRET: &str = "microvibe-dev-secret-change-me-in-production!!";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    pub rtmp: RtmpConfig,
    pub http_media: HttpMediaConfig,
    pub hls: HlsConfig,
    pub recording: RecordingConfig,
    pub webrtc: WebrtcConfig,
    pub engine: EngineConfig,
    pub streaming: StreamingConfig,
    pub sfu: SfuConfig,
    pub cluster: ClusterConfig,
    pub forward: ForwardConfig,
    pub hooks: HooksConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            jwt: JwtConfig::default(),
            auth: AuthConfig::default(),
            rtmp: RtmpConfig::default(),
            http_media: HttpMediaConfig::default(),
            hls: HlsConfig::default(),
            recording: RecordingConfig::default(),
            webrtc: WebrtcConfig::default(),
            engine: EngineConfig::default(),
            streaming: StreamingConfig::default(),
            sfu: SfuConfig::default(),
            cluster: ClusterConfig::default(),
            forward: ForwardConfig::default(),
            hooks: HooksConfig::default(),
        }
    }
}

/// Restreaming: rooms' streams pushed to other platforms' RTMP/RTMPS ingests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Allow destinations on loopback, private, link-local (and other non-public)
    /// addresses. Off: a user's URL cannot make the server connect into its own
    /// network (SSRF).
    pub allow_private: bool,
    /// Extra CA certificates (PEM) trusted for `rtmps://` destinations, besides
    /// the system's.
    pub ca_file: String,
    /// Most destinations per room.
    pub max_per_room: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self { allow_private: false, ca_file: String::new(), max_per_room: 5 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Debug,
    Release,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub mode: Mode,
    /// Public base URL of the control API (used to build WHIP/WHEP URLs).
    pub public_url: String,
    /// Allowed CORS origins; `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Token for operator endpoints (`/control`, `/api/v1/admin`); empty disables them.
    pub admin_token: String,
    /// Directory for files the server creates itself (the generated development JWT
    /// secret); relative to the current directory.
    pub data_dir: String,
    /// Control API connections open at once (also capped at a quarter of the
    /// process's descriptor limit, the rest being kept for the media engine).
    pub max_connections: usize,
    /// Control API connections open at once from one client address.
    pub max_connections_per_ip: usize,
    /// An API connection (HTTP/1 keep-alive or HTTP/2) with no request in flight for
    /// this long is closed.
    pub idle_timeout_secs: u64,
    /// Time a client has to send a complete HTTP/1 request head.
    pub header_read_timeout_secs: u64,
    /// Requests in flight at once on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8080,
            mode: Mode::Debug,
            public_url: "http://localhost:8080".into(),
            cors_origins: vec!["*".into()],
            body_limit_bytes: 64 * 1024,
            admin_token: String::new(),
            data_dir: "data".into(),
            max_connections: 4096,
            max_connections_per_ip: 256,
            idle_timeout_secs: 60,
            header_read_timeout_secs: 15,
            http2_max_concurrent_streams: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: the embedded SQLite database at `sqlite_path`.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
    pub sslmode: String,
    pub sqlite_path: String,
    pub max_open_conns: usize,
    pub max_idle_conns: usize,
    pub conn_max_lifetime_secs: u64,
    /// PostgreSQL schema (search_path); tests use one each.
    pub schema: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 5432,
            user: "postgres".into(),
            password: String::new(),
            dbname: "microvibe".into(),
            sslmode: "disable".into(),
            sqlite_path: "data/microvibe.db".into(),
            max_open_conns: 16,
            max_idle_conns: 4,
            conn_max_lifetime_secs: 3600,
            schema: "public".into(),
        }
    }
}

impl DatabaseConfig {
    pub fn is_postgres(&self) -> bool {
        !self.host.trim().is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Empty: in-process state (no Redis).
    pub host: String,
    pub port: u16,
    pub password: String,
    pub db: i64,
    /// Prefix for every key this server writes.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { host: String::new(), port: 6379, password: String::new(), db: 0, key_prefix: "microvibe:".into() }
    }
}

impl RedisConfig {
    pub fn is_redis(&self) -> bool {
        !self.host.trim().is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    pub secret: String,
    pub expire_hours: u64,
    /// The `iss` claim of the tokens this deployment issues and accepts; each
    /// deployment should set its own, so that its tokens are refused by the others.
    pub issuer: String,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self { secret: DEFAULT_JWT_SECRET.into(), expire_hours: 24, issuer: "microvibe".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Login attempts allowed per client IP per `login_window_secs`.
    pub login_limit_per_ip: u64,
    /// Failed logins allowed per (username, client IP) per `login_window_secs`:
    /// beyond it that address is refused for that user; other addresses are not, so
    /// failures from elsewhere never lock the owner out.
    pub login_limit_per_user: u64,
    /// Failed logins allowed per username from all addresses together per
    /// `login_window_secs`; beyond it only addresses the user has logged in from
    /// successfully (within `known_address_days`) may still try.
    pub login_limit_per_account: u64,
    pub login_window_secs: u64,
    /// How long an address the user logged in from stays exempt from the per-account
    /// ceiling.
    pub known_address_days: u64,
    /// Registrations allowed per client IP per `register_window_secs`.
    pub register_limit_per_ip: u64,
    pub register_window_secs: u64,
    /// Password hashes (argon2, ~19 MiB each) computed at once; 0 = one per core.
    pub hash_concurrency: usize,
    /// How long a registration or login waits for a hashing slot before 503.
    pub hash_wait_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            login_limit_per_ip: 30,
            login_limit_per_user: 10,
            login_limit_per_account: 200,
            login_window_secs: 300,
            known_address_days: 30,
            register_limit_per_ip: 20,
            register_window_secs: 3600,
            hash_concurrency: 0,
            hash_wait_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    pub listen: String,
    pub apps: Vec<String>,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self { listen: "0.0.0.0:1935".into(), apps: vec!["live".into()] }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpMediaConfig {
    pub listen: String,
    /// Access-Control-Allow-Origin on the media port.
    pub cors_origin: String,
}

impl Default for HttpMediaConfig {
    fn default() -> Self {
        Self { listen: "0.0.0.0:8081".into(), cors_origin: "*".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    pub fragment_secs: u64,
    pub playlist_secs: u64,
    pub path: String,
}

impl Default for HlsConfig {
    fn default() -> Self {
        Self { fragment_secs: 3, playlist_secs: 60, path: String::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    Mp4,
    Flv,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Where recordings go (`{stream_name}/{broadcast start}.mp4`); empty = no recording.
    pub path: String,
    /// Whether a room created without `record` records its broadcasts.
    pub default_record: bool,
    pub format: RecordFormat,
    /// A file is split (at a keyframe) beyond this length or size.
    pub max_file_secs: u64,
    pub max_file_mb: u64,
    /// Bytes of recordings one room, and the whole server, may keep (0 = no limit).
    pub room_quota_mb: u64,
    pub total_quota_mb: u64,
    /// Recording data waiting for the disk, all streams together, at most.
    pub queue_mb: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            path: "data/recordings".into(),
            default_record: false,
            format: RecordFormat::Mp4,
            max_file_secs: 3600,
            max_file_mb: 4096,
            room_quota_mb: 20_480,
            total_quota_mb: 0,
            queue_mb: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebrtcConfig {
    /// Shard N listens on udp_port_base + N.
    pub udp_port_base: u16,
    /// Public addresses advertised as ICE candidates; empty = the listen address.
    pub candidates: Vec<String>,
    /// Address the UDP sockets bind to.
    pub bind: String,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        Self { udp_port_base: 5000, candidates: vec![], bind: "0.0.0.0".into() }
    }
}

/// Where new RTMP/FLV players start (`engine.join_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinStart {
    /// Two keyframes and 45 video frames at once: probing players (ffmpeg, VLC)
    /// show a frame at once, non-probing ones within a second; up to one GOP more
    /// behind live.
    QuickStart,
    /// The latest keyframe: the least latency.
    LiveEdge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    Auto,
    IoUring,
    Epoll,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Number of shards; 0 = one per available core.
    pub shards: usize,
    pub io: IoDriver,
    /// Disable the media engine entirely (control plane only).
    pub enabled: bool,
    /// Pin shard N to core N.
    pub pin_cores: bool,
    /// Per-player write coalescing window (ms); 0 writes every message at once.
    pub merge_window_ms: u64,
    /// TCP_NODELAY on the media ports' connections (false lets Nagle merge writes
    /// further, adding up to a delayed-ACK interval of latency).
    pub tcp_nodelay: bool,
    /// Outgoing RTMP chunk size.
    pub rtmp_chunk_size: u32,
    /// A publisher silent this long may be replaced by a new one with the same key.
    pub idle_publisher_timeout_secs: u64,
    /// Players wait this long for a publisher to come back before the stream ends.
    pub unpublish_grace_secs: u64,
    /// An RTMP player waits this long for a stream that is not live yet.
    pub play_wait_secs: u64,
    /// HTTP-FLV / HLS requests wait this long for a stream before 404.
    pub http_wait_secs: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Per-player queue bound in bytes (beyond it video drops to the next keyframe).
    pub player_queue_bytes: usize,
    /// Idle timeout of media connections (seconds).
    pub idle_timeout_secs: u64,
    /// Bridge every WebRTC-published stream to RTMP/FLV/HLS from its first frame
    /// (HLS and the room's `media` ready at once; costs the Opus → AAC transcoding
    /// of each such stream). false: only while RTMP/FLV/HLS players watch.
    pub webrtc_bridge_always: bool,
    /// Where new RTMP/FLV players start: `quick_start` or `live_edge`.
    pub join_start: JoinStart,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            io: IoDriver::Auto,
            enabled: true,
            pin_cores: false,
            merge_window_ms: 30,
            tcp_nodelay: true,
            rtmp_chunk_size: 4096,
            idle_publisher_timeout_secs: 10,
            unpublish_grace_secs: 5,
            play_wait_secs: 10,
            http_wait_secs: 3,
            max_connections: 20_000,
            max_connections_per_ip: 5_000,
            player_queue_bytes: 4 << 20,
            idle_timeout_secs: 30,
            webrtc_bridge_always: true,
            join_start: JoinStart::QuickStart,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingConfig {
    pub rtmp_server: String,
    pub hls_server: String,
    pub flv_server: String,
    pub rtmp_play_server: String,
    pub whip_server: String,
    pub whep_server: String,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        Self {
            rtmp_server: "rtmp://localhost:1935/live".into(),
            hls_server: "http://localhost:8081/hls".into(),
            flv_server: "http://localhost:8081/flv".into(),
            rtmp_play_server: "rtmp://localhost:1935/live".into(),
            whip_server: "http://localhost:8080/whip".into(),
            whep_server: "http://localhost:8080/whep".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SfuMode {
    Standalone,
    Cluster,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SfuConfig {
    pub enabled: bool,
    pub mode: SfuMode,
    pub cluster_nodes: Vec<String>,
    pub load_balance_method: String,
}

impl Default for SfuConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mode: SfuMode::Standalone,
            cluster_nodes: vec![],
            load_balance_method: "round_robin".into(),
        }
    }
}

/// How placement picks a node (`sfu.load_balance_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalance {
    /// Each pick the next node in id order (a counter shared in Redis).
    RoundRobin,
    /// The node with the lowest load score (players + 10 per stream it originates).
    LeastLoad,
    /// A node at random.
    Random,
}

impl LoadBalance {
    /// The old stack's spellings too (`roundrobin`).
    pub fn parse(s: &str) -> Option<LoadBalance> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "roundrobin" | "round_robin" | "rr" => Some(LoadBalance::RoundRobin),
            "least_load" | "leastload" | "least_loaded" => Some(LoadBalance::LeastLoad),
            "random" => Some(LoadBalance::Random),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalance::RoundRobin => "round_robin",
            LoadBalance::LeastLoad => "least_load",
            LoadBalance::Random => "random",
        }
    }
}

impl SfuConfig {
    /// The placement method (validated at load, so never None after [`Config::validate`]).
    pub fn method(&self) -> LoadBalance {
        LoadBalance::parse(&self.load_balance_method).unwrap_or(LoadBalance::RoundRobin)
    }
}

/// `[hooks]`: outbound HTTP callbacks (see docs/hooks.md): nginx-rtmp's `on_*` hooks
/// (form-encoded; a non-2xx answer denies a publish or play) and signed JSON webhooks
/// for room events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// nginx-rtmp `on_publish`: asked before each publish; empty = off.
    pub on_publish: String,
    /// nginx-rtmp `on_play`: asked before each RTMP / HTTP-FLV / WS-FLV player.
    pub on_play: String,
    /// Told when a publish ends (fire and forget).
    pub on_publish_done: String,
    /// Told when a publish ends or a player leaves (fire and forget).
    pub on_done: String,
    /// Told when a recording file is complete (fire and forget).
    pub on_record_done: String,
    /// Time one callback or webhook request may take (connect to last byte), ms.
    pub timeout_ms: u64,
    /// A webhook endpoint given by three keys (handy from the environment); more in
    /// `[[hooks.webhooks]]`.
    pub webhook_url: String,
    pub webhook_secret: String,
    /// Event types sent to `webhook_url`; empty = all.
    pub webhook_events: Vec<String>,
    /// Delivery attempts of one event to one endpoint (1 s, 2 s, 4 s ... apart).
    pub webhook_max_attempts: u32,
    /// Webhook deliveries waiting at once (all endpoints and rooms); beyond it new
    /// events are dropped (counted in `microvibe_webhook_deliveries{result="dropped"}`).
    pub webhook_queue: usize,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            on_publish: String::new(),
            on_play: String::new(),
            on_publish_done: String::new(),
            on_done: String::new(),
            on_record_done: String::new(),
            timeout_ms: 3000,
            webhook_url: String::new(),
            webhook_secret: String::new(),
            webhook_events: vec![],
            webhook_max_attempts: 6,
            webhook_queue: 10_000,
            webhooks: vec![],
        }
    }
}

/// One `[[hooks.webhooks]]` endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 key of `X-Microvibe-Signature` (at least 16 bytes).
    pub secret: String,
    /// Event types sent here; empty or absent = all.
    #[serde(default)]
    pub events: Vec<String>,
}

impl HooksConfig {
    /// Every webhook endpoint: `webhook_url` first, then `[[hooks.webhooks]]`.
    pub fn endpoints(&self) -> Vec<WebhookConfig> {
        let mut out = vec![];
        if !self.webhook_url.trim().is_empty() {
            out.push(WebhookConfig {
                url: self.webhook_url.clone(),
                secret: self.webhook_secret.clone(),
                events: self.webhook_events.clone(),
            });
        }
        out.extend(self.webhooks.iter().cloned());
        out
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { key: key.into(), message };
        for (key, url) in [
            ("hooks.on_publish", &self.on_publish),
            ("hooks.on_play", &self.on_play),
            ("hooks.on_publish_done", &self.on_publish_done),
            ("hooks.on_done", &self.on_done),
            ("hooks.on_record_done", &self.on_record_done),
        ] {
            if !url.trim().is_empty() {
                check_hook_url(url).map_err(|m| invalid(key, m))?;
            }
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(invalid("hooks.timeout_ms", "must be between 100 and 30000".into()));
        }
        if !(1..=20).contains(&self.webhook_max_attempts) {
            return Err(invalid("hooks.webhook_max_attempts", "must be between 1 and 20".into()));
        }
        if !(1..=1_000_000).contains(&self.webhook_queue) {
            return Err(invalid("hooks.webhook_queue", "must be between 1 and 1000000".into()));
        }
        if self.webhook_url.trim().is_empty() && !self.webhook_secret.is_empty() {
            return Err(invalid("hooks.webhook_secret", "set without hooks.webhook_url".into()));
        }
        for (i, w) in self.endpoints().iter().enumerate() {
            let key = |k: &str| {
                if !self.webhook_url.trim().is_empty() && i == 0 {
                    format!("hooks.webhook_{k}")
                } else {
                    let n = if self.webhook_url.trim().is_empty() { i } else { i - 1 };
                    format!("hooks.webhooks[{n}].{k}")
                }
            };
            check_hook_url(&w.url).map_err(|m| invalid(&key("url"), m))?;
            if w.secret.len() < 16 {
                return Err(invalid(&key("secret"), "must be at least 16 bytes (a random string)".into()));
            }
            for e in &w.events {
                if !crate::hooks::webhooks::EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        &key("events"),
                        format!("unknown event {e:?} (known: {})", crate::hooks::webhooks::EVENTS.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A hook URL must be absolute http(s) with a host.
fn check_hook_url(raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{raw:?}: only http:// and https:// URLs"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    Ok(())
}

/// `[cluster]`: several nodes on one PostgreSQL + Redis (see docs/cluster.md).
/// On when `enabled` or `sfu.mode = "cluster"` (the old stack's `SFU_MODE=cluster`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// This node's name, unique in the cluster (letters, digits, `.`, `_`, `-`);
    /// empty: the advertised host.
    pub node_id: String,
    /// The address other nodes and clients reach this node at; empty: `server.host`
    /// when it is a specific address.
    pub advertise_host: String,
    /// Base URLs given to clients; empty: built from `advertise_host` and the listen ports.
    pub api_url: String,
    pub rtmp_url: String,
    pub media_url: String,
    /// Where other nodes pull this node's streams from (HTTP-FLV, e.g. a pod's own
    /// address behind a public `media_url`); empty: `media_url`.
    pub relay_url: String,
    /// How often a node refreshes its registration and its streams' leases.
    pub heartbeat_ms: u64,
    /// A node (and its leases) not refreshed for this long is gone.
    pub node_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_id: String::new(),
            advertise_host: String::new(),
            api_url: String::new(),
            rtmp_url: String::new(),
            media_url: String::new(),
            relay_url: String::new(),
            heartbeat_ms: 2000,
            node_ttl_ms: 6000,
        }
    }
}

impl Config {
    /// Cluster mode: `cluster.enabled` or `sfu.mode = "cluster"`.
    pub fn cluster_on(&self) -> bool {
        self.cluster.enabled || self.sfu.mode == SfuMode::Cluster
    }

    /// The host this node advertises (validated when the cluster is on).
    pub fn advertise_host(&self) -> String {
        let h = self.cluster.advertise_host.trim();
        if !h.is_empty() {
            return h.to_owned();
        }
        let host = self.server.host.trim();
        if host.is_empty() || host == "0.0.0.0" || host == "::" || host == "[::]" {
            return String::new();
        }
        host.to_owned()
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| Err(ConfigError::Invalid { key: key.into(), message });
        if LoadBalance::parse(&self.sfu.load_balance_method).is_none() {
            return bad(
                "sfu.load_balance_method",
                format!("{:?}: use roundrobin, least_load or random", self.sfu.load_balance_method),
            );
        }
        if !self.cluster_on() {
            return Ok(());
        }
        if !self.database.is_postgres() || !self.redis.is_redis() {
            return bad(
                "sfu.mode",
                "cluster mode needs PostgreSQL (database.host) and Redis (redis.host): the embedded SQLite store and in-process cache serve one node".into(),
            );
        }
        if crate::auth::is_public_secret(&self.jwt.secret) {
            return bad(
                "jwt.secret",
                "cluster mode needs one secret shared by every node (each verifies the others' tokens); set JWT_SECRET"
                    .into(),
            );
        }
        let id = &self.cluster.node_id;
        if id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return bad("cluster.node_id", format!("{id:?}: at most 64 letters, digits, '.', '_' or '-'"));
        }
        if self.advertise_host().is_empty() {
            return bad(
                "cluster.advertise_host",
                "cluster mode needs the address other nodes and clients reach this node at (server.host is unspecified)".into(),
            );
        }
        if self.cluster.heartbeat_ms < 100 || self.cluster.node_ttl_ms < 2 * self.cluster.heartbeat_ms {
            return bad(
                "cluster.node_ttl_ms",
                "heartbeat_ms must be at least 100 and node_ttl_ms at least twice heartbeat_ms".into(),
            );
        }
        Ok(())
    }
}

/// Where a loaded configuration came from (for the startup log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file read; `None`: no file, built-in defaults.
    pub file: Option<PathBuf>,
    /// The environment variables that set keys, by name (values may be secrets).
    pub env_vars: Vec<String>,
}

/// A configuration problem, printed as one line by the binary.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
}

/// The old stack's environment variable names and the keys they set.
const LEGACY_ENV: &[(&str, &str, &str)] = &[
    ("DATABASE_HOST", "database", "host"),
    ("DATABASE_PORT", "database", "port"),
    ("DATABASE_USER", "database", "user"),
    ("DATABASE_PASSWORD", "database", "password"),
    ("DATABASE_DBNAME", "database", "dbname"),
    ("DATABASE_SSLMODE", "database", "sslmode"),
    ("DB_MAX_OPEN_CONNS", "database", "max_open_conns"),
    ("DB_MAX_IDLE_CONNS", "database", "max_idle_conns"),
    ("DB_CONN_MAX_LIFETIME", "database", "conn_max_lifetime_secs"),
    ("REDIS_HOST", "redis", "host"),
    ("REDIS_PORT", "redis", "port"),
    ("REDIS_PASSWORD", "redis", "password"),
    ("REDIS_DB", "redis", "db"),
    ("SERVER_HOST", "server", "host"),
    ("SERVER_PORT", "server", "port"),
    ("SERVER_MODE", "server", "mode"),
    ("JWT_SECRET", "jwt", "secret"),
    ("JWT_EXPIRE", "jwt", "expire_hours"),
    ("SFU_ENABLED", "sfu", "enabled"),
    ("SFU_MODE", "sfu", "mode"),
    ("SFU_CLUSTER_NODES", "sfu", "cluster_nodes"),
    ("SFU_LOAD_BALANCE_METHOD", "sfu", "load_balance_method"),
    ("STREAMING_RTMP_SERVER", "streaming", "rtmp_server"),
    ("STREAMING_HLS_SERVER", "streaming", "hls_server"),
    ("STREAMING_FLV_SERVER", "streaming", "flv_server"),
    ("STREAMING_RTMP_PLAY_SERVER", "streaming", "rtmp_play_server"),
];

impl Config {
    /// Loads the config: `path` if given (must exist), else `configs/microvibe.toml`
    /// when present, else defaults; then the environment `env` on top.
    pub fn load(path: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        Self::load_with_source(path, env).map(|(cfg, _)| cfg)
    }

    /// [`Config::load`], also telling where the settings came from.
    pub fn load_with_source(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<(Config, ConfigSource), ConfigError> {
        let default_path = Path::new("configs/microvibe.toml");
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if default_path.exists() => Some(default_path.to_path_buf()),
            None => None,
        };
        let (text, path) = match &file {
            Some(p) => {
                (std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.clone(), source })?, p.clone())
            }
            None => (String::new(), PathBuf::from("(defaults)")),
        };
        let mut table: toml::Table = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.clone(), message: one_line(&e.to_string()) })?;
        let env_vars = apply_env(&mut table, env)?;
        let cfg: Config = Config::deserialize(toml::Value::Table(table))
            .map_err(|e| ConfigError::Parse { path, message: one_line(&e.to_string()) })?;
        cfg.validate()?;
        Ok((cfg, ConfigSource { file, env_vars }))
    }

    /// Checks values a type cannot express. `release` mode demands a real JWT secret;
    /// `debug` mode accepts an empty or the shipped one (and generates its own).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.mode == Mode::Release {
            if self.jwt.secret == DEFAULT_JWT_SECRET {
                return Err(ConfigError::Invalid {
                    key: "jwt.secret".into(),
                    message: "release mode refuses the shipped default secret; set JWT_SECRET (or MICROVIBE__JWT__SECRET) to a random string of at least 32 bytes".into(),
                });
            }
            if self.jwt.secret.len() < 32 {
                return Err(ConfigError::Invalid {
                    key: "jwt.secret".into(),
                    message: format!(
                        "release mode needs a secret of at least 32 bytes (this one has {}); set JWT_SECRET (or MICROVIBE__JWT__SECRET)",
                        self.jwt.secret.len()
                    ),
                });
            }
        }
        if self.jwt.issuer.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "jwt.issuer".into(),
                message: "must not be empty (name this deployment, e.g. \"live.example.com\")".into(),
            });
        }
        if self.server.data_dir.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "server.data_dir".into(),
                message: "must not be empty (\".\" is the current directory)".into(),
            });
        }
        if self.jwt.expire_hours == 0 || self.jwt.expire_hours > 24 * 365 {
            return Err(ConfigError::Invalid {
                key: "jwt.expire_hours".into(),
                message: "must be between 1 and 8760".into(),
            });
        }
        for (key, v) in [
            ("server.max_connections", self.server.max_connections as u64),
            ("server.max_connections_per_ip", self.server.max_connections_per_ip as u64),
            ("server.idle_timeout_secs", self.server.idle_timeout_secs),
            ("server.header_read_timeout_secs", self.server.header_read_timeout_secs),
            ("server.http2_max_concurrent_streams", u64::from(self.server.http2_max_concurrent_streams)),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid { key: key.into(), message: "must be at least 1".into() });
            }
        }
        if self.database.max_open_conns == 0 {
            return Err(ConfigError::Invalid {
                key: "database.max_open_conns".into(),
                message: "must be at least 1".into(),
            });
        }
        for (key, v) in [
            ("recording.max_file_secs", self.recording.max_file_secs),
            ("recording.max_file_mb", self.recording.max_file_mb),
            ("recording.queue_mb", self.recording.queue_mb),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid { key: key.into(), message: "must be at least 1".into() });
            }
        }
        if self.rtmp.apps.is_empty() {
            return Err(ConfigError::Invalid { key: "rtmp.apps".into(), message: "must list at least one app".into() });
        }
        for (key, addr) in [("rtmp.listen", &self.rtmp.listen), ("http_media.listen", &self.http_media.listen)] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: format!("{addr:?} is not an address like 0.0.0.0:1935"),
                });
            }
        }
        if !(128..=65536).contains(&self.engine.rtmp_chunk_size) {
            return Err(ConfigError::Invalid {
                key: "engine.rtmp_chunk_size".into(),
                message: "must be between 128 and 65536".into(),
            });
        }
        if self.engine.merge_window_ms > 1000 {
            return Err(ConfigError::Invalid {
                key: "engine.merge_window_ms".into(),
                message: "must be at most 1000".into(),
            });
        }
        if self.hls.fragment_secs == 0 || self.hls.playlist_secs < self.hls.fragment_secs {
            return Err(ConfigError::Invalid {
                key: "hls.playlist_secs".into(),
                message: "fragment_secs must be > 0 and playlist_secs >= fragment_secs".into(),
            });
        }
        if self.sfu.enabled && self.webrtc.udp_port_base > 0 {
            let shards = if self.engine.shards > 0 {
                self.engine.shards
            } else {
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
            };
            let last = self.webrtc.udp_port_base as usize + shards - 1;
            if last > u16::MAX as usize {
                return Err(ConfigError::Invalid {
                    key: "webrtc.udp_port_base".into(),
                    message: format!(
                        "{} shards need UDP ports {}..{last}, beyond 65535; lower it or engine.shards",
                        shards, self.webrtc.udp_port_base
                    ),
                });
            }
        }
        if !(1..=50).contains(&self.forward.max_per_room) {
            return Err(ConfigError::Invalid {
                key: "forward.max_per_room".into(),
                message: "must be between 1 and 50".into(),
            });
        }
        self.validate_cluster()?;
        self.hooks.validate()?;
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "server.body_limit_bytes".into(),
                message: "must be at least 1024".into(),
            });
        }
        Ok(())
    }

    /// The effective config as TOML with every secret replaced by `"***"`.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        let webhook_secrets = c.hooks.webhooks.iter_mut().map(|w| &mut w.secret);
        for s in [
            &mut c.database.password,
            &mut c.redis.password,
            &mut c.jwt.secret,
            &mut c.server.admin_token,
            &mut c.hooks.webhook_secret,
        ]
        .into_iter()
        .chain(webhook_secrets)
        {
            if !s.is_empty() {
                *s = "***".into();
            }
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The listen address of the control API.
    pub fn listen_addr(&self) -> String {
        if self.server.host.contains(':') {
            format!("[{}]:{}", self.server.host, self.server.port)
        } else {
            format!("{}:{}", self.server.host, self.server.port)
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes environment overrides into the parsed TOML table; returns the names of the
/// variables used.
fn apply_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<Vec<String>, ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).expect("default config serialises");
    let mut used = vec![];
    for (var, section, key) in LEGACY_ENV {
        if let Some(v) = env.get(*var) {
            set_key(table, &defaults, section, key, v, var)?;
            used.push(var.to_string());
        }
    }
    if let Some(url) = env.get("DATABASE_URL") {
        apply_database_url(table, &defaults, url)?;
        used.push("DATABASE_URL".into());
    }
    if let Some(url) = env.get("REDIS_URL") {
        apply_redis_url(table, &defaults, url)?;
        used.push("REDIS_URL".into());
    }
    for (var, v) in env {
        let Some(rest) = var.strip_prefix("MICROVIBE__") else { continue };
        let mut parts = rest.splitn(2, "__");
        let (Some(section), Some(key)) = (parts.next(), parts.next()) else {
            return Err(ConfigError::Env { var: var.clone(), message: "expected MICROVIBE__SECTION__KEY".into() });
        };
        set_key(table, &defaults, &section.to_ascii_lowercase(), &key.to_ascii_lowercase(), v, var)?;
        used.push(var.clone());
    }
    Ok(used)
}

/// Sets `section.key` from a string, converted to the type of the default value.
fn set_key(
    table: &mut toml::Table,
    defaults: &toml::Table,
    section: &str,
    key: &str,
    raw: &str,
    var: &str,
) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Env { var: var.into(), message };
    let Some(toml::Value::Table(dsec)) = defaults.get(section) else {
        return Err(err(format!("unknown config section {section:?}")));
    };
    let Some(dval) = dsec.get(key) else {
        return Err(err(format!("unknown config key {section}.{key}")));
    };
    let value = match dval {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim().parse::<i64>().map_err(|_| err(format!("{section}.{key} wants an integer, got {raw:?}")))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(err(format!("{section}.{key} wants true/false, got {raw:?}"))),
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    };
    let sec = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match sec {
        toml::Value::Table(t) => {
            t.insert(key.to_string(), value);
            Ok(())
        }
        _ => Err(err(format!("config section {section} is not a table"))),
    }
}

fn apply_database_url(table: &mut toml::Table, d: &toml::Table, raw: &str) -> Result<(), ConfigError> {
    let var = "DATABASE_URL";
    let u = url::Url::parse(raw).map_err(|e| ConfigError::Env { var: var.into(), message: e.to_string() })?;
    match u.scheme() {
        "postgres" | "postgresql" => {
            set_key(table, d, "database", "host", u.host_str().unwrap_or("127.0.0.1"), var)?;
            set_key(table, d, "database", "port", &u.port().unwrap_or(5432).to_string(), var)?;
            if !u.username().is_empty() {
                set_key(table, d, "database", "user", &decode(u.username()), var)?;
            }
            if let Some(p) = u.password() {
                set_key(table, d, "database", "password", &decode(p), var)?;
            }
            let db = u.path().trim_start_matches('/');
            if !db.is_empty() {
                set_key(table, d, "database", "dbname", db, var)?;
            }
            for (k, v) in u.query_pairs() {
                if k == "sslmode" {
                    set_key(table, d, "database", "sslmode", &v, var)?;
                }
            }
            Ok(())
        }
        "sqlite" => {
            let path = raw.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            set_key(table, d, "database", "host", "", var)?;
            set_key(table, d, "database", "sqlite_path", path, var)
        }
        s => Err(ConfigError::Env {
            var: var.into(),
            message: format!("unsupported scheme {s:?} (postgres:// or sqlite:)"),
        }),
    }
}

fn apply_redis_url(table: &mut toml::Table, d: &toml::Table, raw: &str) -> Result<(), ConfigError> {
    let var = "REDIS_URL";
    let u = url::Url::parse(raw).map_err(|e| ConfigError::Env { var: var.into(), message: e.to_string() })?;
    if u.scheme() != "redis" {
        return Err(ConfigError::Env {
            var: var.into(),
            message: format!("unsupported scheme {:?} (redis://)", u.scheme()),
        });
    }
    set_key(table, d, "redis", "host", u.host_str().unwrap_or("127.0.0.1"), var)?;
    set_key(table, d, "redis", "port", &u.port().unwrap_or(6379).to_string(), var)?;
    if let Some(p) = u.password() {
        set_key(table, d, "redis", "password", &decode(p), var)?;
    }
    let db = u.path().trim_start_matches('/');
    if !db.is_empty() {
        set_key(table, d, "redis", "db", db, var)?;
    }
    Ok(())
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| if v.is_empty() { k.into_owned() } else { format!("{k}={v}") })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests;
