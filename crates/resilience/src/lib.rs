//! Resilience for modelgate: `Provider` decorators (timeout, retry with full-jitter
//! backoff, circuit breaker, chaos fault injection) and the open-loop load generator.
//!
//! Invariants: this crate does no network I/O of its own (the load generator calls a
//! request function it is given); every wait goes through tokio time, so tests run under
//! `tokio::time::pause()`; randomness is seedable; chaos experiments and load tests live in
//! memory only, are capped by configuration and stop by themselves.
//!
//! Recommended order, outermost first (see [`layer`]):
//! `CircuitBreaker(Retry(Timeout(FaultInjector(adapter))))`. Faults sit next to the
//! adapter so every layer above sees them exactly as a real outage; the timeout is per
//! attempt; the breaker sits outside the retry so one client call counts once and an open
//! circuit fails fast without being retried.
#![forbid(unsafe_code)]

mod breaker;
pub mod chaos;
pub mod load;
mod retry;
mod rng;
mod settings;
mod stack;
#[cfg(test)]
mod testutil;
mod timeout;

pub use breaker::{Breaker, BreakerSnapshot, BreakerState, CircuitBreaker, CIRCUIT_OPEN_MESSAGE};
pub use chaos::{ChaosEngine, ChaosError, FaultInjector};
pub use load::{LoadGenerator, LoadTestError, LoadTester, Outcome, RequestSpec, Scenario, Tier};
pub use retry::Retry;
pub use rng::SplitMix64;
pub use settings::{
    BreakerSettings, ChaosSettings, LoadTestSettings, ResilienceSettings, RetrySettings,
    TimeoutSettings,
};
pub use stack::{layer, Layered};
pub use timeout::Timeout;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the guarded
/// state here is counters and small maps that stay consistent between statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
