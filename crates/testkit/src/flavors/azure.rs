//! Azure OpenAI: `GET /openai/models` (the resource's model list, Azure's own shape) and
//! `POST /openai/deployments/{deployment}/chat/completions` (OpenAI chat), all requiring an
//! `api-version` query parameter and the `api-key` header.

use hyper::Method;
use serde_json::{json, Value};

use crate::errors::{self, Dialect};
use crate::flavors::openai::{self, ModelCheck};
use crate::flavors::{no_route, Ctx, Req};
use crate::model::{merge_extra, MockModel};
use crate::wire::{json, Resp};

/// Whether `v` looks like an Azure api-version (`2024-10-21`, `2025-01-01-preview`).
fn valid_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub(crate) fn route(ctx: &Ctx, req: &Req) -> Resp {
    if !req.query("api-version").is_some_and(valid_api_version) {
        return errors::error(Dialect::Azure, 404, Some("Resource not found"));
    }
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match rest.as_slice() {
        ["openai", "models"] if get => json(
            200,
            &json!({"data": ctx.models().iter().map(model_object).collect::<Vec<_>>(), "object": "list"}),
        ),
        ["openai", "models", id] if get => match ctx.find_model(id) {
            Some(m) => json(200, &model_object(&m)),
            None => errors::error(Dialect::Azure, 404, Some("Resource not found")),
        },
        ["openai", "deployments", dep, "chat", "completions"] if post => {
            openai::chat(ctx, req, ModelCheck::Deployment((*dep).to_owned()))
        }
        ["openai", "deployments", dep, "completions"] if post => {
            openai::completions(ctx, req, ModelCheck::Deployment((*dep).to_owned()))
        }
        ["openai", "models", ..] | ["openai", "deployments", ..] => no_route(ctx, req, true),
        _ => errors::error(Dialect::Azure, 404, Some("Resource not found")),
    }
}

fn model_object(m: &MockModel) -> Value {
    let created = m.created.unwrap_or(1_700_000_000);
    let mut v = json!({
        "status": "succeeded",
        "capabilities": {"fine_tune": false, "inference": true, "completion": false,
            "chat_completion": true, "embeddings": false},
        "lifecycle_status": "generally-available",
        "deprecation": {"inference": created + 2 * 365 * 86_400},
        "id": m.id,
        "created_at": created,
        "object": "model"
    });
    merge_extra(&mut v, &m.extra);
    v
}
