//! `microvibe`: the MicroVibe Live server.

use clap::{Parser, Subcommand};
use control::app::{self, AppState};
use control::config::{Config, ConfigSource};
use control::server;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "microvibe",
    version,
    about = "MicroVibe Live: RTMP, HTTP-FLV, HLS and WebRTC live streaming in one server"
)]
#[command(after_help = "Config: configs/microvibe.toml when present (or --config PATH), overridden by env \
MICROVIBE__SECTION__KEY (e.g. MICROVIBE__SERVER__PORT=9000) and the old stack's names \
(DATABASE_HOST, REDIS_HOST, JWT_SECRET, ...). `microvibe config` prints the result.")]
struct Cli {
    /// Config file (default: configs/microvibe.toml when present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Do not apply pending migrations; refuse to start if the schema is behind.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and print what ran.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let (cfg, source) = match Config::load_with_source(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("microvibe: {e}");
            return ExitCode::from(2);
        }
    };
    // rtc_dtls warns about every DTLS 1.3 extension browsers offer: keep it to errors.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rtc_dtls=error".into());
    // Colours only on a terminal: journald, files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();

    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("microvibe: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve { no_migrate: false }) {
            Command::Config => {
                print!("{}", cfg.redacted_toml());
                Ok(())
            }
            Command::Migrate => {
                let store = app::open_store(&cfg).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let ran = store.migrate().await.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
                let (have, _) = store.schema_version().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                if ran.is_empty() {
                    println!("no pending migrations ({} schema at version {have})", store.backend());
                } else {
                    for m in &ran {
                        println!("applied {m}");
                    }
                    println!("{} schema now at version {have}", store.backend());
                }
                Ok(())
            }
            Command::Serve { no_migrate } => serve(cfg, &source, no_migrate).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("microvibe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(mut cfg: Config, source: &ConfigSource, no_migrate: bool) -> anyhow::Result<()> {
    server::log_startup(&cfg, source);
    let nofile = server::raise_nofile_limit();
    let limits = server::ConnLimits::new(&cfg, nofile);
    tracing::info!(
        nofile = ?nofile,
        api_max_connections = limits.max,
        api_max_connections_per_ip = limits.per_ip,
        idle_timeout = ?limits.idle,
        "descriptor limit (RLIMIT_NOFILE, soft raised to hard); the control API takes at most a quarter, the rest is kept for the media engine"
    );
    let jwt = server::prepare_jwt_secret(&mut cfg)?;
    server::log_jwt_secret(&cfg, &jwt);
    let listener = server::bind(&cfg).await?;
    let store = server::prepare_store(&cfg, no_migrate).await?;
    let cache = app::open_cache(&cfg)?;
    tracing::info!(
        database = store.backend(),
        cache = cache.backend(),
        addr = %listener.local_addr()?,
        mode = ?cfg.server.mode,
        "control API listening"
    );
    let engine = if cfg.engine.enabled { Some(control::engine_link::start(&cfg)?) } else { None };
    let cluster =
        if cfg.cluster_on() { Some(std::sync::Arc::new(control::cluster::Cluster::new(&cfg)?)) } else { None };
    let mut state = AppState::new(cfg, store, cache);
    if let Some(c) = &cluster {
        state = state.with_cluster(c.clone());
    }
    if let Some(e) = &engine {
        state = state.with_engine(e.clone());
        tokio::spawn(control::engine_link::run_events(state.clone(), e.clone()));
        tokio::spawn(control::engine_link::sync_access(state.clone()));
    }
    if let Some(c) = cluster {
        tokio::spawn(c.run(state.clone()));
    }
    let result = server::serve(state, listener, limits, server::shutdown_signal()).await;
    if let Some(e) = engine {
        // Ends players and publishers cleanly (RTMP StreamEOF, last HTTP chunk).
        let eng = e.engine.clone();
        tokio::task::spawn_blocking(move || eng.shutdown(std::time::Duration::from_secs(4))).await.ok();
    }
    result
}
