//! Task state behind a trait: what a decision reads about its task before the plugins
//! run, and what it records after. [`MemoryTaskStore`] is the in-memory implementation;
//! a shared store for several replicas (Redis) implements the same trait.
//!
//! # The contract every store keeps
//!
//! - **One decision of a task at a time.** [`TaskStore::begin`] returns a [`TaskLease`]
//!   only when no other decision of the task holds one; the lease is released when it is
//!   committed or dropped. Without this, two concurrent calls of one task both read the
//!   old history, and an exfiltration chain split across two parallel calls (read a
//!   secret, send mail) is not seen as a chain. With it, the second call sees the first
//!   one's record. Decisions of different tasks never wait for each other.
//! - **An atomic append.** [`TaskLease::commit`] appends the decision's entry and its
//!   labels in one step, and only the final answer is ever committed (see
//!   [`crate::decide`]): what later plugins read is what the caller was told.
//! - **A deadline per operation.** Every call takes a deadline; a store that cannot
//!   answer in time returns [`StoreError::Timeout`].
//! - **Fail closed.** Any [`StoreError`] makes the decision a deny that names the store
//!   as the part that failed. Nothing is allowed from a stale copy.
//! - **Tasks belong to an agent.** A task is owned by the agent whose action first used
//!   it; another agent naming the same task id is refused ([`TaskRefusal::OtherAgent`]),
//!   not silently given a separate history, unless a `[[tasks.share]]` group names both
//!   (an orchestrator and its sub-agents).
//!
//! # Sync, with a deadline
//!
//! `begin`/`commit` are blocking calls with a deadline rather than `async fn`s. The
//! decision path is synchronous on purpose (plugin evaluation is CPU work in wasmtime;
//! see [`crate::decide`]), and the in-memory store answers in nanoseconds, so an async
//! signature would cost every embedder a runtime and a state machine for nothing. A
//! network store blocks for a bounded time instead; async adapters run decisions on a
//! blocking thread when the store is remote ([`TaskStore::is_remote`]).

use super::approvals::ApprovalBook;
use super::history::{TaskHistory, TaskRefusal};
use super::revocations::Revocations;
use crate::config::{DEFAULT_MAX_APPROVALS, HistoryConfig, TaskSharing};
use crate::model::{
    Approval, ApprovalBinding, ApprovalMatch, ApprovalRefusal, ApprovalVerdict, HistoryEntry,
    OpenedTask, TaskSnapshot,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// A task store failed (the decision is denied, naming the store).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer before the deadline (for the in-memory store: another
    /// decision of the same task held it for the whole time).
    #[error("the task store did not answer within its deadline (`tasks.store_timeout_ms`)")]
    Timeout,
    /// The store is unreachable or answered something unusable.
    #[error("the task store failed: {0}")]
    Unavailable(String),
}

/// A task opened for one decision: what plugins may read, and the right to record.
pub trait TaskLease: Send {
    /// The task's recent entries and sticky labels, as they were when the lease began.
    fn snapshot(&self) -> &TaskSnapshot;

    /// Appends the decision's entry (atomically) and releases the task; with
    /// `quarantine`, the task is quarantined for that reason in the same step, so no
    /// other decision of the task runs between the deviation and its quarantine.
    fn commit(
        self: Box<Self>,
        entry: HistoryEntry,
        quarantine: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// The task store: see the module docs for the contract.
pub trait TaskStore: Send + Sync + std::fmt::Debug {
    /// Opens `task` for one decision by `agent`, waiting until `deadline` for another
    /// decision of the same task to finish. `Ok(Err(_))` is a refusal (ended, owned by
    /// another agent, table full): the action is denied without running plugins.
    fn begin(
        &self,
        task: &str,
        agent: &str,
        deadline: Instant,
    ) -> Result<Result<Box<dyn TaskLease + '_>, TaskRefusal>, StoreError>;

    /// What a preview reads: the task as `begin` would show it to `agent`, or why its
    /// action would be refused, without holding the task (a preview records nothing).
    fn peek(
        &self,
        task: &str,
        agent: &str,
        deadline: Instant,
    ) -> Result<Result<TaskSnapshot, TaskRefusal>, StoreError> {
        Ok(self
            .begin(task, agent, deadline)?
            .map(|lease| lease.snapshot().clone()))
    }

    /// Ends the task: later actions are refused. Does not wait for decisions in flight
    /// (revocation is immediate; their records are discarded).
    fn end(&self, task: &str, deadline: Instant) -> Result<(), StoreError>;

    /// Lifts the task's quarantine; returns whether it was quarantined.
    fn lift_quarantine(&self, task: &str, deadline: Instant) -> Result<bool, StoreError>;

    /// Records a newly opened task (its id is new: Arbiter made it), starting with the
    /// labels of its agents' open tasks when `inherit` is set. Returns the task as
    /// recorded, with the labels it inherited.
    fn open(
        &self,
        task: OpenedTask,
        inherit: bool,
        deadline: Instant,
    ) -> Result<Result<OpenedTask, TaskRefusal>, StoreError>;

    /// The opened task `task`, if it was opened (and not ended).
    fn opened(&self, task: &str, deadline: Instant) -> Result<Option<OpenedTask>, StoreError>;

    /// The task's recorded entries, oldest first.
    fn entries(&self, task: &str, deadline: Instant) -> Result<Vec<HistoryEntry>, StoreError>;

    /// The task as an operator sees it: its sticky labels and whether it has ended or is
    /// quarantined (`None` while it runs).
    fn standing(
        &self,
        task: &str,
        deadline: Instant,
    ) -> Result<(Vec<String>, Option<String>), StoreError>;

    /// Asks for an approval, or returns the one already waiting for the same call
    /// ([`ApprovalBook::request`]).
    fn request_approval(
        &self,
        approval: Approval,
        now: u64,
        deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError>;

    /// What a step-up decision of the call `binding` finds; an approved approval is
    /// consumed by `decision_id` atomically, so it allows one decision across every
    /// replica of the store.
    fn settle_approval(
        &self,
        binding: &ApprovalBinding,
        decision_id: &str,
        now: u64,
        deadline: Instant,
    ) -> Result<ApprovalMatch, StoreError>;

    /// Records an approver's answer; refused for an approval of an ended or
    /// quarantined task.
    fn answer_approval(
        &self,
        id: &str,
        verdict: ApprovalVerdict,
        now: u64,
        deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError>;

    /// One approval.
    fn approval(&self, id: &str, deadline: Instant) -> Result<Option<Approval>, StoreError>;

    /// Every approval held, newest first.
    fn approvals(&self, deadline: Instant) -> Result<Vec<Approval>, StoreError>;

    /// Remembers a credential minted for `task`, which expires at `expires_at` (Unix s):
    /// if the task's credentials are revoked, it is born revoked.
    fn credential_minted(
        &self,
        task: &str,
        id: &str,
        expires_at: u64,
        now: u64,
        deadline: Instant,
    ) -> Result<(), StoreError>;

    /// Revokes every credential minted for `task`, and every one minted for it until
    /// `until` (Unix s); returns how many were live.
    fn revoke_task_credentials(
        &self,
        task: &str,
        now: u64,
        until: u64,
        deadline: Instant,
    ) -> Result<usize, StoreError>;

    /// New credentials of `task` are live again (its quarantine was lifted); those
    /// revoked stay revoked.
    fn reinstate_task_credentials(&self, task: &str, deadline: Instant) -> Result<(), StoreError>;

    /// Revokes one credential until it expires (Unix s).
    fn revoke_credential(
        &self,
        id: &str,
        expires_at: u64,
        deadline: Instant,
    ) -> Result<(), StoreError>;

    /// Whether the credential `id`, issued at `issued_at` (Unix s) for `task`, is
    /// revoked: by its id, or with every credential its task had when the task's
    /// credentials were revoked.
    fn credential_revoked(
        &self,
        id: &str,
        task: Option<&str>,
        issued_at: u64,
        deadline: Instant,
    ) -> Result<bool, StoreError>;

    /// Whether the store answers now (readiness). The in-memory store always does.
    fn health(&self, _deadline: Instant) -> Result<(), StoreError> {
        Ok(())
    }

    /// What the store is, for readiness and errors: `memory`, or `redis` and where.
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    /// Whether operations may block on the network (adapters then decide on a blocking
    /// thread rather than inline).
    fn is_remote(&self) -> bool {
        false
    }
}

/// The in-memory task store: [`TaskHistory`] plus the per-task lease.
#[derive(Debug)]
pub struct MemoryTaskStore {
    history: TaskHistory,
    sharing: TaskSharing,
    /// Tasks with a decision in flight.
    busy: Mutex<HashSet<String>>,
    released: Condvar,
    /// Opened tasks (bounded with the known tasks: opening one makes it known).
    opened: Mutex<HashMap<String, OpenedTask>>,
    approvals: ApprovalBook,
    revocations: Revocations,
}

impl MemoryTaskStore {
    /// An empty store with these bounds and sharing rules.
    pub fn new(config: HistoryConfig, sharing: TaskSharing) -> Self {
        Self {
            history: TaskHistory::new(config),
            sharing,
            busy: Mutex::new(HashSet::new()),
            released: Condvar::new(),
            opened: Mutex::new(HashMap::new()),
            approvals: ApprovalBook::new(DEFAULT_MAX_APPROVALS),
            revocations: Revocations::default(),
        }
    }

    /// The same store holding at most `max` approvals.
    pub fn with_max_approvals(mut self, max: usize) -> Self {
        self.approvals = ApprovalBook::new(max);
        self
    }

    /// The history itself (tests and metrics).
    pub fn history(&self) -> &TaskHistory {
        &self.history
    }

    fn lock_opened(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpenedTask>> {
        // Poisoned only by a panic between two map operations: the map is intact.
        self.opened.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_busy(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A poisoned lock only means a thread panicked while inserting or removing an
        // id; the set is intact.
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire(&self, task: &str, deadline: Instant) -> Result<(), StoreError> {
        let mut busy = self.lock_busy();
        while busy.contains(task) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(StoreError::Timeout);
            };
            busy = self
                .released
                .wait_timeout(busy, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        busy.insert(task.to_owned());
        Ok(())
    }

    fn release(&self, task: &str) {
        self.lock_busy().remove(task);
        self.released.notify_all();
    }
}

impl TaskStore for MemoryTaskStore {
    fn begin(
        &self,
        task: &str,
        agent: &str,
        deadline: Instant,
    ) -> Result<Result<Box<dyn TaskLease + '_>, TaskRefusal>, StoreError> {
        self.acquire(task, deadline)?;
        // The agents an opener named share the task, as a `[[tasks.share]]` group would.
        let opened_for = self
            .lock_opened()
            .get(task)
            .map(|t| t.agents.clone())
            .unwrap_or_default();
        match self.history.admit(task, agent, |owner, other| {
            self.sharing.allows(owner, other) || opened_for.iter().any(|a| a == other)
        }) {
            // From here the lease releases the task when it is committed or dropped.
            Ok(snapshot) => Ok(Ok(Box::new(MemoryLease {
                store: self,
                task: task.to_owned(),
                agent: agent.to_owned(),
                snapshot,
            }))),
            Err(refusal) => {
                self.release(task);
                Ok(Err(refusal))
            }
        }
    }

    fn end(&self, task: &str, _deadline: Instant) -> Result<(), StoreError> {
        self.history.end(task);
        // Ended is remembered by the history; the opening is no longer needed.
        self.lock_opened().remove(task);
        Ok(())
    }

    fn open(
        &self,
        mut task: OpenedTask,
        inherit: bool,
        _deadline: Instant,
    ) -> Result<Result<OpenedTask, TaskRefusal>, StoreError> {
        match self.history.open(&task.id, &task.agents, inherit) {
            Ok(labels) => {
                task.inherited_labels = labels;
                self.lock_opened().insert(task.id.clone(), task.clone());
                Ok(Ok(task))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    fn opened(&self, task: &str, _deadline: Instant) -> Result<Option<OpenedTask>, StoreError> {
        Ok(self.lock_opened().get(task).cloned())
    }

    fn lift_quarantine(&self, task: &str, _deadline: Instant) -> Result<bool, StoreError> {
        Ok(self.history.lift_quarantine(task))
    }

    fn entries(&self, task: &str, _deadline: Instant) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self.history.entries(task))
    }

    fn standing(
        &self,
        task: &str,
        _deadline: Instant,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let labels = self.history.snapshot(task).labels.to_vec();
        Ok((labels, self.history.closed(task)))
    }

    fn request_approval(
        &self,
        approval: Approval,
        now: u64,
        _deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
        Ok(self.approvals.request(approval, now))
    }

    fn settle_approval(
        &self,
        binding: &ApprovalBinding,
        decision_id: &str,
        now: u64,
        _deadline: Instant,
    ) -> Result<ApprovalMatch, StoreError> {
        Ok(self.approvals.settle(binding, decision_id, now))
    }

    fn answer_approval(
        &self,
        id: &str,
        verdict: ApprovalVerdict,
        now: u64,
        _deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
        Ok(self
            .approvals
            .answer(id, verdict, now, |task| self.history.closed(task)))
    }

    fn approval(&self, id: &str, _deadline: Instant) -> Result<Option<Approval>, StoreError> {
        Ok(self.approvals.get(id))
    }

    fn approvals(&self, _deadline: Instant) -> Result<Vec<Approval>, StoreError> {
        Ok(self.approvals.list())
    }

    fn credential_minted(
        &self,
        task: &str,
        id: &str,
        expires_at: u64,
        now: u64,
        _deadline: Instant,
    ) -> Result<(), StoreError> {
        self.revocations.minted(task, id, expires_at, now);
        Ok(())
    }

    fn revoke_task_credentials(
        &self,
        task: &str,
        now: u64,
        until: u64,
        _deadline: Instant,
    ) -> Result<usize, StoreError> {
        Ok(self.revocations.revoke_task(task, now, until))
    }

    fn reinstate_task_credentials(&self, task: &str, _deadline: Instant) -> Result<(), StoreError> {
        self.revocations.reinstate_task(task);
        Ok(())
    }

    fn revoke_credential(
        &self,
        id: &str,
        expires_at: u64,
        _deadline: Instant,
    ) -> Result<(), StoreError> {
        self.revocations.revoke(id, expires_at);
        Ok(())
    }

    fn credential_revoked(
        &self,
        id: &str,
        _task: Option<&str>,
        _issued_at: u64,
        _deadline: Instant,
    ) -> Result<bool, StoreError> {
        // In memory a task's revocation lists every credential it had, by id.
        Ok(self.revocations.is_revoked(id))
    }
}

struct MemoryLease<'a> {
    store: &'a MemoryTaskStore,
    task: String,
    agent: String,
    snapshot: TaskSnapshot,
}

impl Drop for MemoryLease<'_> {
    fn drop(&mut self) {
        self.store.release(&self.task);
    }
}

impl TaskLease for MemoryLease<'_> {
    fn snapshot(&self) -> &TaskSnapshot {
        &self.snapshot
    }

    fn commit(
        self: Box<Self>,
        entry: HistoryEntry,
        quarantine: Option<&str>,
    ) -> Result<(), StoreError> {
        // Drop this lease's copy first, so the task's entries are appended in place
        // rather than copied (they are shared copy-on-write).
        let mut lease = self;
        lease.snapshot = TaskSnapshot::default();
        lease
            .store
            .history
            .record_by(&lease.task, &lease.agent, entry);
        // Still holding the task (released when the lease drops): the next decision of
        // the task sees the quarantine.
        if let Some(reason) = quarantine {
            lease.store.history.quarantine(&lease.task, reason);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Effect;
    use std::time::Duration;

    fn entry(labels: &[&str]) -> HistoryEntry {
        HistoryEntry {
            request_id: "r".into(),
            server: "s".into(),
            tool: "t".into(),
            effect: Effect::Allow,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            time: 0,
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_second_decision_of_a_task_waits_and_sees_the_first_record() {
        let store = std::sync::Arc::new(MemoryTaskStore::new(
            HistoryConfig::default(),
            TaskSharing::default(),
        ));
        let first = store.begin("t", "a", soon()).unwrap().unwrap();
        // Another task is not held up.
        drop(store.begin("other", "a", soon()).unwrap().unwrap());
        // The same task times out while the first lease is held ...
        let waited = store.begin("t", "a", Instant::now() + Duration::from_millis(20));
        assert_eq!(waited.err(), Some(StoreError::Timeout));
        // ... and once it commits, the next decision reads its labels.
        let waiter = {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                let lease = store.begin("t", "a", soon()).unwrap().unwrap();
                lease.snapshot().labels.to_vec()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        first.commit(entry(&["secret"]), None).unwrap();
        assert_eq!(waiter.join().unwrap(), ["secret".to_owned()]);
    }

    #[test]
    fn tasks_belong_to_their_agent_unless_shared() {
        let sharing = TaskSharing::new(vec![vec![
            "spiffe://x/orchestrator".into(),
            "spiffe://x/sub/*".into(),
        ]]);
        let store = MemoryTaskStore::new(HistoryConfig::default(), sharing);
        for (task, owner) in [("t", "spiffe://x/a"), ("o", "spiffe://x/orchestrator")] {
            let lease = store.begin(task, owner, soon()).unwrap().unwrap();
            lease.commit(entry(&[]), None).unwrap();
        }
        let refused = store
            .begin("t", "spiffe://x/b", soon())
            .unwrap()
            .err()
            .unwrap();
        assert!(
            matches!(refused, TaskRefusal::OtherAgent { .. }),
            "{refused}"
        );
        assert!(store.begin("t", "spiffe://x/a", soon()).unwrap().is_ok());
        assert!(
            store
                .begin("o", "spiffe://x/sub/researcher", soon())
                .unwrap()
                .is_ok()
        );
        assert!(
            store
                .begin("o", "spiffe://x/other", soon())
                .unwrap()
                .is_err()
        );
    }
}
