//! Provider adapters: the [`Provider`] trait every upstream implements, one adapter per
//! wire format, and a registry that builds them from configuration.
//!
//! Invariants: every upstream call has a timeout; no error, log line or `Debug` output
//! contains an API key or header value; adapters never follow a redirect to another host.
#![forbid(unsafe_code)]

mod anthropic;
mod azure;
mod cohere;
mod convert;
mod error;
mod gemini;
mod http;
mod mock;
mod ollama;
mod openai;
mod registry;
mod sse;

pub use anthropic::{
    DEFAULT_MAX_TOKENS as ANTHROPIC_DEFAULT_MAX_TOKENS,
    DEFAULT_VERSION as ANTHROPIC_DEFAULT_VERSION,
};
pub use azure::DEFAULT_API_VERSION as AZURE_DEFAULT_API_VERSION;
pub use error::{redact, ProviderError, ProviderErrorKind};
pub use http::{ClientError, HttpClient, DEFAULT_CONNECT_TIMEOUT, MAX_RESPONSE_BYTES};
pub use mock::{MOCK_CONTEXT_LENGTH, MOCK_MAX_TOKENS};
pub use ollama::SHOW_CONCURRENCY as OLLAMA_SHOW_CONCURRENCY;
pub use registry::{build_provider, Registry, RegistryError};

use std::fmt::Debug;
use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use modelgate_types::chat::{ChatChunk, ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};

/// A stream of chat chunks; an `Err` item ends the stream (e.g. the upstream cut it).
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// One configured upstream (a name from the config file and its adapter).
///
/// Requests given to `chat`/`chat_stream` carry the provider's own model id in `model`
/// (the `provider/` prefix already removed by the router).
#[async_trait]
pub trait Provider: Send + Sync + Debug {
    /// The configured name (`openai`, `local`, ...), used in APIs and metrics.
    fn name(&self) -> &str;

    /// The wire format.
    fn kind(&self) -> ProviderKind;

    /// Every model the upstream lists, with the facts its API reports (catalog facts are
    /// merged later by discovery). Follows pagination to the end.
    async fn list_models(&self) -> Result<Vec<Model>, ProviderError>;

    /// A non-streaming chat completion.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// A streaming chat completion; chunks are yielded as the upstream sends them.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError>;

    /// A cheap reachability and auth check.
    async fn health(&self) -> Result<(), ProviderError>;

    /// Legacy `/v1/completions`, passed through as JSON (OpenAI-compatible kinds only).
    async fn completion(
        &self,
        _body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        Err(ProviderError::new(
            self.name(),
            ProviderErrorKind::Unsupported,
            "text completions are not supported by this provider kind",
        ))
    }
}
