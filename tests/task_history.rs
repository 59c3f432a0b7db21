//! What plugins see of a task's history through `host.history` and `host.task-labels`:
//! taint outlives the window of recent entries, and never crosses tasks, whatever the
//! isolation mode.

use crate::common;

use crate::common::arbiter;
use arbiter_host::{Action, Arbiter, DecisionEffect};

fn sensitivity(isolation: &str, history: &str) -> Arbiter {
    arbiter(&format!(
        "{history}[[plugin]]\nname = \"sensitivity\"\npath = \"build/plugins/sensitivity.wasm\"\n\
         settings_file = \"plugins/sensitivity/example-settings.json\"\nisolation = \"{isolation}\"\n"
    ))
}

fn read_issue(task: &str, request: &str, labels: &str) -> Action {
    Action::from_json(&format!(
        r#"{{"request_id":"{request}","agent":{{"id":"spiffe://example.org/agent/triager"}},
            "task":{{"id":"{task}","intent":"triage-issue","started_at":1767268500000}},
            "tool":{{"server":"github","name":"get_issue"}},"arguments":{{"number":1337}},
            "resource":{{"id":"github://org/repo/issues/1337","labels":[{labels}]}},
            "time":1767268800000}}"#
    ))
    .unwrap()
}

fn post_outside(task: &str, request: &str) -> Action {
    Action::from_json(&format!(
        r##"{{"request_id":"{request}","agent":{{"id":"spiffe://example.org/agent/triager"}},
            "task":{{"id":"{task}","intent":"triage-issue","started_at":1767268500000}},
            "tool":{{"server":"slack","name":"post_message"}},
            "arguments":{{"channel":"#ext-partners","text":"status update"}},
            "time":1767268900000}}"##
    ))
    .unwrap()
}

#[test]
fn taint_outlives_the_history_window() {
    // Keep one entry per task: the restricted read is evicted long before the post.
    let arbiter = sensitivity("task", "[history]\nmax_entries_per_task = 1\n");
    assert_eq!(
        arbiter
            .decide(&read_issue("t1", "r1", r#""restricted""#))
            .effect,
        DecisionEffect::Allow
    );
    for n in 2..5 {
        arbiter.decide(&read_issue("t1", &format!("r{n}"), ""));
    }
    let history = arbiter.task_history("t1");
    assert_eq!(history.len(), 1);
    assert!(history[0].labels.is_empty(), "{history:?}");

    let post = arbiter.decide(&post_outside("t1", "r5"));
    assert_eq!(post.effect, DecisionEffect::Deny, "{post:#?}");
    assert!(post.reason.contains("restricted"), "{}", post.reason);

    // The same post in an untainted task is allowed by this plugin.
    let clean = arbiter.decide(&post_outside("t2", "r6"));
    assert_eq!(clean.effect, DecisionEffect::Allow, "{clean:#?}");
}

#[test]
fn a_shared_instance_never_shows_one_task_the_history_of_another() {
    for isolation in ["task", "decision", "shared"] {
        let arbiter = sensitivity(isolation, "");
        arbiter.decide(&read_issue("tainted", "r1", r#""restricted""#));
        let post = arbiter.decide(&post_outside("clean", "r2"));
        assert_eq!(
            post.effect,
            DecisionEffect::Allow,
            "isolation {isolation}: {post:#?}"
        );
        let tainted = arbiter.decide(&post_outside("tainted", "r3"));
        assert_eq!(
            tainted.effect,
            DecisionEffect::Deny,
            "isolation {isolation}: {tainted:#?}"
        );
    }
}

#[test]
fn evicting_a_tainted_task_does_not_wash_it_clean() {
    // Three tasks keep entries; filler tasks evict the tainted one. Before, its sticky
    // labels went with its entries and the post below was allowed.
    let arbiter = sensitivity("task", "[history]\nmax_tasks = 3\n");
    let read = arbiter.decide(&read_issue("tainted", "r1", r#""restricted""#));
    assert_eq!(read.effect, DecisionEffect::Allow, "{read:#?}");
    for n in 0..5 {
        // This plugin abstains on an unlabelled read (so the default denies); what
        // matters is that each filler task is recorded and evicts the oldest.
        let filler = arbiter.decide(&read_issue(&format!("filler-{n}"), "f", ""));
        assert_eq!(filler.plugins.len(), 1, "{filler:#?}");
    }
    assert!(arbiter.task_history("tainted").is_empty(), "evicted");
    let post = arbiter.decide(&post_outside("tainted", "r2"));
    assert_eq!(post.effect, DecisionEffect::Deny, "{post:#?}");
    assert!(post.reason.contains("restricted"), "{}", post.reason);
    // An ended task stays ended however many tasks come after it.
    arbiter.end_task("filler-4").unwrap();
    for n in 5..10 {
        arbiter.decide(&read_issue(&format!("filler-{n}"), "f", ""));
    }
    let after = arbiter.decide(&read_issue("filler-4", "r3", ""));
    assert_eq!(after.effect, DecisionEffect::Deny);
    assert!(after.reason.contains("has ended"), "{}", after.reason);
}

#[test]
fn a_full_task_table_refuses_new_tasks_and_keeps_serving_known_ones() {
    let arbiter = sensitivity("task", "[history]\nmax_tasks = 2\nmax_known_tasks = 3\n");
    for t in ["a", "b", "c"] {
        assert_eq!(arbiter.decide(&read_issue(t, "r", "")).plugins.len(), 1);
    }
    let refused = arbiter.decide(&read_issue("d", "r", ""));
    assert_eq!(refused.effect, DecisionEffect::Deny);
    assert!(refused.plugins.is_empty(), "no plugin runs: {refused:#?}");
    assert!(
        refused.reason.contains("`history.max_known_tasks`"),
        "{}",
        refused.reason
    );
    // `a` was evicted (entries only): it is known and carries on.
    let known = arbiter.decide(&read_issue("a", "r", ""));
    assert_eq!(known.plugins.len(), 1, "{known:#?}");
    assert!(
        !known.reason.contains("max_known_tasks"),
        "{}",
        known.reason
    );
}

/// Two halves of an exfiltration chain sent in parallel: before, both read the task's
/// history before either was recorded, and the post was allowed. A slow second plugin
/// (a loop stopped by its deadline, counted as abstain) keeps the read in flight while
/// the post arrives; the post must wait for the read's record and be denied.
#[test]
fn concurrent_halves_of_a_chain_are_caught() {
    let arbiter = std::sync::Arc::new(arbiter(&format!(
        "[[plugin]]\nname = \"sensitivity\"\npath = \"build/plugins/sensitivity.wasm\"\n\
         settings_file = \"plugins/sensitivity/example-settings.json\"\n{}",
        common::misbehave("slow", "loop", "timeout_ms = 400\non_error = \"ignore\"")
    )));
    let reader = {
        let arbiter = std::sync::Arc::clone(&arbiter);
        std::thread::spawn(move || arbiter.decide(&read_issue("t", "r1", r#""restricted""#)))
    };
    std::thread::sleep(std::time::Duration::from_millis(150));
    let post = arbiter.decide(&post_outside("t", "r2"));
    let read = reader.join().unwrap();
    assert_eq!(read.effect, DecisionEffect::Allow, "{read:#?}");
    assert_eq!(post.effect, DecisionEffect::Deny, "{post:#?}");
    assert!(post.reason.contains("restricted"), "{}", post.reason);
    assert_eq!(arbiter.task_history("t").len(), 2);
}

/// A task belongs to the agent that started it: another agent reusing the id is refused
/// with a reason, not given a separate history (it could read, taint or end the task
/// otherwise). Sharing is configured explicitly.
#[test]
fn a_task_belongs_to_its_agent_unless_sharing_is_configured() {
    let other_agent = |action: Action| {
        let mut action = action;
        action.agent.id = "spiffe://example.org/agent/intruder".to_owned();
        action
    };
    let arbiter = sensitivity("task", "");
    arbiter.decide(&read_issue("t", "r1", r#""restricted""#));
    let intruder = arbiter.decide(&other_agent(post_outside("t", "r2")));
    assert_eq!(intruder.effect, DecisionEffect::Deny);
    assert!(intruder.plugins.is_empty(), "{intruder:#?}");
    assert!(
        intruder.reason.contains("belongs to another agent"),
        "{}",
        intruder.reason
    );
    assert_eq!(
        arbiter.task_history("t").len(),
        1,
        "the intruder recorded nothing"
    );

    let shared = sensitivity(
        "task",
        "[[tasks.share]]\nagents = [\"spiffe://example.org/agent/triager\", \"spiffe://example.org/agent/intr*\"]\n",
    );
    shared.decide(&read_issue("t", "r1", r#""restricted""#));
    let sub_agent = shared.decide(&other_agent(post_outside("t", "r2")));
    // Shared: the sub-agent acts in the task and inherits its taint.
    assert_eq!(sub_agent.plugins.len(), 1, "{sub_agent:#?}");
    assert_eq!(sub_agent.effect, DecisionEffect::Deny);
    assert!(
        sub_agent.reason.contains("restricted"),
        "{}",
        sub_agent.reason
    );
    assert_eq!(shared.task_history("t").len(), 2);
}
