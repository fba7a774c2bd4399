//! The one response body type and helpers that build it.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use serde::Serialize;

/// Errors a streaming body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: a full buffer, nothing, or a stream (SSE), boxed into one type.
pub type Body = BoxBody<Bytes, BoxError>;

fn never(e: Infallible) -> BoxError {
    match e {}
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(never).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(never).boxed()
}

/// `200 application/json` (or `status`) with `value` serialised.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            crate::ApiError::internal("response serialisation failed").into_response()
        }
    }
}

/// A response with an already-serialised JSON body.
pub fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
