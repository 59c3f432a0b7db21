//! Which minted credentials are revoked: every credential of a task that ended or was
//! quarantined, kept until it would have expired anyway (after that its `exp` refuses
//! it, so the entry can go).
//!
//! Revocations live in the task store, so that every replica sharing a store sees a
//! revocation made on any of them: [`Revocations`] is the in-memory table of
//! [`crate::task::MemoryTaskStore`]; the Redis store keeps the same facts in Redis.
//! [`Revoker`] is how the credential issuer reaches them, with the store's deadline.

use super::store::{StoreError, TaskStore};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a minted credential lives (`credentials.ttl_ms` is at most this): a
/// revocation is kept at least this long, after which every credential it covered has
/// expired anyway.
pub const MAX_CREDENTIAL_TTL_MS: u64 = 3_600_000;

/// The task store's credential revocations, each operation bounded by the store's
/// deadline. Times are Unix seconds, as in the credentials' `exp`.
#[derive(Clone, Copy)]
pub struct Revoker<'a> {
    store: &'a dyn TaskStore,
    timeout: Duration,
}

impl std::fmt::Debug for Revoker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revoker")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<'a> Revoker<'a> {
    /// Revocations of `store`, each operation bounded by `timeout`.
    pub fn new(store: &'a dyn TaskStore, timeout: Duration) -> Self {
        Self { store, timeout }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Remembers a credential minted for `task` (born revoked if the task's credentials
    /// are revoked).
    pub fn minted(
        &self,
        task: &str,
        id: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.store
            .credential_minted(task, id, expires_at, now, self.deadline())
    }

    /// Revokes every credential of `task`, and those minted for it until `until`;
    /// returns how many were live.
    pub fn revoke_task(&self, task: &str, now: u64, until: u64) -> Result<usize, StoreError> {
        self.store
            .revoke_task_credentials(task, now, until, self.deadline())
    }

    /// New credentials of `task` are live again.
    pub fn reinstate_task(&self, task: &str) -> Result<(), StoreError> {
        self.store.reinstate_task_credentials(task, self.deadline())
    }

    /// Revokes one credential until it expires.
    pub fn revoke(&self, id: &str, expires_at: u64) -> Result<(), StoreError> {
        self.store
            .revoke_credential(id, expires_at, self.deadline())
    }

    /// Whether `id`, issued at `issued_at` (Unix s) for `task`, is revoked.
    pub fn is_revoked(
        &self,
        id: &str,
        task: Option<&str>,
        issued_at: u64,
    ) -> Result<bool, StoreError> {
        self.store
            .credential_revoked(id, task, issued_at, self.deadline())
    }
}

/// Minted and revoked credential ids, in this process.
#[derive(Debug, Default)]
pub struct Revocations {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Credentials minted per task: id and expiry (Unix s).
    by_task: HashMap<String, Vec<(String, u64)>>,
    /// Revoked ids and their expiry.
    revoked: HashMap<String, u64>,
    /// Tasks revoked (ended or quarantined), and until when that is remembered: a
    /// decision already in flight when its task ended may mint after the revocation;
    /// its credential is born revoked.
    revoked_tasks: HashMap<String, u64>,
}

impl Revocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic mid-update of two maps of plain values: still
        // usable, and refusing to revoke would be worse.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers a credential minted for `task`.
    pub fn minted(&self, task: &str, id: &str, expires_at: u64, now: u64) {
        let mut inner = self.lock();
        inner.prune(now);
        if inner.revoked_tasks.contains_key(task) {
            inner.revoked.insert(id.to_owned(), expires_at);
            return;
        }
        inner
            .by_task
            .entry(task.to_owned())
            .or_default()
            .push((id.to_owned(), expires_at));
    }

    /// Revokes every credential minted for `task`, and every one minted for it until
    /// `until` (Unix s: the longest a credential can live); returns how many were live.
    pub fn revoke_task(&self, task: &str, now: u64, until: u64) -> usize {
        let mut inner = self.lock();
        inner.prune(now);
        inner.revoked_tasks.insert(task.to_owned(), until);
        let Some(minted) = inner.by_task.remove(task) else {
            return 0;
        };
        let live = minted.iter().filter(|(_, exp)| *exp > now).count();
        inner.revoked.extend(minted);
        live
    }

    /// Revokes one credential (minted for a call that was then denied).
    pub fn revoke(&self, id: &str, expires_at: u64) {
        self.lock().revoked.insert(id.to_owned(), expires_at);
    }

    /// New credentials of `task` are live again (its quarantine was lifted); those
    /// revoked stay revoked.
    pub fn reinstate_task(&self, task: &str) {
        self.lock().revoked_tasks.remove(task);
    }

    /// Whether `id` is revoked.
    pub fn is_revoked(&self, id: &str) -> bool {
        self.lock().revoked.contains_key(id)
    }
}

impl Inner {
    fn prune(&mut self, now: u64) {
        self.revoked.retain(|_, exp| *exp > now);
        self.revoked_tasks.retain(|_, until| *until > now);
        self.by_task.retain(|_, minted| {
            minted.retain(|(_, exp)| *exp > now);
            !minted.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_a_task_revokes_its_credentials_until_they_expire() {
        let r = Revocations::default();
        r.minted("t1", "a", 200, 100);
        r.minted("t1", "b", 300, 100);
        r.minted("t2", "c", 300, 100);
        assert_eq!(r.revoke_task("t1", 150, 1000), 2);
        assert!(r.is_revoked("a") && r.is_revoked("b"));
        assert!(!r.is_revoked("c"));
        // Past its expiry the entry goes: `exp` refuses the credential by then.
        r.minted("t3", "d", 400, 250);
        assert!(!r.is_revoked("a") && r.is_revoked("b"));
        // A decision in flight when t1 ended mints late: born revoked.
        r.minted("t1", "late", 500, 260);
        assert!(r.is_revoked("late"));
        r.reinstate_task("t1");
        r.minted("t1", "after-lift", 500, 260);
        assert!(!r.is_revoked("after-lift"));
    }
}
