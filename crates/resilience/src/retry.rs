//! `Retry`: retries retryable provider errors with full-jitter exponential backoff,
//! honouring `Retry-After` up to a cap; streams are retried only before their first chunk.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use modelgate_providers::{ChatStream, Provider, ProviderError};
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};

use crate::lock;
use crate::rng::SplitMix64;
use crate::settings::RetrySettings;

/// Wraps a provider with retries.
///
/// Rules: an error is retried only if [`ProviderError::is_retryable`] says so and it does
/// not carry a 4xx status other than 429 (so `InvalidRequest`, `NotFound`, `Auth` and
/// `Unsupported` are final); at most `max_attempts` attempts in total; before attempt
/// `n + 1` it waits `max(full_jitter(n), retry_after)`; a `retry_after` above
/// `max_retry_after_ms` makes the error final at once. `health` is never retried (a health
/// check must report what it saw). `chat_stream` resolves only once the first chunk has
/// arrived, so failures while connecting or before the first chunk are retried, and
/// nothing is ever retried after a chunk has been handed to the caller.
#[derive(Debug)]
pub struct Retry {
    inner: Arc<dyn Provider>,
    settings: RetrySettings,
    rng: Mutex<SplitMix64>,
}

impl Retry {
    pub fn new(inner: Arc<dyn Provider>, settings: &RetrySettings) -> Self {
        Retry::with_rng(inner, settings, SplitMix64::from_entropy())
    }

    /// Deterministic jitter, for tests and reproducible benchmarks.
    pub fn with_seed(inner: Arc<dyn Provider>, settings: &RetrySettings, seed: u64) -> Self {
        Retry::with_rng(inner, settings, SplitMix64::new(seed))
    }

    fn with_rng(inner: Arc<dyn Provider>, settings: &RetrySettings, rng: SplitMix64) -> Self {
        Retry {
            inner,
            settings: settings.clone(),
            rng: Mutex::new(rng),
        }
    }

    /// The wait before the next attempt, or `None` if `err` after attempt `attempt`
    /// (0-based) is final.
    fn next_delay(&self, err: &ProviderError, attempt: u32) -> Option<Duration> {
        if attempt + 1 >= self.settings.max_attempts.max(1) || !should_retry(err) {
            return None;
        }
        let retry_after = match err.retry_after {
            Some(ra) if ra > Duration::from_millis(self.settings.max_retry_after_ms) => {
                return None
            }
            Some(ra) => ra,
            None => Duration::ZERO,
        };
        let ceiling = self
            .settings
            .base_delay_ms
            .saturating_mul(1u64.checked_shl(attempt).unwrap_or(u64::MAX))
            .min(self.settings.max_delay_ms);
        let jitter = Duration::from_millis(lock(&self.rng).below_inclusive(ceiling));
        Some(jitter.max(retry_after))
    }

    async fn run<T, F, Fut>(&self, op: &str, mut call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T, ProviderError>> + Send,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => match self.next_delay(&e, attempt) {
                    None => return Err(e),
                    Some(wait) => {
                        tracing::debug!(
                            provider = self.inner.name(),
                            op,
                            attempt = attempt + 1,
                            error = %e,
                            wait_ms = wait.as_millis() as u64,
                            "retrying provider call"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                },
            }
        }
    }
}

/// Retryable by kind, and never a 4xx other than 429 whatever the kind says.
fn should_retry(err: &ProviderError) -> bool {
    let client_status = matches!(err.status, Some(s) if (400..500).contains(&s) && s != 429);
    err.is_retryable() && !client_status
}

#[async_trait]
impl Provider for Retry {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        self.run("list_models", || self.inner.list_models()).await
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.run("chat", || self.inner.chat(request)).await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.run("chat_stream", || async {
            let mut stream = self.inner.chat_stream(request).await?;
            match stream.next().await {
                // An error before any chunk: nothing reached the caller, so it may be retried.
                Some(Err(e)) => Err(e),
                Some(Ok(first)) => {
                    let head = futures_util::stream::iter([Ok(first)]);
                    Ok(Box::pin(head.chain(stream)) as ChatStream)
                }
                None => Ok(Box::pin(futures_util::stream::empty()) as ChatStream),
            }
        })
        .await
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.inner.health().await
    }

    async fn completion(
        &self,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        self.run("completion", || self.inner.completion(body.clone()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{chunk, err, request, Fake, Step};
    use modelgate_providers::ProviderErrorKind;
    use tokio::time::Instant;

    fn settings() -> RetrySettings {
        RetrySettings {
            max_attempts: 3,
            base_delay_ms: 100,
            max_delay_ms: 1_000,
            max_retry_after_ms: 5_000,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_500_is_retried_then_succeeds() {
        let fake = Fake::new(
            "p",
            vec![
                Step::Err(err(ProviderErrorKind::Upstream, 500)),
                Step::Err(err(ProviderErrorKind::Upstream, 502)),
            ],
        );
        let r = Retry::with_seed(fake.clone(), &settings(), 1);
        let start = Instant::now();
        assert!(r.chat(&request()).await.is_ok());
        assert_eq!(fake.calls(), 3);
        // Full jitter: attempt 0 waits <= 100 ms, attempt 1 <= 200 ms.
        assert!(
            start.elapsed() <= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let e = err(ProviderErrorKind::Connect, 0);
        let fake = Fake::new(
            "p",
            vec![Step::Err(e.clone()), Step::Err(e.clone()), Step::Err(e)],
        );
        let r = Retry::with_seed(fake.clone(), &settings(), 1);
        let got = r.list_models().await;
        assert_eq!(got.err().map(|e| e.kind), Some(ProviderErrorKind::Connect));
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_are_final() {
        for (kind, status) in [
            (ProviderErrorKind::InvalidRequest, 400),
            (ProviderErrorKind::NotFound, 404),
            (ProviderErrorKind::Auth, 401),
            (ProviderErrorKind::Unsupported, 400),
            // Even a kind that is retryable is final with a 4xx status other than 429.
            (ProviderErrorKind::Upstream, 409),
        ] {
            let fake = Fake::new("p", vec![Step::Err(err(kind, status))]);
            let r = Retry::with_seed(fake.clone(), &settings(), 1);
            assert_eq!(r.chat(&request()).await.err().map(|e| e.kind), Some(kind));
            assert_eq!(fake.calls(), 1, "{kind:?} must not be retried");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_capped() {
        let limited = |secs| {
            Step::Err(
                err(ProviderErrorKind::RateLimited, 429)
                    .with_retry_after(Some(Duration::from_secs(secs))),
            )
        };
        let fake = Fake::new("p", vec![limited(2)]);
        let r = Retry::with_seed(fake.clone(), &settings(), 1);
        let start = Instant::now();
        assert!(r.chat(&request()).await.is_ok());
        assert_eq!(fake.calls(), 2);
        assert!(
            start.elapsed() >= Duration::from_secs(2),
            "waited {:?}",
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_millis(2_200));

        // Above the 5 s cap: final at once, the hint kept for the caller.
        let fake = Fake::new("p", vec![limited(60)]);
        let r = Retry::with_seed(fake.clone(), &settings(), 1);
        let start = Instant::now();
        let e = r.chat(&request()).await.err();
        assert_eq!(e.and_then(|e| e.retry_after), Some(Duration::from_secs(60)));
        assert_eq!(fake.calls(), 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn stream_retried_before_first_chunk_never_after() {
        let cut = || err(ProviderErrorKind::StreamInterrupted, 0);
        // 1st call: fails to connect; 2nd: errors before any chunk; 3rd: one chunk then cut.
        let fake = Fake::new(
            "p",
            vec![
                Step::Err(err(ProviderErrorKind::Upstream, 503)),
                Step::Stream(vec![(Duration::ZERO, Err(cut()))]),
                Step::Stream(vec![
                    (Duration::ZERO, Ok(chunk("hello"))),
                    (Duration::ZERO, Err(cut())),
                ]),
            ],
        );
        let r = Retry::with_seed(fake.clone(), &settings(), 1);
        let mut s = r
            .chat_stream(&request())
            .await
            .expect("stream after retries");
        assert_eq!(fake.calls(), 3);
        let first = s.next().await;
        assert!(
            matches!(first, Some(Ok(ref c)) if c.choices[0].delta.content.as_deref() == Some("hello"))
        );
        let second = s.next().await;
        assert!(
            matches!(second, Some(Err(ref e)) if e.kind == ProviderErrorKind::StreamInterrupted)
        );
        assert!(s.next().await.is_none());
        assert_eq!(fake.calls(), 3, "no retry after the first chunk");
    }

    #[tokio::test(start_paused = true)]
    async fn same_seed_same_backoff() {
        let run = |seed| async move {
            let e = err(ProviderErrorKind::Timeout, 0);
            let fake = Fake::new("p", vec![Step::Err(e.clone()), Step::Err(e)]);
            let r = Retry::with_seed(fake, &settings(), seed);
            let start = Instant::now();
            let _ = r.chat(&request()).await;
            start.elapsed()
        };
        assert_eq!(run(42).await, run(42).await);
    }
}
