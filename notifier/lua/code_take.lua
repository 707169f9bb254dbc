-- code_take.lua: a shard takes the codes its reservation got into its stash (stage:
-- admit; sharded layout only, docs/sharding.md 4c step 4). On the shard's slot.
-- KEYS[1] {sK}codestate   KEYS[2] {sK}codestash:<deal>:<pool>
-- ARGV: field ("<deal>\t<pool>"), n (the reservation), keep_s (the stash's life),
--   now (epoch s), past (the pool's mark when it answered "done": the next intent
--   is numbered above it; "0" otherwise), then the codes
-- Only while the intent n is open: the codes go to the stash and the intent closes.
-- Anything else is a replay and changes nothing. Answers 'taken' or 'replay'.
--#include codestate
local state, stash = KEYS[1], KEYS[2]
local field, n, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local s = cs_get(state, field)
if not s.found or s.rn ~= n then
  return 'replay'
end
for i = 6, #ARGV, 1000 do
  redis.call('SADD', stash, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV >= 6 and redis.call('TTL', stash) < keep then
  redis.call('EXPIRE', stash, keep)
end
s.rn, s.rc = 0, 0
s.used = tonumber(ARGV[4])
s.resn = math.max(s.resn, tonumber(ARGV[5]) or 0)
cs_put(state, field, s)
return 'taken'
