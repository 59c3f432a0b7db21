//! The benchmark inputs, shared by every benchmark and by the peers' agreement test:
//! five actions of about 600 bytes, each with the effect every engine must reach.
//!
//! Apart from the peers (`benches/peers/src/peers.rs`), which need Cedar and regorus,
//! so that the host's own benchmarks use the same actions without compiling either.

/// The outcome of one decision, in the peers' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerEffect {
    /// The tool call may proceed.
    Allow,
    /// The tool call is refused.
    Deny,
    /// The tool call may proceed only after a step-up (human approval).
    StepUp,
}

impl PeerEffect {
    /// The effect's name as used in the Rego policy and in benchmark labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp => "step-up",
        }
    }
}

/// The benchmark inputs: `(name, action JSON, expected effect)`.
pub const INPUTS: &[(&str, &str, PeerEffect)] = &[
    ("allow-read", ALLOW_READ, PeerEffect::Allow),
    ("deny-outside-intent", DENY_OUTSIDE_INTENT, PeerEffect::Deny),
    ("deny-missing-scope", DENY_MISSING_SCOPE, PeerEffect::Deny),
    ("deny-expired-task", DENY_EXPIRED_TASK, PeerEffect::Deny),
    ("step-up-refund", STEP_UP_REFUND, PeerEffect::StepUp),
];

const ALLOW_READ: &str = r#"{
  "request_id": "req-1",
  "agent": {"id": "spiffe://example.org/agent/repo-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:alice", "kind": "user", "scopes": ["fs:read", "repo:read"]}],
  "task": {"id": "task-42", "intent": "summarize-repo", "started_at": 1767222000000, "expires_at": 1767229200000},
  "tool": {"server": "fs", "name": "read_file"},
  "arguments": {"path": "/repo/src/main.rs", "max_bytes": 65536},
  "credential": {"scopes": ["fs:read", "repo:read"], "expires_at": 1767226000000, "audience": "fs"},
  "resource": {"id": "file:///repo/src/main.rs", "labels": ["internal"]},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;

const DENY_OUTSIDE_INTENT: &str = r#"{
  "request_id": "req-2",
  "agent": {"id": "spiffe://example.org/agent/repo-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:alice", "kind": "user", "scopes": ["fs:read", "mail:send"]}],
  "task": {"id": "task-42", "intent": "summarize-repo", "started_at": 1767222000000, "expires_at": 1767229200000},
  "tool": {"server": "mail", "name": "send_email"},
  "arguments": {"to": "someone@gmail.com", "subject": "Repository summary", "body": "See attached."},
  "credential": {"scopes": ["mail:send"], "expires_at": 1767226000000, "audience": "mail"},
  "resource": {"id": "file:///repo/README.md", "labels": ["internal"]},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;

const DENY_MISSING_SCOPE: &str = r#"{
  "request_id": "req-3",
  "agent": {"id": "spiffe://example.org/agent/triage-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:bob", "kind": "user", "scopes": ["repo:read", "chat:write"]}],
  "task": {"id": "task-77", "intent": "triage-issue", "started_at": 1767222000000, "expires_at": 1767229200000},
  "tool": {"server": "github", "name": "search_code"},
  "arguments": {"repo": "example/widgets", "query": "panic in parser", "per_page": 20},
  "credential": {"scopes": ["issues:read"], "expires_at": 1767226000000, "audience": "github"},
  "resource": {"id": "repo:example/widgets", "labels": ["internal"]},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;

const DENY_EXPIRED_TASK: &str = r#"{
  "request_id": "req-4",
  "agent": {"id": "spiffe://example.org/agent/repo-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:alice", "kind": "user", "scopes": ["fs:read", "repo:read"]}],
  "task": {"id": "task-41", "intent": "summarize-repo", "started_at": 1767218400000, "expires_at": 1767222000000},
  "tool": {"server": "fs", "name": "read_file"},
  "arguments": {"path": "/repo/Cargo.toml", "max_bytes": 65536},
  "credential": {"scopes": ["fs:read", "repo:read"], "expires_at": 1767226000000, "audience": "fs"},
  "resource": {"id": "file:///repo/Cargo.toml", "labels": ["internal"]},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;

const STEP_UP_REFUND: &str = r#"{
  "request_id": "req-5",
  "agent": {"id": "spiffe://example.org/agent/billing-bot", "attestation": "x509-svid"},
  "delegation": [{"id": "user:carol", "kind": "user", "scopes": ["db:read", "payments:refund"]}],
  "task": {"id": "task-93", "intent": "answer-billing-question", "started_at": 1767222000000, "expires_at": 1767229200000},
  "tool": {"server": "payments", "name": "create_refund"},
  "arguments": {"charge_id": "ch_3PqR8s", "amount": 4900, "currency": "EUR", "reason": "duplicate"},
  "credential": {"scopes": ["db:read", "payments:refund"], "expires_at": 1767226000000, "audience": "payments"},
  "resource": {"id": "customer:cus_8841", "labels": ["pii"]},
  "environment": {"env": "prod", "region": "eu-west-1"},
  "time": 1767225600000
}"#;
