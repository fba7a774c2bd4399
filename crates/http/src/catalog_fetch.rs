//! `catalog.url`: fetches a fresher models.dev `api.json` at startup and on
//! `catalog.refresh_interval_seconds`, and swaps it into discovery. Any failure (network,
//! status, size, parse, an empty document) keeps the catalog in use — the embedded
//! snapshot at first — and is logged; the gateway never starts without a catalog.

use std::sync::Arc;
use std::time::Duration;

use modelgate_catalog::Catalog;
use modelgate_config::CatalogSettings;
use modelgate_discovery::Discovery;
use tokio_util::sync::CancellationToken;

/// Largest document accepted (the full models.dev `api.json` is a few MiB).
pub const MAX_CATALOG_BYTES: usize = 64 * 1024 * 1024;

/// Why a fetch was rejected. The URL is shown (it is configuration, not a secret) but
/// never a query string, which could carry a token.
#[derive(Debug, thiserror::Error)]
pub enum CatalogFetchError {
    #[error("catalog.url is not an http(s) or file URL")]
    BadUrl,
    #[error("cannot fetch the catalog: {0}")]
    Transport(String),
    #[error("catalog fetch answered HTTP {0}")]
    Status(u16),
    #[error("catalog document exceeds {MAX_CATALOG_BYTES} bytes")]
    TooLarge,
    #[error("catalog document does not parse: {0}")]
    Parse(String),
    #[error("catalog document has no models")]
    Empty,
}

fn display_url(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Fetches and parses the document at `url` (`http`, `https` or `file`).
pub async fn fetch_catalog(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Catalog, CatalogFetchError> {
    let parsed = url::Url::parse(url).map_err(|_| CatalogFetchError::BadUrl)?;
    let bytes = match parsed.scheme() {
        "http" | "https" => {
            let mut resp = client
                .get(parsed.clone())
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| CatalogFetchError::Transport(e.without_url().to_string()))?;
            if !resp.status().is_success() {
                return Err(CatalogFetchError::Status(resp.status().as_u16()));
            }
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_CATALOG_BYTES as u64)
            {
                return Err(CatalogFetchError::TooLarge);
            }
            let mut buf = Vec::new();
            let read = async {
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| CatalogFetchError::Transport(e.without_url().to_string()))?
                {
                    if buf.len() + chunk.len() > MAX_CATALOG_BYTES {
                        return Err(CatalogFetchError::TooLarge);
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(())
            };
            tokio::time::timeout(timeout, read)
                .await
                .map_err(|_| CatalogFetchError::Transport("timed out reading the body".into()))??;
            buf
        }
        "file" => {
            let path = parsed
                .to_file_path()
                .map_err(|()| CatalogFetchError::BadUrl)?;
            let meta = tokio::fs::metadata(&path)
                .await
                .map_err(|e| CatalogFetchError::Transport(e.to_string()))?;
            if meta.len() > MAX_CATALOG_BYTES as u64 {
                return Err(CatalogFetchError::TooLarge);
            }
            tokio::fs::read(&path)
                .await
                .map_err(|e| CatalogFetchError::Transport(e.to_string()))?
        }
        _ => return Err(CatalogFetchError::BadUrl),
    };
    let catalog = tokio::task::spawn_blocking(move || Catalog::from_json(&bytes))
        .await
        .map_err(|e| CatalogFetchError::Parse(e.to_string()))?
        .map_err(|e| CatalogFetchError::Parse(e.to_string()))?;
    if catalog.model_count() == 0 {
        return Err(CatalogFetchError::Empty);
    }
    Ok(catalog.with_provenance(display_url(&parsed), Some(modelgate_types::now_rfc3339())))
}

/// One fetch; on success the catalog is swapped into `discovery`. Returns whether it was.
pub async fn refresh_catalog(
    client: &reqwest::Client,
    discovery: &Discovery,
    settings: &CatalogSettings,
) -> bool {
    let Some(url) = settings.url.as_deref() else {
        return false;
    };
    match fetch_catalog(
        client,
        url,
        Duration::from_millis(settings.timeout_ms.max(1)),
    )
    .await
    {
        Ok(catalog) => {
            tracing::info!(
                models = catalog.model_count(),
                providers = catalog.provider_count(),
                source = %catalog.provenance().source,
                "catalog refreshed"
            );
            discovery.set_catalog(Arc::new(catalog));
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "catalog refresh failed; keeping the catalog in use");
            false
        }
    }
}

/// Fetches now and then every `refresh_interval_seconds` until `shutdown`; does nothing
/// when no `catalog.url` is configured.
pub fn spawn_catalog_refresh(
    discovery: Discovery,
    settings: CatalogSettings,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    settings.url.as_ref()?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    Some(tokio::spawn(async move {
        let period = Duration::from_secs(settings.refresh_interval_seconds.max(60));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = refresh_catalog(&client, &discovery, &settings) => {}
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    }))
}
