//! The PostgreSQL backend (tokio-postgres + deadpool-postgres).

use super::migrations::{self, POSTGRES};
use super::*;
use crate::config::DatabaseConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio_postgres::{NoTls, Row, types::ToSql};

pub struct PgStore {
    pool: Pool,
    schema: String,
}

fn map_pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION {
            let c = db.constraint().unwrap_or_default();
            if c.contains("username") {
                return StoreError::Duplicate("username");
            }
            if c.contains("stream_name") {
                return StoreError::Duplicate("stream_name");
            }
            if c.contains("stream_key") {
                return StoreError::Duplicate("stream_key");
            }
            if c.contains("recordings_path") {
                return StoreError::Duplicate("recording path");
            }
        }
        return StoreError::Backend(format!("{}: {}", db.code().code(), db.message()));
    }
    if e.is_closed() {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Unavailable(e.to_string())
}

fn map_pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => map_pg(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

const ROOM_COLS: &str = "id, owner_id, title, description, stream_name, stream_key, push_protocol, status, \
                         started_at, ended_at, peak_viewers, created_at, updated_at, broadcast_id, record, private, play_epoch";
const RECORDING_COLS: &str = "id, room_id, broadcast_id, stream_name, path, format, status, started_at, ended_at, \
                              duration_ms, size_bytes, codecs, error";

fn recording_from_row(r: &Row) -> Recording {
    Recording {
        id: r.get(0),
        room_id: r.get(1),
        broadcast_id: r.get(2),
        stream_name: r.get(3),
        path: r.get(4),
        format: r.get(5),
        status: r.get(6),
        started_at: r.get(7),
        ended_at: r.get(8),
        duration_ms: r.get(9),
        size_bytes: r.get(10),
        codecs: r.get(11),
        error: r.get(12),
    }
}
const BROADCAST_COLS: &str = "id, room_id, started_at, ended_at, peak_viewers, end_reason";

fn broadcast_from_row(r: &Row) -> Broadcast {
    Broadcast {
        id: r.get(0),
        room_id: r.get(1),
        started_at: r.get(2),
        ended_at: r.get(3),
        peak_viewers: r.get(4),
        end_reason: r.get(5),
    }
}
const USER_COLS: &str = "id, username, nickname, password_hash, created_at, updated_at";

fn room_from_row(r: &Row) -> Room {
    let proto: String = r.get(6);
    let status: String = r.get(7);
    Room {
        id: r.get(0),
        owner_id: r.get(1),
        title: r.get(2),
        description: r.get(3),
        stream_name: r.get(4),
        stream_key: r.get(5),
        push_protocol: PushProtocol::parse(&proto).unwrap_or(PushProtocol::Rtmp),
        status: RoomStatus::parse(&status).unwrap_or(RoomStatus::Idle),
        started_at: r.get(8),
        ended_at: r.get(9),
        peak_viewers: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
        broadcast_id: r.get(13),
        record: r.get(14),
        private: r.get(15),
        play_epoch: r.get(16),
    }
}

const FORWARD_COLS: &str = "id, room_id, url, key, enabled, created_at";

fn forward_from_row(r: &Row) -> Forward {
    Forward { id: r.get(0), room_id: r.get(1), url: r.get(2), key: r.get(3), enabled: r.get(4), created_at: r.get(5) }
}

fn user_from_row(r: &Row) -> User {
    User {
        id: r.get(0),
        username: r.get(1),
        nickname: r.get(2),
        password_hash: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PgStore {
    /// Builds the pool (connections are made lazily) and creates `schema` if needed.
    pub async fn connect(cfg: &DatabaseConfig) -> StoreResult<Self> {
        if !valid_ident(&cfg.schema) {
            return Err(StoreError::Backend(format!("database.schema {:?} is not a plain identifier", cfg.schema)));
        }
        match cfg.sslmode.as_str() {
            "" | "disable" | "allow" | "prefer" => {}
            other => {
                return Err(StoreError::Unavailable(format!(
                    "database.sslmode={other} is not supported by this build (TLS to PostgreSQL is not compiled in); use disable or a local TLS proxy"
                )));
            }
        }
        let mut pg = tokio_postgres::Config::new();
        pg.host(&cfg.host)
            .port(cfg.port)
            .user(&cfg.user)
            .dbname(&cfg.dbname)
            .connect_timeout(Duration::from_secs(5))
            .application_name("microvibe")
            .options(format!("-c search_path={}", cfg.schema));
        if !cfg.password.is_empty() {
            pg.password(&cfg.password);
        }
        let mgr = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let lifetime = Duration::from_secs(cfg.conn_max_lifetime_secs.max(1));
        let pool = Pool::builder(mgr)
            .max_size(cfg.max_open_conns.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
                if metrics.age() > lifetime {
                    Err(deadpool_postgres::HookError::message("connection reached database.conn_max_lifetime_secs"))
                } else {
                    Ok(())
                }
            }))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = Self { pool, schema: cfg.schema.clone() };
        if store.schema != "public" {
            let c = store.pool.get().await.map_err(map_pool)?;
            c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", store.schema)).await.map_err(map_pg)?;
        }
        Ok(store)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(map_pool)
    }

    async fn opt_room(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Room>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql, params).await.map_err(map_pg)?.as_ref().map(room_from_row))
    }

    async fn opt_user(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<User>> {
        let c = self.client().await?;
        Ok(c.query_opt(sql, params).await.map_err(map_pg)?.as_ref().map(user_from_row))
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await.map_err(map_pg).map(|_| ())
    }

    async fn migrate(&self) -> StoreResult<Vec<String>> {
        let mut c = self.client().await?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
        )
        .await
        .map_err(map_pg)?;
        let mut ran = vec![];
        for m in POSTGRES {
            let tx = c.transaction().await.map_err(map_pg)?;
            // Serialise migrations across nodes sharing the database.
            tx.execute("SELECT pg_advisory_xact_lock(7242024)", &[]).await.map_err(map_pg)?;
            let done = tx
                .query_opt("SELECT version FROM schema_migrations WHERE version = $1", &[&m.version])
                .await
                .map_err(map_pg)?;
            if done.is_some() {
                continue;
            }
            tx.batch_execute(m.sql).await.map_err(map_pg)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
                &[&m.version, &m.name],
            )
            .await
            .map_err(map_pg)?;
            tx.commit().await.map_err(map_pg)?;
            ran.push(m.label());
        }
        Ok(ran)
    }

    async fn schema_version(&self) -> StoreResult<(i64, i64)> {
        let c = self.client().await?;
        let exists = c
            .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .await
            .map_err(map_pg)?
            .get::<_, bool>(0);
        let have = if exists {
            c.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(map_pg)?.get(0)
        } else {
            0
        };
        Ok((have, migrations::latest(POSTGRES)))
    }

    async fn create_user(&self, username: &str, nickname: &str, password_hash: &str) -> StoreResult<User> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "INSERT INTO users (username, nickname, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, now(), now()) RETURNING {USER_COLS}"
                ),
                &[&username, &nickname, &password_hash],
            )
            .await
            .map_err(map_pg)?;
        Ok(user_from_row(&r))
    }

    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.opt_user(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"), &[&id]).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.opt_user(&format!("SELECT {USER_COLS} FROM users WHERE lower(username) = lower($1)"), &[&username]).await
    }

    async fn create_room(&self, r: &NewRoom) -> StoreResult<Room> {
        let c = self.client().await?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO live_rooms (owner_id, title, description, stream_name, stream_key, stream_key_hash, \
                     push_protocol, status, created_at, updated_at, record, private) VALUES ($1, $2, $3, $4, $5, $6, $7, 'idle', now(), now(), $8, $9) \
                     RETURNING {ROOM_COLS}"
                ),
                &[
                    &r.owner_id,
                    &r.title,
                    &r.description,
                    &r.stream_name,
                    &r.stream_key,
                    &r.stream_key_hash,
                    &r.push_protocol.as_str(),
                    &r.record,
                    &r.private,
                ],
            )
            .await
            .map_err(map_pg)?;
        Ok(room_from_row(&row))
    }

    async fn room_by_id(&self, id: i64) -> StoreResult<Option<Room>> {
        self.opt_room(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE id = $1"), &[&id]).await
    }

    async fn room_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<Room>> {
        self.opt_room(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE stream_key_hash = $1"), &[&key_hash]).await
    }

    async fn room_by_stream_name(&self, stream_name: &str) -> StoreResult<Option<Room>> {
        self.opt_room(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE stream_name = $1"), &[&stream_name]).await
    }

    async fn list_rooms(&self, filter: &RoomFilter) -> StoreResult<(Vec<Room>, i64)> {
        let (limit, offset) = page_bounds(filter);
        let status = filter.status.map(|s| s.as_str());
        let owner = filter.owner_id;
        let c = self.client().await?;
        let cond = if filter.public_only {
            "($1::TEXT IS NULL OR status = $1) AND ($2::BIGINT IS NULL OR owner_id = $2) AND NOT private"
        } else {
            "($1::TEXT IS NULL OR status = $1) AND ($2::BIGINT IS NULL OR owner_id = $2)"
        };
        let total: i64 = c
            .query_one(&format!("SELECT COUNT(*) FROM live_rooms WHERE {cond}"), &[&status, &owner])
            .await
            .map_err(map_pg)?
            .get(0);
        let rows = c
            .query(
                &format!("SELECT {ROOM_COLS} FROM live_rooms WHERE {cond} ORDER BY id DESC LIMIT $3 OFFSET $4"),
                &[&status, &owner, &limit, &offset],
            )
            .await
            .map_err(map_pg)?;
        Ok((rows.iter().map(room_from_row).collect(), total))
    }

    async fn update_room_text(
        &self,
        id: i64,
        title: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Room>> {
        self.opt_room(
            &format!(
                "UPDATE live_rooms SET title = COALESCE($2, title), description = COALESCE($3, description), \
                 updated_at = now() WHERE id = $1 RETURNING {ROOM_COLS}"
            ),
            &[&id, &title, &description],
        )
        .await
    }

    async fn start_broadcast(&self, room_id: i64) -> StoreResult<Option<(Room, bool)>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_pg)?;
        let Some(row) = tx
            .query_opt("SELECT status FROM live_rooms WHERE id = $1 FOR UPDATE", &[&room_id])
            .await
            .map_err(map_pg)?
        else {
            return Ok(None);
        };
        let started = row.get::<_, String>(0) != "live";
        if started {
            let b: i64 = tx
                .query_one("INSERT INTO broadcasts (room_id, started_at) VALUES ($1, now()) RETURNING id", &[&room_id])
                .await
                .map_err(map_pg)?
                .get(0);
            tx.execute(
                "UPDATE live_rooms SET status = 'live', broadcast_id = $2, started_at = now(), ended_at = NULL, \
                 peak_viewers = 0, updated_at = now() WHERE id = $1",
                &[&room_id, &b],
            )
            .await
            .map_err(map_pg)?;
        }
        let room = tx
            .query_one(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE id = $1"), &[&room_id])
            .await
            .map_err(map_pg)?;
        tx.commit().await.map_err(map_pg)?;
        Ok(Some((room_from_row(&room), started)))
    }

    async fn end_broadcast(&self, room_id: i64, reason: EndReason) -> StoreResult<Option<Room>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_pg)?;
        let Some(row) = tx
            .query_opt("SELECT broadcast_id FROM live_rooms WHERE id = $1 AND status = 'live' FOR UPDATE", &[&room_id])
            .await
            .map_err(map_pg)?
        else {
            return Ok(None);
        };
        if let Some(b) = row.get::<_, Option<i64>>(0) {
            tx.execute(
                "UPDATE broadcasts SET ended_at = now(), end_reason = $2 WHERE id = $1 AND ended_at IS NULL",
                &[&b, &reason.as_str()],
            )
            .await
            .map_err(map_pg)?;
        }
        let room = tx
            .query_one(
                &format!(
                    "UPDATE live_rooms SET status = 'idle', broadcast_id = NULL, ended_at = now(), updated_at = now() \
                     WHERE id = $1 RETURNING {ROOM_COLS}"
                ),
                &[&room_id],
            )
            .await
            .map_err(map_pg)?;
        tx.commit().await.map_err(map_pg)?;
        Ok(Some(room_from_row(&room)))
    }

    async fn list_broadcasts(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Broadcast>, i64)> {
        let (limit, offset) = paging(page, page_size);
        let c = self.client().await?;
        let total: i64 = c
            .query_one("SELECT COUNT(*) FROM broadcasts WHERE room_id = $1", &[&room_id])
            .await
            .map_err(map_pg)?
            .get(0);
        let rows = c
            .query(
                &format!(
                    "SELECT {BROADCAST_COLS} FROM broadcasts WHERE room_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
                ),
                &[&room_id, &limit, &offset],
            )
            .await
            .map_err(map_pg)?;
        Ok((rows.iter().map(broadcast_from_row).collect(), total))
    }

    async fn set_stream_key(&self, id: i64, stream_key: &str, key_hash: &str) -> StoreResult<Option<Room>> {
        self.opt_room(
            &format!(
                "UPDATE live_rooms SET stream_key = $2, stream_key_hash = $3, updated_at = now() WHERE id = $1 RETURNING {ROOM_COLS}"
            ),
            &[&id, &stream_key, &key_hash],
        )
        .await
    }

    async fn set_room_private(&self, id: i64, private: bool) -> StoreResult<Option<Room>> {
        self.opt_room(
            &format!("UPDATE live_rooms SET private = $2, updated_at = now() WHERE id = $1 RETURNING {ROOM_COLS}"),
            &[&id, &private],
        )
        .await
    }

    async fn bump_play_epoch(&self, id: i64) -> StoreResult<Option<Room>> {
        self.opt_room(
            &format!(
                "UPDATE live_rooms SET play_epoch = play_epoch + 1, updated_at = now() WHERE id = $1 RETURNING {ROOM_COLS}"
            ),
            &[&id],
        )
        .await
    }

    async fn private_rooms(&self) -> StoreResult<Vec<Room>> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {ROOM_COLS} FROM live_rooms WHERE private ORDER BY id"), &[])
            .await
            .map_err(map_pg)?;
        Ok(rows.iter().map(room_from_row).collect())
    }

    async fn raise_peak_viewers(&self, id: i64, viewers: i64) -> StoreResult<()> {
        let c = self.client().await?;
        // One statement: the broadcast's peak and the room's move together.
        c.execute(
            "WITH b AS (UPDATE broadcasts SET peak_viewers = $2 WHERE peak_viewers < $2 AND id = \
             (SELECT broadcast_id FROM live_rooms WHERE id = $1)) \
             UPDATE live_rooms SET peak_viewers = $2 WHERE id = $1 AND peak_viewers < $2",
            &[&id, &viewers],
        )
        .await
        .map_err(map_pg)
        .map(|_| ())
    }

    async fn delete_room(&self, id: i64) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM live_rooms WHERE id = $1", &[&id]).await.map_err(map_pg)? > 0)
    }

    async fn set_room_record(&self, id: i64, record: bool) -> StoreResult<Option<Room>> {
        self.opt_room(
            &format!("UPDATE live_rooms SET record = $2, updated_at = now() WHERE id = $1 RETURNING {ROOM_COLS}"),
            &[&id, &record],
        )
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
        let c = self.client().await?;
        let row = c
            .query_one(
                &format!(
                    "INSERT INTO recordings (room_id, broadcast_id, stream_name, path, format, status, started_at) \
                     VALUES ($1, $2, $3, $4, $5, 'recording', now()) RETURNING {RECORDING_COLS}"
                ),
                &[&room_id, &broadcast_id, &stream_name, &path, &format],
            )
            .await
            .map_err(map_pg)?;
        Ok(recording_from_row(&row))
    }

    async fn finish_recording(&self, path: &str, end: &RecordingEnd) -> StoreResult<Option<Recording>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "UPDATE recordings SET status = $2, ended_at = now(), duration_ms = $3, size_bytes = $4, \
                     codecs = COALESCE($5, codecs), error = $6 WHERE path = $1 RETURNING {RECORDING_COLS}"
                ),
                &[&path, &end.status, &end.duration_ms, &end.size_bytes, &end.codecs, &end.error],
            )
            .await
            .map_err(map_pg)?;
        Ok(row.as_ref().map(recording_from_row))
    }

    async fn recording_by_id(&self, id: i64) -> StoreResult<Option<Recording>> {
        let c = self.client().await?;
        let row = c
            .query_opt(&format!("SELECT {RECORDING_COLS} FROM recordings WHERE id = $1"), &[&id])
            .await
            .map_err(map_pg)?;
        Ok(row.as_ref().map(recording_from_row))
    }

    async fn list_recordings(&self, room_id: i64, page: u32, page_size: u32) -> StoreResult<(Vec<Recording>, i64)> {
        let (limit, offset) = paging(page, page_size);
        let c = self.client().await?;
        let total: i64 = c
            .query_one("SELECT COUNT(*) FROM recordings WHERE room_id = $1", &[&room_id])
            .await
            .map_err(map_pg)?
            .get(0);
        let rows = c
            .query(
                &format!(
                    "SELECT {RECORDING_COLS} FROM recordings WHERE room_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3"
                ),
                &[&room_id, &limit, &offset],
            )
            .await
            .map_err(map_pg)?;
        Ok((rows.iter().map(recording_from_row).collect(), total))
    }

    async fn delete_recording(&self, id: i64) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM recordings WHERE id = $1", &[&id]).await.map_err(map_pg)? > 0)
    }

    async fn recording_bytes(&self, room_id: Option<i64>) -> StoreResult<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT COALESCE(SUM(size_bytes), 0)::BIGINT FROM recordings WHERE $1::BIGINT IS NULL OR room_id = $1",
                &[&room_id],
            )
            .await
            .map_err(map_pg)?;
        Ok(row.get(0))
    }

    async fn unfinished_recordings(&self) -> StoreResult<Vec<Recording>> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {RECORDING_COLS} FROM recordings WHERE status = 'recording' ORDER BY id"), &[])
            .await
            .map_err(map_pg)?;
        Ok(rows.iter().map(recording_from_row).collect())
    }

    async fn create_forward(&self, room_id: i64, url: &str, key: &str, max: i64) -> StoreResult<Option<Forward>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(map_pg)?;
        // The room's row is locked: two concurrent adds cannot both pass the count.
        let room =
            tx.query_opt("SELECT id FROM live_rooms WHERE id = $1 FOR UPDATE", &[&room_id]).await.map_err(map_pg)?;
        if room.is_none() {
            return Err(StoreError::Backend(format!("no room {room_id}")));
        }
        let n: i64 = tx
            .query_one("SELECT COUNT(*) FROM room_forwards WHERE room_id = $1", &[&room_id])
            .await
            .map_err(map_pg)?
            .get(0);
        if n >= max {
            return Ok(None);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO room_forwards (room_id, url, key, enabled, created_at) VALUES ($1, $2, $3, TRUE, $4) \
                     RETURNING {FORWARD_COLS}"
                ),
                &[&room_id, &url, &key, &Utc::now()],
            )
            .await
            .map_err(map_pg)?;
        tx.commit().await.map_err(map_pg)?;
        Ok(Some(forward_from_row(&row)))
    }

    async fn list_forwards(&self, room_id: i64) -> StoreResult<Vec<Forward>> {
        let c = self.client().await?;
        let rows = c
            .query(&format!("SELECT {FORWARD_COLS} FROM room_forwards WHERE room_id = $1 ORDER BY id"), &[&room_id])
            .await
            .map_err(map_pg)?;
        Ok(rows.iter().map(forward_from_row).collect())
    }

    async fn set_forward_enabled(&self, room_id: i64, id: i64, enabled: bool) -> StoreResult<Option<Forward>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "UPDATE room_forwards SET enabled = $3 WHERE room_id = $1 AND id = $2 RETURNING {FORWARD_COLS}"
                ),
                &[&room_id, &id, &enabled],
            )
            .await
            .map_err(map_pg)?;
        Ok(row.as_ref().map(forward_from_row))
    }

    async fn delete_forward(&self, room_id: i64, id: i64) -> StoreResult<bool> {
        let c = self.client().await?;
        Ok(c.execute("DELETE FROM room_forwards WHERE room_id = $1 AND id = $2", &[&room_id, &id])
            .await
            .map_err(map_pg)?
            > 0)
    }

    async fn revoke_token(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)",
            &[&jti, &expires_at],
        )
        .await
        .map_err(map_pg)?;
        Ok(())
    }

    async fn revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1", &[&now])
            .await
            .map_err(map_pg)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn purge_revoked_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let c = self.client().await?;
        c.execute("DELETE FROM revoked_tokens WHERE expires_at <= $1", &[&now]).await.map_err(map_pg)
    }

    async fn count_rooms_by_status(&self) -> StoreResult<Vec<(RoomStatus, i64)>> {
        let c = self.client().await?;
        let rows = c.query("SELECT status, COUNT(*) FROM live_rooms GROUP BY status", &[]).await.map_err(map_pg)?;
        let mut out: Vec<(RoomStatus, i64)> = RoomStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for r in rows {
            let s: String = r.get(0);
            let n: i64 = r.get(1);
            if let Some(st) = RoomStatus::parse(&s) {
                if let Some(e) = out.iter_mut().find(|(k, _)| *k == st) {
                    e.1 = n;
                }
            }
        }
        Ok(out)
    }
}
