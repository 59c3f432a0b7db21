//! Task state: each task's recent history and sticky labels ([`TaskHistory`]), who owns
//! it, whether it has ended, and the [`TaskStore`] trait that a decision reads and
//! records through ([`MemoryTaskStore`] in one process; a shared store for several
//! replicas implements the same trait). Approvals, quarantines and credential
//! revocations will live behind the same trait.

mod approvals;
mod history;
mod store;

pub use approvals::ApprovalBook;
pub use history::{HISTORY_EVICTED_LABEL, TaskRefusal};
pub use store::{MemoryTaskStore, StoreError, TaskLease, TaskStore};
