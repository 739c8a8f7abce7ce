//! HTTP routes of the control plane: shapes and auth extraction only; the work is
//! in the services.

mod cluster;
mod extract;
mod live;
pub mod openapi;
mod recordings;
mod system;
mod users;
mod webrtc;
mod ws_signal;

pub use extract::{ApiJson, AuthUser, ClientIp};

use crate::app::AppState;
use crate::error::{AppError, ErrorKind};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, Method};
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Every (method, path) the router serves; the OpenAPI document must list exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/users/me"),
    ("POST", "/api/v1/live/create"),
    ("GET", "/api/v1/live/list"),
    ("GET", "/api/v1/live/my"),
    ("GET", "/api/v1/live/{id}"),
    ("PATCH", "/api/v1/live/{id}"),
    ("DELETE", "/api/v1/live/{id}"),
    ("POST", "/api/v1/live/{id}/end"),
    ("GET", "/api/v1/live/{id}/broadcasts"),
    ("POST", "/api/v1/live/{id}/stream-key/reset"),
    ("GET", "/api/v1/live/{id}/recordings"),
    ("GET", "/api/v1/recordings/{id}"),
    ("DELETE", "/api/v1/recordings/{id}"),
    ("GET", "/api/v1/recordings/{id}/media.mp4"),
    ("GET", "/api/v1/recordings/{id}/media.flv"),
    ("GET", "/api/v1/recordings/{id}/index.m3u8"),
    ("POST", "/api/v1/live/{id}/play-token"),
    ("POST", "/api/v1/live/{id}/play-token/revoke"),
    ("GET", "/api/v1/live/{id}/forwards"),
    ("POST", "/api/v1/live/{id}/forwards"),
    ("PATCH", "/api/v1/live/{id}/forwards/{fid}"),
    ("DELETE", "/api/v1/live/{id}/forwards/{fid}"),
    ("POST", "/api/v1/live/auth/publish"),
    ("POST", "/api/v1/live/auth/publish_done"),
    ("GET", "/api/v1/live/ws"),
    ("GET", "/api/v1/cluster/nodes"),
    ("POST", "/api/v1/cluster/nodes/{id}/drain"),
    ("DELETE", "/api/v1/cluster/nodes/{id}/drain"),
    ("POST", "/whip/{stream_name}"),
    ("OPTIONS", "/whip/{stream_name}"),
    ("PATCH", "/whip/{stream_name}/{session_id}"),
    ("DELETE", "/whip/{stream_name}/{session_id}"),
    ("POST", "/whep/{stream_name}"),
    ("OPTIONS", "/whep/{stream_name}"),
    ("PATCH", "/whep/{stream_name}/{session_id}"),
    ("DELETE", "/whep/{stream_name}/{session_id}"),
];

/// The message of the fallback answer for paths no route serves.
pub const NO_ROUTE: &str = "no such route";

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/openapi.json", get(system::openapi))
        .route("/api/v1/auth/register", post(users::register))
        .route("/api/v1/auth/login", post(users::login))
        .route("/api/v1/auth/logout", post(users::logout))
        .route("/api/v1/users/me", get(users::me))
        .route("/api/v1/cluster/nodes", get(cluster::nodes))
        .route("/api/v1/cluster/nodes/{id}/drain", post(cluster::drain).delete(cluster::undrain))
        .route("/api/v1/live/create", post(live::create))
        .route("/api/v1/live/list", get(live::list))
        .route("/api/v1/live/my", get(live::my))
        .route("/api/v1/live/{id}", get(live::get_room).patch(live::update).delete(live::delete))
        .route("/api/v1/live/{id}/end", post(live::end))
        .route("/api/v1/live/{id}/broadcasts", get(live::broadcasts))
        .route("/api/v1/live/{id}/stream-key/reset", post(live::reset_key))
        .route("/api/v1/live/{id}/recordings", get(recordings::list))
        .route("/api/v1/recordings/{id}", get(recordings::get_one).delete(recordings::delete))
        .route("/api/v1/recordings/{id}/media.mp4", get(recordings::file))
        .route("/api/v1/recordings/{id}/media.flv", get(recordings::file))
        .route("/api/v1/recordings/{id}/index.m3u8", get(recordings::playlist))
        .route("/api/v1/live/{id}/play-token", post(live::play_token))
        .route("/api/v1/live/{id}/play-token/revoke", post(live::revoke_play_tokens))
        .route("/api/v1/live/{id}/forwards", get(live::forwards).post(live::add_forward))
        .route(
            "/api/v1/live/{id}/forwards/{fid}",
            axum::routing::patch(live::patch_forward).delete(live::delete_forward),
        )
        .route("/api/v1/live/auth/publish", post(live::on_publish))
        .route("/api/v1/live/auth/publish_done", post(live::on_publish_done))
        .route("/api/v1/live/ws", get(ws_signal::handler))
        .route("/whip/{stream_name}", post(webrtc::whip_post).options(webrtc::options))
        .route("/whip/{stream_name}/{session_id}", axum::routing::patch(webrtc::whip_patch).delete(webrtc::whip_delete))
        .route("/whep/{stream_name}", post(webrtc::whep_post).options(webrtc::options))
        .route("/whep/{stream_name}/{session_id}", axum::routing::patch(webrtc::whep_patch).delete(webrtc::whep_delete))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed);

    api.layer(axum::extract::DefaultBodyLimit::max(state.cfg.server.body_limit_bytes))
        // A whole request (slow body included) must complete within 30 s.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(30),
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(cors(&state.cfg.server.cors_origins))
        .layer(middleware::from_fn(whip_options))
        .with_state(state)
}

/// OPTIONS on WHIP/WHEP resources (RFC 9725 §4.2): the CORS layer answers the
/// preflight; this adds what WHIP clients look for and answers 204.
async fn whip_options(req: Request, next: Next) -> Response {
    let whip = req.method() == Method::OPTIONS
        && (req.uri().path().starts_with("/whip/") || req.uri().path().starts_with("/whep/"));
    let mut resp = next.run(req).await;
    if whip && resp.status().is_success() {
        *resp.status_mut() = http::StatusCode::NO_CONTENT;
        resp.headers_mut().insert("accept-post", HeaderValue::from_static("application/sdp"));
    }
    resp
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::header::IF_MATCH,
            http::header::RANGE,
        ])
        .expose_headers([
            http::header::LOCATION,
            http::header::ETAG,
            http::header::LINK,
            http::header::CONTENT_RANGE,
            http::header::ACCEPT_RANGES,
            http::header::CONTENT_LENGTH,
        ])
        .max_age(std::time::Duration::from_secs(600))
}

async fn fallback() -> Response {
    AppError::not_found(NO_ROUTE).into_response()
}

async fn method_not_allowed() -> Response {
    AppError::new(ErrorKind::MethodNotAllowed, "method not allowed on this route").into_response()
}

/// Records each request's route, status and latency; turns any non-envelope error
/// body from lower layers into the envelope.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    state.metrics.observe(&route, &method, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}
