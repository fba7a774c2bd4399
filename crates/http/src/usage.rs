//! Usage accounting of proxied calls per `(provider, model)`: requests by outcome, latency
//! and token counts from the upstream's `usage`. A bounded in-memory registry; the metrics
//! endpoints publish its [`UsageRegistry::snapshot`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use modelgate_types::chat::Usage;
use serde::Serialize;

/// The model name under which calls are counted once the registry is full.
pub const OVERFLOW_MODEL: &str = "(other)";

/// How one upstream call (one target of a request) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A provider-side failure (5xx, timeout, connection, auth, bad response, cut stream).
    Failure,
    /// The upstream refused the request as invalid (4xx other than 401/403/429).
    ClientError,
    /// The client went away before the call finished (streams).
    Cancelled,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    requests: u64,
    successes: u64,
    failures: u64,
    client_errors: u64,
    cancelled: u64,
    latency_us_sum: u64,
    latency_us_max: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// The counters of one `(provider, model)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageEntry {
    pub provider: String,
    /// The upstream model id, or [`OVERFLOW_MODEL`].
    pub model: String,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub client_errors: u64,
    pub cancelled: u64,
    /// Sum of call durations (for streams: until the last chunk), milliseconds.
    pub latency_ms_sum: f64,
    pub latency_ms_avg: f64,
    pub latency_ms_max: f64,
    /// From the upstream's `usage` (calls without one add nothing).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Per-`(provider, model)` counters. Holds at most `max_keys` distinct models plus one
/// [`OVERFLOW_MODEL`] entry per provider, so client-chosen model names cannot grow it
/// without bound.
#[derive(Debug)]
pub struct UsageRegistry {
    max_keys: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: usize,
    by_provider: HashMap<String, HashMap<String, Counters>>,
}

impl Default for UsageRegistry {
    fn default() -> Self {
        UsageRegistry::new(UsageRegistry::DEFAULT_MAX_KEYS)
    }
}

impl UsageRegistry {
    /// Distinct `(provider, model)` keys kept by default.
    pub const DEFAULT_MAX_KEYS: usize = 1000;

    pub fn new(max_keys: usize) -> Self {
        UsageRegistry {
            max_keys: max_keys.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one finished call.
    pub fn record(
        &self,
        provider: &str,
        model: &str,
        outcome: Outcome,
        latency: Duration,
        usage: Option<&Usage>,
    ) {
        let mut g = self.lock();
        let inner = &mut *g;
        let full = inner.keys >= self.max_keys;
        if !inner.by_provider.contains_key(provider) {
            inner
                .by_provider
                .insert(provider.to_owned(), HashMap::new());
        }
        let Some(models) = inner.by_provider.get_mut(provider) else {
            return;
        };
        let key = if models.contains_key(model) || !full {
            model
        } else {
            OVERFLOW_MODEL
        };
        if !models.contains_key(key) {
            if key != OVERFLOW_MODEL {
                inner.keys += 1;
            }
            models.insert(key.to_owned(), Counters::default());
        }
        let Some(c) = models.get_mut(key) else {
            return;
        };
        c.requests += 1;
        match outcome {
            Outcome::Success => c.successes += 1,
            Outcome::Failure => c.failures += 1,
            Outcome::ClientError => c.client_errors += 1,
            Outcome::Cancelled => c.cancelled += 1,
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        c.latency_us_sum = c.latency_us_sum.saturating_add(us);
        c.latency_us_max = c.latency_us_max.max(us);
        if let Some(u) = usage {
            c.prompt_tokens = c.prompt_tokens.saturating_add(u.prompt_tokens);
            c.completion_tokens = c.completion_tokens.saturating_add(u.completion_tokens);
        }
    }

    /// Every entry, ordered by provider then model.
    pub fn snapshot(&self) -> Vec<UsageEntry> {
        let g = self.lock();
        let mut out: Vec<UsageEntry> = g
            .by_provider
            .iter()
            .flat_map(|(p, models)| {
                models.iter().map(move |(m, c)| {
                    let sum = c.latency_us_sum as f64 / 1000.0;
                    UsageEntry {
                        provider: p.clone(),
                        model: m.clone(),
                        requests: c.requests,
                        successes: c.successes,
                        failures: c.failures,
                        client_errors: c.client_errors,
                        cancelled: c.cancelled,
                        latency_ms_sum: sum,
                        latency_ms_avg: if c.requests == 0 {
                            0.0
                        } else {
                            sum / c.requests as f64
                        },
                        latency_ms_max: c.latency_us_max as f64 / 1000.0,
                        prompt_tokens: c.prompt_tokens,
                        completion_tokens: c.completion_tokens,
                        total_tokens: c.prompt_tokens.saturating_add(c.completion_tokens),
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.provider
                .cmp(&b.provider)
                .then_with(|| a.model.cmp(&b.model))
        });
        out
    }

    /// The entry of `(provider, model)`, if it has one.
    pub fn get(&self, provider: &str, model: &str) -> Option<UsageEntry> {
        self.snapshot()
            .into_iter()
            .find(|e| e.provider == provider && e.model == model)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_outcomes_latency_and_tokens() {
        let r = UsageRegistry::default();
        let u = Usage::new(10, 5);
        r.record(
            "openai",
            "gpt-4o",
            Outcome::Success,
            Duration::from_millis(20),
            Some(&u),
        );
        r.record(
            "openai",
            "gpt-4o",
            Outcome::Failure,
            Duration::from_millis(40),
            None,
        );
        r.record(
            "openai",
            "gpt-4o",
            Outcome::Cancelled,
            Duration::from_millis(1),
            None,
        );
        r.record("groq", "llama", Outcome::ClientError, Duration::ZERO, None);
        let e = r.get("openai", "gpt-4o").unwrap();
        assert_eq!(
            (e.requests, e.successes, e.failures, e.cancelled),
            (3, 1, 1, 1)
        );
        assert_eq!(
            (e.prompt_tokens, e.completion_tokens, e.total_tokens),
            (10, 5, 15)
        );
        assert!((e.latency_ms_max - 40.0).abs() < 1e-9);
        assert!((e.latency_ms_avg - 61.0 / 3.0).abs() < 1e-9);
        let s = r.snapshot();
        assert_eq!(s[0].provider, "groq");
        assert_eq!(s[0].client_errors, 1);
    }

    #[test]
    fn bounded_keys_overflow_per_provider() {
        let r = UsageRegistry::new(2);
        for m in ["a", "b", "c", "d"] {
            r.record("p", m, Outcome::Success, Duration::ZERO, None);
        }
        r.record("q", "x", Outcome::Success, Duration::ZERO, None);
        // Existing keys keep counting after the registry is full.
        r.record("p", "a", Outcome::Success, Duration::ZERO, None);
        let s = r.snapshot();
        let keys: Vec<(String, String, u64)> = s
            .into_iter()
            .map(|e| (e.provider, e.model, e.requests))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("p".into(), OVERFLOW_MODEL.into(), 2),
                ("p".into(), "a".into(), 2),
                ("p".into(), "b".into(), 1),
                ("q".into(), OVERFLOW_MODEL.into(), 1),
            ]
        );
    }
}
