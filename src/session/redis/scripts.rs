//! The Lua scripts of the Redis store: each runs as one step for every replica.

use std::sync::LazyLock;

use redis::Script;

/// Starts or continues a counter's window, then counts the hit. A script, so that reading
/// the window's end, resetting it and counting happen as one step for all replicas.
/// KEYS[1] counter; ARGV[1] now; ARGV[2] window in seconds.
pub(super) static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local ends = tonumber(redis.call('HGET', KEYS[1], 'end'))
if ends == nil or ends <= now then
  redis.call('HSET', KEYS[1], 'n', 0, 'end', now + window)
  redis.call('EXPIRE', KEYS[1], window)
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
",
    )
});

/// Takes one back from a live counter, never below zero; a missing or expired counter is
/// left alone (so no key is ever made here, and none without a TTL).
/// KEYS[1] counter; ARGV[1] now.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ends = tonumber(redis.call('HGET', KEYS[1], 'end'))
if ends ~= nil and ends > tonumber(ARGV[1]) then
  local n = tonumber(redis.call('HGET', KEYS[1], 'n')) or 0
  if n > 0 then
    redis.call('HINCRBY', KEYS[1], 'n', -1)
  end
end
return 0
",
    )
});

/// `SET NX`, except that a value past its deadline by the gateway's clock counts as absent
/// even while its rounded-up TTL keeps it in Redis.
/// KEYS[1] key; ARGV[1] now; ARGV[2] stored value (`EXPIRES_AT:bytes`); ARGV[3] TTL.
pub(super) static PUT_ONCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ends = tonumber(string.match(cur, '^(%d+):'))
  if ends ~= nil and ends > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
",
    )
});

/// Reads a session and the epoch of the account it belongs to, in one round trip. The
/// epoch key is named from the session's value, so it cannot be declared in KEYS: deskgate
/// keeps all its keys in one Redis (or, on a cluster, one hash slot through a `{tag}` in the
/// prefix). Returns nil, `{value}` for a value without the account id in front (written by an
/// earlier version), or `{value, epoch}`.
/// The epoch returned is the account's own plus the shared one (see
/// [`crate::session::SessionStore::account_epoch`]).
/// KEYS[1] session; ARGV[1] the epoch keys' prefix; ARGV[2] the shared epoch's key.
pub(super) static SESSION_AND_EPOCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
local nl = string.find(v, '\n', 1, true)
if not nl then
  return {v}
end
local own = tonumber(redis.call('GET', ARGV[1] .. string.sub(v, 1, nl - 1))) or 0
local shared = tonumber(redis.call('GET', ARGV[2])) or 0
return {v, string.format('%d', own + shared)}
",
    )
});

/// Adds a session to its account's index, drops expired members, and lets the index expire
/// with its latest session. Sent as `EVAL` in the put's pipeline (which may end in `WAIT`).
/// KEYS[1] index; ARGV[1] session key text; ARGV[2] its deadline; ARGV[3] now.
pub(super) const INDEX: &str = r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('EXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - tonumber(ARGV[3])))
end
return 0
";

/// Deletes a session and its entry in its account's index (named from the session's value,
/// as in [`SESSION_AND_EPOCH`]).
/// KEYS[1] session; ARGV[1] the indexes' prefix; ARGV[2] session key text.
pub(super) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
redis.call('DEL', KEYS[1])
local nl = string.find(v, '\n', 1, true)
if nl then
  redis.call('ZREM', ARGV[1] .. string.sub(v, 1, nl - 1), ARGV[2])
end
return 1
",
    )
});
