//! The models a flavor lists and answers for, the request log entry, and each flavor's defaults.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::flavor::Flavor;

/// A model as the mock lists it. Each flavor renders it in its own listing shape: the common
/// fields go where that provider puts them (e.g. `context_length` becomes vLLM's
/// `max_model_len`, Gemini's `inputTokenLimit`, Groq's `context_window`), and `extra` is merged
/// last into the listing object, so a test can add or override any provider-specific field.
#[derive(Debug, Clone, PartialEq)]
pub struct MockModel {
    /// The id as the provider spells it (Gemini without the `models/` prefix, Ollama with its tag).
    pub id: String,
    pub display_name: Option<String>,
    pub context_length: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub owned_by: Option<String>,
    /// Flavor-specific fields merged into the listing object (an object; anything else is ignored).
    pub extra: Value,
}

impl MockModel {
    pub fn new(id: impl Into<String>) -> Self {
        MockModel {
            id: id.into(),
            display_name: None,
            context_length: None,
            max_output_tokens: None,
            created: None,
            owned_by: None,
            extra: Value::Null,
        }
    }

    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    pub fn context_length(mut self, n: u64) -> Self {
        self.context_length = Some(n);
        self
    }

    pub fn max_output_tokens(mut self, n: u64) -> Self {
        self.max_output_tokens = Some(n);
        self
    }

    pub fn created(mut self, unix_secs: i64) -> Self {
        self.created = Some(unix_secs);
        self
    }

    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owned_by = Some(owner.into());
        self
    }

    /// Sets `extra` (an object merged into the listing object).
    pub fn extra(mut self, extra: Value) -> Self {
        self.extra = extra;
        self
    }

    /// A string field of `extra`, if present.
    pub(crate) fn extra_str(&self, key: &str) -> Option<&str> {
        self.extra.get(key).and_then(Value::as_str)
    }
}

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The full path, flavor prefix included (e.g. `/anthropic/v1/models`).
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Deep-merges the object `extra` into the object `base`: nested objects merge key by key,
/// anything else in `extra` replaces the value in `base`.
pub(crate) fn merge_extra(base: &mut Value, extra: &Value) {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            match base.get_mut(k) {
                Some(existing) if existing.is_object() && v.is_object() => merge_extra(existing, v),
                _ => {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

fn m(id: &str) -> MockModel {
    MockModel::new(id)
}

/// The models each flavor lists after `start()` or `reset()`: real ids with real limits.
pub(crate) fn default_models(flavor: Flavor) -> Vec<MockModel> {
    match flavor {
        Flavor::Openai => vec![
            m("gpt-4o").created(1_715_367_049).owned_by("system"),
            m("gpt-4o-2024-08-06").created(1_722_814_719).owned_by("system"),
            m("gpt-4o-mini").created(1_721_172_741).owned_by("system"),
            m("o3-mini").created(1_737_146_383).owned_by("system"),
            m("text-embedding-3-small").created(1_705_948_997).owned_by("system"),
        ],
        Flavor::Vllm => vec![
            m("meta-llama/Llama-3.1-8B-Instruct").context_length(131_072),
            m("Qwen/Qwen2.5-7B-Instruct").context_length(32_768),
        ],
        Flavor::Llamacpp => vec![m("Llama-3.2-3B-Instruct-Q4_K_M.gguf")
            .context_length(8_192)
            .extra(json!({"meta": {"n_ctx_train": 131_072}}))],
        Flavor::Mistral => vec![
            m("mistral-large-latest")
                .context_length(131_072)
                .display_name("mistral-large-2411")
                .extra(json!({"description": "Official mistral-large-2411 Mistral AI model",
                    "aliases": ["mistral-large-2411"]})),
            m("mistral-small-latest")
                .context_length(32_768)
                .display_name("mistral-small-2409"),
            m("pixtral-large-latest")
                .context_length(131_072)
                .display_name("pixtral-large-2411")
                .extra(json!({"capabilities": {"completion_chat": true, "completion_fim": false,
                    "function_calling": true, "fine_tuning": false, "vision": true, "classification": false}})),
            m("codestral-latest").context_length(262_144).display_name("codestral-2501"),
            m("mistral-embed")
                .context_length(8_192)
                .display_name("mistral-embed")
                .extra(json!({"capabilities": {"completion_chat": false, "completion_fim": false,
                    "function_calling": false, "fine_tuning": false, "vision": false, "classification": false}})),
        ],
        Flavor::Groq => vec![
            m("llama-3.1-8b-instant")
                .context_length(131_072)
                .max_output_tokens(131_072)
                .owned_by("Meta"),
            m("llama-3.3-70b-versatile")
                .context_length(131_072)
                .max_output_tokens(32_768)
                .owned_by("Meta"),
            m("gemma2-9b-it")
                .context_length(8_192)
                .max_output_tokens(8_192)
                .owned_by("Google"),
            m("whisper-large-v3")
                .context_length(448)
                .max_output_tokens(448)
                .owned_by("OpenAI"),
        ],
        Flavor::Openrouter => vec![
            m("openai/gpt-4o")
                .display_name("OpenAI: GPT-4o")
                .context_length(128_000)
                .max_output_tokens(16_384)
                .created(1_715_367_049)
                .extra(json!({"pricing": {"prompt": "0.0000025", "completion": "0.00001",
                    "request": "0", "image": "0.003613", "web_search": "0", "internal_reasoning": "0"}})),
            m("anthropic/claude-3.5-sonnet")
                .display_name("Anthropic: Claude 3.5 Sonnet")
                .context_length(200_000)
                .max_output_tokens(8_192)
                .created(1_729_555_200)
                .extra(json!({"pricing": {"prompt": "0.000003", "completion": "0.000015",
                    "request": "0", "image": "0.0048", "web_search": "0", "internal_reasoning": "0"}})),
            m("meta-llama/llama-3.1-8b-instruct:free")
                .display_name("Meta: Llama 3.1 8B Instruct (free)")
                .context_length(131_072)
                .created(1_721_692_800),
        ],
        Flavor::Anthropic => vec![
            m("claude-sonnet-4-20250514")
                .display_name("Claude Sonnet 4")
                .created(1_747_180_800)
                .context_length(200_000)
                .max_output_tokens(64_000),
            m("claude-3-7-sonnet-20250219")
                .display_name("Claude Sonnet 3.7")
                .created(1_739_923_200)
                .context_length(200_000)
                .max_output_tokens(64_000),
            m("claude-3-5-sonnet-20241022")
                .display_name("Claude Sonnet 3.5 (New)")
                .created(1_729_555_200)
                .context_length(200_000)
                .max_output_tokens(8_192),
            m("claude-3-5-haiku-20241022")
                .display_name("Claude Haiku 3.5")
                .created(1_729_555_200)
                .context_length(200_000)
                .max_output_tokens(8_192),
            m("claude-3-opus-20240229")
                .display_name("Claude Opus 3")
                .created(1_709_164_800)
                .context_length(200_000)
                .max_output_tokens(4_096)
                .extra(json!({"lifecycle": "deprecated", "deprecated_at": "2025-06-30T00:00:00Z",
                    "retires_at": "2026-01-05T00:00:00Z"})),
        ],
        Flavor::Gemini => vec![
            m("gemini-2.5-pro")
                .display_name("Gemini 2.5 Pro")
                .context_length(1_048_576)
                .max_output_tokens(65_536)
                .extra(json!({"thinking": true, "version": "2.5"})),
            m("gemini-2.0-flash")
                .display_name("Gemini 2.0 Flash")
                .context_length(1_048_576)
                .max_output_tokens(8_192)
                .extra(json!({"version": "2.0"})),
            m("gemini-1.5-pro")
                .display_name("Gemini 1.5 Pro")
                .context_length(2_000_000)
                .max_output_tokens(8_192),
            m("gemini-1.5-flash")
                .display_name("Gemini 1.5 Flash")
                .context_length(1_000_000)
                .max_output_tokens(8_192),
            m("text-embedding-004")
                .display_name("Text Embedding 004")
                .context_length(2_048)
                .max_output_tokens(1)
                .extra(json!({"supportedGenerationMethods": ["embedContent"], "version": "004"})),
        ],
        Flavor::Cohere => vec![
            m("command-a-03-2025").context_length(256_000),
            m("command-r-plus-08-2024").context_length(128_000),
            m("command-r-08-2024").context_length(128_000),
            m("embed-english-v3.0")
                .context_length(512)
                .extra(json!({"endpoints": ["embed"], "default_endpoints": ["embed"], "features": null})),
        ],
        Flavor::Azure => vec![
            m("gpt-4o").created(1_715_558_400),
            m("gpt-4o-mini").created(1_721_260_800),
            m("gpt-35-turbo").created(1_706_745_600),
            m("text-embedding-ada-002")
                .created(1_672_531_200)
                .extra(json!({"capabilities": {"chat_completion": false, "completion": false,
                    "embeddings": true, "fine_tune": false, "inference": true}})),
        ],
        Flavor::Ollama => vec![
            m("llama3.2:3b").context_length(131_072),
            m("qwen2.5:7b").context_length(32_768),
            m("llava:7b")
                .context_length(32_768)
                .extra(json!({"capabilities": ["completion", "vision"], "family": "llama"})),
            m("nomic-embed-text:latest")
                .context_length(2_048)
                .extra(json!({"capabilities": ["embedding"], "family": "nomic-bert"})),
        ],
    }
}
