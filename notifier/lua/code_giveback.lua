-- code_giveback.lua: codes a shard gave back return to their pool (stage: admit;
-- sharded layout only, docs/sharding.md 4c give-back step 3). On the pool's slot.
-- KEYS[1] the pool   KEYS[2] {<pool>}:marks   KEYS[3] {<pool>}:out
-- ARGV: deal, shard, g (the give-back's number), keep_s, then the codes
-- Applied once per (deal, shard, g): a replay (g at or below the mark) changes
-- nothing. A code goes back when out names it as this (deal, shard)'s, or names it
-- not at all (a code a push took from the pool before `dealpushctl migrate` made the
-- layout sharded); one out names as another's is not this shard's to give, so a
-- code can never be put in the pool while another holds it. Answers the number of
-- codes returned.
-- A quota's counter (KEYS[1] named "quota:...", 4c "The quota") gets 1 back per token
-- that out names as this (deal, shard)'s; a token out does not name is never
-- counted (INCRBY, unlike SADD, would count it twice).
local pool, marks, out = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1] .. '\t' .. ARGV[2]
local g = tonumber(ARGV[3])
if g <= (tonumber(redis.call('HGET', marks, 'gb\t' .. id)) or 0) then
  return 0
end
local n, prefix = 0, id .. '\t'
local quota = string.sub(pool, 1, 6) == 'quota:'
for i = 5, #ARGV do
  local code = ARGV[i]
  local o = redis.call('HGET', out, code)
  if quota then
    if o and string.sub(o, 1, #prefix) == prefix then
      redis.call('HDEL', out, code)
      -- Never made again once gone (400 days): a counter without its L would
      -- hold the quota at what comes back.
      if redis.call('EXISTS', pool) == 1 then
        redis.call('INCRBY', pool, 1)
      end
      n = n + 1
    end
  elseif not o or string.sub(o, 1, #prefix) == prefix then
    redis.call('HDEL', out, code)
    redis.call('SADD', pool, code)
    n = n + 1
  end
end
redis.call('HSET', marks, 'gb\t' .. id, g)
if redis.call('TTL', marks) < tonumber(ARGV[4]) then
  redis.call('EXPIRE', marks, ARGV[4])
end
return n
