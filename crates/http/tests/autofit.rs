//! Auto-fit in `/v1/chat/completions`: a conversation larger than the target model's
//! context window (known from discovery) is condensed with `middle_out` before it is
//! forwarded, when the request (`"transforms": ["middle-out"]`) or `condense.auto_fit`
//! asks for it; the response says so in `X-Modelgate-Condensed`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{client, mock_provider, settings_with, start, Gateway};
use modelgate_condense::TokenCounter;
use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::chat::ChatMessage;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

/// Context window of the small model the vLLM mock serves in these tests.
const WINDOW: u64 = 1_024;
const MODEL: &str = "tiny-ctx";

async fn gateway(mock: &MockUpstream, auto_fit: bool) -> Gateway {
    mock.add_model(
        ProviderKind::Vllm,
        MockModel::new(MODEL).context_length(WINDOW),
    );
    let mut s = settings_with(vec![
        ("local", mock_provider(mock, ProviderKind::Vllm)),
        ("router", mock_provider(mock, ProviderKind::Openrouter)),
    ]);
    s.extensions
        .insert("condense".into(), json!({ "auto_fit": auto_fit }));
    let gw = start(s).await;
    gw.state.discovery.refresh(None).await;
    gw
}

/// A conversation of about `turns * 60` tokens: a system prompt, then numbered turns.
fn long_conversation(turns: usize) -> Vec<Value> {
    let mut messages = vec![json!({"role": "system", "content": "You are a careful assistant."})];
    for i in 0..turns {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        let text = format!(
            "Turn {i}: the quick brown fox jumps over the lazy dog while the committee \
             reviews item number {i} of the agenda and records every decision in the minutes."
        );
        messages.push(json!({"role": role, "content": text}));
    }
    messages.push(json!({"role": "user", "content": "What was decided last?"}));
    messages
}

struct Reply {
    status: u16,
    condensed: Option<String>,
    body: Value,
}

async fn chat(gw: &Gateway, body: Value) -> Reply {
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let condensed = resp
        .headers()
        .get("x-modelgate-condensed")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let body = if text.starts_with('{') {
        serde_json::from_str(&text).unwrap()
    } else {
        Value::String(text)
    };
    Reply {
        status,
        condensed,
        body,
    }
}

/// The body of the last chat call `kind`'s mock received.
fn forwarded(mock: &MockUpstream, kind: ProviderKind) -> Value {
    mock.requests(kind)
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.ends_with("/chat/completions"))
        .and_then(|r| r.json())
        .expect("a forwarded chat request")
}

fn header_field(h: &str, name: &str) -> usize {
    h.split("; ")
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {h}"))
        .parse()
        .unwrap()
}

fn tokens(messages: &Value) -> usize {
    let messages: Vec<ChatMessage> = serde_json::from_value(messages.clone()).unwrap();
    TokenCounter::for_model(Some(MODEL))
        .unwrap()
        .count_messages(&messages)
}

#[tokio::test]
async fn middle_out_transform_condenses_an_oversized_conversation() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, false).await;
    let messages = long_conversation(60);
    assert!(
        tokens(&json!(messages)) > WINDOW as usize,
        "the fixture must overflow"
    );
    let r = chat(
        &gw,
        json!({"model": format!("local/{MODEL}"), "max_tokens": 100,
               "transforms": ["middle-out"], "messages": messages}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let h = r.condensed.expect("X-Modelgate-Condensed");
    assert!(h.starts_with("middle_out; "), "{h}");
    assert_eq!(header_field(&h, "context_length"), WINDOW as usize);
    let original = header_field(&h, "original_tokens");
    let condensed = header_field(&h, "condensed_tokens");
    assert!(condensed < original, "{h}");
    assert!(
        condensed <= WINDOW as usize - 100,
        "{h}: must leave room for max_tokens"
    );

    let sent = forwarded(&mock, ProviderKind::Vllm);
    assert!(
        sent.get("transforms").is_none(),
        "transforms is not forwarded: {sent}"
    );
    let sent_messages = sent["messages"].as_array().unwrap();
    assert!(sent_messages.len() < messages.len());
    // The beginning and the end survive; the middle is dropped.
    assert_eq!(sent_messages[0], messages[0]);
    assert_eq!(sent_messages.last(), messages.last());
    assert_eq!(
        tokens(&sent["messages"]),
        condensed,
        "header counts what was sent"
    );
    assert!(r.body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("What was decided last?"));
}

#[tokio::test]
async fn without_a_request_or_config_nothing_is_condensed() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, false).await;
    let messages = long_conversation(60);
    let r = chat(
        &gw,
        json!({"model": format!("local/{MODEL}"), "messages": messages}),
    )
    .await;
    assert!(r.condensed.is_none());
    let sent = forwarded(&mock, ProviderKind::Vllm);
    assert_eq!(sent["messages"].as_array().unwrap().len(), messages.len());
}

#[tokio::test]
async fn config_auto_fit_applies_and_an_empty_transforms_opts_out() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, true).await;
    let messages = long_conversation(60);
    let model = format!("local/{MODEL}");

    let r = chat(&gw, json!({"model": model, "messages": messages})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.condensed.is_some(),
        "condense.auto_fit applies without transforms"
    );
    assert!(
        forwarded(&mock, ProviderKind::Vllm)["messages"]
            .as_array()
            .unwrap()
            .len()
            < messages.len()
    );

    let r = chat(
        &gw,
        json!({"model": model, "transforms": [], "messages": messages}),
    )
    .await;
    assert!(r.condensed.is_none(), "\"transforms\": [] opts out");
    let sent = forwarded(&mock, ProviderKind::Vllm);
    assert_eq!(sent["messages"].as_array().unwrap().len(), messages.len());

    // A conversation that fits is forwarded unchanged.
    let short = json!([{"role": "user", "content": "hi"}]);
    let r = chat(&gw, json!({"model": model, "messages": short})).await;
    assert_eq!(r.status, 200);
    assert!(r.condensed.is_none());
    assert_eq!(forwarded(&mock, ProviderKind::Vllm)["messages"], short);
}

#[tokio::test]
async fn streaming_requests_are_fitted_too() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, false).await;
    let messages = long_conversation(60);
    let r = chat(
        &gw,
        json!({"model": format!("local/{MODEL}"), "stream": true,
               "transforms": ["middle-out"], "messages": messages}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.condensed.is_some());
    let text = r.body.as_str().unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let sent = forwarded(&mock, ProviderKind::Vllm);
    assert_eq!(sent["stream"], true);
    assert!(sent["messages"].as_array().unwrap().len() < messages.len());
}

#[tokio::test]
async fn openrouter_receives_transforms_itself() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, false).await;
    let model = mock.models(ProviderKind::Openrouter)[0].id.clone();
    let r = chat(
        &gw,
        json!({"model": format!("router/{model}"), "transforms": ["middle-out"],
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = forwarded(&mock, ProviderKind::Openrouter);
    assert_eq!(sent["transforms"], json!(["middle-out"]));
}

#[tokio::test]
async fn malformed_transforms_are_a_400_naming_the_field() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, false).await;
    let model = format!("local/{MODEL}");
    for transforms in [json!("middle-out"), json!(["squash"]), json!([1])] {
        let r = chat(
            &gw,
            json!({"model": model, "transforms": transforms,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(r.status, 400, "{transforms}: {}", r.body);
        assert_eq!(r.body["error"]["details"]["field"], "transforms");
    }
    assert!(mock
        .requests(ProviderKind::Vllm)
        .iter()
        .all(|r| !r.path.ends_with("/chat/completions")));
}
