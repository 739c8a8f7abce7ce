//! WHIP (RFC 9725) and WHEP: WebRTC signaling over HTTP. The offer goes to the
//! engine over the control link, which creates the session on a shard and returns
//! the answer (ICE-lite: all server candidates are in it, so trickle PATCHes are
//! accepted and need no action).

use super::ClientIp;
use super::extract::bearer;
use crate::app::{AppState, RtcSessionRef};
use crate::auth;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::store::RoomStatus;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engine::link::RoomId;
use engine::serve::rtc::RtcRole;

/// Largest SDP offer accepted.
const MAX_OFFER: usize = 64 * 1024;

fn engine(s: &AppState) -> AppResult<std::sync::Arc<dyn crate::app::EngineControl>> {
    s.engine.clone().ok_or_else(|| AppError::unavailable("the media engine is not running"))
}

fn sdp_body(headers: &HeaderMap, body: &Bytes) -> AppResult<String> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/sdp") {
        return Err(AppError::new(ErrorKind::UnsupportedMediaType, "body: expected Content-Type: application/sdp"));
    }
    if body.len() > MAX_OFFER {
        return Err(AppError::new(ErrorKind::PayloadTooLarge, "body: SDP offer too large"));
    }
    String::from_utf8(body.to_vec()).map_err(|_| AppError::bad_request("body: the SDP offer is not UTF-8"))
}

fn created(kind: &str, name: &str, id: &str, etag: &str, sdp: String) -> Response {
    let mut r = (StatusCode::CREATED, sdp).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&format!("/{kind}/{name}/{id}")) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, ETag, Link"));
    r
}

fn remember(s: &AppState, r: RtcSessionRef) -> String {
    let id = auth::random_token(18);
    s.rtc_sessions.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), r);
    id
}

/// `POST /whip/{stream_name}` with `Authorization: Bearer <stream key>`.
pub async fn whip_post(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let (mut parts, _) = http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    let key =
        bearer(&parts).map_err(|_| AppError::unauthorized("WHIP needs Authorization: Bearer <stream key>"))?.to_owned();
    let offer = sdp_body(&headers, &body)?;
    // The on_publish hook (when configured) may deny, or map the Bearer to the key.
    let hook = crate::hooks::HookClient {
        app: s.cfg.rtmp.apps.first().cloned().unwrap_or_default(),
        name: key.clone(),
        addr: ip,
        client: engine::link::ClientInfo { args: query.unwrap_or_default(), ..Default::default() },
    };
    let key = match s.hooks.on_publish(&hook).await {
        Ok(None) => key,
        Ok(Some(renamed)) => renamed,
        Err(reason) => return Err(AppError::forbidden(reason)),
    };
    let room = s.room_by_name(&name).await?.ok_or_else(|| AppError::not_found("no such stream"))?;
    if !auth::secrets_equal(&room.stream_key, &key) {
        return Err(AppError::forbidden("wrong stream key"));
    }
    let answer = engine(&s)?
        .create_webrtc(&name, RtcRole::Publisher { room_id: RoomId(room.id) }, offer)
        .await
        .map_err(AppError::from)?;
    // The session holds the stream; the room goes live with the engine's
    // PublishStarted event (engine_link).
    let etag = format!("\"{}\"", auth::random_token(9));
    let id = remember(
        &s,
        RtcSessionRef {
            engine_id: answer.session_id.to_string(),
            stream_name: name.clone(),
            publisher: true,
            room_id: room.id,
            etag: etag.clone(),
        },
    );
    s.hooks.publish_allowed(room.id, hook);
    tracing::info!(stream = %name, "WHIP publisher session created");
    Ok(created("whip", &name, &id, &etag, answer.sdp))
}

/// `POST /whep/{stream_name}`: public rooms need no token; a private room's viewer
/// shows a play token (`Authorization: Bearer <token>` or `?token=`). The engine
/// bounds the sessions that have not connected yet per client address (429 beyond).
pub async fn whep_post(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ClientIp(ip): ClientIp,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let offer = sdp_body(&headers, &body)?;
    let room = s.room_by_name(&name).await?.ok_or_else(|| AppError::not_found("no such stream"))?;
    let (mut parts, _) = http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    let token =
        bearer(&parts).ok().map(str::to_owned).or_else(|| q.as_deref().and_then(engine::proto::play_token::from_query));
    if let Err(e) = s.require_play_token(&room, token.as_deref()) {
        tracing::info!(client = %ip.escape_debug(), stream = %name, reason = %e.message, "WHEP viewer refused");
        return Err(e);
    }
    if room.status != RoomStatus::Live {
        return Err(AppError::not_found("stream is not live"));
    }
    let client = ip.parse().ok();
    let answer =
        engine(&s)?.create_webrtc(&name, RtcRole::Subscriber { client }, offer).await.map_err(AppError::from)?;
    let etag = format!("\"{}\"", auth::random_token(9));
    let id = remember(
        &s,
        RtcSessionRef {
            engine_id: answer.session_id.to_string(),
            stream_name: name.clone(),
            publisher: false,
            room_id: room.id,
            etag: etag.clone(),
        },
    );
    Ok(created("whep", &name, &id, &etag, answer.sdp))
}

fn session(s: &AppState, name: &str, id: &str, publisher: bool) -> AppResult<RtcSessionRef> {
    let m = s.rtc_sessions.lock().unwrap_or_else(|p| p.into_inner());
    m.get(id)
        .filter(|r| r.stream_name == name && r.publisher == publisher)
        .cloned()
        .ok_or_else(|| AppError::not_found("no such session"))
}

/// A WHIP session may only be changed with its stream key.
async fn check_whip_key(s: &AppState, headers: &HeaderMap, name: &str) -> AppResult<()> {
    let (mut parts, _) = http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    let key = bearer(&parts).map_err(|_| AppError::unauthorized("WHIP needs Authorization: Bearer <stream key>"))?;
    let room = s.room_by_name(name).await?.ok_or_else(|| AppError::not_found("no such stream"))?;
    if !auth::secrets_equal(&room.stream_key, key) {
        return Err(AppError::forbidden("wrong stream key"));
    }
    Ok(())
}

async fn patch(s: AppState, name: String, id: String, headers: HeaderMap, publisher: bool) -> AppResult<Response> {
    if publisher {
        check_whip_key(&s, &headers, &name).await?;
    }
    let r = session(&s, &name, &id, publisher)?;
    if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        if m.trim() != "*" && m.trim() != r.etag {
            return Err(AppError::new(ErrorKind::PreconditionFailed, "If-Match does not match the session's ETag"));
        }
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/trickle-ice-sdpfrag") {
        return Err(AppError::new(ErrorKind::UnsupportedMediaType, "body: expected application/trickle-ice-sdpfrag"));
    }
    // ICE-lite: the client's candidates are learned from its STUN checks.
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete(s: AppState, name: String, id: String, headers: HeaderMap, publisher: bool) -> AppResult<Response> {
    if publisher {
        check_whip_key(&s, &headers, &name).await?;
    }
    let r = session(&s, &name, &id, publisher)?;
    s.rtc_sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    let existed = engine(&s)?.delete_webrtc(&r.engine_id).await;
    tracing::info!(stream = %name, publisher, existed, "WebRTC session deleted");
    Ok(StatusCode::OK.into_response())
}

pub async fn whip_patch(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    patch(s, name, id, headers, true).await
}
pub async fn whep_patch(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    patch(s, name, id, headers, false).await
}
pub async fn whip_delete(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    delete(s, name, id, headers, true).await
}
pub async fn whep_delete(
    State(s): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    delete(s, name, id, headers, false).await
}

/// `OPTIONS`: CORS preflight and capability discovery (RFC 9725 §4.2).
pub async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert("accept-post", HeaderValue::from_static("application/sdp"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, If-Match"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, ETag, Link"));
    r
}
