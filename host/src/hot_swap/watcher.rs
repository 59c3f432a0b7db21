//! Watches the files a policy set is made of (config file, plugin modules and their
//! signatures, settings files, trust keys) and asks for a reload when their contents
//! change.
//!
//! Changes arrive as bursts: a module copied in chunks, an editor's write-to-temp-then-
//! rename, a module landing a moment before its `.sig`. The watcher therefore debounces
//! ([`DEBOUNCE`]: it waits for a quiet period before reloading), and when a reload fails it
//! retries once after [`SETTLE`] before reporting the failure, so a module that is
//! momentarily unsigned does not produce a spurious refusal. Throughout, the last good
//! policy set keeps serving: a reload only swaps in a set that loaded completely.
//!
//! # Only content changes of the watched files
//!
//! Directories are watched (not files), because a file replaced by rename is a new inode
//! that a watch on the old one never sees. But a directory also reports *reads*: the
//! reload's own reads of the module and settings files used to produce access events that
//! triggered the next reload, forever (an idle server went from generation 1 to 78 in 25 s
//! after one `cat` of a settings file), and a decision log written next to the config did
//! the same with every decision. So an event counts only if
//!
//! - its kind can change content: create, write, rename, remove (or an unknown kind, to
//!   be safe); access events (open, read, close) and metadata changes (`touch`, `chmod`)
//!   are ignored; and
//! - it names one of the watched files (or, for a trust key directory, a `*.pem` in it),
//!   compared by canonical directory and file name, so `a/../b/x` and `b/x` are the same
//!   file. A watched file that is a symbolic link is also watched at its target.
//!
//! A reload that still finds every file's content unchanged (the same config, the same
//! module digests and signers) does not create a generation: see
//! [`crate::Arbiter::reload`].

use notify_debouncer_full::notify::event::ModifyKind;
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};
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
    _debouncer: Arc<Mutex<Debouncer<RecommendedWatcher, RecommendedCache>>>,
    _worker: std::thread::JoinHandle<()>,
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher").finish_non_exhaustive()
    }
}

impl PolicyWatcher {
    /// Watches the directories holding `paths()` (non-recursively: watching a directory,
    /// not a file, sees files that are replaced by rename) and calls `reload` after each
    /// settled burst of changes to those files. `reload(final_attempt)` returns whether it
    /// succeeded; a failed first attempt (`false`) is retried once after [`SETTLE`] as the
    /// final one, which is the one whose failure gets reported. `paths()` is asked again
    /// after every attempt: a new config names new files (a plugin added, its `.sig`
    /// still to come), and they are watched from then on.
    pub fn start<P, F>(paths: P, reload: F) -> Result<Self, WatchError>
    where
        P: Fn() -> Vec<PathBuf> + Send + 'static,
        F: Fn(bool) -> bool + Send + 'static,
    {
        let watched = Arc::new(RwLock::new(WatchSet::new(&paths())));
        let in_callback = Arc::clone(&watched);
        let (tx, rx) = mpsc::channel::<()>();
        let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            match result {
                Ok(events) => {
                    let watched = in_callback.read().unwrap_or_else(|p| p.into_inner());
                    let relevant = events.iter().any(|e| {
                        changes_content(&e.kind) && e.paths.iter().any(|p| watched.contains(p))
                    });
                    if relevant {
                        let _ = tx.send(());
                    }
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!("file watcher error: {e}");
                    }
                    // An overflowed or failed watch may have missed a change: reload to be
                    // sure (an unchanged set does not become a new generation).
                    let _ = tx.send(());
                }
            }
        })
        .map_err(|e| WatchError {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let debouncer = Arc::new(Mutex::new(debouncer));
        let mut watching = BTreeSet::new();
        let dirs = watched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .directories();
        watch_new(&debouncer, &mut watching, dirs)?;
        let in_worker = Arc::clone(&debouncer);
        let rewatch = move |watching: &mut BTreeSet<PathBuf>| {
            let set = WatchSet::new(&paths());
            let dirs = set.directories();
            *watched.write().unwrap_or_else(|p| p.into_inner()) = set;
            if let Err(e) = watch_new(&in_worker, watching, dirs) {
                tracing::warn!(
                    "file watcher: {e}; changes there are not seen until the next reload"
                );
            }
        };
        let worker = std::thread::Builder::new()
            .name("arbiter-watcher".to_owned())
            .spawn(move || {
                let mut watching = watching;
                while rx.recv().is_ok() {
                    // Coalesce events that arrived while the previous reload ran.
                    while rx.try_recv().is_ok() {}
                    let ok = reload(false);
                    rewatch(&mut watching);
                    if ok {
                        continue;
                    }
                    std::thread::sleep(SETTLE);
                    while rx.try_recv().is_ok() {}
                    reload(true);
                    rewatch(&mut watching);
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

type SharedDebouncer = Arc<Mutex<Debouncer<RecommendedWatcher, RecommendedCache>>>;

/// Adds a watch for each directory not watched yet.
fn watch_new(
    debouncer: &SharedDebouncer,
    watching: &mut BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
) -> Result<(), WatchError> {
    let mut debouncer = debouncer.lock().unwrap_or_else(|p| p.into_inner());
    for dir in dirs {
        if watching.contains(&dir) {
            continue;
        }
        debouncer
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| WatchError {
                path: dir.clone(),
                message: e.to_string(),
            })?;
        watching.insert(dir);
    }
    Ok(())
}

/// Whether an event of this kind can change a file's content or which file a path names.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// The watched files (by canonical directory and name) and trust key directories.
#[derive(Debug, Default)]
struct WatchSet {
    files: BTreeSet<(PathBuf, OsString)>,
    key_dirs: BTreeSet<PathBuf>,
}

impl WatchSet {
    fn new(paths: &[PathBuf]) -> Self {
        let mut set = Self::default();
        for path in paths {
            if path.is_dir() {
                set.key_dirs.insert(canonical_dir(path));
                continue;
            }
            if let Some(key) = file_key(path) {
                set.files.insert(key);
            }
            // A symbolic link is watched at its target too: writes to the target do not
            // show up in the link's directory.
            if let Ok(target) = std::fs::canonicalize(path)
                && let Some(key) = file_key(&target)
            {
                set.files.insert(key);
            }
        }
        set
    }

    /// The directories to watch.
    fn directories(&self) -> BTreeSet<PathBuf> {
        self.files
            .iter()
            .map(|(dir, _)| dir.clone())
            .chain(self.key_dirs.iter().cloned())
            .collect()
    }

    /// Whether an event path names a watched file, a trust key in a watched key
    /// directory, or a watched key directory itself.
    fn contains(&self, path: &Path) -> bool {
        let Some((dir, name)) = file_key(path) else {
            return false;
        };
        if self.key_dirs.contains(&dir) && Path::new(&name).extension().is_some_and(|e| e == "pem")
        {
            return true;
        }
        self.files.contains(&(dir.clone(), name.clone())) || self.key_dirs.contains(&dir.join(name))
    }
}

/// The canonical directory and file name of a path (the file itself need not exist).
fn file_key(path: &Path) -> Option<(PathBuf, OsString)> {
    let name = path.file_name()?.to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some((canonical_dir(parent), name))
}

/// The directory canonicalised, or lexically normalised and absolute if it cannot be
/// (it was removed): either way `a/../b` and `b` compare equal.
fn canonical_dir(dir: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(dir) {
        return canonical;
    }
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_debouncer_full::notify::event::{AccessKind, AccessMode, CreateKind, DataChange};

    #[test]
    fn only_content_changes_of_watched_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("plugins");
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir_all(&keys).unwrap();
        let module = sub.join("intent.wasm");
        std::fs::write(&module, b"m").unwrap();
        let set = WatchSet::new(&[module.clone(), keys.clone()]);
        assert!(set.contains(&module));
        // The same file through another spelling of its directory.
        assert!(set.contains(&dir.path().join("keys/../plugins/intent.wasm")));
        assert!(!set.contains(&sub.join("intent.wasm.swp")));
        assert!(!set.contains(&dir.path().join("decisions.log")));
        assert!(set.contains(&keys.join("release.pub.pem")));
        assert!(!set.contains(&keys.join("notes.txt")));
        assert!(!changes_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(changes_content(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(changes_content(&EventKind::Create(CreateKind::File)));
    }
}
