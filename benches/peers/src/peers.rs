//! Benchmark peers: the same tool-call decisions Arbiter makes, written for
//! [Cedar](https://www.cedarpolicy.com/) (`cedar-policy`) and Rego (`regorus`,
//! both its tree-walking interpreter and its register VM, the RVM).
//!
//! Every peer is built once from a [`Rules`] value and then answers one
//! decision per call, starting from Arbiter's action JSON. Each peer is
//! written the way a user who picked that engine would write it, using the
//! fastest *documented* path of its public API:
//!
//! * [`CedarPeer`]: the policy set is parsed once and the [`Authorizer`] is
//!   reused. Per decision the action JSON is deserialised (serde) into small
//!   structs holding only the fields the policies read; these become a
//!   minimal [`Context`] built with [`Context::from_pairs`] and
//!   [`RestrictedExpression`]s. The request is built without a schema (no
//!   per-request validation) and evaluated against an empty entity store.
//! * [`RegoInterpreter`]: a [`regorus::Engine`] with the policy added once;
//!   per decision the input is set from the JSON string and the rule
//!   `data.arbiter.effect` is evaluated with [`regorus::Engine::eval_rule`].
//! * [`RegoRvm`]: the same policy compiled once (engine →
//!   [`regorus::CompiledPolicy`] → RVM [`Program`]) and loaded into one
//!   reused [`RegoVM`]; per decision the input is set and the VM executed.
//!
//! The rules (see [`Rules`]) are a subset of Arbiter's three reference
//! plugins: task validity, per-intent tool allowlists, scopes and
//! delegation, and data sensitivity. Combining: any deny wins, then any
//! step-up, else allow; anything missing that a rule needs denies.
//!
//! ## Modelling notes
//!
//! * **Cedar has no third effect.** Step-up is expressed with annotated
//!   *permit* policies and read back from the response's determining
//!   policies (on `Allow`, Cedar reports every satisfied permit):
//!   intent rules carry `@kind("intent")`, high-risk markers carry
//!   `@kind("marker")`, and both may carry `@effect("step-up")`. The peer
//!   answers `Deny` when Cedar denies (a forbid fired or nothing was
//!   permitted), `Deny` when no `intent` permit was satisfied (a marker alone
//!   grants nothing), `StepUp` when any satisfied permit carries
//!   `@effect("step-up")`, and `Allow` otherwise. (Annotated *forbids* cannot
//!   be used for step-up: on `Deny` Cedar reports only the forbids, so a
//!   high-risk tool with no matching intent rule would come out as step-up
//!   instead of deny.) Any policy evaluation error also yields `Deny`,
//!   because Cedar skips erroring policies and a skipped forbid would fail
//!   open.
//! * **Cedar has no quantifiers.** "Every recipient ends with
//!   `@example.com`" is evaluated by the host extracting the domain of each
//!   recipient (text after the last `@`) into a set; the policy checks
//!   `["example.com"].containsAll(context.recipient_domains)`. The delegation
//!   chain is passed as fixed slots `delegation_0..delegation_{max-1}` (one
//!   scope set per principal, the chain can be at most `max_delegation` long
//!   or it is denied) plus `delegation_len`; every scope policy checks each
//!   slot.
//! * **Rego input is the action JSON itself.** The Rego policy is written as
//!   an OPA user would: `default effect := "deny"`, `deny`/`step_up` partial
//!   sets, an `else` chain, one rule body per intent rule, a scope table as an
//!   object literal, and fail-closed checks written as `not ok_rule`.
//! * **Malformed input.** Invalid JSON is an error for every peer. For Cedar,
//!   a field of the wrong JSON type among those it reads (for example a
//!   string `time`) is also an error, while Rego treats it as a failed check
//!   (deny) — except that regorus's *interpreter* reports a builtin type
//!   error (e.g. a non-string `tool.name` passed to `concat`) as an `Err`,
//!   where the RVM, like OPA, makes the expression undefined and denies.
//!   Callers should treat `Err` as deny.

use std::fmt::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::rvm::program::Program;
use regorus::{Engine, Value};
use serde::Deserialize;

// The inputs and their expected effects live in the shared benchmark support, which the
// host's own benchmarks use too.
pub use crate::support::inputs::{INPUTS, PeerEffect};

/// Rego package that holds the policy.
const REGO_PACKAGE: &str = "arbiter";
/// Rego rule evaluated by both Rego peers.
const REGO_ENTRY_POINT: &str = "data.arbiter.effect";
/// Instruction budget for one RVM execution. The RVM default (25 000) is
/// ample for the reference rules; this leaves headroom for growth runs with
/// many synthetic rules while still bounding a runaway policy.
const RVM_MAX_INSTRUCTIONS: usize = 1_000_000;

impl PeerEffect {
    /// Parses the Rego policy's `effect` string.
    fn from_rego(value: &Value) -> Result<Self, PeerError> {
        match value {
            Value::String(s) => match s.as_ref() {
                "allow" => Ok(Self::Allow),
                "deny" => Ok(Self::Deny),
                "step-up" => Ok(Self::StepUp),
                other => Err(PeerError::UnexpectedResult(other.to_owned())),
            },
            other => Err(PeerError::UnexpectedResult(other.to_string())),
        }
    }
}

/// Errors raised while building a peer or deciding one action.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The action is not valid JSON, or a field Cedar reads has the wrong type.
    #[error("invalid action JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Cedar rejected the policy text, an identifier, the context or the request.
    #[error("cedar: {0}")]
    Cedar(String),
    /// regorus rejected the policy, the input or failed while evaluating.
    #[error("rego: {0}")]
    Rego(String),
    /// The policy produced something other than a known effect.
    #[error("unexpected policy result: {0}")]
    UnexpectedResult(String),
}

fn cedar_err(err: impl std::fmt::Display) -> PeerError {
    PeerError::Cedar(err.to_string())
}

fn rego_err(err: impl std::fmt::Display) -> PeerError {
    PeerError::Rego(err.to_string())
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// Which tools an intent rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolMatch {
    /// Exactly this tool, named `server/name`.
    Exact(String),
    /// Any tool on `server` whose name starts with `name_prefix`.
    NamePrefix {
        /// Tool server, e.g. `github`.
        server: String,
        /// Prefix of the tool name, e.g. `get_`.
        name_prefix: String,
    },
}

/// One entry of an intent's allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRule {
    /// Declared task intent (`task.intent`) the rule applies to.
    pub intent: String,
    /// Tools the rule allows.
    pub tool: ToolMatch,
    /// When set, `arguments.path` must equal this path or start with it
    /// followed by `/`.
    pub path_within: Option<String>,
    /// `true` if a call allowed by this rule needs step-up.
    pub step_up: bool,
}

/// Scopes a tool requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRule {
    /// Tool named `server/name`.
    pub tool: String,
    /// Every scope must be held by the credential and by every delegation
    /// principal. May be empty (then no credential is needed).
    pub scopes: Vec<String>,
}

/// The rule set every peer encodes.
///
/// Built for growth benchmarks: [`Rules::reference`] returns the base rules
/// plus `extra` synthetic intent/scope rules that never match the benchmark
/// inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Per-intent tool allowlist; an action matching none of them is denied.
    pub intents: Vec<IntentRule>,
    /// Required scopes per tool; a tool without a rule is denied.
    pub scopes: Vec<ScopeRule>,
    /// Tools that need step-up when everything else passes.
    pub high_risk: Vec<String>,
    /// Longest allowed delegation chain.
    pub max_delegation: usize,
    /// Tool whose `arguments.to` recipients are restricted.
    pub mail_tool: String,
    /// Every recipient of [`Rules::mail_tool`] must be in this domain.
    pub recipient_domain: String,
    /// Resource label that marks secret data.
    pub secret_label: String,
    /// Tools that must not receive secret-labelled resources.
    pub egress_tools: Vec<String>,
}

impl Rules {
    /// The reference rules plus `extra` synthetic rules: intent
    /// `synthetic-{i}` allows tool `svc{i}/op{i}`, which requires scope
    /// `svc{i}:use`.
    #[must_use]
    pub fn reference(extra: usize) -> Self {
        fn exact(intent: &str, tool: &str) -> IntentRule {
            IntentRule {
                intent: intent.to_owned(),
                tool: ToolMatch::Exact(tool.to_owned()),
                path_within: None,
                step_up: false,
            }
        }
        fn prefix(intent: &str, server: &str, name_prefix: &str) -> IntentRule {
            IntentRule {
                intent: intent.to_owned(),
                tool: ToolMatch::NamePrefix {
                    server: server.to_owned(),
                    name_prefix: name_prefix.to_owned(),
                },
                path_within: None,
                step_up: false,
            }
        }
        fn scope(tool: &str, scopes: &[&str]) -> ScopeRule {
            ScopeRule {
                tool: tool.to_owned(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            }
        }
        let in_repo = |rule: IntentRule| IntentRule {
            path_within: Some("/repo".to_owned()),
            ..rule
        };
        let step_up = |rule: IntentRule| IntentRule {
            step_up: true,
            ..rule
        };

        let mut intents = vec![
            in_repo(exact("summarize-repo", "fs/read_file")),
            in_repo(exact("summarize-repo", "fs/list_dir")),
            prefix("summarize-repo", "github", "get_"),
            prefix("summarize-repo", "github", "search_"),
            exact("summarize-repo", "web/fetch"),
            exact("triage-issue", "github/get_issue"),
            exact("triage-issue", "github/search_code"),
            exact("triage-issue", "slack/post_message"),
            exact("answer-billing-question", "db/query"),
            step_up(exact("answer-billing-question", "payments/create_refund")),
            exact("send-report", "db/query"),
            exact("send-report", "mail/send_email"),
        ];
        let mut scopes = vec![
            scope("fs/read_file", &["fs:read"]),
            scope("fs/list_dir", &["fs:read"]),
            scope("fs/write_file", &["fs:write"]),
            scope("fs/delete_file", &["fs:write", "fs:delete"]),
            scope("github/get_issue", &["repo:read"]),
            scope("github/search_code", &["repo:read"]),
            scope("github/create_pull_request", &["repo:read", "repo:write"]),
            scope("github/merge_pull_request", &["repo:write", "repo:merge"]),
            scope("db/query", &["db:read"]),
            scope("web/fetch", &[]),
            scope("mail/send_email", &["mail:send"]),
            scope("slack/post_message", &["chat:write"]),
            scope("payments/create_refund", &["payments:refund"]),
        ];
        for i in 0..extra {
            let tool = format!("svc{i}/op{i}");
            intents.push(exact(&format!("synthetic-{i}"), &tool));
            scopes.push(ScopeRule {
                tool,
                scopes: vec![format!("svc{i}:use")],
            });
        }
        Self {
            intents,
            scopes,
            high_risk: vec![
                "payments/create_refund".to_owned(),
                "github/merge_pull_request".to_owned(),
                "fs/delete_file".to_owned(),
            ],
            max_delegation: 3,
            mail_tool: "mail/send_email".to_owned(),
            recipient_domain: "example.com".to_owned(),
            secret_label: "secret".to_owned(),
            egress_tools: vec![
                "mail/send_email".to_owned(),
                "slack/post_message".to_owned(),
                "web/fetch".to_owned(),
            ],
        }
    }
}

// ---------------------------------------------------------------------------
// Policy text
// ---------------------------------------------------------------------------

/// A double-quoted string literal valid in both Cedar and Rego.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Cedar `like` pattern matching strings that start with `prefix`.
fn cedar_prefix_pattern(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 3);
    out.push('"');
    for c in prefix.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '*' => out.push_str("\\*"),
            c => out.push(c),
        }
    }
    out.push_str("*\"");
    out
}

fn cedar_tool(tool: &str) -> String {
    format!("Tool::{}", quote(tool))
}

/// `items` rendered by `item`, separated by commas, between `open` and `close`.
fn joined<'a>(
    items: impl IntoIterator<Item = &'a String>,
    item: fn(&str) -> String,
    open: &str,
    close: &str,
) -> String {
    let inner: Vec<String> = items.into_iter().map(|s| item(s)).collect();
    format!("{open}{}{close}", inner.join(", "))
}

fn cedar_string_set<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    joined(items, quote, "[", "]")
}

fn cedar_tool_set<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    joined(items, cedar_tool, "[", "]")
}

/// The Cedar policy set for `rules`.
///
/// Principal `Agent::"<agent.id>"`, action `Action::"call"`, resource
/// `Tool::"<server>/<name>"`. The context holds only what the policies read:
/// `time`, `intent`, `task_started_at`, `task_expires_at`, `tool`
/// (`server/name`), `server`, `path`, `recipient_domains`, `credential`
/// (`scopes`, `expires_at`, `audience`), `delegation_len`,
/// `delegation_0..` and `labels`; optional fields are omitted when absent
/// from the action.
#[must_use]
pub fn cedar_policy_text(rules: &Rules) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "// Arbiter reference rules for Cedar.\n\
         // Permits carry @kind(\"intent\") (an intent allowlist rule) or @kind(\"marker\")\n\
         // (grants nothing on its own). The host reads the satisfied permits: Allow\n\
         // needs an intent permit; any satisfied @effect(\"step-up\") permit means StepUp.\n\
         // Forbids deny. Optional context fields are guarded with `has` so that a\n\
         // missing field makes a check fail closed instead of erroring.\n"
    );

    let _ = writeln!(out, "// ---- 1. Task ----");
    let _ = writeln!(
        out,
        "@id(\"task-active\")\n\
         forbid (principal, action, resource)\n\
         unless {{\n  \
           context has time && context has task_started_at &&\n  \
           context.task_started_at <= context.time &&\n  \
           (!(context has task_expires_at) || context.time < context.task_expires_at)\n\
         }};\n"
    );

    cedar_intent_rules(&mut out, rules);
    cedar_scope_rules(&mut out, rules);
    cedar_sensitivity_rules(&mut out, rules);
    out
}

/// Section 2 of the Cedar policy set: one permit per intent rule.
fn cedar_intent_rules(out: &mut String, rules: &Rules) {
    let _ = writeln!(out, "// ---- 2. Intent allowlist ----");
    for rule in &rules.intents {
        let mut conds = vec![format!(
            "context has intent && context.intent == {}",
            quote(&rule.intent)
        )];
        let resource = match &rule.tool {
            ToolMatch::Exact(tool) => format!("resource == {}", cedar_tool(tool)),
            ToolMatch::NamePrefix {
                server,
                name_prefix,
            } => {
                conds.push(format!(
                    "context has tool && context.tool like {}",
                    cedar_prefix_pattern(&format!("{server}/{name_prefix}"))
                ));
                "resource".to_owned()
            }
        };
        if let Some(path) = &rule.path_within {
            conds.push(format!(
                "context has path && (context.path == {} || context.path like {})",
                quote(path),
                cedar_prefix_pattern(&format!("{path}/"))
            ));
        }
        let effect = if rule.step_up {
            "@effect(\"step-up\")\n"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "@kind(\"intent\")\n{effect}permit (principal, action == Action::\"call\", {resource})\n\
             when {{\n  {}\n}};\n",
            conds.join(" &&\n  ")
        );
    }
}

/// Section 3 of the Cedar policy set: scope rules, credential, delegation
/// and high-risk step-up markers.
fn cedar_scope_rules(out: &mut String, rules: &Rules) {
    let slots: Vec<String> = (0..rules.max_delegation)
        .map(|i| format!("delegation_{i}"))
        .collect();
    let _ = writeln!(out, "// ---- 3. Scopes, credential, delegation ----");
    let _ = writeln!(
        out,
        "@id(\"scope-rule-exists\")\n\
         forbid (principal, action, resource)\n\
         unless {{ {}.contains(resource) }};\n",
        cedar_tool_set(rules.scopes.iter().map(|r| &r.tool))
    );
    let _ = writeln!(
        out,
        "@id(\"credential-live\")\n\
         forbid (principal, action, resource)\n\
         when {{\n  \
           context has credential && context.credential has expires_at &&\n  \
           !(context has time && context.time < context.credential.expires_at)\n\
         }};\n"
    );
    let _ = writeln!(
        out,
        "@id(\"credential-audience\")\n\
         forbid (principal, action, resource)\n\
         when {{\n  \
           context has credential &&\n  \
           !(context.credential has audience && context has server &&\n    \
             context.credential.audience == context.server)\n\
         }};\n"
    );
    let _ = writeln!(
        out,
        "@id(\"delegation-length\")\n\
         forbid (principal, action, resource)\n\
         when {{ context.delegation_len > {} }};\n",
        rules.max_delegation
    );
    for rule in rules.scopes.iter().filter(|r| !r.scopes.is_empty()) {
        let set = cedar_string_set(&rule.scopes);
        let mut conds = vec![format!(
            "context has credential && context.credential.scopes.containsAll({set})"
        )];
        for slot in &slots {
            conds.push(format!(
                "(!(context has {slot}) || context.{slot}.containsAll({set}))"
            ));
        }
        let _ = writeln!(
            out,
            "@id(\"scope:{}\")\n\
             forbid (principal, action == Action::\"call\", resource == {})\n\
             unless {{\n  {}\n}};\n",
            rule.tool,
            cedar_tool(&rule.tool),
            conds.join(" &&\n  ")
        );
    }
    for tool in &rules.high_risk {
        let _ = writeln!(
            out,
            "@kind(\"marker\")\n@effect(\"step-up\")\n\
             permit (principal, action == Action::\"call\", resource == {});\n",
            cedar_tool(tool)
        );
    }
}

/// Section 4 of the Cedar policy set: recipient domain and secret egress.
fn cedar_sensitivity_rules(out: &mut String, rules: &Rules) {
    let _ = writeln!(out, "// ---- 4. Sensitivity ----");
    let _ = writeln!(
        out,
        "@id(\"recipient-domain\")\n\
         forbid (principal, action == Action::\"call\", resource == {})\n\
         unless {{\n  \
           context has recipient_domains &&\n  \
           {}.containsAll(context.recipient_domains)\n\
         }};\n",
        cedar_tool(&rules.mail_tool),
        cedar_string_set([&rules.recipient_domain])
    );
    let _ = writeln!(
        out,
        "@id(\"secret-egress\")\n\
         forbid (principal, action, resource)\n\
         when {{\n  \
           context.labels.contains({}) &&\n  \
           {}.contains(resource)\n\
         }};",
        quote(&rules.secret_label),
        cedar_tool_set(&rules.egress_tools)
    );
}

fn rego_string_set<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    joined(items, quote, "{", "}")
}

/// The Rego (v1 syntax) policy for `rules`; the input is the action JSON and
/// the decision is `data.arbiter.effect` (`"allow"`, `"deny"` or `"step-up"`).
#[must_use]
pub fn rego_policy_text(rules: &Rules) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(
        out,
        "package {REGO_PACKAGE}\n\n\
         # Any deny wins, then any step-up, else allow. Checks are written as\n\
         # `not ok_rule` so that a missing field denies (fail closed).\n\
         default effect := \"deny\"\n\n\
         effect := \"deny\" if {{\n\
         \tcount(deny) > 0\n\
         }} else := \"step-up\" if {{\n\
         \tcount(step_up) > 0\n\
         }} else := \"allow\"\n\n\
         tool := concat(\"/\", [input.tool.server, input.tool.name])\n"
    );

    let _ = writeln!(
        out,
        "# ---- 1. Task ----\n\
         task_active if {{\n\
         \tinput.task.started_at <= input.time\n\
         \tnot input.task.expires_at\n\
         }}\n\n\
         task_active if {{\n\
         \tinput.task.started_at <= input.time\n\
         \tinput.time < input.task.expires_at\n\
         }}\n\n\
         deny contains \"task missing, not started or expired\" if not task_active\n"
    );

    rego_intent_rules(&mut out, rules);
    rego_scope_rules(&mut out, rules);
    rego_sensitivity_rules(&mut out, rules);
    out
}

/// Section 2 of the Rego policy: one `intent_match` body per intent rule.
fn rego_intent_rules(out: &mut String, rules: &Rules) {
    let _ = writeln!(
        out,
        "# ---- 2. Intent allowlist ----\n\
         path_within(dir) if input.arguments.path == dir\n\n\
         path_within(dir) if {{\n\
         \tis_string(input.arguments.path)\n\
         \tstartswith(input.arguments.path, concat(\"\", [dir, \"/\"]))\n\
         }}\n"
    );
    for rule in &rules.intents {
        let effect = if rule.step_up { "step-up" } else { "allow" };
        let _ = writeln!(out, "intent_match contains {} if {{", quote(effect));
        let _ = writeln!(out, "\tinput.task.intent == {}", quote(&rule.intent));
        match &rule.tool {
            ToolMatch::Exact(tool) => {
                let _ = writeln!(out, "\ttool == {}", quote(tool));
            }
            ToolMatch::NamePrefix {
                server,
                name_prefix,
            } => {
                let _ = writeln!(out, "\tinput.tool.server == {}", quote(server));
                let _ = writeln!(out, "\tstartswith(input.tool.name, {})", quote(name_prefix));
            }
        }
        if let Some(path) = &rule.path_within {
            let _ = writeln!(out, "\tpath_within({})", quote(path));
        }
        let _ = writeln!(out, "}}\n");
    }
    let _ = writeln!(
        out,
        "deny contains \"no intent rule allows this tool\" if count(intent_match) == 0\n\n\
         step_up contains \"intent rule requires step-up\" if \"step-up\" in intent_match\n"
    );
}

/// Section 3 of the Rego policy: scope table, credential, delegation and
/// high-risk step-up.
fn rego_scope_rules(out: &mut String, rules: &Rules) {
    let _ = writeln!(out, "# ---- 3. Scopes, credential, delegation ----");
    let _ = writeln!(out, "required_scopes := {{");
    for rule in &rules.scopes {
        let scopes: Vec<String> = rule.scopes.iter().map(|s| quote(s)).collect();
        let _ = writeln!(out, "\t{}: [{}],", quote(&rule.tool), scopes.join(", "));
    }
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(out, "high_risk := {}\n", rego_string_set(&rules.high_risk));
    let _ = writeln!(
        out,
        "deny contains \"no scope rule for tool\" if not required_scopes[tool]\n\n\
         deny contains \"credential required\" if {{\n\
         \tcount(required_scopes[tool]) > 0\n\
         \tnot input.credential\n\
         }}\n\n\
         credential_live if not input.credential.expires_at\n\n\
         credential_live if input.time < input.credential.expires_at\n\n\
         deny contains \"credential expired\" if {{\n\
         \tinput.credential\n\
         \tnot credential_live\n\
         }}\n\n\
         audience_ok if input.credential.audience == input.tool.server\n\n\
         deny contains \"credential audience mismatch\" if {{\n\
         \tinput.credential\n\
         \tnot audience_ok\n\
         }}\n\n\
         deny contains \"delegation chain too long\" if count(input.delegation) > {max}\n\n\
         deny contains \"credential lacks a required scope\" if {{\n\
         \tsome scope in required_scopes[tool]\n\
         \tnot scope in input.credential.scopes\n\
         }}\n\n\
         deny contains \"delegation lacks a required scope\" if {{\n\
         \tsome scope in required_scopes[tool]\n\
         \tsome principal in input.delegation\n\
         \tnot scope in principal.scopes\n\
         }}\n\n\
         step_up contains \"high-risk tool\" if tool in high_risk\n",
        max = rules.max_delegation
    );
}

/// Section 4 of the Rego policy: recipient domain and secret egress.
fn rego_sensitivity_rules(out: &mut String, rules: &Rules) {
    let suffix = quote(&format!("@{}", rules.recipient_domain));
    let _ = writeln!(
        out,
        "# ---- 4. Sensitivity ----\n\
         recipients_ok if {{\n\
         \tis_string(input.arguments.to)\n\
         \tendswith(input.arguments.to, {suffix})\n\
         }}\n\n\
         recipients_ok if {{\n\
         \tis_array(input.arguments.to)\n\
         \tevery addr in input.arguments.to {{\n\
         \t\tis_string(addr)\n\
         \t\tendswith(addr, {suffix})\n\
         \t}}\n\
         }}\n\n\
         deny contains \"recipient outside allowed domain\" if {{\n\
         \ttool == {mail}\n\
         \tnot recipients_ok\n\
         }}\n\n\
         deny contains \"secret resource sent to egress tool\" if {{\n\
         \t{secret} in input.resource.labels\n\
         \ttool in {egress}\n\
         }}",
        mail = quote(&rules.mail_tool),
        secret = quote(&rules.secret_label),
        egress = rego_string_set(&rules.egress_tools)
    );
}

// ---------------------------------------------------------------------------
// Cedar
// ---------------------------------------------------------------------------

/// The fields of Arbiter's action that the Cedar policies read. Everything
/// else (`request_id`, `environment`, other arguments...) is skipped by serde.
#[derive(Debug, Deserialize)]
struct CedarAction {
    agent: Option<CedarAgent>,
    delegation: Option<Vec<CedarDelegate>>,
    task: Option<CedarTask>,
    tool: Option<CedarTool>,
    arguments: Option<CedarArguments>,
    credential: Option<CedarCredential>,
    resource: Option<CedarResource>,
    time: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct CedarAgent {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CedarDelegate {
    scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct CedarTask {
    intent: Option<String>,
    started_at: Option<i64>,
    expires_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct CedarTool {
    server: Option<String>,
    name: Option<String>,
}

/// Tool arguments are free-form; only `path` and `to` are read, and a value
/// of an unexpected type is treated as absent / not matching.
#[derive(Debug, Deserialize)]
struct CedarArguments {
    path: Option<serde_json::Value>,
    to: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct CedarCredential {
    scopes: Option<Vec<String>>,
    expires_at: Option<i64>,
    audience: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CedarResource {
    labels: Option<Vec<String>>,
}

impl CedarArguments {
    /// Adds `path` (when a string) and `recipient_domains` (when `to` is a
    /// string or an array; non-string entries map to `""`, which denies).
    fn push_pairs(self, pairs: &mut Vec<(String, RestrictedExpression)>) {
        if let Some(serde_json::Value::String(path)) = self.path {
            pairs.push(("path".to_owned(), RestrictedExpression::new_string(path)));
        }
        let domains = match self.to {
            Some(serde_json::Value::String(addr)) => vec![recipient_domain(&addr).to_owned()],
            Some(serde_json::Value::Array(addrs)) => addrs
                .iter()
                .map(|a| a.as_str().map_or("", recipient_domain).to_owned())
                .collect(),
            _ => return,
        };
        pairs.push((
            "recipient_domains".to_owned(),
            cedar_string_set_expr(domains),
        ));
    }
}

impl CedarCredential {
    /// The `credential` record: `scopes` (empty when absent) plus the
    /// optional `expires_at` and `audience`.
    fn into_expr(self) -> Result<RestrictedExpression, PeerError> {
        let mut fields: Vec<(String, RestrictedExpression)> = Vec::with_capacity(3);
        fields.push((
            "scopes".to_owned(),
            cedar_string_set_expr(self.scopes.unwrap_or_default()),
        ));
        if let Some(at) = self.expires_at {
            fields.push(("expires_at".to_owned(), RestrictedExpression::new_long(at)));
        }
        if let Some(audience) = self.audience {
            fields.push((
                "audience".to_owned(),
                RestrictedExpression::new_string(audience),
            ));
        }
        RestrictedExpression::new_record(fields).map_err(cedar_err)
    }
}

/// Domain of a recipient address: the text after the last `@`, or `""` when
/// there is none (never equal to an allowed domain, so it denies). An address
/// ends with `@<domain>` exactly when this returns `<domain>`.
fn recipient_domain(addr: &str) -> &str {
    addr.rsplit_once('@').map_or("", |(_, domain)| domain)
}

fn cedar_string_set_expr(items: Vec<String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(RestrictedExpression::new_string))
}

/// Cedar peer: policy set parsed once, authorizer and (empty) entity store
/// reused for every decision.
#[derive(Debug)]
pub struct CedarPeer {
    policies: PolicySet,
    authorizer: Authorizer,
    entities: Entities,
    agent_type: EntityTypeName,
    tool_type: EntityTypeName,
    action: EntityUid,
    max_delegation: usize,
}

impl CedarPeer {
    /// Parses [`cedar_policy_text`] for `rules`.
    ///
    /// # Errors
    /// [`PeerError::Cedar`] if Cedar rejects the generated policy text.
    pub fn new(rules: &Rules) -> Result<Self, PeerError> {
        let policies = PolicySet::from_str(&cedar_policy_text(rules)).map_err(cedar_err)?;
        let action_type = EntityTypeName::from_str("Action").map_err(cedar_err)?;
        Ok(Self {
            policies,
            authorizer: Authorizer::new(),
            entities: Entities::empty(),
            agent_type: EntityTypeName::from_str("Agent").map_err(cedar_err)?,
            tool_type: EntityTypeName::from_str("Tool").map_err(cedar_err)?,
            action: EntityUid::from_type_name_and_id(action_type, EntityId::new("call")),
            max_delegation: rules.max_delegation,
        })
    }

    /// Decides one action given as JSON: [`CedarPeer::prepare`] then
    /// [`CedarPeer::decide_prepared`].
    ///
    /// # Errors
    /// As [`CedarPeer::prepare`].
    pub fn decide_json(&self, json: &str) -> Result<PeerEffect, PeerError> {
        let request = self.prepare(json)?;
        Ok(self.decide_prepared(&request))
    }

    /// Parses the action JSON and builds the Cedar request with a minimal
    /// context (only the fields the policies read).
    ///
    /// # Errors
    /// [`PeerError::Json`] if `json` is not a JSON object whose read fields
    /// have the expected types; [`PeerError::Cedar`] if Cedar rejects the
    /// context or request.
    pub fn prepare(&self, json: &str) -> Result<Request, PeerError> {
        let action: CedarAction = serde_json::from_str(json)?;
        let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(16);

        if let Some(time) = action.time {
            pairs.push(("time".to_owned(), RestrictedExpression::new_long(time)));
        }
        if let Some(task) = action.task {
            if let Some(intent) = task.intent {
                pairs.push((
                    "intent".to_owned(),
                    RestrictedExpression::new_string(intent),
                ));
            }
            if let Some(at) = task.started_at {
                pairs.push((
                    "task_started_at".to_owned(),
                    RestrictedExpression::new_long(at),
                ));
            }
            if let Some(at) = task.expires_at {
                pairs.push((
                    "task_expires_at".to_owned(),
                    RestrictedExpression::new_long(at),
                ));
            }
        }

        let tool_id = match action.tool {
            Some(CedarTool {
                server: Some(server),
                name: Some(name),
            }) => {
                let tool = format!("{server}/{name}");
                pairs.push((
                    "tool".to_owned(),
                    RestrictedExpression::new_string(tool.clone()),
                ));
                pairs.push((
                    "server".to_owned(),
                    RestrictedExpression::new_string(server),
                ));
                tool
            }
            // No tool: the resource matches no intent or scope rule, so it is denied.
            _ => String::new(),
        };

        if let Some(args) = action.arguments {
            args.push_pairs(&mut pairs);
        }
        if let Some(cred) = action.credential {
            pairs.push(("credential".to_owned(), cred.into_expr()?));
        }

        let delegation = action.delegation.unwrap_or_default();
        let len = i64::try_from(delegation.len()).unwrap_or(i64::MAX);
        pairs.push((
            "delegation_len".to_owned(),
            RestrictedExpression::new_long(len),
        ));
        // Longer chains are denied by `delegation-length`; only the slots the
        // policies read are filled.
        for (i, delegate) in delegation.into_iter().take(self.max_delegation).enumerate() {
            pairs.push((
                format!("delegation_{i}"),
                cedar_string_set_expr(delegate.scopes.unwrap_or_default()),
            ));
        }

        let labels = action.resource.and_then(|r| r.labels).unwrap_or_default();
        pairs.push(("labels".to_owned(), cedar_string_set_expr(labels)));

        let agent_id = action.agent.and_then(|a| a.id).unwrap_or_default();
        let principal =
            EntityUid::from_type_name_and_id(self.agent_type.clone(), EntityId::new(agent_id));
        let resource =
            EntityUid::from_type_name_and_id(self.tool_type.clone(), EntityId::new(tool_id));
        let context = Context::from_pairs(pairs).map_err(cedar_err)?;
        Request::new(principal, self.action.clone(), resource, context, None).map_err(cedar_err)
    }

    /// Authorizes a prepared request and maps Cedar's response to an effect
    /// (see the module docs for how step-up is read from the annotations).
    #[must_use]
    pub fn decide_prepared(&self, req: &Request) -> PeerEffect {
        let response = self
            .authorizer
            .is_authorized(req, &self.policies, &self.entities);
        let diagnostics = response.diagnostics();
        // Cedar skips policies that error; a skipped forbid would fail open.
        if diagnostics.errors().next().is_some() || response.decision() == Decision::Deny {
            return PeerEffect::Deny;
        }
        let mut intent_matched = false;
        let mut step_up = false;
        for id in diagnostics.reason() {
            if self.policies.annotation(id, "kind") == Some("intent") {
                intent_matched = true;
            }
            if self.policies.annotation(id, "effect") == Some("step-up") {
                step_up = true;
            }
        }
        match (intent_matched, step_up) {
            (false, _) => PeerEffect::Deny,
            (true, true) => PeerEffect::StepUp,
            (true, false) => PeerEffect::Allow,
        }
    }
}

// ---------------------------------------------------------------------------
// Rego
// ---------------------------------------------------------------------------

fn rego_engine(rules: &Rules) -> Result<Engine, PeerError> {
    let mut engine = Engine::new();
    engine
        .add_policy("arbiter.rego".to_owned(), rego_policy_text(rules))
        .map_err(rego_err)?;
    Ok(engine)
}

/// Rego peer on regorus's interpreter: one [`Engine`] with the policy added
/// once; per decision the input is replaced and `data.arbiter.effect`
/// evaluated with [`Engine::eval_rule`].
#[derive(Debug, Clone)]
pub struct RegoInterpreter {
    engine: Engine,
}

impl RegoInterpreter {
    /// Parses [`rego_policy_text`] for `rules` into a new engine.
    ///
    /// # Errors
    /// [`PeerError::Rego`] if regorus rejects the generated policy.
    pub fn new(rules: &Rules) -> Result<Self, PeerError> {
        Ok(Self {
            engine: rego_engine(rules)?,
        })
    }

    /// Decides one action given as JSON (parsed with
    /// [`Engine::set_input_json`]).
    ///
    /// # Errors
    /// [`PeerError::Rego`] for invalid JSON or an evaluation error (the
    /// interpreter reports builtin type errors, e.g. a non-string
    /// `tool.name`, as errors); [`PeerError::UnexpectedResult`] if the
    /// policy yields something other than an effect.
    pub fn decide_json(&mut self, json: &str) -> Result<PeerEffect, PeerError> {
        self.engine.set_input_json(json).map_err(rego_err)?;
        self.eval()
    }

    /// Decides one action already parsed into a regorus [`Value`] (a cheap
    /// reference-counted clone is stored as the input).
    ///
    /// # Errors
    /// As `decide_json`, minus JSON parsing.
    pub fn decide_value(&mut self, input: &Value) -> Result<PeerEffect, PeerError> {
        self.engine.set_input(input.clone());
        self.eval()
    }

    fn eval(&mut self) -> Result<PeerEffect, PeerError> {
        let value = self
            .engine
            .eval_rule(REGO_ENTRY_POINT.to_owned())
            .map_err(rego_err)?;
        PeerEffect::from_rego(&value)
    }
}

/// Rego peer on regorus's register VM: the policy is compiled once to an
/// RVM [`Program`] (via [`Engine::compile_with_entrypoint`] and
/// [`Compiler::compile_from_policy`]) and loaded into one [`RegoVM`] that is
/// reused; per decision the input is replaced and the VM executed.
#[derive(Debug)]
pub struct RegoRvm {
    program: Arc<Program>,
    vm: RegoVM,
}

impl RegoRvm {
    /// Compiles [`rego_policy_text`] for `rules` to an RVM program.
    ///
    /// # Errors
    /// [`PeerError::Rego`] if regorus rejects the policy or cannot compile
    /// it to an RVM program.
    pub fn new(rules: &Rules) -> Result<Self, PeerError> {
        let mut engine = rego_engine(rules)?;
        let compiled = engine
            .compile_with_entrypoint(&REGO_ENTRY_POINT.into())
            .map_err(rego_err)?;
        let program =
            Compiler::compile_from_policy(&compiled, &[REGO_ENTRY_POINT]).map_err(rego_err)?;
        let mut vm = RegoVM::new();
        vm.load_program(Arc::clone(&program));
        vm.set_max_instructions(RVM_MAX_INSTRUCTIONS);
        Ok(Self { program, vm })
    }

    /// The compiled program (for inspection, e.g. instruction counts).
    #[must_use]
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Decides one action given as JSON (parsed with [`Value::from_json_str`]).
    ///
    /// # Errors
    /// [`PeerError::Rego`] for invalid JSON or a VM error (e.g. the
    /// instruction budget); [`PeerError::UnexpectedResult`] if the policy
    /// yields something other than an effect.
    pub fn decide_json(&mut self, json: &str) -> Result<PeerEffect, PeerError> {
        let input = Value::from_json_str(json).map_err(rego_err)?;
        self.vm.set_input(input);
        self.run()
    }

    /// Decides one action already parsed into a regorus [`Value`] (a cheap
    /// reference-counted clone is stored as the input).
    ///
    /// # Errors
    /// As `decide_json`, minus JSON parsing.
    pub fn decide_value(&mut self, input: &Value) -> Result<PeerEffect, PeerError> {
        self.vm.set_input(input.clone());
        self.run()
    }

    fn run(&mut self) -> Result<PeerEffect, PeerError> {
        let value = self.vm.execute().map_err(rego_err)?;
        PeerEffect::from_rego(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Peers {
        cedar: CedarPeer,
        interp: RegoInterpreter,
        rvm: RegoRvm,
    }

    impl Peers {
        fn new(rules: &Rules) -> Self {
            Self {
                cedar: CedarPeer::new(rules).expect("cedar"),
                interp: RegoInterpreter::new(rules).expect("rego interpreter"),
                rvm: RegoRvm::new(rules).expect("rego rvm"),
            }
        }

        /// All engines, all entry points; asserts they agree and returns the effect.
        fn decide(&mut self, json: &str) -> PeerEffect {
            let value = Value::from_json_str(json).expect("input json");
            let cedar = self.cedar.decide_json(json).expect("cedar decide");
            let prepared = self.cedar.prepare(json).expect("cedar prepare");
            let results = [
                ("cedar/json", cedar),
                ("cedar/prepared", self.cedar.decide_prepared(&prepared)),
                (
                    "interp/json",
                    self.interp.decide_json(json).expect("interp json"),
                ),
                (
                    "interp/value",
                    self.interp.decide_value(&value).expect("interp value"),
                ),
                ("rvm/json", self.rvm.decide_json(json).expect("rvm json")),
                (
                    "rvm/value",
                    self.rvm.decide_value(&value).expect("rvm value"),
                ),
            ];
            for (engine, effect) in results {
                assert_eq!(effect, cedar, "{engine} disagrees with cedar on {json}");
            }
            cedar
        }
    }

    #[test]
    fn inputs_are_about_600_bytes() {
        for (name, json, _) in INPUTS {
            let compact =
                serde_json::to_string(&serde_json::from_str::<serde_json::Value>(json).unwrap())
                    .unwrap();
            assert!(
                (450..=800).contains(&compact.len()),
                "{name}: {} bytes",
                compact.len()
            );
        }
    }

    #[test]
    fn every_engine_matches_expected_on_inputs() {
        for extra in [0, 50] {
            let mut peers = Peers::new(&Rules::reference(extra));
            // Twice, to catch state leaking between decisions on reused engines.
            for _ in 0..2 {
                for (name, json, expected) in INPUTS {
                    assert_eq!(peers.decide(json), *expected, "{name} with extra={extra}");
                }
            }
        }
    }

    /// Replaces `path` (dot-separated object keys) in the JSON, or removes it.
    fn edit(json: &str, path: &str, value: Option<serde_json::Value>) -> String {
        let mut doc: serde_json::Value = serde_json::from_str(json).unwrap();
        let keys: Vec<&str> = path.split('.').collect();
        let (last, parents) = keys.split_last().unwrap();
        let mut cur = &mut doc;
        for k in parents {
            cur = cur.get_mut(*k).unwrap();
        }
        let obj = cur.as_object_mut().unwrap();
        match value {
            Some(v) => {
                obj.insert((*last).to_owned(), v);
            }
            None => {
                obj.remove(*last);
            }
        }
        doc.to_string()
    }

    #[test]
    #[allow(clippy::too_many_lines)]
    fn engines_agree_on_rule_variations() {
        use serde_json::json;
        let read = INPUTS[0].1;
        let refund = INPUTS[4].1;
        let mail_ok = edit(
            &edit(
                &edit(INPUTS[1].1, "task.intent", Some(json!("send-report"))),
                "arguments.to",
                Some(json!(["a@example.com", "b@example.com"])),
            ),
            "delegation",
            Some(json!([{"id": "user:alice", "scopes": ["mail:send"]}])),
        );
        let cases: Vec<(String, PeerEffect)> = vec![
            (edit(read, "task", None), PeerEffect::Deny),
            (edit(read, "time", None), PeerEffect::Deny),
            (edit(read, "task.expires_at", None), PeerEffect::Allow),
            (
                edit(read, "task.started_at", Some(json!(1_767_225_600_001_i64))),
                PeerEffect::Deny,
            ),
            (
                edit(read, "arguments.path", Some(json!("/repo"))),
                PeerEffect::Allow,
            ),
            (
                edit(read, "arguments.path", Some(json!("/repository"))),
                PeerEffect::Deny,
            ),
            (
                edit(read, "arguments.path", Some(json!("/etc/passwd"))),
                PeerEffect::Deny,
            ),
            (
                edit(read, "arguments.path", Some(json!(42))),
                PeerEffect::Deny,
            ),
            (edit(read, "arguments", None), PeerEffect::Deny),
            (edit(read, "credential", None), PeerEffect::Deny),
            (edit(read, "credential.expires_at", None), PeerEffect::Allow),
            (
                edit(
                    read,
                    "credential.expires_at",
                    Some(json!(1_767_225_600_000_i64)),
                ),
                PeerEffect::Deny,
            ),
            (edit(read, "credential.audience", None), PeerEffect::Deny),
            (
                edit(read, "credential.audience", Some(json!("github"))),
                PeerEffect::Deny,
            ),
            (edit(read, "delegation", None), PeerEffect::Allow),
            (edit(read, "delegation", Some(json!([]))), PeerEffect::Allow),
            (
                edit(
                    read,
                    "delegation",
                    Some(json!([
                        {"scopes": ["fs:read"]}, {"scopes": ["fs:read"]}, {"scopes": ["fs:read"]}
                    ])),
                ),
                PeerEffect::Allow,
            ),
            (
                edit(
                    read,
                    "delegation",
                    Some(json!([
                        {"scopes": ["fs:read"]}, {"scopes": ["fs:read"]},
                        {"scopes": ["fs:read"]}, {"scopes": ["fs:read"]}
                    ])),
                ),
                PeerEffect::Deny,
            ),
            (
                edit(
                    read,
                    "delegation",
                    Some(json!([{"scopes": ["fs:read"]}, {"scopes": ["repo:read"]}])),
                ),
                PeerEffect::Deny,
            ),
            (
                edit(read, "delegation", Some(json!([{"id": "user:x"}]))),
                PeerEffect::Deny,
            ),
            (edit(read, "resource", None), PeerEffect::Allow),
            (
                edit(read, "resource.labels", Some(json!(["secret"]))),
                PeerEffect::Allow,
            ),
            (edit(read, "tool", None), PeerEffect::Deny),
            (
                edit(read, "tool.name", Some(json!("write_file"))),
                PeerEffect::Deny,
            ),
            (edit(read, "agent", None), PeerEffect::Allow),
            // github prefix rules: get_issue has a scope rule, get_commit does not.
            (
                edit(
                    &edit(
                        read,
                        "tool",
                        Some(json!({"server": "github", "name": "get_issue"})),
                    ),
                    "credential.audience",
                    Some(json!("github")),
                ),
                PeerEffect::Allow,
            ),
            (
                edit(
                    &edit(
                        read,
                        "tool",
                        Some(json!({"server": "github", "name": "get_commit"})),
                    ),
                    "credential.audience",
                    Some(json!("github")),
                ),
                PeerEffect::Deny,
            ),
            // web/fetch needs no scope and no credential, but not with secret data.
            (
                edit(
                    &edit(
                        read,
                        "tool",
                        Some(json!({"server": "web", "name": "fetch"})),
                    ),
                    "credential",
                    None,
                ),
                PeerEffect::Allow,
            ),
            (
                edit(
                    &edit(
                        &edit(
                            read,
                            "tool",
                            Some(json!({"server": "web", "name": "fetch"})),
                        ),
                        "credential",
                        None,
                    ),
                    "resource.labels",
                    Some(json!(["secret"])),
                ),
                PeerEffect::Deny,
            ),
            // High-risk tool without an intent rule must deny, not step up.
            (
                edit(
                    &edit(
                        &edit(
                            read,
                            "tool",
                            Some(json!({"server": "fs", "name": "delete_file"})),
                        ),
                        "credential.scopes",
                        Some(json!(["fs:write", "fs:delete"])),
                    ),
                    "delegation",
                    None,
                ),
                PeerEffect::Deny,
            ),
            (
                edit(refund, "credential.scopes", Some(json!(["db:read"]))),
                PeerEffect::Deny,
            ),
            (
                edit(refund, "task.intent", Some(json!("send-report"))),
                PeerEffect::Deny,
            ),
            (mail_ok.clone(), PeerEffect::Allow),
            (
                edit(&mail_ok, "arguments.to", Some(json!("x@example.com"))),
                PeerEffect::Allow,
            ),
            (
                edit(
                    &mail_ok,
                    "arguments.to",
                    Some(json!(["a@example.com", "b@evil.com"])),
                ),
                PeerEffect::Deny,
            ),
            (
                edit(&mail_ok, "arguments.to", Some(json!(["a@example.com", 7]))),
                PeerEffect::Deny,
            ),
            (
                edit(&mail_ok, "arguments.to", Some(json!("example.com"))),
                PeerEffect::Deny,
            ),
            (
                edit(&mail_ok, "arguments.to", Some(json!("x@notexample.com"))),
                PeerEffect::Deny,
            ),
            (edit(&mail_ok, "arguments.to", None), PeerEffect::Deny),
            (
                edit(&mail_ok, "resource.labels", Some(json!(["secret"]))),
                PeerEffect::Deny,
            ),
        ];
        for extra in [0, 50] {
            let mut peers = Peers::new(&Rules::reference(extra));
            for (json, expected) in &cases {
                assert_eq!(peers.decide(json), *expected, "extra={extra}: {json}");
            }
        }
    }

    #[test]
    fn synthetic_rules_work_but_never_match_inputs() {
        let rules = Rules::reference(3);
        let mut peers = Peers::new(&rules);
        let json = edit(
            &edit(
                &edit(
                    &edit(
                        INPUTS[0].1,
                        "task.intent",
                        Some(serde_json::json!("synthetic-2")),
                    ),
                    "tool",
                    Some(serde_json::json!({"server": "svc2", "name": "op2"})),
                ),
                "credential",
                Some(serde_json::json!({"scopes": ["svc2:use"], "audience": "svc2"})),
            ),
            "delegation",
            None,
        );
        assert_eq!(peers.decide(&json), PeerEffect::Allow);
        let wrong_scope = edit(
            &json,
            "credential.scopes",
            Some(serde_json::json!(["svc1:use"])),
        );
        assert_eq!(peers.decide(&wrong_scope), PeerEffect::Deny);
    }

    #[test]
    fn bad_json_is_an_error() {
        for rules in [Rules::reference(0), Rules::reference(50)] {
            let cedar = CedarPeer::new(&rules).unwrap();
            let mut interp = RegoInterpreter::new(&rules).unwrap();
            let mut rvm = RegoRvm::new(&rules).unwrap();
            for bad in ["", "{", "not json", r#"{"time": }"#, "[1, 2"] {
                assert!(cedar.decide_json(bad).is_err(), "cedar accepted {bad:?}");
                assert!(
                    cedar.prepare(bad).is_err(),
                    "cedar prepare accepted {bad:?}"
                );
                assert!(interp.decide_json(bad).is_err(), "interp accepted {bad:?}");
                assert!(rvm.decide_json(bad).is_err(), "rvm accepted {bad:?}");
            }
            // Still usable afterwards.
            let (_, json, expected) = INPUTS[0];
            assert_eq!(cedar.decide_json(json).unwrap(), expected);
            assert_eq!(interp.decide_json(json).unwrap(), expected);
            assert_eq!(rvm.decide_json(json).unwrap(), expected);
        }
    }

    #[test]
    fn wrong_types_never_panic() {
        let rules = Rules::reference(0);
        let cedar = CedarPeer::new(&rules).unwrap();
        let mut interp = RegoInterpreter::new(&rules).unwrap();
        let mut rvm = RegoRvm::new(&rules).unwrap();
        for odd in [
            "null",
            "42",
            "[]",
            "{}",
            r#"{"time": "soon"}"#,
            r#"{"tool": {"server": 1, "name": ["x"]}, "time": 1}"#,
            r#"{"task": {"intent": "summarize-repo", "started_at": 0}, "time": 1, "tool": {"server": "github", "name": 5}}"#,
        ] {
            // Rego always yields a decision for a JSON object; Cedar may reject wrong types.
            let c = cedar.decide_json(odd);
            let i = interp.decide_json(odd);
            let r = rvm.decide_json(odd);
            for effect in [&c, &i, &r].into_iter().flatten() {
                assert_eq!(*effect, PeerEffect::Deny, "{odd}: {c:?} {i:?} {r:?}");
            }
        }
    }

    #[test]
    fn policy_texts_render() {
        let rules = Rules::reference(0);
        let cedar = cedar_policy_text(&rules);
        let rego = rego_policy_text(&rules);
        assert!(cedar.contains("Action::\"call\""));
        assert!(rego.starts_with("package arbiter"));
    }
}
