//! Google Gemini (Generative Language API): `GET /v1beta/models` with `pageSize` /
//! `pageToken`, `:generateContent`, `:streamGenerateContent` (`alt=sse`, or a streamed JSON
//! array without it) and `:countTokens`; key in `x-goog-api-key` (or `?key=`).

use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::chat::{word_chunks, Conversation, Last, Reply};
use crate::errors::{self, Dialect};
use crate::flavors::{no_route, Ctx, Req};
use crate::model::{merge_extra, MockModel};
use crate::wire::{data_crlf, json, EventStream, Resp};

pub(crate) fn route(ctx: &Ctx, req: &Req) -> Resp {
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    let (version, tail) = match rest.split_first() {
        Some((v, tail)) if *v == "v1beta" || *v == "v1" => (*v, tail),
        _ => return not_found_path(req),
    };
    match tail {
        ["models"] if get => list(ctx, req),
        ["models", name] => {
            let (id, method) = match name.rsplit_once(':') {
                Some((id, m)) => (id, Some(m)),
                None => (*name, None),
            };
            match (method, get, post) {
                (None, true, _) => match ctx.find_model(id) {
                    Some(m) => json(200, &model_object(&m)),
                    None => errors::error(
                        Dialect::Gemini,
                        404,
                        Some(&format!(
                            "models/{id} is not found for API version {version}"
                        )),
                    ),
                },
                (Some("generateContent"), _, true) => generate(ctx, req, id, Mode::Once),
                (Some("streamGenerateContent"), _, true) => {
                    let mode = if req.query("alt") == Some("sse") {
                        Mode::Sse
                    } else {
                        Mode::JsonArray
                    };
                    generate(ctx, req, id, mode)
                }
                (Some("countTokens"), _, true) => count_tokens(ctx, req, id),
                (None, _, _)
                | (Some("generateContent" | "streamGenerateContent" | "countTokens"), _, _) => {
                    no_route(ctx, req, true)
                }
                _ => not_found_path(req),
            }
        }
        _ => not_found_path(req),
    }
}

fn not_found_path(req: &Req) -> Resp {
    // Google answers unknown paths with an HTML 404 page.
    crate::wire::raw(
        404,
        "text/html; charset=UTF-8",
        &[],
        format!(
            "<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title><p><b>404.</b> <ins>That’s an error.</ins><p>The requested URL <code>/{}</code> was not found on this server.  <ins>That’s all we know.</ins>",
            req.rest.join("/")
        ),
    )
}

fn model_object(m: &MockModel) -> Value {
    let mut v = json!({
        "name": format!("models/{}", m.id),
        "version": m.extra_str("version").unwrap_or("001"),
        "displayName": m.display_name.as_deref().unwrap_or(&m.id),
        "description": format!("Mock of {}", m.display_name.as_deref().unwrap_or(&m.id)),
        "inputTokenLimit": m.context_length,
        "outputTokenLimit": m.max_output_tokens,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2.0
    });
    merge_extra(&mut v, &m.extra);
    v
}

fn page_token(offset: usize) -> String {
    format!("Cg{offset:08x}")
}

fn parse_page_token(t: &str) -> Option<usize> {
    usize::from_str_radix(t.strip_prefix("Cg")?, 16).ok()
}

fn list(ctx: &Ctx, req: &Req) -> Resp {
    let requested = match req.query("pageSize") {
        None => 50,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n.min(1000)).unwrap_or(1000),
            Ok(0) => 50,
            _ => {
                return errors::error(
                    Dialect::Gemini,
                    400,
                    Some(&format!(
                        "Invalid value at 'page_size' (TYPE_INT32), \"{s}\""
                    )),
                )
            }
        },
    };
    let size = requested.min(ctx.page_size());
    let start = match req.query("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match parse_page_token(t) {
            Some(o) => o,
            None => return errors::error(Dialect::Gemini, 400, Some("Invalid page token.")),
        },
    };
    let models = ctx.models();
    let start = start.min(models.len());
    let end = (start + size).min(models.len());
    let mut body =
        json!({"models": models[start..end].iter().map(model_object).collect::<Vec<_>>()});
    if end < models.len() {
        body["nextPageToken"] = json!(page_token(end));
    }
    json(200, &body)
}

/// Text of a `functionResponse.response`: its `content`/`result`/`output` string, else the JSON.
fn function_response_text(resp: &Value) -> String {
    ["content", "result", "output"]
        .iter()
        .find_map(|k| resp.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| resp.to_string())
}

fn parts_text(parts: &Value) -> String {
    parts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

fn conversation(body: &Value) -> Conversation {
    let mut texts = Vec::new();
    let system = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"))
        .and_then(|s| s.get("parts"))
        .map(parts_text)
        .unwrap_or_default();
    if !system.is_empty() {
        texts.push(system);
    }
    let mut last_user = String::new();
    let mut last = Last::Other;
    for content in body
        .get("contents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let parts = content.get("parts").cloned().unwrap_or(Value::Null);
        let text = parts_text(&parts);
        let results: Vec<String> = parts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                p.get("functionResponse")
                    .or_else(|| p.get("function_response"))
            })
            .map(|fr| function_response_text(fr.get("response").unwrap_or(&Value::Null)))
            .collect();
        for t in results.iter().chain(std::iter::once(&text)) {
            if !t.is_empty() {
                texts.push(t.clone());
            }
        }
        last = if !results.is_empty() {
            Last::ToolResult(results.join("\n"))
        } else if role == "user" {
            last_user = text.clone();
            Last::User(text)
        } else {
            Last::Other
        };
    }
    let first_tool = body
        .pointer("/tools/0/functionDeclarations/0/name")
        .or_else(|| body.pointer("/tools/0/function_declarations/0/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Conversation {
        texts,
        last_user,
        last,
        first_tool,
    }
}

fn validate(ctx: &Ctx, req: &Req, model: &str) -> Result<Value, Box<Resp>> {
    let Some(body) = req.json() else {
        return Err(Box::new(errors::error(
            Dialect::Gemini,
            400,
            Some("Invalid JSON payload received. Unexpected token."),
        )));
    };
    if body
        .get("contents")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
    {
        return Err(Box::new(errors::error(
            Dialect::Gemini,
            400,
            Some("* GenerateContentRequest.contents: contents is not specified\n"),
        )));
    }
    if ctx.find_model(model).is_none() {
        return Err(Box::new(errors::model_not_found(Dialect::Gemini, model)));
    }
    Ok(body)
}

fn count_tokens(ctx: &Ctx, req: &Req, model: &str) -> Resp {
    match validate(ctx, req, model) {
        Ok(body) => json(
            200,
            &json!({"totalTokens": conversation(&body).prompt_tokens()}),
        ),
        Err(resp) => *resp,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Once,
    Sse,
    JsonArray,
}

fn generate(ctx: &Ctx, req: &Req, model: &str, mode: Mode) -> Resp {
    let body = match validate(ctx, req, model) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let conv = conversation(&body);
    let reply = conv.reply("gemini", model);
    let prompt = conv.prompt_tokens();
    let completion = reply.completion_tokens();
    let response_id = format!("mock-{}", ctx.next_id());
    let usage_full = json!({
        "promptTokenCount": prompt, "candidatesTokenCount": completion,
        "totalTokenCount": prompt + completion,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]
    });
    let chunk = |parts: Value, finish: bool| {
        let mut cand = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let usage = if finish {
            cand["finishReason"] = json!("STOP");
            usage_full.clone()
        } else {
            json!({"promptTokenCount": prompt, "totalTokenCount": prompt})
        };
        json!({"candidates": [cand], "usageMetadata": usage, "modelVersion": model, "responseId": response_id})
    };
    let pieces: Vec<Value> = match &reply {
        Reply::Text(t) if mode == Mode::Once => vec![json!([{ "text": t }])],
        Reply::Text(t) => word_chunks(t)
            .into_iter()
            .map(|w| json!([{ "text": w }]))
            .collect(),
        Reply::ToolCall { name, args, .. } => {
            vec![json!([{"functionCall": {"name": name, "args": args}}])]
        }
    };
    let count = pieces.len();
    let chunks: Vec<Value> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| chunk(p, i + 1 == count))
        .collect();
    match mode {
        Mode::Once => json(200, chunks.first().unwrap_or(&Value::Null)),
        Mode::Sse => EventStream::sse(chunks.iter().map(data_crlf).collect())
            .with_error_event(data_crlf(&errors::body(Dialect::Gemini, 500, None)))
            .into_response(&ctx.stream, ctx.shared.streams_cancelled.clone()),
        Mode::JsonArray => {
            let mut events: Vec<Bytes> = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| Bytes::from(format!("{}{c}", if i == 0 { "[" } else { "\n,\r\n" })))
                .collect();
            events.push(Bytes::from_static(b"]"));
            let mut s = EventStream::sse(events);
            s.content_type = "application/json; charset=UTF-8";
            s.into_response(&ctx.stream, ctx.shared.streams_cancelled.clone())
        }
    }
}
