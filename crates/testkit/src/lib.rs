//! modelgate-testkit: a mock upstream that speaks every provider's real wire format.
//!
//! One HTTP server (hyper 1, bound to `127.0.0.1:0` by default) serves each wire format
//! ("flavor") under its own path prefix; [`MockUpstream::base_url`] gives what a user would put
//! in `providers.X.base_url`, and the adapter appends the provider's real paths to it:
//!
//! | kinds | base URL | endpoints |
//! |---|---|---|
//! | openai, openai_compatible, deepseek, together, fireworks, xai, lmstudio, mock | `/openai/v1` | `GET /models`, `POST /chat/completions`, `POST /completions` |
//! | vllm | `/vllm/v1` | same, models carry `max_model_len`, `root`, `parent`, `permission` |
//! | llamacpp | `/llamacpp/v1` | same, models carry `meta.n_ctx_train`, `meta.n_ctx`; `/props`, `/health` |
//! | mistral | `/mistral/v1` | same, models carry `capabilities`, `max_context_length`, `aliases` |
//! | groq | `/groq/openai/v1` | same, models carry `context_window`, `max_completion_tokens`, `active` |
//! | openrouter | `/openrouter/api/v1` | same, models carry `pricing`, `architecture`, `top_provider`, ... |
//! | anthropic | `/anthropic` | `GET /v1/models` (paginated), `POST /v1/messages` |
//! | gemini | `/gemini` | `GET /v1beta/models` (paginated), `:generateContent`, `:streamGenerateContent` |
//! | cohere | `/cohere` | `GET /v1/models` (paginated), `POST /v2/chat` |
//! | azure | `/azure` | `GET /openai/models`, `POST /openai/deployments/{d}/chat/completions` |
//! | ollama | `/ollama` | `GET /api/tags`, `POST /api/show`, `/v1/...` OpenAI endpoints |
//!
//! Every flavor accepts only [`MockUpstream::API_KEY`], sent the way that provider expects,
//! and answers a missing or wrong key with that provider's real error body (Ollama has no
//! auth unless [`MockUpstream::set_require_auth`] turns it on; OpenRouter's and llama.cpp's
//! model lists are public as in reality, but a wrong key is still rejected there). Chat replies are
//! deterministic: `"Hello from {flavor} {model}: {last user text}"`, one word per stream
//! event; a call of the first declared tool with `{"query": <last user text>}` when tools are
//! declared; `"Tool said: {result}"` after a tool result. Token usage counts whitespace words.
//!
//! Faults (latency, N failures, 429 + `Retry-After`, seeded error rate, hang, malformed body,
//! cut or errored stream, stream pacing, redirects) are set per flavor through `&self`
//! methods, so a test can change them while requests are in flight.

#![forbid(unsafe_code)]

mod chat;
mod errors;
mod flavor;
mod flavors;
mod model;
mod server;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use modelgate_types::ProviderKind;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use model::{MockModel, RecordedRequest};

use flavor::Flavor;
use state::{ErrorRate, Shared, SplitMix};

/// A running mock upstream. Dropping it shuts the server down (hung requests included).
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl MockUpstream {
    /// The only key every flavor accepts.
    pub const API_KEY: &'static str = "mock-valid-key";

    /// Starts on `127.0.0.1:0` with the default models. Must run inside a Tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound (the machine is out of ports or sockets), which a
    /// test cannot recover from; use [`MockUpstream::start_on`] to handle that error.
    #[allow(clippy::expect_used)]
    pub async fn start() -> MockUpstream {
        MockUpstream::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("mock upstream: cannot bind 127.0.0.1:0")
    }

    /// Starts on `addr` (port 0 picks a free one). Must run inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(addr).await?;
        MockUpstream::from_listener(listener)
    }

    /// Serves an already-bound listener.
    pub fn from_listener(listener: TcpListener) -> std::io::Result<MockUpstream> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let shutdown = CancellationToken::new();
        tokio::spawn(server::serve(listener, shared.clone(), shutdown.clone()));
        Ok(MockUpstream {
            addr,
            shared,
            shutdown,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What a user puts in `providers.X.base_url` for a provider of this kind.
    pub fn base_url(&self, kind: ProviderKind) -> String {
        format!("{}{}", self.url(), Flavor::of(kind).base_path())
    }

    /// The token whose cancellation stops the server (cancelled on drop); a binary can wait on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Replaces the models the flavor of `kind` lists and answers for.
    pub fn set_models(&self, kind: ProviderKind, models: Vec<MockModel>) {
        self.shared.with(Flavor::of(kind), |s| s.models = models);
    }

    /// Adds a model (replacing one with the same id, in place).
    pub fn add_model(&self, kind: ProviderKind, model: MockModel) {
        self.shared.with(Flavor::of(kind), |s| {
            match s.models.iter_mut().find(|m| m.id == model.id) {
                Some(existing) => *existing = model,
                None => s.models.push(model),
            }
        });
    }

    pub fn remove_model(&self, kind: ProviderKind, id: &str) {
        self.shared
            .with(Flavor::of(kind), |s| s.models.retain(|m| m.id != id));
    }

    pub fn models(&self, kind: ProviderKind) -> Vec<MockModel> {
        self.shared.with(Flavor::of(kind), |s| s.models.clone())
    }

    /// Largest page the flavor returns (Anthropic, Gemini, Cohere paginate; others ignore it).
    /// A client asking for a bigger page still gets at most `n`; 0 is treated as 1.
    pub fn set_page_size(&self, kind: ProviderKind, n: usize) {
        self.shared
            .with(Flavor::of(kind), |s| s.page_size = n.max(1));
    }

    /// Delay before each response of the flavor (after the request is recorded).
    pub fn set_latency(&self, kind: ProviderKind, d: Duration) {
        self.shared.with(Flavor::of(kind), |s| s.latency = d);
    }

    /// The next `n` requests that pass auth get `status` with the flavor's real error body.
    pub fn fail_next(&self, kind: ProviderKind, n: usize, status: u16) {
        self.shared.with(Flavor::of(kind), |s| {
            s.fail_next.extend(std::iter::repeat_n(status, n));
        });
    }

    /// The next `n` requests that pass auth get 429 with `Retry-After: retry_after_secs`
    /// (Gemini, as Google does, sends no header but a `google.rpc.RetryInfo` detail with
    /// `retryDelay: "{retry_after_secs}s"` in the body).
    pub fn rate_limit_next(&self, kind: ProviderKind, n: usize, retry_after_secs: u64) {
        self.shared.with(Flavor::of(kind), |s| {
            s.rate_limit_next = n;
            s.retry_after_secs = retry_after_secs;
        });
    }

    /// A `rate` (0..=1) of requests fail with `status`, drawn from a generator seeded by
    /// `seed`: the same seed gives the same sequence. A rate of 0 turns it off.
    pub fn set_error_rate(&self, kind: ProviderKind, rate: f64, status: u16, seed: u64) {
        self.shared.with(Flavor::of(kind), |s| {
            s.error_rate = (rate > 0.0).then(|| ErrorRate {
                rate: rate.min(1.0),
                status,
                rng: SplitMix::new(seed),
            });
        });
    }

    /// Accept requests and never answer them (until unset or the server shuts down).
    pub fn set_hang(&self, kind: ProviderKind, hang: bool) {
        self.shared.with(Flavor::of(kind), |s| s.hang = hang);
    }

    /// Answer 200 with a body that is not valid JSON (an SSE one for stream requests).
    pub fn set_malformed(&self, kind: ProviderKind, on: bool) {
        self.shared.with(Flavor::of(kind), |s| s.malformed = on);
    }

    /// Abort the connection after `events` stream events, without the stream's terminator.
    /// Every event of the stream's wire format counts (role chunks, pings, comments ...);
    /// a stream with no more than `events` events completes normally.
    pub fn cut_stream_after(&self, kind: ProviderKind, events: Option<usize>) {
        self.shared.with(Flavor::of(kind), |s| s.cut_after = events);
    }

    /// After `events` stream events, send the provider's own mid-stream error event (OpenAI
    /// family: a `data: {"error": ...}` line; Anthropic: `event: error` overloaded_error;
    /// Gemini: a `data: {"error": ...}` object) and end the stream cleanly. Cohere has no
    /// such event and ignores this.
    pub fn error_stream_after(&self, kind: ProviderKind, events: Option<usize>) {
        self.shared
            .with(Flavor::of(kind), |s| s.error_after = events);
    }

    /// Pause between stream events.
    pub fn set_stream_interval(&self, kind: ProviderKind, d: Duration) {
        self.shared
            .with(Flavor::of(kind), |s| s.stream_interval = d);
    }

    /// Whether the flavor checks the key (default: every flavor but Ollama).
    pub fn set_require_auth(&self, kind: ProviderKind, on: bool) {
        self.shared.with(Flavor::of(kind), |s| s.require_auth = on);
    }

    /// Answer the next `n` requests of the flavor with `307 Temporary Redirect` to
    /// `location` (before auth, as a proxy or load balancer in front of the API would).
    pub fn redirect_next(&self, kind: ProviderKind, n: usize, location: &str) {
        self.shared.with(Flavor::of(kind), |s| {
            s.redirects
                .extend(std::iter::repeat_n(location.to_owned(), n));
        });
    }

    /// The most requests of the flavor that were being handled at the same time (from
    /// arrival until the response head is ready; latency and hangs count), since start or
    /// [`MockUpstream::reset`]. Shows whether a client bounds its concurrency.
    pub fn peak_in_flight(&self, kind: ProviderKind) -> usize {
        self.shared.with(Flavor::of(kind), |s| s.peak_in_flight)
    }

    /// Requests received by the flavor of `kind` (rejected ones included).
    pub fn hits(&self, kind: ProviderKind) -> usize {
        self.shared.with(Flavor::of(kind), |s| s.hits)
    }

    /// Requests (any flavor) whose path ends with `path_suffix`.
    pub fn hits_path(&self, path_suffix: &str) -> usize {
        self.shared.path_hits(path_suffix)
    }

    /// The last requests received by the flavor (at most 1000), oldest first.
    pub fn requests(&self, kind: ProviderKind) -> Vec<RecordedRequest> {
        self.shared
            .with(Flavor::of(kind), |s| s.log.iter().cloned().collect())
    }

    /// Streams whose client went away before the last event was sent.
    pub fn streams_cancelled(&self) -> usize {
        self.shared.streams_cancelled.load(Ordering::SeqCst)
    }

    /// Back to the defaults: default models, no faults, counters and logs cleared.
    pub fn reset(&self) {
        self.shared.reset();
    }
}
