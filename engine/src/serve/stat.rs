//! `/stat` (XML with nginx-rtmp's stat module's element names and nesting),
//! `/stat.json` (the same data plus per-protocol counts, per-shard load and the io
//! driver) and `/control/drop/...` (nginx-rtmp's control module, but with a token).
//!
//! The stat documents are public, so without the admin token (`Authorization:
//! Bearer <server.admin_token>`) they hold aggregate figures only (per stream:
//! client counts, bitrates, codecs); per-client details (ids, addresses,
//! protocols, times) need the token.

use crate::proto::http::{Request, Response};
use crate::shard::{Shard, ShardMsg};
pub use crate::stats::{ClientSnap, DropFilter, HomeSnap, ShardSnapshot};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks every shard (this one directly) and collects the answers.
async fn ask_all<T>(shard: &Rc<Shard>, make: impl Fn(futures_channel::oneshot::Sender<T>) -> ShardMsg) -> Vec<T> {
    let mut rx = vec![];
    for i in 0..shard.shared.shard_count() {
        let (tx, r) = futures_channel::oneshot::channel();
        if i == shard.index {
            shard.handle(make(tx));
        } else if !shard.shared.send(i, make(tx)) {
            continue;
        }
        rx.push(r);
    }
    let mut out = vec![];
    for r in rx {
        if let Ok(Ok(v)) = monoio::time::timeout(QUERY_TIMEOUT, r).await {
            out.push(v);
        }
    }
    out
}

pub async fn gather(shard: &Rc<Shard>) -> Vec<ShardSnapshot> {
    let mut v = ask_all(shard, |reply| ShardMsg::Stats { reply }).await;
    v.sort_by_key(|s| s.index);
    v
}

struct StreamView<'a> {
    home: Option<&'a HomeSnap>,
    clients: Vec<&'a ClientSnap>,
}

fn by_stream(snaps: &[ShardSnapshot]) -> BTreeMap<&str, StreamView<'_>> {
    let mut m: BTreeMap<&str, StreamView<'_>> = BTreeMap::new();
    for s in snaps {
        for h in &s.homes {
            m.entry(&h.name).or_insert(StreamView { home: None, clients: vec![] }).home = Some(h);
        }
        for c in &s.clients {
            m.entry(&c.stream).or_insert(StreamView { home: None, clients: vec![] }).clients.push(c);
        }
    }
    m
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn rate(bytes: u64, ms: u64) -> u64 {
    if ms == 0 { 0 } else { bytes * 8 * 1000 / ms }
}

/// `/stat`; per-client elements only when `clients` (the admin token was given).
pub async fn xml(shard: &Rc<Shard>, clients: bool) -> Response {
    let snaps = gather(shard).await;
    let shared = &shard.shared;
    let uptime = shared.started.elapsed();
    let (mut bytes_in, mut bytes_out, mut accepted) = (0u64, 0u64, 0u64);
    for st in &shared.stats {
        bytes_in += st.bytes_in.load(Ordering::Relaxed);
        bytes_out += st.bytes_out.load(Ordering::Relaxed);
        accepted += st.accepted.load(Ordering::Relaxed);
    }
    let ms = uptime.as_millis() as u64;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<rtmp>\n");
    let _ = write!(
        x,
        "<nginx_version>microvibe-{v}</nginx_version>\n<nginx_rtmp_version>microvibe-{v}</nginx_rtmp_version>\n<compiler>rustc</compiler>\n<built>microvibe</built>\n<pid>{pid}</pid>\n<uptime>{up}</uptime>\n<naccepted>{accepted}</naccepted>\n<bw_in>{bwi}</bw_in>\n<bytes_in>{bytes_in}</bytes_in>\n<bw_out>{bwo}</bw_out>\n<bytes_out>{bytes_out}</bytes_out>\n<server>\n",
        v = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        up = uptime.as_secs(),
        bwi = rate(bytes_in, ms),
        bwo = rate(bytes_out, ms),
    );
    let streams = by_stream(&snaps);
    for app in &shared.cfg.rtmp_apps {
        let _ = write!(x, "<application>\n<name>{}</name>\n<live>\n", esc(app));
        let mut total = 0;
        for (name, v) in &streams {
            let Some(h) = v.home else { continue };
            let out: u64 = v.clients.iter().filter(|c| !c.publishing).map(|c| c.bytes).sum();
            let _ = write!(
                x,
                "<stream>\n<name>{}</name>\n<time>{}</time>\n<bw_in>{}</bw_in>\n<bytes_in>{}</bytes_in>\n<bw_out>{}</bw_out>\n<bytes_out>{}</bytes_out>\n<bw_audio>0</bw_audio>\n<bw_video>0</bw_video>\n",
                esc(name),
                h.uptime_ms,
                rate(h.bytes_in, h.uptime_ms),
                h.bytes_in,
                rate(out, h.uptime_ms),
                out
            );
            for c in v.clients.iter().filter(|_| clients) {
                let _ = write!(
                    x,
                    "<client>\n<id>{}</id>\n<address>{}</address>\n<time>{}</time>\n<flashver>{}</flashver>\n<dropped>{}</dropped>\n<avsync>0</avsync>\n<timestamp>0</timestamp>\n{}<active/>\n</client>\n",
                    c.id,
                    c.addr.ip(),
                    c.time_ms,
                    c.protocol.as_str(),
                    c.dropped,
                    if c.publishing { "<publishing/>\n" } else { "" }
                );
            }
            let i = &h.info;
            x.push_str("<meta>\n");
            if let Some(codec) = &i.video_codec {
                let _ = write!(
                    x,
                    "<video>\n<width>{}</width>\n<height>{}</height>\n<frame_rate>{}</frame_rate>\n<codec>{}</codec>\n</video>\n",
                    i.width.unwrap_or(0),
                    i.height.unwrap_or(0),
                    i.fps.map_or(0, |f| f.round() as u64),
                    esc(codec)
                );
            }
            if let Some(codec) = &i.audio_codec {
                let _ = write!(
                    x,
                    "<audio>\n<codec>{}</codec>\n<channels>{}</channels>\n<sample_rate>{}</sample_rate>\n</audio>\n",
                    esc(codec),
                    i.audio_channels.unwrap_or(0),
                    i.audio_sample_rate.unwrap_or(0)
                );
            }
            x.push_str("</meta>\n");
            let _ = write!(x, "<nclients>{}</nclients>\n", v.clients.len());
            if h.publishing {
                x.push_str("<publishing/>\n");
            }
            x.push_str("<active/>\n</stream>\n");
            total += v.clients.len();
        }
        let _ = write!(x, "<nclients>{total}</nclients>\n</live>\n</application>\n");
    }
    x.push_str("</server>\n</rtmp>\n");
    Response::new(200, "text/xml; charset=utf-8", x.into_bytes())
        .header("Cache-Control", "no-cache")
        .header("Vary", "Authorization")
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("null".into(), |x| x.to_string())
}

/// `/stat.json`; the streams' `clients` lists only when `clients` (the admin token
/// was given), their `nclients` always.
pub async fn json(shard: &Rc<Shard>, clients: bool) -> Response {
    let snaps = gather(shard).await;
    let shared = &shard.shared;
    let mut x = String::from("{");
    let _ = write!(
        x,
        "\"version\":{},\"uptime_secs\":{},",
        json_str(env!("CARGO_PKG_VERSION")),
        shared.started.elapsed().as_secs()
    );
    x.push_str("\"shards\":[");
    let mut totals = [0u64; 5];
    for (i, st) in shared.stats.iter().enumerate() {
        let players: Vec<u64> = st.players.iter().map(|p| p.load(Ordering::Relaxed)).collect();
        for (t, p) in totals.iter_mut().zip(&players) {
            *t += p;
        }
        let driver = *st.driver.lock().unwrap_or_else(|p| p.into_inner());
        if i > 0 {
            x.push(',');
        }
        let _ = write!(
            x,
            "{{\"index\":{i},\"io_driver\":{},\"connections\":{},\"accepted\":{},\"publishers\":{},\"players\":{},\"bytes_in\":{},\"bytes_out\":{},\"dropped_frames\":{},\"in_step_writes\":{},\"flush_lanes\":{},\"watched_inputs\":{},\"webrtc_sessions\":{},\"webrtc_retransmits\":{},\"webrtc_nacks_sent\":{},\"webrtc_keyframe_requests\":{},\"queue\":{},\"queue_dropped\":{}}}",
            json_str(driver),
            st.connections.load(Ordering::Relaxed),
            st.accepted.load(Ordering::Relaxed),
            st.publishers.load(Ordering::Relaxed),
            players.iter().sum::<u64>(),
            st.bytes_in.load(Ordering::Relaxed),
            st.bytes_out.load(Ordering::Relaxed),
            st.dropped_frames.load(Ordering::Relaxed),
            st.in_step_writes.load(Ordering::Relaxed),
            st.flush_lanes.load(Ordering::Relaxed),
            st.watched_inputs.load(Ordering::Relaxed),
            st.webrtc_sessions.load(Ordering::Relaxed),
            st.webrtc_retransmits.load(Ordering::Relaxed),
            st.webrtc_nacks_sent.load(Ordering::Relaxed),
            st.webrtc_keyframe_requests.load(Ordering::Relaxed),
            shared.inboxes[i].len(),
            shared.inboxes[i].dropped(),
        );
    }
    let _ = write!(
        x,
        "],\"players\":{{\"rtmp\":{},\"http-flv\":{},\"ws-flv\":{},\"hls\":{},\"webrtc\":{}}},\"streams\":[",
        totals[0], totals[1], totals[2], totals[3], totals[4]
    );
    let mut first = true;
    for (name, v) in by_stream(&snaps) {
        let Some(h) = v.home else { continue };
        if !first {
            x.push(',');
        }
        first = false;
        let i = &h.info;
        let _ = write!(
            x,
            "{{\"name\":{},\"room_id\":{},\"time_ms\":{},\"bytes_in\":{},\"publishing\":{},\"video\":{{\"codec\":{},\"width\":{},\"height\":{},\"fps\":{}}},\"audio\":{{\"codec\":{},\"sample_rate\":{},\"channels\":{}}},\"hls_error\":{},\"bridges\":{:?},\"audio_transcode_cpu_ms\":{},\"nclients\":{}",
            json_str(name),
            h.room_id,
            h.uptime_ms,
            h.bytes_in,
            h.publishing,
            i.video_codec.as_deref().map_or("null".into(), json_str),
            opt(&i.width),
            opt(&i.height),
            opt(&i.fps),
            i.audio_codec.as_deref().map_or("null".into(), json_str),
            opt(&i.audio_sample_rate),
            opt(&i.audio_channels),
            h.hls_error.as_deref().map_or("null".into(), json_str),
            h.bridges,
            h.audio_transcode_ms,
            v.clients.len(),
        );
        if !clients {
            x.push('}');
            continue;
        }
        x.push_str(",\"clients\":[");
        for (k, c) in v.clients.iter().enumerate() {
            if k > 0 {
                x.push(',');
            }
            let _ = write!(
                x,
                "{{\"id\":{},\"address\":{},\"protocol\":{},\"relay\":{},\"publishing\":{},\"time_ms\":{},\"bytes\":{},\"dropped\":{}}}",
                c.id,
                json_str(&c.addr.to_string()),
                json_str(c.protocol.as_str()),
                c.relay,
                c.publishing,
                c.time_ms,
                c.bytes,
                c.dropped
            );
        }
        x.push_str("]}");
    }
    x.push(']');
    let cluster = shared.cluster_stat.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(c) = cluster {
        x.push_str(",\"cluster\":");
        x.push_str(&c);
    }
    x.push('}');
    Response::new(200, "application/json", x.into_bytes())
        .header("Cache-Control", "no-cache")
        .header("Vary", "Authorization")
}

/// Whether the request carries the admin token (`Authorization: Bearer`, or
/// `X-Admin-Token`), compared in constant time. Never true while it is unset.
pub fn is_admin(shard: &Shard, req: &Request) -> bool {
    let token = &shard.shared.cfg.admin_token;
    let given = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .or_else(|| req.header("x-admin-token"))
        .unwrap_or("");
    !token.is_empty() && constant_time_eq(given.as_bytes(), token.as_bytes())
}

/// `/control/drop/{publisher|subscriber|client}?app=&name=&addr=&clientid=`.
pub async fn control_drop(shard: &Rc<Shard>, req: &Request, what: &str) -> Response {
    if shard.shared.cfg.admin_token.is_empty() {
        return Response::text(403, "/control is disabled: set server.admin_token");
    }
    if !is_admin(shard, req) {
        return Response::text(401, "admin token required (Authorization: Bearer <server.admin_token>)")
            .header("WWW-Authenticate", "Bearer");
    }
    let (publishers, players) = match what {
        "publisher" => (true, false),
        "subscriber" => (false, true),
        "client" => (true, true),
        _ => return Response::text(404, "expected /control/drop/publisher, /subscriber or /client"),
    };
    if let Some(app) = req.query_param("app") {
        if !app.is_empty() && !shard.shared.cfg.rtmp_apps.contains(&app) {
            return Response::text(200, "0");
        }
    }
    let clientid = match req.query_param("clientid").filter(|s| !s.is_empty()) {
        Some(s) => match s.parse() {
            Ok(v) => Some(v),
            Err(_) => return Response::text(400, "clientid: expected a number"),
        },
        None => None,
    };
    let filter = DropFilter {
        publishers,
        players,
        name: req.query_param("name").filter(|s| !s.is_empty()),
        addr: req.query_param("addr").filter(|s| !s.is_empty()),
        clientid,
    };
    if filter.name.is_none() && filter.addr.is_none() && filter.clientid.is_none() {
        return Response::text(400, "give name, addr or clientid");
    }
    let n: usize =
        ask_all(shard, |reply| ShardMsg::DropClients { filter: filter.clone(), reply }).await.into_iter().sum();
    Response::text(200, &n.to_string())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
