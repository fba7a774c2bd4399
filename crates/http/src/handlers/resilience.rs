//! Resilience APIs: chaos experiments (`/api/chaos/...`) over the
//! [`ChaosEngine`] whose `FaultInjector` sits under every provider's retry and breaker,
//! and built-in load tests (`/api/load-test/...`) whose requests go over loopback to this
//! gateway's own listener. Also the two router hooks: client-facing chat outcomes feed the
//! chaos engine's degradation and recovery measurement, and the load tester's own requests
//! are exempt from per-client rate limits.
//!
//! Every route here is admin-only (checked by the router).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use modelgate_config::Settings;
use modelgate_resilience::chaos::{self, ExperimentSpec};
use modelgate_resilience::load::{
    self, request_fn, LoadTestSpec, LoadTestStatus, Outcome, RequestFn, RequestSpec,
};
use modelgate_resilience::{
    ChaosEngine, ChaosError, ChaosSettings, LoadTestError, LoadTestSettings, LoadTester, Scenario,
};
use modelgate_types::{ErrorCode, Secret};
use serde_json::{json, Value};

use crate::auth::constant_time_eq;
use crate::body::{json_response, Body, BoxError};
use crate::error::ApiError;
use crate::router::{AppState, Ctx};

type HandlerResult = Result<Response<Body>, ApiError>;

/// Header carrying the load tester's per-process token; with it (from this host), a
/// request skips the per-client rate limit.
pub const LOAD_TEST_HEADER: &str = "x-modelgate-load-test";

/// The configured, enabled provider names (what a fault or a load test may name).
fn enabled_providers(settings: &Settings) -> Vec<String> {
    settings
        .providers
        .iter()
        .filter(|(_, c)| c.enabled)
        .map(|(n, _)| n.clone())
        .collect()
}

/// The chaos engine for `settings` (its `chaos` section, defaults if it does not parse;
/// `build_state` rejects such a section before this is reached).
pub(crate) fn chaos_engine(settings: &Settings, chaos: ChaosSettings) -> ChaosEngine {
    ChaosEngine::new(chaos, enabled_providers(settings))
}

/// The load tester and the secret its requests carry.
pub struct LoadTests {
    pub tester: LoadTester,
    token: String,
}

impl fmt::Debug for LoadTests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadTests")
            .field("tester", &self.tester)
            .field("token", &"***")
            .finish()
    }
}

impl LoadTests {
    pub(crate) fn new(settings: &Settings, load: LoadTestSettings) -> Self {
        LoadTests {
            tester: LoadTester::new(load, enabled_providers(settings)),
            token: random_token(),
        }
    }
}

/// 128 bits from std's randomly keyed SipHash (keys drawn from the OS at first use); not
/// guessable from outside the process. Only ever sent to this process over loopback.
fn random_token() -> String {
    let state = RandomState::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (0..2u64)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_u64(i);
            h.write_u128(nanos);
            format!("{:016x}", h.finish())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Router hooks

/// Whether a request is one of this gateway's own load-test requests: it carries the
/// token and comes from this host (loopback, or the listener's own address).
pub(crate) fn is_own_load_test(
    state: &AppState,
    peer: SocketAddr,
    parts: &http::request::Parts,
) -> bool {
    let Some(given) = parts.headers.get(LOAD_TEST_HEADER) else {
        return false;
    };
    let local = parts
        .extensions
        .get::<crate::server::ListenAddr>()
        .map(|a| a.0.ip());
    (peer.ip().is_loopback() || Some(peer.ip()) == local)
        && constant_time_eq(given.as_bytes(), state.load_tests.token.as_bytes())
}

/// Records the client-facing outcome of a proxied chat/completion response in the chaos
/// engine: 2xx is a success (a stream only once it has ended with `[DONE]`; one that ends
/// with an error event is a failure; one the client abandons is not counted), 5xx and 429
/// are failures, other 4xx are the client's own mistakes and are not counted.
pub(crate) fn observe_outcome(
    chaos: &ChaosEngine,
    route: &str,
    resp: Response<Body>,
) -> Response<Body> {
    if !matches!(route, "/v1/chat/completions" | "/v1/completions") {
        return resp;
    }
    let status = resp.status().as_u16();
    if status == 429 || status >= 500 {
        chaos.record_outcome(false);
        return resp;
    }
    if !(200..300).contains(&status) {
        return resp;
    }
    let sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !sse {
        chaos.record_outcome(true);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let watched = StreamOutcome {
        inner: body,
        chaos: chaos.clone(),
        decided: false,
    };
    Response::from_parts(parts, watched.boxed())
}

/// A streamed chat body that tells the chaos engine how the stream ended.
struct StreamOutcome {
    inner: Body,
    chaos: ChaosEngine,
    decided: bool,
}

impl StreamOutcome {
    fn decide(&mut self, success: bool) {
        if !self.decided {
            self.decided = true;
            self.chaos.record_outcome(success);
        }
    }
}

impl http_body::Body for StreamOutcome {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    // The chat handler writes one SSE event per frame.
                    if data.starts_with(b"data: [DONE]") {
                        self.decide(true);
                    } else if data.starts_with(b"data: {\"error\"") {
                        self.decide(false);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => self.decide(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies and errors

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_details(json!({ "field": field }))
}

/// The JSON body, `None` when empty.
async fn read_json(ctx: &mut Ctx) -> Result<Option<Value>, ApiError> {
    let bytes = ctx.body_bytes().await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ApiError::invalid_request(format!("invalid JSON body: {e}"))
            .with_details(json!({"field": "body", "line": e.line(), "column": e.column()}))
    })
}

fn chaos_error(e: ChaosError) -> ApiError {
    match &e {
        ChaosError::Invalid { field, .. } => invalid(field, e.to_string()),
        ChaosError::Disabled => ApiError::new(
            ErrorCode::Forbidden,
            "Chaos experiments are disabled by configuration (chaos.enabled: false)",
        )
        .with_details(json!({"setting": "chaos.enabled"})),
        ChaosError::TooManyRunning { running, max } => {
            ApiError::new(ErrorCode::Conflict, e.to_string())
                .with_details(json!({"running": running, "max_concurrent_experiments": max}))
        }
        ChaosError::NotFound(id) => ApiError::new(
            ErrorCode::NotFound,
            format!("Experiment '{id}' not found (experiments are kept in memory only)"),
        )
        .with_details(json!({"experiment_id": id})),
    }
}

fn load_error(e: LoadTestError) -> ApiError {
    match &e {
        LoadTestError::Invalid { field, .. } => invalid(field, e.to_string()),
        LoadTestError::Disabled => ApiError::new(
            ErrorCode::Forbidden,
            "Load tests are disabled by configuration (load_test.enabled: false)",
        )
        .with_details(json!({"setting": "load_test.enabled"})),
        LoadTestError::TooManyRunning { running, max } => {
            ApiError::new(ErrorCode::Conflict, e.to_string())
                .with_details(json!({"running": running, "max_concurrent_tests": max}))
        }
        LoadTestError::NotFound(id) => ApiError::new(
            ErrorCode::NotFound,
            format!("Load test '{id}' not found (tests are kept in memory only)"),
        )
        .with_details(json!({"test_id": id})),
    }
}

// ---------------------------------------------------------------------------------------
// Chaos API

/// `POST /api/chaos/start`
pub async fn chaos_start(ctx: &mut Ctx) -> HandlerResult {
    let body = read_json(ctx)
        .await?
        .ok_or_else(|| invalid("body", "a JSON body describing the experiment is required"))?;
    let spec = ExperimentSpec::from_json(&body).map_err(chaos_error)?;
    let engine = &ctx.state.chaos;
    engine.set_providers(enabled_providers(&ctx.state.current_settings()));
    let started = engine.start(&spec).map_err(chaos_error)?;
    Ok(json_response(StatusCode::OK, &started))
}

/// `POST /api/chaos/stop/{experiment_id}`
pub async fn chaos_stop(ctx: &Ctx, id: &str) -> HandlerResult {
    let report = ctx.state.chaos.stop(id).map_err(chaos_error)?;
    Ok(json_response(StatusCode::OK, &report))
}

/// `GET /api/chaos/{experiment_id}`
pub async fn chaos_get(ctx: &Ctx, id: &str) -> HandlerResult {
    let report = ctx.state.chaos.get(id).map_err(chaos_error)?;
    Ok(json_response(StatusCode::OK, &report))
}

/// `GET /api/chaos/experiments`
pub async fn chaos_list(ctx: &Ctx) -> HandlerResult {
    let engine = &ctx.state.chaos;
    let experiments = engine.list();
    let running = experiments
        .iter()
        .filter(|e| e.status == chaos::ExperimentStatus::Running)
        .count();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "experiments": experiments,
            "count": experiments.len(),
            "running": running,
            "enabled": engine.settings().enabled,
            "max_concurrent_experiments": engine.settings().max_concurrent_experiments,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Load-test API

/// `POST /api/load-test/start`
pub async fn load_start(ctx: &mut Ctx) -> HandlerResult {
    let body = read_json(ctx).await?.unwrap_or_else(|| json!({}));
    let spec = LoadTestSpec::from_json(&body).map_err(load_error)?;
    let state = ctx.state.clone();
    let tester = &state.load_tests.tester;
    if !tester.settings().enabled {
        return Err(load_error(LoadTestError::Disabled));
    }
    let listen = ctx.listen_addr().ok_or_else(|| {
        ApiError::internal("this gateway's listener address is unknown; cannot run a load test")
    })?;
    let settings = state.current_settings();
    tester.set_providers(enabled_providers(&settings));
    let sender = Sender::new(
        loopback(listen),
        &spec,
        state.load_tests.token.clone(),
        settings.server.api_keys.first().cloned(),
        Duration::from_millis(tester.settings().drain_timeout_ms),
    )?;
    let started = tester.start(&spec, sender.into_fn()).map_err(load_error)?;
    if let Some(run) = tester.get(&started.test_id) {
        // A shutdown stops the test (its requests would only fail once the listener is
        // closed); the task ends with the test in any case.
        let shutdown = state.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => run.stop(),
                _ = run.wait() => {}
            }
        });
    }
    Ok(json_response(StatusCode::OK, &started))
}

/// `GET /api/load-test/results/{test_id}` (live while running)
pub async fn load_results(ctx: &Ctx, id: &str) -> HandlerResult {
    let report = ctx
        .state
        .load_tests
        .tester
        .results(id)
        .map_err(load_error)?;
    Ok(json_response(StatusCode::OK, &report))
}

/// `POST /api/load-test/stop/{test_id}`
pub async fn load_stop(ctx: &Ctx, id: &str) -> HandlerResult {
    let report = ctx.state.load_tests.tester.stop(id).map_err(load_error)?;
    Ok(json_response(StatusCode::OK, &report))
}

/// `GET /api/load-test`
pub async fn load_list(ctx: &Ctx) -> HandlerResult {
    let tester = &ctx.state.load_tests.tester;
    let tests = tester.list();
    let running = tests
        .iter()
        .filter(|t| t.status == LoadTestStatus::Running)
        .count();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "tests": tests,
            "count": tests.len(),
            "running": running,
            "enabled": tester.settings().enabled,
            "max_concurrent_tests": tester.settings().max_concurrent_tests,
        }),
    ))
}

/// The loopback form of the listener's address: an unspecified bind address (`0.0.0.0`,
/// `[::]`) becomes the loopback address of its family; a specific one is kept.
fn loopback(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Turns each scheduled [`RequestSpec`] into a real HTTP request to this gateway.
struct Sender {
    client: reqwest::Client,
    base: String,
    token: HeaderValue,
    /// `Authorization` for `/v1` when `server.api_keys` is set (the first key).
    api_key: Option<HeaderValue>,
    /// Providers and models of the same length are paired: model `m` of provider `p` is
    /// sent as `p/m`.
    paired: bool,
}

const PROMPTS: [&str; 4] = [
    "Say hello in one word.",
    "Name a colour.",
    "What is 2 + 2?",
    "Reply with OK.",
];
const SEARCH_TERMS: [&str; 6] = ["gpt", "claude", "llama", "mini", "flash", "chat"];

impl Sender {
    fn new(
        target: SocketAddr,
        spec: &LoadTestSpec,
        token: String,
        api_key: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent("modelgate-load-test")
            .build()
            .map_err(|e| {
                ApiError::internal(format!("could not build the load-test client: {e}"))
            })?;
        let sensitive = |s: &str| {
            HeaderValue::from_str(s).map(|mut v| {
                v.set_sensitive(true);
                v
            })
        };
        let token = sensitive(&token).map_err(|_| ApiError::internal("bad load-test token"))?;
        // A key that is not a valid header value cannot be sent; /v1 requests then fail
        // with 401 and are counted as errors.
        let api_key = api_key.and_then(|k| sensitive(&format!("Bearer {}", k.expose())).ok());
        Ok(Sender {
            client,
            base: format!("http://{target}"),
            token,
            api_key,
            paired: !spec.providers.is_empty() && spec.providers.len() == spec.models.len(),
        })
    }

    fn into_fn(self) -> RequestFn {
        let sender = Arc::new(self);
        request_fn(move |spec: RequestSpec| {
            let sender = Arc::clone(&sender);
            async move { sender.send(spec).await }
        })
    }

    fn model(&self, spec: &RequestSpec) -> String {
        let model = spec.model.clone().unwrap_or_default();
        match (&spec.provider, self.paired) {
            (Some(p), true) if !model.starts_with(&format!("{p}/")) => format!("{p}/{model}"),
            _ => model,
        }
    }

    async fn send(&self, spec: RequestSpec) -> Outcome {
        let pick = |n: usize| (spec.seed % n as u64) as usize;
        let provider_query: Vec<(&str, &str)> = spec
            .provider
            .as_deref()
            .map(|p| ("provider", p))
            .into_iter()
            .collect();
        let request = match spec.scenario {
            Scenario::ChatCompletion => {
                let mut r = self
                    .client
                    .post(format!("{}/v1/chat/completions", self.base))
                    .json(&json!({
                        "model": self.model(&spec),
                        "messages": [{"role": "user", "content": PROMPTS[pick(PROMPTS.len())]}],
                        "max_tokens": 16,
                    }));
                if let Some(key) = &self.api_key {
                    r = r.header(header::AUTHORIZATION, key.clone());
                }
                r
            }
            Scenario::ModelDiscovery => self
                .client
                .get(format!("{}/api/models", self.base))
                .query(&provider_query),
            Scenario::Search => self
                .client
                .get(format!("{}/api/models/search", self.base))
                .query(&[("q", SEARCH_TERMS[pick(SEARCH_TERMS.len())])])
                .query(&provider_query),
            Scenario::Condense => self
                .client
                .post(format!("{}/api/condense", self.base))
                .json(&condense_body(spec.index)),
        };
        let result = request
            .header(LOAD_TEST_HEADER, self.token.clone())
            .send()
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(_) => {
                return Outcome {
                    ok: false,
                    status: None,
                    provider: spec.provider,
                }
            }
        };
        let status = resp.status().as_u16();
        let served_by = resp
            .headers()
            .get(crate::handlers::chat::PROVIDER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Latency covers the whole body, as a client would see it.
        let body = resp.bytes().await;
        let ok = (200..300).contains(&status) && body.is_ok();
        let provider = if spec.scenario == Scenario::ChatCompletion {
            served_by
                .or_else(|| error_provider(body.as_deref().ok()))
                .or(spec.provider)
        } else {
            spec.provider
        };
        Outcome {
            ok,
            status: Some(status),
            provider,
        }
    }
}

/// `error.details.provider` of an error body, if any.
fn error_provider(body: Option<&[u8]>) -> Option<String> {
    let v: Value = serde_json::from_slice(body?).ok()?;
    v["error"]["details"]["provider"]
        .as_str()
        .map(str::to_owned)
}

/// A conversation that needs condensing; the index makes each one distinct, so the
/// summary cache does not answer them all.
fn condense_body(index: u64) -> Value {
    let turn = |i: u64| {
        format!("Turn {i} of load-test conversation {index}: the quick brown fox jumps over the lazy dog, again and again, while the gateway measures itself.")
    };
    let messages: Vec<Value> = (0..8)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": turn(i),
            })
        })
        .collect();
    json!({"messages": messages, "max_tokens": 60, "strategy": "truncate"})
}

/// Problems of the `chaos` and `load_test` sections beyond their types, as (path, message).
pub(crate) fn settings_problems(
    chaos_settings: &ChaosSettings,
    load_settings: &LoadTestSettings,
) -> Vec<(String, String)> {
    let mut out = chaos::settings_problems(chaos_settings);
    out.extend(load::settings_problems(load_settings));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_keeps_the_port_and_never_leaves_the_host() {
        let v4: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert_eq!(loopback(v4), "127.0.0.1:8000".parse().unwrap());
        let v6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(loopback(v6), "[::1]:9000".parse().unwrap());
        let own: SocketAddr = "10.1.2.3:8000".parse().unwrap();
        assert_eq!(loopback(own), own);
    }

    #[test]
    fn tokens_differ_and_debug_hides_them() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let lt = LoadTests::new(&Settings::default(), LoadTestSettings::default());
        assert!(!format!("{lt:?}").contains(&lt.token));
    }
}
