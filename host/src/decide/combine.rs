//! Combining plugin verdicts into one decision: the host's job, not the plugins'.
//!
//! The rules, in order:
//!
//! 1. A plugin that failed (any outcome but `ok`) counts as its `on_error` effect:
//!    `deny` (the default), `step-up`, or `ignore` (counts as `abstain`; the failure is
//!    still recorded in the decision).
//! 2. Only plugins in `enforce` mode count; `monitor` plugins are evaluated and reported.
//! 3. Deny overrides: any counted `deny` → deny; else any `step-up` → step-up; else any
//!    `allow` → allow; `abstain` is ignored.
//! 4. When every counted plugin abstains (or none is configured), the configured
//!    `when_all_abstain` effect applies: `deny` unless the operator chose otherwise.
//! 5. Obligations are merged (duplicates removed, order kept) from the counted plugins
//!    whose effect equals the final effect.

use crate::config::{DefaultEffect, Mode, OnError};
use crate::model::{DecisionEffect, Effect, Obligation, Outcome, PluginEntry};

/// The effect that counts for a plugin, given how its evaluation went.
pub fn effective_effect(outcome: Outcome, verdict: Option<Effect>, on_error: OnError) -> Effect {
    match (outcome, verdict) {
        (Outcome::Ok, Some(effect)) => effect,
        // A failure, or an `ok` without a verdict (which cannot happen but must not allow).
        _ => match on_error {
            OnError::Deny => Effect::Deny,
            OnError::StepUp => Effect::StepUp,
            OnError::Ignore => Effect::Abstain,
        },
    }
}

/// The combined result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// Final effect.
    pub effect: DecisionEffect,
    /// One-line reason.
    pub reason: String,
    /// Merged obligations.
    pub obligations: Vec<Obligation>,
}

/// Combines plugin entries by the rules above.
pub fn combine(entries: &[PluginEntry], when_all_abstain: DefaultEffect) -> Combined {
    let counted = || {
        entries
            .iter()
            .filter(|e| e.counted && e.mode == Mode::Enforce)
    };
    let with = |effect: Effect| counted().filter(move |e| e.effect == effect);
    let final_effect = if with(Effect::Deny).next().is_some() {
        Some(DecisionEffect::Deny)
    } else if with(Effect::StepUp).next().is_some() {
        Some(DecisionEffect::StepUp)
    } else if with(Effect::Allow).next().is_some() {
        Some(DecisionEffect::Allow)
    } else {
        None
    };
    let Some(effect) = final_effect else {
        let effect = match when_all_abstain {
            DefaultEffect::Deny => DecisionEffect::Deny,
            DefaultEffect::StepUp => DecisionEffect::StepUp,
            DefaultEffect::Allow => DecisionEffect::Allow,
        };
        let reason = if counted().next().is_none() {
            format!(
                "no enforcing plugin took part; default `{}`",
                effect.as_str()
            )
        } else {
            format!(
                "every enforcing plugin abstained; default `{}`",
                effect.as_str()
            )
        };
        return Combined {
            effect,
            reason,
            obligations: Vec::new(),
        };
    };
    let deciders: Vec<&PluginEntry> = with(Effect::from(effect)).collect();
    let mut obligations: Vec<Obligation> = Vec::new();
    for entry in &deciders {
        for o in &entry.obligations {
            if !obligations
                .iter()
                .any(|x| x.kind == o.kind && x.detail == o.detail)
            {
                obligations.push(o.clone());
            }
        }
    }
    let verb = match effect {
        DecisionEffect::Allow => "allowed by",
        DecisionEffect::Deny => "denied by",
        DecisionEffect::StepUp => "step-up required by",
    };
    let reason = match deciders.as_slice() {
        [only] => format!("{verb} `{}`: {}", only.name, only.reason),
        many => {
            let names: Vec<String> = many.iter().map(|e| format!("`{}`", e.name)).collect();
            let first = many.first().map(|e| e.reason.as_str()).unwrap_or_default();
            format!("{verb} {}: {first}", names.join(", "))
        }
    };
    Combined {
        effect,
        reason,
        obligations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(
        name: &str,
        mode: Mode,
        outcome: Outcome,
        verdict: Option<Effect>,
        on_error: OnError,
    ) -> PluginEntry {
        let verdict = if outcome == Outcome::Ok {
            verdict
        } else {
            None
        };
        PluginEntry {
            name: name.to_owned(),
            plugin: name.to_owned(),
            version: "0.1.0".to_owned(),
            kind: "test".to_owned(),
            digest: "sha256:00".to_owned(),
            signer: Some("test".to_owned()),
            signature: crate::trust::SignatureStatus::Verified,
            mode,
            outcome,
            verdict,
            effect: effective_effect(outcome, verdict, on_error),
            counted: mode == Mode::Enforce,
            reason: format!("{name} says so"),
            obligations: vec![Obligation {
                kind: "log".to_owned(),
                detail: name.to_owned(),
                plugin: name.to_owned(),
            }],
            labels: Vec::new(),
            elapsed_us: 1,
        }
    }

    #[test]
    fn deny_overrides_step_up_overrides_allow() {
        let ok = |n, e| entry(n, Mode::Enforce, Outcome::Ok, Some(e), OnError::Deny);
        let c = combine(
            &[ok("a", Effect::Allow), ok("b", Effect::StepUp)],
            DefaultEffect::Deny,
        );
        assert_eq!(c.effect, DecisionEffect::StepUp);
        assert_eq!(c.obligations.len(), 1);
        assert_eq!(c.obligations[0].detail, "b");
        let c = combine(
            &[
                ok("a", Effect::Allow),
                ok("b", Effect::StepUp),
                ok("c", Effect::Deny),
            ],
            DefaultEffect::Allow,
        );
        assert_eq!(c.effect, DecisionEffect::Deny);
        assert!(c.reason.starts_with("denied by `c`"), "{}", c.reason);
    }

    #[test]
    fn all_abstain_uses_the_default() {
        let a = entry(
            "a",
            Mode::Enforce,
            Outcome::Ok,
            Some(Effect::Abstain),
            OnError::Deny,
        );
        assert_eq!(
            combine(std::slice::from_ref(&a), DefaultEffect::Deny).effect,
            DecisionEffect::Deny
        );
        assert_eq!(
            combine(&[a], DefaultEffect::Allow).effect,
            DecisionEffect::Allow
        );
        assert_eq!(
            combine(&[], DefaultEffect::Deny).effect,
            DecisionEffect::Deny
        );
    }

    #[test]
    fn monitor_never_counts() {
        let m = entry(
            "m",
            Mode::Monitor,
            Outcome::Ok,
            Some(Effect::Deny),
            OnError::Deny,
        );
        let a = entry(
            "a",
            Mode::Enforce,
            Outcome::Ok,
            Some(Effect::Allow),
            OnError::Deny,
        );
        assert_eq!(
            combine(&[m, a], DefaultEffect::Deny).effect,
            DecisionEffect::Allow
        );
    }

    #[test]
    fn failures_follow_on_error() {
        let a = entry(
            "a",
            Mode::Enforce,
            Outcome::Ok,
            Some(Effect::Allow),
            OnError::Deny,
        );
        for (on_error, expected) in [
            (OnError::Deny, DecisionEffect::Deny),
            (OnError::StepUp, DecisionEffect::StepUp),
            (OnError::Ignore, DecisionEffect::Allow),
        ] {
            let t = entry("t", Mode::Enforce, Outcome::Timeout, None, on_error);
            assert_eq!(
                combine(&[a.clone(), t], DefaultEffect::Deny).effect,
                expected
            );
        }
    }

    fn arb_effect() -> impl Strategy<Value = Effect> {
        prop_oneof![
            Just(Effect::Allow),
            Just(Effect::Deny),
            Just(Effect::StepUp),
            Just(Effect::Abstain)
        ]
    }
    fn arb_outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Ok),
            Just(Outcome::Trap),
            Just(Outcome::Timeout),
            Just(Outcome::OutOfMemory),
            Just(Outcome::InvalidOutput),
            Just(Outcome::Error)
        ]
    }
    fn arb_entry() -> impl Strategy<Value = PluginEntry> {
        (
            prop_oneof![Just(Mode::Enforce), Just(Mode::Monitor)],
            arb_outcome(),
            arb_effect(),
            prop_oneof![
                Just(OnError::Deny),
                Just(OnError::StepUp),
                Just(OnError::Ignore)
            ],
        )
            .prop_map(|(mode, outcome, verdict, on_error)| {
                entry("p", mode, outcome, Some(verdict), on_error)
            })
    }

    proptest! {
        /// With the default `when_all_abstain = deny`, a decision allows only if an
        /// enforcing plugin returned allow with outcome ok, and no enforcing plugin
        /// denied, stepped up, or failed with a non-ignore on-error.
        #[test]
        fn allow_needs_an_enforcing_ok_allow_and_no_objection(entries in prop::collection::vec(arb_entry(), 0..8)) {
            let c = combine(&entries, DefaultEffect::Deny);
            let enforcing: Vec<&PluginEntry> = entries.iter().filter(|e| e.mode == Mode::Enforce).collect();
            let some_allow = enforcing.iter().any(|e| e.outcome == Outcome::Ok && e.verdict == Some(Effect::Allow));
            let objection = enforcing.iter().any(|e| matches!(e.effect, Effect::Deny | Effect::StepUp));
            prop_assert_eq!(c.effect == DecisionEffect::Allow, some_allow && !objection);
            // Whatever the default, a counted deny always wins.
            for default in [DefaultEffect::Allow, DefaultEffect::StepUp, DefaultEffect::Deny] {
                let c = combine(&entries, default);
                if enforcing.iter().any(|e| e.effect == Effect::Deny) {
                    prop_assert_eq!(c.effect, DecisionEffect::Deny);
                }
            }
        }

        /// Obligations come only from counted plugins whose effect is the final one.
        #[test]
        fn obligations_come_from_deciders(entries in prop::collection::vec(arb_entry(), 0..8)) {
            let c = combine(&entries, DefaultEffect::Deny);
            for o in &c.obligations {
                prop_assert!(entries.iter().any(|e| e.counted && Effect::from(c.effect) == e.effect && e.name == o.plugin));
            }
        }
    }
}
