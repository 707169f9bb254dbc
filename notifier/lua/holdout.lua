-- holdout.lua: remember who a deal's holdouts kept back (stage: plan).
-- KEYS[1] holdout:<deal id>
-- ARGV: deal_id, campaign ("" for none), ttl_s, then pairs: subscriber id, rule
-- holdout:<deal> maps each held-out subscriber to the rule that held it out; a
-- conversion by one of them counts as the holdout's (convert.lua). holdout_audience
-- grows in report:deal:<id>, report:rule:<rule> and report:campaign:<campaign> by the
-- subscribers this call added, so a deal re-planned after a crash, or published
-- twice, counts nobody twice. Returns the number added.
local key, deal_id, camp, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local added, by_rule = 0, {}
for i = 4, #ARGV - 1, 2 do
  local rule = ARGV[i + 1]
  if redis.call('HSETNX', key, ARGV[i], rule) == 1 then
    added = added + 1
    by_rule[rule] = (by_rule[rule] or 0) + 1
  end
end
if added > 0 then
  redis.call('HINCRBY', 'report:deal:' .. deal_id, 'holdout_audience', added)
  if camp ~= '' then
    redis.call('HINCRBY', 'report:campaign:' .. camp, 'holdout_audience', added)
  end
  for rule, n in pairs(by_rule) do
    redis.call('HINCRBY', 'report:rule:' .. rule, 'holdout_audience', n)
  end
end
redis.call('EXPIRE', key, ttl)
return added
