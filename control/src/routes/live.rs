//! /api/v1/live/*: live rooms, and the nginx-rtmp `on_publish` callback contract.

use super::extract::{MaybeUser, parse_id};
use super::{ApiJson, AuthUser, ClientIp};
use crate::app::AppState;
use crate::error::{AppError, AppResult, ErrorKind, ok, ok_status};
use crate::store::{EndReason, PushProtocol, RoomFilter, RoomStatus};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    title: String,
    #[serde(default = "default_proto")]
    push_protocol: String,
    #[serde(default)]
    description: Option<String>,
    /// Record its broadcasts (default: `recording.default_record`).
    #[serde(default)]
    record: Option<bool>,
    /// Watching needs a play token (docs/private-rooms.md).
    #[serde(default)]
    private: bool,
}

fn default_proto() -> String {
    "rtmp".into()
}

pub async fn create(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    ApiJson(b): ApiJson<CreateBody>,
) -> AppResult<Response> {
    let proto = PushProtocol::parse(&b.push_protocol)
        .ok_or_else(|| AppError::field("push_protocol", "must be \"rtmp\" or \"webrtc\""))?;
    let mut room =
        s.create_room(c.user_id(), &b.title, b.description.as_deref().unwrap_or(""), proto, b.private).await?;
    if let Some(record) = b.record.filter(|r| *r != room.record) {
        room = s.set_record(room.id, c.user_id(), record).await?;
    }
    Ok(ok_status(StatusCode::CREATED, s.room_json(&room, true).await))
}

pub async fn get_room(
    State(s): State<AppState>,
    MaybeUser(u): MaybeUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let room = s.room(parse_id(&id)?).await?;
    let owner = u.is_some_and(|c| c.user_id() == room.owner_id);
    // A private room is its owner's business: to anyone else it does not exist.
    if room.private && !owner {
        return Err(AppError::not_found("room not found"));
    }
    Ok(ok(s.room_json(&room, owner).await))
}

/// The query's parameters; one not in `allowed` is a 400 naming it (a typo such as
/// `?staus=live` must not silently list everything).
pub(super) fn parse_query(raw: Option<String>, allowed: &[&str]) -> AppResult<HashMap<String, String>> {
    let raw = raw.unwrap_or_default();
    let q: HashMap<String, String> = serde_urlencoded::from_str::<Vec<(String, String)>>(&raw)
        .map(|v| v.into_iter().collect())
        .map_err(|e| AppError::bad_request(format!("query: {e}")))?;
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        let k: String = k.chars().take(40).collect();
        return Err(AppError::bad_request(format!("query: unknown parameter {k:?} (allowed: {})", allowed.join(", "))));
    }
    Ok(q)
}

pub(super) fn paging(q: &HashMap<String, String>) -> AppResult<(u32, u32)> {
    let num = |k: &str, default: u32, max: u32| -> AppResult<u32> {
        match q.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| AppError::field(k, &format!("must be an integer from 1 to {max}"))),
        }
    };
    Ok((num("page", 1, 1_000_000)?, num("page_size", 20, 100)?))
}

async fn list_json(s: &AppState, filter: RoomFilter, owner: bool) -> AppResult<Response> {
    let (rooms, total) = s.list_rooms(&filter).await?;
    let mut items = Vec::with_capacity(rooms.len());
    for r in &rooms {
        items.push(s.room_json(r, owner).await);
    }
    Ok(ok(json!({ "items": items, "total": total, "page": filter.page, "page_size": filter.page_size })))
}

pub async fn list(State(s): State<AppState>, RawQuery(q): RawQuery) -> AppResult<Response> {
    let q = parse_query(q, &["status", "page", "page_size"])?;
    let status = match q.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(v) => Some(RoomStatus::parse(v).ok_or_else(|| AppError::field("status", "must be idle or live"))?),
    };
    let (page, page_size) = paging(&q)?;
    list_json(&s, RoomFilter { status, owner_id: None, page, page_size, public_only: true }, false).await
}

pub async fn my(State(s): State<AppState>, AuthUser(c): AuthUser, RawQuery(q): RawQuery) -> AppResult<Response> {
    let q = parse_query(q, &["page", "page_size"])?;
    let (page, page_size) = paging(&q)?;
    list_json(&s, RoomFilter { status: None, owner_id: Some(c.user_id()), page, page_size, public_only: false }, true)
        .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    record: Option<bool>,
}

pub async fn update(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateBody>,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    if b.title.is_none() && b.description.is_none() && b.private.is_none() && b.record.is_none() {
        return Err(AppError::bad_request("body: give title, description, private and/or record"));
    }
    let mut room = s.owned_room(id, c.user_id()).await?;
    if b.title.is_some() || b.description.is_some() || b.private.is_some() {
        room = s.update_room(id, c.user_id(), b.title.as_deref(), b.description.as_deref(), b.private).await?;
    }
    if let Some(record) = b.record {
        room = s.set_record(id, c.user_id(), record).await?;
    }
    Ok(ok(s.room_json(&room, true).await))
}

pub async fn end(State(s): State<AppState>, AuthUser(c): AuthUser, Path(id): Path<String>) -> AppResult<Response> {
    let room = s.end_room(parse_id(&id)?, c.user_id()).await?;
    Ok(ok(s.room_json(&room, true).await))
}

/// `GET /api/v1/live/{id}/broadcasts`: the room's live periods, newest first.
pub async fn broadcasts(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let q = parse_query(q, &["page", "page_size"])?;
    let (page, page_size) = paging(&q)?;
    let (items, total) = s.broadcasts(id, page, page_size).await?;
    let items: Vec<_> = items.iter().map(crate::services::rooms::broadcast_json).collect();
    Ok(ok(json!({ "items": items, "total": total, "page": page, "page_size": page_size })))
}

pub async fn delete(State(s): State<AppState>, AuthUser(c): AuthUser, Path(id): Path<String>) -> AppResult<Response> {
    let id = parse_id(&id)?;
    s.delete_room(id, c.user_id()).await?;
    Ok(ok(json!({ "id": id, "deleted": true })))
}

pub async fn reset_key(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let room = s.reset_stream_key(parse_id(&id)?, c.user_id()).await?;
    Ok(ok(s.room_json(&room, true).await))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PlayTokenBody {
    /// Seconds; a JSON number with no fraction (`3600` or `3600.0`).
    #[serde(default)]
    ttl_secs: Option<f64>,
}

/// `POST /api/v1/live/{id}/play-token`: the owner mints a play token (body
/// optional: `{"ttl_secs": N}`).
pub async fn play_token(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let b: PlayTokenBody = if body.iter().all(u8::is_ascii_whitespace) {
        PlayTokenBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::bad_request(format!("body: {e}")))?
    };
    let ttl = match b.ttl_secs {
        None => None,
        Some(t) if t.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&t) => Some(t as u64),
        Some(_) => return Err(AppError::field("ttl_secs", "must be a whole number of seconds")),
    };
    Ok(ok_status(StatusCode::CREATED, s.mint_play_token(id, c.user_id(), ttl).await?))
}

/// `POST /api/v1/live/{id}/play-token/revoke`: every token minted so far stops
/// working; current viewers are disconnected.
pub async fn revoke_play_tokens(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let room = s.revoke_play_tokens(parse_id(&id)?, c.user_id()).await?;
    Ok(ok(json!({ "room_id": room.id, "play_epoch": room.play_epoch, "revoked": true })))
}

/// The form fields nginx-rtmp sends to `on_publish` / `on_publish_done`
/// (`call`, `name`, `app`, `addr`, `clientid`, `flashver`, `swfurl`, `tcurl`, ...).
fn callback_form(body: &Bytes, query: Option<String>) -> AppResult<HashMap<String, String>> {
    let mut form: HashMap<String, String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|e| AppError::bad_request(format!("body: expected a form: {e}")))?
        .into_iter()
        .collect();
    // nginx-rtmp may pass the key in the name's query (`name=key?x=y`), or as `key=`.
    if let Some(q) = query {
        for (k, v) in serde_urlencoded::from_str::<Vec<(String, String)>>(&q).unwrap_or_default() {
            form.entry(k).or_insert(v);
        }
    }
    Ok(form)
}

fn callback_key(form: &HashMap<String, String>) -> AppResult<String> {
    let name = form.get("name").map(String::as_str).unwrap_or("");
    let name = name.split('?').next().unwrap_or("");
    let key = if name.is_empty() { form.get("key").map(String::as_str).unwrap_or("") } else { name };
    if key.is_empty() {
        return Err(AppError::field("name", "the stream key is required"));
    }
    Ok(key.to_owned())
}

/// nginx-rtmp `on_publish`: 2xx allows the publish and marks the room live; 403 denies.
pub async fn on_publish(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> AppResult<Response> {
    let form = callback_form(&body, q)?;
    let key = callback_key(&form)?;
    let app =
        form.get("app").cloned().unwrap_or_else(|| s.cfg.rtmp.apps.first().cloned().unwrap_or_else(|| "live".into()));
    let addr = form.get("addr").cloned().unwrap_or(ip);
    match s.authorize_publish(&app, &key).await? {
        Ok(g) => {
            // nginx-rtmp publishes right after a 2xx: the broadcast starts now.
            let room = s.stream_started(g.room_id).await?;
            let broadcast = room.and_then(|r| r.broadcast_id);
            Ok(ok(json!({ "room_id": g.room_id, "stream_name": g.stream_name, "broadcast_id": broadcast })))
        }
        Err(why) => {
            // app and addr are the caller's: Debug formatting escapes control characters.
            tracing::info!(app = ?app, addr = ?addr, reason = ?why, "publish refused");
            Err(AppError::new(ErrorKind::Forbidden, why.reason()))
        }
    }
}

/// nginx-rtmp `on_publish_done`: the broadcast ends; the room is idle again.
pub async fn on_publish_done(State(s): State<AppState>, RawQuery(q): RawQuery, body: Bytes) -> AppResult<Response> {
    let form = callback_form(&body, q)?;
    let key = callback_key(&form)?;
    let room = s.room_by_key(&key).await?.ok_or_else(|| AppError::forbidden("unknown stream key"))?;
    let ended = s.stream_ended(room.id, EndReason::PublishDone).await?;
    Ok(ok(json!({ "room_id": room.id, "status": ended.map_or(room.status, |r| r.status).as_str() })))
}

/// `GET /api/v1/live/{id}/forwards` (owner): the room's restreaming destinations
/// with their status; keys masked.
pub async fn forwards(State(s): State<AppState>, AuthUser(c): AuthUser, Path(id): Path<String>) -> AppResult<Response> {
    let list = s.list_forwards(parse_id(&id)?, c.user_id()).await?;
    let items: Vec<_> = list.iter().map(|f| s.forward_json(f)).collect();
    Ok(ok(json!({ "items": items, "max": s.cfg.forward.max_per_room })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardBody {
    url: String,
    key: String,
}

/// `POST /api/v1/live/{id}/forwards` (owner): adds a destination; it starts at once
/// when the room is live.
pub async fn add_forward(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ForwardBody>,
) -> AppResult<Response> {
    let f = s.add_forward(parse_id(&id)?, c.user_id(), &b.url, &b.key).await?;
    Ok(ok_status(StatusCode::CREATED, s.forward_json(&f)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardPatch {
    enabled: bool,
}

/// `PATCH /api/v1/live/{id}/forwards/{fid}` (owner): turns a destination on or off.
pub async fn patch_forward(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path((id, fid)): Path<(String, String)>,
    ApiJson(b): ApiJson<ForwardPatch>,
) -> AppResult<Response> {
    let f = s.set_forward_enabled(parse_id(&id)?, c.user_id(), parse_id(&fid)?, b.enabled).await?;
    Ok(ok(s.forward_json(&f)))
}

/// `DELETE /api/v1/live/{id}/forwards/{fid}` (owner): removes a destination (and
/// stops it if running).
pub async fn delete_forward(
    State(s): State<AppState>,
    AuthUser(c): AuthUser,
    Path((id, fid)): Path<(String, String)>,
) -> AppResult<Response> {
    let fid = parse_id(&fid)?;
    s.delete_forward(parse_id(&id)?, c.user_id(), fid).await?;
    Ok(ok(json!({ "id": fid, "deleted": true })))
}
