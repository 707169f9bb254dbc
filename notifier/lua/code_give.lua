-- code_give.lua: a shard's unused codes start back to their pool, or the give-back
-- is done (stage: admit; sharded layout only, docs/sharding.md 4c, give-back steps 1
-- and 5). On the shard's slot.
-- KEYS[1] {sK}codestate   KEYS[2] {sK}codestash:<deal>:<pool>
-- KEYS[3] {sK}codeback:<deal>:<pool> (the codes of the give-back in flight)
-- KEYS[4] {sK}deal:<id> (the shard's copy of the deal: gone = the deal is over)
-- ARGV: op ('out' or 'done'), field ("<deal>\t<pool>"), g (for 'done'), keep_s,
--   now (epoch s), idle_s
-- 'out': a give-back already in flight answers again {'out', g, code...}; a stash
--   used (admit, take) in the last idle_s answers {'busy'}; else the whole stash
--   moves to codeback under the next number g, {'out', g, code...}; an empty stash
--   answers {'empty'}, and once the deal has been over for an hour (or its copy is
--   gone) the shard's record of the deal goes too ({'gone'}): the records stay as
--   few as the live pooled deals.
-- 'done': the give-back g reached the pool: its codes are forgotten here. 'ok', or
--   'replay' when g is not the one in flight.
--#include codestate
local state, stash, back, copy = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, field, keep = ARGV[1], ARGV[2], tonumber(ARGV[4])
local s = cs_get(state, field)
if op == 'done' then
  if not s.found or s.gb ~= tonumber(ARGV[3]) then
    return 'replay'
  end
  redis.call('DEL', back)
  s.gb = 0
  cs_put(state, field, s)
  return 'ok'
end
if not s.found then
  return { 'gone' }
end
local a
if s.gb > 0 then
  a = { 'out', s.gb }
  for _, code in ipairs(redis.call('SMEMBERS', back)) do
    a[#a + 1] = code
  end
  return a
end
if tonumber(ARGV[5]) - s.used < tonumber(ARGV[6]) then
  return { 'busy' }
end
local left = redis.call('SCARD', stash)
if left == 0 then
  local over = s.exp > 0 and tonumber(ARGV[5]) > s.exp + 3600
  if s.rn == 0 and (over or redis.call('EXISTS', copy) == 0) then
    redis.call('HDEL', state, field)
    return { 'gone' }
  end
  return { 'empty' }
end
local codes = redis.call('SPOP', stash, left)
s.gbn = s.gbn + 1
s.gb = s.gbn
redis.call('DEL', back)
for i = 1, #codes, 1000 do
  redis.call('SADD', back, unpack(codes, i, math.min(i + 999, #codes)))
end
redis.call('EXPIRE', back, keep)
cs_put(state, field, s)
a = { 'out', s.gb }
for _, code in ipairs(codes) do
  a[#a + 1] = code
end
return a
