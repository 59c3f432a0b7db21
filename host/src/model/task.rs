//! What the host knows about a task when it decides one of its actions: the recent
//! entries of its history and its sticky labels (see `task::history` for how they are
//! kept and bounded). Plugins read them through `host.history` and `host.task-labels`.

use super::decision::Effect;
use std::collections::VecDeque;
use std::sync::Arc;

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
