//! Task state: each task's recent history and sticky labels ([`TaskHistory`]), who owns
//! it, whether it has ended, and the [`TaskStore`] trait that a decision reads and
//! records through ([`MemoryTaskStore`] in one process; a shared store for several
//! replicas, [`RedisTaskStore`], implements the same trait). Approvals, quarantines and
//! credential revocations live behind the same trait, so every replica sharing a store
//! sees them.

mod approvals;
mod history;
#[cfg(feature = "redis")]
mod redis;
mod revocations;
mod store;

pub use approvals::ApprovalBook;
pub use history::{HISTORY_EVICTED_LABEL, MAX_TASK_CO_AGENTS, MAX_TASK_LABELS, TaskRefusal};
#[cfg(feature = "redis")]
pub use redis::RedisTaskStore;
pub use revocations::{MAX_CREDENTIAL_TTL_MS, Revocations, Revoker};
pub use store::{MemoryTaskStore, StoreError, TaskLease, TaskStore};
