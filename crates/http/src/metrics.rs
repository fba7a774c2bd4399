//! The gateway's metrics: every metric name, kind, label set and help text is listed once
//! in [`CATALOG`]; values are recorded through the `metrics` crate into a per-gateway
//! (not global) Prometheus recorder, and the JSON figures of `GET /metrics` are kept
//! beside them.
//!
//! Label values are always low-cardinality and chosen by the operator, never by a client:
//! route *templates*, configured provider names, configured rate-limit prefixes, status
//! codes and a fixed set of methods. No API key, raw path or model id is ever a label.
//!
//! Provider figures come from [`MeteredProvider`], a decorator around every provider
//! adapter (built in `app.rs`), so discovery refreshes, summaries and chat calls made
//! through `Discovery::provider` are all counted. Other sources (e.g. a chat usage
//! registry) can feed [`Metrics::record_provider_call`] directly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use modelgate_providers::{ChatStream, Provider, ProviderError};
use modelgate_types::chat::{ChatRequest, ChatResponse};
use modelgate_types::{Model, ProviderKind};
use serde::Serialize;

/// The metric names.
pub mod names {
    pub const PROXY_API_REQUESTS_TOTAL: &str = "proxy_api_requests_total";
    pub const PROXY_API_RESPONSE_TIME_AVG: &str = "proxy_api_response_time_avg";
    pub const PROVIDER_FAILURES_TOTAL: &str = "modelgate_provider_failures_total";
    pub const PROVIDER_CALL_DURATION: &str = "modelgate_provider_call_duration_seconds";
    pub const PROVIDER_UP: &str = "modelgate_provider_up";
    pub const PROVIDER_MODELS: &str = "modelgate_provider_models";
    pub const HTTP_REQUESTS_TOTAL: &str = "modelgate_http_requests_total";
    pub const HTTP_REQUEST_DURATION: &str = "modelgate_http_request_duration_seconds";
    pub const RATE_LIMITED_TOTAL: &str = "modelgate_rate_limited_requests_total";
    pub const CACHE_HITS_TOTAL: &str = "modelgate_cache_hits_total";
    pub const CACHE_MISSES_TOTAL: &str = "modelgate_cache_misses_total";
    pub const ACTIVE_CONNECTIONS: &str = "modelgate_active_connections";
    pub const UPTIME_SECONDS: &str = "modelgate_uptime_seconds";
    pub const CONFIG_RELOADS_TOTAL: &str = "modelgate_config_reloads_total";
}

/// One metric's description.
#[derive(Debug, Clone, Copy)]
pub struct MetricDesc {
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Every metric the gateway exports (docs/OPERATIONS.md renders the same table).
pub const CATALOG: &[MetricDesc] = &[
    MetricDesc { name: names::PROXY_API_REQUESTS_TOTAL, kind: "counter", labels: &["provider"], help: "Total number of requests" },
    MetricDesc { name: names::PROXY_API_RESPONSE_TIME_AVG, kind: "gauge", labels: &["provider"], help: "Average response time in seconds" },
    MetricDesc { name: names::PROVIDER_FAILURES_TOTAL, kind: "counter", labels: &["provider"], help: "Upstream provider calls that failed" },
    MetricDesc { name: names::PROVIDER_CALL_DURATION, kind: "histogram", labels: &["provider", "operation"], help: "Latency of upstream provider calls in seconds (operation: list_models, chat, chat_stream, completion)" },
    MetricDesc { name: names::PROVIDER_UP, kind: "gauge", labels: &["provider"], help: "1 when the provider's last model refresh succeeded, else 0" },
    MetricDesc { name: names::PROVIDER_MODELS, kind: "gauge", labels: &["provider"], help: "Models currently known for the provider" },
    MetricDesc { name: names::HTTP_REQUESTS_TOTAL, kind: "counter", labels: &["route", "method", "status"], help: "HTTP requests served, by route template, method and status code" },
    MetricDesc { name: names::HTTP_REQUEST_DURATION, kind: "histogram", labels: &["route", "method"], help: "Time to response headers in seconds, by route template and method" },
    MetricDesc { name: names::RATE_LIMITED_TOTAL, kind: "counter", labels: &["bucket"], help: "Requests refused with 429 by the rate limiter (bucket: default or a configured prefix)" },
    MetricDesc { name: names::CACHE_HITS_TOTAL, kind: "counter", labels: &["provider"], help: "Model-list cache hits" },
    MetricDesc { name: names::CACHE_MISSES_TOTAL, kind: "counter", labels: &["provider"], help: "Model-list cache misses" },
    MetricDesc { name: names::ACTIVE_CONNECTIONS, kind: "gauge", labels: &[], help: "Client connections open now" },
    MetricDesc { name: names::UPTIME_SECONDS, kind: "gauge", labels: &[], help: "Seconds since the gateway started" },
    MetricDesc { name: names::CONFIG_RELOADS_TOTAL, kind: "counter", labels: &["result"], help: "Configuration reloads (result: success or rejected)" },
];

/// Latency buckets (seconds) of every histogram.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Distinct model ids kept per provider in the JSON breakdown; more are folded into
/// `(other)` so a client sending made-up model names cannot grow memory.
const MAX_MODELS_PER_PROVIDER: usize = 256;
const OTHER_MODEL: &str = "(other)";

/// Methods used as label values; anything else is `other`.
fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Debug, Default, Clone)]
struct Totals {
    total: u64,
    ok: u64,
    latency_ms_sum: f64,
    tokens: u64,
}

impl Totals {
    fn add(&mut self, ok: bool, latency_ms: f64, tokens: u64) {
        self.total += 1;
        self.ok += u64::from(ok);
        self.latency_ms_sum += latency_ms;
        self.tokens += tokens;
    }

    fn avg_ms(&self) -> Option<f64> {
        (self.total > 0).then(|| round1(self.latency_ms_sum / self.total as f64))
    }
}

#[derive(Debug, Default)]
struct ProviderTotals {
    all: Totals,
    models: BTreeMap<String, Totals>,
}

/// Per-provider figures of `GET /metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderFigures {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub failed_requests: u64,
    /// `null` before the first request.
    pub success_rate: Option<f64>,
    /// Milliseconds; `null` before the first request.
    pub avg_response_time: Option<f64>,
    pub total_tokens: u64,
    pub models: BTreeMap<String, ModelFigures>,
}

/// Per-model figures of `GET /metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFigures {
    pub total_requests: u64,
    pub successful_requests: u64,
    pub avg_response_time: Option<f64>,
    pub total_tokens: u64,
}

/// Operating-system figures of `system_health`.
#[derive(Debug, Clone, Serialize)]
pub struct SystemFigures {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    /// Memory in use on the machine (MiB).
    pub memory_used_mb: Option<f64>,
    pub memory_total_mb: Option<f64>,
    /// Resident memory of this process (MiB).
    pub process_memory_mb: Option<f64>,
    /// Use of the disk holding the working directory.
    pub disk_percent: Option<f64>,
}

#[derive(Debug)]
struct SystemProbe {
    sys: sysinfo::System,
    disks: sysinfo::Disks,
    last: Option<(Instant, SystemFigures)>,
}

/// The gateway's metrics (one per gateway; cheap to share in an `Arc`).
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    providers: Mutex<BTreeMap<String, ProviderTotals>>,
    system: Mutex<SystemProbe>,
    connections: AtomicU64,
    server_errors: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn mib(bytes: u64) -> f64 {
    round1(bytes as f64 / 1_048_576.0)
}

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            // Unreachable with the non-empty constant above; summaries are the fallback.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder,
            handle,
            providers: Mutex::new(BTreeMap::new()),
            system: Mutex::new(SystemProbe {
                sys: sysinfo::System::new(),
                disks: sysinfo::Disks::new(),
                last: None,
            }),
            connections: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
        };
        m.with(|| {
            for d in CATALOG {
                match d.kind {
                    "counter" => metrics::describe_counter!(d.name, d.help),
                    "gauge" => metrics::describe_gauge!(d.name, d.help),
                    _ => metrics::describe_histogram!(d.name, d.help),
                }
            }
        });
        m
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// One upstream call of `provider` (`model` when the call was for one model).
    pub fn record_provider_call(
        &self,
        provider: &str,
        operation: &'static str,
        model: Option<&str>,
        ok: bool,
        latency: Duration,
        tokens: u64,
    ) {
        let ms = latency.as_secs_f64() * 1000.0;
        let avg_secs = {
            let mut map = lock(&self.providers);
            let p = map.entry(provider.to_owned()).or_default();
            p.all.add(ok, ms, tokens);
            if let Some(model) = model {
                let key =
                    if p.models.contains_key(model) || p.models.len() < MAX_MODELS_PER_PROVIDER {
                        model
                    } else {
                        OTHER_MODEL
                    };
                p.models
                    .entry(key.to_owned())
                    .or_default()
                    .add(ok, ms, tokens);
            }
            p.all.latency_ms_sum / 1000.0 / p.all.total.max(1) as f64
        };
        let provider = provider.to_owned();
        self.with(|| {
            metrics::counter!(names::PROXY_API_REQUESTS_TOTAL, "provider" => provider.clone()).increment(1);
            if !ok {
                metrics::counter!(names::PROVIDER_FAILURES_TOTAL, "provider" => provider.clone()).increment(1);
            }
            metrics::gauge!(names::PROXY_API_RESPONSE_TIME_AVG, "provider" => provider.clone()).set(avg_secs);
            metrics::histogram!(names::PROVIDER_CALL_DURATION, "provider" => provider, "operation" => operation)
                .record(latency.as_secs_f64());
        });
    }

    /// One HTTP response: `route` is the matched template (never the raw path).
    pub fn record_http(
        &self,
        route: &'static str,
        method: &http::Method,
        status: u16,
        latency: Duration,
    ) {
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let method = method_label(method);
        self.with(|| {
            metrics::counter!(names::HTTP_REQUESTS_TOTAL, "route" => route, "method" => method, "status" => status.to_string())
                .increment(1);
            metrics::histogram!(names::HTTP_REQUEST_DURATION, "route" => route, "method" => method)
                .record(latency.as_secs_f64());
        });
    }

    /// A request refused by the rate limiter in `bucket` (`default` or a configured prefix).
    pub fn record_rate_limited(&self, bucket: &str) {
        let bucket = bucket.to_owned();
        self.with(|| metrics::counter!(names::RATE_LIMITED_TOTAL, "bucket" => bucket).increment(1));
    }

    /// A configuration reload attempt.
    pub fn record_reload(&self, success: bool) {
        let result = if success { "success" } else { "rejected" };
        self.with(|| {
            metrics::counter!(names::CONFIG_RELOADS_TOTAL, "result" => result).increment(1)
        });
    }

    /// Marks a client connection open until the guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self.clone())
    }

    pub fn active_connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Responses with a 5xx status so far.
    pub fn server_errors(&self) -> u64 {
        self.server_errors.load(Ordering::Relaxed)
    }

    /// Per-provider figures recorded so far.
    pub fn provider_figures(&self) -> BTreeMap<String, ProviderFigures> {
        let map = lock(&self.providers);
        map.iter()
            .map(|(name, p)| {
                let t = &p.all;
                let figures = ProviderFigures {
                    total_requests: t.total,
                    successful_requests: t.ok,
                    failed_requests: t.total - t.ok,
                    success_rate: (t.total > 0)
                        .then(|| (t.ok as f64 / t.total as f64 * 1000.0).round() / 1000.0),
                    avg_response_time: t.avg_ms(),
                    total_tokens: t.tokens,
                    models: p
                        .models
                        .iter()
                        .map(|(id, m)| {
                            (
                                id.clone(),
                                ModelFigures {
                                    total_requests: m.total,
                                    successful_requests: m.ok,
                                    avg_response_time: m.avg_ms(),
                                    total_tokens: m.tokens,
                                },
                            )
                        })
                        .collect(),
                };
                (name.clone(), figures)
            })
            .collect()
    }

    /// Operating-system figures, sampled at most once per second (CPU usage needs two
    /// samples, so the first call after start reports the usage since process start).
    pub fn system(&self) -> SystemFigures {
        let mut probe = lock(&self.system);
        if let Some((at, figures)) = &probe.last {
            if at.elapsed() < Duration::from_secs(1) {
                return figures.clone();
            }
        }
        let probe = &mut *probe;
        probe.sys.refresh_cpu_usage();
        probe.sys.refresh_memory();
        let pid = sysinfo::get_current_pid().ok();
        if let Some(pid) = pid {
            probe.sys.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                true,
                sysinfo::ProcessRefreshKind::nothing().with_memory(),
            );
        }
        if probe.disks.list().is_empty() {
            probe.disks = sysinfo::Disks::new_with_refreshed_list();
        } else {
            probe.disks.refresh(true);
        }
        let total = probe.sys.total_memory();
        let used = probe.sys.used_memory();
        let cwd = std::env::current_dir().unwrap_or_default();
        let disk = probe
            .disks
            .list()
            .iter()
            .filter(|d| cwd.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        let figures = SystemFigures {
            cpu_percent: sysinfo::IS_SUPPORTED_SYSTEM
                .then(|| round1(f64::from(probe.sys.global_cpu_usage()))),
            memory_percent: (total > 0).then(|| round1(used as f64 / total as f64 * 100.0)),
            memory_used_mb: (total > 0).then(|| mib(used)),
            memory_total_mb: (total > 0).then(|| mib(total)),
            process_memory_mb: pid
                .and_then(|pid| probe.sys.process(pid))
                .map(|p| mib(p.memory())),
            disk_percent: disk.filter(|d| d.total_space() > 0).map(|d| {
                let used = d.total_space().saturating_sub(d.available_space());
                round1(used as f64 / d.total_space() as f64 * 100.0)
            }),
        };
        probe.last = Some((Instant::now(), figures.clone()));
        figures
    }

    /// The Prometheus text exposition, after `refresh` has set the scrape-time gauges.
    pub fn render_prometheus(&self, scrape: &ScrapeFigures) -> String {
        self.with(|| {
            for (provider, up, models) in &scrape.providers {
                metrics::gauge!(names::PROVIDER_UP, "provider" => provider.clone())
                    .set(f64::from(u8::from(*up)));
                metrics::gauge!(names::PROVIDER_MODELS, "provider" => provider.clone())
                    .set(*models as f64);
            }
            for (provider, hits, misses) in &scrape.cache {
                metrics::counter!(names::CACHE_HITS_TOTAL, "provider" => provider.clone())
                    .absolute(*hits);
                metrics::counter!(names::CACHE_MISSES_TOTAL, "provider" => provider.clone())
                    .absolute(*misses);
            }
            metrics::gauge!(names::ACTIVE_CONNECTIONS).set(self.active_connections() as f64);
            metrics::gauge!(names::UPTIME_SECONDS).set(scrape.uptime_seconds);
        });
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// Wraps a provider so its calls are recorded here.
    pub fn meter(self: &Arc<Self>, inner: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(MeteredProvider {
            inner,
            metrics: self.clone(),
        })
    }
}

/// Figures read from discovery at scrape time.
#[derive(Debug, Default)]
pub struct ScrapeFigures {
    /// (provider, up, models)
    pub providers: Vec<(String, bool, usize)>,
    /// (provider, cache hits, cache misses)
    pub cache: Vec<(String, u64, u64)>,
    pub uptime_seconds: f64,
}

/// Keeps one connection counted in `active_connections`.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A provider decorator recording each call's outcome and latency in [`Metrics`].
#[derive(Debug)]
pub struct MeteredProvider {
    inner: Arc<dyn Provider>,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    fn done<T>(
        &self,
        operation: &'static str,
        model: Option<&str>,
        start: Instant,
        result: &Result<T, ProviderError>,
        tokens: u64,
    ) {
        self.metrics.record_provider_call(
            self.inner.name(),
            operation,
            model,
            result.is_ok(),
            start.elapsed(),
            tokens,
        );
    }
}

#[async_trait]
impl Provider for MeteredProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let start = Instant::now();
        let r = self.inner.list_models().await;
        self.done("list_models", None, start, &r, 0);
        r
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let start = Instant::now();
        let r = self.inner.chat(request).await;
        let tokens = r
            .as_ref()
            .ok()
            .and_then(|resp| resp.usage.as_ref())
            .map_or(0, |u| u.total_tokens);
        self.done("chat", Some(&request.model), start, &r, tokens);
        r
    }

    /// Counts the stream's start (time to the upstream's first response); tokens of a
    /// stream are not known here.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let start = Instant::now();
        let r = self.inner.chat_stream(request).await;
        self.done("chat_stream", Some(&request.model), start, &r, 0);
        r
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.inner.health().await
    }

    async fn completion(
        &self,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ProviderError> {
        let start = Instant::now();
        let model = body
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let r = self.inner.completion(body).await;
        let tokens = r
            .as_ref()
            .ok()
            .and_then(|v| v.pointer("/usage/total_tokens"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        self.done("completion", model.as_deref(), start, &r, tokens);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_unique_and_valid() {
        let mut seen = std::collections::BTreeSet::new();
        for d in CATALOG {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            assert!(d.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(matches!(d.kind, "counter" | "gauge" | "histogram"));
            if d.kind == "counter" {
                assert!(d.name.ends_with("_total"), "{}", d.name);
            }
        }
    }

    /// docs/OPERATIONS.md lists exactly the metrics of [`CATALOG`], with their kinds and
    /// labels.
    #[test]
    fn operations_doc_matches_the_catalog() {
        let doc = include_str!("../../../docs/OPERATIONS.md");
        let rows: Vec<Vec<&str>> = doc
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.split('|').map(str::trim).collect())
            .filter(|cells: &Vec<&str>| {
                cells.len() > 4 && matches!(cells[2], "counter" | "gauge" | "histogram")
            })
            .collect();
        assert_eq!(rows.len(), CATALOG.len(), "one doc row per metric");
        for d in CATALOG {
            let row = rows.iter().find(|r| r[1] == format!("`{}`", d.name));
            assert!(row.is_some(), "{} is not in docs/OPERATIONS.md", d.name);
            let Some(row) = row else { continue };
            assert_eq!(row[2], d.kind, "{}", d.name);
            let labels: Vec<String> = d.labels.iter().map(|l| format!("`{l}`")).collect();
            let want = if labels.is_empty() {
                "—".to_owned()
            } else {
                labels.join(", ")
            };
            assert_eq!(row[3], want, "labels of {}", d.name);
        }
    }

    #[test]
    fn model_breakdown_is_bounded() {
        let m = Metrics::new();
        for i in 0..(MAX_MODELS_PER_PROVIDER + 10) {
            let id = format!("m{i}");
            m.record_provider_call("p", "chat", Some(&id), true, Duration::from_millis(5), 1);
        }
        let f = m.provider_figures();
        let p = &f["p"];
        assert_eq!(p.models.len(), MAX_MODELS_PER_PROVIDER + 1);
        assert_eq!(p.models[OTHER_MODEL].total_requests, 10);
        assert_eq!(p.total_requests as usize, MAX_MODELS_PER_PROVIDER + 10);
        assert_eq!(p.success_rate, Some(1.0));
    }
}
