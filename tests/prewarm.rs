//! Prewarmed instances: the host keeps `prewarm` fresh instances per plugin ready, hands
//! them to new tasks, refills them in the background, and never hands a used one out.

use crate::common;

use crate::common::{action, arbiter, echo, misbehave};
use arbiter_host::{Arbiter, DecisionEffect, Outcome};
use std::time::{Duration, Instant};

/// Waits (up to a generous bound, for slow CI machines) until every plugin has `n`
/// spares; the spares are made by a background thread.
fn wait_for_spares(arbiter: &Arbiter, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let set = arbiter.policy_set();
        let counts: Vec<usize> = set.plugins().iter().map(|p| p.spare_instances()).collect();
        if counts.iter().all(|&c| c == n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "spares {counts:?}, expected {n} each"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn spares_are_made_at_load_used_by_new_tasks_and_refilled() {
    let arbiter = arbiter(&format!(
        "[defaults]\ntimeout_ms = 2000\nprewarm = 3\n{}{}",
        echo("a", "allow", ""),
        echo("b", "allow", "prewarm = 1")
    ));
    let set = arbiter.policy_set();
    let deadline = Instant::now() + Duration::from_secs(60);
    while set.plugins()[0].spare_instances() < 3 || set.plugins()[1].spare_instances() < 1 {
        assert!(Instant::now() < deadline, "spares were not made");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(set.plugins()[1].spare_instances(), 1, "per-plugin override");
    // A new task takes a spare from each plugin...
    let d = arbiter.decide(&action("r1", Some("t1")));
    assert_eq!(d.effect, DecisionEffect::Allow, "{d:#?}");
    // ...and the background thread makes them again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while set.plugins()[0].spare_instances() < 3 || set.plugins()[1].spare_instances() < 1 {
        assert!(Instant::now() < deadline, "spares were not refilled");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The task's instance went back to its task, not to the spares.
    assert_eq!(set.plugins()[0].idle_instances(), 1);
}

#[test]
fn prewarm_zero_keeps_no_spares() {
    let arbiter = arbiter(&format!(
        "[defaults]\ntimeout_ms = 2000\nprewarm = 0\n{}",
        echo("a", "allow", "")
    ));
    for n in 0..3 {
        let d = arbiter.decide(&action(&format!("r{n}"), Some(&format!("t{n}"))));
        assert_eq!(d.effect, DecisionEffect::Allow);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(arbiter.policy_set().plugins()[0].spare_instances(), 0);
    assert!(!arbiter.policy_set().wants_spares());
}

#[test]
fn a_spare_has_seen_no_other_task() {
    // `leak-state` reports the task ids its instance saw before. Every new task must get
    // an instance that saw none, whether it was prewarmed or made on demand.
    let arbiter = arbiter(&misbehave("leaky", "leak-state", "prewarm = 2"));
    for n in 0..8 {
        wait_for_spares(&arbiter, 2);
        let d = arbiter.decide(&action(&format!("r{n}"), Some(&format!("task-{n}"))));
        let entry = &d.plugins[0];
        assert_eq!(entry.outcome, Outcome::Ok, "{entry:#?}");
        assert_eq!(entry.reason, "previous task: none", "task-{n}");
    }
}

#[test]
fn a_reload_prewarms_the_new_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("arbiter.toml");
    let write = |prewarm: usize| {
        let trust = common::test_trust_absolute();
        let plugin = common::plugin_path("misbehave").display().to_string();
        std::fs::write(
            &config,
            format!(
                "{trust}[defaults]\ntimeout_ms = 2000\nprewarm = {prewarm}\n[[plugin]]\n\
                 name = \"a\"\npath = {plugin:?}\n\
                 settings = {{ behaviour = \"echo\", effect = \"allow\" }}\n"
            ),
        )
        .unwrap();
    };
    write(1);
    let arbiter = Arbiter::from_config_file(&config).unwrap();
    wait_for_spares(&arbiter, 1);
    write(2);
    arbiter.reload().unwrap();
    wait_for_spares(&arbiter, 2);
}
