//! Restreaming ("forward"): a room's RTMP/RTMPS destinations, their validation, the
//! outbound-address guard (SSRF), their status as the engine reports it, and what
//! the engine is told to push when the room goes live.
//!
//! A destination is an ingest URL (`rtmp://host[:port]/app` or `rtmps://…`) and a
//! stream key. The key is the room owner's secret on another platform: it is never
//! logged, never in an error, and shown back only as its last characters. Its host
//! is resolved here (when it is added, and again at every publish start) and, unless
//! `forward.allow_private` is on, refused when any of its addresses is not a public
//! one (loopback, private, link-local, CGNAT, multicast, documentation…), so a user
//! cannot make the server connect into its own network. The engine connects to the
//! address checked here, not to the name.

use super::{reject_control, store_err};
use crate::app::AppState;
use crate::error::{AppError, AppResult};
use crate::store::{Forward, Room};
use chrono::{DateTime, Utc};
use engine::link::{ForwardState, ForwardTarget};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const URL_MAX: usize = 512;
pub const KEY_MAX: usize = 512;

/// A destination URL, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub app: String,
    /// The URL as `tcUrl` (scheme, host, port when given, app).
    pub tc_url: String,
}

/// Parses and checks an ingest URL: `rtmp://` or `rtmps://`, a host name or IP
/// literal, an optional port, an app path; no user, query or fragment.
pub fn parse_url(raw: &str) -> Result<Destination, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.len() > URL_MAX {
        return Err(format!("at most {URL_MAX} characters"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let (tls, rest) = match raw.split_once("://") {
        Some((s, rest)) if s.eq_ignore_ascii_case("rtmp") => (false, rest),
        Some((s, rest)) if s.eq_ignore_ascii_case("rtmps") => (true, rest),
        _ => return Err("the scheme must be rtmp:// or rtmps://".into()),
    };
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment (put the stream key in \"key\")".into());
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err("must not contain a user name or password".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("bad IPv6 host (missing ']')")?;
        h.parse::<Ipv6Addr>().map_err(|_| "bad IPv6 host".to_owned())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("bad port")?),
        };
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("must name a host".into());
    }
    if !authority.starts_with('[')
        && (host.len() > 253
            || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            || host.starts_with(['.', '-']))
    {
        return Err("the host must be a DNS name or an IP address".into());
    }
    let port = match port {
        None => {
            if tls {
                443
            } else {
                1935
            }
        }
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("the port must be a number from 1 to 65535")?,
    };
    let app = path.trim_end_matches('/');
    if app.is_empty() {
        return Err("must have an application path, e.g. rtmp://host/live".into());
    }
    if !app.chars().all(|c| c.is_ascii_graphic() && c != '\\') || app.contains("//") {
        return Err("bad application path".into());
    }
    let scheme = if tls { "rtmps" } else { "rtmp" };
    let authority = authority.to_ascii_lowercase();
    Ok(Destination {
        tls,
        host: host.to_ascii_lowercase(),
        port,
        app: app.to_owned(),
        tc_url: format!("{scheme}://{authority}/{app}"),
    })
}

/// Checks a stream key: not empty, bounded, printable without spaces.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".into());
    }
    if key.len() > KEY_MAX {
        return Err(format!("at most {KEY_MAX} characters"));
    }
    if key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(())
}

/// The key as shown back: its last characters only (4 of a long key, fewer of a
/// short one), the rest as `*`.
pub fn mask_key(key: &str) -> String {
    let n = key.chars().count();
    let shown = if n >= 12 { 4 } else { n / 4 };
    let tail: String = key.chars().skip(n - shown).collect();
    format!("****{tail}")
}

/// Whether `ip` is an ordinary public address (what a destination may be unless
/// `forward.allow_private`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (maps IPv4, maybe private)
                || (s[0] == 0x2002) // 6to4 (maps IPv4, maybe private)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240) // reserved
}

/// Resolves a destination to the address to connect to, refusing non-public ones
/// unless allowed. The error is for the owner (no secrets in it).
pub async fn resolve(d: &Destination, allow_private: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = match d.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, d.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((d.host.as_str(), d.port));
            match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve {}: {e}", d.host)),
                Err(_) => return Err(format!("cannot resolve {}: timed out", d.host)),
            }
        }
    };
    let Some(first) = addrs.first().copied() else {
        return Err(format!("{} has no address", d.host));
    };
    // Every address must be allowed: a name with one public and one private
    // address could otherwise be made to reach the private one.
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "{} resolves to {}, a loopback/private/link-local address: not allowed (forward.allow_private)",
            d.host,
            bad.ip()
        ));
    }
    Ok(first)
}

/// A forward's last known state, from the engine's events.
#[derive(Debug, Clone)]
pub struct ForwardStatus {
    pub state: &'static str,
    pub error: Option<String>,
    pub since: DateTime<Utc>,
    pub bytes_sent: u64,
}

impl AppState {
    /// Records a forward's state (from the engine, or a refusal here). Returns
    /// whether the state changed.
    pub fn note_forward(&self, id: i64, state: ForwardState, error: Option<String>, bytes_sent: u64) -> bool {
        let mut m = self.forward_status.lock().unwrap_or_else(|p| p.into_inner());
        let now = Utc::now();
        let st = state.as_str();
        let mut changed = !m.contains_key(&id);
        let e = m.entry(id).or_insert(ForwardStatus { state: st, error: None, since: now, bytes_sent: 0 });
        if e.state != st {
            e.since = now;
            changed = true;
        }
        e.state = st;
        // The last error stays shown while retrying (and after a stop), until live.
        if error.is_some() || state == ForwardState::Live {
            e.error = error;
        }
        e.bytes_sent = bytes_sent;
        changed
    }

    pub fn forward_json(&self, f: &Forward) -> Value {
        let st = self.forward_status.lock().unwrap_or_else(|p| p.into_inner()).get(&f.id).cloned();
        let status = match st {
            Some(s) => json!({ "state": s.state, "error": s.error, "since": s.since, "bytes_sent": s.bytes_sent }),
            None => json!({ "state": "idle", "error": null, "since": null, "bytes_sent": 0 }),
        };
        json!({
            "id": f.id,
            "room_id": f.room_id,
            "url": f.url,
            "key_hint": mask_key(&f.key),
            "enabled": f.enabled,
            "created_at": f.created_at,
            "status": status,
        })
    }

    pub async fn list_forwards(&self, room_id: i64, user_id: i64) -> AppResult<Vec<Forward>> {
        self.owned_room(room_id, user_id).await?;
        self.store.list_forwards(room_id).await.map_err(store_err)
    }

    pub async fn add_forward(&self, room_id: i64, user_id: i64, url: &str, key: &str) -> AppResult<Forward> {
        let room = self.owned_room(room_id, user_id).await?;
        reject_control("url", url, false)?;
        let dest = parse_url(url).map_err(|e| AppError::field("url", &e))?;
        check_key(key).map_err(|e| AppError::field("key", &e))?;
        resolve(&dest, self.cfg.forward.allow_private).await.map_err(|e| AppError::field("url", &e))?;
        let max = self.cfg.forward.max_per_room;
        let f =
            self.store.create_forward(room_id, url, key, max as i64).await.map_err(store_err)?.ok_or_else(|| {
                AppError::bad_request(format!("a room has at most {max} forwards (forward.max_per_room)"))
            })?;
        tracing::info!(room = room_id, forward = f.id, host = %dest.host, app = ?dest.app, "forward added");
        self.push_forwards(&room).await;
        Ok(f)
    }

    pub async fn set_forward_enabled(&self, room_id: i64, user_id: i64, id: i64, enabled: bool) -> AppResult<Forward> {
        let room = self.owned_room(room_id, user_id).await?;
        let f = self
            .store
            .set_forward_enabled(room_id, id, enabled)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::not_found("forward not found"))?;
        self.push_forwards(&room).await;
        Ok(f)
    }

    pub async fn delete_forward(&self, room_id: i64, user_id: i64, id: i64) -> AppResult<()> {
        let room = self.owned_room(room_id, user_id).await?;
        if !self.store.delete_forward(room_id, id).await.map_err(store_err)? {
            return Err(AppError::not_found("forward not found"));
        }
        self.forward_status.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        self.push_forwards(&room).await;
        Ok(())
    }

    /// Tells the engine where `room`'s stream goes: its enabled forwards, each
    /// resolved and checked now. The engine ignores it unless the stream is live on
    /// this node (so it is sent at every publish start, and after every change of
    /// the list). A destination refused here gets its reason as its status.
    pub async fn push_forwards(&self, room: &Room) {
        let Some(engine) = &self.engine else { return };
        let list = match self.store.list_forwards(room.id).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(room = room.id, error = %crate::error::log_safe(&e), "forwards not read; none started");
                return;
            }
        };
        let mut targets = Vec::new();
        for f in list.iter().filter(|f| f.enabled) {
            let dest = match parse_url(&f.url) {
                Ok(d) => d,
                Err(e) => {
                    self.note_forward(f.id, ForwardState::Stopped, Some(format!("url: {e}")), 0);
                    continue;
                }
            };
            match resolve(&dest, self.cfg.forward.allow_private).await {
                Ok(addr) => targets.push(ForwardTarget {
                    id: f.id,
                    tls: dest.tls,
                    addr,
                    host: dest.host,
                    app: dest.app,
                    tc_url: dest.tc_url,
                    key: f.key.clone(),
                }),
                Err(e) => {
                    tracing::warn!(room = room.id, forward = f.id, error = %e, "forward not started");
                    self.note_forward(f.id, ForwardState::Stopped, Some(e), 0);
                }
            }
        }
        engine.set_forwards(room.id, &room.stream_name, targets);
    }
}

#[cfg(test)]
mod tests;
