//! The decision record: what Arbiter answers and what an auditor reads.
//!
//! JSON shape (all keys always present unless marked optional):
//!
//! ```json
//! {
//!   "decision_id": "0b5e…",                // UUID v4
//!   "request_id": "req-42",                // from the action
//!   "task_id": "task-7",                   // optional: absent without a task
//!   "time": "2026-11-28T14:03:07.123Z",    // RFC 3339, UTC
//!   "effect": "deny",                      // allow | deny | step-up
//!   "reason": "denied by `intent`: tool `fs/write_file` is not allowed …",
//!   "generation": 1,                       // policy-set generation that decided
//!   "obligations": [{"kind": "redact", "detail": "/body", "plugin": "sensitivity"}],
//!   "plugins": [{
//!     "name": "intent",                    // operator's name from the config
//!     "plugin": "intent", "version": "0.1.0", "kind": "intent",   // from describe()
//!     "digest": "sha256:9f2c…",            // of the module bytes that ran
//!     "signer": "release",                 // id of the trusted key whose signature verified;
//!                                          // null only when "signature" is "unsigned"
//!     "signature": "verified",             // verified | unsigned (only under the development
//!                                          // switch `trust.allow_unsigned`)
//!     "mode": "enforce",                   // enforce | monitor
//!     "outcome": "ok",                     // ok | trap | timeout | out-of-memory | invalid-output | error
//!     "verdict": "deny",                   // optional: what the plugin returned (absent on failure)
//!     "effect": "deny",                    // what counted: the verdict, or the on-error effect
//!     "counted": true,                     // false for monitor mode
//!     "reason": "tool `fs/write_file` is not allowed for intent `summarize-repo`",
//!     "obligations": [], "labels": [],
//!     "elapsed_us": 12
//!   }],
//!   "elapsed_us": 31
//! }
//! ```

use serde::{Deserialize, Serialize};

/// Whether a plugin's verdict counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The verdict is combined into the decision.
    #[default]
    Enforce,
    /// Shadow mode: evaluated and reported, never counted.
    Monitor,
}

/// Whether a loaded module was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// Its signature verified against a trusted key (the `signer`).
    Verified,
    /// It has no signature and was loaded under `trust.allow_unsigned` (development).
    Unsigned,
}

/// A plugin's effect on an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// May proceed.
    Allow,
    /// Must not proceed.
    Deny,
    /// May proceed after human approval or stronger authentication.
    StepUp,
    /// Not this plugin's concern.
    Abstain,
}

/// The final effect of a decision: never `abstain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionEffect {
    /// The action may proceed (with the decision's obligations).
    Allow,
    /// The action must not proceed.
    Deny,
    /// The action may proceed only after step-up.
    StepUp,
}

impl DecisionEffect {
    /// The word used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp => "step-up",
        }
    }
}

impl From<DecisionEffect> for Effect {
    fn from(effect: DecisionEffect) -> Self {
        match effect {
            DecisionEffect::Allow => Effect::Allow,
            DecisionEffect::Deny => Effect::Deny,
            DecisionEffect::StepUp => Effect::StepUp,
        }
    }
}

/// How a plugin's evaluation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The plugin returned a well-formed verdict.
    Ok,
    /// The plugin trapped (including panics, `unreachable`, stack overflow).
    Trap,
    /// The plugin exceeded its CPU deadline.
    Timeout,
    /// The plugin tried to grow memory past its cap.
    OutOfMemory,
    /// The verdict broke the contract's bounds (oversized reason, too many obligations, …).
    InvalidOutput,
    /// Any other failure (instantiation, a host-side fault).
    Error,
}

/// An obligation in a decision, with the plugin that imposed it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Obligation {
    /// What to do: `redact`, `max-ttl`, `require-approval`, …
    pub kind: String,
    /// Its parameter.
    pub detail: String,
    /// The operator's name of the plugin that imposed it.
    pub plugin: String,
}

/// One plugin's part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginEntry {
    /// Operator's name from the config.
    pub name: String,
    /// Name the plugin gives itself (`describe()`).
    pub plugin: String,
    /// Plugin version (`describe()`).
    pub version: String,
    /// Evaluator kind (`describe()`).
    pub kind: String,
    /// `sha256:` digest of the module that ran.
    pub digest: String,
    /// Id of the trusted key that signed the module; `None` only for an unsigned module
    /// loaded under the development switch.
    pub signer: Option<String>,
    /// `verified`, or `unsigned` (development switch only).
    pub signature: SignatureStatus,
    /// Enforce or monitor.
    pub mode: Mode,
    /// How the evaluation went.
    pub outcome: Outcome,
    /// The plugin's own verdict, when it returned one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verdict: Option<Effect>,
    /// The effect that counts: the verdict, or the on-error effect on failure.
    pub effect: Effect,
    /// Whether the effect was combined (false in monitor mode).
    pub counted: bool,
    /// The plugin's reason, or what went wrong.
    pub reason: String,
    /// The plugin's obligations.
    pub obligations: Vec<Obligation>,
    /// Labels the plugin attached (recorded in the task history).
    pub labels: Vec<String>,
    /// Wall time of this evaluation, instantiation included, in microseconds.
    pub elapsed_us: u64,
}

/// Arbiter's answer about one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Unique id of this decision (UUID v4).
    pub decision_id: String,
    /// The action's request id.
    pub request_id: String,
    /// The action's task id, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task_id: Option<String>,
    /// When the decision was made (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The final effect.
    pub effect: DecisionEffect,
    /// Why, in one line.
    pub reason: String,
    /// The policy-set generation that made the decision.
    pub generation: u64,
    /// Obligations from the plugins whose effect matches the final effect.
    pub obligations: Vec<Obligation>,
    /// Every plugin that took part, in configuration order.
    pub plugins: Vec<PluginEntry>,
    /// Wall time of the whole decision in microseconds.
    pub elapsed_us: u64,
    /// Who the decision was for and how that was established, when the decision service
    /// resolved it (absent for decisions made through the library alone).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identity: Option<IdentityRecord>,
    /// The credential minted for this allowed call, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub credential: Option<IssuedCredential>,
    /// Why this deny quarantined its task, when it did (`[tasks.quarantine]`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quarantine: Option<String>,
    /// Whether the task was `asserted` by the action or `opened` through Arbiter
    /// (`[tasks] mode`), when the action has a task.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tasks: Option<super::task::TaskMode>,
    /// The approval this step-up waits for, or that allowed (or rejected) the call.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approval: Option<super::approval::ApprovalRef>,
}

/// A per-call credential the decision service minted (see `service::credentials`).
/// Its `Debug` leaves the token out, so that traces never print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredential {
    /// Its unique id (`jti`), what the decision log records.
    pub id: String,
    /// The signed JWS. Never written to the decision log.
    pub token: String,
    /// Its `aud`.
    pub audience: String,
    /// Its scopes, after narrowing.
    pub scopes: Vec<String>,
    /// Its `exp`, Unix seconds.
    pub expires_at: u64,
}

impl std::fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("id", &self.id)
            .field("token", &"***")
            .field("audience", &self.audience)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The identity a decision was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The agent id: a SPIFFE ID when verified.
    pub id: String,
    /// `x509-svid`, `jwt-svid`, or `none` when only asserted.
    pub attestation: String,
    /// Where it came from: `mtls`, `bearer`, `asserted:body`, `asserted:header:NAME`,
    /// `asserted:config`.
    pub source: String,
    /// The trust domain, when verified.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trust_domain: Option<String>,
}

impl Decision {
    /// A human-readable summary, one line per plugin.
    pub fn explain(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} request `{}`{}: {}",
            self.effect.as_str().to_uppercase(),
            self.request_id,
            self.task_id
                .as_deref()
                .map(|t| format!(" (task `{t}`)"))
                .unwrap_or_default(),
            self.reason
        );
        for p in &self.plugins {
            let verdict = match p.verdict {
                Some(v) => effect_word(v),
                None => "-",
            };
            let _ = writeln!(
                out,
                "  {:<12} {:<8} {:<7} outcome={:<14} verdict={:<8} {:>6}µs  {}",
                p.name,
                effect_word(p.effect),
                if p.counted { "enforce" } else { "monitor" },
                outcome_word(p.outcome),
                verdict,
                p.elapsed_us,
                p.reason
            );
        }
        for o in &self.obligations {
            let _ = writeln!(
                out,
                "  obligation {} = {} (from `{}`)",
                o.kind, o.detail, o.plugin
            );
        }
        let _ = write!(
            out,
            "  decision {} · generation {} · {}µs",
            self.decision_id, self.generation, self.elapsed_us
        );
        out
    }
}

/// The JSON word for an effect.
pub fn effect_word(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::StepUp => "step-up",
        Effect::Abstain => "abstain",
    }
}

/// The JSON word for an outcome.
pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Trap => "trap",
        Outcome::Timeout => "timeout",
        Outcome::OutOfMemory => "out-of-memory",
        Outcome::InvalidOutput => "invalid-output",
        Outcome::Error => "error",
    }
}
