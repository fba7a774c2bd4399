//! Health endpoints: `GET /health` (summary, `?detailed=true` for everything),
//! `GET /health/providers`, `GET /health/system`, and the orchestrator probes
//! `GET /health/live` and `GET /health/ready`.
//!
//! The rule, from discovery's provider states (disabled providers do not count):
//! `healthy` when no enabled provider is failing (a gateway with no provider, serving the
//! embedded catalog, is healthy); `degraded` when some fail but providers' models are
//! still served (another provider's live list, or a failing provider's last good list,
//! marked stale); `unhealthy` when every enabled provider fails and none has any model to
//! serve (only the catalog is left), which answers 503 so load balancers react.
//! Readiness is "not shutting down and not unhealthy"; liveness is "the process answers".

use http::{Response, StatusCode};
use modelgate_discovery::{ProviderStatus, Snapshot};
use serde_json::json;

use crate::body::{json_response, Body};
use crate::error::ApiError;
use crate::router::Ctx;

/// Resident memory of this process in MiB, from `/proc/self/status` (Linux); `None`
/// where that file does not exist.
pub fn resident_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

fn word(status: ProviderStatus) -> &'static str {
    match status {
        ProviderStatus::Active => "ok",
        ProviderStatus::Error => "error",
        ProviderStatus::Disabled => "disabled",
        ProviderStatus::Pending => "pending",
    }
}

/// `healthy`, `degraded` or `unhealthy` by the rule in the module docs.
pub fn overall(snap: &Snapshot) -> &'static str {
    let enabled = snap
        .providers
        .iter()
        .filter(|p| p.status != ProviderStatus::Disabled)
        .count();
    let failing = snap
        .providers
        .iter()
        .filter(|p| p.status == ProviderStatus::Error)
        .count();
    if failing == 0 {
        "healthy"
    } else if failing < enabled || !snap.discovered.is_empty() {
        "degraded"
    } else {
        "unhealthy"
    }
}

fn code_for(status: &str) -> StatusCode {
    if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

fn provider_details(snap: &Snapshot) -> serde_json::Map<String, serde_json::Value> {
    snap.providers
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                json!({
                    "status": word(p.status),
                    "kind": p.kind,
                    "models": p.models.len(),
                    "last_check": p.last_check,
                    "last_success": p.last_success,
                    "response_time_ms": p.response_time_ms,
                    // Already redacted by discovery.
                    "error": p.error,
                }),
            )
        })
        .collect()
}

/// `GET /health` (and `?detailed=true`).
pub async fn health(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let uptime = ctx.state.started_at.elapsed().as_secs();
    let snap = ctx.state.discovery.snapshot();
    let providers: serde_json::Map<String, serde_json::Value> = snap
        .providers
        .iter()
        .map(|p| (p.name.clone(), json!(word(p.status))))
        .collect();
    let servable = !snap.all.is_empty();
    let status = overall(&snap);
    let cache = ctx.state.discovery.cache_stats();
    let settings = ctx.state.current_settings();
    let cache_word = if settings.cache.enabled {
        "ok"
    } else {
        "disabled"
    };
    let mut body = json!({
        "status": status,
        "timestamp": modelgate_types::now_rfc3339(),
        "services": {
            "http": "ok",
            "discovery": if servable { "ok" } else { "empty" },
            "cache": cache_word,
            "providers": providers,
        },
        "metrics": {
            "uptime_seconds": uptime,
            "memory_usage_mb": resident_memory_mb(),
            "cache_hit_rate": cache.hit_rate,
            "models_served": snap.all.len(),
        }
    });
    let detailed = ctx
        .query_value("detailed")
        .is_some_and(|v| matches!(v, "true" | "1" | "yes"));
    if detailed {
        body["providers"] = serde_json::Value::Object(provider_details(&snap));
        body["system"] = json!(ctx.state.metrics.system());
        body["rate_limit"] = json!({
            "enabled": ctx.state.ratelimit.enabled(),
            "tracked_clients": ctx.state.ratelimit.tracked(),
        });
        body["connections"] = json!({
            "active": ctx.state.metrics.active_connections(),
            "max": ctx.state.settings.server.max_connections,
        });
        body["condense_queue"] = json!(ctx.state.condense.queue.stats());
        body["snapshot"] = json!({ "version": snap.version, "updated_at": snap.updated_at });
        body["rule"] = json!(
            "healthy: no enabled provider failing; degraded: some failing but providers' \
             models (live or last good) are served; unhealthy (503): every enabled provider \
             failing and none has a model to serve"
        );
    }
    Ok(json_response(code_for(status), &body))
}

/// `GET /health/providers`: each provider's state; 503 when the gateway is unhealthy.
pub async fn providers(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let snap = ctx.state.discovery.snapshot();
    let status = overall(&snap);
    let body = json!({
        "status": status,
        "timestamp": modelgate_types::now_rfc3339(),
        "providers": provider_details(&snap),
    });
    Ok(json_response(code_for(status), &body))
}

/// `GET /health/system`: operating-system figures (sysinfo).
pub async fn system(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let body = json!({
        "status": "ok",
        "timestamp": modelgate_types::now_rfc3339(),
        "system": ctx.state.metrics.system(),
        "uptime_seconds": ctx.state.started_at.elapsed().as_secs(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /health/live`: the process answers.
pub async fn live(_ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    Ok(json_response(StatusCode::OK, &json!({ "status": "alive" })))
}

/// `GET /health/ready`: 200 when traffic should be sent here, else 503 with the reason.
pub async fn ready(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let snap = ctx.state.discovery.snapshot();
    let (ready, reason) = if ctx.state.shutdown.is_cancelled() {
        (false, Some("shutting down"))
    } else if overall(&snap) == "unhealthy" {
        (
            false,
            Some("every enabled provider is failing and none has a model to serve"),
        )
    } else {
        (true, None)
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "reason": reason,
    });
    Ok(json_response(code, &body))
}
