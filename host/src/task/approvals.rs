//! The in-memory approval book: pending, decided and used approvals, bounded.
//!
//! Every change is one step under one lock, so an approval is consumed at most once
//! however many decisions race for it, and an approver's answer and a retry never
//! interleave. Used and rejected approvals are kept until their expiry, so that a replay
//! is told the approval was already used rather than asked to step up afresh without a
//! reason. Finding an approval scans the book: approvals come from step-ups that humans
//! answer, and the book is bounded (`approvals.max_approvals`).

use crate::model::{
    Approval, ApprovalBinding, ApprovalMatch, ApprovalRefusal, ApprovalStatus, ApprovalVerdict,
};
use std::collections::HashMap;
use std::sync::Mutex;

/// Pending approvals one agent may have at once: one agent cannot fill the book.
pub const MAX_PENDING_PER_AGENT: usize = 100;
/// Arguments larger than this (canonical JSON) are not kept in an approval; it keeps their
/// hash (the binding) and says how large they were.
pub const MAX_KEPT_ARGUMENT_BYTES: usize = 64 * 1024;

/// The approvals of one store.
#[derive(Debug)]
pub struct ApprovalBook {
    max: usize,
    approvals: Mutex<HashMap<String, Approval>>,
}

impl ApprovalBook {
    /// A book holding at most `max` approvals.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            approvals: Mutex::new(HashMap::new()),
        }
    }

    /// A book holding at most `max` approvals, starting with `approvals` (a shared
    /// store loads one task's approvals into a book, applies one operation with the
    /// same rules as in memory, and writes back what changed).
    pub fn from_approvals(max: usize, approvals: impl IntoIterator<Item = Approval>) -> Self {
        Self {
            max,
            approvals: Mutex::new(approvals.into_iter().map(|a| (a.id.clone(), a)).collect()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Approval>> {
        // Each operation replaces whole records: a panic elsewhere cannot leave one
        // half-written.
        self.approvals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for `approval`, unless one for the same call is already waiting (pending and
    /// unexpired): then that one is returned, so that retries before the approver
    /// answers do not pile up requests.
    pub fn request(&self, mut approval: Approval, now: u64) -> Result<Approval, ApprovalRefusal> {
        let size = crate::model::canonical_json(&approval.arguments).len();
        if size > MAX_KEPT_ARGUMENT_BYTES {
            approval.arguments = serde_json::Value::String(format!(
                "({size} bytes of arguments: too large to keep; their SHA-256 is bound)"
            ));
        }
        let mut book = self.lock();
        if let Some(waiting) = book
            .values()
            .filter(|a| a.binding == approval.binding && a.status(now) == ApprovalStatus::Pending)
            .max_by_key(|a| a.created_at)
        {
            return Ok(waiting.clone());
        }
        if book.len() >= self.max {
            book.retain(|_, a| a.expires_at > now);
        }
        if book.len() >= self.max {
            return Err(ApprovalRefusal::Full { bound: self.max });
        }
        let waiting = book
            .values()
            .filter(|a| {
                a.binding.agent == approval.binding.agent
                    && a.status(now) == ApprovalStatus::Pending
            })
            .count();
        if waiting >= MAX_PENDING_PER_AGENT {
            return Err(ApprovalRefusal::AgentFull {
                agent: approval.binding.agent.clone(),
                bound: MAX_PENDING_PER_AGENT,
            });
        }
        book.insert(approval.id.clone(), approval.clone());
        Ok(approval)
    }

    /// What a step-up decision of the call `binding` finds: an approved approval of it
    /// is consumed by `decision_id` in the same step.
    pub fn settle(&self, binding: &ApprovalBinding, decision_id: &str, now: u64) -> ApprovalMatch {
        let mut book = self.lock();
        let exact = |a: &&Approval| &a.binding == binding;
        let approved = book
            .values()
            .filter(exact)
            .filter(|a| a.status(now) == ApprovalStatus::Approved)
            .min_by_key(|a| a.created_at)
            .map(|a| a.id.clone());
        if let Some(id) = approved
            && let Some(approval) = book.get_mut(&id)
        {
            approval.state = ApprovalStatus::Consumed;
            approval.consumed_by = Some(decision_id.to_owned());
            return ApprovalMatch::Consumed(approval.clone());
        }
        let latest = |status: ApprovalStatus| {
            book.values()
                .filter(exact)
                .filter(|a| a.status(now) == status)
                .max_by_key(|a| a.created_at)
                .cloned()
        };
        if let Some(pending) = latest(ApprovalStatus::Pending) {
            return ApprovalMatch::Pending(pending);
        }
        if let Some(rejected) = latest(ApprovalStatus::Rejected) {
            return ApprovalMatch::Rejected(rejected);
        }
        ApprovalMatch::None {
            near_miss: near_miss(book.values(), binding, now),
        }
    }

    /// Records an approver's answer. `closed` says whether the approval's task has
    /// ended or is quarantined (then nothing is approved).
    pub fn answer(
        &self,
        id: &str,
        verdict: ApprovalVerdict,
        now: u64,
        closed: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Approval, ApprovalRefusal> {
        let mut book = self.lock();
        let Some(approval) = book.get_mut(id) else {
            return Err(ApprovalRefusal::Unknown(id.to_owned()));
        };
        match approval.status(now) {
            ApprovalStatus::Pending => {}
            ApprovalStatus::Expired => return Err(ApprovalRefusal::Expired(id.to_owned())),
            status => {
                return Err(ApprovalRefusal::NotPending {
                    id: id.to_owned(),
                    status,
                });
            }
        }
        if verdict.approver.approver == approval.binding.agent {
            return Err(ApprovalRefusal::OwnCall {
                id: id.to_owned(),
                approver: verdict.approver.approver.clone(),
            });
        }
        let has = &verdict.approver.groups;
        let needs: Vec<String> = approval
            .missing_groups()
            .into_iter()
            .map(str::to_owned)
            .collect();
        // With no group named, any approver answers; otherwise they must be in a group
        // that has not approved yet.
        let acts_for: Vec<String> = if approval.groups.is_empty() {
            has.clone()
        } else {
            needs.iter().filter(|g| has.contains(g)).cloned().collect()
        };
        if acts_for.is_empty() {
            return Err(ApprovalRefusal::NotInGroup {
                id: id.to_owned(),
                approver: verdict.approver.approver.clone(),
                needs: if approval.groups.is_empty() {
                    vec!["any approver group".to_owned()]
                } else {
                    needs
                },
                has: has.clone(),
            });
        }
        if let Some(task) = &approval.binding.task
            && let Some(why) = closed(task)
        {
            return Err(ApprovalRefusal::TaskClosed {
                id: id.to_owned(),
                task: task.clone(),
                why,
            });
        }
        let mut record = verdict.approver;
        record.groups = acts_for;
        if verdict.approve {
            approval.approved_by.push(record);
            if approval.missing_groups().is_empty() {
                approval.state = ApprovalStatus::Approved;
            }
        } else {
            approval.rejected_by = Some(record);
            approval.state = ApprovalStatus::Rejected;
        }
        Ok(approval.clone())
    }

    /// One approval.
    pub fn get(&self, id: &str) -> Option<Approval> {
        self.lock().get(id).cloned()
    }

    /// Every approval held, newest first.
    pub fn list(&self) -> Vec<Approval> {
        let mut all: Vec<Approval> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        all
    }
}

/// Why the approval closest to `binding` does not apply, if one is close: the same call
/// used or expired, or an approved one that differs in one part of the binding.
fn near_miss<'a>(
    approvals: impl Iterator<Item = &'a Approval>,
    binding: &ApprovalBinding,
    now: u64,
) -> Option<String> {
    let mut best: Option<(u8, u64, String)> = None;
    for a in approvals {
        let b = &a.binding;
        let same_call = b.server == binding.server && b.tool == binding.tool;
        let status = a.status(now);
        let why = if b == binding {
            match status {
                ApprovalStatus::Consumed => Some((
                    0,
                    format!(
                        "approval `{}` for this call was already used (by decision `{}`)",
                        a.id,
                        a.consumed_by.as_deref().unwrap_or("?")
                    ),
                )),
                ApprovalStatus::Expired => {
                    Some((0, format!("approval `{}` for this call has expired", a.id)))
                }
                _ => None,
            }
        } else if status != ApprovalStatus::Approved || !same_call {
            None
        } else if b.agent == binding.agent
            && b.task == binding.task
            && b.generation == binding.generation
            && b.arguments_sha256 != binding.arguments_sha256
        {
            Some((1, format!("approval `{}` is for other arguments", a.id)))
        } else if b.agent != binding.agent
            && b.task == binding.task
            && b.arguments_sha256 == binding.arguments_sha256
        {
            Some((1, format!("approval `{}` is for agent `{}`", a.id, b.agent)))
        } else if b.agent == binding.agent
            && b.task != binding.task
            && b.arguments_sha256 == binding.arguments_sha256
        {
            Some((
                1,
                format!(
                    "approval `{}` is for task `{}`",
                    a.id,
                    b.task.as_deref().unwrap_or("(none)")
                ),
            ))
        } else if b.agent == binding.agent
            && b.task == binding.task
            && b.arguments_sha256 == binding.arguments_sha256
            && b.context_sha256 != binding.context_sha256
        {
            Some((
                1,
                format!(
                    "approval `{}` is for the same call with another delegation, credential, resource, environment or task fields",
                    a.id
                ),
            ))
        } else if b.agent == binding.agent
            && b.task == binding.task
            && b.arguments_sha256 == binding.arguments_sha256
            && b.attestation == binding.attestation
        {
            Some((
                1,
                format!(
                    "approval `{}` was granted under policy generation {}, and the policy set is now generation {}",
                    a.id, b.generation, binding.generation
                ),
            ))
        } else if b.agent == binding.agent && b.attestation != binding.attestation {
            Some((
                1,
                format!(
                    "approval `{}` is for `{}` attested by `{}`, not `{}`",
                    a.id, b.agent, b.attestation, binding.attestation
                ),
            ))
        } else {
            None
        };
        if let Some((rank, text)) = why {
            let better = match &best {
                None => true,
                Some((r, at, _)) => rank < *r || (rank == *r && a.created_at > *at),
            };
            if better {
                best = Some((rank, a.created_at, text));
            }
        }
    }
    best.map(|(_, _, text)| text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ApproverRecord;
    use serde_json::json;

    fn binding(args: &str) -> ApprovalBinding {
        ApprovalBinding {
            agent: "spiffe://example.org/agent/a".to_owned(),
            attestation: "jwt-svid".to_owned(),
            task: Some("t-1".to_owned()),
            server: "payments".to_owned(),
            tool: "refund".to_owned(),
            arguments_sha256: args.to_owned(),
            context_sha256: "c".to_owned(),
            generation: 1,
        }
    }

    fn pending(id: &str, binding: ApprovalBinding, groups: &[&str]) -> Approval {
        Approval {
            id: id.to_owned(),
            binding,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            intent: Some("refunds".to_owned()),
            arguments: json!({"amount": 900}),
            causes: vec![],
            reason: "step-up".to_owned(),
            requested_by: "d-1".to_owned(),
            created_at: 1_000,
            expires_at: 10_000,
            state: ApprovalStatus::Pending,
            approved_by: vec![],
            rejected_by: None,
            consumed_by: None,
        }
    }

    fn by(name: &str, groups: &[&str], approve: bool) -> ApprovalVerdict {
        ApprovalVerdict {
            approve,
            approver: ApproverRecord {
                approver: name.to_owned(),
                authenticated_by: "token:finance".to_owned(),
                groups: groups.iter().map(|g| (*g).to_owned()).collect(),
                at: 2_000,
                note: None,
            },
        }
    }

    fn open(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn an_approved_call_is_consumed_once_and_a_replay_is_told_so() {
        let book = ApprovalBook::new(10);
        book.request(pending("apr-1", binding("h1"), &["finance"]), 1_000)
            .unwrap();
        // Asking again for the same call returns the waiting approval.
        let again = book
            .request(pending("apr-2", binding("h1"), &["finance"]), 1_500)
            .unwrap();
        assert_eq!(again.id, "apr-1");
        assert!(matches!(
            book.settle(&binding("h1"), "d-2", 1_600),
            ApprovalMatch::Pending(a) if a.id == "apr-1"
        ));
        let own = book
            .answer(
                "apr-1",
                by("spiffe://example.org/agent/a", &["finance"], true),
                2_000,
                open,
            )
            .unwrap_err();
        assert!(matches!(own, ApprovalRefusal::OwnCall { .. }), "{own}");
        let refused = book
            .answer("apr-1", by("mallory", &["ops"], true), 2_000, open)
            .unwrap_err();
        assert!(refused.to_string().contains("needs `finance`"), "{refused}");
        book.answer("apr-1", by("alice", &["finance"], true), 2_000, open)
            .unwrap();
        match book.settle(&binding("h2"), "d-3", 3_000) {
            ApprovalMatch::None { near_miss } => {
                assert_eq!(
                    near_miss.unwrap(),
                    "approval `apr-1` is for other arguments"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            book.settle(&binding("h1"), "d-4", 3_000),
            ApprovalMatch::Consumed(a) if a.consumed_by.as_deref() == Some("d-4")
        ));
        match book.settle(&binding("h1"), "d-5", 3_100) {
            ApprovalMatch::None { near_miss } => assert!(
                near_miss
                    .unwrap()
                    .contains("already used (by decision `d-4`)"),
            ),
            other => panic!("{other:?}"),
        }
        let late = book
            .answer("apr-1", by("alice", &["finance"], true), 3_200, open)
            .unwrap_err();
        assert!(matches!(late, ApprovalRefusal::NotPending { .. }), "{late}");
    }

    #[test]
    fn every_named_group_approves_a_rejection_ends_it_and_expiry_lapses_it() {
        let book = ApprovalBook::new(10);
        book.request(
            pending("apr-1", binding("h1"), &["finance", "security"]),
            1_000,
        )
        .unwrap();
        let half = book
            .answer("apr-1", by("alice", &["finance"], true), 2_000, open)
            .unwrap();
        assert_eq!(half.state, ApprovalStatus::Pending);
        assert_eq!(half.missing_groups(), ["security"]);
        let full = book
            .answer("apr-1", by("sam", &["security"], true), 2_100, open)
            .unwrap();
        assert_eq!(full.state, ApprovalStatus::Approved);

        book.request(pending("apr-2", binding("h2"), &["finance"]), 1_000)
            .unwrap();
        book.answer("apr-2", by("bob", &["finance"], false), 2_000, open)
            .unwrap();
        assert!(matches!(
            book.settle(&binding("h2"), "d-1", 2_500),
            ApprovalMatch::Rejected(a) if a.rejected_by.as_ref().unwrap().approver == "bob"
        ));

        book.request(pending("apr-3", binding("h3"), &["finance"]), 1_000)
            .unwrap();
        let expired = book
            .answer("apr-3", by("alice", &["finance"], true), 10_000, open)
            .unwrap_err();
        assert_eq!(expired, ApprovalRefusal::Expired("apr-3".to_owned()));
        let closed = book
            .answer("apr-1", by("alice", &["finance"], true), 2_000, |_| {
                Some("has ended".to_owned())
            })
            .unwrap_err();
        assert!(matches!(closed, ApprovalRefusal::NotPending { .. }));
    }

    #[test]
    fn the_book_is_bounded_and_makes_room_from_expired_approvals() {
        let book = ApprovalBook::new(2);
        book.request(pending("apr-1", binding("h1"), &[]), 1_000)
            .unwrap();
        book.request(pending("apr-2", binding("h2"), &[]), 1_000)
            .unwrap();
        let full = book
            .request(pending("apr-3", binding("h3"), &[]), 2_000)
            .unwrap_err();
        assert_eq!(full, ApprovalRefusal::Full { bound: 2 });
        // Both lapse at 10 000: room again.
        let mut later = pending("apr-4", binding("h4"), &[]);
        later.expires_at = 20_000;
        book.request(later, 10_000).unwrap();
        assert_eq!(book.list().len(), 1);
        // With no group named, an approver of any group answers; someone in no group
        // does not.
        let nobody = book
            .answer("apr-4", by("eve", &[], true), 10_001, open)
            .unwrap_err();
        assert!(
            nobody.to_string().contains("any approver group"),
            "{nobody}"
        );
        let approved = book
            .answer("apr-4", by("ann", &["ops"], true), 10_001, open)
            .unwrap();
        assert_eq!(approved.state, ApprovalStatus::Approved);
    }
}
