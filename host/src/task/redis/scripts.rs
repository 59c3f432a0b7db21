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
/// preview ('0': no lock).
/// KEYS: meta, lock, entries, labels, agents. ARGV: token, lease, lock.
/// Returns `{'ended'}`, `{'quarantined', reason}`, `{'busy'}`, or
/// `{'ok', owner, opened, entries, labels, agents}` (with the lock taken if asked).
pub static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'ended') == '1' then return {'ended'} end
local q = redis.call('HGET', KEYS[1], 'quarantine')
if q then return {'quarantined', q} end
if ARGV[3] == '1' and not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'busy'}
end
return {'ok',
  redis.call('HGET', KEYS[1], 'owner') or '',
  redis.call('HGET', KEYS[1], 'opened') or '',
  redis.call('LRANGE', KEYS[3], 0, -1),
  redis.call('SMEMBERS', KEYS[4]),
  redis.call('SMEMBERS', KEYS[5])}
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

/// Records a decision and releases the task, if this decision still holds it.
/// KEYS: meta, lock, entries, labels, agents.
/// ARGV: token, entry, max entries, agent, quarantine ('' for none), ttl, max labels,
/// labels….
/// Returns 'lost' (the lease expired or another decision took the task), 'ended',
/// 'new-agent' (recorded; the agent is new in the task) or 'ok'.
pub static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'lost' end
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], 'ended') == '1' then return 'ended' end
local agent = ARGV[4]
local owner = redis.call('HGET', KEYS[1], 'owner')
local new_agent = 0
if (not owner) or owner == '' then
  if agent ~= '' then redis.call('HSET', KEYS[1], 'owner', agent) end
  new_agent = 1
elseif owner ~= agent and agent ~= '' then
  new_agent = redis.call('SADD', KEYS[5], agent)
end
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
local max_labels = tonumber(ARGV[7])
for i = 8, #ARGV do
  if redis.call('SCARD', KEYS[4]) < max_labels then redis.call('SADD', KEYS[4], ARGV[i]) end
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'quarantine', ARGV[5]) end
local ttl = tonumber(ARGV[6])
extend(KEYS[1], ttl)
extend(KEYS[3], ttl)
extend(KEYS[4], ttl)
extend(KEYS[5], ttl)
if new_agent == 1 then return 'new-agent' end
return 'ok'
"
    ))
});

/// Ends the task: later decisions are refused, its window and taint are dropped, and a
/// decision in flight finds it ended when it commits.
/// KEYS: meta, entries, labels, agents. ARGV: ttl of the ended mark.
pub static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
redis.call('HSET', KEYS[1], 'ended', '1')
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
/// Returns 'exists' (the id is taken: never overwritten) or 'ok'.
pub static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
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

/// Revokes the task's credentials: returns those minted (id, expiry, …) and marks
/// later ones born revoked until ARGV[1] (Unix s).
/// KEYS: meta, creds. ARGV: until (Unix s), ttl.
pub static REVOKE_TASK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{EXTEND}
redis.call('HSET', KEYS[1], 'creds_revoked_until', ARGV[1])
extend(KEYS[1], tonumber(ARGV[2]))
local minted = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return minted
"
    ))
});

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
