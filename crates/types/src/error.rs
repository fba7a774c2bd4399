//! Error codes and the error body every non-2xx JSON response carries.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every error code the API can return, with its HTTP status.
///
/// The mapping in [`ErrorCode::http_status`] is the single place that decides the status
/// of an error; it is an exhaustive `match`, so a new code cannot be added without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The requested model does not exist.
    ModelNotFound,
    /// A provider API failed.
    ProviderError,
    /// A query or filter parameter is invalid.
    InvalidFilter,
    /// A request body or parameter is invalid (other than model filters).
    InvalidRequest,
    /// A cache operation failed.
    CacheError,
    /// The client exceeded its rate limit.
    RateLimited,
    /// Missing or wrong credentials.
    Unauthorized,
    /// Credentials are valid but not allowed here.
    Forbidden,
    /// No route matches the path.
    NotFound,
    /// The path exists but not for this method.
    MethodNotAllowed,
    /// The request body exceeds the configured limit.
    PayloadTooLarge,
    /// The request body is not JSON where JSON is required.
    UnsupportedMediaType,
    /// The request conflicts with the current state (e.g. an experiment already running).
    Conflict,
    /// An upstream provider did not answer in time.
    ProviderTimeout,
    /// The server is overloaded or shutting down; try again later.
    ServiceUnavailable,
    /// A bug or an unexpected condition inside modelgate.
    InternalError,
}

impl ErrorCode {
    /// The HTTP status code for this error.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::ModelNotFound => 404,
            ErrorCode::ProviderError => 502,
            ErrorCode::InvalidFilter => 400,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::CacheError => 500,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Conflict => 409,
            ErrorCode::ProviderTimeout => 504,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::InternalError => 500,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ModelNotFound => "MODEL_NOT_FOUND",
            ErrorCode::ProviderError => "PROVIDER_ERROR",
            ErrorCode::InvalidFilter => "INVALID_FILTER",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::CacheError => "CACHE_ERROR",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::ProviderTimeout => "PROVIDER_TIMEOUT",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `error` object inside an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Seconds until a retry may succeed (rate limits, full queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// `{"error": {"code", "message", "details"?}, "timestamp"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub timestamp: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                details: None,
                retry_after: None,
            },
            timestamp: crate::now_rfc3339(),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.error.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.error.retry_after = Some(secs);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_codes_have_spec_statuses() {
        assert_eq!(ErrorCode::ModelNotFound.http_status(), 404);
        assert_eq!(ErrorCode::ProviderError.http_status(), 502);
        assert_eq!(ErrorCode::InvalidFilter.http_status(), 400);
        assert_eq!(ErrorCode::CacheError.http_status(), 500);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
    }

    #[test]
    fn serde_name_matches_as_str() {
        for code in [
            ErrorCode::ModelNotFound,
            ErrorCode::PayloadTooLarge,
            ErrorCode::MethodNotAllowed,
            ErrorCode::ServiceUnavailable,
        ] {
            let json = serde_json::to_string(&code).expect("serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn body_shape() {
        let mut body = ErrorBody::new(ErrorCode::ModelNotFound, "Model 'gpt-5' not found")
            .with_details(serde_json::json!({"model_id": "gpt-5"}));
        body.timestamp = "2024-01-15T10:30:00Z".into();
        expect_test::expect![[r#"{"error":{"code":"MODEL_NOT_FOUND","message":"Model 'gpt-5' not found","details":{"model_id":"gpt-5"}},"timestamp":"2024-01-15T10:30:00Z"}"#]]
            .assert_eq(&serde_json::to_string(&body).expect("serialise"));
    }
}
