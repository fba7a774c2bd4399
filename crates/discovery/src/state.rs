//! Per-provider state (last good models and status) and the immutable snapshot that
//! queries run against.

use std::sync::Arc;

use modelgate_types::{Model, ProviderKind};
use serde::Serialize;

use crate::query::ModelSet;

/// `active` (last refresh succeeded), `error` (it failed; last good models are served
/// as stale), `disabled` (configured with `enabled: false`), `pending` (not checked yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Active,
    Error,
    Disabled,
    Pending,
}

impl ProviderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Active => "active",
            ProviderStatus::Error => "error",
            ProviderStatus::Disabled => "disabled",
            ProviderStatus::Pending => "pending",
        }
    }
}

/// What discovery knows about one provider.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub name: String,
    pub kind: Option<ProviderKind>,
    pub status: ProviderStatus,
    /// RFC 3339 time of the last refresh attempt.
    pub last_check: Option<String>,
    /// RFC 3339 time of the last successful refresh.
    pub last_success: Option<String>,
    /// The last good model list (stale-marked while the provider fails).
    pub models: Arc<Vec<Arc<Model>>>,
    /// Redacted error of the last failed refresh.
    pub error: Option<String>,
    pub response_time_ms: Option<u64>,
    /// Which installed adapter this state belongs to: a refresh by an adapter that a
    /// config reload has since replaced must not overwrite the new one's results.
    pub(crate) generation: u64,
}

impl ProviderState {
    pub fn new(name: &str, kind: Option<ProviderKind>, status: ProviderStatus) -> Self {
        ProviderState {
            name: name.to_owned(),
            kind,
            status,
            last_check: None,
            last_success: None,
            models: Arc::new(Vec::new()),
            error: None,
            response_time_ms: None,
            generation: 0,
        }
    }
}

/// An immutable view of everything discovery serves; replaced whole on every change.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one on every change; used for ETags and caches of derived data.
    pub version: u64,
    /// Instance-unique salt, so ETags differ across restarts.
    pub epoch: u64,
    pub discovered: ModelSet,
    pub catalog: Arc<ModelSet>,
    /// Discovered models plus catalog models not already discovered under the same
    /// provider name and id.
    pub all: ModelSet,
    /// Provider states at the time of the snapshot, by name.
    pub providers: Vec<ProviderState>,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// Whether any provider is configured (else the catalog is the default source).
    pub has_providers: bool,
}

impl Snapshot {
    /// Names of providers whose status is `active`.
    pub fn active_providers(&self) -> Vec<&str> {
        self.providers
            .iter()
            .filter(|p| p.status == ProviderStatus::Active)
            .map(|p| p.name.as_str())
            .collect()
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderState> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// A strong ETag base for this snapshot.
    pub fn etag_base(&self) -> String {
        format!("{:x}-{}", self.epoch, self.version)
    }
}
