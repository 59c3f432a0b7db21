//! Watches the files a policy set is made of (config file, plugin modules and their
//! signatures, trust keys) and asks for a reload when they change.
//!
//! Changes arrive as bursts: a module copied in chunks, an editor's write-to-temp-then-
//! rename, a module landing a moment before its `.sig`. The watcher therefore debounces
//! ([`DEBOUNCE`]: it waits for a quiet period before reloading), and when a reload fails it
//! retries once after [`SETTLE`] before reporting the failure, so a module that is
//! momentarily unsigned does not produce a spurious refusal. Throughout, the last good
//! policy set keeps serving: a reload only swaps in a set that loaded completely.

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Quiet period before a burst of file events triggers a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);
/// Wait before retrying a failed reload (e.g. a module that arrived before its signature).
pub const SETTLE: Duration = Duration::from_millis(700);

/// Errors starting the watcher.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch `{path}`: {message}")]
pub struct WatchError {
    /// The path.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// A running watcher; dropping it stops watching.
pub struct PolicyWatcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    _worker: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher").finish_non_exhaustive()
    }
}

impl PolicyWatcher {
    /// Watches the directories holding `paths` (non-recursively: watching a directory,
    /// not a file, sees files that are replaced by rename) and calls `reload` after each
    /// settled burst of changes. `reload(final_attempt)` returns whether it succeeded;
    /// a failed first attempt (`false`) is retried once after [`SETTLE`] as the final one,
    /// which is the one whose failure gets reported.
    pub fn start<F>(paths: &[PathBuf], reload: F) -> Result<Self, WatchError>
    where
        F: Fn(bool) -> bool + Send + 'static,
    {
        let dirs: BTreeSet<PathBuf> = paths
            .iter()
            .map(|p| {
                if p.is_dir() {
                    p.clone()
                } else {
                    p.parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| PathBuf::from("."))
                }
            })
            .collect();
        let (tx, rx) = mpsc::channel::<()>();
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            match result {
                Ok(events) if !events.is_empty() => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(errors) => {
                    for e in errors {
                        tracing::warn!("file watcher error: {e}");
                    }
                    // An overflowed or failed watch may have missed a change: reload to be sure.
                    let _ = tx.send(());
                }
            }
        })
        .map_err(|e| WatchError {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        for dir in &dirs {
            debouncer
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| WatchError {
                    path: dir.clone(),
                    message: e.to_string(),
                })?;
        }
        let worker = std::thread::Builder::new()
            .name("arbiter-watcher".to_owned())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Coalesce events that arrived while the previous reload ran.
                    while rx.try_recv().is_ok() {}
                    if reload(false) {
                        continue;
                    }
                    std::thread::sleep(SETTLE);
                    while rx.try_recv().is_ok() {}
                    reload(true);
                }
            })
            .map_err(|e| WatchError {
                path: PathBuf::new(),
                message: format!("cannot start the watcher thread: {e}"),
            })?;
        Ok(Self {
            _debouncer: debouncer,
            _worker: worker,
        })
    }
}
