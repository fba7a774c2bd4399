//! Foundation behaviour over real sockets on 127.0.0.1:0: routing errors, body limit,
//! header-read timeout, request ids and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use modelgate_config::{ConfigSource, Settings};
use modelgate_discovery::{Discovery, DiscoveryOptions};
use modelgate_http::{serve, AppState, Router, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    /// Dropping it stops the server.
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<std::io::Result<()>>,
}

async fn start(settings: Settings) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServeOptions::from_settings(&settings.server);
    let catalog = modelgate_catalog::Catalog::embedded();
    let discovery = Discovery::new(
        Vec::new(),
        Vec::new(),
        catalog,
        DiscoveryOptions {
            refresh_interval: None,
            ..DiscoveryOptions::default()
        },
    );
    let state = Arc::new(AppState::new(settings, ConfigSource::Defaults, discovery));
    let (tx, rx) = oneshot::channel::<()>();
    let router = Router::new(state);
    let task = tokio::spawn(serve(
        listener,
        move |peer| router.service(peer),
        opts,
        async {
            let _ = rx.await;
        },
    ));
    Server {
        addr,
        _stop: tx,
        _task: task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn health_is_json_with_spec_fields() {
    let s = start(Settings::default()).await;
    let resp = client()
        .get(format!("http://{}/health", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("x-request-id"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "healthy");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(v["services"].is_object());
    assert!(v["metrics"]["uptime_seconds"].is_u64());
    assert!(v["metrics"].get("memory_usage_mb").is_some());
}

#[tokio::test]
async fn unknown_path_404_and_wrong_method_405_in_error_format() {
    let s = start(Settings::default()).await;
    let c = client();
    let resp = c
        .get(format!("http://{}/no/such/thing", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    assert!(v["error"]["message"].is_string());
    assert!(v["timestamp"].is_string());

    let resp = c
        .delete(format!("http://{}/health", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn request_id_is_echoed() {
    let s = start(Settings::default()).await;
    let resp = client()
        .get(format!("http://{}/health", s.addr))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-abc-123");
}

#[tokio::test]
async fn oversized_body_gets_413_without_being_read() {
    let mut settings = Settings::default();
    settings.server.max_body_bytes = 1024;
    let s = start(settings).await;
    // Declare a 100 MB body and send none of it: the answer must come anyway.
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(
            b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answered without reading the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
}

#[tokio::test]
async fn slow_client_is_disconnected_by_header_timeout() {
    let mut settings = Settings::default();
    settings.server.header_read_timeout_ms = 200;
    let s = start(settings).await;
    for partial in [&b"GET /health HTTP/1.1\r\nHost: x\r\n"[..], &b""[..]] {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let mut buf = vec![0u8; 1024];
        // The server must close the connection (read returns 0 or an error, possibly
        // after a 408) well before this generous bound.
        let r = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(r.is_ok(), "connection not closed after partial {partial:?}");
    }
}

#[tokio::test]
async fn shutdown_drains_in_flight_request_and_refuses_new_connections() {
    use http_body_util::BodyExt;
    // A service whose handler is slow: it tells the test it started, then waits to be
    // released, so shutdown certainly begins while the request is in flight.
    let (started_tx, started_rx) = tokio::sync::mpsc::channel::<()>(1);
    let release = Arc::new(tokio::sync::Notify::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let rel = release.clone();
    let make = move |_peer| {
        let started = started_tx.clone();
        let rel = rel.clone();
        hyper::service::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
            let started = started.clone();
            let rel = rel.clone();
            async move {
                let _ = started.send(()).await;
                rel.notified().await;
                Ok::<_, std::convert::Infallible>(http::Response::new(modelgate_http::body::full(
                    "done",
                )))
            }
        })
    };
    let opts = ServeOptions::from_settings(&Settings::default().server);
    let task = tokio::spawn(serve(listener, make, opts, async {
        let _ = stop_rx.await;
    }));
    let request = tokio::spawn(async move {
        let resp = client()
            .get(format!("http://{addr}/slow"))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    });
    let mut started_rx = started_rx;
    started_rx.recv().await.unwrap();
    stop_tx.send(()).unwrap();
    // Shutdown has begun: the listener closes, so new connections are refused...
    let mut refused = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused, "listener still accepting after shutdown");
    assert!(
        !task.is_finished(),
        "serve must wait for the in-flight request"
    );
    // ...and the in-flight request still completes with 200.
    release.notify_one();
    let (status, body) = request.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "done");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    let _ = BodyExt::boxed(http_body_util::Empty::<bytes::Bytes>::new());
}
