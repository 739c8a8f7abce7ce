//! Recordings: a room's list, one recording, its file (HTTP Range: players seek and
//! downloads resume), its HLS VOD playlist, and deleting it (the owner).

use super::AuthUser;
use super::extract::{MaybeUser, parse_id};
use super::live::{paging, parse_query};
use crate::app::AppState;
use crate::auth::Claims;
use crate::error::{AppError, AppResult, ok};
use crate::services::recordings::recording_json;
use crate::store::{Recording, Room};
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower::ServiceExt;

/// Who may see a room's recordings: anyone when the room is public; for a private
/// room its owner, or whoever brings a play token of it (`?token=`).
fn may_watch(s: &AppState, room: &Room, user: &Option<Claims>, token: Option<&str>) -> AppResult<()> {
    if user.as_ref().is_some_and(|c| c.user_id() == room.owner_id) {
        return Ok(());
    }
    s.require_play_token(room, token)
}

async fn watchable(s: &AppState, id: &str, user: &Option<Claims>, token: Option<&str>) -> AppResult<(Recording, Room)> {
    let rec = s.recording(parse_id(id)?).await?;
    let room = s.room(rec.room_id).await?;
    may_watch(s, &room, user, token)?;
    Ok((rec, room))
}

/// The `token` query parameter of a URI, if any.
fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default()).ok()?;
    pairs.into_iter().find(|(k, _)| k == "token").map(|(_, v)| v)
}

/// `GET /api/v1/live/{id}/recordings`: newest first.
pub async fn list(
    State(s): State<AppState>,
    MaybeUser(u): MaybeUser,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    let room = s.room(parse_id(&id)?).await?;
    let q = parse_query(q, &["page", "page_size", "token"])?;
    may_watch(&s, &room, &u, q.get("token").map(String::as_str))?;
    let (page, page_size) = paging(&q)?;
    let (items, total) = s.recordings(room.id, page, page_size).await?;
    let items: Vec<_> = items.iter().map(recording_json).collect();
    Ok(ok(json!({ "items": items, "total": total, "page": page, "page_size": page_size })))
}

/// `GET /api/v1/recordings/{id}`
pub async fn get_one(
    State(s): State<AppState>,
    MaybeUser(u): MaybeUser,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    let q = parse_query(q, &["token"])?;
    let (rec, _) = watchable(&s, &id, &u, q.get("token").map(String::as_str)).await?;
    Ok(ok(recording_json(&rec)))
}

/// `GET /api/v1/recordings/{id}/media.mp4` (or `.flv`): the file, with Range
/// requests. (The name carries the extension: players such as ffmpeg's HLS reader
/// refuse media URLs without one.)
pub async fn file(
    State(s): State<AppState>,
    MaybeUser(u): MaybeUser,
    Path(id): Path<String>,
    req: Request,
) -> AppResult<Response> {
    let token = query_token(req.uri().query());
    let (rec, _) = watchable(&s, &id, &u, token.as_deref()).await?;
    if !req.uri().path().ends_with(&format!("/media.{}", rec.format)) {
        return Err(AppError::not_found(format!("this recording is media.{}", rec.format)));
    }
    let path = s.recording_file(&rec)?;
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(AppError::not_found("the recording's file is missing"));
    }
    let resp = tower_http::services::ServeFile::new(&path)
        .oneshot(req)
        .await
        .map_err(|e| AppError::internal(format!("serving {}: {e}", path.display())))?;
    let mut resp = resp.map(Body::new).into_response();
    if rec.status == "recording" {
        // Still growing: its length changes.
        resp.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

/// `GET /api/v1/recordings/{id}/index.m3u8`: HLS VOD over the MP4's fragments.
pub async fn playlist(
    State(s): State<AppState>,
    MaybeUser(u): MaybeUser,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> AppResult<Response> {
    let q = parse_query(q, &["token"])?;
    let (rec, _) = watchable(&s, &id, &u, q.get("token").map(String::as_str)).await?;
    // The media URI is relative to the playlist; a token the playlist was fetched
    // with goes along (private rooms).
    let uri = match q.get("token") {
        Some(t) => format!("media.mp4?token={}", urlencode(t)),
        None => "media.mp4".to_string(),
    };
    let text = s.recording_playlist(&rec, &uri).await?;
    Ok((
        [(http::header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (http::header::CACHE_CONTROL, "no-cache")],
        text,
    )
        .into_response())
}

/// `DELETE /api/v1/recordings/{id}`: the owner only.
pub async fn delete(State(s): State<AppState>, AuthUser(c): AuthUser, Path(id): Path<String>) -> AppResult<Response> {
    let rec = s.recording(parse_id(&id)?).await?;
    s.owned_room(rec.room_id, c.user_id()).await?;
    s.delete_recording(&rec).await?;
    Ok(ok(json!({ "id": rec.id, "deleted": true })))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
