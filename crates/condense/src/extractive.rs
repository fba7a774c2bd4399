//! `extractive`: keeps the most informative sentences, in their original order.
//!
//! - The newest non-pinned message is kept verbatim when it costs at most half the room.
//! - Every other non-pinned message is split into sentences (after `.`, `!`, `?` or `…`
//!   followed by whitespace, and at line breaks).
//! - Each sentence is scored with TF-IDF over the conversation's sentences: the sum of
//!   `idf(w) = ln((1 + N) / (1 + df(w))) + 1` over its words (lowercase alphanumeric runs of
//!   two or more characters, minus a short English stop-word list), divided by the square
//!   root of its word count, times `1 + 0.2 * (message position / message count)` so later
//!   turns win ties against older ones; the first turn, which usually states the task,
//!   gets the full `1.2` too.
//! - Sentences are taken best first (ties: earlier first) while they fit; a message is
//!   rebuilt from its chosen sentences in order, adjacent ones joined by their original
//!   whitespace and non-adjacent ones by ` … ` (the only text added).
//! - Everything is deterministic: no hash-map iteration order reaches a score or a choice.

use std::collections::HashMap;

use modelgate_types::chat::MessageContent;

use crate::strategy::{Keep, Piece, Prepared};
use crate::tokens::TokenCounter;

/// Joins two non-adjacent kept sentences of one message.
const GAP: &str = " … ";

const STOP_WORDS: [&str; 48] = [
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was",
    "one", "our", "out", "has", "have", "his", "how", "its", "may", "who", "did", "get", "him",
    "let", "she", "too", "use", "that", "this", "with", "from", "they", "will", "would", "there",
    "their", "what", "about", "which", "when", "your", "than", "then", "them", "is",
];

#[derive(Debug)]
struct Sentence {
    /// Index of the message in the conversation.
    msg: usize,
    /// Byte span in that message's text.
    start: usize,
    end: usize,
    tokens: usize,
    score: f64,
}

/// Sentence spans of `text` (trimmed, non-empty), in order.
fn split_sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\n' => Some(i),
            '.' | '!' | '?' | '…' => match chars.peek() {
                Some((_, next)) if next.is_whitespace() => Some(i + c.len_utf8()),
                None => Some(i + c.len_utf8()),
                _ => None,
            },
            _ => None,
        };
        if let Some(end) = end {
            push_trimmed(text, start, end, &mut out);
            start = end;
        }
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let span = &text[start..end];
    let lead = span.len() - span.trim_start().len();
    let trimmed = span.trim();
    if !trimmed.is_empty() {
        out.push((start + lead, start + lead + trimmed.len()));
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

/// Runs `extractive` over the non-pinned messages `rest` within `room` tokens.
pub(crate) fn extractive_rest(
    p: &Prepared<'_>,
    counter: &TokenCounter,
    rest: &[usize],
    room: usize,
) -> Vec<Piece> {
    let Some(&newest) = rest.last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut left = room;
    let mut candidates = rest;
    if p.costs[newest].total <= room / 2 {
        out.push(p.piece(newest));
        left -= p.costs[newest].total;
        candidates = &rest[..rest.len() - 1];
    }

    let texts: Vec<String> = candidates.iter().map(|&i| p.msgs[i].text()).collect();
    let mut sentences: Vec<Sentence> = Vec::new();
    let mut sentence_words: Vec<Vec<u32>> = Vec::new();
    let mut vocab: HashMap<String, u32> = HashMap::new();
    let mut df: Vec<u32> = Vec::new();
    for (k, text) in texts.iter().enumerate() {
        for (start, end) in split_sentences(text) {
            let s = &text[start..end];
            let mut ids: Vec<u32> = words(s)
                .map(|w| {
                    let next = vocab.len() as u32;
                    let id = *vocab.entry(w).or_insert(next);
                    if id as usize == df.len() {
                        df.push(0);
                    }
                    id
                })
                .collect();
            let all = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            for &id in &ids {
                df[id as usize] += 1;
            }
            sentence_words.push(all);
            sentences.push(Sentence {
                msg: k,
                start,
                end,
                tokens: counter.count_text(s),
                score: 0.0,
            });
        }
    }
    let n = sentences.len() as f64;
    let idf: Vec<f64> = df
        .iter()
        .map(|&d| ((1.0 + n) / (1.0 + f64::from(d))).ln() + 1.0)
        .collect();
    let msg_count = candidates.len().max(1) as f64;
    for (s, ws) in sentences.iter_mut().zip(&sentence_words) {
        if ws.is_empty() {
            continue;
        }
        let sum: f64 = ws.iter().map(|&w| idf[w as usize]).sum();
        let position = if s.msg == 0 {
            1.0
        } else {
            s.msg as f64 / msg_count
        };
        let recency = 1.0 + 0.2 * position;
        s.score = sum / (ws.len() as f64).sqrt() * recency;
    }

    // Best first; ties keep the earlier sentence.
    let mut order: Vec<usize> = (0..sentences.len()).collect();
    order.sort_by(|&a, &b| {
        sentences[b]
            .score
            .total_cmp(&sentences[a].score)
            .then(a.cmp(&b))
    });
    let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); candidates.len()];
    let mut estimate = 0usize;
    for &s in &order {
        let sent = &sentences[s];
        let k = sent.msg;
        // +2: a joiner and a possible merge difference at the junction.
        let mut extra = sent.tokens + 2;
        if chosen[k].is_empty() {
            extra += p.costs[candidates[k]].overhead();
        }
        if estimate + extra <= left {
            estimate += extra;
            chosen[k].push(s);
        }
    }

    // Build, then verify exactly; drop the weakest chosen sentence until it fits.
    let rank: Vec<usize> = {
        let mut r = vec![0; sentences.len()];
        for (pos, &s) in order.iter().enumerate() {
            r[s] = pos;
        }
        r
    };
    let mut built: Vec<Option<Piece>> = (0..candidates.len())
        .map(|k| {
            build(
                p,
                counter,
                candidates[k],
                &texts[k],
                &sentences,
                &mut chosen[k],
            )
        })
        .collect();
    loop {
        let used: usize = built.iter().flatten().map(|pc| pc.cost).sum();
        if used <= left {
            break;
        }
        let weakest = chosen
            .iter()
            .enumerate()
            .flat_map(|(k, v)| v.iter().map(move |&s| (k, s)))
            .max_by_key(|&(_, s)| rank[s]);
        let Some((k, s)) = weakest else {
            built.iter_mut().for_each(|b| *b = None);
            break;
        };
        chosen[k].retain(|&x| x != s);
        built[k] = build(
            p,
            counter,
            candidates[k],
            &texts[k],
            &sentences,
            &mut chosen[k],
        );
    }
    out.extend(built.into_iter().flatten());
    if out.is_empty() {
        out.extend(p.cut(counter, newest, room, Keep::Tail));
    }
    out
}

/// Message `i` rebuilt from its chosen sentences (`None` when none is chosen).
fn build(
    p: &Prepared<'_>,
    counter: &TokenCounter,
    i: usize,
    text: &str,
    sentences: &[Sentence],
    chosen: &mut [usize],
) -> Option<Piece> {
    if chosen.is_empty() {
        return None;
    }
    chosen.sort_unstable();
    let mut content = String::new();
    for (j, &s) in chosen.iter().enumerate() {
        if j > 0 {
            let prev = chosen[j - 1];
            if s == prev + 1 {
                content.push_str(&text[sentences[prev].end..sentences[s].start]);
            } else {
                content.push_str(GAP);
            }
        }
        content.push_str(&text[sentences[s].start..sentences[s].end]);
    }
    let mut msg = p.msgs[i].clone();
    let cost = p.costs[i].overhead() + counter.count_text(&content);
    msg.content = Some(MessageContent::Text(content));
    Some(Piece {
        pos: 2 * i,
        msg,
        cost,
    })
}
