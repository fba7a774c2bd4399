//! Operations over real sockets: rate limiting (with a controllable clock), metrics JSON
//! and Prometheus exposition, health endpoints, admin and API-key auth, and config reload.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{client, get_json, mock_provider, settings_with, start, start_state, TempDir};
use modelgate_catalog::Catalog;
use modelgate_config::{ConfigSource, RouteRateLimit, Settings};
use modelgate_http::ratelimit::{ManualClock, RateLimiter};
use modelgate_http::{build_state, serve, AppState, Router, ServeOptions};
use modelgate_testkit::MockUpstream;
use modelgate_types::{ProviderConfig, ProviderKind, Secret};
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789";
const KEY_A: &str = "sk-client-a-secret";
const KEY_B: &str = "sk-client-b-secret";

fn state_with_clock(settings: Settings) -> (AppState, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let mut state = build_state(
        settings,
        ConfigSource::Defaults,
        Catalog::embedded(),
        |_| None,
    )
    .unwrap();
    state.ratelimit = Arc::new(RateLimiter::with_clock(
        &state.settings.rate_limit,
        clock.clone(),
    ));
    (state, clock)
}

fn header(resp: &reqwest::Response, name: &str) -> u64 {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn two_hundred_concurrent_requests_from_one_client_let_exactly_the_burst_through() {
    let mut settings = Settings::default();
    settings.server.api_keys = vec![Secret::new(KEY_B)];
    let (state, clock) = state_with_clock(settings);
    let gw = start_state(state).await;
    let c = client();
    let reqs = (0..200).map(|_| {
        let c = c.clone();
        let url = gw.url("/health/live");
        async move {
            let resp = c.get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            let limit = header(&resp, "x-ratelimit-limit");
            let remaining = header(&resp, "x-ratelimit-remaining");
            let reset = header(&resp, "x-ratelimit-reset");
            let retry_header = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = resp.json().await.unwrap();
            (status, limit, remaining, reset, retry_header, body)
        }
    });
    let results = futures_util::future::join_all(reqs).await;
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let limited: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok, 50, "exactly the burst passes");
    assert_eq!(limited.len(), 150);
    let mut remainings: Vec<u64> = results.iter().filter(|r| r.0 == 200).map(|r| r.2).collect();
    remainings.sort_unstable();
    assert_eq!(
        remainings,
        (0..50).collect::<Vec<_>>(),
        "each pass sees its own remaining"
    );
    for (_, limit, remaining, reset, retry, body) in &limited {
        assert_eq!(*limit, 50);
        assert_eq!(*remaining, 0);
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        let retry_after = body["error"]["retry_after"].as_u64().unwrap();
        assert_eq!(
            Some(retry_after),
            *retry,
            "Retry-After header agrees with the body"
        );
        // 1000/min: one request every 60 ms, so the next one is at most a second away.
        assert_eq!(retry_after, 1);
        assert!(
            *reset + 1 >= unix_now() + retry_after,
            "reset is not before retry"
        );
    }
    // A second client (a recognised API key) is unaffected.
    let resp = c
        .get(gw.url("/health/live"))
        .bearer_auth(KEY_B)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), 49);
    // An unknown key does not buy a fresh bucket.
    let resp = c
        .get(gw.url("/health/live"))
        .bearer_auth("sk-made-up-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // The first client gets one request per emission interval (60 ms) back.
    clock.advance(Duration::from_millis(60));
    let resp = c.get(gw.url("/health/live")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), 0);
    assert_eq!(
        c.get(gw.url("/health/live")).send().await.unwrap().status(),
        429
    );
    // Every response carries the headers, errors included.
    clock.advance(Duration::from_secs(60));
    let resp = c.get(gw.url("/no/such/route")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(header(&resp, "x-ratelimit-limit"), 50);
}

#[tokio::test]
async fn limits_follow_the_config_including_route_overrides() {
    let mut settings = Settings::default();
    settings.rate_limit.requests_per_minute = 6;
    settings.rate_limit.burst = 3;
    settings.rate_limit.routes.insert(
        "/api/cache".into(),
        RouteRateLimit {
            requests_per_minute: 1,
            burst: 1,
        },
    );
    let (state, clock) = state_with_clock(settings);
    let gw = start_state(state).await;
    let c = client();
    let statuses = |path: &'static str, n: usize| {
        let c = c.clone();
        let url = gw.url(path);
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                let r = c.get(&url).send().await.unwrap();
                out.push((r.status().as_u16(), header(&r, "x-ratelimit-limit")));
            }
            out
        }
    };
    assert_eq!(
        statuses("/health/live", 4).await,
        vec![(200, 3), (200, 3), (200, 3), (429, 3)]
    );
    // The override is its own bucket with its own limit.
    let s = statuses("/api/cache/stats", 2).await;
    assert_eq!(s, vec![(200, 1), (429, 1)]);
    let r = c.get(gw.url("/api/cache/stats")).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["retry_after"], 60);
    assert_eq!(body["error"]["details"]["bucket"], "/api/cache");
    // 6/min: one every 10 s.
    clock.advance(Duration::from_secs(10));
    assert_eq!(statuses("/health/live", 2).await, vec![(200, 3), (429, 3)]);
    // Rate-limited requests are counted by bucket.
    clock.advance(Duration::from_secs(60));
    let text = c
        .get(gw.url("/metrics/prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"modelgate_rate_limited_requests_total{bucket="/api/cache"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"modelgate_rate_limited_requests_total{bucket="default"} 2"#));
}

/// A validator of the Prometheus text exposition format (0.0.4): every line is a comment
/// (`# HELP`, `# TYPE`) or a sample `name{label="value",...} value`; a TYPE comes before
/// its samples and at most once; histogram buckets are cumulative and end with `+Inf`
/// equal to `_count`. Returns the samples.
fn parse_exposition(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", no + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), _) => assert!(is_name(name), "{}", at()),
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_name(name), "{}", at());
                    assert!(
                        matches!(
                            kind,
                            "counter" | "gauge" | "histogram" | "summary" | "untyped"
                        ),
                        "{}",
                        at()
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "TYPE twice: {}",
                        at()
                    );
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{}", at());
        let (name_labels, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{}", at()));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", at())),
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{}", at()));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(is_name(&key), "label name {key:?}: {}", at());
                    assert_eq!(chars.next(), Some('"'), "{}", at());
                    let mut val = String::new();
                    loop {
                        match chars.next() {
                            Some('\\') => match chars.next() {
                                Some('n') => val.push('\n'),
                                Some(c @ ('\\' | '"')) => val.push(c),
                                _ => panic!("bad escape: {}", at()),
                            },
                            Some('"') => break,
                            Some(c) => val.push(c),
                            None => panic!("unterminated label: {}", at()),
                        }
                    }
                    labels.insert(key, val);
                    match chars.next() {
                        Some(',') | None => {}
                        _ => panic!("{}", at()),
                    }
                }
                (name, labels)
            }
        };
        assert!(is_name(name), "{}", at());
        let family = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s).filter(|f| {
                    types
                        .get(*f)
                        .is_some_and(|k| k == "histogram" || k == "summary")
                })
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {}",
            at()
        );
        samples.push((name.to_owned(), labels, value));
    }
    // Histogram consistency.
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        // label set without `le` -> (le, cumulative count) pairs
        type Buckets = Vec<(f64, f64)>;
        let mut series: BTreeMap<Vec<(String, String)>, Buckets> = BTreeMap::new();
        for (name, labels, v) in &samples {
            if name == &format!("{family}_bucket") {
                let le = labels["le"].parse::<f64>().unwrap_or(f64::INFINITY);
                let key = labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push((le, *v));
            }
        }
        for (key, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family} not cumulative"
            );
            let inf = buckets.last().unwrap();
            assert!(inf.0.is_infinite(), "{family} lacks +Inf");
            let count = samples
                .iter()
                .find(|(n, l, _)| {
                    n == &format!("{family}_count")
                        && l.iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<Vec<_>>()
                            == key
                })
                .map(|s| s.2);
            assert_eq!(count, Some(inf.1), "{family} +Inf != _count");
        }
    }
    samples
}

#[tokio::test]
async fn prometheus_exposition_parses_and_holds_no_secret_or_raw_path() {
    let mock = MockUpstream::start().await;
    let mut settings = settings_with(vec![("openai", mock_provider(&mock, ProviderKind::Openai))]);
    settings.server.api_keys = vec![Secret::new(KEY_A)];
    settings.server.admin_token = Some(Secret::new(ADMIN));
    let gw = start(settings).await;
    let c = client();
    assert_eq!(get_json(&gw.url("/api/models")).await.0, 200);
    for path in [
        "/api/models/openai/secret-model-xyz",
        "/v1/models",
        "/no/such/path-SECRETPATH",
        "/api/providers/zzz-client-chosen/models",
    ] {
        c.get(gw.url(path)).bearer_auth(KEY_A).send().await.unwrap();
    }
    c.get(gw.url("/v1/models"))
        .bearer_auth("sk-wrong-guess")
        .send()
        .await
        .unwrap();
    let resp = c.get(gw.url("/metrics/prometheus")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let samples = parse_exposition(&text);
    let find = |name: &str, label: (&str, &str)| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.get(label.0).map(String::as_str) == Some(label.1))
            .map(|s| s.2)
    };
    assert!(
        find("proxy_api_requests_total", ("provider", "openai")).unwrap() >= 1.0,
        "{text}"
    );
    assert!(find("proxy_api_response_time_avg", ("provider", "openai")).is_some());
    assert_eq!(
        find("modelgate_provider_up", ("provider", "openai")),
        Some(1.0)
    );
    assert!(find("modelgate_provider_models", ("provider", "openai")).unwrap() >= 1.0);
    assert!(find("modelgate_cache_misses_total", ("provider", "openai")).is_some());
    assert!(find(
        "modelgate_provider_call_duration_seconds_count",
        ("operation", "list_models")
    )
    .is_some());
    assert!(find(
        "modelgate_http_requests_total",
        ("route", "/api/models/{model_id}")
    )
    .is_some());
    assert!(find(
        "modelgate_http_request_duration_seconds_count",
        ("route", "/api/models")
    )
    .is_some());
    assert!(text.contains("# TYPE proxy_api_requests_total counter"));
    assert!(text.contains("# HELP proxy_api_requests_total Total number of requests"));
    // Only operator-chosen label values.
    let routes: BTreeSet<&str> = samples
        .iter()
        .filter_map(|(_, l, _)| l.get("route").map(String::as_str))
        .collect();
    for r in &routes {
        assert!(
            r.starts_with('/')
                && !r.contains("secret")
                && !r.contains("SECRET")
                && !r.contains("zzz")
                || r.starts_with('(')
                || *r == "unmatched",
            "route label {r:?}"
        );
    }
    for needle in [
        KEY_A,
        ADMIN,
        MockUpstream::API_KEY,
        "sk-wrong-guess",
        "secret-model-xyz",
        "SECRETPATH",
        "zzz-client-chosen",
    ] {
        assert!(!text.contains(needle), "{needle} leaked into metrics");
    }
    promtool_check(&text);
}

/// `promtool check metrics` (format and lint) on a real scrape, when promtool is on PATH
/// (Debian: `apt-get install prometheus`). Without it, the parser above is the check.
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "promtool is not on PATH: `promtool check metrics` skipped \
                 (the exposition was validated by parse_exposition)"
            );
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0 with no output: parses and has no lint finding.
    assert!(
        out.status.success(),
        "promtool check metrics: {report}\n{text}"
    );
    assert!(report.trim().is_empty(), "promtool lint: {report}");
    eprintln!("promtool check metrics: OK");
}

#[tokio::test]
async fn metrics_json_has_the_spec_sections() {
    let mock = MockUpstream::start().await;
    let gw = start(settings_with(vec![(
        "openai",
        mock_provider(&mock, ProviderKind::Openai),
    )]))
    .await;
    assert_eq!(get_json(&gw.url("/api/models")).await.0, 200);
    let (status, v) = get_json(&gw.url("/metrics")).await;
    assert_eq!(status, 200);
    let p = &v["providers"]["openai"];
    assert!(p["total_requests"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(p["failed_requests"], 0);
    assert_eq!(p["success_rate"], 1.0);
    assert!(p["avg_response_time"].as_f64().is_some());
    assert!(p["total_tokens"].is_u64());
    assert!(p["models"].is_object());
    for key in [
        "summarization",
        "cache_performance",
        "connection_pool",
        "system_health",
    ] {
        assert!(v[key].is_object(), "{key}: {v}");
    }
    let summ = &v["summarization"];
    for key in ["total_summaries", "cache_hits", "cache_misses"] {
        assert!(summ[key].is_u64(), "summarization.{key}: {summ}");
    }
    assert!(summ["avg_latency"].is_number(), "{summ}");
    assert!(summ["queue"]["capacity"].is_u64(), "{summ}");
    assert!(v["cache_performance"]["total_requests"].as_u64().unwrap() >= 1);
    assert!(v["connection_pool"]["active_connections"].as_u64().unwrap() >= 1);
    assert_eq!(v["connection_pool"]["max_connections"], 10_000);
    let sys = &v["system_health"];
    let mem = sys["memory_percent"].as_f64().unwrap();
    assert!(mem > 0.0 && mem <= 100.0, "{sys}");
    assert!(sys["memory_used_mb"].as_f64().unwrap() > 0.0);
    assert!(sys["cpu_percent"].as_f64().is_some());
    assert!(v["uptime"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn health_endpoints() {
    let mock = MockUpstream::start().await;
    let mut down = mock_provider(&mock, ProviderKind::Openai);
    down.base_url = Some("http://127.0.0.1:9/v1".into());
    down.timeout_ms = 1_000;
    let gw = start(settings_with(vec![
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
        ("down", down),
    ]))
    .await;
    let (s, v) = get_json(&gw.url("/health/live")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("alive")));
    let (s, _) = get_json(&gw.url("/health/ready")).await;
    assert_eq!(s, 200);
    // Refresh: one provider up, one failing, models served -> degraded (200).
    get_json(&gw.url("/api/models")).await;
    let (s, v) = get_json(&gw.url("/health")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("degraded")), "{v}");
    assert_eq!(v["services"]["providers"]["down"], "error");
    assert!(v.get("providers").is_none());
    let (s, v) = get_json(&gw.url("/health?detailed=true")).await;
    assert_eq!(s, 200);
    assert_eq!(v["providers"]["openai"]["status"], "ok");
    assert!(v["providers"]["down"]["error"].is_string());
    assert!(v["system"]["memory_percent"].is_number());
    let (s, v) = get_json(&gw.url("/health/providers")).await;
    assert_eq!(s, 200);
    assert_eq!(v["providers"]["openai"]["status"], "ok");
    assert!(v["providers"]["openai"]["models"].as_u64().unwrap() >= 1);
    let (s, v) = get_json(&gw.url("/health/system")).await;
    assert_eq!(s, 200);
    assert!(v["system"]["cpu_percent"].is_number(), "{v}");
    let resp = client().post(gw.url("/health/ready")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    // A gateway that is shutting down is not ready.
    gw.state.shutdown.cancel();
    let (s, v) = get_json(&gw.url("/health/ready")).await;
    assert_eq!((s, v["status"].as_str()), (503, Some("not_ready")));
}

#[tokio::test]
async fn admin_token_and_api_keys_are_enforced() {
    let mut settings = Settings::default();
    settings.server.admin_token = Some(Secret::new(ADMIN));
    settings.server.api_keys = vec![Secret::new(KEY_A)];
    let gw = start(settings).await;
    let c = client();
    let reload = gw.url("/api/config/reload");
    let r = c.post(&reload).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&reload)
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body = r.text().await.unwrap();
    assert!(!body.contains(ADMIN));
    // /v1/* needs a key; other routes do not.
    assert_eq!(
        c.get(gw.url("/v1/models")).send().await.unwrap().status(),
        401
    );
    let r = c
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.url("/v1/models"))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(gw.url("/v1/models"))
        .header("x-api-key", KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(gw.url("/api/models")).send().await.unwrap().status(),
        200
    );
    let r = c.post(&reload).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Every state-changing endpoint: no token / wrong token 401, right token 200.
    for (method, path) in [
        (reqwest::Method::POST, "/api/models/refresh"),
        (reqwest::Method::DELETE, "/api/cache"),
        (reqwest::Method::POST, "/api/config/reload"),
    ] {
        let req = || c.request(method.clone(), gw.url(path));
        let r = req().send().await.unwrap();
        assert_eq!(r.status(), 401, "{method} {path} without a token");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "UNAUTHORIZED");
        let r = req()
            .bearer_auth("x".repeat(ADMIN.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with a wrong token");
        // An API key is not an admin token.
        let r = req().bearer_auth(KEY_A).send().await.unwrap();
        assert_eq!(r.status(), 401, "{method} {path} with an API key");
        let r = req().bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(r.status(), 200, "{method} {path} with the token");
    }
}

#[tokio::test]
async fn without_a_token_admin_endpoints_refuse_non_loopback_peers() {
    let mut settings = Settings::default();
    settings.rate_limit.enabled = false;
    let state = Arc::new(
        build_state(
            settings,
            ConfigSource::Defaults,
            Catalog::embedded(),
            |_| None,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new(state.clone());
    let remote: std::net::SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        move |_peer| router.service(remote),
        ServeOptions::from_settings(&state.settings.server),
        async {
            let _ = rx.await;
        },
    ));
    let c = client();
    let r = c
        .post(format!("http://{addr}/api/config/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "FORBIDDEN");
    // Reads stay open.
    let r = c
        .get(format!("http://{addr}/api/config/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = tx.send(());
    let _ = task.await;
}

fn write_config(path: &std::path::Path, body: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn config_yaml(dir: &std::path::Path, models: &[&str], extra_provider: bool, rpm: u32) -> String {
    let mut s = format!(
        "discovery:\n  refresh_interval_seconds: 0\n  data_dir: {}\nrate_limit:\n  requests_per_minute: {rpm}\n  burst: 100000\nproviders:\n  alpha:\n    kind: mock\n    mock:\n      models: [{}]\n",
        dir.join("data").display(),
        models.join(", ")
    );
    if extra_provider {
        s.push_str("  beta:\n    kind: mock\n    mock:\n      models: [beta-one]\n");
    }
    s
}

async fn start_from_file(path: &std::path::Path) -> common::Gateway {
    let loaded = modelgate_config::load(Some(path)).unwrap();
    let state = build_state(loaded.settings, loaded.source, Catalog::embedded(), |_| {
        None
    })
    .unwrap();
    start_state(state).await
}

#[tokio::test]
async fn reload_swaps_changed_providers_and_rejects_invalid_files() {
    let dir = TempDir::new("reload");
    let path = dir.0.join("config.yaml");
    write_config(&path, &config_yaml(&dir.0, &["a-one"], false, 600_000));
    let gw = start_from_file(&path).await;
    let c = client();
    let (_, v) = get_json(&gw.url("/api/models?provider=alpha")).await;
    assert_eq!(v["models"].as_array().unwrap().len(), 1, "{v}");

    // Same file: nothing to do.
    let v: Value = c
        .post(gw.url("/api/config/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["changes_detected"], false);
    assert_eq!(v["providers_updated"], serde_json::json!([]));

    // A new provider and a changed one.
    write_config(
        &path,
        &config_yaml(&dir.0, &["a-one", "a-two"], true, 600_000),
    );
    let v: Value = c
        .post(gw.url("/api/config/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["changes_detected"], true, "{v}");
    assert_eq!(v["providers_updated"], serde_json::json!(["alpha", "beta"]));
    assert!(v["reload_time_ms"].is_u64());
    let (_, v) = get_json(&gw.url("/api/models?provider=alpha")).await;
    assert_eq!(v["models"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = get_json(&gw.url("/api/models?provider=beta")).await;
    assert_eq!(v["models"].as_array().unwrap().len(), 1, "{v}");

    // An invalid file: every problem reported, the running config stays.
    write_config(
        &path,
        "rate_limit:\n  burst: 0\ncache:\n  ttl_seconds: 0\nproviders:\n  alpha:\n    kind: mock\n    base_url: nope\n",
    );
    let r = c.post(gw.url("/api/config/reload")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let paths: BTreeSet<String> = v["error"]["details"]["validation_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        "rate_limit.burst",
        "cache.ttl_seconds",
        "providers.alpha.base_url",
    ] {
        assert!(paths.contains(want), "missing {want} in {paths:?}");
    }
    let (_, status) = get_json(&gw.url("/api/config/status")).await;
    assert_eq!(status["status"], "invalid");
    assert_eq!(
        status["providers_configured"], 2,
        "old config still running"
    );
    assert!(status["validation_errors"].as_array().unwrap().len() >= 3);
    let (_, v) = get_json(&gw.url("/api/models?provider=beta")).await;
    assert_eq!(v["models"].as_array().unwrap().len(), 1);

    // Fixed again: status is valid.
    write_config(&path, &config_yaml(&dir.0, &["a-one"], false, 600_000));
    let v: Value = c
        .post(gw.url("/api/config/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["providers_updated"], serde_json::json!(["alpha", "beta"]));
    let (_, status) = get_json(&gw.url("/api/config/status")).await;
    assert_eq!(status["status"], "valid");
    assert_eq!(status["validation_errors"], serde_json::json!([]));
    assert_eq!(status["providers_configured"], 1);
    assert!(status["file_size_bytes"].as_u64().unwrap() > 0);
}

/// Requests of every kind keep flowing while the configuration is reloaded 20 times
/// (providers rebuilt, added and removed, rate limits reconfigured): not one fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
    let dir = TempDir::new("reload-load");
    let path = dir.0.join("config.yaml");
    // alpha answers after 20 ms, so chat calls are in flight while adapters are swapped.
    let yaml = |i: u32| {
        let models: &[&str] = if i % 2 == 0 {
            &["a-one", "a-two"]
        } else {
            &["a-one"]
        };
        config_yaml(&dir.0, models, i % 3 == 0, 600_000 + i).replace(
            "    kind: mock\n    mock:\n      models: [a-",
            "    kind: mock\n    mock:\n      latency_ms: 20\n      models: [a-",
        )
    };
    write_config(&path, &yaml(1));
    let gw = Arc::new(start_from_file(&path).await);
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("latency_ms: 20"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicI64::new(0));
    let chat = serde_json::json!({
        "model": "alpha/a-one",
        "messages": [{"role": "user", "content": "hello"}],
    });
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (gw, stop, done, in_flight) =
                (gw.clone(), stop.clone(), done.clone(), in_flight.clone());
            let chat = chat.clone();
            tokio::spawn(async move {
                let c = client();
                let mut failed = Vec::new();
                while !stop.load(SeqCst) {
                    in_flight.fetch_add(1, SeqCst);
                    let (what, outcome) = match w % 4 {
                        0 => ("chat", {
                            match c
                                .post(gw.url("/v1/chat/completions"))
                                .json(&chat)
                                .send()
                                .await
                            {
                                Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                                    Ok(v) if v["choices"][0]["message"]["content"].is_string() => {
                                        Ok(())
                                    }
                                    other => Err(format!("{other:?}")),
                                },
                                Ok(r) => Err(format!(
                                    "{} {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                )),
                                Err(e) => Err(e.to_string()),
                            }
                        }),
                        1 => ("stream", {
                            let mut body = chat.clone();
                            body["stream"] = true.into();
                            match c
                                .post(gw.url("/v1/chat/completions"))
                                .json(&body)
                                .send()
                                .await
                            {
                                Ok(r) if r.status() == 200 => match r.text().await {
                                    Ok(t) if t.trim_end().ends_with("data: [DONE]") => Ok(()),
                                    other => Err(format!("{other:?}")),
                                },
                                Ok(r) => Err(format!(
                                    "{} {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                )),
                                Err(e) => Err(e.to_string()),
                            }
                        }),
                        _ => {
                            let p = [
                                "/api/models",
                                "/v1/models",
                                "/health",
                                "/api/providers/status",
                            ][(w % 4 - 2) * 2 + (w / 4) % 2];
                            (
                                p,
                                match c.get(gw.url(p)).send().await {
                                    Ok(r) if r.status() == 200 => Ok(()),
                                    Ok(r) => Err(r.status().to_string()),
                                    Err(e) => Err(e.to_string()),
                                },
                            )
                        }
                    };
                    in_flight.fetch_sub(1, SeqCst);
                    done.fetch_add(1, SeqCst);
                    if let Err(e) = outcome {
                        failed.push((what, e));
                    }
                }
                failed
            })
        })
        .collect();
    let c = client();
    let mut overlapping = 0;
    for i in 2..22u32 {
        // Let requests make progress between reloads, so every reload meets traffic.
        let before = done.load(SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while done.load(SeqCst) < before + 8 {
            assert!(std::time::Instant::now() < deadline, "no progress");
            tokio::task::yield_now().await;
        }
        write_config(&path, &yaml(i));
        if in_flight.load(SeqCst) > 0 {
            overlapping += 1;
        }
        let r = c.post(gw.url("/api/config/reload")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["changes_detected"], true, "{v}");
    }
    stop.store(true, SeqCst);
    let mut failed = Vec::new();
    for w in workers {
        failed.extend(w.await.unwrap());
    }
    assert!(
        failed.is_empty(),
        "failed requests during reloads: {failed:?}"
    );
    assert!(overlapping > 0, "no reload met a request in flight");
    assert!(done.load(SeqCst) >= 20 * 8);
}

#[tokio::test]
async fn unhealthy_answers_503_and_healthy_needs_no_failing_provider() {
    // Every enabled provider failing and nothing to serve: unhealthy, 503 on /health,
    // /health/providers and /health/ready; liveness still 200.
    let mut down = ProviderConfig::new(ProviderKind::Openai);
    down.base_url = Some("http://127.0.0.1:9/v1".into());
    down.api_key = Some(Secret::new("sk-down-0123456789"));
    down.timeout_ms = 1_000;
    let mut off = ProviderConfig::new(ProviderKind::Mock);
    off.enabled = false;
    let gw = start(settings_with(vec![("down", down), ("off", off)])).await;
    get_json(&gw.url("/api/models")).await;
    let (s, v) = get_json(&gw.url("/health")).await;
    assert_eq!((s, v["status"].as_str()), (503, Some("unhealthy")), "{v}");
    assert_eq!(v["services"]["providers"]["down"], "error");
    assert_eq!(v["services"]["providers"]["off"], "disabled");
    let (s, v) = get_json(&gw.url("/health?detailed=true")).await;
    assert_eq!(s, 503);
    assert!(v["rule"].as_str().unwrap().contains("unhealthy (503)"));
    assert_eq!(get_json(&gw.url("/health/providers")).await.0, 503);
    let (s, v) = get_json(&gw.url("/health/ready")).await;
    assert_eq!((s, v["status"].as_str()), (503, Some("not_ready")));
    assert_eq!(get_json(&gw.url("/health/live")).await.0, 200);

    // A disabled provider does not count against health.
    let mock = MockUpstream::start().await;
    let mut off = ProviderConfig::new(ProviderKind::Mock);
    off.enabled = false;
    let gw = start(settings_with(vec![
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
        ("off", off),
    ]))
    .await;
    get_json(&gw.url("/api/models")).await;
    let (s, v) = get_json(&gw.url("/health")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("healthy")), "{v}");
    assert_eq!(get_json(&gw.url("/health/ready")).await.0, 200);
}
