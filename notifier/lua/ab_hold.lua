-- ab_hold.lua: the rest of a deal's A/B tests held back until a test decides, one
-- plan chunk's worth, atomically (stage: plan; docs/rules.md "A/B variants").
-- ORDER AB_HOLD_KEYS (notifier/abhold.c):
-- KEYS[1] deal:<id> (the planning shard's copy)   KEYS[2] abtests
-- KEYS[3] abtest:<deal>   KEYS[4] abrest:<deal>
-- KEYS[5] report:deal:<id> (the planning shard's: reports are summed over the shards)
-- KEYS[6..] abq:<deal>:<rule>, one per test of the call
-- ARGV: entry, keep_s, deal id, then per test (in the order of KEYS[6..], 5 each):
--   rule, variants ("a b"), terms ("<start>\t<window_s>\t<metric>\t<fallback
--   index>\t<decide_by>", epoch s on the notifier's clock), job ("<entry>\t<exp>\t
--   <campaign>\t<pool>\t<start>", the fields of the jobs the rest goes out in), held
--   (how many recipients follow for it); then per held recipient, in test order:
--   "<sub>:<ch>", "<shard>\30<line in variant 1>\30<line in variant 2>..."
-- A test's variants, terms and job are written once (HSETNX: the first chunk's, so
-- a re-plan keeps the window's start); "<deal>\t<rule>" joins abtests (NX) until
-- ab_decide.lua has released the whole rest. A recipient is held once: abrest keeps
-- it ("-" once released) and abq lists it once, so a re-plan after a crash never
-- holds it again, and never after its release. A deal planned by another entry
-- writes nothing: {'duplicate'}. Counts "ab:<rule>:held" in report:deal.
local deal, tests, test, rest, rdeal = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local entry, keep_s, dealid = ARGV[1], ARGV[2], ARGV[3]
local ntests = #KEYS - 5

local planned = redis.call('HGET', deal, 'planned')
local owner = redis.call('HGET', deal, 'planning')
if (planned and planned ~= entry) or (owner and owner ~= entry) then
  return {'duplicate'}
end
if planned then
  -- This entry's plan finished before: who was held then is held for good.
  return {'ok', '0'}
end

-- Check the arguments' shape before writing anything: a script that fails half-way
-- keeps what it wrote.
local want = 3
for t = 1, ntests do
  local n = tonumber(ARGV[3 + 5 * t])
  if not n or not string.match(ARGV[2 + 5 * t - 1] or '', '^%d+\t%d+\t%a+\t%d+\t%d+$') then
    return redis.error_reply('ERR ab_hold: malformed terms or count of test ' .. t)
  end
  want = want + 5 + 2 * n
end
if #ARGV ~= want then
  return redis.error_reply('ERR ab_hold: ' .. #ARGV .. ' arguments, not ' .. want)
end

local a, held = 4, 0
local specs = {}
for t = 1, ntests do
  specs[t] = { rule = ARGV[a], n = tonumber(ARGV[a + 4]) }
  local rule = ARGV[a]
  redis.call('HSETNX', test, rule .. ':vars', ARGV[a + 1])
  redis.call('HSETNX', test, rule .. ':terms', ARGV[a + 2])
  redis.call('HSETNX', test, rule .. ':job', ARGV[a + 3])
  if not redis.call('HGET', test, rule .. ':decision') or
      redis.call('LLEN', KEYS[5 + t]) > 0 or specs[t].n > 0 then
    local by = string.match(redis.call('HGET', test, rule .. ':terms'),
      '^[^\t]*\t[^\t]*\t[^\t]*\t[^\t]*\t(%d+)$')
    redis.call('ZADD', tests, 'NX', tonumber(by or '0'), dealid .. '\t' .. rule)
  end
  a = a + 5
end
for t = 1, ntests do
  local q, rule, n = KEYS[5 + t], specs[t].rule, specs[t].n
  local k = 0
  for _ = 1, n do
    if redis.call('HSETNX', rest, ARGV[a], ARGV[a + 1]) == 1 then
      redis.call('RPUSH', q, ARGV[a])
      k = k + 1
    end
    a = a + 2
  end
  if k > 0 then
    redis.call('HINCRBY', rdeal, 'ab:' .. rule .. ':held', k)
  end
  held = held + k
  redis.call('EXPIRE', q, keep_s)
end
redis.call('EXPIRE', test, keep_s)
redis.call('EXPIRE', rest, keep_s)
return {'ok', tostring(held)}
