//! The four strategies and the rules every local one shares.
//!
//! Shared rules (truncate, middle_out, extractive; summarize reuses them):
//! - A conversation that already fits is returned unchanged.
//! - `system` and `developer` messages are *pinned*: kept verbatim, in place.
//! - The newest non-pinned message is *mandatory*: if nothing else fits it is cut at a
//!   token boundary (decoded from the kept tokens, never mid-character).
//! - Last resort, when pinned messages leave no room for the newest message: the newest
//!   message is reserved `min(its cost, half the budget)` (at least one content token),
//!   and pinned messages get the rest in order: the one that overflows is cut (its head
//!   kept), later ones are dropped.
//! - If even the newest message cut to one token does not fit,
//!   [`CondenseError::BudgetTooSmall`] says how many tokens are needed.
//! - Tool results whose assistant tool call was dropped (and assistant tool calls whose
//!   results were dropped) are removed, so the output stays a valid chat request.
//!
//! The result always fits `max_tokens` as counted by [`TokenCounter::count_messages`]
//! (3 tokens per message, role, content, name, tool calls, +3 reply priming).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use modelgate_types::chat::{ChatMessage, MessageContent, Role};
use serde::{Deserialize, Serialize};

use crate::error::CondenseError;
use crate::extractive::extractive_rest;
use crate::tokens::{MessageCost, TokenCounter, TokenizerKind, REPLY_PRIMING_TOKENS};

/// Strategy names accepted in requests, in documentation order.
pub const VALID_STRATEGIES: [&str; 4] = ["truncate", "middle_out", "extractive", "summarize"];

/// How a conversation is condensed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Keep pinned messages and the most recent turns that fit.
    Truncate,
    /// Keep the beginning and the end, drop from the middle (OpenRouter's `middle-out`).
    MiddleOut,
    /// Keep the most informative sentences (TF-IDF), in their original order.
    Extractive,
    /// Ask a model to summarise older turns; keep recent turns verbatim.
    Summarize,
}

impl Strategy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Truncate => "truncate",
            Strategy::MiddleOut => "middle_out",
            Strategy::Extractive => "extractive",
            Strategy::Summarize => "summarize",
        }
    }

    /// Whether the same input always gives the same output (all but `summarize`).
    pub fn is_deterministic(self) -> bool {
        !matches!(self, Strategy::Summarize)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = CondenseError;

    /// Case-insensitive; `middle-out` (OpenRouter's spelling) is accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "truncate" => Ok(Strategy::Truncate),
            "middle_out" | "middle-out" => Ok(Strategy::MiddleOut),
            "extractive" => Ok(Strategy::Extractive),
            "summarize" | "summarise" => Ok(Strategy::Summarize),
            _ => Err(CondenseError::UnknownStrategy {
                given: s.to_owned(),
            }),
        }
    }
}

/// Knobs of the local strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// `middle_out` inserts a system note saying what it omitted, when the note fits.
    pub middle_out_note: bool,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            middle_out_note: true,
        }
    }
}

/// The outcome of a condensation, before timing and caching are added.
#[derive(Debug, Clone, PartialEq)]
pub struct Condensed {
    /// The condensed conversation, ready to send.
    pub messages: Vec<ChatMessage>,
    pub original_tokens: usize,
    pub condensed_tokens: usize,
    pub strategy_used: Strategy,
    /// Set when the requested strategy could not be used (`summarize` fell back).
    pub fallback_reason: Option<String>,
    /// Set when `summarize` produced a model summary.
    pub model_summary: Option<String>,
    pub tokenizer: TokenizerKind,
}

/// Condenses `messages` to at most `max_tokens` (as counted by `counter`) with a local
/// strategy. `Strategy::Summarize` needs a model: here it runs `extractive` and says so
/// in `fallback_reason` (use [`crate::Condenser`] for real summaries).
pub fn condense_messages(
    messages: &[ChatMessage],
    max_tokens: usize,
    counter: &TokenCounter,
    strategy: Strategy,
    options: &LocalOptions,
) -> Result<Condensed, CondenseError> {
    if messages.is_empty() {
        return Err(CondenseError::EmptyMessages);
    }
    let prepared = Prepared::new(messages, counter);
    let (used, fallback_reason) = match strategy {
        Strategy::Summarize => (
            Strategy::Extractive,
            Some("summarize needs a model; condense_messages runs extractive".to_owned()),
        ),
        s => (s, None),
    };
    prepared.run_local(counter, max_tokens, used, options, fallback_reason)
}

/// A conversation with every message counted once.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub msgs: &'a [ChatMessage],
    pub costs: Vec<MessageCost>,
    pub original: usize,
}

/// One message of the output, with its position and cost. Original message `i` sits at
/// `pos = 2 * i`; inserted notes at an odd or a dropped message's position.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub pos: usize,
    pub msg: ChatMessage,
    pub cost: usize,
}

/// Which part of an oversize message a cut keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Head,
    Tail,
    /// The beginning and the end, joined by [`ELISION_MARKER`].
    Ends,
}

/// Marks text removed from inside a message by `middle_out`.
pub(crate) const ELISION_MARKER: &str = "\n[…]\n";

/// What the shared rules decided: the pinned messages kept, the non-pinned ones left to
/// a strategy, and the room those may use.
#[derive(Debug)]
pub(crate) struct Frame {
    pub pinned: Vec<Piece>,
    pub rest: Vec<usize>,
    pub room: usize,
}

pub(crate) fn is_pinned(m: &ChatMessage) -> bool {
    matches!(m.role, Role::System | Role::Developer)
}

impl<'a> Prepared<'a> {
    pub fn new(msgs: &'a [ChatMessage], counter: &TokenCounter) -> Self {
        Prepared::with_costs(msgs, counter.message_costs(msgs))
    }

    /// From costs counted earlier (`costs[i]` belongs to `msgs[i]`).
    pub fn with_costs(msgs: &'a [ChatMessage], costs: Vec<MessageCost>) -> Self {
        let original = REPLY_PRIMING_TOKENS + costs.iter().map(|c| c.total).sum::<usize>();
        Prepared {
            msgs,
            costs,
            original,
        }
    }

    pub fn piece(&self, i: usize) -> Piece {
        Piece {
            pos: 2 * i,
            msg: self.msgs[i].clone(),
            cost: self.costs[i].total,
        }
    }

    /// Runs a local strategy (not `Summarize`) over the whole conversation.
    pub fn run_local(
        &self,
        counter: &TokenCounter,
        max_tokens: usize,
        strategy: Strategy,
        options: &LocalOptions,
        fallback_reason: Option<String>,
    ) -> Result<Condensed, CondenseError> {
        let pieces = if self.original <= max_tokens {
            (0..self.msgs.len()).map(|i| self.piece(i)).collect()
        } else {
            let frame = self.frame(counter, max_tokens)?;
            let mut pieces = match strategy {
                Strategy::Truncate => self.truncate_rest(counter, &frame.rest, frame.room),
                Strategy::MiddleOut => {
                    self.middle_out_rest(counter, &frame.rest, frame.room, options.middle_out_note)
                }
                Strategy::Extractive | Strategy::Summarize => {
                    extractive_rest(self, counter, &frame.rest, frame.room)
                }
            };
            pieces.extend(frame.pinned);
            pieces
        };
        self.finish(counter, max_tokens, pieces, strategy, fallback_reason, None)
    }

    /// Orders the pieces, repairs tool pairs, and checks the budget.
    pub fn finish(
        &self,
        counter: &TokenCounter,
        max_tokens: usize,
        mut pieces: Vec<Piece>,
        strategy: Strategy,
        fallback_reason: Option<String>,
        model_summary: Option<String>,
    ) -> Result<Condensed, CondenseError> {
        pieces.sort_by_key(|p| p.pos);
        let pieces = repair_tool_pairs(self.msgs, pieces);
        let condensed = REPLY_PRIMING_TOKENS + pieces.iter().map(|p| p.cost).sum::<usize>();
        if condensed > max_tokens {
            return Err(CondenseError::Internal(format!(
                "{strategy} produced {condensed} tokens for a budget of {max_tokens}"
            )));
        }
        Ok(Condensed {
            messages: pieces.into_iter().map(|p| p.msg).collect(),
            original_tokens: self.original,
            condensed_tokens: condensed,
            strategy_used: strategy,
            fallback_reason,
            model_summary,
            tokenizer: counter.kind(),
        })
    }

    /// Applies the pinned/mandatory/last-resort rules (see the module docs).
    pub fn frame(&self, counter: &TokenCounter, budget: usize) -> Result<Frame, CondenseError> {
        let base = REPLY_PRIMING_TOKENS;
        let (pinned, rest): (Vec<usize>, Vec<usize>) =
            (0..self.msgs.len()).partition(|&i| is_pinned(&self.msgs[i]));
        let pinned_total: usize = pinned.iter().map(|&i| self.costs[i].total).sum();
        let Some(&newest) = rest.last() else {
            // Only pinned messages: keep what fits, cutting the first one that overflows.
            let first = pinned.first().copied().unwrap_or(0);
            let minimum = base + self.costs[first].minimum();
            if budget < minimum {
                return Err(CondenseError::BudgetTooSmall {
                    max_tokens: budget,
                    minimum,
                });
            }
            let (pieces, _) = self.pack(counter, &pinned, budget - base);
            return Ok(Frame {
                pinned: pieces,
                rest,
                room: 0,
            });
        };
        let newest_cost = self.costs[newest];
        let minimum = base + newest_cost.minimum();
        if budget < minimum {
            return Err(CondenseError::BudgetTooSmall {
                max_tokens: budget,
                minimum,
            });
        }
        if base + pinned_total + newest_cost.minimum() <= budget {
            let pieces = pinned.iter().map(|&i| self.piece(i)).collect();
            return Ok(Frame {
                pinned: pieces,
                rest,
                room: budget - base - pinned_total,
            });
        }
        let avail = budget - base;
        let reserve = newest_cost.minimum().max(newest_cost.total.min(avail / 2));
        let (pieces, used) = self.pack(counter, &pinned, avail - reserve);
        Ok(Frame {
            pinned: pieces,
            rest,
            room: avail - used,
        })
    }

    /// Keeps messages in order while they fit in `room`; the first that does not is cut
    /// (head kept) when at least one content token fits, and the rest are dropped.
    fn pack(&self, counter: &TokenCounter, idx: &[usize], room: usize) -> (Vec<Piece>, usize) {
        let mut out = Vec::new();
        let mut used = 0;
        for &i in idx {
            let cost = self.costs[i].total;
            if used + cost <= room {
                out.push(self.piece(i));
                used += cost;
                continue;
            }
            if let Some(p) = self.cut(counter, i, room - used, Keep::Head) {
                used += p.cost;
                out.push(p);
            }
            break;
        }
        (out, used)
    }

    /// Message `i` cut to at most `max_total` tokens, or `None` if not even one content
    /// token fits.
    pub fn cut(
        &self,
        counter: &TokenCounter,
        i: usize,
        max_total: usize,
        keep: Keep,
    ) -> Option<Piece> {
        let cost = self.costs[i];
        if cost.total <= max_total {
            return Some(self.piece(i));
        }
        if max_total < cost.minimum() || cost.content == 0 {
            return None;
        }
        let room = max_total - cost.overhead();
        let text = self.msgs[i].text();
        let (piece, tokens) = cut_text(counter, &text, room, keep);
        let mut msg = self.msgs[i].clone();
        msg.content = Some(MessageContent::Text(piece));
        Some(Piece {
            pos: 2 * i,
            msg,
            cost: cost.overhead() + tokens,
        })
    }

    /// `truncate`: the most recent non-pinned messages that fit, newest first; if even the
    /// newest does not fit it is cut, keeping its end (the most recent text).
    pub fn truncate_rest(&self, counter: &TokenCounter, rest: &[usize], room: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut left = room;
        for &i in rest.iter().rev() {
            let cost = self.costs[i].total;
            if cost <= left {
                out.push(self.piece(i));
                left -= cost;
                continue;
            }
            if out.is_empty() {
                out.extend(self.cut(counter, i, left, Keep::Tail));
            }
            break;
        }
        out
    }

    /// `middle_out`: grows a kept prefix and a kept suffix of the non-pinned messages,
    /// always extending the side that has used fewer tokens (the suffix on ties), until
    /// neither side's next message fits; the middle is dropped. When something was dropped
    /// and `note` is set, a system note saying how much is inserted where the gap is, if it
    /// fits (room for it is reserved first). If the newest message alone exceeds the room,
    /// it is cut keeping its beginning and end, joined by `[…]`.
    pub fn middle_out_rest(
        &self,
        counter: &TokenCounter,
        rest: &[usize],
        room: usize,
        note: bool,
    ) -> Vec<Piece> {
        let Some(&newest) = rest.last() else {
            return Vec::new();
        };
        if self.costs[newest].total > room {
            return self
                .cut(counter, newest, room, Keep::Ends)
                .into_iter()
                .collect();
        }
        let full = self.select_ends(rest, room);
        if full.0 + full.1 == rest.len() || !note {
            return self.ends_pieces(rest, full);
        }
        // Reserve room for the note, worded with upper bounds of what may be omitted.
        let all_tokens: usize = rest.iter().map(|&i| self.costs[i].total).sum();
        let reserve = counter.count_message(&omission_note(rest.len(), all_tokens)) + 2;
        if room < reserve + self.costs[newest].total {
            return self.ends_pieces(rest, full);
        }
        let sel = self.select_ends(rest, room - reserve);
        let (h, t) = sel;
        let dropped = &rest[h..rest.len() - t];
        let dropped_tokens: usize = dropped.iter().map(|&i| self.costs[i].total).sum();
        let msg = omission_note(dropped.len(), dropped_tokens);
        let cost = counter.count_message(&msg);
        let used: usize = rest[..h]
            .iter()
            .chain(&rest[rest.len() - t..])
            .map(|&i| self.costs[i].total)
            .sum();
        let mut out = self.ends_pieces(rest, sel);
        if let Some(&first_dropped) = dropped.first() {
            if used + cost <= room {
                out.push(Piece {
                    pos: 2 * first_dropped,
                    msg,
                    cost,
                });
            }
        }
        out
    }

    /// (prefix length, suffix length) chosen by `middle_out` within `room`.
    fn select_ends(&self, rest: &[usize], room: usize) -> (usize, usize) {
        let (mut h, mut t) = (0usize, 0usize);
        let (mut head_used, mut tail_used, mut left) = (0usize, 0usize, room);
        let (mut head_open, mut tail_open) = (true, true);
        while h + t < rest.len() && (head_open || tail_open) {
            let take_tail = tail_open && (!head_open || tail_used <= head_used);
            let i = if take_tail {
                rest[rest.len() - 1 - t]
            } else {
                rest[h]
            };
            let cost = self.costs[i].total;
            if cost <= left {
                left -= cost;
                if take_tail {
                    t += 1;
                    tail_used += cost;
                } else {
                    h += 1;
                    head_used += cost;
                }
            } else if take_tail {
                tail_open = false;
            } else {
                head_open = false;
            }
        }
        (h, t)
    }

    fn ends_pieces(&self, rest: &[usize], (h, t): (usize, usize)) -> Vec<Piece> {
        rest[..h]
            .iter()
            .chain(&rest[rest.len() - t..])
            .map(|&i| self.piece(i))
            .collect()
    }
}

/// The system note `middle_out` inserts where it dropped messages.
fn omission_note(count: usize, tokens: usize) -> ChatMessage {
    let noun = if count == 1 { "message" } else { "messages" };
    ChatMessage::new(
        Role::System,
        format!("[modelgate middle-out: {count} {noun} ({tokens} tokens) omitted here to fit the token budget]"),
    )
}

/// `text` cut to at most `room` tokens; returns the text and its token count.
pub(crate) fn cut_text(
    counter: &TokenCounter,
    text: &str,
    room: usize,
    keep: Keep,
) -> (String, usize) {
    let tokens = counter.encode(text);
    if tokens.len() <= room {
        return (text.to_owned(), tokens.len());
    }
    let marker = counter.count_text(ELISION_MARKER);
    let mut n = room;
    loop {
        let piece = match keep {
            Keep::Head => counter.decode_lossless(&tokens[..n]),
            Keep::Tail => counter.decode_lossless(&tokens[tokens.len() - n..]),
            Keep::Ends if n > marker + 2 => {
                let h = (n - marker) / 2;
                let t = n - marker - h;
                let mut s = counter.decode_lossless(&tokens[..h]);
                s.push_str(ELISION_MARKER);
                s.push_str(&counter.decode_lossless(&tokens[tokens.len() - t..]));
                s
            }
            Keep::Ends => counter.decode_lossless(&tokens[tokens.len() - n..]),
        };
        // Re-encoding decoded text can merge differently at the cut: verify and shrink.
        let count = counter.count_text(&piece);
        if count <= room {
            return (piece, count);
        }
        let excess = count - room;
        if n <= excess {
            return (String::new(), 0);
        }
        n -= excess;
    }
}

/// Drops tool results whose assistant tool call is gone, and assistant tool calls whose
/// results (present in the original) are gone.
fn repair_tool_pairs(original: &[ChatMessage], pieces: Vec<Piece>) -> Vec<Piece> {
    let kept_calls: HashSet<&str> = pieces
        .iter()
        .flat_map(|p| p.msg.tool_calls.iter().flatten().map(|c| c.id.as_str()))
        .collect();
    let kept_results: HashSet<&str> = pieces
        .iter()
        .filter_map(|p| p.msg.tool_call_id.as_deref())
        .filter(|id| kept_calls.contains(id))
        .collect();
    let original_results: HashSet<&str> = original
        .iter()
        .filter_map(|m| m.tool_call_id.as_deref())
        .collect();
    let drop: Vec<bool> = pieces
        .iter()
        .map(|p| {
            let orphan_result = p.msg.role == Role::Tool
                && p.msg
                    .tool_call_id
                    .as_deref()
                    .is_some_and(|id| !kept_calls.contains(id));
            let unanswered_call = p.msg.tool_calls.iter().flatten().any(|c| {
                original_results.contains(c.id.as_str()) && !kept_results.contains(c.id.as_str())
            });
            orphan_result || unanswered_call
        })
        .collect();
    if !drop.contains(&true) {
        return pieces;
    }
    let pieces: Vec<Piece> = pieces
        .into_iter()
        .zip(drop)
        .filter_map(|(p, d)| (!d).then_some(p))
        .collect();
    // Dropping a call can orphan its results in turn.
    repair_tool_pairs(original, pieces)
}

/// A plain-text rendering of a conversation (`role: text` blocks), used as `summary`
/// for local strategies and as the transcript sent to a summarization model.
pub fn render_transcript(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for m in messages {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(m.role.as_str());
        if let Some(name) = &m.name {
            out.push_str(" (");
            out.push_str(name);
            out.push(')');
        }
        out.push_str(": ");
        out.push_str(&m.text());
        for call in m.tool_calls.iter().flatten() {
            out.push_str(&format!(
                "\n[tool call {}({})]",
                call.function.name, call.function.arguments
            ));
        }
    }
    out
}
