//! The binary end to end: `--check-config` exit codes and output (never a key), a real
//! start on a free port that serves `/health` and exits cleanly on SIGTERM, SIGHUP
//! reloads (accepted and rejected, logged without secrets) and the config file watcher.
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

/// A running gateway over `config` (log lines to a file, access log off).
#[cfg(unix)]
struct Running {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

#[cfg(unix)]
impl Running {
    fn start(config: &std::path::Path, tag: &str) -> Running {
        let port = free_port();
        let log = config.with_file_name(format!("{tag}.log"));
        let child = modelgate()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--port",
                &port.to_string(),
            ])
            .env("RUST_LOG", "info,modelgate::access=warn")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let r = Running { child, port, log };
        r.wait_for("gateway start", |r| get(r.port, "/health/live").is_some());
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ok` until it holds (deadline 30 s).
    fn wait_for(&self, what: &str, ok: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: timed out\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status and the log.
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < deadline, "gateway did not stop");
            std::thread::sleep(Duration::from_millis(50));
        };
        (code, self.log())
    }
}

#[cfg(unix)]
fn reload_config_text(dir: &std::path::Path, models: &str, watch: bool) -> String {
    format!(
        "server:\n  admin_token: {KEY}\n  watch_config: {watch}\ndiscovery:\n  refresh_interval_seconds: 0\n  data_dir: {}\nproviders:\n  alpha:\n    kind: mock\n    mock:\n      models: [{models}]\n",
        dir.join("data").display()
    )
}

#[cfg(unix)]
fn alpha_models(port: u16) -> Option<usize> {
    let r = get(port, "/api/models?provider=alpha&limit=100")?;
    let at = r.find("\"count\":")? + "\"count\":".len();
    let digits: String = r[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_config_and_logs_the_outcome() {
    let dir = std::env::temp_dir().join(format!("modelgate-cli-hup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    // The watcher is off: only SIGHUP reloads.
    std::fs::write(&config, reload_config_text(&dir, "a-one", false)).unwrap();
    let gw = Running::start(&config, "hup");
    gw.wait_for("one model", |r| alpha_models(r.port) == Some(1));

    std::fs::write(&config, reload_config_text(&dir, "a-one, a-two", false)).unwrap();
    gw.signal("-HUP");
    gw.wait_for("SIGHUP reload", |r| {
        r.log().contains("SIGHUP reload applied")
    });
    gw.wait_for("two models", |r| alpha_models(r.port) == Some(2));

    // An invalid file: every problem logged, the running config kept, still serving.
    std::fs::write(
        &config,
        "server:\n  max_connections: 0\nproviders:\n  alpha:\n    kind: mock\n    base_url: nope\n",
    )
    .unwrap();
    gw.signal("-HUP");
    gw.wait_for("SIGHUP rejection", |r| {
        r.log().contains("keeping the running configuration")
    });
    assert_eq!(alpha_models(gw.port), Some(2));
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("server.max_connections"), "{log}");
    assert!(log.contains("providers.alpha.base_url"), "{log}");
    assert!(!log.contains("watching the config file"), "{log}");
    assert!(!log.contains(KEY), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn the_config_file_watcher_reloads_an_edit_saved_by_rename() {
    let dir = std::env::temp_dir().join(format!("modelgate-cli-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, reload_config_text(&dir, "a-one", true)).unwrap();
    let gw = Running::start(&config, "watch");
    gw.wait_for("watcher start", |r| {
        r.log().contains("watching the config file")
    });
    gw.wait_for("one model", |r| alpha_models(r.port) == Some(1));

    let tmp = dir.join(".config.yaml.tmp");
    std::fs::write(
        &tmp,
        reload_config_text(&dir, "a-one, a-two, a-three", true),
    )
    .unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    gw.wait_for("three models", |r| alpha_models(r.port) == Some(3));
    let (code, log) = gw.stop();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        log.matches("config file changed: reloading").count(),
        1,
        "{log}"
    );
    assert!(log.contains("providers_updated=[\"alpha\"]"), "{log}");
    assert!(!log.contains(KEY), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
