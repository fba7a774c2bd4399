//! Domain types shared by every modelgate crate: models, queries, pages, the OpenAI chat
//! schema, change events and error codes.
//!
//! Invariants: this crate does no I/O, has no async code and knows nothing about HTTP
//! beyond the numeric status an [`ErrorCode`] maps to. Everything here is plain data with
//! serde, so any Rust service can reuse it.
#![forbid(unsafe_code)]

pub mod chat;
mod error;
mod event;
mod model;
mod page;
pub mod provider;
mod query;
mod timefmt;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use event::ModelEvent;
pub use model::{
    Capability, Modalities, Modality, Model, ModelSource, ModelStatus, Pricing, UnknownCapability,
};
pub use page::{Cursor, CursorError, Page, Pagination};
pub use provider::{MockSettings, ProviderConfig, ProviderKind, Secret};
pub use query::{
    FilterError, ModelQuery, SortField, SortKey, SourceFilter, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use timefmt::{format_rfc3339, now_rfc3339, parse_rfc3339, unix_to_rfc3339};

/// How a JSON value's type reads in a validation message ("expected a number, got a
/// string").
pub fn json_type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
