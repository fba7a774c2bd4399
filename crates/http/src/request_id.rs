//! `X-Request-Id`: accepted from the client when sane, generated otherwise.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The client's id if it is 1-128 visible ASCII characters, else a new random one.
pub fn accept_or_generate(incoming: Option<&HeaderValue>) -> HeaderValue {
    if let Some(v) = incoming {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            return v.clone();
        }
    }
    HeaderValue::from_str(&generate()).unwrap_or_else(|_| HeaderValue::from_static("req"))
}

/// A new random id (`req_` + 16 hex digits), from std's randomly keyed hasher.
pub fn generate() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("req_{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sane_and_replaces_bad_ids() {
        let ok = HeaderValue::from_static("abc-123");
        assert_eq!(accept_or_generate(Some(&ok)), ok);
        let bad = HeaderValue::from_static("has space");
        assert_ne!(accept_or_generate(Some(&bad)), bad);
        assert!(generate().starts_with("req_"));
        assert_ne!(generate(), generate());
    }
}
