//! The async job queue: bounded, priority-ordered (high, medium, low; FIFO within one),
//! served by a fixed number of worker tasks, with finished results kept for a bounded time
//! and count.
//!
//! Shutdown: [`JobQueue::shutdown`] stops taking jobs, fails the ones still waiting
//! ("the gateway is shutting down"), lets running ones finish, and waits for the workers.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::condenser::{millis, CondenseJob, CondenseResult, Condenser};
use crate::error::{CondenseError, SubmitError};

/// Processing priority of an async job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = CondenseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "medium" => Ok(Priority::Medium),
            "high" => Ok(Priority::High),
            _ => Err(CondenseError::UnknownPriority {
                given: s.to_owned(),
            }),
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Processing,
    Completed,
    Failed,
}

/// `GET /api/condense/status/{request_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub request_id: String,
    pub status: JobState,
    pub priority: Priority,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<CondenseResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339 timestamps.
    pub queued_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// From start to finish of the processing (not the wait in the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_time_ms: Option<u64>,
}

/// The answer to a submission (`POST /api/condense/async`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTicket {
    pub request_id: String,
    pub status: JobState,
    pub priority: Priority,
    /// Expected time until the result is ready: the observed mean processing time times
    /// the rounds of work ahead of this job (jobs of equal or higher priority, plus the
    /// running ones, shared among the workers).
    pub estimated_time_ms: u64,
    pub message: String,
}

/// Queue counters for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queued: usize,
    pub processing: usize,
    pub finished_kept: usize,
    pub capacity: usize,
    pub workers: usize,
    pub avg_processing_ms: f64,
}

/// Sizes of the queue (usually from [`crate::CondenseSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    pub capacity: usize,
    pub workers: usize,
    pub result_ttl: Duration,
    pub result_max_count: usize,
}

impl QueueConfig {
    pub fn from_settings(s: &crate::CondenseSettings) -> Self {
        QueueConfig {
            capacity: s.queue_capacity.max(1),
            workers: s.workers.max(1),
            result_ttl: Duration::from_secs(s.result_ttl_secs),
            result_max_count: s.result_max_count.max(1),
        }
    }
}

/// Assumed processing time before any job has finished.
const INITIAL_ESTIMATE_MS: f64 = 100.0;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    priority: Priority,
    /// Negated arrival order, so that earlier jobs rank higher within a priority.
    order: std::cmp::Reverse<u64>,
    id: String,
}

#[derive(Debug)]
struct Record {
    status: JobStatus,
    job: Option<CondenseJob>,
    started: Option<Instant>,
}

#[derive(Debug)]
struct State {
    waiting: BinaryHeap<Waiting>,
    records: HashMap<String, Record>,
    /// Finished jobs, oldest first, for eviction.
    finished: VecDeque<(Instant, String)>,
    processing: usize,
    paused: bool,
    closed: bool,
    seq: u64,
    /// Exponentially weighted mean processing time.
    avg_ms: f64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Notify,
    condenser: Arc<Condenser>,
    config: QueueConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; recover the data if one ever did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The async condensation queue. Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct JobQueue {
    shared: Arc<Shared>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl JobQueue {
    /// Starts `config.workers` worker tasks on the current Tokio runtime.
    pub fn start(condenser: Arc<Condenser>, config: QueueConfig) -> Self {
        JobQueue::build(condenser, config, false)
    }

    /// Like [`JobQueue::start`], but paused: jobs wait until [`JobQueue::resume`].
    pub fn start_paused(condenser: Arc<Condenser>, config: QueueConfig) -> Self {
        JobQueue::build(condenser, config, true)
    }

    fn build(condenser: Arc<Condenser>, config: QueueConfig, paused: bool) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: BinaryHeap::new(),
                records: HashMap::new(),
                finished: VecDeque::new(),
                processing: 0,
                paused,
                closed: false,
                seq: 0,
                avg_ms: INITIAL_ESTIMATE_MS,
            }),
            wake: Notify::new(),
            condenser,
            config,
        });
        let handles = (0..config.workers.max(1))
            .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
            .collect();
        JobQueue {
            shared,
            workers: Arc::new(Mutex::new(handles)),
        }
    }

    /// Queues a validated job. A full queue is [`SubmitError::QueueFull`] (HTTP 503 with
    /// `Retry-After`).
    pub fn submit(&self, job: CondenseJob, priority: Priority) -> Result<JobTicket, SubmitError> {
        let config = self.shared.config;
        let mut st = self.shared.lock();
        if st.closed {
            return Err(SubmitError::ShuttingDown);
        }
        prune(&mut st, &config, Instant::now());
        if st.waiting.len() >= config.capacity {
            let secs =
                (st.avg_ms * st.waiting.len() as f64 / config.workers as f64 / 1000.0).ceil();
            return Err(SubmitError::QueueFull {
                capacity: config.capacity,
                retry_after_secs: (secs as u64).max(1),
            });
        }
        let ahead = st.waiting.iter().filter(|w| w.priority >= priority).count() + st.processing;
        let rounds = ahead / config.workers + 1;
        let estimated_time_ms = (st.avg_ms * rounds as f64).round() as u64;
        let id = new_request_id();
        st.seq += 1;
        let order = std::cmp::Reverse(st.seq);
        st.waiting.push(Waiting {
            priority,
            order,
            id: id.clone(),
        });
        st.records.insert(
            id.clone(),
            Record {
                status: JobStatus {
                    request_id: id.clone(),
                    status: JobState::Queued,
                    priority,
                    result: None,
                    error: None,
                    queued_at: modelgate_types::now_rfc3339(),
                    started_at: None,
                    completed_at: None,
                    processing_time_ms: None,
                },
                job: Some(job),
                started: None,
            },
        );
        drop(st);
        self.shared.wake.notify_one();
        Ok(JobTicket {
            request_id: id,
            status: JobState::Queued,
            priority,
            estimated_time_ms,
            message: "Summarization request queued for processing".to_owned(),
        })
    }

    /// The status of a job; `None` for an unknown (or evicted) id.
    pub fn status(&self, request_id: &str) -> Option<JobStatus> {
        let mut st = self.shared.lock();
        prune(&mut st, &self.shared.config, Instant::now());
        st.records.get(request_id).map(|r| r.status.clone())
    }

    /// Stops workers from taking new jobs (running ones finish).
    pub fn pause(&self) {
        self.shared.lock().paused = true;
    }

    /// Lets workers take jobs again.
    pub fn resume(&self) {
        self.shared.lock().paused = false;
        self.shared.wake.notify_waiters();
    }

    pub fn stats(&self) -> QueueStats {
        let st = self.shared.lock();
        QueueStats {
            queued: st.waiting.len(),
            processing: st.processing,
            finished_kept: st.finished.len(),
            capacity: self.shared.config.capacity,
            workers: self.shared.config.workers,
            avg_processing_ms: (st.avg_ms * 10.0).round() / 10.0,
        }
    }

    /// Stops taking jobs, fails the waiting ones, lets running ones finish and waits for
    /// every worker to exit.
    pub async fn shutdown(&self) {
        {
            let mut st = self.shared.lock();
            st.closed = true;
            let now = Instant::now();
            let waiting: Vec<Waiting> = st.waiting.drain().collect();
            for w in waiting {
                if let Some(r) = st.records.get_mut(&w.id) {
                    r.job = None;
                    r.status.status = JobState::Failed;
                    r.status.error = Some("the gateway is shutting down".to_owned());
                    r.status.completed_at = Some(modelgate_types::now_rfc3339());
                }
                st.finished.push_back((now, w.id));
            }
        }
        self.shared.wake.notify_waiters();
        let handles: Vec<JoinHandle<()>> = {
            let mut guard = self.workers.lock().unwrap_or_else(|e| e.into_inner());
            guard.drain(..).collect()
        };
        for h in handles {
            if let Err(e) = h.await {
                tracing::warn!(error = %e, "condense worker ended abnormally");
            }
        }
    }
}

/// Drops finished jobs older than the TTL, then the oldest beyond the count limit.
fn prune(st: &mut State, config: &QueueConfig, now: Instant) {
    while let Some((at, id)) = st.finished.front() {
        let expired = now.saturating_duration_since(*at) > config.result_ttl;
        if !expired && st.finished.len() <= config.result_max_count {
            break;
        }
        let id = id.clone();
        st.finished.pop_front();
        st.records.remove(&id);
    }
}

async fn worker(shared: Arc<Shared>) {
    loop {
        let wake = shared.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let next = {
            let mut st = shared.lock();
            if st.closed {
                return;
            }
            if st.paused {
                None
            } else {
                take_next(&mut st)
            }
        };
        let Some((id, job)) = next else {
            wake.await;
            continue;
        };
        // A separate task, so a panic in a strategy fails the job, not the worker.
        let condenser = Arc::clone(&shared.condenser);
        let outcome = tokio::spawn(async move { condenser.condense(job).await }).await;
        let outcome: Result<CondenseResult, String> = match outcome {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("condensation task failed: {e}")),
        };
        finish(&shared, &id, outcome);
    }
}

fn take_next(st: &mut State) -> Option<(String, CondenseJob)> {
    while let Some(w) = st.waiting.pop() {
        let Some(record) = st.records.get_mut(&w.id) else {
            continue;
        };
        let Some(job) = record.job.take() else {
            continue;
        };
        record.status.status = JobState::Processing;
        record.status.started_at = Some(modelgate_types::now_rfc3339());
        record.started = Some(Instant::now());
        st.processing += 1;
        return Some((w.id, job));
    }
    None
}

fn finish(shared: &Shared, id: &str, outcome: Result<CondenseResult, String>) {
    let now = Instant::now();
    let mut st = shared.lock();
    st.processing = st.processing.saturating_sub(1);
    let mut elapsed = None;
    if let Some(r) = st.records.get_mut(id) {
        let took = r
            .started
            .map(|s| now.saturating_duration_since(s))
            .unwrap_or_default();
        elapsed = Some(took);
        r.status.processing_time_ms = Some(millis(took));
        r.status.completed_at = Some(modelgate_types::now_rfc3339());
        match outcome {
            Ok(result) => {
                r.status.status = JobState::Completed;
                r.status.result = Some(result);
            }
            Err(e) => {
                r.status.status = JobState::Failed;
                r.status.error = Some(e);
            }
        }
    }
    if let Some(took) = elapsed {
        let ms = took.as_secs_f64() * 1000.0;
        st.avg_ms = 0.8 * st.avg_ms + 0.2 * ms;
        st.finished.push_back((now, id.to_owned()));
    }
    prune(&mut st, &shared.config, now);
}

/// `req_` and 16 hex digits from a randomly keyed hash of a counter and the clock.
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(nanos);
    format!("req_{:016x}", h.finish())
}
