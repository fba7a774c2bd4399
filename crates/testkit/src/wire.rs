//! Response helpers: JSON and raw bodies, SSE framing, and the paced, cuttable event stream.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::state::StreamSettings;

pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;
pub(crate) type Resp = Response<Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with the given status, content type, extra headers and body.
pub(crate) fn raw(
    status: u16,
    content_type: &str,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Resp {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert(hyper::header::CONTENT_TYPE, v);
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    }
    resp
}

pub(crate) fn json(status: u16, value: &Value) -> Resp {
    json_with(status, value, &[])
}

pub(crate) fn json_with(status: u16, value: &Value, headers: &[(&str, String)]) -> Resp {
    raw(status, "application/json", headers, value.to_string())
}

/// `data: {json}\n\n`
pub(crate) fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `data: {json}\r\n\r\n`, Google's framing.
pub(crate) fn data_crlf(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\r\n\r\n"))
}

/// `event: {name}\ndata: {json}\n\n`
pub(crate) fn event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

/// A streamed body: the events in order, paced by `settings.interval`; after
/// `settings.error_after` events the `error_event` (if any) is sent and the stream ends; after
/// `settings.cut_after` events the connection is aborted (no terminator). A body dropped before
/// its last event was handed out counts as a cancelled stream.
#[derive(Debug)]
pub(crate) struct EventStream {
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) events: Vec<Bytes>,
    pub(crate) error_event: Option<Bytes>,
}

struct CancelGuard {
    counter: Arc<AtomicUsize>,
    finished: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct StreamState {
    events: VecDeque<Bytes>,
    total: usize,
    sent: usize,
    settings: StreamSettings,
    error_event: Option<Bytes>,
    guard: CancelGuard,
    done: bool,
}

impl EventStream {
    pub(crate) fn sse(events: Vec<Bytes>) -> Self {
        EventStream {
            content_type: "text/event-stream",
            headers: vec![("cache-control", "no-cache".to_owned())],
            events,
            error_event: None,
        }
    }

    pub(crate) fn with_error_event(mut self, ev: Bytes) -> Self {
        self.error_event = Some(ev);
        self
    }

    pub(crate) fn into_response(
        self,
        settings: &StreamSettings,
        cancelled: Arc<AtomicUsize>,
    ) -> Resp {
        let total = self.events.len();
        let state = StreamState {
            events: self.events.into(),
            total,
            sent: 0,
            settings: settings.clone(),
            error_event: self.error_event,
            guard: CancelGuard {
                counter: cancelled,
                finished: false,
            },
            done: false,
        };
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            if st.sent > 0 && !st.settings.interval.is_zero() {
                tokio::time::sleep(st.settings.interval).await;
            }
            if st
                .settings
                .error_after
                .is_some_and(|n| n == st.sent && n < st.total)
            {
                if let Some(ev) = st.error_event.take() {
                    st.done = true;
                    st.guard.finished = true;
                    return Some((Ok(Frame::data(ev)), st));
                }
            }
            if st
                .settings
                .cut_after
                .is_some_and(|n| n == st.sent && n < st.total)
            {
                // Let the server flush what was sent before the connection is aborted.
                tokio::task::yield_now().await;
                st.done = true;
                st.guard.finished = true;
                return Some((Err(io::Error::other("mock upstream cut the stream")), st));
            }
            match st.events.pop_front() {
                None => {
                    st.guard.finished = true;
                    drop(st);
                    None
                }
                Some(ev) => {
                    st.sent += 1;
                    if st.events.is_empty() {
                        st.guard.finished = true;
                    }
                    Some((Ok(Frame::data(ev)), st))
                }
            }
        });
        let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
        let h = resp.headers_mut();
        if let Ok(v) = self.content_type.parse() {
            h.insert(hyper::header::CONTENT_TYPE, v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        resp
    }
}

/// Unix seconds now.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`) from unix seconds (proleptic Gregorian, UTC).
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        (secs % 3_600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_729_555_200), "2024-10-22T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
