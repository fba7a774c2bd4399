//! Errors: [`CondenseError`] for bad input and failed condensations, [`SubmitError`] for the
//! job queue. Each variant says whether it is the client's fault, so the HTTP layer can map
//! it to a status with one `match`.

use crate::strategy::VALID_STRATEGIES;

/// Why a condensation request was rejected or could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CondenseError {
    /// `messages` was empty.
    #[error("messages must not be empty")]
    EmptyMessages,
    /// `max_tokens` was absent.
    #[error("max_tokens is required")]
    MissingMaxTokens,
    /// `max_tokens` was zero or negative.
    #[error("max_tokens must be a positive integer, got {0}")]
    InvalidMaxTokens(i64),
    /// `strategy` named no known strategy.
    #[error("unknown strategy '{given}'; valid strategies: {}", VALID_STRATEGIES.join(", "))]
    UnknownStrategy { given: String },
    /// `priority` named no known priority.
    #[error("unknown priority '{given}'; valid priorities: low, medium, high")]
    UnknownPriority { given: String },
    /// Even the mandatory part of the conversation (the newest message cut to one token,
    /// plus the chat-format overhead) does not fit.
    #[error(
        "max_tokens {max_tokens} is too small for this conversation: at least {minimum} tokens \
         are needed (the newest message cut to one token plus the chat-format overhead)"
    )]
    BudgetTooSmall { max_tokens: usize, minimum: usize },
    /// A tokenizer could not be built (its embedded BPE data failed to load).
    #[error("tokenizer '{tokenizer}' is unavailable: {message}")]
    Tokenizer {
        tokenizer: &'static str,
        message: String,
    },
    /// A bug or a crashed task; never caused by input.
    #[error("internal condensation error: {0}")]
    Internal(String),
}

impl CondenseError {
    /// Whether the request itself is at fault (HTTP 400); otherwise it is a server fault (500).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            CondenseError::EmptyMessages
                | CondenseError::MissingMaxTokens
                | CondenseError::InvalidMaxTokens(_)
                | CondenseError::UnknownStrategy { .. }
                | CondenseError::UnknownPriority { .. }
                | CondenseError::BudgetTooSmall { .. }
        )
    }
}

/// Why the job queue did not accept a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The queue holds `capacity` waiting jobs already: HTTP 503 with
    /// `Retry-After: retry_after_secs`.
    #[error(
        "the condensation queue is full ({capacity} jobs waiting); retry in {retry_after_secs}s"
    )]
    QueueFull {
        capacity: usize,
        retry_after_secs: u64,
    },
    /// `shutdown()` was called: HTTP 503.
    #[error("the condensation queue is shutting down")]
    ShuttingDown,
}
