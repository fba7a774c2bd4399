//! Chaos experiment requests (the `POST /api/chaos/start` body), their validation into
//! faults, and the errors that name the offending field.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::ChaosSettings;

/// The body of `POST /api/chaos/start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub experiment_name: String,
    /// May be fractional (`0.5` = 30 s); capped by `chaos.max_duration_minutes`.
    pub duration_minutes: f64,
    pub faults: Vec<FaultSpec>,
    /// Makes the fault sequence reproducible: fault `i` draws from a generator seeded with
    /// a mix of `seed` and `i`, so the same seed and the same call sequence inject the same
    /// faults. Without it each run is different.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One fault of an experiment, as sent by the client. Strings are checked by
/// validation (not by serde) so a mistake comes back naming its field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// `delay`, `error`, `timeout`, `rate_limit`, `abort` or `stream_cut`.
    #[serde(rename = "type")]
    pub fault_type: String,
    /// A configured provider name, or `*` for every provider.
    pub target: String,
    /// Only requests for this model (the provider's own id, or `provider/id`). A fault with
    /// a model never applies to `list_models` or `health`, which have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `low`, `medium` (default) or `high`: sets the defaults below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// Chance (0..=1) that a matching call gets the fault. Default by severity: 0.05 / 0.2 / 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// `delay`: added latency (default 200 / 1000 / 5000 ms). `timeout`: how long the call
    /// hangs before failing with a timeout (default 2000 / 10000 / 30000 ms). `rate_limit`:
    /// the `Retry-After` sent (default 1000 / 5000 / 30000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `error`: the HTTP status to fail with, 400..=599 (default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
}

impl ExperimentSpec {
    /// Parses a request body, naming the first wrong field by its JSON path
    /// (`faults[0].probability`) in a [`ChaosError::Invalid`]. Values are only checked for
    /// their JSON type here; ranges and names are checked by [`validate`].
    pub fn from_json(body: &serde_json::Value) -> Result<ExperimentSpec, ChaosError> {
        use super::shape::{object, Kind, Mismatch};
        fn fault(v: &serde_json::Value, path: &str) -> Result<(), Mismatch> {
            object(
                v,
                path,
                &[
                    ("type", Kind::Str, true),
                    ("target", Kind::Str, true),
                    ("model", Kind::Str, false),
                    ("severity", Kind::Str, false),
                    ("probability", Kind::Num, false),
                    ("duration_ms", Kind::UInt(u64::MAX), false),
                    ("error_code", Kind::UInt(u64::from(u16::MAX)), false),
                ],
            )
            .map(|_| ())
        }
        object(
            body,
            "",
            &[
                ("experiment_name", Kind::Str, true),
                ("duration_minutes", Kind::Num, true),
                ("faults", Kind::Arr(fault), true),
                ("seed", Kind::UInt(u64::MAX), false),
            ],
        )
        .map_err(|m| ChaosError::invalid(m.path, m.message))?;
        serde_json::from_value(body.clone()).map_err(|e| ChaosError::invalid("body", e.to_string()))
    }
}

/// Why an experiment could not be started, stopped or found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChaosError {
    /// A request field is wrong; `field` is its JSON path, e.g. `faults[0].probability`.
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("chaos experiments are disabled by configuration")]
    Disabled,
    #[error("{running} experiments are already running (the limit is {max})")]
    TooManyRunning { running: usize, max: usize },
    #[error("experiment '{0}' not found")]
    NotFound(String),
}

impl ChaosError {
    /// The offending field, for a 400 response's `details`.
    pub fn field(&self) -> Option<&str> {
        match self {
            ChaosError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChaosError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a fault does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// Waits, then lets the call through.
    Delay,
    /// Fails with `error_code` (5xx → `Upstream`, 429 → `RateLimited`, 401/403 → `Auth`,
    /// 404 → `NotFound`, other 4xx → `InvalidRequest`).
    Error,
    /// Hangs for `duration_ms`, then fails with `Timeout` (an outer timeout may fire first).
    Timeout,
    /// Fails with 429 `RateLimited` and a `Retry-After`.
    RateLimit,
    /// Fails with `Connect` (connection dropped), without reaching the upstream.
    Abort,
    /// Streams only: passes a few chunks (8 / 3 / 1 by severity), then ends with
    /// `StreamInterrupted`.
    StreamCut,
}

impl FaultType {
    pub const ALL: [FaultType; 6] = [
        FaultType::Delay,
        FaultType::Error,
        FaultType::Timeout,
        FaultType::RateLimit,
        FaultType::Abort,
        FaultType::StreamCut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultType::Delay => "delay",
            FaultType::Error => "error",
            FaultType::Timeout => "timeout",
            FaultType::RateLimit => "rate_limit",
            FaultType::Abort => "abort",
            FaultType::StreamCut => "stream_cut",
        }
    }
}

/// How hard a fault hits when `probability`/`duration_ms` are not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            _ => None,
        }
    }

    fn pick<T>(self, low: T, medium: T, high: T) -> T {
        match self {
            Severity::Low => low,
            Severity::Medium => medium,
            Severity::High => high,
        }
    }
}

/// A validated fault, with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultPlan {
    #[serde(rename = "type")]
    pub fault_type: FaultType,
    /// `None` for `*`.
    #[serde(serialize_with = "ser_target")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub severity: Severity,
    pub probability: f64,
    /// Delay, hang or Retry-After, by type.
    #[serde(serialize_with = "ser_ms", rename = "duration_ms")]
    pub duration: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_after_chunks: Option<usize>,
}

fn ser_target<S: serde::Serializer>(t: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_deref().unwrap_or("*"))
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A validated experiment request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentPlan {
    pub name: String,
    pub duration: Duration,
    pub faults: Vec<FaultPlan>,
    pub seed: Option<u64>,
}

/// Checks `spec` against the caps and the known provider names.
pub fn validate(
    spec: &ExperimentSpec,
    settings: &ChaosSettings,
    providers: &BTreeSet<String>,
) -> Result<ExperimentPlan, ChaosError> {
    let name = spec.experiment_name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ChaosError::invalid(
            "experiment_name",
            "must be 1 to 128 characters",
        ));
    }
    let minutes = spec.duration_minutes;
    if !minutes.is_finite() || minutes <= 0.0 {
        return Err(ChaosError::invalid(
            "duration_minutes",
            "must be a positive number",
        ));
    }
    if minutes > settings.max_duration_minutes as f64 {
        return Err(ChaosError::invalid(
            "duration_minutes",
            format!(
                "{minutes} is over the limit of {} minutes",
                settings.max_duration_minutes
            ),
        ));
    }
    if spec.faults.is_empty() {
        return Err(ChaosError::invalid(
            "faults",
            "at least one fault is required",
        ));
    }
    if spec.faults.len() > settings.max_faults_per_experiment {
        return Err(ChaosError::invalid(
            "faults",
            format!(
                "{} faults is over the limit of {}",
                spec.faults.len(),
                settings.max_faults_per_experiment
            ),
        ));
    }
    let faults = spec
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| validate_fault(i, f, settings, providers))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ExperimentPlan {
        name: name.to_owned(),
        duration: Duration::from_secs_f64(minutes * 60.0),
        faults,
        seed: spec.seed,
    })
}

fn validate_fault(
    i: usize,
    f: &FaultSpec,
    settings: &ChaosSettings,
    providers: &BTreeSet<String>,
) -> Result<FaultPlan, ChaosError> {
    let field = |name: &str| format!("faults[{i}].{name}");
    let fault_type = FaultType::ALL
        .into_iter()
        .find(|t| t.as_str() == f.fault_type)
        .ok_or_else(|| {
            let known: Vec<_> = FaultType::ALL.iter().map(|t| t.as_str()).collect();
            ChaosError::invalid(
                field("type"),
                format!(
                    "unknown fault type '{}' (expected one of: {})",
                    f.fault_type,
                    known.join(", ")
                ),
            )
        })?;
    let target = match f.target.as_str() {
        "*" => None,
        t if providers.contains(t) => Some(t.to_owned()),
        t => {
            return Err(ChaosError::invalid(
                field("target"),
                format!("unknown provider '{t}' (use a configured provider name or '*')"),
            ))
        }
    };
    let model = match &f.model {
        Some(m) if m.trim().is_empty() => {
            return Err(ChaosError::invalid(field("model"), "must not be empty"))
        }
        m => m.clone(),
    };
    let severity = match &f.severity {
        None => Severity::Medium,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            ChaosError::invalid(
                field("severity"),
                format!("unknown severity '{s}' (expected low, medium or high)"),
            )
        })?,
    };
    let probability = f
        .probability
        .unwrap_or_else(|| severity.pick(0.05, 0.2, 0.5));
    if !(0.0..=1.0).contains(&probability) {
        return Err(ChaosError::invalid(
            field("probability"),
            format!("{probability} is not between 0 and 1"),
        ));
    }
    let default_ms = match fault_type {
        FaultType::Delay => severity.pick(200, 1_000, 5_000),
        FaultType::Timeout => severity.pick(2_000, 10_000, 30_000),
        FaultType::RateLimit => severity.pick(1_000, 5_000, 30_000),
        FaultType::Error | FaultType::Abort | FaultType::StreamCut => 0,
    };
    let ms = f.duration_ms.unwrap_or(default_ms);
    if ms > settings.max_fault_duration_ms {
        return Err(ChaosError::invalid(
            field("duration_ms"),
            format!(
                "{ms} is over the limit of {} ms",
                settings.max_fault_duration_ms
            ),
        ));
    }
    let error_code = match (fault_type, f.error_code) {
        (FaultType::Error, code) => {
            let code = code.unwrap_or(503);
            if !(400..=599).contains(&code) {
                return Err(ChaosError::invalid(
                    field("error_code"),
                    format!("{code} is not an HTTP error status (400..=599)"),
                ));
            }
            Some(code)
        }
        (FaultType::RateLimit, _) => Some(429),
        (_, Some(_)) => {
            return Err(ChaosError::invalid(
                field("error_code"),
                "only `error` faults take an error_code",
            ))
        }
        (_, None) => None,
    };
    let cut_after_chunks = (fault_type == FaultType::StreamCut).then(|| severity.pick(8, 3, 1));
    Ok(FaultPlan {
        fault_type,
        target,
        model,
        severity,
        probability,
        duration: Duration::from_millis(ms),
        error_code,
        cut_after_chunks,
    })
}
