//! Context condensation: fits a chat conversation into a token budget.
//!
//! - [`TokenCounter`]: exact OpenAI token counts (tiktoken-rs, embedded BPE files) with the
//!   chat-format overhead, and a documented approximation for other model families.
//! - [`condense_messages`]: the deterministic local strategies (`truncate`, `middle_out`,
//!   `extractive`), synchronous, usable on their own (e.g. to auto-fit a chat request).
//! - [`Condenser`]: validation, the summary cache and its statistics, the `summarize`
//!   strategy (a model call through `modelgate-providers`, falling back to `extractive`).
//! - [`JobQueue`]: bounded, prioritised async jobs with bounded result retention.
//!
//! Invariants: every result fits `max_tokens` as counted by the reported tokenizer, or the
//! call fails with [`CondenseError::BudgetTooSmall`]; no network access except the
//! summarization model call; no HTTP types.
#![forbid(unsafe_code)]

mod cache;
mod condenser;
mod error;
mod extractive;
mod queue;
mod settings;
mod strategy;
mod summarize;
mod tokens;

pub use cache::{cache_key, CacheKey, SummarizationStats};
pub use condenser::{minimum_budget, CondenseJob, CondenseRequest, CondenseResult, Condenser};
pub use error::{CondenseError, SubmitError};
pub use queue::{JobQueue, JobState, JobStatus, JobTicket, Priority, QueueConfig, QueueStats};
pub use settings::CondenseSettings;
pub use strategy::{
    condense_messages, render_transcript, Condensed, LocalOptions, Strategy, VALID_STRATEGIES,
};
pub use summarize::{Summarizer, SUMMARY_PREFIX};
pub use tokens::{
    MessageCost, TokenCounter, TokenizerKind, REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
};

/// Fits a chat request's messages into `max_tokens` for `model` with `middle_out` (what
/// OpenRouter's `"transforms": ["middle-out"]` asks for). Returns `None` when they already
/// fit. CPU-bound: call it from a blocking context for large conversations.
pub fn auto_fit(
    messages: &[modelgate_types::chat::ChatMessage],
    model: &str,
    max_tokens: usize,
) -> Result<Option<Condensed>, CondenseError> {
    let counter = TokenCounter::for_model(Some(model))?;
    let c = condense_messages(
        messages,
        max_tokens,
        &counter,
        Strategy::MiddleOut,
        &LocalOptions::default(),
    )?;
    Ok((c.original_tokens > max_tokens).then_some(c))
}
