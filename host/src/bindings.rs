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

/// Builds the WIT action from the host's action and its time. The task's history is not
/// part of it: plugins ask for it through `host.history` when they need it.
pub fn action_to_wit(action: &HostAction, time: u64) -> wit::Action {
    wit::Action {
        request_id: action.request_id.clone(),
        agent: wit::Agent {
            id: action.agent.id.clone(),
            attestation: action.agent.attestation.clone(),
            claims: action
                .agent
                .claims
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        delegation: action
            .delegation
            .iter()
            .map(|p| wit::Principal {
                id: p.id.clone(),
                kind: p.kind.clone(),
                scopes: p.scopes.clone(),
            })
            .collect(),
        task: action.task.as_ref().map(|t| wit::Task {
            id: t.id.clone(),
            intent: t.intent.clone(),
            started_at: t.started_at,
            expires_at: t.expires_at,
        }),
        tool: wit::Tool {
            server: action.tool.server.clone(),
            name: action.tool.name.clone(),
        },
        arguments: action.arguments.to_string(),
        credential: action.credential.as_ref().map(|c| wit::Credential {
            scopes: c.scopes.clone(),
            expires_at: c.expires_at,
            audience: c.audience.clone(),
        }),
        resource: action.resource.as_ref().map(|r| wit::Resource {
            id: r.id.clone(),
            labels: r.labels.clone(),
        }),
        environment: action
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        time,
    }
}
