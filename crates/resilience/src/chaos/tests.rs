//! Tests of the chaos engine and the fault injector, under paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use modelgate_providers::{Provider, ProviderErrorKind};

use super::*;
use crate::testutil::{request, request_for, Fake};

fn engine() -> ChaosEngine {
    ChaosEngine::new(ChaosSettings::default(), ["a", "b"])
}

fn fault(kind: &str, target: &str, probability: f64) -> FaultSpec {
    FaultSpec {
        fault_type: kind.into(),
        target: target.into(),
        model: None,
        severity: None,
        probability: Some(probability),
        duration_ms: None,
        error_code: None,
    }
}

fn spec(faults: Vec<FaultSpec>, seed: Option<u64>) -> ExperimentSpec {
    ExperimentSpec {
        experiment_name: "test".into(),
        duration_minutes: 10.0,
        faults,
        seed,
    }
}

async fn failures(p: &dyn Provider, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(p.chat(&request()).await.is_err());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn thirty_percent_errors_inject_thirty_percent() {
    let eng = engine();
    let fake = Fake::new("a", vec![]);
    let p = eng.injector(fake.clone());
    let mut f = fault("error", "a", 0.3);
    f.error_code = Some(503);
    let started = eng.start(&spec(vec![f], Some(7))).expect("start");
    let n = 2_000;
    let errs = failures(&p, n).await.iter().filter(|e| **e).count();
    let rate = errs as f64 / n as f64;
    assert!((rate - 0.3).abs() <= 0.03, "injected {rate}");
    let report = eng.get(&started.experiment_id).expect("report");
    assert_eq!(report.results.total_faults_injected, errs as u64);
    assert_eq!(report.results.faults[0].injected, errs as u64);
    assert_eq!(report.results.calls_observed.get("a"), Some(&(n as u64)));
    // Injected calls never reached the provider.
    assert_eq!(fake.calls(), n - errs);
}

#[tokio::test(start_paused = true)]
async fn probability_zero_and_one() {
    let eng = engine();
    let p = eng.injector(Fake::new("a", vec![]));
    let id = eng
        .start(&spec(vec![fault("abort", "a", 0.0)], None))
        .expect("start")
        .experiment_id;
    assert!(failures(&p, 500).await.iter().all(|e| !e));
    eng.stop(&id).expect("stop");
    let id = eng
        .start(&spec(vec![fault("abort", "a", 1.0)], None))
        .expect("start")
        .experiment_id;
    assert!(failures(&p, 500).await.iter().all(|e| *e));
    let e = p.chat(&request()).await.err().map(|e| e.kind);
    assert_eq!(e, Some(ProviderErrorKind::Connect));
    assert_eq!(
        eng.get(&id).expect("get").results.total_faults_injected,
        501
    );
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_faults() {
    let run = |seed| async move {
        let eng = engine();
        let p = eng.injector(Fake::new("a", vec![]));
        eng.start(&spec(
            vec![fault("error", "a", 0.5), fault("rate_limit", "*", 0.3)],
            Some(seed),
        ))
        .expect("start");
        let mut kinds = Vec::new();
        for _ in 0..300 {
            kinds.push(p.chat(&request()).await.err().map(|e| e.kind));
        }
        kinds
    };
    assert_eq!(run(99).await, run(99).await);
    assert_ne!(run(99).await, run(100).await);
}

#[tokio::test(start_paused = true)]
async fn fault_scoped_to_a_never_touches_b() {
    let eng = engine();
    let a = eng.injector(Fake::new("a", vec![]));
    let fake_b = Fake::new("b", vec![]);
    let b = eng.injector(fake_b.clone());
    let id = eng
        .start(&spec(vec![fault("error", "a", 1.0)], None))
        .expect("start")
        .experiment_id;
    assert!(failures(&a, 100).await.iter().all(|e| *e));
    assert!(failures(&b, 100).await.iter().all(|e| !e));
    assert!(b.list_models().await.is_ok() && b.health().await.is_ok());
    assert_eq!(fake_b.calls(), 102);
    let r = eng.get(&id).expect("get");
    assert_eq!(r.results.calls_observed.get("b"), None);
    assert_eq!(r.results.total_faults_injected, 100);
}

#[tokio::test(start_paused = true)]
async fn model_scope_and_stream_cut() {
    let eng = engine();
    let p = eng.injector(Fake::new("a", vec![]));
    let mut f = fault("stream_cut", "a", 1.0);
    f.model = Some("a/m".into());
    f.severity = Some("high".into());
    eng.start(&spec(vec![f], None)).expect("start");
    // Non-stream calls and other models are untouched.
    assert!(p.chat(&request()).await.is_ok());
    let mut s = p.chat_stream(&request_for("other")).await.expect("stream");
    let mut n = 0;
    while let Some(item) = s.next().await {
        assert!(item.is_ok());
        n += 1;
    }
    assert_eq!(n, 3);
    // The targeted model's stream ends after one chunk (high severity) with an error.
    let mut s = p.chat_stream(&request()).await.expect("stream");
    assert!(matches!(s.next().await, Some(Ok(_))));
    let cut = s.next().await;
    assert!(matches!(cut, Some(Err(ref e)) if e.kind == ProviderErrorKind::StreamInterrupted));
    assert!(s.next().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn delay_rate_limit_and_timeout_faults() {
    let eng = engine();
    let p = eng.injector(Fake::new("a", vec![]));
    let mut d = fault("delay", "a", 1.0);
    d.duration_ms = Some(750);
    let id = eng
        .start(&spec(vec![d], None))
        .expect("start")
        .experiment_id;
    let t = tokio::time::Instant::now();
    assert!(p.chat(&request()).await.is_ok());
    assert_eq!(t.elapsed(), Duration::from_millis(750));
    eng.stop(&id).expect("stop");

    let mut rl = fault("rate_limit", "*", 1.0);
    rl.severity = Some("low".into());
    let id = eng
        .start(&spec(vec![rl], None))
        .expect("start")
        .experiment_id;
    let e = p.chat(&request()).await.expect_err("429");
    assert_eq!(
        (e.kind, e.status, e.retry_after),
        (
            ProviderErrorKind::RateLimited,
            Some(429),
            Some(Duration::from_secs(1))
        )
    );
    eng.stop(&id).expect("stop");

    let id = eng
        .start(&spec(vec![fault("timeout", "a", 1.0)], None))
        .expect("start")
        .experiment_id;
    let t = tokio::time::Instant::now();
    let e = p.list_models().await.err().map(|e| e.kind);
    assert_eq!(e, Some(ProviderErrorKind::Timeout));
    assert_eq!(
        t.elapsed(),
        Duration::from_secs(10),
        "medium severity hangs 10 s"
    );
    eng.stop(&id).expect("stop");
}

#[tokio::test(start_paused = true)]
async fn experiment_stops_itself_at_its_end() {
    let eng = engine();
    let p = eng.injector(Fake::new("a", vec![]));
    let mut s = spec(vec![fault("error", "*", 1.0)], None);
    s.duration_minutes = 1.0;
    let id = eng.start(&s).expect("start").experiment_id;
    assert_eq!(eng.running(), 1);
    assert!(p.chat(&request()).await.is_err());
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(p.chat(&request()).await.is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(p.chat(&request()).await.is_ok());
    let r = eng.get(&id).expect("get");
    assert_eq!(r.status, ExperimentStatus::Completed);
    assert_eq!(r.duration_seconds, 60);
    assert_eq!(r.results.total_faults_injected, 2);
    assert_eq!(eng.running(), 0);
    // Stopping a finished experiment is harmless and changes nothing.
    assert_eq!(
        eng.stop(&id).expect("stop").status,
        ExperimentStatus::Completed
    );
}

#[tokio::test(start_paused = true)]
async fn degradation_and_recovery_are_measured() {
    let eng = engine();
    for _ in 0..50 {
        eng.record_outcome(true);
    }
    let id = eng
        .start(&spec(vec![fault("error", "a", 0.5)], None))
        .expect("start")
        .experiment_id;
    for i in 0..100 {
        eng.record_outcome(i % 4 != 0); // 75 % success
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    let stopped = eng.stop(&id).expect("stop");
    assert!(stopped.results.system_degradation_detected);
    assert_eq!(stopped.results.recovery_time_seconds, None);
    assert_eq!(stopped.results.baseline_success_rate, Some(1.0));
    assert_eq!(stopped.results.client_success_rate, Some(0.75));
    assert_eq!(stopped.duration_seconds, 30);
    // Failing on for 5 s after the stop, then healthy.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        eng.record_outcome(false);
    }
    for _ in 0..40 {
        tokio::time::advance(Duration::from_millis(100)).await;
        eng.record_outcome(true);
    }
    let r = eng.get(&id).expect("get");
    let rec = r.results.recovery_time_seconds.expect("recovered");
    // The first window of 20 with >= 95 % success holds at most one failure: the one at 5 s.
    assert!((5.0..=5.2).contains(&rec), "{rec}");

    // A healthy run is not degraded.
    let id = eng
        .start(&spec(vec![fault("delay", "a", 0.1)], None))
        .expect("start")
        .experiment_id;
    for _ in 0..100 {
        eng.record_outcome(true);
    }
    assert!(
        !eng.stop(&id)
            .expect("stop")
            .results
            .system_degradation_detected
    );
}

#[tokio::test(start_paused = true)]
async fn validation_names_the_field() {
    let eng = engine();
    let field = |s: ExperimentSpec| {
        eng.start(&s)
            .err()
            .and_then(|e| e.field().map(str::to_owned))
    };
    assert_eq!(
        field(spec(vec![fault("error", "a", 1.5)], None)).as_deref(),
        Some("faults[0].probability")
    );
    assert_eq!(
        field(spec(
            vec![fault("error", "a", 0.1), fault("meteor", "a", 0.1)],
            None
        ))
        .as_deref(),
        Some("faults[1].type")
    );
    assert_eq!(
        field(spec(vec![fault("error", "nope", 0.1)], None)).as_deref(),
        Some("faults[0].target")
    );
    let mut long = spec(vec![fault("error", "a", 0.1)], None);
    long.duration_minutes = 61.0;
    assert_eq!(field(long).as_deref(), Some("duration_minutes"));
    let mut bad_code = fault("error", "a", 0.1);
    bad_code.error_code = Some(200);
    assert_eq!(
        field(spec(vec![bad_code], None)).as_deref(),
        Some("faults[0].error_code")
    );
    let mut sev = fault("delay", "a", 0.1);
    sev.severity = Some("apocalyptic".into());
    assert_eq!(
        field(spec(vec![sev], None)).as_deref(),
        Some("faults[0].severity")
    );
    assert_eq!(field(spec(vec![], None)).as_deref(), Some("faults"));
    let msg = eng
        .start(&spec(vec![fault("error", "a", 1.5)], None))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        msg.as_deref(),
        Some("invalid `faults[0].probability`: 1.5 is not between 0 and 1")
    );
    assert_eq!(eng.running(), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_and_unknown_id() {
    let eng = engine();
    for _ in 0..3 {
        eng.start(&spec(vec![fault("delay", "*", 0.1)], None))
            .expect("start");
    }
    let e = eng.start(&spec(vec![fault("delay", "*", 0.1)], None)).err();
    assert!(matches!(e, Some(ChaosError::TooManyRunning { max: 3, .. })));
    assert!(matches!(
        eng.get("chaos_exp_x"),
        Err(ChaosError::NotFound(_))
    ));
    assert_eq!(eng.list().len(), 3);
}

#[test]
fn request_body_shapes() {
    let body = serde_json::json!({
        "experiment_name": "network_degradation_test",
        "duration_minutes": 10,
        "faults": [
            {"type": "delay", "target": "a", "severity": "medium", "probability": 0.1, "duration_ms": 500},
            {"type": "error", "target": "b", "severity": "low", "probability": 0.05, "error_code": 503}
        ]
    });
    let spec: ExperimentSpec = serde_json::from_value(body).expect("spec example parses");
    let plan = validate(
        &spec,
        &ChaosSettings::default(),
        &["a".into(), "b".into()].into(),
    )
    .expect("valid");
    assert_eq!(plan.duration, Duration::from_secs(600));
    assert_eq!(plan.faults[0].duration, Duration::from_millis(500));
    assert_eq!(plan.faults[1].error_code, Some(503));
    let unknown = serde_json::json!({"experiment_name": "x", "duration_minutes": 1, "faults": [], "bogus": 1});
    assert!(serde_json::from_value::<ExperimentSpec>(unknown).is_err());
}

#[tokio::test(start_paused = true)]
async fn report_json_shape() {
    let eng = engine();
    let started = eng
        .start(&spec(vec![fault("error", "a", 0.5)], Some(1)))
        .expect("start");
    let v = serde_json::to_value(&started).expect("json");
    assert_eq!(v["status"], "running");
    assert_eq!(v["configuration"]["duration"], "10m");
    assert_eq!(v["configuration"]["faults"], 1);
    let r = serde_json::to_value(eng.stop(&started.experiment_id).expect("stop")).expect("json");
    assert_eq!(r["status"], "stopped");
    assert_eq!(r["results"]["total_faults_injected"], 0);
    assert_eq!(r["results"]["system_degradation_detected"], false);
    assert!(r["results"]["recovery_time_seconds"].is_null());
    assert_eq!(r["results"]["faults"][0]["type"], "error");
    assert_eq!(r["results"]["faults"][0]["target"], "a");
    assert_eq!(r["results"]["faults"][0]["error_code"], 503);
    let _ = Arc::new(());
}

#[test]
fn json_bodies_name_the_wrong_field_by_path() {
    let field = |v: serde_json::Value| {
        ExperimentSpec::from_json(&v)
            .err()
            .and_then(|e| e.field().map(str::to_owned))
    };
    let ok = serde_json::json!({
        "experiment_name": "x", "duration_minutes": 1, "seed": 9,
        "faults": [{"type": "error", "target": "a", "probability": 0.3, "error_code": 503}]
    });
    let spec = ExperimentSpec::from_json(&ok).expect("valid body");
    assert_eq!(spec.seed, Some(9));
    assert_eq!(spec.faults[0].probability, Some(0.3));
    let with = |path: &str, value: serde_json::Value| {
        let mut v = ok.clone();
        match path.split_once('.') {
            Some((_, key)) => v["faults"][0][key] = value,
            None => v[path] = value,
        }
        v
    };
    assert_eq!(
        field(with("f.probability", serde_json::json!("high"))).as_deref(),
        Some("faults[0].probability")
    );
    assert_eq!(
        field(with("f.error_code", serde_json::json!(70_000))).as_deref(),
        Some("faults[0].error_code")
    );
    assert_eq!(
        field(with("f.target", serde_json::Value::Null)).as_deref(),
        Some("faults[0].target")
    );
    assert_eq!(
        field(with("f.typo", serde_json::json!(1))).as_deref(),
        Some("faults[0].typo")
    );
    assert_eq!(
        field(with("duration_minutes", serde_json::json!("ten"))).as_deref(),
        Some("duration_minutes")
    );
    assert_eq!(
        field(with("faults", serde_json::json!({}))).as_deref(),
        Some("faults")
    );
    assert_eq!(
        field(with("seed", serde_json::json!(-1))).as_deref(),
        Some("seed")
    );
    assert_eq!(field(serde_json::json!([])).as_deref(), Some("body"));
    assert_eq!(
        field(serde_json::json!({"duration_minutes": 1, "faults": []})).as_deref(),
        Some("experiment_name")
    );
}

#[test]
fn settings_problems_name_their_keys() {
    assert!(settings_problems(&ChaosSettings::default()).is_empty());
    let bad = ChaosSettings {
        degradation_threshold: 1.5,
        max_concurrent_experiments: 0,
        ..ChaosSettings::default()
    };
    let keys: Vec<String> = settings_problems(&bad).into_iter().map(|p| p.0).collect();
    assert_eq!(
        keys,
        [
            "chaos.max_concurrent_experiments",
            "chaos.degradation_threshold"
        ]
    );
}
