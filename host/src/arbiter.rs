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
use crate::bindings::action_to_wit;
use crate::combine::{combine, effective_effect};
use crate::config::{Config, Mode};
use crate::decision::{Decision, DecisionEffect, Effect, PluginEntry};
use crate::engine::Engine;
use crate::error::LoadError;
use crate::history::{HistoryEntry, TaskHistory};
use crate::plugin::PluginListing;
use crate::policy_set::PolicySet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A policy host: plugins, task history, and the decision function.
#[derive(Debug)]
pub struct Arbiter {
    engine: Engine,
    set: RwLock<Arc<PolicySet>>,
    history: TaskHistory,
    /// The config file this host was built from, re-read by [`Arbiter::reload`].
    source: Option<PathBuf>,
    /// Serialises reloads so generations are handed out once each, in order.
    reload_lock: Mutex<()>,
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
        let set = PolicySet::load(&engine, config, 1)?;
        Ok(Self {
            engine,
            set: RwLock::new(Arc::new(set)),
            history: TaskHistory::new(config.history),
            source: None,
            reload_lock: Mutex::new(()),
        })
    }

    /// Re-reads the config file this host was built from and swaps in a new policy set
    /// with the next generation, returning that generation. Decisions already running
    /// finish on the set they started with. On any error the active set stays as it
    /// was (the last good set keeps serving) and the error says why.
    ///
    /// Only the plugins and combining defaults are reloaded; task history bounds and
    /// `[server]` settings take effect at the next start.
    pub fn reload(&self) -> Result<u64, LoadError> {
        let path = self.source.as_deref().ok_or(LoadError::NoConfigFile)?;
        self.reload_with(&Config::from_file(path)?)
    }

    /// Like [`Arbiter::reload`], with a config the caller has already read.
    pub fn reload_with(&self, config: &Config) -> Result<u64, LoadError> {
        let _serial = self.reload_lock.lock().unwrap_or_else(|p| p.into_inner());
        let generation = self.policy_set().generation().saturating_add(1);
        let set = Arc::new(PolicySet::load(&self.engine, config, generation)?);
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = set;
        Ok(generation)
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
        let action = Action::from_json(json)?;
        Ok(self.decide(&action))
    }

    /// Decides one action. Never fails and never panics on plugin faults: every failure
    /// is recorded in the decision and counted as its plugin's `on_error` effect.
    ///
    /// The action should have passed [`Action::validate`] (the JSON entry points do it);
    /// an action that does not is denied without running plugins.
    pub fn decide(&self, action: &Action) -> Decision {
        let started = Instant::now();
        let set = self.policy_set();
        let now = SystemTime::now();
        let time = action.time.unwrap_or_else(|| unix_ms(now));
        let task_id = action.task_id();
        let mut decision = Decision {
            decision_id: uuid::Uuid::new_v4().to_string(),
            request_id: action.request_id.clone(),
            task_id: task_id.map(str::to_owned),
            time: humantime::format_rfc3339_millis(now).to_string(),
            effect: DecisionEffect::Deny,
            reason: String::new(),
            generation: set.generation(),
            obligations: Vec::new(),
            plugins: Vec::with_capacity(set.plugins().len()),
            elapsed_us: 0,
        };
        if let Err(e) = action.validate() {
            decision.reason = e.to_string();
            decision.elapsed_us = elapsed_us(started);
            return decision;
        }
        if let Some(task) = task_id
            && self.history.is_ended(task)
        {
            decision.reason = format!("task `{task}` has ended");
            decision.elapsed_us = elapsed_us(started);
            return decision;
        }
        let history = task_id.map(|t| self.history.entries(t)).unwrap_or_default();
        let wit_action = action_to_wit(action, time, &history);
        for plugin in set.plugins() {
            let evaluation = plugin.evaluate(&wit_action, task_id);
            let config = plugin.config();
            let listing = plugin.listing();
            decision.plugins.push(PluginEntry {
                name: listing.name.clone(),
                plugin: listing.plugin.clone(),
                version: listing.version.clone(),
                kind: listing.kind.clone(),
                digest: listing.digest.clone(),
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
        let combined = combine(&decision.plugins, set.when_all_abstain());
        decision.effect = combined.effect;
        decision.reason = combined.reason;
        decision.obligations = combined.obligations;
        if let Some(task) = task_id {
            self.history
                .record(task, history_entry(action, &decision, time));
        }
        decision.elapsed_us = elapsed_us(started);
        decision
    }

    /// Ends a task: later actions of the task are denied, its history and any instance
    /// bound to it are dropped.
    pub fn end_task(&self, task_id: &str) {
        self.history.end(task_id);
        for plugin in self.policy_set().plugins() {
            plugin.forget_task(task_id);
        }
    }

    /// The task's recorded history, oldest first.
    pub fn task_history(&self, task_id: &str) -> Vec<HistoryEntry> {
        self.history.entries(task_id)
    }
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
