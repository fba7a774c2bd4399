//! Integration tests of every adapter against the `modelgate-testkit` mock upstream: auth
//! headers, pagination, field mapping, error kinds, chat round trips and streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use modelgate_providers::{build_provider, HttpClient, Provider, ProviderError, ProviderErrorKind};
use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::chat::{ChatChunk, ChatRequest};
use modelgate_types::{Capability, Model, ModelStatus, ProviderConfig, ProviderKind, Secret};
use serde_json::{json, Value};

/// Every kind that talks HTTP (all but the in-process `mock`): derived from
/// `ProviderKind::ALL`, so a new kind is covered without editing this list.
fn http_kinds() -> impl Iterator<Item = ProviderKind> {
    ProviderKind::ALL
        .into_iter()
        .filter(|k| *k != ProviderKind::Mock)
}

fn provider_with(
    mock: &MockUpstream,
    kind: ProviderKind,
    key: &str,
    timeout_ms: u64,
    headers: BTreeMap<String, Secret>,
) -> Arc<dyn Provider> {
    let mut cfg = ProviderConfig::new(kind);
    cfg.base_url = Some(mock.base_url(kind));
    cfg.timeout_ms = timeout_ms;
    cfg.headers = headers;
    let client = HttpClient::new().expect("client");
    build_provider(kind.as_str(), &cfg, Some(Secret::new(key)), &client).expect("provider")
}

fn provider(mock: &MockUpstream, kind: ProviderKind) -> Arc<dyn Provider> {
    provider_with(mock, kind, MockUpstream::API_KEY, 5_000, BTreeMap::new())
}

fn ids(models: &[Model]) -> Vec<String> {
    models.iter().map(|m| m.id.clone()).collect()
}

fn find<'a>(models: &'a [Model], id: &str) -> &'a Model {
    models
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{id} missing from {:?}", ids(models)))
}

fn request(model: &str, text: &str) -> ChatRequest {
    serde_json::from_value(json!({"model": model, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": text}
    ]}))
    .expect("request")
}

fn tool_request(model: &str, text: &str) -> ChatRequest {
    serde_json::from_value(json!({"model": model, "messages": [{"role": "user", "content": text}],
        "tools": [{"type": "function", "function": {"name": "search", "description": "search the web",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]}))
    .expect("request")
}

async fn collect(p: &dyn Provider, req: &ChatRequest) -> Vec<Result<ChatChunk, ProviderError>> {
    p.chat_stream(req)
        .await
        .expect("stream opens")
        .collect()
        .await
}

fn text_of(chunks: &[Result<ChatChunk, ProviderError>]) -> String {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
        .collect()
}

/// (id, name, arguments) of the streamed tool calls, arguments concatenated.
fn tool_calls_of(chunks: &[Result<ChatChunk, ProviderError>]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks.iter().filter_map(|c| c.as_ref().ok()) {
        for ch in &c.choices {
            for d in ch.delta.tool_calls.iter().flatten() {
                let i = d.index as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = &d.id {
                    calls[i].0 = id.clone();
                }
                if let Some(f) = &d.function {
                    if let Some(n) = &f.name {
                        calls[i].1.push_str(n);
                    }
                    if let Some(a) = &f.arguments {
                        calls[i].2.push_str(a);
                    }
                }
            }
        }
    }
    calls
}

fn finish_of(chunks: &[Result<ChatChunk, ProviderError>]) -> Option<String> {
    chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.finish_reason.clone()))
        .last()
}

// ---------------------------------------------------------------- listing

#[tokio::test]
async fn openai_family_lists_with_bearer_and_maps_fields() {
    let mock = MockUpstream::start().await;
    for kind in [
        ProviderKind::Openai,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Deepseek,
        ProviderKind::Together,
        ProviderKind::Fireworks,
        ProviderKind::Xai,
        ProviderKind::Lmstudio,
        ProviderKind::Vllm,
        ProviderKind::Llamacpp,
        ProviderKind::Mistral,
        ProviderKind::Groq,
        ProviderKind::Openrouter,
    ] {
        let before = mock.requests(kind).len();
        let models = provider(&mock, kind).list_models().await.expect("list");
        let want: Vec<String> = mock.models(kind).into_iter().map(|m| m.id).collect();
        assert_eq!(ids(&models), want, "{kind}");
        assert!(models.iter().all(|m| m.provider == kind.as_str()));
        let reqs = mock.requests(kind).split_off(before);
        // No pagination in these lists: one GET {base}/models, with the bearer key.
        let lists: Vec<_> = reqs
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .collect();
        assert_eq!(lists.len(), 1, "{kind}: {reqs:?}");
        assert_eq!(lists[0].method, "GET");
        assert_eq!(
            lists[0].header("authorization"),
            Some("Bearer mock-valid-key"),
            "{kind}"
        );
        assert!(reqs
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer mock-valid-key")));
    }
    let p = provider(&mock, ProviderKind::Openai)
        .list_models()
        .await
        .expect("openai");
    assert!(find(&p, "gpt-4o-2024-08-06").supports_chat);
    assert_eq!(
        find(&p, "gpt-4o").created_at.as_deref(),
        Some("2024-05-10T18:50:49Z")
    );
    assert!(!find(&p, "text-embedding-3-small").supports_chat);

    let v = provider(&mock, ProviderKind::Vllm)
        .list_models()
        .await
        .expect("vllm");
    assert_eq!(
        find(&v, "meta-llama/Llama-3.1-8B-Instruct").context_length,
        Some(131_072)
    );
    assert!(find(&v, "meta-llama/Llama-3.1-8B-Instruct").supports_chat);

    // llama.cpp: /v1/models has only n_ctx_train (131072); the served window comes from
    // GET /props at the server root.
    let l = provider(&mock, ProviderKind::Llamacpp)
        .list_models()
        .await
        .expect("llamacpp");
    assert_eq!(l[0].context_length, Some(8_192));
    let props = mock.requests(ProviderKind::Llamacpp).pop().expect("props");
    assert!(props.path.ends_with("/llamacpp/props"), "{}", props.path);
    // A server without /props (404 here) still lists its model.
    let mut cfg = ProviderConfig::new(ProviderKind::Llamacpp);
    cfg.base_url = Some(mock.base_url(ProviderKind::Openai));
    let no_props = build_provider(
        "llamacpp",
        &cfg,
        Some(Secret::new(MockUpstream::API_KEY)),
        &HttpClient::new().expect("client"),
    )
    .expect("provider");
    mock.set_models(ProviderKind::Openai, vec![MockModel::new("only.gguf")]);
    let np = no_props
        .list_models()
        .await
        .expect("listing survives a /props 404");
    assert_eq!(ids(&np), ["only.gguf"]);
    assert!(mock
        .requests(ProviderKind::Openai)
        .last()
        .expect("req")
        .path
        .ends_with("/openai/props"));
    mock.reset();
    mock.add_model(
        ProviderKind::Llamacpp,
        MockModel::new("second.gguf").context_length(4_096),
    );
    let two = provider(&mock, ProviderKind::Llamacpp)
        .list_models()
        .await
        .expect("two models");
    assert_eq!(
        two[0].context_length,
        Some(131_072),
        "several models: /props cannot be attributed, n_ctx_train is kept"
    );
    assert!(!mock
        .requests(ProviderKind::Llamacpp)
        .last()
        .expect("req")
        .path
        .ends_with("/props"));
    mock.remove_model(ProviderKind::Llamacpp, "second.gguf");
    let fork = provider(&mock, ProviderKind::Llamacpp);
    mock.set_models(
        ProviderKind::Llamacpp,
        vec![MockModel::new("fork.gguf")
            .context_length(16_384)
            .extra(json!({"meta": {"n_ctx": 2_048}}))],
    );
    let f = fork.list_models().await.expect("fork");
    assert_eq!(
        f[0].context_length,
        Some(2_048),
        "meta.n_ctx wins when present"
    );

    let m = provider(&mock, ProviderKind::Mistral)
        .list_models()
        .await
        .expect("mistral");
    assert!(find(&m, "pixtral-large-latest").has_capability(Capability::Vision));
    assert!(!find(&m, "mistral-embed").supports_chat);
    assert_eq!(find(&m, "codestral-latest").context_length, Some(262_144));
    assert!(find(&m, "mistral-large-latest").description.is_some());

    let g = provider(&mock, ProviderKind::Groq)
        .list_models()
        .await
        .expect("groq");
    let llama = find(&g, "llama-3.3-70b-versatile");
    assert_eq!(
        (llama.context_length, llama.max_tokens),
        (Some(131_072), Some(32_768))
    );
    assert_eq!(llama.status, Some(ModelStatus::Active));
    assert!(!find(&g, "whisper-large-v3").supports_chat);

    let o = provider(&mock, ProviderKind::Openrouter)
        .list_models()
        .await
        .expect("openrouter");
    let gpt = find(&o, "openai/gpt-4o");
    assert_eq!(gpt.input_cost, Some(0.0025));
    assert_eq!(gpt.output_cost, Some(0.01));
    assert_eq!(gpt.max_tokens, Some(16_384));
    assert_eq!(gpt.name, "OpenAI: GPT-4o");
}

#[tokio::test]
async fn anthropic_follows_after_id_to_the_end() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(ProviderKind::Anthropic, 2);
    let models = provider(&mock, ProviderKind::Anthropic)
        .list_models()
        .await
        .expect("list");
    let want: Vec<String> = mock
        .models(ProviderKind::Anthropic)
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids(&models), want);
    let reqs = mock.requests(ProviderKind::Anthropic);
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.header("x-api-key"), Some(MockUpstream::API_KEY));
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert!(r.header("authorization").is_none());
    }
    assert!(
        reqs[1].query.as_deref().unwrap_or("").contains("after_id="),
        "{:?}",
        reqs[1].query
    );
    let sonnet = find(&models, "claude-sonnet-4-20250514");
    assert_eq!(sonnet.name, "Claude Sonnet 4");
    assert_eq!(sonnet.created_at.as_deref(), Some("2025-05-14T00:00:00Z"));
    assert!(sonnet.supports_chat);
    // The current ModelInfo: limits, capabilities and lifecycle.
    assert_eq!(
        (sonnet.context_length, sonnet.max_tokens),
        (Some(200_000), Some(64_000))
    );
    for c in [
        Capability::Vision,
        Capability::PdfInput,
        Capability::Reasoning,
        Capability::StructuredOutput,
        Capability::JsonMode,
    ] {
        assert!(sonnet.has_capability(c), "{c}");
    }
    assert_eq!(sonnet.status, Some(ModelStatus::Active));
    let haiku = find(&models, "claude-3-5-haiku-20241022");
    assert!(
        !haiku.has_capability(Capability::Vision) && !haiku.has_capability(Capability::Reasoning)
    );
    assert_eq!(
        find(&models, "claude-3-opus-20240229").status,
        Some(ModelStatus::Deprecated)
    );
}

#[tokio::test]
async fn gemini_pages_with_header_key_only() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(ProviderKind::Gemini, 2);
    let models = provider(&mock, ProviderKind::Gemini)
        .list_models()
        .await
        .expect("list");
    let want: Vec<String> = mock
        .models(ProviderKind::Gemini)
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids(&models), want);
    let reqs = mock.requests(ProviderKind::Gemini);
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.header("x-goog-api-key"), Some(MockUpstream::API_KEY));
        let q = r.query.clone().unwrap_or_default();
        assert!(
            !q.contains("key=") && !q.contains(MockUpstream::API_KEY),
            "key in URL: {q}"
        );
        assert!(!r.path.contains(MockUpstream::API_KEY));
    }
    let pro = find(&models, "gemini-2.5-pro");
    assert_eq!(
        (pro.context_length, pro.max_tokens),
        (Some(1_048_576), Some(65_536))
    );
    assert!(pro.has_capability(Capability::Reasoning) && pro.supports_chat);
    assert_eq!(pro.name, "Gemini 2.5 Pro");
    let emb = find(&models, "text-embedding-004");
    assert!(!emb.supports_chat && emb.has_capability(Capability::Embeddings));
}

#[tokio::test]
async fn cohere_follows_next_page_token() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(ProviderKind::Cohere, 2);
    let models = provider(&mock, ProviderKind::Cohere)
        .list_models()
        .await
        .expect("list");
    let want: Vec<String> = mock
        .models(ProviderKind::Cohere)
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids(&models), want);
    let reqs = mock.requests(ProviderKind::Cohere);
    assert_eq!(reqs.len(), 2);
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer mock-valid-key")));
    let a = find(&models, "command-a-03-2025");
    assert_eq!(a.context_length, Some(256_000));
    assert!(
        a.supports_chat
            && a.has_capability(Capability::ToolUse)
            && a.has_capability(Capability::JsonMode)
    );
    let e = find(&models, "embed-english-v3.0");
    assert!(!e.supports_chat && e.has_capability(Capability::Embeddings));
}

#[tokio::test]
async fn azure_lists_with_api_key_and_version() {
    let mock = MockUpstream::start().await;
    let models = provider(&mock, ProviderKind::Azure)
        .list_models()
        .await
        .expect("list");
    let want: Vec<String> = mock
        .models(ProviderKind::Azure)
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids(&models), want);
    let r = mock.requests(ProviderKind::Azure).pop().expect("request");
    assert_eq!(r.header("api-key"), Some(MockUpstream::API_KEY));
    assert!(r.header("authorization").is_none());
    assert_eq!(r.query.as_deref(), Some("api-version=2024-10-21"));
    assert!(find(&models, "gpt-4o").supports_chat);
    assert!(!find(&models, "text-embedding-ada-002").supports_chat);
    assert_eq!(
        find(&models, "gpt-4o").created_at.as_deref(),
        Some("2024-05-13T00:00:00Z")
    );
}

#[tokio::test]
async fn ollama_tags_then_show_each_model() {
    let mock = MockUpstream::start().await;
    let models = provider(&mock, ProviderKind::Ollama)
        .list_models()
        .await
        .expect("list");
    let want: Vec<String> = mock
        .models(ProviderKind::Ollama)
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids(&models), want);
    assert_eq!(mock.hits_path("/api/show"), want.len());
    assert_eq!(find(&models, "llama3.2:3b").context_length, Some(131_072));
    assert!(find(&models, "llava:7b").has_capability(Capability::Vision));
    let emb = find(&models, "nomic-embed-text:latest");
    assert!(!emb.supports_chat && emb.has_capability(Capability::Embeddings));
    assert_eq!(emb.family.as_deref(), Some("nomic-bert"));
}

#[tokio::test]
async fn added_models_and_extra_fields_flow_through() {
    let mock = MockUpstream::start().await;
    mock.add_model(
        ProviderKind::Openrouter,
        MockModel::new("x/vision-tool")
            .context_length(64_000)
            .extra(json!({"architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
                "supported_parameters": ["tools", "response_format"]})),
    );
    let models = provider(&mock, ProviderKind::Openrouter)
        .list_models()
        .await
        .expect("list");
    let m = find(&models, "x/vision-tool");
    for c in [
        Capability::Vision,
        Capability::ToolUse,
        Capability::JsonMode,
    ] {
        assert!(m.has_capability(c), "{c}");
    }
    assert_eq!(m.context_length, Some(64_000));
}

// ---------------------------------------------------------------- errors

async fn list_err(p: &dyn Provider) -> ProviderError {
    p.list_models().await.expect_err("must fail")
}

#[tokio::test]
async fn wrong_key_is_auth_for_every_kind() {
    let mock = MockUpstream::start().await;
    mock.set_require_auth(ProviderKind::Ollama, true);
    for kind in http_kinds() {
        let p = provider_with(&mock, kind, "wrong-key-value-1234", 5_000, BTreeMap::new());
        let e = list_err(p.as_ref()).await;
        assert_eq!(e.kind, ProviderErrorKind::Auth, "{kind}: {e}");
        // Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
        let want = if kind == ProviderKind::Gemini {
            400
        } else {
            401
        };
        assert_eq!(e.status, Some(want), "{kind}");
        assert!(!e.to_string().contains("wrong-key-value-1234"), "{e}");
        let h = p.health().await.expect_err("health");
        assert_eq!(h.kind, ProviderErrorKind::Auth, "{kind}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_bad_responses() {
    let mock = MockUpstream::start().await;
    for kind in http_kinds() {
        mock.set_malformed(kind, true);
        let e = list_err(provider(&mock, kind).as_ref()).await;
        assert_eq!(e.kind, ProviderErrorKind::BadResponse, "{kind}: {e}");
    }
    for (kind, model) in [
        (ProviderKind::Openai, "gpt-4o"),
        (ProviderKind::Anthropic, "claude-sonnet-4-20250514"),
        (ProviderKind::Gemini, "gemini-2.0-flash"),
        (ProviderKind::Cohere, "command-a-03-2025"),
    ] {
        let p = provider(&mock, kind);
        let e = p.chat(&request(model, "hi")).await.expect_err("chat");
        assert_eq!(e.kind, ProviderErrorKind::BadResponse, "{kind}: {e}");
        let chunks = collect(p.as_ref(), &request(model, "hi")).await;
        let last = chunks
            .last()
            .expect("an item")
            .as_ref()
            .expect_err("error item");
        assert!(
            matches!(
                last.kind,
                ProviderErrorKind::BadResponse | ProviderErrorKind::StreamInterrupted
            ),
            "{kind}: {last}"
        );
    }
}

#[tokio::test]
async fn hung_upstream_times_out() {
    let mock = MockUpstream::start().await;
    for kind in http_kinds() {
        mock.set_hang(kind, true);
        let p = provider_with(&mock, kind, MockUpstream::API_KEY, 200, BTreeMap::new());
        let e = list_err(p.as_ref()).await;
        assert_eq!(e.kind, ProviderErrorKind::Timeout, "{kind}: {e}");
        assert!(e.is_retryable());
    }
    let p = provider_with(
        &mock,
        ProviderKind::Anthropic,
        MockUpstream::API_KEY,
        200,
        BTreeMap::new(),
    );
    let e = p
        .chat_stream(&request("claude-sonnet-4-20250514", "hi"))
        .await
        .err()
        .expect("stream times out");
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout() {
    let mock = MockUpstream::start().await;
    mock.set_stream_interval(ProviderKind::Openai, Duration::from_secs(5));
    let p = provider_with(
        &mock,
        ProviderKind::Openai,
        MockUpstream::API_KEY,
        300,
        BTreeMap::new(),
    );
    let chunks = collect(p.as_ref(), &request("gpt-4o", "hello there")).await;
    let last = chunks.last().expect("item").as_ref().expect_err("error");
    assert_eq!(last.kind, ProviderErrorKind::Timeout, "{last}");
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let mock = MockUpstream::start().await;
    for kind in http_kinds() {
        mock.rate_limit_next(kind, 1, 7);
        let e = list_err(provider(&mock, kind).as_ref()).await;
        assert_eq!(e.kind, ProviderErrorKind::RateLimited, "{kind}: {e}");
        assert_eq!(e.status, Some(429));
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)), "{kind}");
    }
}

#[tokio::test]
async fn server_errors_are_upstream_and_not_found_is_not_found() {
    let mock = MockUpstream::start().await;
    for kind in http_kinds() {
        mock.fail_next(kind, 1, 503);
        let e = list_err(provider(&mock, kind).as_ref()).await;
        assert_eq!(e.kind, ProviderErrorKind::Upstream, "{kind}: {e}");
        assert_eq!(e.status, Some(503));
        assert!(!e.message.is_empty(), "{kind}: upstream message expected");
    }
    mock.fail_next(ProviderKind::Anthropic, 1, 529);
    let e = list_err(provider(&mock, ProviderKind::Anthropic).as_ref()).await;
    assert_eq!((e.kind, e.status), (ProviderErrorKind::Upstream, Some(529)));
    for (kind, model) in [
        (ProviderKind::Openai, "no-such-model"),
        (ProviderKind::Anthropic, "claude-0"),
        (ProviderKind::Gemini, "gemini-0"),
        (ProviderKind::Cohere, "command-0"),
    ] {
        let e = provider(&mock, kind)
            .chat(&request(model, "hi"))
            .await
            .expect_err("404");
        assert_eq!(e.kind, ProviderErrorKind::NotFound, "{kind}: {e}");
        assert!(e.is_client_error());
    }
    mock.fail_next(ProviderKind::Openai, 1, 400);
    let e = provider(&mock, ProviderKind::Openai)
        .chat(&request("gpt-4o", "x"))
        .await
        .expect_err("400");
    assert_eq!(e.kind, ProviderErrorKind::InvalidRequest);
}

#[tokio::test]
async fn unreachable_upstream_is_connect() {
    let client = HttpClient::new().expect("client");
    let mut cfg = ProviderConfig::new(ProviderKind::Openai);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    cfg.base_url = Some(format!("http://127.0.0.1:{port}/v1"));
    let p = build_provider("dead", &cfg, Some(Secret::new("k")), &client).expect("provider");
    let e = p.list_models().await.expect_err("connect");
    assert_eq!(e.kind, ProviderErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("dead"));
}

/// Every error kind, triggered with a distinctive key and header value: neither may appear
/// in any error's `Display` or `Debug`, nor in the URL of any request.
#[tokio::test]
async fn no_key_in_any_error() {
    const KEY: &str = "sk-zq-DISTINCTIVE-KEY-0123456789";
    const HDR: &str = "hdr-DISTINCTIVE-VALUE-987";
    let mock = MockUpstream::start().await;
    let mut errors: Vec<ProviderError> = Vec::new();
    let mut headers = BTreeMap::new();
    headers.insert("X-Title".to_owned(), Secret::new(HDR));
    for kind in http_kinds() {
        mock.set_require_auth(kind, true);
        let p = provider_with(&mock, kind, KEY, 200, headers.clone());
        errors.push(list_err(p.as_ref()).await); // auth: the key is echoed (masked) by some
        mock.set_require_auth(kind, false);
        mock.set_malformed(kind, true);
        errors.push(list_err(p.as_ref()).await);
        mock.set_malformed(kind, false);
        mock.rate_limit_next(kind, 1, 1);
        errors.push(list_err(p.as_ref()).await);
        mock.fail_next(kind, 1, 500);
        errors.push(list_err(p.as_ref()).await);
        mock.fail_next(kind, 1, 400);
        errors.push(list_err(p.as_ref()).await);
        mock.set_hang(kind, true);
        errors.push(list_err(p.as_ref()).await);
        mock.set_hang(kind, false);
        for r in mock.requests(kind) {
            let url = format!("{}?{}", r.path, r.query.unwrap_or_default());
            assert!(!url.contains(KEY) && !url.contains(HDR), "{url}");
        }
    }
    let p = provider_with(&mock, ProviderKind::Openai, KEY, 2_000, headers.clone());
    mock.cut_stream_after(ProviderKind::Openai, Some(2));
    let chunks = collect(p.as_ref(), &request("gpt-4o", "one two three four")).await;
    errors.extend(chunks.into_iter().filter_map(Result::err));
    errors.push(
        p.chat(&request("missing-model", "x"))
            .await
            .expect_err("404"),
    );
    let mut cfg = ProviderConfig::new(ProviderKind::Openai);
    cfg.base_url = Some("http://127.0.0.1:1/v1".into());
    cfg.headers = headers;
    let dead = build_provider(
        "dead",
        &cfg,
        Some(Secret::new(KEY)),
        &HttpClient::new().expect("c"),
    )
    .expect("p");
    errors.push(dead.list_models().await.expect_err("connect"));
    let kinds: std::collections::HashSet<_> = errors.iter().map(|e| e.kind).collect();
    for k in [
        ProviderErrorKind::Auth,
        ProviderErrorKind::BadResponse,
        ProviderErrorKind::RateLimited,
        ProviderErrorKind::Upstream,
        ProviderErrorKind::InvalidRequest,
        ProviderErrorKind::Timeout,
        ProviderErrorKind::StreamInterrupted,
        ProviderErrorKind::NotFound,
        ProviderErrorKind::Connect,
    ] {
        assert!(kinds.contains(&k), "{k:?} not triggered");
    }
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(KEY) && !text.contains("DISTINCTIVE-KEY"),
            "{text}"
        );
        assert!(!text.contains(HDR), "{text}");
    }
    assert!(!format!("{p:?} {dead:?}").contains(KEY));
}

// ---------------------------------------------------------------- chat

const CHAT_KINDS: [(ProviderKind, &str, &str); 6] = [
    (ProviderKind::Openai, "openai", "gpt-4o"),
    (
        ProviderKind::Anthropic,
        "anthropic",
        "claude-sonnet-4-20250514",
    ),
    (ProviderKind::Gemini, "gemini", "gemini-2.0-flash"),
    (ProviderKind::Cohere, "cohere", "command-a-03-2025"),
    (ProviderKind::Azure, "azure", "gpt-4o"),
    (ProviderKind::Ollama, "ollama", "llama3.2:3b"),
];

#[tokio::test]
async fn chat_round_trips() {
    let mock = MockUpstream::start().await;
    for (kind, flavor, model) in CHAT_KINDS {
        let p = provider(&mock, kind);
        let r = p.chat(&request(model, "what is rust")).await.expect("chat");
        let msg = &r.choices[0].message;
        assert_eq!(
            msg.content.as_deref(),
            Some(format!("Hello from {flavor} {model}: what is rust").as_str()),
            "{kind}"
        );
        assert_eq!(
            r.choices[0].finish_reason.as_deref(),
            Some("stop"),
            "{kind}"
        );
        let u = r.usage.expect("usage");
        assert!(
            u.prompt_tokens > 0 && u.completion_tokens > 0,
            "{kind}: {u:?}"
        );
        assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    }
    // Anthropic got max_tokens and the system prompt in `system`.
    let body = mock
        .requests(ProviderKind::Anthropic)
        .pop()
        .and_then(|r| r.json())
        .expect("body");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["system"], "be brief");
    // Azure went to the deployment with api-version.
    let r = mock.requests(ProviderKind::Azure).pop().expect("azure");
    assert!(
        r.path
            .ends_with("/openai/deployments/gpt-4o/chat/completions"),
        "{}",
        r.path
    );
    assert_eq!(r.query.as_deref(), Some("api-version=2024-10-21"));
    // Gemini: key only in the header.
    let r = mock.requests(ProviderKind::Gemini).pop().expect("gemini");
    assert!(
        r.path
            .ends_with("/v1beta/models/gemini-2.0-flash:generateContent"),
        "{}",
        r.path
    );
    assert_eq!(r.header("x-goog-api-key"), Some(MockUpstream::API_KEY));
}

#[tokio::test]
async fn openai_pass_through_preserves_unknown_fields() {
    let mock = MockUpstream::start().await;
    let p = provider(&mock, ProviderKind::Openai);
    let mut req = request("gpt-4o", "hi");
    req.extra.insert("seed".into(), json!(42));
    req.extra
        .insert("x_vendor_flag".into(), json!({"a": [1, 2]}));
    let r = p.chat(&req).await.expect("chat");
    let body = mock
        .requests(ProviderKind::Openai)
        .pop()
        .and_then(|r| r.json())
        .expect("body");
    assert_eq!(body["seed"], 42);
    assert_eq!(body["x_vendor_flag"], json!({"a": [1, 2]}));
    assert!(body.get("stream").is_none());
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(v["object"], "chat.completion");
    let legacy = p
        .completion(json!({"model": "gpt-4o", "prompt": "say hi"}))
        .await
        .expect("completion");
    assert!(legacy.get("choices").is_some());
}

#[tokio::test]
async fn chat_streams() {
    let mock = MockUpstream::start().await;
    for (kind, flavor, model) in CHAT_KINDS {
        let p = provider(&mock, kind);
        let chunks = collect(p.as_ref(), &request(model, "tell me more")).await;
        assert!(
            chunks.iter().all(Result::is_ok),
            "{kind}: {:?}",
            chunks.iter().find(|c| c.is_err())
        );
        assert_eq!(
            text_of(&chunks),
            format!("Hello from {flavor} {model}: tell me more"),
            "{kind}"
        );
        assert_eq!(finish_of(&chunks).as_deref(), Some("stop"), "{kind}");
        assert!(chunks.len() > 3, "{kind}: streamed word by word");
        let first = chunks[0].as_ref().expect("first");
        assert_eq!(first.object, "chat.completion.chunk", "{kind}");
    }
    let anth = mock
        .requests(ProviderKind::Anthropic)
        .pop()
        .and_then(|r| r.json())
        .expect("body");
    assert_eq!(anth["stream"], true);
    let r = mock.requests(ProviderKind::Gemini).pop().expect("gemini");
    assert!(r.path.ends_with(":streamGenerateContent"), "{}", r.path);
    assert_eq!(r.query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn tool_calls_round_trip() {
    let mock = MockUpstream::start().await;
    for (kind, flavor, model) in CHAT_KINDS {
        let p = provider(&mock, kind);
        // Non-streaming: the model calls the first tool.
        let r = p
            .chat(&tool_request(model, "weather in Paris"))
            .await
            .expect("chat");
        let calls = r.choices[0].message.tool_calls.clone().expect("tool calls");
        assert_eq!(calls[0].function.name, "search", "{kind}");
        let args: Value = serde_json::from_str(&calls[0].function.arguments).expect("args json");
        assert_eq!(args, json!({"query": "weather in Paris"}), "{kind}");
        assert_eq!(
            r.choices[0].finish_reason.as_deref(),
            Some("tool_calls"),
            "{kind}"
        );

        // Streaming: the same call, arguments reassembled from deltas.
        let chunks = collect(p.as_ref(), &tool_request(model, "weather in Paris")).await;
        assert!(chunks.iter().all(Result::is_ok), "{kind}");
        let streamed = tool_calls_of(&chunks);
        assert_eq!(streamed.len(), 1, "{kind}: {streamed:?}");
        assert_eq!(streamed[0].1, "search");
        assert!(!streamed[0].0.is_empty(), "{kind}: tool call id");
        let args: Value = serde_json::from_str(&streamed[0].2).expect("streamed args json");
        assert_eq!(args, json!({"query": "weather in Paris"}), "{kind}");
        assert_eq!(finish_of(&chunks).as_deref(), Some("tool_calls"), "{kind}");

        // Second turn: the tool result goes back in the provider's format.
        let mut follow = tool_request(model, "weather in Paris");
        follow.messages.push(
            serde_json::from_value(json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": calls[0].id, "type": "function",
                "function": {"name": "search", "arguments": calls[0].function.arguments}}]}))
            .expect("assistant"),
        );
        follow.messages.push(
            serde_json::from_value(json!({"role": "tool", "tool_call_id": calls[0].id,
            "content": "sunny"}))
            .expect("tool"),
        );
        let r = p.chat(&follow).await.expect("second turn");
        let text = r.choices[0].message.content.clone().unwrap_or_default();
        assert!(text.contains("sunny"), "{kind} ({flavor}): {text}");
    }
}

#[tokio::test]
async fn cut_streams_surface_stream_interrupted() {
    let mock = MockUpstream::start().await;
    for (kind, flavor, model) in CHAT_KINDS {
        mock.cut_stream_after(kind, Some(3));
        let p = provider(&mock, kind);
        let chunks = collect(p.as_ref(), &request(model, "a b c d e f g h i j")).await;
        let last = chunks
            .last()
            .expect("items")
            .as_ref()
            .expect_err("error at the end");
        assert_eq!(
            last.kind,
            ProviderErrorKind::StreamInterrupted,
            "{kind}: {last}"
        );
        assert!(chunks[..chunks.len() - 1].iter().all(Result::is_ok));
        let full = format!("Hello from {flavor} {model}: a b c d e f g h i j");
        let got = text_of(&chunks);
        assert!(
            full.starts_with(&got) && got.len() < full.len(),
            "{kind}: {got}"
        );
        mock.cut_stream_after(kind, None);
    }
}

#[tokio::test]
async fn upstream_error_events_end_the_stream_with_an_error() {
    let mock = MockUpstream::start().await;
    for (kind, model) in [
        (ProviderKind::Openai, "gpt-4o"),
        (ProviderKind::Anthropic, "claude-sonnet-4-20250514"),
        (ProviderKind::Gemini, "gemini-2.0-flash"),
    ] {
        mock.error_stream_after(kind, Some(2));
        let chunks = collect(provider(&mock, kind).as_ref(), &request(model, "a b c d e")).await;
        let last = chunks.last().expect("items").as_ref().expect_err("error");
        assert!(last.is_retryable(), "{kind}: {last}");
        assert_ne!(
            last.kind,
            ProviderErrorKind::StreamInterrupted,
            "{kind}: a typed error, not a cut"
        );
    }
}

#[tokio::test]
async fn dropping_a_stream_cancels_the_upstream() {
    let mock = MockUpstream::start().await;
    mock.set_stream_interval(ProviderKind::Anthropic, Duration::from_millis(20));
    let p = provider(&mock, ProviderKind::Anthropic);
    let mut s = p
        .chat_stream(&request(
            "claude-sonnet-4-20250514",
            "one two three four five six seven",
        ))
        .await
        .expect("stream");
    let first = s.next().await.expect("one chunk");
    assert!(first.is_ok());
    drop(s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while mock.streams_cancelled() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream stream was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn health_is_cheap_and_authenticated() {
    let mock = MockUpstream::start().await;
    mock.set_page_size(ProviderKind::Anthropic, 2);
    for kind in http_kinds() {
        provider(&mock, kind)
            .health()
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
    let r = mock
        .requests(ProviderKind::Anthropic)
        .pop()
        .expect("anthropic");
    assert_eq!(r.query.as_deref(), Some("limit=1"));
    let r = mock.requests(ProviderKind::Gemini).pop().expect("gemini");
    assert_eq!(r.query.as_deref(), Some("pageSize=1"));
}

// ---------------------------------------------------------------- ollama, redirects, mock

#[tokio::test]
async fn ollama_sends_a_configured_key_and_bounds_show_concurrency() {
    let mock = MockUpstream::start().await;
    // Ollama itself has no auth; a key (for a proxy in front of it) goes as a bearer token
    // on every call, /api/tags and each /api/show.
    mock.set_require_auth(ProviderKind::Ollama, true);
    let mut models: Vec<MockModel> = (0..12)
        .map(|i| MockModel::new(format!("m{i}:7b")).context_length(8_192 + i))
        .collect();
    models.push(MockModel::new("qwen2.5:7b").context_length(32_768));
    mock.set_models(ProviderKind::Ollama, models);
    // Every /api/show waits, so calls that are allowed to overlap do.
    mock.set_latency(ProviderKind::Ollama, Duration::from_millis(30));
    let listed = provider(&mock, ProviderKind::Ollama)
        .list_models()
        .await
        .expect("list");
    assert_eq!(listed.len(), 13);
    assert_eq!(find(&listed, "m11:7b").context_length, Some(8_203));
    let reqs = mock.requests(ProviderKind::Ollama);
    assert_eq!(
        reqs.iter()
            .filter(|r| r.path.ends_with("/api/tags"))
            .count(),
        1
    );
    let shows: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/api/show"))
        .collect();
    assert_eq!(shows.len(), 13, "one /api/show per model");
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer mock-valid-key")));
    let bodies: Vec<Value> = shows.iter().filter_map(|r| r.json()).collect();
    assert!(bodies.iter().any(|b| b == &json!({"model": "qwen2.5:7b"})));
    let peak = mock.peak_in_flight(ProviderKind::Ollama);
    assert!(
        (1..=modelgate_providers::OLLAMA_SHOW_CONCURRENCY).contains(&peak),
        "at most {} /api/show calls at once, saw {peak}",
        modelgate_providers::OLLAMA_SHOW_CONCURRENCY
    );
}

#[tokio::test]
async fn redirects_to_another_host_are_not_followed() {
    let mock = MockUpstream::start().await;
    let elsewhere = MockUpstream::start().await;
    // `localhost` and another port: a different origin from the 127.0.0.1 base URL.
    let other = format!("http://localhost:{}", elsewhere.addr().port());
    for kind in http_kinds() {
        let location = format!("{other}{}", listing_path(&elsewhere, kind));
        mock.redirect_next(kind, 1, &location);
        let e = list_err(provider(&mock, kind).as_ref()).await;
        assert_eq!(
            (e.kind, e.status),
            (ProviderErrorKind::BadResponse, Some(307)),
            "{kind}: {e}"
        );
        assert!(!e.is_retryable());
    }
    assert_eq!(
        http_kinds().map(|k| elsewhere.hits(k)).sum::<usize>(),
        0,
        "the key must never reach another host"
    );
    // Within the same origin a redirect is followed, with the key.
    let same = format!("{}/models", mock.base_url(ProviderKind::Openai));
    mock.redirect_next(ProviderKind::Openai, 1, &same);
    let before = mock.requests(ProviderKind::Openai).len();
    let models = provider(&mock, ProviderKind::Openai)
        .list_models()
        .await
        .expect("same-origin redirect followed");
    assert!(!models.is_empty());
    let reqs = mock.requests(ProviderKind::Openai).split_off(before);
    assert_eq!(reqs.len(), 2);
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer mock-valid-key")));
}

/// The path of the listing an adapter of `kind` calls on `mock` (a redirect target).
fn listing_path(mock: &MockUpstream, kind: ProviderKind) -> String {
    let base = mock.base_url(kind);
    let path = base.trim_start_matches(&mock.url());
    match kind {
        ProviderKind::Anthropic | ProviderKind::Cohere => format!("{path}/v1/models"),
        ProviderKind::Gemini => format!("{path}/v1beta/models"),
        ProviderKind::Azure => format!("{path}/openai/models?api-version=2024-10-21"),
        ProviderKind::Ollama => format!("{path}/api/tags"),
        _ => format!("{path}/models"),
    }
}

fn mock_kind(settings: modelgate_types::MockSettings, timeout_ms: u64) -> Arc<dyn Provider> {
    let mut cfg = ProviderConfig::new(ProviderKind::Mock);
    cfg.mock = Some(settings);
    cfg.timeout_ms = timeout_ms;
    build_provider("demo", &cfg, None, &HttpClient::new().expect("client")).expect("mock")
}

#[tokio::test]
async fn mock_kind_lists_its_models_and_times_out_like_an_upstream() {
    let settings = modelgate_types::MockSettings {
        models: vec!["mock-small".into(), "mock-large".into()],
        ..Default::default()
    };
    let p = mock_kind(settings.clone(), 5_000);
    assert_eq!(p.kind(), ProviderKind::Mock);
    let models = p.list_models().await.expect("list");
    assert_eq!(ids(&models), ["mock-small", "mock-large"]);
    let m = &models[0];
    assert_eq!(m.provider, "demo");
    assert_eq!(
        (m.context_length, m.max_tokens),
        (
            Some(modelgate_providers::MOCK_CONTEXT_LENGTH),
            Some(modelgate_providers::MOCK_MAX_TOKENS)
        )
    );
    assert_eq!((m.input_cost, m.output_cost), (Some(0.0), Some(0.0)));
    assert!(m.supports_chat && m.has_capability(Capability::ToolUse));
    assert_eq!(m.status, Some(ModelStatus::Active));
    // A latency longer than timeout_ms behaves like a hung upstream: Timeout.
    let slow = mock_kind(
        modelgate_types::MockSettings {
            latency_ms: 60_000,
            ..settings
        },
        50,
    );
    let e = slow.list_models().await.expect_err("timeout");
    assert_eq!(e.kind, ProviderErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("demo"));
    let e = slow
        .chat(&request("mock-small", "hi"))
        .await
        .expect_err("chat timeout");
    assert_eq!(e.kind, ProviderErrorKind::Timeout);
}

#[tokio::test]
async fn oversized_bodies_and_stream_events_are_bad_responses() {
    let mock = MockUpstream::start().await;
    // A model list over the response cap (32 MiB): refused, not buffered without bound.
    let huge = "x".repeat(modelgate_providers::MAX_RESPONSE_BYTES + 1);
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("gpt-huge").extra(json!({ "description": huge })),
    );
    let e = list_err(provider(&mock, ProviderKind::Openai).as_ref()).await;
    assert_eq!(e.kind, ProviderErrorKind::BadResponse, "{e}");
    assert!(e.message.contains("larger than"), "{e}");
    mock.remove_model(ProviderKind::Openai, "gpt-huge");
    // One stream event over the event cap (8 MiB): the stream ends with BadResponse.
    let word = "y".repeat(9 * 1024 * 1024);
    let chunks = collect(
        provider(&mock, ProviderKind::Openai).as_ref(),
        &request("gpt-4o", &word),
    )
    .await;
    let last = chunks.last().expect("items").as_ref().expect_err("error");
    assert_eq!(last.kind, ProviderErrorKind::BadResponse, "{last}");
    assert!(chunks
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .all(|c| c
            .choices
            .iter()
            .all(|ch| ch.delta.content.as_deref().map_or(0, str::len) < 1024)));
}
