//! The chaos and load-test APIs over real sockets against the testkit mock upstream:
//! seeded fault rates, probability 0 and 1, faults masked by retries and alias fallback,
//! provider scoping, every fault type as the client sees it, faults in discovery,
//! auto-stop, no survival across a restart, caps, admin auth, bad input; load tests at a
//! fixed rate (achieved rps, percentiles against the test's own measurement, counts
//! against the mock), live results and stop, every scenario, and the rate-limit exemption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, mock_provider, settings_with, start, start_state, Gateway};
use futures_util::StreamExt;
use modelgate_catalog::Catalog;
use modelgate_config::{ConfigSource, RouteRateLimit, Settings};
use modelgate_http::build_state;
use modelgate_http::ratelimit::{ManualClock, RateLimiter};
use modelgate_testkit::MockUpstream;
use modelgate_types::{ProviderKind, Secret};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-0123456789";
const MODEL: &str = "gpt-4o-mini";

/// Two providers, `a` and `b`, each on its own mock (so each mock's counters are one
/// provider's), with the given retry attempts and breaker switch.
fn two_providers(a: &MockUpstream, b: &MockUpstream, attempts: u32, breaker: bool) -> Settings {
    let mut s = settings_with(vec![
        ("a", mock_provider(a, ProviderKind::Openai)),
        ("b", mock_provider(b, ProviderKind::Openai)),
    ]);
    s.extensions.insert(
        "resilience".into(),
        json!({
            "retry": {"max_attempts": attempts, "base_delay_ms": 1, "max_delay_ms": 5},
            "breaker": {"enabled": breaker, "failure_threshold": 5, "cooldown_ms": 30000},
            "timeout": {"request_ms": 10000, "stream_first_chunk_ms": 10000, "stream_idle_ms": 10000}
        }),
    );
    s
}

async fn post(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(gw.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn post_raw(gw: &Gateway, path: &str, body: &'static str) -> (u16, Value) {
    let resp = client()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    let resp = client().get(gw.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// One chat reply: status, the provider that served it, the body.
struct Reply {
    status: u16,
    provider: Option<String>,
    body: Value,
}

/// `n` chat calls for `model`, 8 at a time.
async fn chats(gw: &Gateway, model: &str, n: usize) -> Vec<Reply> {
    let http = client();
    let url = gw.url("/v1/chat/completions");
    futures_util::stream::iter(0..n)
        .map(|_| {
            let req = http.post(&url).json(&chat_body(model));
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let provider = resp
                    .headers()
                    .get("x-modelgate-provider")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = resp.json().await.unwrap();
                Reply {
                    status,
                    provider,
                    body,
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await
}

fn ok_count(replies: &[Reply]) -> usize {
    replies.iter().filter(|r| r.status == 200).count()
}

fn chat_hits(mock: &MockUpstream) -> u64 {
    mock.hits_path("/chat/completions") as u64
}

fn fault(kind: &str, target: &str, probability: f64) -> Value {
    json!({"type": kind, "target": target, "probability": probability})
}

/// Starts an experiment of `faults` and returns its id.
async fn start_experiment(gw: &Gateway, faults: Vec<Value>, seed: Option<u64>) -> String {
    let mut body = json!({"experiment_name": "test", "duration_minutes": 10, "faults": faults});
    if let Some(seed) = seed {
        body["seed"] = json!(seed);
    }
    let (status, v) = post(gw, "/api/chaos/start", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "running");
    v["experiment_id"].as_str().unwrap().to_owned()
}

async fn experiment(gw: &Gateway, id: &str) -> Value {
    let (status, v) = get(gw, &format!("/api/chaos/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls `path` until `done` holds for its JSON (10 ms apart, 60 s deadline).
async fn poll(gw: &Gateway, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = get(gw, path).await;
        assert_eq!(status, 200, "{v}");
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// ---------------------------------------------------------------------------------------
// Chaos

#[tokio::test]
async fn thirty_percent_error_faults_inject_thirty_percent_and_never_touch_another_provider() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    // No retry and no breaker: every injected fault reaches the client once.
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    let mut f0 = fault("error", "a", 0.3);
    f0["error_code"] = json!(503);
    let id = start_experiment(&gw, vec![f0.clone()], Some(7)).await;

    let n = 2_000;
    let replies = chats(&gw, &format!("a/{MODEL}"), n).await;
    let failed: Vec<&Reply> = replies.iter().filter(|r| r.status != 200).collect();
    for r in &failed {
        assert_eq!(r.status, 502, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "PROVIDER_ERROR");
        assert_eq!(r.body["error"]["details"]["upstream_status"], 503);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&id), "{message}");
    }
    let injected = failed.len() as u64;
    let rate = injected as f64 / n as f64;
    assert!((rate - 0.3).abs() <= 0.03, "injected {rate}");

    // The other provider, during the same experiment: untouched.
    let others = chats(&gw, &format!("b/{MODEL}"), 200).await;
    assert_eq!(ok_count(&others), 200);

    let v = experiment(&gw, &id).await;
    let results = &v["results"];
    assert_eq!(u(&results["total_faults_injected"]), injected);
    assert_eq!(u(&results["faults"][0]["injected"]), injected);
    assert_eq!(u(&results["calls_observed"]["a"]), n as u64);
    assert!(results["calls_observed"].get("b").is_none(), "{v}");
    // What the mocks saw: every call that was not faulted, and nothing else.
    assert_eq!(chat_hits(&mock_a), n as u64 - injected);
    assert_eq!(chat_hits(&mock_b), 200);
    // Client-facing outcomes were recorded for every request.
    assert_eq!(u(&results["client_requests"]), n as u64 + 200);
    let stopped = post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    assert_eq!(stopped.0, 200);
    assert_eq!(stopped.1["status"], "stopped");

    // The same seed over the same calls injects exactly the same number of faults.
    let again = start_experiment(&gw, vec![f0], Some(7)).await;
    let replies = chats(&gw, &format!("a/{MODEL}"), n).await;
    assert_eq!((n - ok_count(&replies)) as u64, injected);
    let v = experiment(&gw, &again).await;
    assert_eq!(u(&v["results"]["total_faults_injected"]), injected);
}

#[tokio::test]
async fn probability_zero_and_one_inject_none_and_all() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    let id = start_experiment(&gw, vec![fault("error", "a", 0.0)], None).await;
    assert_eq!(ok_count(&chats(&gw, &format!("a/{MODEL}"), 300).await), 300);
    let (status, v) = post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["results"]["total_faults_injected"], 0);
    assert_eq!(v["results"]["calls_observed"]["a"], 300);
    assert_eq!(chat_hits(&mock_a), 300);

    let id = start_experiment(&gw, vec![fault("abort", "a", 1.0)], None).await;
    let replies = chats(&gw, &format!("a/{MODEL}"), 300).await;
    assert_eq!(ok_count(&replies), 0);
    assert!(replies
        .iter()
        .all(|r| r.status == 502 && r.body["error"]["details"]["error_type"] == "connect"));
    let v = experiment(&gw, &id).await;
    assert_eq!(v["results"]["total_faults_injected"], 300);
    assert_eq!(chat_hits(&mock_a), 300, "no faulted call reached the mock");
    // Stopping a stopped experiment changes nothing.
    let first = post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    let second = post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    assert_eq!(first.1["stopped_at"], second.1["stopped_at"]);
    assert_eq!(ok_count(&chats(&gw, &format!("a/{MODEL}"), 10).await), 10);
}

#[tokio::test]
async fn retries_and_alias_fallback_keep_client_success_above_99_percent() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut s = two_providers(&mock_a, &mock_b, 3, true);
    s.routing.aliases.insert(
        "resilient".into(),
        vec![format!("a/{MODEL}"), format!("b/{MODEL}")],
    );
    let gw = start(s).await;
    // Healthy traffic before: the baseline.
    assert_eq!(ok_count(&chats(&gw, "resilient", 40).await), 40);
    let (a0, b0) = (chat_hits(&mock_a), chat_hits(&mock_b));

    let mut f0 = fault("error", "a", 0.3);
    f0["error_code"] = json!(503);
    let id = start_experiment(&gw, vec![f0], Some(11)).await;
    let n = 2_000;
    let replies = chats(&gw, "resilient", n).await;
    let ok = ok_count(&replies);
    assert!(ok as f64 / n as f64 >= 0.99, "{ok}/{n} succeeded");
    let served_by_b = replies
        .iter()
        .filter(|r| r.provider.as_deref() == Some("b"))
        .count() as u64;

    let v = experiment(&gw, &id).await;
    let r = &v["results"];
    let injected = u(&r["total_faults_injected"]);
    let observed = u(&r["calls_observed"]["a"]);
    let rate = injected as f64 / observed as f64;
    assert!((rate - 0.3).abs() <= 0.03, "injected {rate} of {observed}");
    assert!(observed > n as u64, "retries made more calls than requests");
    assert_eq!(chat_hits(&mock_a) - a0, observed - injected);
    assert_eq!(chat_hits(&mock_b) - b0, served_by_b);
    assert!(r["calls_observed"].get("b").is_none());
    assert_eq!(u(&r["client_requests"]), n as u64);
    assert!(f(&r["client_success_rate"]) >= 0.99, "{r}");
    assert_eq!(r["system_degradation_detected"], false);
    assert_eq!(r["baseline_success_rate"], 1.0);

    let (_, v) = post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    assert!(v["results"]["recovery_time_seconds"].is_null());
    // A full recovery window (20 outcomes) of healthy traffic after the stop.
    assert_eq!(ok_count(&chats(&gw, "resilient", 20).await), 20);
    let v = experiment(&gw, &id).await;
    assert!(f(&v["results"]["recovery_time_seconds"]) >= 0.0, "{v}");
}

#[tokio::test]
async fn unmasked_faults_are_detected_as_degradation_and_recovery_is_measured() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    let id = start_experiment(&gw, vec![fault("error", "a", 0.5)], Some(3)).await;
    let replies = chats(&gw, &format!("a/{MODEL}"), 200).await;
    let ok = ok_count(&replies) as f64;
    let v = experiment(&gw, &id).await;
    assert_eq!(v["results"]["system_degradation_detected"], true, "{v}");
    assert_eq!(f(&v["results"]["client_success_rate"]), ok / 200.0);
    assert!(
        v["results"]["baseline_success_rate"].is_null(),
        "no traffic before"
    );
    post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    assert_eq!(ok_count(&chats(&gw, &format!("a/{MODEL}"), 19).await), 19);
    let v = experiment(&gw, &id).await;
    assert!(
        v["results"]["recovery_time_seconds"].is_null(),
        "window not full"
    );
    chats(&gw, &format!("a/{MODEL}"), 1).await;
    let v = experiment(&gw, &id).await;
    assert!(f(&v["results"]["recovery_time_seconds"]) >= 0.0, "{v}");
}

#[tokio::test]
async fn every_fault_type_reaches_the_client_as_the_real_outage_would() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    let model = format!("a/{MODEL}");
    let one = |mut fault: Value, extra: Value| {
        for (k, v) in extra.as_object().unwrap() {
            fault[k] = v.clone();
        }
        fault
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            one(fault("error", "a", 1.0), json!({"error_code": 500})),
            502,
            "PROVIDER_ERROR",
        ),
        (
            one(fault("rate_limit", "a", 1.0), json!({"duration_ms": 2000})),
            429,
            "RATE_LIMITED",
        ),
        (
            one(fault("timeout", "a", 1.0), json!({"duration_ms": 50})),
            504,
            "PROVIDER_TIMEOUT",
        ),
        (fault("abort", "a", 1.0), 502, "PROVIDER_ERROR"),
    ];
    for (f0, status, code) in cases {
        let id = start_experiment(&gw, vec![f0.clone()], None).await;
        let resp = client()
            .post(gw.url("/v1/chat/completions"))
            .json(&chat_body(&model))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{f0}");
        if status == 429 {
            assert_eq!(resp.headers()["retry-after"], "2");
        }
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        let v = post(&gw, &format!("/api/chaos/stop/{id}"), json!({}))
            .await
            .1;
        assert_eq!(v["results"]["total_faults_injected"], 1, "{v}");
        assert_eq!(v["results"]["client_success_rate"], 0.0);
    }
    assert_eq!(chat_hits(&mock_a), 0);

    // A delay slows the call but lets it through to the upstream.
    let id = start_experiment(
        &gw,
        vec![one(fault("delay", "a", 1.0), json!({"duration_ms": 30}))],
        None,
    )
    .await;
    let before = Instant::now();
    assert_eq!(ok_count(&chats(&gw, &model, 1).await), 1);
    assert!(before.elapsed() >= Duration::from_millis(30));
    assert_eq!(chat_hits(&mock_a), 1);
    post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;

    // A model-scoped fault spares other models of the same provider.
    let id = start_experiment(
        &gw,
        vec![one(fault("error", "a", 1.0), json!({"model": "gpt-4o"}))],
        None,
    )
    .await;
    assert_eq!(ok_count(&chats(&gw, &model, 5).await), 5);
    post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;

    // stream_cut: the stream starts, then ends with an error event instead of [DONE], and
    // the client-facing outcome counts as a failure.
    let id = start_experiment(
        &gw,
        vec![one(
            fault("stream_cut", "a", 1.0),
            json!({"severity": "high"}),
        )],
        None,
    )
    .await;
    let mut body = chat_body(&model);
    body["stream"] = json!(true);
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("data: {\"error\""), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let v = experiment(&gw, &id).await;
    assert_eq!(v["results"]["total_faults_injected"], 1);
    assert_eq!(v["results"]["client_requests"], 1);
    assert_eq!(v["results"]["client_success_rate"], 0.0);
    post(&gw, &format!("/api/chaos/stop/{id}"), json!({})).await;
    // Without the fault, the stream completes and counts as a success.
    let id = start_experiment(&gw, vec![fault("stream_cut", "b", 1.0)], None).await;
    let text = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let v = experiment(&gw, &id).await;
    assert_eq!(v["results"]["client_success_rate"], 1.0);
}

#[tokio::test]
async fn faults_hit_discovery_too_and_the_last_good_list_is_kept() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    gw.state.discovery.refresh(None).await;
    let lists = mock_a.hits_path("/models");
    let id = start_experiment(&gw, vec![fault("error", "a", 1.0)], None).await;
    let (status, _) = post(
        &gw,
        "/api/models/refresh",
        json!({"providers": ["a"], "force": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        mock_a.hits_path("/models"),
        lists,
        "the fault stopped the call"
    );
    let (_, v) = get(&gw, "/api/models?provider=a&limit=1000").await;
    let models = v["models"].as_array().unwrap();
    assert!(!models.is_empty());
    assert!(models.iter().all(|m| m["stale"] == true), "{v}");
    let (_, v) = get(&gw, "/api/models?provider=b&limit=1000").await;
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["stale"] == false));
    let v = experiment(&gw, &id).await;
    assert_eq!(v["results"]["total_faults_injected"], 1);
}

#[tokio::test]
async fn an_experiment_stops_by_itself_and_does_not_survive_a_restart() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let settings = two_providers(&mock_a, &mock_b, 1, false);
    let gw = start(settings.clone()).await;
    let (status, v) = post(
        &gw,
        "/api/chaos/start",
        json!({"experiment_name": "short", "duration_minutes": 0.01,
               "faults": [fault("error", "a", 1.0)]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["configuration"]["duration"], "0.6s");
    let id = v["experiment_id"].as_str().unwrap().to_owned();
    let done = poll(
        &gw,
        &format!("/api/chaos/{id}"),
        "the experiment to end",
        |v| v["status"] == "completed",
    )
    .await;
    // It ended at its scheduled end, not when someone looked.
    assert_eq!(done["stopped_at"], done["ends_at"]);
    assert_eq!(ok_count(&chats(&gw, &format!("a/{MODEL}"), 20).await), 20);
    let (_, list) = get(&gw, "/api/chaos/experiments").await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["running"], 0);
    assert_eq!(list["experiments"][0]["status"], "completed");

    // A long one, then a restart: gone, and nothing is injected.
    let long = start_experiment(&gw, vec![fault("error", "a", 1.0)], None).await;
    gw.stop().await;
    let gw = start(settings).await;
    let (status, v) = get(&gw, &format!("/api/chaos/{long}")).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    assert_eq!(v["error"]["details"]["experiment_id"], long.as_str());
    let (_, list) = get(&gw, "/api/chaos/experiments").await;
    assert_eq!(list["count"], 0);
    assert_eq!(ok_count(&chats(&gw, &format!("a/{MODEL}"), 5).await), 5);
}

#[tokio::test]
async fn admin_auth_caps_disabled_unknown_ids_and_methods() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut s = two_providers(&mock_a, &mock_b, 1, false);
    s.server.admin_token = Some(Secret::new(ADMIN));
    s.extensions
        .insert("chaos".into(), json!({"max_concurrent_experiments": 1}));
    let gw = start(s).await;
    let body = json!({"experiment_name": "x", "duration_minutes": 1,
                      "faults": [fault("delay", "*", 0.1)]});
    let http = client();
    let send = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut r = http.request(method, gw.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    };
    use reqwest::Method;
    let routes = [
        (Method::POST, "/api/chaos/start"),
        (Method::POST, "/api/chaos/stop/x"),
        (Method::GET, "/api/chaos/experiments"),
        (Method::GET, "/api/chaos/x"),
        (Method::POST, "/api/load-test/start"),
        (Method::GET, "/api/load-test/results/x"),
        (Method::POST, "/api/load-test/stop/x"),
        (Method::GET, "/api/load-test"),
    ];
    for (method, path) in &routes {
        for token in [None, Some("wrong-token-0123456789")] {
            let resp = send(method.clone(), path, token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} {token:?}");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["error"]["code"], "UNAUTHORIZED");
        }
    }
    let admin = |method: Method, path: &str| send(method, path, Some(ADMIN));
    let resp = admin(Method::POST, "/api/chaos/start")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The concurrency cap.
    let resp = admin(Method::POST, "/api/chaos/start")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "CONFLICT");
    assert_eq!(v["error"]["details"]["max_concurrent_experiments"], 1);
    // Unknown ids.
    for (method, path, key) in [
        (
            Method::POST,
            "/api/chaos/stop/chaos_exp_nope",
            "experiment_id",
        ),
        (Method::GET, "/api/chaos/chaos_exp_nope", "experiment_id"),
        (
            Method::GET,
            "/api/load-test/results/load_test_nope",
            "test_id",
        ),
        (
            Method::POST,
            "/api/load-test/stop/load_test_nope",
            "test_id",
        ),
    ] {
        let resp = admin(method, path).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "NOT_FOUND");
        assert!(v["error"]["details"][key]
            .as_str()
            .unwrap()
            .ends_with("_nope"));
    }
    // Wrong methods.
    for (method, path, allow) in [
        (Method::GET, "/api/chaos/start", "POST"),
        (Method::GET, "/api/chaos/stop/x", "POST"),
        (Method::POST, "/api/chaos/experiments", "GET, HEAD"),
        (Method::DELETE, "/api/chaos/x", "GET, HEAD"),
        (Method::GET, "/api/load-test/start", "POST"),
        (Method::POST, "/api/load-test", "GET, HEAD"),
    ] {
        let resp = admin(method, path).send().await.unwrap();
        assert_eq!(resp.status(), 405, "{path}");
        assert_eq!(resp.headers()["allow"], allow);
    }

    // Disabled in configuration: 403 saying so.
    let mut s = two_providers(&mock_a, &mock_b, 1, false);
    s.extensions
        .insert("chaos".into(), json!({"enabled": false}));
    s.extensions
        .insert("load_test".into(), json!({"enabled": false}));
    let off = start(s).await;
    let (status, v) = post(&off, "/api/chaos/start", body.clone()).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "FORBIDDEN");
    assert_eq!(v["error"]["details"]["setting"], "chaos.enabled");
    let (status, v) = post(&off, "/api/load-test/start", json!({})).await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["details"]["setting"], "load_test.enabled");
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field() {
    let (mock_a, mock_b) = (MockUpstream::start().await, MockUpstream::start().await);
    let gw = start(two_providers(&mock_a, &mock_b, 1, false)).await;
    let exp = |faults: Value, minutes: Value| json!({"experiment_name": "bad", "duration_minutes": minutes, "faults": faults});
    let chaos_cases = [
        (
            exp(json!([fault("error", "a", 1.5)]), json!(1)),
            "faults[0].probability",
        ),
        (
            exp(json!([fault("meteor", "a", 0.1)]), json!(1)),
            "faults[0].type",
        ),
        (
            exp(json!([fault("error", "nope", 0.1)]), json!(1)),
            "faults[0].target",
        ),
        (
            exp(json!([fault("error", "a", 0.1)]), json!(61)),
            "duration_minutes",
        ),
        (
            exp(json!([fault("error", "a", 0.1)]), json!(0)),
            "duration_minutes",
        ),
        (exp(json!([]), json!(1)), "faults"),
        (
            exp(
                json!([{"type": "error", "target": "a", "probability": "high"}]),
                json!(1),
            ),
            "faults[0].probability",
        ),
        (
            exp(
                json!([{"type": "delay", "target": "a", "duration_ms": 600000}]),
                json!(1),
            ),
            "faults[0].duration_ms",
        ),
        (
            exp(
                json!([{"type": "error", "target": "a", "error_code": 200}]),
                json!(1),
            ),
            "faults[0].error_code",
        ),
        (
            exp(
                json!([{"type": "error", "target": "a", "sevrity": "low"}]),
                json!(1),
            ),
            "faults[0].sevrity",
        ),
        (
            json!({"duration_minutes": 1, "faults": []}),
            "experiment_name",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in chaos_cases {
        let (status, v) = post(&gw, "/api/chaos/start", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_REQUEST");
        assert_eq!(v["error"]["details"]["field"], field, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(field));
    }
    let load_cases = [
        (json!({"target_rps": 0}), "target_rps"),
        (json!({"target_rps": 1e6}), "target_rps"),
        (json!({"target_rps": "fast"}), "target_rps"),
        (json!({"duration_minutes": 31}), "duration_minutes"),
        (json!({"tier": "ludicrous"}), "tier"),
        (json!({"providers": ["a", "nope"]}), "providers[1]"),
        (json!({"scenarios": ["fly"]}), "scenarios[0]"),
        (json!({"scenarios": ["chat_completion"]}), "models"),
        (json!({"url": "http://example.com"}), "url"),
    ];
    for (body, field) in load_cases {
        let (status, v) = post(&gw, "/api/load-test/start", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"]["details"]["field"], field, "{body}: {v}");
    }
    for path in ["/api/chaos/start", "/api/load-test/start"] {
        let (status, v) = post_raw(&gw, path, "{\"experiment_name\": ").await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["details"]["field"], "body");
    }
    let (status, v) = post_raw(&gw, "/api/chaos/start", "").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["details"]["field"], "body");
    let (_, list) = get(&gw, "/api/chaos/experiments").await;
    assert_eq!(list["count"], 0, "nothing was started");
    let (_, list) = get(&gw, "/api/load-test").await;
    assert_eq!(list["count"], 0, "nothing was started");
}

// ---------------------------------------------------------------------------------------
// Load tests

/// One provider `m` on `mock` with rate limiting off.
async fn load_gateway(mock: &MockUpstream) -> Gateway {
    start(settings_with(vec![(
        "m",
        mock_provider(mock, ProviderKind::Openai),
    )]))
    .await
}

/// Responses with `status` on `route` (a template), from the gateway's Prometheus text.
async fn route_count(gw: &Gateway, route: &str, status: u16) -> u64 {
    let text = client()
        .get(gw.url("/metrics/prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("modelgate_http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test]
async fn a_fixed_rate_load_test_reports_target_rps_and_percentiles_matching_a_client() {
    let mock = MockUpstream::start().await;
    let latency = Duration::from_millis(25);
    mock.set_latency(ProviderKind::Openai, latency);
    let gw = load_gateway(&mock).await;
    let (status, v) = post(
        &gw,
        "/api/load-test/start",
        json!({"tier": "medium", "duration_minutes": 0.05, "target_rps": 40,
               "providers": ["m"], "models": [MODEL], "scenarios": ["chat_completion"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "running");
    assert_eq!(v["configuration"]["users"], 100);
    assert_eq!(v["configuration"]["duration"], "3s");
    assert_eq!(v["configuration"]["target_rps"], 40.0);
    let id = v["test_id"].as_str().unwrap().to_owned();

    // The test's own measurement of the same request, meanwhile.
    let http = client();
    let mut own = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let resp = http
            .post(gw.url("/v1/chat/completions"))
            .json(&chat_body(&format!("m/{MODEL}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        own.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    own.sort_by(f64::total_cmp);

    let path = format!("/api/load-test/results/{id}");
    let v = poll(&gw, &path, "the load test to complete", |v| {
        v["status"] == "completed"
    })
    .await;
    let r = &v["results"];
    assert_eq!(u(&r["total_requests"]), 120, "{v}");
    assert_eq!(u(&r["successful_requests"]), 120, "{v}");
    assert_eq!(u(&r["failed_requests"]), 0);
    assert_eq!(u(&r["dropped_requests"]), 0);
    assert_eq!(f(&r["error_rate"]), 0.0);
    assert_eq!(r["status_codes"], json!({"200": 120}));
    let rps = f(&r["requests_per_second"]);
    assert!((rps - 40.0).abs() <= 40.0 * 0.05, "achieved {rps} rps");
    assert_eq!(f(&v["duration_seconds"]), 3.0);
    // Every scheduled request reached the mock, as did the test's own 30.
    assert_eq!(chat_hits(&mock), 120 + 30);
    let m = &v["provider_breakdown"]["m"];
    assert_eq!(u(&m["requests"]), 120, "{v}");
    assert_eq!(f(&m["success_rate"]), 1.0);

    // Percentiles: ordered, above the upstream's latency, and the median close to what
    // the test measured itself for the same request at the same time.
    let floor = latency.as_secs_f64() * 1000.0;
    let (p50, p95, p99, max, avg) = (
        f(&r["p50_response_time_ms"]),
        f(&r["p95_response_time_ms"]),
        f(&r["p99_response_time_ms"]),
        f(&r["max_response_time_ms"]),
        f(&r["average_response_time_ms"]),
    );
    assert!(
        floor <= p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
        "{r}"
    );
    assert!(floor <= avg && avg <= max, "{r}");
    assert!(f(&m["avg_response_time_ms"]) >= floor);
    let own_p50 = percentile(&own, 0.5);
    assert!(own_p50 >= floor);
    let ratio = p50 / own_p50;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "load test p50 {p50} ms vs own p50 {own_p50} ms"
    );
}

#[tokio::test]
async fn live_results_stop_and_every_scenario_send_real_requests() {
    let mock = MockUpstream::start().await;
    let gw = load_gateway(&mock).await;
    gw.state.discovery.refresh(None).await;
    // Load the tokenizer once, so the first condense request is not a stall. (The tier's
    // user count caps requests in flight; a stall beyond it drops requests by design.)
    let (status, v) = post(
        &gw,
        "/api/condense",
        json!({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 10}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(
        &gw,
        "/api/load-test/start",
        json!({"tier": "medium", "duration_minutes": 1, "target_rps": 20,
               "providers": ["m"], "models": [MODEL],
               "scenarios": ["chat_completion", "model_discovery", "search", "condense"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["test_id"].as_str().unwrap().to_owned();
    let mut scenarios: Vec<&str> = v["configuration"]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scenarios.sort_unstable();
    assert_eq!(
        scenarios,
        ["chat_completion", "condense", "model_discovery", "search"]
    );
    // The cap on concurrent tests (default 1).
    let (status, v) = post(&gw, "/api/load-test/start", json!({})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "CONFLICT");

    let path = format!("/api/load-test/results/{id}");
    let live = poll(&gw, &path, "live results", |v| {
        v["results"]["successful_requests"].as_u64() >= Some(12)
    })
    .await;
    assert_eq!(live["status"], "running", "{live}");
    let (status, stopped) = post(&gw, &format!("/api/load-test/stop/{id}"), json!({})).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    let done = poll(&gw, &path, "in-flight requests to drain", |v| {
        v["results"]["in_flight"] == 0
    })
    .await;
    let r = &done["results"];
    let total = u(&r["total_requests"]);
    assert!((12..1200).contains(&total), "{done}");
    assert_eq!(u(&r["successful_requests"]), total, "{done}");
    assert_eq!(r["status_codes"], json!({"200": total}));
    // Each scenario was a real request to its own route, in rotation.
    assert_eq!(chat_hits(&mock), total.div_ceil(4));
    for (k, route) in [
        "/v1/chat/completions",
        "/api/models",
        "/api/models/search",
        "/api/condense",
    ]
    .iter()
    .enumerate()
    {
        // Plus the warm-up request on /api/condense.
        let want = (total + 3 - k as u64) / 4 + u64::from(*route == "/api/condense");
        assert_eq!(route_count(&gw, route, 200).await, want, "{route}");
    }
    let (_, list) = get(&gw, "/api/load-test").await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["running"], 0);
    assert_eq!(list["tests"][0]["test_id"], id.as_str());
    // The slot is free again.
    let (status, v) = post(
        &gw,
        "/api/load-test/start",
        json!({"tier": "light", "duration_minutes": 0.01, "target_rps": 5}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn load_test_requests_skip_rate_limits_and_present_the_api_key() {
    const KEY: &str = "sk-load-test-client-key";
    let mock = MockUpstream::start().await;
    let mut s = settings_with(vec![("m", mock_provider(&mock, ProviderKind::Openai))]);
    s.server.api_keys = vec![Secret::new(KEY)];
    s.rate_limit.enabled = true;
    s.rate_limit.requests_per_minute = 60_000;
    s.rate_limit.burst = 10_000;
    s.rate_limit.routes.insert(
        "/api/models".into(),
        RouteRateLimit {
            requests_per_minute: 1,
            burst: 3,
        },
    );
    s.rate_limit.routes.insert(
        "/v1".into(),
        RouteRateLimit {
            requests_per_minute: 1,
            burst: 3,
        },
    );
    let mut state = build_state(s, ConfigSource::Defaults, Catalog::embedded(), |_| None).unwrap();
    // A clock that never moves: a spent bucket never refills during the test.
    state.ratelimit = Arc::new(RateLimiter::with_clock(
        &state.settings.rate_limit,
        Arc::new(ManualClock::default()),
    ));
    let gw = start_state(state).await;

    let (status, v) = post(
        &gw,
        "/api/load-test/start",
        json!({"tier": "medium", "duration_minutes": 0.05, "target_rps": 20,
               "providers": ["m"], "models": [MODEL],
               "scenarios": ["chat_completion", "model_discovery"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["test_id"].as_str().unwrap().to_owned();
    let v = poll(
        &gw,
        &format!("/api/load-test/results/{id}"),
        "the load test to complete",
        |v| v["status"] == "completed",
    )
    .await;
    let r = &v["results"];
    assert_eq!(u(&r["total_requests"]), 60, "{v}");
    assert_eq!(r["status_codes"], json!({"200": 60}), "{v}");
    assert_eq!(chat_hits(&mock), 30);

    // An ordinary client of the same host is limited on the same routes...
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            client()
                .get(gw.url("/api/models"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // ...and a forged token buys nothing.
    let resp = client()
        .get(gw.url("/api/models"))
        .header("x-modelgate-load-test", "0123456789abcdef0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // /v1 without the key is refused: the load test's chats did present it.
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body(&format!("m/{MODEL}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
