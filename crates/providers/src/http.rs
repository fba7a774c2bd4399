//! The shared HTTP client and the mapping of transport and HTTP failures to [`ProviderError`].
//!
//! One [`HttpClient`] (a pooled reqwest client over rustls that never follows a redirect to
//! another host) is shared by every adapter. Each adapter talks to its upstream through an
//! [`Upstream`]: the provider's name, base URL, key, timeout and extra headers. Every error
//! built here is redacted with the key and the configured header values.

use std::fmt;
use std::time::{Duration, SystemTime};

use modelgate_types::Secret;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{redact, ProviderError, ProviderErrorKind};

/// Default time allowed to open a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Maximum redirects followed (always to the same host).
const MAX_REDIRECTS: usize = 5;
/// Largest response body read from an upstream (model lists, chat answers, error bodies);
/// a larger one is a `BadResponse`, never an unbounded buffer.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// The HTTP client shared by every adapter: connection pooling, rustls, a connect timeout,
/// and a redirect policy that refuses to leave the original host (so a key sent in a
/// header can never be forwarded somewhere else). Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// The HTTP client could not be built (e.g. the TLS backend failed to initialise).
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct ClientError(String);

impl HttpClient {
    /// A client with [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> Result<HttpClient, ClientError> {
        HttpClient::with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)
    }

    /// A client with the given connect timeout.
    pub fn with_connect_timeout(connect_timeout: Duration) -> Result<HttpClient, ClientError> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.stop();
            }
            let same_origin = attempt.previous().first().is_some_and(|first| {
                first.scheme() == attempt.url().scheme()
                    && first.host_str() == attempt.url().host_str()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
            });
            if same_origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let inner = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(policy)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .user_agent(concat!("modelgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError(error_chain(&e)))?;
        Ok(HttpClient { inner })
    }

    /// The underlying reqwest client.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }
}

/// An error found by a pure translation or parsing function, before it is attributed to a
/// provider (and redacted) by [`Upstream::wire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    pub kind: ProviderErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

impl WireError {
    pub(crate) fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        WireError {
            kind,
            status: None,
            message: message.into(),
        }
    }

    pub(crate) fn bad_response(message: impl Into<String>) -> Self {
        WireError::new(ProviderErrorKind::BadResponse, message)
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        WireError::new(ProviderErrorKind::InvalidRequest, message)
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// One configured upstream: everything an adapter needs to make a call.
#[derive(Clone)]
pub(crate) struct Upstream {
    pub name: String,
    /// Base URL without a trailing slash.
    pub base: String,
    pub key: Option<Secret>,
    /// Timeout of each call; also the first-byte and idle timeout of streams.
    pub timeout: Duration,
    headers: Vec<(HeaderName, HeaderValue)>,
    secrets: Vec<String>,
    client: HttpClient,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// A configured header whose name or value cannot be sent.
#[derive(Debug, Clone)]
pub(crate) struct BadHeader(pub String);

impl Upstream {
    pub(crate) fn new(
        name: &str,
        base: &str,
        key: Option<Secret>,
        timeout: Duration,
        extra_headers: &std::collections::BTreeMap<String, Secret>,
        client: HttpClient,
    ) -> Result<Upstream, BadHeader> {
        let mut headers = Vec::with_capacity(extra_headers.len());
        let mut secrets = Vec::new();
        if let Some(k) = &key {
            secrets.push(k.expose().to_owned());
        }
        for (n, v) in extra_headers {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| BadHeader(n.clone()))?;
            let mut value = HeaderValue::from_str(v.expose()).map_err(|_| BadHeader(n.clone()))?;
            value.set_sensitive(true);
            headers.push((name, value));
            secrets.push(v.expose().to_owned());
        }
        Ok(Upstream {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            key,
            timeout,
            headers,
            secrets,
            client,
        })
    }

    /// `{base}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the configured extra headers (values marked sensitive).
    pub(crate) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let mut rb = self.client.reqwest().request(method, url);
        for (n, v) in &self.headers {
            rb = rb.header(n.clone(), v.clone());
        }
        rb
    }

    /// A sensitive header value holding the key, or an `Auth` error when there is no key or
    /// it cannot be sent in a header. `prefix` is e.g. `"Bearer "`.
    pub(crate) fn key_header(&self, prefix: &str) -> Result<Option<HeaderValue>, ProviderError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let mut v = HeaderValue::from_str(&format!("{prefix}{}", key.expose())).map_err(|_| {
            self.error(
                ProviderErrorKind::Auth,
                "the API key contains characters that cannot be sent in an HTTP header",
            )
        })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }

    /// Adds `name: {prefix}{key}` when a key is configured.
    pub(crate) fn with_key(
        &self,
        rb: RequestBuilder,
        name: &'static str,
        prefix: &str,
    ) -> Result<RequestBuilder, ProviderError> {
        Ok(match self.key_header(prefix)? {
            Some(v) => rb.header(name, v),
            None => rb,
        })
    }

    /// Removes the key and header values from `text`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &secrets)
    }

    /// A redacted error attributed to this provider.
    pub(crate) fn error(&self, kind: ProviderErrorKind, message: impl AsRef<str>) -> ProviderError {
        ProviderError::new(&self.name, kind, self.redact(message.as_ref()))
    }

    /// Attributes (and redacts) an error from a pure function.
    pub(crate) fn wire(&self, e: WireError) -> ProviderError {
        let mut err = self.error(e.kind, e.message);
        err.status = e.status;
        err
    }

    /// Maps a reqwest error (which never carries a key: keys only travel in headers).
    pub(crate) fn transport(&self, e: &reqwest::Error) -> ProviderError {
        let text = error_chain(e);
        let kind = if e.is_timeout() {
            ProviderErrorKind::Timeout
        } else if e.is_connect() {
            ProviderErrorKind::Connect
        } else if e.is_decode() {
            ProviderErrorKind::BadResponse
        } else if e.is_body() {
            ProviderErrorKind::Upstream
        } else if e.is_builder() {
            ProviderErrorKind::InvalidRequest
        } else {
            // Request errors: the connection failed or closed before an answer.
            ProviderErrorKind::Connect
        };
        let mut err = self.error(kind, text);
        err.status = e.status().map(|s| s.as_u16());
        err
    }

    /// A `Timeout` error for a call or stream that took longer than allowed.
    pub(crate) fn timeout_error(&self, what: &str) -> ProviderError {
        self.error(
            ProviderErrorKind::Timeout,
            format!("{what} after {} ms", self.timeout.as_millis()),
        )
    }

    /// Maps a non-2xx answer to an error, with the upstream's own message.
    pub(crate) fn status_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ProviderError {
        let code = status.as_u16();
        let kind = match kind_for_status(code) {
            ProviderErrorKind::InvalidRequest if is_auth_failure_body(body) => {
                ProviderErrorKind::Auth
            }
            kind => kind,
        };
        let message = extract_error_message(body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned()
        });
        let retry_after = match kind {
            ProviderErrorKind::RateLimited | ProviderErrorKind::Upstream => {
                parse_retry_after(headers, SystemTime::now()).or_else(|| google_retry_delay(body))
            }
            _ => None,
        };
        self.error(kind, message)
            .with_status(code)
            .with_retry_after(retry_after)
    }

    /// Sends a request with the call timeout and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
    ) -> Result<T, ProviderError> {
        let body = self.bytes(rb).await?;
        serde_json::from_slice(&body)
            .map_err(|e| self.error(ProviderErrorKind::BadResponse, format!("invalid JSON: {e}")))
    }

    /// Sends a request with the call timeout and returns the body of a 2xx answer.
    pub(crate) async fn bytes(&self, rb: RequestBuilder) -> Result<bytes::Bytes, ProviderError> {
        let call = async {
            let resp = rb
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| self.transport(&e))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = self.read_limited(resp).await?;
            if !status.is_success() {
                return Err(self.status_error(status, &headers, &body));
            }
            Ok(body)
        };
        // reqwest's own timeout covers the call; this outer one is a backstop.
        match tokio::time::timeout(self.timeout + Duration::from_millis(50), call).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout_error("no complete answer")),
        }
    }

    /// Reads a whole body, at most [`MAX_RESPONSE_BYTES`] of it.
    async fn read_limited(&self, mut resp: Response) -> Result<bytes::Bytes, ProviderError> {
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(self.too_large());
        }
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(&e))? {
            if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(self.too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    fn too_large(&self) -> ProviderError {
        self.error(
            ProviderErrorKind::BadResponse,
            format!(
                "response body larger than {} MiB",
                MAX_RESPONSE_BYTES / (1024 * 1024)
            ),
        )
    }

    /// Opens a streaming call: the status and headers must arrive within the timeout.
    /// Non-2xx answers are read (within the timeout) and mapped to errors.
    pub(crate) async fn open_stream(&self, rb: RequestBuilder) -> Result<Response, ProviderError> {
        let resp = match tokio::time::timeout(self.timeout, rb.send()).await {
            Ok(r) => r.map_err(|e| self.transport(&e))?,
            Err(_) => return Err(self.timeout_error("no response headers")),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        let body = match tokio::time::timeout(self.timeout, self.read_limited(resp)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) | Err(_) => bytes::Bytes::new(),
        };
        Err(self.status_error(status, &headers, &body))
    }
}

/// The error kind for an HTTP status (non-2xx).
pub(crate) fn kind_for_status(code: u16) -> ProviderErrorKind {
    match code {
        // 498: Cohere's "invalid token".
        401 | 403 | 498 => ProviderErrorKind::Auth,
        404 => ProviderErrorKind::NotFound,
        408 => ProviderErrorKind::Timeout,
        429 => ProviderErrorKind::RateLimited,
        400..=499 => ProviderErrorKind::InvalidRequest,
        500..=599 => ProviderErrorKind::Upstream,
        // 1xx/3xx (a refused cross-host redirect ends here) and anything odd.
        _ => ProviderErrorKind::BadResponse,
    }
}

/// Gemini answers a bad key with 400 `INVALID_ARGUMENT` whose `details` carry the
/// `google.rpc.ErrorInfo` reason `API_KEY_INVALID` (and an `UNAUTHENTICATED` status for
/// bad OAuth tokens): those are authentication failures, not bad requests.
fn is_auth_failure_body(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(err) = v.get("error") else {
        return false;
    };
    if err.get("status").and_then(Value::as_str) == Some("UNAUTHENTICATED") {
        return true;
    }
    err.get("details")
        .and_then(Value::as_array)
        .is_some_and(|details| {
            details.iter().any(|d| {
                matches!(
                    d.get("reason").and_then(Value::as_str),
                    Some("API_KEY_INVALID" | "API_KEY_SERVICE_BLOCKED")
                )
            })
        })
}

/// Google APIs send no `Retry-After` header: a 429 carries the delay as a
/// `google.rpc.RetryInfo` detail, `{"@type": ".../google.rpc.RetryInfo", "retryDelay": "7s"}`
/// (a protobuf `Duration` in JSON: seconds with an `s` suffix, possibly fractional).
pub(crate) fn google_retry_delay(body: &[u8]) -> Option<Duration> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let details = v.pointer("/error/details")?.as_array()?;
    let delay = details.iter().find_map(|d| {
        let ty = d.get("@type")?.as_str()?;
        ty.ends_with("google.rpc.RetryInfo")
            .then(|| d.get("retryDelay")?.as_str())
            .flatten()
    })?;
    let secs: f64 = delay.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_millis((secs * 1000.0) as u64))
}

/// `retry-after-ms` (OpenAI), else `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_millis(ms as u64));
    }
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = raw.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_millis((secs * 1000.0) as u64));
        }
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The human message inside a provider's error body:
/// OpenAI/Azure/Gemini/Groq/OpenRouter `{"error":{"message"}}`, Anthropic
/// `{"type":"error","error":{"message"}}`, Ollama `{"error":"..."}`, Cohere and Mistral
/// `{"message"}`, FastAPI servers (vLLM) `{"detail"}`; else the start of the text body.
pub(crate) fn extract_error_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let candidates = [
            v.pointer("/error/message"),
            v.get("error").filter(|e| e.is_string()),
            v.get("message"),
            v.get("detail"),
            v.pointer("/error/type"),
        ];
        for c in candidates.into_iter().flatten() {
            match c {
                Value::String(s) if !s.trim().is_empty() => return Some(s.trim().to_owned()),
                Value::Null | Value::String(_) => {}
                other => return Some(other.to_string()),
            }
        }
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(200).collect())
}

/// An error and its sources, joined with ": " (reqwest's `Display` alone says little).
/// URLs are removed: they never carry keys, but they are noise in an error message.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = vec![strip_url(e)];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn strip_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(u) => text
            .replace(&format!(" for url ({u})"), "")
            .replace(u.as_str(), "<url>"),
        None => text,
    }
}

/// Percent-encodes one URL path segment (model ids go into paths for Azure and Gemini).
pub(crate) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Seconds since the Unix epoch (for `created` fields of translated responses).
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_kinds() {
        assert_eq!(kind_for_status(401), ProviderErrorKind::Auth);
        assert_eq!(kind_for_status(403), ProviderErrorKind::Auth);
        assert_eq!(kind_for_status(404), ProviderErrorKind::NotFound);
        assert_eq!(kind_for_status(429), ProviderErrorKind::RateLimited);
        assert_eq!(kind_for_status(422), ProviderErrorKind::InvalidRequest);
        assert_eq!(kind_for_status(500), ProviderErrorKind::Upstream);
        assert_eq!(kind_for_status(529), ProviderErrorKind::Upstream);
        assert_eq!(kind_for_status(302), ProviderErrorKind::BadResponse);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("header"));
        assert_eq!(parse_retry_after(&h, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&earlier).expect("header"),
        );
        assert_eq!(parse_retry_after(&h, now), Some(Duration::ZERO));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(
            parse_retry_after(&h, now),
            Some(Duration::from_millis(1500))
        );
        h.clear();
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn google_retry_info() {
        let body =
            br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[
            {"@type":"type.googleapis.com/google.rpc.Help","links":[]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12.5s"}]}}"#;
        assert_eq!(
            google_retry_delay(body),
            Some(Duration::from_millis(12_500))
        );
        assert_eq!(google_retry_delay(br#"{"error":{"details":[]}}"#), None);
        assert_eq!(
            google_retry_delay(br#"{"error":{"details":[{"@type":"x/google.rpc.RetryInfo","retryDelay":"soon"}]}}"#),
            None
        );
        assert_eq!(google_retry_delay(b"not json"), None);
        assert_eq!(kind_for_status(498), ProviderErrorKind::Auth);
    }

    #[test]
    fn error_messages_from_real_bodies() {
        let cases: [(&str, &str); 7] = [
            (
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                "Incorrect API key provided",
            ),
            (
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
                "invalid x-api-key",
            ),
            (
                r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#,
                "API key not valid. Please pass a valid API key.",
            ),
            (r#"{"message":"invalid api token"}"#, "invalid api token"),
            (r#"{"error":"model 'x' not found"}"#, "model 'x' not found"),
            (r#"{"detail":"Not Found"}"#, "Not Found"),
            ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        ];
        for (body, want) in cases {
            assert_eq!(
                extract_error_message(body.as_bytes()).as_deref(),
                Some(want),
                "{body}"
            );
        }
        assert_eq!(extract_error_message(b""), None);
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("gpt-4o"), "gpt-4o");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn upstream_errors_are_redacted_and_debug_hides_key() {
        let client = HttpClient::new().expect("client");
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("X-Extra".to_owned(), Secret::new("header-secret-value"));
        let up = Upstream::new(
            "p",
            "http://127.0.0.1:1/",
            Some(Secret::new("my-distinctive-key-123")),
            Duration::from_millis(100),
            &headers,
            client,
        )
        .expect("upstream");
        let e = up.error(
            ProviderErrorKind::Auth,
            "key my-distinctive-key-123 and header-secret-value",
        );
        let text = format!("{e} {e:?} {up:?}");
        assert!(!text.contains("my-distinctive-key-123"), "{text}");
        assert!(!text.contains("header-secret-value"), "{text}");
        assert_eq!(up.url("/models"), "http://127.0.0.1:1/models");
    }
}
