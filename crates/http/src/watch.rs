//! Watches the configuration file and reloads it through the same path as
//! `POST /api/config/reload` ([`crate::reload_config`]), once per edit burst.
//!
//! The file's *directory* is watched (notify: inotify on Linux), not the file itself, so
//! an editor that saves by writing a temporary file and renaming it over the original
//! (vim, most IDEs), by deleting and re-creating it, or a Kubernetes ConfigMap swapping
//! its `..data` symlink, is seen like an in-place write; nothing needs re-arming when the
//! file's inode changes. If the directory itself is removed or renamed, the watch is
//! re-armed every `rearm_interval` until the directory is back.
//!
//! Debouncing: after an event the watcher waits until the directory has been quiet for
//! `debounce` and, on Linux, until a writer that is changing the file in place has closed
//! it (at most `max_delay` in all). It then reads the file and reloads only when its bytes
//! differ from the last version it saw, so one edit burst gives one reload, and a `touch`,
//! a save without changes or this process's own reads give none. A missing file is
//! logged and skipped (the running configuration stays). The watcher stops when the
//! state's `shutdown` token is cancelled. Changes made before it starts are not seen
//! (send SIGHUP or `POST /api/config/reload`).

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use modelgate_config::ConfigSource;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::handlers::ops::{ReloadError, ReloadReport};
use crate::router::AppState;

/// Timing of the watcher.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Quiet time after the last event before the file is read.
    pub debounce: Duration,
    /// Longest wait from the first event of a burst to the read, however busy the
    /// directory (or however long a writer keeps the file open).
    pub max_delay: Duration,
    /// Retry period for re-arming the watch after the directory disappeared.
    pub rearm_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(300),
            max_delay: Duration::from_secs(5),
            rearm_interval: Duration::from_secs(2),
        }
    }
}

/// Why the watcher could not start. Holds paths only, never file content.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot resolve the config directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// What the watcher has done so far.
#[derive(Debug, Clone, Default)]
pub struct WatchStatus {
    /// Times the watcher read the file after a burst of events.
    pub checks: u64,
    /// Reloads started by the watcher (accepted or rejected): the checks that found the
    /// file's bytes changed.
    pub reloads: u64,
    /// The outcome of the latest one.
    pub last: Option<Result<ReloadReport, ReloadError>>,
    /// Times the watch was re-armed after its directory disappeared.
    pub rearmed: u64,
}

/// A running watcher; it stops by itself when the state's shutdown token is cancelled.
#[derive(Debug)]
pub struct ConfigWatcher {
    path: PathBuf,
    status: watch::Receiver<WatchStatus>,
    task: JoinHandle<()>,
}

impl ConfigWatcher {
    /// The watched file (its directory resolved to an absolute path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A receiver of the watcher's status, updated after every reload it starts.
    pub fn status(&self) -> watch::Receiver<WatchStatus> {
        self.status.clone()
    }

    /// Waits for the watcher to stop (after the shutdown token is cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// What the notify thread tells the task.
#[derive(Debug, Default)]
struct Signal {
    wake: Notify,
    /// The file is being written in place (a modify without its close-write yet; Linux).
    writing: AtomicBool,
    /// The watched directory was removed or renamed: the watch must be re-armed.
    dir_gone: AtomicBool,
}

/// Starts watching the file the gateway was loaded from. `Ok(None)` when there is no
/// file (built-in defaults) or `server.watch_config` is false. Needs a tokio runtime.
pub fn spawn(
    state: Arc<AppState>,
    opts: WatchOptions,
) -> Result<Option<ConfigWatcher>, WatchError> {
    let ConfigSource::File(file) = &state.config_source else {
        return Ok(None);
    };
    if !state.settings.server.watch_config {
        tracing::info!("server.watch_config is off: the config file is not watched");
        return Ok(None);
    }
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&parent).map_err(|source| WatchError::Dir {
        path: parent.clone(),
        source,
    })?;
    let Some(name) = file.file_name() else {
        return Err(WatchError::Dir {
            path: file.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        });
    };
    let target = dir.join(name);
    let seen = fingerprint(&target);
    let signal = Arc::new(Signal::default());
    let mut watcher = {
        let signal = signal.clone();
        let (d, t) = (dir.clone(), target.clone());
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            on_event(&signal, &d, &t, res);
        })
        .map_err(|source| WatchError::Watch {
            path: dir.clone(),
            source,
        })?
    };
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Watch {
            path: dir.clone(),
            source,
        })?;
    tracing::info!(file = %target.display(), "watching the config file for changes");
    let (tx, status) = watch::channel(WatchStatus::default());
    let task = tokio::spawn(run(Task {
        state,
        watcher,
        dir,
        target: target.clone(),
        signal,
        opts,
        seen,
        tx,
    }));
    Ok(Some(ConfigWatcher {
        path: target,
        status,
        task,
    }))
}

/// Runs on notify's thread: classifies one event and wakes the task.
fn on_event(signal: &Signal, dir: &Path, target: &Path, res: notify::Result<notify::Event>) {
    let event = match res {
        Ok(e) => e,
        Err(e) => {
            // Errors (e.g. a queue overflow) may hide an edit: check the file anyway.
            tracing::warn!(error = %e, "config watcher error");
            signal.wake.notify_one();
            return;
        }
    };
    let kind = event.kind;
    // Opens and reads (ours included) change nothing.
    if matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_)
                | AccessKind::Read
                | AccessKind::Close(AccessMode::Read)
                | AccessKind::Any
                | AccessKind::Other
        )
    ) {
        return;
    }
    if event.paths.iter().any(|p| p == dir)
        && matches!(
            kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        )
    {
        signal.dir_gone.store(true, Ordering::SeqCst);
    }
    if cfg!(any(target_os = "linux", target_os = "android"))
        && event.paths.iter().any(|p| p == target)
    {
        match kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => {
                signal.writing.store(true, Ordering::SeqCst);
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_) => signal.writing.store(false, Ordering::SeqCst),
            _ => {}
        }
    }
    signal.wake.notify_one();
}

/// The file's content identity: `None` when it cannot be read.
fn fingerprint(path: &Path) -> Option<(u64, u64)> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = DefaultHasher::new();
    h.write(&bytes);
    Some((bytes.len() as u64, h.finish()))
}

struct Task {
    state: Arc<AppState>,
    watcher: RecommendedWatcher,
    dir: PathBuf,
    target: PathBuf,
    signal: Arc<Signal>,
    opts: WatchOptions,
    seen: Option<(u64, u64)>,
    tx: watch::Sender<WatchStatus>,
}

async fn run(mut t: Task) {
    let shutdown = t.state.shutdown.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = t.signal.wake.notified() => {}
        }
        if !t.settle().await {
            break;
        }
        if t.signal.dir_gone.swap(false, Ordering::SeqCst) && !t.rearm().await {
            break;
        }
        let target = t.target.clone();
        let now = tokio::task::spawn_blocking(move || fingerprint(&target))
            .await
            .unwrap_or(None);
        t.tx.send_modify(|s| s.checks += 1);
        if now.is_none() {
            if t.seen.is_some() {
                tracing::warn!(
                    file = %t.target.display(),
                    "config file is missing; keeping the running configuration"
                );
            }
            t.seen = None;
            continue;
        }
        if now == t.seen {
            tracing::debug!(file = %t.target.display(), "config file unchanged");
            continue;
        }
        t.seen = now;
        tracing::info!(file = %t.target.display(), "config file changed: reloading");
        let result = crate::handlers::ops::reload_config(&t.state).await;
        t.tx.send_modify(|s| {
            s.reloads += 1;
            s.last = Some(result);
        });
    }
    tracing::debug!("config watcher stopped");
}

impl Task {
    /// Waits for the end of the burst; `false` on shutdown.
    async fn settle(&self) -> bool {
        let shutdown = &self.state.shutdown;
        let deadline = Instant::now() + self.opts.max_delay;
        loop {
            let quiet = (Instant::now() + self.opts.debounce).min(deadline);
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = self.signal.wake.notified() => {
                    if Instant::now() >= deadline {
                        return true;
                    }
                }
                () = tokio::time::sleep_until(quiet) => {
                    if Instant::now() >= deadline
                        || !self.signal.writing.load(Ordering::SeqCst)
                    {
                        return true;
                    }
                }
            }
        }
    }

    /// Re-arms the watch on the directory once it exists again; `false` on shutdown.
    async fn rearm(&mut self) -> bool {
        tracing::warn!(
            dir = %self.dir.display(),
            "the config directory disappeared; watching again once it is back"
        );
        let _ = self.watcher.unwatch(&self.dir);
        loop {
            if self.dir.is_dir()
                && self
                    .watcher
                    .watch(&self.dir, RecursiveMode::NonRecursive)
                    .is_ok()
            {
                tracing::info!(dir = %self.dir.display(), "watching the config directory again");
                self.tx.send_modify(|s| s.rearmed += 1);
                return true;
            }
            tokio::select! {
                () = self.state.shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.opts.rearm_interval) => {}
            }
        }
    }
}
