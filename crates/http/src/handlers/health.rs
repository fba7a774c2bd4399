//! `GET /health`: liveness and a summary of each service.

use http::{Response, StatusCode};
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

pub async fn health(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let uptime = ctx.state.started_at.elapsed().as_secs();
    let body = json!({
        "status": "healthy",
        "timestamp": modelgate_types::now_rfc3339(),
        "services": {
            "http": "ok",
        },
        "metrics": {
            "uptime_seconds": uptime,
            "memory_usage_mb": resident_memory_mb(),
        }
    });
    Ok(json_response(StatusCode::OK, &body))
}
