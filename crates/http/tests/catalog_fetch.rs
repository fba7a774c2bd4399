//! `catalog.url`: a fresher document is fetched and swapped in; every kind of failure
//! keeps the catalog in use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use modelgate_catalog::Catalog;
use modelgate_config::CatalogSettings;
use modelgate_discovery::{Discovery, DiscoveryOptions};
use modelgate_http::catalog_fetch::{fetch_catalog, refresh_catalog, CatalogFetchError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOC: &str = r#"{"openai":{"id":"openai","name":"OpenAI","models":{
  "gpt-x":{"id":"gpt-x","name":"GPT X","tool_call":true,"cost":{"input":1.5,"output":6},
           "limit":{"context":1000000,"output":32000}}}}}"#;

/// Serves one fixed HTTP response to every connection.
async fn one_shot_server(status: &'static str, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/api.json?token=abc")
}

fn discovery() -> Discovery {
    Discovery::new(
        Vec::new(),
        Vec::new(),
        Catalog::embedded(),
        DiscoveryOptions {
            refresh_interval: None,
            ..DiscoveryOptions::default()
        },
    )
}

#[tokio::test]
async fn fresher_catalog_is_swapped_in() {
    let url = one_shot_server("200 OK", DOC).await;
    let d = discovery();
    let settings = CatalogSettings {
        url: Some(url),
        ..CatalogSettings::default()
    };
    assert!(refresh_catalog(&reqwest::Client::new(), &d, &settings).await);
    let c = d.catalog();
    assert_eq!(c.model_count(), 1);
    assert!(
        !c.provenance().source.contains("token"),
        "query string is not shown"
    );
    let m = c.get("openai", "gpt-x").unwrap().to_model("openai");
    assert_eq!(m.input_cost, Some(0.0015));
    assert_eq!(m.context_length, Some(1_000_000));
    // The catalog listing follows.
    assert_eq!(d.snapshot().catalog.len(), 1);
}

#[tokio::test]
async fn failures_keep_the_embedded_catalog() {
    let d = discovery();
    let before = d.catalog().model_count();
    assert!(before > 5_000);
    let client = reqwest::Client::new();
    for url in [
        one_shot_server("500 Internal Server Error", "{}").await,
        one_shot_server("200 OK", "not json").await,
        one_shot_server("200 OK", "{}").await,
        "http://127.0.0.1:9/unreachable".to_owned(),
        "ftp://example.invalid/api.json".to_owned(),
    ] {
        let settings = CatalogSettings {
            url: Some(url.clone()),
            timeout_ms: 2_000,
            ..CatalogSettings::default()
        };
        assert!(!refresh_catalog(&client, &d, &settings).await, "{url}");
        assert_eq!(d.catalog().model_count(), before, "{url}");
    }
    let err = fetch_catalog(&client, "ftp://x/y", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogFetchError::BadUrl));
}

#[tokio::test]
async fn file_urls_are_read() {
    let dir = common::TempDir::new("catalog");
    let path = dir.0.join("api.json");
    std::fs::write(&path, DOC).unwrap();
    let url = format!("file://{}", path.display());
    let c = fetch_catalog(&reqwest::Client::new(), &url, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(c.model_count(), 1);
}
