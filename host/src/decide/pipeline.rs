//! The decision pipeline, one named stage per step:
//!
//! ```text
//! validate → identify → opened task → task gate → evaluate → combine → approval
//!          → post-decision → deviation → audit → record
//! ```
//!
//! - **validate**: what the types alone cannot check (skipped when the parser just did).
//! - **identify**: who is acting (the adapters resolve verified identity before this).
//! - **opened task**: with `[tasks] mode = "opened"`, the action's task must be an
//!   opened one of its agent, and its task fields become the opened task's.
//! - **task gate**: ended and quarantined tasks, tasks of another agent, a full task
//!   table and a failing store end the decision here. The task is held from here until
//!   `record`, so concurrent decisions of one task see each other.
//! - **evaluate**: every plugin of the set, in order, on one snapshot of the task.
//! - **combine**: [`super::combine`].
//! - **approval**: a step-up looks for an approval of exactly its call: an approved one
//!   is consumed and the decision becomes `allow`; otherwise it names the approval it
//!   waits for ([`super::approval`]).
//! - **post-decision**: stages that may still change the answer: the obligation gate,
//!   minting the call's credential ([`PostDecision::after_decision`]).
//! - **deviation**: whether this deny quarantines the task; the decision says so.
//! - **audit**: the strict decision log writes the final answer, or turns it into a deny
//!   ([`PostDecision::audit`]).
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

use super::approval::ApprovalStage;
use super::combine::{combine, effective_effect};
use crate::config::{Mode, QuarantineRules, TaskMode};
use crate::contract::DecisionInput;
use crate::model::{
    Action, ActionError, Decision, DecisionEffect, Effect, HistoryEntry, OpenedTask, PluginEntry,
    Task, TaskSnapshot, unix_ms,
};
use crate::plugin::{PolicySet, Prewarmer};
use crate::task::{Revoker, StoreError, TaskLease, TaskStore};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A stage that runs after combining and before the task history is recorded, and may
/// still change the answer (the decision service's strict audit log: a decision that
/// cannot be logged becomes a deny). It runs with the task held, so it must be quick or
/// bounded.
pub trait PostDecision {
    /// Inspects, and may change, the combined decision.
    fn after_decision(&self, action: &Action, decision: &mut Decision);

    /// Sees the decision as it will be answered, once every stage that may change it
    /// has run and the quarantine it triggers is marked on it, before the task history
    /// records it. It may still turn it into a deny (a strict decision log that cannot
    /// write the line does), so that the history and the answer agree.
    fn audit(&self, _action: &Action, _decision: &mut Decision) {}
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
    /// When a deny quarantines its task.
    quarantine: QuarantineRules,
    /// Asserted or opened tasks.
    mode: TaskMode,
    /// Lifetime of an approval a step-up asks for.
    approval_ttl: Duration,
}

/// Who is acting: the seam where verified workload identity plugs in. Today the asserted
/// identity passes through.
#[derive(Debug, Clone, Copy)]
struct Identity<'a> {
    agent: &'a str,
}

impl Pipeline {
    /// A pipeline recording into `tasks`, each store operation bounded by `store_timeout`.
    pub fn new(
        tasks: Arc<dyn TaskStore>,
        store_timeout: Duration,
        quarantine: QuarantineRules,
        mode: TaskMode,
    ) -> Self {
        Self {
            tasks,
            store_timeout,
            quarantine,
            mode,
            approval_ttl: Duration::from_millis(crate::config::DEFAULT_APPROVAL_TTL_MS),
        }
    }

    /// The same pipeline asking for approvals that live `ttl`.
    pub fn with_approval_ttl(mut self, ttl: Duration) -> Self {
        self.approval_ttl = ttl;
        self
    }

    /// Deadline of one task-store operation.
    pub fn store_timeout(&self) -> Duration {
        self.store_timeout
    }

    /// The task store (approvals are answered through it).
    pub fn tasks(&self) -> &dyn TaskStore {
        self.tasks.as_ref()
    }

    /// Asserted or opened tasks.
    pub fn task_mode(&self) -> TaskMode {
        self.mode
    }

    /// Records an opened task (see [`TaskStore::open`]).
    pub fn open_task(&self, task: OpenedTask, inherit: bool) -> Result<OpenedTask, String> {
        let deadline = Instant::now() + self.store_timeout;
        match self.tasks.open(task, inherit, deadline) {
            Ok(Ok(task)) => Ok(task),
            Ok(Err(refusal)) => Err(refusal.to_string()),
            Err(e) => Err(e.to_string()),
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
        if action.task.is_some() || self.mode == TaskMode::Opened {
            decision.tasks = Some(self.mode);
        }
        // With opened tasks the action's task fields are the opened task's, never its own.
        let from_opened;
        let action = match self.mode {
            TaskMode::Asserted => action,
            TaskMode::Opened => match self.stage_opened(action, &identity) {
                Ok(effective) => {
                    from_opened = effective;
                    &from_opened
                }
                Err(reason) => return finish(decision, reason, started),
            },
        };
        // A preview reads the task without holding it: it records nothing, so it need
        // not wait for (or hold up) the task's real decisions.
        let gate = match recording {
            Recording::Record => self.stage_task_gate(action, &identity).map(|lease| {
                let snapshot = lease
                    .as_ref()
                    .map(|l| l.snapshot().clone())
                    .unwrap_or_default();
                (lease, snapshot)
            }),
            Recording::Preview => self
                .stage_task_peek(action, &identity)
                .map(|snapshot| (None, snapshot)),
        };
        let (lease, snapshot) = match gate {
            Ok(gate) => gate,
            Err(reason) => return finish(decision, reason, started),
        };
        let time = action.time.unwrap_or_else(|| unix_ms(SystemTime::now()));
        decision.plugins = stage_evaluate(set, action, time, &snapshot);
        drop(snapshot);
        if set.wants_spares() {
            prewarmer.request(set);
        }
        stage_combine(&mut decision, set);
        if recording == Recording::Record {
            ApprovalStage {
                tasks: self.tasks.as_ref(),
                store_timeout: self.store_timeout,
                ttl: self.approval_ttl,
                now: unix_ms(SystemTime::now()),
            }
            .run(action, &mut decision);
        }
        post.after_decision(action, &mut decision);
        match recording {
            Recording::Record => {
                let deviation = lease
                    .as_ref()
                    .and_then(|l| stage_deviation(&self.quarantine, &decision, l.snapshot()));
                if let Some(why) = &deviation {
                    decision.reason =
                        format!("{}; the task is now quarantined: {why}", decision.reason);
                    decision.quarantine = Some(why.clone());
                }
                post.audit(action, &mut decision);
                stage_record(lease, action, &mut decision, time, deviation);
            }
            Recording::Preview => {
                post.audit(action, &mut decision);
                // Dropping the lease releases the task without appending anything.
                drop(lease);
            }
        }
        decision.elapsed_us = elapsed_us(started);
        decision
    }

    /// Opened tasks: the action must name a task that was opened for its agent, and may
    /// not disagree with it; the action decided is the one with the opened task's
    /// intent, expiry and delegation.
    fn stage_opened(&self, action: &Action, identity: &Identity<'_>) -> Result<Action, String> {
        let Some(named) = &action.task else {
            return Err(
                "denied: tasks are opened here (`tasks.mode = \"opened\"`) and the action names no task; open one with `POST /v1/tasks`"
                    .to_owned(),
            );
        };
        let deadline = Instant::now() + self.store_timeout;
        let opened = match self.tasks.opened(&named.id, deadline) {
            Ok(Some(opened)) => opened,
            Ok(None) => {
                return Err(format!(
                    "denied: task `{}` was not opened (tasks are opened here: `POST /v1/tasks`), or has ended",
                    named.id
                ));
            }
            Err(e) => return Err(format!("denied: {e}")),
        };
        if !opened.agents.iter().any(|a| a == identity.agent) {
            return Err(format!(
                "denied: task `{}` was opened for {}, not for agent `{}`",
                opened.id,
                opened
                    .agents
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                identity.agent
            ));
        }
        if !named.intent.is_empty() && named.intent != opened.intent {
            return Err(format!(
                "denied: `task.intent` is `{}` but task `{}` was opened with intent `{}`",
                named.intent, opened.id, opened.intent
            ));
        }
        if named.expires_at.is_some() && named.expires_at != opened.expires_at {
            return Err(format!(
                "denied: `task.expires_at` disagrees with task `{}` as it was opened",
                opened.id
            ));
        }
        if !action.delegation.is_empty() && action.delegation != opened.delegation {
            return Err(format!(
                "denied: `delegation` disagrees with task `{}` as it was opened",
                opened.id
            ));
        }
        // The opening's expiry is the host's to enforce, on the host's clock: an action
        // that brings its own `time` cannot move it back.
        let now = unix_ms(SystemTime::now());
        if let Some(expires_at) = opened.expires_at
            && now >= expires_at
        {
            return Err(format!(
                "denied: task `{}` expired at {expires_at} (Unix ms; now {now})",
                opened.id
            ));
        }
        let mut effective = action.clone();
        effective.time = None;
        effective.task = Some(Task {
            id: opened.id,
            intent: opened.intent,
            started_at: opened.started_at,
            expires_at: opened.expires_at,
        });
        effective.delegation = opened.delegation;
        Ok(effective)
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

    /// The task gate of a preview: what the task looks like, or why its action would be
    /// refused, without holding the task.
    fn stage_task_peek(
        &self,
        action: &Action,
        identity: &Identity<'_>,
    ) -> Result<TaskSnapshot, String> {
        let Some(task) = action.task_id() else {
            return Ok(TaskSnapshot::default());
        };
        let deadline = Instant::now() + self.store_timeout;
        match self.tasks.peek(task, identity.agent, deadline) {
            Ok(Ok(snapshot)) => Ok(snapshot),
            Ok(Err(refusal)) => Err(refusal.to_string()),
            Err(e) => Err(format!("denied: {e}")),
        }
    }

    /// Ends a task in the store: later actions of the task are denied.
    pub fn end_task(&self, task_id: &str) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.store_timeout;
        self.tasks.end(task_id, deadline).inspect_err(|e| {
            tracing::error!(task = task_id, error = %e, "task store: cannot end the task");
        })
    }

    /// Lifts the task's quarantine; false if it was not quarantined.
    pub fn lift_quarantine(&self, task_id: &str) -> Result<bool, StoreError> {
        let deadline = Instant::now() + self.store_timeout;
        self.tasks.lift_quarantine(task_id, deadline).inspect_err(|e| {
            tracing::error!(task = task_id, error = %e, "task store: cannot lift the quarantine");
        })
    }

    /// The store's credential revocations, with its deadline.
    pub fn revoker(&self) -> Revoker<'_> {
        Revoker::new(self.tasks.as_ref(), self.store_timeout)
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
        quarantine: None,
        tasks: None,
        approval: None,
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

/// Deviation: whether this final deny quarantines its task, and why (the rules of
/// `[tasks.quarantine]`, in the order they are checked).
fn stage_deviation(
    rules: &QuarantineRules,
    decision: &Decision,
    snapshot: &TaskSnapshot,
) -> Option<String> {
    if decision.effect != DecisionEffect::Deny {
        return None;
    }
    if rules.on_obligation
        && let Some(asked) = decision
            .obligations
            .iter()
            .find(|o| o.kind == QUARANTINE_OBLIGATION)
    {
        return Some(format!(
            "plugin `{}` asked for it (`{}`)",
            asked.plugin, asked.detail
        ));
    }
    if let Some(critical) = decision
        .plugins
        .iter()
        .find(|p| p.counted && p.effect == Effect::Deny && rules.critical_plugins.contains(&p.name))
    {
        return Some(format!(
            "a deny by `{}`, which `tasks.quarantine.critical_plugins` marks critical",
            critical.name
        ));
    }
    if let Some(limit) = rules.after_denies {
        let denies = snapshot
            .entries
            .iter()
            .filter(|e| e.effect == Effect::Deny)
            .count()
            + 1;
        if denies >= limit {
            return Some(format!(
                "{denies} denies in this task (`tasks.quarantine.after_denies` = {limit})"
            ));
        }
    }
    None
}

/// The obligation kind by which a plugin asks for its deny to quarantine the task.
pub const QUARANTINE_OBLIGATION: &str = "quarantine";

/// Record: the final answer goes into the task history, and the task is released (and
/// quarantined, when the deviation stage said so: in the same step).
fn stage_record(
    lease: Option<Box<dyn TaskLease + '_>>,
    action: &Action,
    decision: &mut Decision,
    time: u64,
    deviation: Option<String>,
) {
    let Some(lease) = lease else { return };
    if let Err(e) = lease.commit(history_entry(action, decision, time), deviation.as_deref()) {
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

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision(effect: &str, plugin: &str, obligations: serde_json::Value) -> Decision {
        serde_json::from_value(json!({
            "decision_id": "d", "request_id": "r", "time": "t", "effect": effect,
            "reason": "why", "generation": 1, "obligations": obligations, "elapsed_us": 1,
            "plugins": [{
                "name": plugin, "plugin": plugin, "version": "0.1.0", "kind": "intent",
                "digest": "sha256:00", "signer": "dev", "signature": "verified",
                "mode": "enforce", "outcome": "ok", "verdict": effect, "effect": effect,
                "counted": true, "reason": "why", "obligations": [], "labels": [],
                "elapsed_us": 1
            }]
        }))
        .unwrap()
    }

    fn history(denies: usize) -> TaskSnapshot {
        let entry = |effect| HistoryEntry {
            request_id: "r".to_owned(),
            server: "s".to_owned(),
            tool: "t".to_owned(),
            effect,
            labels: vec![],
            time: 0,
        };
        let mut entries: std::collections::VecDeque<HistoryEntry> =
            (0..denies).map(|_| entry(Effect::Deny)).collect();
        entries.push_back(entry(Effect::Allow));
        TaskSnapshot {
            entries: Arc::new(entries),
            labels: Arc::from(Vec::new()),
        }
    }

    #[test]
    fn each_quarantine_rule_fires_on_a_deny_and_never_on_an_allow() {
        let rules = QuarantineRules {
            after_denies: Some(3),
            critical_plugins: vec!["sensitivity".to_owned()],
            on_obligation: true,
        };
        let asked = json!([{"kind": "quarantine", "detail": "exfiltration", "plugin": "intent"}]);
        let why = stage_deviation(
            &rules,
            &decision("deny", "intent", asked.clone()),
            &history(0),
        );
        assert!(
            why.unwrap()
                .contains("plugin `intent` asked for it (`exfiltration`)")
        );
        let off = QuarantineRules {
            on_obligation: false,
            ..rules.clone()
        };
        assert_eq!(
            stage_deviation(&off, &decision("deny", "intent", asked), &history(0)),
            None
        );
        let why = stage_deviation(
            &rules,
            &decision("deny", "sensitivity", json!([])),
            &history(0),
        );
        assert!(
            why.unwrap()
                .contains("`sensitivity`, which `tasks.quarantine.critical_plugins`")
        );
        assert_eq!(
            stage_deviation(&rules, &decision("deny", "intent", json!([])), &history(1)),
            None
        );
        let why = stage_deviation(&rules, &decision("deny", "intent", json!([])), &history(2));
        assert!(why.unwrap().contains("3 denies in this task"));
        assert_eq!(
            stage_deviation(
                &rules,
                &decision("allow", "sensitivity", json!([])),
                &history(9)
            ),
            None
        );
        assert_eq!(
            stage_deviation(
                &QuarantineRules::default(),
                &decision("deny", "intent", json!([])),
                &history(50)
            ),
            None
        );
    }
}
