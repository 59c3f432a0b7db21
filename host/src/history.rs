//! Task history: each task's recent actions and their final effects, so a policy can
//! judge a chain (read a secret, then send mail) rather than one call in isolation.
//!
//! Bounded twice: per task (oldest entries evicted) and in total (least recently used
//! task evicted), so an agent opening endless tasks cannot exhaust the host's memory.
//! Ended tasks are remembered (also bounded) so that later actions for them are denied.
//!
//! Besides the recent entries, each task keeps its **sticky labels**: every label it ever
//! touched. Evicting an old entry must not launder a secret read long ago, so taint is
//! kept for the task's whole life, not just the window of recent entries.
//!
//! Plugins read both through a [`TaskSnapshot`], taken once per decision. Entries and
//! labels are shared behind `Arc`s (copy-on-write when the task records its next entry),
//! so taking a snapshot costs two reference counts, whatever the history's length.

use crate::config::HistoryConfig;
use crate::decision::Effect;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// At most this many distinct sticky labels per task. Labels are short words from the
/// gateway and from plugins (at most 16 per verdict); beyond this bound new labels are
/// not remembered and a warning is logged.
pub const MAX_TASK_LABELS: usize = 256;

/// One earlier action of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Request id.
    pub request_id: String,
    /// Tool server.
    pub server: String,
    /// Tool name.
    pub tool: String,
    /// Final effect.
    pub effect: Effect,
    /// Labels touched (resource labels and labels plugins attached).
    pub labels: Vec<String>,
    /// Decision time, Unix ms.
    pub time: u64,
}

/// What plugins may read about the task of the action they evaluate: the recent entries
/// (oldest first) and every label the task touched. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TaskSnapshot {
    /// Recent entries, oldest first.
    pub entries: Arc<VecDeque<HistoryEntry>>,
    /// Every label the task touched since it began, sorted, without duplicates.
    pub labels: Arc<[String]>,
}

#[derive(Debug, Default)]
struct TaskRecord {
    /// Last-use sequence number (key into `Inner::recency`); 0 before the first record.
    seq: u64,
    entries: Arc<VecDeque<HistoryEntry>>,
    labels: Arc<[String]>,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, TaskRecord>,
    /// Last-use sequence number → task id, for LRU eviction.
    recency: BTreeMap<u64, String>,
    next_seq: u64,
    ended: HashSet<String>,
    ended_order: VecDeque<String>,
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

    /// What plugins may read about the task now; empty for a task with no history.
    pub fn snapshot(&self, task_id: &str) -> TaskSnapshot {
        self.lock()
            .tasks
            .get(task_id)
            .map(|task| TaskSnapshot {
                entries: Arc::clone(&task.entries),
                labels: Arc::clone(&task.labels),
            })
            .unwrap_or_default()
    }

    /// Records an entry for the task, evicting as the bounds require.
    pub fn record(&self, task_id: &str, entry: HistoryEntry) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let task = inner.tasks.entry(task_id.to_owned()).or_default();
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
            inner.tasks.remove(&oldest);
        }
    }

    /// Ends a task: its history is dropped and later actions are to be denied.
    pub fn end(&self, task_id: &str) {
        let mut inner = self.lock();
        if let Some(task) = inner.tasks.remove(task_id) {
            inner.recency.remove(&task.seq);
        }
        if inner.ended.insert(task_id.to_owned()) {
            inner.ended_order.push_back(task_id.to_owned());
        }
        // Remember many more ended tasks than live ones: forgetting one re-opens it.
        let cap = self.config.max_tasks.saturating_mul(10);
        while inner.ended_order.len() > cap {
            if let Some(old) = inner.ended_order.pop_front() {
                inner.ended.remove(&old);
            }
        }
    }

    /// Whether the task was ended.
    pub fn is_ended(&self, task_id: &str) -> bool {
        self.lock().ended.contains(task_id)
    }

    /// Number of tasks with history.
    pub fn task_count(&self) -> usize {
        self.lock().tasks.len()
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
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

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
    fn bounded_per_task_and_in_total() {
        let h = TaskHistory::new(HistoryConfig {
            max_entries_per_task: 2,
            max_tasks: 2,
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
}
