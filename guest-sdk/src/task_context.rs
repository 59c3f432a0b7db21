//! What a policy can read about its action's task beyond the action itself: the task's
//! recent history and its sticky labels.
//!
//! In a component both come from the host (`host.history`, `host.task-labels`) on first
//! use, so a policy that never looks at them pays nothing for them. In native unit tests
//! [`crate::testing`] fills them in.

use crate::action::HistoryEntry;
use std::sync::OnceLock;

/// The task's history and sticky labels, fetched lazily.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TaskContext {
    history: OnceLock<Vec<HistoryEntry>>,
    labels: OnceLock<Vec<String>>,
}

impl TaskContext {
    /// Recent earlier actions of the task, oldest first.
    pub(crate) fn history(&self) -> &[HistoryEntry] {
        self.history.get_or_init(fetch_history)
    }

    /// Every label the task touched before this action, sorted, without duplicates.
    pub(crate) fn labels(&self) -> &[String] {
        self.labels.get_or_init(fetch_labels)
    }

    /// Appends an earlier action and remembers its labels, as the host does (tests only).
    pub(crate) fn push(&mut self, entry: HistoryEntry) {
        let _ = self.labels();
        if let Some(labels) = self.labels.get_mut() {
            labels.extend(entry.labels.iter().cloned());
            labels.sort();
            labels.dedup();
        }
        let _ = self.history();
        if let Some(history) = self.history.get_mut() {
            history.push(entry);
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn fetch_history() -> Vec<HistoryEntry> {
    crate::__private::host_history()
}

#[cfg(target_arch = "wasm32")]
fn fetch_labels() -> Vec<String> {
    crate::__private::host_task_labels()
}

#[cfg(not(target_arch = "wasm32"))]
fn fetch_history() -> Vec<HistoryEntry> {
    Vec::new()
}

#[cfg(not(target_arch = "wasm32"))]
fn fetch_labels() -> Vec<String> {
    Vec::new()
}
