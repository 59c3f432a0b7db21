//! The benchmark comparison is like for like: on every benchmark input, Arbiter (the
//! three reference plugins, as benchmarked) and every peer engine (Cedar, the regorus
//! interpreter and RVM) reach the same effect, with and without the growth benchmark's
//! synthetic rules. The peers' own unit tests (in `peers.rs`) run in the same test
//! binary: they cover many more variations among the peers.

use crate::peers::{CedarPeer, INPUTS, PeerEffect, RegoInterpreter, RegoRvm, Rules};
use crate::support;
use arbiter_host::DecisionEffect;

fn arbiter_effect(effect: DecisionEffect) -> PeerEffect {
    match effect {
        DecisionEffect::Allow => PeerEffect::Allow,
        DecisionEffect::Deny => PeerEffect::Deny,
        DecisionEffect::StepUp => PeerEffect::StepUp,
    }
}

#[test]
fn every_engine_reaches_the_same_effect_on_every_benchmark_input() {
    for extra in [0, 50] {
        let arbiter =
            support::arbiter_with_rules("task", &["intent", "scope", "sensitivity"], extra);
        let rules = Rules::reference(extra);
        let cedar = CedarPeer::new(&rules).unwrap();
        let mut interpreter = RegoInterpreter::new(&rules).unwrap();
        let mut rvm = RegoRvm::new(&rules).unwrap();
        for (name, json, expected) in INPUTS {
            // Twice: the second time runs in the task's reused instances, with history.
            for round in 0..2 {
                let decision = arbiter.decide_json(json).unwrap();
                assert_eq!(
                    arbiter_effect(decision.effect),
                    *expected,
                    "arbiter, {name}, {extra} extra rules, round {round}: {decision:#?}"
                );
                for plugin in &decision.plugins {
                    assert!(
                        plugin.outcome == arbiter_host::Outcome::Ok,
                        "{name}: plugin {} did not evaluate: {plugin:#?}",
                        plugin.name
                    );
                }
            }
            let context = format!("{name}, {extra} extra rules");
            assert_eq!(
                cedar.decide_json(json).unwrap(),
                *expected,
                "cedar, {context}"
            );
            assert_eq!(
                interpreter.decide_json(json).unwrap(),
                *expected,
                "rego interpreter, {context}"
            );
            assert_eq!(
                rvm.decide_json(json).unwrap(),
                *expected,
                "rego rvm, {context}"
            );
        }
    }
}

#[test]
fn the_synthetic_rules_are_live_in_arbiter_too() {
    // A call to a synthetic tool within its synthetic intent, with its scope: allowed by
    // the grown rules, denied by the reference ones. So the growth benchmark really makes
    // Arbiter carry (and look past) those rules.
    let json = INPUTS[0]
        .1
        .replace("summarize-repo", "synthetic-7")
        .replace(
            r#""server": "fs", "name": "read_file""#,
            r#""server": "svc7", "name": "op7""#,
        )
        .replace(r#""audience": "fs""#, r#""audience": "svc7""#)
        .replace(r#"["fs:read", "repo:read"]"#, r#"["svc7:use"]"#);
    let grown = support::arbiter_with_rules("task", &["intent", "scope", "sensitivity"], 50);
    let decision = grown.decide_json(&json).unwrap();
    assert_eq!(decision.effect, DecisionEffect::Allow, "{decision:#?}");
    let reference = support::arbiter_with_rules("task", &["intent", "scope", "sensitivity"], 0);
    assert_eq!(
        reference.decide_json(&json).unwrap().effect,
        DecisionEffect::Deny
    );
    let mut rvm = RegoRvm::new(&Rules::reference(50)).unwrap();
    assert_eq!(rvm.decide_json(&json).unwrap(), PeerEffect::Allow);
}
