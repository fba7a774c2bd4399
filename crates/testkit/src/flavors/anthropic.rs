//! Anthropic: `GET /v1/models` (limit / after_id / before_id pages) and the Messages API
//! (`POST /v1/messages`, plain and as its SSE event stream), `x-api-key` + `anthropic-version`.

use hyper::Method;
use serde_json::{json, Value};

use crate::chat::{arg_chunks, content_text, word_chunks, Conversation, Last, Reply};
use crate::errors::{self, Dialect};
use crate::flavors::{no_route, offset_after, Ctx, Req};
use crate::model::{merge_extra, MockModel};
use crate::wire::{event, json, rfc3339, EventStream, Resp};

pub(crate) fn route(ctx: &Ctx, req: &Req) -> Resp {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match rest.as_slice() {
        ["v1", "models"] if get => list(ctx, req),
        ["v1", "models", id] if get => match ctx.find_model(id) {
            Some(m) => json(200, &model_object(&m)),
            None => errors::model_not_found(Dialect::Anthropic, id),
        },
        ["v1", "messages"] if post => messages(ctx, req),
        ["v1", "messages", "count_tokens"] if post => count_tokens(req),
        ["v1", "models", ..] | ["v1", "messages", ..] => no_route(ctx, req, true),
        _ => errors::error(Dialect::Anthropic, 404, Some("Not Found")),
    }
}

fn supported(on: bool) -> Value {
    json!({ "supported": on })
}

/// A `ModelInfo` as the current API returns it: limits, the `capabilities` object (every
/// known key present), and the lifecycle fields. Limits are `null` when the mock model has
/// none; `extra` (e.g. `{"lifecycle": "deprecated"}`) is merged last.
fn model_object(m: &MockModel) -> Value {
    let vision = !m.id.starts_with("claude-3-5-haiku");
    let thinking = m.id.starts_with("claude-sonnet-4")
        || m.id.starts_with("claude-opus-4")
        || m.id.starts_with("claude-3-7");
    let mut v = json!({
        "type": "model",
        "id": m.id,
        "display_name": m.display_name.as_deref().unwrap_or(&m.id),
        "created_at": rfc3339(m.created.unwrap_or(1_709_164_800)),
        "max_input_tokens": m.context_length,
        "max_tokens": m.max_output_tokens,
        "capabilities": {
            "batch": supported(true),
            "citations": supported(true),
            "code_execution": supported(false),
            "context_management": {"supported": false},
            "effort": {"supported": false, "low": supported(false), "medium": supported(false),
                "high": supported(false), "max": supported(false)},
            "image_input": supported(vision),
            "pdf_input": supported(vision),
            "server_tools": {"supported": true, "web_search": supported(true),
                "code_execution": supported(false)},
            "structured_outputs": supported(thinking),
            "thinking": {"supported": thinking, "types": {"enabled": supported(thinking),
                "adaptive": supported(false), "disabled": supported(true)}}
        },
        "lifecycle": "active",
        "deprecated_at": null,
        "retires_at": null,
    });
    merge_extra(&mut v, &m.extra);
    v
}

fn invalid(message: &str) -> Resp {
    errors::error(Dialect::Anthropic, 400, Some(message))
}

fn list(ctx: &Ctx, req: &Req) -> Resp {
    let limit = match req.query("limit") {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return invalid(
                "limit: Input should be greater than or equal to 1 and less than or equal to 1000",
            ),
        },
    };
    let limit = limit.min(ctx.page_size());
    let models = ctx.models();
    let (start, end) = if let Some(before) = req.query("before_id") {
        let Some(end) = models.iter().position(|m| m.id == before) else {
            return invalid(&format!("before_id: no model with id '{before}'"));
        };
        (end.saturating_sub(limit), end)
    } else {
        let Some(start) = offset_after(&models, req.query("after_id")) else {
            return invalid(&format!(
                "after_id: no model with id '{}'",
                req.query("after_id").unwrap_or("")
            ));
        };
        (start, (start + limit).min(models.len()))
    };
    let page = &models[start.min(end)..end];
    let has_more = if req.query("before_id").is_some() {
        start > 0
    } else {
        end < models.len()
    };
    json(
        200,
        &json!({
            "data": page.iter().map(model_object).collect::<Vec<_>>(),
            "has_more": has_more,
            "first_id": page.first().map(|m| m.id.clone()),
            "last_id": page.last().map(|m| m.id.clone()),
        }),
    )
}

/// Text of a tool_result block's `content` (a string or text blocks).
fn tool_result_text(block: &Value) -> String {
    block.get("content").map(content_text).unwrap_or_default()
}

fn conversation(body: &Value) -> Conversation {
    let mut texts = Vec::new();
    if let Some(system) = body.get("system") {
        let t = content_text(system);
        if !t.is_empty() {
            texts.push(t);
        }
    }
    let mut last_user = String::new();
    let mut last = Last::Other;
    for msg in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let content = msg.get("content").cloned().unwrap_or(Value::Null);
        let text = content_text(&content);
        let tool_results: Vec<String> = content
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(tool_result_text)
            .collect();
        for t in tool_results.iter().chain(std::iter::once(&text)) {
            if !t.is_empty() {
                texts.push(t.clone());
            }
        }
        last = match role {
            "user" if !tool_results.is_empty() => Last::ToolResult(tool_results.join("\n")),
            "user" => {
                last_user = text.clone();
                Last::User(text)
            }
            _ => Last::Other,
        };
    }
    let first_tool = body
        .pointer("/tools/0/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Conversation {
        texts,
        last_user,
        last,
        first_tool,
    }
}

fn count_tokens(req: &Req) -> Resp {
    let Some(body) = req.json() else {
        return invalid("There was an issue with your request body: not valid JSON");
    };
    json(
        200,
        &json!({"input_tokens": conversation(&body).prompt_tokens()}),
    )
}

fn messages(ctx: &Ctx, req: &Req) -> Resp {
    let Some(body) = req.json() else {
        return invalid("There was an issue with your request body: not valid JSON");
    };
    let Some(model) = body.get("model").and_then(Value::as_str).map(str::to_owned) else {
        return invalid("model: Field required");
    };
    if !body.get("max_tokens").is_some_and(Value::is_u64) {
        return invalid("max_tokens: Field required");
    }
    match body.get("messages").and_then(Value::as_array) {
        None => return invalid("messages: Field required"),
        Some(m) if m.is_empty() => return invalid("messages: at least one message is required"),
        Some(_) => {}
    }
    if ctx.find_model(&model).is_none() {
        return errors::model_not_found(Dialect::Anthropic, &model);
    }
    let conv = conversation(&body);
    let reply = conv.reply("anthropic", &model);
    let input = conv.prompt_tokens();
    let output = reply.completion_tokens();
    let n = ctx.next_id();
    let id = format!("msg_mock{n:020}");
    let tool_id = format!("toolu_mock{n:020}");
    let (stop_reason, block) = match &reply {
        Reply::Text(t) => ("end_turn", json!({"type": "text", "text": t})),
        Reply::ToolCall { name, args, .. } => (
            "tool_use",
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": args}),
        ),
    };
    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return json(
            200,
            &json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [block], "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0, "output_tokens": output, "service_tier": "standard"}
            }),
        );
    }

    let mut events = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"}
        }}),
    )];
    let start_block = match &reply {
        Reply::Text(_) => json!({"type": "text", "text": ""}),
        Reply::ToolCall { name, .. } => {
            json!({"type": "tool_use", "id": tool_id, "name": name, "input": {}})
        }
    };
    events.push(event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": start_block}),
    ));
    events.push(event("ping", &json!({"type": "ping"})));
    let deltas: Vec<Value> = match &reply {
        Reply::Text(t) => word_chunks(t)
            .into_iter()
            .map(|w| json!({"type": "text_delta", "text": w}))
            .collect(),
        Reply::ToolCall { arguments, .. } => arg_chunks(arguments)
            .into_iter()
            .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
            .collect(),
    };
    for d in deltas {
        events.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": 0, "delta": d}),
        ));
    }
    events.push(event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    EventStream::sse(events)
        .with_error_event(event(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .into_response(&ctx.stream, ctx.shared.streams_cancelled.clone())
}
