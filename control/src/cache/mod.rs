//! Cache / bus: one [`Cache`] trait, two backends.
//!
//! - [`memory::MemoryCache`]: in-process (the embedded default, one node only).
//! - [`redis::RedisCache`]: Redis (production, shared by a cluster), reconnecting.
//!
//! Used for login rate limits (fixed windows), token revocation (flags with a TTL)
//! and live viewer counters. Keys are given without the configured prefix.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache error: {0}")]
    Backend(String),
}

pub type CacheResult<T> = Result<T, CacheError>;

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// "embedded" or "redis".
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> CacheResult<()>;
    /// Adds one to a counter that lives `window` from its first hit; returns the count.
    async fn hit(&self, key: &str, window: Duration) -> CacheResult<u64>;
    /// Sets a flag that disappears after `ttl`.
    async fn set_flag(&self, key: &str, ttl: Duration) -> CacheResult<()>;
    async fn has_flag(&self, key: &str) -> CacheResult<bool>;
    /// Adds `delta` to a counter without expiry; returns the new value (never below 0).
    async fn add(&self, key: &str, delta: i64) -> CacheResult<i64>;
    async fn get(&self, key: &str) -> CacheResult<i64>;
    async fn delete(&self, key: &str) -> CacheResult<()>;
}
