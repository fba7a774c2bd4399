//! The in-process `mock` provider: no network, configurable models, latency and a seeded
//! failure rate (failures are 503 `Upstream` errors; a latency beyond the entry's
//! `timeout_ms` is a `Timeout`). Replies are deterministic
//! (`Hello from mock {model}: {last user text}`) and streamed word by word, so modelgate
//! can be demonstrated or load-tested without spending money.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use modelgate_types::chat::{
    ChatChunk, ChatRequest, ChatResponse, Delta, FunctionCallDelta, Role, ToolCallDelta, Usage,
};
use modelgate_types::{Capability, MockSettings, Model, ModelStatus, ProviderKind};
use serde_json::json;

use crate::convert::{self, ResponseParts};
use crate::http::unix_now;
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

/// Context window the mock reports for its models.
pub const MOCK_CONTEXT_LENGTH: u64 = 32_768;
/// Output limit the mock reports for its models.
pub const MOCK_MAX_TOKENS: u64 = 4_096;

/// The mock adapter.
#[derive(Debug)]
pub(crate) struct MockProvider {
    name: String,
    settings: MockSettings,
    /// The entry's `timeout_ms`: a latency longer than this ends in `Timeout`, as a slow
    /// real upstream would.
    timeout: Duration,
    calls: AtomicU64,
}

impl MockProvider {
    pub(crate) fn new(name: &str, settings: MockSettings, timeout: Duration) -> Self {
        MockProvider {
            name: name.to_owned(),
            settings,
            timeout,
            calls: AtomicU64::new(0),
        }
    }

    /// Waits the configured latency (at most the timeout: a longer one is a `Timeout`),
    /// then fails with the configured probability. The n-th call's outcome depends only on
    /// the seed and n, so runs are reproducible.
    async fn call(&self) -> Result<(), ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        if self.settings.latency_ms > 0 {
            let latency = Duration::from_millis(self.settings.latency_ms);
            if tokio::time::timeout(self.timeout, tokio::time::sleep(latency))
                .await
                .is_err()
            {
                return Err(ProviderError::new(
                    &self.name,
                    ProviderErrorKind::Timeout,
                    format!(
                        "no answer within {} ms (mock latency_ms is {})",
                        self.timeout.as_millis(),
                        self.settings.latency_ms
                    ),
                ));
            }
        }
        let roll = (splitmix64(self.settings.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11)
            as f64
            / (1u64 << 53) as f64;
        if roll < self.settings.failure_rate {
            return Err(ProviderError::new(
                &self.name,
                ProviderErrorKind::Upstream,
                "injected mock failure",
            )
            .with_status(503));
        }
        Ok(())
    }

    fn check_model(&self, model: &str) -> Result<(), ProviderError> {
        if self.settings.models.iter().any(|m| m == model) {
            Ok(())
        } else {
            Err(ProviderError::new(
                &self.name,
                ProviderErrorKind::NotFound,
                format!("model '{model}' does not exist"),
            )
            .with_status(404))
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What the mock answers to a request.
enum Reply {
    Text(String),
    /// Calls the first declared tool with `{"query": <last user text>}`.
    Tool {
        name: String,
        arguments: String,
    },
}

fn reply(req: &ChatRequest) -> Reply {
    let last_user = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.text())
        .unwrap_or_default();
    let answering_tool = req.messages.last().is_some_and(|m| m.role == Role::Tool);
    if let Some(tool) = req.tools.as_ref().and_then(|t| t.first()) {
        if !answering_tool && req.tool_choice.as_ref().and_then(|c| c.as_str()) != Some("none") {
            return Reply::Tool {
                name: tool.function.name.clone(),
                arguments: json!({"query": last_user}).to_string(),
            };
        }
    }
    Reply::Text(format!("Hello from mock {}: {last_user}", req.model))
}

/// Approximate token counts: words.
fn usage(req: &ChatRequest, completion: &str) -> Usage {
    let prompt: usize = req
        .messages
        .iter()
        .map(|m| m.text().split_whitespace().count())
        .sum();
    Usage::new(
        prompt as u64,
        completion.split_whitespace().count().max(1) as u64,
    )
}

#[async_trait]
impl Provider for MockProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Mock
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        self.call().await?;
        Ok(self
            .settings
            .models
            .iter()
            .map(|id| {
                let mut m = Model::new(&self.name, id);
                m.description =
                    Some("In-process mock model: deterministic echo replies".to_owned());
                m.context_length = Some(MOCK_CONTEXT_LENGTH);
                m.max_tokens = Some(MOCK_MAX_TOKENS);
                m.supports_chat = true;
                m.input_cost = Some(0.0);
                m.output_cost = Some(0.0);
                m.status = Some(ModelStatus::Active);
                for c in [
                    Capability::Streaming,
                    Capability::ToolUse,
                    Capability::FunctionCalling,
                ] {
                    m.add_capability(c);
                }
                m
            })
            .collect())
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.check_model(&request.model)?;
        self.call().await?;
        let created = unix_now();
        let id = format!("chatcmpl-mock-{}", self.calls.load(Ordering::Relaxed));
        Ok(match reply(request) {
            Reply::Text(text) => ResponseParts {
                id,
                model: request.model.clone(),
                created,
                usage: Some(usage(request, &text)),
                text: Some(text),
                tool_calls: Vec::new(),
                reasoning: None,
                finish_reason: Some("stop".to_owned()),
            }
            .build(),
            Reply::Tool { name, arguments } => ResponseParts {
                id,
                model: request.model.clone(),
                created,
                usage: Some(usage(request, &arguments)),
                text: None,
                tool_calls: vec![modelgate_types::chat::ToolCall {
                    id: "call_mock_0".to_owned(),
                    kind: "function".to_owned(),
                    function: modelgate_types::chat::FunctionCall { name, arguments },
                }],
                reasoning: None,
                finish_reason: Some("tool_calls".to_owned()),
            }
            .build(),
        })
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.check_model(&request.model)?;
        self.call().await?;
        let created = unix_now();
        let id = format!("chatcmpl-mock-{}", self.calls.load(Ordering::Relaxed));
        let model = request.model.clone();
        let mk = |delta: Delta, finish: Option<&str>, usage: Option<Usage>| -> ChatChunk {
            convert::chunk(
                &id,
                &model,
                created,
                delta,
                finish.map(str::to_owned),
                usage,
            )
        };
        let mut chunks = vec![mk(convert::role_delta(), None, None)];
        match reply(request) {
            Reply::Text(text) => {
                let words: Vec<&str> = text.split(' ').collect();
                for (i, w) in words.iter().enumerate() {
                    let piece = if i + 1 < words.len() {
                        format!("{w} ")
                    } else {
                        (*w).to_owned()
                    };
                    chunks.push(mk(convert::text_delta(piece), None, None));
                }
                chunks.push(mk(
                    Delta::default(),
                    Some("stop"),
                    Some(usage(request, &text)),
                ));
            }
            Reply::Tool { name, arguments } => {
                let delta = Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: 0,
                        id: Some("call_mock_0".to_owned()),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(arguments.clone()),
                        }),
                    }]),
                    ..Delta::default()
                };
                chunks.push(mk(delta, None, None));
                chunks.push(mk(
                    Delta::default(),
                    Some("tool_calls"),
                    Some(usage(request, &arguments)),
                ));
            }
        }
        Ok(Box::pin(futures_util::stream::iter(
            chunks.into_iter().map(Ok),
        )))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.call().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    const LONG: Duration = Duration::from_secs(30);

    fn settings(rate: f64, seed: u64) -> MockSettings {
        MockSettings {
            models: vec!["mock-small".into()],
            latency_ms: 0,
            failure_rate: rate,
            seed,
        }
    }

    fn req(v: serde_json::Value) -> ChatRequest {
        serde_json::from_value(v).expect("request")
    }

    #[tokio::test]
    async fn deterministic_reply_and_word_stream() {
        let p = MockProvider::new("demo", settings(0.0, 1), LONG);
        let r = req(
            json!({"model": "mock-small", "messages": [{"role": "user", "content": "hi there"}]}),
        );
        let resp = p.chat(&r).await.expect("chat");
        assert_eq!(
            resp.choices[0].message.content.as_deref(),
            Some("Hello from mock mock-small: hi there")
        );
        let chunks: Vec<_> = p.chat_stream(&r).await.expect("stream").collect().await;
        let text: String = chunks
            .iter()
            .filter_map(|c| c.as_ref().ok()?.choices[0].delta.content.clone())
            .collect();
        assert_eq!(text, "Hello from mock mock-small: hi there");
        assert_eq!(chunks.len(), 1 + 6 + 1);
        let models = p.list_models().await.expect("models");
        assert_eq!(models[0].id, "mock-small");
        assert_eq!(models[0].provider, "demo");
        let e = p
            .chat(&req(json!({"model": "nope", "messages": []})))
            .await
            .expect_err("404");
        assert_eq!(e.kind, ProviderErrorKind::NotFound);
    }

    #[tokio::test]
    async fn tools_are_called() {
        let p = MockProvider::new("demo", settings(0.0, 1), LONG);
        let r = req(
            json!({"model": "mock-small", "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "lookup"}}]}),
        );
        let resp = p.chat(&r).await.expect("chat");
        let call = &resp.choices[0].message.tool_calls.as_ref().expect("calls")[0];
        assert_eq!(call.function.name, "lookup");
        assert_eq!(call.function.arguments, r#"{"query":"weather?"}"#);
        assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    }

    #[tokio::test]
    async fn seeded_failures_are_reproducible() {
        let outcomes = |seed| async move {
            let p = MockProvider::new("m", settings(0.3, seed), LONG);
            let mut v = Vec::new();
            for _ in 0..200 {
                v.push(p.health().await.is_err());
            }
            v
        };
        let a = outcomes(7).await;
        assert_eq!(a, outcomes(7).await);
        assert_ne!(a, outcomes(8).await);
        let failures = a.iter().filter(|f| **f).count();
        assert!((30..=90).contains(&failures), "{failures}");
        let p = MockProvider::new("m", settings(1.0, 0), LONG);
        let e = p.health().await.expect_err("fails");
        assert_eq!((e.kind, e.status), (ProviderErrorKind::Upstream, Some(503)));
        let p = MockProvider::new("m", settings(0.0, 0), LONG);
        for _ in 0..50 {
            assert!(p.health().await.is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_applied() {
        let mut s = settings(0.0, 0);
        s.latency_ms = 250;
        let p = MockProvider::new("m", s, LONG);
        let start = tokio::time::Instant::now();
        p.health().await.expect("ok");
        assert!(start.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn latency_beyond_the_timeout_is_a_timeout() {
        let mut s = settings(0.0, 0);
        s.latency_ms = 60_000;
        let p = MockProvider::new("m", s, Duration::from_millis(100));
        let start = tokio::time::Instant::now();
        let e = p.list_models().await.expect_err("times out");
        assert_eq!(e.kind, ProviderErrorKind::Timeout);
        assert!(e.is_retryable());
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up at the timeout"
        );
        let r = req(json!({"model": "mock-small", "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(
            p.chat(&r).await.expect_err("chat").kind,
            ProviderErrorKind::Timeout
        );
        assert!(p.chat_stream(&r).await.is_err());
    }
}
