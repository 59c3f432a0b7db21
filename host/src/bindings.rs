//! Generated bindings for the `arbiter:policy@0.1.0` contract, quarantined here.
//!
//! The rest of the host works with its own domain types ([`crate::action`],
//! [`crate::decision`]); this module converts them at the boundary. When a new contract
//! version is released it gets a sibling module, and the loader picks the module matching
//! the component's exports, so plugins built against either version keep working.

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

pub use self::arbiter::policy::types as wit;

use crate::action::Action as HostAction;

/// Converts an effect for the guest.
pub fn effect_to_wit(effect: crate::decision::Effect) -> wit::Effect {
    use crate::decision::Effect;
    match effect {
        Effect::Allow => wit::Effect::Allow,
        Effect::Deny => wit::Effect::Deny,
        Effect::StepUp => wit::Effect::StepUp,
        Effect::Abstain => wit::Effect::Abstain,
    }
}

/// Converts a guest effect.
pub fn effect_from_wit(effect: wit::Effect) -> crate::decision::Effect {
    use crate::decision::Effect;
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
    pub fn delegation<'b>(&'b self, action: &'b HostAction) -> Vec<wit::Principal<'b>> {
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
    pub fn action<'b>(
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
