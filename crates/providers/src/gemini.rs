//! The Google Gemini wire format (Generative Language API `v1beta`): `GET /v1beta/models`
//! (`pageToken` pagination), `:generateContent` and `:streamGenerateContent?alt=sse`,
//! translated to and from the OpenAI chat schema.
//!
//! The key travels only in the `x-goog-api-key` header, never in the URL. Translation lives
//! in pure functions: [`to_request`], [`from_response`] and [`GeminiStream::translate`].

use std::collections::HashMap;

use async_trait::async_trait;
use modelgate_types::chat::{
    ChatRequest, ChatResponse, ContentPart, Delta, FunctionCallDelta, MessageContent, Role,
    ToolCallDelta, Usage,
};
use modelgate_types::{Capability, Model, ProviderKind};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::convert::{self, ResponseParts};
use crate::http::{encode_segment, unix_now, Upstream, WireError};
use crate::sse::{self, SseEvent, StreamTranslator, Translated};
use crate::{ChatStream, Provider, ProviderError, ProviderErrorKind};

const PAGE_SIZE: u32 = 1000;
const MAX_PAGES: usize = 1000;
/// Separates a tool call id from the Gemini `thoughtSignature` carried inside it, so a
/// client echoing the id back returns the signature Gemini 3 requires.
const SIG_SEP: &str = "__thought__";

/// The Gemini adapter.
#[derive(Debug)]
pub(crate) struct GeminiProvider {
    up: Upstream,
}

impl GeminiProvider {
    pub(crate) fn new(up: Upstream) -> Self {
        GeminiProvider { up }
    }

    fn authed(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder, ProviderError> {
        let rb = self.up.request(method, &self.up.url(path));
        self.up.with_key(rb, "x-goog-api-key", "")
    }

    async fn page(&self, size: u32, token: Option<&str>) -> Result<Value, ProviderError> {
        let mut query: Vec<(&str, String)> = vec![("pageSize", size.to_string())];
        if let Some(t) = token {
            query.push(("pageToken", t.to_owned()));
        }
        let rb = self.authed(Method::GET, "/v1beta/models")?.query(&query);
        self.up.json(rb).await
    }

    fn model_path(model: &str, method: &str) -> String {
        let id = model.strip_prefix("models/").unwrap_or(model);
        format!("/v1beta/models/{}:{method}", encode_segment(id))
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        &self.up.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
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
        let body = to_request(request).map_err(|e| self.up.wire(e))?;
        let path = Self::model_path(&request.model, "generateContent");
        let rb = self.authed(Method::POST, &path)?.json(&body);
        let v: Value = self.up.json(rb).await?;
        from_response(&v, &request.model, unix_now()).map_err(|e| self.up.wire(e))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let body = to_request(request).map_err(|e| self.up.wire(e))?;
        let path = Self::model_path(&request.model, "streamGenerateContent");
        let rb = self
            .authed(Method::POST, &path)?
            .query(&[("alt", "sse")])
            .header("accept", "text/event-stream")
            .json(&body);
        let resp = self.up.open_stream(rb).await?;
        Ok(sse::chat_stream(
            &self.up,
            resp,
            GeminiStream::new(&request.model, unix_now()),
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.page(1, None).await.map(|_| ())
    }
}

/// One page of `GET /v1beta/models`: the models and the `nextPageToken`.
pub(crate) fn parse_model_page(
    provider: &str,
    body: &Value,
) -> Result<(Vec<Model>, Option<String>), WireError> {
    let models = match body.get("models") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| map_model(provider, v)).collect(),
        // An empty page may omit the field.
        None if body.is_object() => Vec::new(),
        _ => return Err(WireError::bad_response("model list has no 'models' array")),
    };
    let next = body
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok((models, next))
}

/// Maps one Gemini model: `models/` prefix stripped, `displayName`, `description`,
/// `inputTokenLimit`, `outputTokenLimit`, `supportedGenerationMethods` (`generateContent`
/// → chat, `embedContent` → embeddings), `thinking` → reasoning.
pub(crate) fn map_model(provider: &str, v: &Value) -> Option<Model> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let id = name.strip_prefix("models/").unwrap_or(name);
    let mut m = Model::new(provider, id);
    if let Some(d) = v.get("displayName").and_then(Value::as_str) {
        m.name = d.to_owned();
    }
    m.description = v
        .get("description")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    m.context_length = v.get("inputTokenLimit").and_then(Value::as_u64);
    m.max_tokens = v.get("outputTokenLimit").and_then(Value::as_u64);
    let methods: Vec<&str> = v
        .get("supportedGenerationMethods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    m.supports_chat = methods.contains(&"generateContent");
    if m.supports_chat {
        m.add_capability(Capability::Streaming);
    }
    if methods
        .iter()
        .any(|x| *x == "embedContent" || *x == "batchEmbedContents")
    {
        m.add_capability(Capability::Embeddings);
    }
    if v.get("thinking").and_then(Value::as_bool) == Some(true) {
        m.add_capability(Capability::Reasoning);
    }
    Some(m)
}

/// OpenAI chat request → Gemini `GenerateContentRequest`.
pub(crate) fn to_request(req: &ChatRequest) -> Result<Value, WireError> {
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut call_names: HashMap<String, String> = HashMap::new();
    let mut push = |role: &'static str, parts: Vec<Value>| {
        if parts.is_empty() {
            return;
        }
        match contents.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => contents.push((role, parts)),
        }
    };
    for msg in &req.messages {
        match msg.role {
            Role::System | Role::Developer => {
                let t = msg.text();
                if !t.is_empty() {
                    system.push(json!({"text": t}));
                }
            }
            Role::User => push("user", parts_of(msg.content.as_ref())?),
            Role::Assistant => {
                let mut parts = parts_of(msg.content.as_ref())?;
                for call in msg.tool_calls.iter().flatten() {
                    call_names.insert(call.id.clone(), call.function.name.clone());
                    let (id, sig) = match call.id.split_once(SIG_SEP) {
                        Some((id, sig)) => (id, Some(sig)),
                        None => (call.id.as_str(), None),
                    };
                    let mut fc = Map::new();
                    fc.insert("name".into(), json!(call.function.name));
                    fc.insert(
                        "args".into(),
                        convert::parse_arguments(&call.function.arguments)?,
                    );
                    if !id.starts_with("call_") && !id.is_empty() {
                        fc.insert("id".into(), json!(id));
                    }
                    let mut part = Map::new();
                    part.insert("functionCall".into(), Value::Object(fc));
                    if let Some(sig) = sig {
                        part.insert("thoughtSignature".into(), json!(sig));
                    }
                    parts.push(Value::Object(part));
                }
                push("model", parts);
            }
            Role::Tool | Role::Function => {
                let id = msg.tool_call_id.clone().unwrap_or_default();
                let name = call_names
                    .get(&id)
                    .cloned()
                    .or_else(|| msg.name.clone())
                    .ok_or_else(|| {
                        WireError::invalid_request(
                            "a tool message must answer a tool call of an earlier assistant message",
                        )
                    })?;
                let text = msg.text();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    Ok(other) => json!({"result": other}),
                    Err(_) => json!({"result": text}),
                };
                let mut fr = Map::new();
                fr.insert("name".into(), json!(name));
                fr.insert("response".into(), response);
                let plain_id = id.split(SIG_SEP).next().unwrap_or_default();
                if !plain_id.starts_with("call_") && !plain_id.is_empty() {
                    fr.insert("id".into(), json!(plain_id));
                }
                push("user", vec![json!({"functionResponse": fr})]);
            }
        }
    }
    let mut body = Map::new();
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.function.name));
                if let Some(desc) = &t.function.description {
                    d.insert("description".into(), json!(desc));
                }
                if let Some(p) = &t.function.parameters {
                    d.insert("parameters".into(), clean_schema(p));
                }
                Value::Object(d)
            })
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    let tool_config = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"mode": "AUTO"})),
            "required" => Some(json!({"mode": "ANY"})),
            "none" => Some(json!({"mode": "NONE"})),
            other => {
                return Err(WireError::invalid_request(format!(
                    "unknown tool_choice '{other}'"
                )))
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"mode": "ANY", "allowedFunctionNames": [name]})),
            None => {
                return Err(WireError::invalid_request(
                    "tool_choice object needs function.name",
                ))
            }
        },
    };
    if let Some(c) = tool_config {
        body.insert("toolConfig".into(), json!({"functionCallingConfig": c}));
    }
    let mut gen = Map::new();
    if let Some(t) = req.temperature {
        gen.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        gen.insert("topP".into(), json!(p));
    }
    if let Some(n) = req.output_limit() {
        gen.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(stop) = &req.stop {
        gen.insert("stopSequences".into(), json!(stop.to_vec()));
    }
    for (from, to) in [
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ] {
        if let Some(v) = req.extra.get(from) {
            gen.insert(to.into(), v.clone());
        }
    }
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                gen.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                gen.insert("responseMimeType".into(), json!("application/json"));
                if let Some(s) = rf.pointer("/json_schema/schema") {
                    gen.insert("responseJsonSchema".into(), s.clone());
                }
            }
            _ => {}
        }
    }
    if !gen.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen));
    }
    Ok(Value::Object(body))
}

/// Removes JSON-schema keywords Gemini's OpenAPI-subset `parameters` rejects.
fn clean_schema(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "$schema" | "additionalProperties" | "strict")
                })
                .map(|(k, v)| (k.clone(), clean_schema(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn parts_of(content: Option<&MessageContent>) -> Result<Vec<Value>, WireError> {
    let Some(content) = content else {
        return Ok(Vec::new());
    };
    match content {
        MessageContent::Text(t) if t.is_empty() => Ok(Vec::new()),
        MessageContent::Text(t) => Ok(vec![json!({"text": t})]),
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => Ok(json!({"text": text})),
                ContentPart::ImageUrl { image_url } => Ok(media_part(&image_url.url)),
                ContentPart::File { file } => match file.get("file_data").and_then(Value::as_str) {
                    Some(data) => Ok(media_part(data)),
                    None => Err(WireError::invalid_request(
                        "gemini needs file parts as file_data data URLs",
                    )),
                },
                ContentPart::InputAudio { input_audio } => {
                    let data = input_audio
                        .get("data")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let format = input_audio
                        .get("format")
                        .and_then(Value::as_str)
                        .unwrap_or("wav");
                    Ok(json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}))
                }
                ContentPart::Other(v) => Err(WireError::invalid_request(format!(
                    "content part type {} is not supported by gemini",
                    v.get("type").unwrap_or(&Value::Null)
                ))),
            })
            .collect(),
    }
}

fn media_part(url: &str) -> Value {
    match convert::parse_data_url(url) {
        Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
        None => json!({"fileData": {"mimeType": convert::guess_mime(url), "fileUri": url}}),
    }
}

/// Gemini `finishReason` → OpenAI `finish_reason`.
pub(crate) fn finish_reason(reason: &str) -> String {
    match reason {
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => "stop",
        "FINISH_REASON_UNSPECIFIED" | "OTHER" => "stop",
        other => return other.to_ascii_lowercase(),
    }
    .to_owned()
}

fn usage_of(u: &Value) -> Usage {
    let prompt = convert::u64_at(u, "/promptTokenCount");
    let completion =
        convert::u64_at(u, "/candidatesTokenCount") + convert::u64_at(u, "/thoughtsTokenCount");
    let mut usage = Usage::new(prompt, completion);
    if let Some(total) = u.get("totalTokenCount").and_then(Value::as_u64) {
        usage.total_tokens = total.max(prompt + completion);
    }
    usage
}

/// The text, reasoning and tool calls of one candidate; `first_call` numbers the calls.
struct CandidateParts {
    text: String,
    reasoning: String,
    calls: Vec<(String, String, Value)>,
}

fn candidate_parts(candidate: &Value, first_call: usize) -> CandidateParts {
    let mut out = CandidateParts {
        text: String::new(),
        reasoning: String::new(),
        calls: Vec::new(),
    };
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for p in parts {
        if let Some(fc) = p.get("functionCall") {
            let n = first_call + out.calls.len();
            let base = fc
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("call_{n}"));
            let id = match p.get("thoughtSignature").and_then(Value::as_str) {
                Some(sig) => format!("{base}{SIG_SEP}{sig}"),
                None => base,
            };
            let name = fc
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let args = fc.get("args").cloned().unwrap_or_else(|| json!({}));
            out.calls.push((id, name, args));
        } else if let Some(t) = p.get("text").and_then(Value::as_str) {
            if p.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(t);
            } else {
                out.text.push_str(t);
            }
        }
    }
    out
}

fn gemini_error(v: &Value) -> Option<WireError> {
    let err = v.get("error")?;
    let code = err.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("upstream error");
    Some(WireError::new(crate::http::kind_for_status(code), message).with_status(code))
}

/// Gemini `GenerateContentResponse` → OpenAI `chat.completion` (one choice per candidate).
pub(crate) fn from_response(
    v: &Value,
    model: &str,
    created: i64,
) -> Result<ChatResponse, WireError> {
    if let Some(e) = gemini_error(v) {
        return Err(e);
    }
    let candidates = match v.get("candidates") {
        Some(Value::Array(a)) => a.as_slice(),
        None if v.get("promptFeedback").is_some() => &[],
        _ => return Err(WireError::bad_response("response has no candidates")),
    };
    let model = v
        .get("modelVersion")
        .and_then(Value::as_str)
        .unwrap_or(model);
    let id = v
        .get("responseId")
        .and_then(Value::as_str)
        .map(|s| format!("chatcmpl-{s}"))
        .unwrap_or_else(|| format!("chatcmpl-gemini-{created}"));
    let usage = v.get("usageMetadata").map(usage_of);
    if candidates.is_empty() {
        // The prompt was blocked (promptFeedback.blockReason).
        return Ok(ResponseParts {
            id,
            model: model.to_owned(),
            created,
            text: None,
            tool_calls: Vec::new(),
            reasoning: None,
            finish_reason: Some("content_filter".to_owned()),
            usage,
        }
        .build());
    }
    let mut resp: Option<ChatResponse> = None;
    for (i, c) in candidates.iter().enumerate() {
        let parts = candidate_parts(c, 0);
        let has_calls = !parts.calls.is_empty();
        let finish = c.get("finishReason").and_then(Value::as_str).map(|r| {
            if has_calls && r == "STOP" {
                "tool_calls".to_owned()
            } else {
                finish_reason(r)
            }
        });
        let one = ResponseParts {
            id: id.clone(),
            model: model.to_owned(),
            created,
            text: (!parts.text.is_empty() || !has_calls).then_some(parts.text),
            tool_calls: parts
                .calls
                .into_iter()
                .map(|(id, name, args)| convert::tool_call(id, name, &args))
                .collect(),
            reasoning: Some(parts.reasoning),
            finish_reason: finish,
            usage,
        }
        .build();
        match &mut resp {
            None => resp = Some(one),
            Some(r) => {
                for mut choice in one.choices {
                    choice.index = i as u32;
                    r.choices.push(choice);
                }
            }
        }
    }
    resp.ok_or_else(|| WireError::bad_response("response has no candidates"))
}

/// Gemini SSE (`alt=sse`): each `data:` is a `GenerateContentResponse`; the stream ends
/// when the connection closes after a chunk with a `finishReason`.
#[derive(Debug)]
pub(crate) struct GeminiStream {
    id: String,
    model: String,
    created: i64,
    started: bool,
    calls: usize,
    finished: bool,
}

impl GeminiStream {
    pub(crate) fn new(model: &str, created: i64) -> Self {
        GeminiStream {
            id: format!("chatcmpl-gemini-{created}"),
            model: model.to_owned(),
            created,
            started: false,
            calls: 0,
            finished: false,
        }
    }
}

impl StreamTranslator for GeminiStream {
    fn translate(&mut self, event: &SseEvent) -> Result<Translated, WireError> {
        let v: Value = serde_json::from_str(&event.data)
            .map_err(|e| WireError::bad_response(format!("invalid stream event: {e}")))?;
        if let Some(e) = gemini_error(&v) {
            return Err(e);
        }
        if !self.started {
            if let Some(r) = v.get("responseId").and_then(Value::as_str) {
                self.id = format!("chatcmpl-{r}");
            }
            if let Some(m) = v.get("modelVersion").and_then(Value::as_str) {
                self.model = m.to_owned();
            }
        }
        let candidate = v.pointer("/candidates/0").cloned().unwrap_or(Value::Null);
        let parts = candidate_parts(&candidate, self.calls);
        let mut delta = Delta::default();
        if !self.started {
            delta.role = Some(Role::Assistant);
            self.started = true;
        }
        if !parts.text.is_empty() {
            delta.content = Some(parts.text);
        }
        if !parts.reasoning.is_empty() {
            delta
                .extra
                .insert("reasoning_content".into(), Value::String(parts.reasoning));
        }
        let has_calls = !parts.calls.is_empty();
        if has_calls {
            let deltas = parts
                .calls
                .into_iter()
                .enumerate()
                .map(|(i, (id, name, args))| ToolCallDelta {
                    index: (self.calls + i) as u32,
                    id: Some(id),
                    kind: Some("function".to_owned()),
                    function: Some(FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(args.to_string()),
                    }),
                })
                .collect::<Vec<_>>();
            self.calls += deltas.len();
            delta.tool_calls = Some(deltas);
        }
        let blocked =
            v.get("candidates").is_none() && v.pointer("/promptFeedback/blockReason").is_some();
        let finish = match candidate.get("finishReason").and_then(Value::as_str) {
            Some(r) if self.calls > 0 && r == "STOP" => Some("tool_calls".to_owned()),
            Some(r) => Some(finish_reason(r)),
            None if blocked => Some("content_filter".to_owned()),
            None => None,
        };
        let usage = finish
            .as_ref()
            .and_then(|_| v.get("usageMetadata"))
            .map(usage_of);
        if finish.is_some() {
            self.finished = true;
        }
        let empty = delta == Delta::default();
        if empty && finish.is_none() {
            return Ok(Translated::nothing());
        }
        Ok(Translated::chunk(convert::chunk(
            &self.id,
            &self.model,
            self.created,
            delta,
            finish,
            usage,
        )))
    }

    fn complete_at_eof(&self) -> bool {
        self.finished
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
            "model": "gemini-2.0-flash",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
                ]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_0", "content": "{\"answer\":\"a cat\"}"},
                {"role": "tool", "tool_call_id": "call_0", "content": "plain"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "search",
                "parameters": {"type": "object", "additionalProperties": false, "properties": {"q": {"type": "string"}}}}}],
            "tool_choice": "required",
            "temperature": 0.5, "top_p": 0.9, "max_tokens": 100, "stop": ["END"],
            "response_format": {"type": "json_object"}
        }));
        let got = to_request(&r).expect("translate");
        assert_eq!(
            got,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "what is this?"}, {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "cat"}}}]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "lookup", "response": {"answer": "a cat"}}},
                        {"functionResponse": {"name": "lookup", "response": {"result": "plain"}}}
                    ]}
                ],
                "systemInstruction": {"parts": [{"text": "be brief"}]},
                "tools": [{"functionDeclarations": [{"name": "lookup", "description": "search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
                "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100,
                    "stopSequences": ["END"], "responseMimeType": "application/json"}
            })
        );
        let orphan = req(
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]}),
        );
        assert_eq!(
            to_request(&orphan).expect_err("orphan").kind,
            ProviderErrorKind::InvalidRequest
        );
    }

    #[test]
    fn thought_signature_round_trips_through_the_tool_call_id() {
        let v = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "SIG"}]}, "finishReason": "STOP"}]});
        let r = from_response(&v, "gemini-3-pro", 1).expect("resp");
        let call = &r.choices[0].message.tool_calls.as_ref().expect("calls")[0];
        assert_eq!(call.id, "call_0__thought__SIG");
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        let back = req(json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "ok"}]}));
        let got = to_request(&back).expect("req");
        assert_eq!(
            got["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "SIG"})
        );
        assert_eq!(
            got["contents"][2]["parts"][0],
            json!({"functionResponse": {"name": "f", "response": {"result": "ok"}}})
        );
    }

    #[test]
    fn response_translation() {
        let v = json!({
            "candidates": [{"content": {"parts": [{"text": "Hello "}, {"text": "there"}], "role": "model"},
                "finishReason": "MAX_TOKENS", "index": 0}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6},
            "modelVersion": "gemini-2.0-flash", "responseId": "abc"
        });
        let r = serde_json::to_value(from_response(&v, "req", 9).expect("resp")).expect("json");
        assert_eq!(
            r,
            json!({
                "id": "chatcmpl-abc", "object": "chat.completion", "created": 9, "model": "gemini-2.0-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
            })
        );
        for (g, o) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
        ] {
            assert_eq!(finish_reason(g), o);
        }
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        let r = from_response(&blocked, "m", 0).expect("blocked");
        assert_eq!(
            r.choices[0].finish_reason.as_deref(),
            Some("content_filter")
        );
        assert_eq!(
            from_response(&json!({"x": 1}), "m", 0)
                .expect_err("bad")
                .kind,
            ProviderErrorKind::BadResponse
        );
        let err =
            json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}});
        assert_eq!(
            from_response(&err, "m", 0).expect_err("429").kind,
            ProviderErrorKind::RateLimited
        );
    }

    #[test]
    fn stream_sequence() {
        let mut t = GeminiStream::new("gemini-2.0-flash", 3);
        let mut out = Vec::new();
        for data in [
            json!({"candidates": [{"content": {"parts": [{"text": "Hello"}], "role": "model"}, "index": 0}], "modelVersion": "gemini-2.0-flash", "responseId": "r1"}),
            json!({"candidates": [{"content": {"parts": [{"text": " world"}], "role": "model"}, "index": 0}]}),
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "lookup", "args": {"query": "x"}}}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}}),
        ] {
            assert!(!t.complete_at_eof());
            let tr = t
                .translate(&SseEvent {
                    event: None,
                    data: data.to_string(),
                })
                .expect("ok");
            out.push(serde_json::to_value(tr.chunk.expect("chunk")).expect("json"));
        }
        assert!(t.complete_at_eof());
        assert_eq!(out[0]["id"], "chatcmpl-r1");
        assert_eq!(
            out[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "Hello"})
        );
        assert_eq!(out[1]["choices"][0]["delta"], json!({"content": " world"}));
        assert_eq!(
            out[2]["choices"][0]["delta"],
            json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
            "function": {"name": "lookup", "arguments": "{\"query\":\"x\"}"}}]})
        );
        assert_eq!(out[2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out[2]["usage"]["total_tokens"], 8);
    }

    #[test]
    fn model_page() {
        let body = json!({"models": [
            {"name": "models/gemini-2.0-flash", "version": "2.0", "displayName": "Gemini 2.0 Flash",
             "description": "Fast", "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
             "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
             "temperature": 1, "topP": 0.95, "topK": 40, "maxTemperature": 2},
            {"name": "models/gemini-2.5-pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
             "supportedGenerationMethods": ["generateContent"], "thinking": true},
            {"name": "models/text-embedding-004", "displayName": "Text Embedding 004", "inputTokenLimit": 2048,
             "outputTokenLimit": 1, "supportedGenerationMethods": ["embedContent"]}
        ], "nextPageToken": "tok"});
        let (models, next) = parse_model_page("gemini", &body).expect("page");
        assert_eq!(next.as_deref(), Some("tok"));
        assert_eq!(models[0].id, "gemini-2.0-flash");
        assert_eq!(models[0].name, "Gemini 2.0 Flash");
        assert_eq!(
            (models[0].context_length, models[0].max_tokens),
            (Some(1048576), Some(8192))
        );
        assert!(models[0].supports_chat);
        assert!(models[1].has_capability(Capability::Reasoning));
        assert!(!models[2].supports_chat && models[2].has_capability(Capability::Embeddings));
        assert!(parse_model_page("g", &json!({"models": 3})).is_err());
        assert_eq!(parse_model_page("g", &json!({})).expect("empty").0.len(), 0);
    }
}
