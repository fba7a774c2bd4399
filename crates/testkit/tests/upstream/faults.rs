//! Injected faults: cut streams, 429 + Retry-After, latency, hangs, failures, error rates,
//! malformed bodies, stream pacing and client-side cancellation.

use std::time::Duration;

use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

const K: ProviderKind = ProviderKind::Openai;

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "one two three four five"}]})
}

async fn send_chat(mock: &MockUpstream, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", mock.base_url(K)))
        .header("authorization", bearer())
        .json(&chat(stream))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cut_stream_closes_without_terminator() {
    let mock = MockUpstream::start().await;
    mock.cut_stream_after(K, Some(3));
    let resp = send_chat(&mock, true).await;
    assert_eq!(resp.status().as_u16(), 200);
    let (body, errored) = read_until_end(resp).await;
    assert!(errored, "the connection is aborted, not ended cleanly");
    let events = parse_sse(&body);
    assert_eq!(events.len(), 3);
    assert!(!body.contains("[DONE]"));
    // Other flavors are unaffected; clearing it restores full streams.
    mock.cut_stream_after(K, None);
    let (body, errored) = read_until_end(send_chat(&mock, true).await).await;
    assert!(!errored);
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        mock.streams_cancelled(),
        0,
        "a server-side cut is not a client cancel"
    );
}

#[tokio::test]
async fn cut_stream_applies_to_every_format() {
    let mock = MockUpstream::start().await;
    for kind in [
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Cohere,
    ] {
        mock.cut_stream_after(kind, Some(2));
    }
    let anthropic = client()
        .post(format!(
            "{}/v1/messages",
            mock.base_url(ProviderKind::Anthropic)
        ))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "claude-3-opus-20240229", "max_tokens": 9, "stream": true,
            "messages": [{"role": "user", "content": "hi there"}]}),
        )
        .send()
        .await
        .unwrap();
    let gemini = client()
        .post(format!(
            "{}/v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse",
            mock.base_url(ProviderKind::Gemini)
        ))
        .header("x-goog-api-key", KEY)
        .json(&json!({"contents": [{"parts": [{"text": "hi there"}]}]}))
        .send()
        .await
        .unwrap();
    let cohere = client()
        .post(format!("{}/v2/chat", mock.base_url(ProviderKind::Cohere)))
        .bearer_auth(KEY)
        .json(&json!({"model": "command-r-08-2024", "stream": true, "messages": [{"role": "user", "content": "hi there"}]}))
        .send()
        .await
        .unwrap();
    for resp in [anthropic, gemini, cohere] {
        let (body, errored) = read_until_end(resp).await;
        assert!(errored);
        assert_eq!(parse_sse(&body).len(), 2, "{body}");
    }
}

#[tokio::test]
async fn rate_limit_next_sends_429_with_retry_after_then_recovers() {
    let mock = MockUpstream::start().await;
    mock.rate_limit_next(K, 2, 3);
    for _ in 0..2 {
        let resp = send_chat(&mock, false).await;
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "requests");
    }
    assert_eq!(send_chat(&mock, false).await.status().as_u16(), 200);
    assert_eq!(mock.hits(K), 3);
}

#[tokio::test]
async fn fail_next_uses_real_bodies_then_recovers() {
    let mock = MockUpstream::start().await;
    mock.fail_next(K, 1, 500);
    mock.fail_next(K, 1, 503);
    let r = send_chat(&mock, false).await;
    assert_eq!(r.status().as_u16(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(
        body["error"]["message"],
        "The server had an error while processing your request. Sorry about that!"
    );
    assert_eq!(send_chat(&mock, false).await.status().as_u16(), 503);
    assert_eq!(send_chat(&mock, false).await.status().as_u16(), 200);

    // A request with a bad key is rejected before it can consume an injected failure.
    mock.fail_next(ProviderKind::Cohere, 1, 500);
    let url = format!("{}/v1/models", mock.base_url(ProviderKind::Cohere));
    assert_eq!(get_json(&url, &[]).await.0, 401);
    let (status, body) = get_json(&url, &[("authorization", &bearer())]).await;
    assert_eq!(status, 500);
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn error_rate_is_reproducible_for_a_seed() {
    let mock = MockUpstream::start().await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        mock.set_error_rate(K, 0.5, 502, 42);
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(send_chat(&mock, false).await.status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let failures = runs[0].iter().filter(|s| **s == 502).count();
    assert!((3..=17).contains(&failures), "{failures} of 20 at rate 0.5");
    mock.set_error_rate(K, 0.0, 502, 0);
    assert_eq!(send_chat(&mock, false).await.status().as_u16(), 200);
}

#[tokio::test]
async fn malformed_body_is_200_and_not_json() {
    let mock = MockUpstream::start().await;
    mock.set_malformed(K, true);
    let r = send_chat(&mock, false).await;
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let r = send_chat(&mock, true).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&parse_sse(&text)[0].data).is_err());
}

#[tokio::test(start_paused = true)]
async fn latency_delays_each_response() {
    let mock = MockUpstream::start().await;
    mock.set_latency(K, Duration::from_secs(30));
    let started = tokio::time::Instant::now();
    assert_eq!(send_chat(&mock, false).await.status().as_u16(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Other flavors are not delayed by it.
    let started = tokio::time::Instant::now();
    let (status, _) = get_json(
        &format!("{}/api/tags", mock.base_url(ProviderKind::Ollama)),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn stream_interval_paces_events() {
    let mock = MockUpstream::start().await;
    mock.set_stream_interval(K, Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let (body, errored) = read_until_end(send_chat(&mock, true).await).await;
    assert!(!errored);
    let gaps = parse_sse(&body).len() as u32 - 1;
    assert!(started.elapsed() >= Duration::from_secs(10) * gaps);
}

#[tokio::test]
async fn hang_times_out_the_client_and_does_not_block_shutdown() {
    let mock = MockUpstream::start().await;
    mock.set_hang(K, true);
    let err = client_with_timeout(Duration::from_millis(200))
        .post(format!("{}/chat/completions", mock.base_url(K)))
        .header("authorization", bearer())
        .json(&chat(false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(mock.hits(K), 1, "the request was accepted");

    // A request still hanging when the mock is dropped fails instead of blocking.
    let url = format!("{}/chat/completions", mock.base_url(K));
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .header("authorization", bearer())
            .json(&chat(false))
            .send()
            .await
    });
    assert!(eventually(|| mock.hits(K) == 2).await);
    drop(mock);
    let outcome = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err());
}

#[tokio::test]
async fn client_disconnect_counts_as_cancelled_stream() {
    let mock = MockUpstream::start().await;
    mock.set_stream_interval(K, Duration::from_millis(20));
    let mut resp = send_chat(&mock, true).await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(resp);
    assert!(eventually(|| mock.streams_cancelled() == 1).await);
    // A stream read to the end is not cancelled.
    mock.set_stream_interval(K, Duration::ZERO);
    read_until_end(send_chat(&mock, true).await).await;
    assert_eq!(mock.streams_cancelled(), 1);
}

#[tokio::test]
async fn auth_can_be_switched_off_and_on() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/models", mock.base_url(ProviderKind::Vllm));
    assert_eq!(get_json(&url, &[]).await.0, 401);
    mock.set_require_auth(ProviderKind::Vllm, false);
    assert_eq!(get_json(&url, &[]).await.0, 200);
    mock.set_require_auth(ProviderKind::Ollama, true);
    let (status, _) = get_json(
        &format!("{}/api/tags", mock.base_url(ProviderKind::Ollama)),
        &[],
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn start_on_a_fixed_address_and_index() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mock = MockUpstream::start_on(addr).await.unwrap();
    assert_eq!(mock.addr(), addr);
    assert_eq!(mock.url(), format!("http://{addr}"));
    let (status, index) = get_json(&mock.url(), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(index["base_paths"]["gemini"], "/gemini");
    assert!(
        MockUpstream::start_on(addr).await.is_err(),
        "the port is taken"
    );
}

#[tokio::test]
async fn redirect_next_answers_307_with_location_then_recovers() {
    let mock = MockUpstream::start().await;
    let no_follow = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/models", mock.base_url(K));
    mock.redirect_next(K, 1, "http://localhost:9/elsewhere");
    // Before auth, as a proxy in front of the API would: no key needed to see it.
    let r = no_follow.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(r.headers()["location"], "http://localhost:9/elsewhere");
    let r = no_follow.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(mock.hits(K), 2);
}

#[tokio::test]
async fn peak_in_flight_counts_concurrent_requests() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/models", mock.base_url(K));
    assert_eq!(get_json(&url, &[("authorization", &bearer())]).await.0, 200);
    assert_eq!(mock.peak_in_flight(K), 1);
    mock.set_hang(K, true);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { client().get(url).send().await })
        })
        .collect();
    assert!(eventually(|| mock.hits(K) == 4).await, "all three arrive");
    assert_eq!(mock.peak_in_flight(K), 3, "three held at once");
    assert_eq!(mock.peak_in_flight(ProviderKind::Gemini), 0, "per flavor");
    for t in tasks {
        t.abort();
    }
    mock.reset();
    assert_eq!(mock.peak_in_flight(K), 0);
}
