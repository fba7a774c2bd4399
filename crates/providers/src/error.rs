//! `ProviderError`: where a fault is and whether a retry may help.

use std::fmt;
use std::time::Duration;

/// What went wrong, from the gateway's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// 401/403: the key is missing, wrong or not allowed.
    Auth,
    /// 429: slow down (see `retry_after`).
    RateLimited,
    /// No answer within the configured time.
    Timeout,
    /// The connection could not be made (DNS, refused, TLS).
    Connect,
    /// The upstream answered 5xx.
    Upstream,
    /// The upstream rejected the request as invalid (4xx other than 401/403/404/429).
    InvalidRequest,
    /// The model or resource does not exist upstream (404).
    NotFound,
    /// The upstream answered something we cannot parse.
    BadResponse,
    /// A stream ended before its end marker.
    StreamInterrupted,
    /// The operation is not available for this provider kind.
    Unsupported,
}

impl ProviderErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::Auth => "auth",
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::Connect => "connect",
            ProviderErrorKind::Upstream => "upstream",
            ProviderErrorKind::InvalidRequest => "invalid_request",
            ProviderErrorKind::NotFound => "not_found",
            ProviderErrorKind::BadResponse => "bad_response",
            ProviderErrorKind::StreamInterrupted => "stream_interrupted",
            ProviderErrorKind::Unsupported => "unsupported",
        }
    }
}

/// An error from one provider. Its text names the provider and the status, never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub provider: String,
    pub kind: ProviderErrorKind,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// Human-readable detail, already redacted.
    pub message: String,
    /// From a `Retry-After` header (429/503).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(
        provider: impl Into<String>,
        kind: ProviderErrorKind,
        message: impl Into<String>,
    ) -> Self {
        ProviderError {
            provider: provider.into(),
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Whether trying again (after a backoff) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::RateLimited
                | ProviderErrorKind::Timeout
                | ProviderErrorKind::Connect
                | ProviderErrorKind::Upstream
                | ProviderErrorKind::StreamInterrupted
        )
    }

    /// Whether the fault is the client's (a bad request), which must not count against
    /// the provider's health (e.g. circuit breakers).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::InvalidRequest
                | ProviderErrorKind::NotFound
                | ProviderErrorKind::Unsupported
        )
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider '{}' ", self.provider)?;
        match self.kind {
            ProviderErrorKind::Auth => f.write_str("rejected the credentials")?,
            ProviderErrorKind::RateLimited => f.write_str("is rate limiting requests")?,
            ProviderErrorKind::Timeout => f.write_str("timed out")?,
            ProviderErrorKind::Connect => f.write_str("could not be reached")?,
            ProviderErrorKind::Upstream => f.write_str("failed")?,
            ProviderErrorKind::InvalidRequest => f.write_str("rejected the request")?,
            ProviderErrorKind::NotFound => f.write_str("does not have the resource")?,
            ProviderErrorKind::BadResponse => f.write_str("sent an unreadable response")?,
            ProviderErrorKind::StreamInterrupted => f.write_str("ended the stream early")?,
            ProviderErrorKind::Unsupported => f.write_str("does not support this")?,
        }
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// Removes every occurrence of each secret from `text`, and masks anything shaped like
/// a bearer key (`sk-...`, `AIza...`), so upstream error bodies that echo a key (OpenAI
/// prints a masked prefix of it) cannot leak one.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s, "***");
        }
    }
    let mut result = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            result.push(' ');
        }
        let looks_like_key = ["sk-", "sk_", "AIza", "gsk_", "xai-", "key-"]
            .iter()
            .any(|p| {
                word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
                    .starts_with(p)
            })
            && word.len() >= 12;
        if looks_like_key {
            result.push_str("***");
        } else {
            result.push_str(word);
        }
    }
    // Cap length: error messages are for humans, not for dumping upstream bodies.
    if result.len() > 500 {
        let mut cut = 500;
        while !result.is_char_boundary(cut) {
            cut -= 1;
        }
        result.truncate(cut);
        result.push('…');
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_provider_and_status_not_key() {
        let e = ProviderError::new(
            "openai",
            ProviderErrorKind::Auth,
            redact(
                "Incorrect API key provided: sk-proj-abcdef123456.",
                &["sk-proj-abcdef123456"],
            ),
        )
        .with_status(401);
        let s = format!("{e} {e:?}");
        assert!(s.contains("openai") && s.contains("401"));
        assert!(!s.contains("abcdef123456"), "{s}");
    }

    #[test]
    fn redact_masks_key_shapes() {
        let r = redact(
            "bad key sk-live-00000000000000 here, AIzaSyA0000000000000",
            &[],
        );
        assert_eq!(r, "bad key *** here, ***");
        assert!(!redact("secret=hunter22", &["hunter22"]).contains("hunter22"));
    }

    #[test]
    fn retry_classification() {
        let e = |k| ProviderError::new("p", k, "");
        assert!(e(ProviderErrorKind::Upstream).is_retryable());
        assert!(e(ProviderErrorKind::RateLimited).is_retryable());
        assert!(!e(ProviderErrorKind::InvalidRequest).is_retryable());
        assert!(!e(ProviderErrorKind::Auth).is_retryable());
        assert!(e(ProviderErrorKind::InvalidRequest).is_client_error());
        assert!(!e(ProviderErrorKind::Upstream).is_client_error());
    }
}
