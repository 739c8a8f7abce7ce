//! Running the control plane: migrations check, listener, graceful shutdown.

use crate::app::{self, AppState};
use crate::config::Config;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;

/// Opens the store and applies (or, with `no_migrate`, checks) migrations.
pub async fn prepare_store(cfg: &Config, no_migrate: bool) -> anyhow::Result<Arc<dyn crate::store::Store>> {
    let store = app::open_store(cfg).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if no_migrate {
        let (have, want) = store.schema_version().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if have < want {
            bail!(
                "database schema is at version {have}, this binary needs {want}: run `microvibe migrate` (or start without --no-migrate)"
            );
        }
    } else {
        let ran = store.migrate().await.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
        for m in ran {
            tracing::info!(migration = %m, "applied migration");
        }
    }
    Ok(store)
}

/// Binds the control API's listener, naming the key on failure.
pub async fn bind(cfg: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    let addr = cfg.listen_addr();
    tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (server.host/server.port)"))
}

/// After the shutdown signal, how long in-flight requests may take before the
/// server stops anyway (a client stalled mid-request would otherwise hold it forever).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Time a client has to send a request head (slow-loris bound).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Serves the API on `listener` until `shutdown` resolves (then drains for at most
/// [`SHUTDOWN_GRACE`]). Each connection runs hyper's HTTP/1.1 + HTTP/2 server with a
/// timer, so request heads must arrive within [`HEADER_READ_TIMEOUT`]; the router
/// bounds bodies and whole requests.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    let router = crate::routes::router(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let svc = router.clone().map_request(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            req.map(axum::body::Body::new)
        });
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            builder.http2().timer(TokioTimer::new());
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%addr, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
        // Reap finished connection tasks so the set stays small.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the shutdown grace period; stopping anyway");
        conns.abort_all();
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
