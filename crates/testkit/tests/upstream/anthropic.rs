//! Anthropic flavor: x-api-key + anthropic-version, paginated models, Messages API and its
//! SSE events, tool_use / tool_result.

use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

const K: ProviderKind = ProviderKind::Anthropic;
const VERSION: (&str, &str) = ("anthropic-version", "2023-06-01");

fn headers() -> Vec<(&'static str, &'static str)> {
    vec![("x-api-key", KEY), VERSION]
}

#[tokio::test]
async fn auth_and_version_errors_are_anthropic_bodies() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/models", mock.base_url(K));
    let (status, body) = get_json(&url, &[("x-api-key", "sk-ant-wrong"), VERSION]).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error");
    assert_eq!(
        body["error"],
        json!({"type": "authentication_error", "message": "invalid x-api-key"})
    );
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    // A bearer token is not how Anthropic authenticates.
    let (status, body) = get_json(&url, &[("authorization", &bearer()), VERSION]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    let (status, body) = get_json(&url, &[("x-api-key", KEY)]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );
}

#[tokio::test]
async fn paginates_models_with_after_id_to_the_end() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(K, 2);
    let all = mock.models(K);
    assert_eq!(all.len(), 5);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            None => format!("{}/v1/models?limit=1000", mock.base_url(K)),
            Some(a) => format!("{}/v1/models?limit=1000&after_id={a}", mock.base_url(K)),
        };
        let (status, body) = get_json(&url, &headers()).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        for m in data {
            assert_eq!(m["type"], "model");
            assert!(m["display_name"].is_string());
            assert!(m["created_at"].as_str().unwrap().ends_with('Z'));
            // The current ModelInfo: limits, every capability key, lifecycle.
            assert!(m["max_input_tokens"].is_u64() && m["max_tokens"].is_u64());
            for cap in [
                "batch",
                "citations",
                "code_execution",
                "context_management",
                "effort",
                "image_input",
                "pdf_input",
                "server_tools",
                "structured_outputs",
                "thinking",
            ] {
                assert!(m["capabilities"][cap]["supported"].is_boolean(), "{cap}");
            }
            assert!(["active", "deprecated"].contains(&m["lifecycle"].as_str().unwrap()));
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(body["first_id"], data[0]["id"]);
        assert_eq!(body["last_id"], data[data.len() - 1]["id"]);
        if !body["has_more"].as_bool().unwrap() {
            break;
        }
        after = body["last_id"].as_str().map(str::to_owned);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    assert_eq!(mock.hits_path("/anthropic/v1/models"), 3);
}

fn messages_body(stream: bool) -> Value {
    json!({"model": "claude-3-5-haiku-20241022", "max_tokens": 100, "stream": stream,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "describe this"}]}]})
}

#[tokio::test]
async fn messages_and_stream_agree() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages", mock.base_url(K));
    let (status, body) = post_json(&url, &headers(), &messages_body(false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["stop_reason"], "end_turn");
    let text = body["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(
        text,
        "Hello from anthropic claude-3-5-haiku-20241022: describe this"
    );
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 6);

    let (status, raw) = post(&url, &headers(), &messages_body(true)).await;
    assert_eq!(status, 200);
    let events = parse_sse(&raw);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    for e in &events {
        assert_eq!(
            e.json()["type"],
            e.event.as_deref().unwrap(),
            "data.type matches the event name"
        );
    }
    let streamed: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(streamed, text);
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 6);
    assert_eq!(events[0].json()["message"]["usage"]["input_tokens"], 5);
}

#[tokio::test]
async fn tool_use_streams_input_json_and_tool_result_answers() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages", mock.base_url(K));
    let tools =
        json!([{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}]);
    let req = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "tools": tools,
        "messages": [{"role": "user", "content": "weather in Oslo"}]});
    let (_, body) = post_json(&url, &headers(), &req).await;
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"query": "weather in Oslo"}));

    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    let (_, raw) = post(&url, &headers(), &sreq).await;
    let events = parse_sse(&raw);
    assert_eq!(events[1].json()["content_block"]["type"], "tool_use");
    let partial: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            e.json()["delta"]["partial_json"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"query": "weather in Oslo"})
    );

    let follow = json!({"model": "claude-sonnet-4-20250514", "max_tokens": 50, "tools": tools, "messages": [
        {"role": "user", "content": "weather in Oslo"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"],
            "content": [{"type": "text", "text": "cold"}]}]}]});
    let (_, body) = post_json(&url, &headers(), &follow).await;
    assert_eq!(body["content"][0]["text"], "Tool said: cold");
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn validation_and_unknown_model() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages", mock.base_url(K));
    let (status, body) = post_json(
        &url,
        &headers(),
        &json!({"model": "claude-3-opus-20240229",
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "max_tokens: Field required");
    let (status, body) = post_json(
        &url,
        &headers(),
        &json!({"model": "claude-9", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        json!({"type": "not_found_error", "message": "model: claude-9"})
    );
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn injected_overload_and_mid_stream_error_event() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/messages", mock.base_url(K));
    mock.fail_next(K, 1, 529);
    let (status, body) = post_json(&url, &headers(), &messages_body(false)).await;
    assert_eq!(status, 529);
    assert_eq!(
        (&body["type"], &body["error"]),
        (
            &json!("error"),
            &json!({"type": "overloaded_error", "message": "Overloaded"})
        )
    );
    assert!(body["request_id"].is_string());
    mock.error_stream_after(K, Some(4));
    let (status, raw) = post(&url, &headers(), &messages_body(true)).await;
    assert_eq!(status, 200);
    let events = parse_sse(&raw);
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].event.as_deref(), Some("error"));
    assert_eq!(
        events[4].json(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        "a stream's error event carries no request_id"
    );
}
