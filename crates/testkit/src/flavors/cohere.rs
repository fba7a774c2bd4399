//! Cohere: `GET /v1/models` (`page_size` / `page_token` → `next_page_token`, `endpoint`
//! filter) and v2 chat (`POST /v2/chat`, plain and as its typed SSE events), bearer auth.

use hyper::Method;
use serde_json::{json, Value};

use crate::chat::{arg_chunks, content_text, word_chunks, Conversation, Last, Reply};
use crate::errors::{self, Dialect};
use crate::flavors::{no_route, Ctx, Req};
use crate::model::{merge_extra, MockModel};
use crate::wire::{event, json, EventStream, Resp};

pub(crate) fn route(ctx: &Ctx, req: &Req) -> Resp {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match rest.as_slice() {
        ["v1", "models"] if get => list(ctx, req),
        ["v1", "models", name] if get => match ctx.find_model(name) {
            Some(m) => json(200, &model_object(&m)),
            None => errors::model_not_found(Dialect::Cohere, name),
        },
        ["v1", "check-api-key"] if post => json(
            200,
            &json!({"valid": true, "organization_id": "mock-org", "owner_id": "mock-owner"}),
        ),
        ["v2", "chat"] if post => chat(ctx, req),
        ["v1", "models", ..] | ["v2", "chat"] => no_route(ctx, req, true),
        _ => errors::error(Dialect::Cohere, 404, Some("Not Found")),
    }
}

fn model_object(m: &MockModel) -> Value {
    let mut v = json!({
        "name": m.id,
        "is_deprecated": false,
        "endpoints": ["generate", "chat", "summarize"],
        "finetuned": false,
        "context_length": m.context_length,
        "tokenizer_url": format!("https://storage.googleapis.com/cohere-public/tokenizers/{}.json", m.id),
        "default_endpoints": ["chat"],
        "features": ["tools", "strict_tools", "json_mode", "json_schema", "safety_modes", "tool_choice"],
        "sampling_defaults": {"temperature": 0.3, "k": 0, "p": 0.75, "frequency_penalty": 0,
            "presence_penalty": 0, "max_tokens_per_doc": 4096}
    });
    merge_extra(&mut v, &m.extra);
    v
}

fn list(ctx: &Ctx, req: &Req) -> Resp {
    let requested = match req.query("page_size") {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return errors::error(
                    Dialect::Cohere,
                    400,
                    Some("invalid request: page_size must be between 1 and 1000"),
                )
            }
        },
    };
    let size = requested.min(ctx.page_size());
    let start = match req.query("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match t
            .strip_prefix("mock-page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(o) => o,
            None => {
                return errors::error(
                    Dialect::Cohere,
                    400,
                    Some("invalid request: invalid page_token"),
                )
            }
        },
    };
    let endpoint = req.query("endpoint");
    let default_only = req.query("default_only") == Some("true");
    let models: Vec<Value> = ctx
        .models()
        .iter()
        .map(model_object)
        .filter(|m| {
            let has = |field: &str, e: &str| {
                m.get(field)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(e)))
            };
            match endpoint {
                None => true,
                Some(e) if default_only => has("default_endpoints", e),
                Some(e) => has("endpoints", e),
            }
        })
        .collect();
    let start = start.min(models.len());
    let end = (start + size).min(models.len());
    let mut body = json!({"models": models[start..end]});
    if end < models.len() {
        body["next_page_token"] = json!(format!("mock-page-{end}"));
    }
    json(200, &body)
}

/// Text of a message's `content`: a string, text items, or tool-result documents.
fn cohere_text(content: &Value) -> String {
    match content {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i.get("type").and_then(Value::as_str) {
                Some("document") => i.pointer("/document/data").map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                _ => i.get("text").and_then(Value::as_str).map(str::to_owned),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => content_text(other),
    }
}

fn conversation(body: &Value) -> Conversation {
    let mut texts = Vec::new();
    let mut last_user = String::new();
    let mut last = Last::Other;
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let text = msg.get("content").map(cohere_text).unwrap_or_default();
        if !text.is_empty() {
            texts.push(text.clone());
        }
        last = match role {
            "user" => {
                last_user = text.clone();
                Last::User(text)
            }
            "tool" => Last::ToolResult(text),
            _ => Last::Other,
        };
    }
    let first_tool = body
        .pointer("/tools/0/function/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Conversation {
        texts,
        last_user,
        last,
        first_tool,
    }
}

fn chat(ctx: &Ctx, req: &Req) -> Resp {
    let Some(body) = req.json() else {
        return errors::error(Dialect::Cohere, 400, Some("invalid request: invalid json"));
    };
    let Some(model) = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return errors::error(
            Dialect::Cohere,
            400,
            Some("invalid request: model must be specified"),
        );
    };
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return errors::error(
            Dialect::Cohere,
            400,
            Some("invalid request: messages must not be empty"),
        );
    }
    if ctx.find_model(model).is_none() {
        return errors::model_not_found(Dialect::Cohere, model);
    }
    let conv = conversation(&body);
    let reply = conv.reply("cohere", model);
    let input = conv.prompt_tokens();
    let output = reply.completion_tokens();
    let n = ctx.next_id();
    let id = format!("c0ffee00-0000-4000-8000-{n:012x}");
    let usage = json!({
        "billed_units": {"input_tokens": input, "output_tokens": output},
        "tokens": {"input_tokens": input, "output_tokens": output}
    });
    let finish = match reply {
        Reply::Text(_) => "COMPLETE",
        Reply::ToolCall { .. } => "TOOL_CALL",
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let message = match &reply {
            Reply::Text(t) => {
                json!({"role": "assistant", "content": [{"type": "text", "text": t}]})
            }
            Reply::ToolCall {
                name, arguments, ..
            } => json!({
                "role": "assistant",
                "tool_plan": format!("I will use the {name} tool to answer the question."),
                "tool_calls": [{"id": format!("{name}_{n}"), "type": "function",
                    "function": {"name": name, "arguments": arguments}}]
            }),
        };
        return json(
            200,
            &json!({"id": id, "message": message, "finish_reason": finish, "usage": usage}),
        );
    }

    let mut events = vec![event(
        "message-start",
        &json!({"id": id, "type": "message-start", "delta": {"message": {
            "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    )];
    match &reply {
        Reply::Text(t) => {
            events.push(event(
                "content-start",
                &json!({"type": "content-start", "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ));
            for w in word_chunks(t) {
                events.push(event(
                    "content-delta",
                    &json!({"type": "content-delta", "index": 0,
                        "delta": {"message": {"content": {"text": w}}}}),
                ));
            }
            events.push(event(
                "content-end",
                &json!({"type": "content-end", "index": 0}),
            ));
        }
        Reply::ToolCall {
            name, arguments, ..
        } => {
            let plan = format!("I will use the {name} tool to answer the question.");
            for w in word_chunks(&plan) {
                events.push(event(
                    "tool-plan-delta",
                    &json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": w}}}),
                ));
            }
            events.push(event(
                "tool-call-start",
                &json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                    "id": format!("{name}_{n}"), "type": "function",
                    "function": {"name": name, "arguments": ""}}}}}),
            ));
            for p in arg_chunks(arguments) {
                events.push(event(
                    "tool-call-delta",
                    &json!({"type": "tool-call-delta", "index": 0,
                        "delta": {"message": {"tool_calls": {"function": {"arguments": p}}}}}),
                ));
            }
            events.push(event(
                "tool-call-end",
                &json!({"type": "tool-call-end", "index": 0}),
            ));
        }
    }
    events.push(event(
        "message-end",
        &json!({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}),
    ));
    EventStream::sse(events).into_response(&ctx.stream, ctx.shared.streams_cancelled.clone())
}
