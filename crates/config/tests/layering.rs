//! Layering (defaults, file, env) and error reporting, with figment's `Jail` isolating
//! the environment and working directory of each test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::result_large_err
)]

use std::path::Path;

use figment::Jail;
use modelgate_config::{load, LoadError, LogFormat};

#[test]
fn env_overrides_file_overrides_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "mg.yaml",
            r#"
server:
  port: 9001
  host: 0.0.0.0
logging:
  format: json
cache:
  ttl_seconds: 60
"#,
        )?;
        jail.set_env("MODELGATE__SERVER__PORT", "9100");
        jail.set_env("MODELGATE__CACHE__TTL_SECONDS", "120");
        let loaded = load(Some(Path::new("mg.yaml"))).expect("valid");
        let s = loaded.settings;
        assert_eq!(s.server.port, 9100, "env beats file");
        assert_eq!(s.server.host, "0.0.0.0", "file beats default");
        assert_eq!(s.cache.ttl_seconds, 120);
        assert_eq!(s.logging.format, LogFormat::Json);
        assert_eq!(s.server.max_body_bytes, 8 * 1024 * 1024, "default kept");
        assert!(loaded.file_size_bytes.unwrap() > 0);
        Ok(())
    });
}

#[test]
fn invalid_file_lists_every_problem() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bad.yaml",
            r#"
server:
  port: "eighty"
cache:
  ttl_seconds: 0
providers:
  openai:
    kind: openai
    base_url: "not a url"
    api_key_env: SURELY_NOT_SET_KEY
  weird:
    kind: telepathy
  local:
    kind: ollama
    timeout_ms: 0
    colour: blue
"#,
        )?;
        let err = load(Some(Path::new("bad.yaml"))).expect_err("invalid");
        let problems = err.problems();
        let text = err.to_string();
        for path in [
            "server.port",
            "cache.ttl_seconds",
            "providers.openai.base_url",
            "providers.openai.api_key",
            "providers.weird.kind",
            "providers.local",
        ] {
            assert!(
                problems.iter().any(|p| p.path.starts_with(path)),
                "no problem at {path}: {text}"
            );
        }
        Ok(())
    });
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "keys.yaml",
            r#"
server:
  admin_token: "admin-token-0123456789-secret"
  api_keys: ["client-key-abcdef-secret"]
providers:
  openai:
    kind: openai
    api_key: "sk-proj-SUPERSECRET-1234"
    base_url: "::bad::"
"#,
        )?;
        let err = load(Some(Path::new("keys.yaml"))).expect_err("bad url");
        let all = format!("{err} {err:?} {:?}", err.problems());
        for secret in ["SUPERSECRET", "admin-token-0123", "client-key-abcdef"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        jail.create_file(
            "keys2.yaml",
            r#"
providers:
  openai:
    kind: openai
    api_key: "sk-proj-SUPERSECRET-1234"
"#,
        )?;
        jail.set_env("MODELGATE__SERVER__ADMIN_TOKEN", "1234567890123456789");
        let ok = load(Some(Path::new("keys2.yaml"))).expect("valid");
        let dbg = format!("{:?} {}", ok, serde_json::to_string(&ok.settings).unwrap());
        assert!(!dbg.contains("SUPERSECRET"), "{dbg}");
        assert!(!dbg.contains("1234567890123456789"), "{dbg}");
        let key = ok.settings.providers["openai"].api_key.as_ref().unwrap();
        assert_eq!(key.expose(), "sk-proj-SUPERSECRET-1234");
        assert_eq!(
            ok.settings.server.admin_token.as_ref().unwrap().expose(),
            "1234567890123456789",
            "a numeric env value is still a secret string"
        );
        Ok(())
    });
}

#[test]
fn missing_file_is_an_error() {
    Jail::expect_with(|_| {
        match load(Some(Path::new("nope.yaml"))) {
            Err(LoadError::Read { .. }) => {}
            other => panic!("expected read error, got {other:?}"),
        }
        Ok(())
    });
}

#[test]
fn repo_config_files_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let loaded = load(Some(&root.join("default.yaml"))).expect("default.yaml valid");
    assert!(
        loaded.settings.providers.is_empty(),
        "default runs on the embedded catalog"
    );
    // example.yaml documents keys of providers that need env vars; it must at least parse
    // with only key problems.
    match load(Some(&root.join("example.yaml"))) {
        Ok(_) => {}
        Err(e) => {
            for p in e.problems() {
                assert!(p.path.ends_with(".api_key"), "example.yaml: {p}");
            }
        }
    }
}
