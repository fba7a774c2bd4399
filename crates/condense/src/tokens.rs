//! Token counting: which BPE a model uses, and the chat-format overhead per message.
//!
//! OpenAI models are counted exactly with tiktoken-rs, whose BPE files are embedded in the
//! binary (no download, no network):
//! - `o200k_base`: gpt-4o, chatgpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o1/o3/o4 series, gpt-oss;
//! - `cl100k_base`: gpt-4, gpt-3.5, text-embedding-3 / ada-002, and requests naming no model.
//!
//! Every other family (claude, gemini, llama, mistral, ...) is counted with the
//! `cl100k_base` BPE and reported as `approx_cl100k`: their own tokenizers are not public
//! or not embeddable, and cl100k is within roughly ±20% of them on English text. The count
//! is deterministic, and every budget decision in this crate uses the same counter, so the
//! "fits `max_tokens`" guarantee holds for the reported tokenizer; leave headroom when the
//! provider's own count matters.
//!
//! Chat format (OpenAI cookbook, "How to count tokens with tiktoken"): each message costs
//! 3 tokens plus the tokens of its role and content, a `name` costs its tokens plus 1, and
//! the reply is primed with 3 more tokens. Tool calls add the tokens of their function
//! name and arguments, `tool_call_id` its tokens (an approximation: OpenAI does not
//! publish that part). Non-text content parts (images, audio, files) count 0.
//!
//! Building a BPE takes 0.1–0.3 s, so each is built once per process and shared.

use std::fmt;
use std::sync::OnceLock;

use modelgate_types::chat::ChatMessage;
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

use crate::error::CondenseError;

/// Tokens every message costs besides its role and content.
pub const TOKENS_PER_MESSAGE: usize = 3;
/// Extra tokens when a message carries a `name`.
pub const TOKENS_PER_NAME: usize = 1;
/// Tokens that prime the assistant's reply, counted once per conversation.
pub const REPLY_PRIMING_TOKENS: usize = 3;

/// Conversations with more text than this are counted on several threads.
const PARALLEL_THRESHOLD_BYTES: usize = 128 * 1024;

/// The tokenizer a count was made with (serialised as `o200k_base`, `cl100k_base`,
/// `approx_cl100k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenizerKind {
    /// Exact, for gpt-4o / 4.1 / 4.5 / 5 and the o-series.
    #[serde(rename = "o200k_base")]
    O200kBase,
    /// Exact, for gpt-4 / gpt-3.5 / embeddings (and when no model is named).
    #[serde(rename = "cl100k_base")]
    Cl100kBase,
    /// cl100k_base used as an approximation for a non-OpenAI model family.
    #[serde(rename = "approx_cl100k")]
    ApproxCl100k,
}

impl TokenizerKind {
    /// The name reported in results.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerKind::O200kBase => "o200k_base",
            TokenizerKind::Cl100kBase => "cl100k_base",
            TokenizerKind::ApproxCl100k => "approx_cl100k",
        }
    }

    /// Whether the count is exact for the model (an OpenAI tokenizer).
    pub fn is_exact(self) -> bool {
        !matches!(self, TokenizerKind::ApproxCl100k)
    }

    /// The tokenizer for a model id. Accepts provider prefixes (`openai/gpt-4o`),
    /// fine-tune ids (`ft:gpt-4o-mini:org::id`) and any case. `None` means cl100k_base.
    pub fn for_model(model: Option<&str>) -> TokenizerKind {
        let Some(model) = model else {
            return TokenizerKind::Cl100kBase;
        };
        let lower = model.trim().to_ascii_lowercase();
        let base = lower.rsplit('/').next().unwrap_or(&lower);
        let base = base.strip_prefix("ft:").unwrap_or(base);
        let is_family = |family: &str| {
            base == family
                || base
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with(['-', '.', ':', '@']))
        };
        const O200K: [&str; 10] = [
            "gpt-4o",
            "chatgpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
            "gpt-oss",
            "codex-mini",
        ];
        if O200K.iter().any(|f| is_family(f)) || base.starts_with("gpt-4o") {
            return TokenizerKind::O200kBase;
        }
        const CL100K: [&str; 6] = [
            "gpt-4",
            "gpt-3.5",
            "gpt-35",
            "text-embedding-3",
            "text-embedding-ada-002",
            "gpt-4-turbo",
        ];
        if CL100K.iter().any(|f| is_family(f)) {
            return TokenizerKind::Cl100kBase;
        }
        TokenizerKind::ApproxCl100k
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn bpe(kind: TokenizerKind) -> Result<&'static CoreBPE, CondenseError> {
    static O200K: OnceLock<Result<CoreBPE, String>> = OnceLock::new();
    static CL100K: OnceLock<Result<CoreBPE, String>> = OnceLock::new();
    let loaded = match kind {
        TokenizerKind::O200kBase => {
            O200K.get_or_init(|| tiktoken_rs::o200k_base().map_err(|e| e.to_string()))
        }
        TokenizerKind::Cl100kBase | TokenizerKind::ApproxCl100k => {
            CL100K.get_or_init(|| tiktoken_rs::cl100k_base().map_err(|e| e.to_string()))
        }
    };
    loaded.as_ref().map_err(|message| CondenseError::Tokenizer {
        tokenizer: kind.as_str(),
        message: message.clone(),
    })
}

/// Token costs of one message: the whole message and its content alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageCost {
    /// Everything the message adds to a conversation's count.
    pub total: usize,
    /// The tokens of its text content.
    pub content: usize,
}

impl MessageCost {
    /// What the message costs with empty content.
    pub fn overhead(self) -> usize {
        self.total - self.content
    }

    /// The least the message can be cut to: its overhead plus one content token (when it
    /// has content).
    pub fn minimum(self) -> usize {
        self.overhead() + self.content.min(1)
    }
}

/// Counts tokens with one tokenizer. Cheap to copy; the BPE behind it is shared.
#[derive(Clone, Copy)]
pub struct TokenCounter {
    kind: TokenizerKind,
    bpe: &'static CoreBPE,
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCounter")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl TokenCounter {
    /// A counter for a tokenizer (built on first use, then shared).
    pub fn new(kind: TokenizerKind) -> Result<Self, CondenseError> {
        Ok(TokenCounter {
            kind,
            bpe: bpe(kind)?,
        })
    }

    /// The counter for a model id (see [`TokenizerKind::for_model`]).
    pub fn for_model(model: Option<&str>) -> Result<Self, CondenseError> {
        TokenCounter::new(TokenizerKind::for_model(model))
    }

    /// Which tokenizer this is.
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// Tokens of a plain text. Special-token text such as `<|endoftext|>` is counted as
    /// ordinary text, as an API does with user content.
    pub fn count_text(&self, text: &str) -> usize {
        self.bpe.encode_ordinary(text).len()
    }

    /// The cost of one message in a conversation (its overhead included).
    pub fn count_message(&self, message: &ChatMessage) -> usize {
        self.message_cost(message).total
    }

    /// The prompt tokens of a whole conversation, reply priming included — what an
    /// OpenAI API reports as `prompt_tokens` for these messages.
    pub fn count_messages(&self, messages: &[ChatMessage]) -> usize {
        REPLY_PRIMING_TOKENS
            + self
                .message_costs(messages)
                .iter()
                .map(|c| c.total)
                .sum::<usize>()
    }

    /// The cost of one message, split into total and content.
    pub fn message_cost(&self, message: &ChatMessage) -> MessageCost {
        let content = self.count_text(&message.text());
        let mut total = TOKENS_PER_MESSAGE + self.count_text(message.role.as_str()) + content;
        if let Some(name) = &message.name {
            total += self.count_text(name) + TOKENS_PER_NAME;
        }
        for call in message.tool_calls.iter().flatten() {
            total +=
                self.count_text(&call.function.name) + self.count_text(&call.function.arguments);
        }
        if let Some(id) = &message.tool_call_id {
            total += self.count_text(id);
        }
        MessageCost { total, content }
    }

    /// Costs of every message, in order. Large conversations are counted on up to
    /// `available_parallelism` threads.
    pub fn message_costs(&self, messages: &[ChatMessage]) -> Vec<MessageCost> {
        let bytes: usize = messages.iter().map(approx_len).sum();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        if bytes < PARALLEL_THRESHOLD_BYTES || threads < 2 || messages.len() < 2 {
            return messages.iter().map(|m| self.message_cost(m)).collect();
        }
        // Split into contiguous chunks of about equal text size.
        let per_chunk = bytes.div_ceil(threads);
        let mut chunks: Vec<&[ChatMessage]> = Vec::with_capacity(threads);
        let (mut start, mut acc) = (0, 0);
        for (i, m) in messages.iter().enumerate() {
            acc += approx_len(m);
            if acc >= per_chunk && chunks.len() + 1 < threads {
                chunks.push(&messages[start..=i]);
                start = i + 1;
                acc = 0;
            }
        }
        chunks.push(&messages[start..]);
        let counter = *self;
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .iter()
                .skip(1)
                .map(|chunk| {
                    let chunk: &[ChatMessage] = chunk;
                    std::thread::Builder::new()
                        .name("condense-count".to_owned())
                        .spawn_scoped(scope, move || {
                            chunk
                                .iter()
                                .map(|m| counter.message_cost(m))
                                .collect::<Vec<_>>()
                        })
                        .map_err(|_| chunk)
                })
                .collect();
            let mut out: Vec<MessageCost> = chunks
                .first()
                .map(|c| c.iter().map(|m| counter.message_cost(m)).collect())
                .unwrap_or_default();
            for (handle, chunk) in handles.into_iter().zip(chunks.iter().skip(1)) {
                // A thread that could not start or that panicked is redone inline.
                let costs = match handle {
                    Ok(h) => h.join().ok(),
                    Err(_) => None,
                };
                out.extend(
                    costs
                        .unwrap_or_else(|| chunk.iter().map(|m| counter.message_cost(m)).collect()),
                );
            }
            out
        })
    }

    /// The token ids of a text (ordinary encoding, as [`TokenCounter::count_text`]).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    /// Decodes tokens to text, dropping a partial UTF-8 character at either end (a cut can
    /// split a multi-byte character across tokens).
    pub(crate) fn decode_lossless(&self, tokens: &[u32]) -> String {
        let bytes = match self.bpe.decode_bytes(tokens) {
            Ok(b) => b,
            Err(_) => return String::new(),
        };
        // Skip leading continuation bytes, then keep the longest valid prefix.
        let start = bytes
            .iter()
            .position(|b| (b & 0b1100_0000) != 0b1000_0000)
            .unwrap_or(bytes.len());
        let rest = &bytes[start..];
        match std::str::from_utf8(rest) {
            Ok(s) => s.to_owned(),
            Err(e) => String::from_utf8_lossy(&rest[..e.valid_up_to()]).into_owned(),
        }
    }
}

fn approx_len(m: &ChatMessage) -> usize {
    use modelgate_types::chat::MessageContent;
    match &m.content {
        Some(MessageContent::Text(s)) => s.len(),
        Some(MessageContent::Parts(p)) => p.len() * 64,
        None => 0,
    }
}
