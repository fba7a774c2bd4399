//! The summary cache: finished condensations keyed by a SHA-256 of the canonical JSON of
//! (messages, max_tokens, model, strategy[, summarizer]), bounded by entry count, with the
//! hit/miss/latency counters `/metrics` reports under `summarization`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use modelgate_types::chat::ChatMessage;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::condenser::CondenseResult;
use crate::strategy::Strategy;

/// A cache key: SHA-256 of the canonical JSON of the inputs that decide a result.
pub type CacheKey = [u8; 32];

#[derive(Serialize)]
struct KeyView<'a> {
    v: u8,
    messages: &'a [ChatMessage],
    max_tokens: usize,
    model: Option<&'a str>,
    strategy: Strategy,
    summarizer: Option<&'a str>,
}

struct HashWriter(Sha256);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The key of a condensation. `serde_json` writes struct fields in declaration order and
/// maps (the `extra` fields of a message) sorted, so equal inputs give equal keys across
/// processes. `summarizer` (provider/model) is part of the key for `summarize` only.
pub fn cache_key(
    messages: &[ChatMessage],
    max_tokens: usize,
    model: Option<&str>,
    strategy: Strategy,
    summarizer: Option<&str>,
) -> CacheKey {
    let view = KeyView {
        v: 1,
        messages,
        max_tokens,
        model,
        strategy,
        summarizer: if strategy == Strategy::Summarize {
            summarizer
        } else {
            None
        },
    };
    let mut w = HashWriter(Sha256::new());
    // Serialising plain data into a hasher cannot fail; if it ever did, the key would
    // merely cover a prefix of the input.
    let _ = serde_json::to_writer(&mut w, &view);
    w.0.finalize().into()
}

/// The `summarization` block of `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SummarizationStats {
    /// Condensations served (`cache_hits + cache_misses`).
    pub total_summaries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Mean time to serve a condensation, in milliseconds (hits and misses).
    pub avg_latency: f64,
    /// Entries in the cache now.
    pub cache_entries: u64,
    /// `summarize` requests that fell back to `extractive`.
    pub fallbacks: u64,
}

/// The bounded cache plus its counters.
pub(crate) struct SummaryCache {
    cache: Cache<CacheKey, Arc<CondenseResult>>,
    hits: AtomicU64,
    misses: AtomicU64,
    served: AtomicU64,
    latency_us: AtomicU64,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for SummaryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryCache")
            .field("entries", &self.cache.len())
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("misses", &self.misses.load(Ordering::Relaxed))
            .finish()
    }
}

impl SummaryCache {
    pub fn new(capacity: usize) -> Self {
        SummaryCache {
            cache: Cache::new(capacity.max(1)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            served: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// Looks a key up and counts the hit or miss.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<CondenseResult>> {
        let found = self.cache.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn insert(&self, key: CacheKey, value: Arc<CondenseResult>) {
        self.cache.insert(key, value);
    }

    /// Records a served condensation's latency.
    pub fn record(&self, elapsed: Duration, fell_back: bool) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        if fell_back {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> SummarizationStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let served = self.served.load(Ordering::Relaxed);
        let latency_us = self.latency_us.load(Ordering::Relaxed);
        let avg_latency = if served == 0 {
            0.0
        } else {
            ((latency_us as f64 / served as f64) / 100.0).round() / 10.0
        };
        SummarizationStats {
            total_summaries: hits + misses,
            cache_hits: hits,
            cache_misses: misses,
            avg_latency,
            cache_entries: self.cache.len() as u64,
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
        }
    }
}
