//! Test support: a fake `Provider` that plays a script of outcomes, one step per call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_types::chat::{
    ChatChunk, ChatMessage, ChatRequest, ChatResponse, ChunkChoice, Delta, Role,
};
use modelgate_types::{Model, ProviderKind};

use crate::lock;

/// What the next call does. Once the script is exhausted every call succeeds.
#[derive(Debug, Clone)]
pub enum Step {
    Ok,
    Err(ProviderError),
    Delay(Duration),
    /// For `chat_stream`: items, each yielded after its delay.
    Stream(Vec<(Duration, Result<ChatChunk, ProviderError>)>),
}

#[derive(Debug)]
pub struct Fake {
    name: String,
    script: Mutex<VecDeque<Step>>,
    pub calls: AtomicUsize,
}

impl Fake {
    pub fn new(name: &str, script: Vec<Step>) -> Arc<Fake> {
        Arc::new(Fake {
            name: name.to_owned(),
            script: Mutex::new(script.into()),
            calls: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn step(
        &self,
    ) -> Result<Option<Vec<(Duration, Result<ChatChunk, ProviderError>)>>, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = lock(&self.script).pop_front().unwrap_or(Step::Ok);
        match step {
            Step::Ok => Ok(None),
            Step::Err(e) => Err(e),
            Step::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            Step::Stream(items) => Ok(Some(items)),
        }
    }
}

pub fn err(kind: ProviderErrorKind, status: u16) -> ProviderError {
    ProviderError::new("p", kind, "scripted").with_status(status)
}

pub fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![ChatMessage::new(Role::User, "hi")],
        stream: None,
        temperature: None,
        top_p: None,
        max_tokens: None,
        max_completion_tokens: None,
        stop: None,
        tools: None,
        tool_choice: None,
        response_format: None,
        extra: Default::default(),
    }
}

pub fn request_for(model: &str) -> ChatRequest {
    let mut r = request();
    r.model = model.into();
    r
}

pub fn chunk(text: &str) -> ChatChunk {
    ChatChunk {
        id: "c".into(),
        object: "chat.completion.chunk".into(),
        created: 0,
        model: "m".into(),
        choices: vec![ChunkChoice {
            index: 0,
            delta: Delta {
                content: Some(text.into()),
                ..Default::default()
            },
            finish_reason: None,
            extra: Default::default(),
        }],
        usage: None,
        extra: Default::default(),
    }
}

fn response() -> ChatResponse {
    serde_json::from_value(serde_json::json!({
        "id": "r", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]
    }))
    .unwrap_or_else(|e| panic!("fixture: {e}"))
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Mock
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        self.step().await.map(|_| Vec::new())
    }

    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.step().await.map(|_| response())
    }

    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let items = self.step().await?.unwrap_or_else(|| {
            ["a", "b", "c"]
                .iter()
                .map(|t| (Duration::ZERO, Ok(chunk(t))))
                .collect()
        });
        Ok(Box::pin(futures_util::stream::unfold(
            VecDeque::from(items),
            |mut q| async move {
                let (d, item) = q.pop_front()?;
                if !d.is_zero() {
                    tokio::time::sleep(d).await;
                }
                Some((item, q))
            },
        )))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.step().await.map(|_| ())
    }
}
