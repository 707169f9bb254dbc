-- tries.lua: count a failed attempt at a deal entry; dead-letter it at the last
-- (stage: ingest).
-- KEYS[1] deals:tries   KEYS[2] deals   KEYS[3] deals:dead
-- ARGV: entry, group, max_tries, keep_s, error (what failed, for the dead letter)
-- Only failures that belong to the entry are counted (the notifier leaves out
-- timeouts and Redis-wide refusals such as LOADING or OOM), so a poison entry is
-- dead-lettered after max_tries while a Redis outage never dead-letters good deals.
-- The count lives in Redis, so a restart does not reset it. Returns {'retry', n} or
-- {'dead', n}; plan.lua drops the count when the deal is planned.
local tries, stream, dead = KEYS[1], KEYS[2], KEYS[3]
local entry, group, max = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = redis.call('HINCRBY', tries, entry, 1)
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
redis.call('HDEL', tries, entry)
return {'dead', n}
