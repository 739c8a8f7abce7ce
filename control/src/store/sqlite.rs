//! The embedded SQLite backend (rusqlite, bundled). One connection behind a mutex,
//! used from `spawn_blocking`: SQLite serialises writers anyway, and the control
//! plane's query rate is small.

use super::migrations::{self, SQLITE};
use super::*;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn map_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if f.code == rusqlite::ErrorCode::ConstraintViolation {
            let m = msg.clone().unwrap_or_default();
            if m.contains("username") {
                return StoreError::Duplicate("username");
            }
            if m.contains("stream_name") {
                return StoreError::Duplicate("stream_name");
            }
            if m.contains("stream_key") {
                return StoreError::Duplicate("stream_key");
            }
            if m.contains("recordings.path") {
                return StoreError::Duplicate("recording path");
            }
        }
        if matches!(f.code, rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::DatabaseBusy) {
            return StoreError::Unavailable(e.to_string());
        }
    }
    StoreError::Backend(e.to_string())
}

const ROOM_COLS: &str = "id, owner_id, title, description, stream_name, stream_key, push_protocol, status, \
                         started_at, ended_at, peak_viewers, created_at, updated_at, broadcast_id, record, private, play_epoch";
const RECORDING_COLS: &str = "id, room_id, broadcast_id, stream_name, path, format, status, started_at, ended_at, \
                              duration_ms, size_bytes, codecs, error";

fn recording_from_row(r: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        id: r.get(0)?,
        room_id: r.get(1)?,
        broadcast_id: r.get(2)?,
        stream_name: r.get(3)?,
        path: r.get(4)?,
        format: r.get(5)?,
        status: r.get(6)?,
        started_at: r.get(7)?,
        ended_at: r.get(8)?,
        duration_ms: r.get(9)?,
        size_bytes: r.get(10)?,
        codecs: r.get(11)?,
        error: r.get(12)?,
    })
}
const BROADCAST_COLS: &str = "id, room_id, started_at, ended_at, peak_viewers, end_reason";

fn broadcast_from_row(r: &Row<'_>) -> rusqlite::Result<Broadcast> {
    Ok(Broadcast {
        id: r.get(0)?,
        room_id: r.get(1)?,
        started_at: r.get(2)?,
        ended_at: r.get(3)?,
        peak_viewers: r.get(4)?,
        end_reason: r.get(5)?,
    })
}

fn room_from_row(r: &Row<'_>) -> rusqlite::Result<Room> {
    let proto: String = r.get(6)?;
    let status: String = r.get(7)?;
    Ok(Room {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        title: r.get(2)?,
        description: r.get(3)?,
        stream_name: r.get(4)?,
        stream_key: r.get(5)?,
        push_protocol: PushProtocol::parse(&proto).unwrap_or(PushProtocol::Rtmp),
        status: RoomStatus::parse(&status).unwrap_or(RoomStatus::Idle),
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
        peak_viewers: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        broadcast_id: r.get(13)?,
        record: r.get(14)?,
        private: r.get::<_, i64>(15)? != 0,
        play_epoch: r.get(16)?,
    })
}

const FORWARD_COLS: &str = "id, room_id, url, key, enabled, created_at";

fn forward_from_row(r: &Row<'_>) -> rusqlite::Result<Forward> {
    Ok(Forward {
        id: r.get(0)?,
        room_id: r.get(1)?,
        url: r.get(2)?,
        key: r.get(3)?,
        enabled: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        nickname: r.get(2)?,
        password_hash: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

const USER_COLS: &str = "id, username, nickname, password_hash, created_at, updated_at";

impl SqliteStore {
    /// Opens (creating the file and its directory if needed) the database at `path`.
    pub fn open(path: &str) -> StoreResult<Self> {
        if path != ":memory:" {
            if let Some(dir) = Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
                }
            }
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Unavailable(format!("{path}: {e}")))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(map_err)?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(map_err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .map_err(map_err)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> StoreResult<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means a panic in another query; the connection is still usable.
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c).map_err(map_err)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        self.run(|c| {
            let mut ran = vec![];
            for m in SQLITE {
                let tx = c.transaction()?;
                let done: Option<i64> = tx
                    .query_row("SELECT version FROM schema_migrations WHERE version = ?1", [m.version], |r| r.get(0))
                    .optional()?;
                if done.is_some() {
                    continue;
                }
                tx.execute_batch(m.sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, Utc::now()],
                )?;
                tx.commit()?;
                ran.push(m.label());
            }
            Ok(ran)
        })
        .await
    }

    async fn schema_version(&self) -> StoreResult<(i64, i64)> {
        let have = self
            .run(|c| c.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)))
            .await?;
        Ok((have, migrations::latest(SQLITE)))
    }

    async fn create_user(&self, username: &str, nickname: &str, password_hash: &str) -> StoreResult<User> {
        let (u, n, p) = (username.to_owned(), nickname.to_owned(), password_hash.to_owned());
        self.run(move |c| {
            let now = Utc::now();
            c.query_row(
                &format!(
                    "INSERT INTO users (username, nickname, password_hash, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?4) RETURNING {USER_COLS}"
                ),
                params![u, n, p, now],
                user_from_row,
            )
        })
        .await
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"), [id], user_from_row).optional()
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let u = username.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {USER_COLS} FROM users WHERE lower(username) = lower(?1)"), [u], user_from_row)
                .optional()
        })
        .await
    }

    async fn create_room(&self, room: &NewRoom) -> StoreResult<Room> {
        let r = room.clone();
        self.run(move |c| {
            let now = Utc::now();
            c.query_row(
                &format!(
                    "INSERT INTO live_rooms (owner_id, title, description, stream_name, stream_key, stream_key_hash, \
                     push_protocol, status, created_at, updated_at, record, private) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'idle', ?8, ?8, ?9, ?10) \
                     RETURNING {ROOM_COLS}"
                ),
                params![
                    r.owner_id,
                    r.title,
                    r.description,
                    r.stream_name,
                    r.stream_key,
                    r.stream_key_hash,
                    r.push_protocol.as_str(),
                    now,
                    r.record,
                    r.private as i64
                ],
                room_from_row,
            )
        })
        .await
    }

    async fn room_by_id(&self, id: i64) -> StoreResult<Option<Room>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE id = ?1"), [id], room_from_row).optional()
        })
        .await
    }

    async fn room_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<Room>> {
        let h = key_hash.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE stream_key_hash = ?1"), [h], room_from_row)
                .optional()
        })
        .await
    }

    async fn room_by_stream_name(&self, stream_name: &str) -> StoreResult<Option<Room>> {
        let n = stream_name.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE stream_name = ?1"), [n], room_from_row)
                .optional()
        })
        .await
    }

    async fn list_rooms(&self, filter: &RoomFilter) -> StoreResult<(Vec<Room>, i64)> {
        let (limit, offset) = page_bounds(filter);
        let status = filter.status.map(|s| s.as_str());
        let owner = filter.owner_id;
        let public_only = filter.public_only;
        self.run(move |c| {
            let cond = if public_only {
                "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR owner_id = ?2) AND private = 0"
            } else {
                "(?1 IS NULL OR status = ?1) AND (?2 IS NULL OR owner_id = ?2)"
            };
            let total: i64 =
                c.query_row(&format!("SELECT COUNT(*) FROM live_rooms WHERE {cond}"), params![status, owner], |r| {
                    r.get(0)
                })?;
            let mut st = c.prepare(&format!(
                "SELECT {ROOM_COLS} FROM live_rooms WHERE {cond} ORDER BY id DESC LIMIT ?3 OFFSET ?4"
            ))?;
            let rows = st.query_map(params![status, owner, limit, offset], room_from_row)?;
            let rooms = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rooms, total))
        })
        .await
    }

    async fn update_room_text(
        &self,
        id: i64,
        title: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Room>> {
        let (t, d) = (title.map(str::to_owned), description.map(str::to_owned));
        self.run(move |c| {
            c.query_row(
                &format!(
                    "UPDATE live_rooms SET title = COALESCE(?2, title), description = COALESCE(?3, description), \
                     updated_at = ?4 WHERE id = ?1 RETURNING {ROOM_COLS}"
                ),
                params![id, t, d, Utc::now()],
                room_from_row,
            )
            .optional()
        })
        .await
    }

    async fn start_broadcast(&self, room_id: i64) -> StoreResult<Option<(Room, bool)>> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let status: Option<String> =
                tx.query_row("SELECT status FROM live_rooms WHERE id = ?1", [room_id], |r| r.get(0)).optional()?;
            let started = match status.as_deref() {
                None => return Ok(None),
                Some("live") => false,
                Some(_) => {
                    let now = Utc::now();
                    tx.execute("INSERT INTO broadcasts (room_id, started_at) VALUES (?1, ?2)", params![room_id, now])?;
                    let b = tx.last_insert_rowid();
                    tx.execute(
                        "UPDATE live_rooms SET status = 'live', broadcast_id = ?2, started_at = ?3, ended_at = NULL, \
                         peak_viewers = 0, updated_at = ?3 WHERE id = ?1",
                        params![room_id, b, now],
                    )?;
                    true
                }
            };
            let room =
                tx.query_row(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE id = ?1"), [room_id], room_from_row)?;
            tx.commit()?;
            Ok(Some((room, started)))
        })
        .await
    }

    async fn end_broadcast(&self, room_id: i64, reason: EndReason) -> StoreResult<Option<Room>> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let now = Utc::now();
            let b: Option<Option<i64>> = tx
                .query_row("SELECT broadcast_id FROM live_rooms WHERE id = ?1 AND status = 'live'", [room_id], |r| {
                    r.get(0)
                })
                .optional()?;
            let Some(b) = b else { return Ok(None) };
            if let Some(b) = b {
                tx.execute(
                    "UPDATE broadcasts SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
                    params![b, now, reason.as_str()],
                )?;
            }
            let room = tx.query_row(
                &format!(
                    "UPDATE live_rooms SET status = 'idle', broadcast_id = NULL, ended_at = ?2, updated_at = ?2 \
                     WHERE id = ?1 RETURNING {ROOM_COLS}"
                ),
                params![room_id, now],
                room_from_row,
            )?;
            tx.commit()?;
            Ok(Some(room))
        })
        .await
    }

    async fn list_broadcasts(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Broadcast>, i64)> {
        let (limit, offset) = paging(page, page_size);
        self.run(move |c| {
            let total: i64 =
                c.query_row("SELECT COUNT(*) FROM broadcasts WHERE room_id = ?1", [room_id], |r| r.get(0))?;
            let mut st = c.prepare(&format!(
                "SELECT {BROADCAST_COLS} FROM broadcasts WHERE room_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = st.query_map(params![room_id, limit, offset], broadcast_from_row)?;
            Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
        })
        .await
    }

    async fn set_stream_key(&self, id: i64, stream_key: &str, key_hash: &str) -> StoreResult<Option<Room>> {
        let (k, h) = (stream_key.to_owned(), key_hash.to_owned());
        self.run(move |c| {
            c.query_row(
                &format!(
                    "UPDATE live_rooms SET stream_key = ?2, stream_key_hash = ?3, updated_at = ?4 WHERE id = ?1 RETURNING {ROOM_COLS}"
                ),
                params![id, k, h, Utc::now()],
                room_from_row,
            )
            .optional()
        })
        .await
    }

    async fn set_room_private(&self, id: i64, private: bool) -> StoreResult<Option<Room>> {
        self.run(move |c| {
            c.query_row(
                &format!("UPDATE live_rooms SET private = ?2, updated_at = ?3 WHERE id = ?1 RETURNING {ROOM_COLS}"),
                params![id, private as i64, Utc::now()],
                room_from_row,
            )
            .optional()
        })
        .await
    }

    async fn bump_play_epoch(&self, id: i64) -> StoreResult<Option<Room>> {
        self.run(move |c| {
            c.query_row(
                &format!(
                    "UPDATE live_rooms SET play_epoch = play_epoch + 1, updated_at = ?2 WHERE id = ?1 RETURNING {ROOM_COLS}"
                ),
                params![id, Utc::now()],
                room_from_row,
            )
            .optional()
        })
        .await
    }

    async fn private_rooms(&self) -> StoreResult<Vec<Room>> {
        self.run(move |c| {
            let mut st = c.prepare(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE private = 1 ORDER BY id"))?;
            let rows = st.query_map([], room_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn raise_peak_viewers(&self, id: i64, viewers: i64) -> StoreResult<()> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE broadcasts SET peak_viewers = ?2 WHERE peak_viewers < ?2 AND id = \
                 (SELECT broadcast_id FROM live_rooms WHERE id = ?1)",
                params![id, viewers],
            )?;
            tx.execute(
                "UPDATE live_rooms SET peak_viewers = ?2 WHERE id = ?1 AND peak_viewers < ?2",
                params![id, viewers],
            )?;
            tx.commit()
        })
        .await
    }

    async fn delete_room(&self, id: i64) -> StoreResult<bool> {
        self.run(move |c| c.execute("DELETE FROM live_rooms WHERE id = ?1", [id]).map(|n| n > 0)).await
    }

    async fn set_room_record(&self, id: i64, record: bool) -> StoreResult<Option<Room>> {
        self.run(move |c| {
            c.query_row(
                &format!("UPDATE live_rooms SET record = ?2, updated_at = ?3 WHERE id = ?1 RETURNING {ROOM_COLS}"),
                params![id, record, Utc::now()],
                room_from_row,
            )
            .optional()
        })
        .await
    }

    async fn create_recording(
        &self,
        room_id: i64,
        broadcast_id: Option<i64>,
        stream_name: &str,
        path: &str,
        format: &str,
    ) -> StoreResult<Recording> {
        let (n, p, f) = (stream_name.to_owned(), path.to_owned(), format.to_owned());
        self.run(move |c| {
            c.query_row(
                &format!(
                    "INSERT INTO recordings (room_id, broadcast_id, stream_name, path, format, status, started_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'recording', ?6) RETURNING {RECORDING_COLS}"
                ),
                params![room_id, broadcast_id, n, p, f, Utc::now()],
                recording_from_row,
            )
        })
        .await
    }

    async fn finish_recording(&self, path: &str, end: &RecordingEnd) -> StoreResult<Option<Recording>> {
        let (p, e) = (path.to_owned(), end.clone());
        self.run(move |c| {
            c.query_row(
                &format!(
                    "UPDATE recordings SET status = ?2, ended_at = ?3, duration_ms = ?4, size_bytes = ?5, \
                     codecs = COALESCE(?6, codecs), error = ?7 WHERE path = ?1 RETURNING {RECORDING_COLS}"
                ),
                params![p, e.status, Utc::now(), e.duration_ms, e.size_bytes, e.codecs, e.error],
                recording_from_row,
            )
            .optional()
        })
        .await
    }

    async fn recording_by_id(&self, id: i64) -> StoreResult<Option<Recording>> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {RECORDING_COLS} FROM recordings WHERE id = ?1"), [id], recording_from_row)
                .optional()
        })
        .await
    }

    async fn list_recordings(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Recording>, i64)> {
        let (limit, offset) = paging(page, page_size);
        self.run(move |c| {
            let total: i64 =
                c.query_row("SELECT COUNT(*) FROM recordings WHERE room_id = ?1", [room_id], |r| r.get(0))?;
            let mut st = c.prepare(&format!(
                "SELECT {RECORDING_COLS} FROM recordings WHERE room_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = st.query_map(params![room_id, limit, offset], recording_from_row)?;
            Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
        })
        .await
    }

    async fn delete_recording(&self, id: i64) -> StoreResult<bool> {
        self.run(move |c| Ok(c.execute("DELETE FROM recordings WHERE id = ?1", [id])? > 0)).await
    }

    async fn recording_bytes(&self, room_id: Option<i64>) -> StoreResult<i64> {
        self.run(move |c| {
            c.query_row(
                "SELECT COALESCE(SUM(size_bytes), 0) FROM recordings WHERE ?1 IS NULL OR room_id = ?1",
                [room_id],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn unfinished_recordings(&self) -> StoreResult<Vec<Recording>> {
        self.run(move |c| {
            let mut st =
                c.prepare(&format!("SELECT {RECORDING_COLS} FROM recordings WHERE status = 'recording' ORDER BY id"))?;
            let rows = st.query_map([], recording_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn create_forward(&self, room_id: i64, url: &str, key: &str, max: i64) -> StoreResult<Option<Forward>> {
        let (url, key) = (url.to_owned(), key.to_owned());
        self.run(move |c| {
            let tx = c.transaction()?;
            let n: i64 =
                tx.query_row("SELECT COUNT(*) FROM room_forwards WHERE room_id = ?1", [room_id], |r| r.get(0))?;
            if n >= max {
                return Ok(None);
            }
            let f = tx.query_row(
                &format!(
                    "INSERT INTO room_forwards (room_id, url, key, enabled, created_at) VALUES (?1, ?2, ?3, 1, ?4) \
                     RETURNING {FORWARD_COLS}"
                ),
                params![room_id, url, key, Utc::now()],
                forward_from_row,
            )?;
            tx.commit()?;
            Ok(Some(f))
        })
        .await
    }

    async fn list_forwards(&self, room_id: i64) -> StoreResult<Vec<Forward>> {
        self.run(move |c| {
            let mut st =
                c.prepare(&format!("SELECT {FORWARD_COLS} FROM room_forwards WHERE room_id = ?1 ORDER BY id"))?;
            st.query_map([room_id], forward_from_row)?.collect()
        })
        .await
    }

    async fn set_forward_enabled(&self, room_id: i64, id: i64, enabled: bool) -> StoreResult<Option<Forward>> {
        self.run(move |c| {
            c.query_row(
                &format!(
                    "UPDATE room_forwards SET enabled = ?3 WHERE room_id = ?1 AND id = ?2 RETURNING {FORWARD_COLS}"
                ),
                params![room_id, id, enabled],
                forward_from_row,
            )
            .optional()
        })
        .await
    }

    async fn delete_forward(&self, room_id: i64, id: i64) -> StoreResult<bool> {
        self.run(move |c| {
            c.execute("DELETE FROM room_forwards WHERE room_id = ?1 AND id = ?2", [room_id, id]).map(|n| n > 0)
        })
        .await
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let jti = jti.to_owned();
        self.run(move |c| {
            c.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
                params![jti, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?1")?;
            st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
    }

    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.run(move |c| c.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?1", [now]).map(|n| n as u64)).await
    }

    async fn count_rooms_by_status(&self) -> StoreResult<Vec<(RoomStatus, i64)>> {
        self.run(|c| {
            let mut out = vec![];
            for s in RoomStatus::ALL {
                let n: i64 =
                    c.query_row("SELECT COUNT(*) FROM live_rooms WHERE status = ?1", [s.as_str()], |r| r.get(0))?;
                out.push((s, n));
            }
            Ok(out)
        })
        .await
    }
}
