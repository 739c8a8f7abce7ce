//! `GET /api/v1/cluster/nodes`: what an operator sees of the cluster; draining a node.

use super::extract::Admin;
use crate::app::AppState;
use crate::error::{AppError, ok};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::json;

pub async fn nodes(_: Admin, State(s): State<AppState>) -> Result<Response, AppError> {
    let Some(cluster) = &s.cluster else {
        // One node: the same shape, this node only.
        let players: serde_json::Map<String, serde_json::Value> = s
            .engine
            .as_ref()
            .map(|e| e.players())
            .unwrap_or_default()
            .into_iter()
            .map(|(p, n)| (p.into(), json!(n)))
            .collect();
        return Ok(ok(json!({
            "mode": "standalone",
            "nodes": [{ "id": "local", "self": true, "load": { "players": players } }],
            "totals": { "nodes": 1, "players": players.values().filter_map(|v| v.as_u64()).sum::<u64>() },
        })));
    };
    let nodes = cluster.nodes().await.map_err(|e| AppError::unavailable(format!("cluster registry: {e}")))?;
    let now = chrono::Utc::now().timestamp_millis();
    let list: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| {
            let mut v = serde_json::to_value(n).unwrap_or_default();
            v["self"] = json!(n.id == cluster.id);
            v["age_ms"] = json!((now - n.seen_at).max(0));
            v["players_total"] = json!(n.load.players_total());
            v
        })
        .collect();
    Ok(ok(json!({
        "mode": "cluster",
        "node": cluster.id,
        "method": cluster.method.as_str(),
        "nodes": list,
        "totals": {
            "nodes": nodes.len(),
            "streams": nodes.iter().map(|n| n.load.streams).sum::<u64>(),
            "players": nodes.iter().map(|n| n.load.players_total()).sum::<u64>(),
            "egress_mbps": nodes.iter().map(|n| n.load.egress_mbps).sum::<f64>(),
        },
    })))
}

/// `POST /api/v1/cluster/nodes/{id}/drain`: the node takes no new rooms or players
/// (placement skips it); its live streams and connected players stay.
pub async fn drain(admin: Admin, state: State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    set_draining(admin, state, id, true).await
}

/// `DELETE /api/v1/cluster/nodes/{id}/drain`: the node takes new work again.
pub async fn undrain(admin: Admin, state: State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    set_draining(admin, state, id, false).await
}

async fn set_draining(_: Admin, State(s): State<AppState>, id: String, draining: bool) -> Result<Response, AppError> {
    let Some(cluster) = &s.cluster else {
        return Err(AppError::conflict("not in cluster mode: there is one node and nothing to drain to"));
    };
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(AppError::bad_request("a node id is at most 64 letters, digits, '.', '_' or '-'"));
    }
    match cluster.set_draining(&id, draining).await {
        Ok(true) => {
            tracing::info!(node = %id, draining, "cluster node drain mark changed by the admin API");
            Ok(ok(json!({ "id": id, "draining": draining })))
        }
        Ok(false) => Err(AppError::not_found(format!("no live node {id:?} in the cluster"))),
        Err(e) => Err(AppError::unavailable(format!("cluster registry: {e}"))),
    }
}
