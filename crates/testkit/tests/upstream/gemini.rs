//! Gemini flavor: Google's key errors, pageToken pagination, generateContent, SSE stream with
//! CRLF framing, functionCall / functionResponse.

use modelgate_testkit::MockUpstream;
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

const K: ProviderKind = ProviderKind::Gemini;

fn key() -> Vec<(&'static str, &'static str)> {
    vec![("x-goog-api-key", KEY)]
}

#[tokio::test]
async fn bad_key_is_400_invalid_argument_and_missing_key_403() {
    let mock = MockUpstream::start().await;
    let url = format!("{}/v1beta/models", mock.base_url(K));
    let (status, body) = get_json(&url, &[("x-goog-api-key", "AIzaWRONG")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let (status, body) = get_json(&url, &[]).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn key_in_query_is_accepted_but_recorded() {
    let mock = MockUpstream::start().await;
    let (status, _) = get_json(
        &format!("{}/v1beta/models?key={KEY}", mock.base_url(K)),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let reqs = mock.requests(K);
    assert!(reqs[0].query.as_deref().unwrap().contains("key="));
}

#[tokio::test]
async fn paginates_with_page_tokens_to_the_end() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(K, 2);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &token {
            None => format!("{}/v1beta/models?pageSize=1000", mock.base_url(K)),
            Some(t) => format!(
                "{}/v1beta/models?pageSize=1000&pageToken={t}",
                mock.base_url(K)
            ),
        };
        let (status, body) = get_json(&url, &key()).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for m in body["models"].as_array().unwrap() {
            assert!(m["name"].as_str().unwrap().starts_with("models/"));
            assert!(m["inputTokenLimit"].is_u64());
            assert!(m["supportedGenerationMethods"].is_array());
            names.push(m["name"].as_str().unwrap().to_owned());
        }
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 5);
    assert_eq!(names[0], "models/gemini-2.5-pro");
    let (_, first) = get_json(
        &format!("{}/v1beta/models?pageSize=1000", mock.base_url(K)),
        &key(),
    )
    .await;
    assert_eq!(first["models"][0]["thinking"], true);
    assert_eq!(first["models"][0]["outputTokenLimit"], 65_536);
}

fn gen_body() -> Value {
    json!({"systemInstruction": {"parts": [{"text": "be kind"}]},
        "contents": [{"role": "user", "parts": [{"text": "tell me a joke"}]}]})
}

#[tokio::test]
async fn generate_and_sse_stream_agree() {
    let mock = MockUpstream::start().await;
    let base = mock.base_url(K);
    let (status, body) = post_json(
        &format!("{base}/v1beta/models/gemini-1.5-pro:generateContent"),
        &key(),
        &gen_body(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cand = &body["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(cand["content"]["role"], "model");
    let text = cand["content"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "Hello from gemini gemini-1.5-pro: tell me a joke");
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 6);
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 8);
    assert_eq!(body["usageMetadata"]["totalTokenCount"], 14);

    let (status, raw) = post(
        &format!("{base}/v1beta/models/gemini-1.5-pro:streamGenerateContent?alt=sse"),
        &key(),
        &gen_body(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        raw.contains("\r\n\r\n"),
        "Google frames SSE events with CRLF"
    );
    let events = parse_sse(&raw);
    assert!(events.len() > 3);
    let streamed: String = events
        .iter()
        .map(|e| {
            e.json()["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(streamed, text);
    let last = events.last().unwrap().json();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 8);

    // Without alt=sse the stream is one JSON array.
    let (_, raw) = post(
        &format!("{base}/v1beta/models/gemini-1.5-pro:streamGenerateContent"),
        &key(),
        &gen_body(),
    )
    .await;
    let arr: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(arr.as_array().unwrap().len(), events.len());
}

#[tokio::test]
async fn function_call_and_response() {
    let mock = MockUpstream::start().await;
    let url = format!(
        "{}/v1beta/models/gemini-2.0-flash:generateContent",
        mock.base_url(K)
    );
    let tools =
        json!([{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "OBJECT"}}]}]);
    let req =
        json!({"tools": tools, "contents": [{"role": "user", "parts": [{"text": "find cats"}]}]});
    let (_, body) = post_json(&url, &key(), &req).await;
    let part = &body["candidates"][0]["content"]["parts"][0];
    assert_eq!(
        part["functionCall"],
        json!({"name": "lookup", "args": {"query": "find cats"}})
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    let follow = json!({"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "find cats"}]},
        {"role": "model", "parts": [part]},
        {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"result": "3 cats"}}}]}]});
    let (_, body) = post_json(&url, &key(), &follow).await;
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["text"],
        "Tool said: 3 cats"
    );
}

#[tokio::test]
async fn unknown_model_and_rate_limit_use_google_errors() {
    let mock = MockUpstream::start().await;
    let base = mock.base_url(K);
    let (status, body) = post_json(
        &format!("{base}/v1beta/models/gemini-9:generateContent"),
        &key(),
        &gen_body(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["status"], "NOT_FOUND");
    mock.rate_limit_next(K, 1, 7);
    let resp = client()
        .post(format!(
            "{base}/v1beta/models/gemini-1.5-pro:generateContent"
        ))
        .header("x-goog-api-key", KEY)
        .json(&gen_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    // Google puts the delay in a RetryInfo detail, not in a Retry-After header.
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"]["code"], 429);
    let retry = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo detail");
    assert_eq!(retry["retryDelay"], "7s");
}
