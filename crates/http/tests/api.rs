//! The Models, Providers, Cache, v1 and v2 APIs over real sockets, against the testkit
//! mock upstream speaking OpenAI, Anthropic and Gemini wire formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;

use common::{client, get_json, mock_provider, settings_with, start, TempDir};
use modelgate_config::Settings;
use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::ProviderKind;
use serde_json::Value;

async fn three_providers() -> (MockUpstream, common::Gateway) {
    let mock = MockUpstream::start().await;
    let gw = start(settings_with(vec![
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
        ("anthropic", mock_provider(&mock, ProviderKind::Anthropic)),
        ("gemini", mock_provider(&mock, ProviderKind::Gemini)),
    ]))
    .await;
    (mock, gw)
}

fn ids(v: &Value) -> Vec<String> {
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["provider"].as_str().unwrap(),
                m["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn catalog_is_the_default_without_providers() {
    let gw = start(Settings::default()).await;
    let (status, v) = get_json(&gw.url("/api/models")).await;
    assert_eq!(status, 200);
    assert_eq!(v["source"], "catalog");
    assert_eq!(v["count"], 50);
    assert_eq!(v["pagination"]["limit"], 50);
    assert!(v["pagination"]["total"].as_u64().unwrap() > 5_000);
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["source"] == "catalog"));

    let (_, v) =
        get_json(&gw.url("/api/models?provider=openai&min_context=100000&limit=1000")).await;
    let models = v["models"].as_array().unwrap();
    assert!(!models.is_empty());
    assert!(models
        .iter()
        .all(|m| m["provider"] == "openai" && m["context_length"].as_u64().unwrap() >= 100_000));
}

#[tokio::test]
async fn invalid_filters_name_the_parameter() {
    let gw = start(Settings::default()).await;
    for (query, param) in [
        ("min_context=abc", "min_context"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("sort=bogus", "sort"),
        ("capabilities=%5B%22vision%22", "capabilities"),
        ("max_cost=-1", "max_cost"),
        ("supports_chat=maybe", "supports_chat"),
        ("cursor=not-a-cursor", "cursor"),
    ] {
        let (status, v) = get_json(&gw.url(&format!("/api/models?{query}"))).await;
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"]["code"], "INVALID_FILTER", "{query}");
        assert_eq!(v["error"]["details"]["parameter"], param, "{query}: {v}");
        assert!(v["timestamp"].is_string());
    }
}

#[tokio::test]
async fn discovers_from_three_wire_formats_with_catalog_facts() {
    let (_mock, gw) = three_providers().await;
    let (status, v) = get_json(&gw.url("/api/models?limit=1000")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["source"], "discovered");
    assert_eq!(v["cache_hit"], false);
    let all = ids(&v);
    for p in ["openai/", "anthropic/", "gemini/"] {
        assert!(
            all.iter().any(|id| id.starts_with(p)),
            "{p} missing from {all:?}"
        );
    }
    let mut providers: Vec<String> = serde_json::from_value(v["providers"].clone()).unwrap();
    providers.sort();
    assert_eq!(providers, ["anthropic", "gemini", "openai"]);
    // A dated OpenAI snapshot gets GPT-4o facts from the catalog (per 1K tokens).
    let m = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gpt-4o-2024-08-06")
        .unwrap();
    assert_eq!(m["input_cost"], 0.0025);
    assert_eq!(m["context_length"], 128_000);
    assert_eq!(m["source"], "discovered");
    assert_eq!(m["stale"], false);

    // Second read is served from cache.
    let (_, v) = get_json(&gw.url("/api/models")).await;
    assert_eq!(v["cache_hit"], true);

    // Filters.
    let (_, v) = get_json(&gw.url("/api/models?provider=anthropic,gemini&limit=1000")).await;
    assert!(ids(&v)
        .iter()
        .all(|id| id.starts_with("anthropic/") || id.starts_with("gemini/")));
    let (_, v) = get_json(&gw.url("/api/models?capabilities=vision&limit=1000")).await;
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["capabilities"]
            .as_array()
            .unwrap()
            .contains(&Value::from("vision"))));
    let (_, v) = get_json(&gw.url("/api/models?max_cost=0.001&limit=1000")).await;
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["input_cost"].as_f64().is_some_and(|c| c <= 0.001)));
    let (_, v) = get_json(&gw.url("/api/models?sort=-context_length&limit=1000")).await;
    let ctx: Vec<u64> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["context_length"].as_u64())
        .collect();
    assert!(ctx.windows(2).all(|w| w[0] >= w[1]), "{ctx:?}");

    // Unknown provider in discovered mode is an error, not an empty list.
    let (status, v) = get_json(&gw.url("/api/models?provider=nope")).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn search_ranks_exact_then_prefix_then_substring() {
    let (_mock, gw) = three_providers().await;
    let (status, v) = get_json(&gw.url("/api/models/search?q=gpt-4o&provider=openai")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["query"], "gpt-4o");
    assert!(v["filters_applied"].is_object());
    let got = ids(&v);
    assert_eq!(got[0], "openai/gpt-4o", "{got:?}");
    assert!(got.contains(&"openai/gpt-4o-mini".to_owned()));
    assert!(!got.contains(&"openai/o3-mini".to_owned()));
    let (_, v) = get_json(&gw.url("/api/models/search?q=GPT-4O-MINI")).await;
    assert_eq!(ids(&v)[0], "openai/gpt-4o-mini");
}

#[tokio::test]
async fn model_details_and_not_found_suggestions() {
    let (mock, gw) = three_providers().await;
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("ft:gpt-4o-mini:org/custom:abc"),
    );
    let (status, v) = get_json(&gw.url("/api/models/gpt-4o-mini?provider=openai")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"]["id"], "gpt-4o-mini");
    assert_eq!(v["model"]["provider"], "openai");
    assert_eq!(v["provider_info"]["name"], "openai");
    assert_eq!(v["provider_info"]["status"], "active");
    // Ids may contain '/' and ':'.
    let (status, v) = get_json(&gw.url("/api/models/ft:gpt-4o-mini:org/custom:abc")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"]["id"], "ft:gpt-4o-mini:org/custom:abc");
    let (status, v) = get_json(&gw.url("/api/models/gpt-4o-mimi")).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "MODEL_NOT_FOUND");
    let suggestions: Vec<String> =
        serde_json::from_value(v["error"]["details"]["available_models"].clone()).unwrap();
    assert!(
        suggestions.iter().any(|s| s.contains("gpt-4o-mini")),
        "{suggestions:?}"
    );
}

#[tokio::test]
async fn providers_status_and_per_provider_models() {
    let (_mock, gw) = three_providers().await;
    let (status, v) = get_json(&gw.url("/api/providers/status")).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = get_json(&gw.url("/api/providers/anthropic/models")).await;
    assert_eq!(status, 200, "{v}");
    assert!(ids(&v).iter().all(|id| id.starts_with("anthropic/")));
    assert!(!ids(&v).is_empty());
    let (_, v) = get_json(&gw.url("/api/providers/status")).await;
    let anthropic = &v["providers"]["anthropic"];
    assert_eq!(anthropic["status"], "active", "{v}");
    assert!(anthropic["models_count"].as_u64().unwrap() > 0);
    assert!(anthropic["last_check"].is_string());
    let (status, v) = get_json(&gw.url("/api/providers/nope/models")).await;
    assert_eq!(status, 404, "{v}");
}

#[tokio::test]
async fn failing_provider_keeps_its_models_stale() {
    let (mock, gw) = three_providers().await;
    let (_, before) = get_json(&gw.url("/api/models?provider=anthropic&limit=1000")).await;
    let before = ids(&before);
    assert!(!before.is_empty());
    mock.set_error_rate(ProviderKind::Anthropic, 1.0, 500, 1);
    let resp = client()
        .post(gw.url("/api/models/refresh"))
        .json(&serde_json::json!({"providers": ["anthropic"], "force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert!(report.to_string().contains("anthropic"), "{report}");

    let (_, v) = get_json(&gw.url("/api/models?provider=anthropic&limit=1000")).await;
    assert_eq!(ids(&v), before, "last good list is kept");
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["stale"] == true));
    let (_, v) = get_json(&gw.url("/api/models?provider=openai&limit=1000")).await;
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["stale"] == false));
    let (_, status) = get_json(&gw.url("/api/providers/status")).await;
    assert_eq!(
        status["providers"]["anthropic"]["status"], "error",
        "{status}"
    );
    assert!(!status.to_string().contains(MockUpstream::API_KEY));
    let (code, health) = get_json(&gw.url("/health")).await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["services"]["providers"]["anthropic"], "error");
}

#[tokio::test]
async fn restart_with_providers_down_serves_the_persisted_list() {
    let dir = TempDir::new("persist");
    let mock = MockUpstream::start().await;
    let mut settings = settings_with(vec![
        ("openai", mock_provider(&mock, ProviderKind::Openai)),
        ("gemini", mock_provider(&mock, ProviderKind::Gemini)),
    ]);
    settings.discovery.data_dir = dir.0.clone();
    let gw = start(settings.clone()).await;
    let (_, first) = get_json(&gw.url("/api/models?limit=1000")).await;
    let first = ids(&first);
    assert!(first.len() > 3);
    gw.stop().await;

    // Every provider down now.
    mock.set_error_rate(ProviderKind::Openai, 1.0, 503, 1);
    mock.set_error_rate(ProviderKind::Gemini, 1.0, 503, 1);
    let gw = start(settings).await;
    let (status, v) = get_json(&gw.url("/api/models?limit=1000")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), first);
    assert!(v["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["stale"] == true));
}

#[tokio::test]
async fn cursor_pages_stay_stable_across_a_refresh() {
    let (mock, gw) = three_providers().await;
    let (_, all) = get_json(&gw.url("/api/models?sort=id&limit=1000")).await;
    let all = ids(&all);
    let (_, p1) = get_json(&gw.url("/api/models?sort=id&limit=3")).await;
    let cursor = p1["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(ids(&p1), all[..3]);
    // A model sorting before the cursor appears; the next page must neither repeat nor skip.
    mock.add_model(ProviderKind::Openai, MockModel::new("aaa-first"));
    gw.state.discovery.refresh(None).await;
    let (status, p2) =
        get_json(&gw.url(&format!("/api/models?sort=id&limit=3&cursor={cursor}"))).await;
    assert_eq!(status, 200, "{p2}");
    assert_eq!(ids(&p2), all[3..6]);
}

#[tokio::test]
async fn cache_stats_and_clear() {
    let (_mock, gw) = three_providers().await;
    get_json(&gw.url("/api/models")).await;
    get_json(&gw.url("/api/models")).await;
    let (status, v) = get_json(&gw.url("/api/cache/stats")).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["cache_stats"]["hits"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["cache_stats"]["total_entries"], 3, "{v}");
    assert!(v["provider_stats"]["openai"]["hit_rate"].is_number(), "{v}");
    let resp = client()
        .delete(gw.url("/api/cache?provider=openai"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, v) = get_json(&gw.url("/api/cache/stats")).await;
    assert_eq!(v["cache_stats"]["total_entries"], 2, "{v}");
}

#[tokio::test]
async fn openai_compatible_model_list() {
    let (_mock, gw) = three_providers().await;
    let (status, v) = get_json(&gw.url("/v1/models")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    let first = &data[0];
    assert_eq!(first["object"], "model");
    assert!(first["created"].is_i64() || first["created"].is_u64());
    assert!(first["owned_by"].is_string());
    assert!(data.iter().any(|m| m["id"] == "openai/gpt-4o"));
}

fn decode(encoding: Option<&str>, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(bytes),
        Some("gzip") => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("zstd") => out = zstd::decode_all(bytes).unwrap(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    out
}

#[tokio::test]
async fn v2_etag_compression_and_sparse_fields() {
    let (mock, gw) = three_providers().await;
    let url = gw.url("/v2/models?limit=1000&fields=id,provider,context_length");
    let plain = client().get(&url).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "strong etag: {etag}");
    let plain_body: Value = serde_json::from_slice(&plain.bytes().await.unwrap()).unwrap();
    let first = plain_body["models"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["context_length", "id", "provider"]);

    for enc in ["gzip", "br", "zstd"] {
        let resp = client()
            .get(&url)
            .header("accept-encoding", enc)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-encoding"], enc);
        assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
        let raw = resp.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&decode(Some(enc), &raw)).unwrap();
        assert_eq!(v, plain_body, "{enc} round-trips");
    }

    let resp = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);
    assert!(resp.bytes().await.unwrap().is_empty());

    // A change in the data changes the ETag.
    mock.add_model(ProviderKind::Gemini, MockModel::new("gemini-new"));
    gw.state.discovery.refresh(None).await;
    let resp = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_ne!(resp.headers()["etag"].to_str().unwrap(), etag);

    let (status, v) = get_json(&gw.url("/v2/models?fields=bogus")).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["details"]["parameter"], "fields");
}

#[tokio::test]
async fn admin_routes_accept_loopback_without_a_token_and_check_a_token() {
    let mock = MockUpstream::start().await;
    let mut settings = settings_with(vec![("openai", mock_provider(&mock, ProviderKind::Openai))]);
    settings.server.admin_token = Some(modelgate_types::Secret::new("s3cret-admin"));
    let gw = start(settings).await;
    let resp = client()
        .post(gw.url("/api/models/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "UNAUTHORIZED");
    let resp = client()
        .post(gw.url("/api/models/refresh"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client()
        .post(gw.url("/api/models/refresh"))
        .bearer_auth("s3cret-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn websocket_receives_model_added() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (mock, gw) = three_providers().await;
    gw.state.discovery.refresh(None).await;
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(
        format!("ws://{}/ws/models?provider=openai", gw.addr),
        stream,
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 101);

    mock.add_model(ProviderKind::Gemini, MockModel::new("gemini-ignored"));
    mock.add_model(ProviderKind::Openai, MockModel::new("gpt-new"));
    let resp = client()
        .post(gw.url("/api/models/refresh"))
        .json(&serde_json::json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let event = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Text(t) => {
                    let v = serde_json::from_str::<Value>(&t).unwrap();
                    if v["type"] == "connected" {
                        assert_eq!(v["filter"]["provider"], "openai");
                        continue;
                    }
                    break v;
                }
                Message::Ping(p) => ws.send(Message::Pong(p)).await.unwrap(),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event["type"], "model_added", "{event}");
    assert_eq!(event["model"]["id"], "gpt-new");
    assert_eq!(event["model"]["provider"], "openai");
    assert!(event["timestamp"].is_string());

    // Shutdown sends a Close frame.
    gw.state.shutdown.cancel();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                _ => break None,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, Some(1001));
}

#[tokio::test]
async fn concurrent_misses_make_one_upstream_call() {
    let mock = MockUpstream::start().await;
    let gw = start(settings_with(vec![(
        "openai",
        mock_provider(&mock, ProviderKind::Openai),
    )]))
    .await;
    let (status, _) = get_json(&gw.url("/api/models")).await;
    assert_eq!(status, 200);
    let resp = client().delete(gw.url("/api/cache")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    mock.reset();
    mock.set_latency(ProviderKind::Openai, std::time::Duration::from_millis(300));
    let before = mock.hits_path("/models");
    let c = client();
    let reqs = (0..100).map(|_| {
        let c = c.clone();
        let url = gw.url("/api/models");
        async move { c.get(url).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(reqs).await;
    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(mock.hits_path("/models") - before, 1, "single flight");
}

/// Whether a listing body (`/api` ids or `/v1` `provider/id` ids) holds `gpt-new`.
fn lists_new_model(body: &str) -> bool {
    body.contains(r#""id":"gpt-new""#) || body.contains(r#""id":"openai/gpt-new""#)
}

#[tokio::test]
async fn rendered_listings_follow_every_change_of_the_data() {
    // Listings are served from a render cache keyed by snapshot version and query: the
    // same request twice is the same body, and a change of the data is seen at once.
    let (mock, gw) = three_providers().await;
    gw.state.discovery.refresh(None).await;
    let urls = [
        "/api/models?provider=openai&limit=1000",
        "/api/models/search?q=gpt-new&provider=openai",
        "/v1/models",
    ];
    let text = |path: &'static str| {
        let url = gw.url(path);
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    for path in urls {
        let first = text(path).await;
        assert_eq!(text(path).await, first, "{path}: same snapshot, same body");
        assert!(!lists_new_model(&first), "{path}");
    }
    // Same parameters in another order share the rendered body.
    let reordered = text("/api/models?limit=1000&provider=openai").await;
    assert_eq!(reordered, text(urls[0]).await);

    mock.add_model(ProviderKind::Openai, MockModel::new("gpt-new"));
    gw.state.discovery.refresh(None).await;
    for path in urls {
        assert!(
            lists_new_model(&text(path).await),
            "{path} sees the new model"
        );
    }
    let (_, v) = get_json(&gw.url(urls[1])).await;
    assert_eq!(ids(&v), ["openai/gpt-new"]);
}
