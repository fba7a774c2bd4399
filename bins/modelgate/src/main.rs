//! The modelgate server binary: parses the CLI, loads and validates config, sets up
//! tracing, binds the listener and runs the HTTP service until SIGINT/SIGTERM; the config
//! file watcher and SIGHUP both reload the configuration. Wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use modelgate_catalog::Catalog;
use modelgate_config::{LogFormat, Settings};
use modelgate_http::{build_state, serve, AppState, Router, ServeOptions};
use tracing_subscriber::EnvFilter;

/// Exit code for an invalid configuration (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

/// modelgate: a self-hosted LLM gateway built around model discovery.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (YAML). Default: $MODELGATE_CONFIG, else config/default.yaml if present.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override server.host.
    #[arg(long)]
    host: Option<String>,
    /// Override server.port.
    #[arg(long, short)]
    port: Option<u16>,
    /// Validate the configuration, print every problem, and exit (0 valid, 64 invalid).
    #[arg(long)]
    check_config: bool,
    /// Log as JSON lines (overrides logging.format).
    #[arg(long)]
    json_logs: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = modelgate_config::resolve_path(
        cli.config.as_deref(),
        std::env::var(modelgate_config::ENV_CONFIG_PATH).ok(),
    );
    let loaded = match modelgate_config::load(path.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("modelgate: configuration is invalid:");
            for p in e.problems() {
                eprintln!("  {p}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(problems) = modelgate_http::Extensions::from_settings(&loaded.settings) {
        eprintln!("modelgate: configuration is invalid:");
        for p in problems.0 {
            eprintln!("  {p}");
        }
        return ExitCode::from(EXIT_CONFIG);
    }
    if cli.check_config {
        println!(
            "configuration OK ({}): {} provider(s) configured",
            loaded.source,
            loaded.settings.providers.len()
        );
        return ExitCode::SUCCESS;
    }
    let mut settings = loaded.settings;
    if let Some(h) = cli.host {
        settings.server.host = h;
    }
    if let Some(p) = cli.port {
        settings.server.port = p;
    }
    if cli.json_logs {
        settings.logging.format = LogFormat::Json;
    }
    init_tracing(&settings);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("modelgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings, loaded.source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("modelgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.logging.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, so log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match settings.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(settings: Settings, source: modelgate_config::ConfigSource) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{}:{}", settings.server.host, settings.server.port)
        .parse()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(&(
                settings.server.host.as_str(),
                settings.server.port,
            ))
            .map_err(anyhow::Error::from)
            .and_then(|mut it| it.next().context("host resolved to no address"))
        })
        .with_context(|| format!("invalid listen address {}", settings.server.host))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let opts = ServeOptions::from_settings(&settings.server);
    let catalog = Catalog::embedded();
    let state = Arc::new(
        build_state(settings, source.clone(), catalog.clone(), |k| {
            std::env::var(k).ok()
        })
        .context("cannot build the gateway")?,
    );
    tracing::info!(
        "modelgate {} listening on http://{} (config: {})",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr().unwrap_or(addr),
        source
    );
    let providers = state.discovery.provider_names();
    if providers.is_empty() {
        tracing::info!(
            catalog_models = catalog.model_count(),
            catalog_providers = catalog.provider_count(),
            snapshot = catalog.provenance().snapshot_date.as_deref().unwrap_or("unknown"),
            "no provider configured: serving the embedded catalog (source=catalog); \
             add providers with API keys to a config file (see config/example.yaml) to discover live models"
        );
    } else {
        tracing::info!(providers = ?providers, "discovering models from configured providers");
    }
    let refresher = state.discovery.start(state.shutdown.clone());
    let catalog_task = modelgate_http::catalog_fetch::spawn_catalog_refresh(
        state.discovery.clone(),
        state.settings.catalog.clone(),
        state.shutdown.clone(),
    );
    let watcher = match modelgate_http::watch::spawn(state.clone(), Default::default()) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "config file watching is off");
            None
        }
    };
    let sighup = spawn_sighup_reload(state.clone());
    let stopping = state.shutdown.clone();
    let router = Router::new(state.clone());
    let signal = async move {
        shutdown_signal().await;
        stopping.cancel();
    };
    serve(listener, move |peer| router.service(peer), opts, signal).await?;
    // Queued condensation jobs are abandoned (their state is in memory only); running
    // ones finish.
    state.condense.queue.shutdown().await;
    refresher.abort();
    if let Some(t) = catalog_task {
        t.abort();
    }
    // Both stop on the (already cancelled) shutdown token.
    if let Some(w) = watcher {
        w.stopped().await;
    }
    if let Some(t) = sighup {
        let _ = t.await;
    }
    tracing::info!("modelgate stopped");
    Ok(())
}

/// Reloads the configuration on each SIGHUP (as `POST /api/config/reload` does) until
/// shutdown, logging the outcome: the changes, or every problem (problems name key paths,
/// never values of secrets).
#[cfg(unix)]
fn spawn_sighup_reload(state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = state.shutdown.cancelled() => break,
                got = hup.recv() => if got.is_none() { break },
            }
            tracing::info!("received SIGHUP: reloading the configuration");
            match modelgate_http::reload_config(&state).await {
                Ok(r) => tracing::info!(
                    changes_detected = r.changes_detected,
                    providers_updated = ?r.providers_updated,
                    restart_required = ?r.restart_required,
                    reload_time_ms = r.reload_time_ms,
                    "SIGHUP reload applied"
                ),
                Err(e) => {
                    for p in &e.problems {
                        tracing::warn!(problem = %p, "SIGHUP reload rejected");
                    }
                    tracing::warn!(
                        problems = e.problems.len(),
                        "SIGHUP reload rejected; keeping the running configuration"
                    );
                }
            }
        }
    }))
}

#[cfg(not(unix))]
fn spawn_sighup_reload(_state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    None
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = term => tracing::info!("received SIGTERM"),
    }
}
