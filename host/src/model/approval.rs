//! Approvals: how a step-up completes.
//!
//! A step-up decision creates a pending [`Approval`] bound to exactly one call: the agent
//! (as the decision service resolved it, verified or not), the task, the tool, a hash of
//! the canonicalised arguments ([`super::arguments_sha256`]) and the policy-set
//! generation. Approvers of the groups the `require-approval` obligations name approve or
//! reject it. When the agent retries the identical call, the approved record is consumed
//! (once) and the decision is `allow`, naming the approval. An argument such as
//! `"approved": true` proves nothing: only the record does.

use super::action::Action;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The obligation a step-up carries to name its approver group.
pub const APPROVAL_OBLIGATION: &str = "require-approval";

/// What an approval is for: one call, under one policy set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApprovalBinding {
    /// The agent id (the verified SPIFFE ID when the request carried an SVID).
    pub agent: String,
    /// How the agent was established: `x509-svid`, `jwt-svid`, `none`.
    pub attestation: String,
    /// The task, when the action has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub task: Option<String>,
    /// The tool server.
    pub server: String,
    /// The tool.
    pub tool: String,
    /// Hex SHA-256 of the canonicalised arguments.
    pub arguments_sha256: String,
    /// Hex SHA-256 of the canonicalised rest of the action (the task's fields, the
    /// delegation, the credential, the resource and the environment; not the request id
    /// or the time): an approval on behalf of one principal, for one resource, is not
    /// one for another.
    pub context_sha256: String,
    /// The policy-set generation that asked for the approval.
    pub generation: u64,
}

impl ApprovalBinding {
    /// The binding of `action` decided on policy-set `generation`.
    pub fn of(action: &Action, generation: u64) -> Self {
        Self {
            agent: action.agent.id.clone(),
            attestation: action.agent.attestation.clone(),
            task: action.task.as_ref().map(|t| t.id.clone()),
            server: action.tool.server.clone(),
            tool: action.tool.name.clone(),
            arguments_sha256: super::arguments_sha256(&action.arguments),
            context_sha256: context_sha256(action),
            generation,
        }
    }
}

/// The hash of everything in `action` that the other binding fields do not cover.
fn context_sha256(action: &Action) -> String {
    let mut context = serde_json::to_value(action).unwrap_or(Value::Null);
    if let Some(fields) = context.as_object_mut() {
        for covered in ["request_id", "time", "arguments", "agent", "tool"] {
            fields.remove(covered);
        }
        // The task's id is bound on its own, and its start is when the gateway first
        // saw it (it may differ between an asserted task's calls); its intent, expiry
        // and labels are part of the context.
        if let Some(task) = fields.get_mut("task").and_then(Value::as_object_mut) {
            task.remove("started_at");
        }
    }
    super::arguments_sha256(&context)
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalStatus {
    /// Waiting for approvers.
    Pending,
    /// Every group it needs approved; the identical call will be allowed once.
    Approved,
    /// An approver rejected it; the identical call is denied.
    Rejected,
    /// The approved call was made: it allowed one decision, and never another.
    Consumed,
    /// Not approved and used before its expiry.
    Expired,
}

impl ApprovalStatus {
    /// `pending`, `approved`, `rejected`, `consumed`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Consumed => "consumed",
            ApprovalStatus::Expired => "expired",
        }
    }
}

/// Who approved or rejected, and how they were authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRecord {
    /// The approver: a verified SPIFFE ID, or the name given with a group token.
    pub approver: String,
    /// How: `token:<group>`, `x509-svid`, `jwt-svid`.
    pub authenticated_by: String,
    /// The groups they acted for.
    pub groups: Vec<String>,
    /// When, Unix ms.
    pub at: u64,
    /// Their note, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// A plugin that asked for the step-up, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpCause {
    /// The operator's name of the plugin.
    pub plugin: String,
    /// Its reason.
    pub reason: String,
}

/// A pending, decided or used approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Its id, `apr-<uuid>`.
    pub id: String,
    /// The one call it is for.
    pub binding: ApprovalBinding,
    /// The approver groups the `require-approval` obligations named (sorted). Each must
    /// approve; with none named, any configured approver may.
    pub groups: Vec<String>,
    /// The task's intent, for the approver.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub intent: Option<String>,
    /// The call's arguments as the agent sent them. Shown to approvers redacted as the
    /// decision log redacts them.
    pub arguments: Value,
    /// The plugins that asked for the step-up.
    pub causes: Vec<StepUpCause>,
    /// The step-up decision's reason.
    pub reason: String,
    /// The step-up decision that asked for it.
    pub requested_by: String,
    /// When it was asked for, Unix ms.
    pub created_at: u64,
    /// When it lapses, Unix ms: after this it neither allows nor can be approved.
    pub expires_at: u64,
    /// Pending, approved, rejected or consumed (expiry is read with [`Approval::status`]).
    pub state: ApprovalStatus,
    /// The approvals given so far.
    #[serde(default)]
    pub approved_by: Vec<ApproverRecord>,
    /// The rejection, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rejected_by: Option<ApproverRecord>,
    /// The decision that used it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub consumed_by: Option<String>,
}

impl Approval {
    /// Where it stands at `now` (Unix ms): a pending or approved approval past its
    /// expiry is expired.
    pub fn status(&self, now: u64) -> ApprovalStatus {
        match self.state {
            ApprovalStatus::Pending | ApprovalStatus::Approved if now >= self.expires_at => {
                ApprovalStatus::Expired
            }
            state => state,
        }
    }

    /// The groups that have not approved yet.
    pub fn missing_groups(&self) -> Vec<&str> {
        self.groups
            .iter()
            .filter(|g| !self.approved_by.iter().any(|a| a.groups.contains(g)))
            .map(String::as_str)
            .collect()
    }

    /// What a decision says about it.
    pub fn reference(&self, now: u64) -> ApprovalRef {
        ApprovalRef {
            id: self.id.clone(),
            status: self.status(now),
            groups: self.groups.clone(),
            expires_at: self.expires_at,
            approved_by: self
                .approved_by
                .iter()
                .map(|a| a.approver.clone())
                .collect(),
        }
    }
}

/// The approval a decision created, is waiting for, or used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRef {
    /// The approval's id.
    pub id: String,
    /// `pending` (a step-up), `consumed` (the allow it made), `rejected` (a deny).
    pub status: ApprovalStatus,
    /// The approver groups it needs.
    pub groups: Vec<String>,
    /// When it lapses, Unix ms.
    pub expires_at: u64,
    /// Who approved it, when someone did.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub approved_by: Vec<String>,
}

/// An approver's answer to an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalVerdict {
    /// Approve (true) or reject.
    pub approve: bool,
    /// Who, authenticated how, for which groups, with what note.
    pub approver: ApproverRecord,
}

/// Why an approver's answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// No approval has that id.
    #[error("no approval `{0}`")]
    Unknown(String),
    /// It was already decided or used.
    #[error("approval `{id}` is {status}, not pending", status = status.as_str())]
    NotPending {
        /// The approval.
        id: String,
        /// Where it stands.
        status: ApprovalStatus,
    },
    /// Its expiry passed.
    #[error("approval `{0}` has expired")]
    Expired(String),
    /// The approver is in none of the groups it needs.
    #[error("`{approver}` may not answer approval `{id}`: it needs {needs}, and `{approver}` is in {has}",
        needs = groups_text(needs), has = groups_text(has))]
    NotInGroup {
        /// The approval.
        id: String,
        /// The approver.
        approver: String,
        /// The groups it still needs.
        needs: Vec<String>,
        /// The approver's groups.
        has: Vec<String>,
    },
    /// The approver is the agent the approval is for.
    #[error("`{approver}` may not answer approval `{id}`: it is the agent whose call it is")]
    OwnCall {
        /// The approval.
        id: String,
        /// The approver.
        approver: String,
    },
    /// The agent has as many approvals waiting as it may.
    #[error(
        "agent `{agent}` has {bound} approvals waiting: no new one until some are answered or expire"
    )]
    AgentFull {
        /// The agent.
        agent: String,
        /// The bound.
        bound: usize,
    },
    /// Its task ended or was quarantined: nothing of it may run.
    #[error("approval `{id}` is for task `{task}`, which {why}")]
    TaskClosed {
        /// The approval.
        id: String,
        /// The task.
        task: String,
        /// `has ended`, `is quarantined`.
        why: String,
    },
    /// The store holds as many approvals as it may.
    #[error(
        "{bound} approvals are held (`approvals.max_approvals`): no new one can be asked for until some expire"
    )]
    Full {
        /// The bound.
        bound: usize,
    },
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        "no group".to_owned()
    } else {
        groups
            .iter()
            .map(|g| format!("`{g}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the store found for a step-up decision's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalMatch {
    /// An approved approval of exactly this call, now consumed by this decision.
    Consumed(Approval),
    /// This exact call was rejected.
    Rejected(Approval),
    /// An approval of exactly this call is still pending.
    Pending(Approval),
    /// Nothing usable. `near_miss` says why an approval that looks like it does not
    /// apply (other arguments, agent, task or policy generation; used; expired).
    None {
        /// The reason, naming the approval.
        near_miss: Option<String>,
    },
}
