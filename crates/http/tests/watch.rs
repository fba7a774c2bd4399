//! The config file watcher over a real directory (inotify): each edit — saved by rename,
//! written in place, written in chunks while held open, deleted and re-created — is
//! reloaded exactly once; metadata-only changes and unchanged saves reload nothing; an
//! invalid edit is rejected and the running config kept; the watch re-arms after its
//! directory is removed; the watcher stops on shutdown. No sleeps: every wait is for the
//! watcher's status under a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{get_json, start_state, TempDir};
use modelgate_catalog::Catalog;
use modelgate_http::build_state;
use modelgate_http::watch::{self, ConfigWatcher, WatchOptions, WatchStatus};
use tokio::sync::watch::Receiver;

const DEADLINE: Duration = Duration::from_secs(30);

fn opts() -> WatchOptions {
    WatchOptions {
        debounce: Duration::from_millis(50),
        // Long enough that it never ends a wait in these tests (close-write does).
        max_delay: Duration::from_secs(20),
        rearm_interval: Duration::from_millis(20),
    }
}

/// A config (model lists persisted under `data`) with provider `alpha` serving `models`, optionally `beta`, and the default
/// rate limit's burst set to `burst` (visible in `X-RateLimit-Limit`).
fn yaml(data: &Path, models: &[&str], beta: bool, burst: u32) -> String {
    let mut s = format!(
        "discovery:\n  refresh_interval_seconds: 0\n  data_dir: {}\nrate_limit:\n  requests_per_minute: 600000\n  burst: {burst}\nproviders:\n  alpha:\n    kind: mock\n    mock:\n      models: [{}]\n",
        data.display(),
        models.join(", ")
    );
    if beta {
        s.push_str("  beta:\n    kind: mock\n    mock:\n      models: [beta-one]\n");
    }
    s
}

fn save_by_rename(path: &Path, body: &str) {
    let tmp = path.with_file_name(".config.yaml.swp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn start(path: &Path) -> (common::Gateway, ConfigWatcher) {
    let loaded = modelgate_config::load(Some(path)).unwrap();
    let state = build_state(loaded.settings, loaded.source, Catalog::embedded(), |_| {
        None
    })
    .unwrap();
    let gw = start_state(state).await;
    let w = watch::spawn(gw.state.clone(), opts()).unwrap().unwrap();
    (gw, w)
}

/// Waits until the watcher has started `n` reloads, then checks it started no more.
async fn reloads(rx: &mut Receiver<WatchStatus>, n: u64) -> WatchStatus {
    let s = tokio::time::timeout(DEADLINE, rx.wait_for(|s| s.reloads >= n))
        .await
        .unwrap_or_else(|_| panic!("no reload #{n} within {DEADLINE:?}"))
        .unwrap()
        .clone();
    assert_eq!(s.reloads, n, "one edit, one reload");
    s
}

/// Waits until the watcher has read the file after check number `n`.
async fn checked_after(rx: &mut Receiver<WatchStatus>, n: u64) -> WatchStatus {
    tokio::time::timeout(DEADLINE, rx.wait_for(|s| s.checks > n))
        .await
        .unwrap_or_else(|_| panic!("no check after #{n} within {DEADLINE:?}"))
        .unwrap()
        .clone()
}

fn report(s: &WatchStatus) -> &modelgate_http::ReloadReport {
    match s.last.as_ref().unwrap() {
        Ok(r) => r,
        Err(e) => panic!("reload rejected: {e:?}"),
    }
}

async fn model_count(gw: &common::Gateway, provider: &str) -> usize {
    let (_, v) = get_json(&gw.url(&format!("/api/models?provider={provider}"))).await;
    v["models"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn each_edit_is_reloaded_exactly_once() {
    let dir = TempDir::new("watch");
    let data_dir = TempDir::new("watch-data");
    let data = data_dir.0.clone();
    let path = dir.0.join("config.yaml");
    std::fs::write(&path, yaml(&data, &["a-one"], false, 1000)).unwrap();
    let (gw, w) = start(&path).await;
    let mut rx = w.status();
    assert_eq!(model_count(&gw, "alpha").await, 1);

    // 1. Saved by rename (vim, IDEs): the new inode is seen without re-arming.
    save_by_rename(&path, &yaml(&data, &["a-one", "a-two"], false, 1000));
    let s = reloads(&mut rx, 1).await;
    assert!(report(&s).changes_detected);
    assert_eq!(report(&s).providers_updated, ["alpha"]);
    assert_eq!(model_count(&gw, "alpha").await, 2);

    // 2. Written in place; the rate limit follows the file.
    std::fs::write(&path, yaml(&data, &["a-one", "a-two"], true, 999)).unwrap();
    let s = reloads(&mut rx, 2).await;
    assert_eq!(report(&s).providers_updated, ["beta"]);
    let r = common::client()
        .get(gw.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-ratelimit-limit"], "999");

    // 3. A metadata-only change and a save of identical bytes are checked but reload
    //    nothing.
    let before = rx.borrow().checks;
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let s = checked_after(&mut rx, before).await;
    assert_eq!(s.reloads, 2, "a touch reloaded");
    save_by_rename(&path, &yaml(&data, &["a-one", "a-two"], true, 999));
    let s = checked_after(&mut rx, s.checks).await;
    assert_eq!(s.reloads, 2, "an unchanged save reloaded");

    // 4. Written in chunks while the writer holds the file open: nothing is read until it
    //    is closed, so the half-written file (valid YAML without `beta`) is never loaded.
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(yaml(&data, &["a-one"], false, 999).as_bytes())
        .unwrap();
    f.flush().unwrap();
    // Absence check: can only fail if the watcher reads while the file is open.
    let early = tokio::time::timeout(Duration::from_millis(400), rx.wait_for(|s| s.reloads > 2))
        .await
        .is_ok();
    assert!(!early, "reloaded while the file was still being written");
    f.write_all(b"  beta:\n    kind: mock\n    mock:\n      models: [beta-one, beta-two]\n")
        .unwrap();
    drop(f);
    let s = reloads(&mut rx, 3).await;
    assert_eq!(report(&s).providers_updated, ["alpha", "beta"]);
    assert_eq!(model_count(&gw, "alpha").await, 1);
    assert_eq!(model_count(&gw, "beta").await, 2);

    // 5. Deleted and re-created.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, yaml(&data, &["a-one", "a-three"], false, 999)).unwrap();
    let s = reloads(&mut rx, 4).await;
    assert_eq!(report(&s).providers_updated, ["alpha", "beta"]);
    assert_eq!(model_count(&gw, "beta").await, 0);

    // 6. An invalid edit is rejected with every problem; the running config stays.
    save_by_rename(
        &path,
        "rate_limit:\n  burst: 0\nproviders:\n  alpha:\n    kind: mock\n    base_url: nope\n",
    );
    let s = reloads(&mut rx, 5).await;
    let problems = &s.last.as_ref().unwrap().as_ref().unwrap_err().problems;
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"rate_limit.burst"), "{paths:?}");
    assert!(paths.contains(&"providers.alpha.base_url"), "{paths:?}");
    assert_eq!(model_count(&gw, "alpha").await, 2);
    let (_, status) = get_json(&gw.url("/api/config/status")).await;
    assert_eq!(status["status"], "invalid");

    // 7. Fixed again (the last edit: had any edit above reloaded twice, the count here
    //    would be past 6).
    save_by_rename(&path, &yaml(&data, &["a-one"], false, 999));
    let s = reloads(&mut rx, 6).await;
    assert_eq!(report(&s).providers_updated, ["alpha"]);
    let (_, status) = get_json(&gw.url("/api/config/status")).await;
    assert_eq!(status["status"], "valid");

    // The watcher stops on shutdown.
    gw.state.shutdown.cancel();
    tokio::time::timeout(DEADLINE, w.stopped())
        .await
        .expect("watcher did not stop on shutdown");
}

#[tokio::test]
async fn the_watch_is_rearmed_after_its_directory_is_removed() {
    let root = TempDir::new("watch-rearm");
    let data = root.0.join("data");
    let dir = root.0.join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml(&data, &["a-one"], false, 1000)).unwrap();
    let (gw, w) = start(&path).await;
    let mut rx = w.status();

    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    save_by_rename(&path, &yaml(&data, &["a-one", "a-two"], false, 1000));
    let s = reloads(&mut rx, 1).await;
    assert_eq!(s.rearmed, 1);
    assert_eq!(model_count(&gw, "alpha").await, 2);

    // Watching again: a later edit is seen too.
    save_by_rename(&path, &yaml(&data, &["a-one", "a-two"], true, 1000));
    reloads(&mut rx, 2).await;
    assert_eq!(model_count(&gw, "beta").await, 1);
    drop(gw);
    tokio::time::timeout(DEADLINE, w.stopped()).await.unwrap();
}

#[tokio::test]
async fn no_watcher_without_a_file_or_when_turned_off() {
    let dir = TempDir::new("watch-off");
    let data = dir.0.join("data");
    let path = dir.0.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  watch_config: false\n{}",
            yaml(&data, &["a-one"], false, 10)
        ),
    )
    .unwrap();
    let loaded = modelgate_config::load(Some(&path)).unwrap();
    let state = build_state(loaded.settings, loaded.source, Catalog::embedded(), |_| {
        None
    })
    .unwrap();
    assert!(watch::spawn(Arc::new(state), opts()).unwrap().is_none());
    let gw = common::start(modelgate_config::Settings::default()).await;
    assert!(watch::spawn(gw.state.clone(), opts()).unwrap().is_none());
}

/// A Kubernetes ConfigMap volume: `config.yaml -> ..data/config.yaml`, `..data -> ..v1`;
/// an update writes `..v2` and renames a new `..data` symlink over the old one, so the
/// name `config.yaml` itself never sees an event.
#[cfg(unix)]
#[tokio::test]
async fn a_configmap_style_symlink_swap_is_reloaded() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("watch-configmap");
    let data = dir.0.join("data");
    let version = |v: &str, models: &[&str]| {
        let d = dir.0.join(v);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.yaml"), yaml(&data, models, false, 1000)).unwrap();
    };
    version("..v1", &["a-one"]);
    symlink("..v1", dir.0.join("..data")).unwrap();
    symlink("..data/config.yaml", dir.0.join("config.yaml")).unwrap();
    let (gw, w) = start(&dir.0.join("config.yaml")).await;
    let mut rx = w.status();
    assert_eq!(model_count(&gw, "alpha").await, 1);

    version("..v2", &["a-one", "a-two"]);
    symlink("..v2", dir.0.join("..data_tmp")).unwrap();
    std::fs::rename(dir.0.join("..data_tmp"), dir.0.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.0.join("..v1")).unwrap();
    let s = reloads(&mut rx, 1).await;
    assert_eq!(report(&s).providers_updated, ["alpha"]);
    assert_eq!(model_count(&gw, "alpha").await, 2);
}
