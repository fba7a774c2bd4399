//! Auto-fit for `/v1/chat/completions`: when the conversation is larger than the target
//! model's context window (known from discovery, minus the requested output tokens) and
//! either `condense.auto_fit` or the request's `"transforms": ["middle-out"]` asks for it,
//! the messages are condensed with `middle_out` before forwarding, and the response says
//! so in [`CONDENSED_HEADER`]. `"transforms": []` opts a request out. `transforms` is
//! removed from what is forwarded, except to OpenRouter, which implements it itself.
//!
//! Plans are made per target (aliases may point at models with different windows) before
//! any upstream call. A target whose window is unknown, or whose conversation cannot be
//! made to fit, is forwarded unchanged: the provider's own error is clearer than a guess.
//! Token counts cover the messages (text and tool calls) with the chat-format overhead;
//! tool definitions are not counted, so leave room for them in `max_tokens`.

use http::{HeaderName, HeaderValue, Response};
use modelgate_types::chat::{ChatMessage, ChatRequest};
use modelgate_types::ProviderKind;
use serde_json::Value;

use crate::body::Body;
use crate::error::ApiError;
use crate::router::AppState;
use crate::routing::{Route, Target};

/// Response header set when the conversation was condensed:
/// `middle_out; original_tokens=N; condensed_tokens=M; context_length=C`.
pub const CONDENSED_HEADER: &str = "x-modelgate-condensed";

/// Tokens never exceed UTF-8 bytes for the tokenizers used, so a conversation whose text
/// (plus per-message overhead) is under the budget in bytes fits without counting.
const OVERHEAD_BYTES_PER_MESSAGE: usize = 16;

/// What auto-fit decided for one target.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub target: Target,
    pub messages: Vec<ChatMessage>,
    pub original_tokens: usize,
    pub condensed_tokens: usize,
    pub context_length: u64,
}

/// The per-target plans of one request.
#[derive(Debug, Default)]
pub struct Plan {
    fitted: Vec<Fitted>,
}

impl Plan {
    pub fn for_target(&self, target: &Target) -> Option<&Fitted> {
        self.fitted.iter().find(|f| &f.target == target)
    }

    /// The request as it is forwarded to `target` (model id, fitted messages, and
    /// `transforms` removed unless the provider is OpenRouter).
    pub fn request_for(
        &self,
        state: &AppState,
        request: &ChatRequest,
        target: &Target,
    ) -> ChatRequest {
        let mut req = request.clone();
        req.model.clone_from(&target.model);
        if let Some(f) = self.for_target(target) {
            req.messages.clone_from(&f.messages);
        }
        let openrouter = state
            .discovery
            .provider(&target.provider)
            .is_some_and(|p| p.kind() == ProviderKind::Openrouter);
        if !openrouter {
            req.extra.remove("transforms");
        }
        req
    }

    /// Adds [`CONDENSED_HEADER`] when the answering target's conversation was condensed.
    pub fn annotate(&self, resp: &mut Response<Body>, target: &Target) {
        if let Some(f) = self.for_target(target) {
            let v = format!(
                "middle_out; original_tokens={}; condensed_tokens={}; context_length={}",
                f.original_tokens, f.condensed_tokens, f.context_length
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut()
                    .insert(HeaderName::from_static(CONDENSED_HEADER), v);
            }
        }
    }
}

/// Whether the request asks for auto-fit: its `transforms`, else the configuration.
fn requested(request: &ChatRequest, configured: bool) -> Result<bool, ApiError> {
    let Some(t) = request.extra.get("transforms") else {
        return Ok(configured);
    };
    let bad = || {
        ApiError::invalid_request(
            "'transforms' must be an array of strings; supported: \"middle-out\"",
        )
        .with_details(serde_json::json!({"field": "transforms"}))
    };
    let Value::Array(items) = t else {
        return Err(bad());
    };
    let mut middle_out = false;
    for item in items {
        match item.as_str() {
            Some("middle-out") => middle_out = true,
            Some(other) => {
                return Err(ApiError::invalid_request(format!(
                    "unknown transform '{other}'; supported: \"middle-out\""
                ))
                .with_details(serde_json::json!({"field": "transforms"})))
            }
            None => return Err(bad()),
        }
    }
    Ok(middle_out)
}

fn byte_estimate(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| {
            m.content.as_ref().map_or(0, |c| c.text().len())
                + m.tool_calls
                    .as_ref()
                    .map_or(0, |t| serde_json::to_string(t).map_or(0, |s| s.len()))
                + OVERHEAD_BYTES_PER_MESSAGE
        })
        .sum()
}

/// Plans auto-fit for every target of `route`.
pub async fn plan(
    state: &AppState,
    route: &Route,
    request: &ChatRequest,
) -> Result<Plan, ApiError> {
    let configured = state.condense.condenser.settings().auto_fit;
    if !requested(request, configured)? {
        return Ok(Plan::default());
    }
    let snap = state.discovery.snapshot();
    let bytes = byte_estimate(&request.messages);
    let reserve = request.output_limit().unwrap_or(0);
    let mut plan = Plan::default();
    for target in &route.targets {
        let context = snap
            .discovered
            .get(&target.provider, &target.model)
            .or_else(|| snap.all.get(&target.provider, &target.model))
            .and_then(|m| m.context_length);
        let Some(context) = context else { continue };
        let Some(budget) = context.checked_sub(reserve).filter(|b| *b > 0) else {
            continue;
        };
        let budget = usize::try_from(budget).unwrap_or(usize::MAX);
        if bytes <= budget {
            continue;
        }
        let messages = request.messages.clone();
        let model = target.model.clone();
        let result = tokio::task::spawn_blocking(move || {
            modelgate_condense::auto_fit(&messages, &model, budget)
        })
        .await;
        match result {
            Ok(Ok(Some(c))) => plan.fitted.push(Fitted {
                target: target.clone(),
                messages: c.messages,
                original_tokens: c.original_tokens,
                condensed_tokens: c.condensed_tokens,
                context_length: context,
            }),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::info!(
                provider = %target.provider,
                model = %target.model,
                error = %e,
                "auto-fit could not condense; forwarding unchanged"
            ),
            Err(e) => tracing::warn!(error = %e, "auto-fit task failed; forwarding unchanged"),
        }
    }
    Ok(plan)
}
