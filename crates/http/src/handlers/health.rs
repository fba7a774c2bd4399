//! `GET /health`: liveness and a summary of each service.

use http::{Response, StatusCode};
use modelgate_discovery::ProviderStatus;
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

/// Overall status: `healthy` when no enabled provider is failing, `degraded` when some
/// fail but models are still served (live or stale), `unhealthy` when every enabled
/// provider fails and nothing at all can be served.
pub async fn health(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let uptime = ctx.state.started_at.elapsed().as_secs();
    let snap = ctx.state.discovery.snapshot();
    let mut providers = serde_json::Map::new();
    let (mut enabled, mut failing) = (0usize, 0usize);
    for p in &snap.providers {
        let word = match p.status {
            ProviderStatus::Active => "ok",
            ProviderStatus::Error => "error",
            ProviderStatus::Disabled => "disabled",
            ProviderStatus::Pending => "pending",
        };
        if p.status != ProviderStatus::Disabled {
            enabled += 1;
        }
        if p.status == ProviderStatus::Error {
            failing += 1;
        }
        providers.insert(p.name.clone(), json!(word));
    }
    let servable = !snap.all.is_empty();
    let status = if failing == 0 {
        "healthy"
    } else if failing < enabled || servable {
        "degraded"
    } else {
        "unhealthy"
    };
    let cache = ctx.state.discovery.cache_stats();
    let cache_word = if ctx.state.settings.cache.enabled { "ok" } else { "disabled" };
    let body = json!({
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
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &body))
}
