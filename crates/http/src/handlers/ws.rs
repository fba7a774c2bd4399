//! `GET /ws/models`: every `ModelEvent` pushed as JSON over a WebSocket.
//!
//! Each client reads from the discovery broadcast channel, whose ring buffer is the
//! bounded per-client queue: a client that falls more than its capacity behind is sent
//! an error message and closed, so memory never grows with a slow client. Pings keep
//! idle connections alive; a client that stops answering is dropped. On shutdown every
//! client gets a Close frame (1001, going away).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use hyper_util::rt::TokioIo;
use modelgate_types::{ErrorCode, ModelEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::body::{empty, Body};
use crate::error::ApiError;
use crate::router::Ctx;

/// Limits of the WebSocket endpoint.
#[derive(Debug)]
pub struct WsHub {
    pub max_connections: usize,
    pub active: AtomicUsize,
    pub ping_interval: Duration,
    /// Largest message accepted from a client (clients only send control frames).
    pub max_message_bytes: usize,
}

impl WsHub {
    pub fn new(max_connections: usize) -> Self {
        WsHub {
            max_connections,
            active: AtomicUsize::new(0),
            ping_interval: Duration::from_secs(30),
            max_message_bytes: 4096,
        }
    }
}

struct Slot(Arc<WsHub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

fn header_has(ctx: &Ctx, name: header::HeaderName, token: &str) -> bool {
    ctx.headers.get_all(name).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

/// `GET /ws/models[?provider=name]`
pub async fn upgrade(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    if !header_has(ctx, header::UPGRADE, "websocket")
        || !header_has(ctx, header::CONNECTION, "upgrade")
    {
        return Err(ApiError::invalid_request(
            "this endpoint speaks WebSocket: send 'Connection: Upgrade' and 'Upgrade: websocket'",
        ));
    }
    if ctx
        .headers
        .get("sec-websocket-version")
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::invalid_request(
            "unsupported Sec-WebSocket-Version (need 13)",
        ));
    }
    let Some(key) = ctx.headers.get("sec-websocket-key") else {
        return Err(ApiError::invalid_request("missing Sec-WebSocket-Key"));
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let filter = ctx.query_value("provider").map(str::to_owned);
    let hub = ctx.state.ws.clone();
    if hub.active.fetch_add(1, Ordering::AcqRel) >= hub.max_connections {
        hub.active.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "too many WebSocket clients; try again later",
        )
        .with_retry_after(5));
    }
    let slot = Slot(hub.clone());
    let Some(on_upgrade) = ctx.take_upgrade() else {
        return Err(ApiError::invalid_request("connection cannot be upgraded"));
    };
    let events = ctx.state.discovery.subscribe();
    let shutdown = ctx.state.shutdown.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(hub.max_message_bytes);
        config.max_frame_size = Some(hub.max_message_bytes);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        run_client(ws, events, filter, shutdown, hub.ping_interval).await;
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&accept).map_err(|_| ApiError::internal("bad accept key"))?,
    );
    Ok(resp)
}

async fn run_client<S>(
    ws: WebSocketStream<S>,
    mut events: tokio::sync::broadcast::Receiver<ModelEvent>,
    filter: Option<String>,
    shutdown: tokio_util::sync::CancellationToken,
    ping_every: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut tx, mut rx) = ws.split();
    let hello = serde_json::json!({
        "type": "connected",
        "filter": {"provider": filter},
        "timestamp": modelgate_types::now_rfc3339(),
    });
    if tx.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let mut awaiting_pong = false;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if filter.as_deref().is_some_and(|p| p != ev.provider()) {
                        continue;
                    }
                    let Ok(text) = serde_json::to_string(&ev) else { continue };
                    if tx.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let msg = serde_json::json!({
                        "type": "error",
                        "error": "lagging",
                        "message": format!("client fell {n} events behind and is disconnected; reconnect and re-list"),
                        "timestamp": modelgate_types::now_rfc3339(),
                    });
                    let _ = tx.send(Message::text(msg.to_string())).await;
                    let _ = tx.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Policy,
                        reason: "too slow".into(),
                    }))).await;
                    return;
                }
                Err(RecvError::Closed) => {
                    let _ = tx.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Away,
                        reason: "server shutting down".into(),
                    }))).await;
                    return;
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Pong(_))) => awaiting_pong = false,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by tungstenite; text is ignored
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    tracing::debug!("websocket client stopped answering pings; closing");
                    return;
                }
                awaiting_pong = true;
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            () = shutdown.cancelled() => {
                let _ = tx.send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "server shutting down".into(),
                }))).await;
                return;
            }
        }
    }
}
