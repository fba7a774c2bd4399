//! Shared, lock-protected state: per-flavor models and fault settings, counters, request log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::flavor::Flavor;
use crate::model::{default_models, MockModel, RecordedRequest};

/// How many requests each flavor keeps in its log.
pub(crate) const LOG_CAPACITY: usize = 1000;

/// A seeded pseudo-random source (SplitMix64), so injected error rates are reproducible.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits into [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Injected failure rate: a fraction of requests answered with `status`.
#[derive(Debug, Clone)]
pub(crate) struct ErrorRate {
    pub(crate) rate: f64,
    pub(crate) status: u16,
    pub(crate) rng: SplitMix,
}

/// Everything a test can change about one flavor.
#[derive(Debug, Clone)]
pub(crate) struct FlavorState {
    pub(crate) models: Vec<MockModel>,
    pub(crate) page_size: usize,
    pub(crate) latency: Duration,
    pub(crate) fail_next: VecDeque<u16>,
    pub(crate) rate_limit_next: usize,
    pub(crate) retry_after_secs: u64,
    pub(crate) error_rate: Option<ErrorRate>,
    pub(crate) hang: bool,
    pub(crate) malformed: bool,
    pub(crate) cut_after: Option<usize>,
    pub(crate) error_after: Option<usize>,
    pub(crate) stream_interval: Duration,
    pub(crate) require_auth: bool,
    /// `Location`s for the next requests, answered with 307 before auth.
    pub(crate) redirects: VecDeque<String>,
    pub(crate) hits: usize,
    /// Requests being handled now (admitted, response head not yet returned) and the most
    /// there ever were at once.
    pub(crate) in_flight: usize,
    pub(crate) peak_in_flight: usize,
    pub(crate) log: VecDeque<RecordedRequest>,
}

impl FlavorState {
    pub(crate) fn new(flavor: Flavor) -> Self {
        FlavorState {
            models: default_models(flavor),
            page_size: flavor.default_page_size(),
            latency: Duration::ZERO,
            fail_next: VecDeque::new(),
            rate_limit_next: 0,
            retry_after_secs: 1,
            error_rate: None,
            hang: false,
            malformed: false,
            cut_after: None,
            error_after: None,
            stream_interval: Duration::ZERO,
            require_auth: flavor.requires_auth_by_default(),
            redirects: VecDeque::new(),
            hits: 0,
            in_flight: 0,
            peak_in_flight: 0,
            log: VecDeque::new(),
        }
    }

    pub(crate) fn find_model(&self, id: &str) -> Option<&MockModel> {
        self.models.iter().find(|m| m.id == id)
    }
}

/// What the server does with one request before the flavor handler sees it.
#[derive(Debug, Clone)]
pub(crate) enum Injection {
    None,
    RateLimit { retry_after_secs: u64 },
    Fail(u16),
    Malformed,
}

/// Per-request snapshot of the settings a handler needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) latency: Duration,
    pub(crate) hang: bool,
    pub(crate) require_auth: bool,
    pub(crate) redirect: Option<String>,
    pub(crate) stream: StreamSettings,
}

/// How an SSE stream is paced and cut.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSettings {
    pub(crate) interval: Duration,
    pub(crate) cut_after: Option<usize>,
    pub(crate) error_after: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    flavors: Mutex<HashMap<Flavor, FlavorState>>,
    path_hits: Mutex<HashMap<String, usize>>,
    pub(crate) streams_cancelled: Arc<AtomicUsize>,
    ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these plain maps half-updated in a way
    // that matters to a test double, so a poisoned lock is simply taken over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            flavors: Mutex::new(Self::fresh_flavors()),
            path_hits: Mutex::new(HashMap::new()),
            streams_cancelled: Arc::new(AtomicUsize::new(0)),
            ids: AtomicU64::new(1),
        }
    }

    fn fresh_flavors() -> HashMap<Flavor, FlavorState> {
        Flavor::ALL
            .into_iter()
            .map(|f| (f, FlavorState::new(f)))
            .collect()
    }

    pub(crate) fn reset(&self) {
        *lock(&self.flavors) = Self::fresh_flavors();
        lock(&self.path_hits).clear();
        self.streams_cancelled.store(0, Ordering::SeqCst);
        self.ids.store(1, Ordering::SeqCst);
    }

    /// Runs `f` on one flavor's state under the lock.
    pub(crate) fn with<R>(&self, flavor: Flavor, f: impl FnOnce(&mut FlavorState) -> R) -> R {
        let mut map = lock(&self.flavors);
        let state = map
            .entry(flavor)
            .or_insert_with(|| FlavorState::new(flavor));
        f(state)
    }

    /// A fresh number for response ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn path_hits(&self, suffix: &str) -> usize {
        lock(&self.path_hits)
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Records the request and counts it; returns the settings that apply to it.
    pub(crate) fn admit(&self, flavor: Flavor, req: RecordedRequest) -> Plan {
        *lock(&self.path_hits).entry(req.path.clone()).or_insert(0) += 1;
        self.with(flavor, |s| {
            s.hits += 1;
            s.in_flight += 1;
            s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
            if s.log.len() >= LOG_CAPACITY {
                s.log.pop_front();
            }
            s.log.push_back(req);
            Plan {
                latency: s.latency,
                hang: s.hang,
                require_auth: s.require_auth,
                redirect: s.redirects.pop_front(),
                stream: StreamSettings {
                    interval: s.stream_interval,
                    cut_after: s.cut_after,
                    error_after: s.error_after,
                },
            }
        })
    }

    /// Ends one request admitted by [`Shared::admit`] (its handler returned).
    pub(crate) fn finish(&self, flavor: Flavor) {
        self.with(flavor, |s| s.in_flight = s.in_flight.saturating_sub(1));
    }

    /// Decides (and consumes) the injected fault for a request that passed auth.
    pub(crate) fn take_injection(&self, flavor: Flavor) -> Injection {
        self.with(flavor, |s| {
            if s.rate_limit_next > 0 {
                s.rate_limit_next -= 1;
                Injection::RateLimit {
                    retry_after_secs: s.retry_after_secs,
                }
            } else if let Some(status) = s.fail_next.pop_front() {
                Injection::Fail(status)
            } else if let Some(er) = s.error_rate.as_mut().filter(|er| er.rate > 0.0) {
                if er.rng.next_f64() < er.rate {
                    Injection::Fail(er.status)
                } else if s.malformed {
                    Injection::Malformed
                } else {
                    Injection::None
                }
            } else if s.malformed {
                Injection::Malformed
            } else {
                Injection::None
            }
        })
    }
}
