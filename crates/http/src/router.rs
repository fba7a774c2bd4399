//! The router: splits the path once and matches on `(method, segments)`; 405 with `Allow`
//! for a known path and a wrong method, 404 otherwise. Also applies the cross-cutting
//! concerns every request gets: request id, body limit, panic guard and access log.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use modelgate_config::{ConfigSource, Settings};
use modelgate_discovery::Discovery;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::auth::require_admin;
use crate::body::Body;
use crate::error::ApiError;
use crate::handlers::{self, condense::CondenseService, models, v2::V2Cache, ws::WsHub};
use crate::request_id;

/// Shared state of the running gateway.
#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub config_source: ConfigSource,
    pub started_at: Instant,
    pub discovery: Discovery,
    /// Cancelled when shutdown begins (WebSocket clients get a Close frame).
    pub shutdown: CancellationToken,
    pub ws: Arc<WsHub>,
    pub v2_cache: Arc<V2Cache>,
    /// Condensation: the condenser and its bounded job queue.
    pub condense: CondenseService,
    /// Usage of proxied chat/completion calls per provider and model.
    pub usage: Arc<crate::usage::UsageRegistry>,
    /// Metrics of this gateway (`/metrics`, `/metrics/prometheus`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Per-client rate limits, applied in `handle()` before dispatch.
    pub ratelimit: Arc<crate::ratelimit::RateLimiter>,
    /// The live configuration (hot-reloaded; `settings` above is the one loaded at start).
    pub config: crate::handlers::ops::ConfigState,
    /// Chaos experiments; its `FaultInjector` sits under every provider's retry/breaker.
    pub chaos: modelgate_resilience::ChaosEngine,
    /// Built-in load tests against this gateway's own listener.
    pub load_tests: crate::handlers::resilience::LoadTests,
}

impl AppState {
    /// Must be called inside a tokio runtime (the condensation workers are spawned here).
    /// Extension sections that fail to parse fall back to their defaults here; use
    /// [`crate::build_state`], which rejects them, to build from user configuration.
    pub fn new(settings: Settings, config_source: ConfigSource, discovery: Discovery) -> Self {
        let condense = CondenseService::new(
            settings.extension("condense").unwrap_or_default(),
            &discovery,
        );
        AppState {
            condense,
            usage: Arc::new(crate::usage::UsageRegistry::default()),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            ratelimit: Arc::new(crate::ratelimit::RateLimiter::new(&settings.rate_limit)),
            config: crate::handlers::ops::ConfigState::new(&settings),
            chaos: crate::handlers::resilience::chaos_engine(
                &settings,
                settings.extension("chaos").unwrap_or_default(),
            ),
            load_tests: crate::handlers::resilience::LoadTests::new(
                &settings,
                settings.extension("load_test").unwrap_or_default(),
            ),
            settings,
            config_source,
            started_at: Instant::now(),
            discovery,
            shutdown: CancellationToken::new(),
            ws: Arc::new(WsHub::new(1000)),
            v2_cache: Arc::new(V2Cache::new(64 * 1024 * 1024)),
        }
    }
}

/// The application's request router; `service(peer)` makes the per-connection service.
#[derive(Debug, Clone)]
pub struct Router {
    state: Arc<AppState>,
}

impl Router {
    pub fn new(state: Arc<AppState>) -> Self {
        Router { state }
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The hyper service for one connection from `peer`.
    pub fn service(&self, peer: SocketAddr) -> RouterService {
        RouterService {
            _conn: Arc::new(self.state.metrics.connection_opened()),
            state: self.state.clone(),
            peer,
        }
    }
}

/// Per-connection service (knows the peer address, for rate limits and admin checks).
#[derive(Debug, Clone)]
pub struct RouterService {
    state: Arc<AppState>,
    peer: SocketAddr,
    /// Counts the connection in `active_connections` while any clone is alive.
    _conn: Arc<crate::metrics::ConnectionGuard>,
}

impl hyper::service::Service<Request<Incoming>> for RouterService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        let peer = self.peer;
        Box::pin(async move { Ok(handle(state, peer, req).await) })
    }
}

/// One incoming request, as handlers see it.
#[derive(Debug)]
pub struct Ctx {
    pub state: Arc<AppState>,
    pub peer: SocketAddr,
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    body: Option<Incoming>,
    extensions: http::Extensions,
}

impl Ctx {
    /// Query pairs as `(&str, &str)`, for `ModelQuery::from_pairs`.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The address of the listener this request arrived on (set by [`crate::serve`]).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.extensions
            .get::<crate::server::ListenAddr>()
            .map(|a| a.0)
    }

    /// The pending protocol upgrade of this request (WebSocket), once.
    pub fn take_upgrade(&mut self) -> Option<hyper::upgrade::OnUpgrade> {
        self.extensions.remove::<hyper::upgrade::OnUpgrade>()
    }

    /// Reads the whole body through the configured size limit.
    pub async fn body_bytes(&mut self) -> Result<Bytes, ApiError> {
        let limit = self.state.settings.server.max_body_bytes;
        let Some(body) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let usize_limit = usize::try_from(limit).unwrap_or(usize::MAX);
        match Limited::new(body, usize_limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                Err(ApiError::payload_too_large(limit))
            }
            Err(e) => Err(ApiError::invalid_request(format!(
                "could not read request body: {e}"
            ))),
        }
    }

    /// Reads and parses a JSON body; an empty body is `None`.
    pub async fn json_body<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ApiError> {
        let bytes = self.body_bytes().await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ApiError::invalid_request(format!("invalid JSON body: {e}"))
                .with_details(serde_json::json!({"line": e.line(), "column": e.column()}))
        })
    }
}

async fn handle(state: Arc<AppState>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let request_id = request_id::accept_or_generate(req.headers().get("x-request-id"));
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let method = parts.method.clone();
    let max_body = state.settings.server.max_body_bytes;

    let mut route = "unmatched";
    let metrics = state.metrics.clone();
    let chaos = state.chaos.clone();
    // The gateway's own load-test requests are exempt (see docs/RESILIENCE.md).
    let limit = if crate::handlers::resilience::is_own_load_test(&state, peer, &parts) {
        None
    } else {
        crate::ratelimit::admit(&state, peer, &parts.headers, &path)
    };
    let mut resp = if let Some(refused) = limit.as_ref().filter(|d| !d.allowed) {
        route = "(rate limited)";
        metrics.record_rate_limited(&refused.bucket);
        refused.error().into_response()
    } else if let Err(e) = crate::auth::require_api_key(&state, &parts.headers, &path) {
        route = "(unauthorized)";
        e.into_response()
    } else if declared_length(&parts.headers).is_some_and(|n| n > max_body) {
        // Refuse before reading a byte of the body; the connection is closed after.
        let mut r = ApiError::payload_too_large(max_body).into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else {
        let query = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let ctx = Ctx {
            state,
            peer,
            method: parts.method,
            path: path.clone(),
            query,
            headers: parts.headers,
            body: Some(body),
            extensions: parts.extensions,
        };
        let fut = dispatch(ctx, &mut route);
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => e.into_response(),
            Err(_) => {
                tracing::error!(%path, "handler panicked");
                ApiError::internal("internal error").into_response()
            }
        }
    };
    resp = crate::handlers::resilience::observe_outcome(&chaos, route, resp);
    resp.headers_mut()
        .insert("x-request-id", request_id.clone());
    if let Some(d) = &limit {
        d.apply(resp.headers_mut());
    }
    metrics.record_http(route, &method, resp.status().as_u16(), start.elapsed());
    tracing::info!(
        target: "modelgate::access",
        method = %method,
        path = %path,
        route,
        status = resp.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        request_id = request_id.to_str().unwrap_or("-"),
        peer = %peer,
    );
    resp
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Decodes `%XX` escapes in a path segment (ids may contain `/` or `:` encoded).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type HandlerResult = Result<Response<Body>, ApiError>;

/// The route table. `route` receives the matched template (for logs and metrics: never
/// the raw path, which may hold client-chosen ids).
async fn dispatch(mut ctx: Ctx, route: &mut &'static str) -> HandlerResult {
    let segments: Vec<String> = ctx
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = ctx.method.clone();
    let get = m == Method::GET || m == Method::HEAD;
    const GET: &str = "GET, HEAD";
    match segs.as_slice() {
        ["health"] => {
            *route = "/health";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::health::health(&ctx).await
        }
        ["health", "providers"] => {
            *route = "/health/providers";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::health::providers(&ctx).await
        }
        ["health", "system"] => {
            *route = "/health/system";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::health::system(&ctx).await
        }
        ["health", "live"] => {
            *route = "/health/live";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::health::live(&ctx).await
        }
        ["health", "ready"] => {
            *route = "/health/ready";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::health::ready(&ctx).await
        }
        ["metrics"] => {
            *route = "/metrics";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::ops::metrics_json(&ctx).await
        }
        ["metrics", "prometheus"] => {
            *route = "/metrics/prometheus";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::ops::metrics_prometheus(&ctx).await
        }
        ["api", "config", "status"] => {
            *route = "/api/config/status";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::ops::config_status(&ctx).await
        }
        ["api", "config", "reload"] => {
            *route = "/api/config/reload";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            require_admin(&ctx)?;
            handlers::ops::reload_handler(&ctx).await
        }
        ["api", "models"] => {
            *route = "/api/models";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            models::list(&ctx).await
        }
        ["api", "models", "search"] => {
            *route = "/api/models/search";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            models::search(&ctx).await
        }
        ["api", "models", "refresh"] if m == Method::POST => {
            *route = "/api/models/refresh";
            require_admin(&ctx)?;
            models::refresh(&mut ctx).await
        }
        ["api", "models", rest @ ..] if !rest.is_empty() => {
            *route = "/api/models/{model_id}";
            if !get {
                let allow = if rest == ["refresh"] {
                    "GET, HEAD, POST"
                } else {
                    GET
                };
                return Err(ApiError::method_not_allowed(&m, allow));
            }
            let id = rest.join("/");
            models::get(&ctx, &id).await
        }
        ["api", "providers", "status"] => {
            *route = "/api/providers/status";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            models::providers_status(&ctx).await
        }
        ["api", "providers", name, "models"] => {
            *route = "/api/providers/{name}/models";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            let name = (*name).to_owned();
            models::provider_models(&ctx, &name).await
        }
        ["api", "cache", "stats"] => {
            *route = "/api/cache/stats";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            models::cache_stats(&ctx).await
        }
        ["api", "cache"] => {
            *route = "/api/cache";
            if m != Method::DELETE {
                return Err(ApiError::method_not_allowed(&m, "DELETE"));
            }
            require_admin(&ctx)?;
            models::cache_clear(&ctx).await
        }
        ["api", "condense"] => {
            *route = "/api/condense";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            handlers::condense::condense(&mut ctx).await
        }
        ["api", "condense", "async"] => {
            *route = "/api/condense/async";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            handlers::condense::submit(&mut ctx).await
        }
        ["api", "condense", "status", id] => {
            *route = "/api/condense/status/{request_id}";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            let id = (*id).to_owned();
            handlers::condense::status(&ctx, &id).await
        }
        ["api", "chaos", "start"] => {
            *route = "/api/chaos/start";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            require_admin(&ctx)?;
            handlers::resilience::chaos_start(&mut ctx).await
        }
        ["api", "chaos", "stop", id] => {
            *route = "/api/chaos/stop/{experiment_id}";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            require_admin(&ctx)?;
            let id = (*id).to_owned();
            handlers::resilience::chaos_stop(&ctx, &id).await
        }
        ["api", "chaos", "experiments"] => {
            *route = "/api/chaos/experiments";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            require_admin(&ctx)?;
            handlers::resilience::chaos_list(&ctx).await
        }
        ["api", "chaos", id] => {
            *route = "/api/chaos/{experiment_id}";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            require_admin(&ctx)?;
            let id = (*id).to_owned();
            handlers::resilience::chaos_get(&ctx, &id).await
        }
        ["api", "load-test"] => {
            *route = "/api/load-test";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            require_admin(&ctx)?;
            handlers::resilience::load_list(&ctx).await
        }
        ["api", "load-test", "start"] => {
            *route = "/api/load-test/start";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            require_admin(&ctx)?;
            handlers::resilience::load_start(&mut ctx).await
        }
        ["api", "load-test", "results", id] => {
            *route = "/api/load-test/results/{test_id}";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            require_admin(&ctx)?;
            let id = (*id).to_owned();
            handlers::resilience::load_results(&ctx, &id).await
        }
        ["api", "load-test", "stop", id] => {
            *route = "/api/load-test/stop/{test_id}";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            require_admin(&ctx)?;
            let id = (*id).to_owned();
            handlers::resilience::load_stop(&ctx, &id).await
        }
        ["v1", "models"] => {
            *route = "/v1/models";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            models::v1_list(&ctx).await
        }
        ["v1", "models", rest @ ..] if !rest.is_empty() => {
            *route = "/v1/models/{model_id}";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            let id = rest.join("/");
            models::v1_get(&ctx, &id).await
        }
        ["v1", "chat", "completions"] => {
            *route = "/v1/chat/completions";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            handlers::chat::chat_completions(&mut ctx).await
        }
        ["v1", "completions"] => {
            *route = "/v1/completions";
            if m != Method::POST {
                return Err(ApiError::method_not_allowed(&m, "POST"));
            }
            handlers::chat::completions(&mut ctx).await
        }
        ["v2", "models"] => {
            *route = "/v2/models";
            if !get {
                return Err(ApiError::method_not_allowed(&m, GET));
            }
            handlers::v2::list(&ctx).await
        }
        ["ws", "models"] => {
            *route = "/ws/models";
            if m != Method::GET {
                return Err(ApiError::method_not_allowed(&m, "GET"));
            }
            handlers::ws::upgrade(&mut ctx).await
        }
        _ => Err(ApiError::not_found(&ctx.path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("gpt-4o"), "gpt-4o");
        assert_eq!(percent_decode("meta%2Fllama%3A3b"), "meta/llama:3b");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%2"), "end%2");
    }
}
