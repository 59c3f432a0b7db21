//! What the host knows about a task when it decides one of its actions: the recent
//! entries of its history and its sticky labels (see `task::history` for how they are
//! kept and bounded). Plugins read them through `host.history` and `host.task-labels`.

use super::action::Principal;
use super::decision::Effect;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// Whether tasks are asserted by each action or opened through Arbiter first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskMode {
    /// Each action asserts its task, intent, expiry and delegation (embedders that
    /// manage tasks themselves).
    #[default]
    Asserted,
    /// A task must be opened first; its actions only name it, and an action for a task
    /// that was not opened, of another agent, or disagreeing with it is denied.
    Opened,
}

impl TaskMode {
    /// `asserted` or `opened`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskMode::Asserted => "asserted",
            TaskMode::Opened => "opened",
        }
    }
}

/// A task as it was opened (`POST /v1/tasks`, [`crate::Arbiter::open_task`]): what its
/// actions may not choose for themselves. With `[tasks] mode = "opened"`, the intent,
/// expiry and delegation of every action of the task come from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedTask {
    /// The task id Arbiter gave it.
    pub id: String,
    /// The agents that may act in it (their SPIFFE IDs, or asserted ids).
    pub agents: Vec<String>,
    /// The declared intent.
    pub intent: String,
    /// The delegation chain with its scopes.
    pub delegation: Vec<Principal>,
    /// When it was opened, Unix ms.
    pub started_at: u64,
    /// When it expires, Unix ms.
    pub expires_at: Option<u64>,
    /// Who opened it (`admin`, or the opener's verified identity).
    pub opened_by: String,
    /// The labels it started with: the taint of its agents' open tasks, unless the
    /// opener said otherwise.
    pub inherited_labels: Vec<String>,
}

/// One earlier action of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Request id.
    pub request_id: String,
    /// Tool server.
    pub server: String,
    /// Tool name.
    pub tool: String,
    /// Final effect.
    pub effect: Effect,
    /// Labels touched (resource labels and labels plugins attached).
    pub labels: Vec<String>,
    /// Decision time, Unix ms.
    pub time: u64,
}

/// What plugins may read about the task of the action they evaluate: the recent entries
/// (oldest first) and every label the task touched. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TaskSnapshot {
    /// Recent entries, oldest first.
    pub entries: Arc<VecDeque<HistoryEntry>>,
    /// Every label the task touched since it began, sorted, without duplicates.
    pub labels: Arc<[String]>,
}

/// What an opener asks for when it opens a task.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenTask {
    /// The agents that may act in the task (SPIFFE IDs when identity is verified).
    pub agents: Vec<String>,
    /// The declared intent.
    pub intent: String,
    /// The delegation chain with its scopes.
    #[serde(default)]
    pub delegation: Vec<Principal>,
    /// Expiry, Unix ms.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Start with the labels of the agents' open tasks (default true): see
    /// [`OpenedTask::inherited_labels`].
    #[serde(default = "inherit_by_default")]
    pub inherit_labels: bool,
}

fn inherit_by_default() -> bool {
    true
}

impl OpenTask {
    /// Checks every field with the rules an action's task, agent and delegation obey,
    /// naming the field at fault, and that the expiry is still ahead of `now_ms`.
    pub fn validate(&self, now_ms: u64) -> Result<(), super::ActionError> {
        if self.intent.trim().is_empty() {
            return Err(super::ActionError::new(
                "intent",
                "must be a non-empty string: the task's declared purpose",
            ));
        }
        if self.agents.is_empty() {
            return Err(super::ActionError::new(
                "agents",
                "expected one or more agent ids",
            ));
        }
        if self.agents.len() > super::MAX_LIST_LEN {
            return Err(super::ActionError::new(
                "agents",
                format!(
                    "{} agents, at most {}",
                    self.agents.len(),
                    super::MAX_LIST_LEN
                ),
            ));
        }
        for (i, agent) in self.agents.iter().enumerate() {
            super::check_agent_id(&format!("agents[{i}]"), agent)?;
        }
        if let Some(expires_at) = self.expires_at
            && expires_at <= now_ms
        {
            return Err(super::ActionError::new(
                "expires_at",
                format!("{expires_at} is not in the future (now {now_ms}, Unix ms)"),
            ));
        }
        // The same checks an action of the task gets, on a probe action.
        let probe = super::Action {
            request_id: "open".to_owned(),
            agent: super::Agent {
                id: self.agents.first().cloned().unwrap_or_default(),
                attestation: "none".to_owned(),
                claims: Default::default(),
            },
            delegation: self.delegation.clone(),
            task: Some(super::Task {
                id: "opening".to_owned(),
                intent: self.intent.clone(),
                started_at: now_ms,
                expires_at: self.expires_at,
            }),
            tool: super::Tool {
                server: "-".to_owned(),
                name: "-".to_owned(),
            },
            arguments: serde_json::Value::Object(serde_json::Map::new()),
            credential: None,
            resource: None,
            environment: Default::default(),
            time: None,
        };
        probe.validate().map_err(|mut e| {
            if let Some(rest) = e.field.strip_prefix("task.") {
                e.field = rest.to_owned();
            }
            e
        })
    }
}
