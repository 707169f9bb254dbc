-- holdout.lua: remember who a deal's holdouts kept back (stage: plan).
-- ORDER HOLDOUT_KEYS (notifier/ingest.c, ingest_holdout):
-- KEYS[1] holdout:<deal id>   KEYS[2] report:deal:<id>   KEYS[3] report:campaign:<c>
--   ("" for none), then one report:rule:<rule> per pair, in the pairs' order
-- ARGV: ttl_s, then pairs: subscriber id, rule
-- holdout:<deal> maps each held-out subscriber to the rule that held it out; a
-- conversion by one of them counts as the holdout's (convert.lua). holdout_audience
-- grows in the deal's, each rule's and the campaign's report by the subscribers this
-- call added, so a deal re-planned after a crash, or published twice, counts nobody
-- twice. Returns the number added.
local key, rdeal, rcamp, ttl = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local added, by_rule = 0, {}
for i = 2, #ARGV - 1, 2 do
  local rkey = KEYS[3 + i / 2]
  if redis.call('HSETNX', key, ARGV[i], ARGV[i + 1]) == 1 then
    added = added + 1
    by_rule[rkey] = (by_rule[rkey] or 0) + 1
  end
end
if added > 0 then
  redis.call('HINCRBY', rdeal, 'holdout_audience', added)
  if rcamp ~= '' then
    redis.call('HINCRBY', rcamp, 'holdout_audience', added)
  end
  for rkey, n in pairs(by_rule) do
    redis.call('HINCRBY', rkey, 'holdout_audience', n)
  end
end
redis.call('EXPIRE', key, ttl)
return added
