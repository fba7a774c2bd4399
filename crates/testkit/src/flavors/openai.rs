//! The OpenAI wire format and its dialects: OpenAI (and every OpenAI-compatible cloud), vLLM,
//! llama.cpp server, Mistral, Groq and OpenRouter model listings, and the shared chat and
//! legacy completions endpoints (also used by Azure and Ollama's `/v1`).

use hyper::Method;
use serde_json::{json, Value};

use crate::chat::{arg_chunks, content_text, word_chunks, Conversation, Last, Reply};
use crate::errors;
use crate::flavor::Flavor;
use crate::flavors::{no_route, Ctx, Req};
use crate::model::{merge_extra, MockModel};
use crate::wire::{data, json, now_secs, EventStream, Resp};

/// Default `created` for models that do not set one.
const DEFAULT_CREATED: i64 = 1_700_000_000;

pub(crate) fn route(ctx: &Ctx, req: &Req) -> Resp {
    let prefix: &[&str] = match ctx.flavor {
        Flavor::Groq => &["openai", "v1"],
        Flavor::Openrouter => &["api", "v1"],
        _ => &["v1"],
    };
    let rest: Vec<&str> = req.rest.iter().map(String::as_str).collect();
    let Some(tail) = rest.strip_prefix(prefix) else {
        return root_route(ctx, req, &rest);
    };
    v1_route(ctx, req, tail, ModelCheck::for_flavor(ctx.flavor))
}

/// The `/v1/...` endpoints every OpenAI-shaped flavor serves.
pub(crate) fn v1_route(ctx: &Ctx, req: &Req, tail: &[&str], check: ModelCheck) -> Resp {
    let get = req.method == Method::GET;
    let post = req.method == Method::POST;
    match tail {
        ["models"] if get => json(200, &list_body(ctx.flavor, &ctx.models())),
        ["models", id @ ..] if get && !id.is_empty() => {
            let id = id.join("/");
            match ctx.find_model(&id) {
                Some(m) => json(200, &model_object(ctx.flavor, &m)),
                None => errors::model_not_found(ctx.dialect, &id),
            }
        }
        ["chat", "completions"] if post => chat(ctx, req, check),
        ["completions"] if post => completions(ctx, req, check),
        ["models", ..] | ["chat", "completions"] | ["completions"] => no_route(ctx, req, true),
        _ => no_route(ctx, req, false),
    }
}

fn root_route(ctx: &Ctx, req: &Req, rest: &[&str]) -> Resp {
    let get = req.method == Method::GET;
    match (ctx.flavor, rest) {
        (Flavor::Llamacpp, ["health"]) if get => json(200, &json!({"status": "ok"})),
        (Flavor::Llamacpp, ["props"]) if get => {
            let models = ctx.models();
            let n_ctx = models
                .first()
                .and_then(|m| m.context_length)
                .unwrap_or(4_096);
            let path = models
                .first()
                .map(|m| format!("/models/{}", m.id))
                .unwrap_or_default();
            json(
                200,
                &json!({
                    "default_generation_settings": {"n_ctx": n_ctx, "params": {"n_predict": -1, "temperature": 0.8}},
                    "total_slots": 1,
                    "model_path": path,
                    "chat_template": "{{ bos_token }}{% for message in messages %}...{% endfor %}",
                    "modalities": {"vision": false, "audio": false},
                    "build_info": "b5000-mock"
                }),
            )
        }
        // llama.cpp serves its OpenAI endpoints with and without the /v1 prefix.
        (Flavor::Llamacpp, tail) => v1_route(ctx, req, tail, ModelCheck::Any),
        (Flavor::Vllm, ["health"]) if get => crate::wire::raw(200, "application/json", &[], ""),
        (Flavor::Vllm, ["version"]) if get => json(200, &json!({"version": "0.8.5"})),
        _ => no_route(ctx, req, false),
    }
}

/// Which `model` values a chat request may name.
#[derive(Debug, Clone)]
pub(crate) enum ModelCheck {
    /// One of the flavor's models.
    Listed,
    /// Anything (llama.cpp answers with whatever model it loaded).
    Any,
    /// Azure: the deployment in the path, which must be a listed model.
    Deployment(String),
}

impl ModelCheck {
    fn for_flavor(flavor: Flavor) -> Self {
        if flavor == Flavor::Llamacpp {
            ModelCheck::Any
        } else {
            ModelCheck::Listed
        }
    }
}

/// The list response of a flavor.
pub(crate) fn list_body(flavor: Flavor, models: &[MockModel]) -> Value {
    let data: Vec<Value> = models.iter().map(|m| model_object(flavor, m)).collect();
    match flavor {
        Flavor::Openrouter => json!({ "data": data }),
        // llama-server also lists its model in Ollama's shape, for Ollama clients.
        Flavor::Llamacpp => {
            let ollama: Vec<Value> = models
                .iter()
                .map(|m| {
                    json!({"name": m.id, "model": m.id, "modified_at": "", "size": "", "digest": "",
                        "type": "model", "description": "", "tags": [""],
                        "capabilities": ["completion"], "parameters": "",
                        "details": {"parent_model": "", "format": "gguf", "family": "",
                            "families": [""], "parameter_size": "", "quantization_level": ""}})
                })
                .collect();
            json!({"models": ollama, "object": "list", "data": data})
        }
        _ => json!({"object": "list", "data": data}),
    }
}

/// One model in a flavor's listing shape, `extra` merged last.
pub(crate) fn model_object(flavor: Flavor, m: &MockModel) -> Value {
    let created = m.created.unwrap_or(DEFAULT_CREATED);
    let mut v = match flavor {
        Flavor::Vllm => json!({
            "id": m.id, "object": "model", "created": created,
            "owned_by": m.owned_by.as_deref().unwrap_or("vllm"),
            "root": m.extra_str("root").unwrap_or(&m.id), "parent": null,
            "max_model_len": m.context_length,
            "permission": [{
                "id": format!("modelperm-{:032x}", fnv(&m.id)), "object": "model_permission",
                "created": created, "allow_create_engine": false, "allow_sampling": true,
                "allow_logprobs": true, "allow_search_indices": false, "allow_view": true,
                "allow_fine_tuning": false, "organization": "*", "group": null, "is_blocking": false
            }]
        }),
        Flavor::Llamacpp => json!({
            "id": m.id, "object": "model", "created": created,
            "owned_by": m.owned_by.as_deref().unwrap_or("llamacpp"),
            "meta": {
                "vocab_type": 2, "n_vocab": 128_256,
                "n_ctx_train": m.context_length.unwrap_or(4_096),
                "n_embd": 3_072, "n_params": 3_212_749_888_u64, "size": 2_019_377_152_u64
            }
        }),
        Flavor::Mistral => json!({
            "id": m.id, "object": "model", "created": created,
            "owned_by": m.owned_by.as_deref().unwrap_or("mistralai"),
            "capabilities": {"completion_chat": true, "completion_fim": false, "function_calling": true,
                "fine_tuning": false, "vision": false, "classification": false},
            "name": m.display_name.as_deref().unwrap_or(&m.id),
            "description": format!("Official {} Mistral AI model", m.id),
            "max_context_length": m.context_length.unwrap_or(32_768),
            "aliases": [], "deprecation": null, "deprecation_replacement_model": null,
            "default_model_temperature": 0.3, "type": "base"
        }),
        Flavor::Groq => json!({
            "id": m.id, "object": "model", "created": created,
            "owned_by": m.owned_by.as_deref().unwrap_or("Groq"),
            "active": true, "context_window": m.context_length, "public_apps": null,
            "max_completion_tokens": m.max_output_tokens
        }),
        Flavor::Openrouter => json!({
            "id": m.id, "canonical_slug": m.id, "hugging_face_id": "",
            "name": m.display_name.as_deref().unwrap_or(&m.id),
            "created": created,
            "description": format!("{} served through OpenRouter.", m.display_name.as_deref().unwrap_or(&m.id)),
            "context_length": m.context_length,
            "architecture": {"modality": "text->text", "input_modalities": ["text"],
                "output_modalities": ["text"], "tokenizer": "Other", "instruct_type": null},
            "pricing": {"prompt": "0", "completion": "0", "request": "0", "image": "0",
                "web_search": "0", "internal_reasoning": "0"},
            "top_provider": {"context_length": m.context_length,
                "max_completion_tokens": m.max_output_tokens, "is_moderated": false},
            "per_request_limits": null,
            "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "seed",
                "tools", "tool_choice", "response_format"]
        }),
        // Ollama's `extra` describes its native API (/api/show), not this listing.
        Flavor::Ollama => {
            return json!({
                "id": m.id, "object": "model", "created": created,
                "owned_by": m.owned_by.as_deref().unwrap_or("library")
            })
        }
        _ => json!({
            "id": m.id, "object": "model", "created": created,
            "owned_by": m.owned_by.as_deref().unwrap_or("system")
        }),
    };
    merge_extra(&mut v, &m.extra);
    v
}

fn fnv(s: &str) -> u128 {
    s.bytes()
        .fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d_u128, |h, b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B)
        })
}

/// The conversation of an OpenAI `messages` array.
pub(crate) fn conversation(body: &Value) -> Conversation {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut texts = Vec::new();
    let mut last_user = String::new();
    let mut last = Last::Other;
    for msg in &msgs {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let text = msg.get("content").map(content_text).unwrap_or_default();
        if !text.is_empty() {
            texts.push(text.clone());
        }
        last = match role {
            "user" => {
                last_user = text.clone();
                Last::User(text)
            }
            "tool" | "function" => Last::ToolResult(text),
            _ => Last::Other,
        };
    }
    let first_tool = body
        .pointer("/tools/0/function/name")
        .or_else(|| body.pointer("/functions/0/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Conversation {
        texts,
        last_user,
        last,
        first_tool,
    }
}

fn usage(ctx: &Ctx, prompt: u64, completion: u64) -> Value {
    let mut u = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    match ctx.flavor {
        Flavor::Openai => {
            u["prompt_tokens_details"] = json!({"cached_tokens": 0, "audio_tokens": 0});
            u["completion_tokens_details"] = json!({"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0});
        }
        Flavor::Groq => {
            u["queue_time"] = json!(0.0001);
            u["prompt_time"] = json!(0.001);
            u["completion_time"] = json!(0.01);
            u["total_time"] = json!(0.011);
        }
        _ => {}
    }
    u
}

fn content_filter_results() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

fn tool_call_id(ctx: &Ctx, n: u64) -> String {
    match ctx.flavor {
        // Mistral's tool call ids are nine alphanumerics.
        Flavor::Mistral => format!("mock{n:05}"),
        _ => format!("call_mock{n}"),
    }
}

fn bad_json(ctx: &Ctx) -> Resp {
    errors::bad_request(
        ctx.dialect,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    )
}

/// `POST .../chat/completions`, streaming or not.
pub(crate) fn chat(ctx: &Ctx, req: &Req, check: ModelCheck) -> Resp {
    let Some(body) = req.json() else {
        return bad_json(ctx);
    };
    let model = match &check {
        ModelCheck::Deployment(d) => d.clone(),
        _ => match body.get("model").and_then(Value::as_str) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => return errors::bad_request(ctx.dialect, "you must provide a model parameter"),
        },
    };
    if body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty())
    {
        return errors::bad_request(ctx.dialect, "[] is too short - 'messages'");
    }
    if !matches!(check, ModelCheck::Any) && ctx.find_model(&model).is_none() {
        return errors::model_not_found(ctx.dialect, &model);
    }
    let conv = conversation(&body);
    let reply = conv.reply(ctx.flavor.name(), &model);
    let prompt = conv.prompt_tokens();
    let completion = reply.completion_tokens();
    let n = ctx.next_id();
    let id = match ctx.flavor {
        Flavor::Openrouter => format!("gen-mock-{n}"),
        _ => format!("chatcmpl-mock{n}"),
    };
    let created = now_secs();
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if stream {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return chat_stream(
            ctx,
            &id,
            created,
            &model,
            &reply,
            include_usage,
            usage(ctx, prompt, completion),
            n,
        );
    }

    let (message, finish) = match &reply {
        Reply::Text(t) => (json!({"role": "assistant", "content": t}), "stop"),
        Reply::ToolCall {
            name, arguments, ..
        } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": tool_call_id(ctx, n), "type": "function",
                "function": {"name": name, "arguments": arguments}
            }]}),
            "tool_calls",
        ),
    };
    let mut choice =
        json!({"index": 0, "message": message, "logprobs": null, "finish_reason": finish});
    let mut resp = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [], "usage": usage(ctx, prompt, completion)
    });
    match ctx.flavor {
        Flavor::Openai => {
            choice["message"]["refusal"] = Value::Null;
            choice["message"]["annotations"] = json!([]);
            resp["service_tier"] = json!("default");
            resp["system_fingerprint"] = json!("fp_mock");
        }
        Flavor::Groq => {
            resp["system_fingerprint"] = json!("fp_mock");
            resp["x_groq"] = json!({"id": format!("req_mock{n}")});
        }
        Flavor::Openrouter => {
            choice["native_finish_reason"] = json!(finish);
            resp["provider"] = json!("Mock");
        }
        Flavor::Vllm => {
            choice["stop_reason"] = Value::Null;
            resp["prompt_logprobs"] = Value::Null;
        }
        Flavor::Azure => {
            choice["content_filter_results"] = content_filter_results();
            resp["prompt_filter_results"] =
                json!([{"prompt_index": 0, "content_filter_results": content_filter_results()}]);
            resp["system_fingerprint"] = json!("fp_mock");
        }
        Flavor::Ollama => resp["system_fingerprint"] = json!("fp_ollama"),
        _ => {}
    }
    resp["choices"] = json!([choice]);
    json(200, &resp)
}

#[allow(clippy::too_many_arguments)]
fn chat_stream(
    ctx: &Ctx,
    id: &str,
    created: i64,
    model: &str,
    reply: &Reply,
    include_usage: bool,
    usage: Value,
    n: u64,
) -> Resp {
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        });
        if matches!(ctx.flavor, Flavor::Openai | Flavor::Groq | Flavor::Azure) {
            c["system_fingerprint"] = json!("fp_mock");
        }
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events = Vec::new();
    if ctx.flavor == Flavor::Openrouter {
        events.push(bytes::Bytes::from_static(b": OPENROUTER PROCESSING\n\n"));
    }
    if ctx.flavor == Flavor::Azure {
        events.push(data(&json!({
            "id": "", "object": "", "created": 0, "model": "", "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": content_filter_results()}]
        })));
    }
    let finish = match reply {
        Reply::Text(text) => {
            let mut first = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
            if ctx.flavor == Flavor::Groq {
                first["x_groq"] = json!({"id": format!("req_mock{n}")});
            }
            events.push(data(&first));
            for w in word_chunks(text) {
                events.push(data(&chunk(json!({ "content": w }), Value::Null)));
            }
            "stop"
        }
        Reply::ToolCall {
            name, arguments, ..
        } => {
            events.push(data(&chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "index": 0, "id": tool_call_id(ctx, n), "type": "function",
                    "function": {"name": name, "arguments": ""}
                }]}),
                Value::Null,
            )));
            for piece in arg_chunks(arguments) {
                events.push(data(&chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                )));
            }
            "tool_calls"
        }
    };
    let mut last = chunk(json!({}), json!(finish));
    if ctx.flavor == Flavor::Groq {
        last["x_groq"] = json!({"id": format!("req_mock{n}"), "usage": usage.clone()});
    }
    events.push(data(&last));
    if include_usage {
        let mut u = chunk(json!({}), Value::Null);
        u["choices"] = json!([]);
        u["usage"] = usage;
        events.push(data(&u));
    }
    events.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    EventStream::sse(events)
        .with_error_event(data(&errors::body(ctx.dialect, 500, None)))
        .into_response(&ctx.stream, ctx.shared.streams_cancelled.clone())
}

/// `POST .../completions` (the legacy text completions API).
pub(crate) fn completions(ctx: &Ctx, req: &Req, check: ModelCheck) -> Resp {
    let Some(body) = req.json() else {
        return bad_json(ctx);
    };
    let model = match &check {
        ModelCheck::Deployment(d) => d.clone(),
        _ => match body.get("model").and_then(Value::as_str) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => return errors::bad_request(ctx.dialect, "you must provide a model parameter"),
        },
    };
    if !matches!(check, ModelCheck::Any) && ctx.find_model(&model).is_none() {
        return errors::model_not_found(ctx.dialect, &model);
    }
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    let text = format!("Hello from {} {model}: {prompt}", ctx.flavor.name());
    let usage = usage(ctx, crate::chat::words(&prompt), crate::chat::words(&text));
    let id = format!("cmpl-mock{}", ctx.next_id());
    let created = now_secs();
    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return json(
            200,
            &json!({
                "id": id, "object": "text_completion", "created": created, "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
                "usage": usage
            }),
        );
    }
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let chunk = |text: &str, finish: Value| {
        let mut c = json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}]
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let mut events: Vec<_> = word_chunks(&text)
        .iter()
        .map(|w| data(&chunk(w, Value::Null)))
        .collect();
    events.push(data(&chunk("", json!("stop"))));
    if include_usage {
        let mut u = chunk("", Value::Null);
        u["choices"] = json!([]);
        u["usage"] = usage;
        events.push(data(&u));
    }
    events.push(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
    EventStream::sse(events)
        .with_error_event(data(&errors::body(ctx.dialect, 500, None)))
        .into_response(&ctx.stream, ctx.shared.streams_cancelled.clone())
}
