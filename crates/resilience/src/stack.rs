//! `layer`: wraps one provider adapter in the standard decorator stack, in the one order
//! that makes sense (see the crate docs), so the server wires it in one line.

use std::sync::Arc;

use modelgate_providers::Provider;

use crate::breaker::{Breaker, CircuitBreaker};
use crate::chaos::{ChaosEngine, FaultInjector};
use crate::retry::Retry;
use crate::settings::{BreakerSettings, RetrySettings, TimeoutSettings};
use crate::timeout::Timeout;

/// A decorated provider and the handle of its breaker (if enabled) for metrics/health.
#[derive(Debug, Clone)]
pub struct Layered {
    pub provider: Arc<dyn Provider>,
    pub breaker: Option<Arc<Breaker>>,
}

/// `CircuitBreaker(Retry(Timeout(FaultInjector(inner))))`; the fault injector only when a
/// chaos engine is given, the breaker only when enabled, the retry only when
/// `max_attempts > 1`.
pub fn layer(
    inner: Arc<dyn Provider>,
    retry: &RetrySettings,
    breaker: &BreakerSettings,
    timeout: &TimeoutSettings,
    chaos: Option<&ChaosEngine>,
) -> Layered {
    let mut p = inner;
    if let Some(engine) = chaos {
        p = Arc::new(FaultInjector::new(p, engine.clone()));
    }
    p = Arc::new(Timeout::new(p, timeout));
    if retry.max_attempts > 1 {
        p = Arc::new(Retry::new(p, retry));
    }
    let mut handle = None;
    if breaker.enabled {
        let cb = CircuitBreaker::new(p, breaker);
        handle = Some(cb.breaker());
        p = Arc::new(cb);
    }
    Layered {
        provider: p,
        breaker: handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{ExperimentSpec, FaultSpec};
    use crate::settings::ChaosSettings;
    use crate::testutil::{request, Fake};

    #[tokio::test(start_paused = true)]
    async fn retries_and_fallback_keep_clients_whole_under_30_percent_faults() {
        let engine = ChaosEngine::new(ChaosSettings::default(), ["a", "b"]);
        let retry = RetrySettings::default();
        let breaker = BreakerSettings::default();
        let timeout = TimeoutSettings::default();
        let fake_a = Fake::new("a", vec![]);
        let a = layer(fake_a.clone(), &retry, &breaker, &timeout, Some(&engine));
        let b = layer(
            Fake::new("b", vec![]),
            &retry,
            &breaker,
            &timeout,
            Some(&engine),
        );
        let spec = ExperimentSpec {
            experiment_name: "thirty".into(),
            duration_minutes: 5.0,
            faults: vec![FaultSpec {
                fault_type: "error".into(),
                target: "a".into(),
                model: None,
                severity: None,
                probability: Some(0.3),
                duration_ms: None,
                error_code: Some(503),
            }],
            seed: Some(3),
        };
        let id = engine.start(&spec).expect("start").experiment_id;
        let n = 2_000;
        let mut ok = 0;
        for _ in 0..n {
            // The HTTP layer's alias fallback: a, then b.
            let r = match a.provider.chat(&request()).await {
                Ok(r) => Ok(r),
                Err(_) => b.provider.chat(&request()).await,
            };
            engine.record_outcome(r.is_ok());
            ok += usize::from(r.is_ok());
        }
        assert!(ok as f64 / n as f64 >= 0.99, "{ok}/{n}");
        let report = engine.get(&id).expect("report");
        let injected = report.results.total_faults_injected;
        // Every call that reached the adapter was not faulted, and vice versa.
        let observed = report.results.calls_observed["a"];
        assert_eq!(observed - injected, fake_a.calls() as u64);
        let rate = injected as f64 / observed as f64;
        assert!((rate - 0.3).abs() <= 0.03, "{rate}");
        assert!(!report.results.system_degradation_detected);
        assert_eq!(
            a.breaker.map(|b| b.state()),
            Some(crate::BreakerState::Closed)
        );
    }
}
