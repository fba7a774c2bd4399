//! Lookup of real-world id variants against the embedded snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use modelgate_catalog::{Catalog, MatchKind, MatchScope};
use modelgate_types::{Capability, Model, ModelSource, ModelStatus, ProviderKind};

fn resolve(kind: ProviderKind, id: &str) -> (String, String, MatchKind, MatchScope, bool) {
    let catalog = Catalog::embedded();
    let m = catalog
        .lookup(kind, id)
        .unwrap_or_else(|| panic!("{kind} {id} should resolve"));
    (
        m.entry.provider.to_string(),
        m.entry.id.clone(),
        m.kind,
        m.scope,
        m.prices_apply,
    )
}

fn enriched(kind: ProviderKind, provider: &str, id: &str) -> Model {
    let mut model = Model::new(provider, id);
    Catalog::embedded().enrich(kind, &mut model);
    model
}

#[test]
fn dated_openai_snapshot_has_gpt_4o_facts() {
    // The snapshot has its own record for this date, so that one is used.
    let (p, id, kind, scope, prices) = resolve(ProviderKind::Openai, "gpt-4o-2024-08-06");
    assert_eq!((p.as_str(), id.as_str()), ("openai", "gpt-4o-2024-08-06"));
    assert_eq!(
        (kind, scope, prices),
        (MatchKind::Exact, MatchScope::Home, true)
    );

    let m = enriched(ProviderKind::Openai, "openai", "gpt-4o-2024-08-06");
    assert_eq!(m.input_cost, Some(0.0025));
    assert_eq!(m.output_cost, Some(0.01));
    assert_eq!(m.context_length, Some(128_000));
    assert_eq!(m.max_tokens, Some(16_384));
    assert_eq!(m.family.as_deref(), Some("gpt"));
    assert_eq!(m.knowledge_cutoff.as_deref(), Some("2023-09"));
    assert_eq!(m.created_at.as_deref(), Some("2024-08-06T00:00:00Z"));
    assert!(m.supports_chat);
    for cap in [
        Capability::FunctionCalling,
        Capability::ToolUse,
        Capability::Vision,
        Capability::JsonMode,
        Capability::StructuredOutput,
        Capability::Streaming,
    ] {
        assert!(m.has_capability(cap), "{cap}");
    }
    assert!(!m.has_capability(Capability::Reasoning));
    assert_eq!(m.source, ModelSource::Discovered, "enrich keeps the source");
}

#[test]
fn dated_snapshot_without_its_own_record_falls_back_to_the_alias() {
    let (p, id, kind, _, prices) = resolve(ProviderKind::Openai, "gpt-4o-2024-02-30");
    assert_eq!((p.as_str(), id.as_str()), ("openai", "gpt-4o"));
    assert_eq!(kind, MatchKind::Snapshot);
    assert!(prices);
    let m = enriched(ProviderKind::Openai, "openai", "gpt-4o-2099-01-01");
    assert_eq!(m.input_cost, Some(0.0025));
}

#[test]
fn unknown_ids_stay_null() {
    let catalog = Catalog::embedded();
    for (kind, id) in [
        (ProviderKind::Openai, "gpt-unknown-9000"),
        (ProviderKind::Anthropic, "claude-0-nonexistent"),
        (ProviderKind::Ollama, "my-finetune:7b"),
        (ProviderKind::OpenaiCompatible, ""),
        (ProviderKind::OpenaiCompatible, "   "),
        (ProviderKind::Mock, "mock-small"),
    ] {
        assert!(catalog.lookup(kind, id).is_none(), "{kind} {id:?}");
    }
    let m = enriched(ProviderKind::Openai, "openai", "gpt-unknown-9000");
    assert_eq!(m, Model::new("openai", "gpt-unknown-9000"));
    assert!(m.input_cost.is_none() && m.context_length.is_none() && m.capabilities.is_empty());
}

#[test]
fn a_dated_id_never_matches_another_date() {
    // Anthropic has two dated Claude 3.5 Sonnet records and no undated alias: an unknown
    // date is a different model, not the nearest one.
    assert!(Catalog::embedded()
        .lookup(ProviderKind::Anthropic, "claude-3-5-sonnet-20250101")
        .is_none());
}

#[test]
fn latest_alias_resolves_to_the_newest_snapshot() {
    let (p, id, kind, _, _) = resolve(ProviderKind::Anthropic, "claude-3-5-sonnet-latest");
    assert_eq!(
        (p.as_str(), id.as_str()),
        ("anthropic", "claude-3-5-sonnet-20241022")
    );
    assert_eq!(kind, MatchKind::Snapshot);
    let (_, id, kind, _, _) = resolve(ProviderKind::Anthropic, "claude-3-5-sonnet-20240620");
    assert_eq!(
        (id.as_str(), kind),
        ("claude-3-5-sonnet-20240620", MatchKind::Exact)
    );
    // Mistral lists `-latest` aliases itself.
    let (_, id, _, _, _) = resolve(ProviderKind::Mistral, "mistral-large");
    assert_eq!(id, "mistral-large-latest");
}

#[test]
fn gemini_models_prefix() {
    let (p, id, kind, scope, _) = resolve(ProviderKind::Gemini, "models/gemini-2.5-pro");
    assert_eq!((p.as_str(), id.as_str()), ("google", "gemini-2.5-pro"));
    assert_eq!((kind, scope), (MatchKind::Exact, MatchScope::Home));
    // Stable version suffixes fall back to the alias.
    let (_, id, kind, _, _) = resolve(ProviderKind::Gemini, "models/gemini-2.0-flash-001");
    assert_eq!(
        (id.as_str(), kind),
        ("gemini-2.0-flash", MatchKind::Snapshot)
    );
    let m = enriched(
        ProviderKind::Gemini,
        "gemini",
        "models/gemini-embedding-001",
    );
    assert!(m.has_capability(Capability::Embeddings));
    assert!(!m.supports_chat);
    assert_eq!(
        m.max_tokens, None,
        "an embedding's output 'limit' is its dimension"
    );
}

#[test]
fn openrouter_vendor_ids() {
    // Listed by OpenRouter itself: its record and price.
    let (p, id, kind, scope, prices) =
        resolve(ProviderKind::Openrouter, "anthropic/claude-3-haiku");
    assert_eq!(
        (p.as_str(), id.as_str()),
        ("openrouter", "anthropic/claude-3-haiku")
    );
    assert_eq!(
        (kind, scope, prices),
        (MatchKind::Exact, MatchScope::Home, true)
    );
    // Not in the OpenRouter snapshot: the vendor's own record, facts without its price.
    let (p, id, kind, scope, prices) =
        resolve(ProviderKind::Openrouter, "anthropic/claude-3.5-sonnet");
    assert_eq!(
        (p.as_str(), id.as_str()),
        ("anthropic", "claude-3-5-sonnet-20241022")
    );
    assert_eq!(
        (kind, scope, prices),
        (MatchKind::Snapshot, MatchScope::Named, false)
    );
    let m = enriched(
        ProviderKind::Openrouter,
        "openrouter",
        "anthropic/claude-3.5-sonnet",
    );
    assert_eq!(m.context_length, Some(200_000));
    assert_eq!(
        m.input_cost, None,
        "another seller's price is not OpenRouter's"
    );
    assert_eq!(m.status, Some(ModelStatus::Deprecated));
    // Routing variants: same model, but the price may differ.
    let (_, id, _, _, prices) = resolve(
        ProviderKind::Openrouter,
        "meta-llama/llama-3.2-3b-instruct:nitro",
    );
    assert_eq!(
        (id.as_str(), prices),
        ("meta-llama/llama-3.2-3b-instruct", false)
    );
    let (_, id, _, _, prices) = resolve(
        ProviderKind::Openrouter,
        "meta-llama/llama-3.2-3b-instruct:free",
    );
    assert_eq!(
        (id.as_str(), prices),
        ("meta-llama/llama-3.2-3b-instruct:free", true)
    );
}

#[test]
fn ollama_tags() {
    // The snapshot has Llama 3.2 3B (no Ollama record): facts, never a price.
    let (_, id, _, scope, prices) = resolve(ProviderKind::Ollama, "llama3.2:3b");
    assert!(id.to_ascii_lowercase().contains("llama-3.2-3b"), "{id}");
    assert_eq!((scope, prices), (MatchScope::Any, false));
    let m = enriched(ProviderKind::Ollama, "local", "llama3.2:3b");
    assert_eq!(m.context_length, Some(128_000).or(m.context_length));
    assert!(m.context_length.is_some());
    assert_eq!(m.input_cost, None);
    // Quantisation tags are packaging.
    let (_, id2, _, _, _) = resolve(ProviderKind::Ollama, "llama3.2:3b-instruct-q4_K_M");
    assert!(id2.to_ascii_lowercase().contains("llama-3.2-3b"), "{id2}");
    // Ollama's own naming, as its cloud lists it.
    let (p, id, kind, _, _) = resolve(ProviderKind::Ollama, "gpt-oss:20b");
    assert_eq!(
        (p.as_str(), id.as_str(), kind),
        ("ollama-cloud", "gpt-oss:20b", MatchKind::Exact)
    );
    let (_, id, _, _, _) = resolve(ProviderKind::Ollama, "gemma3:27b");
    assert_eq!(id, "gemma3:27b");
    // `llama3.1:latest` is Llama 3.1 8B, but nothing in the id says which size: no guess.
    assert!(Catalog::embedded()
        .lookup(ProviderKind::Ollama, "llama3.1:latest")
        .is_none());
}

#[test]
fn self_hosted_kinds_only_match_open_weights() {
    // `gpt-4o` is not open weights: a local server listing that name is something else.
    assert!(Catalog::embedded()
        .lookup(ProviderKind::Vllm, "gpt-4o")
        .is_none());
    let (_, _, _, _, prices) = resolve(ProviderKind::Vllm, "Qwen/Qwen3-32B");
    assert!(!prices);
}

#[test]
fn bedrock_ids() {
    let (p, id, kind, scope, prices) = resolve(
        ProviderKind::OpenaiCompatible,
        "anthropic.claude-3-haiku-20240307-v1:0",
    );
    assert_eq!(
        (p.as_str(), id.as_str()),
        ("anthropic", "claude-3-haiku-20240307")
    );
    assert_eq!(
        (kind, scope, prices),
        (MatchKind::Normalized, MatchScope::Named, false)
    );
    // Region-prefixed ids Bedrock lists itself.
    let (p, id, kind, _, _) = resolve(
        ProviderKind::OpenaiCompatible,
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    );
    assert_eq!(
        (p.as_str(), id.as_str(), kind),
        (
            "amazon-bedrock",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            MatchKind::Exact
        )
    );
    let m = enriched(
        ProviderKind::OpenaiCompatible,
        "gateway",
        "anthropic.claude-3-haiku-20240307-v1:0",
    );
    assert_eq!(m.context_length, Some(200_000));
    assert!(m.has_capability(Capability::Vision));
}

#[test]
fn azure_names() {
    let (p, id, _, scope, prices) = resolve(ProviderKind::Azure, "gpt-4o");
    assert_eq!(
        (p.as_str(), id.as_str(), scope, prices),
        ("azure", "gpt-4o", MatchScope::Home, true)
    );
    // Azure spells GPT-3.5 `gpt-35`.
    let (_, id, _, _, _) = resolve(ProviderKind::Azure, "gpt-35-turbo-0125");
    assert_eq!(id, "gpt-3.5-turbo-0125");
    // Not in Azure's snapshot, but in OpenAI's: Azure bills OpenAI's list price.
    let (p, _, _, scope, prices) = resolve(ProviderKind::Azure, "gpt-4o-2024-08-06");
    assert_eq!(
        (p.as_str(), scope, prices),
        ("openai", MatchScope::Home, true)
    );
}

#[test]
fn first_party_model_found_elsewhere_keeps_facts_not_price() {
    // Claude 3.5 Haiku is only listed by Vertex in this snapshot.
    let (p, id, _, scope, prices) = resolve(ProviderKind::Anthropic, "claude-3-5-haiku-20241022");
    assert_eq!(
        (p.as_str(), id.as_str()),
        ("google-vertex", "claude-3-5-haiku@20241022")
    );
    assert_eq!((scope, prices), (MatchScope::Any, false));
}

#[test]
fn merge_keeps_what_the_provider_reported() {
    let mut model = Model::new("openai", "gpt-4o");
    model.context_length = Some(64_000);
    model.input_cost = Some(0.5);
    model.capabilities = vec![Capability::AudioOutput];
    model.created_at = Some("2024-05-13T12:00:00Z".into());
    Catalog::embedded().enrich(ProviderKind::Openai, &mut model);
    assert_eq!(model.context_length, Some(64_000));
    assert_eq!(model.input_cost, Some(0.5));
    assert_eq!(model.output_cost, Some(0.01));
    assert_eq!(model.max_tokens, Some(16_384));
    assert_eq!(model.name, "GPT-4o");
    assert_eq!(model.created_at.as_deref(), Some("2024-05-13T12:00:00Z"));
    assert!(model.has_capability(Capability::AudioOutput));
    assert!(model.has_capability(Capability::ToolUse));
    let mut sorted = model.capabilities.clone();
    sorted.sort();
    assert_eq!(model.capabilities, sorted);
}

#[test]
fn reasoning_and_deprecated_flags() {
    let m = enriched(ProviderKind::Openai, "openai", "o3-mini");
    assert!(m.has_capability(Capability::Reasoning));
    let m = enriched(
        ProviderKind::Anthropic,
        "anthropic",
        "claude-3-haiku-20240307",
    );
    assert!(m.status.is_some());
    let m = enriched(ProviderKind::Openai, "openai", "text-embedding-3-small");
    assert!(m.has_capability(Capability::Embeddings));
    assert!(!m.has_capability(Capability::Streaming));
    assert!(!m.supports_chat);
}
