//! The binary end to end: `--check-config` exit codes and output (never a key), and a real
//! start on a free port that serves `/health` and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-cli-secret-0123456789";

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("modelgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn modelgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modelgate"));
    c.env_remove("MODELGATE_CONFIG").env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("MODELGATE__") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn check_config_accepts_a_valid_file_without_printing_keys() {
    let path = temp_file(
        "valid.yaml",
        &format!("providers:\n  openai:\n    kind: openai\n    api_key: {KEY}\n"),
    );
    let out = modelgate()
        .args(["--config", path.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn check_config_lists_every_problem_and_exits_64() {
    let path = temp_file(
        "invalid.yaml",
        &format!(
            "server:\n  max_connections: 0\nproviders:\n  openai:\n    kind: openai\n    api_key: {KEY}\n    base_url: not a url\n    timeout_ms: 0\nresilience:\n  retry:\n    max_attempts: three\n"
        ),
    );
    let out = modelgate()
        .args(["--config", path.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(64), "{text}");
    for path in [
        "server.max_connections",
        "providers.openai.base_url",
        "providers.openai.timeout_ms",
    ] {
        assert!(text.contains(path), "{path} missing from:\n{text}");
    }
    assert!(!text.contains(KEY), "{text}");

    // Problems in a section owned by another crate are reported the same way.
    let path = temp_file(
        "invalid-ext.yaml",
        "resilience:\n  retry:\n    max_attempts: three\n",
    );
    let out = modelgate()
        .args(["--config", path.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("resilience.retry.max_attempts"), "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[cfg(unix)]
#[test]
fn serves_health_and_stops_on_sigterm() {
    let port = free_port();
    let data = std::env::temp_dir().join(format!("modelgate-cli-data-{}", std::process::id()));
    let mut child = modelgate()
        .args(["--port", &port.to_string()])
        .env("MODELGATE__DISCOVERY__DATA_DIR", &data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let resp = loop {
        if let Some(r) = get(port, "/health") {
            break r;
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"status\":\"healthy\""), "{resp}");
    let models = get(port, "/api/models?limit=1").unwrap();
    assert!(models.contains("\"source\":\"catalog\""), "{models}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    let mut log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains("received SIGTERM"), "{log}");
    let _ = std::fs::remove_dir_all(&data);
}
