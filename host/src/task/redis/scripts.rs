//! The Lua scripts: each is one atomic step on the keys of one task (one slot).
//!
//! Keys come in the order of [`super::keys::TaskKeys`] as each script lists them.
//! Times and lifetimes are milliseconds unless said otherwise. Key lifetimes are only
//! ever extended (`extend`), never shortened: a write for a short-lived credential must
//! not make a long-lived task forget its taint early.

use redis::Script;
use std::sync::LazyLock;

/// Shared helper, prepended to the scripts that extend lifetimes.
const EXTEND: &str = r"
local function extend(key, ttl)
  local left = redis.call('PTTL', key)
  if left == -1 or (left >= 0 and left < ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end
";

/// Opens the task for one decision (ARGV[3] = '1': takes its lock), or reads it for a
/// preview ('0': no lock). The task's version (`epoch:seq`, changed by every record)
/// tells the caller whether the entries and labels it holds from this very version are
/// still the task's: if ARGV[4] is the version, they are not sent again.
/// KEYS: meta, lock, entries, labels, agents. ARGV: token, lease, lock, version held.
/// Returns `{'ended'}`, `{'quarantined', reason}`, `{'busy'}`,
/// `{'same', owner, opened, agents, version}` or
/// `{'ok', owner, opened, agents, version, entries, labels}` (with the lock taken if
/// asked).
pub static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'ended', 'quarantine', 'owner', 'opened', 'epoch', 'seq')
if m[1] == '1' then return {'ended'} end
if m[2] then return {'quarantined', m[2]} end
if ARGV[3] == '1' then
  local held = redis.call('GET', KEYS[2])
  -- The same token again: a retry after a lost answer, not another decision.
  if held and held ~= ARGV[1] then return {'busy'} end
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
end
local version = (m[5] or '') .. ':' .. (m[6] or '0')
local agents = redis.call('SMEMBERS', KEYS[5])
if ARGV[4] ~= '' and ARGV[4] == version then
  return {'same', m[3] or '', m[4] or '', agents, version}
end
return {'ok', m[3] or '', m[4] or '', agents, version,
  redis.call('LRANGE', KEYS[3], 0, -1), redis.call('SMEMBERS', KEYS[4])}
",
    )
});

/// Releases the task without recording (the lease's token must still hold it).
/// KEYS: lock. ARGV: token.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// Records a decision and releases the task, if this decision still holds it. With a
/// quarantine, the task's credentials are revoked in the same step (every one issued
/// until now; those minted later are born revoked until ARGV[9]), so no failure
/// between the two can leave a quarantined task's credentials live.
/// KEYS: meta, lock, entries, labels, agents.
/// ARGV: token, entry, max entries, agent, quarantine ('' for none), ttl, max labels,
/// now (Unix s), revoke until (Unix s), a new epoch (unique per record), the version
/// BEGIN read, labels….
/// Returns `{'lost'}` (the lease expired or another decision took the task; a
/// quarantine is still marked), `{'ended'}` or `{'ok', version, same}`: the task's new
/// version, and whether the task was still at the version BEGIN read when this record
/// was appended ('1'; '0' if its keys changed meanwhile, e.g. expired: then the caller
/// must not take its own copy plus this entry for the task). A new epoch per record
/// keeps versions unique even across a Redis that rolled back to older data.
pub static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
local function quarantine()
  if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'ended') ~= '1' then
    redis.call('HSET', KEYS[1], 'quarantine', ARGV[5],
      'creds_revoked_at', ARGV[8], 'creds_revoked_until', ARGV[9])
    extend(KEYS[1], tonumber(ARGV[6]))
  end
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  -- Not ours any more: record nothing over another decision, but never drop the
  -- quarantine this deny triggered.
  quarantine()
  return {{'lost'}}
end
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], 'ended') == '1' then return {{'ended'}} end
local before = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local read_as = (before[1] or '') .. ':' .. (before[2] or '0')
local agent = ARGV[4]
local owner = redis.call('HGET', KEYS[1], 'owner')
if (not owner) or owner == '' then
  if agent ~= '' then redis.call('HSET', KEYS[1], 'owner', agent) end
elseif owner ~= agent and agent ~= '' then
  redis.call('SADD', KEYS[5], agent)
end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
local max_labels = tonumber(ARGV[7])
for i = 12, #ARGV do
  if redis.call('SCARD', KEYS[4]) < max_labels then redis.call('SADD', KEYS[4], ARGV[i]) end
end
quarantine()
redis.call('HSET', KEYS[1], 'epoch', ARGV[10])
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local ttl = tonumber(ARGV[6])
extend(KEYS[1], ttl)
extend(KEYS[3], ttl)
extend(KEYS[4], ttl)
extend(KEYS[5], ttl)
local same = '0'
if read_as == ARGV[11] then same = '1' end
return {{'ok', ARGV[10] .. ':' .. tostring(seq), same}}
"
    ))
});

/// Ends the task: later decisions are refused, its window and taint are dropped, a
/// decision in flight finds it ended when it commits, and its credentials are revoked
/// in the same step. Idempotent.
/// KEYS: meta, entries, labels, agents. ARGV: ttl of the ended mark, now (Unix s),
/// revoke until (Unix s).
pub static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
redis.call('HSET', KEYS[1], 'ended', '1', 'creds_revoked_at', ARGV[2],
  'creds_revoked_until', ARGV[3])
redis.call('HDEL', KEYS[1], 'quarantine', 'opened')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
extend(KEYS[1], tonumber(ARGV[1]))
return 'ok'
"
    ))
});

/// Records a newly opened task.
/// KEYS: meta, labels, agents. ARGV: opened (JSON), owner, ttl, count of other agents,
/// the other agents…, inherited labels….
/// Returns 'exists' (the id is taken by another opening: never overwritten) or 'ok'
/// (also for a retry of the same opening).
pub static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'opened') == ARGV[1] then return 'ok' end
  return 'exists'
end
redis.call('HSET', KEYS[1], 'opened', ARGV[1], 'owner', ARGV[2])
local others = tonumber(ARGV[4])
for i = 5, 4 + others do redis.call('SADD', KEYS[3], ARGV[i]) end
for i = 5 + others, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
local ttl = tonumber(ARGV[3])
extend(KEYS[1], ttl)
extend(KEYS[2], ttl)
extend(KEYS[3], ttl)
return 'ok'
"
    ))
});

/// Remembers a minted credential, unless the task's credentials are revoked.
/// KEYS: meta, creds. ARGV: id, expiry (Unix s), now (Unix s), ttl.
/// Returns 'revoked' (the caller revokes the id) or 'ok'.
pub static MINTED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
local until_s = tonumber(redis.call('HGET', KEYS[1], 'creds_revoked_until') or '0')
if until_s > tonumber(ARGV[3]) then return 'revoked' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
extend(KEYS[2], tonumber(ARGV[4]))
return 'ok'
"
    ))
});

/// Revokes the task's credentials: every one issued until now (ARGV[1]) is revoked,
/// and those minted until ARGV[2] are born revoked. Idempotent. Returns how many
/// minted ones were still live.
/// KEYS: meta, creds. ARGV: now (Unix s), until (Unix s), ttl.
pub static REVOKE_TASK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
redis.call('HSET', KEYS[1], 'creds_revoked_at', ARGV[1], 'creds_revoked_until', ARGV[2])
extend(KEYS[1], tonumber(ARGV[3]))
local minted = redis.call('HGETALL', KEYS[2])
local live = 0
for i = 2, #minted, 2 do
  if tonumber(minted[i]) > tonumber(ARGV[1]) then live = live + 1 end
end
return live
"
    ))
});

/// Records that an agent acted in a task (for taint inheritance when a task is opened
/// for it), extending the index's lifetime. Idempotent.
/// KEYS: the agent's task index. ARGV: task, ttl.
pub static AGENT_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
redis.call('SADD', KEYS[1], ARGV[1])
extend(KEYS[1], tonumber(ARGV[2]))
return 'ok'
"
    ))
});

/// Every script, loaded on each new connection so that pipelines can run them by
/// hash.
pub fn all() -> [&'static Script; 9] {
    [
        &BEGIN,
        &RELEASE,
        &COMMIT,
        &END,
        &OPEN,
        &MINTED,
        &REVOKE_TASK,
        &AGENT_INDEX,
        &PRUNE_APPROVALS,
    ]
}

/// Drops expired approvals from the index; returns how many are left.
/// KEYS: index, scopes. ARGV: now (Unix ms).
pub static PRUNE_APPROVALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])
",
    )
});
