//! Which plugin instances may be reused for which evaluations, and how many are kept.
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
//!   pool is over one of its bounds (least recently used first, see below).
//! - `decision`: a fresh instance for every evaluation. Strongest, slowest.
//! - `shared`: instances are reused across tasks. Fastest on the first call of a task,
//!   but a plugin can carry data from one task to another: explicit per-plugin opt-in.
//!
//! Measured on the 2-core reference machine (see `benches/plugin.rs` and
//! BENCHMARKS.md): a fresh instance plus evaluation of a reference Rust plugin costs
//! tens of microseconds, a reused instance a few; agents issue many actions per task,
//! so `task` isolation pays the fresh-instance cost once per task per plugin, and
//! [`crate::plugin::prewarm`] moves even that off the request path when a core is free: a new
//! task is handed a spare instance made ahead of time, which has seen no action at all.
//!
//! # Bounding idle memory
//!
//! Every instance parses the plugin's settings into its own linear memory, so an idle
//! instance costs about the settings' parsed size plus the guest's baseline. A count
//! alone does not bound that: with a 1 MB intent settings file an idle instance holds
//! 8.7 MiB of linear memory, and the fixed 1,024 instances the pool used to keep took the
//! process to 8 GiB of RSS after 3,000 tasks (`benches/instance_memory.rs`, BENCHMARKS.md).
//! So the pool has two bounds per plugin, both from [`IdleLimits`] (`idle_instances` and
//! `idle_memory_mib` in the config):
//!
//! - at most `instances` task-bound (or shared) idle instances;
//! - at most `memory_bytes` of linear memory across **all** idle instances of the
//!   plugin, spares included, so one number bounds what the plugin holds between
//!   evaluations. Spares are counted by `prewarm`, not by `instances`.
//!
//! When a bound is exceeded the least recently used task instance goes first; spares go
//! never: a spare serves the first action of any new task, and there are at most
//! `prewarm` of them. A spare that does not fit beside the other spares is not kept
//! ([`InstancePool::put_spare`] says so). An instance larger than the whole byte bound is
//! not kept at all. Eviction only ever drops an idle instance: the task's next action
//! gets a fresh one (slower, same result), so no isolation property depends on it.
//!
//! An instance's size is its linear memory as the store's limiter saw it grow
//! ([`crate::runtime::MemoryLimiter::linear_bytes`]): an upper bound on what the guest
//! can have touched, cheap to know, and the part that grows with the settings. Host-side
//! structures per instance (tens of KiB) are bounded by the count.

use crate::config::{IdleLimits, Isolation};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// An instance is retired after this many evaluations, bounding how much state (and heap
/// fragmentation) one long task can accumulate in a single instance.
pub const MAX_USES: u32 = 10_000;

/// Idle instances kept per plugin for shared isolation (one per concurrent caller).
pub const SHARED_CAPACITY: usize = 16;

/// The idle instances of one plugin: task-bound (or shared) ones, and spares.
#[derive(Debug)]
pub struct InstancePool<T> {
    isolation: Isolation,
    limits: IdleLimits,
    inner: Mutex<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    /// Task id → (recency sequence number, instance).
    by_task: HashMap<String, (u64, Idle<T>)>,
    /// Recency sequence number → task id; the first entry is the least recently used.
    recency: BTreeMap<u64, String>,
    /// Shared isolation: the most recently returned instance last.
    shared: Vec<Idle<T>>,
    /// Fresh, never-used instances (see [`crate::plugin::prewarm`]).
    spares: Vec<Idle<T>>,
    /// Linear memory of everything above.
    bytes: usize,
    next_seq: u64,
}

/// An instance with the linear memory it held when it was put in the pool.
#[derive(Debug)]
struct Idle<T> {
    instance: T,
    bytes: usize,
}

impl<T> Inner<T> {
    /// Drops least recently used task or shared instances until `count` of them and the
    /// total bytes fit the limits. Spares are never evicted here.
    fn evict(&mut self, limits: IdleLimits, max_count: usize) {
        loop {
            let count = self.by_task.len() + self.shared.len();
            if count <= max_count && self.bytes <= limits.memory_bytes {
                return;
            }
            let dropped = if let Some((_, task)) = self.recency.pop_first() {
                self.by_task.remove(&task).map(|(_, entry)| entry)
            } else if !self.shared.is_empty() {
                Some(self.shared.remove(0))
            } else {
                // Only spares are left, and they fit by construction (`put_spare`).
                return;
            };
            if let Some(entry) = dropped {
                self.bytes = self.bytes.saturating_sub(entry.bytes);
            }
        }
    }
}

impl<T> InstancePool<T> {
    /// An empty pool for this isolation level, bounded by `limits`.
    pub fn new(isolation: Isolation, limits: IdleLimits) -> Self {
        Self {
            isolation,
            limits,
            inner: Mutex::new(Inner {
                by_task: HashMap::new(),
                recency: BTreeMap::new(),
                shared: Vec::new(),
                spares: Vec::new(),
                bytes: 0,
                next_seq: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A poisoned lock only means a thread panicked between two of these short,
        // non-panicking updates; the maps are intact.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes an idle instance that may serve an evaluation for `task`, if any. The
    /// instance is removed from the pool while in use, so no two evaluations share it.
    pub fn take(&self, task: Option<&str>) -> Option<T> {
        let mut inner = self.lock();
        let entry = match (self.isolation, task) {
            (Isolation::Decision, _) | (Isolation::Task, None) => None,
            (Isolation::Task, Some(task)) => {
                let (seq, entry) = inner.by_task.remove(task)?;
                inner.recency.remove(&seq);
                Some(entry)
            }
            (Isolation::Shared, _) => inner.shared.pop(),
        }?;
        inner.bytes = inner.bytes.saturating_sub(entry.bytes);
        Some(entry.instance)
    }

    /// Returns a healthy instance holding `bytes` of linear memory after an evaluation
    /// for `task`, then evicts least recently used instances until the pool is within
    /// its limits (which may drop this one).
    pub fn put(&self, task: Option<&str>, instance: T, bytes: usize) {
        let entry = Idle { instance, bytes };
        if bytes > self.limits.memory_bytes {
            // Alone it is over the bound: keeping it would evict everything else.
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        match (self.isolation, task) {
            (Isolation::Decision, _) | (Isolation::Task, None) => {}
            (Isolation::Task, Some(task)) => {
                inner.next_seq += 1;
                let seq = inner.next_seq;
                inner.bytes = inner.bytes.saturating_add(bytes);
                // If a concurrent evaluation of the same task already returned one, the
                // older instance is dropped here.
                if let Some((old_seq, old)) = inner.by_task.insert(task.to_owned(), (seq, entry)) {
                    inner.recency.remove(&old_seq);
                    inner.bytes = inner.bytes.saturating_sub(old.bytes);
                }
                inner.recency.insert(seq, task.to_owned());
                inner.evict(self.limits, self.limits.instances);
            }
            (Isolation::Shared, _) => {
                inner.bytes = inner.bytes.saturating_add(bytes);
                inner.shared.push(entry);
                inner.evict(self.limits, SHARED_CAPACITY.min(self.limits.instances));
            }
        }
    }

    /// Adds a spare holding `bytes` of linear memory, evicting task instances to make
    /// room. Returns `false`, dropping the spare, if it does not fit beside the spares
    /// already kept: then the byte bound, not `prewarm`, limits the spares.
    pub fn put_spare(&self, instance: T, bytes: usize) -> bool {
        let mut inner = self.lock();
        let spare_bytes: usize = inner.spares.iter().map(|s| s.bytes).sum();
        if spare_bytes.saturating_add(bytes) > self.limits.memory_bytes {
            return false;
        }
        inner.bytes = inner.bytes.saturating_add(bytes);
        inner.spares.push(Idle { instance, bytes });
        let max_count = match self.isolation {
            Isolation::Shared => SHARED_CAPACITY.min(self.limits.instances),
            Isolation::Task | Isolation::Decision => self.limits.instances,
        };
        inner.evict(self.limits, max_count);
        true
    }

    /// Takes a spare, if any.
    pub fn take_spare(&self) -> Option<T> {
        let mut inner = self.lock();
        let entry = inner.spares.pop()?;
        inner.bytes = inner.bytes.saturating_sub(entry.bytes);
        Some(entry.instance)
    }

    /// Drops the task's idle instance (the task ended).
    pub fn forget_task(&self, task: &str) {
        let mut inner = self.lock();
        if let Some((seq, entry)) = inner.by_task.remove(task) {
            inner.recency.remove(&seq);
            inner.bytes = inner.bytes.saturating_sub(entry.bytes);
        }
    }

    /// Number of idle task-bound (or shared) instances; spares are not counted.
    pub fn idle(&self) -> usize {
        let inner = self.lock();
        inner.by_task.len() + inner.shared.len()
    }

    /// Number of spares.
    pub fn spares(&self) -> usize {
        self.lock().spares.len()
    }

    /// Linear memory held by all idle instances, spares included, in bytes.
    pub fn idle_bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    fn limits(instances: usize, memory_bytes: usize) -> IdleLimits {
        IdleLimits {
            instances,
            memory_bytes,
        }
    }

    fn pool(isolation: Isolation) -> InstancePool<u32> {
        InstancePool::new(isolation, limits(8, 64 * MIB))
    }

    #[test]
    fn task_instances_never_cross_tasks() {
        let pool = pool(Isolation::Task);
        pool.put(Some("a"), 1, MIB);
        assert_eq!(pool.take(Some("b")), None);
        assert_eq!(pool.take(None), None);
        assert_eq!(pool.take(Some("a")), Some(1));
        assert_eq!(pool.take(Some("a")), None);
    }

    #[test]
    fn decision_isolation_never_reuses() {
        let pool = pool(Isolation::Decision);
        pool.put(Some("a"), 1, MIB);
        assert_eq!(pool.take(Some("a")), None);
        assert_eq!(pool.idle(), 0);
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn capacity_evicts_least_recently_used() {
        let pool = InstancePool::new(Isolation::Task, limits(2, 64 * MIB));
        pool.put(Some("a"), 1, MIB);
        pool.put(Some("b"), 2, MIB);
        pool.put(Some("c"), 3, MIB);
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.take(Some("a")), None);
        assert_eq!(pool.take(Some("c")), Some(3));
    }

    #[test]
    fn the_byte_bound_evicts_least_recently_used() {
        // Room for 1,000 instances by count, 10 MiB by bytes: the bytes decide.
        let pool = InstancePool::new(Isolation::Task, limits(1000, 10 * MIB));
        for task in 0..100u32 {
            pool.put(Some(&format!("t{task}")), task, 3 * MIB);
            assert!(pool.idle_bytes() <= 10 * MIB, "after task {task}");
        }
        assert_eq!(pool.idle(), 3);
        assert_eq!(pool.idle_bytes(), 9 * MIB);
        // The three most recent tasks kept theirs.
        for task in 97..100u32 {
            assert_eq!(pool.take(Some(&format!("t{task}"))), Some(task));
        }
        assert_eq!(pool.take(Some("t96")), None);
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn reuse_refreshes_recency_and_size() {
        let pool = InstancePool::new(Isolation::Task, limits(1000, 10 * MIB));
        pool.put(Some("a"), 1, 2 * MIB);
        pool.put(Some("b"), 2, 2 * MIB);
        // `a` is used again and has grown; `b` is now the least recently used.
        let a = pool.take(Some("a")).unwrap();
        pool.put(Some("a"), a, 5 * MIB);
        assert_eq!(pool.idle_bytes(), 7 * MIB);
        pool.put(Some("c"), 3, 4 * MIB);
        assert_eq!(pool.idle_bytes(), 9 * MIB);
        assert_eq!(pool.take(Some("b")), None);
        assert_eq!(pool.take(Some("a")), Some(1));
    }

    #[test]
    fn an_instance_over_the_byte_bound_is_not_kept() {
        let pool = InstancePool::new(Isolation::Task, limits(8, 4 * MIB));
        pool.put(Some("a"), 1, MIB);
        pool.put(Some("big"), 2, 5 * MIB);
        assert_eq!(pool.take(Some("big")), None);
        // ...and it did not evict the others on its way out.
        assert_eq!(pool.take(Some("a")), Some(1));
        assert!(!pool.put_spare(3, 5 * MIB));
        assert_eq!(pool.spares(), 0);
    }

    #[test]
    fn spares_count_against_the_byte_bound_and_evict_task_instances() {
        let pool = InstancePool::new(Isolation::Task, limits(8, 10 * MIB));
        for task in 0..4u32 {
            pool.put(Some(&format!("t{task}")), task, 2 * MIB);
        }
        assert_eq!(pool.idle_bytes(), 8 * MIB);
        assert!(pool.put_spare(10, 3 * MIB));
        // One task instance (the oldest) made room.
        assert_eq!((pool.idle(), pool.spares()), (3, 1));
        assert_eq!(pool.idle_bytes(), 9 * MIB);
        assert_eq!(pool.take(Some("t0")), None);
        // Task instances never evict spares: this one evicts task instances, and finally
        // itself, rather than the spares.
        assert!(pool.put_spare(11, 3 * MIB));
        assert!(pool.put_spare(12, 3 * MIB));
        pool.put(Some("new"), 5, 2 * MIB);
        assert_eq!(pool.spares(), 3);
        assert_eq!(pool.take(Some("new")), None);
        assert_eq!(pool.idle_bytes(), 9 * MIB);
        // A fourth spare does not fit beside the three.
        assert!(!pool.put_spare(13, 3 * MIB));
        assert_eq!(pool.take_spare(), Some(12));
        assert_eq!(pool.idle_bytes(), 6 * MIB);
    }

    #[test]
    fn zero_idle_instances_keeps_only_spares() {
        let pool = InstancePool::new(Isolation::Task, limits(0, 10 * MIB));
        pool.put(Some("a"), 1, MIB);
        assert_eq!(pool.take(Some("a")), None);
        assert!(pool.put_spare(2, MIB));
        assert_eq!(pool.take_spare(), Some(2));
    }

    #[test]
    fn shared_reuses_across_tasks_within_both_bounds() {
        let pool = pool(Isolation::Shared);
        pool.put(Some("a"), 1, MIB);
        assert_eq!(pool.take(Some("b")), Some(1));
        let pool = InstancePool::new(Isolation::Shared, limits(100, 5 * MIB));
        for n in 0..40u32 {
            pool.put(None, n, 2 * MIB);
        }
        assert_eq!(pool.idle(), 2);
        assert_eq!(pool.idle_bytes(), 4 * MIB);
        assert_eq!(pool.take(None), Some(39));
        let pool = InstancePool::new(Isolation::Shared, limits(100, 500 * MIB));
        for n in 0..40u32 {
            pool.put(None, n, MIB);
        }
        assert_eq!(pool.idle(), SHARED_CAPACITY);
    }

    #[test]
    fn forget_task_drops_its_instance() {
        let pool = pool(Isolation::Task);
        pool.put(Some("a"), 1, MIB);
        pool.forget_task("a");
        assert_eq!(pool.take(Some("a")), None);
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn a_task_returning_twice_is_counted_once() {
        let pool = pool(Isolation::Task);
        pool.put(Some("a"), 1, MIB);
        pool.put(Some("a"), 2, 3 * MIB);
        assert_eq!(pool.idle(), 1);
        assert_eq!(pool.idle_bytes(), 3 * MIB);
    }
}
