//! Signed JSON webhooks for room events.
//!
//! `emit(room_id, type, data)` queues the event for every endpoint whose filter takes
//! it and returns at once. Each (endpoint, room) pair has its own queue and one task
//! draining it: event N+1 of a room goes out only after N was delivered or given up
//! (`webhook_max_attempts`, 1 s, 2 s, 4 s ... apart, or the answer's `Retry-After`).
//! All queues together hold at most `webhook_queue` events; beyond it new ones are
//! dropped, counted, with at most one log line per 10 s.
//!
//! A request: `POST` with the JSON body `{id, type, created_at, room_id, data}` and the
//! headers `X-Microvibe-Event` (the type), `X-Microvibe-Timestamp` (unix seconds) and
//! `X-Microvibe-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`. The
//! timestamp is the attempt's own, so a receiver can refuse old (replayed) requests;
//! `id` stays the same across the attempts of one event.

use super::RateLog;
use crate::config::WebhookConfig;
use crate::metrics::{Metrics, ResultLabels};
use hmac::{Hmac, Mac};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The event types (a webhook's `events` filter must name these).
pub const EVENTS: &[&str] = &["room.live", "room.ended", "room.updated", "recording.ready", "forward.failed"];

/// The first retry's wait; each next one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A receiver's `Retry-After` is honoured up to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `failed + 1`, after `failed` failed attempts (1, 2, ...):
/// the receiver's `Retry-After` when it gave one (at most [`MAX_RETRY_AFTER`]), else
/// [`FIRST_BACKOFF`] doubled per failure, at most [`MAX_BACKOFF`].
pub fn retry_delay(failed: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(d) = retry_after {
        return d.min(MAX_RETRY_AFTER);
    }
    let shift = failed.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF)
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by webhook
/// receivers in practice and is ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

struct Endpoint {
    url: String,
    secret: String,
    events: Vec<String>,
}

/// One event as sent (the same bytes on every attempt and endpoint).
struct Event {
    id: String,
    kind: String,
    body: bytes::Bytes,
}

/// Pending events by (endpoint index, room id).
type Queues = HashMap<(usize, i64), VecDeque<Arc<Event>>>;

struct Inner {
    endpoints: Vec<Endpoint>,
    http: reqwest::Client,
    max_attempts: u32,
    capacity: usize,
    queued: AtomicUsize,
    /// Pending events by (endpoint index, room id); a key is present exactly while
    /// its task runs.
    queues: Mutex<Queues>,
    metrics: Arc<Metrics>,
    dropped_log: RateLog,
}

/// The webhook endpoints of this server (none: every call is a no-op).
pub struct Webhooks {
    inner: Option<Arc<Inner>>,
}

impl Webhooks {
    pub fn off() -> Webhooks {
        Webhooks { inner: None }
    }

    pub fn new(
        endpoints: Vec<WebhookConfig>,
        http: reqwest::Client,
        max_attempts: u32,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> Webhooks {
        let endpoints = endpoints
            .into_iter()
            .map(|w| Endpoint { url: w.url.trim().to_owned(), secret: w.secret, events: w.events })
            .collect();
        Webhooks {
            inner: Some(Arc::new(Inner {
                endpoints,
                http,
                max_attempts: max_attempts.max(1),
                capacity: capacity.max(1),
                queued: AtomicUsize::new(0),
                queues: Mutex::new(HashMap::new()),
                metrics,
                dropped_log: RateLog::default(),
            })),
        }
    }

    /// Whether any endpoint is configured.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Events waiting or in delivery now (all endpoints).
    pub fn queued(&self) -> usize {
        self.inner.as_ref().map_or(0, |i| i.queued.load(Ordering::Relaxed))
    }

    /// Queues `event_type` (one of [`EVENTS`]) about `room_id` with `data` for every
    /// endpoint that takes it; never waits. Needs a tokio runtime (else nothing is sent).
    pub fn emit(&self, room_id: i64, event_type: &str, data: serde_json::Value) {
        let Some(inner) = &self.inner else { return };
        if !EVENTS.contains(&event_type) {
            tracing::warn!(event = event_type, "webhook event type unknown; not sent");
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let id = format!("evt_{:032x}", rand::random::<u128>());
        let body = serde_json::json!({
            "id": id,
            "type": event_type,
            "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "room_id": room_id,
            "data": data,
        });
        let ev = Arc::new(Event { id, kind: event_type.to_owned(), body: body.to_string().into() });
        for (i, ep) in inner.endpoints.iter().enumerate() {
            if !ep.events.is_empty() && !ep.events.iter().any(|e| e == event_type) {
                continue;
            }
            let mut queues = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
            if inner.queued.load(Ordering::Relaxed) >= inner.capacity {
                drop(queues);
                inner.metrics.webhook_deliveries.get_or_create(&ResultLabels { result: "dropped".into() }).inc();
                if let Some(suppressed) = inner.dropped_log.allow(Duration::from_secs(10)) {
                    tracing::warn!(
                        capacity = inner.capacity,
                        suppressed,
                        "webhook queue full (receivers down or slow); events dropped"
                    );
                }
                continue;
            }
            inner.queued.fetch_add(1, Ordering::Relaxed);
            let key = (i, room_id);
            let start = !queues.contains_key(&key);
            queues.entry(key).or_default().push_back(ev.clone());
            if start {
                rt.spawn(drain(inner.clone(), key));
            }
        }
    }
}

/// Delivers one (endpoint, room) queue in order until it is empty.
async fn drain(inner: Arc<Inner>, key: (usize, i64)) {
    loop {
        let ev = {
            let mut queues = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
            match queues.get(&key).and_then(|q| q.front().cloned()) {
                Some(ev) => ev,
                None => {
                    queues.remove(&key);
                    return;
                }
            }
        };
        let ok = deliver(&inner, &inner.endpoints[key.0], &ev).await;
        let result = if ok { "ok" } else { "failed" };
        inner.metrics.webhook_deliveries.get_or_create(&ResultLabels { result: result.into() }).inc();
        let mut queues = inner.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.get_mut(&key) {
            q.pop_front();
        }
        inner.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends one event to one endpoint, retrying; whether it was delivered.
async fn deliver(inner: &Inner, ep: &Endpoint, ev: &Event) -> bool {
    let mut last = String::new();
    for attempt in 1..=inner.max_attempts {
        let ts = chrono::Utc::now().timestamp();
        let res = inner
            .http
            .post(&ep.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-Microvibe-Event", &ev.kind)
            .header("X-Microvibe-Timestamp", ts.to_string())
            .header("X-Microvibe-Signature", signature(ep.secret.as_bytes(), ts, &ev.body))
            .body(ev.body.clone())
            .send()
            .await;
        let retry_after = match res {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                last = format!("status {}", r.status().as_u16());
                r.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
            }
            // The error's text names the URL (it may carry a token): the kind only.
            Err(e) => {
                last = if e.is_timeout() {
                    "timed out".into()
                } else if e.is_connect() {
                    "connection failed".into()
                } else {
                    "request failed".into()
                };
                None
            }
        };
        if attempt < inner.max_attempts {
            tokio::time::sleep(retry_delay(attempt, retry_after)).await;
        }
    }
    tracing::warn!(event = %ev.id, kind = %ev.kind, attempts = inner.max_attempts, error = %last, "webhook not delivered; given up");
    false
}

#[cfg(test)]
mod tests;
