//! The task store on Redis: several replicas, one truth.
//!
//! Every replica that names the same Redis sees the same tasks: their entries and
//! sticky labels, who owns them, whether they ended or are quarantined, their
//! approvals and their revoked credentials. The layout is in [`keys`], the atomic steps
//! in [`scripts`].
//!
//! # One decision of a task at a time, across replicas
//!
//! [`TaskStore::begin`] takes the task's lock in Redis (`SET NX PX`, with a random
//! token and a lease of `task_store.lease_ms`) and reads the task in the same script:
//! one round trip. [`TaskLease::commit`] checks, in one script, that the token still
//! holds the lock and that the task has not ended, appends the entry and its labels,
//! and releases the lock: the second round trip. So a decision reads the history as the
//! previous decision of the task left it, on whichever replica that ran, and a chain
//! split across replicas is seen as a chain. A decision that finds the task held waits
//! (polling, bounded by its deadline) and is denied if the deadline passes; one whose
//! lease ran out before it committed is denied rather than recorded over another's.
//!
//! # Fail closed
//!
//! Any failure (Redis unreachable, past the deadline, an answer that cannot be parsed)
//! is a [`StoreError`], which denies the decision naming the store. There is no local
//! copy of task state to fall back on. Two things are kept locally, and neither is
//! ever trusted on its own:
//!
//! - the opening of an opened task, which never changes once written; whether the task
//!   has ended since is read from Redis on every decision, and a task whose opening
//!   Redis no longer holds is refused;
//! - the task's entries and labels as this replica last read or recorded them, with
//!   the task's version (`epoch:seq`, changed by every record). `BEGIN` compares the
//!   version in Redis, under the lock, and sends the entries and labels again whenever
//!   they changed; only an unchanged task is decided on the copy. That saves reading
//!   and parsing the whole window on every call of a task that stays on one replica.
//!
//! # Lifetimes
//!
//! A task's keys live until its expiry plus `task_store.grace_ms` (opened tasks), or
//! `task_store.untimed_ttl_ms` after its last action (tasks without an expiry). Redis
//! forgets a task after that: an ended task id of an asserted task could then be used
//! again, which is why opened tasks (ids Arbiter makes, refused once unknown) are the
//! mode for production.

mod approvals;
mod connections;
mod keys;
mod scripts;

pub use connections::StoreSetupError;

use super::history::{MAX_TASK_CO_AGENTS, MAX_TASK_LABELS, TaskRefusal};
use super::store::{StoreError, TaskLease, TaskStore};
use crate::config::{HistoryConfig, RedisStoreConfig, TaskSharing};
use crate::model::{
    Approval, ApprovalBinding, ApprovalMatch, ApprovalRefusal, ApprovalVerdict, Effect,
    HistoryEntry, OpenedTask, TaskSnapshot, unix_ms_now,
};
use connections::Connections;
use keys::Keys;
use redis::Value;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many openings are kept locally (they are immutable; beyond this the
/// table is cleared and re-read from Redis as needed).
const MAX_CACHED_OPENINGS: usize = 10_000;
/// At most this many task snapshots are kept locally (beyond, the table is cleared).
const MAX_CACHED_SNAPSHOTS: usize = 10_000;

/// The task store on Redis.
pub struct RedisTaskStore {
    connections: Connections,
    keys: Keys,
    config: RedisStoreConfig,
    sharing: TaskSharing,
    max_entries: usize,
    max_approvals: usize,
    /// Openings of opened tasks, as written once by `open`.
    openings: Mutex<HashMap<String, OpenedTask>>,
    /// The last snapshot of each task this replica read or recorded, by the task's
    /// version in Redis: reused only when Redis says the version is still current.
    snapshots: Mutex<HashMap<String, (String, TaskSnapshot)>>,
}

impl std::fmt::Debug for RedisTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTaskStore")
            .field("redis", &self.connections.shown())
            .field("key_prefix", &self.config.key_prefix)
            .finish_non_exhaustive()
    }
}

/// An entry as stored (JSON in the task's list).
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    request_id: String,
    server: String,
    tool: String,
    effect: Effect,
    labels: Vec<String>,
    time: u64,
}

impl From<&HistoryEntry> for StoredEntry {
    fn from(e: &HistoryEntry) -> Self {
        Self {
            request_id: e.request_id.clone(),
            server: e.server.clone(),
            tool: e.tool.clone(),
            effect: e.effect,
            labels: e.labels.clone(),
            time: e.time,
        }
    }
}

impl From<StoredEntry> for HistoryEntry {
    fn from(e: StoredEntry) -> Self {
        Self {
            request_id: e.request_id,
            server: e.server,
            tool: e.tool,
            effect: e.effect,
            labels: e.labels,
            time: e.time,
        }
    }
}

impl RedisTaskStore {
    /// A store on the Redis `config` names. Nothing is contacted yet: a Redis that is
    /// down at start makes decisions deny (and readiness say so) until it answers.
    pub fn new(
        config: RedisStoreConfig,
        history: HistoryConfig,
        sharing: TaskSharing,
        max_approvals: usize,
    ) -> Result<Self, StoreSetupError> {
        Ok(Self {
            connections: Connections::new(&config)?,
            keys: Keys::new(&config.key_prefix),
            config,
            sharing,
            max_entries: history.max_entries_per_task.max(1),
            max_approvals,
            openings: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(HashMap::new()),
        })
    }

    fn lock_openings(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpenedTask>> {
        // Whole values are inserted and removed: a panic cannot leave one half-written.
        self.openings.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember_opening(&self, task: &OpenedTask) {
        let mut openings = self.lock_openings();
        if openings.len() >= MAX_CACHED_OPENINGS {
            openings.clear();
        }
        openings.insert(task.id.clone(), task.clone());
    }

    fn lock_snapshots(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, TaskSnapshot)>> {
        // Whole values are inserted and removed.
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version and snapshot of `task` this replica holds, if any.
    fn cached_snapshot(&self, task: &str) -> Option<(String, TaskSnapshot)> {
        self.lock_snapshots().get(task).cloned()
    }

    /// Keeps what `version` of `task` holds. A version without an epoch (no record
    /// yet) is not kept: nothing would tell a later, different task of that id apart.
    fn remember_snapshot(&self, task: &str, version: &str, snapshot: &TaskSnapshot) {
        if version.starts_with(':') {
            return;
        }
        let mut snapshots = self.lock_snapshots();
        if snapshots.len() >= MAX_CACHED_SNAPSHOTS && !snapshots.contains_key(task) {
            snapshots.clear();
        }
        snapshots.insert(task.to_owned(), (version.to_owned(), snapshot.clone()));
    }

    fn forget_snapshot(&self, task: &str) {
        self.lock_snapshots().remove(task);
    }

    /// How long a task's keys must live from now: its expiry plus the grace period,
    /// or the untimed lifetime for a task without one.
    fn task_ttl_ms(&self, expires_at: Option<u64>) -> u64 {
        let grace = millis(self.config.grace);
        match expires_at {
            Some(at) => at.saturating_sub(unix_ms_now()).saturating_add(grace),
            None => millis(self.config.untimed_ttl),
        }
    }

    fn ttl_of(&self, task: &str) -> u64 {
        let expires_at = self.lock_openings().get(task).and_then(|t| t.expires_at);
        self.task_ttl_ms(expires_at)
    }

    /// Records that `agent` acts in `task`, in the same round trip as `pipe`'s other
    /// commands.
    fn index_agent(&self, pipe: &mut redis::Pipeline, agent: &str, task: &str, ttl: u64) {
        let index = self.keys.agent_tasks(agent);
        let ttl = millis(self.config.untimed_ttl).max(ttl);
        pipe.invoke_script(scripts::AGENT_INDEX.key(index).arg(task).arg(ttl))
            .ignore();
    }

    fn text(&self, value: &Value, what: &str) -> Result<String, StoreError> {
        match value {
            Value::BulkString(bytes) => String::from_utf8(bytes.clone())
                .map_err(|_| self.connections.garbage(format!("{what} is not UTF-8"))),
            Value::SimpleString(s) => Ok(s.clone()),
            Value::Okay => Ok("OK".to_owned()),
            // The scripts answer '' for a missing value: a nil is not theirs.
            other => Err(self
                .connections
                .garbage(format!("{what}: expected text, got {other:?}"))),
        }
    }

    fn texts(&self, value: &Value, what: &str) -> Result<Vec<String>, StoreError> {
        match value {
            Value::Array(items) | Value::Set(items) => {
                items.iter().map(|v| self.text(v, what)).collect()
            }
            other => Err(self
                .connections
                .garbage(format!("{what}: expected a list, got {other:?}"))),
        }
    }

    /// A history entry as stored; one that is not is garbage.
    fn entry(&self, raw: &str) -> Result<HistoryEntry, StoreError> {
        serde_json::from_str::<StoredEntry>(raw)
            .map(HistoryEntry::from)
            .map_err(|e| self.connections.garbage(format!("history entry: {e}")))
    }

    fn release(&self, task: &str, token: &str) {
        let lock = self.keys.task(task).lock();
        // Short: a Redis that cannot answer now lets the lease expire the lock.
        let deadline = Instant::now() + Duration::from_millis(100);
        let released = self.connections.with(deadline, |con| {
            scripts::RELEASE.key(&lock).arg(token).invoke::<i64>(con)
        });
        if let Err(e) = released {
            // The lease expires by itself; until then the task waits.
            tracing::warn!(task, error = %e, "task store: could not release a task; its lease expires it");
        }
    }

    /// Reads the task and, with `lock`, takes its lock: `Ok(None)` while another
    /// decision holds it.
    fn try_begin(
        &self,
        task: &str,
        agent: &str,
        token: &str,
        lock: bool,
        deadline: Instant,
    ) -> Result<Option<Result<Admitted, TaskRefusal>>, StoreError> {
        let keys = self.keys.task(task);
        // What this replica read or recorded last of the task: sent back only if the
        // task changed since (Redis compares the version, atomically, under the lock).
        let cached = self.cached_snapshot(task);
        let held = cached.as_ref().map_or("", |(version, _)| version.as_str());
        let answer: Value = self.connections.with(deadline, |con| {
            scripts::BEGIN
                .key(keys.meta())
                .key(keys.lock())
                .key(keys.entries())
                .key(keys.labels())
                .key(keys.agents())
                .arg(token)
                .arg(millis(self.config.lease))
                .arg(if lock { "1" } else { "0" })
                .arg(held)
                .invoke(con)
        })?;
        let parts: &[Value] = match &answer {
            Value::Array(parts) => parts,
            other => return Err(self.connections.garbage(format!("begin: {other:?}"))),
        };
        let (word, rest) = match parts.split_first() {
            Some((word, rest)) => (self.text(word, "begin")?, rest),
            None => return Err(self.connections.garbage("begin: an empty answer")),
        };
        let [owner, opened, agents, version, entries, labels] = match (word.as_str(), rest) {
            ("ended", _) => return Ok(Some(Err(TaskRefusal::Ended(task.to_owned())))),
            ("quarantined", rest) => {
                let reason = match rest.first() {
                    Some(v) => self.text(v, "quarantine")?,
                    None => String::new(),
                };
                return Ok(Some(Err(TaskRefusal::Quarantined {
                    task: task.to_owned(),
                    reason,
                })));
            }
            ("busy", _) => return Ok(None),
            ("same", [owner, opened, agents, version]) => {
                [owner, opened, agents, version, &Value::Nil, &Value::Nil]
            }
            ("ok", [owner, opened, agents, version, entries, labels]) => {
                [owner, opened, agents, version, entries, labels]
            }
            (other, _) => return Err(self.connections.garbage(format!("begin: `{other}`"))),
        };
        let unchanged = word == "same";
        let owner = self.text(owner, "owner")?;
        let opened = self.text(opened, "opened")?;
        let agents = self.texts(agents, "agents")?;
        let version = self.text(version, "version")?;
        let opening: Option<OpenedTask> = if opened.is_empty() {
            None
        } else {
            let opened: OpenedTask = serde_json::from_str(&opened)
                .map_err(|e| self.connections.garbage(format!("opened task: {e}")))?;
            self.remember_opening(&opened);
            Some(opened)
        };
        // This replica took the task for an opened one (its opening is kept here), but
        // Redis no longer has it: its keys expired, or Redis lost its data. Deciding it
        // as a new task would start it clean; refuse instead.
        if opening.is_none() && self.lock_openings().remove(task).is_some() {
            return Err(StoreError::Unavailable(format!(
                "task `{task}` was opened, but Redis no longer holds it (its keys expired, or Redis lost its data); it is refused rather than started clean"
            )));
        }
        let opened_for: &[String] = opening.as_ref().map_or(&[], |o| o.agents.as_slice());
        let other_agent = || TaskRefusal::OtherAgent {
            task: task.to_owned(),
            agent: agent.to_owned(),
        };
        // As in memory: another agent acts in a task only while sharing (or the
        // opening) lets it, whatever it did before.
        if !owner.is_empty()
            && owner != agent
            && !self.sharing.allows(&owner, agent)
            && !opened_for.iter().any(|a| a == agent)
        {
            return Ok(Some(Err(other_agent())));
        }
        let is_member = owner == agent || agents.iter().any(|a| a == agent);
        // Taint follows every agent of a task; an agent the task could not remember
        // would escape it, so it is not let in.
        if !owner.is_empty() && !is_member && agents.len() >= MAX_TASK_CO_AGENTS {
            return Ok(Some(Err(other_agent())));
        }
        let snapshot = if unchanged {
            match cached {
                Some((_, snapshot)) => snapshot,
                None => return Err(self.connections.garbage("begin: `same` for nothing held")),
            }
        } else {
            let entries = self
                .texts(entries, "entries")?
                .iter()
                .map(|e| self.entry(e))
                .collect::<Result<VecDeque<_>, _>>()?;
            let mut labels = self.texts(labels, "labels")?;
            labels.sort();
            let snapshot = TaskSnapshot {
                entries: Arc::new(entries),
                labels: Arc::from(labels),
            };
            self.remember_snapshot(task, &version, &snapshot);
            snapshot
        };
        Ok(Some(Ok(Admitted {
            snapshot,
            expires_at: opening.and_then(|o| o.expires_at),
            version,
        })))
    }

    /// The labels of every open task any of `agents` belongs to.
    fn inherited_labels(
        &self,
        agents: &[String],
        deadline: Instant,
    ) -> Result<Vec<String>, StoreError> {
        let index: Vec<String> = agents.iter().map(|a| self.keys.agent_tasks(a)).collect();
        let tasks: Vec<Vec<String>> = self.connections.with(deadline, |con| {
            let mut pipe = redis::pipe();
            for key in &index {
                pipe.smembers(key);
            }
            pipe.query(con)
        })?;
        let mut tasks: Vec<String> = tasks.into_iter().flatten().collect();
        tasks.sort();
        tasks.dedup();
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let standing: Vec<(Option<String>, Vec<String>)> =
            self.connections.with(deadline, |con| {
                let mut pipe = redis::pipe();
                for task in &tasks {
                    let keys = self.keys.task(task);
                    pipe.hget(keys.meta(), "ended").smembers(keys.labels());
                }
                let flat: Vec<Value> = pipe.query(con)?;
                let mut pairs = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let (Some(ended), Some(labels)) = (it.next(), it.next()) {
                    pairs.push((
                        redis::from_redis_value::<Option<String>>(ended)?,
                        redis::from_redis_value::<Vec<String>>(labels)?,
                    ));
                }
                Ok(pairs)
            })?;
        let mut labels: Vec<String> = standing
            .into_iter()
            .filter(|(ended, _)| ended.as_deref() != Some("1"))
            .flat_map(|(_, labels)| labels)
            .collect();
        labels.sort();
        labels.dedup();
        Ok(labels)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TaskStore for RedisTaskStore {
    fn begin(
        &self,
        task: &str,
        agent: &str,
        deadline: Instant,
    ) -> Result<Result<Box<dyn TaskLease + '_>, TaskRefusal>, StoreError> {
        let token = uuid::Uuid::new_v4().to_string();
        // Another decision of the task holds it (on any replica): wait, polling with a
        // growing pause, until the deadline.
        let mut pause = Duration::from_micros(200);
        loop {
            let read = match self.try_begin(task, agent, &token, true, deadline) {
                Ok(read) => read,
                Err(e) => {
                    // The lock may have been taken before the answer went wrong: give it
                    // back unless Redis is stalled (the lease expires it then).
                    if e != StoreError::Timeout {
                        self.release(task, &token);
                    }
                    return Err(e);
                }
            };
            match read {
                Some(Ok(admitted)) => {
                    return Ok(Ok(Box::new(RedisLease {
                        store: self,
                        task: task.to_owned(),
                        agent: agent.to_owned(),
                        token,
                        snapshot: admitted.snapshot,
                        expires_at: admitted.expires_at,
                        version: admitted.version,
                        done: false,
                    })));
                }
                Some(Err(refusal)) => {
                    // A refusal found after the lock was taken (another agent's task)
                    // gives it back; the others never took it.
                    if matches!(refusal, TaskRefusal::OtherAgent { .. }) {
                        self.release(task, &token);
                    }
                    return Ok(Err(refusal));
                }
                None => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        return Err(StoreError::Timeout);
                    };
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
            }
        }
    }

    fn peek(
        &self,
        task: &str,
        agent: &str,
        deadline: Instant,
    ) -> Result<Result<TaskSnapshot, TaskRefusal>, StoreError> {
        match self.try_begin(task, agent, "", false, deadline)? {
            Some(read) => Ok(read.map(|admitted| admitted.snapshot)),
            None => Err(self
                .connections
                .garbage("a read without the lock found it busy")),
        }
    }

    fn end(&self, task: &str, deadline: Instant) -> Result<(), StoreError> {
        let keys = self.keys.task(task);
        let ttl = self
            .ttl_of(task)
            .max(millis(self.config.untimed_ttl))
            .max(REVOCATION_MS);
        let now = unix_ms_now() / 1000;
        self.connections.with(deadline, |con| {
            scripts::END
                .key(keys.meta())
                .key(keys.entries())
                .key(keys.labels())
                .key(keys.agents())
                .arg(ttl)
                .arg(now)
                .arg(now + REVOCATION_MS / 1000)
                .invoke::<String>(con)
        })?;
        self.lock_openings().remove(task);
        self.forget_snapshot(task);
        Ok(())
    }

    fn lift_quarantine(&self, task: &str, deadline: Instant) -> Result<bool, StoreError> {
        let meta = self.keys.task(task).meta();
        let lifted: i64 = self.connections.with_once(deadline, |con| {
            redis::cmd("HDEL").arg(&meta).arg("quarantine").query(con)
        })?;
        Ok(lifted == 1)
    }

    fn open(
        &self,
        mut task: OpenedTask,
        inherit: bool,
        deadline: Instant,
    ) -> Result<Result<OpenedTask, TaskRefusal>, StoreError> {
        if inherit {
            task.inherited_labels = self.inherited_labels(&task.agents, deadline)?;
        }
        let json = serde_json::to_string(&task)
            .map_err(|e| StoreError::Unavailable(format!("cannot encode the opened task: {e}")))?;
        let keys = self.keys.task(&task.id);
        let owner = task.agents.first().cloned().unwrap_or_default();
        let others: Vec<&String> = task
            .agents
            .iter()
            .skip(1)
            .take(MAX_TASK_CO_AGENTS)
            .collect();
        let ttl = self.task_ttl_ms(task.expires_at);
        let written: String = self.connections.with(deadline, |con| {
            let mut call = scripts::OPEN.prepare_invoke();
            call.key(keys.meta())
                .key(keys.labels())
                .key(keys.agents())
                .arg(&json)
                .arg(&owner)
                .arg(ttl)
                .arg(others.len());
            for agent in &others {
                call.arg(agent.as_str());
            }
            for label in &task.inherited_labels {
                call.arg(label);
            }
            call.invoke(con)
        })?;
        if written != "ok" {
            return Err(self
                .connections
                .garbage(format!("task id `{}` is already taken", task.id)));
        }
        self.connections.with(deadline, |con| {
            let mut pipe = redis::pipe();
            for agent in &task.agents {
                self.index_agent(&mut pipe, agent, &task.id, ttl);
            }
            pipe.query::<()>(con)
        })?;
        self.remember_opening(&task);
        Ok(Ok(task))
    }

    fn opened(&self, task: &str, deadline: Instant) -> Result<Option<OpenedTask>, StoreError> {
        if let Some(opened) = self.lock_openings().get(task) {
            // Whether it has ended since is for `begin` to find, in Redis.
            return Ok(Some(opened.clone()));
        }
        let meta = self.keys.task(task).meta();
        let (opened, ended): (Option<String>, Option<String>) =
            self.connections.with(deadline, |con| {
                redis::cmd("HMGET")
                    .arg(&meta)
                    .arg("opened")
                    .arg("ended")
                    .query(con)
            })?;
        if ended.as_deref() == Some("1") {
            return Ok(None);
        }
        let Some(opened) = opened else {
            return Ok(None);
        };
        let opened: OpenedTask = serde_json::from_str(&opened)
            .map_err(|e| self.connections.garbage(format!("opened task: {e}")))?;
        self.remember_opening(&opened);
        Ok(Some(opened))
    }

    fn entries(&self, task: &str, deadline: Instant) -> Result<Vec<HistoryEntry>, StoreError> {
        let key = self.keys.task(task).entries();
        let raw: Vec<String> = self.connections.with(deadline, |con| {
            redis::cmd("LRANGE").arg(&key).arg(0).arg(-1).query(con)
        })?;
        raw.iter().map(|e| self.entry(e)).collect()
    }

    fn standing(
        &self,
        task: &str,
        deadline: Instant,
    ) -> Result<(Vec<String>, Option<String>), StoreError> {
        let keys = self.keys.task(task);
        let ((ended, quarantine), mut labels): ((Option<String>, Option<String>), Vec<String>) =
            self.connections.with(deadline, |con| {
                redis::pipe()
                    .cmd("HMGET")
                    .arg(keys.meta())
                    .arg("ended")
                    .arg("quarantine")
                    .smembers(keys.labels())
                    .query(con)
            })?;
        labels.sort();
        let closed = if ended.as_deref() == Some("1") {
            Some("has ended".to_owned())
        } else {
            quarantine.map(|q| format!("is quarantined: {q}"))
        };
        Ok((labels, closed))
    }

    fn request_approval(
        &self,
        approval: Approval,
        now: u64,
        deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
        approvals::request(self, approval, now, deadline)
    }

    fn settle_approval(
        &self,
        binding: &ApprovalBinding,
        decision_id: &str,
        now: u64,
        deadline: Instant,
    ) -> Result<ApprovalMatch, StoreError> {
        approvals::settle(self, binding, decision_id, now, deadline)
    }

    fn answer_approval(
        &self,
        id: &str,
        verdict: ApprovalVerdict,
        now: u64,
        deadline: Instant,
    ) -> Result<Result<Approval, ApprovalRefusal>, StoreError> {
        approvals::answer(self, id, verdict, now, deadline)
    }

    fn approval(&self, id: &str, deadline: Instant) -> Result<Option<Approval>, StoreError> {
        approvals::get(self, id, deadline)
    }

    fn approvals(&self, deadline: Instant) -> Result<Vec<Approval>, StoreError> {
        approvals::list(self, deadline)
    }

    fn credential_minted(
        &self,
        task: &str,
        id: &str,
        expires_at: u64,
        now: u64,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let keys = self.keys.task(task);
        let ttl = expires_at
            .saturating_sub(now)
            .saturating_mul(1000)
            .saturating_add(1000);
        let answer: String = self.connections.with(deadline, |con| {
            scripts::MINTED
                .key(keys.meta())
                .key(keys.credentials())
                .arg(id)
                .arg(expires_at)
                .arg(now)
                .arg(ttl)
                .invoke(con)
        })?;
        if answer == "revoked" {
            // A decision in flight when its task's credentials were revoked: born revoked.
            self.revoke_credential(id, expires_at, deadline)?;
        }
        Ok(())
    }

    fn revoke_task_credentials(
        &self,
        task: &str,
        now: u64,
        until: u64,
        deadline: Instant,
    ) -> Result<usize, StoreError> {
        let keys = self.keys.task(task);
        let ttl = until
            .saturating_sub(now)
            .saturating_mul(1000)
            .saturating_add(1000);
        self.connections.with(deadline, |con| {
            scripts::REVOKE_TASK
                .key(keys.meta())
                .key(keys.credentials())
                .arg(now)
                .arg(until)
                .arg(ttl)
                .invoke::<usize>(con)
        })
    }

    fn reinstate_task_credentials(&self, task: &str, deadline: Instant) -> Result<(), StoreError> {
        let meta = self.keys.task(task).meta();
        self.connections.with(deadline, |con| {
            redis::cmd("HDEL")
                .arg(&meta)
                .arg("creds_revoked_until")
                .query::<i64>(con)
        })?;
        Ok(())
    }

    fn revoke_credential(
        &self,
        id: &str,
        expires_at: u64,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let now = unix_ms_now() / 1000;
        let ms = expires_at
            .saturating_sub(now)
            .saturating_mul(1000)
            .saturating_add(1000);
        let key = self.keys.credential_revoked(id);
        self.connections.with(deadline, |con| {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("PX")
                .arg(ms)
                .query::<()>(con)
        })
    }

    fn credential_revoked(
        &self,
        id: &str,
        task: Option<&str>,
        issued_at: u64,
        deadline: Instant,
    ) -> Result<bool, StoreError> {
        let key = self.keys.credential_revoked(id);
        let meta = task.map(|t| self.keys.task(t).meta());
        let (revoked, task_revoked_at): (i64, Option<String>) =
            self.connections.with(deadline, |con| match &meta {
                Some(meta) => redis::pipe()
                    .exists(&key)
                    .hget(meta, "creds_revoked_at")
                    .query(con),
                None => redis::cmd("EXISTS")
                    .arg(&key)
                    .query::<i64>(con)
                    .map(|n| (n, None)),
            })?;
        let task_revoked_at = match task_revoked_at {
            None => None,
            Some(at) => Some(at.parse::<u64>().map_err(|_| {
                self.connections
                    .garbage(format!("a task's revocation time `{at}`"))
            })?),
        };
        // Every credential of the task issued until its revocation is revoked.
        Ok(revoked == 1 || task_revoked_at.is_some_and(|at| issued_at <= at))
    }

    fn health(&self, deadline: Instant) -> Result<(), StoreError> {
        let pong: String = self
            .connections
            .with(deadline, |con| redis::cmd("PING").query(con))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(self.connections.garbage(format!("PING answered `{pong}`")))
        }
    }

    fn describe(&self) -> String {
        format!("redis ({})", self.connections.shown())
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// A task held in Redis for one decision.
struct RedisLease<'a> {
    store: &'a RedisTaskStore,
    task: String,
    agent: String,
    token: String,
    snapshot: TaskSnapshot,
    /// The opened task's expiry, for the lifetime of what the commit writes.
    expires_at: Option<u64>,
    /// The task's version `snapshot` is of.
    version: String,
    /// Committed (the script released the lock) or released already.
    done: bool,
}

impl RedisLease<'_> {
    /// The task as the commit script leaves it: `entry` appended (the oldest dropped
    /// past `max_entries`), its labels added while the task has fewer than
    /// [`MAX_TASK_LABELS`]. Takes the lease's snapshot: when nothing else shares its
    /// entries (the caller forgets the cached copy first), they are appended in place
    /// rather than copied.
    fn take_snapshot_after(&mut self, entry: HistoryEntry, max_entries: usize) -> TaskSnapshot {
        let mut snapshot = std::mem::take(&mut self.snapshot);
        let mut labels: Vec<String> = snapshot.labels.to_vec();
        let before = labels.len();
        for label in &entry.labels {
            if labels.len() < MAX_TASK_LABELS && !labels.contains(label) {
                labels.push(label.clone());
            }
        }
        if labels.len() != before {
            labels.sort();
            snapshot.labels = Arc::from(labels);
        }
        let entries = Arc::make_mut(&mut snapshot.entries);
        entries.push_back(entry);
        while entries.len() > max_entries {
            entries.pop_front();
        }
        snapshot
    }
}

/// What `begin` read of an admitted task.
struct Admitted {
    snapshot: TaskSnapshot,
    expires_at: Option<u64>,
    version: String,
}

/// How long a task's credential revocation is kept: as long as a credential can live.
const REVOCATION_MS: u64 = super::revocations::MAX_CREDENTIAL_TTL_MS + 60_000;

impl Drop for RedisLease<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.store.release(&self.task, &self.token);
        }
    }
}

impl TaskLease for RedisLease<'_> {
    fn snapshot(&self) -> &TaskSnapshot {
        &self.snapshot
    }

    fn commit(
        self: Box<Self>,
        entry: HistoryEntry,
        quarantine: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut lease = self;
        let store = lease.store;
        let keys = store.keys.task(&lease.task);
        let json = serde_json::to_string(&StoredEntry::from(&entry))
            .map_err(|e| StoreError::Unavailable(format!("cannot encode the entry: {e}")))?;
        let ttl = store.task_ttl_ms(lease.expires_at);
        let now = unix_ms_now() / 1000;
        // The deadline of a commit is the lease: past it, the lock may be another's.
        let deadline = Instant::now() + store.config.lease;
        let mut commit = scripts::COMMIT.prepare_invoke();
        commit
            .key(keys.meta())
            .key(keys.lock())
            .key(keys.entries())
            .key(keys.labels())
            .key(keys.agents())
            .arg(&lease.token)
            .arg(&json)
            .arg(store.max_entries)
            .arg(&lease.agent)
            .arg(quarantine.unwrap_or(""))
            .arg(ttl)
            .arg(MAX_TASK_LABELS)
            .arg(now)
            .arg(now + REVOCATION_MS / 1000)
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(&lease.version);
        for label in &entry.labels {
            commit.arg(label);
        }
        // Once: run twice, the second would find the lock gone and deny a recorded call.
        let answer: Result<Vec<String>, StoreError> =
            store.connections.with_once(deadline, |con| {
                let mut pipe = redis::pipe();
                pipe.invoke_script(&commit);
                if !lease.agent.is_empty() {
                    // The agent's task index (another slot), in the same round trip; kept
                    // fresh on every record, so an agent's long task stays in it.
                    store.index_agent(&mut pipe, &lease.agent, &lease.task, ttl);
                }
                let (answer,): (Vec<String>,) = pipe.query(con)?;
                Ok(answer)
            });
        // Whether the script ran is unknown on an error: the lease gives the lock back
        // if it is still ours (Drop).
        let answer = answer.inspect_err(|_| store.forget_snapshot(&lease.task))?;
        lease.done = true;
        match answer.as_slice() {
            [ok, version, same] if ok == "ok" => {
                if same == "1" {
                    // What Redis now holds, as the script made it: the next decision of
                    // the task here need not read it back.
                    store.forget_snapshot(&lease.task);
                    let snapshot = lease.take_snapshot_after(entry, store.max_entries);
                    store.remember_snapshot(&lease.task, version, &snapshot);
                } else {
                    store.forget_snapshot(&lease.task);
                }
                Ok(())
            }
            [lost] if lost == "lost" => Err(StoreError::Unavailable(format!(
                "the decision held task `{}` past its lease (`task_store.lease_ms` = {} ms); not recorded",
                lease.task,
                millis(store.config.lease)
            ))),
            [ended] if ended == "ended" => Err(StoreError::Unavailable(format!(
                "task `{}` ended while the decision ran; not recorded",
                lease.task
            ))),
            other => Err(store.connections.garbage(format!("commit: {other:?}"))),
        }
    }
}
