//! The Anthropic wire format: `GET /v1/models` (cursor pagination) and the Messages API
//! (`POST /v1/messages`), translated to and from the OpenAI chat schema, streams included.
//!
//! Auth is `x-api-key` plus `anthropic-version` (config `api_version`, default
//! [`DEFAULT_VERSION`]). Translation lives in pure functions: [`to_request`],
//! [`from_response`] and [`AnthropicStream::translate`].

use std::collections::HashMap;

use async_trait::async_trait;
use modelgate_types::chat::{
    ChatRequest, ChatResponse, ContentPart, Delta, FunctionCallDelta, MessageContent, Role,
    ToolCallDelta, Usage,
};
use modelgate_types::{
    format_rfc3339, parse_rfc3339, Capability, Model, ModelStatus, ProviderKind,
};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::convert::{self, ResponseParts};
use crate::http::{unix_now, Upstream, WireError};
use crate::sse::{self, SseEvent, StreamTranslator, Translated};
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

/// `anthropic-version` sent when the config does not say.
pub const DEFAULT_VERSION: &str = "2023-06-01";
/// `max_tokens` sent when the request has none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
const PAGE_LIMIT: u32 = 1000;
const MAX_PAGES: usize = 1000;

/// The Anthropic adapter.
#[derive(Debug)]
pub(crate) struct AnthropicProvider {
    up: Upstream,
    version: String,
}

impl AnthropicProvider {
    pub(crate) fn new(up: Upstream, version: Option<String>) -> Self {
        AnthropicProvider {
            up,
            version: version.unwrap_or_else(|| DEFAULT_VERSION.to_owned()),
        }
    }

    fn authed(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, ProviderError> {
        let rb = self
            .up
            .request(method, &self.up.url(path))
            .header("anthropic-version", &self.version);
        self.up.with_key(rb, "x-api-key", "")
    }

    async fn page(&self, limit: u32, after: Option<&str>) -> Result<Value, ProviderError> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(a) = after {
            query.push(("after_id", a.to_owned()));
        }
        let rb = self.authed(Method::GET, "/v1/models")?.query(&query);
        self.up.json(rb).await
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = self.page(PAGE_LIMIT, after.as_deref()).await?;
            let page = parse_model_page(&self.up.name, &body).map_err(|e| self.up.wire(e))?;
            out.extend(page.models);
            match page.next {
                Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                Some(_) => {
                    return Err(self.up.error(
                        ProviderErrorKind::BadResponse,
                        "pagination cursor did not advance",
                    ))
                }
                None => return Ok(out),
            }
        }
        Err(self
            .up
            .error(ProviderErrorKind::BadResponse, "too many model pages"))
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = to_request(request, false).map_err(|e| self.up.wire(e))?;
        let rb = self.authed(Method::POST, "/v1/messages")?.json(&body);
        let v: Value = self.up.json(rb).await?;
        from_response(&v, unix_now()).map_err(|e| self.up.wire(e))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let body = to_request(request, true).map_err(|e| self.up.wire(e))?;
        let rb = self
            .authed(Method::POST, "/v1/messages")?
            .header("accept", "text/event-stream")
            .json(&body);
        let resp = self.up.open_stream(rb).await?;
        Ok(sse::chat_stream(
            &self.up,
            resp,
            AnthropicStream::new(&request.model, unix_now()),
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.page(1, None).await.map(|_| ())
    }
}

/// One page of `GET /v1/models`.
#[derive(Debug)]
pub(crate) struct ModelPage {
    pub models: Vec<Model>,
    /// `after_id` for the next page when `has_more`.
    pub next: Option<String>,
}

pub(crate) fn parse_model_page(provider: &str, body: &Value) -> Result<ModelPage, WireError> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::bad_response("model list has no 'data' array"))?;
    let models = data.iter().filter_map(|v| map_model(provider, v)).collect();
    let has_more = body
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let next = if has_more {
        let last = body
            .get("last_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| WireError::bad_response("has_more is true but last_id is missing"))?;
        Some(last.to_owned())
    } else {
        None
    };
    Ok(ModelPage { models, next })
}

/// Maps one Anthropic model: id, display name, creation date, and (newer API versions)
/// `max_input_tokens`, `max_tokens`, `capabilities` and `lifecycle`. Every model listed is served by
/// the Messages API, so `supports_chat` is true.
pub(crate) fn map_model(provider: &str, v: &Value) -> Option<Model> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let mut m = Model::new(provider, id);
    if let Some(n) = v.get("display_name").and_then(Value::as_str) {
        m.name = n.to_owned();
    }
    m.created_at = v
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .map(format_rfc3339);
    m.supports_chat = true;
    m.add_capability(Capability::Streaming);
    m.context_length = v.get("max_input_tokens").and_then(Value::as_u64);
    m.max_tokens = v.get("max_tokens").and_then(Value::as_u64);
    if let Some(caps) = v.get("capabilities") {
        let on = |k: &str| {
            caps.pointer(&format!("/{k}/supported"))
                .and_then(Value::as_bool)
                == Some(true)
        };
        if on("image_input") {
            m.add_capability(Capability::Vision);
        }
        if on("pdf_input") {
            m.add_capability(Capability::PdfInput);
        }
        if on("structured_outputs") {
            // "structured output / JSON mode / strict tool schemas".
            m.add_capability(Capability::StructuredOutput);
            m.add_capability(Capability::JsonMode);
        }
        if on("thinking") {
            m.add_capability(Capability::Reasoning);
        }
    }
    // `lifecycle`: active, or deprecated (still callable, closed to new adopters), or
    // retired (inference fails; still listed as a record): both of the latter are deprecated.
    m.status = match v.get("lifecycle").and_then(Value::as_str) {
        Some("active") => Some(ModelStatus::Active),
        Some("deprecated" | "retired") => Some(ModelStatus::Deprecated),
        _ => None,
    };
    Some(m)
}

/// OpenAI chat request → Anthropic Messages request.
pub(crate) fn to_request(req: &ChatRequest, stream: bool) -> Result<Value, WireError> {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match messages.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    };
    for msg in &req.messages {
        match msg.role {
            Role::System | Role::Developer => {
                let t = msg.text();
                if !t.is_empty() {
                    system.push(t);
                }
            }
            Role::User => push("user", content_blocks(msg.content.as_ref())?),
            Role::Assistant => {
                let mut blocks = content_blocks(msg.content.as_ref())?;
                blocks.retain(|b| {
                    b.get("type").and_then(Value::as_str) != Some("text") || b["text"] != ""
                });
                for call in msg.tool_calls.iter().flatten() {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.function.name,
                        "input": convert::parse_arguments(&call.function.arguments)?,
                    }));
                }
                push("assistant", blocks);
            }
            Role::Tool => {
                let id = msg.tool_call_id.clone().ok_or_else(|| {
                    WireError::invalid_request("a tool message needs tool_call_id")
                })?;
                push(
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id, "content": msg.text()})],
                );
            }
            Role::Function => {
                return Err(WireError::invalid_request(
                    "legacy function messages are not supported for anthropic; use tools",
                ))
            }
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert(
        "max_tokens".into(),
        json!(req.output_limit().unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    match system.len() {
        0 => {}
        1 => {
            body.insert("system".into(), json!(system[0]));
        }
        _ => {
            let blocks: Vec<Value> = system
                .iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    let msgs: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    body.insert("messages".into(), Value::Array(msgs));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = &req.stop {
        body.insert("stop_sequences".into(), json!(stop.to_vec()));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut o = Map::new();
                o.insert("name".into(), json!(t.function.name));
                if let Some(d) = &t.function.description {
                    o.insert("description".into(), json!(d));
                }
                o.insert(
                    "input_schema".into(),
                    t.function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                Value::Object(o)
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    let mut choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            other => {
                return Err(WireError::invalid_request(format!(
                    "unknown tool_choice '{other}'"
                )))
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => {
                return Err(WireError::invalid_request(
                    "tool_choice object needs function.name",
                ))
            }
        },
    };
    if req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false)) && req.tools.is_some() {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Value::Object(o) = c {
            o.insert("disable_parallel_tool_use".into(), json!(true));
        }
    }
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    if let Some(user) = req.extra.get("user").and_then(Value::as_str) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    for key in ["top_k", "thinking", "metadata", "service_tier"] {
        if let Some(v) = req.extra.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    Ok(Value::Object(body))
}

fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, WireError> {
    let Some(content) = content else {
        return Ok(Vec::new());
    };
    match content {
        MessageContent::Text(t) => Ok(if t.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": t})]
        }),
        MessageContent::Parts(parts) => parts.iter().map(part_block).collect(),
    }
}

fn part_block(part: &ContentPart) -> Result<Value, WireError> {
    match part {
        ContentPart::Text { text } => Ok(json!({"type": "text", "text": text})),
        ContentPart::ImageUrl { image_url } => {
            Ok(json!({"type": "image", "source": url_source(&image_url.url)?}))
        }
        ContentPart::File { file } => {
            let data = file
                .get("file_data")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    WireError::invalid_request("anthropic needs file parts as file_data data URLs")
                })?;
            Ok(json!({"type": "document", "source": url_source(data)?}))
        }
        ContentPart::InputAudio { .. } => Err(WireError::invalid_request(
            "audio input is not supported by anthropic",
        )),
        ContentPart::Other(v) => Err(WireError::invalid_request(format!(
            "content part type {} is not supported by anthropic",
            v.get("type").unwrap_or(&Value::Null)
        ))),
    }
}

fn url_source(url: &str) -> Result<Value, WireError> {
    if let Some((mime, data)) = convert::parse_data_url(url) {
        return Ok(json!({"type": "base64", "media_type": mime, "data": data}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "url", "url": url}));
    }
    Err(WireError::invalid_request(
        "images must be https URLs or base64 data URLs",
    ))
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub(crate) fn finish_reason(stop: &str) -> String {
    match stop {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

fn usage_of(u: &Value) -> Usage {
    let input = convert::u64_at(u, "/input_tokens")
        + convert::u64_at(u, "/cache_read_input_tokens")
        + convert::u64_at(u, "/cache_creation_input_tokens");
    Usage::new(input, convert::u64_at(u, "/output_tokens"))
}

/// Anthropic Message → OpenAI `chat.completion`.
pub(crate) fn from_response(v: &Value, created: i64) -> Result<ChatResponse, WireError> {
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(stream_error(v));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::bad_response("message has no content array"))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => {
                let id = b.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(convert::tool_call(id.to_owned(), name.to_owned(), &input));
            }
            _ => {}
        }
    }
    Ok(ResponseParts {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        created,
        text: (!text.is_empty() || calls.is_empty()).then_some(text),
        tool_calls: calls,
        reasoning: Some(reasoning),
        finish_reason: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(finish_reason),
        usage: v.get("usage").map(usage_of),
    }
    .build())
}

/// An `error` event or body → a typed error.
fn stream_error(v: &Value) -> WireError {
    let kind = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error")
        .to_owned();
    let (k, status) = match kind {
        "authentication_error" => (ProviderErrorKind::Auth, 401),
        "permission_error" => (ProviderErrorKind::Auth, 403),
        "not_found_error" => (ProviderErrorKind::NotFound, 404),
        "rate_limit_error" => (ProviderErrorKind::RateLimited, 429),
        "invalid_request_error" | "request_too_large" => (ProviderErrorKind::InvalidRequest, 400),
        "overloaded_error" => (ProviderErrorKind::Upstream, 529),
        _ => (ProviderErrorKind::Upstream, 500),
    };
    WireError::new(k, format!("{kind}: {message}")).with_status(status)
}

/// Anthropic stream events → OpenAI chunks.
#[derive(Debug)]
pub(crate) struct AnthropicStream {
    id: String,
    model: String,
    created: i64,
    input_tokens: u64,
    /// Content block index → tool call index.
    tools: HashMap<u64, u32>,
}

impl AnthropicStream {
    pub(crate) fn new(model: &str, created: i64) -> Self {
        AnthropicStream {
            id: String::new(),
            model: model.to_owned(),
            created,
            input_tokens: 0,
            tools: HashMap::new(),
        }
    }

    fn chunk(&self, delta: Delta) -> Translated {
        Translated::chunk(convert::chunk(
            &self.id,
            &self.model,
            self.created,
            delta,
            None,
            None,
        ))
    }
}

impl StreamTranslator for AnthropicStream {
    fn translate(&mut self, event: &SseEvent) -> Result<Translated, WireError> {
        let v: Value = serde_json::from_str(&event.data)
            .map_err(|e| WireError::bad_response(format!("invalid stream event: {e}")))?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        Ok(match ty {
            "message_start" => {
                let msg = v.get("message").unwrap_or(&Value::Null);
                if let Some(id) = msg.get("id").and_then(Value::as_str) {
                    self.id = id.to_owned();
                }
                if let Some(m) = msg.get("model").and_then(Value::as_str) {
                    self.model = m.to_owned();
                }
                if let Some(u) = msg.get("usage") {
                    self.input_tokens = usage_of(u).prompt_tokens;
                }
                self.chunk(convert::role_delta())
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let n = self.tools.len() as u32;
                        self.tools.insert(index, n);
                        self.chunk(Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: n,
                                id: block.get("id").and_then(Value::as_str).map(str::to_owned),
                                kind: Some("function".to_owned()),
                                function: Some(FunctionCallDelta {
                                    name: block
                                        .get("name")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                    arguments: Some(String::new()),
                                }),
                            }]),
                            ..Delta::default()
                        })
                    }
                    Some("text") => match block.get("text").and_then(Value::as_str) {
                        Some(t) if !t.is_empty() => self.chunk(convert::text_delta(t)),
                        _ => Translated::nothing(),
                    },
                    _ => Translated::nothing(),
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => self.chunk(convert::text_delta(
                        d.get("text").and_then(Value::as_str).unwrap_or(""),
                    )),
                    Some("input_json_delta") => {
                        let Some(n) = self.tools.get(&index).copied() else {
                            return Err(WireError::bad_response(
                                "input_json_delta for an unknown block",
                            ));
                        };
                        self.chunk(Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: n,
                                id: None,
                                kind: None,
                                function: Some(FunctionCallDelta {
                                    name: None,
                                    arguments: d
                                        .get("partial_json")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                }),
                            }]),
                            ..Delta::default()
                        })
                    }
                    Some("thinking_delta") => self.chunk(convert::reasoning_delta(
                        d.get("thinking").and_then(Value::as_str).unwrap_or(""),
                    )),
                    _ => Translated::nothing(),
                }
            }
            "message_delta" => {
                let reason = v
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .map(finish_reason);
                let usage = v.get("usage").map(|u| {
                    let input = match usage_of(u).prompt_tokens {
                        0 => self.input_tokens,
                        n => n,
                    };
                    Usage::new(input, convert::u64_at(u, "/output_tokens"))
                });
                Translated::chunk(convert::chunk(
                    &self.id,
                    &self.model,
                    self.created,
                    Delta::default(),
                    reason,
                    usage,
                ))
            }
            "message_stop" => Translated::done(None),
            "error" => return Err(stream_error(&v)),
            // ping, content_block_stop, and event types added later.
            _ => Translated::nothing(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).expect("request")
    }

    #[test]
    fn request_translation_full() {
        let r = req(json!({
            "model": "claude-sonnet-4-20250514",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": "use metric units"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is in these?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"dog\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "a dog"},
                {"role": "user", "content": "thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "search",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "parallel_tool_calls": false,
            "stop": "END",
            "temperature": 0.2,
            "user": "u-1",
            "seed": 3
        }));
        let got = to_request(&r, true).expect("translate");
        let want = json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "be brief"}, {"type": "text", "text": "use metric units"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "what is in these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "dog"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "a dog"},
                    {"type": "text", "text": "thanks"}
                ]}
            ],
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "stream": true,
            "tools": [{"name": "lookup", "description": "search",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
            "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "u-1"}
        });
        assert_eq!(got, want);
    }

    #[test]
    fn request_defaults_and_errors() {
        let r = req(
            json!({"model": "m", "max_completion_tokens": 50, "tool_choice": "required",
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}),
        );
        let got = to_request(&r, false).expect("ok");
        assert_eq!(got["max_tokens"], 50);
        assert_eq!(got["system"], "s");
        assert_eq!(got["tool_choice"], json!({"type": "any"}));
        assert!(got.get("stream").is_none());
        let bad = req(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
        );
        assert_eq!(
            to_request(&bad, false).expect_err("bad").kind,
            ProviderErrorKind::InvalidRequest
        );
        let bad = req(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert!(to_request(&bad, false).is_err());
    }

    #[test]
    fn response_translation() {
        let v = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 20, "output_tokens": 10, "cache_read_input_tokens": 5}
        });
        let r = from_response(&v, 42).expect("response");
        let got = serde_json::to_value(&r).expect("json");
        assert_eq!(
            got,
            json!({
                "id": "msg_01", "object": "chat.completion", "created": 42, "model": "claude-sonnet-4-20250514",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Let me check.",
                    "tool_calls": [{"id": "toolu_01", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 25, "completion_tokens": 10, "total_tokens": 35}
            })
        );
        for (stop, want) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
        ] {
            assert_eq!(finish_reason(stop), want);
        }
        let only_tool = json!({"id": "m", "model": "x", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "stop_reason": "tool_use"});
        assert_eq!(
            from_response(&only_tool, 0).expect("ok").choices[0]
                .message
                .content,
            None
        );
        assert_eq!(
            from_response(&json!({"id": 1}), 0).expect_err("bad").kind,
            ProviderErrorKind::BadResponse
        );
    }

    fn run(events: &[(&str, Value)]) -> (Vec<Value>, bool, Option<WireError>) {
        let mut t = AnthropicStream::new("req-model", 7);
        let mut out = Vec::new();
        for (name, data) in events {
            let ev = SseEvent {
                event: Some((*name).to_owned()),
                data: data.to_string(),
            };
            match t.translate(&ev) {
                Ok(tr) => {
                    if let Some(c) = tr.chunk {
                        out.push(serde_json::to_value(c).expect("json"));
                    }
                    if tr.done {
                        return (out, true, None);
                    }
                }
                Err(e) => return (out, false, Some(e)),
            }
        }
        (out, false, None)
    }

    #[test]
    fn stream_text_and_tool_call() {
        let events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [], "model": "claude-x", "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\": "}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"x\"}"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ];
        let (chunks, done, err) = run(&events);
        assert!(done && err.is_none());
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(chunks[0]["id"], "msg_1");
        assert_eq!(chunks[0]["model"], "claude-x");
        assert_eq!(*deltas[0], json!({"role": "assistant", "content": ""}));
        assert_eq!(*deltas[1], json!({"content": "Hello"}));
        assert_eq!(
            *deltas[2],
            json!({"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function", "function": {"name": "lookup", "arguments": ""}}]})
        );
        assert_eq!(
            *deltas[3],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\": "}}]})
        );
        assert_eq!(
            *deltas[4],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]})
        );
        let last = chunks.last().expect("last");
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
        );
        assert_eq!(chunks.len(), 6);
    }

    #[test]
    fn stream_error_event() {
        let events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "m", "model": "x", "usage": {"input_tokens": 1}}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ];
        let (chunks, done, err) = run(&events);
        assert_eq!(chunks.len(), 1);
        assert!(!done);
        let err = err.expect("error");
        assert_eq!(err.kind, ProviderErrorKind::Upstream);
        assert_eq!(err.status, Some(529));
        assert!(err.message.contains("Overloaded"));
    }

    #[test]
    fn model_pages() {
        let body = json!({"data": [
            {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4", "created_at": "2025-05-22T00:00:00Z"},
            {"type": "model", "id": "claude-opus-4-6", "display_name": "Claude Opus 4.6", "created_at": "2026-02-01T00:00:00Z",
             "max_input_tokens": 200000, "max_tokens": 128000,
             "capabilities": {"image_input": {"supported": true}, "thinking": {"supported": true}, "pdf_input": {"supported": false}}}
        ], "has_more": true, "first_id": "claude-sonnet-4-20250514", "last_id": "claude-opus-4-6"});
        let page = parse_model_page("anthropic", &body).expect("page");
        assert_eq!(page.next.as_deref(), Some("claude-opus-4-6"));
        let m = &page.models[0];
        assert_eq!(m.name, "Claude Sonnet 4");
        assert_eq!(m.created_at.as_deref(), Some("2025-05-22T00:00:00Z"));
        assert!(m.supports_chat);
        let o = &page.models[1];
        assert_eq!(
            (o.context_length, o.max_tokens),
            (Some(200000), Some(128000))
        );
        assert!(o.has_capability(Capability::Vision) && o.has_capability(Capability::Reasoning));
        assert!(!o.has_capability(Capability::PdfInput));
        assert_eq!(m.status, None, "no lifecycle field: unknown");
        let page = parse_model_page(
            "anthropic",
            &json!({"data": [
                {"type": "model", "id": "a", "lifecycle": "active",
                 "capabilities": {"structured_outputs": {"supported": true}}},
                {"type": "model", "id": "b", "lifecycle": "deprecated"},
                {"type": "model", "id": "c", "lifecycle": "retired"}
            ], "has_more": false, "first_id": "a", "last_id": "c"}),
        )
        .expect("page");
        let st: Vec<_> = page.models.iter().map(|m| m.status).collect();
        assert_eq!(
            st,
            [
                Some(ModelStatus::Active),
                Some(ModelStatus::Deprecated),
                Some(ModelStatus::Deprecated)
            ]
        );
        assert!(page.models[0].has_capability(Capability::JsonMode));
        assert!(page.next.is_none());
        let e = parse_model_page("a", &json!({"data": [], "has_more": true})).expect_err("err");
        assert_eq!(e.kind, ProviderErrorKind::BadResponse);
        assert!(parse_model_page("a", &json!({"nope": 1})).is_err());
    }
}
