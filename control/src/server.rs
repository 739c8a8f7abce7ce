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
            bail!("database schema is at version {have}, this binary needs {want}: run `microvibe migrate` (or start without --no-migrate)");
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

/// Serves the API on `listener` until `shutdown` resolves (then drains for at most
/// [`SHUTDOWN_GRACE`]).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::routes::router(state);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        });
    let deadline = async move {
        match stopping_rx.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        r = async { server.await } => r.context("control API server failed"),
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the shutdown grace period; stopping anyway");
            Ok(())
        }
    }
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
