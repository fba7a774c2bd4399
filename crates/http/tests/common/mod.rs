//! Shared fixture of the HTTP integration tests: a gateway built by `build_state` (what
//! the binary runs) over providers that point at the testkit mock upstream, served on
//! 127.0.0.1:0.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use modelgate_catalog::Catalog;
use modelgate_config::{ConfigSource, Settings};
use modelgate_http::{build_state, serve, AppState, Router, ServeOptions};
use modelgate_testkit::MockUpstream;
use modelgate_types::{ProviderConfig, ProviderKind, Secret};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Gateway {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting, drains, and waits for the server future.
    pub async fn stop(mut self) {
        self.state.shutdown.cancel();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A provider entry for `kind` pointing at `mock` with its valid key.
pub fn mock_provider(mock: &MockUpstream, kind: ProviderKind) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(kind);
    cfg.base_url = Some(mock.base_url(kind));
    cfg.api_key = Some(Secret::new(MockUpstream::API_KEY));
    cfg.timeout_ms = 5_000;
    cfg
}

/// Settings with `providers` and no background refresh (tests refresh explicitly) and no
/// persistence unless `data_dir` is set by the caller.
pub fn settings_with(providers: Vec<(&str, ProviderConfig)>) -> Settings {
    let mut s = Settings::default();
    for (name, cfg) in providers {
        s.providers.insert(name.to_owned(), cfg);
    }
    s.discovery.refresh_interval_seconds = 0;
    s.discovery.data_dir = PathBuf::new();
    s
}

/// Starts a gateway for `settings` with rate limiting off (many tests send bursts from
/// one loopback client); rate-limit tests build a state and use [`start_state`].
pub async fn start(mut settings: Settings) -> Gateway {
    settings.rate_limit.enabled = false;
    let state = build_state(
        settings,
        ConfigSource::Defaults,
        Catalog::embedded(),
        |_| None,
    )
    .unwrap();
    start_state(state).await
}

/// Serves an already-built state on 127.0.0.1:0.
pub async fn start_state(state: AppState) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServeOptions::from_settings(&state.settings.server);
    let state = Arc::new(state);
    let (tx, rx) = oneshot::channel::<()>();
    let router = Router::new(state.clone());
    let task = tokio::spawn(serve(
        listener,
        move |peer| router.service(peer),
        opts,
        async {
            let _ = rx.await;
        },
    ));
    Gateway {
        addr,
        state,
        stop: Some(tx),
        task: Some(task),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap();
    (status, v)
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "modelgate-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
