//! # scope: least privilege at the moment of use
//!
//! Checks that the credential's scopes, narrowed by every principal of the delegation
//! chain, cover the scopes a tool requires; that the credential and the task are live
//! and bound to the right audience; that the chain is not too deep; and asks for human
//! approval for high-risk tools. See `README.md` for the settings and decisions.
//!
//! Effective rights are the **intersection** of the credential's scopes and each
//! principal's delegated scopes, never the union: a required scope is covered only when
//! the credential grants it *and* every principal in `action.delegation` delegated it.

mod settings;
#[cfg(test)]
mod tests;

pub use settings::{DEFAULT_MAX_DELEGATION_DEPTH, LongLived, Settings, UnknownTools};

use arbiter_guest::bounds::MAX_REASON_BYTES;
use arbiter_guest::prelude::*;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest piece of echoed input in a reason, in bytes.
const MAX_ECHO_BYTES: usize = 128;
/// How many principals a reason names for one missing scope before saying "and N more".
const MAX_NAMED_PRINCIPALS: usize = 3;

/// The scope policy.
#[derive(Debug)]
pub struct Scope;

/// Echoed input, made safe to quote and clipped ([`arbiter_guest::text::echo`]).
fn echo(text: &str) -> Cow<'_, str> {
    arbiter_guest::text::echo(text, MAX_ECHO_BYTES)
}

/// `server/name`, clipped.
fn tool_label(tool: &Tool) -> String {
    format!("{}/{}", echo(&tool.server), echo(&tool.name))
}

/// Whether `granted` covers `required`: equal strings, or (with `wildcard`) a granted
/// `prefix:*` and a required `prefix:` followed by at least one character.
fn grants_one(granted: &str, required: &str, wildcard: bool) -> bool {
    if granted == required {
        return true;
    }
    if !wildcard {
        return false;
    }
    match granted.strip_suffix(":*") {
        Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => required
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| !rest.is_empty()),
        _ => false,
    }
}

fn grants(granted: &[String], required: &str, wildcard: bool) -> bool {
    granted.iter().any(|g| grants_one(g, required, wildcard))
}

/// Appends why the rule's scopes are covered.
fn covered_reason(out: &mut String, rule: &settings::Rule, label: &str, delegation: &[Principal]) {
    if rule.scopes.is_empty() {
        let _ = write!(out, "tool `{label}` requires no scopes");
    } else {
        let _ = write!(
            out,
            "scopes {} required by `{label}` are granted by the credential",
            rule.scope_list
        );
        match delegation {
            [] => {}
            [only] => {
                let _ = write!(out, " and delegated by {}", principal_label(only));
            }
            all => {
                let _ = write!(out, " and delegated by all {} principals", all.len());
            }
        }
    }
}

fn principal_label(principal: &Principal) -> String {
    let kind = if principal.kind.is_empty() {
        Cow::Borrowed("principal")
    } else {
        echo(&principal.kind)
    };
    format!("{kind} `{}`", echo(&principal.id))
}

/// The reason for each required scope the effective rights lack, or `None` when all are
/// covered.
fn missing_scopes(
    settings: &Settings,
    action: &Action,
    credential: &Credential,
    required: &[String],
    tool: &str,
) -> Option<String> {
    let mut reason = String::new();
    for scope in required {
        let in_credential = grants(&credential.scopes, scope, settings.wildcard_scopes);
        let mut droppers = action
            .delegation
            .iter()
            .filter(|p| !grants(&p.scopes, scope, settings.wildcard_scopes));
        let first_dropper = droppers.next();
        if in_credential && first_dropper.is_none() {
            continue;
        }
        if !reason.is_empty() {
            reason.push_str("; ");
        }
        let _ = write!(reason, "scope `{scope}` required by `{tool}`");
        if let Some(first) = first_dropper {
            let _ = write!(reason, " was not delegated by {}", principal_label(first));
            let mut named = 1;
            let mut more = 0usize;
            for p in droppers {
                if named < MAX_NAMED_PRINCIPALS {
                    let _ = write!(reason, ", {}", principal_label(p));
                    named += 1;
                } else {
                    more += 1;
                }
            }
            if more > 0 {
                let _ = write!(reason, " and {more} more");
            }
            if !in_credential {
                reason.push_str(" and is not granted by the credential");
            }
        } else {
            reason.push_str(" is not granted by the credential");
        }
        if reason.len() > MAX_REASON_BYTES {
            break;
        }
    }
    (!reason.is_empty()).then_some(reason)
}

impl Policy for Scope {
    type Settings = Settings;

    fn describe() -> PluginInfo {
        PluginInfo::new(
            "scope",
            "0.1.0",
            "scope",
            "checks that the credential's scopes, intersected along the delegation chain, cover the tool's required scopes while the credential and task are live",
        )
    }

    fn evaluate(settings: &Settings, action: &Action) -> Verdict {
        let tool = &action.tool;
        let high_risk = settings.high_risk(tool);

        // 1. Which rule governs the tool.
        let Some((rule, _pattern)) = settings.rule_for(tool) else {
            if let Some(risky) = high_risk {
                return Verdict::deny(format!(
                    "high-risk tool `{}` (matches `{}`) matches no scope rule",
                    tool_label(tool),
                    risky.text
                ));
            }
            let reason = format!("tool `{}` matches no scope rule", tool_label(tool));
            return match settings.unknown_tools {
                UnknownTools::Deny => Verdict::deny(reason),
                UnknownTools::Abstain => Verdict::abstain(reason),
            };
        };
        let label = tool_label(tool);

        // 2. The task: present, started, not expired.
        match &action.task {
            None if settings.require_task => {
                return Verdict::deny(format!("tool `{label}` is called outside a task"));
            }
            None => {}
            Some(task) => {
                if task.started_at > action.time {
                    return Verdict::deny(format!(
                        "task `{}` has not started yet (starts at `{}`, request time `{}`)",
                        echo(&task.id),
                        task.started_at,
                        action.time
                    ));
                }
                if let Some(expires_at) = task.expires_at
                    && expires_at <= action.time
                {
                    return Verdict::deny(format!(
                        "task `{}` expired at `{expires_at}` (request time `{}`)",
                        echo(&task.id),
                        action.time
                    ));
                }
            }
        }

        // 3. The delegation chain: bounded depth, identified principals.
        let depth = action.delegation.len();
        if depth > settings.max_delegation_depth {
            return Verdict::deny(format!(
                "delegation chain of {depth} principals exceeds `max_delegation_depth` {}",
                settings.max_delegation_depth
            ));
        }
        if let Some(at) = action.delegation.iter().position(|p| p.id.is_empty()) {
            return Verdict::deny(format!(
                "delegation principal {} of {depth} has an empty id",
                at + 1
            ));
        }

        // 4. The credential: present when scopes are needed, live, audience-bound.
        let mut obligations = Vec::new();
        let credential = match &action.credential {
            None if !rule.scopes.is_empty() => {
                return Verdict::deny(format!(
                    "tool `{label}` requires scopes {} but the call carries no credential",
                    rule.scope_list
                ));
            }
            None => None,
            Some(credential) => {
                if let Some(expires_at) = credential.expires_at
                    && expires_at <= action.time
                {
                    return Verdict::deny(format!(
                        "credential expired at `{expires_at}` (request time `{}`)",
                        action.time
                    ));
                }
                match &credential.audience {
                    Some(audience) if *audience != tool.server => {
                        return Verdict::deny(format!(
                            "credential audience `{}` is not the tool's server `{}`",
                            echo(audience),
                            echo(&tool.server)
                        ));
                    }
                    None if settings.require_audience => {
                        return Verdict::deny(format!(
                            "credential has no audience; `require_audience` needs it bound to `{}`",
                            echo(&tool.server)
                        ));
                    }
                    _ => {}
                }
                if let Some(max_seconds) = settings.max_credential_ttl_seconds {
                    let max_ms = max_seconds.saturating_mul(1000);
                    let remaining = credential.expires_at.map(|e| e.saturating_sub(action.time));
                    let too_long = remaining.is_none_or(|r| r > max_ms);
                    if too_long {
                        match settings.long_lived_credentials {
                            LongLived::MaxTtl => {
                                obligations.extend(settings.max_ttl_obligation.clone())
                            }
                            LongLived::Deny => {
                                return Verdict::deny(match remaining {
                                    Some(r) => format!(
                                        "credential lives {}s more, beyond `max_credential_ttl_seconds` {max_seconds}",
                                        r.div_ceil(1000)
                                    ),
                                    None => format!(
                                        "credential has no expiry; `max_credential_ttl_seconds` is {max_seconds}"
                                    ),
                                });
                            }
                        }
                    }
                }
                Some(credential)
            }
        };

        // 5. Scopes: the intersection along the chain must cover every required scope.
        if let Some(credential) = credential
            && let Some(reason) = missing_scopes(settings, action, credential, &rule.scopes, &label)
        {
            return Verdict::deny(reason);
        }

        // 6. High-risk tools need approval once everything else passes.
        let mut reason = String::with_capacity(256);
        let mut verdict = match (
            high_risk,
            &settings.approver_group,
            &settings.approval_obligation,
        ) {
            (Some(risky), Some(group), Some(approval)) => {
                let _ = write!(reason, "tool `{label}` is high-risk");
                if risky.text != label {
                    let _ = write!(reason, " (matches `{}`)", risky.text);
                }
                let _ = write!(reason, " and needs approval by `{group}`; ");
                covered_reason(&mut reason, rule, &label, &action.delegation);
                Verdict::step_up(reason).with_obligation(approval.clone())
            }
            // Settings refuse high-risk tools without an approver group; fail closed anyway.
            (Some(risky), _, _) => {
                return Verdict::deny(format!(
                    "tool `{label}` is high-risk (matches `{}`) and no approver group is configured",
                    risky.text
                ));
            }
            (None, _, _) => {
                covered_reason(&mut reason, rule, &label, &action.delegation);
                Verdict::allow(reason)
            }
        };
        for obligation in obligations {
            verdict = verdict.with_obligation(obligation);
        }
        verdict
    }
}

arbiter_guest::export_policy!(Scope);
