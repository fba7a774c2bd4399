//! `summarize`: asks a model (through `modelgate-providers`) to summarise the older turns
//! and keeps the recent ones verbatim.
//!
//! Plan: the shared rules pin system messages; the most recent non-pinned messages that fit
//! in half the remaining room are kept verbatim; everything older is rendered as a
//! transcript (first reduced with `extractive` to `summarize_max_input_tokens` if larger)
//! and sent with a summarization instruction. The summary becomes one system message,
//! `Summary of the earlier conversation:\n…`, placed where the older turns were.
//!
//! Fallback to `extractive` (reported in `fallback_reason`) when no model is configured,
//! the provider fails or times out, the summary is empty, or it does not fit.

use std::sync::Arc;
use std::time::Duration;

use modelgate_providers::Provider;
use modelgate_types::chat::{ChatMessage, ChatRequest, Role};
use serde_json::Map;

use crate::error::CondenseError;
use crate::strategy::{render_transcript, LocalOptions, Piece, Prepared, Strategy};
use crate::tokens::{TokenCounter, REPLY_PRIMING_TOKENS};

/// Prefix of the system message that carries a model summary.
pub const SUMMARY_PREFIX: &str = "Summary of the earlier conversation:\n";

/// Fewer tokens than this left for a summary means summarizing is pointless.
const MIN_SUMMARY_TOKENS: usize = 16;

/// The model that writes summaries.
#[derive(Debug, Clone)]
pub struct Summarizer {
    pub provider: Arc<dyn Provider>,
    /// The provider's own model id (no `provider/` prefix).
    pub model: String,
    pub timeout: Duration,
}

impl Summarizer {
    /// `provider/model`, used in cache keys and logs.
    pub fn id(&self) -> String {
        format!("{}/{}", self.provider.name(), self.model)
    }
}

/// What to do after planning.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Nothing to summarise (it fits) or a reason to fall back at once.
    Local { fallback_reason: Option<String> },
    /// Ask the model, then assemble.
    Ask {
        request: Box<ChatRequest>,
        kept: Vec<Piece>,
        summary_pos: usize,
    },
}

pub(crate) fn plan(
    p: &Prepared<'_>,
    counter: &TokenCounter,
    budget: usize,
    model: &str,
    max_input_tokens: usize,
) -> Result<Plan, CondenseError> {
    if p.original <= budget {
        return Ok(Plan::Local {
            fallback_reason: None,
        });
    }
    let frame = p.frame(counter, budget)?;
    let rest = &frame.rest;
    // Recent turns verbatim: the longest suffix of whole messages within half the room.
    let mut recent_cost = 0;
    let mut recent = 0;
    for &i in rest.iter().rev() {
        let cost = p.costs[i].total;
        if recent_cost + cost > frame.room / 2 {
            break;
        }
        recent_cost += cost;
        recent += 1;
    }
    let older = &rest[..rest.len() - recent];
    let Some(&first_older) = older.first() else {
        return Ok(fallback("nothing older than the recent turns to summarize"));
    };
    let overhead = counter.count_message(&ChatMessage::new(Role::System, SUMMARY_PREFIX));
    let summary_room = frame.room.saturating_sub(recent_cost + overhead);
    if summary_room < MIN_SUMMARY_TOKENS {
        return Ok(fallback("the budget leaves no room for a summary"));
    }
    let older_msgs: Vec<ChatMessage> = older.iter().map(|&i| p.msgs[i].clone()).collect();
    let older_tokens: usize = older.iter().map(|&i| p.costs[i].total).sum();
    let transcript = if older_tokens > max_input_tokens {
        let inner = Prepared::new(&older_msgs, counter);
        let reduced = inner.run_local(
            counter,
            max_input_tokens,
            Strategy::Extractive,
            &LocalOptions::default(),
            None,
        )?;
        render_transcript(&reduced.messages)
    } else {
        render_transcript(&older_msgs)
    };
    let words = (summary_room * 3 / 5).max(10);
    let instruction = format!(
        "You condense conversations. Summarize the conversation transcript the user sends so \
         that an assistant can continue the conversation without it. Keep facts, names, \
         numbers, decisions, user preferences, code identifiers and open questions. Write \
         plain sentences or short bullet points, with no preamble, in at most {words} words."
    );
    let request = Box::new(ChatRequest {
        model: model.to_owned(),
        messages: vec![
            ChatMessage::new(Role::System, instruction),
            ChatMessage::new(Role::User, transcript),
        ],
        stream: None,
        temperature: Some(0.0),
        top_p: None,
        max_tokens: Some(summary_room as u64),
        max_completion_tokens: None,
        stop: None,
        tools: None,
        tool_choice: None,
        response_format: None,
        extra: Map::new(),
    });
    let mut kept = frame.pinned;
    kept.extend(rest[rest.len() - recent..].iter().map(|&i| p.piece(i)));
    Ok(Plan::Ask {
        request,
        kept,
        summary_pos: 2 * first_older,
    })
}

fn fallback(reason: &str) -> Plan {
    Plan::Local {
        fallback_reason: Some(reason.to_owned()),
    }
}

/// Calls the model; `Err` carries the fallback reason.
pub(crate) async fn ask(summarizer: &Summarizer, request: &ChatRequest) -> Result<String, String> {
    let call = summarizer.provider.chat(request);
    let response = match tokio::time::timeout(summarizer.timeout, call).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(format!("summarization failed: {e}")),
        Err(_) => {
            return Err(format!(
                "summarization timed out after {} ms",
                summarizer.timeout.as_millis()
            ))
        }
    };
    let text = response
        .choices
        .first()
        .and_then(|c| c.message.content.as_deref())
        .map(str::trim)
        .unwrap_or_default();
    if text.is_empty() {
        return Err("the summarization model returned an empty summary".to_owned());
    }
    Ok(text.to_owned())
}

/// Puts the summary in place; `Err` carries the fallback reason when it does not fit.
pub(crate) fn assemble(
    p: &Prepared<'_>,
    counter: &TokenCounter,
    budget: usize,
    mut kept: Vec<Piece>,
    summary_pos: usize,
    summary: String,
) -> Result<Result<crate::strategy::Condensed, String>, CondenseError> {
    let msg = ChatMessage::new(Role::System, format!("{SUMMARY_PREFIX}{summary}"));
    let cost = counter.count_message(&msg);
    let used = REPLY_PRIMING_TOKENS + kept.iter().map(|k| k.cost).sum::<usize>();
    if used + cost > budget {
        return Ok(Err(format!(
            "the summary ({cost} tokens) does not fit the {} tokens left",
            budget.saturating_sub(used)
        )));
    }
    kept.push(Piece {
        pos: summary_pos,
        msg,
        cost,
    });
    p.finish(
        counter,
        budget,
        kept,
        Strategy::Summarize,
        None,
        Some(summary),
    )
    .map(Ok)
}
