//! Adversarial plugins: each attack yields the right outcome and a fail-closed decision,
//! and the host stays healthy (a good plugin answers correctly in the very next decision).

use crate::common::*;
use arbiter_host::{Arbiter, DecisionEffect, Effect, LoadError, Outcome};

/// Runs `behaviour` in a plugin next to a good `allow` plugin and checks the outcome,
/// the fail-closed effect, and that a following decision with a healthy plugin works.
fn assert_contained(behaviour: &str, extra: &str, expected: Outcome) -> arbiter_host::Decision {
    let toml = format!(
        "{}{}",
        echo("good", "allow", ""),
        misbehave("bad", behaviour, extra)
    );
    let arbiter = arbiter(&toml);
    let decision = arbiter.decide(&action("r1", Some("t1")));
    let bad = &decision.plugins[1];
    assert_eq!(bad.outcome, expected, "{behaviour}: {bad:?}");
    assert_eq!(bad.verdict, None);
    assert_eq!(bad.effect, Effect::Deny, "on_error defaults to deny");
    assert_eq!(
        decision.effect,
        DecisionEffect::Deny,
        "{behaviour} must fail closed"
    );
    assert!(decision.reason.contains("`bad`"), "{}", decision.reason);
    // The very next decision, same task (the faulted instance must not be reused) and a
    // new task: the good plugin still answers, the bad one fails the same way again.
    for (request, task) in [("r2", "t1"), ("r3", "t2")] {
        let next = arbiter.decide(&action(request, Some(task)));
        assert_eq!(next.plugins[0].outcome, Outcome::Ok);
        assert_eq!(next.plugins[0].verdict, Some(Effect::Allow));
        assert_eq!(next.plugins[1].outcome, expected);
    }
    decision
}

#[test]
fn infinite_loop_times_out() {
    let d = assert_contained("loop", "timeout_ms = 20", Outcome::Timeout);
    assert!(
        d.plugins[1].reason.contains("deadline of 20 ms"),
        "{}",
        d.plugins[1].reason
    );
}

#[test]
fn memory_bomb_is_out_of_memory() {
    let d = assert_contained(
        "memory-bomb",
        "memory_limit_mib = 16\ntimeout_ms = 5000",
        Outcome::OutOfMemory,
    );
    assert!(
        d.plugins[1].reason.contains("16 MiB"),
        "{}",
        d.plugins[1].reason
    );
}

#[test]
fn unbounded_recursion_traps() {
    // Recursion on the wasm stack hits wasmtime's stack limit.
    let d = assert_contained("recurse", "", Outcome::Trap);
    assert!(
        d.plugins[1].reason.contains("call stack exhausted"),
        "{}",
        d.plugins[1].reason
    );
    // Recursion with big frames overflows the guest's shadow stack in linear memory first,
    // which the sandbox catches as an out-of-bounds access.
    let d = assert_contained("recurse-shadow-stack", "", Outcome::Trap);
    assert!(
        d.plugins[1].reason.contains("out of bounds"),
        "{}",
        d.plugins[1].reason
    );
}

#[test]
fn explicit_trap_traps() {
    assert_contained("trap", "", Outcome::Trap);
}

#[test]
fn panic_traps() {
    assert_contained("panic", "", Outcome::Trap);
}

#[test]
fn oversized_reason_is_invalid_output() {
    let d = assert_contained(
        "huge-reason",
        "memory_limit_mib = 64\ntimeout_ms = 5000",
        Outcome::InvalidOutput,
    );
    assert!(
        d.plugins[1].reason.contains("reason is 8388608 bytes"),
        "{}",
        d.plugins[1].reason
    );
}

#[test]
fn too_many_obligations_is_invalid_output() {
    assert_contained("many-obligations", "", Outcome::InvalidOutput);
}

#[test]
fn files_environment_network_and_clock_are_denied() {
    let toml = [
        misbehave("file", "read-file", ""),
        misbehave("env", "read-env", ""),
        misbehave("net", "connect", ""),
        misbehave("clock", "clock", ""),
    ]
    .concat();
    let arbiter = arbiter(&toml);
    // The test process has environment variables and /etc/passwd exists.
    assert!(std::env::vars().count() > 0);
    let d = arbiter.decide(&action("r1", Some("t1")));
    let reason = |i: usize| d.plugins[i].reason.clone();
    assert!(d.plugins.iter().all(|p| p.outcome == Outcome::Ok), "{d:?}");
    assert!(reason(0).starts_with("file denied"), "{}", reason(0));
    assert_eq!(reason(1), "env vars: 0");
    assert!(reason(2).starts_with("network denied"), "{}", reason(2));
    assert_eq!(
        reason(3),
        "clock: 0",
        "the wall clock is frozen at the epoch"
    );
    assert_eq!(d.effect, DecisionEffect::Deny);
}

#[test]
fn log_flood_is_capped_and_does_not_fail() {
    let arbiter = arbiter(&misbehave("flood", "log-flood", "timeout_ms = 2000"));
    let d = arbiter.decide(&action("r1", None));
    assert_eq!(d.plugins[0].outcome, Outcome::Ok, "{:?}", d.plugins[0]);
    assert_eq!(d.effect, DecisionEffect::Allow);
}

#[test]
fn on_error_step_up_and_ignore_are_honoured() {
    let toml = format!(
        "{}{}",
        echo("good", "allow", ""),
        misbehave("bad", "trap", "on_error = \"step-up\"")
    );
    let d = arbiter(&toml).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::StepUp);
    let toml = format!(
        "{}{}",
        echo("good", "allow", ""),
        misbehave("bad", "trap", "on_error = \"ignore\"")
    );
    let d = arbiter(&toml).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Allow);
    assert_eq!(
        d.plugins[1].outcome,
        Outcome::Trap,
        "the failure is still recorded"
    );
    assert_eq!(d.plugins[1].effect, Effect::Abstain);
}

#[test]
fn monitor_mode_is_reported_not_enforced() {
    let toml = format!(
        "{}{}",
        echo("good", "allow", ""),
        echo("shadow", "deny", "mode = \"monitor\"")
    );
    let d = arbiter(&toml).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Allow);
    assert_eq!(d.plugins[1].verdict, Some(Effect::Deny));
    assert!(!d.plugins[1].counted);
}

#[test]
fn obligations_merge_from_deciding_plugins() {
    let toml = format!(
        "{}{}{}",
        echo("a", "allow", ""),
        echo("b", "step-up", ""),
        echo("c", "step-up", "")
    );
    let d = arbiter(&toml).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::StepUp);
    // b and c both require approval by `oncall`: merged into one; a's `log` is not there.
    assert_eq!(d.obligations.len(), 1, "{:?}", d.obligations);
    assert_eq!(d.obligations[0].kind, "require-approval");
}

#[test]
fn all_abstain_follows_the_default() {
    let d = arbiter(&echo("a", "abstain", "")).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Deny);
    let toml = format!(
        "[defaults]\nwhen_all_abstain = \"allow\"\n{}",
        echo("a", "abstain", "")
    );
    let d = arbiter(&toml).decide(&action("r1", None));
    assert_eq!(d.effect, DecisionEffect::Allow);
}

fn load_error(toml: &str) -> LoadError {
    match Arbiter::new(&config(toml)) {
        Ok(_) => panic!("expected a load error"),
        Err(e) => e,
    }
}

#[test]
fn wrong_world_is_a_load_error_naming_what_is_missing() {
    let dir = std::env::temp_dir().join(format!("arbiter-wrong-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A component that exports a `describe` of the wrong type and no `evaluate`.
    let wrong = wat::parse_str(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 7))
            (core instance $i (instantiate $m))
            (func (export "describe") (result u32) (canon lift (core func $i "f"))))"#,
    )
    .unwrap();
    std::fs::write(dir.join("wrong.wasm"), wrong).unwrap();
    sign_with_dev_key(&dir.join("wrong.wasm"));
    let toml = format!(
        "[[plugin]]\nname = \"wrong\"\npath = \"{}\"\n",
        dir.join("wrong.wasm").display()
    );
    let err = load_error(&toml);
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("plugin `wrong`"), "{message}");
    assert!(message.contains("evaluator"), "{message}");

    // A core module is not a component.
    let core = wat::parse_str("(module)").unwrap();
    std::fs::write(dir.join("core.wasm"), core).unwrap();
    sign_with_dev_key(&dir.join("core.wasm"));
    let toml = format!(
        "[[plugin]]\nname = \"core\"\npath = \"{}\"\n",
        dir.join("core.wasm").display()
    );
    let err = load_error(&toml);
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");

    // A component importing an interface Arbiter does not provide.
    let importer = wat::parse_str(
        r#"(component (import "acme:evil/exfil@1.0.0" (instance (export "send" (func (param "x" string))))))"#,
    )
    .unwrap();
    std::fs::write(dir.join("importer.wasm"), importer).unwrap();
    sign_with_dev_key(&dir.join("importer.wasm"));
    let toml = format!(
        "[[plugin]]\nname = \"importer\"\npath = \"{}\"\n",
        dir.join("importer.wasm").display()
    );
    let err = load_error(&toml);
    assert!(matches!(err, LoadError::Imports { .. }), "{err}");
    assert!(err.to_string().contains("acme:evil/exfil"), "{err}");

    // A missing file names the plugin and the path.
    let err = load_error("[[plugin]]\nname = \"ghost\"\npath = \"build/plugins/ghost.wasm\"\n");
    assert!(
        err.to_string().contains("plugin `ghost`: cannot read"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_component_of_an_unknown_contract_version_is_refused_naming_the_supported_ones() {
    let dir = std::env::temp_dir().join(format!("arbiter-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Built against a contract this host does not implement: it imports that version's
    // types interface, as every plugin of a contract version does.
    for (name, wat, expected) in [
        (
            "future",
            r#"(component (import "arbiter:policy/types@0.9.0" (instance)))"#,
            "built against contract `arbiter:policy@0.9.0`, which this host does not support; it supports 0.1.0",
        ),
        (
            "mixed",
            r#"(component (import "arbiter:policy/types@0.1.0" (instance)) (import "arbiter:policy/host@0.9.0" (instance)))"#,
            "several contract versions (0.1.0, 0.9.0)",
        ),
    ] {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        sign_with_dev_key(&path);
        let toml = format!(
            "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\n",
            path.display()
        );
        let err = load_error(&toml);
        assert!(matches!(err, LoadError::Contract(_)), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!("plugin `{name}`")), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    // A plugin of a supported version says which one it was built against.
    let a = arbiter(&echo("gate", "allow", ""));
    assert_eq!(a.plugins()[0].contract, "0.1.0");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn settings_the_plugin_refuses_are_a_load_error() {
    let err = load_error(&misbehave("m", "invalid-settings", ""));
    assert!(matches!(err, LoadError::Settings { .. }), "{err}");
    assert!(err.to_string().contains("refused at load"), "{err}");
    let err = load_error(
        "[[plugin]]\nname = \"m\"\npath = \"build/fixtures/misbehave.wasm\"\nsettings = { behaviour = \"echo\", colour = \"red\" }\n",
    );
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
}

#[test]
fn task_isolation_never_shows_one_tasks_data_to_another() {
    let arbiter = arbiter(&misbehave("leak", "leak-state", ""));
    let reason = |request: &str, task: &str| {
        arbiter.decide(&action(request, Some(task))).plugins[0]
            .reason
            .clone()
    };
    assert_eq!(reason("r1", "alpha"), "previous task: none");
    // Same task: the instance is reused, which is allowed (history shows it anyway).
    assert_eq!(reason("r2", "alpha"), "previous task: alpha");
    // Another task must start from a clean instance, never seeing `alpha`.
    assert_eq!(reason("r3", "beta"), "previous task: none");
    assert_eq!(reason("r4", "alpha"), "previous task: alpha");
    // Without a task: always fresh.
    let d = arbiter.decide(&action("r5", None));
    assert_eq!(d.plugins[0].reason, "previous task: none");
}

#[test]
fn decision_isolation_is_fresh_every_time_and_shared_is_opt_in() {
    let a = arbiter(&misbehave("leak", "leak-state", "isolation = \"decision\""));
    for (r, t) in [("r1", "alpha"), ("r2", "alpha")] {
        assert_eq!(
            a.decide(&action(r, Some(t))).plugins[0].reason,
            "previous task: none"
        );
    }
    let a = arbiter(&misbehave("leak", "leak-state", "isolation = \"shared\""));
    a.decide(&action("r1", Some("alpha")));
    assert_eq!(
        a.decide(&action("r2", Some("beta"))).plugins[0].reason,
        "previous task: alpha"
    );
}

/// The previous task the `leak-state` plugin's instance saw, for a new action of `task`:
/// `none` when the action got a fresh instance, `task` when it got its task's own back.
fn previous_task(arbiter: &Arbiter, request: &str, task: &str) -> String {
    let d = arbiter.decide(&action(request, Some(task)));
    assert_eq!(d.plugins[0].outcome, Outcome::Ok, "{d:#?}");
    d.plugins[0].reason.clone()
}

#[test]
fn idle_task_instances_are_bounded_by_count_least_recently_used_first() {
    // Before `idle_instances` existed every plugin kept up to 1,024 idle instances.
    let arbiter = arbiter(&misbehave(
        "leak",
        "leak-state",
        "prewarm = 0\nidle_instances = 3",
    ));
    for n in 0..10 {
        assert_eq!(
            previous_task(&arbiter, &format!("r{n}"), &format!("t{n}")),
            "previous task: none"
        );
    }
    let set = arbiter.policy_set();
    let plugin = &set.plugins()[0];
    assert_eq!(plugin.idle_instances(), 3);
    // The three most recent tasks keep theirs; an evicted task gets a fresh instance,
    // which is slower but shows it nothing (and still decides).
    assert_eq!(
        previous_task(&arbiter, "again-9", "t9"),
        "previous task: t9"
    );
    assert_eq!(
        previous_task(&arbiter, "again-0", "t0"),
        "previous task: none"
    );
}

#[test]
fn idle_instances_are_bounded_in_bytes_spares_included() {
    const MIB: usize = 1024 * 1024;
    // Measure one idle instance of the real plugin, then allow room for about three.
    let probe = arbiter(&misbehave("leak", "leak-state", "prewarm = 0"));
    previous_task(&probe, "r0", "t0");
    let one = probe.policy_set().plugins()[0].idle_memory_bytes();
    assert!(
        one > MIB && one < 4 * MIB,
        "an idle Rust guest instance holds a little over 1 MiB of linear memory, got {one}"
    );
    let cap_mib = (3 * one).div_ceil(MIB);
    let cap = cap_mib * MIB;
    let expected_idle = cap / one;
    let arbiter = arbiter(&misbehave(
        "leak",
        "leak-state",
        &format!("prewarm = 0\nidle_memory_mib = {cap_mib}"),
    ));
    let set = arbiter.policy_set();
    let plugin = &set.plugins()[0];
    for n in 0..20 {
        previous_task(&arbiter, &format!("r{n}"), &format!("t{n}"));
        assert!(plugin.idle_memory_bytes() <= cap, "after task {n}");
    }
    assert_eq!(plugin.idle_instances(), expected_idle);
    assert_eq!(
        previous_task(&arbiter, "again-19", "t19"),
        "previous task: t19"
    );
    assert_eq!(
        previous_task(&arbiter, "again-0", "t0"),
        "previous task: none"
    );

    // Spares are idle instances too: with two of them the same bound leaves room for
    // fewer task instances, and the total stays under it.
    let arbiter = arbiter_with_spares(cap_mib, 2);
    let set = arbiter.policy_set();
    let plugin = &set.plugins()[0];
    for n in 0..20 {
        previous_task(&arbiter, &format!("r{n}"), &format!("t{n}"));
        assert!(plugin.idle_memory_bytes() <= cap, "after task {n}");
    }
    wait_until(|| plugin.spare_instances() == 2);
    assert!(plugin.idle_memory_bytes() <= cap);
    assert_eq!(plugin.idle_instances(), expected_idle - 2);
}

#[test]
fn an_instance_larger_than_the_byte_bound_is_not_kept_and_decisions_still_work() {
    // A Rust guest instance holds more than 1 MiB, so with a 1 MiB bound nothing is kept:
    // not the task's instance, not a spare. Every action gets a fresh one.
    let arbiter = arbiter_with_spares(1, 2);
    let set = arbiter.policy_set();
    let plugin = &set.plugins()[0];
    for n in 0..3 {
        assert_eq!(
            previous_task(&arbiter, &format!("r{n}"), "t0"),
            "previous task: none"
        );
    }
    assert_eq!(plugin.spare_instances(), 0);
    assert_eq!(plugin.idle_instances(), 0);
    assert_eq!(plugin.idle_memory_bytes(), 0);
}

fn arbiter_with_spares(idle_memory_mib: usize, prewarm: usize) -> Arbiter {
    arbiter(&misbehave(
        "leak",
        "leak-state",
        &format!("prewarm = {prewarm}\nidle_memory_mib = {idle_memory_mib}"),
    ))
}

/// Waits (bounded, for the prewarm thread) until `ready` holds.
fn wait_until(ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn ended_task_is_denied_without_running_plugins() {
    let arbiter = arbiter(&echo("good", "allow", ""));
    assert_eq!(
        arbiter.decide(&action("r1", Some("t1"))).effect,
        DecisionEffect::Allow
    );
    arbiter.end_task("t1").unwrap();
    let d = arbiter.decide(&action("r2", Some("t1")));
    assert_eq!(d.effect, DecisionEffect::Deny);
    assert_eq!(d.reason, "task `t1` has ended");
    assert!(d.plugins.is_empty());
    assert_eq!(
        arbiter.decide(&action("r3", Some("t2"))).effect,
        DecisionEffect::Allow
    );
}

#[test]
fn history_records_each_decision_of_a_task() {
    let arbiter = arbiter(&echo("good", "allow", ""));
    arbiter.decide(&action("r1", Some("t1")));
    arbiter.decide(&action("r2", Some("t1")));
    let history = arbiter.task_history("t1");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].request_id, "r1");
    assert_eq!(history[1].effect, Effect::Allow);
}

#[test]
fn decisions_carry_digest_generation_and_timing() {
    let arbiter = arbiter(&echo("good", "allow", ""));
    let d = arbiter.decide(&action("r1", None));
    let expected = arbiter_host::digest(&std::fs::read(plugin_path("misbehave")).unwrap());
    assert_eq!(d.plugins[0].digest, expected);
    assert_eq!(d.plugins[0].plugin, "misbehave");
    assert_eq!(d.plugins[0].version, "0.1.0");
    assert_eq!(d.generation, 1);
    assert_eq!(d.decision_id.len(), 36);
    let other = arbiter.decide(&action("r2", None));
    assert_ne!(d.decision_id, other.decision_id);
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["effect"], "allow");
    assert_eq!(json["plugins"][0]["outcome"], "ok");
}
