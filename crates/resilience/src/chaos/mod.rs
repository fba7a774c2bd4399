//! Chaos engineering: a shared [`ChaosEngine`] holding the running experiments, consulted
//! on every provider call by the [`FaultInjector`] decorator, and measuring how the
//! gateway's clients fared (degradation during, recovery after).
//!
//! Experiments live in memory only (a restart ends them all). They expire lazily: every
//! engine call first retires experiments whose end has passed, dating their stop at their
//! scheduled end, so no background task is needed and none can leak.

mod inject;
pub(crate) mod shape;
mod spec;

pub use inject::FaultInjector;
pub use spec::{
    validate, ChaosError, ExperimentPlan, ExperimentSpec, FaultPlan, FaultSpec, FaultType, Severity,
};

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::lock;
use crate::rng::SplitMix64;
use crate::settings::ChaosSettings;

/// Lifecycle of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    Running,
    /// Ran to its scheduled end.
    Completed,
    /// Stopped early by a request.
    Stopped,
}

/// `configuration` in start/stop/get responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentConfiguration {
    pub name: String,
    /// `10m`, or `90s` for durations that are not whole minutes.
    pub duration: String,
    pub faults: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// The `POST /api/chaos/start` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentStarted {
    pub experiment_id: String,
    pub status: ExperimentStatus,
    pub configuration: ExperimentConfiguration,
    pub started_at: String,
}

/// One fault's plan and how often it fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultReport {
    pub index: usize,
    #[serde(flatten)]
    pub plan: FaultPlan,
    pub injected: u64,
}

/// `results` of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentResults {
    pub total_faults_injected: u64,
    /// Client-facing success rate during the experiment fell below
    /// `chaos.degradation_threshold` (default 0.95). False when no outcome was recorded.
    pub system_degradation_detected: bool,
    /// Seconds from the stop until the client-facing success rate over the last
    /// `chaos.recovery_window_requests` outcomes reached the lower of the baseline rate and
    /// the degradation threshold (measured to the first outcome of that window). `null`
    /// while running and until recovered.
    pub recovery_time_seconds: Option<f64>,
    pub faults: Vec<FaultReport>,
    /// Provider calls seen per provider the experiment targets (faulted or not).
    pub calls_observed: BTreeMap<String, u64>,
    /// Client-facing outcomes recorded while the experiment ran.
    pub client_requests: u64,
    pub client_success_rate: Option<f64>,
    /// Client-facing success rate over `chaos.baseline_window_seconds` before the start;
    /// `null` when there was no traffic (treated as 1.0).
    pub baseline_success_rate: Option<f64>,
}

/// The `GET /api/chaos/{id}` and `POST /api/chaos/stop/{id}` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    pub experiment_id: String,
    pub status: ExperimentStatus,
    pub configuration: ExperimentConfiguration,
    pub started_at: String,
    /// Scheduled end while running; actual end afterwards.
    pub ends_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// How long it has run (so far).
    pub duration_seconds: u64,
    pub results: ExperimentResults,
}

/// Which provider operation a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    ListModels,
    Chat,
    ChatStream,
    Health,
    Completion,
}

/// What the injector must do to one call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Injection {
    Delay(Duration),
    Hang(Duration),
    Fail {
        status: Option<u16>,
        retry_after: Option<Duration>,
        abort: bool,
        experiment: String,
    },
    StreamCut(usize),
}

#[derive(Debug)]
struct ActiveFault {
    plan: FaultPlan,
    rng: SplitMix64,
    injected: u64,
}

impl ActiveFault {
    fn targets(&self, provider: &str) -> bool {
        self.plan.target.as_deref().is_none_or(|t| t == provider)
    }

    fn applies(&self, provider: &str, model: Option<&str>, op: Op) -> bool {
        if self.plan.fault_type == FaultType::StreamCut && op != Op::ChatStream {
            return false;
        }
        match (&self.plan.model, model) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(want), Some(m)) => {
                want == m
                    || want
                        .strip_prefix(provider)
                        .and_then(|rest| rest.strip_prefix('/'))
                        == Some(m)
            }
        }
    }
}

#[derive(Debug)]
struct Experiment {
    id: String,
    plan_name: String,
    seed: Option<u64>,
    duration: Duration,
    started: Instant,
    started_wall: OffsetDateTime,
    status: ExperimentStatus,
    stopped: Option<Instant>,
    faults: Vec<ActiveFault>,
    calls_observed: BTreeMap<String, u64>,
    baseline: Option<f64>,
    during_ok: u64,
    during_failed: u64,
    recovery_window: VecDeque<(Instant, bool)>,
    recovered_after: Option<Duration>,
}

impl Experiment {
    fn ends(&self) -> Instant {
        self.started + self.duration
    }

    fn configuration(&self) -> ExperimentConfiguration {
        ExperimentConfiguration {
            name: self.plan_name.clone(),
            duration: format_duration(self.duration),
            faults: self.faults.len(),
            seed: self.seed,
        }
    }

    fn wall(&self, at: Instant) -> String {
        let offset = at.saturating_duration_since(self.started);
        let t = self.started_wall + offset;
        modelgate_types::format_rfc3339(t)
    }

    fn report(&self, now: Instant, threshold: f64) -> ExperimentReport {
        let end = self.stopped.unwrap_or(now).min(self.ends());
        let during = self.during_ok + self.during_failed;
        let rate = (during > 0).then(|| self.during_ok as f64 / during as f64);
        ExperimentReport {
            experiment_id: self.id.clone(),
            status: self.status,
            configuration: self.configuration(),
            started_at: self.wall(self.started),
            ends_at: self.wall(self.stopped.unwrap_or_else(|| self.ends())),
            stopped_at: self.stopped.map(|s| self.wall(s)),
            duration_seconds: end.saturating_duration_since(self.started).as_secs(),
            results: ExperimentResults {
                total_faults_injected: self.faults.iter().map(|f| f.injected).sum(),
                system_degradation_detected: rate.is_some_and(|r| r < threshold),
                recovery_time_seconds: self
                    .recovered_after
                    .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
                faults: self
                    .faults
                    .iter()
                    .enumerate()
                    .map(|(index, f)| FaultReport {
                        index,
                        plan: f.plan.clone(),
                        injected: f.injected,
                    })
                    .collect(),
                calls_observed: self.calls_observed.clone(),
                client_requests: during,
                client_success_rate: rate,
                baseline_success_rate: self.baseline,
            },
        }
    }
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs % 60 == 0 && d.subsec_nanos() == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[derive(Debug)]
struct State {
    providers: BTreeSet<String>,
    /// In start order; running and retained finished experiments.
    experiments: Vec<Experiment>,
    next_id: u64,
    id_salt: u64,
    /// Client-facing outcomes per second (seconds since `epoch`), for the baseline.
    buckets: VecDeque<(u64, u64, u64)>,
    epoch: Instant,
}

#[derive(Debug)]
struct Shared {
    settings: ChaosSettings,
    /// Running experiments (may briefly count one that has expired but not been retired).
    running: AtomicUsize,
    state: Mutex<State>,
}

/// The chaos engine: cheap to clone (an `Arc`), shared by every [`FaultInjector`] and the
/// HTTP handlers. With no experiment running, a provider call costs one atomic load.
#[derive(Debug, Clone)]
pub struct ChaosEngine {
    shared: Arc<Shared>,
}

impl ChaosEngine {
    /// `providers`: the configured provider names a fault may target.
    pub fn new<I, S>(settings: ChaosSettings, providers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ChaosEngine {
            shared: Arc::new(Shared {
                settings,
                running: AtomicUsize::new(0),
                state: Mutex::new(State {
                    providers: providers.into_iter().map(Into::into).collect(),
                    experiments: Vec::new(),
                    next_id: 1,
                    id_salt: SplitMix64::from_entropy().next_u64() & 0xFF_FFFF,
                    buckets: VecDeque::new(),
                    epoch: Instant::now(),
                }),
            }),
        }
    }

    /// Replaces the provider names faults may target (after a config reload).
    pub fn set_providers<I, S>(&self, providers: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        lock(&self.shared.state).providers = providers.into_iter().map(Into::into).collect();
    }

    pub fn settings(&self) -> &ChaosSettings {
        &self.shared.settings
    }

    /// Wraps a provider so this engine's faults apply to it.
    pub fn injector(&self, inner: Arc<dyn modelgate_providers::Provider>) -> FaultInjector {
        FaultInjector::new(inner, self.clone())
    }

    /// Validates and starts an experiment.
    pub fn start(&self, spec: &ExperimentSpec) -> Result<ExperimentStarted, ChaosError> {
        let settings = &self.shared.settings;
        if !settings.enabled {
            return Err(ChaosError::Disabled);
        }
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        let plan = validate(spec, settings, &st.providers)?;
        let running = self.shared.running.load(Ordering::SeqCst);
        if running >= settings.max_concurrent_experiments {
            return Err(ChaosError::TooManyRunning {
                running,
                max: settings.max_concurrent_experiments,
            });
        }
        let id = format!("chaos_exp_{:06x}{}", st.id_salt, st.next_id);
        st.next_id += 1;
        let baseline = baseline_rate(&st, now, settings.baseline_window_seconds);
        let faults = plan
            .faults
            .into_iter()
            .enumerate()
            .map(|(i, plan)| ActiveFault {
                rng: match plan_seed(spec.seed, i) {
                    Some(s) => SplitMix64::new(s),
                    None => SplitMix64::from_entropy(),
                },
                plan,
                injected: 0,
            })
            .collect();
        let exp = Experiment {
            id: id.clone(),
            plan_name: plan.name,
            seed: plan.seed,
            duration: plan.duration,
            started: now,
            started_wall: OffsetDateTime::now_utc(),
            status: ExperimentStatus::Running,
            stopped: None,
            faults,
            calls_observed: BTreeMap::new(),
            baseline,
            during_ok: 0,
            during_failed: 0,
            recovery_window: VecDeque::new(),
            recovered_after: None,
        };
        tracing::warn!(experiment = %id, name = %exp.plan_name, "chaos experiment started");
        let started = ExperimentStarted {
            experiment_id: id,
            status: ExperimentStatus::Running,
            configuration: exp.configuration(),
            started_at: exp.wall(now),
        };
        st.experiments.push(exp);
        self.shared.running.fetch_add(1, Ordering::SeqCst);
        Ok(started)
    }

    /// Stops an experiment early; stopping a finished one returns its report unchanged.
    pub fn stop(&self, id: &str) -> Result<ExperimentReport, ChaosError> {
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        let exp = st
            .experiments
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| ChaosError::NotFound(id.to_owned()))?;
        if exp.status == ExperimentStatus::Running {
            exp.status = ExperimentStatus::Stopped;
            exp.stopped = Some(now);
            self.shared.running.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(experiment = %id, "chaos experiment stopped");
        }
        let report = exp.report(now, self.shared.settings.degradation_threshold);
        self.trim(&mut st);
        Ok(report)
    }

    pub fn get(&self, id: &str) -> Result<ExperimentReport, ChaosError> {
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        st.experiments
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.report(now, self.shared.settings.degradation_threshold))
            .ok_or_else(|| ChaosError::NotFound(id.to_owned()))
    }

    /// Every running and retained experiment, oldest first.
    pub fn list(&self) -> Vec<ExperimentReport> {
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        st.experiments
            .iter()
            .map(|e| e.report(now, self.shared.settings.degradation_threshold))
            .collect()
    }

    /// Running experiments now.
    pub fn running(&self) -> usize {
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, Instant::now());
        self.shared.running.load(Ordering::SeqCst)
    }

    /// Records how one client-facing request ended (the HTTP layer calls this for every
    /// proxied chat/completion request). Feeds the baseline, the during-experiment success
    /// rate and the recovery measurement.
    pub fn record_outcome(&self, success: bool) {
        let now = Instant::now();
        let settings = &self.shared.settings;
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        let sec = now.saturating_duration_since(st.epoch).as_secs();
        match st.buckets.back_mut() {
            Some(b) if b.0 == sec => {
                if success {
                    b.1 += 1
                } else {
                    b.2 += 1
                }
            }
            _ => st
                .buckets
                .push_back((sec, u64::from(success), u64::from(!success))),
        }
        let keep = settings.baseline_window_seconds;
        while st.buckets.front().is_some_and(|b| b.0 + keep < sec) {
            st.buckets.pop_front();
        }
        let window = settings.recovery_window_requests.max(1);
        for exp in &mut st.experiments {
            match exp.status {
                ExperimentStatus::Running => {
                    if success {
                        exp.during_ok += 1
                    } else {
                        exp.during_failed += 1
                    }
                }
                _ if exp.recovered_after.is_none() => {
                    let Some(stopped) = exp.stopped else { continue };
                    exp.recovery_window.push_back((now, success));
                    if exp.recovery_window.len() > window {
                        exp.recovery_window.pop_front();
                    }
                    if exp.recovery_window.len() == window {
                        let ok = exp.recovery_window.iter().filter(|(_, s)| *s).count();
                        let target = exp
                            .baseline
                            .unwrap_or(1.0)
                            .min(settings.degradation_threshold);
                        if ok as f64 / window as f64 >= target {
                            let first = exp.recovery_window.front().map_or(now, |(t, _)| *t);
                            exp.recovered_after = Some(first.saturating_duration_since(stopped));
                            exp.recovery_window = VecDeque::new();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The fault (if any) for one provider call. The first fault that fires wins, but every
    /// applicable fault draws, so each fault's sequence depends only on its own seed and the
    /// calls it applies to.
    pub(crate) fn decide(&self, provider: &str, model: Option<&str>, op: Op) -> Option<Injection> {
        if self.shared.running.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = Instant::now();
        let mut st = lock(&self.shared.state);
        self.retire(&mut st, now);
        let mut chosen = None;
        for exp in st
            .experiments
            .iter_mut()
            .filter(|e| e.status == ExperimentStatus::Running)
        {
            let mut observed = false;
            for fault in &mut exp.faults {
                if !fault.targets(provider) {
                    continue;
                }
                observed = true;
                if !fault.applies(provider, model, op) {
                    continue;
                }
                let fires = fault.rng.next_f64() < fault.plan.probability;
                if fires && chosen.is_none() {
                    fault.injected += 1;
                    chosen = Some(injection(&fault.plan, &exp.id));
                }
            }
            if observed {
                *exp.calls_observed.entry(provider.to_owned()).or_insert(0) += 1;
            }
        }
        chosen
    }

    /// Retires experiments past their end (stop time = their scheduled end).
    fn retire(&self, st: &mut State, now: Instant) {
        let mut retired = 0;
        for exp in &mut st.experiments {
            if exp.status == ExperimentStatus::Running && now >= exp.ends() {
                exp.status = ExperimentStatus::Completed;
                exp.stopped = Some(exp.ends());
                retired += 1;
                tracing::warn!(experiment = %exp.id, "chaos experiment completed");
            }
        }
        if retired > 0 {
            self.shared.running.fetch_sub(retired, Ordering::SeqCst);
            self.trim(st);
        }
    }

    /// Drops the oldest finished experiments beyond the retention cap.
    fn trim(&self, st: &mut State) {
        let cap = self.shared.settings.retained_experiments;
        let mut finished = st
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Running)
            .count();
        st.experiments.retain(|e| {
            if finished > cap && e.status != ExperimentStatus::Running {
                finished -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Problems of a `chaos` section that its types alone cannot catch, as (key path, message).
pub fn settings_problems(s: &ChaosSettings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut at_least_one = |key: &str, v: u64| {
        if v == 0 {
            out.push((format!("chaos.{key}"), "must be at least 1".to_owned()));
        }
    };
    at_least_one("max_duration_minutes", s.max_duration_minutes);
    at_least_one(
        "max_concurrent_experiments",
        s.max_concurrent_experiments as u64,
    );
    at_least_one(
        "max_faults_per_experiment",
        s.max_faults_per_experiment as u64,
    );
    at_least_one(
        "recovery_window_requests",
        s.recovery_window_requests as u64,
    );
    if !(0.0..=1.0).contains(&s.degradation_threshold) {
        out.push((
            "chaos.degradation_threshold".to_owned(),
            format!("{} is not between 0 and 1", s.degradation_threshold),
        ));
    }
    out
}

fn plan_seed(seed: Option<u64>, index: usize) -> Option<u64> {
    seed.map(|s| SplitMix64::new(s ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407)).next_u64())
}

fn baseline_rate(st: &State, now: Instant, window_secs: u64) -> Option<f64> {
    let sec = now.saturating_duration_since(st.epoch).as_secs();
    let (ok, failed) = st
        .buckets
        .iter()
        .filter(|b| b.0 + window_secs >= sec)
        .fold((0, 0), |(o, f), b| (o + b.1, f + b.2));
    (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64)
}

fn injection(plan: &FaultPlan, experiment: &str) -> Injection {
    let experiment = experiment.to_owned();
    match plan.fault_type {
        FaultType::Delay => Injection::Delay(plan.duration),
        FaultType::Timeout => Injection::Hang(plan.duration),
        FaultType::Error => Injection::Fail {
            status: plan.error_code,
            retry_after: None,
            abort: false,
            experiment,
        },
        FaultType::RateLimit => Injection::Fail {
            status: Some(429),
            retry_after: Some(plan.duration),
            abort: false,
            experiment,
        },
        FaultType::Abort => Injection::Fail {
            status: None,
            retry_after: None,
            abort: true,
            experiment,
        },
        FaultType::StreamCut => Injection::StreamCut(plan.cut_after_chunks.unwrap_or(3)),
    }
}

#[cfg(test)]
mod tests;
