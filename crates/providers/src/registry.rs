//! The registry: builds one [`Provider`] trait object per enabled config entry, all sharing
//! one [`HttpClient`], and looks them up by name. [`build_provider`] rebuilds a single
//! entry (hot reload).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use modelgate_types::{ProviderConfig, ProviderKind, Secret};

use crate::anthropic::AnthropicProvider;
use crate::azure::AzureProvider;
use crate::cohere::CohereProvider;
use crate::gemini::GeminiProvider;
use crate::http::{ClientError, HttpClient, Upstream};
use crate::mock::MockProvider;
use crate::ollama::OllamaProvider;
use crate::openai::OpenAiProvider;
use crate::Provider;

/// Why a provider (or the registry) could not be built. Never contains a key or a header
/// value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The shared HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The kind has no default endpoint and none is configured.
    #[error("provider '{provider}': base_url is required for kind '{kind}'")]
    MissingBaseUrl {
        provider: String,
        kind: ProviderKind,
    },
    /// The base URL does not parse or is not http(s).
    #[error("provider '{provider}': base_url is not a valid http(s) URL: {reason}")]
    InvalidBaseUrl { provider: String, reason: String },
    /// The kind needs a key and none was found.
    #[error("provider '{provider}': kind '{kind}' needs an API key (set api_key_env or api_key)")]
    MissingKey {
        provider: String,
        kind: ProviderKind,
    },
    /// A configured extra header has an invalid name or value (the value is not shown).
    #[error("provider '{provider}': header '{header}' has an invalid name or value")]
    InvalidHeader { provider: String, header: String },
}

/// The configured providers, built and ready.
#[derive(Debug, Clone)]
pub struct Registry {
    client: HttpClient,
    providers: BTreeMap<String, Arc<dyn Provider>>,
    disabled: Vec<String>,
}

impl Registry {
    /// Builds every enabled entry with a new shared [`HttpClient`]; keys are resolved with
    /// `env` (`api_key`, else the variable named by `api_key_env`).
    pub fn from_config(
        providers: &BTreeMap<String, ProviderConfig>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Registry, RegistryError> {
        Registry::with_client(HttpClient::new()?, providers, env)
    }

    /// As [`Registry::from_config`], with a given client.
    pub fn with_client(
        client: HttpClient,
        providers: &BTreeMap<String, ProviderConfig>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Registry, RegistryError> {
        let mut built = BTreeMap::new();
        let mut disabled = Vec::new();
        for (name, cfg) in providers {
            if !cfg.enabled {
                disabled.push(name.clone());
                continue;
            }
            let key = cfg.resolve_key(&env);
            built.insert(name.clone(), build_provider(name, cfg, key, &client)?);
        }
        Ok(Registry {
            client,
            providers: built,
            disabled,
        })
    }

    /// The provider with this configured name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// Every enabled provider, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.providers.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The names of the enabled providers, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The kind of an enabled provider.
    pub fn kind(&self, name: &str) -> Option<ProviderKind> {
        self.providers.get(name).map(|p| p.kind())
    }

    /// Entries present in the config with `enabled: false` (not built).
    pub fn disabled(&self) -> &[String] {
        &self.disabled
    }

    /// The shared HTTP client (for [`build_provider`] on hot reload).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// Number of enabled providers.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether no provider is enabled.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Replaces (or adds) one provider, e.g. after [`build_provider`] on a config change.
    pub fn insert(&mut self, name: impl Into<String>, provider: Arc<dyn Provider>) {
        let name = name.into();
        self.disabled.retain(|d| *d != name);
        self.providers.insert(name, provider);
    }

    /// Removes one provider.
    pub fn remove(&mut self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.remove(name)
    }
}

/// Builds the adapter for one config entry (whether or not it is enabled).
pub fn build_provider(
    name: &str,
    cfg: &ProviderConfig,
    key: Option<Secret>,
    client: &HttpClient,
) -> Result<Arc<dyn Provider>, RegistryError> {
    if cfg.kind == ProviderKind::Mock {
        let settings = cfg.mock.clone().unwrap_or_default();
        return Ok(Arc::new(MockProvider::new(
            name,
            settings,
            Duration::from_millis(cfg.timeout_ms.max(1)),
        )));
    }
    if cfg.kind.requires_key() && key.is_none() {
        return Err(RegistryError::MissingKey {
            provider: name.to_owned(),
            kind: cfg.kind,
        });
    }
    let base = cfg
        .effective_base_url()
        .ok_or_else(|| RegistryError::MissingBaseUrl {
            provider: name.to_owned(),
            kind: cfg.kind,
        })?;
    match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        Ok(u) => {
            return Err(RegistryError::InvalidBaseUrl {
                provider: name.to_owned(),
                reason: format!("scheme '{}' is not http or https", u.scheme()),
            })
        }
        Err(e) => {
            return Err(RegistryError::InvalidBaseUrl {
                provider: name.to_owned(),
                reason: e.to_string(),
            })
        }
    }
    let up = Upstream::new(
        name,
        &base,
        key,
        Duration::from_millis(cfg.timeout_ms.max(1)),
        &cfg.headers,
        client.clone(),
    )
    .map_err(|h| RegistryError::InvalidHeader {
        provider: name.to_owned(),
        header: h.0,
    })?;
    Ok(match cfg.kind {
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(up, cfg.api_version.clone())),
        ProviderKind::Gemini => Arc::new(GeminiProvider::new(up)),
        ProviderKind::Cohere => Arc::new(CohereProvider::new(up)),
        ProviderKind::Azure => Arc::new(AzureProvider::new(up, cfg.api_version.clone())),
        ProviderKind::Ollama => Arc::new(OllamaProvider::new(up)),
        kind => Arc::new(OpenAiProvider::new(up, kind)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig::new(kind)
    }

    #[test]
    fn builds_enabled_reports_disabled() {
        let mut map = BTreeMap::new();
        let mut openai = cfg(ProviderKind::Openai);
        openai.api_key_env = Some("OPENAI_KEY".into());
        map.insert("openai".to_owned(), openai);
        let mut off = cfg(ProviderKind::Anthropic);
        off.enabled = false;
        map.insert("claude".to_owned(), off);
        map.insert("demo".to_owned(), cfg(ProviderKind::Mock));
        let mut local = cfg(ProviderKind::Ollama);
        local.base_url = Some("http://127.0.0.1:11434/".into());
        map.insert("local".to_owned(), local);
        let env = |k: &str| (k == "OPENAI_KEY").then(|| "sk-test-000000000000".to_owned());
        let reg = Registry::from_config(&map, env).expect("registry");
        assert_eq!(reg.names().collect::<Vec<_>>(), ["demo", "local", "openai"]);
        assert_eq!(reg.disabled(), ["claude"]);
        assert_eq!(reg.kind("openai"), Some(ProviderKind::Openai));
        assert_eq!(reg.kind("demo"), Some(ProviderKind::Mock));
        assert_eq!(reg.get("local").map(|p| p.name()), Some("local"));
        assert!(reg.get("claude").is_none());
        let dbg = format!("{reg:?}");
        assert!(!dbg.contains("sk-test-000000000000"), "{dbg}");
    }

    #[test]
    fn build_errors() {
        let client = HttpClient::new().expect("client");
        let e = build_provider(
            "az",
            &cfg(ProviderKind::Azure),
            Some(Secret::new("k")),
            &client,
        )
        .expect_err("no base");
        assert!(matches!(e, RegistryError::MissingBaseUrl { .. }), "{e}");
        let e =
            build_provider("oa", &cfg(ProviderKind::Openai), None, &client).expect_err("no key");
        assert!(matches!(e, RegistryError::MissingKey { .. }), "{e}");
        let mut bad = cfg(ProviderKind::Vllm);
        bad.base_url = Some("ftp://x".into());
        assert!(matches!(
            build_provider("v", &bad, None, &client).err(),
            Some(RegistryError::InvalidBaseUrl { .. })
        ));
        let mut hdr = cfg(ProviderKind::Vllm);
        hdr.headers
            .insert("X-Bad".into(), Secret::new("line\nbreak-secret"));
        let e = build_provider("v", &hdr, None, &client).expect_err("bad header");
        assert!(!e.to_string().contains("break-secret"), "{e}");
    }
}
