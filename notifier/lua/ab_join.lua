-- ab_join.lua: a deal's A/B tests join the open tests, once (stage: plan; docs/rules.md
-- "A/B variants"; docs/sharding.md 4h). On the slot of abtests; sent with
-- ab_register.lua and ab_hold.lua, on the same connection.
-- KEYS[1] abtests
-- ARGV: per test (2 each): the epoch s it must be decided by, "<deal>\t<rule>"
-- ZADD NX: a test already open keeps its score. abtest.c removes it (ZREM) once every
-- shard has released all it held and planned the deal. Returns how many joined.
local tests, n = KEYS[1], 0
for i = 1, #ARGV - 1, 2 do
  n = n + redis.call('ZADD', tests, 'NX', ARGV[i], ARGV[i + 1])
end
return n
