//! Native unit tests for policies: build actions, load settings, run, inspect logs.
//!
//! ```
//! use arbiter_guest::prelude::*;
//! use arbiter_guest::testing::{ActionBuilder, run};
//! # #[derive(serde::Deserialize)] struct S {}
//! # struct P;
//! # impl Policy for P {
//! #     type Settings = S;
//! #     fn describe() -> PluginInfo { PluginInfo::new("p", "0.1.0", "intent", "d") }
//! #     fn evaluate(_: &S, a: &Action) -> Verdict {
//! #         if a.tool.name == "read_file" { Verdict::allow("ok") } else { Verdict::deny("no") }
//! #     }
//! # }
//! let action = ActionBuilder::new()
//!     .task("t-1", "summarize-repo")
//!     .tool("fs", "read_file")
//!     .arguments(json!({"path": "/repo/README.md"}))
//!     .build();
//! let verdict = run::<P>(json!({}), &action).unwrap();
//! assert_eq!(verdict.effect, Effect::Allow);
//! ```

use crate::log::Level;
use crate::policy::parse_settings;
use crate::task_context::TaskContext;
use crate::{
    Action, Agent, Credential, Effect, HistoryEntry, Policy, Principal, Resource, Task, Tool,
    Verdict,
};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A fixed "now" for test actions: 2026-01-01T00:00:00Z in Unix ms.
pub const NOW: u64 = 1_767_225_600_000;

/// One hour in milliseconds.
pub const HOUR: u64 = 3_600_000;

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn capture_log(level: Level, message: &str) {
    eprintln!("[policy {level:?}] {message}");
    LOGS.with(|logs| logs.borrow_mut().push((level, message.to_owned())));
}

/// Takes the log lines this thread's policy calls wrote so far.
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Parses `settings` as policy `P`'s settings, as the host would at load time.
pub fn settings<P: Policy>(settings: Value) -> Result<P::Settings, String> {
    parse_settings::<P>(&settings.to_string())
}

/// Runs `P` on `action` with `settings`, exactly as the component would.
pub fn run<P: Policy>(settings: Value, action: &Action) -> Result<Verdict, String> {
    let settings = self::settings::<P>(settings)?;
    Ok(P::evaluate(&settings, action))
}

/// Runs a sequence of actions of one task, feeding each verdict back into the next
/// action's history the way the host does (with `P`'s verdict as the final effect).
pub fn run_task<P: Policy>(settings: Value, actions: &[Action]) -> Result<Vec<Verdict>, String> {
    let settings = self::settings::<P>(settings)?;
    let mut task = TaskContext::default();
    let mut verdicts = Vec::new();
    for action in actions {
        let mut action = action.clone();
        action.task_context = task.clone();
        let verdict = P::evaluate(&settings, &action);
        let mut labels = action.resource_labels().to_vec();
        labels.extend(verdict.labels.iter().cloned());
        task.push(HistoryEntry {
            request_id: action.request_id.clone(),
            tool: action.tool.clone(),
            effect: match verdict.effect {
                Effect::Abstain => Effect::Allow,
                other => other,
            },
            labels,
            time: action.time,
        });
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// Builds test actions with sensible defaults: an attested agent, a task that started an
/// hour ago and ends in an hour, tool `fs/read_file`, empty arguments, time [`NOW`].
#[derive(Debug, Clone)]
pub struct ActionBuilder {
    action: Action,
}

impl Default for ActionBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ActionBuilder {
    /// Defaults as described on the type.
    pub fn new() -> Self {
        Self {
            action: Action {
                request_id: "req-1".to_owned(),
                agent: Agent {
                    id: "spiffe://example.org/agent/test".to_owned(),
                    attestation: "x509-svid".to_owned(),
                    claims: BTreeMap::new(),
                },
                delegation: Vec::new(),
                task: Some(Task {
                    id: "task-1".to_owned(),
                    intent: "test".to_owned(),
                    started_at: NOW - HOUR,
                    expires_at: Some(NOW + HOUR),
                }),
                tool: Tool {
                    server: "fs".to_owned(),
                    name: "read_file".to_owned(),
                },
                arguments: Value::Object(serde_json::Map::new()),
                credential: None,
                resource: None,
                environment: BTreeMap::new(),
                time: NOW,
                task_context: TaskContext::default(),
            },
        }
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: &str) -> Self {
        self.action.request_id = id.to_owned();
        self
    }

    /// Sets the agent id.
    pub fn agent(mut self, id: &str) -> Self {
        self.action.agent.id = id.to_owned();
        self
    }

    /// Sets the task id and intent (keeping its times).
    pub fn task(mut self, id: &str, intent: &str) -> Self {
        let task = self.action.task.get_or_insert_with(|| Task {
            started_at: NOW - HOUR,
            expires_at: Some(NOW + HOUR),
            ..Task::default()
        });
        task.id = id.to_owned();
        task.intent = intent.to_owned();
        self
    }

    /// Sets the task's expiry.
    pub fn task_expires_at(mut self, expires_at: Option<u64>) -> Self {
        if let Some(task) = self.action.task.as_mut() {
            task.expires_at = expires_at;
        }
        self
    }

    /// Removes the task.
    pub fn no_task(mut self) -> Self {
        self.action.task = None;
        self
    }

    /// Sets the tool.
    pub fn tool(mut self, server: &str, name: &str) -> Self {
        self.action.tool = Tool {
            server: server.to_owned(),
            name: name.to_owned(),
        };
        self
    }

    /// Sets the arguments.
    pub fn arguments(mut self, arguments: Value) -> Self {
        self.action.arguments = arguments;
        self
    }

    /// Sets the credential: scopes, expiry, audience.
    pub fn credential(
        mut self,
        scopes: &[&str],
        expires_at: Option<u64>,
        audience: Option<&str>,
    ) -> Self {
        self.action.credential = Some(Credential {
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
            audience: audience.map(str::to_owned),
        });
        self
    }

    /// Appends a principal to the delegation chain (call outermost first).
    pub fn delegated_by(mut self, id: &str, kind: &str, scopes: &[&str]) -> Self {
        self.action.delegation.push(Principal {
            id: id.to_owned(),
            kind: kind.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Sets the resource.
    pub fn resource(mut self, id: &str, labels: &[&str]) -> Self {
        self.action.resource = Some(Resource {
            id: id.to_owned(),
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
        });
        self
    }

    /// Sets an environment value.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.action
            .environment
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the request time.
    pub fn time(mut self, time: u64) -> Self {
        self.action.time = time;
        self
    }

    /// Appends an earlier action of the task to the history (and its labels to the
    /// task's labels).
    pub fn history(mut self, server: &str, name: &str, effect: Effect, labels: &[&str]) -> Self {
        let n = self.action.history().len();
        let time = self.action.time.saturating_sub(1000);
        self.action.task_context.push(HistoryEntry {
            request_id: format!("req-h{n}"),
            tool: Tool {
                server: server.to_owned(),
                name: name.to_owned(),
            },
            effect,
            labels: labels.iter().map(|s| (*s).to_owned()).collect(),
            time,
        });
        self
    }

    /// The action.
    pub fn build(self) -> Action {
        self.action
    }
}
