//! `serve`: accept loop with a connection cap, header-read timeout, and graceful shutdown
//! (stop accepting, let in-flight requests finish within a grace period, then return).
//! Every request carries the listener's own address ([`ListenAddr`] in its extensions),
//! so the built-in load tester can send to this gateway and nowhere else.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use modelgate_config::ServerSettings;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::body::Body;

/// The local address of the listener a request arrived on, inserted by [`serve`] into
/// every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

/// Wraps a connection's service to stamp [`ListenAddr`] on each request.
#[derive(Debug, Clone)]
struct Stamped<S> {
    inner: S,
    addr: ListenAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for Stamped<S>
where
    S: hyper::service::Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.addr);
        self.inner.call(req)
    }
}

/// Connection-level limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A client must send a complete request head within this time.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    pub fn from_settings(s: &ServerSettings) -> Self {
        ServeOptions {
            max_connections: s.max_connections.max(1),
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms.max(1)),
            shutdown_grace: Duration::from_millis(s.shutdown_grace_ms),
        }
    }
}

/// Serves on an already-bound `listener` until `shutdown` resolves, then stops accepting
/// and waits up to `shutdown_grace` for open connections to finish their in-flight
/// requests. Returns when they have (or the grace period ran out).
///
/// `make_service` builds the service for each connection from the peer address; the
/// gateway passes `|peer| router.service(peer)`.
pub async fn serve<M, S>(
    listener: TcpListener,
    make_service: M,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listen_addr = ListenAddr(listener.local_addr()?);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(opts.max_connections));
    let stopping = CancellationToken::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let header_timeout = opts.header_read_timeout;
        let watcher = graceful.watcher();
        let stopping = stopping.clone();
        let builder = builder.clone();
        let service = Stamped {
            inner: make_service(peer),
            addr: listen_addr,
        };
        tokio::spawn(async move {
            // The auto builder's protocol sniffing waits for the first bytes with no timer
            // of its own, so a client that connects and sends nothing is bounded here.
            let mut first = [0u8; 1];
            let arrived = tokio::select! {
                r = tokio::time::timeout(header_timeout, stream.peek(&mut first)) => {
                    matches!(r, Ok(Ok(n)) if n > 0)
                }
                () = stopping.cancelled() => false,
            };
            if arrived {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            } else {
                tracing::debug!(%peer, "no request within the header timeout; closing");
            }
            drop(permit);
        });
    }

    drop(listener);
    stopping.cancel();
    tracing::info!(
        grace_ms = opts.shutdown_grace.as_millis() as u64,
        "shutting down: no longer accepting, draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(opts.shutdown_grace) => {
            tracing::warn!("grace period elapsed with requests still running; closing them");
        }
    }
    Ok(())
}
