//! The open-loop load generator: requests are sent on a fixed time schedule (request `i`
//! at `start + i / rps`) whatever the server does, and latency is measured from each
//! request's *scheduled* time, so a slow server cannot hide its latency (no coordinated
//! omission). [`LoadGenerator`] runs one test against any async request function;
//! [`LoadTester`] manages tests for the HTTP API (caps, ids, live results, stop).
//!
//! In-flight requests are capped by the tier's user count. When the cap is reached, the
//! request due now is *dropped* (counted as failed and as `dropped_requests`) instead of
//! waiting: waiting would shift the schedule and hide the overload.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lock;
use crate::rng::SplitMix64;
use crate::settings::LoadTestSettings;

/// Load tiers: the user count is the cap on requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 10 users; default 5 rps.
    Light,
    /// 100 users; default 20 rps.
    Medium,
    /// 500 users; default 100 rps.
    Heavy,
    /// 1000 users; default 250 rps.
    Extreme,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Light, Tier::Medium, Tier::Heavy, Tier::Extreme];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Light => "light",
            Tier::Medium => "medium",
            Tier::Heavy => "heavy",
            Tier::Extreme => "extreme",
        }
    }

    /// Simulated users = the in-flight cap.
    pub fn users(self) -> usize {
        match self {
            Tier::Light => 10,
            Tier::Medium => 100,
            Tier::Heavy => 500,
            Tier::Extreme => 1_000,
        }
    }

    /// `target_rps` when the request does not give one.
    pub fn default_rps(self) -> f64 {
        match self {
            Tier::Light => 5.0,
            Tier::Medium => 20.0,
            Tier::Heavy => 100.0,
            Tier::Extreme => 250.0,
        }
    }
}

/// What one generated request exercises. The HTTP layer turns each into a real request to
/// the gateway's own listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// `POST /v1/chat/completions` (costs money against real providers).
    ChatCompletion,
    /// `GET /api/models`.
    ModelDiscovery,
    /// `GET /api/models/search`.
    Search,
    /// `POST /api/condense`.
    Condense,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::ChatCompletion,
        Scenario::ModelDiscovery,
        Scenario::Search,
        Scenario::Condense,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::ChatCompletion => "chat_completion",
            Scenario::ModelDiscovery => "model_discovery",
            Scenario::Search => "search",
            Scenario::Condense => "condense",
        }
    }
}

/// A scenario in a request body: a name, or `{"name": ..., "weight": n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScenarioEntry {
    Name(String),
    Weighted { name: String, weight: u32 },
}

/// The body of `POST /api/load-test/start`. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadTestSpec {
    /// `light`, `medium` (default), `heavy` or `extreme`.
    pub tier: Option<String>,
    /// Default 1; may be fractional; capped by `load_test.max_duration_minutes`.
    pub duration_minutes: Option<f64>,
    /// Default by tier; capped by `load_test.max_rps`.
    pub target_rps: Option<f64>,
    /// Providers to spread chat requests over (round robin); must be configured names.
    pub providers: Vec<String>,
    /// Models to spread chat requests over; paired with `providers` by position when both
    /// lists have the same length, rotated independently otherwise.
    pub models: Vec<String>,
    /// Scenarios, rotated in proportion to their weights (default weight 1). Default
    /// `["model_discovery"]`, which costs nothing.
    pub scenarios: Vec<ScenarioEntry>,
    /// Seed for any randomness the request function wants (passed in [`RequestSpec`]).
    pub seed: Option<u64>,
}

impl LoadTestSpec {
    /// Parses a request body, naming the first wrong field by its JSON path
    /// (`scenarios[1].weight`) in a [`LoadTestError::Invalid`]. Values are only checked for
    /// their JSON type here; ranges and names are checked by [`LoadPlan::from_spec`].
    pub fn from_json(body: &serde_json::Value) -> Result<LoadTestSpec, LoadTestError> {
        use crate::chaos::shape::{check, each_str, object, Kind, Mismatch};
        fn scenario(v: &serde_json::Value, path: &str) -> Result<(), Mismatch> {
            if v.is_object() {
                object(
                    v,
                    path,
                    &[
                        ("name", Kind::Str, true),
                        ("weight", Kind::UInt(u64::from(u32::MAX)), true),
                    ],
                )
                .map(|_| ())
            } else {
                check(v, path, Kind::Str).map_err(|m| {
                    Mismatch::new(m.path, "must be a scenario name or {\"name\", \"weight\"}")
                })
            }
        }
        object(
            body,
            "",
            &[
                ("tier", Kind::Str, false),
                ("duration_minutes", Kind::Num, false),
                ("target_rps", Kind::Num, false),
                ("providers", Kind::Arr(each_str), false),
                ("models", Kind::Arr(each_str), false),
                ("scenarios", Kind::Arr(scenario), false),
                ("seed", Kind::UInt(u64::MAX), false),
            ],
        )
        .map_err(|m| LoadTestError::invalid(m.path, m.message))?;
        // `null` means "the default" for every field, as for an absent one.
        let mut body = body.clone();
        if let serde_json::Value::Object(map) = &mut body {
            map.retain(|_, v| !v.is_null());
        }
        serde_json::from_value(body).map_err(|e| LoadTestError::invalid("body", e.to_string()))
    }
}

/// Problems of a `load_test` section that its types alone cannot catch, as (key path,
/// message).
pub fn settings_problems(s: &LoadTestSettings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |key: &str, message: String| out.push((format!("load_test.{key}"), message));
    if s.max_duration_minutes == 0 {
        push("max_duration_minutes", "must be at least 1".to_owned());
    }
    if !s.max_rps.is_finite() || s.max_rps <= 0.0 {
        push("max_rps", format!("{} is not a positive number", s.max_rps));
    }
    if s.max_users < Tier::Light.users() {
        push(
            "max_users",
            format!(
                "must be at least {} (the light tier's users)",
                Tier::Light.users()
            ),
        );
    }
    if s.max_concurrent_tests == 0 {
        push("max_concurrent_tests", "must be at least 1".to_owned());
    }
    if s.drain_timeout_ms == 0 {
        push("drain_timeout_ms", "must be at least 1".to_owned());
    }
    out
}

/// Why a load test could not be started or found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadTestError {
    /// A request field is wrong; `field` is its JSON path, e.g. `target_rps`.
    #[error("invalid `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("load tests are disabled by configuration")]
    Disabled,
    #[error("{running} load tests are already running (the limit is {max})")]
    TooManyRunning { running: usize, max: usize },
    #[error("load test '{0}' not found")]
    NotFound(String),
}

impl LoadTestError {
    /// The offending field, for a 400 response's `details`.
    pub fn field(&self) -> Option<&str> {
        match self {
            LoadTestError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        LoadTestError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A validated load test.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub tier: Tier,
    /// In-flight cap.
    pub users: usize,
    pub duration: Duration,
    pub target_rps: f64,
    pub providers: Vec<String>,
    pub models: Vec<String>,
    /// One cycle of the weighted scenario rotation.
    pub scenario_cycle: Vec<Scenario>,
    pub seed: u64,
}

impl LoadPlan {
    /// A plan without the HTTP request's defaults and caps (for benches and tests).
    pub fn new(target_rps: f64, duration: Duration, users: usize) -> Self {
        LoadPlan {
            tier: Tier::Medium,
            users: users.max(1),
            duration,
            target_rps,
            providers: Vec::new(),
            models: Vec::new(),
            scenario_cycle: vec![Scenario::ModelDiscovery],
            seed: 0,
        }
    }

    /// Requests the schedule holds: `floor(duration × rps)`.
    pub fn total_requests(&self) -> u64 {
        (self.duration.as_secs_f64() * self.target_rps + 1e-9).floor() as u64
    }

    /// The offset of request `i` from the start: `i / rps`.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.target_rps)
    }

    /// What request `i` is.
    pub fn request(&self, i: u64) -> RequestSpec {
        let cycle = self.scenario_cycle.len().max(1) as u64;
        let scenario = self
            .scenario_cycle
            .get((i % cycle) as usize)
            .copied()
            .unwrap_or(Scenario::ModelDiscovery);
        let j = (i / cycle) as usize;
        let (np, nm) = (self.providers.len(), self.models.len());
        let provider = (np > 0).then(|| self.providers[j % np].clone());
        let model = (nm > 0).then(|| {
            if np == nm {
                self.models[j % nm].clone()
            } else {
                self.models[(i as usize) % nm].clone()
            }
        });
        RequestSpec {
            index: i,
            scenario,
            provider,
            model,
            scheduled_offset: self.offset(i),
            seed: SplitMix64::new(self.seed ^ i).next_u64(),
        }
    }

    /// Validates a request body against the caps and the configured provider names.
    pub fn from_spec(
        spec: &LoadTestSpec,
        settings: &LoadTestSettings,
        known_providers: &[String],
    ) -> Result<LoadPlan, LoadTestError> {
        let tier = match spec.tier.as_deref() {
            None => Tier::Medium,
            Some(t) => Tier::ALL
                .into_iter()
                .find(|x| x.as_str() == t)
                .ok_or_else(|| {
                    LoadTestError::invalid(
                        "tier",
                        format!("unknown tier '{t}' (expected light, medium, heavy or extreme)"),
                    )
                })?,
        };
        if tier.users() > settings.max_users {
            return Err(LoadTestError::invalid(
                "tier",
                format!(
                    "{} ({} users) is over the limit of {} users",
                    tier.as_str(),
                    tier.users(),
                    settings.max_users
                ),
            ));
        }
        let minutes = spec.duration_minutes.unwrap_or(1.0);
        if !minutes.is_finite() || minutes <= 0.0 {
            return Err(LoadTestError::invalid(
                "duration_minutes",
                "must be a positive number",
            ));
        }
        if minutes > settings.max_duration_minutes as f64 {
            return Err(LoadTestError::invalid(
                "duration_minutes",
                format!(
                    "{minutes} is over the limit of {} minutes",
                    settings.max_duration_minutes
                ),
            ));
        }
        let rps = spec.target_rps.unwrap_or_else(|| tier.default_rps());
        if !rps.is_finite() || rps <= 0.0 {
            return Err(LoadTestError::invalid(
                "target_rps",
                "must be a positive number",
            ));
        }
        if rps > settings.max_rps {
            return Err(LoadTestError::invalid(
                "target_rps",
                format!("{rps} is over the limit of {}", settings.max_rps),
            ));
        }
        for (i, p) in spec.providers.iter().enumerate() {
            if !known_providers.iter().any(|k| k == p) {
                return Err(LoadTestError::invalid(
                    format!("providers[{i}]"),
                    format!("unknown provider '{p}'"),
                ));
            }
        }
        for (i, m) in spec.models.iter().enumerate() {
            if m.trim().is_empty() {
                return Err(LoadTestError::invalid(
                    format!("models[{i}]"),
                    "must not be empty",
                ));
            }
        }
        let mut cycle = Vec::new();
        for (i, entry) in spec.scenarios.iter().enumerate() {
            let (name, weight) = match entry {
                ScenarioEntry::Name(n) => (n, 1),
                ScenarioEntry::Weighted { name, weight } => (name, *weight),
            };
            let scenario = Scenario::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    LoadTestError::invalid(
                        format!("scenarios[{i}]"),
                        format!("unknown scenario '{name}' (expected chat_completion, model_discovery, search or condense)"),
                    )
                })?;
            if !(1..=100).contains(&weight) {
                return Err(LoadTestError::invalid(
                    format!("scenarios[{i}].weight"),
                    "must be between 1 and 100",
                ));
            }
            cycle.push((scenario, weight));
        }
        if cycle.is_empty() {
            cycle.push((Scenario::ModelDiscovery, 1));
        }
        if spec.models.is_empty() && cycle.iter().any(|(s, _)| *s == Scenario::ChatCompletion) {
            return Err(LoadTestError::invalid(
                "models",
                "the chat_completion scenario needs at least one model",
            ));
        }
        Ok(LoadPlan {
            tier,
            users: tier.users(),
            duration: Duration::from_secs_f64(minutes * 60.0),
            target_rps: rps,
            providers: spec.providers.clone(),
            models: spec.models.clone(),
            scenario_cycle: interleave(&cycle),
            seed: spec.seed.unwrap_or(0),
        })
    }
}

/// Smooth weighted round robin: `[(a,2),(b,1)]` → `[a, b, a]`, spreading each scenario
/// evenly over the cycle rather than in runs.
fn interleave(weights: &[(Scenario, u32)]) -> Vec<Scenario> {
    let total: i64 = weights.iter().map(|(_, w)| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (k, (_, w)) in weights.iter().enumerate() {
            current[k] += i64::from(*w);
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        out.push(weights[best].0);
    }
    out
}

/// One request for the request function to send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSpec {
    pub index: u64,
    pub scenario: Scenario,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// When it was due, from the start of the test.
    pub scheduled_offset: Duration,
    /// A per-request seed (e.g. to pick a prompt or a search term).
    pub seed: u64,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub ok: bool,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The provider that served it (e.g. from a response header), for the breakdown.
    pub provider: Option<String>,
}

/// The request function: sends one request and reports its outcome. It must bound its own
/// time (a client timeout); the generator only waits `drain_timeout_ms` at the end.
pub type RequestFn = Arc<dyn Fn(RequestSpec) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Boxes an async closure into a [`RequestFn`].
pub fn request_fn<F, Fut>(f: F) -> RequestFn
where
    F: Fn(RequestSpec) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Arc::new(move |spec| f(spec).boxed())
}

/// Lifecycle of a load test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadTestStatus {
    Running,
    Completed,
    Stopped,
}

/// `configuration` in start and results responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTestConfiguration {
    pub tier: Tier,
    pub users: usize,
    /// `5m`, or `90s` when not whole minutes.
    pub duration: String,
    pub target_rps: f64,
    pub scenarios: Vec<Scenario>,
    pub providers: Vec<String>,
    pub models: Vec<String>,
}

/// The `POST /api/load-test/start` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTestStarted {
    pub test_id: String,
    pub status: LoadTestStatus,
    pub configuration: LoadTestConfiguration,
    pub started_at: String,
}

/// `results` of a load test. Times in milliseconds, measured from each request's
/// scheduled send time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTestResults {
    /// Requests due so far (sent or dropped).
    pub total_requests: u64,
    pub successful_requests: u64,
    /// Failed responses, dropped requests and requests unfinished at the end.
    pub failed_requests: u64,
    /// Not sent because `users` requests were already in flight.
    pub dropped_requests: u64,
    pub in_flight: u64,
    pub average_response_time_ms: f64,
    pub p50_response_time_ms: f64,
    pub p95_response_time_ms: f64,
    pub p99_response_time_ms: f64,
    pub max_response_time_ms: f64,
    /// Answered requests (success or failure, not dropped) per second of elapsed time.
    pub requests_per_second: f64,
    pub error_rate: f64,
    /// Responses by HTTP status (`"none"` when there was no response).
    pub status_codes: BTreeMap<String, u64>,
}

/// One provider's share of the results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderBreakdown {
    pub requests: u64,
    pub success_rate: f64,
    pub avg_response_time_ms: f64,
}

/// The `GET /api/load-test/results/{id}` response (live while running).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadTestReport {
    pub test_id: String,
    pub status: LoadTestStatus,
    pub configuration: LoadTestConfiguration,
    pub started_at: String,
    pub duration_seconds: f64,
    pub results: LoadTestResults,
    pub provider_breakdown: BTreeMap<String, ProviderBreakdown>,
}

#[derive(Debug, Default)]
struct ProviderStats {
    requests: u64,
    ok: u64,
    sum_us: u64,
}

#[derive(Debug)]
struct Stats {
    hist: Option<Histogram<u64>>,
    due: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    unfinished: u64,
    sum_us: u64,
    answered: u64,
    per_provider: BTreeMap<String, ProviderStats>,
    status_codes: BTreeMap<String, u64>,
    /// Set once the run is over; later records are ignored.
    sealed: bool,
}

impl Stats {
    fn new() -> Self {
        Stats {
            // 1 µs to 1 h at 3 significant digits (~200 KiB); `None` cannot happen with
            // these constant bounds, but is handled by reporting zeros.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).ok(),
            due: 0,
            ok: 0,
            failed: 0,
            dropped: 0,
            unfinished: 0,
            sum_us: 0,
            answered: 0,
            per_provider: BTreeMap::new(),
            status_codes: BTreeMap::new(),
            sealed: false,
        }
    }

    fn record(&mut self, spec_provider: Option<String>, out: Outcome, latency: Duration) {
        if self.sealed {
            return;
        }
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        if let Some(h) = &mut self.hist {
            h.saturating_record(us);
        }
        self.answered += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        if out.ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        let code = out
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        *self.status_codes.entry(code).or_insert(0) += 1;
        if let Some(p) = out.provider.or(spec_provider) {
            let ps = self.per_provider.entry(p).or_default();
            ps.requests += 1;
            ps.ok += u64::from(out.ok);
            ps.sum_us = ps.sum_us.saturating_add(us);
        }
    }
}

fn ms(us: f64) -> f64 {
    (us / 1000.0 * 1000.0).round() / 1000.0
}

#[derive(Debug)]
struct RunShared {
    id: String,
    plan: LoadPlan,
    started: Instant,
    started_wall: OffsetDateTime,
    stats: Mutex<Stats>,
    /// (status, when sending ended) — sending ends at the schedule's end or at a stop.
    status: Mutex<(LoadTestStatus, Option<Instant>)>,
    in_flight: AtomicU64,
}

/// One load test run. Cheap to clone; dropping it does not stop the run (use
/// [`LoadGenerator::stop`]).
#[derive(Debug, Clone)]
pub struct LoadGenerator {
    shared: Arc<RunShared>,
    cancel: CancellationToken,
    done: watch::Receiver<bool>,
}

impl LoadGenerator {
    /// Starts sending on a spawned task (call inside a tokio runtime). `drain` bounds the
    /// wait for in-flight requests after the schedule ends or a stop.
    pub fn start(id: impl Into<String>, plan: LoadPlan, send: RequestFn, drain: Duration) -> Self {
        let shared = Arc::new(RunShared {
            id: id.into(),
            plan,
            started: Instant::now(),
            started_wall: OffsetDateTime::now_utc(),
            stats: Mutex::new(Stats::new()),
            status: Mutex::new((LoadTestStatus::Running, None)),
            in_flight: AtomicU64::new(0),
        });
        let cancel = CancellationToken::new();
        let (tx, done) = watch::channel(false);
        // Ends by itself at the schedule's end plus at most `drain`, or soon after a stop.
        tokio::spawn(run(Arc::clone(&shared), send, cancel.clone(), drain, tx));
        LoadGenerator {
            shared,
            cancel,
            done,
        }
    }

    pub fn id(&self) -> &str {
        &self.shared.id
    }

    pub fn status(&self) -> LoadTestStatus {
        lock(&self.shared.status).0
    }

    /// Stops sending; in-flight requests may finish (up to the drain time).
    pub fn stop(&self) {
        let mut st = lock(&self.shared.status);
        if st.0 == LoadTestStatus::Running {
            st.0 = LoadTestStatus::Stopped;
            st.1.get_or_insert_with(Instant::now);
        }
        drop(st);
        self.cancel.cancel();
    }

    /// Whether the run task has finished (including the drain).
    pub fn is_finished(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits until the run has finished, then returns the final results.
    pub async fn wait(&self) -> LoadTestReport {
        let mut done = self.done.clone();
        // An error means the task is gone, which also means it is finished.
        let _ = done.wait_for(|d| *d).await;
        self.results()
    }

    pub fn configuration(&self) -> LoadTestConfiguration {
        let p = &self.shared.plan;
        let mut scenarios = p.scenario_cycle.clone();
        scenarios.sort();
        scenarios.dedup();
        LoadTestConfiguration {
            tier: p.tier,
            users: p.users,
            duration: format_duration(p.duration),
            target_rps: p.target_rps,
            scenarios,
            providers: p.providers.clone(),
            models: p.models.clone(),
        }
    }

    pub fn started(&self) -> LoadTestStarted {
        LoadTestStarted {
            test_id: self.shared.id.clone(),
            status: self.status(),
            configuration: self.configuration(),
            started_at: modelgate_types::format_rfc3339(self.shared.started_wall),
        }
    }

    /// A live snapshot (final once finished).
    pub fn results(&self) -> LoadTestReport {
        let sh = &self.shared;
        let (status, sending_ended) = *lock(&sh.status);
        let end = sending_ended.unwrap_or_else(Instant::now);
        let elapsed = end.saturating_duration_since(sh.started);
        let s = lock(&sh.stats);
        let q = |p: f64| {
            s.hist
                .as_ref()
                .map_or(0.0, |h| ms(h.value_at_quantile(p) as f64))
        };
        let total = s.due;
        let failed = s.failed + s.dropped + s.unfinished;
        let results = LoadTestResults {
            total_requests: total,
            successful_requests: s.ok,
            failed_requests: failed,
            dropped_requests: s.dropped,
            in_flight: sh.in_flight.load(Ordering::Relaxed),
            average_response_time_ms: if s.answered > 0 {
                ms(s.sum_us as f64 / s.answered as f64)
            } else {
                0.0
            },
            p50_response_time_ms: q(0.50),
            p95_response_time_ms: q(0.95),
            p99_response_time_ms: q(0.99),
            max_response_time_ms: s.hist.as_ref().map_or(0.0, |h| ms(h.max() as f64)),
            requests_per_second: if elapsed.is_zero() {
                0.0
            } else {
                (s.answered as f64 / elapsed.as_secs_f64() * 100.0).round() / 100.0
            },
            error_rate: if total > 0 {
                (failed as f64 / total as f64 * 10_000.0).round() / 10_000.0
            } else {
                0.0
            },
            status_codes: s.status_codes.clone(),
        };
        let provider_breakdown = s
            .per_provider
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    ProviderBreakdown {
                        requests: p.requests,
                        success_rate: if p.requests > 0 {
                            (p.ok as f64 / p.requests as f64 * 10_000.0).round() / 10_000.0
                        } else {
                            0.0
                        },
                        avg_response_time_ms: if p.requests > 0 {
                            ms(p.sum_us as f64 / p.requests as f64)
                        } else {
                            0.0
                        },
                    },
                )
            })
            .collect();
        drop(s);
        LoadTestReport {
            test_id: sh.id.clone(),
            status,
            configuration: self.configuration(),
            started_at: modelgate_types::format_rfc3339(sh.started_wall),
            duration_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            results,
            provider_breakdown,
        }
    }
}

/// Resolution of tokio's timer wheel: how late `sleep_until` may wake by itself.
const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

async fn run(
    sh: Arc<RunShared>,
    send: RequestFn,
    cancel: CancellationToken,
    drain: Duration,
    done: watch::Sender<bool>,
) {
    let plan = &sh.plan;
    let total = plan.total_requests();
    let limit = Arc::new(Semaphore::new(plan.users));
    let mut tasks = JoinSet::new();
    for i in 0..total {
        let scheduled = sh.started + plan.offset(i);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(scheduled) => {}
        }
        // tokio's timer has 1 ms granularity, so a wake-up up to that late is the
        // generator's own lateness, not the server's: latency then counts from the actual
        // send. Any later and the generator is behind schedule (a backlog the server
        // caused, or an overloaded host), which counts from the scheduled time.
        let woke = Instant::now();
        let origin = if woke.saturating_duration_since(scheduled) <= TIMER_GRANULARITY {
            woke
        } else {
            scheduled
        };
        while tasks.try_join_next().is_some() {}
        let spec = plan.request(i);
        let permit = Arc::clone(&limit).try_acquire_owned();
        let mut stats = lock(&sh.stats);
        stats.due += 1;
        let Ok(permit) = permit else {
            stats.dropped += 1;
            continue;
        };
        drop(stats);
        let provider = spec.provider.clone();
        let fut = send(spec);
        let sh2 = Arc::clone(&sh);
        sh.in_flight.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let out = fut.await;
            let latency = Instant::now().saturating_duration_since(origin);
            lock(&sh2.stats).record(provider, out, latency);
            sh2.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    // Sending is over at the schedule's end (not at the last send), so the achieved rate
    // is measured over the whole test.
    tokio::select! {
        biased;
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep_until(sh.started + plan.duration) => {}
    }
    {
        let mut st = lock(&sh.status);
        if st.1.is_none() {
            st.1 = Some(Instant::now().min(sh.started + plan.duration));
        }
    }
    let drained =
        tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        let left = tasks.len() as u64;
        tasks.abort_all();
        lock(&sh.stats).unfinished += left;
        sh.in_flight.store(0, Ordering::Relaxed);
        tracing::warn!(test = %sh.id, left, "load test ended with requests still in flight");
    }
    lock(&sh.stats).sealed = true;
    {
        let mut st = lock(&sh.status);
        if st.0 == LoadTestStatus::Running {
            st.0 = LoadTestStatus::Completed;
        }
    }
    let _ = done.send(true);
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs % 60 == 0 && d.subsec_nanos() == 0 && secs > 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{}s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

/// Manages load tests for the HTTP API: validation, caps, ids, retention. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoadTester {
    inner: Arc<TesterInner>,
}

#[derive(Debug)]
struct TesterInner {
    settings: LoadTestSettings,
    providers: Mutex<Vec<String>>,
    tests: Mutex<VecDeque<LoadGenerator>>,
    next_id: AtomicU64,
    salt: u64,
}

impl LoadTester {
    /// `providers`: the configured provider names a test may name.
    pub fn new<I, S>(settings: LoadTestSettings, providers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        LoadTester {
            inner: Arc::new(TesterInner {
                settings,
                providers: Mutex::new(providers.into_iter().map(Into::into).collect()),
                tests: Mutex::new(VecDeque::new()),
                next_id: AtomicU64::new(1),
                salt: SplitMix64::from_entropy().next_u64() & 0xFF_FFFF,
            }),
        }
    }

    pub fn set_providers<I, S>(&self, providers: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        *lock(&self.inner.providers) = providers.into_iter().map(Into::into).collect();
    }

    pub fn settings(&self) -> &LoadTestSettings {
        &self.inner.settings
    }

    /// Validates and starts a test that sends through `send` (call inside a tokio runtime).
    pub fn start(
        &self,
        spec: &LoadTestSpec,
        send: RequestFn,
    ) -> Result<LoadTestStarted, LoadTestError> {
        let settings = &self.inner.settings;
        if !settings.enabled {
            return Err(LoadTestError::Disabled);
        }
        let plan = {
            let providers = lock(&self.inner.providers);
            LoadPlan::from_spec(spec, settings, &providers)?
        };
        let mut tests = lock(&self.inner.tests);
        let running = tests
            .iter()
            .filter(|t| t.status() == LoadTestStatus::Running)
            .count();
        if running >= settings.max_concurrent_tests {
            return Err(LoadTestError::TooManyRunning {
                running,
                max: settings.max_concurrent_tests,
            });
        }
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("load_test_{:06x}{n}", self.inner.salt);
        tracing::info!(test = %id, rps = plan.target_rps, users = plan.users, "load test started");
        let gen = LoadGenerator::start(
            id,
            plan,
            send,
            Duration::from_millis(settings.drain_timeout_ms),
        );
        let started = gen.started();
        tests.push_back(gen);
        let mut finished = tests
            .iter()
            .filter(|t| t.status() != LoadTestStatus::Running)
            .count();
        tests.retain(|t| {
            if finished > settings.retained_tests && t.status() != LoadTestStatus::Running {
                finished -= 1;
                false
            } else {
                true
            }
        });
        Ok(started)
    }

    pub fn get(&self, id: &str) -> Option<LoadGenerator> {
        lock(&self.inner.tests)
            .iter()
            .find(|t| t.id() == id)
            .cloned()
    }

    /// Live or final results.
    pub fn results(&self, id: &str) -> Result<LoadTestReport, LoadTestError> {
        self.get(id)
            .map(|t| t.results())
            .ok_or_else(|| LoadTestError::NotFound(id.to_owned()))
    }

    /// Stops a test early (a finished one is left as it is) and returns its results.
    pub fn stop(&self, id: &str) -> Result<LoadTestReport, LoadTestError> {
        let t = self
            .get(id)
            .ok_or_else(|| LoadTestError::NotFound(id.to_owned()))?;
        t.stop();
        Ok(t.results())
    }

    /// Stops every running test (at shutdown).
    pub fn stop_all(&self) {
        let tests: Vec<_> = lock(&self.inner.tests).iter().cloned().collect();
        for t in tests {
            t.stop();
        }
    }

    /// Tests running now.
    pub fn running(&self) -> usize {
        lock(&self.inner.tests)
            .iter()
            .filter(|t| t.status() == LoadTestStatus::Running)
            .count()
    }

    /// Every running and retained test, oldest first.
    pub fn list(&self) -> Vec<LoadTestReport> {
        let tests: Vec<_> = lock(&self.inner.tests).iter().cloned().collect();
        tests.iter().map(LoadGenerator::results).collect()
    }
}

#[cfg(test)]
mod tests;
