//! Builds the gateway's shared state from settings: the provider registry, each adapter
//! wrapped in the resilience decorators, and the discovery engine over the embedded (or
//! configured) catalog. The binary and the integration tests both start from here, so
//! what is tested is what runs.
//!
//! Each provider becomes `Meter(CircuitBreaker(Retry(Timeout(FaultInjector(adapter)))))`:
//! chaos faults enter directly above the adapter, where a real outage would, so the
//! per-attempt timeout, the retries, the breaker and (above all of them, in the chat
//! handler) alias fallback see and may mask them exactly as they would a real fault; the
//! meter records what the gateway experienced after all of that.

use std::sync::Arc;
use std::time::Duration;

use modelgate_catalog::Catalog;
use modelgate_condense::CondenseSettings;
use modelgate_config::{ConfigSource, Problem, Problems, Settings};
use modelgate_discovery::{Discovery, DiscoveryOptions, ProviderHandle};
use modelgate_providers::{Registry, RegistryError};
use modelgate_resilience::{
    layer, ChaosEngine, ChaosSettings, LoadTestSettings, ResilienceSettings,
};

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
    pub chaos: ChaosSettings,
    pub load_test: LoadTestSettings,
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
        let chaos = settings
            .extension::<ChaosSettings>("chaos")
            .unwrap_or_else(|p| {
                problems.extend(p.0);
                ChaosSettings::default()
            });
        let load_test = settings
            .extension::<LoadTestSettings>("load_test")
            .unwrap_or_else(|p| {
                problems.extend(p.0);
                LoadTestSettings::default()
            });
        for (path, message) in crate::handlers::resilience::settings_problems(&chaos, &load_test) {
            problems.push(Problem::new(path, message));
        }
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
                chaos,
                load_test,
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
    let chaos = crate::handlers::resilience::chaos_engine(&settings, ext.chaos.clone());
    let decorators = Decorators {
        metrics: &metrics,
        chaos: &chaos,
    };
    let handles = provider_handles(&settings, &ext, &registry, &decorators, &|_| None);
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
    let load_tests = crate::handlers::resilience::LoadTests::new(&settings, ext.load_test.clone());
    let mut state = AppState::new(settings, source, discovery);
    state.metrics = metrics;
    state.chaos = chaos;
    state.load_tests = load_tests;
    Ok(state)
}

/// What [`provider_handles`] wraps every adapter with besides the resilience settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decorators<'a> {
    pub metrics: &'a Arc<crate::metrics::Metrics>,
    /// Its `FaultInjector` goes under the timeout, retry and breaker (when
    /// `chaos.enabled`).
    pub chaos: &'a ChaosEngine,
}

impl AppState {
    /// The running gateway's decorators (for rebuilding providers on a config reload).
    pub(crate) fn layers(&self) -> Decorators<'_> {
        Decorators {
            metrics: &self.metrics,
            chaos: &self.chaos,
        }
    }
}

/// Discovery handles for the enabled providers of `registry`: each adapter wrapped in the
/// resilience decorators and metered. `reuse` may return the already-running provider of
/// a name whose configuration did not change (config reload), which is then kept as is.
pub(crate) fn provider_handles(
    settings: &Settings,
    ext: &Extensions,
    registry: &Registry,
    decorators: &Decorators<'_>,
    reuse: &dyn Fn(&str) -> Option<Arc<dyn modelgate_providers::Provider>>,
) -> Vec<ProviderHandle> {
    let chaos = decorators
        .chaos
        .settings()
        .enabled
        .then_some(decorators.chaos);
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
                    chaos,
                );
                decorators.metrics.meter(layered.provider)
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

    #[test]
    fn chaos_and_load_test_sections_are_parsed_and_checked_with_their_paths() {
        let mut s = Settings::default();
        s.extensions.insert(
            "chaos".into(),
            serde_json::json!({"max_duration_minutes": 5, "degradation_threshold": 1.5}),
        );
        s.extensions
            .insert("load_test".into(), serde_json::json!({"max_rps": "many"}));
        let paths: Vec<String> = Extensions::from_settings(&s)
            .unwrap_err()
            .0
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(
            paths,
            ["load_test.max_rps", "chaos.degradation_threshold"],
            "{paths:?}"
        );
        s.extensions.insert(
            "chaos".into(),
            serde_json::json!({"max_duration_minutes": 5, "enabled": false}),
        );
        s.extensions
            .insert("load_test".into(), serde_json::json!({"max_rps": 50}));
        let ext = Extensions::from_settings(&s).unwrap();
        assert_eq!(ext.chaos.max_duration_minutes, 5);
        assert!(!ext.chaos.enabled);
        assert_eq!(ext.load_test.max_rps, 50.0);
    }
}
