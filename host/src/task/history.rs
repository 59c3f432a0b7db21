//! Task history: each task's recent actions and their final effects, so a policy can
//! judge a chain (read a secret, then send mail) rather than one call in isolation.
//!
//! Besides the recent entries, each task keeps its **sticky labels**: every label it ever
//! touched. Evicting an old entry must not launder a secret read long ago, so taint is
//! kept for the task's whole life, not just the window of recent entries.
//!
//! Plugins read both through a [`TaskSnapshot`], taken once per decision. Entries and
//! labels are shared behind `Arc`s (copy-on-write when the task records its next entry),
//! so taking a snapshot costs two reference counts, whatever the history's length.
//!
//! # Bounds, and what they never do
//!
//! Memory is bounded three ways: entries per task (`history.max_entries_per_task`, oldest
//! dropped), tasks with entries (`history.max_tasks`, least recently used first), and
//! tasks known at all (`history.max_known_tasks`).
//!
//! A bound must never make a task *more permitted* than it was: opening filler tasks
//! used to evict a tainted task together with its labels, and its next exfiltration call
//! was allowed. So:
//!
//! - A task evicted at `max_tasks` loses only its **entries**. Its sticky labels and its
//!   ended flag move to a compact table of known tasks, and it gains the sticky label
//!   [`HISTORY_EVICTED_LABEL`], so a policy that counts entries can tell that the window
//!   is incomplete and be as strict as it likes. When the task acts again, it starts a
//!   new window of entries with all its labels.
//! - An ended task is remembered as ended for as long as the host runs.
//! - Nothing known is ever forgotten to make room: when `max_known_tasks` tasks are
//!   known, a task id not seen before is **refused** (its actions are denied, saying
//!   why) while known tasks carry on. That is fail-closed: the alternative, forgetting a
//!   task, would re-open an ended task or wash out a taint. An operator who reaches the
//!   bound raises it (each known task without entries costs about 150 bytes plus its id
//!   and labels) or restarts, which forgets the in-memory history as a whole.

use crate::config::HistoryConfig;
use crate::model::{HistoryEntry, TaskSnapshot};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// The sticky label a task gains when its entries are evicted at `history.max_tasks`:
/// its labels are complete, its window of entries is not.
pub const HISTORY_EVICTED_LABEL: &str = "arbiter:history-evicted";

/// At most this many distinct sticky labels per task. Labels are short words from the
/// gateway and from plugins (at most 16 per verdict); beyond this bound new labels are
/// not remembered and a warning is logged.
pub const MAX_TASK_LABELS: usize = 256;

/// At most this many agents besides the owner act in one task (each is remembered, for
/// taint inheritance). Tasks are shared within small configured groups; an agent beyond
/// the bound is refused.
pub const MAX_TASK_CO_AGENTS: usize = 64;

impl TaskRecord {
    fn has_agent(&self, agent: &str) -> bool {
        self.owner == agent || self.co_agents.iter().any(|a| a == agent)
    }
}

impl Retained {
    fn has_agent(&self, agent: &str) -> bool {
        self.owner == agent || self.co_agents.iter().any(|a| a == agent)
    }
}

#[derive(Debug, Default)]
struct TaskRecord {
    /// The agent that started the task (see [`crate::task::TaskStore`]).
    owner: String,
    /// The other agents of the task: opened into it, or acting in it by sharing. Its
    /// taint follows them too (see [`TaskHistory::open`]).
    co_agents: Vec<String>,
    /// Last-use sequence number (key into `Inner::recency`); 0 before the first record.
    seq: u64,
    entries: Arc<VecDeque<HistoryEntry>>,
    labels: Arc<[String]>,
    /// Why the task is quarantined, if it is.
    quarantine: Option<Arc<str>>,
}

/// What is kept of a task without entries: evicted at `max_tasks`, or ended.
#[derive(Debug, Default)]
struct Retained {
    /// The agent that started the task; empty for a task ended before it acted.
    owner: String,
    /// As [`TaskRecord::co_agents`].
    co_agents: Vec<String>,
    labels: Arc<[String]>,
    ended: bool,
    /// Why the task is quarantined, if it is (kept through eviction: a quarantine that
    /// an eviction lifted would be a way out).
    quarantine: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, TaskRecord>,
    /// Last-use sequence number → task id, for LRU eviction.
    recency: BTreeMap<u64, String>,
    next_seq: u64,
    /// Known tasks without entries (never in `tasks` at the same time).
    retained: HashMap<String, Retained>,
}

impl Inner {
    fn known(&self) -> usize {
        self.tasks.len().saturating_add(self.retained.len())
    }
}

/// Why a task's action is denied before any plugin runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskRefusal {
    /// The task was ended.
    #[error("task `{0}` has ended")]
    Ended(String),
    /// The task was quarantined for deviating from policy.
    #[error(
        "task `{task}` is quarantined: {reason}; an operator can lift it (`POST /v1/tasks/{{id}}/lift-quarantine`)"
    )]
    Quarantined {
        /// The task.
        task: String,
        /// What triggered it.
        reason: String,
    },
    /// The task belongs to another agent, and no `[[tasks.share]]` group lets this
    /// agent act in it.
    #[error(
        "task `{task}` belongs to another agent; agent `{agent}` may not act in it (tasks are owned by the agent that started them unless `[[tasks.share]]` lets agents share)"
    )]
    OtherAgent {
        /// The task.
        task: String,
        /// The agent that tried.
        agent: String,
    },
    /// The task is new and the table of known tasks is full.
    #[error(
        "task `{task}` is new and {bound} tasks are known (`history.max_known_tasks`): new tasks are refused rather than forget one (which could re-open an ended task or wash out a taint)"
    )]
    TableFull {
        /// The task.
        task: String,
        /// The bound.
        bound: usize,
    },
}

/// The in-memory task history.
#[derive(Debug)]
pub struct TaskHistory {
    config: HistoryConfig,
    inner: Mutex<Inner>,
}

impl TaskHistory {
    /// An empty history with these bounds.
    pub fn new(config: HistoryConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the maps stay
        // structurally valid, so keep serving rather than turning one panic into an outage.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task's entries, oldest first.
    pub fn entries(&self, task_id: &str) -> Vec<HistoryEntry> {
        self.lock()
            .tasks
            .get(task_id)
            .map(|task| task.entries.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// What plugins may read about the task now; empty for a task with no history. A
    /// task whose entries were evicted has its labels and no entries.
    pub fn snapshot(&self, task_id: &str) -> TaskSnapshot {
        let inner = self.lock();
        if let Some(task) = inner.tasks.get(task_id) {
            return TaskSnapshot {
                entries: Arc::clone(&task.entries),
                labels: Arc::clone(&task.labels),
            };
        }
        inner
            .retained
            .get(task_id)
            .map(|r| TaskSnapshot {
                entries: Arc::default(),
                labels: Arc::clone(&r.labels),
            })
            .unwrap_or_default()
    }

    /// The gate before a task's action is evaluated: the snapshot plugins may read, or
    /// why the action is denied without running them (ended; started by another agent
    /// that `may_share` does not pair with `agent`; new while the table of known tasks is
    /// full).
    pub fn admit(
        &self,
        task_id: &str,
        agent: &str,
        may_share: impl Fn(&str, &str) -> bool,
    ) -> Result<TaskSnapshot, TaskRefusal> {
        {
            let inner = self.lock();
            let quarantine = match (inner.tasks.get(task_id), inner.retained.get(task_id)) {
                (Some(t), _) => t.quarantine.as_ref(),
                (None, Some(r)) if !r.ended => r.quarantine.as_ref(),
                _ => None,
            };
            if let Some(reason) = quarantine {
                return Err(TaskRefusal::Quarantined {
                    task: task_id.to_owned(),
                    reason: reason.to_string(),
                });
            }
            let owner = match (inner.tasks.get(task_id), inner.retained.get(task_id)) {
                (_, Some(r)) if r.ended => return Err(TaskRefusal::Ended(task_id.to_owned())),
                (Some(t), _) => Some(t.owner.as_str()),
                (None, Some(r)) => Some(r.owner.as_str()),
                (None, None) => None,
            };
            if let Some(owner) = owner
                && !owner.is_empty()
                && owner != agent
                && !may_share(owner, agent)
            {
                return Err(TaskRefusal::OtherAgent {
                    task: task_id.to_owned(),
                    agent: agent.to_owned(),
                });
            }
            // Taint follows every agent of a task (see `open`); an agent the task could not
            // remember would escape it, so it is not let in.
            if let Some(task) = inner.tasks.get(task_id)
                && !task.has_agent(agent)
                && task.co_agents.len() >= MAX_TASK_CO_AGENTS
            {
                return Err(TaskRefusal::OtherAgent {
                    task: task_id.to_owned(),
                    agent: agent.to_owned(),
                });
            }
            if owner.is_none() && inner.known() >= self.config.max_known_tasks {
                tracing::warn!(
                    task = task_id,
                    bound = self.config.max_known_tasks,
                    "task table full: refusing a new task"
                );
                return Err(TaskRefusal::TableFull {
                    task: task_id.to_owned(),
                    bound: self.config.max_known_tasks,
                });
            }
        }
        Ok(self.snapshot(task_id))
    }

    /// Records an entry for the task, evicting as the bounds require. An ended task
    /// records nothing (its actions are denied by [`TaskHistory::admit`]). The first
    /// agent to record in a task owns it.
    pub fn record(&self, task_id: &str, entry: HistoryEntry) {
        self.record_by(task_id, "", entry);
    }

    /// [`TaskHistory::record`] for an action of `agent`.
    pub fn record_by(&self, task_id: &str, agent: &str, entry: HistoryEntry) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if inner.retained.get(task_id).is_some_and(|r| r.ended) {
            return;
        }
        inner.next_seq += 1;
        let seq = inner.next_seq;
        if !inner.tasks.contains_key(task_id) {
            // A task coming back after eviction starts a new window with all its labels
            // and keeps its owner.
            let (owner, co_agents, labels, quarantine) = match inner.retained.remove(task_id) {
                Some(r) if !r.owner.is_empty() => (r.owner, r.co_agents, r.labels, r.quarantine),
                Some(r) => (agent.to_owned(), r.co_agents, r.labels, r.quarantine),
                None => (agent.to_owned(), Vec::new(), Arc::default(), None),
            };
            inner.tasks.insert(
                task_id.to_owned(),
                TaskRecord {
                    owner,
                    co_agents,
                    seq: 0,
                    entries: Arc::default(),
                    labels,
                    quarantine,
                },
            );
        }
        let Some(task) = inner.tasks.get_mut(task_id) else {
            return;
        };
        if !agent.is_empty() && !task.has_agent(agent) {
            // `admit` refuses an agent beyond the bound, so this holds.
            if task.co_agents.len() < MAX_TASK_CO_AGENTS {
                task.co_agents.push(agent.to_owned());
            }
        }
        if task.seq != 0 {
            inner.recency.remove(&task.seq);
        }
        task.seq = seq;
        if entry.labels.iter().any(|l| !task.labels.contains(l)) {
            task.labels = merge_labels(task_id, &task.labels, &entry.labels);
        }
        // Copies the entries only if a decision still holds a snapshot of them.
        let entries = Arc::make_mut(&mut task.entries);
        entries.push_back(entry);
        while entries.len() > self.config.max_entries_per_task {
            entries.pop_front();
        }
        inner.recency.insert(seq, task_id.to_owned());
        while inner.tasks.len() > self.config.max_tasks {
            let Some((_, oldest)) = inner.recency.pop_first() else {
                break;
            };
            if let Some(evicted) = inner.tasks.remove(&oldest) {
                // Keep the taint; say that the window of entries is gone.
                let labels = merge_labels(
                    &oldest,
                    &evicted.labels,
                    &[HISTORY_EVICTED_LABEL.to_owned()],
                );
                inner.retained.insert(
                    oldest,
                    Retained {
                        owner: evicted.owner,
                        co_agents: evicted.co_agents,
                        labels,
                        ended: false,
                        quarantine: evicted.quarantine,
                    },
                );
            }
        }
    }

    /// Ends a task: its history is dropped and later actions are denied, for as long
    /// as the host runs (ending is never refused, whatever the bounds).
    pub fn end(&self, task_id: &str) {
        let mut inner = self.lock();
        let owner = match inner.tasks.remove(task_id) {
            Some(task) => {
                inner.recency.remove(&task.seq);
                task.owner
            }
            None => inner
                .retained
                .remove(task_id)
                .map(|r| r.owner)
                .unwrap_or_default(),
        };
        inner.retained.insert(
            task_id.to_owned(),
            Retained {
                owner,
                // An ended task passes on no taint (see `open`), so nobody needs its agents.
                co_agents: Vec::new(),
                labels: Arc::default(),
                ended: true,
                quarantine: None,
            },
        );
    }

    /// Makes a new task known, owned by `agents[0]` (the store lets the other agents
    /// in). With `inherit`, it starts with every label of the open (not ended) tasks any
    /// of those agents belongs to (owns, was opened into, or acted in by sharing): an
    /// agent that could see a secret in one task carries that taint into the next, so
    /// that switching tasks does not launder it. Returns the labels it starts with.
    pub fn open(
        &self,
        task_id: &str,
        agents: &[String],
        inherit: bool,
    ) -> Result<Vec<String>, TaskRefusal> {
        let mut inner = self.lock();
        if inner.known() >= self.config.max_known_tasks {
            return Err(TaskRefusal::TableFull {
                task: task_id.to_owned(),
                bound: self.config.max_known_tasks,
            });
        }
        let mut labels: Vec<String> = Vec::new();
        if inherit {
            let owned = inner
                .tasks
                .values()
                .filter(|t| agents.iter().any(|a| t.has_agent(a)))
                .map(|t| &t.labels)
                .chain(
                    inner
                        .retained
                        .values()
                        .filter(|r| !r.ended && agents.iter().any(|a| r.has_agent(a)))
                        .map(|r| &r.labels),
                );
            for set in owned {
                for label in set.iter() {
                    if !labels.contains(label) {
                        labels.push(label.clone());
                    }
                }
            }
            labels.sort();
        }
        inner.retained.insert(
            task_id.to_owned(),
            Retained {
                owner: agents.first().cloned().unwrap_or_default(),
                co_agents: agents
                    .iter()
                    .skip(1)
                    .take(MAX_TASK_CO_AGENTS)
                    .cloned()
                    .collect(),
                labels: Arc::from(labels.clone()),
                ended: false,
                quarantine: None,
            },
        );
        Ok(labels)
    }

    /// Quarantines a task: its later actions are denied, saying `reason`, until an
    /// operator lifts it. An ended task stays ended.
    pub fn quarantine(&self, task_id: &str, reason: &str) {
        let mut inner = self.lock();
        let reason: Arc<str> = Arc::from(reason);
        if let Some(task) = inner.tasks.get_mut(task_id) {
            task.quarantine = Some(reason);
            return;
        }
        match inner.retained.get_mut(task_id) {
            Some(r) if r.ended => {}
            Some(r) => r.quarantine = Some(reason),
            None => {
                inner.retained.insert(
                    task_id.to_owned(),
                    Retained {
                        quarantine: Some(reason),
                        ..Retained::default()
                    },
                );
            }
        }
    }

    /// Lifts a quarantine; returns whether the task was quarantined.
    pub fn lift_quarantine(&self, task_id: &str) -> bool {
        let mut inner = self.lock();
        if let Some(task) = inner.tasks.get_mut(task_id) {
            return task.quarantine.take().is_some();
        }
        inner
            .retained
            .get_mut(task_id)
            .is_some_and(|r| r.quarantine.take().is_some())
    }

    /// Why nothing of the task may run any more: `has ended`, or `is quarantined: …`.
    pub fn closed(&self, task_id: &str) -> Option<String> {
        let inner = self.lock();
        match (inner.tasks.get(task_id), inner.retained.get(task_id)) {
            (_, Some(r)) if r.ended => Some("has ended".to_owned()),
            (Some(t), _) => t
                .quarantine
                .as_ref()
                .map(|q| format!("is quarantined: {q}")),
            (None, Some(r)) => r
                .quarantine
                .as_ref()
                .map(|q| format!("is quarantined: {q}")),
            (None, None) => None,
        }
    }

    /// Whether the task was ended.
    pub fn is_ended(&self, task_id: &str) -> bool {
        self.lock().retained.get(task_id).is_some_and(|r| r.ended)
    }

    /// Number of tasks with entries.
    pub fn task_count(&self) -> usize {
        self.lock().tasks.len()
    }

    /// Number of tasks known (with entries, evicted, or ended).
    pub fn known_task_count(&self) -> usize {
        self.lock().known()
    }
}

/// The sorted union of a task's sticky labels and an entry's labels, bounded by
/// [`MAX_TASK_LABELS`].
fn merge_labels(task_id: &str, sticky: &[String], new: &[String]) -> Arc<[String]> {
    let mut labels: BTreeSet<&String> = sticky.iter().collect();
    for label in new {
        if labels.len() >= MAX_TASK_LABELS && !labels.contains(label) {
            tracing::warn!(
                task = task_id,
                label = label.as_str(),
                "task touched more than {MAX_TASK_LABELS} distinct labels; not remembering more"
            );
            continue;
        }
        labels.insert(label);
    }
    labels.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Effect;

    fn e(id: &str) -> HistoryEntry {
        HistoryEntry {
            request_id: id.to_owned(),
            server: "s".to_owned(),
            tool: "t".to_owned(),
            effect: Effect::Allow,
            labels: vec![],
            time: 0,
        }
    }

    #[test]
    fn a_quarantined_task_is_refused_until_lifted_even_across_eviction() {
        let h = TaskHistory::new(HistoryConfig {
            max_tasks: 1,
            ..HistoryConfig::default()
        });
        let admit = |task: &str| h.admit(task, "agent", |_, _| false);
        h.record_by("a", "agent", e("1"));
        h.quarantine("a", "3 denies");
        let refused = admit("a").unwrap_err();
        assert_eq!(
            refused,
            TaskRefusal::Quarantined {
                task: "a".to_owned(),
                reason: "3 denies".to_owned()
            }
        );
        assert!(refused.to_string().contains("lift-quarantine"));
        // Evicted by another task: still quarantined, so eviction is no way out.
        h.record_by("b", "agent", e("1"));
        assert!(matches!(admit("a"), Err(TaskRefusal::Quarantined { .. })));
        assert!(h.lift_quarantine("a"));
        assert!(
            !h.lift_quarantine("a"),
            "lifting twice says it was not quarantined"
        );
        assert!(admit("a").is_ok());
        // A task quarantined before it acted, and an ended task, which stays ended.
        h.quarantine("new", "asked");
        assert!(matches!(admit("new"), Err(TaskRefusal::Quarantined { .. })));
        h.end("c");
        h.quarantine("c", "late");
        assert_eq!(admit("c").unwrap_err(), TaskRefusal::Ended("c".to_owned()));
    }

    #[test]
    fn an_opened_task_starts_with_the_taint_of_its_agents_open_tasks() {
        let h = TaskHistory::new(HistoryConfig::default());
        let labelled = |labels: &[&str]| HistoryEntry {
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..e("r")
        };
        h.record_by("read", "agent-a", labelled(&["secret"]));
        h.record_by("other", "agent-b", labelled(&["pii"]));
        h.record_by("done", "agent-a", labelled(&["restricted"]));
        h.end("done");
        let a = vec!["agent-a".to_owned()];
        assert_eq!(h.open("next", &a, true).unwrap(), vec!["secret"]);
        let admitted = h.admit("next", "agent-a", |_, _| false).unwrap();
        assert_eq!(&*admitted.labels, ["secret".to_owned()].as_slice());
        // The opener may start it clean; another agent's taint never flows in.
        assert!(h.open("clean", &a, false).unwrap().is_empty());
        let both = vec!["agent-b".to_owned(), "agent-c".to_owned()];
        assert_eq!(h.open("b-next", &both, true).unwrap(), vec!["pii"]);
        // Owned by the first agent.
        assert!(h.admit("b-next", "agent-a", |_, _| false).is_err());
        // An agent opened into a task, or acting in it by sharing, carries its taint
        // too, though it does not own it.
        let pair = vec!["agent-d".to_owned(), "agent-e".to_owned()];
        h.open("pair", &pair, false).unwrap();
        h.record_by("pair", "agent-d", labelled(&["keys"]));
        h.record_by("shared", "agent-f", labelled(&["ledger"]));
        h.record_by("shared", "agent-g", e("joined"));
        assert_eq!(
            h.open("e-next", &["agent-e".to_owned()], true).unwrap(),
            vec!["keys"]
        );
        assert_eq!(
            h.open("g-next", &["agent-g".to_owned()], true).unwrap(),
            vec!["ledger"]
        );
    }

    #[test]
    fn bounded_per_task_and_in_total() {
        let h = TaskHistory::new(HistoryConfig {
            max_entries_per_task: 2,
            max_tasks: 2,
            ..HistoryConfig::default()
        });
        h.record("a", e("1"));
        h.record("a", e("2"));
        h.record("a", e("3"));
        let a = h.entries("a");
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].request_id, "2");
        h.record("b", e("1"));
        h.record("a", e("4")); // a is now the most recent
        h.record("c", e("1")); // evicts b
        assert_eq!(h.task_count(), 2);
        assert!(h.entries("b").is_empty());
        assert_eq!(h.entries("a").len(), 2);
    }

    #[test]
    fn labels_stay_after_their_entry_is_evicted() {
        let h = TaskHistory::new(HistoryConfig {
            max_entries_per_task: 1,
            max_tasks: 10,
            ..HistoryConfig::default()
        });
        let mut secret = e("1");
        secret.labels = vec!["secret".to_owned(), "pii".to_owned()];
        h.record("a", secret);
        let before = h.snapshot("a");
        h.record("a", e("2"));
        let after = h.snapshot("a");
        assert_eq!(after.entries.len(), 1);
        assert_eq!(after.entries[0].request_id, "2");
        assert_eq!(&*after.labels, ["pii".to_owned(), "secret".to_owned()]);
        // An earlier snapshot is unchanged by later records.
        assert_eq!(before.entries[0].request_id, "1");
        assert!(h.snapshot("b").entries.is_empty());
    }

    #[test]
    fn ending_a_task_drops_history_and_is_remembered() {
        let h = TaskHistory::new(HistoryConfig::default());
        h.record("a", e("1"));
        h.end("a");
        assert!(h.entries("a").is_empty());
        assert!(h.is_ended("a"));
        assert!(!h.is_ended("b"));
    }

    #[test]
    fn eviction_keeps_taint_and_ended_tasks_stay_ended() {
        let h = TaskHistory::new(HistoryConfig {
            max_entries_per_task: 8,
            max_tasks: 3,
            max_known_tasks: 100_000,
        });
        let mut secret = e("read");
        secret.labels = vec!["secret".to_owned()];
        h.record("tainted", secret);
        h.end("ended");
        // Far more filler tasks than `max_tasks`: before, they evicted the taint.
        for i in 0..20_000 {
            h.record(&format!("filler-{i}"), e("1"));
        }
        assert_eq!(h.task_count(), 3);
        let snapshot = h.admit("tainted", "", |_, _| false).unwrap();
        assert!(snapshot.entries.is_empty());
        assert_eq!(
            &*snapshot.labels,
            [HISTORY_EVICTED_LABEL.to_owned(), "secret".to_owned()]
        );
        // Acting again starts a new window with every label.
        h.record("tainted", e("send"));
        let snapshot = h.snapshot("tainted");
        assert_eq!(snapshot.entries.len(), 1);
        assert!(snapshot.labels.contains(&"secret".to_owned()));
        assert_eq!(
            h.admit("ended", "", |_, _| false).unwrap_err(),
            TaskRefusal::Ended("ended".into())
        );
        h.record("ended", e("x"));
        assert!(h.is_ended("ended"));
    }

    #[test]
    fn a_full_table_refuses_new_tasks_and_forgets_nothing() {
        let h = TaskHistory::new(HistoryConfig {
            max_entries_per_task: 8,
            max_tasks: 2,
            max_known_tasks: 4,
        });
        for t in ["a", "b", "c"] {
            h.record(t, e("1"));
        }
        h.end("d");
        assert_eq!(h.known_task_count(), 4);
        assert!(matches!(
            h.admit("new", "", |_, _| false),
            Err(TaskRefusal::TableFull { bound: 4, .. })
        ));
        // Known tasks carry on; ending works whatever the bound.
        assert!(h.admit("a", "", |_, _| false).is_ok());
        h.end("e");
        assert!(h.is_ended("e") && h.is_ended("d"));
    }
}
