//! Lua scripts of the Redis store. Every script touches only keys of one
//! `{prefix}` hash tag, so they also run on Redis Cluster.
//!
//! Keys: `{p}:task:<id>` (hash: spec, state, attempts, due, created, updated,
//! and once set last_error, token), `{p}:due:prio` and `{p}:due` (zsets of ids by due
//! time), `{p}:lease` (zset of ids by lease expiry).
//! KEYS are always `[due:prio, due, lease]`; ARGV[1] is the task-key base
//! `{p}:task:`.

/// Creates tasks unless their id exists. ARGV after the base: groups of
/// `id, spec, due, prio(0|1), now`. Returns, per task, `""` when
/// created or the stored spec when the id exists.
pub(crate) const CREATE: &str = r#"
local base = ARGV[1]
local out = {}
local zprio, znorm = {}, {}
for b = 2, #ARGV, 5 do
  local id, spec, due, prio, now = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4]
  local k = base .. id
  local existing = redis.call('HGET', k, 'spec')
  if existing then
    out[#out+1] = existing
  else
    redis.call('HSET', k, 'spec', spec, 'state', 'scheduled', 'attempts', 0, 'due', due,
      'created', now, 'updated', now)
    local z = znorm
    if prio == '1' then z = zprio end
    z[#z+1] = due
    z[#z+1] = id
    out[#out+1] = ''
  end
end
-- One ZADD per queue for the whole batch (at most 256 tasks: within unpack's limit).
if #zprio > 0 then redis.call('ZADD', KEYS[1], unpack(zprio)) end
if #znorm > 0 then redis.call('ZADD', KEYS[2], unpack(znorm)) end
return out
"#;

/// Claims due tasks atomically: expired leases first, then priority, then
/// normal, each by due time. ARGV: base, now, limit, lease_until, token.
/// Returns groups of `id, spec, attempts, created, last_error, due, updated`.
pub(crate) const CLAIM: &str = r#"
local base, now, limit, until_, token = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local ids = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(expired) do ids[#ids+1] = id end
for q = 1, 2 do
  if #ids < limit then
    local due = redis.call('ZRANGEBYSCORE', KEYS[q], '-inf', now, 'LIMIT', 0, limit - #ids)
    for _, id in ipairs(due) do
      redis.call('ZREM', KEYS[q], id)
      ids[#ids+1] = id
    end
  end
end
local out = {}
for _, id in ipairs(ids) do
  local k = base .. id
  local f = redis.call('HMGET', k, 'spec', 'attempts', 'created', 'last_error', 'due', 'updated')
  if f[1] then
    redis.call('ZADD', KEYS[3], until_, id)
    redis.call('HSET', k, 'state', 'delivering', 'token', token)
    out[#out+1] = id
    for i = 1, 6 do out[#out+1] = f[i] or '' end
  else
    redis.call('ZREM', KEYS[3], id)
  end
end
return out
"#;

/// Ends an attempt if `token` still holds the lease. ARGV: base, id, token,
/// kind (retry|delivered|dead), now, attempts, next_due, error, retention
/// seconds, prio. Returns 1, or 0 when the lease was lost.
pub(crate) const FINISH: &str = r#"
local base, id, token, kind, now, attempts, next_due, err, retention, prio =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local k = base .. id
if redis.call('HGET', k, 'token') ~= token then return 0 end
redis.call('ZREM', KEYS[3], id)
if kind == 'retry' then
  redis.call('HSET', k, 'state', 'scheduled', 'attempts', attempts, 'due', next_due,
    'last_error', err, 'updated', now, 'token', '')
  if prio == '1' then redis.call('ZADD', KEYS[1], next_due, id) else redis.call('ZADD', KEYS[2], next_due, id) end
else
  redis.call('HSET', k, 'state', kind, 'attempts', attempts, 'due', '', 'updated', now, 'token', '')
  if err ~= '' then redis.call('HSET', k, 'last_error', err) end
  redis.call('EXPIRE', k, retention)
end
return 1
"#;

/// Cancels an unfinished task. ARGV: base, id, now, retention seconds.
/// Returns `ok`, `missing`, or the final state it already had.
pub(crate) const CANCEL: &str = r#"
local k = ARGV[1] .. ARGV[2]
local st = redis.call('HGET', k, 'state')
if not st then return 'missing' end
if st == 'delivered' or st == 'dead' or st == 'cancelled' then return st end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HSET', k, 'state', 'cancelled', 'due', '', 'updated', ARGV[3], 'token', '')
redis.call('EXPIRE', k, ARGV[4])
return 'ok'
"#;
