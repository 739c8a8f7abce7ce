//! One conformance suite over the `Cache` trait, run on both backends: the
//! in-process `MemoryCache` and `RedisCache` (its own key prefix, removed when the
//! test passes). Redis must be reachable at 127.0.0.1:6379; tests fail if not.

mod common;

use common::{Backend, test_config, unique};
use control::cache::memory::MemoryCache;
use control::cache::redis::RedisCache;
use control::cache::{Cache, CacheError};
use control::config::RedisConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(300);
/// Comfortably past `WINDOW`.
const PAST_WINDOW: Duration = Duration::from_millis(500);

struct Ctx {
    cache: Arc<dyn Cache>,
    redis: Option<RedisConfig>,
}

fn redis_config() -> RedisConfig {
    let dir = tempfile::tempdir().unwrap();
    test_config(Backend::Production, dir.path()).redis
}

async fn open(b: Backend) -> Ctx {
    match b {
        Backend::Embedded => Ctx { cache: Arc::new(MemoryCache::new()), redis: None },
        Backend::Production => {
            let cfg = redis_config();
            assert!(cfg.key_prefix.starts_with("test_"), "isolated prefix, got {:?}", cfg.key_prefix);
            Ctx { cache: open_redis(&cfg).await, redis: Some(cfg) }
        }
    }
}

async fn open_redis(cfg: &RedisConfig) -> Arc<dyn Cache> {
    let cache = RedisCache::new(cfg).unwrap_or_else(|e| panic!("RedisCache::new: {e}"));
    cache
        .ping()
        .await
        .unwrap_or_else(|e| panic!("Redis must be reachable at {}:{} for these tests: {e}", cfg.host, cfg.port));
    Arc::new(cache)
}

/// A raw connection to the test Redis, bypassing the cache (to check prefixes and clean up).
async fn raw(cfg: &RedisConfig) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{}:{}/{}", cfg.host, cfg.port, cfg.db)).unwrap();
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| panic!("Redis unreachable: {e}"))
}

async fn keys_under(cfg: &RedisConfig) -> Vec<String> {
    let mut c = raw(cfg).await;
    let mut keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}*", cfg.key_prefix)).query_async(&mut c).await.unwrap();
    keys.sort();
    keys
}

impl Ctx {
    /// Removes every key under the test's prefix (reached only when the test passed).
    async fn finish(self) {
        if let Some(cfg) = &self.redis {
            let keys = keys_under(cfg).await;
            if !keys.is_empty() {
                let mut c = raw(cfg).await;
                let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut c).await.unwrap();
            }
        }
    }
}

async fn ping_and_backend(b: Backend) {
    let ctx = open(b).await;
    ctx.cache.ping().await.unwrap();
    let want = match b {
        Backend::Embedded => "embedded",
        Backend::Production => "redis",
    };
    assert_eq!(ctx.cache.backend(), want);
    ctx.finish().await;
}

async fn hit_counts_within_a_window(b: Backend) {
    let ctx = open(b).await;
    let c = &ctx.cache;
    let start = Instant::now();
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 1);
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 2);
    assert_eq!(c.hit("login:ip:2", WINDOW).await.unwrap(), 1, "keys count separately");
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 3);
    assert!(start.elapsed() < WINDOW, "the test machine is too slow for a {WINDOW:?} window");

    // A fixed window: later hits do not extend it.
    tokio::time::sleep(WINDOW / 2).await;
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 4);
    tokio::time::sleep(PAST_WINDOW - WINDOW / 2).await;
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 1, "the window expired: counting restarts");
    assert_eq!(c.hit("login:ip:1", WINDOW).await.unwrap(), 2);
    assert_eq!(c.hit("login:ip:2", WINDOW).await.unwrap(), 1, "the other key expired too");

    // A long window outlives a short one.
    assert_eq!(c.hit("long", Duration::from_secs(60)).await.unwrap(), 1);
    tokio::time::sleep(PAST_WINDOW).await;
    assert_eq!(c.hit("long", Duration::from_secs(60)).await.unwrap(), 2);
    c.delete("long").await.unwrap();
    assert_eq!(c.hit("long", Duration::from_secs(60)).await.unwrap(), 1, "delete resets a window counter");
    c.delete("long").await.unwrap();
    ctx.finish().await;
}

async fn flags_expire(b: Backend) {
    let ctx = open(b).await;
    let c = &ctx.cache;
    assert!(!c.has_flag("revoked:a").await.unwrap(), "a missing flag is unset");
    c.set_flag("revoked:a", WINDOW).await.unwrap();
    c.set_flag("revoked:b", Duration::from_secs(60)).await.unwrap();
    assert!(c.has_flag("revoked:a").await.unwrap());
    assert!(c.has_flag("revoked:b").await.unwrap());
    assert!(!c.has_flag("revoked:c").await.unwrap());
    tokio::time::sleep(PAST_WINDOW).await;
    assert!(!c.has_flag("revoked:a").await.unwrap(), "the flag's TTL passed");
    assert!(c.has_flag("revoked:b").await.unwrap(), "a longer TTL is still set");

    // Setting again renews the TTL.
    c.set_flag("revoked:a", WINDOW).await.unwrap();
    c.set_flag("revoked:a", Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(PAST_WINDOW).await;
    assert!(c.has_flag("revoked:a").await.unwrap(), "the second set_flag's TTL applies");

    c.delete("revoked:a").await.unwrap();
    c.delete("revoked:b").await.unwrap();
    assert!(!c.has_flag("revoked:a").await.unwrap());
    assert!(!c.has_flag("revoked:b").await.unwrap());
    ctx.finish().await;
}

async fn counters(b: Backend) {
    let ctx = open(b).await;
    let c = &ctx.cache;
    assert_eq!(c.get("viewers:1").await.unwrap(), 0, "a missing counter reads 0");
    assert_eq!(c.add("viewers:1", 5).await.unwrap(), 5);
    assert_eq!(c.add("viewers:1", 0).await.unwrap(), 5);
    assert_eq!(c.add("viewers:1", -2).await.unwrap(), 3);
    assert_eq!(c.get("viewers:1").await.unwrap(), 3);
    assert_eq!(c.add("viewers:1", -10).await.unwrap(), 0, "never below 0");
    assert_eq!(c.get("viewers:1").await.unwrap(), 0);
    assert_eq!(c.add("viewers:1", 4).await.unwrap(), 4, "counts up from 0 after clamping");
    assert_eq!(c.add("viewers:2", -1).await.unwrap(), 0, "a missing counter decremented is 0");
    assert_eq!(c.get("viewers:2").await.unwrap(), 0);
    assert_eq!(c.get("viewers:1").await.unwrap(), 4, "counters are independent");

    // Counters do not expire.
    tokio::time::sleep(PAST_WINDOW).await;
    assert_eq!(c.get("viewers:1").await.unwrap(), 4);

    c.delete("viewers:1").await.unwrap();
    assert_eq!(c.get("viewers:1").await.unwrap(), 0, "deleted");
    c.delete("viewers:1").await.unwrap();
    c.delete("never-set").await.expect("deleting a missing key is fine");
    assert_eq!(c.add("viewers:1", 1).await.unwrap(), 1);

    // Concurrent adds are not lost.
    let mut tasks = vec![];
    for _ in 0..20 {
        let cache = ctx.cache.clone();
        tasks.push(tokio::spawn(async move { cache.add("viewers:3", 1).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(c.get("viewers:3").await.unwrap(), 20);
    ctx.finish().await;
}

/// Two caches (two prefixes / two processes' worth of state) do not see each other's keys.
async fn isolation(b: Backend) {
    let (one, two) = (open(b).await, open(b).await);
    one.cache.add("shared", 7).await.unwrap();
    one.cache.set_flag("flag", Duration::from_secs(60)).await.unwrap();
    one.cache.hit("hits", Duration::from_secs(60)).await.unwrap();
    assert_eq!(two.cache.get("shared").await.unwrap(), 0);
    assert!(!two.cache.has_flag("flag").await.unwrap());
    assert_eq!(two.cache.hit("hits", Duration::from_secs(60)).await.unwrap(), 1);
    two.cache.delete("shared").await.unwrap();
    assert_eq!(one.cache.get("shared").await.unwrap(), 7, "delete under another prefix touches nothing here");

    if let Some(cfg) = &one.redis {
        // Every key written is under the configured prefix.
        let p = &cfg.key_prefix;
        assert_eq!(keys_under(cfg).await, vec![format!("{p}flag"), format!("{p}hits"), format!("{p}shared")]);
        let mut c = raw(cfg).await;
        let v: i64 = redis::cmd("GET").arg(format!("{p}shared")).query_async(&mut c).await.unwrap();
        assert_eq!(v, 7);
    }
    one.finish().await;
    two.finish().await;
}

/// A Redis that is not there fails fast with `Unavailable` on every operation.
#[tokio::test]
async fn redis_unreachable_is_unavailable_quickly() {
    let cfg = RedisConfig {
        host: "127.0.0.1".into(),
        port: 1, // nothing listens there
        key_prefix: format!("{}:", unique("dead")),
        ..RedisConfig::default()
    };
    let cache = RedisCache::new(&cfg).expect("constructing the client does not connect");
    let check = |what: &str, started: Instant, r: Result<(), CacheError>| {
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
        match r {
            Err(CacheError::Unavailable(m)) => assert!(!m.is_empty(), "{what}: empty message"),
            other => panic!("{what}: expected CacheError::Unavailable, got {other:?}"),
        }
    };
    macro_rules! op {
        ($what:literal, $e:expr) => {{
            let t = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(10), $e)
                .await
                .unwrap_or_else(|_| panic!("{} hung for 10 s", $what));
            check($what, t, r.map(|_| ()));
        }};
    }
    op!("ping", cache.ping());
    op!("hit", cache.hit("k", WINDOW));
    op!("set_flag", cache.set_flag("k", WINDOW));
    op!("has_flag", cache.has_flag("k"));
    op!("add", cache.add("k", 1));
    op!("get", cache.get("k"));
    op!("delete", cache.delete("k"));
    // Still failing (and still quick) on a second round: no stuck state.
    op!("ping again", cache.ping());
}

both_backends!(ping_and_backend, hit_counts_within_a_window, flags_expire, counters, isolation);
