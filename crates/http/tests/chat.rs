//! The OpenAI-compatible chat proxy over real sockets against the testkit mock upstream:
//! round-trips (JSON and SSE) through four wire formats, tool calls, routing and aliases,
//! retry, fallback, circuit breaker, timeouts, mid-stream failures, client disconnects,
//! usage accounting and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{client, mock_provider, settings_with, start, Gateway};
use modelgate_config::Settings;
use modelgate_testkit::MockUpstream;
use modelgate_types::{ProviderKind, Secret};
use serde_json::{json, Value};

/// The four wire formats and a chat model each mock flavor serves.
const FORMATS: [(ProviderKind, &str, &str); 4] = [
    (ProviderKind::Openai, "openai", "gpt-4o-mini"),
    (
        ProviderKind::Anthropic,
        "anthropic",
        "claude-3-5-haiku-20241022",
    ),
    (ProviderKind::Gemini, "gemini", "gemini-2.0-flash"),
    (ProviderKind::Cohere, "cohere", "command-r-08-2024"),
];

/// Fast retries, a breaker that does not trip unless a test asks, short timeouts.
fn resilience(settings: &mut Settings, v: Value) {
    let mut base = json!({
        "retry": {"max_attempts": 3, "base_delay_ms": 5, "max_delay_ms": 20},
        "breaker": {"enabled": true, "failure_threshold": 100, "cooldown_ms": 60000},
        "timeout": {"request_ms": 10000, "stream_first_chunk_ms": 10000, "stream_idle_ms": 10000}
    });
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        for (section, values) in o {
            if let (Some(dst), Some(src)) = (
                b.get_mut(section).and_then(Value::as_object_mut),
                values.as_object(),
            ) {
                for (k, val) in src {
                    dst.insert(k.clone(), val.clone());
                }
            }
        }
    }
    settings.extensions.insert("resilience".into(), base);
}

async fn gateway(mock: &MockUpstream, kinds: &[(&str, ProviderKind)], overrides: Value) -> Gateway {
    let mut s = settings_with(
        kinds
            .iter()
            .map(|(n, k)| (*n, mock_provider(mock, *k)))
            .collect(),
    );
    resilience(&mut s, overrides);
    start(s).await
}

async fn all_formats(mock: &MockUpstream) -> Gateway {
    let kinds: Vec<(&str, ProviderKind)> = FORMATS.iter().map(|(k, n, _)| (*n, *k)).collect();
    gateway(mock, &kinds, json!({})).await
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn post(gw: &Gateway, path: &str, body: Value) -> Reply {
    let resp = client()
        .post(gw.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Reply {
        status,
        headers,
        body,
    }
}

async fn post_raw(gw: &Gateway, body: &'static str) -> (u16, Value) {
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// A streamed response: status, content type and its `data:` payloads in order.
struct Sse {
    status: u16,
    content_type: String,
    provider: String,
    events: Vec<String>,
}

impl Sse {
    fn chunks(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| *e != "[DONE]")
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    fn content(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    fn errors(&self) -> Vec<Value> {
        self.chunks()
            .into_iter()
            .filter(|c| c.get("error").is_some())
            .collect()
    }
}

async fn stream(gw: &Gateway, body: Value) -> Sse {
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let content_type = header("content-type");
    let provider = header("x-modelgate-provider");
    let text = resp.text().await.unwrap();
    if !content_type.starts_with("text/event-stream") {
        // An error answered before any stream data: a plain JSON error body.
        return Sse {
            status,
            content_type,
            provider,
            events: vec![text],
        };
    }
    let events = text
        .split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| {
            b.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {b:?}"))
                .to_owned()
        })
        .collect();
    Sse {
        status,
        content_type,
        provider,
        events,
    }
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text}
    ]})
}

fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

/// Chat calls (not model listings) the mock flavor of `kind` received.
fn chat_hits(mock: &MockUpstream, kind: ProviderKind) -> usize {
    mock.requests(kind)
        .iter()
        .filter(|r| {
            r.method == "POST"
                && [
                    "/chat/completions",
                    "/v1/messages",
                    "enerateContent",
                    "/v2/chat",
                    "/completions",
                ]
                .iter()
                .any(|p| r.path.contains(p))
        })
        .count()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn round_trips_through_every_wire_format() {
    let mock = MockUpstream::start().await;
    let gw = all_formats(&mock).await;
    for (_, name, model) in FORMATS {
        let id = format!("{name}/{model}");
        let want = format!("Hello from {name} {model}: What is Rust?");

        let r = post(&gw, "/v1/chat/completions", chat(&id, "What is Rust?")).await;
        assert_eq!(r.status, 200, "{id}: {}", r.body);
        assert_eq!(r.headers["x-modelgate-provider"], name);
        assert_eq!(r.headers["x-modelgate-model"], model);
        assert_eq!(r.body["object"], "chat.completion", "{id}");
        assert_eq!(r.body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            r.body["choices"][0]["message"]["content"],
            want.as_str(),
            "{id}"
        );
        assert_eq!(r.body["choices"][0]["finish_reason"], "stop", "{id}");
        assert!(
            r.body["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{id}: {}",
            r.body
        );
        assert_eq!(r.body["usage"]["completion_tokens"], 7, "{id}");

        let s = stream(&gw, streaming(chat(&id, "What is Rust?"))).await;
        assert_eq!(s.status, 200, "{id}: {:?}", s.events);
        assert_eq!(s.content_type, "text/event-stream");
        assert_eq!(s.provider, name);
        assert_eq!(s.events.last().map(String::as_str), Some("[DONE]"), "{id}");
        assert_eq!(s.content(), want, "{id}: {:?}", s.events);
        let pieces = s
            .chunks()
            .iter()
            .filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            })
            .count();
        assert!(
            pieces >= 7,
            "{id}: forwarded as it came, one word per chunk ({pieces})"
        );
        assert!(s
            .chunks()
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        assert!(s.errors().is_empty());

        // Usage accounting per provider and model.
        let u = gw.state.usage.get(name, model).unwrap();
        assert_eq!(
            (u.requests, u.successes, u.failures),
            (2, 2, 0),
            "{id}: {u:?}"
        );
        assert!(u.prompt_tokens > 0 && u.latency_ms_max > 0.0, "{id}: {u:?}");
        assert!(u.completion_tokens >= 7, "{id}: {u:?}");
    }
}

fn tool_request(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "weather in Paris"}],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
        }}],
        "tool_choice": "auto"
    })
}

#[tokio::test]
async fn tool_calls_round_trip_in_every_wire_format() {
    let mock = MockUpstream::start().await;
    let gw = all_formats(&mock).await;
    for (_, name, model) in FORMATS {
        let id = format!("{name}/{model}");
        let r = post(&gw, "/v1/chat/completions", tool_request(&id)).await;
        assert_eq!(r.status, 200, "{id}: {}", r.body);
        let msg = &r.body["choices"][0]["message"];
        assert_eq!(
            r.body["choices"][0]["finish_reason"], "tool_calls",
            "{id}: {}",
            r.body
        );
        let call = &msg["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather", "{id}");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"query": "weather in Paris"}), "{id}");
        let call_id = call["id"].as_str().unwrap().to_owned();
        assert!(!call_id.is_empty());

        // Streamed: the call arrives in pieces that concatenate to the same call.
        let s = stream(&gw, streaming(tool_request(&id))).await;
        assert_eq!(s.status, 200, "{id}");
        assert_eq!(s.events.last().map(String::as_str), Some("[DONE]"));
        let (mut fname, mut fargs) = (String::new(), String::new());
        let mut finish = None;
        for c in s.chunks() {
            for d in c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert_eq!(d["index"], 0);
                fname += d["function"]["name"].as_str().unwrap_or("");
                fargs += d["function"]["arguments"].as_str().unwrap_or("");
            }
            if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                finish = Some(f.to_owned());
            }
        }
        assert_eq!(fname, "get_weather", "{id}: {:?}", s.events);
        assert_eq!(
            serde_json::from_str::<Value>(&fargs).unwrap(),
            json!({"query": "weather in Paris"}),
            "{id}"
        );
        assert_eq!(finish.as_deref(), Some("tool_calls"), "{id}");

        // The tool result goes back in OpenAI's shape and is translated upstream.
        let mut follow = tool_request(&id);
        follow["messages"] = json!([
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call_id, "content": "18C and sunny"}
        ]);
        let r = post(&gw, "/v1/chat/completions", follow).await;
        assert_eq!(r.status, 200, "{id}: {}", r.body);
        assert_eq!(
            r.body["choices"][0]["message"]["content"], "Tool said: 18C and sunny",
            "{id}"
        );
    }
}

#[tokio::test]
async fn openai_compatible_pass_through_keeps_unknown_fields() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &[("openai", ProviderKind::Openai)], json!({})).await;
    let mut body = chat("openai/gpt-4o", "hi");
    body["seed"] = json!(7);
    body["logit_bias"] = json!({"50256": -100});
    body["user"] = json!("user-1");
    body["messages"][1]["x_custom"] = json!(true);
    let r = post(&gw, "/v1/chat/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = mock
        .requests(ProviderKind::Openai)
        .last()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(sent["model"], "gpt-4o", "the provider prefix is removed");
    assert_eq!(sent["seed"], 7);
    assert_eq!(sent["logit_bias"], json!({"50256": -100}));
    assert_eq!(sent["user"], "user-1");
    assert_eq!(sent["messages"][1]["x_custom"], true);
    // Unknown response fields come back too.
    assert_eq!(r.body["system_fingerprint"], "fp_mock");
    assert_eq!(r.body["service_tier"], "default");
    assert_eq!(r.body["choices"][0]["message"]["refusal"], Value::Null);
}

#[tokio::test]
async fn upstream_500_is_retried_then_succeeds() {
    let mock = MockUpstream::start().await;
    let gw = all_formats(&mock).await;
    for (kind, name, model) in FORMATS {
        mock.fail_next(kind, 2, 500);
        let r = post(
            &gw,
            "/v1/chat/completions",
            chat(&format!("{name}/{model}"), "x"),
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(
            chat_hits(&mock, kind),
            3,
            "{name}: two failures, then success"
        );

        // A stream that fails before its first chunk is retried too.
        mock.fail_next(kind, 1, 503);
        let s = stream(&gw, streaming(chat(&format!("{name}/{model}"), "x"))).await;
        assert_eq!(s.status, 200, "{name}");
        assert_eq!(s.content(), format!("Hello from {name} {model}: x"));
        assert_eq!(chat_hits(&mock, kind), 5, "{name}");
    }
}

#[tokio::test]
async fn upstream_400_is_not_retried_and_keeps_its_status() {
    let mock = MockUpstream::start().await;
    let gw = all_formats(&mock).await;
    for (kind, name, model) in FORMATS {
        mock.fail_next(kind, 1, 400);
        let r = post(
            &gw,
            "/v1/chat/completions",
            chat(&format!("{name}/{model}"), "x"),
        )
        .await;
        assert_eq!(r.status, 400, "{name}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
        assert_eq!(r.body["error"]["details"]["provider"], name);
        assert_eq!(r.body["error"]["details"]["upstream_status"], 400);
        assert!(r.body["error"]["message"].as_str().unwrap().contains(name));
        assert!(r.body["timestamp"].is_string());
        assert_eq!(chat_hits(&mock, kind), 1, "{name}: a 400 is never retried");
        let u = gw.state.usage.get(name, model).unwrap();
        assert_eq!(u.client_errors, 1);
    }
}

#[tokio::test]
async fn stream_cut_midway_is_an_error_event_without_duplicated_content() {
    let mock = MockUpstream::start().await;
    let gw = all_formats(&mock).await;
    for (kind, name, model) in FORMATS {
        // Every flavor's first events are preamble (role chunk, message_start, ...); cut
        // well inside the words.
        mock.cut_stream_after(kind, Some(5));
        let s = stream(
            &gw,
            streaming(chat(
                &format!("{name}/{model}"),
                "one two three four five six",
            )),
        )
        .await;
        mock.cut_stream_after(kind, None);
        assert_eq!(s.status, 200, "{name}");
        let full = format!("Hello from {name} {model}: one two three four five six");
        let got = s.content();
        assert!(
            !got.is_empty() && full.starts_with(&got) && got != full,
            "{name}: {got:?}"
        );
        let errors = s.errors();
        assert_eq!(errors.len(), 1, "{name}: {:?}", s.events);
        assert_eq!(errors[0]["error"]["provider"], name);
        assert_eq!(errors[0]["error"]["code"], "PROVIDER_ERROR");
        assert!(errors[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(name));
        assert!(
            s.events.last().unwrap().contains("\"error\""),
            "the error is the last event"
        );
        assert!(!s.events.iter().any(|e| e == "[DONE]"), "{name}");
        assert_eq!(
            chat_hits(&mock, kind),
            1,
            "{name}: no retry after the first chunk"
        );
        let u = gw.state.usage.get(name, model).unwrap();
        assert_eq!((u.requests, u.failures), (1, 1), "{name}: {u:?}");
    }
    // The provider's own mid-stream error event (Anthropic's overloaded_error) too.
    mock.error_stream_after(ProviderKind::Anthropic, Some(4));
    let s = stream(
        &gw,
        streaming(chat("anthropic/claude-3-5-haiku-20241022", "a b c d e f")),
    )
    .await;
    let errors = s.errors();
    assert_eq!(errors.len(), 1, "{:?}", s.events);
    assert_eq!(errors[0]["error"]["provider"], "anthropic");
    assert!(!s.content().is_empty());
    assert!(!s.events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn alias_falls_back_to_the_next_entry_when_the_first_is_down() {
    let mock = MockUpstream::start().await;
    let mut s = settings_with(vec![
        ("anthropic", mock_provider(&mock, ProviderKind::Anthropic)),
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
    ]);
    s.routing.aliases.insert(
        "fast".into(),
        vec![
            "anthropic/claude-3-5-haiku-20241022".into(),
            "openai/gpt-4o-mini".into(),
        ],
    );
    resilience(&mut s, json!({"retry": {"max_attempts": 2}}));
    let gw = start(s).await;
    // Anthropic is down: every call fails.
    mock.set_error_rate(ProviderKind::Anthropic, 1.0, 503, 1);

    let r = post(&gw, "/v1/chat/completions", chat("fast", "hi")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-modelgate-provider"], "openai");
    assert_eq!(
        r.body["choices"][0]["message"]["content"],
        "Hello from openai gpt-4o-mini: hi"
    );
    assert_eq!(
        chat_hits(&mock, ProviderKind::Anthropic),
        2,
        "retried, then fell back"
    );

    let st = stream(&gw, streaming(chat("fast", "hi"))).await;
    assert_eq!(st.status, 200);
    assert_eq!(st.provider, "openai");
    assert_eq!(st.content(), "Hello from openai gpt-4o-mini: hi");
    assert_eq!(st.events.last().map(String::as_str), Some("[DONE]"));

    // Healthy again: the first entry serves.
    mock.set_error_rate(ProviderKind::Anthropic, 0.0, 503, 1);
    let r = post(&gw, "/v1/chat/completions", chat("fast", "hi")).await;
    assert_eq!(r.headers["x-modelgate-provider"], "anthropic");

    // Both down: 502 naming every attempt.
    mock.set_error_rate(ProviderKind::Anthropic, 1.0, 503, 1);
    mock.set_error_rate(ProviderKind::Openai, 1.0, 500, 1);
    let r = post(&gw, "/v1/chat/completions", chat("fast", "hi")).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "PROVIDER_ERROR");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("All 2 targets of alias 'fast' failed"));
    let attempts = r.body["error"]["details"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider"], "anthropic");
    assert_eq!(attempts[1]["provider"], "openai");
    assert_eq!(r.body["error"]["details"]["alias"], "fast");
}

#[tokio::test]
async fn breaker_opens_after_failures_and_closes_after_a_successful_probe() {
    let mock = MockUpstream::start().await;
    let gw = gateway(
        &mock,
        &[("openai", ProviderKind::Openai)],
        json!({"retry": {"max_attempts": 1}, "breaker": {"failure_threshold": 3, "cooldown_ms": 300}}),
    )
    .await;
    let req = || chat("openai/gpt-4o-mini", "hi");

    // Client errors never trip it.
    mock.fail_next(ProviderKind::Openai, 5, 400);
    for _ in 0..5 {
        assert_eq!(post(&gw, "/v1/chat/completions", req()).await.status, 400);
    }
    assert_eq!(post(&gw, "/v1/chat/completions", req()).await.status, 200);
    assert_eq!(chat_hits(&mock, ProviderKind::Openai), 6);

    // Three consecutive failures open it.
    mock.fail_next(ProviderKind::Openai, 3, 500);
    for _ in 0..3 {
        assert_eq!(post(&gw, "/v1/chat/completions", req()).await.status, 502);
    }
    let r = post(&gw, "/v1/chat/completions", req()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.body["error"]["details"]["circuit"], "open");
    assert_eq!(r.body["error"]["details"]["provider"], "openai");
    assert!(r.headers.contains_key("retry-after"));
    let s = stream(&gw, streaming(req())).await;
    assert_eq!(s.status, 503, "streams fail fast too");
    assert_eq!(
        chat_hits(&mock, ProviderKind::Openai),
        9,
        "open: nothing reaches the upstream"
    );

    // After the cooldown one probe goes through, succeeds and closes the circuit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = post(&gw, "/v1/chat/completions", req()).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "circuit never half-opened"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        chat_hits(&mock, ProviderKind::Openai),
        10,
        "exactly one probe"
    );
    for _ in 0..3 {
        assert_eq!(post(&gw, "/v1/chat/completions", req()).await.status, 200);
    }
    assert_eq!(chat_hits(&mock, ProviderKind::Openai), 13);
}

#[tokio::test]
async fn slow_upstream_times_out_with_504() {
    let mock = MockUpstream::start().await;
    let gw = gateway(
        &mock,
        &[("openai", ProviderKind::Openai)],
        json!({"retry": {"max_attempts": 1}, "timeout": {"request_ms": 200, "stream_first_chunk_ms": 200}}),
    )
    .await;
    mock.set_latency(ProviderKind::Openai, Duration::from_secs(3));
    let started = std::time::Instant::now();
    let r = post(
        &gw,
        "/v1/chat/completions",
        chat("openai/gpt-4o-mini", "hi"),
    )
    .await;
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "PROVIDER_TIMEOUT");
    let s = stream(&gw, streaming(chat("openai/gpt-4o-mini", "hi"))).await;
    assert_eq!(s.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &[("openai", ProviderKind::Openai)], json!({})).await;
    mock.set_stream_interval(ProviderKind::Openai, Duration::from_millis(100));
    let long = "word ".repeat(200);
    let mut resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&streaming(chat("openai/gpt-4o-mini", &long)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The first chunk arrives long before the stream could have finished (200+ events
    // 100 ms apart): chunks are forwarded as they come, not buffered.
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .expect("first chunk forwarded promptly")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: {"));
    assert_eq!(mock.streams_cancelled(), 0);
    drop(resp);
    eventually("the upstream stream to be cancelled", || {
        mock.streams_cancelled() == 1
    })
    .await;
    eventually("the cancelled call to be counted", || {
        gw.state
            .usage
            .get("openai", "gpt-4o-mini")
            .is_some_and(|u| u.cancelled == 1)
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &[("openai", ProviderKind::Openai)], json!({})).await;
    for (raw, field) in [
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [", None),
        ("", None),
        ("[1, 2]", None),
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", Some("model")),
        ("{\"model\": \"\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", Some("model")),
        ("{\"model\": 42, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", Some("model")),
        ("{\"model\": \"openai/gpt-4o\"}", Some("messages")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": []}", Some("messages")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": \"hi\"}", Some("messages")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}", Some("messages[0].role")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": {\"a\": 1}}]}", Some("messages[0].content")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}", Some("stream")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", Some("temperature")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 1.5}", Some("max_tokens")),
        ("{\"model\": \"openai/gpt-4o\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\"}]}", None),
    ] {
        let (status, v) = post_raw(&gw, raw).await;
        assert_eq!(status, 400, "{raw}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{raw}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        assert!(v["timestamp"].is_string());
        if let Some(f) = field {
            assert_eq!(v["error"]["details"]["field"], f, "{raw}: {v}");
        }
    }
    assert_eq!(
        chat_hits(&mock, ProviderKind::Openai),
        0,
        "bad input never reaches a provider"
    );

    let resp = client()
        .get(gw.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn model_resolution_bare_ids_ambiguity_and_not_found() {
    let mock = MockUpstream::start().await;
    let gw = gateway(
        &mock,
        &[
            ("openai", ProviderKind::Openai),
            ("backup", ProviderKind::Openai),
            ("anthropic", ProviderKind::Anthropic),
        ],
        json!({}),
    )
    .await;
    // A bare id listed by exactly one provider.
    let r = post(
        &gw,
        "/v1/chat/completions",
        chat("claude-3-5-haiku-20241022", "hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-modelgate-provider"], "anthropic");

    // Listed by two: 400 naming both.
    let r = post(&gw, "/v1/chat/completions", chat("gpt-4o", "hi")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
    let candidates = r.body["error"]["details"]["candidates"].as_array().unwrap();
    assert_eq!(
        candidates,
        &vec![json!("backup/gpt-4o"), json!("openai/gpt-4o")]
    );
    // Naming the provider settles it.
    let r = post(&gw, "/v1/chat/completions", chat("backup/gpt-4o", "hi")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-modelgate-provider"], "backup");

    // Unknown: 404 with suggestions.
    let r = post(&gw, "/v1/chat/completions", chat("claude-3-5-haiku", "hi")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "MODEL_NOT_FOUND");
    assert_eq!(r.body["error"]["details"]["model_id"], "claude-3-5-haiku");
    let suggestions = r.body["error"]["details"]["available_models"]
        .as_array()
        .unwrap();
    assert!(
        suggestions.contains(&json!("anthropic/claude-3-5-haiku-20241022")),
        "{suggestions:?}"
    );

    // An explicit provider whose upstream does not know the model: its 404, mapped.
    let r = post(&gw, "/v1/chat/completions", chat("openai/gpt-9", "hi")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "MODEL_NOT_FOUND");
    assert_eq!(r.body["error"]["details"]["provider"], "openai");
    assert_eq!(
        chat_hits(&mock, ProviderKind::Openai),
        2,
        "404 is not retried"
    );
}

#[tokio::test]
async fn upstream_errors_name_the_provider_and_never_the_key() {
    let mock = MockUpstream::start().await;
    let secret = "sk-proj-wrongwrongwrong0123456789";
    let mut bad = mock_provider(&mock, ProviderKind::Openai);
    bad.api_key = Some(Secret::new(secret));
    let mut s = settings_with(vec![
        ("openai", bad),
        ("anthropic", mock_provider(&mock, ProviderKind::Anthropic)),
    ]);
    resilience(&mut s, json!({}));
    let gw = start(s).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat("openai/gpt-4o", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(secret) && !text.contains("wrongwrong"),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "PROVIDER_ERROR");
    assert_eq!(v["error"]["details"]["provider"], "openai");
    assert_eq!(v["error"]["details"]["upstream_status"], 401);

    // A 429 whose Retry-After is beyond the retry cap is passed on at once.
    mock.rate_limit_next(ProviderKind::Anthropic, 1, 60);
    let r = post(
        &gw,
        "/v1/chat/completions",
        chat("anthropic/claude-3-5-haiku-20241022", "hi"),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "RATE_LIMITED");
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(r.body["error"]["details"]["provider"], "anthropic");
}

#[tokio::test]
async fn completions_pass_through_to_openai_compatible_providers() {
    let mock = MockUpstream::start().await;
    let mut s = settings_with(vec![
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
        ("anthropic", mock_provider(&mock, ProviderKind::Anthropic)),
    ]);
    s.routing.aliases.insert(
        "legacy".into(),
        vec![
            "anthropic/claude-3-5-haiku-20241022".into(),
            "openai/gpt-4o-mini".into(),
        ],
    );
    resilience(&mut s, json!({}));
    let gw = start(s).await;
    let body =
        json!({"model": "openai/gpt-4o-mini", "prompt": "Say hi", "max_tokens": 5, "echo": false});
    let r = post(&gw, "/v1/completions", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["object"], "text_completion");
    assert_eq!(
        r.body["choices"][0]["text"],
        "Hello from openai gpt-4o-mini: Say hi"
    );
    let sent = mock
        .requests(ProviderKind::Openai)
        .last()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (sent["model"].clone(), sent["echo"].clone()),
        (json!("gpt-4o-mini"), json!(false))
    );
    let u = gw.state.usage.get("openai", "gpt-4o-mini").unwrap();
    assert_eq!((u.successes, u.prompt_tokens), (1, 2));

    let r = post(
        &gw,
        "/v1/completions",
        json!({"model": "anthropic/claude-3-5-haiku-20241022", "prompt": "x"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "INVALID_REQUEST");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anthropic"));
    // An alias skips a provider kind without text completions.
    let r = post(
        &gw,
        "/v1/completions",
        json!({"model": "legacy", "prompt": "x"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-modelgate-provider"], "openai");

    for (body, field) in [
        (json!({"prompt": "x"}), "model"),
        (
            json!({"model": "openai/gpt-4o-mini", "prompt": "x", "stream": true}),
            "stream",
        ),
        (
            json!({"model": "openai/gpt-4o-mini", "prompt": 5}),
            "prompt",
        ),
    ] {
        let r = post(&gw, "/v1/completions", body).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], field);
    }
}
