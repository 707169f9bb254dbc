-- update.lua: apply a deal update ("update": true) and ack it (stage: ingest).
-- KEYS[1] deal:<id>   KEYS[2] deals   KEYS[3] deals:dead
-- ARGV: entry, group, exp (epoch s), keep_s, error, payload (first 16 KiB)
-- A deal is known once its planning has begun ("planning" or "planned" in its
-- hash); the new expiry is written as "exp", which admit and send read before every
-- push, so queued pushes follow it (a past expiry stops them). An update of an
-- unknown deal is dead-lettered "unknown_deal". Returns 'ok' or 'unknown'.
local deal, stream, dead = KEYS[1], KEYS[2], KEYS[3]
local entry, group = ARGV[1], ARGV[2]
if redis.call('HEXISTS', deal, 'planning') == 0 and
    redis.call('HEXISTS', deal, 'planned') == 0 then
  redis.call('XADD', dead, 'MAXLEN', '~', '100000', '*',
    'reason', 'unknown_deal', 'field', 'id', 'error', ARGV[5], 'entry', entry,
    'deal', ARGV[6])
  redis.call('XACK', stream, group, entry)
  return 'unknown'
end
redis.call('HSET', deal, 'exp', ARGV[3])
-- Relative TTL: the hash outlives the new expiry by the same margin as at planning.
redis.call('EXPIRE', deal, ARGV[4])
redis.call('XACK', stream, group, entry)
return 'ok'
