//! [`Condenser`]: validation, the summary cache, the local strategies (on the blocking
//! pool) and `summarize` with its fallback, behind one `condense` call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use modelgate_providers::Provider;
use modelgate_types::chat::ChatMessage;
use serde::{Deserialize, Serialize};

use crate::cache::{cache_key, SummarizationStats, SummaryCache};
use crate::error::CondenseError;
use crate::settings::CondenseSettings;
use crate::strategy::{render_transcript, Condensed, LocalOptions, Prepared, Strategy};
use crate::summarize::{self, Plan, Summarizer};
use crate::tokens::{MessageCost, TokenCounter, TokenizerKind};

/// The `POST /api/condense` body as sent (validated by [`Condenser::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CondenseRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// The target model: decides the tokenizer.
    #[serde(default)]
    pub model: Option<String>,
    /// `truncate`, `middle_out`, `extractive` or `summarize` (default from settings).
    #[serde(default)]
    pub strategy: Option<String>,
}

/// A validated condensation request.
#[derive(Debug, Clone, PartialEq)]
pub struct CondenseJob {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: usize,
    pub model: Option<String>,
    pub strategy: Strategy,
}

/// The result of a condensation (the sync response body without `status`, and the
/// `result` of a finished async job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CondenseResult {
    /// The model summary (`summarize`), or a `role: text` rendering of the condensed
    /// conversation (other strategies).
    pub summary: String,
    pub original_tokens: u64,
    pub condensed_tokens: u64,
    /// `condensed_tokens / original_tokens`, rounded to 4 decimals.
    pub compression_ratio: f64,
    pub processing_time_ms: u64,
    pub cache_hit: bool,
    /// The condensed conversation, ready to send.
    pub messages: Vec<ChatMessage>,
    pub strategy_requested: Strategy,
    pub strategy_used: Strategy,
    /// Why `strategy_used` differs from `strategy_requested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The tokenizer every count above was made with.
    pub tokenizer: TokenizerKind,
    pub max_tokens: u64,
}

impl CondenseResult {
    fn from_condensed(
        c: Condensed,
        requested: Strategy,
        max_tokens: usize,
        elapsed: Duration,
    ) -> Self {
        let ratio = if c.original_tokens == 0 {
            1.0
        } else {
            (c.condensed_tokens as f64 / c.original_tokens as f64 * 10_000.0).round() / 10_000.0
        };
        CondenseResult {
            summary: c
                .model_summary
                .unwrap_or_else(|| render_transcript(&c.messages)),
            original_tokens: c.original_tokens as u64,
            condensed_tokens: c.condensed_tokens as u64,
            compression_ratio: ratio,
            processing_time_ms: millis(elapsed),
            cache_hit: false,
            messages: c.messages,
            strategy_requested: requested,
            strategy_used: c.strategy_used,
            fallback_reason: c.fallback_reason,
            tokenizer: c.tokenizer,
            max_tokens: max_tokens as u64,
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Condenses conversations: validation, cache, strategies, summarization and its
/// fallback. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Condenser {
    settings: CondenseSettings,
    summarizer: Option<Summarizer>,
    cache: SummaryCache,
}

impl Condenser {
    /// A condenser without a summarization model (`summarize` falls back to `extractive`).
    pub fn new(settings: CondenseSettings) -> Self {
        Condenser {
            cache: SummaryCache::new(settings.cache_capacity),
            settings,
            summarizer: None,
        }
    }

    /// Uses `model` on `provider` for `summarize` (the timeout comes from the settings).
    pub fn with_summarizer(
        mut self,
        provider: Arc<dyn Provider>,
        model: impl Into<String>,
    ) -> Self {
        self.summarizer = Some(Summarizer {
            provider,
            model: model.into(),
            timeout: Duration::from_millis(self.settings.summarize_timeout_ms.max(1)),
        });
        self
    }

    pub fn settings(&self) -> &CondenseSettings {
        &self.settings
    }

    /// Checks a request: non-empty messages, `max_tokens` ≥ 1, a known strategy, and a
    /// budget that can hold at least the newest message cut to one token.
    pub fn validate(&self, request: CondenseRequest) -> Result<CondenseJob, CondenseError> {
        if request.messages.is_empty() {
            return Err(CondenseError::EmptyMessages);
        }
        let max_tokens = match request.max_tokens {
            None => return Err(CondenseError::MissingMaxTokens),
            Some(n) if n <= 0 => return Err(CondenseError::InvalidMaxTokens(n)),
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let strategy = match request.strategy.as_deref() {
            None => self.settings.default_strategy,
            Some(s) => s.parse()?,
        };
        let counter = TokenCounter::for_model(request.model.as_deref())?;
        let minimum = minimum_budget(&counter, &request.messages);
        if max_tokens < minimum {
            return Err(CondenseError::BudgetTooSmall {
                max_tokens,
                minimum,
            });
        }
        Ok(CondenseJob {
            messages: request.messages,
            max_tokens,
            model: request.model,
            strategy,
        })
    }

    /// Condenses a validated request, from the cache when possible.
    pub async fn condense(&self, job: CondenseJob) -> Result<CondenseResult, CondenseError> {
        let started = Instant::now();
        let summarizer_id = self.summarizer.as_ref().map(Summarizer::id);
        let key = cache_key(
            &job.messages,
            job.max_tokens,
            job.model.as_deref(),
            job.strategy,
            summarizer_id.as_deref(),
        );
        if let Some(hit) = self.cache.get(&key) {
            let mut result = (*hit).clone();
            result.cache_hit = true;
            result.processing_time_ms = millis(started.elapsed());
            self.cache.record(started.elapsed(), false);
            return Ok(result);
        }
        let requested = job.strategy;
        let max_tokens = job.max_tokens;
        let counter = TokenCounter::for_model(job.model.as_deref())?;
        let condensed = if requested == Strategy::Summarize {
            self.summarize(job.messages, max_tokens, counter).await?
        } else {
            let options = self.local_options();
            blocking(move || {
                condense_prepared(
                    &job.messages,
                    None,
                    &counter,
                    max_tokens,
                    requested,
                    &options,
                    None,
                )
            })
            .await?
        };
        let fell_back = condensed.fallback_reason.is_some();
        let result =
            CondenseResult::from_condensed(condensed, requested, max_tokens, started.elapsed());
        if !fell_back {
            // A fallback is not cached, so the model is asked again next time.
            self.cache.insert(key, Arc::new(result.clone()));
        }
        self.cache.record(started.elapsed(), fell_back);
        Ok(result)
    }

    /// The `summarization` block of `/metrics`.
    pub fn stats(&self) -> SummarizationStats {
        self.cache.stats()
    }

    fn local_options(&self) -> LocalOptions {
        LocalOptions {
            middle_out_note: self.settings.middle_out_note,
        }
    }

    async fn summarize(
        &self,
        messages: Vec<ChatMessage>,
        max_tokens: usize,
        counter: TokenCounter,
    ) -> Result<Condensed, CondenseError> {
        let options = self.local_options();
        let messages = Arc::new(messages);
        let Some(summarizer) = self.summarizer.clone() else {
            let reason = "no summarization model is configured \
                          (condense.summarize_provider / condense.summarize_model)";
            return blocking(move || {
                condense_prepared(
                    &messages,
                    None,
                    &counter,
                    max_tokens,
                    Strategy::Extractive,
                    &options,
                    Some(reason.to_owned()),
                )
            })
            .await;
        };
        let max_input = self.settings.summarize_max_input_tokens;
        let (costs, plan) = {
            let messages = Arc::clone(&messages);
            let model = summarizer.model.clone();
            blocking(move || {
                let p = Prepared::new(&messages, &counter);
                let plan = summarize::plan(&p, &counter, max_tokens, &model, max_input)?;
                Ok((p.costs, plan))
            })
            .await?
        };
        let reason = match plan {
            Plan::Local {
                fallback_reason: None,
            } => {
                return blocking(move || {
                    condense_prepared(
                        &messages,
                        Some(costs),
                        &counter,
                        max_tokens,
                        Strategy::Summarize,
                        &options,
                        None,
                    )
                })
                .await;
            }
            Plan::Local {
                fallback_reason: Some(reason),
            } => reason,
            Plan::Ask {
                request,
                kept,
                summary_pos,
            } => match summarize::ask(&summarizer, &request).await {
                Err(reason) => reason,
                Ok(summary) => {
                    let messages = Arc::clone(&messages);
                    let costs = costs.clone();
                    let assembled = blocking(move || {
                        let p = Prepared::with_costs(&messages, costs);
                        summarize::assemble(&p, &counter, max_tokens, kept, summary_pos, summary)
                    })
                    .await?;
                    match assembled {
                        Ok(done) => return Ok(done),
                        Err(reason) => reason,
                    }
                }
            },
        };
        tracing::warn!(summarizer = %summarizer.id(), %reason, "summarize fell back to extractive");
        blocking(move || {
            condense_prepared(
                &messages,
                Some(costs),
                &counter,
                max_tokens,
                Strategy::Extractive,
                &options,
                Some(reason),
            )
        })
        .await
    }
}

/// The least `max_tokens` a conversation can be condensed to: the newest non-system
/// message (or the first system message, when there is no other) cut to one token,
/// plus the chat-format overhead.
pub fn minimum_budget(counter: &TokenCounter, messages: &[ChatMessage]) -> usize {
    let mandatory = messages
        .iter()
        .rev()
        .find(|m| !crate::strategy::is_pinned(m))
        .or_else(|| messages.first());
    crate::tokens::REPLY_PRIMING_TOKENS + mandatory.map_or(0, |m| counter.message_cost(m).minimum())
}

fn condense_prepared(
    messages: &[ChatMessage],
    costs: Option<Vec<MessageCost>>,
    counter: &TokenCounter,
    max_tokens: usize,
    strategy: Strategy,
    options: &LocalOptions,
    fallback_reason: Option<String>,
) -> Result<Condensed, CondenseError> {
    let p = match costs {
        Some(costs) => Prepared::with_costs(messages, costs),
        None => Prepared::new(messages, counter),
    };
    p.run_local(counter, max_tokens, strategy, options, fallback_reason)
}

/// Runs CPU-bound work on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, CondenseError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CondenseError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CondenseError::Internal(format!("condensation task failed: {e}")))?
}
