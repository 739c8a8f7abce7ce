//! Persistent storage: one [`Store`] trait, two backends.
//!
//! - [`sqlite::SqliteStore`]: the embedded default (rusqlite, bundled SQLite).
//! - [`postgres::PgStore`]: production (tokio-postgres + deadpool-postgres).
//!
//! Both run the same conformance suite (`tests/store_conformance.rs`).

pub mod migrations;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A storage failure, by whose fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was hit (the field that collided).
    #[error("{0} already exists")]
    Duplicate(&'static str),
    /// The backend cannot be reached (connection refused, pool timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema is behind the binary.
    #[error("database schema is at version {have}, this binary needs {want}: run `microvibe migrate`")]
    SchemaBehind { have: i64, want: i64 },
    /// Anything else the backend reported.
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub nickname: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A room is a channel: `idle` → `live` → `idle` … any number of times (each live
/// period is a [`Broadcast`]). Deleting a room retires it; nothing else does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomStatus {
    Idle,
    Live,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomStatus::Idle => "idle",
            RoomStatus::Live => "live",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "idle" => Some(RoomStatus::Idle),
            "live" => Some(RoomStatus::Live),
            _ => None,
        }
    }
    pub const ALL: [RoomStatus; 2] = [RoomStatus::Idle, RoomStatus::Live];
}

/// Why a broadcast ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The publisher left and did not come back within the grace period.
    PublisherLeft,
    /// The owner ended it (`POST /api/v1/live/{id}/end`).
    EndedByOwner,
    /// nginx-rtmp's `on_publish_done` callback.
    PublishDone,
    /// Found live at start-up with no stream behind it (the server had stopped).
    ServerRestart,
    /// Cluster: the origin node's lease ran out (the node died) and no publisher
    /// came back on any node within the grace period.
    NodeLost,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::PublisherLeft => "publisher_left",
            EndReason::EndedByOwner => "ended_by_owner",
            EndReason::PublishDone => "publish_done",
            EndReason::ServerRestart => "server_restart",
            EndReason::NodeLost => "node_lost",
        }
    }
}

/// One live period of a room.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub id: i64,
    pub room_id: i64,
    pub started_at: DateTime<Utc>,
    /// None while it is live.
    pub ended_at: Option<DateTime<Utc>>,
    pub peak_viewers: i64,
    /// One of [`EndReason::as_str`], once ended.
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushProtocol {
    Rtmp,
    Webrtc,
}

impl PushProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            PushProtocol::Rtmp => "rtmp",
            PushProtocol::Webrtc => "webrtc",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rtmp" => Some(PushProtocol::Rtmp),
            "webrtc" => Some(PushProtocol::Webrtc),
            _ => None,
        }
    }
}

/// A place a room's stream is pushed to while it is live (restreaming): an RTMP or
/// RTMPS ingest URL and its stream key (a secret: never logged, shown masked).
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub id: i64,
    pub room_id: i64,
    pub url: String,
    pub key: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Room {
    pub id: i64,
    pub owner_id: i64,
    pub title: String,
    pub description: String,
    pub stream_name: String,
    pub stream_key: String,
    pub push_protocol: PushProtocol,
    pub status: RoomStatus,
    /// The current (while live) or last broadcast's start; None before the first.
    pub started_at: Option<DateTime<Utc>>,
    /// The last broadcast's end; None while live or before the first.
    pub ended_at: Option<DateTime<Utc>>,
    /// The current or last broadcast's peak.
    pub peak_viewers: i64,
    /// The broadcast in progress (Some exactly while live).
    pub broadcast_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its broadcasts are recorded.
    pub record: bool,
    /// Watching needs a play token (docs/private-rooms.md).
    pub private: bool,
    /// The room's play-token generation: tokens carry it, raising it revokes them.
    pub play_epoch: i64,
}

#[derive(Debug, Clone)]
pub struct NewRoom {
    pub owner_id: i64,
    pub title: String,
    pub description: String,
    pub stream_name: String,
    pub stream_key: String,
    /// Hex SHA-256 of the key: the lookup index (the key itself is compared in
    /// constant time after the lookup).
    pub stream_key_hash: String,
    pub push_protocol: PushProtocol,
    pub private: bool,
    pub record: bool,
}

/// One recording file of a room (a broadcast split by duration or size has several).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: i64,
    pub room_id: i64,
    pub broadcast_id: Option<i64>,
    pub stream_name: String,
    /// Relative to `recording.path`.
    pub path: String,
    /// "mp4" or "flv".
    pub format: String,
    /// "recording" (being written), "ready" or "failed" (stopped by an error; what
    /// it holds may still play).
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub codecs: Option<String>,
    pub error: Option<String>,
}

/// What a finished recording file holds.
#[derive(Debug, Clone, Default)]
pub struct RecordingEnd {
    pub status: String,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub codecs: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RoomFilter {
    pub status: Option<RoomStatus>,
    pub owner_id: Option<i64>,
    /// Leave private rooms out (public listings).
    pub public_only: bool,
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

/// The storage operations the services need. Every method is one short transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations; returns the versions (and names) that ran.
    async fn migrate(&self) -> StoreResult<Vec<String>>;
    /// (current schema version, latest version this binary knows).
    async fn schema_version(&self) -> StoreResult<(i64, i64)>;

    async fn create_user(&self, username: &str, nickname: &str, password_hash: &str) -> StoreResult<User>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    /// Usernames match whatever their case (they are ASCII).
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;

    async fn create_room(&self, room: &NewRoom) -> StoreResult<Room>;
    async fn room_by_id(&self, id: i64) -> StoreResult<Option<Room>>;
    async fn room_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<Room>>;
    async fn room_by_stream_name(&self, stream_name: &str) -> StoreResult<Option<Room>>;
    /// A page of rooms (newest first) and the total count for the filter.
    async fn list_rooms(&self, filter: &RoomFilter) -> StoreResult<(Vec<Room>, i64)>;
    async fn update_room_text(
        &self,
        id: i64,
        title: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Room>>;
    /// An idle room goes live with a new broadcast (`started_at` = now, `ended_at`
    /// cleared, peak 0). A live room stays in its broadcast (a publisher reconnect or
    /// takeover). Returns the room after and whether a broadcast started; None when
    /// there is no such room.
    async fn start_broadcast(&self, room_id: i64) -> StoreResult<Option<(Room, bool)>>;
    /// A live room's broadcast ends (`ended_at` = now on both) and the room is idle
    /// again. None when the room is not live (or does not exist).
    async fn end_broadcast(&self, room_id: i64, reason: EndReason) -> StoreResult<Option<Room>>;
    /// A page of a room's broadcasts (newest first) and their total.
    async fn list_broadcasts(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Broadcast>, i64)>;
    async fn set_stream_key(&self, id: i64, stream_key: &str, key_hash: &str) -> StoreResult<Option<Room>>;
    /// Makes the room private or public; None when there is no such room.
    async fn set_room_private(&self, id: i64, private: bool) -> StoreResult<Option<Room>>;
    /// Raises the room's play-token generation by one (revoking its tokens).
    async fn bump_play_epoch(&self, id: i64) -> StoreResult<Option<Room>>;
    /// Every private room (what the engine must check tokens for).
    async fn private_rooms(&self) -> StoreResult<Vec<Room>>;
    /// Raises the room's and its current broadcast's peak to `viewers` (never lowers).
    async fn raise_peak_viewers(&self, id: i64, viewers: i64) -> StoreResult<()>;
    async fn delete_room(&self, id: i64) -> StoreResult<bool>;
    /// Number of rooms in each status.
    async fn count_rooms_by_status(&self) -> StoreResult<Vec<(RoomStatus, i64)>>;

    /// Sets whether the room's broadcasts are recorded.
    async fn set_room_record(&self, id: i64, record: bool) -> StoreResult<Option<Room>>;
    /// A new recording file (status "recording"); a path already known is a Duplicate.
    async fn create_recording(
        &self,
        room_id: i64,
        broadcast_id: Option<i64>,
        stream_name: &str,
        path: &str,
        format: &str,
    ) -> StoreResult<Recording>;
    /// The file at `path` is complete (or failed). None when no recording has that path.
    async fn finish_recording(&self, path: &str, end: &RecordingEnd) -> StoreResult<Option<Recording>>;
    async fn recording_by_id(&self, id: i64) -> StoreResult<Option<Recording>>;
    /// A page of a room's recordings (newest first) and their total.
    async fn list_recordings(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Recording>, i64)>;
    async fn delete_recording(&self, id: i64) -> StoreResult<bool>;
    /// Bytes of the recordings of one room, or of all rooms.
    async fn recording_bytes(&self, room_id: Option<i64>) -> StoreResult<i64>;
    /// Recordings still marked "recording" (a crash left them so; at start-up).
    async fn unfinished_recordings(&self) -> StoreResult<Vec<Recording>>;

    /// Adds a forward to a room unless it has `max` already (then None).
    async fn create_forward(&self, room_id: i64, url: &str, key: &str, max: i64) -> StoreResult<Option<Forward>>;
    /// A room's forwards, oldest first.
    async fn list_forwards(&self, room_id: i64) -> StoreResult<Vec<Forward>>;
    /// Turns a room's forward on or off; None when the room has no such forward.
    async fn set_forward_enabled(&self, room_id: i64, id: i64, enabled: bool) -> StoreResult<Option<Forward>>;
    /// Deletes a room's forward; false when the room has no such forward.
    async fn delete_forward(&self, room_id: i64, id: i64) -> StoreResult<bool>;

    /// Records a revoked token (its `jti`) until `expires_at`, when it would be
    /// refused anyway. Revoking again is not an error.
    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// The revocations still in force at `now`: (jti, expires_at).
    async fn revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Deletes the revocations expired at `now`; returns how many.
    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Clamp paging input to sane bounds: (limit, offset).
pub fn page_bounds(filter: &RoomFilter) -> (i64, i64) {
    paging(filter.page, filter.page_size)
}

/// (limit, offset) of a 1-based page, the size clamped to 1..=100.
pub fn paging(page: u32, page_size: u32) -> (i64, i64) {
    let size = page_size.clamp(1, 100) as i64;
    let page = page.max(1) as i64;
    (size, (page - 1) * size)
}
