//! `CircuitBreaker`: stops calling a provider after consecutive failures, fails fast while
//! open, and lets exactly one half-open probe through after the cooldown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};
use serde::Serialize;
use tokio::time::Instant;

use crate::lock;
use crate::settings::BreakerSettings;

/// The `message` of the error returned while the circuit is open (kind `Upstream`, no
/// status, `retry_after` = the remaining cooldown, or 1 s while a half-open probe is in
/// flight).
pub const CIRCUIT_OPEN_MESSAGE: &str = "circuit open";

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A point-in-time view of a breaker, for metrics and health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerSnapshot {
    pub provider: String,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub total_successes: u64,
    pub total_failures: u64,
    /// Calls refused without reaching the provider.
    pub rejected: u64,
    /// How many times the circuit has opened.
    pub opened: u64,
    /// While open: milliseconds until a probe is allowed.
    pub open_remaining_ms: Option<u64>,
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    consecutive_failures: u32,
    total_successes: u64,
    total_failures: u64,
    rejected: u64,
    opened: u64,
}

/// The breaker's state machine, shareable (`Arc`) with metrics and health code.
///
/// What counts as a failure: every error except client errors
/// ([`ProviderError::is_client_error`]: invalid request, not found, unsupported), which
/// neither count nor reset the streak. `Auth` failures *do* count: a provider whose key is
/// rejected is unusable for every caller until the configuration changes, so failing fast
/// (and letting an alias fall back) is right. Rate limiting (429) counts too. A client error
/// on the half-open probe releases the probe slot without deciding (the next call probes).
#[derive(Debug)]
pub struct Breaker {
    provider: String,
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Permission to make one call; report its outcome with [`Breaker::record`]. Dropping it
/// unreported (the caller was cancelled) frees a half-open probe slot.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    done: bool,
}

/// How one call ended, from the breaker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Success,
    Failure,
    /// A client error: says nothing about the provider's health.
    Neutral,
}

impl CallResult {
    pub fn of<T>(r: &Result<T, ProviderError>) -> Self {
        match r {
            Ok(_) => CallResult::Success,
            Err(e) if e.is_client_error() => CallResult::Neutral,
            Err(_) => CallResult::Failure,
        }
    }
}

impl Breaker {
    pub fn new(provider: impl Into<String>, settings: &BreakerSettings) -> Arc<Self> {
        Arc::new(Breaker {
            provider: provider.into(),
            threshold: settings.failure_threshold.max(1),
            cooldown: Duration::from_millis(settings.cooldown_ms),
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                consecutive_failures: 0,
                total_successes: 0,
                total_failures: 0,
                rejected: 0,
                opened: 0,
            }),
        })
    }

    /// Asks to make a call: a permit, or the fast-fail error.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, ProviderError> {
        let mut g = lock(&self.inner);
        let now = Instant::now();
        let probe = match g.phase {
            Phase::Closed => false,
            Phase::Open { until } if now < until => {
                g.rejected += 1;
                return Err(self.open_error(Some(until - now)));
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                g.phase = Phase::HalfOpen { probing: true };
                tracing::info!(provider = %self.provider, "circuit half-open: probing");
                true
            }
            Phase::HalfOpen { probing: true } => {
                g.rejected += 1;
                return Err(self.open_error(None));
            }
        };
        Ok(Permit {
            breaker: Arc::clone(self),
            probe,
            done: false,
        })
    }

    fn open_error(&self, remaining: Option<Duration>) -> ProviderError {
        ProviderError::new(
            self.provider.clone(),
            ProviderErrorKind::Upstream,
            CIRCUIT_OPEN_MESSAGE,
        )
        .with_retry_after(Some(remaining.unwrap_or(Duration::from_secs(1))))
    }

    /// Reports how the call behind `permit` ended.
    pub fn record(&self, mut permit: Permit, result: CallResult) {
        permit.done = true;
        self.apply(permit.probe, result);
    }

    fn apply(&self, probe: bool, result: CallResult) {
        let mut g = lock(&self.inner);
        match result {
            CallResult::Success => {
                g.total_successes += 1;
                g.consecutive_failures = 0;
                if probe || !matches!(g.phase, Phase::Closed) {
                    if !matches!(g.phase, Phase::Closed) {
                        tracing::info!(provider = %self.provider, "circuit closed");
                    }
                    g.phase = Phase::Closed;
                }
            }
            CallResult::Failure => {
                g.total_failures += 1;
                g.consecutive_failures = g.consecutive_failures.saturating_add(1);
                let trip = if probe {
                    true
                } else {
                    matches!(g.phase, Phase::Closed) && g.consecutive_failures >= self.threshold
                };
                if trip {
                    g.phase = Phase::Open {
                        until: Instant::now() + self.cooldown,
                    };
                    g.opened += 1;
                    tracing::warn!(
                        provider = %self.provider,
                        failures = g.consecutive_failures,
                        "circuit opened"
                    );
                }
            }
            CallResult::Neutral => {
                if probe {
                    g.phase = Phase::HalfOpen { probing: false };
                }
            }
        }
    }

    /// A late failure (a stream cut after its first chunk): counts toward the streak.
    fn late_failure(&self) {
        self.apply(false, CallResult::Failure);
    }

    pub fn state(&self) -> BreakerState {
        self.snapshot().state
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let g = lock(&self.inner);
        let now = Instant::now();
        let (state, remaining) = match g.phase {
            Phase::Closed => (BreakerState::Closed, None),
            Phase::Open { until } if now < until => {
                (BreakerState::Open, Some((until - now).as_millis() as u64))
            }
            // Cooldown over: the next call will probe.
            Phase::Open { .. } | Phase::HalfOpen { .. } => (BreakerState::HalfOpen, None),
        };
        BreakerSnapshot {
            provider: self.provider.clone(),
            state,
            consecutive_failures: g.consecutive_failures,
            total_successes: g.total_successes,
            total_failures: g.total_failures,
            rejected: g.rejected,
            opened: g.opened,
            open_remaining_ms: remaining,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.apply(true, CallResult::Neutral);
        }
    }
}

/// The `Provider` decorator around one [`Breaker`].
#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Arc<dyn Provider>,
    breaker: Arc<Breaker>,
}

impl CircuitBreaker {
    pub fn new(inner: Arc<dyn Provider>, settings: &BreakerSettings) -> Self {
        let breaker = Breaker::new(inner.name(), settings);
        CircuitBreaker { inner, breaker }
    }

    /// The state machine, to publish `state()`/`snapshot()` in metrics and health.
    pub fn breaker(&self) -> Arc<Breaker> {
        Arc::clone(&self.breaker)
    }

    async fn guard<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let permit = self.breaker.acquire()?;
        let r = fut.await;
        self.breaker.record(permit, CallResult::of(&r));
        r
    }
}

#[async_trait]
impl Provider for CircuitBreaker {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        self.guard(self.inner.list_models()).await
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.guard(self.inner.chat(request)).await
    }

    /// The outcome is decided by the first stream item (or the end of an empty stream); an
    /// error later in the stream counts as one more failure.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let permit = self.breaker.acquire()?;
        let stream = match self.inner.chat_stream(request).await {
            Ok(s) => s,
            Err(e) => {
                self.breaker
                    .record(permit, CallResult::of::<()>(&Err(e.clone())));
                return Err(e);
            }
        };
        let breaker = Arc::clone(&self.breaker);
        let mut permit = Some(permit);
        Ok(Box::pin(stream.map(move |item| {
            match permit.take() {
                Some(p) => breaker.record(p, CallResult::of(&item)),
                None => {
                    if matches!(&item, Err(e) if !e.is_client_error()) {
                        breaker.late_failure();
                    }
                }
            }
            item
        })))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.guard(self.inner.health()).await
    }

    async fn completion(
        &self,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        self.guard(self.inner.completion(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{err, request, Fake, Step};

    fn settings() -> BreakerSettings {
        BreakerSettings {
            enabled: true,
            failure_threshold: 3,
            cooldown_ms: 10_000,
        }
    }

    fn fail() -> Step {
        Step::Err(err(ProviderErrorKind::Upstream, 500))
    }

    #[tokio::test(start_paused = true)]
    async fn opens_fails_fast_probes_once_and_closes() {
        let fake = Fake::new(
            "p",
            vec![fail(), fail(), fail(), Step::Delay(Duration::from_secs(1))],
        );
        let cb = Arc::new(CircuitBreaker::new(fake.clone(), &settings()));
        let b = cb.breaker();
        for _ in 0..3 {
            assert!(cb.chat(&request()).await.is_err());
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(fake.calls(), 3);

        // Open: fails fast without calling the provider, with the remaining cooldown.
        let e = cb.chat(&request()).await.expect_err("fast fail");
        assert_eq!(e.message, CIRCUIT_OPEN_MESSAGE);
        assert_eq!(e.kind, ProviderErrorKind::Upstream);
        assert_eq!(e.retry_after, Some(Duration::from_secs(10)));
        assert_eq!(fake.calls(), 3);
        assert_eq!(b.snapshot().rejected, 1);

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);

        // One probe (it takes 1 s); a concurrent caller fails fast meanwhile.
        let probe = tokio::spawn({
            let cb = Arc::clone(&cb);
            async move { cb.chat(&request()).await }
        });
        tokio::task::yield_now().await;
        let concurrent = cb.chat(&request()).await;
        assert_eq!(
            concurrent.err().map(|e| e.message),
            Some(CIRCUIT_OPEN_MESSAGE.to_owned())
        );
        assert!(probe.await.expect("join").is_ok());
        assert_eq!(fake.calls(), 4, "exactly one probe reached the provider");
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(cb.chat(&request()).await.is_ok());
        assert_eq!(b.snapshot().consecutive_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens() {
        let fake = Fake::new("p", vec![fail(), fail(), fail(), fail()]);
        let cb = CircuitBreaker::new(fake.clone(), &settings());
        for _ in 0..3 {
            let _ = cb.chat(&request()).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(cb.chat(&request()).await.is_err());
        let snap = cb.breaker().snapshot();
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened, 2);
        assert_eq!(snap.open_remaining_ms, Some(10_000));
    }

    #[tokio::test(start_paused = true)]
    async fn client_errors_never_trip_auth_does() {
        let script = (0..10)
            .map(|i| {
                let kind = [
                    ProviderErrorKind::InvalidRequest,
                    ProviderErrorKind::NotFound,
                    ProviderErrorKind::Unsupported,
                ][i % 3];
                Step::Err(err(kind, 400))
            })
            .collect();
        let fake = Fake::new("p", script);
        let cb = CircuitBreaker::new(fake.clone(), &settings());
        for _ in 0..10 {
            assert!(cb.chat(&request()).await.is_err());
        }
        assert_eq!(cb.breaker().state(), BreakerState::Closed);
        assert_eq!(cb.breaker().snapshot().consecutive_failures, 0);

        let auth = || Step::Err(err(ProviderErrorKind::Auth, 401));
        let fake = Fake::new("p", vec![auth(), auth(), auth()]);
        let cb = CircuitBreaker::new(fake, &settings());
        for _ in 0..3 {
            let _ = cb.health().await;
        }
        assert_eq!(cb.breaker().state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_probe_frees_the_slot() {
        let fake = Fake::new(
            "p",
            vec![fail(), fail(), fail(), Step::Delay(Duration::from_secs(60))],
        );
        let cb = CircuitBreaker::new(fake.clone(), &settings());
        for _ in 0..3 {
            let _ = cb.chat(&request()).await;
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        // The probe's caller gives up (client disconnect) before the provider answers.
        let r = tokio::time::timeout(Duration::from_secs(1), cb.chat(&request())).await;
        assert!(r.is_err());
        // The next call becomes the probe instead of being refused forever.
        assert!(cb.chat(&request()).await.is_ok());
        assert_eq!(cb.breaker().state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn stream_outcome_decided_by_first_item() {
        let cut = err(ProviderErrorKind::StreamInterrupted, 0);
        let steps = (0..3)
            .map(|_| Step::Stream(vec![(Duration::ZERO, Err(cut.clone()))]))
            .collect();
        let fake = Fake::new("p", steps);
        let cb = CircuitBreaker::new(fake, &settings());
        for _ in 0..3 {
            let mut s = cb.chat_stream(&request()).await.expect("stream");
            while s.next().await.is_some() {}
        }
        assert_eq!(cb.breaker().state(), BreakerState::Open);
    }
}
