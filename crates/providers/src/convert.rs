//! Small helpers shared by the translating adapters (Anthropic, Gemini, Cohere): data
//! URLs, tool-call arguments, and builders for OpenAI-shaped responses and chunks.

use modelgate_types::chat::{
    ChatChunk, ChatResponse, Choice, ChunkChoice, Delta, ResponseMessage, Role, ToolCall, Usage,
};
use serde_json::{Map, Value};

use crate::http::WireError;

/// Splits `data:<mime>;base64,<data>` into `(mime, data)`.
pub(crate) fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let mime = if mime.is_empty() {
        "application/octet-stream"
    } else {
        mime
    };
    Some((mime.to_owned(), data.to_owned()))
}

/// A MIME type guessed from a URL's extension (for providers that need one with a URL).
pub(crate) fn guess_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("heic") => "image/heic",
        _ => "image/jpeg",
    }
}

/// Tool-call arguments (JSON text) as a JSON object; empty text is `{}`.
pub(crate) fn parse_arguments(args: &str) -> Result<Value, WireError> {
    if args.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(args).map_err(|e| {
        WireError::invalid_request(format!("tool call arguments are not valid JSON: {e}"))
    })
}

/// A tool call as OpenAI sends it (arguments as JSON text).
pub(crate) fn tool_call(id: String, name: String, args: &Value) -> ToolCall {
    ToolCall {
        id,
        kind: "function".to_owned(),
        function: modelgate_types::chat::FunctionCall {
            name,
            arguments: args.to_string(),
        },
    }
}

/// A one-choice `chat.completion`.
pub(crate) struct ResponseParts {
    pub id: String,
    pub model: String,
    pub created: i64,
    pub text: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub reasoning: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

impl ResponseParts {
    pub(crate) fn build(self) -> ChatResponse {
        let mut extra = Map::new();
        if let Some(r) = self.reasoning.filter(|r| !r.is_empty()) {
            extra.insert("reasoning_content".to_owned(), Value::String(r));
        }
        ChatResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: self.text,
                    tool_calls: (!self.tool_calls.is_empty()).then_some(self.tool_calls),
                    extra,
                },
                finish_reason: self.finish_reason,
                extra: Map::new(),
            }],
            usage: self.usage,
            extra: Map::new(),
        }
    }
}

/// A one-choice `chat.completion.chunk`.
pub(crate) fn chunk(
    id: &str,
    model: &str,
    created: i64,
    delta: Delta,
    finish_reason: Option<String>,
    usage: Option<Usage>,
) -> ChatChunk {
    ChatChunk {
        id: id.to_owned(),
        object: "chat.completion.chunk".to_owned(),
        created,
        model: model.to_owned(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            extra: Map::new(),
        }],
        usage,
        extra: Map::new(),
    }
}

/// A delta carrying only text.
pub(crate) fn text_delta(text: impl Into<String>) -> Delta {
    Delta {
        content: Some(text.into()),
        ..Delta::default()
    }
}

/// The first delta of a stream: the role and empty content, as OpenAI sends it.
pub(crate) fn role_delta() -> Delta {
    Delta {
        role: Some(Role::Assistant),
        content: Some(String::new()),
        ..Delta::default()
    }
}

/// A delta carrying reasoning text (as DeepSeek-style `reasoning_content`).
pub(crate) fn reasoning_delta(text: &str) -> Delta {
    let mut d = Delta::default();
    d.extra.insert(
        "reasoning_content".to_owned(),
        Value::String(text.to_owned()),
    );
    d
}

/// A JSON number as u64 (0 when absent).
pub(crate) fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,iVBORw0KGgo="),
            Some(("image/png".to_owned(), "iVBORw0KGgo=".to_owned()))
        );
        assert_eq!(parse_data_url("data:text/plain,hello"), None);
        assert_eq!(parse_data_url("https://x/y.png"), None);
        assert_eq!(guess_mime("https://x/y.PNG?size=2"), "image/png");
        assert_eq!(guess_mime("https://x/y"), "image/jpeg");
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_arguments("").expect("empty"), serde_json::json!({}));
        assert_eq!(
            parse_arguments(r#"{"a":1}"#).expect("ok"),
            serde_json::json!({"a": 1})
        );
        assert!(parse_arguments("{").is_err());
    }
}
