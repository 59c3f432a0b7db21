//! Contract `arbiter:policy@0.1.0`: its generated bindings, quarantined here, and the
//! conversions between them and the host's own types ([`crate::model`]). Nothing outside
//! `crate::contract` sees a generated type.

mod generated {
    #![allow(missing_docs, missing_debug_implementations, clippy::all)]

    wasmtime::component::bindgen!({
    path: "../wit/policy-0.1.0",
    world: "evaluator",
    // The action is lowered straight from the host's parsed action, borrowing its
    // strings instead of cloning them for every decision.
    ownership: Borrowing {
        duplicate_if_necessary: true
    },
    });
}

use super::{PluginInfo, Verdict, VerdictObligation};
use crate::model::{Action as HostAction, Effect};
use crate::runtime::{PluginLogLevel, StoreState};
use generated::arbiter::policy::{host, types as wit};
use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

/// The world this module implements.
pub const WORLD: &str = "arbiter:policy/evaluator@0.1.0";

/// Adds this version's `host` interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    generated::Evaluator::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)
}

/// A component checked against this version's world, ready to instantiate.
pub struct Pre(generated::EvaluatorPre<StoreState>);

impl Pre {
    /// Checks the component's exports against the world.
    pub fn new(pre: InstancePre<StoreState>) -> wasmtime::Result<Self> {
        generated::EvaluatorPre::new(pre).map(Self)
    }

    /// A new instance in `store`.
    pub fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Instance> {
        self.0.instantiate(store).map(Instance)
    }
}

/// A live instance of a 0.1.0 plugin.
pub struct Instance(generated::Evaluator);

impl Instance {
    /// `describe()`.
    pub fn describe(&self, store: &mut Store<StoreState>) -> wasmtime::Result<PluginInfo> {
        let info = self.0.call_describe(store)?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            kind: info.kind,
            description: info.description,
        })
    }

    /// `validate(settings)`.
    pub fn validate(
        &self,
        store: &mut Store<StoreState>,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        self.0.call_validate(store, settings)
    }

    /// `evaluate(action)`: lowers the host's action (its lists gathered once per decision
    /// in `lists`) at `time`.
    pub fn evaluate(
        &self,
        store: &mut Store<StoreState>,
        action: &HostAction,
        lists: &ActionLists<'_>,
        time: u64,
    ) -> wasmtime::Result<Verdict> {
        let delegation = lists.delegation(action);
        let lowered = lists.action(action, &delegation, time);
        let verdict = self.0.call_evaluate(store, lowered)?;
        Ok(Verdict {
            effect: effect_from_wit(verdict.effect),
            reason: verdict.reason,
            obligations: verdict
                .obligations
                .into_iter()
                .map(|o| VerdictObligation {
                    kind: o.kind,
                    detail: o.detail,
                })
                .collect(),
            labels: verdict.labels,
        })
    }
}

impl wit::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        let level = match level {
            wit::LogLevel::Trace => PluginLogLevel::Trace,
            wit::LogLevel::Debug => PluginLogLevel::Debug,
            wit::LogLevel::Info => PluginLogLevel::Info,
            wit::LogLevel::Warn => PluginLogLevel::Warn,
            wit::LogLevel::Error => PluginLogLevel::Error,
        };
        StoreState::log(self, level, &message);
    }

    fn settings(&mut self) -> String {
        StoreState::settings(self).to_owned()
    }

    fn history(&mut self) -> Vec<wit::HistoryEntry> {
        self.task()
            .entries
            .iter()
            .map(|h| wit::HistoryEntry {
                request_id: h.request_id.clone(),
                tool: wit::ToolResult {
                    server: h.server.clone(),
                    name: h.tool.clone(),
                },
                effect: effect_to_wit(h.effect),
                labels: h.labels.clone(),
                time: h.time,
            })
            .collect()
    }

    fn task_labels(&mut self) -> Vec<String> {
        self.task().labels.to_vec()
    }
}

/// Converts an effect for the guest.
fn effect_to_wit(effect: Effect) -> wit::Effect {
    match effect {
        Effect::Allow => wit::Effect::Allow,
        Effect::Deny => wit::Effect::Deny,
        Effect::StepUp => wit::Effect::StepUp,
        Effect::Abstain => wit::Effect::Abstain,
    }
}

/// Converts a guest effect.
fn effect_from_wit(effect: wit::Effect) -> Effect {
    match effect {
        wit::Effect::Allow => Effect::Allow,
        wit::Effect::Deny => Effect::Deny,
        wit::Effect::StepUp => Effect::StepUp,
        wit::Effect::Abstain => Effect::Abstain,
    }
}

/// The lists of a host action as the borrowed slices the WIT action is made of, plus its
/// arguments as JSON text. Built once per decision; the WIT action borrows from it and
/// from the host action, so lowering copies each string straight into the guest, with no
/// clone on the host.
#[derive(Debug)]
pub struct ActionLists<'a> {
    claims: Vec<(&'a str, &'a str)>,
    delegation_scopes: Vec<Vec<&'a str>>,
    credential_scopes: Vec<&'a str>,
    resource_labels: Vec<&'a str>,
    environment: Vec<(&'a str, &'a str)>,
    arguments: String,
}

fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

impl<'a> ActionLists<'a> {
    /// Gathers the lists of `action`.
    pub fn new(action: &'a HostAction) -> Self {
        Self {
            claims: pairs(&action.agent.claims),
            delegation_scopes: action.delegation.iter().map(|p| strs(&p.scopes)).collect(),
            credential_scopes: action
                .credential
                .as_ref()
                .map(|c| strs(&c.scopes))
                .unwrap_or_default(),
            resource_labels: action
                .resource
                .as_ref()
                .map(|r| strs(&r.labels))
                .unwrap_or_default(),
            environment: pairs(&action.environment),
            arguments: action.arguments.to_string(),
        }
    }

    /// The delegation chain, borrowing from `action` and these lists.
    fn delegation<'b>(&'b self, action: &'b HostAction) -> Vec<wit::Principal<'b>> {
        action
            .delegation
            .iter()
            .zip(&self.delegation_scopes)
            .map(|(p, scopes)| wit::Principal {
                id: &p.id,
                kind: &p.kind,
                scopes,
            })
            .collect()
    }

    /// The WIT action for `action` at `time`, with its `delegation` from
    /// [`ActionLists::delegation`].
    fn action<'b>(
        &'b self,
        action: &'b HostAction,
        delegation: &'b [wit::Principal<'b>],
        time: u64,
    ) -> wit::Action<'b> {
        wit::Action {
            request_id: &action.request_id,
            agent: wit::Agent {
                id: &action.agent.id,
                attestation: &action.agent.attestation,
                claims: &self.claims,
            },
            delegation,
            task: action.task.as_ref().map(|t| wit::Task {
                id: &t.id,
                intent: &t.intent,
                started_at: t.started_at,
                expires_at: t.expires_at,
            }),
            tool: wit::ToolParam {
                server: &action.tool.server,
                name: &action.tool.name,
            },
            arguments: &self.arguments,
            credential: action.credential.as_ref().map(|c| wit::Credential {
                scopes: &self.credential_scopes,
                expires_at: c.expires_at,
                audience: c.audience.as_deref(),
            }),
            resource: action.resource.as_ref().map(|r| wit::Resource {
                id: &r.id,
                labels: &self.resource_labels,
            }),
            environment: &self.environment,
            time,
        }
    }
}

fn pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
