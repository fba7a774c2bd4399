//! `Timeout`: a per-attempt time limit on every provider call; for streams, a limit on the
//! time to the first chunk and on the silence between chunks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};
use tokio::time::Instant;

use crate::settings::{opt_ms, TimeoutSettings};

/// Wraps a provider so no call waits longer than configured. A timed-out call returns a
/// `ProviderErrorKind::Timeout` error (retryable) and the inner future is dropped, which
/// cancels the upstream request.
#[derive(Debug)]
pub struct Timeout {
    inner: Arc<dyn Provider>,
    request: Option<Duration>,
    first_chunk: Option<Duration>,
    idle: Option<Duration>,
}

impl Timeout {
    pub fn new(inner: Arc<dyn Provider>, settings: &TimeoutSettings) -> Self {
        Timeout {
            inner,
            request: opt_ms(settings.request_ms),
            first_chunk: opt_ms(settings.stream_first_chunk_ms),
            idle: opt_ms(settings.stream_idle_ms),
        }
    }

    fn timeout_error(&self, what: &str, limit: Duration) -> ProviderError {
        ProviderError::new(
            self.inner.name(),
            ProviderErrorKind::Timeout,
            format!("{what} within {} ms", limit.as_millis()),
        )
    }

    async fn limit<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match self.request {
            None => fut.await,
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(self.timeout_error("no response", limit)),
            },
        }
    }
}

/// State of a stream under a first-chunk deadline and an idle limit.
struct Guarded {
    inner: ChatStream,
    first_deadline: Option<Instant>,
    first_limit: Option<Duration>,
    idle: Option<Duration>,
    seen_first: bool,
    done: bool,
    provider: String,
}

#[async_trait]
impl Provider for Timeout {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        self.limit(self.inner.list_models()).await
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.limit(self.inner.chat(request)).await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let first_deadline = self.first_chunk.map(|d| Instant::now() + d);
        let stream = match first_deadline {
            None => self.inner.chat_stream(request).await?,
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, self.inner.chat_stream(request)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        let limit = self.first_chunk.unwrap_or_default();
                        return Err(self.timeout_error("no first chunk", limit));
                    }
                }
            }
        };
        let state = Guarded {
            inner: stream,
            first_deadline,
            first_limit: self.first_chunk,
            idle: self.idle,
            seen_first: false,
            done: false,
            provider: self.inner.name().to_owned(),
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |mut s| async move {
                if s.done {
                    return None;
                }
                let (deadline, limit, what) = if s.seen_first {
                    (s.idle.map(|d| Instant::now() + d), s.idle, "no next chunk")
                } else {
                    (s.first_deadline, s.first_limit, "no first chunk")
                };
                let next = match deadline {
                    None => s.inner.next().await,
                    Some(at) => match tokio::time::timeout_at(at, s.inner.next()).await {
                        Ok(item) => item,
                        Err(_) => {
                            s.done = true;
                            let err = ProviderError::new(
                                s.provider.clone(),
                                ProviderErrorKind::Timeout,
                                format!(
                                    "{what} within {} ms",
                                    limit.unwrap_or_default().as_millis()
                                ),
                            );
                            return Some((Err(err), s));
                        }
                    },
                };
                match next {
                    None => None,
                    Some(item) => {
                        s.seen_first = true;
                        if item.is_err() {
                            s.done = true;
                        }
                        Some((item, s))
                    }
                }
            },
        )))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.limit(self.inner.health()).await
    }

    async fn completion(
        &self,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        self.limit(self.inner.completion(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{chunk, Fake, Step};

    fn settings() -> TimeoutSettings {
        TimeoutSettings {
            request_ms: 1_000,
            stream_first_chunk_ms: 500,
            stream_idle_ms: 200,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_call_times_out_fast_call_passes() {
        let fake = Fake::new("p", vec![Step::Delay(Duration::from_secs(5)), Step::Ok]);
        let t = Timeout::new(fake.clone(), &settings());
        let start = Instant::now();
        let err = t.chat(&crate::testutil::request()).await.err();
        assert_eq!(err.map(|e| e.kind), Some(ProviderErrorKind::Timeout));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(t.chat(&crate::testutil::request()).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn stream_idle_gap_ends_stream_with_timeout() {
        let fake = Fake::new(
            "p",
            vec![Step::Stream(vec![
                (Duration::from_millis(100), Ok(chunk("a"))),
                (Duration::from_millis(150), Ok(chunk("b"))),
                (Duration::from_millis(300), Ok(chunk("c"))),
            ])],
        );
        let t = Timeout::new(fake, &settings());
        let mut s = t
            .chat_stream(&crate::testutil::request())
            .await
            .expect("stream");
        assert!(matches!(s.next().await, Some(Ok(_))));
        assert!(matches!(s.next().await, Some(Ok(_))));
        let third = s.next().await;
        assert!(matches!(third, Some(Err(ref e)) if e.kind == ProviderErrorKind::Timeout));
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn stream_first_chunk_deadline() {
        let fake = Fake::new(
            "p",
            vec![Step::Stream(vec![(
                Duration::from_millis(600),
                Ok(chunk("a")),
            )])],
        );
        let t = Timeout::new(fake, &settings());
        let mut s = t
            .chat_stream(&crate::testutil::request())
            .await
            .expect("stream");
        let first = s.next().await;
        assert!(matches!(first, Some(Err(ref e)) if e.kind == ProviderErrorKind::Timeout));
    }
}
