//! The settings tree. Every struct has `#[serde(default)]`, so a file only names what it
//! changes, and `deny_unknown_fields`, so a typo is an error instead of a silent default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use modelgate_types::{ProviderConfig, Secret};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub logging: LoggingSettings,
    /// Upstream providers keyed by the name used in APIs (`openai`, `local`, ...).
    pub providers: BTreeMap<String, ProviderConfig>,
    pub cache: CacheSettings,
    pub discovery: DiscoverySettings,
    pub catalog: CatalogSettings,
    /// Chat routing: model aliases with their fallback order.
    pub routing: RoutingSettings,
    pub rate_limit: RateLimitSettings,
    /// Sections owned by other crates (`resilience`, `condense`, `chaos`, `load_test`), kept
    /// raw here because config sits below them in the layering; the binary deserializes each
    /// with [`Settings::extension`], which reports problems with their key paths.
    #[serde(skip)]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

/// Top-level sections whose types live in the crates that use them.
pub const EXTENSION_SECTIONS: &[&str] = &["resilience", "condense", "chaos", "load_test"];

impl Settings {
    /// Deserializes extension section `name` into `T` (its defaults when the section is
    /// absent), or every problem found with its full key path.
    pub fn extension<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, crate::Problems> {
        let Some(value) = self.extensions.get(name) else {
            return Ok(T::default());
        };
        if value.is_null() {
            return Ok(T::default());
        }
        serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
            let inner = e.path().to_string();
            let path = if inner == "." || inner.is_empty() {
                name.to_owned()
            } else {
                format!("{name}.{inner}")
            };
            crate::Problems(vec![crate::Problem::new(path, e.into_inner().to_string())])
        })
    }
}

/// The listener and the limits of incoming requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body; larger bodies get 413 without being read.
    pub max_body_bytes: u64,
    /// A client must send its complete request head within this time.
    pub header_read_timeout_ms: u64,
    /// Connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace_ms: u64,
    /// Bearer token for state-changing admin endpoints (none: loopback clients only).
    pub admin_token: Option<Secret>,
    /// If non-empty, `/v1/*` requires `Authorization: Bearer <one of these>`.
    pub api_keys: Vec<Secret>,
    /// Watch the config file the gateway started from and reload it (as
    /// `POST /api/config/reload` does) when its content changes. Read at start only.
    pub watch_config: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".to_owned(),
            port: 8000,
            max_body_bytes: 8 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            max_connections: 10_000,
            shutdown_grace_ms: 30_000,
            admin_token: None,
            api_keys: Vec::new(),
            watch_config: true,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    /// `tracing` filter directive used when `RUST_LOG` is not set.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The model-list cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub enabled: bool,
    /// How long a provider's model list is fresh; stale lists are served while one
    /// background refresh runs.
    pub ttl_seconds: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            ttl_seconds: 300,
        }
    }
}

/// The discovery engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    /// Background refresh period (0 disables the background refresh).
    pub refresh_interval_seconds: u64,
    /// Providers refreshed at once.
    pub max_concurrent_refreshes: usize,
    /// Where the last good model list is persisted.
    pub data_dir: PathBuf,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            refresh_interval_seconds: 300,
            max_concurrent_refreshes: 4,
            data_dir: PathBuf::from("data"),
        }
    }
}

/// The model catalog (models.dev format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogSettings {
    /// Optional URL of a fresher `api.json`; the embedded snapshot is used on any error.
    pub url: Option<String>,
    /// How often to re-fetch `url`.
    pub refresh_interval_seconds: u64,
    pub timeout_ms: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings {
            url: None,
            refresh_interval_seconds: 86_400,
            timeout_ms: 10_000,
        }
    }
}

/// Per-client request rate limits (GCRA). Every request is charged to exactly one bucket:
/// the longest `routes` prefix its path falls under, else the default one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Sustained rate per client.
    pub requests_per_minute: u32,
    /// Requests a fresh (or long idle) client may send at once.
    pub burst: u32,
    /// Per-route overrides keyed by path prefix (`/api/models/refresh`, `/v1`); a prefix
    /// matches whole path segments.
    pub routes: BTreeMap<String, RouteRateLimit>,
    /// Upper bound on tracked clients; idle ones are pruned first.
    pub max_clients: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            requests_per_minute: 1000,
            burst: 50,
            routes: BTreeMap::new(),
            max_clients: 100_000,
        }
    }
}

/// The limit of one route prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRateLimit {
    pub requests_per_minute: u32,
    pub burst: u32,
}

/// How `/v1/chat/completions` and `/v1/completions` resolve the `model` field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// Alias name -> `provider/model` targets, tried in order: when one fails (after its
    /// own retries) for any reason but the upstream rejecting the request as invalid, the
    /// next is tried. An alias takes precedence over a model id of the same name.
    pub aliases: BTreeMap<String, Vec<String>>,
}
