//! Tests of the open-loop load generator under paused tokio time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

fn instant_ok() -> RequestFn {
    request_fn(|spec: RequestSpec| async move {
        Outcome {
            ok: true,
            status: Some(200),
            provider: spec.provider,
        }
    })
}

#[tokio::test(start_paused = true)]
async fn ten_seconds_at_100_rps_sends_1000() {
    let plan = LoadPlan::new(100.0, Duration::from_secs(10), 100);
    let gen = LoadGenerator::start("t", plan, instant_ok(), Duration::from_secs(5));
    let r = gen.wait().await;
    assert_eq!(r.status, LoadTestStatus::Completed);
    assert!(
        (999..=1001).contains(&r.results.total_requests),
        "{}",
        r.results.total_requests
    );
    assert_eq!(r.results.successful_requests, r.results.total_requests);
    assert_eq!(r.results.failed_requests, 0);
    let rps = r.results.requests_per_second;
    assert!((rps - 100.0).abs() <= 5.0, "achieved {rps}");
    assert_eq!(r.results.p99_response_time_ms, 0.0);
    assert_eq!(r.duration_seconds, 10.0);
}

#[tokio::test(start_paused = true)]
async fn a_stall_shows_in_p99_because_latency_counts_from_the_schedule() {
    // A server that handles one request at a time and stalls for 1 s on request 500:
    // every request due during the stall waits behind it.
    let server = Arc::new(tokio::sync::Mutex::new(()));
    let send = request_fn(move |spec: RequestSpec| {
        let server = Arc::clone(&server);
        async move {
            let _guard = server.lock().await;
            if spec.index == 500 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Outcome {
                ok: true,
                status: Some(200),
                provider: None,
            }
        }
    });
    let plan = LoadPlan::new(100.0, Duration::from_secs(10), 1_000);
    let r = LoadGenerator::start("t", plan, send, Duration::from_secs(5))
        .wait()
        .await;
    assert_eq!(r.results.total_requests, 1000);
    assert_eq!(r.results.p50_response_time_ms, 0.0);
    // ~100 of 1000 requests queued behind the stall: p95 sees part of it, p99 most of it.
    assert!(r.results.p99_response_time_ms >= 800.0, "{:?}", r.results);
    assert!(r.results.max_response_time_ms >= 999.0, "{:?}", r.results);
    assert!((r.results.requests_per_second - 100.0).abs() <= 5.0);
}

#[tokio::test(start_paused = true)]
async fn a_generator_behind_schedule_counts_its_lateness() {
    // Request 10 freezes the generator's clock view by jumping time 50 ms ahead (as a
    // blocked host would): the requests due meanwhile are sent late, and their latency
    // counts from their slot, not from the late send. Sends on time measure zero.
    let send = request_fn(|spec: RequestSpec| async move {
        if spec.index == 10 {
            tokio::time::advance(Duration::from_millis(50)).await;
        }
        Outcome {
            ok: true,
            status: Some(200),
            provider: None,
        }
    });
    let plan = LoadPlan::new(100.0, Duration::from_secs(1), 100);
    let r = LoadGenerator::start("t", plan, send, Duration::from_secs(5))
        .wait()
        .await;
    assert_eq!(r.results.total_requests, 100);
    assert_eq!(r.results.p50_response_time_ms, 0.0, "{:?}", r.results);
    // Request 10 itself took 50 ms; the ones due in its shadow were 10..40 ms late.
    assert!(r.results.max_response_time_ms >= 49.0, "{:?}", r.results);
    assert!(r.results.p99_response_time_ms >= 30.0, "{:?}", r.results);
}

#[tokio::test(start_paused = true)]
async fn concurrency_cap_drops_instead_of_delaying() {
    // Every request takes 1 s; at 100 rps with 10 users, ~10 % can be in flight.
    let send = request_fn(|_spec: RequestSpec| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Outcome {
            ok: true,
            status: Some(200),
            provider: Some("mock".into()),
        }
    });
    let plan = LoadPlan::new(100.0, Duration::from_secs(5), 10);
    let r = LoadGenerator::start("t", plan, send, Duration::from_secs(5))
        .wait()
        .await;
    assert_eq!(r.results.total_requests, 500);
    assert!(r.results.dropped_requests >= 400, "{:?}", r.results);
    assert_eq!(
        r.results.failed_requests, r.results.dropped_requests,
        "dropped requests count as failed"
    );
    assert_eq!(
        r.results.successful_requests + r.results.dropped_requests,
        500
    );
    assert_eq!(r.provider_breakdown["mock"].success_rate, 1.0);
    assert_eq!(r.provider_breakdown["mock"].avg_response_time_ms, 1000.0);
}

#[tokio::test(start_paused = true)]
async fn stop_early_and_live_results() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let send = request_fn(move |_spec: RequestSpec| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Outcome {
                ok: false,
                status: Some(502),
                provider: None,
            }
        }
    });
    let plan = LoadPlan::new(10.0, Duration::from_secs(60), 10);
    let gen = LoadGenerator::start("t", plan, send, Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(2_050)).await;
    let live = gen.results();
    assert_eq!(live.status, LoadTestStatus::Running);
    assert_eq!(live.results.total_requests, 21);
    assert_eq!(live.results.error_rate, 1.0);
    assert_eq!(live.results.status_codes.get("502"), Some(&21));
    gen.stop();
    let r = gen.wait().await;
    assert_eq!(r.status, LoadTestStatus::Stopped);
    assert_eq!(r.results.total_requests, 21);
    assert_eq!(sent.load(Ordering::SeqCst), 21);
    assert_eq!(r.duration_seconds, 2.05);
}

#[tokio::test(start_paused = true)]
async fn unfinished_requests_fail_after_the_drain() {
    let send = request_fn(|_spec: RequestSpec| async move {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        Outcome {
            ok: true,
            status: Some(200),
            provider: None,
        }
    });
    let plan = LoadPlan::new(2.0, Duration::from_secs(2), 10);
    let r = LoadGenerator::start("t", plan, send, Duration::from_secs(1))
        .wait()
        .await;
    assert_eq!(r.results.total_requests, 4);
    assert_eq!(r.results.failed_requests, 4);
    assert_eq!(r.results.in_flight, 0);
}

#[test]
fn plan_validation_names_the_field() {
    let settings = LoadTestSettings::default();
    let known = vec!["openai".to_owned(), "anthropic".to_owned()];
    let field = |spec: LoadTestSpec| {
        LoadPlan::from_spec(&spec, &settings, &known)
            .err()
            .and_then(|e| e.field().map(str::to_owned))
    };
    let base = LoadTestSpec::default();
    assert_eq!(
        field(LoadTestSpec {
            target_rps: Some(0.0),
            ..base.clone()
        })
        .as_deref(),
        Some("target_rps")
    );
    assert_eq!(
        field(LoadTestSpec {
            target_rps: Some(5_000.0),
            ..base.clone()
        })
        .as_deref(),
        Some("target_rps")
    );
    assert_eq!(
        field(LoadTestSpec {
            duration_minutes: Some(31.0),
            ..base.clone()
        })
        .as_deref(),
        Some("duration_minutes")
    );
    assert_eq!(
        field(LoadTestSpec {
            tier: Some("ludicrous".into()),
            ..base.clone()
        })
        .as_deref(),
        Some("tier")
    );
    assert_eq!(
        field(LoadTestSpec {
            providers: vec!["openai".into(), "x".into()],
            ..base.clone()
        })
        .as_deref(),
        Some("providers[1]")
    );
    assert_eq!(
        field(LoadTestSpec {
            scenarios: vec![ScenarioEntry::Name("fly".into())],
            ..base.clone()
        })
        .as_deref(),
        Some("scenarios[0]")
    );
    let tight = LoadTestSettings {
        max_users: 500,
        ..LoadTestSettings::default()
    };
    let e = LoadPlan::from_spec(
        &LoadTestSpec {
            tier: Some("extreme".into()),
            ..base.clone()
        },
        &tight,
        &known,
    );
    assert_eq!(
        e.err()
            .and_then(|e| e.field().map(str::to_owned))
            .as_deref(),
        Some("tier")
    );
}

#[test]
fn spec_example_parses_and_rotates() {
    let body = serde_json::json!({
        "tier": "medium", "duration_minutes": 5, "target_rps": 20,
        "providers": ["openai", "anthropic"],
        "models": ["gpt-3.5-turbo", "claude-3-haiku"],
        "scenarios": ["chat_completion", {"name": "model_discovery", "weight": 2}]
    });
    let spec: LoadTestSpec = serde_json::from_value(body).expect("spec example");
    let known = vec!["openai".to_owned(), "anthropic".to_owned()];
    let plan = LoadPlan::from_spec(&spec, &LoadTestSettings::default(), &known).expect("valid");
    assert_eq!(plan.users, 100);
    assert_eq!(plan.total_requests(), 6_000);
    assert_eq!(
        plan.scenario_cycle,
        vec![
            Scenario::ModelDiscovery,
            Scenario::ChatCompletion,
            Scenario::ModelDiscovery
        ]
    );
    let reqs: Vec<_> = (0..6).map(|i| plan.request(i)).collect();
    // Providers and models stay paired.
    for r in &reqs {
        let pair = (r.provider.as_deref(), r.model.as_deref());
        assert!(matches!(
            pair,
            (Some("openai"), Some("gpt-3.5-turbo")) | (Some("anthropic"), Some("claude-3-haiku"))
        ));
    }
    assert_ne!(reqs[0].provider, reqs[3].provider);
    assert_eq!(reqs[1].scheduled_offset, Duration::from_millis(50));
    assert!(serde_json::from_value::<LoadTestSpec>(serde_json::json!({"rps": 1})).is_err());
}

#[tokio::test(start_paused = true)]
async fn tester_caps_ids_and_json_shape() {
    let tester = LoadTester::new(LoadTestSettings::default(), ["mock"]);
    let spec = LoadTestSpec {
        tier: Some("light".into()),
        duration_minutes: Some(0.5),
        target_rps: Some(10.0),
        providers: vec!["mock".into()],
        ..LoadTestSpec::default()
    };
    let started = tester.start(&spec, instant_ok()).expect("start");
    let v = serde_json::to_value(&started).expect("json");
    assert_eq!(v["status"], "running");
    assert_eq!(v["configuration"]["users"], 10);
    assert_eq!(v["configuration"]["duration"], "30s");
    assert!(matches!(
        tester.start(&spec, instant_ok()),
        Err(LoadTestError::TooManyRunning { max: 1, .. })
    ));
    let gen = tester.get(&started.test_id).expect("known id");
    gen.wait().await;
    let r = serde_json::to_value(tester.results(&started.test_id).expect("results")).expect("json");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["results"]["total_requests"], 300);
    assert_eq!(r["results"]["error_rate"], 0.0);
    assert_eq!(r["provider_breakdown"]["mock"]["requests"], 300);
    assert_eq!(r["provider_breakdown"]["mock"]["success_rate"], 1.0);
    for key in [
        "successful_requests",
        "failed_requests",
        "average_response_time_ms",
        "p95_response_time_ms",
        "p99_response_time_ms",
        "requests_per_second",
    ] {
        assert!(r["results"].get(key).is_some(), "{key}");
    }
    assert!(matches!(
        tester.results("nope"),
        Err(LoadTestError::NotFound(_))
    ));
    assert_eq!(tester.list().len(), 1);
}

#[test]
fn json_bodies_name_the_wrong_field_by_path() {
    let field = |v: serde_json::Value| {
        LoadTestSpec::from_json(&v)
            .err()
            .and_then(|e| e.field().map(str::to_owned))
    };
    let spec = LoadTestSpec::from_json(&serde_json::json!({
        "tier": "light", "target_rps": null,
        "scenarios": ["search", {"name": "condense", "weight": 2}]
    }))
    .expect("valid body");
    assert_eq!(spec.tier.as_deref(), Some("light"));
    assert_eq!(spec.target_rps, None);
    assert_eq!(spec.scenarios.len(), 2);
    assert_eq!(
        LoadTestSpec::from_json(&serde_json::json!({})).expect("empty body"),
        LoadTestSpec::default()
    );
    assert_eq!(
        field(serde_json::json!({"target_rps": "fast"})).as_deref(),
        Some("target_rps")
    );
    assert_eq!(
        field(serde_json::json!({"providers": ["a", 1]})).as_deref(),
        Some("providers[1]")
    );
    assert_eq!(
        field(serde_json::json!({"scenarios": ["search", {"name": "condense"}]})).as_deref(),
        Some("scenarios[1].weight")
    );
    assert_eq!(
        field(serde_json::json!({"scenarios": [3]})).as_deref(),
        Some("scenarios[0]")
    );
    assert_eq!(field(serde_json::json!({"rps": 3})).as_deref(), Some("rps"));
    assert_eq!(field(serde_json::json!("x")).as_deref(), Some("body"));
}

#[test]
fn chat_scenario_needs_a_model_and_settings_problems_name_keys() {
    let spec = LoadTestSpec {
        scenarios: vec![ScenarioEntry::Name("chat_completion".into())],
        ..LoadTestSpec::default()
    };
    let e = LoadPlan::from_spec(&spec, &LoadTestSettings::default(), &[]).err();
    assert_eq!(e.as_ref().and_then(|e| e.field()), Some("models"));
    assert!(settings_problems(&LoadTestSettings::default()).is_empty());
    let bad = LoadTestSettings {
        max_rps: 0.0,
        max_users: 5,
        ..LoadTestSettings::default()
    };
    let keys: Vec<String> = settings_problems(&bad).into_iter().map(|p| p.0).collect();
    assert_eq!(keys, ["load_test.max_rps", "load_test.max_users"]);
}
