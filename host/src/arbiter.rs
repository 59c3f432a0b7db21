//! The embedding API: build an [`Arbiter`] from a config, then [`Arbiter::decide`].
//!
//! `Arbiter` is a facade over three parts: the [`PolicySlot`] holding the active policy
//! set (and hot swapping it), the decision [`Pipeline`], and the task store it records
//! into. See the crate docs for the layers.
//!
//! # Sync, on purpose
//!
//! `decide` is a plain blocking function. A decision is CPU-bound work of microseconds
//! (compiled plugins, no I/O), so an async signature would add a state machine and a
//! runtime dependency without letting anything else run in the meantime. Async gateways
//! call it directly from a task; for plugins in slow interpreted languages (whose fresh
//! instances take a millisecond or more) they can use `spawn_blocking`. `Arbiter` is
//! `Send + Sync`: share one behind an `Arc` across threads.

use crate::config::{Config, TaskStoreConfig};
use crate::decide::{NoPostDecision, Pipeline, PostDecision, Recording};
use crate::hot_swap::{PolicySlot, ReloadObserver, ReloadStatus, ReloadTrigger, Swapped};
#[cfg(feature = "watch")]
use crate::hot_swap::{PolicyWatcher, WatchError};
use crate::model::{
    Action, ActionError, Approval, ApprovalRefusal, ApprovalVerdict, Decision, HistoryEntry,
    OpenTask, OpenedTask, TaskMode,
};

/// Why a task could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskOpenError {
    /// A field of the request is wrong (the error names it).
    #[error("cannot open the task: {0}")]
    Invalid(ActionError),
    /// The task store refused or failed (a full task table, a store that cannot answer).
    #[error("cannot open the task: {0}")]
    Refused(String),
}
use crate::plugin::{LoadError, PluginListing, PolicySet};
use crate::runtime::{ArtifactCache, Engine};
use crate::task::{MemoryTaskStore, StoreError, TaskStore};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// A policy host: plugins, task history, and the decision function.
#[derive(Debug)]
pub struct Arbiter {
    slot: PolicySlot,
    pipeline: Pipeline,
    /// Verified identities that may open tasks (`[tasks] openers`).
    openers: Vec<String>,
}

impl Arbiter {
    /// Reads the config file and loads every plugin in it.
    pub fn from_config_file(path: &Path) -> Result<Self, LoadError> {
        let config = Config::from_file(path)?;
        Self::build(Engine::new()?, &config, Some(path))
    }

    /// Loads every plugin in `config`, a config already read from `path`: reloads and the
    /// file watcher re-read `path`. Adapters that change a default before loading (the
    /// gateway's opened tasks) read the file once and call this.
    pub fn from_config_read_from(config: &Config, path: &Path) -> Result<Self, LoadError> {
        Self::build(Engine::new()?, config, Some(path))
    }

    /// Loads every plugin in `config`. Fails if any plugin cannot be loaded.
    pub fn new(config: &Config) -> Result<Self, LoadError> {
        Self::with_engine(Engine::new()?, config)
    }

    /// Like [`Arbiter::new`], on an existing engine: hosts sharing an engine share its
    /// compiled components (tests and tools that build many hosts use this).
    pub fn with_engine(engine: Engine, config: &Config) -> Result<Self, LoadError> {
        Self::build(engine, config, None)
    }

    fn build(engine: Engine, config: &Config, source: Option<&Path>) -> Result<Self, LoadError> {
        if let Some(cache) = &config.cache {
            let cache = ArtifactCache::open(&cache.dir, &cache.key_file)
                .map_err(|e| LoadError::Cache(e.to_string()))?;
            engine.set_artifact_cache(Some(Arc::new(cache)));
        }
        let slot = PolicySlot::load(engine, config, source.map(Path::to_owned))?;
        let tasks = task_store(config)?;
        Ok(Self {
            slot,
            pipeline: Pipeline::new(
                tasks,
                config.tasks.store_timeout,
                config.tasks.quarantine.clone(),
                config.tasks.mode_or(TaskMode::Asserted),
            )
            .with_approval_ttl(config.approvals.ttl),
            openers: config.tasks.openers.clone(),
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
        self.slot.reload(ReloadTrigger::Manual)
    }

    /// Like [`Arbiter::reload`], with a config the caller has already read.
    pub fn reload_with(&self, config: &Config) -> Result<u64, LoadError> {
        self.slot.reload_with(config).map(Swapped::generation)
    }

    /// Calls `observer` after every reload attempt (manual or by the watcher) with its
    /// report and the set active after it: how the server counts reloads and publishes
    /// the active set in its metrics.
    pub fn on_reload(&self, observer: ReloadObserver) {
        self.slot.on_reload(observer);
    }

    /// The active generation, its digest and plugins, and the recent reload attempts.
    pub fn reload_status(&self) -> ReloadStatus {
        self.slot.status()
    }

    /// Watches the config file, plugin modules and signatures, settings files and trust
    /// keys, reloading when they change (see [`crate::hot_swap::watcher`]). Dropping the
    /// returned watcher stops it. Requires a host built with [`Arbiter::from_config_file`].
    #[cfg(feature = "watch")]
    pub fn watch(arbiter: &Arc<Self>) -> Result<PolicyWatcher, WatchError> {
        if arbiter.slot.source().is_none() {
            return Err(WatchError {
                path: std::path::PathBuf::new(),
                message: "this host was not built from a config file".to_owned(),
            });
        }
        let weak = Arc::downgrade(arbiter);
        let paths_of = Arc::downgrade(arbiter);
        let watched = move || match paths_of.upgrade() {
            Some(arbiter) => arbiter.slot.watch_paths(),
            None => Vec::new(),
        };
        PolicyWatcher::start(watched, move |final_attempt| match weak.upgrade() {
            Some(arbiter) => arbiter
                .slot
                .reload_reporting(ReloadTrigger::Watch, final_attempt)
                .is_ok(),
            None => true,
        })
    }

    /// The engine (to share compiled artifacts with other hosts).
    pub fn engine(&self) -> &Engine {
        self.slot.engine()
    }

    /// The active policy set.
    pub fn policy_set(&self) -> Arc<PolicySet> {
        self.slot.active()
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
        Ok(self.run(&action, true, &NoPostDecision))
    }

    /// Decides one action. Never fails and never panics on plugin faults: every failure
    /// is recorded in the decision and counted as its plugin's `on_error` effect.
    ///
    /// The action should have passed [`Action::validate`] (the JSON entry points do it);
    /// an action that does not is denied without running plugins.
    pub fn decide(&self, action: &Action) -> Decision {
        self.run(action, false, &NoPostDecision)
    }

    /// Decides an action that [`Action::from_json`] (or [`Action::validate`]) accepted,
    /// running `post` on the combined decision before the task history is written: a
    /// post-decision stage (the strict decision log) can still change the answer, and
    /// the history records the answer the caller gets. See [`crate::decide`] for the
    /// stages.
    pub fn decide_validated(&self, action: &Action, post: &dyn PostDecision) -> Decision {
        self.run(action, true, post)
    }

    /// Decides what `action` would get, without recording it in the task history: the
    /// MCP gateway previews each listed tool to hide the ones a call would be denied.
    /// The action must have passed [`Action::validate`].
    pub fn preview(&self, action: &Action) -> Decision {
        let set = self.slot.active();
        self.pipeline.run_as(
            &set,
            action,
            true,
            &NoPostDecision,
            self.slot.prewarmer(),
            Recording::Preview,
        )
    }

    fn run(&self, action: &Action, validated: bool, post: &dyn PostDecision) -> Decision {
        let set = self.slot.active();
        self.pipeline
            .run(&set, action, validated, post, self.slot.prewarmer())
    }

    /// Ends a task: later actions of the task are denied, its history and any instance
    /// bound to it are dropped.
    pub fn end_task(&self, task_id: &str) -> Result<(), StoreError> {
        self.pipeline.end_task(task_id)?;
        for plugin in self.policy_set().plugins() {
            plugin.forget_task(task_id);
        }
        Ok(())
    }

    /// Opens a task for `request.agents`, as `opened_by` (recorded with it): Arbiter
    /// makes its id, and fixes its intent, delegation and expiry. With `[tasks] mode =
    /// "opened"` its actions only name it. The task starts with the labels of its
    /// agents' open tasks unless `inherit_labels` is false.
    pub fn open_task(
        &self,
        request: OpenTask,
        opened_by: &str,
    ) -> Result<OpenedTask, TaskOpenError> {
        let now = crate::model::unix_ms_now();
        request.validate(now).map_err(TaskOpenError::Invalid)?;
        let task = OpenedTask {
            id: format!("task-{}", uuid::Uuid::new_v4()),
            agents: request.agents,
            intent: request.intent,
            delegation: request.delegation,
            started_at: now,
            expires_at: request.expires_at,
            opened_by: opened_by.to_owned(),
            inherited_labels: Vec::new(),
        };
        self.pipeline
            .open_task(task, request.inherit_labels)
            .map_err(TaskOpenError::Refused)
    }

    /// Whether `identity` (a verified SPIFFE ID) may open tasks (`[tasks] openers`).
    pub fn may_open_tasks(&self, identity: &str) -> bool {
        self.openers.iter().any(|o| o == identity)
    }

    /// Whether tasks are asserted by actions or opened first (`[tasks] mode`).
    pub fn task_mode(&self) -> TaskMode {
        self.pipeline.task_mode()
    }

    /// Lifts the task's quarantine (see `[tasks.quarantine]`); returns whether it was
    /// quarantined. Its revoked credentials stay revoked.
    pub fn lift_quarantine(&self, task_id: &str) -> Result<bool, StoreError> {
        self.pipeline.lift_quarantine(task_id)
    }

    /// The task store's credential revocations (shared by every replica of the store).
    pub fn revoker(&self) -> crate::task::Revoker<'_> {
        self.pipeline.revoker()
    }

    /// Whether task-store operations go over the network (decisions then belong on a
    /// blocking thread).
    pub fn task_store_is_remote(&self) -> bool {
        self.pipeline.tasks().is_remote()
    }

    /// Whether the task store answers now, and what it is (readiness).
    pub fn task_store_health(&self) -> (String, Result<(), StoreError>) {
        let tasks = self.pipeline.tasks();
        let deadline = Instant::now() + self.pipeline.store_timeout();
        (tasks.describe(), tasks.health(deadline))
    }

    /// The task's recorded history, oldest first.
    pub fn task_history(&self, task_id: &str) -> Vec<HistoryEntry> {
        self.pipeline.task_history(task_id)
    }

    /// The task's sticky labels, and why it no longer runs (`has ended`, `is
    /// quarantined: …`), or `None` while it runs.
    pub fn task_standing(
        &self,
        task_id: &str,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let deadline = Instant::now() + self.pipeline.store_timeout();
        self.pipeline.tasks().standing(task_id, deadline)
    }

    /// Every approval held (pending, decided, used until it expires), newest first.
    pub fn approvals(&self) -> Result<Vec<Approval>, StoreError> {
        let deadline = Instant::now() + self.pipeline.store_timeout();
        self.pipeline.tasks().approvals(deadline)
    }

    /// One approval.
    pub fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let deadline = Instant::now() + self.pipeline.store_timeout();
        self.pipeline.tasks().approval(id, deadline)
    }

    /// Records an approver's answer to approval `id`. The caller has authenticated the
    /// approver and says which groups they are in (`verdict.approver.groups`); the
    /// answer is refused if none of them is a group the approval still needs, if it is
    /// no longer pending, or if its task has ended or is quarantined.
    pub fn answer_approval(
        &self,
        id: &str,
        verdict: ApprovalVerdict,
    ) -> Result<Approval, ApprovalError> {
        let deadline = Instant::now() + self.pipeline.store_timeout();
        let now = crate::model::unix_ms_now();
        let approval = self
            .pipeline
            .tasks()
            .answer_approval(id, verdict, now, deadline)??;
        Ok(approval)
    }
}

/// Why an approver's answer was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The answer is not allowed (unknown, not pending, expired, not the approver's
    /// group, a closed task).
    #[error(transparent)]
    Refused(#[from] ApprovalRefusal),
    /// The task store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The task store `[task_store]` selects.
fn task_store(config: &Config) -> Result<Arc<dyn TaskStore>, LoadError> {
    match &config.task_store {
        TaskStoreConfig::Memory => Ok(Arc::new(
            MemoryTaskStore::new(config.history, config.tasks.sharing.clone())
                .with_max_approvals(config.approvals.max_approvals),
        )),
        #[cfg(feature = "redis")]
        TaskStoreConfig::Redis(redis) => crate::task::RedisTaskStore::new(
            redis.as_ref().clone(),
            config.history,
            config.tasks.sharing.clone(),
            config.approvals.max_approvals,
        )
        .map(|store| Arc::new(store) as Arc<dyn TaskStore>)
        .map_err(|e| LoadError::TaskStore(e.to_string())),
        #[cfg(not(feature = "redis"))]
        TaskStoreConfig::Redis(_) => Err(LoadError::TaskStore(
            "`task_store.kind = \"redis\"` needs a build with the `redis` feature".to_owned(),
        )),
    }
}
