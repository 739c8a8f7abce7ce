//! Redis backend (redis crate, async, `ConnectionManager` reconnects by itself).
//! The first connection is made lazily so that the server starts (and `/health`
//! reports the problem) while Redis is down.

use super::*;
use crate::config::RedisConfig;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use tokio::sync::Mutex;

pub struct RedisCache {
    prefix: String,
    conn: LazyConn,
    hit_script: Script,
    add_script: Script,
}

/// One shared Redis connection for `cfg`, made at its first use (so that the server
/// starts while Redis is down) and re-made by itself after a loss; both the cache and
/// the cluster registry use one.
pub struct LazyConn {
    client: ::redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
}

impl LazyConn {
    pub fn new(cfg: &RedisConfig) -> CacheResult<LazyConn> {
        let info = ::redis::ConnectionInfo {
            addr: ::redis::ConnectionAddr::Tcp(cfg.host.clone(), cfg.port),
            redis: ::redis::RedisConnectionInfo {
                db: cfg.db,
                password: (!cfg.password.is_empty()).then(|| cfg.password.clone()),
                ..Default::default()
            },
        };
        Ok(LazyConn { client: ::redis::Client::open(info).map_err(map)?, conn: Mutex::new(None) })
    }

    /// The connection (2 s to connect and per answer, one retry).
    pub async fn get(&self) -> CacheResult<ConnectionManager> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1);
        let c = ConnectionManager::new_with_config(self.client.clone(), cfg).await.map_err(map)?;
        *g = Some(c.clone());
        Ok(c)
    }
}

/// A Redis error as a cache error: unreachable (I/O, refused, timeout, dropped) or not.
pub fn map(e: ::redis::RedisError) -> CacheError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        CacheError::Unavailable(e.to_string())
    } else {
        CacheError::Backend(e.to_string())
    }
}

impl RedisCache {
    pub fn new(cfg: &RedisConfig) -> CacheResult<Self> {
        Ok(Self {
            prefix: cfg.key_prefix.clone(),
            conn: LazyConn::new(cfg)?,
            hit_script: Script::new(
                "local v = redis.call('INCR', KEYS[1]) if v == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return v",
            ),
            add_script: Script::new(
                "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) if v < 0 then redis.call('SET', KEYS[1], 0) v = 0 end return v",
            ),
        })
    }

    async fn conn(&self) -> CacheResult<ConnectionManager> {
        self.conn.get().await
    }

    fn key(&self, k: &str) -> String {
        format!("{}{}", self.prefix, k)
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CacheResult<()> {
        let mut c = self.conn().await?;
        let _: String = ::redis::cmd("PING").query_async(&mut c).await.map_err(map)?;
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> CacheResult<u64> {
        let mut c = self.conn().await?;
        let v: i64 = self
            .hit_script
            .key(self.key(key))
            .arg(window.as_millis().max(1) as u64)
            .invoke_async(&mut c)
            .await
            .map_err(map)?;
        Ok(v.max(0) as u64)
    }

    async fn set_flag(&self, key: &str, ttl: Duration) -> CacheResult<()> {
        let mut c = self.conn().await?;
        let _: () = c.pset_ex(self.key(key), 1, ttl.as_millis().max(1) as u64).await.map_err(map)?;
        Ok(())
    }

    async fn has_flag(&self, key: &str) -> CacheResult<bool> {
        let mut c = self.conn().await?;
        c.exists(self.key(key)).await.map_err(map)
    }

    async fn add(&self, key: &str, delta: i64) -> CacheResult<i64> {
        let mut c = self.conn().await?;
        self.add_script.key(self.key(key)).arg(delta).invoke_async(&mut c).await.map_err(map)
    }

    async fn get(&self, key: &str) -> CacheResult<i64> {
        let mut c = self.conn().await?;
        let v: Option<i64> = c.get(self.key(key)).await.map_err(map)?;
        Ok(v.unwrap_or(0))
    }

    async fn delete(&self, key: &str) -> CacheResult<()> {
        let mut c = self.conn().await?;
        let _: i64 = c.del(self.key(key)).await.map_err(map)?;
        Ok(())
    }
}
