-- ab_verdict.lua: an A/B test's decision, the first one stored (stage: plan;
-- docs/rules.md "A/B variants"; docs/sharding.md 4h). On the slot of abtest:<deal>;
-- ab_release.lua then releases the rest shard by shard.
-- KEYS[1] abtest:<deal>
-- ARGV: rule, verdict ("" = none: only answer the decision stored; else
--   "<index>\t<variant>\t<how>\t<at>\t<z>\t<confidence>", how = early, final,
--   expiry)
-- The first verdict stored wins (HSETNX): every notifier may look, one decision
-- stands. Returns {'open'} (no decision yet), or {'decided', decision, job} (job: the
-- fields the released jobs carry, as ab_register.lua stored them).
local test, rule, verdict = KEYS[1], ARGV[1], ARGV[2]
local decision = redis.call('HGET', test, rule .. ':decision')
if not decision and verdict == '' then
  return {'open'}
end
local job = redis.call('HGET', test, rule .. ':job')
if not job or not string.match(decision or verdict, '^%d+\t') then
  return redis.error_reply('ERR ab_verdict: malformed decision or no job of ' .. rule)
end
if not decision then
  redis.call('HSETNX', test, rule .. ':decision', verdict)
  decision = redis.call('HGET', test, rule .. ':decision')
end
return {'decided', decision, job}
