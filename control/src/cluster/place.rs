//! What a node says of itself in the registry, and how placement picks a node from
//! the live ones. No I/O: the registry (`super`) reads the records from Redis.

use crate::config::LoadBalance;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Stream origins (publishers) weigh this many players in the load score.
pub const STREAM_WEIGHT: u64 = 10;

/// A node's registration: who it is, where clients and peers reach it, what it can
/// take and what it carries now. Refreshed every heartbeat; gone after the TTL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    /// Random per process: tells a restarted node's leases from its earlier run's.
    pub instance: String,
    pub version: String,
    /// Unix milliseconds.
    pub started_at: i64,
    pub seen_at: i64,
    /// Base URLs: the API (WHIP/WHEP, room WebSocket), RTMP (with the app), HTTP media.
    pub api: String,
    pub rtmp: String,
    pub media: String,
    /// Where other nodes pull this node's streams (HTTP-FLV base URL).
    #[serde(default)]
    pub relay: String,
    /// WebRTC: the UDP ports (first, last; none when off) and the ICE candidates.
    pub webrtc_ports: Option<(u16, u16)>,
    pub webrtc_candidates: Vec<String>,
    pub capacity: Capacity,
    pub load: Load,
    /// Streams this node is the origin of.
    pub streams: Vec<String>,
    /// Viewers connected to this node, by room id.
    pub viewers: BTreeMap<i64, i64>,
    /// A draining node takes no new placements; what it carries stays.
    #[serde(default)]
    pub draining: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub shards: usize,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Live streams originated here.
    pub streams: u64,
    /// Players now, by protocol ("rtmp", "http-flv", "ws-flv", "hls", "webrtc").
    pub players: BTreeMap<String, u64>,
    /// Media bytes sent per second over the last heartbeat, in Mbit/s.
    pub egress_mbps: f64,
    /// Process CPU over the last heartbeat, in cores (1.0 = one core busy).
    pub cpu: f64,
}

impl Load {
    pub fn players_total(&self) -> u64 {
        self.players.values().sum()
    }

    /// What `least_load` compares: players, and each originated stream as
    /// [`STREAM_WEIGHT`] players (a publisher costs ingest, GOP cache and bridges).
    pub fn score(&self) -> u64 {
        self.players_total() + STREAM_WEIGHT * self.streams
    }
}

/// The nodes placement may pick: registered, not draining, and — when a static peer
/// list is configured — named in it (by node id or by the API's host:port).
pub fn eligible<'a>(nodes: &'a [NodeRecord], peers: &[String]) -> Vec<&'a NodeRecord> {
    let mut out: Vec<&NodeRecord> = nodes.iter().filter(|n| !n.draining && in_peers(n, peers)).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Whether a node is one of the static peers (an empty list admits every node).
pub fn in_peers(node: &NodeRecord, peers: &[String]) -> bool {
    if peers.is_empty() {
        return true;
    }
    let api_host = node.api.split("://").nth(1).unwrap_or(&node.api).trim_end_matches('/');
    peers.iter().map(|p| p.trim()).any(|p| p == node.id || p == api_host || p.trim_end_matches('/') == node.api)
}

/// Picks a node. `counter` is the shared round-robin count (the how-many-th pick
/// this is, from 1), `random` any random number; `nodes` in id order.
pub fn pick<'a>(method: LoadBalance, nodes: &[&'a NodeRecord], counter: u64, random: u64) -> Option<&'a NodeRecord> {
    if nodes.is_empty() {
        return None;
    }
    let n = nodes.len() as u64;
    match method {
        LoadBalance::RoundRobin => Some(nodes[(counter.saturating_sub(1) % n) as usize]),
        LoadBalance::Random => Some(nodes[(random % n) as usize]),
        // Ties go round robin, so equally idle nodes share new work.
        LoadBalance::LeastLoad => {
            let best = nodes.iter().map(|node| node.load.score()).min()?;
            let tied: Vec<&'a NodeRecord> = nodes.iter().copied().filter(|node| node.load.score() == best).collect();
            Some(tied[(counter.saturating_sub(1) % tied.len() as u64) as usize])
        }
    }
}

/// The cluster's totals and each node's figures, as `/stat.json` shows them under
/// `cluster` (counts only: no addresses, which only the admin API lists).
pub fn summary(me: &str, nodes: &[NodeRecord]) -> serde_json::Value {
    let per_node: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            serde_json::json!({
                "id": n.id,
                "streams": n.load.streams,
                "players": n.load.players_total(),
                "egress_mbps": n.load.egress_mbps,
                "cpu": n.load.cpu,
                "draining": n.draining,
            })
        })
        .collect();
    let mut players: BTreeMap<&str, u64> = BTreeMap::new();
    for n in nodes {
        for (protocol, count) in &n.load.players {
            *players.entry(protocol).or_default() += count;
        }
    }
    serde_json::json!({
        "node": me,
        "nodes": nodes.len(),
        "streams": nodes.iter().map(|n| n.load.streams).sum::<u64>(),
        "players": nodes.iter().map(|n| n.load.players_total()).sum::<u64>(),
        "players_by_protocol": players,
        "egress_mbps": (nodes.iter().map(|n| n.load.egress_mbps).sum::<f64>() * 1000.0).round() / 1000.0,
        "per_node": per_node,
    })
}

/// `host` as it goes into a URL (an IPv6 address in brackets).
pub fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() }
}

#[cfg(test)]
mod tests;
