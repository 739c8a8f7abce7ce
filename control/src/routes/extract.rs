//! Extractors that answer bad input with the envelope: JSON bodies, bearer tokens,
//! the client address.

use crate::app::AppState;
use crate::auth::Claims;
use crate::error::{AppError, ErrorKind};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// A JSON body; every rejection becomes an envelope error naming the problem.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

fn json_rejection(rej: JsonRejection) -> AppError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => {
            AppError::new(ErrorKind::UnsupportedMediaType, "body: expected Content-Type: application/json")
        }
        JsonRejection::JsonDataError(e) => {
            // "Failed to deserialize the JSON body into the target type: field: problem"
            let text = e.body_text();
            let detail = text.split_once("target type: ").map(|(_, d)| d).unwrap_or(&text);
            AppError::bad_request(format!("body: {detail}"))
        }
        JsonRejection::JsonSyntaxError(e) => {
            let text = e.body_text();
            let detail = text.split_once("JSON: ").map(|(_, d)| d).unwrap_or(&text);
            AppError::bad_request(format!("body: invalid JSON: {detail}"))
        }
        JsonRejection::BytesRejection(e) if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::new(ErrorKind::PayloadTooLarge, "body: too large")
        }
        other => AppError::bad_request(format!("body: {}", other.body_text())),
    }
}

/// The authenticated user of a request (`Authorization: Bearer <JWT>`).
pub struct AuthUser(pub Claims);

pub fn bearer(parts: &Parts) -> Result<&str, AppError> {
    let h = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::unauthorized("missing Authorization: Bearer token"))?;
    let s = h.to_str().map_err(|_| AppError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = s.split_once(' ').ok_or_else(|| AppError::unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::unauthorized("expected Authorization: Bearer <token>"));
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Ok(AuthUser(state.authenticate(token).await?))
    }
}

/// An operator's request: `Authorization: Bearer <server.admin_token>` (compared in
/// constant time). 403 when no admin token is configured.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let want = &state.cfg.server.admin_token;
        if want.is_empty() {
            return Err(AppError::forbidden("the admin API is disabled: set server.admin_token"));
        }
        let token = bearer(parts)?;
        if !crate::auth::secrets_equal(token, want) {
            return Err(AppError::unauthorized("admin token required (Authorization: Bearer <server.admin_token>)"));
        }
        Ok(Admin)
    }
}

/// The authenticated user if a bearer token is present and valid, else `None`.
pub struct MaybeUser(pub Option<Claims>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(http::header::AUTHORIZATION) {
            return Ok(MaybeUser(None));
        }
        let token = bearer(parts)?;
        Ok(MaybeUser(Some(state.authenticate(token).await?)))
    }
}

/// The peer's IP address (the TCP peer; proxies' headers are not trusted).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientIp(ip))
    }
}

/// Parses a path id: a positive integer, else 400 naming `id`.
pub fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| AppError::field("id", "must be a positive integer"))
}
