-- ab_register.lua: a deal's A/B tests registered, once (stage: plan; docs/rules.md
-- "A/B variants"; docs/sharding.md 4h). On the slot of abtest:<deal>; sent just before
-- ab_hold.lua, on the same connection.
-- KEYS[1] abtest:<deal>
-- ARGV: keep_s, then per test (4 each): rule, variants ("a b"), terms ("<start>\t
--   <window_s>\t<metric>\t<fallback index>\t<decide_by>", epoch s on the notifier's
--   clock), job ("<entry>\t<exp>\t<campaign>\t<pool>\t<start>", the fields of the
--   jobs the rest goes out in)
-- A test's variants, terms and job are written once (HSETNX: the first chunk's, so a
-- re-plan keeps the window's start). Returns the number of tests.
local test = KEYS[1]
local n = (#ARGV - 1) / 4
if n < 1 or n ~= math.floor(n) then
  return redis.error_reply('ERR ab_register: arguments are not 4 a test')
end
for t = 0, n - 1 do
  local a = 2 + 4 * t
  if not string.match(ARGV[a + 2], '^%d+\t%d+\t%a+\t%d+\t%d+$') then
    return redis.error_reply('ERR ab_register: malformed terms of test ' .. (t + 1))
  end
end
for t = 0, n - 1 do
  local a = 2 + 4 * t
  local rule = ARGV[a]
  redis.call('HSETNX', test, rule .. ':vars', ARGV[a + 1])
  redis.call('HSETNX', test, rule .. ':terms', ARGV[a + 2])
  redis.call('HSETNX', test, rule .. ':job', ARGV[a + 3])
end
redis.call('EXPIRE', test, ARGV[1])
return n
