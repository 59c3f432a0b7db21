//! Which plugin instances may be reused for which evaluations.
//!
//! # The isolation guarantee and why this scheme
//!
//! A plugin instance's linear memory holds whatever earlier evaluations left there:
//! globals, caches, freed-but-not-cleared buffers with a previous action's arguments.
//! Arbiter's default guarantee is that **no data from one decision is visible to a plugin
//! evaluating a decision of a different task**. The cheapest scheme that keeps it:
//!
//! - `task` (default): an instance serves exactly one task. The first action of a task
//!   gets a fresh instance; later actions of the same task reuse it, because a task's
//!   own earlier actions are already visible to its policies through `history`. An
//!   action without a task always gets a fresh instance. An instance is never handed
//!   to another task, is dropped after any failure (a trapped component instance must
//!   not be re-entered), after [`MAX_USES`] evaluations, when the task ends, and when the
//!   pool is full (least recently used first).
//! - `decision`: a fresh instance for every evaluation. Strongest, slowest.
//! - `shared`: instances are reused across tasks. Fastest on the first call of a task,
//!   but a plugin can carry data from one task to another: explicit per-plugin opt-in.
//!
//! Measured on the 2-core reference machine (see `benches/plugin.rs` and
//! BENCHMARKS.md): a fresh instance plus evaluation of a reference Rust plugin costs
//! tens of microseconds, a reused instance a few; agents issue many actions per task,
//! so `task` isolation pays the fresh-instance cost once per task per plugin, and
//! [`crate::prewarm`] moves even that off the request path when a core is free: a new
//! task is handed a spare instance made ahead of time, which has seen no action at all.

use crate::config::Isolation;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// An instance is retired after this many evaluations, bounding how much state (and heap
/// fragmentation) one long task can accumulate in a single instance.
pub const MAX_USES: u32 = 10_000;

/// Idle instances kept per plugin (task isolation).
pub const DEFAULT_CAPACITY: usize = 1024;

/// Idle instances kept per plugin for shared isolation (one per concurrent caller).
pub const SHARED_CAPACITY: usize = 16;

/// A pool of idle instances of one plugin, keyed by task.
#[derive(Debug)]
pub struct InstancePool<T> {
    isolation: Isolation,
    capacity: usize,
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    by_task: HashMap<String, (u64, T)>,
    recency: BTreeMap<u64, String>,
    shared: Vec<T>,
    next_seq: u64,
}

impl<T> InstancePool<T> {
    /// An empty pool for this isolation level.
    pub fn new(isolation: Isolation, capacity: usize) -> Self {
        Self {
            isolation,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                by_task: HashMap::new(),
                recency: BTreeMap::new(),
                shared: Vec::new(),
                next_seq: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes an idle instance that may serve an evaluation for `task`, if any. The
    /// instance is removed from the pool while in use, so no two evaluations share it.
    pub fn take(&self, task: Option<&str>) -> Option<T> {
        match (self.isolation, task) {
            (Isolation::Decision, _) | (Isolation::Task, None) => None,
            (Isolation::Task, Some(task)) => {
                let mut inner = self.lock();
                let (seq, instance) = inner.by_task.remove(task)?;
                inner.recency.remove(&seq);
                Some(instance)
            }
            (Isolation::Shared, _) => self.lock().shared.pop(),
        }
    }

    /// Returns a healthy instance after an evaluation for `task`.
    pub fn put(&self, task: Option<&str>, instance: T) {
        match (self.isolation, task) {
            (Isolation::Decision, _) | (Isolation::Task, None) => {}
            (Isolation::Task, Some(task)) => {
                let mut inner = self.lock();
                let inner = &mut *inner;
                inner.next_seq += 1;
                let seq = inner.next_seq;
                // If a concurrent evaluation of the same task already returned one, the
                // older instance is dropped here.
                if let Some((old_seq, _)) = inner.by_task.insert(task.to_owned(), (seq, instance)) {
                    inner.recency.remove(&old_seq);
                }
                inner.recency.insert(seq, task.to_owned());
                while inner.by_task.len() > self.capacity {
                    let Some((_, oldest)) = inner.recency.pop_first() else {
                        break;
                    };
                    inner.by_task.remove(&oldest);
                }
            }
            (Isolation::Shared, _) => {
                let mut inner = self.lock();
                if inner.shared.len() < SHARED_CAPACITY.min(self.capacity) {
                    inner.shared.push(instance);
                }
            }
        }
    }

    /// Drops the task's idle instance (the task ended).
    pub fn forget_task(&self, task: &str) {
        let mut inner = self.lock();
        if let Some((seq, _)) = inner.by_task.remove(task) {
            inner.recency.remove(&seq);
        }
    }

    /// Number of idle instances.
    pub fn idle(&self) -> usize {
        let inner = self.lock();
        inner.by_task.len() + inner.shared.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_instances_never_cross_tasks() {
        let pool = InstancePool::new(Isolation::Task, 8);
        pool.put(Some("a"), 1);
        assert_eq!(pool.take(Some("b")), None);
        assert_eq!(pool.take(None), None);
        assert_eq!(pool.take(Some("a")), Some(1));
        assert_eq!(pool.take(Some("a")), None);
    }

    #[test]
    fn decision_isolation_never_reuses() {
        let pool = InstancePool::new(Isolation::Decision, 8);
        pool.put(Some("a"), 1);
        assert_eq!(pool.take(Some("a")), None);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn capacity_evicts_least_recently_used() {
        let pool = InstancePool::new(Isolation::Task, 2);
        pool.put(Some("a"), 1);
        pool.put(Some("b"), 2);
        pool.put(Some("c"), 3);
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.take(Some("a")), None);
        assert_eq!(pool.take(Some("c")), Some(3));
    }

    #[test]
    fn shared_reuses_across_tasks() {
        let pool = InstancePool::new(Isolation::Shared, 8);
        pool.put(Some("a"), 1);
        assert_eq!(pool.take(Some("b")), Some(1));
    }

    #[test]
    fn forget_task_drops_its_instance() {
        let pool = InstancePool::new(Isolation::Task, 8);
        pool.put(Some("a"), 1);
        pool.forget_task("a");
        assert_eq!(pool.take(Some("a")), None);
    }
}
