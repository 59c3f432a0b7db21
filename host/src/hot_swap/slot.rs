//! The slot holding the active policy set, and the reloads that replace it.
//!
//! A reload loads a whole new set off the request path and swaps it in atomically:
//! decisions that already hold the old set finish on it, new ones see the new set
//! entirely. On any error the active set stays (the last good set keeps serving) and the
//! error says why. A reload that finds every file as the active set was loaded from makes
//! no new generation.

use super::reload::{
    RECENT_RELOADS, ReloadCount, ReloadReport, ReloadResult, ReloadStatus, ReloadTrigger,
};
use crate::config::Config;
use crate::plugin::{LoadError, PolicySet, Prewarmer};
use crate::runtime::Engine;
use std::collections::{BTreeMap, VecDeque};
#[cfg(feature = "watch")]
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// Called after every reload attempt with its report and the set active after it.
pub type ReloadObserver = Box<dyn Fn(&ReloadReport, &PolicySet) + Send + Sync>;

/// What a successful reload attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swapped {
    /// This generation became active.
    New(u64),
    /// The files were unchanged; this generation stays active.
    Unchanged(u64),
}

impl Swapped {
    /// The active generation after the attempt.
    pub fn generation(self) -> u64 {
        match self {
            Self::New(g) | Self::Unchanged(g) => g,
        }
    }
}

/// Reload attempts: the recent ones and counts by trigger and result.
#[derive(Default)]
struct ReloadLog {
    recent: VecDeque<ReloadReport>,
    counts: BTreeMap<(ReloadTrigger, ReloadResult), u64>,
    observers: Vec<ReloadObserver>,
}

impl std::fmt::Debug for ReloadLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadLog")
            .field("recent", &self.recent)
            .field("counts", &self.counts)
            .field("observers", &self.observers.len())
            .finish()
    }
}

/// The active policy set and everything needed to replace it.
#[derive(Debug)]
pub struct PolicySlot {
    engine: Engine,
    set: RwLock<Arc<PolicySet>>,
    /// The config file the set was built from, re-read by [`PolicySlot::reload`].
    source: Option<PathBuf>,
    /// Serialises reloads so generations are handed out once each, in order.
    reload_lock: Mutex<()>,
    /// Deadline of one reload attempt.
    reload_timeout: Duration,
    /// Recent reload attempts, counts, observers.
    reloads: Mutex<ReloadLog>,
    /// Plugins marked `required` in the config the host started with: a reload that
    /// drops one is refused, so an edit cannot silently remove a core policy.
    required: Vec<String>,
    /// Files to watch for changes (what the configs loaded so far name).
    watch_paths: Mutex<Vec<PathBuf>>,
    /// Refills the plugins' spare instances off the request path.
    prewarmer: Prewarmer,
}

impl PolicySlot {
    /// Loads generation 1 from `config` (read from `source`, if it was read from a file).
    pub fn load(
        engine: Engine,
        config: &Config,
        source: Option<PathBuf>,
    ) -> Result<Self, LoadError> {
        let set = Arc::new(PolicySet::load(&engine, config, 1)?);
        let prewarmer = Prewarmer::start()?;
        prewarmer.request(&set);
        Ok(Self {
            engine,
            set: RwLock::new(set),
            source,
            reload_lock: Mutex::new(()),
            reload_timeout: config.reload_timeout,
            reloads: Mutex::new(ReloadLog::default()),
            required: config
                .plugins
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name.clone())
                .collect(),
            watch_paths: Mutex::new(config.watch_paths.clone()),
            prewarmer,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The prewarm thread.
    pub fn prewarmer(&self) -> &Prewarmer {
        &self.prewarmer
    }

    /// The config file the set was built from.
    #[cfg(feature = "watch")]
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The active policy set.
    pub fn active(&self) -> Arc<PolicySet> {
        let guard = self.set.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    /// Re-reads the config file and swaps in a new set (see the module docs).
    pub fn reload(&self, trigger: ReloadTrigger) -> Result<Swapped, LoadError> {
        self.reload_reporting(trigger, true)
    }

    /// Swaps in `config`, which the caller has already read.
    pub fn reload_with(&self, config: &Config) -> Result<Swapped, LoadError> {
        let started = Instant::now();
        let result = self.swap(config.clone());
        self.record_reload(ReloadTrigger::Manual, &result, started);
        result
    }

    /// Calls `observer` after every reload attempt.
    pub fn on_reload(&self, observer: ReloadObserver) {
        self.lock_reloads().observers.push(observer);
    }

    fn lock_reloads(&self) -> MutexGuard<'_, ReloadLog> {
        // A poisoned lock only means an observer panicked; the log stays usable.
        self.reloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The files to watch: what the configs loaded so far name, plus the config file.
    #[cfg(feature = "watch")]
    pub fn watch_paths(&self) -> Vec<PathBuf> {
        let mut paths = self
            .watch_paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(source) = &self.source {
            paths.push(source.clone());
        }
        paths
    }

    /// Reloads from the config file; `report` false leaves a failure out of the status
    /// (the watcher's first attempt, which it retries once files have settled).
    pub fn reload_reporting(
        &self,
        trigger: ReloadTrigger,
        report: bool,
    ) -> Result<Swapped, LoadError> {
        let started = Instant::now();
        let result = match self.source.as_deref() {
            None => Err(LoadError::NoConfigFile),
            Some(path) => Config::from_file(path)
                .map_err(LoadError::from)
                .and_then(|config| {
                    // Watch what this config names, and what the active set is made of:
                    // a refused module must be seen when it is fixed (its signature
                    // arriving later, say), and the active set's files while it serves.
                    let mut paths = config.watch_paths.clone();
                    for p in &self.active().config().watch_paths {
                        if !paths.contains(p) {
                            paths.push(p.clone());
                        }
                    }
                    *self.watch_paths.lock().unwrap_or_else(|p| p.into_inner()) = paths;
                    self.swap(config)
                }),
        };
        if report || result.is_ok() {
            self.record_reload(trigger, &result, started);
        }
        result
    }

    /// Loads `config` off the request path and swaps it in atomically.
    ///
    /// # The deadline
    ///
    /// Loading reads files and compiles modules, which can stall (a file on a hung
    /// network mount). Loading runs on its own thread; if it has not finished within
    /// `[reload] timeout_ms`, the attempt is reported as failed and the reload lock is
    /// released, so later reloads (and `POST /v1/reload`) are not stuck behind it. The
    /// abandoned load is never swapped in: its result is dropped when it finishes.
    fn swap(&self, config: Config) -> Result<Swapped, LoadError> {
        let _serial = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        for name in &self.required {
            if !config.plugins.iter().any(|p| &p.name == name) {
                return Err(LoadError::RequiredPluginMissing {
                    plugin: name.clone(),
                });
            }
        }
        let active = self.active();
        let generation = active.generation().saturating_add(1);
        let engine = self.engine.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("arbiter-reload".to_owned())
            .spawn(move || {
                let loaded = PolicySet::verify(&config).and_then(|modules| {
                    if active.is_same(&config, &modules) {
                        return Ok(None);
                    }
                    PolicySet::build(&engine, &config, &modules, generation).map(Some)
                });
                // The receiver is gone if the attempt timed out: the set is dropped.
                let _ = tx.send(loaded);
            })
            .map_err(|e| LoadError::Engine(format!("cannot start a reload thread: {e}")))?;
        let loaded = match rx.recv_timeout(self.reload_timeout) {
            Ok(loaded) => loaded?,
            Err(_) => {
                return Err(LoadError::ReloadTimeout {
                    timeout_ms: u64::try_from(self.reload_timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
        };
        let Some(set) = loaded else {
            return Ok(Swapped::Unchanged(generation.saturating_sub(1)));
        };
        let set = Arc::new(set);
        self.prewarmer.request(&set);
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = set;
        Ok(Swapped::New(generation))
    }

    fn record_reload(
        &self,
        trigger: ReloadTrigger,
        result: &Result<Swapped, LoadError>,
        started: Instant,
    ) {
        let outcome = match result {
            Ok(Swapped::New(_)) => ReloadResult::Success,
            Ok(Swapped::Unchanged(_)) => ReloadResult::Unchanged,
            Err(_) => ReloadResult::Failure,
        };
        let report = ReloadReport {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            trigger,
            result: outcome,
            ok: result.is_ok(),
            generation: result.as_ref().ok().map(|s| s.generation()),
            error: result.as_ref().err().map(|e| e.to_string()),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        match result {
            Ok(Swapped::New(generation)) => {
                tracing::info!(generation, ?trigger, "policy set reloaded");
            }
            Ok(Swapped::Unchanged(generation)) => {
                tracing::info!(
                    generation,
                    ?trigger,
                    "reload found the policy files unchanged"
                );
            }
            Err(e) => tracing::warn!(
                ?trigger,
                "reload refused, the last good policy set keeps serving: {e}"
            ),
        }
        let set = self.active();
        let mut log = self.lock_reloads();
        *log.counts.entry((trigger, outcome)).or_insert(0) += 1;
        log.recent.push_back(report);
        while log.recent.len() > RECENT_RELOADS {
            log.recent.pop_front();
        }
        if let Some(report) = log.recent.back() {
            for observer in &log.observers {
                observer(report, &set);
            }
        }
    }

    /// The active generation, its digest and plugins, and the recent reload attempts.
    pub fn status(&self) -> ReloadStatus {
        let set = self.active();
        let log = self.lock_reloads();
        let mut counts = Vec::new();
        for trigger in [ReloadTrigger::Manual, ReloadTrigger::Watch] {
            for result in ReloadResult::ALL {
                counts.push(ReloadCount {
                    trigger,
                    result,
                    count: log.counts.get(&(trigger, result)).copied().unwrap_or(0),
                });
            }
        }
        ReloadStatus {
            generation: set.generation(),
            policy_digest: set.digest().to_owned(),
            plugins: set.listings(),
            last: log.recent.back().cloned(),
            recent: log.recent.iter().rev().cloned().collect(),
            counts,
        }
    }
}
