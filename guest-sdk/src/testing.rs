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

/// Runs `P` on `action` with `settings`, exactly as the component would: the verdict
/// is brought within the contract's bounds as the export glue does
/// ([`crate::bounds::enforce`]), so it is the verdict the host receives.
pub fn run<P: Policy>(settings: Value, action: &Action) -> Result<Verdict, String> {
    let settings = self::settings::<P>(settings)?;
    Ok(crate::bounds::enforce(P::evaluate(&settings, action)))
}

/// The effect of a decision in which every enforcing plugin abstained: the host's
/// `[defaults] when_all_abstain`, which is `deny` unless the operator set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenAllAbstain {
    /// Deny (the host's default: nobody vouched for the action).
    #[default]
    Deny,
    /// Require step-up.
    StepUp,
    /// Allow.
    Allow,
}

impl WhenAllAbstain {
    fn effect(self) -> Effect {
        match self {
            Self::Deny => Effect::Deny,
            Self::StepUp => Effect::StepUp,
            Self::Allow => Effect::Allow,
        }
    }
}

/// Runs a sequence of actions of one task, each as [`run`] does, and records each in the
/// task's history the way the host records it, for the later actions to read. The host
/// records the decision's final effect, and with `P` the only plugin, `P`'s abstain is
/// not an effect: every plugin abstained, so the decision takes the configured default,
/// [`WhenAllAbstain::Deny`] here ([`run_task_with_default`] sets another). The recorded
/// labels are the resource's labels, then `P`'s that the resource did not already carry.
///
/// The actions form one task whatever their task ids say, and the history is built from
/// them only (a history given with [`ActionBuilder::history`] is replaced). An action
/// without a task sees no history and is not recorded, as on the host.
pub fn run_task<P: Policy>(settings: Value, actions: &[Action]) -> Result<Vec<Verdict>, String> {
    run_task_with_default::<P>(settings, actions, WhenAllAbstain::Deny)
}

/// [`run_task`] for a host configured with `when_all_abstain = "step-up"` or `"allow"`:
/// an action on which `P` abstains is recorded with that effect.
pub fn run_task_with_default<P: Policy>(
    settings: Value,
    actions: &[Action],
    when_all_abstain: WhenAllAbstain,
) -> Result<Vec<Verdict>, String> {
    let settings = self::settings::<P>(settings)?;
    let mut task = TaskContext::default();
    let mut verdicts = Vec::with_capacity(actions.len());
    for action in actions {
        let mut action = action.clone();
        let in_task = action.task.is_some();
        action.task_context = if in_task {
            task.clone()
        } else {
            TaskContext::default()
        };
        let verdict = crate::bounds::enforce(P::evaluate(&settings, &action));
        if in_task {
            task.push(recorded(&action, &verdict, when_all_abstain));
        }
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The history entry the host writes for `action` when `verdict` is the only one
/// (`history_entry` in the host's `arbiter.rs`, with `combine.rs` for the effect).
fn recorded(action: &Action, verdict: &Verdict, when_all_abstain: WhenAllAbstain) -> HistoryEntry {
    let mut labels = action.resource_labels().to_vec();
    for label in &verdict.labels {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    HistoryEntry {
        request_id: action.request_id.clone(),
        tool: action.tool.clone(),
        effect: match verdict.effect {
            Effect::Abstain => when_all_abstain.effect(),
            decided => decided,
        },
        labels,
        time: action.time,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Obligation, PluginInfo};
    use serde_json::json;

    /// Abstains on `fs/probe` (with a label), and otherwise allows, its reason listing
    /// the history it was given: `deny[restricted,pii] allow[]`.
    struct Probe;

    impl Policy for Probe {
        type Settings = Value;

        fn describe() -> PluginInfo {
            PluginInfo::new("probe", "0.1.0", "test", "reports the history it sees")
        }

        fn evaluate(_: &Value, action: &Action) -> Verdict {
            if action.tool.name == "probe" {
                return Verdict::abstain("not mine").with_labels(["pii", "restricted"]);
            }
            let seen: Vec<String> = action
                .history()
                .iter()
                .map(|h| {
                    let effect = crate::__private::effect_name(h.effect);
                    format!("{effect}[{}]", h.labels.join(","))
                })
                .collect();
            Verdict::allow(seen.join(" "))
        }
    }

    fn probe() -> Action {
        ActionBuilder::new()
            .tool("fs", "probe")
            .resource("/finance", &["restricted"])
            .build()
    }

    fn look() -> Action {
        ActionBuilder::new().tool("fs", "look").build()
    }

    #[test]
    fn run_task_records_an_abstain_as_the_hosts_default_deny() {
        let verdicts = run_task::<Probe>(json!({}), &[probe(), look(), look()]).unwrap();
        assert_eq!(
            verdicts[0].effect,
            Effect::Abstain,
            "the verdict itself is kept"
        );
        // The host records the decision's effect: everyone abstained, so the default.
        assert_eq!(verdicts[1].reason, "deny[restricted,pii]");
        assert_eq!(verdicts[2].reason, "deny[restricted,pii] allow[]");
    }

    #[test]
    fn run_task_with_default_records_the_configured_default() {
        let actions = [probe(), look()];
        let step_up = run_task_with_default::<Probe>(json!({}), &actions, WhenAllAbstain::StepUp);
        assert_eq!(step_up.unwrap()[1].reason, "step-up[restricted,pii]");
        let allow = run_task_with_default::<Probe>(json!({}), &actions, WhenAllAbstain::Allow);
        assert_eq!(allow.unwrap()[1].reason, "allow[restricted,pii]");
        assert_eq!(WhenAllAbstain::default(), WhenAllAbstain::Deny);
    }

    #[test]
    fn run_task_keeps_actions_without_a_task_out_of_the_history() {
        let outside = ActionBuilder::new().no_task().tool("fs", "probe").build();
        let verdicts = run_task::<Probe>(json!({}), &[probe(), outside, look()]).unwrap();
        assert_eq!(verdicts[2].reason, "deny[restricted,pii]");
        let lone = ActionBuilder::new().no_task().tool("fs", "look").build();
        let verdicts = run_task::<Probe>(json!({}), &[probe(), lone]).unwrap();
        assert_eq!(
            verdicts[1].reason, "",
            "an action without a task has no history"
        );
    }

    /// Returns whatever its settings say, however far past the bounds.
    struct Echo;

    impl Policy for Echo {
        type Settings = Value;

        fn describe() -> PluginInfo {
            PluginInfo::new("echo", "0.1.0", "test", "returns its settings")
        }

        fn evaluate(settings: &Value, _: &Action) -> Verdict {
            let mut verdict =
                Verdict::allow("x".repeat(settings["reason_bytes"].as_u64().unwrap_or(2) as usize));
            for i in 0..settings["obligations"].as_u64().unwrap_or(0) {
                verdict = verdict.with_obligation(Obligation::redact(format!("/{i}")));
            }
            verdict
        }
    }

    #[test]
    fn run_returns_what_the_host_would_receive() {
        let v = run::<Echo>(json!({"reason_bytes": 5000}), &look()).unwrap();
        assert_eq!(
            (v.effect, v.reason.len()),
            (Effect::Allow, crate::bounds::MAX_REASON_BYTES)
        );
        let v = run::<Echo>(json!({"obligations": 17}), &look()).unwrap();
        assert_eq!(v.effect, Effect::Deny);
        assert!(
            v.reason.contains("17 obligations, at most 16 allowed"),
            "{}",
            v.reason
        );
        let v = run_task::<Echo>(json!({"obligations": 17}), &[look()]).unwrap();
        assert_eq!(v[0].effect, Effect::Deny);
    }
}
