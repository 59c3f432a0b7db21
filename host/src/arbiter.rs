//! The embedding API: build an [`Arbiter`] from a config, then [`Arbiter::decide`].
//!
//! # Sync, on purpose
//!
//! `decide` is a plain blocking function. A decision is CPU-bound work of microseconds
//! (compiled plugins, no I/O), so an async signature would add a state machine and a
//! runtime dependency without letting anything else run in the meantime. Async gateways
//! call it directly from a task; for plugins in slow interpreted languages (whose fresh
//! instances take a millisecond or more) they can use `spawn_blocking`. `Arbiter` is
//! `Send + Sync`: share one behind an `Arc` across threads.

use crate::action::{Action, ActionError};
use crate::artifact_cache::ArtifactCache;
use crate::bindings::ActionLists;
use crate::combine::{combine, effective_effect};
use crate::config::{Config, Mode};
use crate::decision::{Decision, DecisionEffect, Effect, PluginEntry};
use crate::engine::Engine;
use crate::error::LoadError;
use crate::history::{HistoryEntry, TaskSnapshot};
use crate::plugin::PluginListing;
use crate::policy_set::PolicySet;
use crate::prewarm::Prewarmer;
use crate::reload::{
    RECENT_RELOADS, ReloadCount, ReloadReport, ReloadResult, ReloadStatus, ReloadTrigger,
};
use crate::task_store::{MemoryTaskStore, TaskLease, TaskStore};
use crate::watcher::{PolicyWatcher, WatchError};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// A policy host: plugins, task history, and the decision function.
#[derive(Debug)]
pub struct Arbiter {
    engine: Engine,
    set: RwLock<Arc<PolicySet>>,
    /// Task state: history, labels, ended tasks, owners.
    tasks: Arc<dyn TaskStore>,
    /// Deadline of one task-store operation.
    store_timeout: Duration,
    /// The config file this host was built from, re-read by [`Arbiter::reload`].
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
    /// Files to watch for changes (from the config the host started with).
    watch_paths: Mutex<Vec<PathBuf>>,
    /// Refills the plugins' spare instances off the request path.
    prewarmer: Prewarmer,
}

impl Arbiter {
    /// Reads the config file and loads every plugin in it.
    pub fn from_config_file(path: &Path) -> Result<Self, LoadError> {
        let mut arbiter = Self::new(&Config::from_file(path)?)?;
        arbiter.source = Some(path.to_owned());
        Ok(arbiter)
    }

    /// Loads every plugin in `config`. Fails if any plugin cannot be loaded.
    pub fn new(config: &Config) -> Result<Self, LoadError> {
        Self::with_engine(Engine::new()?, config)
    }

    /// Like [`Arbiter::new`], on an existing engine: hosts sharing an engine share its
    /// compiled components (tests and tools that build many hosts use this).
    pub fn with_engine(engine: Engine, config: &Config) -> Result<Self, LoadError> {
        if let Some(cache) = &config.cache {
            let cache = ArtifactCache::open(&cache.dir, &cache.key_file)
                .map_err(|e| LoadError::Cache(e.to_string()))?;
            engine.set_artifact_cache(Some(Arc::new(cache)));
        }
        let set = Arc::new(PolicySet::load(&engine, config, 1)?);
        let prewarmer = Prewarmer::start()?;
        prewarmer.request(&set);
        Ok(Self {
            engine,
            set: RwLock::new(set),
            tasks: Arc::new(MemoryTaskStore::new(
                config.history,
                config.tasks.sharing.clone(),
            )),
            store_timeout: config.tasks.store_timeout,
            source: None,
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

    /// Re-reads the config file this host was built from and swaps in a new policy set
    /// with the next generation, returning the active generation. Decisions already
    /// running finish on the set they started with. On any error the active set stays as
    /// it was (the last good set keeps serving) and the error says why.
    ///
    /// If every file is as the active set was loaded from (the same config, the same
    /// module bytes signed by the same keys), no new generation is made and the active
    /// one is returned: a reload is idempotent. [`Arbiter::reload_swapped`] tells which.
    ///
    /// Only the plugins and combining defaults are reloaded; task history bounds, the
    /// reload deadline and `[server]` settings take effect at the next start.
    pub fn reload(&self) -> Result<u64, LoadError> {
        self.reload_swapped().map(Swapped::generation)
    }

    /// Like [`Arbiter::reload`], saying whether a new generation became active.
    pub fn reload_swapped(&self) -> Result<Swapped, LoadError> {
        self.reload_reporting(ReloadTrigger::Manual, true)
    }

    /// Like [`Arbiter::reload`], with a config the caller has already read.
    pub fn reload_with(&self, config: &Config) -> Result<u64, LoadError> {
        let started = Instant::now();
        let result = self.swap(config.clone());
        self.record_reload(ReloadTrigger::Manual, &result, started);
        result.map(Swapped::generation)
    }

    /// Calls `observer` after every reload attempt (manual or by the watcher) with its
    /// report and the set active after it: how the server counts reloads and publishes
    /// the active set in its metrics.
    pub fn on_reload(&self, observer: ReloadObserver) {
        self.lock_reloads().observers.push(observer);
    }

    fn lock_reloads(&self) -> std::sync::MutexGuard<'_, ReloadLog> {
        // A poisoned lock only means an observer panicked; the log stays usable.
        self.reloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads from the config file; `report` false leaves a failure out of the status
    /// (the watcher's first attempt, which it retries once files have settled).
    fn reload_reporting(&self, trigger: ReloadTrigger, report: bool) -> Result<Swapped, LoadError> {
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
                    for p in &self.policy_set().config().watch_paths {
                        if !paths.contains(p) {
                            paths.push(p.clone());
                        }
                    }
                    *self.lock_watch_paths() = paths;
                    self.swap(config)
                }),
        };
        if report || result.is_ok() {
            self.record_reload(trigger, &result, started);
        }
        result
    }

    /// Loads `config` off the request path and swaps it in atomically. Decisions that
    /// already hold the old set finish on it; new ones see the new set entirely.
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
        let active = self.policy_set();
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
        let set = self.policy_set();
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
    pub fn reload_status(&self) -> ReloadStatus {
        let set = self.policy_set();
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

    /// Watches the config file, plugin modules and signatures, settings files and trust
    /// keys, reloading when they change (see [`crate::watcher`]). Dropping the returned
    /// watcher stops it. Requires a host built with [`Arbiter::from_config_file`].
    pub fn watch(arbiter: &Arc<Self>) -> Result<PolicyWatcher, WatchError> {
        let Some(config_path) = arbiter.source.clone() else {
            return Err(WatchError {
                path: PathBuf::new(),
                message: "this host was not built from a config file".to_owned(),
            });
        };
        let weak = Arc::downgrade(arbiter);
        let paths_of = Arc::downgrade(arbiter);
        let watched = move || match paths_of.upgrade() {
            Some(arbiter) => {
                let mut paths = arbiter.lock_watch_paths().clone();
                paths.push(config_path.clone());
                paths
            }
            None => Vec::new(),
        };
        PolicyWatcher::start(watched, move |final_attempt| match weak.upgrade() {
            Some(arbiter) => arbiter
                .reload_reporting(ReloadTrigger::Watch, final_attempt)
                .is_ok(),
            None => true,
        })
    }

    fn lock_watch_paths(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.watch_paths.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The engine (to share compiled artifacts with other hosts).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The active policy set.
    pub fn policy_set(&self) -> Arc<PolicySet> {
        let guard = self.set.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    /// The loaded plugins, in evaluation order.
    pub fn plugins(&self) -> Vec<PluginListing> {
        self.policy_set().listings()
    }

    /// Parses an action from JSON and decides it.
    pub fn decide_json(&self, json: &str) -> Result<Decision, ActionError> {
        // `from_json` has validated the action: do not check it (and serialise its
        // arguments) a second time.
        let action = Action::from_json(json)?;
        Ok(self.run_pipeline(&action, true, &NoPostDecision))
    }

    /// Decides one action. Never fails and never panics on plugin faults: every failure
    /// is recorded in the decision and counted as its plugin's `on_error` effect.
    ///
    /// The action should have passed [`Action::validate`] (the JSON entry points do it);
    /// an action that does not is denied without running plugins.
    pub fn decide(&self, action: &Action) -> Decision {
        self.run_pipeline(action, false, &NoPostDecision)
    }

    /// Decides an action that [`Action::from_json`] (or [`Action::validate`]) accepted,
    /// running `post` on the combined decision before the task history is written: a
    /// post-decision stage (the strict decision log) can still change the answer, and
    /// the history records the answer the caller gets.
    pub fn decide_validated(&self, action: &Action, post: &dyn PostDecision) -> Decision {
        self.run_pipeline(action, true, post)
    }

    /// The decision pipeline, one named stage per step:
    ///
    /// ```text
    /// validate → identify → task gate → evaluate → combine → post-decision → record
    /// ```
    ///
    /// Any stage may end the decision as a deny that says why (the decision starts as a
    /// deny, so nothing is allowed by falling through). The answer is final before
    /// `record`, so what later plugins read in `host.history` is what the caller was told.
    fn run_pipeline(&self, action: &Action, validated: bool, post: &dyn PostDecision) -> Decision {
        let started = Instant::now();
        let set = self.policy_set();
        let mut decision = open_decision(action, &set);
        if let Err(e) = stage_validate(action, validated) {
            return finish(decision, e.to_string(), started);
        }
        let identity = stage_identify(action);
        let lease = match self.stage_task_gate(action, &identity) {
            Ok(lease) => lease,
            Err(reason) => return finish(decision, reason, started),
        };
        let time = action.time.unwrap_or_else(|| unix_ms(SystemTime::now()));
        let snapshot = lease
            .as_ref()
            .map(|l| l.snapshot().clone())
            .unwrap_or_default();
        decision.plugins = self.stage_evaluate(&set, action, time, &snapshot);
        drop(snapshot);
        stage_combine(&mut decision, &set);
        post.after_decision(action, &mut decision);
        if let Some(lease) = lease
            && let Err(e) = lease.commit(history_entry(action, &decision, time))
        {
            // Fail closed: a decision whose record was lost must not let the action
            // through, because the next decision of the task would not see it.
            tracing::error!(decision_id = %decision.decision_id, error = %e, "task store: record failed; denying");
            decision.effect = DecisionEffect::Deny;
            decision.reason = format!("denied: the decision could not be recorded: {e}");
            decision.obligations.clear();
        }
        decision.elapsed_us = elapsed_us(started);
        decision
    }

    /// Task gate: ended tasks, tasks of another agent, a full task table and a failing
    /// store end the decision here (later: quarantine and approvals). Holds the task for
    /// this decision until it is recorded, so concurrent decisions of one task see each
    /// other's records.
    fn stage_task_gate(
        &self,
        action: &Action,
        identity: &Identity<'_>,
    ) -> Result<Option<Box<dyn TaskLease + '_>>, String> {
        let Some(task) = action.task_id() else {
            return Ok(None);
        };
        let deadline = Instant::now() + self.store_timeout;
        match self.tasks.begin(task, identity.agent, deadline) {
            Ok(Ok(lease)) => Ok(Some(lease)),
            Ok(Err(refusal)) => Err(refusal.to_string()),
            Err(e) => Err(format!("denied: {e}")),
        }
    }

    /// Evaluate: every plugin of the set, in order, on the same snapshot of the task.
    fn stage_evaluate(
        &self,
        set: &Arc<PolicySet>,
        action: &Action,
        time: u64,
        snapshot: &TaskSnapshot,
    ) -> Vec<PluginEntry> {
        let task_id = action.task_id();
        let lists = ActionLists::new(action);
        let delegation = lists.delegation(action);
        let wit_action = lists.action(action, &delegation, time);
        let mut entries = Vec::with_capacity(set.plugins().len());
        for plugin in set.plugins() {
            let evaluation = plugin.evaluate(&wit_action, task_id, snapshot);
            let config = plugin.config();
            let listing = plugin.listing();
            entries.push(PluginEntry {
                name: listing.name.clone(),
                plugin: listing.plugin.clone(),
                version: listing.version.clone(),
                kind: listing.kind.clone(),
                digest: listing.digest.clone(),
                signer: listing.signer.clone(),
                signature: listing.signature,
                mode: config.mode,
                outcome: evaluation.outcome,
                verdict: evaluation.verdict,
                effect: effective_effect(evaluation.outcome, evaluation.verdict, config.on_error),
                counted: config.mode == Mode::Enforce,
                reason: evaluation.reason,
                obligations: evaluation.obligations,
                labels: evaluation.labels,
                elapsed_us: evaluation.elapsed_us,
            });
        }
        if set.wants_spares() {
            self.prewarmer.request(set);
        }
        entries
    }

    /// Ends a task: later actions of the task are denied, its history and any instance
    /// bound to it are dropped.
    pub fn end_task(&self, task_id: &str) {
        let deadline = Instant::now() + self.store_timeout;
        if let Err(e) = self.tasks.end(task_id, deadline) {
            tracing::error!(task = task_id, error = %e, "task store: cannot end the task");
        }
        for plugin in self.policy_set().plugins() {
            plugin.forget_task(task_id);
        }
    }

    /// The task's recorded history, oldest first.
    pub fn task_history(&self, task_id: &str) -> Vec<HistoryEntry> {
        let deadline = Instant::now() + self.store_timeout;
        self.tasks.entries(task_id, deadline).unwrap_or_default()
    }
}

/// A stage that runs after combining and before the task history is recorded, and may
/// still change the answer (the decision service's strict audit log: a decision that
/// cannot be logged becomes a deny). It runs with the task held, so it must be quick or
/// bounded.
pub trait PostDecision {
    /// Inspects, and may change, the combined decision.
    fn after_decision(&self, action: &Action, decision: &mut Decision);
}

/// No post-decision stage.
#[derive(Debug, Clone, Copy)]
pub struct NoPostDecision;

impl PostDecision for NoPostDecision {
    fn after_decision(&self, _action: &Action, _decision: &mut Decision) {}
}

/// Who is acting: the seam where verified workload identity plugs in. Today the asserted
/// identity passes through.
#[derive(Debug, Clone, Copy)]
struct Identity<'a> {
    agent: &'a str,
}

/// The decision before any stage ran: a deny with no reason yet, so that nothing is ever
/// allowed by an early return.
fn open_decision(action: &Action, set: &PolicySet) -> Decision {
    Decision {
        decision_id: uuid::Uuid::new_v4().to_string(),
        request_id: action.request_id.clone(),
        task_id: action.task_id().map(str::to_owned),
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        effect: DecisionEffect::Deny,
        reason: String::new(),
        generation: set.generation(),
        obligations: Vec::new(),
        plugins: Vec::with_capacity(set.plugins().len()),
        elapsed_us: 0,
    }
}

/// Ends a decision early as a deny for `reason`.
fn finish(mut decision: Decision, reason: String, started: Instant) -> Decision {
    decision.effect = DecisionEffect::Deny;
    decision.reason = reason;
    decision.elapsed_us = elapsed_us(started);
    decision
}

/// Validate: what the types alone cannot check (skipped when the parser just did it).
fn stage_validate(action: &Action, validated: bool) -> Result<(), ActionError> {
    if validated { Ok(()) } else { action.validate() }
}

/// Identify: today the identity the action asserts.
fn stage_identify(action: &Action) -> Identity<'_> {
    Identity {
        agent: &action.agent.id,
    }
}

/// Combine: the published algorithm of [`crate::combine`].
fn stage_combine(decision: &mut Decision, set: &PolicySet) {
    let combined = combine(&decision.plugins, set.when_all_abstain());
    decision.effect = combined.effect;
    decision.reason = combined.reason;
    decision.obligations = combined.obligations;
}

/// What the task history remembers of a decided action: its resource labels plus the
/// labels enforcing plugins attached (monitor plugins must not influence later decisions).
fn history_entry(action: &Action, decision: &Decision, time: u64) -> HistoryEntry {
    let mut labels: Vec<String> = action
        .resource
        .as_ref()
        .map(|r| r.labels.clone())
        .unwrap_or_default();
    for entry in decision.plugins.iter().filter(|p| p.counted) {
        for label in &entry.labels {
            if !labels.contains(label) {
                labels.push(label.clone());
            }
        }
    }
    HistoryEntry {
        request_id: action.request_id.clone(),
        server: action.tool.server.clone(),
        tool: action.tool.name.clone(),
        effect: Effect::from(decision.effect),
        labels,
        time,
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}
