//! Each provider's real error bodies: auth failures, rate limits, unknown models, bad
//! requests and injected failures, in the exact JSON shape that provider sends.

use serde_json::{json, Value};

use crate::flavor::Flavor;
use crate::wire::{json_with, raw, Resp};

/// The error dialect of one endpoint (Ollama speaks two: native and OpenAI-compatible).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Openai,
    Vllm,
    Llamacpp,
    Mistral,
    Groq,
    Openrouter,
    Anthropic,
    Gemini,
    Cohere,
    Azure,
    OllamaNative,
    OllamaOpenai,
}

impl Dialect {
    /// The dialect of a request to `flavor` whose path after the prefix is `rest`.
    pub(crate) fn of(flavor: Flavor, rest: &[&str]) -> Dialect {
        match flavor {
            Flavor::Openai => Dialect::Openai,
            Flavor::Vllm => Dialect::Vllm,
            Flavor::Llamacpp => Dialect::Llamacpp,
            Flavor::Mistral => Dialect::Mistral,
            Flavor::Groq => Dialect::Groq,
            Flavor::Openrouter => Dialect::Openrouter,
            Flavor::Anthropic => Dialect::Anthropic,
            Flavor::Gemini => Dialect::Gemini,
            Flavor::Cohere => Dialect::Cohere,
            Flavor::Azure => Dialect::Azure,
            Flavor::Ollama if rest.first() == Some(&"v1") => Dialect::OllamaOpenai,
            Flavor::Ollama => Dialect::OllamaNative,
        }
    }
}

fn openai_error(message: &str, ty: &str, code: Value) -> Value {
    json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
}

/// Anthropic's error envelope; every error body carries the request's id.
fn anthropic_error(ty: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": ty, "message": message},
        "request_id": "req_011CMockRequestId000000000"})
}

fn gemini_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// A generic message for a status, as the provider would word it.
fn default_message(dialect: Dialect, status: u16) -> &'static str {
    match (dialect, status) {
        (Dialect::Anthropic, 400) => "Invalid request.",
        (Dialect::Anthropic, 403) => "Your API key does not have permission to use the specified resource.",
        (Dialect::Anthropic, 404) => "Not found.",
        (Dialect::Anthropic, 413) => "Request exceeds the maximum allowed number of bytes.",
        (Dialect::Anthropic, 429) => "Number of request tokens has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
        (Dialect::Anthropic, 503 | 529) => "Overloaded",
        (Dialect::Anthropic, _) => "Internal server error",
        (Dialect::Gemini, 400) => "Request contains an invalid argument.",
        (Dialect::Gemini, 403) => "The caller does not have permission",
        (Dialect::Gemini, 404) => "Requested entity was not found.",
        (Dialect::Gemini, 429) => "Resource has been exhausted (e.g. check quota).",
        (Dialect::Gemini, 503) => "The model is overloaded. Please try again later.",
        (Dialect::Gemini, 504) => "Deadline expired before operation could complete.",
        (Dialect::Gemini, _) => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        (Dialect::Cohere, 400) => "invalid request: the request could not be processed",
        (Dialect::Cohere, 404) => "not found",
        (Dialect::Cohere, 429) => "You are using a Trial key, which is limited to 20 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or email us at support@cohere.com with any questions",
        (Dialect::Cohere, 503) => "service unavailable",
        (Dialect::Cohere, _) => "internal server error, this has been reported to our developers",
        (Dialect::Azure, 400) => "The request is invalid.",
        (Dialect::Azure, 404) => "Resource not found",
        (Dialect::Azure, 429) => "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.",
        (Dialect::Azure, 503) => "The service is temporarily unable to process your request. Please try again later.",
        (Dialect::Azure, _) => "The server had an error while processing your request. Sorry about that!",
        (_, 400) => "Invalid request.",
        (_, 403) => "You are not allowed to access this resource.",
        (_, 404) => "Not found.",
        (_, 429) => "Rate limit reached for requests. Please try again in 1s.",
        (_, 502) => "Bad gateway.",
        (_, 503) => "The engine is currently overloaded, please try again later.",
        (_, 504) => "Gateway timeout.",
        _ => "The server had an error while processing your request. Sorry about that!",
    }
}

fn openai_type(status: u16) -> &'static str {
    match status {
        400 | 401 | 403 | 404 | 409 | 413 | 422 => "invalid_request_error",
        429 => "requests",
        _ => "server_error",
    }
}

/// The body of an error with this status in this dialect, with `message` or the default one.
pub(crate) fn body(dialect: Dialect, status: u16, message: Option<&str>) -> Value {
    let msg = message.unwrap_or_else(|| default_message(dialect, status));
    match dialect {
        Dialect::Openai | Dialect::OllamaOpenai => {
            let (ty, code) = match status {
                429 => ("requests", json!("rate_limit_exceeded")),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                _ if dialect == Dialect::OllamaOpenai && status >= 500 => {
                    ("api_error", Value::Null)
                }
                s => (openai_type(s), Value::Null),
            };
            openai_error(msg, ty, code)
        }
        Dialect::Groq => {
            let (ty, code) = match status {
                429 => ("requests", json!("rate_limit_exceeded")),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                s if s >= 500 => ("internal_server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            let mut e = json!({"message": msg, "type": ty});
            if !code.is_null() {
                e["code"] = code;
            }
            json!({ "error": e })
        }
        Dialect::Vllm => {
            let ty = match status {
                400 => "BadRequestError",
                401 => "Unauthorized",
                404 => "NotFoundError",
                429 => "TooManyRequests",
                501 => "NotImplementedError",
                _ => "InternalServerError",
            };
            json!({"error": {"message": msg, "type": ty, "param": null, "code": status}})
        }
        Dialect::Llamacpp => {
            let ty = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                501 => "not_supported_error",
                503 => "unavailable_error",
                _ => "server_error",
            };
            json!({"error": {"code": status, "message": msg, "type": ty}})
        }
        Dialect::Mistral => match status {
            401 => {
                json!({"message": "Unauthorized", "request_id": "0d1b4c5a8f2e4e7b9c3a6d8e1f2a3b4c"})
            }
            429 => json!({"message": "Requests rate limit exceeded"}),
            s => {
                let (ty, code) = match s {
                    400 => ("invalid_request_error", "1000"),
                    404 => ("not_found", "1001"),
                    422 => ("invalid_request_message_order", "3230"),
                    _ => ("internal_server_error", "1000"),
                };
                json!({"object": "error", "message": msg, "type": ty, "param": null, "code": code})
            }
        },
        Dialect::Openrouter => json!({"error": {"message": msg, "code": status}}),
        Dialect::Anthropic => {
            let ty = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                402 => "billing_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                503 | 529 => "overloaded_error",
                504 => "timeout_error",
                _ => "api_error",
            };
            anthropic_error(ty, msg)
        }
        Dialect::Gemini => {
            json!({"error": {"code": status, "message": msg, "status": gemini_status(status)}})
        }
        Dialect::Cohere => json!({ "message": msg }),
        Dialect::Azure => {
            let code = match status {
                400 => "BadRequest".to_owned(),
                500 => "InternalServerError".to_owned(),
                503 => "ServiceUnavailable".to_owned(),
                s => s.to_string(),
            };
            json!({"error": {"code": code, "message": msg}})
        }
        Dialect::OllamaNative => json!({ "error": msg }),
    }
}

pub(crate) fn error(dialect: Dialect, status: u16, message: Option<&str>) -> Resp {
    json_with(status, &body(dialect, status, message), &[])
}

/// An injected failure with `status` and the provider's real body for it.
pub(crate) fn injected(dialect: Dialect, status: u16) -> Resp {
    if status == 401 {
        return unauthorized(dialect, Some(crate::MockUpstream::API_KEY));
    }
    error(dialect, status, None)
}

/// 429 with `Retry-After` (and the provider's extra rate-limit headers where it has them).
pub(crate) fn rate_limited(dialect: Dialect, retry_after_secs: u64) -> Resp {
    let secs = retry_after_secs.to_string();
    let mut headers = vec![("retry-after", secs.clone())];
    let message = match dialect {
        Dialect::Openai | Dialect::OllamaOpenai | Dialect::Groq => Some(format!(
            "Rate limit reached for requests in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after_secs}s. Visit https://platform.openai.com/account/rate-limits to learn more."
        )),
        Dialect::Azure => Some(format!(
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after {retry_after_secs} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
        )),
        _ => None,
    };
    match dialect {
        Dialect::Openai | Dialect::Groq => {
            headers.push(("x-ratelimit-limit-requests", "3".to_owned()));
            headers.push(("x-ratelimit-remaining-requests", "0".to_owned()));
            headers.push(("x-ratelimit-reset-requests", format!("{secs}s")));
        }
        Dialect::Anthropic => {
            headers.push(("anthropic-ratelimit-requests-limit", "50".to_owned()));
            headers.push(("anthropic-ratelimit-requests-remaining", "0".to_owned()));
        }
        Dialect::Azure => headers.push(("retry-after-ms", (retry_after_secs * 1000).to_string())),
        Dialect::Gemini => {
            // Google sends no Retry-After header: the delay is a `google.rpc.RetryInfo`
            // detail of the error body, next to the quota that was exceeded.
            let body = json!({"error": {"code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                    "quotaValue": "15"}]},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{secs}s")}
            ]}});
            return json_with(429, &body, &[]);
        }
        _ => {}
    }
    json_with(429, &body(dialect, 429, message.as_deref()), &headers)
}

/// OpenAI's masking of a rejected key: a few leading characters, stars, the last four.
pub(crate) fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// The provider's answer to a missing (`None`) or wrong key.
pub(crate) fn unauthorized(dialect: Dialect, presented: Option<&str>) -> Resp {
    let (status, body) = match (dialect, presented) {
        (Dialect::Openai | Dialect::OllamaOpenai, None) => (
            401,
            openai_error(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the basic auth username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Value::Null,
            ),
        ),
        (Dialect::Openai | Dialect::OllamaOpenai, Some(key)) => (
            401,
            openai_error(
                &format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    mask_key(key)
                ),
                "invalid_request_error",
                json!("invalid_api_key"),
            ),
        ),
        (Dialect::Groq, _) => (
            401,
            json!({"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
        (Dialect::Vllm, _) => (401, json!({"error": "Unauthorized"})),
        (Dialect::Llamacpp, _) => (
            401,
            json!({"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}),
        ),
        (Dialect::Mistral, _) => (401, body(Dialect::Mistral, 401, None)),
        (Dialect::Openrouter, None) => (401, json!({"error": {"message": "No auth credentials found", "code": 401}})),
        (Dialect::Openrouter, Some(_)) => (401, json!({"error": {"message": "User not found.", "code": 401}})),
        (Dialect::Anthropic, None) => (
            401,
            anthropic_error("authentication_error", "x-api-key header is required"),
        ),
        (Dialect::Anthropic, Some(_)) => (
            401,
            anthropic_error("authentication_error", "invalid x-api-key"),
        ),
        (Dialect::Gemini, None) => (
            403,
            json!({"error": {"code": 403,
                "message": "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                "status": "PERMISSION_DENIED"}}),
        ),
        (Dialect::Gemini, Some(_)) => (
            400,
            json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}),
        ),
        (Dialect::Cohere, None) => (401, json!({"message": "no api key supplied"})),
        (Dialect::Cohere, Some(_)) => (401, json!({"message": "invalid api token"})),
        (Dialect::Azure, None) => (
            401,
            json!({"error": {"code": "401", "message": "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}}),
        ),
        (Dialect::Azure, Some(_)) => (
            401,
            json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        ),
        (Dialect::OllamaNative, _) => (401, json!({"error": "unauthorized"})),
    };
    json_with(status, &body, &[])
}

/// A 200 whose body is not valid JSON (cut off mid-object), in the content type the caller
/// expects.
pub(crate) fn malformed(stream: bool) -> Resp {
    if stream {
        raw(
            200,
            "text/event-stream",
            &[],
            "data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\n\n",
        )
    } else {
        raw(
            200,
            "application/json",
            &[],
            "{\"object\":\"list\",\"data\":[{\"id\":\"broken\",",
        )
    }
}

/// The provider's answer to a model it does not serve.
pub(crate) fn model_not_found(dialect: Dialect, model: &str) -> Resp {
    let (status, body) = match dialect {
        Dialect::Openai | Dialect::Groq => {
            let msg =
                format!("The model `{model}` does not exist or you do not have access to it.");
            let mut b = openai_error(&msg, "invalid_request_error", json!("model_not_found"));
            if dialect == Dialect::Groq {
                if let Some(e) = b.get_mut("error").and_then(Value::as_object_mut) {
                    e.remove("param");
                }
            }
            (404, b)
        }
        Dialect::Vllm => (
            404,
            json!({"error": {"message": format!("The model `{model}` does not exist."),
                "type": "NotFoundError", "param": "model", "code": 404}}),
        ),
        Dialect::Llamacpp => (
            404,
            json!({"error": {"code": 404, "message": format!("model '{model}' not found"), "type": "not_found_error"}}),
        ),
        Dialect::Mistral => (
            400,
            json!({"object": "error", "message": format!("Invalid model: {model}"), "type": "invalid_model",
                "param": null, "code": "1500"}),
        ),
        Dialect::Openrouter => (
            400,
            json!({"error": {"message": format!("{model} is not a valid model ID"), "code": 400}}),
        ),
        Dialect::Anthropic => (
            404,
            anthropic_error("not_found_error", &format!("model: {model}")),
        ),
        Dialect::Gemini => (
            404,
            json!({"error": {"code": 404, "message": format!(
                "models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."),
                "status": "NOT_FOUND"}}),
        ),
        Dialect::Cohere => (
            404,
            json!({"message": format!("model '{model}' not found, make sure the correct model ID was used and that you have access to the model.")}),
        ),
        Dialect::Azure => (
            404,
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}),
        ),
        Dialect::OllamaNative => (404, json!({"error": format!("model '{model}' not found")})),
        Dialect::OllamaOpenai => (
            404,
            openai_error(
                &format!("model \"{model}\" not found, try pulling it first"),
                "api_error",
                Value::Null,
            ),
        ),
    };
    json_with(status, &body, &[])
}

/// 400 for a request body the provider would reject, worded by `message`.
pub(crate) fn bad_request(dialect: Dialect, message: &str) -> Resp {
    let status = if dialect == Dialect::Mistral {
        422
    } else {
        400
    };
    error(dialect, status, Some(message))
}
