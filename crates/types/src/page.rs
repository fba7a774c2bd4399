//! Pagination: offset pages and opaque keyset cursors that stay valid across refreshes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The position after which the next page starts.
///
/// A cursor names the last item served by its sort value and `(provider, id)`, not by an
/// index, so a refresh that adds or removes models does not shift or repeat items: the
/// next page is "everything ordered after this key". Encoded as unpadded base64url JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor was issued for (`-created_at`); a different sort is an error.
    #[serde(rename = "s")]
    pub sort: String,
    /// The sort value of the last item served (`null` for a missing value).
    #[serde(rename = "v")]
    pub value: Value,
    #[serde(rename = "p")]
    pub provider: String,
    #[serde(rename = "i")]
    pub id: String,
}

/// A cursor string that is not one modelgate issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("not a cursor issued by this API")]
    Malformed,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Result<Self, CursorError> {
        if s.len() > 2048 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| CursorError::Malformed)?;
        serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)
    }
}

/// The `pagination` object of listing responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    pub limit: usize,
    pub offset: usize,
    pub total: usize,
    pub has_next: bool,
    pub next_offset: Option<usize>,
    pub next_cursor: Option<String>,
}

/// One page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub pagination: Pagination,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let c = Cursor {
            sort: "-created_at".into(),
            value: Value::String("2024-05-13T00:00:00Z".into()),
            provider: "openai".into(),
            id: "gpt-4o".into(),
        };
        let s = c.encode();
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&s), Ok(c));
        assert_eq!(Cursor::decode("not base64!"), Err(CursorError::Malformed));
        assert_eq!(Cursor::decode("e30"), Err(CursorError::Malformed)); // "{}"
    }
}
