//! The deterministic chat behaviour shared by every flavor: what the mock answers and how it
//! counts tokens, independent of any wire format.

use serde_json::{json, Value};

/// What the last message of a conversation was.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Last {
    User(String),
    ToolResult(String),
    Other,
}

/// A conversation reduced to what decides the reply.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    /// Every message text (system included), for the prompt token count.
    pub(crate) texts: Vec<String>,
    /// Text of the last user message.
    pub(crate) last_user: String,
    pub(crate) last: Last,
    /// Name of the first declared tool.
    pub(crate) first_tool: Option<String>,
}

/// The mock's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Text(String),
    ToolCall {
        name: String,
        /// The arguments as an object.
        args: Value,
        /// The same arguments as a JSON string.
        arguments: String,
    },
}

impl Conversation {
    pub(crate) fn reply(&self, flavor: &str, model: &str) -> Reply {
        match (&self.last, &self.first_tool) {
            (Last::ToolResult(t), _) => Reply::Text(format!("Tool said: {t}")),
            (Last::User(t), Some(tool)) => {
                let args = json!({ "query": t });
                Reply::ToolCall {
                    name: tool.clone(),
                    arguments: args.to_string(),
                    args,
                }
            }
            _ => Reply::Text(format!("Hello from {flavor} {model}: {}", self.last_user)),
        }
    }

    pub(crate) fn prompt_tokens(&self) -> u64 {
        self.texts.iter().map(|t| words(t)).sum()
    }
}

impl Reply {
    pub(crate) fn completion_tokens(&self) -> u64 {
        match self {
            Reply::Text(t) => words(t),
            Reply::ToolCall { arguments, .. } => words(arguments),
        }
    }
}

/// Whitespace-separated words.
pub(crate) fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// The text cut into one word per chunk, each space kept at the start of the next word, so
/// the chunks concatenate to the text exactly.
pub(crate) fn word_chunks(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if c.is_whitespace() && !cur.is_empty() && !cur.ends_with(char::is_whitespace) {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Tool-call arguments cut into small pieces (as providers stream partial JSON).
pub(crate) fn arg_chunks(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(8).map(|c| c.iter().collect()).collect()
}

/// The text of a content value: a string, or the `text` of text parts joined by newlines.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| {
                let ty = p.get("type").and_then(Value::as_str).unwrap_or("text");
                if ty == "text" {
                    p.get("text").and_then(Value::as_str)
                } else {
                    None
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_text() {
        let t = "Hello from openai gpt-4o:  two  spaces\nand a line";
        let c = word_chunks(t);
        assert_eq!(c.concat(), t);
        assert_eq!(c[0], "Hello");
        assert_eq!(c[1], " from");
        let a = arg_chunks("{\"query\":\"héllo wörld\"}");
        assert_eq!(a.concat(), "{\"query\":\"héllo wörld\"}");
    }
}
