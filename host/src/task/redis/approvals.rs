//! Approvals in Redis, with the rules of the in-memory book.
//!
//! The approvals of one task live in one hash (`{prefix}:task:{<task>}:approvals`;
//! calls with no task: per agent). Each operation watches that hash, loads it into an
//! [`ApprovalBook`], applies the operation there (the same code as in memory), and
//! writes back what changed in a `MULTI`/`EXEC` that fails if anything wrote the hash
//! in between; it is then re-run, a bounded number of times. That is what makes an
//! approval consumed exactly once across replicas: two decisions racing for it both
//! find it approved, only one `EXEC` lands, and the other re-reads it consumed.
//!
//! An index (approval id → its hash, by expiry) serves lookups by id and the
//! `approvals.max_approvals` bound across tasks.

use super::RedisTaskStore;
use crate::model::{Approval, ApprovalBinding, ApprovalMatch, ApprovalRefusal, ApprovalVerdict};
use crate::task::ApprovalBook;
use crate::task::StoreError;
use redis::Connection;
use std::time::Instant;

/// Re-runs of one operation when another replica wrote the same approvals meanwhile.
const MAX_ATTEMPTS: usize = 16;

fn scope_of(store: &RedisTaskStore, binding: &ApprovalBinding) -> String {
    match &binding.task {
        Some(task) => store.keys.task(task).approvals(),
        None => store.keys.agent_approvals(&binding.agent),
    }
}

/// The approvals held in `scope`; `Err` (inside) for one that cannot be parsed.
fn load(con: &mut Connection, scope: &str) -> redis::RedisResult<Result<Vec<Approval>, String>> {
    let raw: Vec<String> = redis::cmd("HVALS").arg(scope).query(con)?;
    Ok(raw
        .iter()
        .map(|a| serde_json::from_str::<Approval>(a).map_err(|e| format!("approval: {e}")))
        .collect())
}

/// Writes `approval` into `scope` if nothing wrote `scope` since it was watched;
/// `false` if something did (the operation is re-run).
fn write_back(
    store: &RedisTaskStore,
    con: &mut Connection,
    scope: &str,
    approval: &Approval,
    now: u64,
) -> redis::RedisResult<Result<bool, String>> {
    let json = match serde_json::to_string(approval) {
        Ok(json) => json,
        Err(e) => return Ok(Err(format!("cannot encode the approval: {e}"))),
    };
    let ttl = approval
        .expires_at
        .saturating_sub(now)
        .saturating_add(super::millis(store.config.grace));
    let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
    let done: Option<()> = redis::pipe()
        .atomic()
        .hset(scope, &approval.id, json)
        .ignore()
        .cmd("PEXPIRE")
        .arg(scope)
        .arg(ttl)
        .arg("NX")
        .ignore()
        .cmd("PEXPIRE")
        .arg(scope)
        .arg(ttl)
        .arg("GT")
        .ignore()
        .query(con)?;
    Ok(Ok(done.is_some()))
}

fn unwatch(con: &mut Connection) -> redis::RedisResult<()> {
    redis::cmd("UNWATCH").query(con)
}

/// [`crate::task::TaskStore::request_approval`].
pub fn request(
    store: &RedisTaskStore,
    approval: Approval,
    now: u64,
    deadline: Instant,
) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
    let held: usize = store.connections.with(deadline, |con| {
        super::scripts::PRUNE_APPROVALS
            .key(store.keys.approval_index())
            .key(store.keys.approval_scopes())
            .arg(now)
            .invoke(con)
    })?;
    let scope = scope_of(store, &approval.binding);
    for _ in 0..MAX_ATTEMPTS {
        let outcome = store.connections.with(deadline, |con| {
            redis::cmd("WATCH").arg(&scope).query::<()>(con)?;
            let loaded = match load(con, &scope)? {
                Ok(loaded) => loaded,
                Err(e) => {
                    unwatch(con)?;
                    return Ok(Err(e));
                }
            };
            let book = ApprovalBook::from_approvals(store.max_approvals, loaded);
            let asked = book.request(approval.clone(), now);
            match &asked {
                Ok(made) if made.id == approval.id => {
                    if held >= store.max_approvals {
                        unwatch(con)?;
                        return Ok(Ok(Some(Err(ApprovalRefusal::Full {
                            bound: store.max_approvals,
                        }))));
                    }
                    // Indexed first (idempotent, another slot): an approval that lands is
                    // always findable by id. One that does not land (the book changed,
                    // re-run) leaves an index entry that finds nothing until it expires.
                    redis::pipe()
                        .zadd(store.keys.approval_index(), &made.id, made.expires_at)
                        .ignore()
                        .hset(store.keys.approval_scopes(), &made.id, &scope)
                        .ignore()
                        .query::<()>(con)?;
                    match write_back(store, con, &scope, made, now)? {
                        Ok(true) => Ok(Ok(Some(asked))),
                        Ok(false) => Ok(Ok(None)),
                        Err(e) => Ok(Err(e)),
                    }
                }
                _ => {
                    unwatch(con)?;
                    Ok(Ok(Some(asked)))
                }
            }
        })?;
        match outcome {
            Err(e) => return Err(store.connections.garbage(e)),
            Ok(None) => continue,
            Ok(Some(Ok(made))) => return Ok(Ok(made)),
            Ok(Some(Err(refusal))) => return Ok(Err(refusal)),
        }
    }
    Err(contended())
}

fn contended() -> StoreError {
    StoreError::Unavailable(format!(
        "the approvals of this call changed on other replicas {MAX_ATTEMPTS} times in a row"
    ))
}

/// [`crate::task::TaskStore::settle_approval`].
pub fn settle(
    store: &RedisTaskStore,
    binding: &ApprovalBinding,
    decision_id: &str,
    now: u64,
    deadline: Instant,
) -> Result<ApprovalMatch, StoreError> {
    let scope = scope_of(store, binding);
    for _ in 0..MAX_ATTEMPTS {
        let outcome = store.connections.with(deadline, |con| {
            redis::cmd("WATCH").arg(&scope).query::<()>(con)?;
            let loaded = match load(con, &scope)? {
                Ok(loaded) => loaded,
                Err(e) => {
                    unwatch(con)?;
                    return Ok(Err(e));
                }
            };
            let book = ApprovalBook::from_approvals(store.max_approvals, loaded);
            let found = book.settle(binding, decision_id, now);
            if let ApprovalMatch::Consumed(used) = &found {
                // Lands only if no other replica consumed (or changed) it meanwhile.
                return match write_back(store, con, &scope, used, now)? {
                    Ok(true) => Ok(Ok(Some(found))),
                    Ok(false) => Ok(Ok(None)),
                    Err(e) => Ok(Err(e)),
                };
            }
            unwatch(con)?;
            Ok(Ok(Some(found)))
        })?;
        match outcome {
            Err(e) => return Err(store.connections.garbage(e)),
            Ok(None) => continue,
            Ok(Some(found)) => return Ok(found),
        }
    }
    Err(contended())
}

fn scope_by_id(
    store: &RedisTaskStore,
    id: &str,
    deadline: Instant,
) -> Result<Option<String>, StoreError> {
    store.connections.with(deadline, |con| {
        redis::cmd("HGET")
            .arg(store.keys.approval_scopes())
            .arg(id)
            .query(con)
    })
}

/// [`crate::task::TaskStore::answer_approval`].
pub fn answer(
    store: &RedisTaskStore,
    id: &str,
    verdict: ApprovalVerdict,
    now: u64,
    deadline: Instant,
) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
    let Some(scope) = scope_by_id(store, id, deadline)? else {
        return Ok(Err(ApprovalRefusal::Unknown(id.to_owned())));
    };
    for _ in 0..MAX_ATTEMPTS {
        let outcome = store.connections.with(deadline, |con| {
            redis::cmd("WATCH").arg(&scope).query::<()>(con)?;
            let raw: Option<String> = redis::cmd("HGET").arg(&scope).arg(id).query(con)?;
            let Some(raw) = raw else {
                unwatch(con)?;
                return Ok(Ok(Some(Err(ApprovalRefusal::Unknown(id.to_owned())))));
            };
            let approval: Approval = match serde_json::from_str(&raw) {
                Ok(approval) => approval,
                Err(e) => {
                    unwatch(con)?;
                    return Ok(Err(format!("approval: {e}")));
                }
            };
            // Read while watching the approvals; the decision that would use the
            // approval checks the task again, atomically, when it records.
            let closed = match &approval.binding.task {
                None => None,
                Some(task) => {
                    let (ended, quarantine): (Option<String>, Option<String>) = redis::cmd("HMGET")
                        .arg(store.keys.task(task).meta())
                        .arg("ended")
                        .arg("quarantine")
                        .query(con)?;
                    if ended.as_deref() == Some("1") {
                        Some("has ended".to_owned())
                    } else {
                        quarantine.map(|q| format!("is quarantined: {q}"))
                    }
                }
            };
            let book = ApprovalBook::from_approvals(store.max_approvals, [approval]);
            let answered = book.answer(id, verdict.clone(), now, |_| closed);
            match &answered {
                Ok(changed) => match write_back(store, con, &scope, changed, now)? {
                    Ok(true) => Ok(Ok(Some(answered))),
                    Ok(false) => Ok(Ok(None)),
                    Err(e) => Ok(Err(e)),
                },
                Err(_) => {
                    unwatch(con)?;
                    Ok(Ok(Some(answered)))
                }
            }
        })?;
        match outcome {
            Err(e) => return Err(store.connections.garbage(e)),
            Ok(None) => continue,
            Ok(Some(answered)) => return Ok(answered),
        }
    }
    Err(contended())
}

/// [`crate::task::TaskStore::approval`].
pub fn get(
    store: &RedisTaskStore,
    id: &str,
    deadline: Instant,
) -> Result<Option<Approval>, StoreError> {
    let Some(scope) = scope_by_id(store, id, deadline)? else {
        return Ok(None);
    };
    let raw: Option<String> = store.connections.with(deadline, |con| {
        redis::cmd("HGET").arg(&scope).arg(id).query(con)
    })?;
    raw.map(|raw| {
        serde_json::from_str(&raw).map_err(|e| store.connections.garbage(format!("approval: {e}")))
    })
    .transpose()
}

/// [`crate::task::TaskStore::approvals`]: newest first.
pub fn list(store: &RedisTaskStore, deadline: Instant) -> Result<Vec<Approval>, StoreError> {
    let now = crate::model::unix_ms_now();
    let ids: Vec<String> = store.connections.with(deadline, |con| {
        super::scripts::PRUNE_APPROVALS
            .key(store.keys.approval_index())
            .key(store.keys.approval_scopes())
            .arg(now)
            .invoke::<usize>(con)?;
        redis::cmd("ZRANGE")
            .arg(store.keys.approval_index())
            .arg(0)
            .arg(-1)
            .query(con)
    })?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let scopes: Vec<Option<String>> = store.connections.with(deadline, |con| {
        redis::cmd("HMGET")
            .arg(store.keys.approval_scopes())
            .arg(&ids)
            .query(con)
    })?;
    let wanted: Vec<(&String, String)> = ids
        .iter()
        .zip(scopes)
        .filter_map(|(id, scope)| scope.map(|s| (id, s)))
        .collect();
    let raw: Vec<Option<String>> = store.connections.with(deadline, |con| {
        let mut pipe = redis::pipe();
        for (id, scope) in &wanted {
            pipe.hget(scope, id.as_str());
        }
        pipe.query(con)
    })?;
    let mut all = raw
        .into_iter()
        .flatten()
        .map(|raw| {
            serde_json::from_str::<Approval>(&raw)
                .map_err(|e| store.connections.garbage(format!("approval: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    Ok(all)
}
