//! /api/v1/auth/* and /api/v1/users/me.

use super::{ApiJson, AuthUser, ClientIp};
use crate::app::AppState;
use crate::error::{AppResult, ok, ok_status};
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    nickname: Option<String>,
}

pub async fn register(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<RegisterBody>,
) -> AppResult<Response> {
    let user = s.register(&b.username, &b.password, b.nickname.as_deref(), &ip).await?;
    Ok(ok_status(StatusCode::CREATED, user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(b): ApiJson<LoginBody>,
) -> AppResult<Response> {
    let (token, claims, user) = s.login(&b.username, &b.password, &ip).await?;
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0);
    Ok(ok(json!({ "token": token, "token_type": "Bearer", "expires_at": expires_at, "user": user })))
}

pub async fn logout(State(s): State<AppState>, AuthUser(claims): AuthUser) -> AppResult<Response> {
    s.logout(&claims).await?;
    Ok(ok(json!({ "revoked": true })))
}

pub async fn me(State(s): State<AppState>, AuthUser(claims): AuthUser) -> AppResult<Response> {
    Ok(ok(s.user(claims.user_id()).await?))
}
