//! Services: the operations routes call, written against the store and cache traits.

pub mod rooms;
pub mod users;

use crate::cache::CacheError;
use crate::error::AppError;
use crate::store::StoreError;

pub(crate) fn store_err(e: StoreError) -> AppError {
    match e {
        StoreError::Duplicate(what) => AppError::conflict(format!("{what} already exists")),
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            AppError::unavailable("database unavailable")
        }
        other => AppError::internal(other),
    }
}

pub(crate) fn cache_err(e: CacheError) -> AppError {
    match e {
        CacheError::Unavailable(m) => {
            tracing::warn!(error = %m, "cache unavailable");
            AppError::unavailable("cache unavailable")
        }
        other => AppError::internal(other),
    }
}
