//! Configuration of the resilience layer (embedded by `modelgate-config`): every field has
//! a documented default, unknown keys are rejected, and durations are in milliseconds
//! unless the name says otherwise.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `resilience` section: the decorators wrapped around every provider adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceSettings {
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub timeout: TimeoutSettings,
}

/// `resilience.timeout`: per-attempt time limits. `0` disables a limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutSettings {
    /// Whole-call limit for `list_models`, `chat`, `health` and `completion`. Default 60000.
    pub request_ms: u64,
    /// Limit from calling `chat_stream` until its first chunk arrives. Default 30000.
    pub stream_first_chunk_ms: u64,
    /// Longest silence allowed between two stream chunks. Default 30000.
    pub stream_idle_ms: u64,
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        TimeoutSettings {
            request_ms: 60_000,
            stream_first_chunk_ms: 30_000,
            stream_idle_ms: 30_000,
        }
    }
}

pub(crate) fn opt_ms(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// `resilience.retry`: retries of retryable errors with full-jitter exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Total attempts including the first; `1` disables retries. Default 3.
    pub max_attempts: u32,
    /// Backoff base: attempt `n` (from 0) waits a uniform random time in
    /// `[0, min(max_delay_ms, base_delay_ms * 2^n)]`. Default 100.
    pub base_delay_ms: u64,
    /// Upper bound of one backoff wait. Default 5000.
    pub max_delay_ms: u64,
    /// The longest upstream `Retry-After` that is honoured (waited for, then retried).
    /// A longer `Retry-After` makes the error final at once, with `retry_after` kept, so the
    /// caller can fall back to another provider or tell the client. Default 10000.
    pub max_retry_after_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            base_delay_ms: 100,
            max_delay_ms: 5_000,
            max_retry_after_ms: 10_000,
        }
    }
}

/// `resilience.breaker`: one circuit breaker per provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Whether the breaker is installed at all. Default true.
    pub enabled: bool,
    /// Consecutive failures (client errors excluded) that open the circuit. Default 5.
    pub failure_threshold: u32,
    /// How long an open circuit fails fast before one half-open probe. Default 30000.
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            enabled: true,
            failure_threshold: 5,
            cooldown_ms: 30_000,
        }
    }
}

/// `chaos`: safety caps and measurement knobs of fault-injection experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosSettings {
    /// Whether experiments may be started. Default true (the endpoints are admin-only).
    pub enabled: bool,
    /// Longest experiment, in minutes. Default 60.
    pub max_duration_minutes: u64,
    /// Experiments running at the same time. Default 3.
    pub max_concurrent_experiments: usize,
    /// Faults in one experiment. Default 16.
    pub max_faults_per_experiment: usize,
    /// Longest `duration_ms` of a `delay` or `timeout` fault. Default 60000.
    pub max_fault_duration_ms: u64,
    /// Finished experiments kept for `GET` (oldest dropped first). Default 50.
    pub retained_experiments: usize,
    /// Client-facing success rate during an experiment below which
    /// `system_degradation_detected` is true. Default 0.95.
    pub degradation_threshold: f64,
    /// Seconds of client-facing outcomes before the start that form the baseline success
    /// rate. Default 60.
    pub baseline_window_seconds: u64,
    /// Client-facing outcomes in the sliding window that decides recovery after the stop.
    /// Default 20.
    pub recovery_window_requests: usize,
}

impl Default for ChaosSettings {
    fn default() -> Self {
        ChaosSettings {
            enabled: true,
            max_duration_minutes: 60,
            max_concurrent_experiments: 3,
            max_faults_per_experiment: 16,
            max_fault_duration_ms: 60_000,
            retained_experiments: 50,
            degradation_threshold: 0.95,
            baseline_window_seconds: 60,
            recovery_window_requests: 20,
        }
    }
}

/// `load_test`: caps of the built-in open-loop load generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadTestSettings {
    /// Whether load tests may be started. Default true (the endpoints are admin-only).
    pub enabled: bool,
    /// Longest test, in minutes. Default 30.
    pub max_duration_minutes: u64,
    /// Highest `target_rps`. Default 1000.
    pub max_rps: f64,
    /// Highest tier user count (in-flight cap) allowed; 1000 allows `extreme`. Default 1000.
    pub max_users: usize,
    /// Tests running at the same time. Default 1.
    pub max_concurrent_tests: usize,
    /// Finished tests kept for `GET` (oldest dropped first). Default 20.
    pub retained_tests: usize,
    /// After the schedule ends, how long in-flight requests may still finish before the
    /// test completes without them (they count as failed). Default 30000.
    pub drain_timeout_ms: u64,
}

impl Default for LoadTestSettings {
    fn default() -> Self {
        LoadTestSettings {
            enabled: true,
            max_duration_minutes: 30,
            max_rps: 1_000.0,
            max_users: 1_000,
            max_concurrent_tests: 1,
            retained_tests: 20,
            drain_timeout_ms: 30_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_keys_and_unknown_keys_fail() {
        let r: RetrySettings =
            serde_json::from_str(r#"{"max_attempts": 5}"#).expect("partial retry settings");
        assert_eq!(r.max_attempts, 5);
        assert_eq!(r.base_delay_ms, RetrySettings::default().base_delay_ms);
        assert!(serde_json::from_str::<BreakerSettings>(r#"{"threshold": 1}"#).is_err());
        let c: ChaosSettings = serde_json::from_str("{}").expect("empty chaos settings");
        assert_eq!(c, ChaosSettings::default());
        let l: LoadTestSettings = serde_json::from_str("{}").expect("empty load settings");
        assert_eq!(l, LoadTestSettings::default());
        let t: TimeoutSettings = serde_json::from_str("{}").expect("empty timeout settings");
        assert_eq!(t, TimeoutSettings::default());
    }
}
