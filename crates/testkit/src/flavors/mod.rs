//! Routing of one admitted request to its flavor's handler, the parsed request type, and
//! each flavor's auth check.

pub(crate) mod anthropic;
pub(crate) mod azure;
pub(crate) mod cohere;
pub(crate) mod gemini;
pub(crate) mod ollama;
pub(crate) mod openai;

use std::sync::Arc;

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::Value;

use crate::errors::{self, Dialect};
use crate::flavor::Flavor;
use crate::model::MockModel;
use crate::state::{Shared, StreamSettings};
use crate::wire::Resp;
use crate::MockUpstream;

/// A request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: Method,
    /// Percent-decoded path segments after the flavor prefix.
    pub(crate) rest: Vec<String>,
    /// Percent-decoded query pairs.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of `Authorization: Bearer <token>`; the whole header value when it is
    /// present but not a bearer token.
    pub(crate) fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        Some(match v.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
            _ => v,
        })
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Whether the client asked for a stream (so an injected malformed body is an SSE one).
    pub(crate) fn wants_stream(&self) -> bool {
        self.json()
            .and_then(|v| v.get("stream").and_then(Value::as_bool))
            .unwrap_or(false)
            || self
                .rest
                .last()
                .is_some_and(|s| s.ends_with(":streamGenerateContent"))
    }
}

/// What a handler may use besides the request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) flavor: Flavor,
    pub(crate) dialect: Dialect,
    pub(crate) stream: StreamSettings,
}

impl Ctx {
    pub(crate) fn models(&self) -> Vec<MockModel> {
        self.shared.with(self.flavor, |s| s.models.clone())
    }

    pub(crate) fn find_model(&self, id: &str) -> Option<MockModel> {
        self.shared.with(self.flavor, |s| s.find_model(id).cloned())
    }

    pub(crate) fn page_size(&self) -> usize {
        self.shared.with(self.flavor, |s| s.page_size).max(1)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.shared.next_id()
    }
}

fn check_key(presented: Option<&str>, public: bool) -> Result<(), Option<String>> {
    match presented {
        Some(k) if k == MockUpstream::API_KEY => Ok(()),
        None if public => Ok(()),
        other => Err(other.map(str::to_owned)),
    }
}

/// The flavor's auth check: the rejection response, if the request must be rejected.
pub(crate) fn authorize(ctx: &Ctx, req: &Req) -> Option<Resp> {
    let get_models = req.method == Method::GET && req.rest.iter().any(|s| s == "models");
    let result = match ctx.flavor {
        Flavor::Anthropic => check_key(req.header("x-api-key"), false),
        Flavor::Gemini => check_key(
            req.header("x-goog-api-key").or_else(|| req.query("key")),
            false,
        ),
        Flavor::Azure => check_key(req.header("api-key").or_else(|| req.bearer()), false),
        // OpenRouter's model list is public; llama.cpp's /models and /health are public.
        Flavor::Openrouter => check_key(req.bearer(), get_models),
        Flavor::Llamacpp => check_key(
            req.bearer(),
            get_models || req.rest.last().is_some_and(|s| s == "health"),
        ),
        _ => check_key(req.bearer(), false),
    };
    if let Err(presented) = result {
        return Some(errors::unauthorized(ctx.dialect, presented.as_deref()));
    }
    if ctx.flavor == Flavor::Anthropic && req.header("anthropic-version").is_none() {
        return Some(errors::error(
            Dialect::Anthropic,
            400,
            Some("anthropic-version: header is required"),
        ));
    }
    None
}

/// Dispatches to the flavor's router.
pub(crate) async fn route(ctx: &Ctx, req: &Req) -> Resp {
    match ctx.flavor {
        Flavor::Openai
        | Flavor::Vllm
        | Flavor::Llamacpp
        | Flavor::Mistral
        | Flavor::Groq
        | Flavor::Openrouter => openai::route(ctx, req),
        Flavor::Anthropic => anthropic::route(ctx, req),
        Flavor::Gemini => gemini::route(ctx, req),
        Flavor::Cohere => cohere::route(ctx, req),
        Flavor::Azure => azure::route(ctx, req),
        Flavor::Ollama => ollama::route(ctx, req),
    }
}

/// 404 for a path the flavor does not serve, 405 for a known path with the wrong method.
pub(crate) fn no_route(ctx: &Ctx, req: &Req, known_path: bool) -> Resp {
    if known_path {
        let msg = format!("Method {} not allowed", req.method);
        return errors::error(ctx.dialect, 405, Some(&msg));
    }
    let msg = format!("Invalid URL ({} /{})", req.method, req.rest.join("/"));
    errors::error(ctx.dialect, 404, Some(&msg))
}

/// Minimal percent-decoding (`%XX`, and `+` as space when `plus` is set).
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query pairs of a raw query string.
pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Index of the first item after the one with `id` (0 when `after` is `None`); `None` when the
/// cursor names no item.
pub(crate) fn offset_after(models: &[MockModel], after: Option<&str>) -> Option<usize> {
    match after {
        None => Some(0),
        Some(id) => models.iter().position(|m| m.id == id).map(|i| i + 1),
    }
}
