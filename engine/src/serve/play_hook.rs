//! The play authorization of the control plane's `on_play` hook: one round trip
//! over the control link per player, only when the hook is configured.

use crate::link::{ClientInfo, EngineEvent, PlayDecision, Protocol};
use crate::proto::http::StreamName;
use crate::shard::Shard;
use std::net::SocketAddr;

/// Asks the control plane whether this player may play `name` (its `on_play` hook).
/// None: allowed (also when no hook is configured: nothing is asked). Some(reason):
/// refused, with what the player is told; no answer within `play_auth_timeout`
/// refuses too (a hook that cannot answer denies, as in nginx-rtmp).
pub async fn check(
    shard: &Shard,
    app: &str,
    name: &StreamName,
    addr: SocketAddr,
    protocol: Protocol,
    client: ClientInfo,
) -> Option<String> {
    let cfg = &shard.shared.cfg;
    if !cfg.play_hook {
        return None;
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    shard.shared.events.send(EngineEvent::PlayRequest {
        app: app.to_owned(),
        name: name.clone(),
        addr,
        protocol,
        client: Box::new(client),
        reply: tx,
    });
    match monoio::time::timeout(cfg.play_auth_timeout, rx).await {
        Ok(Ok(PlayDecision::Allow)) => None,
        Ok(Ok(PlayDecision::Deny { reason })) => Some(reason),
        _ => Some("play authorization unavailable; try again".into()),
    }
}
