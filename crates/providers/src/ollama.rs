//! Ollama: models from `GET /api/tags`, enriched by `POST /api/show` per model (bounded
//! concurrency) with the context length and capabilities; chat through Ollama's
//! OpenAI-compatible `/v1/chat/completions`.

use async_trait::async_trait;
use futures_util::StreamExt;
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Capability, Model, ProviderKind};
use reqwest::Method;
use serde_json::{json, Value};

use crate::http::{Upstream, WireError};
use crate::openai;
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

/// `/api/show` calls in flight at once.
pub const SHOW_CONCURRENCY: usize = 4;

/// The Ollama adapter. A key, if configured, is sent as a bearer token (for a proxy in
/// front of Ollama); Ollama itself needs none.
#[derive(Debug)]
pub(crate) struct OllamaProvider {
    up: Upstream,
}

impl OllamaProvider {
    pub(crate) fn new(up: Upstream) -> Self {
        OllamaProvider { up }
    }

    fn authed(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, ProviderError> {
        let rb = self.up.request(method, &self.up.url(path));
        self.up.with_key(rb, "authorization", "Bearer ")
    }

    async fn tags(&self) -> Result<Value, ProviderError> {
        self.up.json(self.authed(Method::GET, "/api/tags")?).await
    }

    async fn show(&self, model: &str) -> Result<Value, ProviderError> {
        let rb = self
            .authed(Method::POST, "/api/show")?
            .json(&json!({"model": model}));
        self.up.json(rb).await
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Ollama
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let tags = self.tags().await?;
        let models = parse_tags(&self.up.name, &tags).map_err(|e| self.up.wire(e))?;
        let shown: Vec<(Model, Result<Value, ProviderError>)> =
            futures_util::stream::iter(models.into_iter().map(|m| async move {
                let show = self.show(&m.id).await;
                (m, show)
            }))
            .buffered(SHOW_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::with_capacity(shown.len());
        for (mut m, show) in shown {
            match show {
                Ok(v) => apply_show(&mut m, &v),
                // The upstream as a whole is failing: report it, do not serve half a list.
                Err(e)
                    if matches!(
                        e.kind,
                        ProviderErrorKind::Auth
                            | ProviderErrorKind::Timeout
                            | ProviderErrorKind::Connect
                            | ProviderErrorKind::RateLimited
                    ) =>
                {
                    return Err(e)
                }
                Err(e) => {
                    tracing::warn!(provider = %self.up.name, model = %m.id, error = %e, "ollama /api/show failed; listing the model without its details");
                }
            }
            out.push(m);
        }
        Ok(out)
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        openai::chat_pass_through(
            &self.up,
            &self.up.url("/v1/chat/completions"),
            "authorization",
            "Bearer ",
            request,
        )
        .await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        openai::stream_pass_through(
            &self.up,
            &self.up.url("/v1/chat/completions"),
            "authorization",
            "Bearer ",
            request,
        )
        .await
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.tags().await.map(|_| ())
    }

    async fn completion(&self, body: Value) -> Result<Value, ProviderError> {
        let rb = self.authed(Method::POST, "/v1/completions")?.json(&body);
        self.up.json(rb).await
    }
}

/// Parses `GET /api/tags`. Before `/api/show` answers, a model is assumed to be a chat
/// model unless its name or family marks it as an embedding model.
pub(crate) fn parse_tags(provider: &str, body: &Value) -> Result<Vec<Model>, WireError> {
    let list = body
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::bad_response("tag list has no 'models' array"))?;
    Ok(list
        .iter()
        .filter_map(|v| {
            let id = v
                .get("model")
                .or_else(|| v.get("name"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())?;
            let mut m = Model::new(provider, id);
            if let Some(n) = v.get("name").and_then(Value::as_str) {
                m.name = n.to_owned();
            }
            m.family = v
                .pointer("/details/family")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let family = m.family.as_deref().unwrap_or("");
            let embedding = id.contains("embed") || family.ends_with("bert");
            m.supports_chat = !embedding;
            m.supports_completion = !embedding;
            if embedding {
                m.add_capability(Capability::Embeddings);
            }
            Some(m)
        })
        .collect())
}

/// Applies `POST /api/show`: `model_info["<arch>.context_length"]` and `capabilities`
/// (`completion` → chat and completion, `tools`, `vision`, `embedding`, `thinking`).
pub(crate) fn apply_show(m: &mut Model, v: &Value) {
    if let Some(info) = v.get("model_info").and_then(Value::as_object) {
        let arch = info.get("general.architecture").and_then(Value::as_str);
        let exact = arch.and_then(|a| info.get(&format!("{a}.context_length")));
        let any = || {
            info.iter()
                .find(|(k, _)| k.ends_with(".context_length"))
                .map(|(_, v)| v)
        };
        m.context_length = exact
            .or_else(any)
            .and_then(Value::as_u64)
            .filter(|n| *n > 0);
    }
    if let Some(caps) = v.get("capabilities").and_then(Value::as_array) {
        let caps: Vec<&str> = caps.iter().filter_map(Value::as_str).collect();
        let generates = caps.contains(&"completion");
        m.supports_chat = generates;
        m.supports_completion = generates;
        m.capabilities.clear();
        if generates {
            m.add_capability(Capability::Streaming);
        }
        for c in caps {
            match c {
                "tools" => {
                    m.add_capability(Capability::ToolUse);
                    m.add_capability(Capability::FunctionCalling);
                }
                "vision" => m.add_capability(Capability::Vision),
                "embedding" => m.add_capability(Capability::Embeddings),
                "thinking" => m.add_capability(Capability::Reasoning),
                _ => {}
            }
        }
    }
    if m.family.is_none() {
        m.family = v
            .pointer("/details/family")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_show() {
        let tags = json!({"models": [
            {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2024-10-01T10:00:00Z",
             "size": 2019393189u64, "digest": "a80c", "details": {"parent_model": "", "format": "gguf",
             "family": "llama", "families": ["llama"], "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}},
            {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest", "details": {"family": "nomic-bert"}}
        ]});
        let mut ms = parse_tags("local", &tags).expect("tags");
        assert_eq!(ms[0].id, "llama3.2:latest");
        assert_eq!(ms[0].family.as_deref(), Some("llama"));
        assert!(ms[0].supports_chat);
        assert!(!ms[1].supports_chat);
        let show = json!({"modelfile": "...", "parameters": "num_ctx 4096", "template": "...",
            "details": {"family": "llama"},
            "model_info": {"general.architecture": "llama", "general.parameter_count": 3212749888u64,
                "llama.context_length": 131072, "llama.embedding_length": 3072},
            "capabilities": ["completion", "tools"]});
        apply_show(&mut ms[0], &show);
        assert_eq!(ms[0].context_length, Some(131072));
        assert!(ms[0].supports_chat && ms[0].has_capability(Capability::ToolUse));
        let show = json!({"model_info": {"general.architecture": "nomic-bert", "nomic-bert.context_length": 2048},
            "capabilities": ["embedding"]});
        apply_show(&mut ms[1], &show);
        assert!(!ms[1].supports_chat && ms[1].has_capability(Capability::Embeddings));
        assert_eq!(ms[1].context_length, Some(2048));
        assert!(parse_tags("l", &json!({"tags": []})).is_err());
    }
}
