//! The decision pipeline, one named stage per step:
//!
//! ```text
//! validate → identify → task gate → evaluate → combine → post-decision → record
//! ```
//!
//! - **validate**: what the types alone cannot check (skipped when the parser just did).
//! - **identify**: who is acting. The seam where verified workload identity plugs in;
//!   today the identity the action asserts passes through.
//! - **task gate**: ended tasks, tasks of another agent, a full task table and a failing
//!   store end the decision here (later: quarantine and approvals). The task is held
//!   from here until `record`, so concurrent decisions of one task see each other.
//! - **evaluate**: every plugin of the set, in order, on one snapshot of the task.
//! - **combine**: [`super::combine`].
//! - **post-decision**: stages that may still change the answer, such as the decision
//!   service's strict audit log ([`PostDecision`]).
//! - **record**: the final answer goes into the task history.
//!
//! Any stage may end the decision as a deny that says why: the decision starts as a deny,
//! so nothing is allowed by falling through. The answer is final before `record`, so what
//! later plugins read in `host.history` is what the caller was told.
//!
//! # Sync, on purpose
//!
//! A decision is CPU-bound work of microseconds (compiled plugins, an in-memory store),
//! so the pipeline is a plain blocking function; a remote store blocks for a bounded
//! time (its deadline) instead of making every embedder carry an async runtime.

use super::combine::{combine, effective_effect};
use crate::config::Mode;
use crate::contract::DecisionInput;
use crate::model::{
    Action, ActionError, Decision, DecisionEffect, Effect, HistoryEntry, PluginEntry, TaskSnapshot,
};
use crate::plugin::{PolicySet, Prewarmer};
use crate::task::{TaskLease, TaskStore};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Whether a decision goes into the task history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// A decision about an action that will happen if allowed: recorded.
    Record,
    /// A what-if (the MCP gateway asking which tools to list): not recorded, so it
    /// neither labels the task nor shows in what later plugins read.
    Preview,
}

/// The stages, over a task store.
#[derive(Debug)]
pub struct Pipeline {
    tasks: Arc<dyn TaskStore>,
    /// Deadline of one task-store operation.
    store_timeout: Duration,
}

/// Who is acting: the seam where verified workload identity plugs in. Today the asserted
/// identity passes through.
#[derive(Debug, Clone, Copy)]
struct Identity<'a> {
    agent: &'a str,
}

impl Pipeline {
    /// A pipeline recording into `tasks`, each store operation bounded by `store_timeout`.
    pub fn new(tasks: Arc<dyn TaskStore>, store_timeout: Duration) -> Self {
        Self {
            tasks,
            store_timeout,
        }
    }

    /// Decides `action` on `set`. `validated` says the parser has already run
    /// [`Action::validate`]; `prewarmer` is asked for spares when plugins used theirs.
    pub fn run(
        &self,
        set: &Arc<PolicySet>,
        action: &Action,
        validated: bool,
        post: &dyn PostDecision,
        prewarmer: &Prewarmer,
    ) -> Decision {
        self.run_as(set, action, validated, post, prewarmer, Recording::Record)
    }

    /// Decides `action` as [`Pipeline::run`] does, recording it in the task history or
    /// (a preview) not: a preview sees the task as it is and leaves no trace in it.
    pub fn run_as(
        &self,
        set: &Arc<PolicySet>,
        action: &Action,
        validated: bool,
        post: &dyn PostDecision,
        prewarmer: &Prewarmer,
        recording: Recording,
    ) -> Decision {
        let started = Instant::now();
        let mut decision = open_decision(action, set);
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
        decision.plugins = stage_evaluate(set, action, time, &snapshot);
        drop(snapshot);
        if set.wants_spares() {
            prewarmer.request(set);
        }
        stage_combine(&mut decision, set);
        post.after_decision(action, &mut decision);
        match recording {
            Recording::Record => stage_record(lease, action, &mut decision, time),
            // Dropping the lease releases the task without appending anything.
            Recording::Preview => drop(lease),
        }
        decision.elapsed_us = elapsed_us(started);
        decision
    }

    /// Task gate: holds the task for this decision until it is recorded.
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

    /// Ends a task in the store: later actions of the task are denied.
    pub fn end_task(&self, task_id: &str) {
        let deadline = Instant::now() + self.store_timeout;
        if let Err(e) = self.tasks.end(task_id, deadline) {
            tracing::error!(task = task_id, error = %e, "task store: cannot end the task");
        }
    }

    /// The task's recorded history, oldest first (empty if the store cannot answer).
    pub fn task_history(&self, task_id: &str) -> Vec<HistoryEntry> {
        let deadline = Instant::now() + self.store_timeout;
        self.tasks.entries(task_id, deadline).unwrap_or_default()
    }
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
        identity: None,
        credential: None,
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

/// Evaluate: every plugin of the set, in order, on the same snapshot of the task. The
/// host's action goes to each plugin as is; the contract layer lowers it for the
/// plugin's contract version.
fn stage_evaluate(
    set: &PolicySet,
    action: &Action,
    time: u64,
    snapshot: &TaskSnapshot,
) -> Vec<PluginEntry> {
    let task_id = action.task_id();
    let input = DecisionInput::new(action, time);
    let mut entries = Vec::with_capacity(set.plugins().len());
    for plugin in set.plugins() {
        let evaluation = plugin.evaluate(&input, task_id, snapshot);
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
    entries
}

/// Combine: the published algorithm of [`super::combine`].
fn stage_combine(decision: &mut Decision, set: &PolicySet) {
    let combined = combine(&decision.plugins, set.when_all_abstain());
    decision.effect = combined.effect;
    decision.reason = combined.reason;
    decision.obligations = combined.obligations;
}

/// Record: the final answer goes into the task history, and the task is released.
fn stage_record(
    lease: Option<Box<dyn TaskLease + '_>>,
    action: &Action,
    decision: &mut Decision,
    time: u64,
) {
    let Some(lease) = lease else { return };
    if let Err(e) = lease.commit(history_entry(action, decision, time)) {
        // Fail closed: a decision whose record was lost must not let the action
        // through, because the next decision of the task would not see it.
        tracing::error!(decision_id = %decision.decision_id, error = %e, "task store: record failed; denying");
        decision.effect = DecisionEffect::Deny;
        decision.reason = format!("denied: the decision could not be recorded: {e}");
        decision.obligations.clear();
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
