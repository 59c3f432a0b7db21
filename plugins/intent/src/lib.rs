//! # intent: does this tool call fit the task's declared intent?
//!
//! Settings map each intent to the tools it may use (`server/name` patterns with an
//! optional trailing `*`), each with optional argument constraints: a path under
//! allowed roots, a URL to allowed hosts, one read-only SQL statement, e-mail
//! addresses at allowed domains. A call is allowed (or sent to step-up, if its rule
//! says so) when a rule of the task's intent matches the tool and all of that rule's
//! constraints pass; everything else is denied: no task, no or unknown intent, a tool
//! outside the intent, a constraint that fails, a missing or mistyped argument.
//! See `README.md` for the settings and example decisions.

mod hosts;
mod path;
mod settings;
mod sql;
#[cfg(test)]
mod tests;
mod text;

pub use settings::{Constraint, Intent as IntentRules, Rule, RuleEffect, Settings};

use arbiter_guest::prelude::*;
use text::{echo, type_name};

/// The intent policy.
#[derive(Debug)]
pub struct Intent;

/// The string argument at `pointer`: `Ok(None)` when absent (or `null`) and optional.
fn string_arg<'a>(
    action: &'a Action,
    pointer: &str,
    required: bool,
) -> Result<Option<&'a str>, String> {
    match action.argument(pointer) {
        None | Some(Value::Null) if required => {
            Err(format!("required argument `{}` is missing", echo(pointer)))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "argument `{}` must be a string, not {}",
            echo(pointer),
            type_name(other)
        )),
    }
}

impl Constraint {
    fn check(&self, action: &Action) -> Result<(), String> {
        match self {
            Self::Path(c) => {
                string_arg(action, &c.argument, c.required)?.map_or(Ok(()), |v| c.check(v))
            }
            Self::Url(c) => {
                string_arg(action, &c.argument, c.required)?.map_or(Ok(()), |v| c.check(v))
            }
            Self::Sql(c) => {
                string_arg(action, &c.argument, c.required)?.map_or(Ok(()), |v| c.check(v))
            }
            Self::Email(c) => {
                let pointer = echo(&c.argument);
                match action.argument(&c.argument) {
                    None | Some(Value::Null) if c.required => {
                        Err(format!("required argument `{pointer}` is missing"))
                    }
                    None | Some(Value::Null) => Ok(()),
                    Some(Value::String(s)) => c.check(s),
                    Some(Value::Array(items)) if items.is_empty() && c.required => {
                        Err(format!("required argument `{pointer}` is an empty list"))
                    }
                    Some(Value::Array(items)) => items.iter().try_for_each(|item| match item {
                        Value::String(s) => c.check(s),
                        other => Err(format!(
                            "argument `{pointer}` must hold strings, not {}",
                            type_name(other)
                        )),
                    }),
                    Some(other) => Err(format!(
                        "argument `{pointer}` must be a string or an array of strings, not {}",
                        type_name(other)
                    )),
                }
            }
        }
    }
}

impl Rule {
    fn check(&self, action: &Action) -> Result<(), String> {
        self.constraints.iter().try_for_each(|c| c.check(action))
    }
}

fn decide(settings: &Settings, action: &Action) -> Verdict {
    let tool = format!("{}/{}", echo(&action.tool.server), echo(&action.tool.name));
    let Some(task) = &action.task else {
        return Verdict::deny(format!(
            "tool `{tool}` is denied: the action has no task, so no declared intent"
        ));
    };
    if task.intent.is_empty() {
        return Verdict::deny(format!(
            "tool `{tool}` is denied: task `{}` declares no intent",
            echo(&task.id)
        ));
    }
    let intent = echo(&task.intent);
    let Some(rules) = settings.intents.get(&task.intent) else {
        return Verdict::deny(format!(
            "tool `{tool}` is denied: intent `{intent}` is not configured"
        ));
    };
    let mut first_failure: Option<String> = None;
    for rule in &rules.rules {
        if !rule.pattern.matches_tool(&action.tool) {
            continue;
        }
        let name = echo(&rule.name);
        // A listing preview has no arguments: the tool fits the intent if a rule names
        // it; its constraints are checked on the real call.
        let checked = if action.is_listing() {
            Ok(())
        } else {
            rule.check(action)
        };
        match checked {
            Ok(()) => {
                log::debug(&format!(
                    "intent `{intent}`: rule `{name}` matched tool `{tool}`"
                ));
                return match rule.effect {
                    RuleEffect::Allow => Verdict::allow(format!(
                        "tool `{tool}` fits intent `{intent}` (rule `{name}`)"
                    )),
                    RuleEffect::StepUp => {
                        let verdict = Verdict::step_up(format!(
                            "tool `{tool}` fits intent `{intent}` (rule `{name}`) but needs step-up"
                        ));
                        match &rule.approver {
                            Some(approver) => verdict
                                .with_obligation(Obligation::require_approval(approver.clone())),
                            None => verdict,
                        }
                    }
                };
            }
            Err(why) => {
                log::debug(&format!(
                    "intent `{intent}`: rule `{name}` matched tool `{tool}` but failed: {why}"
                ));
                if first_failure.is_none() {
                    first_failure = Some(format!(
                        "tool `{tool}` is denied for intent `{intent}` by rule `{name}`: {why}"
                    ));
                }
            }
        }
    }
    Verdict::deny(first_failure.unwrap_or_else(|| {
        log::debug(&format!("intent `{intent}`: no rule matches tool `{tool}`"));
        format!("tool `{tool}` is not allowed for intent `{intent}`")
    }))
}

impl Policy for Intent {
    type Settings = Settings;

    fn describe() -> PluginInfo {
        PluginInfo::new(
            "intent",
            "0.1.0",
            "intent",
            "denies tool calls that do not fit the task's declared intent (tools, paths, hosts, read-only SQL)",
        )
    }

    /// The SDK clips the reason to the contract's bound on the way out.
    fn evaluate(settings: &Settings, action: &Action) -> Verdict {
        decide(settings, action)
    }
}

arbiter_guest::export_policy!(Intent);
