//! The embedded snapshot: it parses, its counts, provenance, conversion to `Model`, and
//! tolerant parsing of other documents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use expect_test::expect;
use modelgate_catalog::{Catalog, CatalogError, SNAPSHOT_DATE};
use modelgate_types::{ModelSource, ProviderKind};

// Pinned to the 2026-07-02 snapshot: update both when `cargo xtask catalog` refreshes it.
const PROVIDERS: usize = 147;
const MODELS: usize = 5_276;

#[test]
fn embedded_snapshot_parses_with_known_counts() {
    let fresh = Catalog::load_embedded().expect("the compiled-in snapshot parses");
    assert_eq!(fresh.provider_count(), PROVIDERS);
    assert_eq!(fresh.model_count(), MODELS);
    let catalog = Catalog::embedded();
    assert_eq!(catalog.provider_count(), PROVIDERS);
    assert_eq!(catalog.model_count(), MODELS);
    assert_eq!(SNAPSHOT_DATE, "2026-07-02");
    let prov = catalog.provenance();
    assert_eq!(prov.source, "embedded");
    assert_eq!(prov.snapshot_date.as_deref(), Some("2026-07-02"));
    assert!(modelgate_catalog::DATA_LICENSE.contains("MIT License"));
    assert!(
        std::sync::Arc::ptr_eq(&catalog, &Catalog::embedded()),
        "parsed once"
    );
}

#[test]
fn provider_ids_the_lookup_relies_on_exist() {
    let catalog = Catalog::embedded();
    for kind in ProviderKind::ALL {
        for id in modelgate_catalog::home_providers(kind) {
            assert!(catalog.provider(id).is_some(), "{kind} → {id}");
        }
    }
    for id in [
        "amazon-bedrock",
        "ollama-cloud",
        "llama",
        "alibaba",
        "google-vertex",
    ] {
        assert!(catalog.provider(id).is_some(), "{id}");
    }
    assert_eq!(
        catalog.provider("openai").and_then(|p| p.name.as_deref()),
        Some("OpenAI")
    );
}

#[test]
fn all_models_are_catalog_models_with_models_dev_provider_ids() {
    let catalog = Catalog::embedded();
    let models = catalog.all_models();
    assert_eq!(models.len(), MODELS);
    assert!(models.iter().all(|m| m.source == ModelSource::Catalog));
    assert!(models
        .iter()
        .all(|m| catalog.get(&m.provider, &m.id).is_some()));
    assert!(models
        .iter()
        .all(|m| m.input_cost.is_none_or(|c| c >= 0.0) && m.context_length != Some(0)));
    let priced = models.iter().filter(|m| m.input_cost.is_some()).count();
    assert!(priced > MODELS / 2, "{priced} priced");
}

#[test]
fn converted_model_snapshot() {
    let catalog = Catalog::embedded();
    let entry = catalog
        .get("openai", "gpt-4o")
        .expect("gpt-4o in the snapshot");
    let json = serde_json::to_string_pretty(&entry.to_model("openai")).expect("serialise");
    expect![[r#"
        {
          "id": "gpt-4o",
          "name": "GPT-4o",
          "provider": "openai",
          "context_length": 128000,
          "max_tokens": 16384,
          "supports_chat": true,
          "supports_completion": false,
          "input_cost": 0.0025,
          "output_cost": 0.01,
          "description": null,
          "capabilities": [
            "function_calling",
            "tool_use",
            "vision",
            "json_mode",
            "structured_output",
            "streaming",
            "pdf_input"
          ],
          "created_at": "2024-05-13T00:00:00Z",
          "updated_at": "2024-08-06T00:00:00Z",
          "modalities": {
            "input": [
              "text",
              "image",
              "pdf"
            ],
            "output": [
              "text"
            ]
          },
          "knowledge_cutoff": "2023-09",
          "family": "gpt",
          "status": "active",
          "source": "catalog",
          "stale": false
        }"#]]
    .assert_eq(&json);
}

#[test]
fn malformed_documents_are_errors_not_panics() {
    for bad in [
        &b""[..],
        b"not json",
        b"{\"openai\": {\"models\": {",
        b"[]",
        b"42",
        b"\xff\xfe",
    ] {
        let err = Catalog::from_json(bad).expect_err("malformed");
        assert!(matches!(err, CatalogError::Json(_)));
        assert!(err.to_string().contains("not a models.dev api.json"));
    }
}

#[test]
fn a_sparse_fresher_document_is_read_tolerantly() {
    let json = br#"{
        "openai": {"id": "openai", "name": "OpenAI", "models": {
            "gpt-9": {"id": "gpt-9", "cost": {"input": 1, "output": "oops"},
                      "limit": {"context": 1000000, "output": 0},
                      "modalities": {"input": ["text", "smell"], "output": ["text"]},
                      "tool_call": "maybe", "new_field": {"x": [1, 2]}},
            "gpt-10": {}
        }},
        "broken": "not an object"
    }"#;
    let catalog = Catalog::from_json(json)
        .expect("tolerant")
        .with_provenance(modelgate_catalog::MODELS_DEV_URL, None);
    assert_eq!((catalog.provider_count(), catalog.model_count()), (1, 2));
    assert_eq!(catalog.provenance().source, "https://models.dev/api.json");
    let m = catalog
        .lookup(ProviderKind::Openai, "gpt-9")
        .expect("found")
        .entry
        .to_model("openai");
    assert_eq!(m.input_cost, Some(0.001));
    assert_eq!(m.output_cost, None);
    assert_eq!(m.context_length, Some(1_000_000));
    assert_eq!(m.max_tokens, None);
    assert!(m.supports_chat);
    assert!(m.capabilities.iter().all(|c| c.as_str() != "tool_use"));
    let empty = catalog
        .get("openai", "gpt-10")
        .expect("kept")
        .to_model("openai");
    assert!(!empty.supports_chat && empty.capabilities.is_empty() && empty.modalities.is_none());
    assert!(Catalog::empty()
        .lookup(ProviderKind::Openai, "gpt-4o")
        .is_none());
}
