//! Server-sent events: an incremental decoder and the driver that turns an upstream SSE
//! body into a [`ChatStream`] through a per-wire-format [`StreamTranslator`].
//!
//! The driver enforces the idle timeout between chunks, ends the stream at the format's
//! end marker, and reports a body that ends without one as `StreamInterrupted`. Dropping
//! the returned stream drops the upstream response, which cancels the upstream request.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use modelgate_types::chat::ChatChunk;
use reqwest::Response;

use crate::http::{Upstream, WireError};
use crate::{ChatStream, ProviderError, ProviderErrorKind};

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Incremental SSE decoder (WHATWG rules: `\n`, `\r\n` or `\r` line ends; a blank line
/// dispatches; `:` lines are comments; one space after the colon is removed).
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`; a leading `\n` now belongs to it.
    skip_lf: bool,
}

impl SseDecoder {
    pub(crate) fn new() -> Self {
        SseDecoder::default()
    }

    /// Feeds bytes; returns the events completed by them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut input = bytes;
        if self.skip_lf {
            if let Some(rest) = input.strip_prefix(b"\n") {
                input = rest;
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(input);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                let mut next = i + 1;
                if b == b'\r' {
                    if next < self.buf.len() {
                        if self.buf[next] == b'\n' {
                            next += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                if let Some(ev) = self.line(&line) {
                    out.push(ev);
                }
                start = next;
                i = next;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        out
    }

    /// Bytes held for the event being read (its data and an incomplete line).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() + self.data.len()
    }

    /// At end of input: a complete but undispatched event (no trailing blank line) is
    /// dispatched; an incomplete last line is dropped.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        self.buf.clear();
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

/// What one upstream event means for the OpenAI-shaped stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Translated {
    pub chunk: Option<ChatChunk>,
    /// The upstream's end marker was seen: stop reading.
    pub done: bool,
}

impl Translated {
    pub(crate) fn chunk(c: ChatChunk) -> Self {
        Translated {
            chunk: Some(c),
            done: false,
        }
    }

    pub(crate) fn nothing() -> Self {
        Translated::default()
    }

    pub(crate) fn done(chunk: Option<ChatChunk>) -> Self {
        Translated { chunk, done: true }
    }
}

/// Per-stream state of one wire format's event translation.
pub(crate) trait StreamTranslator: Send + 'static {
    /// Translates one event (pure apart from the translator's own state).
    fn translate(&mut self, event: &SseEvent) -> Result<Translated, WireError>;

    /// Whether the body may end now without an explicit marker (Gemini ends by closing
    /// the connection after the chunk carrying `finishReason`).
    fn complete_at_eof(&self) -> bool {
        false
    }
}

/// Largest single SSE event (or unterminated line) held while reading a stream; a larger
/// one ends the stream with `BadResponse` instead of growing a buffer without bound.
pub(crate) const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Driver<T> {
    up: Upstream,
    body: ByteStream,
    decoder: SseDecoder,
    translator: T,
    pending: VecDeque<Result<ChatChunk, ProviderError>>,
    finished: bool,
}

impl<T: StreamTranslator> Driver<T> {
    fn handle(&mut self, events: Vec<SseEvent>) {
        for ev in events {
            match self.translator.translate(&ev) {
                Ok(t) => {
                    if let Some(c) = t.chunk {
                        self.pending.push_back(Ok(c));
                    }
                    if t.done {
                        self.finished = true;
                        return;
                    }
                }
                Err(e) => {
                    self.pending.push_back(Err(self.up.wire(e)));
                    self.finished = true;
                    return;
                }
            }
        }
    }

    fn fail(&mut self, e: ProviderError) {
        self.pending.push_back(Err(e));
        self.finished = true;
    }
}

/// Turns an upstream SSE response into a [`ChatStream`].
pub(crate) fn chat_stream<T: StreamTranslator>(
    up: &Upstream,
    resp: Response,
    translator: T,
) -> ChatStream {
    let driver = Driver {
        up: up.clone(),
        body: Box::pin(resp.bytes_stream()),
        decoder: SseDecoder::new(),
        translator,
        pending: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(item) = d.pending.pop_front() {
                return Some((item, d));
            }
            if d.finished {
                return None;
            }
            match tokio::time::timeout(d.up.timeout, d.body.next()).await {
                Err(_) => {
                    let e = d.up.timeout_error("no stream data");
                    d.fail(e);
                }
                Ok(Some(Ok(bytes))) => {
                    let events = d.decoder.push(&bytes);
                    d.handle(events);
                    if !d.finished && d.decoder.buffered() > MAX_EVENT_BYTES {
                        let e = d.up.error(
                            ProviderErrorKind::BadResponse,
                            format!(
                                "a stream event is larger than {} MiB",
                                MAX_EVENT_BYTES / (1024 * 1024)
                            ),
                        );
                        d.fail(e);
                    }
                }
                Ok(Some(Err(e))) => {
                    let mut err = d.up.transport(&e);
                    err.kind = ProviderErrorKind::StreamInterrupted;
                    d.fail(err);
                }
                Ok(None) => {
                    if let Some(ev) = d.decoder.finish() {
                        d.handle(vec![ev]);
                    }
                    if !d.finished {
                        if d.translator.complete_at_eof() {
                            d.finished = true;
                        } else {
                            let e = d.up.error(
                                ProviderErrorKind::StreamInterrupted,
                                "the connection closed before the end of the stream",
                            );
                            d.fail(e);
                        }
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let raw = "event: message_start\ndata: {\"a\":1}\n\n: ping comment\ndata: x\ndata: y\r\n\r\ndata: [DONE]\n\n";
        let whole = SseDecoder::new().push(raw.as_bytes());
        let want = vec![
            ev(Some("message_start"), "{\"a\":1}"),
            ev(None, "x\ny"),
            ev(None, "[DONE]"),
        ];
        assert_eq!(whole, want);
        for split in 1..raw.len() {
            let mut d = SseDecoder::new();
            let mut got = d.push(&raw.as_bytes()[..split]);
            got.extend(d.push(&raw.as_bytes()[split..]));
            assert_eq!(got, want, "split at {split}");
        }
    }

    #[test]
    fn cr_only_line_ends_and_finish() {
        let mut d = SseDecoder::new();
        let got = d.push(b"data: a\r\r");
        assert_eq!(got, vec![ev(None, "a")]);
        let got = d.push(b"\ndata: b\n");
        assert!(got.is_empty());
        assert_eq!(d.finish(), Some(ev(None, "b")));
        let mut d = SseDecoder::new();
        assert!(d.push(b"data: partial").is_empty());
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let mut d = SseDecoder::new();
        assert!(d.push(b"event: ping\n\n").is_empty());
        assert_eq!(d.push(b"data:nospace\n\n"), vec![ev(None, "nospace")]);
    }
}
