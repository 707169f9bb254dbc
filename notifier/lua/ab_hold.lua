-- ab_hold.lua: the rest of a deal's A/B tests held back until a test decides, one
-- plan chunk's worth of one shard, atomically (stage: plan; docs/rules.md "A/B
-- variants"; docs/sharding.md 4h). On the planning shard's slot: the test's terms are
-- registered by ab_register.lua and the test joins abtests (ZADD NX), both sent just
-- before on the same connection.
-- ORDER AB_HOLD_KEYS (notifier/abhold.c):
-- KEYS[1] deal:<id> (the planning shard's copy)   KEYS[2] abrest:<deal> (the shard's)
-- KEYS[3] report:deal:<id> (the planning shard's: reports are summed over the shards)
-- KEYS[4..] abq:<deal>:<rule> (the shard's), one per test of the call
-- ARGV: entry, keep_s, deal id, then per test (in the order of KEYS[4..], 2 each):
--   rule, held (how many recipients follow for it); then per held recipient, in test
--   order: "<sub>:<ch>", "<shard>\30<line in variant 1>\30<line in variant 2>..."
-- A recipient is held once: abrest keeps it ("-" once released) and abq lists it
-- once, so a re-plan after a crash never holds it again, and never after its
-- release. A deal planned by another entry writes nothing: {'duplicate'}. Counts
-- "ab:<rule>:held" in report:deal.
local deal, rest, rdeal = KEYS[1], KEYS[2], KEYS[3]
local entry, keep_s, dealid = ARGV[1], ARGV[2], ARGV[3]
local ntests = #KEYS - 3

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
  local n = tonumber(ARGV[3 + 2 * t])
  if not n then
    return redis.error_reply('ERR ab_hold: malformed count of test ' .. t)
  end
  want = want + 2 + 2 * n
end
if #ARGV ~= want then
  return redis.error_reply('ERR ab_hold: ' .. #ARGV .. ' arguments, not ' .. want)
end

local a, held = 4, 0
local specs = {}
for t = 1, ntests do
  specs[t] = { rule = ARGV[a], n = tonumber(ARGV[a + 1]) }
  a = a + 2
end
for t = 1, ntests do
  local q, rule, n = KEYS[3 + t], specs[t].rule, specs[t].n
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
redis.call('EXPIRE', rest, keep_s)
return {'ok', tostring(held)}
