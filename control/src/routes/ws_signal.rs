//! WebSocket signaling of live rooms:
//! `GET /api/v1/live/ws?room_id=…&role=publisher|viewer&token=<JWT>`; a private
//! room's viewer shows its play token (`play_token=`, or `token=`).
//!
//! JSON text messages. Client → server: `{"type":"offer","sdp":…}` (answered with
//! `{"type":"answer","sdp":…}`), `{"type":"candidate",…}` (accepted and ignored: the
//! server is ICE-lite and learns the peer's addresses from its STUN checks) and
//! `{"type":"leave"}` (ends the WebRTC session; closing the socket does too).
//! Server → client: `{"type":"stream_state","state":"idle|live|ended|deleted"}`
//! (`ended`: the broadcast this socket saw live is over, the room is idle again; a
//! new broadcast of the same room turns it `live` again; `broadcast_id` names the
//! broadcast) and
//! `{"type":"viewer_count","count":N}` (on connect and on change, polled every
//! second) and `{"type":"error","code":<HTTP-like status>,"message":…}`.
//!
//! Refusals found before the session starts (missing/bad token 401, not the owner
//! 403, no such room 404, bad query 400) are sent as an `error`
//! message right after the upgrade, then the socket closes with code 4000 + status
//! (4401, 4403, ...): a browser cannot read the HTTP status of a refused handshake.
//! A request that is not a WebSocket upgrade gets an HTTP 400.
//!
//! The sessions are the same engine sessions WHIP/WHEP create: a publisher's offer
//! makes the room live like WHIP does, and when its session ends the broadcast ends.

use crate::app::AppState;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::services::rooms::PublishDenied;
use crate::store::{Room, RoomStatus};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use engine::serve::rtc::RtcRole;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Largest message (and frame) accepted; an SDP offer is a few KiB.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most offers one socket may send (failed ones included).
pub const MAX_OFFERS: u32 = 8;
/// Most error replies one socket may provoke before it is closed.
const MAX_ERRORS: u32 = 32;
/// How often the room's state and viewer count are checked.
const POLL: Duration = Duration::from_secs(1);
/// A WebSocket ping every this many polls keeps idle sockets alive through proxies.
const PING_EVERY: u32 = 25;
/// A client silent (not even a pong) for this long is gone: the socket closes.
const SILENCE_LIMIT: Duration = Duration::from_secs(80);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Params {
    room_id: Option<String>,
    role: Option<String>,
    token: Option<String>,
    /// A private room's viewer: the play token (`token=` is taken as one too).
    play_token: Option<String>,
}

/// `GET /api/v1/live/ws`: upgrades, then runs the signaling of one peer.
pub async fn handler(
    State(s): State<AppState>,
    super::ClientIp(ip): super::ClientIp,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rej) => {
            return AppError::bad_request(format!(
                "expected a WebSocket upgrade (GET with Upgrade: websocket): {}",
                rej.body_text()
            ))
            .into_response();
        }
    };
    let checked = authorize(&s, q.as_deref().unwrap_or(""), &headers).await;
    ws.max_message_size(MAX_MESSAGE).max_frame_size(MAX_MESSAGE).on_upgrade(move |socket| async move {
        match checked {
            Ok((role, room)) => Signal::new(s, role, room, socket, ip.parse().ok()).run().await,
            Err(e) => refuse(socket, e).await,
        }
    })
}

/// Checks the query and, for a publisher, that the token is the room owner's.
async fn authorize(s: &AppState, query: &str, headers: &HeaderMap) -> AppResult<(Role, Room)> {
    let p: Params = serde_urlencoded::from_str(query).map_err(|e| AppError::bad_request(format!("query: {e}")))?;
    let room_id = p
        .room_id
        .as_deref()
        .ok_or_else(|| AppError::field("room_id", "is required"))?
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AppError::field("room_id", "must be a positive integer"))?;
    let role = match p.role.as_deref() {
        Some("publisher") => Role::Publisher,
        Some("viewer") | None => Role::Viewer,
        Some(_) => return Err(AppError::field("role", "must be publisher or viewer")),
    };
    let room = s.room(room_id).await?;
    if role == Role::Viewer && room.private {
        let token = p.play_token.as_deref().or(p.token.as_deref());
        if let Err(e) = s.require_play_token(&room, token) {
            tracing::info!(room = room.id, stream = %room.stream_name, reason = %e.message, "WebSocket viewer refused");
            // To a viewer without a valid token a private room does not exist.
            return Err(e);
        }
    }
    if role == Role::Publisher {
        // Browsers cannot set headers on a WebSocket: the token comes in the query;
        // other clients may send Authorization: Bearer instead.
        let header_token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned());
        let token = p
            .token
            .filter(|t| !t.is_empty())
            .or(header_token)
            .ok_or_else(|| AppError::unauthorized("the publisher role needs token=<JWT> of the room's owner"))?;
        let claims = s.authenticate(&token).await?;
        if claims.user_id() != room.owner_id {
            return Err(AppError::forbidden("only the room's owner may publish"));
        }
    }
    Ok((role, room))
}

fn error_msg(e: &AppError) -> Message {
    Message::Text(json!({ "type": "error", "code": e.kind.code(), "message": e.message }).to_string().into())
}

/// Closes with 4000 + status; the reason is at most 123 bytes (RFC 6455 §5.5).
fn close_msg(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame { code, reason: reason[..end].to_owned().into() }))
}

async fn refuse(mut socket: WebSocket, e: AppError) {
    // The message may quote the client's query (serde names an unknown value): escaped.
    tracing::debug!(error = %crate::error::log_safe(&e), "signaling socket refused");
    let _ = socket.send(error_msg(&e)).await;
    let _ = socket.send(close_msg(4000 + e.kind.code(), &e.message)).await;
}

/// The room's status and viewer count, shared by all sockets of a room for up to
/// [`MEMO_TTL`] so that many viewers cost one store query per second, not one each.
/// Keyed by the store's address too: tests run several servers in one process.
type MemoKey = (usize, i64);
/// When it was read, the room's status and broadcast (None: deleted) and its viewer count.
type MemoEntry = (Instant, Option<(RoomStatus, Option<i64>)>, i64);
static MEMO: LazyLock<Mutex<HashMap<MemoKey, MemoEntry>>> = LazyLock::new(Default::default);
const MEMO_TTL: Duration = Duration::from_millis(900);

async fn snapshot(s: &AppState, room_id: i64, fresh: bool) -> Option<(Option<(RoomStatus, Option<i64>)>, i64)> {
    let key = (Arc::as_ptr(&s.store) as *const () as usize, room_id);
    if !fresh {
        let m = MEMO.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, st, n)) = m.get(&key)
            && at.elapsed() < MEMO_TTL
        {
            return Some((*st, *n));
        }
    }
    // A store error is no news: keep what the client was told last.
    let status = s.store.room_by_id(room_id).await.ok()?.map(|r| (r.status, r.broadcast_id));
    let count =
        if status.is_some_and(|(st, _)| st == RoomStatus::Live) { s.viewer_count(room_id).await.max(0) } else { 0 };
    let mut m = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() > 4096 {
        m.retain(|_, (at, _, _)| at.elapsed() < Duration::from_secs(10));
    }
    m.insert(key, (Instant::now(), status, count));
    Some((status, count))
}

/// One signaling socket.
struct Signal {
    state: AppState,
    role: Role,
    room_id: i64,
    stream: String,
    socket: WebSocket,
    /// The engine session this socket created, if it is running.
    session: Option<String>,
    /// The peer's address (the engine bounds unconnected viewer sessions per address).
    client: Option<std::net::IpAddr>,
    offers: u32,
    errors: u32,
    last_state: Option<&'static str>,
    /// The broadcast `last_state` was about.
    last_broadcast: Option<i64>,
    last_count: Option<i64>,
}

enum Event {
    Msg(Option<Result<Message, axum::Error>>),
    Tick,
}

impl Signal {
    fn new(state: AppState, role: Role, room: Room, socket: WebSocket, client: Option<std::net::IpAddr>) -> Self {
        Signal {
            state,
            role,
            room_id: room.id,
            stream: room.stream_name,
            socket,
            session: None,
            client,
            offers: 0,
            errors: 0,
            last_state: None,
            last_broadcast: None,
            last_count: None,
        }
    }

    async fn run(mut self) {
        tracing::info!(room = self.room_id, role = self.role.as_str(), "signaling socket open");
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u32;
        let mut heard = Instant::now();
        let mut open = self.push_updates(true).await;
        while open {
            let ev = tokio::select! {
                m = self.socket.recv() => Event::Msg(m),
                _ = tick.tick() => Event::Tick,
            };
            open = match ev {
                Event::Msg(None) | Event::Msg(Some(Ok(Message::Close(_)))) => false,
                Event::Msg(Some(Err(e))) => {
                    // Oversized messages end up here (the socket is unusable after).
                    tracing::debug!(room = self.room_id, error = %crate::error::log_safe(&e), "signaling socket error");
                    let e = AppError::new(
                        ErrorKind::PayloadTooLarge,
                        format!("socket error (messages are limited to {MAX_MESSAGE} bytes): {e}"),
                    );
                    let _ = self.socket.send(error_msg(&e)).await;
                    let _ = self.socket.send(close_msg(1009, "message too big or malformed")).await;
                    false
                }
                Event::Msg(Some(Ok(m))) => {
                    heard = Instant::now();
                    self.on_message(m).await
                }
                Event::Tick => {
                    ticks = ticks.wrapping_add(1);
                    if heard.elapsed() > SILENCE_LIMIT {
                        let _ = self.socket.send(close_msg(1001, "no answer to pings")).await;
                        false
                    } else if ticks.is_multiple_of(PING_EVERY)
                        && self.socket.send(Message::Ping(Default::default())).await.is_err()
                    {
                        false
                    } else {
                        self.push_updates(false).await
                    }
                }
            };
        }
        self.end_session("socket closed").await;
        tracing::info!(room = self.room_id, role = self.role.as_str(), "signaling socket closed");
    }

    async fn send(&mut self, v: Value) -> bool {
        self.socket.send(Message::Text(v.to_string().into())).await.is_ok()
    }

    /// Sends an error; false when the socket should close (too many errors).
    async fn error(&mut self, e: AppError) -> bool {
        self.errors += 1;
        if self.socket.send(error_msg(&e)).await.is_err() {
            return false;
        }
        if self.errors >= MAX_ERRORS {
            let _ = self.socket.send(close_msg(1008, "too many errors")).await;
            return false;
        }
        true
    }

    /// Handles one client message; false when the socket should close.
    async fn on_message(&mut self, m: Message) -> bool {
        let text = match m {
            Message::Text(t) => t,
            Message::Binary(_) => {
                return self.error(AppError::bad_request("binary messages are not supported: send JSON text")).await;
            }
            _ => return true, // ping/pong: answered by the WebSocket layer
        };
        let v: Value = match serde_json::from_str(text.as_str()) {
            Ok(v) => v,
            Err(e) => return self.error(AppError::bad_request(format!("invalid JSON: {e}"))).await,
        };
        let Some(ty) = v.get("type").and_then(Value::as_str) else {
            return self.error(AppError::field("type", "a JSON object with a string \"type\" is required")).await;
        };
        match ty {
            "offer" => self.on_offer(&v).await,
            // ICE-lite: the peer's addresses come from its STUN checks.
            "candidate" => true,
            "leave" => {
                self.end_session("leave").await;
                true
            }
            other => {
                let e = AppError::field(
                    "type",
                    &format!("unknown message type {other:?} (expected offer, candidate or leave)"),
                );
                self.error(e).await
            }
        }
    }

    async fn on_offer(&mut self, v: &Value) -> bool {
        let Some(sdp) = v.get("sdp").and_then(Value::as_str) else {
            return self.error(AppError::field("sdp", "an offer needs the SDP as a string")).await;
        };
        self.offers += 1;
        if self.offers > MAX_OFFERS {
            let e = AppError::new(ErrorKind::TooManyRequests, format!("at most {MAX_OFFERS} offers per socket"));
            let _ = self.socket.send(error_msg(&e)).await;
            let _ = self.socket.send(close_msg(1008, "too many offers")).await;
            return false;
        }
        if self.session.is_some() {
            return self.error(AppError::conflict("this socket already has a WebRTC session: send leave first")).await;
        }
        match self.create(sdp.to_owned()).await {
            Ok(answer) => {
                if !self.send(json!({ "type": "answer", "sdp": answer })).await {
                    return false;
                }
                // The room may have just gone live: tell now, not at the next poll.
                self.push_updates(true).await
            }
            Err(e) => self.error(e).await,
        }
    }

    /// Creates the engine session; the SDP answer.
    async fn create(&mut self, offer: String) -> AppResult<String> {
        let engine =
            self.state.engine.clone().ok_or_else(|| AppError::unavailable("the media engine is not running"))?;
        let room = self.state.room(self.room_id).await?;
        self.stream = room.stream_name.clone();
        let answer = match self.role {
            Role::Publisher => {
                let a = engine
                    .create_webrtc(
                        &room.stream_name,
                        RtcRole::Publisher { room_id: engine::link::RoomId(room.id) },
                        offer,
                    )
                    .await
                    .map_err(AppError::from)?;
                // The session holds the stream; the room goes live with the engine's
                // PublishStarted event (as for WHIP). The key may have been reset since.
                let app = self.state.cfg.rtmp.apps.first().cloned().unwrap_or_default();
                let denied = match self.state.authorize_publish(&app, &room.stream_key).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(why)) => Some(AppError::forbidden(match why {
                        PublishDenied::UnknownKey => "the room's stream key changed",
                        PublishDenied::BadApp => "publishing is not configured (rtmp.apps is empty)",
                    })),
                    Err(e) => Some(e),
                };
                if let Some(e) = denied {
                    engine.delete_webrtc(&a.session_id.to_string()).await;
                    return Err(e);
                }
                tracing::info!(room = room.id, stream = %room.stream_name, "WebSocket publisher session created");
                a
            }
            Role::Viewer => {
                if room.status != RoomStatus::Live {
                    return Err(AppError::not_found("stream is not live"));
                }
                engine
                    .create_webrtc(&room.stream_name, RtcRole::Subscriber { client: self.client }, offer)
                    .await
                    .map_err(AppError::from)?
            }
        };
        self.session = Some(answer.session_id.to_string());
        Ok(answer.sdp)
    }

    async fn end_session(&mut self, why: &str) {
        let Some(id) = self.session.take() else { return };
        let existed = match &self.state.engine {
            Some(e) => e.delete_webrtc(&id).await,
            None => false,
        };
        tracing::info!(room = self.room_id, stream = %self.stream, role = self.role.as_str(), existed, why, "WebSocket WebRTC session ended");
    }

    /// Pushes `stream_state` and `viewer_count` when they changed; false when the
    /// socket is gone.
    async fn push_updates(&mut self, fresh: bool) -> bool {
        let Some((status, count)) = snapshot(&self.state, self.room_id, fresh).await else { return true };
        let seen_live = matches!(self.last_state, Some("live" | "ended"));
        let (state, broadcast) = match status {
            Some((RoomStatus::Live, b)) => ("live", b),
            // The broadcast this socket saw is over; the room waits for the next one.
            Some((RoomStatus::Idle, _)) if seen_live => ("ended", self.last_broadcast),
            Some((RoomStatus::Idle, _)) => ("idle", None),
            None => ("deleted", None),
        };
        // A broadcast that ended and another that started between two polls.
        if state == "live" && self.last_state == Some("live") && broadcast != self.last_broadcast {
            let ended = json!({ "type": "stream_state", "state": "ended", "broadcast_id": self.last_broadcast });
            if !self.send(ended).await {
                return false;
            }
            self.end_session("broadcast ended").await;
            self.last_state = Some("ended");
        }
        if self.last_state != Some(state) {
            self.last_state = Some(state);
            self.last_broadcast = broadcast;
            if !self.send(json!({ "type": "stream_state", "state": state, "broadcast_id": broadcast })).await {
                return false;
            }
            // A broadcast that ended (or a deleted room) ends this socket's session too.
            if state == "ended" || state == "deleted" {
                self.end_session(if state == "ended" { "broadcast ended" } else { "room deleted" }).await;
            }
        }
        if self.last_count != Some(count) {
            self.last_count = Some(count);
            if !self.send(json!({ "type": "viewer_count", "count": count })).await {
                return false;
            }
        }
        true
    }
}
