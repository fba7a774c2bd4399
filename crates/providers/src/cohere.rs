//! The Cohere wire format: `GET /v1/models` (`page_token` pagination) and the v2 chat API
//! (`POST /v2/chat`), translated to and from the OpenAI chat schema, streams included.
//!
//! Auth is a bearer key. Translation lives in pure functions: [`to_request`],
//! [`from_response`] and [`CohereStream::translate`].

use async_trait::async_trait;
use modelgate_types::chat::{
    ChatRequest, ChatResponse, ContentPart, Delta, FunctionCallDelta, MessageContent, Role,
    ToolCallDelta, Usage,
};
use modelgate_types::{Capability, Model, ModelStatus, ProviderKind};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::convert::{self, ResponseParts};
use crate::http::{unix_now, Upstream, WireError};
use crate::sse::{self, SseEvent, StreamTranslator, Translated};
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

const PAGE_SIZE: u32 = 1000;
const MAX_PAGES: usize = 1000;

/// The Cohere adapter.
#[derive(Debug)]
pub(crate) struct CohereProvider {
    up: Upstream,
}

impl CohereProvider {
    pub(crate) fn new(up: Upstream) -> Self {
        CohereProvider { up }
    }

    fn authed(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, ProviderError> {
        let rb = self.up.request(method, &self.up.url(path));
        self.up.with_key(rb, "authorization", "Bearer ")
    }

    async fn page(&self, size: u32, token: Option<&str>) -> Result<Value, ProviderError> {
        let mut query: Vec<(&str, String)> = vec![("page_size", size.to_string())];
        if let Some(t) = token {
            query.push(("page_token", t.to_owned()));
        }
        let rb = self.authed(Method::GET, "/v1/models")?.query(&query);
        self.up.json(rb).await
    }
}

#[async_trait]
impl Provider for CohereProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Cohere
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let body = self.page(PAGE_SIZE, token.as_deref()).await?;
            let (models, next) =
                parse_model_page(&self.up.name, &body).map_err(|e| self.up.wire(e))?;
            out.extend(models);
            match next {
                Some(n) if token.as_deref() == Some(n.as_str()) => {
                    return Err(self.up.error(
                        ProviderErrorKind::BadResponse,
                        "pagination token did not advance",
                    ))
                }
                Some(n) => token = Some(n),
                None => return Ok(out),
            }
        }
        Err(self
            .up
            .error(ProviderErrorKind::BadResponse, "too many model pages"))
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = to_request(request, false).map_err(|e| self.up.wire(e))?;
        let rb = self.authed(Method::POST, "/v2/chat")?.json(&body);
        let v: Value = self.up.json(rb).await?;
        from_response(&v, &request.model, unix_now()).map_err(|e| self.up.wire(e))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let body = to_request(request, true).map_err(|e| self.up.wire(e))?;
        let rb = self
            .authed(Method::POST, "/v2/chat")?
            .header("accept", "text/event-stream")
            .json(&body);
        let resp = self.up.open_stream(rb).await?;
        Ok(sse::chat_stream(
            &self.up,
            resp,
            CohereStream::new(&request.model, unix_now()),
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.page(1, None).await.map(|_| ())
    }
}

/// One page of `GET /v1/models`: the models and the `next_page_token`.
pub(crate) fn parse_model_page(
    provider: &str,
    body: &Value,
) -> Result<(Vec<Model>, Option<String>), WireError> {
    let models = body
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::bad_response("model list has no 'models' array"))?
        .iter()
        .filter_map(|v| map_model(provider, v))
        .collect();
    let next = body
        .get("next_page_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok((models, next))
}

/// Maps one Cohere model: `name`, `context_length`, `endpoints` (`chat` → chat,
/// `generate` → completion, `embed` → embeddings), `features` and `is_deprecated`.
pub(crate) fn map_model(provider: &str, v: &Value) -> Option<Model> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let mut m = Model::new(provider, name);
    m.context_length = v
        .get("context_length")
        .and_then(Value::as_f64)
        .filter(|n| *n > 0.0)
        .map(|n| n as u64);
    let list = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default()
    };
    let endpoints = list("endpoints");
    m.supports_chat = endpoints.iter().any(|e| e == "chat");
    m.supports_completion = endpoints.iter().any(|e| e == "generate");
    if m.supports_chat {
        m.add_capability(Capability::Streaming);
    }
    if endpoints.iter().any(|e| e == "embed") {
        m.add_capability(Capability::Embeddings);
    }
    for f in list("features") {
        match f.as_str() {
            "tools" | "strict_tools" | "tool_use" => {
                m.add_capability(Capability::ToolUse);
                m.add_capability(Capability::FunctionCalling);
            }
            "vision" | "image_input" => m.add_capability(Capability::Vision),
            "json_mode" => m.add_capability(Capability::JsonMode),
            "json_schema" | "structured_outputs" => {
                m.add_capability(Capability::StructuredOutput);
                m.add_capability(Capability::JsonMode);
            }
            "reasoning" | "thinking" => m.add_capability(Capability::Reasoning),
            _ => {}
        }
    }
    m.status = v.get("is_deprecated").and_then(Value::as_bool).map(|d| {
        if d {
            ModelStatus::Deprecated
        } else {
            ModelStatus::Active
        }
    });
    Some(m)
}

/// OpenAI chat request → Cohere v2 chat request.
pub(crate) fn to_request(req: &ChatRequest, stream: bool) -> Result<Value, WireError> {
    let mut messages = Vec::with_capacity(req.messages.len());
    for msg in &req.messages {
        let m = match msg.role {
            Role::System | Role::Developer => json!({"role": "system", "content": msg.text()}),
            Role::User => json!({"role": "user", "content": user_content(msg.content.as_ref())?}),
            Role::Assistant => {
                let mut o = Map::new();
                o.insert("role".into(), json!("assistant"));
                let text = msg.text();
                if !text.is_empty() {
                    o.insert("content".into(), json!(text));
                }
                if let Some(calls) = msg.tool_calls.as_ref().filter(|c| !c.is_empty()) {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                "function": {"name": c.function.name, "arguments": c.function.arguments}})
                        })
                        .collect();
                    o.insert("tool_calls".into(), Value::Array(calls));
                }
                if let Some(plan) = msg.extra.get("tool_plan") {
                    o.insert("tool_plan".into(), plan.clone());
                }
                Value::Object(o)
            }
            Role::Tool => {
                let id = msg.tool_call_id.clone().ok_or_else(|| {
                    WireError::invalid_request("a tool message needs tool_call_id")
                })?;
                json!({"role": "tool", "tool_call_id": id, "content": msg.text()})
            }
            Role::Function => {
                return Err(WireError::invalid_request(
                    "legacy function messages are not supported for cohere; use tools",
                ))
            }
        };
        messages.push(m);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), json!(t.function.name));
                if let Some(d) = &t.function.description {
                    f.insert("description".into(), json!(d));
                }
                f.insert(
                    "parameters".into(),
                    t.function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    match &req.tool_choice {
        None => {}
        Some(Value::String(s)) => match s.as_str() {
            "auto" => {}
            "required" => {
                body.insert("tool_choice".into(), json!("REQUIRED"));
            }
            "none" => {
                body.insert("tool_choice".into(), json!("NONE"));
            }
            other => {
                return Err(WireError::invalid_request(format!(
                    "unknown tool_choice '{other}'"
                )))
            }
        },
        // Cohere cannot force one named tool: require a tool call from the declared ones.
        Some(_) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        body.insert("p".into(), json!(p));
    }
    if let Some(n) = req.output_limit() {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some(stop) = &req.stop {
        body.insert("stop_sequences".into(), json!(stop.to_vec()));
    }
    for (from, to) in [
        ("top_k", "k"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
    ] {
        if let Some(v) = req.extra.get(from) {
            body.insert(to.into(), v.clone());
        }
    }
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut o = json!({"type": "json_object"});
                if let (Some(s), Value::Object(m)) = (rf.pointer("/json_schema/schema"), &mut o) {
                    m.insert("json_schema".into(), s.clone());
                }
                body.insert("response_format".into(), o);
            }
            _ => {}
        }
    }
    Ok(Value::Object(body))
}

fn user_content(content: Option<&MessageContent>) -> Result<Value, WireError> {
    match content {
        None => Ok(json!("")),
        Some(MessageContent::Text(t)) => Ok(json!(t)),
        Some(MessageContent::Parts(parts)) => {
            let parts: Result<Vec<Value>, WireError> = parts
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => Ok(json!({"type": "text", "text": text})),
                    ContentPart::ImageUrl { image_url } => {
                        Ok(json!({"type": "image_url", "image_url": {"url": image_url.url}}))
                    }
                    _ => Err(WireError::invalid_request(
                        "cohere accepts only text and image_url content parts",
                    )),
                })
                .collect();
            Ok(Value::Array(parts?))
        }
    }
}

/// Cohere `finish_reason` → OpenAI `finish_reason`.
pub(crate) fn finish_reason(reason: &str) -> String {
    match reason {
        "COMPLETE" | "STOP_SEQUENCE" => "stop",
        "MAX_TOKENS" => "length",
        "TOOL_CALL" => "tool_calls",
        "ERROR_TOXIC" => "content_filter",
        other => return other.to_ascii_lowercase(),
    }
    .to_owned()
}

fn usage_of(u: &Value) -> Usage {
    let tokens = if u.get("tokens").is_some() {
        "/tokens"
    } else {
        "/billed_units"
    };
    Usage::new(
        convert::u64_at(u, &format!("{tokens}/input_tokens")),
        convert::u64_at(u, &format!("{tokens}/output_tokens")),
    )
}

/// Cohere v2 chat response → OpenAI `chat.completion`.
pub(crate) fn from_response(
    v: &Value,
    model: &str,
    created: i64,
) -> Result<ChatResponse, WireError> {
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| WireError::bad_response("response has no message"))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    for part in msg
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(part.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(part.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            _ => {}
        }
    }
    let calls: Vec<_> = msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            modelgate_types::chat::ToolCall {
                id,
                kind: "function".to_owned(),
                function: modelgate_types::chat::FunctionCall {
                    name,
                    arguments: args.to_owned(),
                },
            }
        })
        .collect();
    Ok(ResponseParts {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        model: model.to_owned(),
        created,
        text: (!text.is_empty() || calls.is_empty()).then_some(text),
        tool_calls: calls,
        reasoning: Some(reasoning),
        finish_reason: v
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(finish_reason),
        usage: v.get("usage").map(usage_of),
    }
    .build())
}

/// Cohere v2 stream events (`type` in each `data:`) → OpenAI chunks; ends at `message-end`.
#[derive(Debug)]
pub(crate) struct CohereStream {
    id: String,
    model: String,
    created: i64,
    tools: u32,
}

impl CohereStream {
    pub(crate) fn new(model: &str, created: i64) -> Self {
        CohereStream {
            id: String::new(),
            model: model.to_owned(),
            created,
            tools: 0,
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

    fn tool_delta(
        &self,
        index: u32,
        id: Option<String>,
        name: Option<String>,
        args: Option<String>,
    ) -> Delta {
        Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                kind: id.as_ref().map(|_| "function".to_owned()),
                id,
                function: Some(FunctionCallDelta {
                    name,
                    arguments: args,
                }),
            }]),
            ..Delta::default()
        }
    }
}

impl StreamTranslator for CohereStream {
    fn translate(&mut self, event: &SseEvent) -> Result<Translated, WireError> {
        let v: Value = serde_json::from_str(&event.data)
            .map_err(|e| WireError::bad_response(format!("invalid stream event: {e}")))?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        let dm = v.pointer("/delta/message").unwrap_or(&Value::Null);
        Ok(match ty {
            "message-start" => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    self.id = id.to_owned();
                }
                self.chunk(convert::role_delta())
            }
            "content-delta" => {
                if let Some(t) = dm.pointer("/content/text").and_then(Value::as_str) {
                    self.chunk(convert::text_delta(t))
                } else if let Some(t) = dm.pointer("/content/thinking").and_then(Value::as_str) {
                    self.chunk(convert::reasoning_delta(t))
                } else {
                    Translated::nothing()
                }
            }
            "tool-call-start" => {
                let call = dm.get("tool_calls").unwrap_or(&Value::Null);
                let index = self.tools;
                self.tools += 1;
                let id = call.get("id").and_then(Value::as_str).map(str::to_owned);
                let name = call
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let args = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                self.chunk(self.tool_delta(index, id, name, Some(args)))
            }
            "tool-call-delta" => {
                let Some(index) = self.tools.checked_sub(1) else {
                    return Err(WireError::bad_response(
                        "tool-call-delta before tool-call-start",
                    ));
                };
                let args = dm
                    .pointer("/tool_calls/function/arguments")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.chunk(self.tool_delta(index, None, None, args))
            }
            "message-end" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                if let Some(err) = d
                    .get("error")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    return Err(WireError::new(ProviderErrorKind::Upstream, err.to_owned()));
                }
                let reason = d
                    .get("finish_reason")
                    .and_then(Value::as_str)
                    .map(finish_reason);
                let usage = d.get("usage").map(usage_of);
                Translated::done(Some(convert::chunk(
                    &self.id,
                    &self.model,
                    self.created,
                    Delta::default(),
                    reason,
                    usage,
                )))
            }
            "error" => {
                let msg = v
                    .get("message")
                    .or_else(|| v.pointer("/error/message"))
                    .and_then(Value::as_str)
                    .unwrap_or("upstream error");
                return Err(WireError::new(ProviderErrorKind::Upstream, msg.to_owned()));
            }
            // content-start, content-end, tool-plan-delta, tool-call-end, citation-*.
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
    fn request_translation() {
        let r = req(json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "tc_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                {"role": "tool", "tool_call_id": "tc_1", "content": "result"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "temperature": 0.3, "top_p": 0.8, "max_tokens": 10, "stop": "X",
            "response_format": {"type": "json_object"}, "seed": 1
        }));
        assert_eq!(
            to_request(&r, true).expect("ok"),
            json!({
                "model": "command-a-03-2025",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                    {"role": "assistant", "tool_calls": [{"id": "tc_1", "type": "function",
                        "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                    {"role": "tool", "tool_call_id": "tc_1", "content": "result"}
                ],
                "stream": true,
                "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
                "tool_choice": "REQUIRED",
                "temperature": 0.3, "p": 0.8, "max_tokens": 10, "stop_sequences": ["X"], "seed": 1,
                "response_format": {"type": "json_object"}
            })
        );
    }

    #[test]
    fn response_translation() {
        let v = json!({
            "id": "c-1", "finish_reason": "TOOL_CALL",
            "message": {"role": "assistant", "tool_plan": "I will look it up",
                "tool_calls": [{"id": "lookup_abc", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 3}, "tokens": {"input_tokens": 50, "output_tokens": 7}}
        });
        let r = serde_json::to_value(from_response(&v, "command-a", 1).expect("ok")).expect("json");
        assert_eq!(
            r,
            json!({
                "id": "c-1", "object": "chat.completion", "created": 1, "model": "command-a",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "lookup_abc", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"x\"}"}}]},
                    "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}
            })
        );
        let v = json!({"id": "c-2", "finish_reason": "COMPLETE", "message": {"role": "assistant",
            "content": [{"type": "text", "text": "Hi"}]}, "usage": {"billed_units": {"input_tokens": 2, "output_tokens": 1}}});
        let r = from_response(&v, "m", 0).expect("ok");
        assert_eq!(r.choices[0].message.content.as_deref(), Some("Hi"));
        assert_eq!(r.usage, Some(Usage::new(2, 1)));
        for (c, o) in [
            ("COMPLETE", "stop"),
            ("MAX_TOKENS", "length"),
            ("TOOL_CALL", "tool_calls"),
            ("STOP_SEQUENCE", "stop"),
        ] {
            assert_eq!(finish_reason(c), o);
        }
        assert_eq!(
            from_response(&json!({"id": "x"}), "m", 0)
                .expect_err("bad")
                .kind,
            ProviderErrorKind::BadResponse
        );
    }

    #[test]
    fn stream_sequence() {
        let events = [
            json!({"type": "message-start", "id": "s-1", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
            json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello"}}}}),
            json!({"type": "content-end", "index": 0}),
            json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}}),
            json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": ""}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"q\":"}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "\"x\"}"}}}}}),
            json!({"type": "tool-call-end", "index": 0}),
            json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 4}, "tokens": {"input_tokens": 30, "output_tokens": 4}}}}),
        ];
        let mut t = CohereStream::new("command-a", 5);
        let mut out = Vec::new();
        let mut done = false;
        for e in events {
            let tr = t
                .translate(&SseEvent {
                    event: None,
                    data: e.to_string(),
                })
                .expect("ok");
            if let Some(c) = tr.chunk {
                out.push(serde_json::to_value(c).expect("json"));
            }
            done = tr.done;
        }
        assert!(done);
        let d: Vec<&Value> = out.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(out[0]["id"], "s-1");
        assert_eq!(*d[0], json!({"role": "assistant", "content": ""}));
        assert_eq!(*d[1], json!({"content": "Hello"}));
        assert_eq!(
            *d[2],
            json!({"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "lookup", "arguments": ""}}]})
        );
        assert_eq!(
            *d[3],
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":"}}]})
        );
        let last = out.last().expect("last");
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(last["usage"]["prompt_tokens"], 30);
        assert_eq!(out.len(), 6);
    }

    #[test]
    fn model_page() {
        let body = json!({"models": [
            {"name": "command-a-03-2025", "is_deprecated": false, "endpoints": ["chat"], "finetuned": false,
             "context_length": 256000, "tokenizer_url": "https://x", "default_endpoints": ["chat"],
             "features": ["tools", "strict_tools", "json_mode", "json_schema"]},
            {"name": "embed-v4.0", "endpoints": ["embed"], "context_length": 128000, "features": ["vision"]},
            {"name": "command", "is_deprecated": true, "endpoints": ["generate", "chat"], "context_length": 4096.0}
        ], "next_page_token": "p2"});
        let (models, next) = parse_model_page("cohere", &body).expect("page");
        assert_eq!(next.as_deref(), Some("p2"));
        let a = &models[0];
        assert!(a.supports_chat && !a.supports_completion);
        assert_eq!(a.context_length, Some(256000));
        for c in [
            Capability::ToolUse,
            Capability::FunctionCalling,
            Capability::JsonMode,
            Capability::StructuredOutput,
        ] {
            assert!(a.has_capability(c), "{c}");
        }
        assert_eq!(a.status, Some(ModelStatus::Active));
        assert!(!models[1].supports_chat && models[1].has_capability(Capability::Embeddings));
        assert_eq!(models[2].status, Some(ModelStatus::Deprecated));
        assert!(models[2].supports_completion);
        assert_eq!(
            parse_model_page("c", &json!({"models": [], "next_page_token": ""}))
                .expect("ok")
                .1,
            None
        );
        assert!(parse_model_page("c", &json!({})).is_err());
    }
}
