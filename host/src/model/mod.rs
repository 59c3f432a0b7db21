//! The domain model: what a gateway asks ([`Action`]), what Arbiter answers
//! ([`Decision`]), and what a task remembers ([`TaskSnapshot`]). Plain data with serde;
//! every other layer speaks these types, and only `contract` converts them to a WIT
//! contract version's types.

mod action;
mod approval;
mod canonical;
mod clock;
mod decision;
mod task;

pub use action::{
    Action, ActionError, ActionErrorKind, Agent, Credential, ID_PUNCTUATION, MAX_AGENT_ID_BYTES,
    MAX_ARGUMENTS_BYTES, MAX_FIELD_BYTES, MAX_ID_BYTES, MAX_LIST_LEN, PHASE_KEY, Principal,
    RESERVED_ENVIRONMENT_PREFIX, Resource, Task, Tool, check_agent_id, check_id,
};
pub use approval::{
    APPROVAL_OBLIGATION, Approval, ApprovalBinding, ApprovalMatch, ApprovalRef, ApprovalRefusal,
    ApprovalStatus, ApprovalVerdict, ApproverRecord, StepUpCause,
};
pub use canonical::{arguments_sha256, canonical_json};
pub use clock::{unix_ms, unix_ms_now};
pub use decision::{
    Decision, DecisionEffect, Effect, IdentityRecord, IssuedCredential, Mode, Obligation, Outcome,
    PluginEntry, SignatureStatus, outcome_word,
};
pub use task::{HistoryEntry, OpenTask, OpenedTask, TaskMode, TaskSnapshot};
