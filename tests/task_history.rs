//! What plugins see of a task's history through `host.history` and `host.task-labels`:
//! taint outlives the window of recent entries, and never crosses tasks, whatever the
//! isolation mode.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;

use arbiter_host::{Action, Arbiter, DecisionEffect};
use common::arbiter;

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
