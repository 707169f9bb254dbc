-- resolve_take.lua: take the unknown pushes due for a lookup at the provider (stage:
-- record; resolve.c, once a second).
-- KEYS[1] resolve:due (zset: push id -> epoch s of the next look)
-- KEYS[2] resolve:info (hash: push id -> what the lookup needs, see resolve.c)
-- KEYS[3] resolve:tries (hash: push id -> lookups done)   KEYS[4] stats
-- ARGV: now (epoch s), batch (entries at most), lease_s
-- Each entry taken stays in resolve:due with its score moved to now + lease_s: while
-- one notifier looks it up no other takes it, and if that notifier dies the entry
-- comes due again after the lease and another resumes it. Only resolve.lua (or a
-- status callback, or record.lua) removes an entry. An entry whose info is gone is
-- dropped here (counted resolve:no_info).
-- Returns a flat array: push id, info, tries (as a string), for each entry taken.
local due, info, tries, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, batch, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, batch)
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('HGET', info, id)
  if not v then
    redis.call('ZREM', due, id)
    redis.call('HDEL', tries, id)
    redis.call('HINCRBY', stats, 'resolve:no_info', 1)
  else
    redis.call('ZADD', due, 'XX', now + lease, id)
    out[#out + 1] = id
    out[#out + 1] = v
    out[#out + 1] = redis.call('HGET', tries, id) or '0'
  end
end
return out
