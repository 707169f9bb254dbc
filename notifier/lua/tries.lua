-- tries.lua: count a failed attempt at a deal entry in one group; dead-letter it at
-- the last (stage: ingest).
-- KEYS[1] deals:tries   KEYS[2] deals   KEYS[3] deals:dead
-- ARGV: entry, group, max_tries, keep_s, error (what failed, for the dead letter),
--   field (the count's field in deals:tries: the entry, "<entry>:<group>" in the
--   sharded layout, where each shard's group plans the entry on its own)
-- Only failures that belong to the entry are counted (the notifier leaves out
-- timeouts and Redis-wide refusals such as LOADING or OOM), so a poison entry is
-- dead-lettered after max_tries while a Redis outage never dead-letters good deals.
-- The count lives in Redis, so a restart does not reset it. Each group that gives up
-- writes its own dead letter (its error names the shard): replaying it plans the
-- shards that did not (the others answer duplicate). Returns {'retry', n} or
-- {'dead', n}; the notifier drops the count when the entry is acked.
local tries, stream, dead = KEYS[1], KEYS[2], KEYS[3]
local entry, group, max, field = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[6]
local n = redis.call('HINCRBY', tries, field, 1)
redis.call('EXPIRE', tries, ARGV[4])
if n < max then
  return {'retry', n}
end
local payload = ''
local e = redis.call('XRANGE', stream, entry, entry)
if e[1] and type(e[1][2]) == 'table' then
  local f = e[1][2]
  for i = 1, #f - 1, 2 do
    if f[i] == 'deal' then
      payload = string.sub(f[i + 1], 1, 16384)
      break
    end
  end
end
redis.call('XADD', dead, 'MAXLEN', '~', '100000', '*',
  'reason', 'max_tries', 'field', '', 'error', ARGV[5], 'entry', entry, 'deal', payload, unpack(FMT))
redis.call('XACK', stream, group, entry)
redis.call('HDEL', tries, field)
return {'dead', n}
