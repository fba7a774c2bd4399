//! OpenAI flavor: auth bodies, model list, chat and streamed chat, tools, completions.

use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

const K: ProviderKind = ProviderKind::Openai;

#[tokio::test]
async fn rejects_missing_and_wrong_keys_with_openai_bodies() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/models", mock.base_url(K));
    let (status, body) = get_json(&url, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], Value::Null);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You didn't provide an API key."));

    let (status, body) = get_json(
        &url,
        &[("authorization", "Bearer sk-proj-secretsecret1234")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error": {
            "message": "Incorrect API key provided: sk-*****************1234. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
    );
    assert!(!body.to_string().contains("secretsecret"));
}

#[tokio::test]
async fn lists_models_in_openai_shape() {
    let mock = MockUpstream::start().await;
    mock.set_models(
        K,
        vec![MockModel::new("gpt-4o").created(1).owned_by("system")],
    );
    let (status, body) = get_json(
        &format!("{}/models", mock.base_url(K)),
        &[("authorization", &bearer())],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"}]})
    );
    // Every OpenAI-compatible kind shares this flavor.
    assert_eq!(mock.base_url(ProviderKind::Deepseek), mock.base_url(K));
    assert_eq!(
        mock.base_url(ProviderKind::Mock),
        format!("{}/openai/v1", mock.url())
    );
    let (status, one) = get_json(
        &format!("{}/models/gpt-4o", mock.base_url(K)),
        &[("authorization", &bearer())],
    )
    .await;
    assert_eq!((status, one["id"].as_str()), (200, Some("gpt-4o")));
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is   rust?"}
    ]})
}

#[tokio::test]
async fn chat_round_trip_and_stream_match() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/chat/completions", mock.base_url(K));
    let auth = bearer();
    let (status, body) = post_json(&url, &[("authorization", &auth)], &chat_body(false)).await;
    assert_eq!(status, 200, "{body}");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "Hello from openai gpt-4o: what is   rust?");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 7);
    assert_eq!(body["usage"]["total_tokens"], 12);

    let mut req = chat_body(true);
    req["stream_options"] = json!({"include_usage": true});
    let (status, raw) = post(&url, &[("authorization", &auth)], &req).await;
    assert_eq!(status, 200);
    let events = parse_sse(&raw);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Sse::json).collect();
    assert!(chunks.len() > 3, "one word per event");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["stop"]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    assert!(chunks[1]["usage"].is_null());
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/chat/completions", mock.base_url(K));
    let (_, raw) = post(&url, &[("authorization", &bearer())], &chat_body(true)).await;
    let events = parse_sse(&raw);
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| e.json().get("usage").is_none()));
}

#[tokio::test]
async fn tool_call_then_tool_result() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/chat/completions", mock.base_url(K));
    let auth = bearer();
    let tools = json!([{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
                       {"type": "function", "function": {"name": "other"}}]);
    let req = json!({"model": "gpt-4o", "tools": tools, "messages": [{"role": "user", "content": "weather in Paris"}]});
    let (_, body) = post_json(&url, &[("authorization", &auth)], &req).await;
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(call["function"]["name"], "search");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": "weather in Paris"}));

    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    let (_, raw) = post(&url, &[("authorization", &auth)], &sreq).await;
    let events = parse_sse(&raw);
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Sse::json).collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "search"
    );
    let streamed_args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        streamed_args,
        call["function"]["arguments"].as_str().unwrap()
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let follow = json!({"model": "gpt-4o", "tools": tools, "messages": [
        {"role": "user", "content": "weather in Paris"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}
    ]});
    let (_, body) = post_json(&url, &[("authorization", &auth)], &follow).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Tool said: sunny, 21C"
    );
}

#[tokio::test]
async fn unknown_model_is_openai_404() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/chat/completions", mock.base_url(K));
    let req = json!({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = post_json(&url, &[("authorization", &bearer())], &req).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(
        body["error"]["message"],
        "The model `gpt-9` does not exist or you do not have access to it."
    );
}

#[tokio::test]
async fn legacy_completions_plain_and_streamed() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/completions", mock.base_url(K));
    let auth = bearer();
    let req = json!({"model": "gpt-4o-mini", "prompt": "say hi"});
    let (status, body) = post_json(&url, &[("authorization", &auth)], &req).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "text_completion");
    let text = body["choices"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(text, "Hello from openai gpt-4o-mini: say hi");
    let (_, raw) = post(
        &url,
        &[("authorization", &auth)],
        &json!({"model": "gpt-4o-mini", "prompt": "say hi", "stream": true}),
    )
    .await;
    let events = parse_sse(&raw);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let streamed: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| e.json()["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, text);
}

#[tokio::test]
async fn records_requests_and_counts_hits() {
    let mock = MockUpstream::start().await;
    let auth = bearer();
    get_json(
        &format!("{}/models", mock.base_url(ProviderKind::Together)),
        &[("authorization", &auth)],
    )
    .await;
    post(
        &format!("{}/chat/completions", mock.base_url(K)),
        &[("authorization", &auth)],
        &chat_body(false),
    )
    .await;
    assert_eq!(mock.hits(K), 2);
    assert_eq!(mock.hits(ProviderKind::Anthropic), 0);
    assert_eq!(mock.hits_path("/models"), 1);
    assert_eq!(mock.hits_path("/openai/v1/chat/completions"), 1);
    let reqs = mock.requests(K);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/openai/v1/models");
    assert_eq!(reqs[0].header("Authorization"), Some(auth.as_str()));
    assert_eq!(reqs[1].json().unwrap()["model"], "gpt-4o");
    mock.reset();
    assert_eq!(mock.hits(K), 0);
    assert!(mock.requests(K).is_empty());
}
