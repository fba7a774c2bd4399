//! Cohere flavor: bearer auth bodies, page_token pagination, v2 chat and its typed stream.

use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

const K: ProviderKind = ProviderKind::Cohere;

#[tokio::test]
async fn auth_errors_are_cohere_bodies() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1/models", mock.base_url(K));
    let (status, body) = get_json(&url, &[("authorization", "Bearer nope")]).await;
    assert_eq!(
        (status, body),
        (401, json!({"message": "invalid api token"}))
    );
    let (status, body) = get_json(&url, &[]).await;
    assert_eq!(
        (status, body),
        (401, json!({"message": "no api key supplied"}))
    );
}

#[tokio::test]
async fn paginates_with_next_page_token() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(K, 3);
    let auth = bearer();
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &token {
            None => format!("{}/v1/models?page_size=1000", mock.base_url(K)),
            Some(t) => format!(
                "{}/v1/models?page_size=1000&page_token={t}",
                mock.base_url(K)
            ),
        };
        let (status, body) = get_json(&url, &[("authorization", &auth)]).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for m in body["models"].as_array().unwrap() {
            assert!(m["endpoints"].is_array());
            assert!(m["context_length"].is_u64());
            assert_eq!(m["finetuned"], false);
            assert_eq!(m["is_deprecated"], false);
            assert!(m["features"].is_array() || m["features"].is_null());
            names.push(m["name"].as_str().unwrap().to_owned());
        }
        match body.get("next_page_token").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(names.len(), 4);
    let (_, embed) = get_json(
        &format!("{}/v1/models?endpoint=embed", mock.base_url(K)),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(embed["models"].as_array().unwrap().len(), 1);
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "command-r-plus-08-2024", "stream": stream, "messages": [
        {"role": "system", "content": "short answers"},
        {"role": "user", "content": [{"type": "text", "text": "name a colour"}]}]})
}

#[tokio::test]
async fn v2_chat_and_stream_agree() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v2/chat", mock.base_url(K));
    let auth = bearer();
    let (status, body) = post_json(&url, &[("authorization", &auth)], &chat_body(false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["finish_reason"], "COMPLETE");
    assert_eq!(body["message"]["role"], "assistant");
    let text = body["message"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        text,
        "Hello from cohere command-r-plus-08-2024: name a colour"
    );
    assert_eq!(body["usage"]["tokens"]["input_tokens"], 5);
    assert_eq!(body["usage"]["billed_units"]["output_tokens"], 7);

    let (_, raw) = post(&url, &[("authorization", &auth)], &chat_body(true)).await;
    let events = parse_sse(&raw);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(names[0], "message-start");
    assert_eq!(names[1], "content-start");
    assert_eq!(&names[names.len() - 2..], ["content-end", "message-end"]);
    let streamed: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content-delta"))
        .map(|e| {
            e.json()["delta"]["message"]["content"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(streamed, text);
    let end = events.last().unwrap().json();
    assert_eq!(end["type"], "message-end");
    assert_eq!(end["delta"]["finish_reason"], "COMPLETE");
    assert_eq!(end["delta"]["usage"]["tokens"]["output_tokens"], 7);
}

#[tokio::test]
async fn tool_calls_plain_and_streamed_then_tool_result() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v2/chat", mock.base_url(K));
    let auth = bearer();
    let tools = json!([{"type": "function", "function": {"name": "web_search", "parameters": {}}}]);
    let req = json!({"model": "command-a-03-2025", "tools": tools,
        "messages": [{"role": "user", "content": "latest news"}]});
    let (_, body) = post_json(&url, &[("authorization", &auth)], &req).await;
    assert_eq!(body["finish_reason"], "TOOL_CALL");
    let call = &body["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "web_search");
    assert_eq!(call["function"]["arguments"], r#"{"query":"latest news"}"#);

    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    let (_, raw) = post(&url, &[("authorization", &auth)], &sreq).await;
    let events = parse_sse(&raw);
    let start = events
        .iter()
        .find(|e| e.event.as_deref() == Some("tool-call-start"))
        .unwrap()
        .json();
    assert_eq!(
        start["delta"]["message"]["tool_calls"]["function"]["name"],
        "web_search"
    );
    let args: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("tool-call-delta"))
        .map(|e| {
            e.json()["delta"]["message"]["tool_calls"]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(args, r#"{"query":"latest news"}"#);
    assert!(events
        .iter()
        .any(|e| e.event.as_deref() == Some("tool-call-end")));
    assert_eq!(
        events.last().unwrap().json()["delta"]["finish_reason"],
        "TOOL_CALL"
    );

    let follow = json!({"model": "command-a-03-2025", "tools": tools, "messages": [
        {"role": "user", "content": "latest news"},
        {"role": "assistant", "tool_calls": [call], "tool_plan": "search"},
        {"role": "tool", "tool_call_id": call["id"], "content": [{"type": "document", "document": {"data": "rain tomorrow"}}]}]});
    let (_, body) = post_json(&url, &[("authorization", &auth)], &follow).await;
    assert_eq!(
        body["message"]["content"][0]["text"],
        "Tool said: rain tomorrow"
    );
}

#[tokio::test]
async fn unknown_model_is_cohere_404() {
    let mock = MockUpstream::start().await;
    let req = json!({"model": "command-z", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = post_json(
        &format!("{}/v2/chat", mock.base_url(K)),
        &[("authorization", &bearer())],
        &req,
    )
    .await;
    assert_eq!(status, 404);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("model 'command-z' not found"));
}
