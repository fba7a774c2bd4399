//! Azure OpenAI: the resource's model list (`GET {base}/openai/models?api-version=`) and
//! chat on a deployment (`POST {base}/openai/deployments/{model}/chat/completions`), with
//! the `api-key` header. The chat body and stream are OpenAI's, passed through.

use async_trait::async_trait;
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{unix_to_rfc3339, Capability, Model, ModelStatus, ProviderKind};
use reqwest::Method;
use serde_json::Value;

use crate::http::{encode_segment, unix_now, Upstream, WireError};
use crate::openai;
use crate::{ChatStream, Provider, ProviderError};

/// `api-version` sent when the config does not say (the current GA data-plane version).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The Azure OpenAI adapter. `model` in chat requests is the deployment name.
#[derive(Debug)]
pub(crate) struct AzureProvider {
    up: Upstream,
    api_version: String,
}

impl AzureProvider {
    pub(crate) fn new(up: Upstream, api_version: Option<String>) -> Self {
        AzureProvider {
            up,
            api_version: api_version.unwrap_or_else(|| DEFAULT_API_VERSION.to_owned()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}?api-version={}",
            self.up.url(path),
            encode_segment(&self.api_version)
        )
    }

    fn deployment_url(&self, model: &str) -> String {
        self.url(&format!(
            "/openai/deployments/{}/chat/completions",
            encode_segment(model)
        ))
    }

    async fn models(&self) -> Result<Value, ProviderError> {
        let rb = self.up.request(Method::GET, &self.url("/openai/models"));
        let rb = self.up.with_key(rb, "api-key", "")?;
        self.up.json(rb).await
    }
}

#[async_trait]
impl Provider for AzureProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let body = self.models().await?;
        parse_model_list(&self.up.name, &body, unix_now()).map_err(|e| self.up.wire(e))
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        openai::chat_pass_through(
            &self.up,
            &self.deployment_url(&request.model),
            "api-key",
            "",
            request,
        )
        .await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        openai::stream_pass_through(
            &self.up,
            &self.deployment_url(&request.model),
            "api-key",
            "",
            request,
        )
        .await
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.models().await.map(|_| ())
    }
}

/// Parses the resource's model list. Models with `capabilities.inference: false` (only
/// fine-tunable) are skipped: nothing can be served from them.
pub(crate) fn parse_model_list(
    provider: &str,
    body: &Value,
    now: i64,
) -> Result<Vec<Model>, WireError> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::bad_response("model list has no 'data' array"))?;
    Ok(data
        .iter()
        .filter_map(|v| map_model(provider, v, now))
        .collect())
}

/// Maps one Azure model: `capabilities` (`chat_completion`, `completion`, `embeddings`),
/// `created_at` (Unix seconds), `lifecycle_status` and `deprecation.inference`.
pub(crate) fn map_model(provider: &str, v: &Value, now: i64) -> Option<Model> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let caps = v.get("capabilities");
    let flag = |k: &str| caps.and_then(|c| c.get(k)).and_then(Value::as_bool);
    if flag("inference") == Some(false) {
        return None;
    }
    let mut m = Model::new(provider, id);
    m.created_at = v
        .get("created_at")
        .and_then(Value::as_i64)
        .and_then(unix_to_rfc3339);
    m.supports_chat = flag("chat_completion") == Some(true);
    m.supports_completion = flag("completion") == Some(true);
    if m.supports_chat {
        m.add_capability(Capability::Streaming);
    }
    if flag("embeddings") == Some(true) {
        m.add_capability(Capability::Embeddings);
    }
    let retired = v
        .pointer("/deprecation/inference")
        .and_then(Value::as_i64)
        .is_some_and(|t| t <= now);
    m.status = match v.get("lifecycle_status").and_then(Value::as_str) {
        _ if retired => Some(ModelStatus::Deprecated),
        Some("preview") => Some(ModelStatus::Beta),
        Some("generally-available") => Some(ModelStatus::Active),
        Some("deprecating") | Some("deprecated") | Some("retired") => Some(ModelStatus::Deprecated),
        _ => None,
    };
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_list() {
        let body = json!({"data": [
            {"status": "succeeded", "capabilities": {"fine_tune": false, "inference": true, "completion": false,
                "chat_completion": true, "embeddings": false}, "lifecycle_status": "generally-available",
             "deprecation": {"inference": 1900000000}, "id": "gpt-4o-2024-08-06", "created_at": 1722902400, "object": "model"},
            {"status": "succeeded", "capabilities": {"inference": true, "embeddings": true, "chat_completion": false},
             "lifecycle_status": "preview", "id": "text-embedding-3-large", "created_at": 1706140800, "object": "model"},
            {"capabilities": {"inference": true, "chat_completion": true}, "lifecycle_status": "generally-available",
             "deprecation": {"inference": 1000}, "id": "gpt-35-turbo-0301", "object": "model"},
            {"capabilities": {"inference": false, "fine_tune": true}, "id": "babbage-002-ft", "object": "model"}
        ], "object": "list"});
        let ms = parse_model_list("azure", &body, 1_750_000_000).expect("list");
        assert_eq!(ms.len(), 3);
        assert!(ms[0].supports_chat);
        assert_eq!(ms[0].status, Some(ModelStatus::Active));
        assert_eq!(ms[0].created_at.as_deref(), Some("2024-08-06T00:00:00Z"));
        assert!(!ms[1].supports_chat && ms[1].has_capability(Capability::Embeddings));
        assert_eq!(ms[1].status, Some(ModelStatus::Beta));
        assert_eq!(ms[2].status, Some(ModelStatus::Deprecated));
        assert!(parse_model_list("a", &json!({"value": []}), 0).is_err());
    }
}
