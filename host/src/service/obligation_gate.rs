//! Obligations an adapter cannot carry out fail closed: an adapter that forwards calls
//! (the MCP gateway) tells the service which obligation kinds it applies, and an allow
//! carrying any other kind becomes a deny *in the pipeline*, before the task
//! history and the decision log record it. So the history, the log and the client all
//! see the same answer, and no adapter rewrites a decision after the fact.

use crate::decide::PostDecision;
use crate::model::{Action, Decision, DecisionEffect};

/// The obligation kind that asks for an argument to be hidden before the call runs;
/// its detail is a JSON pointer into the arguments (`""`: all of them).
pub const REDACT: &str = "redact";
/// The obligation kind that asks for the call to be logged (every decision is).
pub const LOG: &str = "log";

/// The post-decision stage: see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct ObligationGate<'a> {
    /// The kinds the adapter applies.
    pub enforces: &'a [&'a str],
}

impl ObligationGate<'_> {
    /// Why the adapter cannot carry out `decision`'s obligations on `action`, if so.
    pub fn refusal(&self, action: &Action, decision: &Decision) -> Option<String> {
        for obligation in &decision.obligations {
            if !self.enforces.contains(&obligation.kind.as_str()) {
                return Some(format!(
                    "denied: obligation `{}` from plugin `{}` cannot be carried out by this adapter (it applies {}); failing closed",
                    obligation.kind,
                    obligation.plugin,
                    self.enforces
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
            }
            if obligation.kind == REDACT && action.arguments.pointer(&obligation.detail).is_none() {
                return Some(format!(
                    "denied: obligation `redact` from plugin `{}` names `{}`, which is not in the arguments; failing closed",
                    obligation.plugin, obligation.detail
                ));
            }
        }
        None
    }
}

impl PostDecision for ObligationGate<'_> {
    fn after_decision(&self, action: &Action, decision: &mut Decision) {
        // Only an allow lets a call run. A step-up's obligations (`require-approval`)
        // say how to complete it, and a deny's do not matter.
        if decision.effect != DecisionEffect::Allow {
            return;
        }
        if let Some(reason) = self.refusal(action, decision) {
            tracing::warn!(decision_id = %decision.decision_id, %reason, "obligation not enforceable");
            decision.effect = DecisionEffect::Deny;
            decision.reason = reason;
            decision.obligations.clear();
        }
    }
}

/// An optional stage: runs when present.
impl<T: PostDecision> PostDecision for Option<T> {
    fn after_decision(&self, action: &Action, decision: &mut Decision) {
        if let Some(stage) = self {
            stage.after_decision(action, decision);
        }
    }

    fn audit(&self, action: &Action, decision: &mut Decision) {
        if let Some(stage) = self {
            stage.audit(action, decision);
        }
    }
}

/// Runs two stages in order.
#[derive(Debug)]
pub struct Stages<A, B>(pub A, pub B);

impl<A: PostDecision, B: PostDecision> PostDecision for Stages<A, B> {
    fn after_decision(&self, action: &Action, decision: &mut Decision) {
        self.0.after_decision(action, decision);
        self.1.after_decision(action, decision);
    }

    fn audit(&self, action: &Action, decision: &mut Decision) {
        self.0.audit(action, decision);
        self.1.audit(action, decision);
    }
}

/// Hides the values at `pointer` in `arguments` as the `redact` obligation asks: the
/// value there becomes `"[REDACTED]"`, or, for an object or array (the whole arguments
/// for `""`), every value inside it does, so the call keeps its shape. Returns false if
/// the pointer names nothing.
pub fn redact(arguments: &mut serde_json::Value, pointer: &str) -> bool {
    let Some(target) = arguments.pointer_mut(pointer) else {
        return false;
    };
    hide(target);
    true
}

/// The text that replaces a redacted value.
pub const REDACTED_VALUE: &str = "[REDACTED]";

fn hide(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => map.values_mut().for_each(hide),
        serde_json::Value::Array(items) => items.iter_mut().for_each(hide),
        other => *other = serde_json::Value::String(REDACTED_VALUE.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Obligation;
    use serde_json::json;

    fn decision(effect: DecisionEffect, obligations: &[(&str, &str)]) -> Decision {
        Decision {
            decision_id: "d".to_owned(),
            request_id: "r".to_owned(),
            task_id: None,
            time: String::new(),
            effect,
            reason: "because".to_owned(),
            generation: 1,
            obligations: obligations
                .iter()
                .map(|(kind, detail)| Obligation {
                    kind: (*kind).to_owned(),
                    detail: (*detail).to_owned(),
                    plugin: "p".to_owned(),
                })
                .collect(),
            plugins: Vec::new(),
            elapsed_us: 0,
            identity: None,
            credential: None,
            quarantine: None,
            tasks: None,
            approval: None,
        }
    }

    fn gated(effect: DecisionEffect, obligations: &[(&str, &str)]) -> Decision {
        let action = crate::model::Action::from_json(
            r#"{"request_id":"r","agent":{"id":"a"},"tool":{"server":"s","name":"t"},"arguments":{"body":"x"}}"#,
        )
        .unwrap();
        let mut d = decision(effect, obligations);
        ObligationGate {
            enforces: &[REDACT, LOG],
        }
        .after_decision(&action, &mut d);
        d
    }

    #[test]
    fn an_allow_with_an_obligation_the_adapter_cannot_apply_is_a_deny() {
        let d = gated(DecisionEffect::Allow, &[("redact", "/body"), ("log", "")]);
        assert_eq!(d.effect, DecisionEffect::Allow, "{}", d.reason);
        let d = gated(DecisionEffect::Allow, &[("max-ttl", "900")]);
        assert_eq!(d.effect, DecisionEffect::Deny);
        assert!(
            d.reason
                .contains("obligation `max-ttl` from plugin `p` cannot be carried out"),
            "{}",
            d.reason
        );
        assert!(d.obligations.is_empty());
        let d = gated(DecisionEffect::Allow, &[("redact", "/nowhere")]);
        assert_eq!(d.effect, DecisionEffect::Deny);
        assert!(
            d.reason
                .contains("`/nowhere`, which is not in the arguments"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_step_up_keeps_its_approval_obligations() {
        let d = gated(DecisionEffect::StepUp, &[("require-approval", "ops")]);
        assert_eq!(d.effect, DecisionEffect::StepUp);
        assert_eq!(d.obligations.len(), 1);
    }

    #[test]
    fn redact_hides_the_value_or_everything_inside_it() {
        let mut args = json!({"to": "a@b", "body": {"text": "secret", "n": [1, 2]}});
        assert!(redact(&mut args, "/body"));
        assert_eq!(
            args,
            json!({"to": "a@b", "body": {"text": "[REDACTED]", "n": ["[REDACTED]", "[REDACTED]"]}})
        );
        assert!(redact(&mut args, ""));
        assert_eq!(args["to"], "[REDACTED]");
        assert!(!redact(&mut args, "/missing"));
    }
}
