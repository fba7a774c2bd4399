//! `ApiError`: every error response, in the spec's format, with one status mapping.

use http::{header, HeaderValue, Response, StatusCode};
use modelgate_types::{ErrorBody, ErrorCode, FilterError};
use serde_json::{json, Value};

use crate::body::{json_response, Body};

/// An error a handler returns; rendered as `{"error": {...}, "timestamp"}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
    /// `Allow` header for 405.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("No route for '{path}'"))
            .with_details(json!({ "path": path }))
    }

    pub fn method_not_allowed(method: &http::Method, allow: &'static str) -> Self {
        let mut e = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("Method {method} is not allowed here; allowed: {allow}"),
        )
        .with_details(json!({ "allowed_methods": allow.split(", ").collect::<Vec<_>>() }));
        e.allow = Some(allow);
        e
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn payload_too_large(limit: u64) -> Self {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("Request body exceeds the limit of {limit} bytes"),
        )
        .with_details(json!({ "max_body_bytes": limit }))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InternalError, message)
    }

    /// The HTTP status, from the single exhaustive mapping in [`ErrorCode::http_status`].
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let mut body = ErrorBody::new(self.code, self.message);
        body.error.details = self.details;
        body.error.retry_after = self.retry_after;
        let mut resp = json_response(status, &body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::new(ErrorCode::InvalidFilter, e.to_string()).with_details(json!({
            "parameter": e.parameter,
            "value": e.value,
            "reason": e.message,
        }))
    }
}
