-- ab_release.lua: a batch of one shard's held rest of an A/B test released to the
-- winner's text, atomically (stage: plan; docs/rules.md "A/B variants";
-- docs/sharding.md 4h). On the shard's slot; ab_verdict.lua decided first.
-- ORDER AB_RELEASE_KEYS (notifier/abtest.c):
-- KEYS[1] deal:<id> (the shard's copy)   KEYS[2] abrest:<deal>   KEYS[3]
-- abq:<deal>:<rule>   KEYS[4] pushes   KEYS[5] report:deal:<id>   KEYS[6]
-- report:rule:<rule>   KEYS[7] report:campaign:<c> ("" = none): all the shard's
-- ARGV: deal id, rule, decision ("<index>\t<variant>\t..."), job ("<entry>\t<exp>\t
--   <campaign>\t<pool>\t<start>"), batch (held recipients released per call),
--   job_size (recipients per job)
-- Released recipients each become "-" in abrest in the same step as their job's
-- XADD on the shard's pushes, so each is planned exactly once, whoever releases and
-- however often a call is repeated. Their jobs carry the job's fields and a
-- recipient line in the winner's text. Counts "planned" in the reports and
-- "ab:<rule>:released" in report:deal, and adds the released to the copy's
-- "recipients", "ab_released" and "jobs" (plan.lua's last chunk counts "planned"
-- without them: a release may come before the plan ends). A cancelled copy releases
-- nobody (admit.lua would only skip them): they stay counted as held.
-- Returns {'more'|'empty'|'cancelled', released}: 'empty' once the shard's queue is
-- empty and its copy planned (nothing more can be held in it).
local deal, rest, q, pushes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local rdeal, rrule, rcamp = KEYS[5], KEYS[6], KEYS[7]
local dealid, rule, decision, job = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local batch, jobsz = tonumber(ARGV[5]), tonumber(ARGV[6])

if redis.call('HEXISTS', deal, 'cancelled') == 1 then
  return {'cancelled', '0'}
end
local widx = tonumber(string.match(decision, '^(%d+)\t'))
local jentry, jexp, jcamp, jpool, jstart = string.match(job,
  '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
if not widx or not jentry then
  return redis.error_reply('ERR ab_release: malformed decision or job of ' .. rule)
end

local fields = redis.call('LRANGE', q, 0, batch - 1)
-- Every held recipient must have the winner's line: checked before anything is
-- written.
local held = {}
for i, f in ipairs(fields) do
  local v = redis.call('HGET', rest, f)
  held[i] = v
  if v and v ~= '-' then
    local n = 0
    for _ in string.gmatch(v, '[^\30]+') do
      n = n + 1
    end
    if not string.match(v, '^%d+\30') or n < widx + 2 then
      return redis.error_reply('ERR ab_release: ' .. f .. ' is held without variant ' ..
        widx .. "'s text")
    end
  end
end
local lines, done = {}, {}   -- a field queued twice is released once
for i, f in ipairs(fields) do
  local v = held[i]
  if v and v ~= '-' and not done[f] then
    done[f] = true
    local parts = {}
    for p in string.gmatch(v, '[^\30]+') do
      parts[#parts + 1] = p
    end
    lines[#lines + 1] = parts[widx + 2]
    redis.call('HSET', rest, f, '-')
  end
end
redis.call('LTRIM', q, #fields, -1)
local jobs = 0
for i = 1, #lines, jobsz do
  -- ORDER JOB_PAIRS: deal, entry, exp, camp, pool, start, then one "r" each
  local out = { 'deal', dealid, 'entry', jentry, 'exp', jexp, 'camp', jcamp,
    'pool', jpool, 'start', jstart }
  for k = i, math.min(i + jobsz - 1, #lines) do
    out[#out + 1] = 'r'
    out[#out + 1] = lines[k]
  end
  for _, x in ipairs(FMT) do
    out[#out + 1] = x
  end
  redis.call('XADD', pushes, '*', unpack(out))
  jobs = jobs + 1
end
local released = #lines
if released > 0 then
  redis.call('HINCRBY', deal, 'recipients', released)
  redis.call('HINCRBY', deal, 'ab_released', released)
  redis.call('HINCRBY', deal, 'jobs', jobs)
  redis.call('HINCRBY', rdeal, 'planned', released)
  redis.call('HINCRBY', rdeal, 'ab:' .. rule .. ':released', released)
  redis.call('HINCRBY', rrule, 'planned', released)
  if rcamp ~= '' then
    redis.call('HINCRBY', rcamp, 'planned', released)
  end
end
if redis.call('LLEN', q) == 0 and redis.call('HEXISTS', deal, 'planned') == 1 then
  return {'empty', tostring(released)}
end
return {'more', tostring(released)}
