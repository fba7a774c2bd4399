//! [`CondenseSettings`]: plain serde settings, meant to be embedded in the gateway's config
//! tree (`condense:`), with defaults that work without a file.

use serde::{Deserialize, Serialize};

use crate::strategy::Strategy;

/// Condensation settings. Every field has a default, so a config file names only what it
/// changes; unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CondenseSettings {
    /// Strategy used when a request names none.
    pub default_strategy: Strategy,
    /// Condensation results kept in the summary cache (entries).
    pub cache_capacity: usize,
    /// Async jobs allowed to wait in the queue; one more is rejected (HTTP 503).
    pub queue_capacity: usize,
    /// Worker tasks processing async jobs.
    pub workers: usize,
    /// Finished async jobs are kept this long for status lookups...
    pub result_ttl_secs: u64,
    /// ...and at most this many (the oldest finished ones are evicted first).
    pub result_max_count: usize,
    /// Provider name (from `providers:`) that serves the `summarize` strategy.
    pub summarize_provider: Option<String>,
    /// Model id on that provider used to write summaries.
    pub summarize_model: Option<String>,
    /// Time allowed for one summarization call before falling back to `extractive`.
    pub summarize_timeout_ms: u64,
    /// Older turns sent to the summarization model are first reduced (extractively) to
    /// this many tokens, so the request fits a summarizer's context window.
    pub summarize_max_input_tokens: usize,
    /// `middle_out` inserts a short system note saying how many messages it omitted
    /// (when the note fits in the budget).
    pub middle_out_note: bool,
    /// Condense every `/v1/chat/completions` conversation that exceeds the target model's
    /// context window with `middle_out` before forwarding it (a request can also ask with
    /// `"transforms": ["middle-out"]`, or opt out with `"transforms": []`).
    pub auto_fit: bool,
}

impl Default for CondenseSettings {
    fn default() -> Self {
        CondenseSettings {
            default_strategy: Strategy::Truncate,
            cache_capacity: 1000,
            queue_capacity: 100,
            workers: 2,
            result_ttl_secs: 3600,
            result_max_count: 1000,
            summarize_provider: None,
            summarize_model: None,
            summarize_timeout_ms: 30_000,
            summarize_max_input_tokens: 32_000,
            middle_out_note: true,
            auto_fit: false,
        }
    }
}

impl CondenseSettings {
    /// Problems a config validator should report (empty when the settings are usable).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let positive = [
            ("cache_capacity", self.cache_capacity),
            ("queue_capacity", self.queue_capacity),
            ("workers", self.workers),
            ("result_max_count", self.result_max_count),
            (
                "summarize_max_input_tokens",
                self.summarize_max_input_tokens,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                out.push(format!("condense.{name} must be at least 1"));
            }
        }
        if self.summarize_timeout_ms == 0 {
            out.push("condense.summarize_timeout_ms must be at least 1".to_owned());
        }
        if self.summarize_provider.is_some() != self.summarize_model.is_some() {
            out.push(
                "condense.summarize_provider and condense.summarize_model must be set together"
                    .to_owned(),
            );
        }
        out
    }
}
