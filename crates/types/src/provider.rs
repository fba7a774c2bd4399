//! Provider configuration: the contract between the config file and the provider adapters
//! (DESIGN.md, "Provider config"). Plain data; validation lives in `modelgate-config`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string (API key, admin token). `Debug`, `Display` and `Serialize` print `***`;
/// the value is reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it (an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    /// Accepts a string, or a number (environment layers parse `12345` as one); the
    /// error message never contains the value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a secret must be written as a quoted string"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The wire format (and defaults) of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    /// Any server speaking the OpenAI API (DeepSeek, Together, Fireworks, xAI, ...).
    #[serde(alias = "openai-compatible")]
    OpenaiCompatible,
    Vllm,
    #[serde(alias = "llama.cpp", alias = "llama_cpp")]
    Llamacpp,
    #[serde(alias = "lm_studio")]
    Lmstudio,
    Deepseek,
    Together,
    Fireworks,
    Xai,
    Anthropic,
    Gemini,
    Cohere,
    Mistral,
    Groq,
    Openrouter,
    #[serde(alias = "azure_openai")]
    Azure,
    Ollama,
    /// In-process provider with configurable models, latency and failures (free target).
    Mock,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 18] = [
        ProviderKind::Openai,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Vllm,
        ProviderKind::Llamacpp,
        ProviderKind::Lmstudio,
        ProviderKind::Deepseek,
        ProviderKind::Together,
        ProviderKind::Fireworks,
        ProviderKind::Xai,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Cohere,
        ProviderKind::Mistral,
        ProviderKind::Groq,
        ProviderKind::Openrouter,
        ProviderKind::Azure,
        ProviderKind::Ollama,
        ProviderKind::Mock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Vllm => "vllm",
            ProviderKind::Llamacpp => "llamacpp",
            ProviderKind::Lmstudio => "lmstudio",
            ProviderKind::Deepseek => "deepseek",
            ProviderKind::Together => "together",
            ProviderKind::Fireworks => "fireworks",
            ProviderKind::Xai => "xai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Cohere => "cohere",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Groq => "groq",
            ProviderKind::Openrouter => "openrouter",
            ProviderKind::Azure => "azure",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Mock => "mock",
        }
    }

    /// The public endpoint used when `base_url` is not set; `None` where the user must say
    /// (self-hosted servers, Azure resources).
    pub fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Deepseek => "https://api.deepseek.com/v1",
            ProviderKind::Together => "https://api.together.xyz/v1",
            ProviderKind::Fireworks => "https://api.fireworks.ai/inference/v1",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
            ProviderKind::Cohere => "https://api.cohere.com",
            ProviderKind::Mistral => "https://api.mistral.ai/v1",
            ProviderKind::Groq => "https://api.groq.com/openai/v1",
            ProviderKind::Openrouter => "https://openrouter.ai/api/v1",
            ProviderKind::Ollama => "http://127.0.0.1:11434",
            ProviderKind::Lmstudio => "http://127.0.0.1:1234/v1",
            ProviderKind::Llamacpp => "http://127.0.0.1:8080/v1",
            ProviderKind::Vllm => "http://127.0.0.1:8000/v1",
            ProviderKind::Mock => "mock://local",
            ProviderKind::OpenaiCompatible | ProviderKind::Azure => return None,
        })
    }

    /// Whether the provider cannot work without an API key.
    pub fn requires_key(self) -> bool {
        !matches!(
            self,
            ProviderKind::OpenaiCompatible
                | ProviderKind::Vllm
                | ProviderKind::Llamacpp
                | ProviderKind::Lmstudio
                | ProviderKind::Ollama
                | ProviderKind::Mock
        )
    }

    /// Whether the provider speaks the OpenAI chat/models API as is.
    pub fn is_openai_compatible(self) -> bool {
        matches!(
            self,
            ProviderKind::Openai
                | ProviderKind::OpenaiCompatible
                | ProviderKind::Vllm
                | ProviderKind::Llamacpp
                | ProviderKind::Lmstudio
                | ProviderKind::Deepseek
                | ProviderKind::Together
                | ProviderKind::Fireworks
                | ProviderKind::Xai
                | ProviderKind::Mistral
                | ProviderKind::Groq
                | ProviderKind::Openrouter
        )
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Settings of the in-process `mock` provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MockSettings {
    /// Model ids it lists and answers for.
    pub models: Vec<String>,
    /// Added latency per call, in milliseconds.
    pub latency_ms: u64,
    /// Probability (0..=1) that a call fails with a 503.
    pub failure_rate: f64,
    /// Seed for the failure sequence, so runs are reproducible.
    pub seed: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            models: vec!["mock-small".to_owned(), "mock-large".to_owned()],
            latency_ms: 0,
            failure_rate: 0.0,
            seed: 0,
        }
    }
}

/// One entry of the `providers:` map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// API root; defaults to [`ProviderKind::default_base_url`].
    #[serde(default)]
    pub base_url: Option<String>,
    /// The key itself (prefer `api_key_env`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Name of the environment variable holding the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Timeout of each upstream call, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `api-version` (Azure) or `anthropic-version` (Anthropic) to send.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Cache TTL for this provider's model list; defaults to `cache.ttl_seconds`.
    #[serde(default)]
    pub cache_ttl_seconds: Option<u64>,
    /// Extra headers sent upstream (e.g. OpenRouter's `HTTP-Referer`); values are secret.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Settings for `kind: mock`.
    #[serde(default)]
    pub mock: Option<MockSettings>,
}

fn default_true() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl ProviderConfig {
    pub fn new(kind: ProviderKind) -> Self {
        ProviderConfig {
            kind,
            base_url: None,
            api_key: None,
            api_key_env: None,
            enabled: true,
            timeout_ms: default_timeout_ms(),
            api_version: None,
            cache_ttl_seconds: None,
            headers: BTreeMap::new(),
            mock: None,
        }
    }

    /// The configured base URL or the kind's default, without a trailing slash.
    pub fn effective_base_url(&self) -> Option<String> {
        self.base_url
            .as_deref()
            .or(self.kind.default_base_url())
            .map(|u| u.trim_end_matches('/').to_owned())
    }

    /// The API key: `api_key` if set, else the value of `api_key_env` read through `env`.
    pub fn resolve_key(&self, env: impl Fn(&str) -> Option<String>) -> Option<Secret> {
        if let Some(k) = &self.api_key {
            if !k.is_empty() {
                return Some(k.clone());
            }
        }
        self.api_key_env
            .as_deref()
            .and_then(env)
            .filter(|v| !v.is_empty())
            .map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).expect("ser"), "\"***\"");
        let mut cfg = ProviderConfig::new(ProviderKind::Openai);
        cfg.api_key = Some(s.clone());
        cfg.headers
            .insert("X-Extra".into(), Secret::new("hdr-secret"));
        let dbg = format!("{cfg:?}");
        assert!(
            !dbg.contains("sk-live-123") && !dbg.contains("hdr-secret"),
            "{dbg}"
        );
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ProviderKind::ALL {
            let v: ProviderKind =
                serde_json::from_value(serde_json::Value::String(k.as_str().into())).expect("kind");
            assert_eq!(v, k);
        }
    }

    #[test]
    fn key_resolution_prefers_inline_key() {
        let mut cfg = ProviderConfig::new(ProviderKind::Openai);
        cfg.api_key_env = Some("KEY".into());
        let env = |name: &str| (name == "KEY").then(|| "from-env".to_owned());
        assert_eq!(
            cfg.resolve_key(env)
                .map(|s| s.expose().to_owned())
                .as_deref(),
            Some("from-env")
        );
        cfg.api_key = Some(Secret::new("inline"));
        assert_eq!(
            cfg.resolve_key(env)
                .map(|s| s.expose().to_owned())
                .as_deref(),
            Some("inline")
        );
    }
}
