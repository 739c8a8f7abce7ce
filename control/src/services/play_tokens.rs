//! Private rooms' play tokens: minting (by the room's owner), revoking, checking
//! (WHEP, the room WebSocket as viewer, recordings), and telling the engine which
//! rooms are private (it checks RTMP, HTTP-FLV, WS-FLV and HLS players itself,
//! with the same key: [`engine::serve::play_access`]).
//!
//! The token format and its HMAC are [`engine::proto::play_token`]; the key is
//! derived from `jwt.secret` under its own label ([`play_key`]), so every node of a
//! cluster checks every node's tokens.

use super::store_err;
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::store::Room;
use engine::proto::play_token::{self, Claims, PlayKey, TokenError};
use serde_json::{Value, json};

/// A token's lifetime when the owner names none.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// The longest lifetime a token may have (7 days).
pub const MAX_TTL_SECS: u64 = 7 * 24 * 3600;

/// The play-token key of a server whose JWT secret is `secret`.
pub fn play_key(secret: &str) -> PlayKey {
    PlayKey::derive(secret)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The epoch as tokens carry it.
fn epoch(room: &Room) -> u32 {
    u32::try_from(room.play_epoch).unwrap_or(u32::MAX)
}

/// Appends `token` to a play URL's query.
fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}token={token}")
}

impl AppState {
    /// Whether `token` lets its holder watch `room`: always for a public room (a
    /// token is ignored), else a valid, unexpired token of this room and its current
    /// epoch. The check recordings and every control-plane viewer path call.
    pub fn check_play_token(&self, room: &Room, token: Option<&str>) -> Result<(), TokenError> {
        if !room.private {
            return Ok(());
        }
        let key = play_key(&self.cfg.jwt.secret);
        play_token::verify(&key, token, &room.stream_name, room.id, epoch(room), now_unix()).map(drop)
    }

    /// [`Self::check_play_token`] as an API error (401 without a token, 403 with a
    /// bad one).
    pub fn require_play_token(&self, room: &Room, token: Option<&str>) -> AppResult<()> {
        self.check_play_token(room, token).map_err(|e| match e {
            TokenError::Missing => AppError::unauthorized("private room: a play token is required"),
            e => AppError::forbidden(format!("private room: {e}")),
        })
    }

    /// A play token for the owner's room, valid `ttl_secs` (default
    /// [`DEFAULT_TTL_SECS`], 1..=[`MAX_TTL_SECS`]), with the room's play URLs
    /// carrying it.
    pub async fn mint_play_token(&self, id: i64, user_id: i64, ttl_secs: Option<u64>) -> AppResult<Value> {
        let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(1..=MAX_TTL_SECS).contains(&ttl) {
            return Err(AppError::field("ttl_secs", &format!("must be from 1 to {MAX_TTL_SECS}")));
        }
        let room = self.owned_room(id, user_id).await?;
        let expires = now_unix() + ttl;
        let key = play_key(&self.cfg.jwt.secret);
        let token =
            play_token::mint(&key, &room.stream_name, Claims { room_id: room.id, epoch: epoch(&room), expires });
        let room_json = self.room_json(&room, false).await;
        let mut play = serde_json::Map::new();
        if let Some(urls) = room_json["play"].as_object() {
            for (k, v) in urls {
                if let Some(u) = v.as_str() {
                    play.insert(k.clone(), json!(with_token(u, &token)));
                }
            }
        }
        // WS-FLV: the FLV URL over WebSocket.
        if let Some(flv) = room_json["play"]["flv"].as_str() {
            let ws = flv.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
            play.insert("ws_flv".into(), json!(with_token(&ws, &token)));
        }
        let expires_at = chrono::DateTime::from_timestamp(expires as i64, 0);
        Ok(json!({
            "token": token,
            "room_id": room.id,
            "private": room.private,
            "expires_at": expires_at,
            "ttl_secs": ttl,
            "play": play,
        }))
    }

    /// Revokes every play token of the owner's room (its epoch moves on); current
    /// viewers are disconnected and must come back with a new token.
    pub async fn revoke_play_tokens(&self, id: i64, user_id: i64) -> AppResult<Room> {
        self.owned_room(id, user_id).await?;
        let room = self
            .store
            .bump_play_epoch(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::not_found("room not found"))?;
        tracing::info!(room = room.id, stream = %room.stream_name, epoch = room.play_epoch, "play tokens revoked");
        self.engine_set_access(&room);
        Ok(room)
    }

    /// Tells the engine whether the room is private (and its epoch).
    pub(crate) fn engine_set_access(&self, room: &Room) {
        if let Some(e) = &self.engine {
            e.set_access(&room.stream_name, room.private.then(|| (room.id, epoch(room))));
        }
    }

    /// Tells the engine which rooms are private, all at once (start-up, and the
    /// cluster's periodic refresh).
    pub async fn engine_sync_access(&self) -> AppResult<usize> {
        let Some(e) = &self.engine else { return Ok(0) };
        let rooms = self.store.private_rooms().await.map_err(store_err)?;
        let n = rooms.len();
        e.replace_access(rooms.iter().map(|r| (r.stream_name.clone(), r.id, epoch(r))).collect());
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
