//! Helpers shared by the mock-upstream tests: a client, SSE parsing, JSON requests.

use std::time::Duration;

use modelgate_testkit::MockUpstream;
use serde_json::Value;

pub const KEY: &str = MockUpstream::API_KEY;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn client_with_timeout(t: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(t)
        .build()
        .unwrap()
}

/// One parsed SSE event: its `event:` name (if any) and its `data:` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("bad SSE json {:?}: {e}", self.data))
    }
}

/// Parses an SSE body (LF or CRLF framing); comment-only events are skipped.
pub fn parse_sse(body: &str) -> Vec<Sse> {
    let normalized = body.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            (event.is_some() || !data.is_empty()).then(|| Sse {
                event,
                data: data.join("\n"),
            })
        })
        .collect()
}

/// POSTs JSON with headers and returns (status, body text).
pub async fn post(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    let mut req = client().post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let (status, text) = post(url, headers, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not json ({e}): {text}")),
    )
}

pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not json ({e}): {text}")),
    )
}

pub fn bearer() -> String {
    format!("Bearer {KEY}")
}

/// Reads a streamed body until the server aborts it; returns what arrived and whether it
/// ended in an error (a cut connection) rather than cleanly.
pub async fn read_until_end(mut resp: reqwest::Response) -> (String, bool) {
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            Ok(None) => return (String::from_utf8(buf).unwrap(), false),
            Err(_) => return (String::from_utf8(buf).unwrap(), true),
        }
    }
}

/// Polls `f` until it is true or a generous deadline passes.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
