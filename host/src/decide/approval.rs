//! The approval stage: where a step-up completes.
//!
//! A step-up decision looks in the task store for an approval of exactly its call
//! ([`ApprovalBinding`]). An approved one is consumed in the same step and the decision
//! becomes `allow`, naming it; a rejected one makes it a deny; otherwise the decision
//! stays a step-up that names the approval it waits for (asked for now, or already
//! pending). Any store fault is a deny that names the store. The stage runs before the
//! post-decision stages, so an approved call passes the obligation gate and gets its
//! credential like any other allow.

use crate::model::{
    APPROVAL_OBLIGATION, Action, Approval, ApprovalBinding, ApprovalMatch, ApprovalStatus,
    Decision, DecisionEffect, Effect, Obligation, StepUpCause,
};
use crate::task::TaskStore;
use std::time::{Duration, Instant};

/// What the stage needs besides the decision.
pub(super) struct ApprovalStage<'a> {
    pub tasks: &'a dyn TaskStore,
    pub store_timeout: Duration,
    /// Lifetime of a new approval.
    pub ttl: Duration,
    /// Now, Unix ms.
    pub now: u64,
}

impl ApprovalStage<'_> {
    pub(super) fn run(&self, action: &Action, decision: &mut Decision) {
        if decision.effect != DecisionEffect::StepUp {
            return;
        }
        let binding = ApprovalBinding::of(action, decision.generation);
        let deadline = Instant::now() + self.store_timeout;
        let found =
            match self
                .tasks
                .settle_approval(&binding, &decision.decision_id, self.now, deadline)
            {
                Ok(found) => found,
                Err(e) => return store_failed(decision, &e.to_string()),
            };
        match found {
            ApprovalMatch::Consumed(approval) => allow(decision, &approval, self.now),
            ApprovalMatch::Rejected(approval) => {
                let by = approval
                    .rejected_by
                    .as_ref()
                    .map(|r| {
                        let note = r
                            .note
                            .as_deref()
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default();
                        format!(" by `{}`{note}", r.approver)
                    })
                    .unwrap_or_default();
                decision.effect = DecisionEffect::Deny;
                decision.reason = format!(
                    "denied: approval `{}` of this exact call was rejected{by}",
                    approval.id
                );
                decision.obligations.clear();
                decision.approval = Some(approval.reference(self.now));
            }
            ApprovalMatch::Pending(approval) => {
                decision.reason = format!(
                    "{}; approval `{}` is still pending ({}); retry the identical call once it is approved",
                    decision.reason,
                    approval.id,
                    waiting_for(&approval)
                );
                decision.approval = Some(approval.reference(self.now));
            }
            ApprovalMatch::None { near_miss } => self.ask(action, binding, decision, near_miss),
        }
    }

    /// Asks for a new approval of this call.
    fn ask(
        &self,
        action: &Action,
        binding: ApprovalBinding,
        decision: &mut Decision,
        near_miss: Option<String>,
    ) {
        let mut groups: Vec<String> = decision
            .obligations
            .iter()
            .filter(|o| o.kind == APPROVAL_OBLIGATION && !o.detail.is_empty())
            .map(|o| o.detail.clone())
            .collect();
        groups.sort();
        groups.dedup();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let approval = Approval {
            id: format!("apr-{}", uuid::Uuid::new_v4()),
            binding,
            groups,
            intent: action.task.as_ref().map(|t| t.intent.clone()),
            arguments: action.arguments.clone(),
            causes: decision
                .plugins
                .iter()
                .filter(|p| p.counted && p.effect == Effect::StepUp)
                .map(|p| StepUpCause {
                    plugin: p.name.clone(),
                    reason: p.reason.clone(),
                })
                .collect(),
            reason: decision.reason.clone(),
            requested_by: decision.decision_id.clone(),
            created_at: self.now,
            expires_at: self.now.saturating_add(ttl_ms),
            state: ApprovalStatus::Pending,
            approved_by: Vec::new(),
            rejected_by: None,
            consumed_by: None,
        };
        let deadline = Instant::now() + self.store_timeout;
        let hint = near_miss.map(|why| format!(" ({why})")).unwrap_or_default();
        match self.tasks.request_approval(approval, self.now, deadline) {
            Ok(Ok(approval)) => {
                decision.reason = format!(
                    "{}; approval `{}` was asked for{hint} ({}); retry the identical call once it is approved",
                    decision.reason,
                    approval.id,
                    waiting_for(&approval)
                );
                decision.approval = Some(approval.reference(self.now));
            }
            // The call stays a step-up; it simply cannot complete now.
            Ok(Err(refusal)) => {
                decision.reason = format!("{}; {refusal}{hint}", decision.reason);
            }
            Err(e) => store_failed(decision, &e.to_string()),
        }
    }
}

/// The approved call: allowed, with the obligations of the plugins that allowed it and
/// of those that asked for the step-up (less the approval itself, now satisfied).
fn allow(decision: &mut Decision, approval: &Approval, now: u64) {
    let mut obligations: Vec<Obligation> = Vec::new();
    for entry in decision
        .plugins
        .iter()
        .filter(|p| p.counted && matches!(p.effect, Effect::Allow | Effect::StepUp))
    {
        for o in entry
            .obligations
            .iter()
            .filter(|o| o.kind != APPROVAL_OBLIGATION)
        {
            if !obligations
                .iter()
                .any(|x| x.kind == o.kind && x.detail == o.detail)
            {
                obligations.push(o.clone());
            }
        }
    }
    let approvers: Vec<String> = approval
        .approved_by
        .iter()
        .map(|a| format!("`{}`", a.approver))
        .collect();
    decision.effect = DecisionEffect::Allow;
    decision.reason = format!(
        "allowed by approval `{}` of this exact call (approved by {}); it had asked: {}",
        approval.id,
        if approvers.is_empty() {
            "?".to_owned()
        } else {
            approvers.join(", ")
        },
        decision.reason
    );
    decision.obligations = obligations;
    decision.approval = Some(approval.reference(now));
}

fn waiting_for(approval: &Approval) -> String {
    let missing = approval.missing_groups();
    if approval.groups.is_empty() {
        "any approver may answer".to_owned()
    } else {
        let names: Vec<String> = missing.iter().map(|g| format!("`{g}`")).collect();
        format!("approvers: {}", names.join(", "))
    }
}

fn store_failed(decision: &mut Decision, error: &str) {
    tracing::error!(decision_id = %decision.decision_id, error, "approval store failed; denying");
    decision.effect = DecisionEffect::Deny;
    decision.reason = format!("denied: the step-up's approval could not be looked up: {error}");
    decision.obligations.clear();
}
