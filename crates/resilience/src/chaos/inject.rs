//! `FaultInjector`: the `Provider` decorator that asks the [`ChaosEngine`] on every call
//! and injects the fault it returns (delay, error, hang, rate limit, abort, stream cut).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};

use super::{ChaosEngine, Injection, Op};

/// Injects the chaos engine's faults into one provider's calls. Sits directly on the
/// adapter so timeouts, retries, breakers and fallbacks above it react as to a real fault.
#[derive(Debug)]
pub struct FaultInjector {
    inner: Arc<dyn Provider>,
    engine: ChaosEngine,
}

impl FaultInjector {
    pub fn new(inner: Arc<dyn Provider>, engine: ChaosEngine) -> Self {
        FaultInjector { inner, engine }
    }

    fn error(
        &self,
        status: Option<u16>,
        retry_after: Option<Duration>,
        abort: bool,
        experiment: &str,
    ) -> ProviderError {
        let name = self.inner.name();
        if abort {
            return ProviderError::new(
                name,
                ProviderErrorKind::Connect,
                format!("connection dropped (injected by chaos experiment {experiment})"),
            );
        }
        let code = status.unwrap_or(503);
        let kind = match code {
            429 => ProviderErrorKind::RateLimited,
            401 | 403 => ProviderErrorKind::Auth,
            404 => ProviderErrorKind::NotFound,
            400..=499 => ProviderErrorKind::InvalidRequest,
            _ => ProviderErrorKind::Upstream,
        };
        ProviderError::new(
            name,
            kind,
            format!("injected by chaos experiment {experiment}"),
        )
        .with_status(code)
        .with_retry_after(retry_after)
    }

    async fn apply<T>(
        &self,
        injection: Option<Injection>,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match injection {
            None | Some(Injection::StreamCut(_)) => call.await,
            Some(Injection::Delay(d)) => {
                tokio::time::sleep(d).await;
                call.await
            }
            Some(Injection::Hang(d)) => {
                tokio::time::sleep(d).await;
                Err(ProviderError::new(
                    self.inner.name(),
                    ProviderErrorKind::Timeout,
                    format!(
                        "no response within {} ms (injected by chaos)",
                        d.as_millis()
                    ),
                ))
            }
            Some(Injection::Fail {
                status,
                retry_after,
                abort,
                experiment,
            }) => Err(self.error(status, retry_after, abort, &experiment)),
        }
    }
}

#[async_trait]
impl Provider for FaultInjector {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let inj = self.engine.decide(self.name(), None, Op::ListModels);
        self.apply(inj, self.inner.list_models()).await
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let inj = self
            .engine
            .decide(self.name(), Some(&request.model), Op::Chat);
        self.apply(inj, self.inner.chat(request)).await
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let inj = self
            .engine
            .decide(self.name(), Some(&request.model), Op::ChatStream);
        let Some(Injection::StreamCut(after)) = inj else {
            return self.apply(inj, self.inner.chat_stream(request)).await;
        };
        let stream = self.inner.chat_stream(request).await?;
        let cut = ProviderError::new(
            self.name(),
            ProviderErrorKind::StreamInterrupted,
            "stream cut (injected by chaos)",
        );
        // Pass `after` chunks (fewer if the stream ends sooner), then the cut, then nothing.
        let head = stream
            .take(after)
            .take_while(|item| std::future::ready(item.is_ok()));
        Ok(Box::pin(head.chain(futures_util::stream::iter([Err(cut)]))))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        let inj = self.engine.decide(self.name(), None, Op::Health);
        self.apply(inj, self.inner.health()).await
    }

    async fn completion(
        &self,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        let model = body
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let inj = self
            .engine
            .decide(self.name(), model.as_deref(), Op::Completion);
        self.apply(inj, self.inner.completion(body)).await
    }
}
