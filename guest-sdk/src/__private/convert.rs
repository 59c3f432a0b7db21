//! Conversions between generated WIT types and the SDK's types.

use super::bindings as b;
use super::bindings::arbiter::policy::types as t;
use crate::task_context::TaskContext;
use crate::{
    Action, Agent, Credential, Effect, HistoryEntry, PluginInfo, Principal, Resource, Task, Tool,
    Verdict,
};

fn effect_from_wit(effect: t::Effect) -> Effect {
    match effect {
        t::Effect::Allow => Effect::Allow,
        t::Effect::Deny => Effect::Deny,
        t::Effect::StepUp => Effect::StepUp,
        t::Effect::Abstain => Effect::Abstain,
    }
}

fn effect_to_wit(effect: Effect) -> t::Effect {
    match effect {
        Effect::Allow => t::Effect::Allow,
        Effect::Deny => t::Effect::Deny,
        Effect::StepUp => t::Effect::StepUp,
        Effect::Abstain => t::Effect::Abstain,
    }
}

fn tool_from_wit(tool: t::Tool) -> Tool {
    Tool {
        server: tool.server,
        name: tool.name,
    }
}

/// Converts the host's action; arguments that are not JSON are an error (the host
/// guarantees JSON, so this only guards against a misbehaving host).
pub fn action_from_wit(action: b::Action) -> Result<Action, String> {
    let arguments = serde_json::from_str(&action.arguments)
        .map_err(|e| format!("action arguments are not valid JSON: {e}"))?;
    Ok(Action {
        request_id: action.request_id,
        agent: Agent {
            id: action.agent.id,
            attestation: action.agent.attestation,
            claims: action.agent.claims.into_iter().collect(),
        },
        delegation: action
            .delegation
            .into_iter()
            .map(|p| Principal {
                id: p.id,
                kind: p.kind,
                scopes: p.scopes,
            })
            .collect(),
        task: action.task.map(|t| Task {
            id: t.id,
            intent: t.intent,
            started_at: t.started_at,
            expires_at: t.expires_at,
        }),
        tool: tool_from_wit(action.tool),
        arguments,
        credential: action.credential.map(|c| Credential {
            scopes: c.scopes,
            expires_at: c.expires_at,
            audience: c.audience,
        }),
        resource: action.resource.map(|r| Resource {
            id: r.id,
            labels: r.labels,
        }),
        environment: action.environment.into_iter().collect(),
        time: action.time,
        task_context: TaskContext::default(),
    })
}

/// Converts the host's history entries.
pub fn history_from_wit(history: Vec<t::HistoryEntry>) -> Vec<HistoryEntry> {
    history
        .into_iter()
        .map(|h| HistoryEntry {
            request_id: h.request_id,
            tool: tool_from_wit(h.tool),
            effect: effect_from_wit(h.effect),
            labels: h.labels,
            time: h.time,
        })
        .collect()
}

/// Converts a verdict for the host.
pub fn verdict_to_wit(verdict: Verdict) -> b::Verdict {
    b::Verdict {
        effect: effect_to_wit(verdict.effect),
        reason: verdict.reason,
        obligations: verdict
            .obligations
            .into_iter()
            .map(|o| t::Obligation {
                kind: o.kind,
                detail: o.detail,
            })
            .collect(),
        labels: verdict.labels,
    }
}

/// Converts plugin metadata for the host.
pub fn info_to_wit(info: PluginInfo) -> b::PluginInfo {
    b::PluginInfo {
        name: info.name,
        version: info.version,
        kind: info.kind,
        description: info.description,
    }
}
