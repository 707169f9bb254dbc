-- code_reserve.lua: hand codes of a pool to one shard's reservation (stage: admit;
-- sharded layout only, docs/sharding.md 4c step 2). On the pool's slot.
-- KEYS[1] the pool (a set, codes:<name>)   KEYS[2] {<pool>}:res (reservation ->
--   its codes, JSON, until the shard has them)   KEYS[3] {<pool>}:marks (per
--   "<deal>\t<shard>": "res\t…" the last reservation applied, "gb\t…" the last
--   give-back)   KEYS[4] {<pool>}:out
--   (code -> "<deal>\t<shard>\t<n>", the reservation that took it: a conversion by
--   code finds the push's shard there)
-- ARGV: deal, shard, n (the reservation's number, from the shard's codestate), c
--   (codes wanted), keep_s (how long the pool's records are kept), quota (L of a
--   deal's quota, "0" or absent for a code pool)
-- A quota (docs/sharding.md 4c "The quota"): KEYS[1] is a counter, set to L by the
-- first reservation of any shard (SET NX: every later L is ignored), and a
-- reservation takes min(c, left) by DECRBY as the distinct tokens
-- "*<shard>.<L>.<n>.<i>", i = 1..k: reservation n of this shard under this L, so no
-- two reservations ever make the same token, and a replay answers the same ones
-- (from res). ARGV[1] is then the quota's whole name ("quota:<L>:<deal>"), so that
-- names of two L for one deal (a new quantity, another overbook) number their
-- reservations and give-backs apart, as their codestate fields do.
-- A replay of a reservation applied and not yet confirmed answers the same codes; a
-- replay of one confirmed (n at or below the mark) answers {'done', mark}: the shard
-- closes its intent and numbers the next one above the mark. Otherwise up to
-- c codes leave the pool, each named in out, all listed in res. Answers
-- {'ok'|'short', code...}: 'short' when the pool had fewer than c.
local pool, res, marks, out = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[1] .. '\t' .. ARGV[2]
local n, c, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rid = id .. '\t' .. ARGV[3]

local function keep_for(key)
  if redis.call('TTL', key) < keep then
    redis.call('EXPIRE', key, keep)
  end
end

local function answer(codes)
  local a = { #codes < c and 'short' or 'ok' }
  for _, code in ipairs(codes) do
    a[#a + 1] = code
  end
  return a
end

local had = redis.call('HGET', res, rid)
if had then
  local ok, codes = pcall(cjson.decode, had)
  if ok and type(codes) == 'table' then
    return answer(codes)
  end
  return answer({})
end
local mark = tonumber(redis.call('HGET', marks, 'res\t' .. id)) or 0
if n <= mark then
  return { 'done', mark }
end
local codes = {}
local quota = tonumber(ARGV[6]) or 0
if quota > 0 then
  -- Kept past any deal's life (366 days at most), so that a late reservation never
  -- finds it gone and sets L again.
  redis.call('SET', pool, quota, 'NX', 'EX', 400 * 86400)
  local left = tonumber(redis.call('GET', pool)) or 0
  local k = math.max(math.min(c, left), 0)
  if k > 0 then
    redis.call('DECRBY', pool, k)
  end
  for i = 1, k do
    codes[i] = '*' .. ARGV[2] .. '.' .. quota .. '.' .. ARGV[3] .. '.' .. i
  end
elseif c > 0 then
  codes = redis.call('SPOP', pool, c)
end
for _, code in ipairs(codes) do
  redis.call('HSET', out, code, rid)
end
if #codes > 0 then
  redis.call('HSET', res, rid, cjson.encode(codes))
  keep_for(out)
else
  redis.call('HSET', res, rid, '[]')
end
redis.call('HSET', marks, 'res\t' .. id, n)
keep_for(res)
keep_for(marks)
return answer(codes)
