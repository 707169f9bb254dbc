-- own.lua: a notifier's lease on one shard (stage: all; docs/sharding.md 4d). On the
-- shard's slot: one call holds one shard's owner record.
-- ORDER OWN_KEYS (notifier/owner.c): KEYS[1] {sK}owner, a hash: owner (the notifier
--   id), until (Redis ms the lease ends), epoch (bumped by every acquire; never goes
--   back, also when the lease is released)
-- ARGV: op, me, then
--   "acquire" lease_ms: when nobody holds the shard, the lease has passed on this
--     primary's clock, or me holds it already (a restarted notifier under the same
--     id: its old incarnation is fenced by the new epoch), me holds it from now on.
--     Answers {"ok", epoch}, or {"busy", holder, ms left}.
--   "renew" epoch lease_ms: while me holds it under that epoch, until = now + lease.
--     Answers {"ok", epoch}, or {"lost", holder or "", its epoch}.
--   "release" epoch: while me holds it under that epoch, nobody holds it. Answers
--     {"ok", epoch}, or {"lost", ...} as renew.
--   "check" epoch: {"ok", epoch} while me holds it under that epoch, else {"lost", ...}
--     (the tests' and dealpushctl's look, no write).
-- Time is Redis' TIME: every notifier compares leases on one clock, the primary's.
local key, op, me = KEYS[1], ARGV[1], ARGV[2]

if op ~= 'acquire' and op ~= 'renew' and op ~= 'release' and op ~= 'check' then
  return redis.error_reply('own.lua: op must be acquire, renew, release or check')
end
if me == nil or me == '' then
  return redis.error_reply('own.lua: no notifier id')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', key, 'owner', 'until', 'epoch')
local holder, untl, epoch = cur[1], tonumber(cur[2] or '0'), cur[3] or '0'

if op == 'acquire' then
  local lease = tonumber(ARGV[3])
  if not lease or lease <= 0 then
    return redis.error_reply('own.lua: acquire needs a lease in ms')
  end
  if holder and holder ~= me and untl >= now then
    return { 'busy', holder, tostring(untl - now) }
  end
  epoch = tostring(redis.call('HINCRBY', key, 'epoch', 1))
  redis.call('HSET', key, 'owner', me, 'until', tostring(now + lease))
  return { 'ok', epoch }
end

if holder ~= me or epoch ~= ARGV[3] then
  return { 'lost', holder or '', epoch }
end
if op == 'renew' then
  local lease = tonumber(ARGV[4])
  if not lease or lease <= 0 then
    return redis.error_reply('own.lua: renew needs a lease in ms')
  end
  redis.call('HSET', key, 'until', tostring(now + lease))
elseif op == 'release' then
  redis.call('HDEL', key, 'owner', 'until')
end
return { 'ok', epoch }
