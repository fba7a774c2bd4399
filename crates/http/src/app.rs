//! Builds the gateway's shared state from settings: the provider registry, each adapter
//! wrapped in the resilience decorators, and the discovery engine over the embedded (or
//! configured) catalog. The binary and the integration tests both start from here, so
//! what is tested is what runs.

use std::sync::Arc;
use std::time::Duration;

use modelgate_catalog::Catalog;
use modelgate_condense::CondenseSettings;
use modelgate_config::{ConfigSource, Problem, Problems, Settings};
use modelgate_discovery::{Discovery, DiscoveryOptions, ProviderHandle};
use modelgate_providers::{Registry, RegistryError};
use modelgate_resilience::{layer, ResilienceSettings};

use crate::router::AppState;

/// Why the gateway could not be assembled. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid configuration: {0}")]
    Config(Problems),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Everything [`AppState`] needs that comes from configuration, parsed and validated.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub resilience: ResilienceSettings,
    pub condense: CondenseSettings,
}

impl Extensions {
    /// Parses the sections of `settings` owned by other crates, collecting every problem.
    pub fn from_settings(settings: &Settings) -> Result<Extensions, Problems> {
        let mut problems = Vec::new();
        let resilience = settings
            .extension::<ResilienceSettings>("resilience")
            .unwrap_or_else(|p| {
                problems.extend(p.0);
                ResilienceSettings::default()
            });
        let condense = settings
            .extension::<CondenseSettings>("condense")
            .unwrap_or_else(|p| {
                problems.extend(p.0);
                CondenseSettings::default()
            });
        for message in condense.problems() {
            // `problems()` messages start with their key path ("condense.workers must ...").
            let (path, rest) = message.split_once(' ').unwrap_or(("condense", &message));
            problems.push(Problem::new(path, rest));
        }
        if let Some(p) = &condense.summarize_provider {
            if !settings.providers.contains_key(p) {
                problems.push(Problem::new(
                    "condense.summarize_provider",
                    format!("'{p}' is not a configured provider"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(Extensions {
                resilience,
                condense,
            })
        } else {
            Err(Problems(problems))
        }
    }
}

/// Builds the state for `settings`; keys are resolved through `env`. Nothing is fetched
/// yet: call [`Discovery::start`] on `state.discovery` to begin background refresh.
pub fn build_state(
    settings: Settings,
    source: ConfigSource,
    catalog: Arc<Catalog>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AppState, BuildError> {
    let ext = Extensions::from_settings(&settings).map_err(BuildError::Config)?;
    let registry = Registry::from_config(&settings.providers, env)?;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let handles = provider_handles(&settings, &ext, &registry, &metrics, &|_| None);
    let d = &settings.discovery;
    let opts = DiscoveryOptions {
        ttl: if settings.cache.enabled {
            Duration::from_secs(settings.cache.ttl_seconds)
        } else {
            Duration::ZERO
        },
        refresh_interval: (d.refresh_interval_seconds > 0)
            .then(|| Duration::from_secs(d.refresh_interval_seconds)),
        max_concurrent_refreshes: d.max_concurrent_refreshes.max(1),
        data_dir: (!d.data_dir.as_os_str().is_empty()).then(|| d.data_dir.clone()),
        ..DiscoveryOptions::default()
    };
    let discovery = Discovery::new(handles, registry.disabled().to_vec(), catalog, opts);
    let mut state = AppState::new(settings, source, discovery);
    state.metrics = metrics;
    Ok(state)
}

/// Discovery handles for the enabled providers of `registry`: each adapter wrapped in the
/// resilience decorators and metered. `reuse` may return the already-running provider of
/// a name whose configuration did not change (config reload), which is then kept as is.
pub(crate) fn provider_handles(
    settings: &Settings,
    ext: &Extensions,
    registry: &Registry,
    metrics: &Arc<crate::metrics::Metrics>,
    reuse: &dyn Fn(&str) -> Option<Arc<dyn modelgate_providers::Provider>>,
) -> Vec<ProviderHandle> {
    registry
        .iter()
        .map(|(name, provider)| {
            let cfg = settings.providers.get(name);
            let provider = reuse(name).unwrap_or_else(|| {
                let layered = layer(
                    provider.clone(),
                    &ext.resilience.retry,
                    &ext.resilience.breaker,
                    &ext.resilience.timeout,
                    None,
                );
                metrics.meter(layered.provider)
            });
            ProviderHandle {
                provider,
                ttl: cfg
                    .and_then(|c| c.cache_ttl_seconds)
                    .map(Duration::from_secs),
                refresh_timeout: Duration::from_millis(
                    cfg.map_or(30_000, |c| c.timeout_ms)
                        .saturating_mul(2)
                        .max(1000),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repo_config_files_have_valid_extension_sections() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        for file in ["default.yaml", "example.yaml"] {
            let loaded = modelgate_config::load(Some(&root.join(file))).unwrap();
            Extensions::from_settings(&loaded.settings).unwrap();
        }
    }

    #[test]
    fn bad_extension_values_are_reported_with_their_path() {
        let mut s = Settings::default();
        s.extensions.insert(
            "resilience".into(),
            serde_json::json!({"retry": {"max_attempts": "three"}}),
        );
        let err = Extensions::from_settings(&s).unwrap_err();
        assert_eq!(err.0[0].path, "resilience.retry.max_attempts");
    }
}
