//! Operations endpoints: `GET /metrics` (JSON), `GET /metrics/prometheus`,
//! `GET /api/config/status` and `POST /api/config/reload`, plus [`ConfigState`], the live
//! configuration that a reload swaps atomically.
//!
//! A reload re-reads the file the gateway started from, validates it completely (the
//! loader's checks and every extension section), diffs it against the running settings,
//! and only then swaps: the live settings (`ArcSwap`), the rate limits, and the providers
//! whose entry changed (unchanged providers keep their running adapter). An invalid file
//! changes nothing and is reported with every problem. Keys that only take effect at start
//! (listener, limits of the server, discovery, cache, catalog, condense) are listed in
//! `restart_required`. A gateway started without a file has nothing to re-read: its
//! reload succeeds and changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::{Response, StatusCode};
use modelgate_config::{ConfigSource, Problem, Settings};
use modelgate_providers::Registry;
use serde::Serialize;
use serde_json::json;

use crate::body::{json_response, Body};
use crate::error::ApiError;
use crate::metrics::{ModelFigures, ProviderFigures, ScrapeFigures};
use crate::router::{AppState, Ctx};
use crate::Extensions;
use modelgate_discovery::ProviderStatus;
use modelgate_types::ErrorCode;

/// What the last load or reload attempt found.
#[derive(Debug, Clone, Serialize)]
struct LoadStatus {
    last_loaded: String,
    load_time_ms: u64,
    file_size_bytes: Option<u64>,
    validation_errors: Vec<Problem>,
    last_reload_at: Option<String>,
}

/// The live configuration and the record of its loads.
#[derive(Debug)]
pub struct ConfigState {
    current: ArcSwap<Settings>,
    status: Mutex<LoadStatus>,
    /// One reload at a time.
    reload: tokio::sync::Mutex<()>,
}

impl ConfigState {
    pub fn new(settings: &Settings) -> ConfigState {
        ConfigState {
            current: ArcSwap::from_pointee(settings.clone()),
            status: Mutex::new(LoadStatus {
                last_loaded: modelgate_types::now_rfc3339(),
                load_time_ms: 0,
                file_size_bytes: None,
                validation_errors: Vec::new(),
                last_reload_at: None,
            }),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, LoadStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AppState {
    /// The live settings (the last successfully loaded configuration).
    pub fn current_settings(&self) -> Arc<Settings> {
        self.config.current.load_full()
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub changes_detected: bool,
    /// Providers added, removed or changed (their adapters were rebuilt).
    pub providers_updated: Vec<String>,
    /// Changed top-level keys that only take effect after a restart.
    pub restart_required: Vec<String>,
    pub reload_time_ms: u64,
}

/// Why a reload was refused; the running configuration is unchanged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("configuration rejected: {} problem(s)", problems.len())]
pub struct ReloadError {
    pub problems: Vec<Problem>,
}

/// Re-reads, validates, diffs and swaps the configuration. `env` resolves `api_key_env`.
pub async fn reload(
    state: &AppState,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<ReloadReport, ReloadError> {
    let _one = state.config.reload.lock().await;
    let start = Instant::now();
    let path = match &state.config_source {
        ConfigSource::File(p) => p.clone(),
        // Started without a file: built-in defaults and the environment, which cannot
        // change under a running process, so there is nothing to re-read (re-deriving
        // them would also drop whatever a caller built the settings from).
        ConfigSource::Defaults => {
            state.config.status().last_reload_at = Some(modelgate_types::now_rfc3339());
            state.metrics.record_reload(true);
            tracing::info!("started without a config file: nothing to reload");
            return Ok(ReloadReport {
                changes_detected: false,
                providers_updated: Vec::new(),
                restart_required: Vec::new(),
                reload_time_ms: 0,
            });
        }
    };
    let result = load_checked(Some(&path), env);
    let (loaded, ext, registry) = match result {
        Ok(v) => v,
        Err(problems) => {
            let mut st = state.config.status();
            st.validation_errors = problems.clone();
            st.last_reload_at = Some(modelgate_types::now_rfc3339());
            drop(st);
            state.metrics.record_reload(false);
            tracing::warn!(
                problems = problems.len(),
                "configuration reload rejected; keeping the running configuration"
            );
            return Err(ReloadError { problems });
        }
    };
    let mut new = loaded.settings;
    let old = state.current_settings();
    // The listener keeps the address it was started with (CLI overrides included).
    new.server.host.clone_from(&old.server.host);
    new.server.port = old.server.port;

    let resilience_changed = old.extensions.get("resilience") != new.extensions.get("resilience");
    let mut providers_updated: Vec<String> = old
        .providers
        .keys()
        .chain(new.providers.keys())
        .filter(|n| resilience_changed || old.providers.get(*n) != new.providers.get(*n))
        .cloned()
        .collect();
    providers_updated.sort();
    providers_updated.dedup();

    let mut restart_required = Vec::new();
    let mut check = |name: &str, changed: bool| {
        if changed {
            restart_required.push(name.to_owned());
        }
    };
    let (o, n) = (&old.server, &new.server);
    check(
        "server.max_body_bytes",
        o.max_body_bytes != n.max_body_bytes,
    );
    check(
        "server.header_read_timeout_ms",
        o.header_read_timeout_ms != n.header_read_timeout_ms,
    );
    check(
        "server.max_connections",
        o.max_connections != n.max_connections,
    );
    check(
        "server.shutdown_grace_ms",
        o.shutdown_grace_ms != n.shutdown_grace_ms,
    );
    check("server.watch_config", o.watch_config != n.watch_config);
    check("logging", old.logging != new.logging);
    check("cache", old.cache != new.cache);
    check("discovery", old.discovery != new.discovery);
    check("catalog", old.catalog != new.catalog);
    for section in modelgate_config::EXTENSION_SECTIONS {
        if *section != "resilience" {
            check(
                section,
                old.extensions.get(*section) != new.extensions.get(*section),
            );
        }
    }
    let changes_detected = *old != new;

    if !providers_updated.is_empty() {
        let discovery = &state.discovery;
        let keep = |name: &str| {
            if providers_updated.iter().any(|n| n == name) {
                None
            } else {
                discovery.provider(name)
            }
        };
        let handles = crate::app::provider_handles(&new, &ext, &registry, &state.layers(), &keep);
        discovery.replace_providers(handles, registry.disabled().to_vec());
    }
    state.ratelimit.reconfigure(&new.rate_limit);
    state.config.current.store(Arc::new(new));
    let elapsed = start.elapsed().as_millis() as u64;
    {
        let mut st = state.config.status();
        st.validation_errors.clear();
        st.last_loaded = modelgate_types::now_rfc3339();
        st.load_time_ms = elapsed;
        st.file_size_bytes = loaded.file_size_bytes;
        st.last_reload_at = Some(st.last_loaded.clone());
    }
    state.metrics.record_reload(true);
    tracing::info!(
        changes_detected,
        providers_updated = ?providers_updated,
        restart_required = ?restart_required,
        "configuration reloaded"
    );
    Ok(ReloadReport {
        changes_detected,
        providers_updated,
        restart_required,
        reload_time_ms: elapsed,
    })
}

type Checked = (modelgate_config::Loaded, Extensions, Registry);

/// Loads and validates everything a reload needs, collecting every problem.
fn load_checked(
    path: Option<&std::path::Path>,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Checked, Vec<Problem>> {
    let loaded = modelgate_config::load(path).map_err(|e| e.problems())?;
    let ext = Extensions::from_settings(&loaded.settings).map_err(|p| p.0)?;
    let registry = Registry::from_config(&loaded.settings.providers, env)
        .map_err(|e| vec![Problem::new("providers", e.to_string())])?;
    Ok((loaded, ext, registry))
}

/// [`reload`] with `api_key_env` resolved from the process environment: what
/// `POST /api/config/reload`, the file watcher (`crate::watch`) and SIGHUP all run.
pub async fn reload_config(state: &AppState) -> Result<ReloadReport, ReloadError> {
    let env = |k: &str| std::env::var(k).ok();
    reload(state, &env).await
}

/// `POST /api/config/reload` (admin).
pub async fn reload_handler(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    match reload_config(&ctx.state).await {
        Ok(r) => Ok(json_response(
            StatusCode::OK,
            &json!({
                "status": "success",
                "message": if r.changes_detected {
                    "Configuration reloaded successfully"
                } else {
                    "Configuration unchanged"
                },
                "changes_detected": r.changes_detected,
                "providers_updated": r.providers_updated,
                "restart_required": r.restart_required,
                "reload_time_ms": r.reload_time_ms,
            }),
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "Configuration rejected; the running configuration is unchanged",
        )
        .with_details(json!({ "validation_errors": e.problems }))),
    }
}

/// `GET /api/config/status`.
pub async fn config_status(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let settings = ctx.state.current_settings();
    let st = ctx.state.config.status().clone();
    let cache = ctx.state.discovery.cache_stats();
    let body = json!({
        "status": if st.validation_errors.is_empty() { "valid" } else { "invalid" },
        "source": ctx.state.config_source.to_string(),
        "last_loaded": st.last_loaded,
        "load_time_ms": st.load_time_ms,
        "file_size_bytes": st.file_size_bytes.or_else(|| file_size(&ctx.state.config_source)),
        "providers_configured": settings.providers.len(),
        "providers_enabled": settings.providers.values().filter(|p| p.enabled).count(),
        "validation_errors": st.validation_errors,
        "last_reload_at": st.last_reload_at,
        "rate_limit": {
            "enabled": settings.rate_limit.enabled,
            "requests_per_minute": settings.rate_limit.requests_per_minute,
            "burst": settings.rate_limit.burst,
            "route_overrides": settings.rate_limit.routes.len(),
        },
        "cache_status": {
            "enabled": settings.cache.enabled,
            "hit_rate": (cache.hit_rate / 100.0 * 1000.0).round() / 1000.0,
            "entries": cache.total_entries,
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn file_size(source: &ConfigSource) -> Option<u64> {
    match source {
        ConfigSource::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        ConfigSource::Defaults => None,
    }
}

/// `GET /metrics`: the spec's JSON.
pub async fn metrics_json(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let state = &ctx.state;
    let snap = state.discovery.snapshot();
    let mut providers: BTreeMap<String, ProviderFigures> = state.metrics.provider_figures();
    // Chat/completion usage per model (tokens, whole-stream latency) comes from the usage
    // registry where it has entries; the metered adapter figures are the fallback.
    let mut usage: BTreeMap<String, BTreeMap<String, ModelFigures>> = BTreeMap::new();
    for e in state.usage.snapshot() {
        usage.entry(e.provider.clone()).or_default().insert(
            e.model.clone(),
            ModelFigures {
                total_requests: e.requests,
                successful_requests: e.successes,
                avg_response_time: (e.requests > 0).then_some(e.latency_ms_avg),
                total_tokens: e.total_tokens,
            },
        );
    }
    for p in &snap.providers {
        providers
            .entry(p.name.clone())
            .or_insert_with(|| ProviderFigures {
                total_requests: 0,
                successful_requests: 0,
                failed_requests: 0,
                success_rate: None,
                avg_response_time: None,
                total_tokens: 0,
                models: BTreeMap::new(),
            });
    }
    for (name, figures) in &mut providers {
        if let Some(models) = usage.remove(name) {
            figures.total_tokens = models.values().map(|m| m.total_tokens).sum();
            figures.models = models;
        }
    }
    let cache = state.discovery.cache_stats();
    let cache_total = cache.hits + cache.misses;
    let queue = state.condense.queue.stats();
    let body = json!({
        "providers": providers,
        // The spec's figures (total_summaries, cache_hits, cache_misses, avg_latency) at
        // the top, the async job queue beside them.
        "summarization": summarization(&state.condense.condenser.stats(), &queue),
        "cache_performance": {
            "hit_rate": (cache_total > 0).then(|| (cache.hits as f64 / cache_total as f64 * 1000.0).round() / 1000.0),
            "total_requests": cache_total,
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "entries": cache.total_entries,
            "memory_usage_mb": cache.memory_usage_mb,
        },
        "connection_pool": {
            "active_connections": state.metrics.active_connections(),
            "max_connections": state.settings.server.max_connections,
            "pending_requests": queue.queued,
            "error_count": state.metrics.server_errors(),
        },
        "rate_limit": {
            "enabled": state.ratelimit.enabled(),
            "tracked_clients": state.ratelimit.tracked(),
        },
        "system_health": state.metrics.system(),
        "uptime": (state.started_at.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn summarization(stats: &impl Serialize, queue: &impl Serialize) -> serde_json::Value {
    let mut v = json!(stats);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("queue".to_owned(), json!(queue));
    }
    v
}

/// `GET /metrics/prometheus`: text exposition format 0.0.4.
pub async fn metrics_prometheus(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let state = &ctx.state;
    let snap = state.discovery.snapshot();
    let cache = state.discovery.cache_stats();
    let scrape = ScrapeFigures {
        providers: snap
            .providers
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.status == ProviderStatus::Active,
                    p.models.len(),
                )
            })
            .collect(),
        cache: cache
            .providers
            .iter()
            .map(|(name, c)| (name.clone(), c.hits, c.misses))
            .collect(),
        uptime_seconds: state.started_at.elapsed().as_secs_f64(),
    };
    let text = state.metrics.render_prometheus(&scrape);
    let mut resp = Response::new(crate::body::full(text));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
