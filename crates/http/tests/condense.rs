//! The condensation API over HTTP: sync and async requests, bad input, a full queue, and
//! `summarize` through a provider of the testkit mock (and its fallback).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{client, get_json, mock_provider, settings_with, start};
use modelgate_config::Settings;
use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

fn conversation(turns: usize) -> Value {
    let mut msgs = vec![json!({"role": "system", "content": "You are a helpful assistant."})];
    for i in 0..turns {
        msgs.push(json!({"role": "user", "content": format!(
            "Question {i}: how do rivers shape valleys over long periods of time, and why does erosion accelerate during floods in region {i}?")}));
        msgs.push(json!({"role": "assistant", "content": format!(
            "Answer {i}: rivers cut downwards and sideways; floods carry more sediment, which abrades the bed faster in region {i}.")}));
    }
    Value::Array(msgs)
}

async fn post(url: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client().post(url).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap())
}

async fn wait_for(gw: &common::Gateway, id: &str, state: &str) -> Value {
    for _ in 0..500 {
        let (code, v) = get_json(&gw.url(&format!("/api/condense/status/{id}"))).await;
        assert_eq!(code, 200, "{v}");
        if v["status"] == state {
            return v;
        }
        assert_ne!(v["status"], "failed", "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never reached {state}");
}

#[tokio::test]
async fn sync_condense_fits_the_budget_and_hits_the_cache() {
    let gw = start(Settings::default()).await;
    let body = json!({"messages": conversation(40), "max_tokens": 300, "model": "gpt-4o", "strategy": "truncate"});
    let (code, _, v) = post(&gw.url("/api/condense"), &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "success");
    assert!(v["original_tokens"].as_u64().unwrap() > 300);
    assert!(v["condensed_tokens"].as_u64().unwrap() <= 300);
    assert!(v["compression_ratio"].as_f64().unwrap() < 1.0);
    assert!(v["processing_time_ms"].is_u64());
    assert_eq!(v["cache_hit"], false);
    assert_eq!(v["strategy_used"], "truncate");
    assert_eq!(v["tokenizer"], "o200k_base");
    assert!(v["summary"].is_string());
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system", "system message kept");
    let (_, _, again) = post(&gw.url("/api/condense"), &body).await;
    assert_eq!(again["cache_hit"], true);
    assert_eq!(again["messages"], v["messages"]);
}

#[tokio::test]
async fn bad_input_is_a_clear_400() {
    let gw = start(Settings::default()).await;
    let url = gw.url("/api/condense");
    let cases = [
        (json!({"messages": [], "max_tokens": 100}), "messages"),
        (
            json!({"messages": conversation(1), "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"messages": conversation(1), "max_tokens": -5}),
            "max_tokens",
        ),
        (json!({"messages": conversation(1)}), "max_tokens"),
        (
            json!({"messages": conversation(1), "max_tokens": 100, "strategy": "magic"}),
            "strategy",
        ),
        (json!({"messages": "nope", "max_tokens": 100}), "body"),
    ];
    for (body, field) in cases {
        let (code, _, v) = post(&url, &body).await;
        assert_eq!(code, 400, "{body}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_REQUEST", "{v}");
        assert_eq!(v["error"]["details"]["field"], field, "{body}: {v}");
    }
    let (_, _, v) = post(
        &url,
        &json!({"messages": conversation(1), "max_tokens": 100, "strategy": "magic"}),
    )
    .await;
    assert_eq!(
        v["error"]["details"]["valid_strategies"],
        json!(["truncate", "middle_out", "extractive", "summarize"])
    );
    let (code, _, v) = post(
        &gw.url("/api/condense/async?priority=urgent"),
        &json!({"messages": conversation(1), "max_tokens": 100}),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"]["details"]["field"], "priority");
    let resp = client()
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (code, v) = get_json(&gw.url("/api/condense/status/req_unknown")).await;
    assert_eq!(code, 404, "{v}");
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn async_jobs_complete_and_report_their_result() {
    let gw = start(Settings::default()).await;
    let body = json!({"messages": conversation(30), "max_tokens": 250, "strategy": "middle_out"});
    let (code, _, ticket) = post(&gw.url("/api/condense/async?priority=high"), &body).await;
    assert_eq!(code, 202, "{ticket}");
    let id = ticket["request_id"].as_str().unwrap().to_owned();
    assert_eq!(ticket["priority"], "high");
    assert!(ticket["estimated_time_ms"].is_u64());
    let done = wait_for(&gw, &id, "completed").await;
    assert!(done["result"]["condensed_tokens"].as_u64().unwrap() <= 250);
    assert_eq!(done["result"]["strategy_used"], "middle_out");
    assert!(done["completed_at"].is_string());
    assert!(done["processing_time_ms"].is_u64());

    // `?async=true` on the sync endpoint is the same thing.
    let (code, _, ticket) = post(&gw.url("/api/condense?async=true"), &body).await;
    assert_eq!(code, 202, "{ticket}");
}

/// Settings whose `summarize` strategy uses the mock's OpenAI flavor.
fn summarizing(mock: &MockUpstream, extra: Value) -> Settings {
    let mut s = settings_with(vec![("openai", mock_provider(mock, ProviderKind::Openai))]);
    let mut condense = json!({
        "summarize_provider": "openai",
        "summarize_model": "gpt-4o-mini",
        "summarize_timeout_ms": 5000,
    });
    for (k, v) in extra.as_object().unwrap() {
        condense[k] = v.clone();
    }
    s.extensions.insert("condense".into(), condense);
    s.extensions.insert(
        "resilience".into(),
        json!({"retry": {"max_attempts": 1}, "breaker": {"enabled": false}}),
    );
    s
}

#[tokio::test]
async fn summarize_uses_the_provider_and_falls_back_to_extractive() {
    let mock = MockUpstream::start().await;
    // The mock echoes its prompt, so keep the summarizer's input small enough that the
    // echoed "summary" fits the budget.
    let gw = start(summarizing(
        &mock,
        json!({"summarize_max_input_tokens": 200}),
    ))
    .await;
    let body = json!({"messages": conversation(30), "max_tokens": 400, "model": "gpt-4o", "strategy": "summarize"});
    let (code, _, v) = post(&gw.url("/api/condense"), &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["strategy_used"], "summarize", "{v}");
    assert!(v["summary"].as_str().unwrap().contains("Hello from"), "{v}");
    assert!(mock.hits_path("/chat/completions") >= 1);
    assert!(v["condensed_tokens"].as_u64().unwrap() <= 400);

    mock.set_error_rate(ProviderKind::Openai, 1.0, 500, 7);
    let body = json!({"messages": conversation(31), "max_tokens": 400, "model": "gpt-4o", "strategy": "summarize"});
    let (code, _, v) = post(&gw.url("/api/condense"), &body).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["strategy_used"], "extractive", "{v}");
    assert!(v["fallback_reason"].is_string(), "{v}");
    assert!(!v.to_string().contains(MockUpstream::API_KEY));
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let mock = MockUpstream::start().await;
    mock.set_latency(ProviderKind::Openai, Duration::from_secs(3));
    let gw = start(summarizing(
        &mock,
        json!({"workers": 1, "queue_capacity": 1}),
    ))
    .await;
    let url = gw.url("/api/condense/async");
    let job = |i: usize| json!({"messages": conversation(20 + i), "max_tokens": 300, "strategy": "summarize"});
    let (code, _, first) = post(&url, &job(0)).await;
    assert_eq!(code, 202, "{first}");
    wait_for(&gw, first["request_id"].as_str().unwrap(), "processing").await;
    let (code, _, _) = post(&url, &job(1)).await;
    assert_eq!(code, 202);
    let (code, headers, v) = post(&url, &job(2)).await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "SERVICE_UNAVAILABLE");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(
        v["error"]["details"]["retry_after"]
            .as_u64()
            .or(v["error"]["retry_after"].as_u64()),
        Some(retry),
        "{v}"
    );
}
