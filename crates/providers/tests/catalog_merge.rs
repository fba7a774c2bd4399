//! Catalog facts merged into what each adapter really lists: every kind's listing (from the
//! mock upstream) enriched with the embedded models.dev snapshot, the way discovery does it
//! (`Catalog::enrich(kind, model)` per listed model). Provider-reported facts win, prices
//! only come from the provider's own catalog record, and unknown ids stay `null`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use modelgate_catalog::Catalog;
use modelgate_providers::{build_provider, HttpClient, Provider};
use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::{MockSettings, Model, ProviderConfig, ProviderKind, Secret};
use serde_json::json;

/// Every kind that talks HTTP (all but the in-process `mock`): derived from
/// `ProviderKind::ALL`, so a new kind is covered without editing this list.
fn http_kinds() -> impl Iterator<Item = ProviderKind> {
    ProviderKind::ALL
        .into_iter()
        .filter(|k| *k != ProviderKind::Mock)
}

fn provider(mock: &MockUpstream, kind: ProviderKind) -> Arc<dyn Provider> {
    let mut cfg = ProviderConfig::new(kind);
    cfg.base_url = Some(mock.base_url(kind));
    let client = HttpClient::new().expect("client");
    build_provider(
        kind.as_str(),
        &cfg,
        Some(Secret::new(MockUpstream::API_KEY)),
        &client,
    )
    .expect("provider")
}

/// (as listed, as enriched) for every model the adapter lists.
async fn listed_and_enriched(mock: &MockUpstream, kind: ProviderKind) -> Vec<(Model, Model)> {
    let catalog = Catalog::embedded();
    provider(mock, kind)
        .list_models()
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
        .into_iter()
        .map(|m| {
            let mut e = m.clone();
            catalog.enrich(kind, &mut e);
            (m, e)
        })
        .collect()
}

async fn enriched(mock: &MockUpstream, kind: ProviderKind, id: &str) -> Model {
    listed_and_enriched(mock, kind)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{kind}: {id} not listed"))
}

#[tokio::test]
async fn provider_facts_win_over_the_catalog_for_every_kind() {
    let mock = MockUpstream::start().await;
    for kind in http_kinds() {
        let pairs = listed_and_enriched(&mock, kind).await;
        assert!(!pairs.is_empty(), "{kind}");
        for (before, after) in &pairs {
            let what = format!("{kind} {}", before.id);
            assert_eq!((&after.id, &after.provider), (&before.id, &before.provider));
            for (field, b, a) in [
                (
                    "context_length",
                    before.context_length,
                    after.context_length,
                ),
                ("max_tokens", before.max_tokens, after.max_tokens),
            ] {
                if b.is_some() {
                    assert_eq!(a, b, "{what}: provider's {field} must win");
                }
            }
            for (field, b, a) in [
                ("input_cost", before.input_cost, after.input_cost),
                ("output_cost", before.output_cost, after.output_cost),
            ] {
                if b.is_some() {
                    assert_eq!(a, b, "{what}: provider's {field} must win");
                }
            }
            if before.created_at.is_some() {
                assert_eq!(after.created_at, before.created_at, "{what}");
            }
            if before.name != before.id {
                assert_eq!(after.name, before.name, "{what}: provider's name wins");
            }
            if before.status.is_some() {
                assert_eq!(after.status, before.status, "{what}");
            }
            if before.supports_chat {
                assert!(after.supports_chat, "{what}");
            }
            for c in &before.capabilities {
                assert!(after.has_capability(*c), "{what}: lost {c}");
            }
        }
    }
}

#[tokio::test]
async fn catalog_facts_fill_what_each_kind_does_not_report() {
    let mock = MockUpstream::start().await;

    // OpenAI reports only id/created: the dated snapshot gets GPT-4o's facts and prices.
    let m = enriched(&mock, ProviderKind::Openai, "gpt-4o-2024-08-06").await;
    assert_eq!((m.input_cost, m.output_cost), (Some(0.0025), Some(0.01)));
    assert_eq!(
        (m.context_length, m.max_tokens),
        (Some(128_000), Some(16_384))
    );
    assert_eq!(m.family.as_deref(), Some("gpt"));
    assert_eq!(m.knowledge_cutoff.as_deref(), Some("2023-09"));
    assert_eq!(
        m.created_at.as_deref(),
        Some("2024-08-04T23:38:39Z"),
        "provider's"
    );

    // Anthropic reports limits; the catalog adds prices, family and cut-off.
    let m = enriched(&mock, ProviderKind::Anthropic, "claude-sonnet-4-20250514").await;
    assert_eq!((m.input_cost, m.output_cost), (Some(0.003), Some(0.015)));
    assert_eq!(m.name, "Claude Sonnet 4");
    assert_eq!(m.family.as_deref(), Some("claude-sonnet"));
    assert_eq!(m.knowledge_cutoff.as_deref(), Some("2025-03-31"));

    // Gemini reports limits under its own names; prices come from models.dev's `google`.
    let m = enriched(&mock, ProviderKind::Gemini, "gemini-2.0-flash").await;
    assert_eq!((m.input_cost, m.output_cost), (Some(0.0001), Some(0.0004)));
    assert_eq!(m.context_length, Some(1_048_576));
    assert_eq!(m.family.as_deref(), Some("gemini-flash"));

    // Cohere reports the context length only; the output limit is the catalog's.
    let m = enriched(&mock, ProviderKind::Cohere, "command-a-03-2025").await;
    assert_eq!((m.input_cost, m.output_cost), (Some(0.0025), Some(0.01)));
    assert_eq!(
        (m.context_length, m.max_tokens),
        (Some(256_000), Some(8_000))
    );

    // Mistral's own max_context_length (131072) wins over models.dev's 262144.
    let m = enriched(&mock, ProviderKind::Mistral, "mistral-large-latest").await;
    assert_eq!(m.context_length, Some(131_072));
    assert_eq!((m.input_cost, m.output_cost), (Some(0.0005), Some(0.0015)));

    // Groq: its own context_window / max_completion_tokens, the catalog's prices.
    let m = enriched(&mock, ProviderKind::Groq, "llama-3.3-70b-versatile").await;
    assert_eq!(
        (m.context_length, m.max_tokens),
        (Some(131_072), Some(32_768))
    );
    assert_eq!(
        (m.input_cost, m.output_cost),
        (Some(0.00059), Some(0.00079))
    );

    // Azure's list has no limits or prices: the azure (else openai) record supplies them.
    let m = enriched(&mock, ProviderKind::Azure, "gpt-4o").await;
    assert_eq!(
        (m.input_cost, m.context_length),
        (Some(0.0025), Some(128_000))
    );

    // Self-hosted kinds get facts (family, cut-off) but never a price.
    let m = enriched(&mock, ProviderKind::Ollama, "qwen2.5:7b").await;
    assert_eq!(m.context_length, Some(32_768), "Ollama's /api/show wins");
    assert_eq!(m.knowledge_cutoff.as_deref(), Some("2024-04"));
    assert_eq!((m.input_cost, m.output_cost), (None, None));
    let m = enriched(&mock, ProviderKind::Vllm, "Qwen/Qwen2.5-7B-Instruct").await;
    assert_eq!(m.context_length, Some(32_768), "vLLM's max_model_len wins");
    assert_eq!(m.knowledge_cutoff.as_deref(), Some("2024-04"));
    assert_eq!((m.input_cost, m.output_cost), (None, None));

    // An OpenAI model behind another seller: OpenAI's facts, not OpenAI's price.
    for kind in [ProviderKind::Deepseek, ProviderKind::OpenaiCompatible] {
        let m = enriched(&mock, kind, "gpt-4o").await;
        assert_eq!(m.context_length, Some(128_000), "{kind}");
        assert_eq!((m.input_cost, m.output_cost), (None, None), "{kind}");
    }
}

#[tokio::test]
async fn openrouter_prices_win_over_the_catalog() {
    let mock = MockUpstream::start().await;
    mock.add_model(
        ProviderKind::Openrouter,
        MockModel::new("openai/gpt-4o")
            .display_name("OpenAI: GPT-4o")
            .context_length(128_000)
            .extra(json!({"pricing": {"prompt": "0.000001", "completion": "0.000002"}})),
    );
    let m = enriched(&mock, ProviderKind::Openrouter, "openai/gpt-4o").await;
    // models.dev says 0.0025 / 0.01 per 1K; OpenRouter's own per-token strings win.
    assert_eq!((m.input_cost, m.output_cost), (Some(0.001), Some(0.002)));
    assert_eq!(
        m.knowledge_cutoff.as_deref(),
        Some("2023-09"),
        "facts still merged"
    );
}

#[tokio::test]
async fn unknown_ids_stay_null_for_every_kind() {
    let mock = MockUpstream::start().await;
    let catalog = Catalog::embedded();
    const ID: &str = "zz-unknown-model-9";
    for kind in http_kinds() {
        mock.add_model(kind, MockModel::new(ID));
        let (before, after) = listed_and_enriched(&mock, kind)
            .await
            .into_iter()
            .find(|(m, _)| m.id == ID)
            .unwrap_or_else(|| panic!("{kind}: {ID} not listed"));
        assert!(catalog.lookup(kind, ID).is_none(), "{kind}");
        assert_eq!(after, before, "{kind}: nothing guessed for an unknown id");
        if kind != ProviderKind::Openrouter {
            // OpenRouter's listing carries its own (zero) prices; nobody else reports one.
            assert_eq!(
                (after.input_cost, after.output_cost),
                (None, None),
                "{kind}"
            );
        }
    }
}

#[tokio::test]
async fn the_mock_kind_has_no_catalog_record() {
    let mut cfg = ProviderConfig::new(ProviderKind::Mock);
    cfg.mock = Some(MockSettings::default());
    let p = build_provider("demo", &cfg, None, &HttpClient::new().expect("client")).expect("mock");
    let catalog = Catalog::embedded();
    for m in p.list_models().await.expect("list") {
        let mut e = m.clone();
        assert!(
            catalog.enrich(ProviderKind::Mock, &mut e).is_none(),
            "{}",
            m.id
        );
        assert_eq!(e, m);
    }
}
