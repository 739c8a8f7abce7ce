//! In-process cache: a map behind a mutex, with expiry checked on access and a
//! bound on the number of entries (expired entries are swept when it is reached).

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Most entries kept; beyond it, expired ones are swept and then new keys refused
/// (counters still work; a refused rate-limit key counts as over the limit).
const MAX_ENTRIES: usize = 1_000_000;

struct Entry {
    value: i64,
    expires: Option<Instant>,
}

#[derive(Default)]
pub struct MemoryCache {
    map: Mutex<HashMap<String, Entry>>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m, Instant::now())
    }
}

fn live(e: &Entry, now: Instant) -> bool {
    e.expires.is_none_or(|t| t > now)
}

fn make_room(entries: &mut HashMap<String, Entry>, now: Instant) -> bool {
    if entries.len() < MAX_ENTRIES {
        return true;
    }
    entries.retain(|_, e| live(e, now));
    entries.len() < MAX_ENTRIES
}

#[async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> CacheResult<()> {
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> CacheResult<u64> {
        Ok(self.with(|m, now| {
            if let Some(e) = m.get_mut(key) {
                if live(e, now) {
                    e.value += 1;
                    return e.value as u64;
                }
                *e = Entry { value: 1, expires: Some(now + window) };
                return 1;
            }
            if !make_room(m, now) {
                return u64::MAX;
            }
            m.insert(key.to_owned(), Entry { value: 1, expires: Some(now + window) });
            1
        }))
    }

    async fn set_flag(&self, key: &str, ttl: Duration) -> CacheResult<()> {
        self.with(|m, now| {
            if make_room(m, now) || m.contains_key(key) {
                m.insert(key.to_owned(), Entry { value: 1, expires: Some(now + ttl) });
                Ok(())
            } else {
                Err(CacheError::Unavailable("in-process cache is full".into()))
            }
        })
    }

    async fn has_flag(&self, key: &str) -> CacheResult<bool> {
        Ok(self.with(|m, now| m.get(key).is_some_and(|e| live(e, now))))
    }

    async fn add(&self, key: &str, delta: i64) -> CacheResult<i64> {
        self.with(|m, now| {
            if !m.contains_key(key) && !make_room(m, now) {
                return Err(CacheError::Unavailable("in-process cache is full".into()));
            }
            let e = m.entry(key.to_owned()).or_insert(Entry { value: 0, expires: None });
            e.value = (e.value + delta).max(0);
            Ok(e.value)
        })
    }

    async fn get(&self, key: &str) -> CacheResult<i64> {
        Ok(self.with(|m, now| m.get(key).filter(|e| live(e, now)).map_or(0, |e| e.value)))
    }

    async fn delete(&self, key: &str) -> CacheResult<()> {
        self.with(|m, _| m.remove(key));
        Ok(())
    }
}
