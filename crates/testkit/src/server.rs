//! The accept loop and per-request pipeline: record, latency, hang, redirect, auth, injected
//! faults, then the flavor's handler. Shutdown is a cancellation token every connection watches.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::errors::{self, Dialect};
use crate::flavor::Flavor;
use crate::flavors::{self, parse_query, percent_decode, Ctx, Req};
use crate::model::RecordedRequest;
use crate::state::{Injection, Shared};
use crate::wire::{json, Resp};

/// Largest request body the mock reads.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Serves `listener` until `shutdown` is cancelled; open connections are dropped then too.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                () = conn_shutdown.cancelled() => {}
            }
        });
    }
}

fn index() -> Resp {
    let flavors: serde_json::Map<String, serde_json::Value> = Flavor::ALL
        .iter()
        .map(|f| (f.name().to_owned(), json!(f.base_path())))
        .collect();
    json(200, &json!({"mock_upstream": true, "base_paths": flavors}))
}

/// Counts a request as in flight until its handler returns (or is dropped, e.g. a hung
/// request at shutdown).
struct InFlight {
    shared: Arc<Shared>,
    flavor: Flavor,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.finish(self.flavor);
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let (parts, body) = req.into_parts();
    let body: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json(
                413,
                &json!({"error": {"message": "request body too large or unreadable"}}),
            )
        }
    };
    let path = parts.uri.path().to_owned();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let Some(flavor) = segments.first().and_then(|s| Flavor::from_prefix(s)) else {
        if segments.is_empty() {
            return index();
        }
        return json(
            404,
            &json!({"error": {"message": format!("no mock flavor serves {path}")}}),
        );
    };
    let query = parts.uri.query().map(str::to_owned);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path,
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    };
    let plan = shared.admit(flavor, recorded);
    let _in_flight = InFlight {
        shared: shared.clone(),
        flavor,
    };
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if plan.hang {
        // Accept and never answer; shutdown drops the connection task and this future with it.
        std::future::pending::<()>().await;
    }
    if let Some(location) = plan.redirect {
        return crate::wire::raw(
            307,
            "text/plain; charset=utf-8",
            &[("location", location)],
            "Temporary Redirect",
        );
    }
    let rest: Vec<String> = segments.into_iter().skip(1).collect();
    let rest_refs: Vec<&str> = rest.iter().map(String::as_str).collect();
    let dialect = Dialect::of(flavor, &rest_refs);
    let req = Req {
        method: parts.method,
        rest,
        query: parse_query(query.as_deref()),
        headers: parts.headers,
        body,
    };
    let ctx = Ctx {
        shared: shared.clone(),
        flavor,
        dialect,
        stream: plan.stream,
    };
    if plan.require_auth {
        if let Some(resp) = flavors::authorize(&ctx, &req) {
            return resp;
        }
    }
    match shared.take_injection(flavor) {
        Injection::RateLimit { retry_after_secs } => {
            errors::rate_limited(dialect, retry_after_secs)
        }
        Injection::Fail(status) => errors::injected(dialect, status),
        Injection::Malformed => errors::malformed(req.wants_stream()),
        Injection::None => flavors::route(&ctx, &req).await,
    }
}
