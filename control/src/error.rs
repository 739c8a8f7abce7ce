//! The control plane's one error type. Each [`ErrorKind`] maps to one HTTP status
//! and one envelope `code`, here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client sent something malformed or invalid (names the field).
    BadRequest,
    /// Missing, expired, revoked or invalid credentials.
    Unauthorized,
    /// Authenticated but not allowed (not the owner, wrong stream key).
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// State conflict: duplicate username, room already live, ...
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    PreconditionFailed,
    TooManyRequests,
    /// A backend (database, cache, engine) is unreachable.
    Unavailable,
    /// Our own bug or an unexpected backend answer. Details go to the log only.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The envelope `code`: the HTTP status number (0 means success).
    pub fn code(self) -> u16 {
        self.status().as_u16()
    }
}

#[derive(Debug, Clone)]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    /// Seconds the client should wait before retrying (`Retry-After`), for 429 / 503.
    pub retry_after: Option<u64>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), retry_after: None }
    }
    /// Adds `Retry-After: secs` to the answer.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, m)
    }
    /// A bad value for one field: the message names it.
    pub fn field(field: &str, problem: &str) -> Self {
        Self::new(ErrorKind::BadRequest, format!("{field}: {problem}"))
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, m)
    }
    /// An internal error: the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %log_safe(&detail), "internal error");
        Self::new(ErrorKind::Internal, "internal error")
    }
}

/// `value` for a log line with every control character escaped (`\n` -> `\\n`, ...),
/// so text that may come from a client (an error quoting its input, a callback
/// field) cannot start a forged log line. For tracing fields, `?value` (Debug) on a
/// string does the same.
pub fn log_safe(value: &impl std::fmt::Display) -> String {
    value.to_string().chars().flat_map(char::escape_debug).collect()
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for AppError {}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.kind.code(), "message": self.message, "data": null });
        let mut resp = (self.kind.status(), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}

/// The success envelope `{"code": 0, "message": "success", "data": ...}`.
pub fn ok<T: serde::Serialize>(data: T) -> Response {
    axum::Json(json!({ "code": 0, "message": "success", "data": data })).into_response()
}

/// Success with a status other than 200 (e.g. 201 Created).
pub fn ok_status<T: serde::Serialize>(status: StatusCode, data: T) -> Response {
    (status, axum::Json(json!({ "code": 0, "message": "success", "data": data }))).into_response()
}

/// A WebRTC session the engine refused: the status by the engine's typed reason
/// ([`engine::serve::rtc::RtcError::refusal`]), its text for the client.
impl From<engine::serve::rtc::RtcError> for AppError {
    fn from(e: engine::serve::rtc::RtcError) -> Self {
        use engine::serve::rtc::RtcRefusal;
        let kind = match e.refusal() {
            RtcRefusal::BadOffer => ErrorKind::BadRequest,
            RtcRefusal::Conflict => ErrorKind::Conflict,
            RtcRefusal::NotLive => ErrorKind::NotFound,
            RtcRefusal::Unavailable => ErrorKind::Unavailable,
            RtcRefusal::TooMany => ErrorKind::TooManyRequests,
            RtcRefusal::Internal => ErrorKind::Internal,
        };
        AppError::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests;
