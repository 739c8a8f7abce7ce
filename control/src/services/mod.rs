//! Services: the operations routes call, written against the store and cache traits.

pub mod forwards;
pub mod play_tokens;
pub mod recordings;
pub mod rooms;
pub mod users;

use crate::cache::CacheError;
use crate::error::AppError;
use crate::store::StoreError;

/// Refuses control characters (Unicode `Cc`: C0, DEL, C1) in a text field, naming
/// the field, so both backends answer alike (PostgreSQL refuses NUL in text, SQLite
/// would store it) and logs and terminals are safe. `multiline` fields (a room's
/// description) may hold line breaks and tabs: `\n`, `\r`, `\t`.
pub fn reject_control(field: &str, value: &str, multiline: bool) -> Result<(), AppError> {
    let bad = value.chars().find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    match bad {
        Some(c) => Err(AppError::field(
            field,
            &format!(
                "must not contain control characters (found U+{:04X}){}",
                c as u32,
                if multiline { "; line breaks and tabs are allowed" } else { "" }
            ),
        )),
        None => Ok(()),
    }
}

pub(crate) fn store_err(e: StoreError) -> AppError {
    match e {
        StoreError::Duplicate(what) => AppError::conflict(format!("{what} already exists")),
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %crate::error::log_safe(&m), "database unavailable");
            AppError::unavailable("database unavailable")
        }
        other => AppError::internal(other),
    }
}

pub(crate) fn cache_err(e: CacheError) -> AppError {
    match e {
        CacheError::Unavailable(m) => {
            tracing::warn!(error = %crate::error::log_safe(&m), "cache unavailable");
            AppError::unavailable("cache unavailable")
        }
        other => AppError::internal(other),
    }
}
