//! The OpenAI wire format: `openai` and every OpenAI-compatible kind (vLLM, llama.cpp,
//! LM Studio, DeepSeek, Together, Fireworks, xAI, Mistral, Groq, OpenRouter, generic).
//!
//! Listing is `GET {base}/models` with a bearer key; each kind's richer fields are mapped
//! by [`map_model`]. Chat is a pass-through of the OpenAI schema (unknown fields survive in
//! the `extra` maps); streams are `data:` lines ending with `[DONE]`.

use async_trait::async_trait;
use modelgate_types::chat::{ChatChunk, ChatRequest, ChatResponse};
use modelgate_types::{
    unix_to_rfc3339, Capability, Modalities, Modality, Model, ModelStatus, Pricing, ProviderKind,
};
use reqwest::Method;
use serde_json::Value;

use crate::http::{Upstream, WireError};
use crate::sse::{self, SseEvent, StreamTranslator, Translated};
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

/// An adapter for a server speaking the OpenAI API.
#[derive(Debug)]
pub(crate) struct OpenAiProvider {
    up: Upstream,
    kind: ProviderKind,
}

impl OpenAiProvider {
    pub(crate) fn new(up: Upstream, kind: ProviderKind) -> Self {
        OpenAiProvider { up, kind }
    }
}

impl OpenAiProvider {
    /// llama-server's `/v1/models` reports the model's training context (`meta.n_ctx_train`);
    /// the window it actually serves (`-c`, split over `--parallel` slots) is
    /// `default_generation_settings.n_ctx` of `GET /props` at the server root. Asked only when
    /// one model is listed without a `meta.n_ctx` of its own (some builds add one); any
    /// failure keeps the training context.
    async fn llamacpp_served_context(&self, body: &Value, models: &mut [Model]) {
        let [model] = models else { return };
        let has_n_ctx = body
            .pointer("/data/0/meta/n_ctx")
            .is_some_and(|v| !v.is_null());
        if has_n_ctx {
            return;
        }
        let root = self.up.base.strip_suffix("/v1").unwrap_or(&self.up.base);
        let rb = self.up.request(Method::GET, &format!("{root}/props"));
        let props: Result<Value, ProviderError> =
            match self.up.with_key(rb, "authorization", "Bearer ") {
                Ok(rb) => self.up.json(rb).await,
                Err(e) => Err(e),
            };
        match props {
            Ok(p) => {
                if let Some(n) = u64_of(p.pointer("/default_generation_settings/n_ctx")) {
                    model.context_length = Some(n);
                }
            }
            Err(e) => {
                tracing::debug!(provider = %self.up.name, error = %e, "llama.cpp /props unavailable; keeping n_ctx_train");
            }
        }
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        self.kind
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let rb = self.up.request(Method::GET, &self.up.url("/models"));
        let rb = self.up.with_key(rb, "authorization", "Bearer ")?;
        let body: Value = self.up.json(rb).await?;
        let mut models =
            parse_model_list(self.kind, &self.up.name, &body).map_err(|e| self.up.wire(e))?;
        if self.kind == ProviderKind::Llamacpp {
            self.llamacpp_served_context(&body, &mut models).await;
        }
        Ok(models)
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        chat_pass_through(
            &self.up,
            &self.up.url("/chat/completions"),
            "authorization",
            "Bearer ",
            request,
        )
        .await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        stream_pass_through(
            &self.up,
            &self.up.url("/chat/completions"),
            "authorization",
            "Bearer ",
            request,
        )
        .await
    }

    async fn health(&self) -> Result<(), ProviderError> {
        let rb = self.up.request(Method::GET, &self.up.url("/models"));
        let rb = self.up.with_key(rb, "authorization", "Bearer ")?;
        self.up.bytes(rb).await.map(|_| ())
    }

    async fn completion(&self, body: Value) -> Result<Value, ProviderError> {
        let rb = self.up.request(Method::POST, &self.up.url("/completions"));
        let rb = self
            .up
            .with_key(rb, "authorization", "Bearer ")?
            .json(&body);
        self.up.json(rb).await
    }
}

/// POSTs a chat request (forced non-streaming) to an OpenAI-compatible endpoint.
pub(crate) async fn chat_pass_through(
    up: &Upstream,
    url: &str,
    key_header: &'static str,
    key_prefix: &str,
    request: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let mut req = request.clone();
    req.stream = None;
    req.extra.remove("stream_options");
    let rb = up.request(Method::POST, url);
    let rb = up.with_key(rb, key_header, key_prefix)?.json(&req);
    let body: Value = up.json(rb).await?;
    parse_response(body).map_err(|e| up.wire(e))
}

/// Opens a streaming chat request to an OpenAI-compatible endpoint.
pub(crate) async fn stream_pass_through(
    up: &Upstream,
    url: &str,
    key_header: &'static str,
    key_prefix: &str,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let mut req = request.clone();
    req.stream = Some(true);
    let rb = up.request(Method::POST, url);
    let rb = up
        .with_key(rb, key_header, key_prefix)?
        .header("accept", "text/event-stream")
        .json(&req);
    let resp = up.open_stream(rb).await?;
    Ok(sse::chat_stream(up, resp, OpenAiStream))
}

/// Parses a `chat.completion` body, tolerating servers that omit `id`/`created`/`model`.
pub(crate) fn parse_response(mut body: Value) -> Result<ChatResponse, WireError> {
    if let Some(err) = body.get("error").filter(|e| !e.is_null()) {
        return Err(WireError::new(ProviderErrorKind::Upstream, error_text(err)));
    }
    fill_defaults(&mut body, "chat.completion");
    serde_json::from_value(body)
        .map_err(|e| WireError::bad_response(format!("not a chat completion: {e}")))
}

/// Parses one `data:` payload of an OpenAI stream.
pub(crate) fn parse_chunk(data: &str) -> Result<ChatChunk, WireError> {
    let mut v: Value = serde_json::from_str(data)
        .map_err(|e| WireError::bad_response(format!("invalid stream chunk: {e}")))?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        return Err(WireError::new(ProviderErrorKind::Upstream, error_text(err)));
    }
    fill_defaults(&mut v, "chat.completion.chunk");
    serde_json::from_value(v)
        .map_err(|e| WireError::bad_response(format!("invalid stream chunk: {e}")))
}

fn error_text(err: &Value) -> String {
    err.get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| err.to_string())
}

fn fill_defaults(v: &mut Value, object: &str) {
    if let Value::Object(m) = v {
        m.entry("id")
            .or_insert_with(|| Value::String(String::new()));
        // Azure's first stream chunk (prompt_filter_results) has `"object": ""`.
        match m.get("object") {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => {
                m.insert("object".into(), Value::String(object.to_owned()));
            }
        }
        m.entry("created").or_insert(Value::from(0));
        m.entry("model")
            .or_insert_with(|| Value::String(String::new()));
        // vLLM ends an `include_usage` stream with `"choices": null`.
        match m.get("choices") {
            Some(Value::Array(_)) => {}
            _ => {
                m.insert("choices".into(), Value::Array(Vec::new()));
            }
        }
        if m.get("usage").is_some_and(Value::is_null) {
            m.remove("usage");
        }
    }
}

/// OpenAI stream: every `data:` is a chunk; `[DONE]` ends it.
#[derive(Debug, Default)]
pub(crate) struct OpenAiStream;

impl StreamTranslator for OpenAiStream {
    fn translate(&mut self, event: &SseEvent) -> Result<Translated, WireError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Translated::done(None));
        }
        if data.is_empty() {
            return Ok(Translated::nothing());
        }
        parse_chunk(data).map(Translated::chunk)
    }
}

/// Parses `{"data": [...]}` (or a bare array, as Together answers) into models.
pub(crate) fn parse_model_list(
    kind: ProviderKind,
    provider: &str,
    body: &Value,
) -> Result<Vec<Model>, WireError> {
    let items = match body {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("data") {
            Some(Value::Array(a)) => a,
            _ => return Err(WireError::bad_response("model list has no 'data' array")),
        },
        _ => return Err(WireError::bad_response("model list is not a JSON object")),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match map_model(kind, provider, item) {
            Some(m) => out.push(m),
            None => tracing::debug!(provider, "skipping a model entry without an id"),
        }
    }
    Ok(out)
}

/// Whether an id names a model that is clearly not a chat model (embeddings, speech,
/// images, moderation, rerankers).
pub(crate) fn is_non_chat_id(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    [
        "embed",
        "tts",
        "whisper",
        "dall-e",
        "moderation",
        "gpt-image",
        "transcribe",
        "rerank",
        "sora",
        "imagen",
        "text-search",
        "text-similarity",
    ]
    .iter()
    .any(|p| id.contains(p))
        || id.starts_with("playai-tts")
}

/// OpenAI's completion-only models (`gpt-3.5-turbo-instruct`, `davinci-002`, `babbage-002`).
fn lower_is_legacy(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    id.contains("-instruct") || id.starts_with("davinci-002") || id.starts_with("babbage-002")
}

/// OpenAI's own chat families (evidence for `supports_chat` on `kind: openai`).
fn is_openai_chat_id(id: &str) -> bool {
    let id = id.strip_prefix("ft:").unwrap_or(id);
    ["gpt-", "o1", "o3", "o4", "chatgpt-", "codex-"]
        .iter()
        .any(|p| id.starts_with(p))
        && !id.contains("realtime")
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

fn str_of(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn bool_of(v: Option<&Value>) -> Option<bool> {
    v.and_then(Value::as_bool)
}

fn price_per_token(v: Option<&Value>) -> Option<f64> {
    let p = match v? {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    // OpenRouter uses "-1" for variable-price routers: unknown, not negative.
    (p.is_finite() && p >= 0.0).then(|| Pricing::per_1k_from_per_token(p))
}

/// Maps one entry of an OpenAI-style model list, with the kind's extra fields.
///
/// `supports_chat` rule: a provider-reported capability wins (Mistral `completion_chat`,
/// OpenRouter output modalities, Together `type`, Fireworks `supports_chat`, vLLM/Ollama
/// evidence); otherwise ids that are clearly embeddings/speech/images/moderation are not
/// chat; otherwise, on `kind: openai`, only OpenAI's chat families (`gpt-`, `o1`/`o3`/`o4`,
/// `chatgpt-`) are chat, while every other OpenAI-compatible server is a chat server by
/// purpose, so its models are chat.
pub(crate) fn map_model(kind: ProviderKind, provider: &str, v: &Value) -> Option<Model> {
    let id = str_of(v.get("id"))?;
    let mut m = Model::new(provider, id.clone());
    m.created_at = v
        .get("created")
        .and_then(Value::as_i64)
        .and_then(unix_to_rfc3339);

    let non_chat = is_non_chat_id(&id);
    m.supports_chat = match kind {
        ProviderKind::Openai => is_openai_chat_id(&id) && !non_chat && !lower_is_legacy(&id),
        _ => !non_chat,
    };
    let lower = id.to_ascii_lowercase();
    m.supports_completion = match kind {
        ProviderKind::Openai => lower_is_legacy(&id),
        ProviderKind::Vllm
        | ProviderKind::Llamacpp
        | ProviderKind::Lmstudio
        | ProviderKind::OpenaiCompatible => !lower.contains("embed"),
        _ => false,
    };
    if lower.contains("embed") {
        m.add_capability(Capability::Embeddings);
    }

    match kind {
        ProviderKind::Vllm => {
            m.context_length = u64_of(v.get("max_model_len"));
        }
        ProviderKind::Llamacpp => {
            let meta = v.get("meta");
            m.context_length = u64_of(meta.and_then(|x| x.get("n_ctx")))
                .or_else(|| u64_of(meta.and_then(|x| x.get("n_ctx_train"))));
        }
        ProviderKind::Mistral => map_mistral(&mut m, v),
        ProviderKind::Groq => {
            m.context_length = u64_of(v.get("context_window"));
            m.max_tokens = u64_of(v.get("max_completion_tokens"));
            m.status = bool_of(v.get("active")).map(|a| {
                if a {
                    ModelStatus::Active
                } else {
                    ModelStatus::Deprecated
                }
            });
        }
        ProviderKind::Openrouter => map_openrouter(&mut m, v),
        _ => {}
    }
    // Fields some compatible servers add (Together, Fireworks, DeepSeek-likes).
    if m.context_length.is_none() {
        m.context_length = u64_of(v.get("context_length"));
    }
    if let Some(name) = str_of(v.get("display_name")).or_else(|| str_of(v.get("name"))) {
        m.name = name;
    }
    if m.description.is_none() {
        m.description = str_of(v.get("description"));
    }
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        // Together: chat, language, code, embedding, image, rerank, moderation, audio.
        if kind == ProviderKind::Together {
            m.supports_chat = t == "chat";
            m.supports_completion = matches!(t, "language" | "code");
            if t == "embedding" {
                m.add_capability(Capability::Embeddings);
            }
        }
    }
    if kind == ProviderKind::Together {
        if let Some(p) = v.get("pricing") {
            // Together reports USD per million tokens.
            let per_m = |k: &str| p.get(k).and_then(Value::as_f64).filter(|x| *x > 0.0);
            m.input_cost = per_m("input").map(Pricing::per_1k_from_per_million);
            m.output_cost = per_m("output").map(Pricing::per_1k_from_per_million);
        }
    }
    if let Some(c) = bool_of(v.get("supports_chat")) {
        m.supports_chat = c;
    }
    if bool_of(v.get("supports_image_input")) == Some(true) {
        m.add_capability(Capability::Vision);
    }
    if bool_of(v.get("supports_tools")) == Some(true) {
        m.add_capability(Capability::ToolUse);
        m.add_capability(Capability::FunctionCalling);
    }
    Some(m)
}

fn map_mistral(m: &mut Model, v: &Value) {
    m.context_length = u64_of(v.get("max_context_length"));
    if let Some(caps) = v.get("capabilities") {
        let flag = |k: &str| bool_of(caps.get(k)) == Some(true);
        m.supports_chat = flag("completion_chat");
        if flag("function_calling") {
            m.add_capability(Capability::FunctionCalling);
            m.add_capability(Capability::ToolUse);
        }
        if flag("vision") {
            m.add_capability(Capability::Vision);
        }
        if flag("completion_chat") {
            m.add_capability(Capability::Streaming);
        }
        if flag("reasoning") {
            m.add_capability(Capability::Reasoning);
        }
        if flag("audio") {
            m.add_capability(Capability::AudioInput);
        }
    }
    let deprecated = v.get("deprecation").is_some_and(|d| !d.is_null());
    m.status = Some(if deprecated {
        ModelStatus::Deprecated
    } else {
        ModelStatus::Active
    });
}

fn map_openrouter(m: &mut Model, v: &Value) {
    if let Some(p) = v.get("pricing") {
        m.input_cost = price_per_token(p.get("prompt"));
        m.output_cost = price_per_token(p.get("completion"));
    }
    let top = v.get("top_provider");
    m.context_length = u64_of(v.get("context_length"))
        .or_else(|| u64_of(top.and_then(|t| t.get("context_length"))));
    m.max_tokens = u64_of(top.and_then(|t| t.get("max_completion_tokens")));
    if let Some(arch) = v.get("architecture") {
        let list = |k: &str| -> Vec<Modality> {
            let mut out: Vec<Modality> = arch
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str()?.parse().ok()).collect())
                .unwrap_or_default();
            out.sort();
            out.dedup();
            out
        };
        let input = list("input_modalities");
        let output = list("output_modalities");
        if input.contains(&Modality::Image) {
            m.add_capability(Capability::Vision);
        }
        if input.contains(&Modality::Audio) {
            m.add_capability(Capability::AudioInput);
        }
        if input.contains(&Modality::Pdf) {
            m.add_capability(Capability::PdfInput);
        }
        if output.contains(&Modality::Image) {
            m.add_capability(Capability::ImageGeneration);
        }
        if output.contains(&Modality::Audio) {
            m.add_capability(Capability::AudioOutput);
        }
        if !output.is_empty() {
            m.supports_chat = output.contains(&Modality::Text);
        }
        if !input.is_empty() || !output.is_empty() {
            m.modalities = Some(Modalities { input, output });
        }
    }
    if let Some(params) = v.get("supported_parameters").and_then(Value::as_array) {
        let has = |k: &str| params.iter().any(|p| p.as_str() == Some(k));
        if has("tools") {
            m.add_capability(Capability::ToolUse);
            m.add_capability(Capability::FunctionCalling);
        }
        if has("response_format") {
            m.add_capability(Capability::JsonMode);
        }
        if has("structured_outputs") {
            m.add_capability(Capability::StructuredOutput);
            m.add_capability(Capability::JsonMode);
        }
        if has("reasoning") || has("include_reasoning") {
            m.add_capability(Capability::Reasoning);
        }
    }
    // Everything OpenRouter lists is served through its chat completions endpoint.
    m.add_capability(Capability::Streaming);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(kind: ProviderKind, v: Value) -> Model {
        map_model(kind, "p", &v).expect("model")
    }

    #[test]
    fn openai_list_and_chat_rule() {
        let body = json!({"object": "list", "data": [
            {"id": "gpt-4o-2024-08-06", "object": "model", "created": 1722814719, "owned_by": "system"},
            {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"},
            {"id": "whisper-1", "object": "model", "created": 1677532384, "owned_by": "openai-internal"},
            {"id": "gpt-3.5-turbo-instruct", "object": "model", "created": 1692901427, "owned_by": "system"},
            {"id": "o3-mini", "object": "model", "created": 1737146383, "owned_by": "system"},
            {"id": "some-future-thing", "object": "model", "created": 1, "owned_by": "system"},
            {"object": "model"}
        ]});
        let models = parse_model_list(ProviderKind::Openai, "openai", &body).expect("list");
        assert_eq!(models.len(), 6);
        let by = |id: &str| models.iter().find(|m| m.id == id).expect(id);
        let gpt = by("gpt-4o-2024-08-06");
        assert!(gpt.supports_chat && !gpt.supports_completion);
        assert_eq!(gpt.provider, "openai");
        assert_eq!(gpt.created_at.as_deref(), Some("2024-08-04T23:38:39Z"));
        assert!(!by("text-embedding-3-small").supports_chat);
        assert!(by("text-embedding-3-small").has_capability(Capability::Embeddings));
        assert!(!by("whisper-1").supports_chat);
        assert!(by("gpt-3.5-turbo-instruct").supports_completion);
        assert!(!by("gpt-3.5-turbo-instruct").supports_chat);
        assert!(by("o3-mini").supports_chat);
        assert!(!by("some-future-thing").supports_chat);
        assert!(gpt.context_length.is_none() && gpt.input_cost.is_none());
    }

    #[test]
    fn malformed_lists_are_bad_responses() {
        for body in [json!({"data": "nope"}), json!("x"), json!({"models": []})] {
            let e = parse_model_list(ProviderKind::Openai, "p", &body).expect_err("bad");
            assert_eq!(e.kind, ProviderErrorKind::BadResponse);
        }
        let together = json!([{"id": "m", "type": "chat", "context_length": 8192,
            "display_name": "M", "pricing": {"input": 0.88, "output": 0.88}}]);
        let ms = parse_model_list(ProviderKind::Together, "t", &together).expect("array");
        assert_eq!(ms[0].context_length, Some(8192));
        assert_eq!(ms[0].input_cost, Some(0.00088));
        assert_eq!(ms[0].name, "M");
        assert!(ms[0].supports_chat);
    }

    #[test]
    fn vllm_and_llamacpp_context() {
        let m = one(
            ProviderKind::Vllm,
            json!({"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model",
            "created": 1715000000, "owned_by": "vllm", "root": "meta-llama/Llama-3.1-8B-Instruct", "max_model_len": 32768}),
        );
        assert_eq!(m.context_length, Some(32768));
        assert!(m.supports_chat && m.supports_completion);
        let m = one(
            ProviderKind::Llamacpp,
            json!({"id": "model.gguf", "object": "model", "owned_by": "llamacpp",
            "meta": {"vocab_type": 2, "n_vocab": 128256, "n_ctx_train": 131072, "n_embd": 4096}}),
        );
        assert_eq!(m.context_length, Some(131072));
        let m = one(
            ProviderKind::Llamacpp,
            json!({"id": "m", "meta": {"n_ctx": 8192, "n_ctx_train": 131072}}),
        );
        assert_eq!(m.context_length, Some(8192));
    }

    #[test]
    fn mistral_fields() {
        let m = one(
            ProviderKind::Mistral,
            json!({
            "id": "mistral-large-2411", "object": "model", "created": 1732000000, "owned_by": "mistralai",
            "capabilities": {"completion_chat": true, "completion_fim": false, "function_calling": true,
                "fine_tuning": true, "vision": false, "classification": false},
            "name": "mistral-large-2411", "description": "Our top-tier reasoning model",
            "max_context_length": 131072, "aliases": ["mistral-large-latest"],
            "deprecation": null, "default_model_temperature": 0.7, "type": "base"}),
        );
        assert!(m.supports_chat);
        assert_eq!(m.context_length, Some(131072));
        assert_eq!(
            m.description.as_deref(),
            Some("Our top-tier reasoning model")
        );
        assert!(
            m.has_capability(Capability::FunctionCalling) && m.has_capability(Capability::ToolUse)
        );
        assert!(!m.has_capability(Capability::Vision));
        assert_eq!(m.status, Some(ModelStatus::Active));
        let m = one(
            ProviderKind::Mistral,
            json!({"id": "mistral-embed", "capabilities": {"completion_chat": false},
            "deprecation": "2025-06-01T00:00:00Z"}),
        );
        assert!(!m.supports_chat);
        assert_eq!(m.status, Some(ModelStatus::Deprecated));
    }

    #[test]
    fn groq_fields() {
        let m = one(
            ProviderKind::Groq,
            json!({"id": "llama-3.1-8b-instant", "object": "model", "created": 1693721698,
            "owned_by": "Meta", "active": true, "context_window": 131072, "public_apps": null,
            "max_completion_tokens": 131072}),
        );
        assert_eq!(
            (m.context_length, m.max_tokens),
            (Some(131072), Some(131072))
        );
        assert_eq!(m.status, Some(ModelStatus::Active));
        assert!(m.supports_chat);
        let m = one(
            ProviderKind::Groq,
            json!({"id": "whisper-large-v3", "active": false, "context_window": 448}),
        );
        assert_eq!(m.status, Some(ModelStatus::Deprecated));
        assert!(!m.supports_chat);
    }

    #[test]
    fn openrouter_fields() {
        let m = one(
            ProviderKind::Openrouter,
            json!({
            "id": "openai/gpt-4o", "canonical_slug": "openai/gpt-4o", "name": "OpenAI: GPT-4o",
            "created": 1715367049, "description": "GPT-4o is...", "context_length": 128000,
            "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image", "file"],
                "output_modalities": ["text"], "tokenizer": "GPT", "instruct_type": null},
            "pricing": {"prompt": "0.0000025", "completion": "0.00001", "request": "0", "image": "0.003613"},
            "top_provider": {"context_length": 128000, "max_completion_tokens": 16384, "is_moderated": true},
            "per_request_limits": null,
            "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "response_format", "structured_outputs"]}),
        );
        assert_eq!(m.name, "OpenAI: GPT-4o");
        assert_eq!(m.input_cost, Some(0.0025));
        assert_eq!(m.output_cost, Some(0.01));
        assert_eq!(m.context_length, Some(128000));
        assert_eq!(m.max_tokens, Some(16384));
        assert_eq!(m.created_at.as_deref(), Some("2024-05-10T18:50:49Z"));
        for c in [
            Capability::Vision,
            Capability::ToolUse,
            Capability::JsonMode,
            Capability::StructuredOutput,
            Capability::PdfInput,
        ] {
            assert!(m.has_capability(c), "{c}");
        }
        assert!(m.supports_chat);
        let mods = m.modalities.expect("modalities");
        assert_eq!(
            mods.input,
            vec![Modality::Text, Modality::Image, Modality::Pdf]
        );
        let auto = one(
            ProviderKind::Openrouter,
            json!({"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}}),
        );
        assert_eq!(auto.input_cost, None);
    }

    #[test]
    fn response_and_chunk_keep_unknown_fields() {
        let r = parse_response(json!({"id": "c1", "object": "chat.completion", "created": 5, "model": "m",
            "system_fingerprint": "fp", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi",
            "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}))
        .expect("response");
        assert_eq!(r.extra["system_fingerprint"], "fp");
        assert!(r.choices[0].message.extra.contains_key("refusal"));
        let c = parse_chunk(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"obfuscation":"abc"}"#)
            .expect("chunk");
        assert_eq!(c.extra["obfuscation"], "abc");
        // Azure's first chunk: prompt filter results, no choices.
        let c = parse_chunk(r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}"#)
            .expect("azure chunk");
        assert!(c.choices.is_empty());
        // vLLM's usage-only last chunk.
        let c = parse_chunk(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#)
            .expect("vllm usage chunk");
        assert!(c.choices.is_empty());
        assert_eq!(c.usage.map(|u| u.total_tokens), Some(7));
        let e = parse_chunk(r#"{"error":{"message":"overloaded"}}"#).expect_err("error");
        assert_eq!(e.kind, ProviderErrorKind::Upstream);
        assert_eq!(
            parse_chunk("{not json").expect_err("bad").kind,
            ProviderErrorKind::BadResponse
        );
    }

    #[test]
    fn stream_translator_ends_at_done() {
        let mut t = OpenAiStream;
        let ev = |d: &str| SseEvent {
            event: None,
            data: d.to_owned(),
        };
        let r = t.translate(&ev(r#"{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#)).expect("ok");
        assert!(r.chunk.is_some() && !r.done);
        assert!(t.translate(&ev("[DONE]")).expect("done").done);
    }
}
