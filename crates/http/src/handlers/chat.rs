//! OpenAI-compatible proxy: `POST /v1/chat/completions` (JSON or SSE with `stream: true`)
//! and `POST /v1/completions` (pass-through to OpenAI-compatible providers).
//!
//! The request is validated (clear 400s naming the field), the model resolved by
//! [`crate::routing`] into ordered targets, and each target's provider called through its
//! resilience stack (timeout, retry, circuit breaker) until one succeeds; a provider-side
//! failure falls back to the next target of an alias. Streams are forwarded chunk by chunk;
//! the HTTP status is decided once the first chunk has arrived, so a stream that fails
//! before any data still gets a proper error status (and a fallback). An upstream error
//! after that becomes one `data: {"error": ...}` event and the stream ends without
//! `[DONE]`. Dropping the response body (client gone) drops the upstream stream, which
//! closes the upstream connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use modelgate_discovery::ModelSet;
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_resilience::CIRCUIT_OPEN_MESSAGE;
use modelgate_types::chat::{ChatChunk, ChatRequest, Usage};
use modelgate_types::ErrorCode;
use serde_json::{json, Map, Value};

use crate::autofit::{self, Plan};
use crate::body::{json_response, Body, BoxError};
use crate::error::ApiError;
use crate::router::{AppState, Ctx};
use crate::routing::{self, Route, Target};
use crate::usage::{Outcome, UsageRegistry};

/// Response header naming the provider that answered.
pub const PROVIDER_HEADER: &str = "x-modelgate-provider";
/// Response header naming the upstream model id that answered.
pub const MODEL_HEADER: &str = "x-modelgate-model";

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// `POST /v1/chat/completions`
pub async fn chat_completions(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let map = read_object(ctx).await?;
    let request = parse_chat(map)?;
    let state = ctx.state.clone();
    let route = routing::resolve(&state, &request.model).await?;
    tracing::debug!(model = %request.model, targets = route.targets.len(), stream = request.is_stream(), "chat route");
    let plan = autofit::plan(&state, &route, &request).await?;
    if request.is_stream() {
        stream_chat(&state, &route, &plan, request).await
    } else {
        complete_chat(&state, &route, &plan, request).await
    }
}

/// `POST /v1/completions` (legacy text completions; OpenAI-compatible providers only).
pub async fn completions(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let map = read_object(ctx).await?;
    let model = required_model(&map)?;
    for (field, expect) in [
        ("stream", Expect::Bool),
        ("max_tokens", Expect::UInt),
        ("temperature", Expect::Number),
        ("top_p", Expect::Number),
        ("n", Expect::UInt),
        ("stop", Expect::StrOrArray),
        ("prompt", Expect::StrOrArray),
    ] {
        check(&map, field, expect)?;
    }
    if map.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(field_error(
            "stream",
            "streaming is not supported on /v1/completions; use /v1/chat/completions with stream: true",
        ));
    }
    let state = ctx.state.clone();
    let route = routing::resolve(&state, &model).await?;
    let done = run(&state, &route, &model, |provider, target| {
        let mut body = map.clone();
        body.insert("model".to_owned(), Value::String(target.model.clone()));
        async move { provider.completion(Value::Object(body)).await }
    })
    .await?;
    let usage = done.value.get("usage").map(|u| {
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        Usage::new(n("prompt_tokens"), n("completion_tokens"))
    });
    state.usage.record(
        &done.target.provider,
        &done.target.model,
        Outcome::Success,
        done.started.elapsed(),
        usage.as_ref(),
    );
    let mut resp = json_response(StatusCode::OK, &done.value);
    route_headers(&mut resp, &done.target);
    Ok(resp)
}

async fn complete_chat(
    state: &AppState,
    route: &Route,
    plan: &Plan,
    request: ChatRequest,
) -> Result<Response<Body>, ApiError> {
    let requested = request.model.clone();
    let done = run(state, route, &requested, |provider, target| {
        let req = plan.request_for(state, &request, target);
        async move { provider.chat(&req).await }
    })
    .await?;
    state.usage.record(
        &done.target.provider,
        &done.target.model,
        Outcome::Success,
        done.started.elapsed(),
        done.value.usage.as_ref(),
    );
    let mut resp = json_response(StatusCode::OK, &done.value);
    route_headers(&mut resp, &done.target);
    plan.annotate(&mut resp, &done.target);
    Ok(resp)
}

async fn stream_chat(
    state: &AppState,
    route: &Route,
    plan: &Plan,
    request: ChatRequest,
) -> Result<Response<Body>, ApiError> {
    let requested = request.model.clone();
    let done = run(state, route, &requested, |provider, target| {
        let req = plan.request_for(state, &request, target);
        async move {
            let mut stream = provider.chat_stream(&req).await?;
            // Wait for the first item: an error before any data is still a clean failure
            // (proper status, fallback); after this, bytes go to the client.
            match stream.next().await {
                Some(Err(e)) => Err(e),
                Some(Ok(first)) => Ok((Some(first), stream)),
                None => Ok((None, stream)),
            }
        }
    })
    .await?;
    let (first, upstream) = done.value;
    let accounting = Accounting {
        usage: state.usage.clone(),
        provider: done.target.provider.clone(),
        model: done.target.model.clone(),
        started: done.started,
        tokens: None,
        finished: false,
    };
    let events = sse_events(first, upstream, accounting);
    let mut resp = Response::new(SseBody::new(events).boxed());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    route_headers(&mut resp, &done.target);
    plan.annotate(&mut resp, &done.target);
    Ok(resp)
}

/// A successful call and what it took.
struct Done<T> {
    target: Target,
    value: T,
    /// When the successful attempt started.
    started: Instant,
}

/// Tries the route's targets in order. Failed attempts are counted in the usage registry
/// here; the caller counts the success (streams only once they end).
async fn run<T, F, Fut>(
    state: &AppState,
    route: &Route,
    requested: &str,
    mut call: F,
) -> Result<Done<T>, ApiError>
where
    F: FnMut(Arc<dyn Provider>, &Target) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut failures: Vec<(Target, ProviderError)> = Vec::new();
    for target in &route.targets {
        let Some(provider) = state.discovery.provider(&target.provider) else {
            failures.push((
                target.clone(),
                ProviderError::new(
                    target.provider.clone(),
                    ProviderErrorKind::Connect,
                    "the provider is disabled in configuration",
                ),
            ));
            continue;
        };
        let started = Instant::now();
        match call(provider, target).await {
            Ok(value) => {
                if !failures.is_empty() {
                    tracing::info!(
                        requested,
                        provider = %target.provider,
                        model = %target.model,
                        failed = failures.len(),
                        "served by a fallback target"
                    );
                }
                return Ok(Done {
                    target: target.clone(),
                    value,
                    started,
                });
            }
            Err(e) => {
                state.usage.record(
                    &target.provider,
                    &target.model,
                    outcome_of(&e),
                    started.elapsed(),
                    None,
                );
                tracing::warn!(
                    requested,
                    provider = %target.provider,
                    model = %target.model,
                    error = %e,
                    "upstream call failed"
                );
                // The request itself was refused: another target would refuse it too.
                let fall_back = e.kind != ProviderErrorKind::InvalidRequest;
                failures.push((target.clone(), e));
                if !fall_back {
                    break;
                }
            }
        }
    }
    Err(failure_error(state, route, requested, &failures))
}

fn outcome_of(e: &ProviderError) -> Outcome {
    if e.is_client_error() {
        Outcome::ClientError
    } else {
        Outcome::Failure
    }
}

/// The response for a request none of whose targets succeeded: the last error, with every
/// attempt listed when an alias was used.
fn failure_error(
    state: &AppState,
    route: &Route,
    requested: &str,
    failures: &[(Target, ProviderError)],
) -> ApiError {
    let Some((target, last)) = failures.last() else {
        return ApiError::new(
            ErrorCode::ProviderError,
            format!("No provider is configured to serve '{requested}'"),
        )
        .with_details(json!({"model_id": requested}));
    };
    let snap = state.discovery.snapshot();
    let mut err = provider_api_error(last, target, Some(&snap.discovered));
    if let Some(alias) = &route.alias {
        let attempts: Vec<Value> = failures
            .iter()
            .map(|(t, e)| {
                json!({
                    "provider": t.provider,
                    "model": t.model,
                    "error_type": e.kind.as_str(),
                    "upstream_status": e.status,
                    "message": e.to_string(),
                })
            })
            .collect();
        if failures.len() == route.targets.len() && failures.len() > 1 {
            err.message = format!(
                "All {} targets of alias '{alias}' failed; last: {}",
                failures.len(),
                err.message
            );
        }
        if let Some(Value::Object(d)) = &mut err.details {
            d.insert("alias".to_owned(), json!(alias));
            d.insert("attempts".to_owned(), Value::Array(attempts));
        }
    }
    err
}

/// Whether `e` is the circuit breaker refusing the call (no upstream was contacted).
fn is_circuit_open(e: &ProviderError) -> bool {
    e.kind == ProviderErrorKind::Upstream && e.status.is_none() && e.message == CIRCUIT_OPEN_MESSAGE
}

/// The one mapping from a provider error to the client-facing error code.
fn error_code(e: &ProviderError) -> ErrorCode {
    if is_circuit_open(e) {
        return ErrorCode::ServiceUnavailable;
    }
    match e.kind {
        ProviderErrorKind::InvalidRequest | ProviderErrorKind::Unsupported => {
            ErrorCode::InvalidRequest
        }
        ProviderErrorKind::NotFound => ErrorCode::ModelNotFound,
        ProviderErrorKind::RateLimited => ErrorCode::RateLimited,
        ProviderErrorKind::Timeout => ErrorCode::ProviderTimeout,
        ProviderErrorKind::Auth
        | ProviderErrorKind::Connect
        | ProviderErrorKind::Upstream
        | ProviderErrorKind::BadResponse
        | ProviderErrorKind::StreamInterrupted => ErrorCode::ProviderError,
    }
}

/// A provider error as an [`ApiError`]: the provider named, its (already redacted) message,
/// the upstream status; `Retry-After` for rate limits and open circuits; "did you mean"
/// models of that provider for an upstream 404 when `discovered` is given.
fn provider_api_error(
    e: &ProviderError,
    target: &Target,
    discovered: Option<&ModelSet>,
) -> ApiError {
    let code = error_code(e);
    let mut details = json!({
        "provider": e.provider,
        "model": target.model,
        "error_type": e.kind.as_str(),
        "upstream_status": e.status,
    });
    if code == ErrorCode::ModelNotFound {
        if let Some(set) = discovered {
            let nf = routing::not_found(&target.model, set, Some(&target.provider));
            if let (Value::Object(d), Some(Value::Object(extra))) = (&mut details, nf.details) {
                d.extend(extra);
            }
        }
    }
    if is_circuit_open(e) {
        details["circuit"] = json!("open");
    }
    let message = if is_circuit_open(e) {
        format!(
            "Provider '{}' is temporarily unavailable (circuit open after repeated failures)",
            e.provider
        )
    } else {
        e.to_string()
    };
    let mut err = ApiError::new(code, message).with_details(details);
    if matches!(code, ErrorCode::RateLimited | ErrorCode::ServiceUnavailable) {
        let secs = e.retry_after.map_or(1, |d| ceil_secs(d).max(1));
        err = err.with_retry_after(secs);
    }
    err
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn route_headers(resp: &mut Response<Body>, target: &Target) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&target.provider) {
        h.insert(HeaderName::from_static(PROVIDER_HEADER), v);
    }
    if let Ok(v) = HeaderValue::from_str(&target.model) {
        h.insert(HeaderName::from_static(MODEL_HEADER), v);
    }
}

// ---------------------------------------------------------------------------------------
// Streaming

/// Counts a stream in the usage registry exactly once: when it ends, fails, or (on drop,
/// i.e. the client went away) as cancelled.
struct Accounting {
    usage: Arc<UsageRegistry>,
    provider: String,
    model: String,
    started: Instant,
    tokens: Option<Usage>,
    finished: bool,
}

impl Accounting {
    fn finish(&mut self, outcome: Outcome) {
        if !self.finished {
            self.finished = true;
            self.usage.record(
                &self.provider,
                &self.model,
                outcome,
                self.started.elapsed(),
                self.tokens.as_ref(),
            );
        }
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

struct SseState {
    first: Option<ChatChunk>,
    upstream: ChatStream,
    accounting: Accounting,
    done: bool,
}

type EventStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// The SSE events of a response: every chunk as it arrives, then `[DONE]`, or an error
/// event in place of the rest.
fn sse_events(
    first: Option<ChatChunk>,
    upstream: ChatStream,
    accounting: Accounting,
) -> EventStream {
    let state = SseState {
        first,
        upstream,
        accounting,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let item = match s.first.take() {
            Some(chunk) => Some(Ok(chunk)),
            None => s.upstream.next().await,
        };
        let bytes = match item {
            Some(Ok(chunk)) => {
                if let Some(u) = chunk.usage {
                    s.accounting.tokens = Some(u);
                }
                match serde_json::to_vec(&chunk) {
                    Ok(json) => data_event(&json),
                    Err(e) => {
                        s.done = true;
                        s.accounting.finish(Outcome::Failure);
                        let err =
                            ApiError::internal(format!("could not encode a stream chunk: {e}"));
                        error_event(&err, None)
                    }
                }
            }
            Some(Err(e)) => {
                s.done = true;
                s.accounting.finish(outcome_of(&e));
                tracing::warn!(provider = %e.provider, error = %e, "upstream stream failed mid-way");
                let target = Target {
                    provider: s.accounting.provider.clone(),
                    model: s.accounting.model.clone(),
                };
                error_event(&provider_api_error(&e, &target, None), Some(&e))
            }
            None => {
                s.done = true;
                s.accounting.finish(Outcome::Success);
                Bytes::from_static(b"data: [DONE]\n\n")
            }
        };
        Some((bytes, s))
    }))
}

fn data_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// OpenAI's in-stream error shape (`{"error": {"message", "type", "code"}}`), with the
/// gateway's code, the provider and the status the error would have had.
fn error_event(err: &ApiError, source: Option<&ProviderError>) -> Bytes {
    let body = json!({
        "error": {
            "message": err.message,
            "type": source.map_or("internal_error", |e| e.kind.as_str()),
            "code": err.code,
            "provider": source.map(|e| e.provider.as_str()),
            "status": err.status().as_u16(),
            "details": err.details,
        }
    });
    data_event(body.to_string().as_bytes())
}

/// A response body over an event stream. The `Mutex` only makes the `Send` stream `Sync`
/// (as the boxed body type requires); it is never locked, `get_mut` is free.
struct SseBody {
    events: Mutex<EventStream>,
}

impl SseBody {
    fn new(events: EventStream) -> Self {
        SseBody {
            events: Mutex::new(events),
        }
    }
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let events = self
            .get_mut()
            .events
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        events
            .as_mut()
            .poll_next(cx)
            .map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

// ---------------------------------------------------------------------------------------
// Request validation

async fn read_object(ctx: &mut Ctx) -> Result<Map<String, Value>, ApiError> {
    match ctx.json_body::<Value>().await? {
        None => Err(ApiError::invalid_request(
            "A JSON request body is required (with at least 'model' and 'messages')",
        )),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(ApiError::invalid_request(format!(
            "The request body must be a JSON object, not {}",
            modelgate_types::json_type_name(&other)
        ))),
    }
}

fn field_error(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_details(json!({ "field": field }))
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    Bool,
    Number,
    UInt,
    Str,
    Array,
    Object,
    StrOrArray,
}

impl Expect {
    fn matches(self, v: &Value) -> bool {
        match self {
            Expect::Bool => v.is_boolean(),
            Expect::Number => v.is_number(),
            Expect::UInt => v.is_u64(),
            Expect::Str => v.is_string(),
            Expect::Array => v.is_array(),
            Expect::Object => v.is_object(),
            Expect::StrOrArray => v.is_string() || v.is_array(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expect::Bool => "a boolean",
            Expect::Number => "a number",
            Expect::UInt => "a non-negative integer",
            Expect::Str => "a string",
            Expect::Array => "an array",
            Expect::Object => "an object",
            Expect::StrOrArray => "a string or an array",
        }
    }
}

/// An optional field: absent or `null` is fine, anything else must match.
fn check(map: &Map<String, Value>, field: &str, expect: Expect) -> Result<(), ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if expect.matches(v) => Ok(()),
        Some(v) => Err(field_error(
            field,
            format!(
                "'{field}' must be {}, not {}",
                expect.describe(),
                modelgate_types::json_type_name(v)
            ),
        )),
    }
}

fn required_model(map: &Map<String, Value>) -> Result<String, ApiError> {
    match map.get("model") {
        None | Some(Value::Null) => Err(field_error(
            "model",
            "Missing required field 'model' (e.g. \"openai/gpt-4o\", a model id, or an alias)",
        )),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(field_error("model", "'model' must not be empty"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(field_error(
            "model",
            format!(
                "'model' must be a string, not {}",
                modelgate_types::json_type_name(v)
            ),
        )),
    }
}

/// Validates a chat request body field by field (so the error names the field), then
/// reads it into the typed request; unknown fields are kept for pass-through.
fn parse_chat(map: Map<String, Value>) -> Result<ChatRequest, ApiError> {
    required_model(&map)?;
    let messages = match map.get("messages") {
        None | Some(Value::Null) => {
            return Err(field_error("messages", "Missing required field 'messages'"))
        }
        Some(Value::Array(m)) => m,
        Some(v) => {
            return Err(field_error(
                "messages",
                format!(
                    "'messages' must be an array of messages, not {}",
                    modelgate_types::json_type_name(v)
                ),
            ))
        }
    };
    if messages.is_empty() {
        return Err(field_error(
            "messages",
            "'messages' must contain at least one message",
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(msg) = m else {
            return Err(field_error(
                &at,
                format!(
                    "'{at}' must be an object with 'role' and 'content', not {}",
                    modelgate_types::json_type_name(m)
                ),
            ));
        };
        match msg.get("role") {
            Some(Value::String(r)) if ROLES.contains(&r.as_str()) => {}
            Some(Value::String(r)) => {
                return Err(field_error(
                    &format!("{at}.role"),
                    format!("'{at}.role' must be one of {}, not '{r}'", ROLES.join(", ")),
                ))
            }
            None | Some(Value::Null) => {
                return Err(field_error(
                    &format!("{at}.role"),
                    format!("Missing '{at}.role'"),
                ))
            }
            Some(v) => {
                return Err(field_error(
                    &format!("{at}.role"),
                    format!(
                        "'{at}.role' must be a string, not {}",
                        modelgate_types::json_type_name(v)
                    ),
                ))
            }
        }
        for (field, expect) in [
            ("content", Expect::StrOrArray),
            ("name", Expect::Str),
            ("tool_calls", Expect::Array),
            ("tool_call_id", Expect::Str),
        ] {
            check(msg, field, expect).map_err(|_| {
                let v = msg.get(field).unwrap_or(&Value::Null);
                field_error(
                    &format!("{at}.{field}"),
                    format!(
                        "'{at}.{field}' must be {}, not {}",
                        expect.describe(),
                        modelgate_types::json_type_name(v)
                    ),
                )
            })?;
        }
    }
    for (field, expect) in [
        ("stream", Expect::Bool),
        ("temperature", Expect::Number),
        ("top_p", Expect::Number),
        ("max_tokens", Expect::UInt),
        ("max_completion_tokens", Expect::UInt),
        ("n", Expect::UInt),
        ("stop", Expect::StrOrArray),
        ("tools", Expect::Array),
        ("response_format", Expect::Object),
        ("stream_options", Expect::Object),
    ] {
        check(&map, field, expect)?;
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::invalid_request(format!("Invalid chat request: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, ApiError> {
        parse_chat(v.as_object().unwrap().clone())
    }

    #[test]
    fn validation_names_the_field() {
        let ok = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1});
        let req = parse(ok).unwrap();
        assert_eq!(req.extra["seed"], 1);
        for (body, field) in [
            (
                json!({"messages": [{"role": "user", "content": "x"}]}),
                "model",
            ),
            (json!({"model": 5, "messages": []}), "model"),
            (json!({"model": " ", "messages": []}), "model"),
            (json!({"model": "m"}), "messages"),
            (json!({"model": "m", "messages": []}), "messages"),
            (json!({"model": "m", "messages": "hi"}), "messages"),
            (json!({"model": "m", "messages": ["hi"]}), "messages[0]"),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": 3}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
                "stream",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}),
                "max_tokens",
            ),
        ] {
            let e = parse(body.clone()).expect_err(&body.to_string());
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{body}");
            assert_eq!(e.details.unwrap()["field"], field, "{body}");
        }
    }

    #[test]
    fn error_mapping() {
        let t = Target {
            provider: "p".into(),
            model: "m".into(),
        };
        let e = |kind, status: Option<u16>| {
            let mut e = ProviderError::new("p", kind, "boom");
            e.status = status;
            e
        };
        let code = |err: ProviderError| provider_api_error(&err, &t, None).code;
        assert_eq!(
            code(e(ProviderErrorKind::Upstream, Some(500))),
            ErrorCode::ProviderError
        );
        assert_eq!(
            code(e(ProviderErrorKind::Auth, Some(401))),
            ErrorCode::ProviderError
        );
        assert_eq!(
            code(e(ProviderErrorKind::InvalidRequest, Some(400))),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(e(ProviderErrorKind::NotFound, Some(404))),
            ErrorCode::ModelNotFound
        );
        assert_eq!(
            code(e(ProviderErrorKind::Timeout, None)),
            ErrorCode::ProviderTimeout
        );
        let limited = e(ProviderErrorKind::RateLimited, Some(429))
            .with_retry_after(Some(Duration::from_millis(1500)));
        let api = provider_api_error(&limited, &t, None);
        assert_eq!(
            (api.code, api.retry_after),
            (ErrorCode::RateLimited, Some(2))
        );
        let open = ProviderError::new("p", ProviderErrorKind::Upstream, CIRCUIT_OPEN_MESSAGE)
            .with_retry_after(Some(Duration::from_secs(7)));
        let api = provider_api_error(&open, &t, None);
        assert_eq!(
            (api.code, api.retry_after),
            (ErrorCode::ServiceUnavailable, Some(7))
        );
        assert_eq!(api.details.unwrap()["provider"], "p");
    }
}
