//! Live rooms: creation, lookup, ownership checks, status changes and publish
//! authorization (shared by the nginx-rtmp callback and the engine's control link).

use super::{cache_err, store_err};
use crate::app::AppState;
use crate::auth;
use crate::error::{AppError, AppResult};
use crate::store::{Broadcast, EndReason, NewRoom, PushProtocol, Room, RoomFilter, RoomStatus, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 2000;

/// What a successful publish authorization returns to the engine.
#[derive(Debug, Clone, Serialize)]
pub struct PublishGrant {
    pub room_id: i64,
    pub stream_name: String,
}

/// Why a publish was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishDenied {
    /// No room has this key (never existed, reset or deleted).
    UnknownKey,
    /// The app is not one of `rtmp.apps`.
    BadApp,
}

impl PublishDenied {
    /// What the publisher is told (no secrets).
    pub fn reason(self) -> &'static str {
        match self {
            PublishDenied::UnknownKey => "unknown stream key",
            PublishDenied::BadApp => "unknown application",
        }
    }
}

/// The JSON form of a broadcast; `duration_secs` runs on while it is live.
pub fn broadcast_json(b: &Broadcast) -> Value {
    let end = b.ended_at.unwrap_or_else(chrono::Utc::now);
    json!({
        "id": b.id,
        "room_id": b.room_id,
        "live": b.ended_at.is_none(),
        "started_at": b.started_at,
        "ended_at": b.ended_at,
        "duration_secs": (end - b.started_at).num_milliseconds().max(0) as f64 / 1000.0,
        "peak_viewers": b.peak_viewers,
        "end_reason": b.end_reason,
    })
}

pub fn viewers_key(room_id: i64) -> String {
    format!("viewers:{room_id}")
}

pub fn validate_title(title: &str) -> AppResult<String> {
    super::reject_control("title", title, false)?;
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::field("title", "must not be empty"));
    }
    if t.chars().count() > TITLE_MAX {
        return Err(AppError::field("title", &format!("at most {TITLE_MAX} characters")));
    }
    Ok(t.to_owned())
}

pub fn validate_description(description: &str) -> AppResult<String> {
    super::reject_control("description", description, true)?;
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(AppError::field("description", &format!("at most {DESCRIPTION_MAX} characters")));
    }
    Ok(description.to_owned())
}

impl AppState {
    pub async fn create_room(
        &self,
        owner_id: i64,
        title: &str,
        description: &str,
        proto: PushProtocol,
        private: bool,
    ) -> AppResult<Room> {
        let title = validate_title(title)?;
        let description = validate_description(description)?;
        // Random names and keys collide with negligible probability; retry a few times anyway.
        for _ in 0..4 {
            let key = auth::new_stream_key();
            let new = NewRoom {
                owner_id,
                title: title.clone(),
                description: description.clone(),
                stream_name: auth::new_stream_name(),
                stream_key_hash: auth::key_hash(&key),
                stream_key: key,
                push_protocol: proto,
                private,
                record: self.cfg.recording.default_record,
            };
            match self.store.create_room(&new).await {
                Ok(r) => {
                    if r.private {
                        self.engine_set_access(&r);
                    }
                    return Ok(r);
                }
                Err(StoreError::Duplicate(_)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(AppError::internal("could not allocate a unique stream name"))
    }

    pub async fn room(&self, id: i64) -> AppResult<Room> {
        self.store.room_by_id(id).await.map_err(store_err)?.ok_or_else(|| AppError::not_found("room not found"))
    }

    /// The room if `user_id` owns it: 404 when missing, 403 when someone else's.
    pub async fn owned_room(&self, id: i64, user_id: i64) -> AppResult<Room> {
        let r = self.room(id).await?;
        if r.owner_id != user_id {
            return Err(AppError::forbidden("only the room's owner may do this"));
        }
        Ok(r)
    }

    pub async fn list_rooms(&self, filter: &RoomFilter) -> AppResult<(Vec<Room>, i64)> {
        self.store.list_rooms(filter).await.map_err(store_err)
    }

    pub async fn update_room(
        &self,
        id: i64,
        user_id: i64,
        title: Option<&str>,
        description: Option<&str>,
        private: Option<bool>,
    ) -> AppResult<Room> {
        self.owned_room(id, user_id).await?;
        let title = title.map(validate_title).transpose()?;
        let description = description.map(validate_description).transpose()?;
        let mut room = None;
        if title.is_some() || description.is_some() {
            room =
                self.store.update_room_text(id, title.as_deref(), description.as_deref()).await.map_err(store_err)?;
        }
        if let Some(p) = private {
            room = self.store.set_room_private(id, p).await.map_err(store_err)?;
            if let Some(r) = &room {
                tracing::info!(room = r.id, stream = %r.stream_name, private = p, "room access changed");
                self.engine_set_access(r);
            }
        }
        let r = room.ok_or_else(|| AppError::not_found("room not found"))?;
        self.hooks.emit(
            r.id,
            "room.updated",
            json!({ "room_id": r.id, "stream_name": r.stream_name, "title": r.title, "description": r.description }),
        );
        Ok(r)
    }

    /// Ends the room's current broadcast by its owner: the publisher and players are
    /// disconnected and the room is idle again, ready for the next broadcast with the
    /// same stream name and key. An idle room is a 409.
    pub async fn end_room(&self, id: i64, user_id: i64) -> AppResult<Room> {
        self.owned_room(id, user_id).await?;
        let r = self
            .store
            .end_broadcast(id, EndReason::EndedByOwner)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::conflict("the room is not live"))?;
        tracing::info!(room = r.id, stream = %r.stream_name, "broadcast ended by the owner");
        self.emit_room_ended(&r, EndReason::EndedByOwner).await;
        self.engine_drop_stream(&r.stream_name);
        let _ = self.cache.delete(&viewers_key(id)).await;
        Ok(r)
    }

    /// A page of the room's broadcasts, newest first.
    pub async fn broadcasts(&self, room_id: i64, page: u32, page_size: u32) -> AppResult<(Vec<Broadcast>, i64)> {
        self.room(room_id).await?;
        self.store.list_broadcasts(room_id, page, page_size).await.map_err(store_err)
    }

    pub async fn delete_room(&self, id: i64, user_id: i64) -> AppResult<()> {
        let r = self.owned_room(id, user_id).await?;
        // Its recordings' files go with it (their rows go with the room).
        let files = self.room_recording_files(id).await?;
        self.store.delete_room(id).await.map_err(store_err)?;
        self.engine_drop_stream(&r.stream_name);
        for f in files {
            if let Err(e) = tokio::fs::remove_file(&f).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(room = id, file = %f.display(), error = %e, "a deleted room's recording file stays");
            }
        }
        if r.private {
            // The name is free again: no longer a private room's.
            self.engine_set_access(&Room { private: false, ..r });
        }
        let _ = self.cache.delete(&viewers_key(id)).await;
        Ok(())
    }

    pub async fn reset_stream_key(&self, id: i64, user_id: i64) -> AppResult<Room> {
        self.owned_room(id, user_id).await?;
        for _ in 0..4 {
            let key = auth::new_stream_key();
            match self.store.set_stream_key(id, &key, &auth::key_hash(&key)).await {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => return Err(AppError::not_found("room not found")),
                Err(StoreError::Duplicate(_)) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(AppError::internal("could not allocate a unique stream key"))
    }

    /// The room with this public stream name. A name that no room could have (stream
    /// names are letters, digits, `_` and `-`) is None without asking the store, so
    /// that no client string (a NUL, say) ever reaches a query.
    pub async fn room_by_name(&self, name: &str) -> AppResult<Option<Room>> {
        if !engine::proto::http::valid_stream_name(name) {
            return Ok(None);
        }
        self.store.room_by_stream_name(name).await.map_err(store_err)
    }

    /// Finds the room a stream key belongs to: lookup by its hash, then a
    /// constant-time comparison of the key itself.
    pub async fn room_by_key(&self, key: &str) -> AppResult<Option<Room>> {
        if key.is_empty() || key.len() > 256 {
            return Ok(None);
        }
        let room = self.store.room_by_key_hash(&auth::key_hash(key)).await.map_err(store_err)?;
        Ok(room.filter(|r| auth::secrets_equal(&r.stream_key, key)))
    }

    /// Authorizes a publisher: the app must be one of `rtmp.apps` and the key a
    /// room's. The room goes live when the engine reports the stream started
    /// ([`Self::stream_started`]), not here: a refused or failed publish leaves it idle.
    pub async fn authorize_publish(&self, app: &str, key: &str) -> AppResult<Result<PublishGrant, PublishDenied>> {
        if !self.cfg.rtmp.apps.iter().any(|a| a == app) {
            return Ok(Err(PublishDenied::BadApp));
        }
        let Some(room) = self.room_by_key(key).await? else {
            return Ok(Err(PublishDenied::UnknownKey));
        };
        Ok(Ok(PublishGrant { room_id: room.id, stream_name: room.stream_name }))
    }

    /// The room's stream is live: an idle room starts a broadcast; a live one keeps
    /// its broadcast (a publisher reconnecting within the grace period, or taking over).
    pub async fn stream_started(&self, room_id: i64) -> AppResult<Option<Room>> {
        let r = self.store.start_broadcast(room_id).await.map_err(store_err)?;
        if let Some((r, started)) = &r {
            if *started {
                let _ = self.cache.delete(&viewers_key(room_id)).await;
                tracing::info!(room = r.id, stream = %r.stream_name, broadcast = ?r.broadcast_id, "broadcast started");
                self.hooks.emit(
                    r.id,
                    "room.live",
                    json!({
                        "room_id": r.id,
                        "stream_name": r.stream_name,
                        "title": r.title,
                        "owner_id": r.owner_id,
                        "broadcast_id": r.broadcast_id,
                        "started_at": r.started_at,
                    }),
                );
            } else {
                tracing::info!(room = r.id, stream = %r.stream_name, broadcast = ?r.broadcast_id, "publisher back; broadcast goes on");
            }
        }
        Ok(r.map(|(r, _)| r))
    }

    /// The room's stream is over: its broadcast ends and the room is idle again.
    pub async fn stream_ended(&self, room_id: i64, reason: EndReason) -> AppResult<Option<Room>> {
        let r = self.store.end_broadcast(room_id, reason).await.map_err(store_err)?;
        if let Some(r) = &r {
            tracing::info!(room = r.id, stream = %r.stream_name, reason = reason.as_str(), "broadcast ended; room idle");
            self.emit_room_ended(r, reason).await;
        }
        let _ = self.cache.delete(&viewers_key(room_id)).await;
        Ok(r)
    }

    /// The `room.ended` webhook: the broadcast that just ended (its id, times, peak
    /// viewers and end reason).
    pub(crate) async fn emit_room_ended(&self, r: &Room, reason: EndReason) {
        if !self.hooks.webhooks.is_on() {
            return;
        }
        // The newest broadcast is the one that just ended.
        let broadcast = match self.store.list_broadcasts(r.id, 1, 1).await {
            Ok((b, _)) => b.first().map(broadcast_json),
            Err(e) => {
                tracing::debug!(room = r.id, error = %e, "broadcast not read for the room.ended webhook");
                None
            }
        };
        self.hooks.emit(
            r.id,
            "room.ended",
            json!({
                "room_id": r.id,
                "stream_name": r.stream_name,
                "broadcast_id": broadcast.as_ref().map(|b| b["id"].clone()),
                "started_at": r.started_at,
                "ended_at": r.ended_at,
                "peak_viewers": r.peak_viewers,
                "end_reason": reason.as_str(),
                "broadcast": broadcast,
            }),
        );
    }

    /// A viewer joined (+1) or left (-1). Raises the room's peak when it grows.
    /// A viewer joined (+1) or left (-1); `now` is the engine's count after it. The
    /// peak follows the engine's count; the cache keeps a shared counter too.
    pub async fn viewer_delta(&self, room_id: i64, delta: i64, now: i64) -> AppResult<i64> {
        let cached = self.cache.add(&viewers_key(room_id), delta).await;
        if delta > 0 {
            // In a cluster the peak is of every node's viewers together.
            let total = match &self.cluster {
                Some(c) => c.viewers(room_id, Some(now)).await.unwrap_or(now),
                None => now,
            };
            self.store.raise_peak_viewers(room_id, total).await.map_err(store_err)?;
        }
        cached.map_err(cache_err)?;
        Ok(now)
    }

    /// Viewers now: the engine's own count when it runs here (it survives a cache
    /// loss), else the cache's counter.
    pub async fn viewer_count(&self, room_id: i64) -> i64 {
        let local = self.engine.as_ref().and_then(|e| e.viewers(room_id));
        if let Some(c) = &self.cluster {
            if let Ok(n) = c.viewers(room_id, local).await {
                return n;
            }
        }
        if let Some(n) = local {
            return n;
        }
        self.cache.get(&viewers_key(room_id)).await.unwrap_or(0)
    }

    /// The JSON form of a room. The key and push URLs only when `owner` is true;
    /// play URLs carry the public stream name, never the key.
    pub async fn room_json(&self, room: &Room, owner: bool) -> Value {
        let base = |b: &str| b.trim_end_matches('/').to_owned();
        let name = &room.stream_name;
        // Cluster: the URLs of the nodes placement picks (the configured ones, e.g. a
        // load balancer's, when the registry cannot be read).
        let placed = match &self.cluster {
            Some(c) => match c.place(room.id, name).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(room = room.id, error = %e, "placement unavailable; giving the configured URLs");
                    None
                }
            },
            None => None,
        };
        let node_urls;
        let s = match &placed {
            Some(p) => {
                node_urls = crate::config::StreamingConfig {
                    rtmp_server: p.push.rtmp.clone(),
                    whip_server: format!("{}/whip", p.push.api),
                    rtmp_play_server: p.play.rtmp.clone(),
                    flv_server: format!("{}/flv", p.play.media),
                    hls_server: format!("{}/hls", p.play.media),
                    whep_server: format!("{}/whep", p.play.api),
                };
                &node_urls
            }
            None => &self.cfg.streaming,
        };
        let viewers = if room.status == RoomStatus::Live { self.viewer_count(room.id).await } else { 0 };
        let mut v = json!({
            "id": room.id,
            "owner_id": room.owner_id,
            "title": room.title,
            "description": room.description,
            "stream_name": name,
            "private": room.private,
            "push_protocol": room.push_protocol.as_str(),
            "status": room.status.as_str(),
            "started_at": room.started_at,
            "ended_at": room.ended_at,
            "peak_viewers": room.peak_viewers,
            "broadcast_id": room.broadcast_id,
            "record": room.record,
            "viewer_count": viewers,
            "created_at": room.created_at,
            "updated_at": room.updated_at,
            "play": {
                "rtmp": format!("{}/{name}", base(&s.rtmp_play_server)),
                "flv": format!("{}/{name}.flv", base(&s.flv_server)),
                "hls": format!("{}/{name}.m3u8", base(&s.hls_server)),
                "whep": format!("{}/{name}", base(&s.whep_server)),
            },
            "warnings": self.engine_warnings(name),
            "media": if room.status == RoomStatus::Live { self.engine_media(name) } else { None },
        });
        if let Some(p) = &placed {
            v["nodes"] = json!({ "push": p.push.id, "play": p.play.id });
        }
        if owner {
            v["stream_key"] = json!(room.stream_key);
            v["push"] = json!({
                "rtmp_url": base(&s.rtmp_server),
                "stream_key": room.stream_key,
                "rtmp_full_url": format!("{}/{}", base(&s.rtmp_server), room.stream_key),
                "whip_url": format!("{}/{name}", base(&s.whip_server)),
            });
        }
        v
    }
}
