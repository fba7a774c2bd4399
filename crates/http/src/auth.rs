//! Admin authorisation for state-changing endpoints.
//!
//! With `server.admin_token` set, a request needs `Authorization: Bearer <token>`
//! (compared in constant time). Without a token, only loopback clients are admitted.

use http::header;
use modelgate_types::ErrorCode;

use crate::error::ApiError;
use crate::router::Ctx;

/// Compares in time independent of where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of the request, if any.
pub fn bearer(ctx: &Ctx) -> Option<&str> {
    let v = ctx.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Admits the request to an admin endpoint or explains why not.
pub fn require_admin(ctx: &Ctx) -> Result<(), ApiError> {
    let settings = ctx.state.current_settings();
    match &settings.server.admin_token {
        Some(token) => match bearer(ctx) {
            Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "invalid admin token",
            )),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this endpoint requires 'Authorization: Bearer <server.admin_token>'",
            )),
        },
        None if ctx.peer.ip().is_loopback() => Ok(()),
        None => Err(ApiError::new(
            ErrorCode::Forbidden,
            "admin endpoints accept loopback clients only unless server.admin_token is configured",
        )),
    }
}

/// With `server.api_keys` configured, every `/v1/*` request must present one of them
/// (`Authorization: Bearer <key>` or `x-api-key`), compared in constant time.
pub fn require_api_key(
    state: &crate::router::AppState,
    headers: &http::HeaderMap,
    path: &str,
) -> Result<(), ApiError> {
    if path.split('/').find(|s| !s.is_empty()) != Some("v1") {
        return Ok(());
    }
    let settings = state.current_settings();
    let keys = &settings.server.api_keys;
    if keys.is_empty() {
        return Ok(());
    }
    match crate::ratelimit::presented_key(headers) {
        Some(given)
            if keys.iter().fold(false, |found, k| {
                found | constant_time_eq(given.as_bytes(), k.expose().as_bytes())
            }) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "invalid API key")),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this endpoint requires an API key: 'Authorization: Bearer <key>'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn ct_eq() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
