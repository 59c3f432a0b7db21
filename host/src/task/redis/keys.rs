//! The key layout in Redis.
//!
//! Every key of one task carries the task id as its hash tag (`{…}`), so that a task's
//! keys sit in one slot and its Lua scripts touch one slot, as Redis Cluster requires.
//! Ids are escaped (`%`, `{`, `}` percent-encoded) before they go between the braces:
//! without that, a task id containing `}` could make its key equal another task's (a
//! task `a}:entries` would own the entries of task `a`).
//!
//! ```text
//! {prefix}:task:{<task>}            hash: owner, ended, quarantine, opened (JSON),
//!                                         creds_revoked_until
//! {prefix}:task:{<task>}:lock       the decision holding the task (token, with a lease)
//! {prefix}:task:{<task>}:entries    list of recent entries (JSON), oldest first
//! {prefix}:task:{<task>}:labels     set: sticky labels
//! {prefix}:task:{<task>}:agents     set: agents of the task besides its owner
//! {prefix}:task:{<task>}:creds      hash: credentials minted for it → expiry
//! {prefix}:task:{<task>}:approvals  hash: its approvals (JSON)
//! {prefix}:agent:{<agent>}:tasks    set: tasks the agent acted in (taint inheritance)
//! {prefix}:agent:{<agent>}:approvals  hash: approvals of calls with no task
//! {prefix}:cred:{<id>}:revoked      a revoked credential, until it expires
//! {prefix}:approvals:{index}        sorted set: approval ids by expiry
//! {prefix}:approvals:{index}:scope  hash: approval id → the key holding it
//! ```

/// Builds every key from the configured prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// The keys of one task (all in the task's slot).
#[derive(Debug, Clone)]
pub struct TaskKeys {
    base: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The keys of `task`.
    pub fn task(&self, task: &str) -> TaskKeys {
        TaskKeys {
            base: format!("{}:task:{{{}}}", self.prefix, escape(task)),
        }
    }

    /// The tasks `agent` acted in.
    pub fn agent_tasks(&self, agent: &str) -> String {
        format!("{}:agent:{{{}}}:tasks", self.prefix, escape(agent))
    }

    /// Approvals of `agent`'s calls that name no task.
    pub fn agent_approvals(&self, agent: &str) -> String {
        format!("{}:agent:{{{}}}:approvals", self.prefix, escape(agent))
    }

    /// The revocation of credential `id`.
    pub fn credential_revoked(&self, id: &str) -> String {
        format!("{}:cred:{{{}}}:revoked", self.prefix, escape(id))
    }

    /// Approval ids by expiry.
    pub fn approval_index(&self) -> String {
        format!("{}:approvals:{{index}}", self.prefix)
    }

    /// Approval id → the key holding it (same slot as the index).
    pub fn approval_scopes(&self) -> String {
        format!("{}:approvals:{{index}}:scope", self.prefix)
    }
}

impl TaskKeys {
    /// The task's hash.
    pub fn meta(&self) -> String {
        self.base.clone()
    }

    /// The lease of the decision holding it.
    pub fn lock(&self) -> String {
        format!("{}:lock", self.base)
    }

    /// Its recent entries.
    pub fn entries(&self) -> String {
        format!("{}:entries", self.base)
    }

    /// Its sticky labels.
    pub fn labels(&self) -> String {
        format!("{}:labels", self.base)
    }

    /// Its agents besides the owner.
    pub fn agents(&self) -> String {
        format!("{}:agents", self.base)
    }

    /// Credentials minted for it.
    pub fn credentials(&self) -> String {
        format!("{}:creds", self.base)
    }

    /// Its approvals.
    pub fn approvals(&self) -> String {
        format!("{}:approvals", self.base)
    }
}

/// `%`, `{` and `}` percent-encoded: injective, and never closes the hash tag early.
fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crafted_task_id_cannot_name_another_tasks_keys() {
        let keys = Keys::new("arbiter");
        let plain = keys.task("a");
        let crafted = keys.task("a}:entries");
        assert_ne!(crafted.meta(), plain.entries());
        assert_eq!(plain.meta(), "arbiter:task:{a}");
        assert_eq!(crafted.meta(), "arbiter:task:{a%7D:entries}");
        // Every key of one task has the same hash tag.
        for key in [crafted.lock(), crafted.entries(), crafted.approvals()] {
            assert!(key.starts_with("arbiter:task:{a%7D:entries}:"), "{key}");
        }
        assert_ne!(keys.task("%7D").meta(), keys.task("}").meta());
    }
}
