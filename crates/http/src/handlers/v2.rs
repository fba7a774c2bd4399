//! `GET /v2/models`: the performance-optimised listing. Responses are serialised and
//! compressed once per (snapshot version, query, encoding) and kept in a bounded cache;
//! a strong `ETag` lets clients revalidate with `If-None-Match` for a 304.

use std::hash::{Hash, Hasher};
use std::io::Write;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use modelgate_types::{Model, ModelQuery};
use serde_json::{Map, Value};

use crate::body::{empty, full, Body};
use crate::error::ApiError;
use crate::handlers::models::effective_source;
use crate::router::Ctx;

/// Content codings we produce, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Zstd,
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Zstd => Some("zstd"),
            Encoding::Brotli => Some("br"),
            Encoding::Gzip => Some("gzip"),
            Encoding::Identity => None,
        }
    }
}

/// Picks the best coding the client accepts (`q=0` excludes one).
pub fn negotiate(headers: &HeaderMap) -> Encoding {
    let Some(accept) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return Encoding::Identity;
    };
    let mut allowed = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case(name) || coding == "*") && q > 0.0
        })
    };
    for enc in [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip] {
        if enc.token().is_some_and(&mut allowed) {
            return enc;
        }
    }
    Encoding::Identity
}

/// Cache of rendered responses, weighted by size: `/v2/models` keys are (etag, encoding);
/// the `/api/models`, `/api/models/search` and `/v1/models` listings use
/// [`V2Cache::rendered`] with their own keys (route, snapshot, query), identity-encoded.
/// Entries of old snapshots are never read again and age out by weight.
#[derive(Debug)]
pub struct V2Cache {
    cache: quick_cache::sync::Cache<(String, Encoding), Bytes, ByteWeighter>,
}

#[derive(Debug, Clone)]
pub struct ByteWeighter;

impl quick_cache::Weighter<(String, Encoding), Bytes> for ByteWeighter {
    fn weight(&self, _key: &(String, Encoding), val: &Bytes) -> u64 {
        val.len() as u64 + 64
    }
}

impl V2Cache {
    /// A cache holding at most `max_bytes` of rendered bodies.
    pub fn new(max_bytes: u64) -> Self {
        V2Cache {
            cache: quick_cache::sync::Cache::with_weighter(1024, max_bytes, ByteWeighter),
        }
    }

    /// The body cached under `key`, else `render`'s (cached when it succeeds).
    pub fn rendered<E>(
        &self,
        key: String,
        render: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let key = (key, Encoding::Identity);
        if let Some(b) = self.cache.get(&key) {
            return Ok(b);
        }
        let b = render()?;
        self.cache.insert(key, b.clone());
        Ok(b)
    }
}

fn query_fingerprint(ctx: &Ctx) -> u64 {
    let mut pairs: Vec<(&str, &str)> = ctx.query_pairs().collect();
    pairs.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pairs.hash(&mut h);
    h.finish()
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

fn project(m: &Model, fields: &[String]) -> Value {
    let Ok(Value::Object(full)) = serde_json::to_value(m) else {
        return Value::Null;
    };
    let mut out = Map::new();
    for f in fields {
        if let Some(v) = full.get(f) {
            out.insert(f.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn render(ctx: &Ctx, q: &ModelQuery) -> Result<Bytes, ApiError> {
    let snap = ctx.state.discovery.snapshot();
    let source = effective_source(q, &snap);
    let set = match source {
        modelgate_types::SourceFilter::Discovered => &snap.discovered,
        modelgate_types::SourceFilter::Catalog => &*snap.catalog,
        modelgate_types::SourceFilter::All => &snap.all,
    };
    let mut inner = q.clone();
    inner.source = None;
    let page = set.query(&inner)?;
    let models: Vec<Value> = match &q.fields {
        Some(fields) => page.items.iter().map(|m| project(m, fields)).collect(),
        None => page
            .items
            .iter()
            .map(|m| serde_json::to_value(&**m).unwrap_or(Value::Null))
            .collect(),
    };
    let body = serde_json::json!({
        "models": models,
        "count": models.len(),
        "source": match source {
            modelgate_types::SourceFilter::Discovered => "discovered",
            modelgate_types::SourceFilter::Catalog => "catalog",
            modelgate_types::SourceFilter::All => "all",
        },
        "version": snap.version,
        "timestamp": snap.updated_at,
        "pagination": page.pagination,
    });
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("serialisation failed: {e}")))
}

fn compress(enc: Encoding, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    match enc {
        Encoding::Identity => Ok(raw.to_vec()),
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(raw)?;
            e.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(raw)?;
            }
            Ok(out)
        }
        Encoding::Zstd => zstd::bulk::compress(raw, 3),
    }
}

/// `GET /v2/models`
pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let q = ModelQuery::from_pairs(ctx.query_pairs())?;
    let snap = ctx.state.discovery.snapshot();
    if effective_source(&q, &snap) != modelgate_types::SourceFilter::Catalog {
        let names = (!q.provider.is_empty()).then_some(q.provider.as_slice());
        ctx.state.discovery.ensure_fresh(names, q.refresh).await;
    }
    let snap = ctx.state.discovery.snapshot();
    let etag = format!("\"{}-{:x}\"", snap.etag_base(), query_fingerprint(ctx));
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::internal("bad etag"))?;
    if etag_matches(&ctx.headers, &etag) {
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp.headers_mut().insert(header::ETAG, etag_value);
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        return Ok(resp);
    }
    let enc = negotiate(&ctx.headers);
    let cache = &ctx.state.v2_cache.cache;
    let key = (etag.clone(), enc);
    let bytes = match cache.get(&key) {
        Some(b) => b,
        None => {
            let identity_key = (etag.clone(), Encoding::Identity);
            let raw = match cache.get(&identity_key) {
                Some(b) => b,
                None => {
                    let b = render(ctx, &q)?;
                    cache.insert(identity_key, b.clone());
                    b
                }
            };
            let out = if enc == Encoding::Identity {
                raw
            } else {
                let compressed = compress(enc, &raw)
                    .map(Bytes::from)
                    .map_err(|e| ApiError::internal(format!("compression failed: {e}")))?;
                cache.insert(key, compressed.clone());
                compressed
            };
            out
        }
    };
    let mut resp = Response::new(full(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ETAG, etag_value);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(token) = enc.token() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(v).expect("header"),
        );
        m
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(negotiate(&h("gzip, deflate, br, zstd")), Encoding::Zstd);
        assert_eq!(negotiate(&h("gzip, br")), Encoding::Brotli);
        assert_eq!(negotiate(&h("gzip")), Encoding::Gzip);
        assert_eq!(negotiate(&h("zstd;q=0, gzip")), Encoding::Gzip);
        assert_eq!(negotiate(&h("identity")), Encoding::Identity);
    }

    #[test]
    fn compression_round_trips() {
        let raw = br#"{"models":[{"id":"gpt-4o"}]}"#.repeat(50);
        let gz = compress(Encoding::Gzip, &raw).expect("gzip");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out)
            .expect("gunzip");
        assert_eq!(out, raw);
        let zs = compress(Encoding::Zstd, &raw).expect("zstd");
        assert_eq!(
            zstd::bulk::decompress(&zs, raw.len() * 2).expect("unzstd"),
            raw
        );
        let br = compress(Encoding::Brotli, &raw).expect("br");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut brotli::Decompressor::new(&br[..], 4096), &mut out)
            .expect("unbr");
        assert_eq!(out, raw);
    }
}
