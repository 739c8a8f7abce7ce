//! /health, /metrics and the OpenAPI document.

use crate::app::AppState;
use crate::error::ok;
use crate::metrics::{BackendLabels, NodeLabels, ProtocolLabels, StatusLabels};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::json;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// (database healthy, cache healthy), each probe bounded in time.
pub async fn probe(s: &AppState) -> (bool, bool) {
    let db = tokio::time::timeout(PROBE_TIMEOUT, s.store.ping());
    let cache = tokio::time::timeout(PROBE_TIMEOUT, s.cache.ping());
    let (db, cache) = tokio::join!(db, cache);
    (matches!(db, Ok(Ok(()))), matches!(cache, Ok(Ok(()))))
}

pub async fn health(State(s): State<AppState>) -> Response {
    let (db, cache) = probe(&s).await;
    let word = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let data = json!({
        "database": word(db),
        "redis": word(cache),
        "database_backend": s.store.backend(),
        "redis_backend": s.cache.backend(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if db && cache {
        ok(data)
    } else {
        let body = json!({ "code": 503, "message": "a backend is unavailable", "data": data });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    let (db, cache) = probe(&s).await;
    let m = &s.metrics;
    m.backend_up
        .get_or_create(&BackendLabels { backend: "database".into(), kind: s.store.backend().into() })
        .set(db as i64);
    m.backend_up
        .get_or_create(&BackendLabels { backend: "redis".into(), kind: s.cache.backend().into() })
        .set(cache as i64);
    if let Some(e) = &s.engine {
        let players = e.players();
        m.live_viewers.set(players.iter().map(|(_, n)| *n as i64).sum());
        for (protocol, n) in players {
            m.players.get_or_create(&ProtocolLabels { protocol: protocol.into() }).set(n as i64);
        }
    }
    if let Some(cluster) = &s.cluster {
        if let Ok(Ok(nodes)) = tokio::time::timeout(PROBE_TIMEOUT, cluster.nodes()).await {
            m.cluster_nodes.set(nodes.len() as i64);
            // Only live nodes: a node that left has no series.
            m.cluster_node_players.clear();
            m.cluster_node_streams.clear();
            for n in nodes.iter() {
                let labels = NodeLabels { node: n.id.clone() };
                m.cluster_node_players.get_or_create(&labels).set(n.load.players_total() as i64);
                m.cluster_node_streams.get_or_create(&labels).set(n.load.streams as i64);
            }
        }
    }
    if db {
        if let Ok(Ok(counts)) = tokio::time::timeout(PROBE_TIMEOUT, s.store.count_rooms_by_status()).await {
            for (st, n) in counts {
                m.rooms.get_or_create(&StatusLabels { status: st.as_str().into() }).set(n);
            }
        }
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render()).into_response()
}

pub async fn openapi(State(s): State<AppState>) -> Response {
    axum::Json(super::openapi::document(&s.cfg.server.public_url)).into_response()
}
