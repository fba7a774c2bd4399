//! Models API: `/api/models`, `/api/models/search`, `/api/models/{id}`,
//! `/api/models/refresh`, `/api/providers/*`, `/api/cache*` and OpenAI's `/v1/models`.

use std::sync::Arc;

use http::{Response, StatusCode};
use modelgate_discovery::{ProviderStatus, Snapshot};
use modelgate_types::{ErrorCode, Model, ModelQuery, Page, SourceFilter};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::body::{json_bytes, json_response, Body};
use crate::error::ApiError;
use crate::router::Ctx;

/// The source a query covers: explicit `source=`, else discovered models when any
/// provider is configured, else the embedded catalog.
pub fn effective_source(q: &ModelQuery, snap: &Snapshot) -> SourceFilter {
    q.source.unwrap_or(if snap.has_providers {
        SourceFilter::Discovered
    } else {
        SourceFilter::Catalog
    })
}

/// Makes sure the providers the query touches have data, then returns the snapshot and
/// whether everything came from cache.
async fn fresh_snapshot(ctx: &Ctx, q: &ModelQuery) -> (Arc<Snapshot>, bool) {
    let discovery = &ctx.state.discovery;
    let source = effective_source(q, &discovery.snapshot());
    if source == SourceFilter::Catalog {
        return (discovery.snapshot(), true);
    }
    let names = (!q.provider.is_empty()).then_some(q.provider.as_slice());
    let hit = discovery.ensure_fresh(names, q.refresh).await;
    (discovery.snapshot(), hit)
}

fn run(snap: &Snapshot, q: &ModelQuery) -> Result<(SourceFilter, Page<Arc<Model>>), ApiError> {
    let source = effective_source(q, snap);
    let set = match source {
        SourceFilter::Discovered => &snap.discovered,
        SourceFilter::Catalog => &*snap.catalog,
        SourceFilter::All => &snap.all,
    };
    // The set already is the source; do not filter by it again.
    let mut q = q.clone();
    q.source = None;
    Ok((source, set.query(&q)?))
}

fn source_str(s: SourceFilter) -> &'static str {
    match s {
        SourceFilter::Catalog => "catalog",
        SourceFilter::Discovered => "discovered",
        SourceFilter::All => "all",
    }
}

fn providers_field(snap: &Snapshot, source: SourceFilter, page: &Page<Arc<Model>>) -> Vec<String> {
    if source == SourceFilter::Catalog || !snap.has_providers {
        let mut v: Vec<String> = page.items.iter().map(|m| m.provider.clone()).collect();
        v.dedup();
        v
    } else {
        snap.active_providers()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

/// A listing body is a function of the route, the snapshot, the query and `cache_hit`
/// alone, so it is rendered once per such key and then served from the shared render
/// cache (`V2Cache`): a cached listing neither queries nor serializes again.
fn cached_listing(
    ctx: &Ctx,
    route: &str,
    snap: &Snapshot,
    cache_hit: bool,
    render: impl FnOnce() -> Result<Value, ApiError>,
) -> Result<Response<Body>, ApiError> {
    let mut pairs: Vec<(&str, &str)> = ctx.query_pairs().collect();
    pairs.sort_unstable();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let key = format!("{route} {} {cache_hit} ?{query}", snap.etag_base());
    let bytes = ctx.state.v2_cache.rendered(key, || {
        let value = render()?;
        serde_json::to_vec(&value)
            .map(bytes::Bytes::from)
            .map_err(|e| ApiError::internal(format!("serialisation failed: {e}")))
    })?;
    Ok(json_bytes(StatusCode::OK, bytes))
}

/// `GET /api/models`
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    check_providers(ctx, &q)?;
    let (snap, cache_hit) = fresh_snapshot(ctx, &q).await;
    cached_listing(ctx, "api/models", &snap, cache_hit, || {
        list_body(&snap, &q, cache_hit)
    })
}

fn list_body(snap: &Snapshot, q: &ModelQuery, cache_hit: bool) -> Result<Value, ApiError> {
    let (source, page) = run(snap, q)?;
    Ok(json!({
        "models": page.items,
        "count": page.items.len(),
        "providers": providers_field(snap, source, &page),
        "source": source_str(source),
        "timestamp": snap.updated_at,
        "cache_hit": cache_hit,
        "stale": page.items.iter().any(|m| m.stale),
        "pagination": page.pagination,
    }))
}

/// `GET /api/models/search`
pub async fn search(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    check_providers(ctx, &q)?;
    let (snap, cache_hit) = fresh_snapshot(ctx, &q).await;
    cached_listing(ctx, "api/models/search", &snap, cache_hit, || {
        search_body(&snap, &q, cache_hit)
    })
}

fn search_body(snap: &Snapshot, q: &ModelQuery, cache_hit: bool) -> Result<Value, ApiError> {
    let (source, page) = run(snap, q)?;
    let mut filters = serde_json::to_value(q).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut filters {
        map.remove("q");
    }
    Ok(json!({
        "models": page.items,
        "count": page.items.len(),
        "query": q.q,
        "filters_applied": filters,
        "source": source_str(source),
        "timestamp": snap.updated_at,
        "cache_hit": cache_hit,
        "pagination": page.pagination,
    }))
}

/// A `provider=` filter naming a provider that is not configured is an error in
/// discovered mode (an empty result would hide the typo).
fn check_providers(ctx: &Ctx, q: &ModelQuery) -> Result<(), ApiError> {
    let snap = ctx.state.discovery.snapshot();
    if effective_source(q, &snap) != SourceFilter::Discovered {
        return Ok(());
    }
    for p in &q.provider {
        if !ctx.state.discovery.knows_provider(p) {
            let known: Vec<&str> = snap.providers.iter().map(|s| s.name.as_str()).collect();
            return Err(ApiError::new(
                ErrorCode::InvalidFilter,
                format!("invalid value for 'provider': '{p}' is not a configured provider"),
            )
            .with_details(
                json!({"parameter": "provider", "value": p, "configured_providers": known}),
            ));
        }
    }
    Ok(())
}

/// Finds a model by id (which may contain `/` and `:`), optionally by provider; ids
/// written `provider/model` are understood too.
pub fn find_model(
    snap: &Snapshot,
    q: &ModelQuery,
    id: &str,
) -> Result<(Arc<Model>, Vec<String>), ApiError> {
    let source = effective_source(q, snap);
    let set = match source {
        SourceFilter::Discovered => &snap.discovered,
        SourceFilter::Catalog => &*snap.catalog,
        SourceFilter::All => &snap.all,
    };
    let mut candidates = set.find_id(id);
    if candidates.is_empty() {
        if let Some((provider, rest)) = id.split_once('/') {
            if let Some(m) = set.get(provider, rest) {
                candidates.push(m);
            }
        }
    }
    if !q.provider.is_empty() {
        candidates.retain(|m| q.provider.contains(&m.provider));
    }
    if candidates.is_empty() {
        let suggestions = set.suggest(id, 5);
        return Err(
            ApiError::new(ErrorCode::ModelNotFound, format!("Model '{id}' not found"))
                .with_details(json!({
                    "model_id": id,
                    "provider": q.provider.first(),
                    "available_models": suggestions,
                })),
        );
    }
    // Several providers serve this id: prefer one whose name is the model's own vendor
    // (`openai` for gpt-4o), else the first in (provider, id) order. The others are listed.
    let best = candidates
        .iter()
        .position(|m| {
            m.family.as_deref().is_some_and(|f| m.provider.contains(f))
                || id.starts_with(&m.provider)
        })
        .unwrap_or(0);
    let model = candidates[best].clone();
    let others = candidates
        .iter()
        .filter(|m| m.provider != model.provider)
        .map(|m| m.provider.clone())
        .collect();
    Ok((model, others))
}

/// `GET /api/models/{model_id}`
pub async fn get(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    let (snap, _) = fresh_snapshot(ctx, &q).await;
    let (model, others) = find_model(&snap, &q, id)?;
    let provider_info = match snap.provider(&model.provider) {
        Some(p) => json!({
            "name": p.name,
            "status": p.status.as_str(),
            "last_check": p.last_check,
            "error": p.error,
        }),
        None => json!({
            "name": model.provider,
            "status": "catalog",
            "last_check": null,
        }),
    };
    let body = json!({
        "model": model,
        "provider_info": provider_info,
        "also_available_from": others,
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    #[serde(default)]
    providers: Option<Vec<String>>,
    #[serde(default)]
    force: Option<bool>,
}

/// `POST /api/models/refresh` (admin)
pub async fn refresh(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let body: RefreshBody = ctx.json_body().await?.unwrap_or_default();
    let discovery = ctx.state.discovery.clone();
    let configured = discovery.provider_names();
    if let Some(list) = &body.providers {
        let unknown: Vec<&String> = list.iter().filter(|p| !configured.contains(p)).collect();
        if !unknown.is_empty() {
            return Err(ApiError::invalid_request(format!(
                "unknown or disabled provider(s): {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_details(json!({"field": "providers", "configured_providers": configured})));
        }
    }
    let names = body.providers.as_deref();
    // `force: false` refreshes only what is expired or missing; the default is a real refresh.
    // `force: false` refreshes only what is expired or missing; the default (and
    // `force: true`) calls every selected provider now.
    let report = if body.force == Some(false) {
        let started = std::time::Instant::now();
        discovery.ensure_fresh(names, false).await;
        discovery.report(names, started)
    } else {
        discovery.refresh(names).await
    };
    let status = if report.providers_failed.is_empty() {
        "success"
    } else if report.providers_updated.is_empty() && !configured.is_empty() {
        "failed"
    } else {
        "partial"
    };
    let message = match status {
        "success" if configured.is_empty() => {
            "No providers configured; serving the embedded catalog".to_owned()
        }
        "success" => "Models refreshed successfully".to_owned(),
        _ => format!(
            "{} provider(s) failed; their last good models are still served (stale)",
            report.providers_failed.len()
        ),
    };
    let body = json!({
        "status": status,
        "message": message,
        "models_discovered": report.models_discovered,
        "providers_updated": report.providers_updated,
        "providers_failed": report.providers_failed,
        "duration_ms": report.duration_ms,
        "timestamp": modelgate_types::now_rfc3339(),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/providers/status`
pub async fn providers_status(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let snap = ctx.state.discovery.snapshot();
    let mut providers = serde_json::Map::new();
    let mut total_models = 0;
    for p in &snap.providers {
        total_models += p.models.len();
        providers.insert(
            p.name.clone(),
            json!({
                "status": p.status.as_str(),
                "kind": p.kind.map(|k| k.as_str()),
                "last_check": p.last_check,
                "last_success": p.last_success,
                "models_count": p.models.len(),
                "error": p.error,
                "response_time_ms": p.response_time_ms,
                "stale": p.status == ProviderStatus::Error && !p.models.is_empty(),
            }),
        );
    }
    let last_update = snap
        .providers
        .iter()
        .filter_map(|p| p.last_check.clone())
        .max();
    let body = json!({
        "providers": providers,
        "summary": {
            "total_providers": snap.providers.len(),
            "active_providers": snap.active_providers().len(),
            "total_models": total_models,
            "last_update": last_update,
            "mode": if snap.has_providers { "discovered" } else { "catalog" },
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/providers/{name}/models`
pub async fn provider_models(ctx: &Ctx, name: &str) -> Result<Response<Body>, ApiError> {
    let refresh = match ctx.query_value("refresh") {
        None => false,
        Some(v) => match v {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidFilter,
                    "invalid value for 'refresh': expected true or false",
                )
                .with_details(json!({"parameter": "refresh", "value": v})))
            }
        },
    };
    let discovery = &ctx.state.discovery;
    if discovery.knows_provider(name) {
        let names = [name.to_owned()];
        let cache_hit = discovery.ensure_fresh(Some(&names), refresh).await;
        let snap = discovery.snapshot();
        let state = snap.provider(name);
        let models: Vec<&Arc<Model>> = snap
            .discovered
            .iter()
            .filter(|m| m.provider == name)
            .collect();
        let body = json!({
            "provider": name,
            "status": state.map(|s| s.status.as_str()),
            "models": models,
            "count": models.len(),
            "last_updated": state.and_then(|s| s.last_success.clone()),
            "cache_hit": cache_hit,
            "source": "discovered",
        });
        return Ok(json_response(StatusCode::OK, &body));
    }
    let snap = discovery.snapshot();
    let models: Vec<&Arc<Model>> = snap.catalog.iter().filter(|m| m.provider == name).collect();
    if models.is_empty() {
        let mut known: Vec<String> = snap.providers.iter().map(|p| p.name.clone()).collect();
        if known.is_empty() {
            let mut cat: Vec<String> = snap.catalog.iter().map(|m| m.provider.clone()).collect();
            cat.dedup();
            known = cat;
        }
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("Provider '{name}' is not configured and not in the catalog"),
        )
        .with_details(json!({"provider": name, "known_providers": known})));
    }
    let body = json!({
        "provider": name,
        "status": "catalog",
        "models": models,
        "count": models.len(),
        "last_updated": ctx.state.discovery.catalog().provenance().snapshot_date,
        "cache_hit": true,
        "source": "catalog",
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /api/cache/stats`
pub async fn cache_stats(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let s = ctx.state.discovery.cache_stats();
    let body = json!({
        "cache_stats": {
            "hits": s.hits,
            "misses": s.misses,
            "hit_rate": s.hit_rate,
            "total_entries": s.total_entries,
            "cached_models": s.cached_models,
            "memory_usage_mb": s.memory_usage_mb,
            "oldest_entry": s.oldest_entry,
            "newest_entry": s.newest_entry,
            "ttl_seconds": ctx.state.settings.cache.ttl_seconds,
        },
        "provider_stats": s.providers,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `DELETE /api/cache` (admin)
pub async fn cache_clear(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let provider = ctx.query_value("provider").filter(|p| !p.is_empty());
    if let Some(p) = provider {
        if !ctx.state.discovery.provider_names().iter().any(|n| n == p) {
            return Err(ApiError::new(
                ErrorCode::InvalidFilter,
                format!("invalid value for 'provider': '{p}' is not a configured provider"),
            )
            .with_details(json!({"parameter": "provider", "value": p})));
        }
    }
    let cleared = ctx.state.discovery.clear_cache(provider);
    let message = match provider {
        Some(p) => format!("Cache cleared for provider: {p}"),
        None => "Cache cleared for all providers".to_owned(),
    };
    let body = json!({
        "status": "success",
        "message": message,
        "cleared_entries": cleared,
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn created_unix(m: &Model) -> i64 {
    m.created_at
        .as_deref()
        .and_then(modelgate_types::parse_rfc3339)
        .map_or(0, |t| t.unix_timestamp())
}

fn openai_model(m: &Model) -> Value {
    json!({
        "id": format!("{}/{}", m.provider, m.id),
        "object": "model",
        "created": created_unix(m),
        "owned_by": m.provider,
    })
}

/// `GET /v1/models`: OpenAI's list shape, ids as `provider/model`.
pub async fn v1_list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    let (snap, _) = fresh_snapshot(ctx, &q).await;
    cached_listing(ctx, "v1/models", &snap, false, || {
        let source = effective_source(&q, &snap);
        let set = match source {
            SourceFilter::Discovered => &snap.discovered,
            SourceFilter::Catalog => &*snap.catalog,
            SourceFilter::All => &snap.all,
        };
        let data: Vec<Value> = set
            .iter()
            .filter(|m| m.supports_chat || !snap.has_providers || source != SourceFilter::Catalog)
            .map(|m| openai_model(m))
            .collect();
        Ok(json!({"object": "list", "data": data}))
    })
}

/// `GET /v1/models/{id}` (OpenAI SDK's `models.retrieve`).
pub async fn v1_get(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    let (snap, _) = fresh_snapshot(ctx, &q).await;
    let (model, _) = find_model(&snap, &q, id)?;
    Ok(json_response(StatusCode::OK, &openai_model(&model)))
}
