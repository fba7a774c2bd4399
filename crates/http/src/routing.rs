//! Model resolution for the chat endpoints: turns the client's `model` into the ordered
//! list of `(provider, upstream model id)` targets to try.
//!
//! Rules, first match wins:
//! 1. an alias from `routing.aliases`: its entries, in order (the fallback order);
//! 2. `provider/model` whose `provider` is a configured provider name: that provider, with
//!    the rest as its model id (sent even if discovery has not listed it);
//! 3. a bare id (which may itself contain `/`, e.g. OpenRouter's `meta-llama/...`): the one
//!    enabled provider whose discovered list has it; several is a 400 naming the
//!    candidates, none is a 404 `MODEL_NOT_FOUND` with suggestions.

use std::collections::BTreeMap;

use modelgate_discovery::{ModelSet, ProviderStatus};
use modelgate_types::ErrorCode;
use serde_json::json;

use crate::error::ApiError;
use crate::router::AppState;

/// One upstream to try: a configured provider name and the model id it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

impl Target {
    fn new(provider: &str, model: &str) -> Self {
        Target {
            provider: provider.to_owned(),
            model: model.to_owned(),
        }
    }
}

/// The resolved route of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Tried in order; more than one only for aliases.
    pub targets: Vec<Target>,
    /// The alias the request named, if any.
    pub alias: Option<String>,
}

/// How many "did you mean" ids a 404 lists.
const SUGGESTIONS: usize = 5;

/// What resolution needs to know about providers, as plain functions (testable without a
/// running discovery engine).
pub(crate) struct Providers<'a> {
    /// Whether a provider of this name is configured (enabled or not).
    pub configured: &'a dyn Fn(&str) -> bool,
    /// Whether it is configured and enabled (callable).
    pub enabled: &'a dyn Fn(&str) -> bool,
}

/// Resolves `model` against the gateway's aliases, providers and discovered models. For a
/// bare id, providers that have never been listed are listed first (once).
pub async fn resolve(state: &AppState, model: &str) -> Result<Route, ApiError> {
    let discovery = &state.discovery;
    // The live settings, so a configuration reload changes aliases at once.
    let settings = state.current_settings();
    let configured = |p: &str| discovery.knows_provider(p);
    let enabled = |p: &str| discovery.provider(p).is_some();
    if let Some(route) = resolve_explicit(
        model,
        &settings.routing.aliases,
        &Providers {
            configured: &configured,
            enabled: &enabled,
        },
    )? {
        return Ok(route);
    }
    // A bare id needs the model lists: fetch those never fetched (later requests are
    // served from the snapshot, which background refresh keeps fresh).
    let pending: Vec<String> = discovery
        .snapshot()
        .providers
        .iter()
        .filter(|p| p.status == ProviderStatus::Pending)
        .map(|p| p.name.clone())
        .collect();
    if !pending.is_empty() {
        discovery.ensure_fresh(Some(&pending), false).await;
    }
    resolve_bare(
        model,
        &discovery.snapshot().discovered,
        &Providers {
            configured: &configured,
            enabled: &enabled,
        },
    )
}

/// Rules 1 and 2; `Ok(None)` when `model` is neither an alias nor `provider/model`.
pub(crate) fn resolve_explicit(
    model: &str,
    aliases: &BTreeMap<String, Vec<String>>,
    providers: &Providers<'_>,
) -> Result<Option<Route>, ApiError> {
    if let Some(entries) = aliases.get(model) {
        let targets = entries
            .iter()
            .filter_map(|e| e.split_once('/'))
            .map(|(p, m)| Target::new(p, m))
            .collect();
        return Ok(Some(Route {
            targets,
            alias: Some(model.to_owned()),
        }));
    }
    if let Some((provider, rest)) = model.split_once('/') {
        if (providers.configured)(provider) {
            if rest.is_empty() {
                return Err(ApiError::invalid_request(format!(
                    "'model' names provider '{provider}' but no model; write {provider}/<model id>"
                ))
                .with_details(json!({"field": "model", "value": model})));
            }
            if !(providers.enabled)(provider) {
                return Err(ApiError::new(
                    ErrorCode::ModelNotFound,
                    format!("Model '{model}' not available: provider '{provider}' is disabled"),
                )
                .with_details(
                    json!({"model_id": model, "provider": provider, "provider_status": "disabled"}),
                ));
            }
            return Ok(Some(Route {
                targets: vec![Target::new(provider, rest)],
                alias: None,
            }));
        }
    }
    Ok(None)
}

/// Rule 3 over the discovered set.
pub(crate) fn resolve_bare(
    model: &str,
    discovered: &ModelSet,
    providers: &Providers<'_>,
) -> Result<Route, ApiError> {
    let mut candidates: Vec<Target> = discovered
        .find_id(model)
        .iter()
        .filter(|m| (providers.enabled)(&m.provider))
        .map(|m| Target::new(&m.provider, &m.id))
        .collect();
    candidates.dedup();
    match candidates.len() {
        1 => Ok(Route {
            targets: candidates,
            alias: None,
        }),
        0 => Err(not_found(model, discovered, None)),
        _ => {
            let names: Vec<String> = candidates
                .iter()
                .map(|t| format!("{}/{}", t.provider, t.model))
                .collect();
            Err(ApiError::invalid_request(format!(
                "Model '{model}' is served by several providers; name one: {}",
                names.join(", ")
            ))
            .with_details(json!({"field": "model", "model_id": model, "candidates": names})))
        }
    }
}

/// `404 MODEL_NOT_FOUND` with up to five `provider/id` suggestions (of `provider` only,
/// when given).
pub(crate) fn not_found(model: &str, discovered: &ModelSet, provider: Option<&str>) -> ApiError {
    let suggestions = suggestions(model, discovered, provider);
    let message = match provider {
        Some(p) => format!("Model '{model}' not found at provider '{p}'"),
        None => format!("Model '{model}' not found"),
    };
    ApiError::new(ErrorCode::ModelNotFound, message).with_details(json!({
        "model_id": model,
        "provider": provider,
        "available_models": suggestions,
    }))
}

fn suggestions(model: &str, discovered: &ModelSet, provider: Option<&str>) -> Vec<String> {
    let bare = model.split_once('/').map_or(model, |(p, rest)| {
        if discovered.iter().any(|m| m.provider == p) {
            rest
        } else {
            model
        }
    });
    let mut out: Vec<String> = Vec::new();
    for id in discovered.suggest(bare, SUGGESTIONS * 2) {
        for m in discovered.find_id(&id) {
            if provider.is_some_and(|p| p != m.provider) {
                continue;
            }
            let name = format!("{}/{}", m.provider, m.id);
            if out.len() < SUGGESTIONS && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use modelgate_types::Model;

    use super::*;

    fn set(models: &[(&str, &str)]) -> ModelSet {
        ModelSet::new(models.iter().map(|(p, id)| Arc::new(Model::new(*p, *id))))
    }

    fn with_providers<R>(f: impl FnOnce(&Providers<'_>) -> R) -> R {
        let configured = |p: &str| matches!(p, "openai" | "groq" | "anthropic" | "off");
        let enabled = |p: &str| matches!(p, "openai" | "groq" | "anthropic");
        f(&Providers {
            configured: &configured,
            enabled: &enabled,
        })
    }

    #[test]
    fn alias_then_provider_prefix() {
        let mut aliases = BTreeMap::new();
        aliases.insert(
            "fast".to_owned(),
            vec![
                "groq/llama-3.1-8b-instant".to_owned(),
                "openai/gpt-4o-mini".to_owned(),
            ],
        );
        with_providers(|p| {
            let r = resolve_explicit("fast", &aliases, p).unwrap().unwrap();
            assert_eq!(r.alias.as_deref(), Some("fast"));
            assert_eq!(
                r.targets,
                vec![
                    Target::new("groq", "llama-3.1-8b-instant"),
                    Target::new("openai", "gpt-4o-mini")
                ]
            );
            let r = resolve_explicit("openai/ft:gpt-4o:org/x", &aliases, p)
                .unwrap()
                .unwrap();
            assert_eq!(r.targets, vec![Target::new("openai", "ft:gpt-4o:org/x")]);
            // Not a provider name: falls through to bare-id resolution.
            assert_eq!(
                resolve_explicit("meta-llama/llama-3", &aliases, p).unwrap(),
                None
            );
            assert_eq!(resolve_explicit("gpt-4o", &aliases, p).unwrap(), None);
            let e = resolve_explicit("off/model", &aliases, p).unwrap_err();
            assert_eq!(e.code, ErrorCode::ModelNotFound);
            let e = resolve_explicit("openai/", &aliases, p).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest);
        });
    }

    #[test]
    fn bare_ids_unique_ambiguous_unknown() {
        let s = set(&[
            ("openai", "gpt-4o"),
            ("openai", "gpt-4o-mini"),
            ("groq", "gpt-4o"),
            ("anthropic", "claude-3-5-haiku"),
            ("off", "claude-3-5-haiku"),
        ]);
        with_providers(|p| {
            let r = resolve_bare("claude-3-5-haiku", &s, p).unwrap();
            assert_eq!(
                r.targets,
                vec![Target::new("anthropic", "claude-3-5-haiku")]
            );
            let e = resolve_bare("gpt-4o", &s, p).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.message.contains("groq/gpt-4o") && e.message.contains("openai/gpt-4o"));
            let e = resolve_bare("gpt-4o-mimi", &s, p).unwrap_err();
            assert_eq!(e.code, ErrorCode::ModelNotFound);
            let details = e.details.unwrap();
            let suggested = details["available_models"].as_array().unwrap();
            assert!(
                suggested.contains(&json!("openai/gpt-4o-mini")),
                "{suggested:?}"
            );
            assert!(suggested.len() <= SUGGESTIONS);
        });
    }
}
