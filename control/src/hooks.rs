//! Outbound hooks (docs/hooks.md): nginx-rtmp's HTTP callbacks and signed JSON
//! webhooks for room events.
//!
//! The nginx-rtmp callbacks (`[hooks] on_publish`, `on_play`, `on_publish_done`,
//! `on_done`, `on_record_done`) are form-encoded POSTs with nginx-rtmp's field names.
//! `on_publish` and `on_play` decide: a 2xx answer allows, anything else (another
//! status, a timeout, a connection error) denies; a 3xx to `on_publish` with a
//! `Location` renames the publish to the key in the Location's last path segment
//! (an auth backend that maps a user's token to a stream key works unchanged). The
//! others are fire-and-forget: spawned, bounded in number, never awaited by anything.
//!
//! Webhooks ([`webhooks::Webhooks`]) are queued per endpoint and room and delivered in
//! order with retries, in tokio tasks of the control plane: emitting never waits.

pub mod webhooks;

use crate::config::Config;
use crate::metrics::{HookLabels, Metrics};
use engine::link::ClientInfo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// nginx-rtmp's `call` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Publish,
    Play,
    PublishDone,
    Done,
    RecordDone,
}

impl Call {
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Publish => "publish",
            Call::Play => "play",
            Call::PublishDone => "publish_done",
            Call::Done => "done",
            Call::RecordDone => "record_done",
        }
    }
}

/// Who a callback is about: nginx-rtmp's `app`, `name` and `addr`, and what the
/// client said about itself (`clientid`, `flashver`, `swfurl`, `tcurl`, `pageurl` and
/// its query args).
#[derive(Debug, Clone, Default)]
pub struct HookClient {
    pub app: String,
    /// The stream name as the client gave it: the stream key for a publisher, the
    /// room's stream name for a player.
    pub name: String,
    /// The client's IP address.
    pub addr: String,
    pub client: ClientInfo,
}

/// The fields nginx-rtmp sends that a client's args may not replace.
const FIELDS: &[&str] =
    &["call", "addr", "clientid", "app", "flashver", "swfurl", "tcurl", "pageurl", "name", "type", "path"];
/// A client's query args beyond this many are not passed on.
const MAX_ARGS: usize = 32;
/// Fire-and-forget callbacks in flight at once; more are dropped (and counted).
const MAX_BACKGROUND: usize = 256;

/// The form body of a callback: nginx-rtmp's fields, then the client's args.
pub fn form(call: Call, c: &HookClient, extra: &[(&str, &str)]) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    let id = c.client.id.to_string();
    f.append_pair("call", call.as_str())
        .append_pair("addr", &c.addr)
        .append_pair("clientid", &id)
        .append_pair("app", &c.app)
        .append_pair("flashver", &c.client.flashver)
        .append_pair("swfurl", &c.client.swfurl)
        .append_pair("tcurl", &c.client.tcurl)
        .append_pair("pageurl", &c.client.pageurl)
        .append_pair("name", &c.name)
        .append_pair("type", "live");
    for (k, v) in extra {
        f.append_pair(k, v);
    }
    for (k, v) in url::form_urlencoded::parse(c.client.args.as_bytes()).take(MAX_ARGS) {
        if !FIELDS.contains(&k.as_ref()) {
            f.append_pair(&k, &v);
        }
    }
    f.finish()
}

/// The stream key a 3xx `Location` of `on_publish` names: its last path segment,
/// without query or fragment, percent-decoded (`newkey`, `/live/newkey`,
/// `rtmp://host/live/newkey?x=1` all give `newkey`). None when empty (`/live/`), too
/// long, or holding control characters or spaces.
pub fn location_key(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let seg = path.rsplit('/').next().unwrap_or_default();
    let key = percent_decode(seg)?;
    (!key.is_empty() && key.len() <= 256 && !key.chars().any(|c| c.is_control() || c.is_whitespace())).then_some(key)
}

/// `%XX` escapes decoded (`+` stays `+`, as in a path); None when not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A callback's answer.
#[derive(Debug)]
enum Answer {
    Ok,
    /// A 3xx, with its Location.
    Redirect(Option<String>),
    Status(u16),
    Failed(String),
}

/// The HTTP client of the hooks: rustls (the system's roots), no redirects followed
/// (a 3xx is an answer), no proxy, every request bounded by `timeout`.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!("no system CA certificates found: https hook URLs will fail (install ca-certificates)");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("microvibe-hooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))
}

/// At most one log line per interval for a kind of trouble, with the count since.
#[derive(Default)]
pub(crate) struct RateLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLog {
    /// Some(n suppressed since the last line) when a line may be logged now.
    pub(crate) fn allow(&self, every: Duration) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if s.0.is_none_or(|t| now.duration_since(t) >= every) {
            let n = s.1;
            *s = (Some(now), 0);
            Some(n)
        } else {
            s.1 += 1;
            None
        }
    }
}

fn url_of(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The outbound hooks of this server.
pub struct Hooks {
    on_publish: Option<String>,
    on_play: Option<String>,
    on_publish_done: Option<String>,
    on_done: Option<String>,
    on_record_done: Option<String>,
    /// Built when any callback is configured.
    http: Option<reqwest::Client>,
    pub webhooks: webhooks::Webhooks,
    metrics: Arc<Metrics>,
    /// What `on_publish` was told, by room, for `on_publish_done` / `on_done`.
    publishers: Mutex<HashMap<i64, HookClient>>,
    background: Arc<tokio::sync::Semaphore>,
    dropped_log: RateLog,
}

impl Hooks {
    /// The configured hooks. An HTTP client that cannot be built (no TLS provider)
    /// is logged, and then every decision hook denies: never allows unchecked.
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Hooks {
        let h = &cfg.hooks;
        let timeout = Duration::from_millis(h.timeout_ms);
        let any = [&h.on_publish, &h.on_play, &h.on_publish_done, &h.on_done, &h.on_record_done]
            .iter()
            .any(|u| !u.trim().is_empty());
        let endpoints = h.endpoints();
        let http = if any || !endpoints.is_empty() {
            match http_client(timeout) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "hook HTTP client unavailable: on_publish/on_play deny, webhooks are off");
                    None
                }
            }
        } else {
            None
        };
        let webhooks = match (&http, endpoints.is_empty()) {
            (Some(client), false) => webhooks::Webhooks::new(
                endpoints,
                client.clone(),
                h.webhook_max_attempts,
                h.webhook_queue,
                metrics.clone(),
            ),
            _ => webhooks::Webhooks::off(),
        };
        Hooks {
            on_publish: url_of(&h.on_publish),
            on_play: url_of(&h.on_play),
            on_publish_done: url_of(&h.on_publish_done),
            on_done: url_of(&h.on_done),
            on_record_done: url_of(&h.on_record_done),
            http: if any { http } else { None },
            webhooks,
            metrics,
            publishers: Mutex::new(HashMap::new()),
            background: Arc::new(tokio::sync::Semaphore::new(MAX_BACKGROUND)),
            dropped_log: RateLog::default(),
        }
    }

    /// No hook at all (tests, tools).
    pub fn off(metrics: Arc<Metrics>) -> Hooks {
        Hooks {
            on_publish: None,
            on_play: None,
            on_publish_done: None,
            on_done: None,
            on_record_done: None,
            http: None,
            webhooks: webhooks::Webhooks::off(),
            metrics,
            publishers: Mutex::new(HashMap::new()),
            background: Arc::new(tokio::sync::Semaphore::new(MAX_BACKGROUND)),
            dropped_log: RateLog::default(),
        }
    }

    /// Whether `on_play` is configured (the engine then asks before each player).
    pub fn has_on_play(&self) -> bool {
        self.on_play.is_some()
    }

    /// Whether `on_publish` is configured.
    pub fn has_on_publish(&self) -> bool {
        self.on_publish.is_some()
    }

    async fn post(&self, call: Call, url: &str, body: String) -> Answer {
        let Some(http) = &self.http else { return Answer::Failed("no HTTP client".into()) };
        let res = http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        let answer = match res {
            Ok(r) if r.status().is_success() => Answer::Ok,
            Ok(r) if r.status().is_redirection() => Answer::Redirect(
                r.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned),
            ),
            Ok(r) => Answer::Status(r.status().as_u16()),
            // reqwest's error names the URL, which may carry a token: the kind only.
            Err(e) if e.is_timeout() => Answer::Failed("timed out".into()),
            Err(e) if e.is_connect() => Answer::Failed("connection failed".into()),
            Err(_) => Answer::Failed("request failed".into()),
        };
        let result = match &answer {
            Answer::Ok => "ok",
            Answer::Redirect(_) => "redirect",
            Answer::Status(_) => "denied",
            Answer::Failed(_) => "error",
        };
        self.metrics.hook_calls.get_or_create(&HookLabels { call: call.as_str().into(), result: result.into() }).inc();
        match &answer {
            Answer::Failed(why) => tracing::warn!(call = call.as_str(), error = %why, "hook request failed"),
            Answer::Status(status) => tracing::info!(call = call.as_str(), status, "hook denied"),
            _ => {}
        }
        answer
    }

    /// `on_publish`: Ok(None) allows the key as given, Ok(Some(key)) allows and
    /// renames to `key` (a 3xx with Location), Err(reason for the client) denies. No
    /// hook configured: Ok(None).
    pub async fn on_publish(&self, c: &HookClient) -> Result<Option<String>, String> {
        let Some(url) = &self.on_publish else { return Ok(None) };
        match self.post(Call::Publish, url, form(Call::Publish, c, &[])).await {
            Answer::Ok => Ok(None),
            Answer::Redirect(Some(loc)) => match location_key(&loc) {
                Some(k) => Ok(Some(k)),
                None => Err("publish refused (on_publish redirected to no stream key)".into()),
            },
            Answer::Redirect(None) | Answer::Status(_) => Err("publish refused by the on_publish hook".into()),
            Answer::Failed(_) => Err("publish authorization unavailable (on_publish)".into()),
        }
    }

    /// `on_play`: Ok allows (also with no hook configured), Err(reason) denies.
    pub async fn on_play(&self, c: &HookClient) -> Result<(), String> {
        let Some(url) = &self.on_play else { return Ok(()) };
        match self.post(Call::Play, url, form(Call::Play, c, &[])).await {
            Answer::Ok => Ok(()),
            Answer::Redirect(_) | Answer::Status(_) => Err("play refused by the on_play hook".into()),
            Answer::Failed(_) => Err("play authorization unavailable (on_play)".into()),
        }
    }

    /// Sends a callback in the background (never awaited); drops it, counted, when
    /// [`MAX_BACKGROUND`] are in flight.
    fn fire(self: &Arc<Self>, call: Call, url: &str, body: String) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let Ok(permit) = self.background.clone().try_acquire_owned() else {
            self.metrics
                .hook_calls
                .get_or_create(&HookLabels { call: call.as_str().into(), result: "dropped".into() })
                .inc();
            if let Some(suppressed) = self.dropped_log.allow(Duration::from_secs(10)) {
                tracing::warn!(call = call.as_str(), suppressed, "too many hook requests in flight; one dropped");
            }
            return;
        };
        let (me, url) = (self.clone(), url.to_owned());
        rt.spawn(async move {
            let _permit = permit;
            me.post(call, &url, body).await;
        });
    }

    /// A publish was allowed for `room_id`: remembered for its `on_publish_done` and
    /// `on_done` (when configured).
    pub fn publish_allowed(&self, room_id: i64, c: HookClient) {
        if self.on_publish_done.is_none() && self.on_done.is_none() {
            return;
        }
        let mut p = self.publishers.lock().unwrap_or_else(|p| p.into_inner());
        // One entry per room: bounded by the rooms.
        p.insert(room_id, c);
    }

    /// A room's publish ended: `on_publish_done` and `on_done` (fire and forget).
    /// A room whose publish this server did not see (WHIP without hooks, a restart)
    /// gets the room's stream name.
    pub fn publish_ended(self: &Arc<Self>, room_id: i64, app: &str, stream_name: &str) {
        if self.on_publish_done.is_none() && self.on_done.is_none() {
            return;
        }
        let c = self.publishers.lock().unwrap_or_else(|p| p.into_inner()).remove(&room_id).unwrap_or_else(|| {
            HookClient { app: app.to_owned(), name: stream_name.to_owned(), ..HookClient::default() }
        });
        if let Some(url) = &self.on_publish_done {
            self.fire(Call::PublishDone, url, form(Call::PublishDone, &c, &[]));
        }
        if let Some(url) = &self.on_done {
            self.fire(Call::Done, url, form(Call::Done, &c, &[]));
        }
    }

    /// A player left: `on_done` (fire and forget) with the app, the stream name and
    /// the player's address.
    pub fn player_left(self: &Arc<Self>, app: &str, stream_name: &str, addr: Option<std::net::SocketAddr>) {
        let Some(url) = &self.on_done else { return };
        let c = HookClient {
            app: app.to_owned(),
            name: stream_name.to_owned(),
            addr: addr.map(|a| a.ip().to_string()).unwrap_or_default(),
            client: ClientInfo::default(),
        };
        self.fire(Call::Done, url, form(Call::Done, &c, &[]));
    }

    /// A recording file is complete: `on_record_done` (fire and forget) with `path`,
    /// as nginx-rtmp sends it. `app` is the RTMP app (`rtmp.apps`' first for streams
    /// that came otherwise), `name` the room's stream name.
    pub fn record_done(self: &Arc<Self>, app: &str, name: &str, path: &str) {
        let Some(url) = &self.on_record_done else { return };
        let c = HookClient { app: app.to_owned(), name: name.to_owned(), ..HookClient::default() };
        self.fire(Call::RecordDone, url, form(Call::RecordDone, &c, &[("path", path)]));
    }

    /// Emits a webhook event for a room (see [`webhooks::Webhooks::emit`]).
    pub fn emit(&self, room_id: i64, event_type: &str, data: serde_json::Value) {
        self.webhooks.emit(room_id, event_type, data);
    }
}

#[cfg(test)]
mod tests;
