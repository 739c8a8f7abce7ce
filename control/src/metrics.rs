//! Prometheus metrics (prometheus-client): HTTP requests by route and status, a
//! latency histogram, rooms by status and backend health (sampled at scrape time).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub backend: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    pub call: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub rooms: Family<StatusLabels, Gauge>,
    pub backend_up: Family<BackendLabels, Gauge>,
    pub live_viewers: Gauge,
    pub players: Family<ProtocolLabels, Gauge>,
    /// Cluster mode: live nodes, and each node's players and originated streams.
    pub cluster_nodes: Gauge,
    pub cluster_node_players: Family<NodeLabels, Gauge>,
    pub cluster_node_streams: Family<NodeLabels, Gauge>,
    /// nginx-rtmp-style callbacks by call and result (ok, redirect, denied, error, dropped).
    pub hook_calls: Family<HookLabels, Counter>,
    /// Webhook deliveries by result: ok, failed (given up after retries), dropped (queue full).
    pub webhook_deliveries: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("microvibe");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        let rooms = Family::<StatusLabels, Gauge>::default();
        let backend_up = Family::<BackendLabels, Gauge>::default();
        let live_viewers = Gauge::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("rooms", "Live rooms by status", rooms.clone());
        registry.register("backend_up", "1 when a storage/cache backend answers", backend_up.clone());
        registry.register("live_viewers", "Viewers of live rooms (sum)", live_viewers.clone());
        let players = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "players",
            "Players connected to the media engine by protocol (HLS: viewer sessions)",
            players.clone(),
        );
        let cluster_nodes = Gauge::default();
        let cluster_node_players = Family::<NodeLabels, Gauge>::default();
        let cluster_node_streams = Family::<NodeLabels, Gauge>::default();
        registry.register("cluster_nodes", "Cluster mode: live nodes in the registry", cluster_nodes.clone());
        registry.register(
            "cluster_node_players",
            "Cluster mode: players connected to each node (as of its last heartbeat)",
            cluster_node_players.clone(),
        );
        registry.register(
            "cluster_node_streams",
            "Cluster mode: live streams each node is the origin of",
            cluster_node_streams.clone(),
        );
        let hook_calls = Family::<HookLabels, Counter>::default();
        registry.register(
            "hook_calls",
            "Outbound nginx-rtmp-style callbacks by call and result (ok, redirect, denied, error, dropped)",
            hook_calls.clone(),
        );
        let webhook_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook events by result: ok, failed (given up after retries), dropped (queue full)",
            webhook_deliveries.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            rooms,
            backend_up,
            live_viewers,
            players,
            cluster_nodes,
            cluster_node_players,
            cluster_node_streams,
            hook_calls,
            webhook_deliveries,
        }
    }

    pub fn observe(&self, route: &str, method: &str, status: u16, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels { route: route.to_owned(), method: method.to_owned(), status })
            .inc();
        self.latency.get_or_create(&RouteLabels { route: route.to_owned() }).observe(secs);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &reg) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}
