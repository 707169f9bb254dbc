-- ab_decide.lua: an A/B test's decision, and a batch of its rest released to the
-- winner's text, atomically (stage: plan; docs/rules.md "A/B variants").
-- ORDER AB_DECIDE_KEYS (notifier/abtest.c):
-- KEYS[1] abtests   KEYS[2] abtest:<deal>   KEYS[3] abrest:<deal>
-- KEYS[4] abq:<deal>:<rule>
-- KEYS[5] report:deal:<id>   KEYS[6] report:rule:<rule>   KEYS[7]
-- report:campaign:<c> ("" = none) (the reports of shard 0: summed over the shards)
-- KEYS[8 .. 7 + S] every shard's pushes, in shard order: shard K's is KEYS[8 + K] (a
-- held recipient carries its shard, ab_hold.lua; a released job holds one shard's)
-- KEYS[8 + S .. 7 + 2S] every shard's copy of deal:<id>, in shard order
-- ARGV: deal id, rule, verdict ("" = none: only release when decided already; else
--   "<index>\t<variant>\t<how>\t<at>\t<z>\t<confidence>", how = early, final,
--   expiry), batch (held recipients released per call), job_size (recipients per
--   job)
-- The first verdict stored wins (HSETNX): every notifier may look, one decision
-- stands. Released recipients each become "-" in abrest:<deal> in the same step as
-- their job's XADD on their shard's pushes, so each is planned exactly once, whoever releases and
-- however often a call is repeated. Their jobs carry the fields the held chunk gave
-- (ab_hold.lua) and a recipient line in the winner's text. Counts "planned" in the
-- reports and "ab:<rule>:released" in report:deal. When abq:<deal>:<rule> is empty
-- and the deal planned, the test leaves abtests; so does a cancelled deal's, with
-- nothing released (a cancel reaches the shards' copies one by one: any copy
-- cancelled stops the release). Adds the released to the "recipients" and
-- "ab_released" of their shard's copy of the deal (plan.lua's last chunk counts
-- "planned" without them: a release may come before the plan ends, and this script
-- counts them itself). The test is done once its queue is empty and every shard has
-- planned the deal.
-- Returns {'open'} (no decision yet), or {'more'|'done', decision, released}.
local tests, test, rest, q = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local rdeal, rrule, rcamp = KEYS[5], KEYS[6], KEYS[7]
local nshards = (#KEYS - 7) / 2
if nshards < 1 or nshards ~= math.floor(nshards) then
  return redis.error_reply('ERR ab_decide: the shards\' streams and deal copies do not pair')
end
local dealid, rule, verdict = ARGV[1], ARGV[2], ARGV[3]
local batch, jobsz = tonumber(ARGV[4]), tonumber(ARGV[5])

-- A cancelled deal's rest is never released (admit.lua would only skip it): the test
-- leaves abtests, and its held recipients stay counted as held.
for k = 0, nshards - 1 do
  if redis.call('HEXISTS', KEYS[8 + nshards + k], 'cancelled') == 1 then
    redis.call('ZREM', tests, dealid .. '\t' .. rule)
    return {'done', '', '0'}
  end
end
-- The first verdict stored wins (HSETNX, below, once the checks have passed).
local decision = redis.call('HGET', test, rule .. ':decision')
if not decision and verdict == '' then
  return {'open'}
end
local winner = decision or verdict
local widx = tonumber(string.match(winner, '^(%d+)\t'))
local job = redis.call('HGET', test, rule .. ':job') or ''
local jentry, jexp, jcamp, jpool, jstart = string.match(job,
  '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
if not widx or not jentry then
  return redis.error_reply('ERR ab_decide: malformed decision or job of ' .. rule)
end

local fields = redis.call('LRANGE', q, 0, batch - 1)
local by_shard, order = {}, {}
local released = 0
-- Every held recipient must have the winner's line and a shard whose stream is here
-- (a shard of another layout, left by a migration that did not rewrite it, would
-- lose the recipient): checked before anything is written, the decision included.
local held = {}
for i, f in ipairs(fields) do
  local v = redis.call('HGET', rest, f)
  held[i] = v
  if v and v ~= '-' then
    local k, n = tonumber(string.match(v, '^(%d+)\30')), 0
    for _ in string.gmatch(v, '[^\30]+') do
      n = n + 1
    end
    if not k or k >= nshards then
      return redis.error_reply('ERR ab_decide: ' .. f .. ' is held for shard ' ..
        tostring(k) .. ', which this layout does not have')
    end
    if n < widx + 2 then
      return redis.error_reply('ERR ab_decide: ' .. f .. ' is held without variant ' ..
        widx .. "'s text")
    end
  end
end
if verdict ~= '' then
  redis.call('HSETNX', test, rule .. ':decision', verdict)
end
decision = winner
local done = {}   -- a field queued twice is released once
for i, f in ipairs(fields) do
  local v = held[i]
  if v and v ~= '-' and not done[f] then
    done[f] = true
    local parts = {}
    for p in string.gmatch(v, '[^\30]+') do
      parts[#parts + 1] = p
    end
    local line = parts[widx + 2]
    local k = tonumber(parts[1])
    if line and k then
      local s = parts[1]
      if not by_shard[s] then
        by_shard[s] = {}
        order[#order + 1] = s
      end
      local l = by_shard[s]
      l[#l + 1] = line
      released = released + 1
    end
    redis.call('HSET', rest, f, '-')
  end
end
redis.call('LTRIM', q, #fields, -1)
for _, s in ipairs(order) do
  local l = by_shard[s]
  local sh = tonumber(s)
  local pushes, jobs = KEYS[8 + sh], 0
  for i = 1, #l, jobsz do
    -- ORDER JOB_PAIRS: deal, entry, exp, camp, pool, start, then one "r" each
    local out = { 'deal', dealid, 'entry', jentry, 'exp', jexp, 'camp', jcamp,
      'pool', jpool, 'start', jstart }
    for k = i, math.min(i + jobsz - 1, #l) do
      out[#out + 1] = 'r'
      out[#out + 1] = l[k]
    end
    for _, x in ipairs(FMT) do
      out[#out + 1] = x
    end
    redis.call('XADD', pushes, '*', unpack(out))
    jobs = jobs + 1
  end
  -- The shard's recipients grow by its released rest (plan.lua counted the test
  -- members only), so the deal is done only when these have their outcomes too.
  local dk = KEYS[8 + nshards + sh]
  redis.call('HINCRBY', dk, 'recipients', #l)
  redis.call('HINCRBY', dk, 'ab_released', #l)
  redis.call('HINCRBY', dk, 'jobs', jobs)
end
if released > 0 then
  redis.call('HINCRBY', rdeal, 'planned', released)
  redis.call('HINCRBY', rdeal, 'ab:' .. rule .. ':released', released)
  redis.call('HINCRBY', rrule, 'planned', released)
  if rcamp ~= '' then
    redis.call('HINCRBY', rcamp, 'planned', released)
  end
end
local planned = true
for k = 0, nshards - 1 do
  planned = planned and redis.call('HEXISTS', KEYS[8 + nshards + k], 'planned') == 1
end
if redis.call('LLEN', q) == 0 and planned then
  redis.call('ZREM', tests, dealid .. '\t' .. rule)
  return {'done', decision, tostring(released)}
end
return {'more', decision, tostring(released)}
