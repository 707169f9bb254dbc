-- plan.lua: write one chunk of one shard's jobs of a deal, atomically (stage: plan).
-- ORDER PLAN_KEYS (notifier/ingest_plan.c), every key in the shard's slot:
-- KEYS[1] deal:<id>   KEYS[2] dealentry:<entry>   KEYS[3] planset:<id>
-- KEYS[4] report:deal:<id>   KEYS[5] report:campaign:<c> (not touched when the
-- campaign is "")   KEYS[6] the shard's job stream (pushes)
-- KEYS[7] {sK}owner, the shard's owner record, with shard ownership only (own.lua;
--   docs/sharding.md 4d): present when ARGV[14] is not ""
-- KEYS[7 or 8 ..] report:rule:<rule> for every rule named in this chunk's recipients
-- ARGV: entry, chunk, nchunks, keep_s, njobs, code_pool, url, title, campaign,
--       limit (recipients in all, 0 = none), attempt, deal id, product id ("" =
--       none: a conversion's halo is told by it, convert.lua), epoch (of the
--       planner's lease on the shard; "" = no ownership), then the rule name
--       of each report:rule key in their order (ORDER PLAN_RULES; no value is read
--       out of a key's name, whose form changes with sharding), then per job:
--       npairs, field, value, ... (the job's own fields, then one "r" per
--       recipient)
-- Each shard's reader (group s<K> on deals, docs/sharding.md 4a) plans the deal's
-- recipients of its shard into the shard's copy of the deal hash, which keeps the
-- plan-once marker and the deal's url, title, campaign and product_id (click links,
-- conversions and reports read them); dealentry:<entry> names the deal of a push id.
-- "planned" counts recipients in report:deal:<id> (with the last chunk),
-- report:rule:<rule> and report:campaign:<campaign> (with each chunk).
--
-- Exactly once per recipient, whatever the ranking: planset:<id> holds every
-- "<sub>:<ch>" written so far and a recipient already in it is skipped, so a re-plan
-- after a crash (whose ranking, recomputed, may differ) writes only who is missing,
-- and never more than limit in all. An attempt's chunks must arrive in order
-- (cursor of that attempt); a chunk out of order answers {'retry'} and writes
-- nothing, so the last chunk cannot mark the deal planned over a failed one. The
-- last chunk sets "planned" and drops the set. Nothing here acks the entry: "deals"
-- is in another slot, so the caller acks it once this answered (after its WAIT):
-- a crash in between reads the entry again, which answers {'duplicate'} and is
-- acked then.
local deal, dealentry, planset = KEYS[1], KEYS[2], KEYS[3]
local rdeal, rcamp, pushes = KEYS[4], KEYS[5], KEYS[6]
local entry, chunk, nchunks = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local keep_s = ARGV[4]
local njobs, pool, campaign = tonumber(ARGV[5]), ARGV[6], ARGV[9]
local limit, attempt, dealid = tonumber(ARGV[10]), ARGV[11], ARGV[12]
local product, epoch = ARGV[13], ARGV[14]
local fixed = 6
if epoch ~= '' then
  fixed = 7
end
local nrules = #KEYS - fixed
local first = 15 + nrules

-- The fence (docs/sharding.md 4d): a planner that no longer holds the shard's lease
-- writes nothing; the entry is the new owner's to plan. Not a failed try.
if epoch ~= '' then
  local o = redis.call('HMGET', KEYS[7], 'owner', 'epoch')
  if o[2] ~= epoch then
    return {'fenced', o[1] or ''}
  end
end

local planned = redis.call('HGET', deal, 'planned')
if planned then
  return {'duplicate', planned}
end
local owner = redis.call('HGET', deal, 'planning')
if owner and owner ~= entry then
  return {'duplicate', owner}
end
if chunk > 0 then
  local a = redis.call('HMGET', deal, 'attempt', 'cursor')
  if a[1] ~= attempt or tonumber(a[2] or '-1') ~= chunk then
    return {'retry', 'chunk ' .. chunk .. ' of an attempt that is not in progress'}
  end
end

-- Check every recipient line before writing anything: a script that fails half-way
-- keeps what it wrote.
if nrules < 0 then
  return redis.error_reply('ERR plan: fewer keys than the fixed ones')
end
local rule_key = {}
for k = 1, nrules do
  rule_key[ARGV[14 + k]] = KEYS[fixed + k]
end
local i = first
for _ = 1, njobs do
  local n = tonumber(ARGV[i])
  if not n then
    return redis.error_reply('ERR plan: a job has no field count')
  end
  for f = i + 1, i + 2 * n - 1, 2 do
    if ARGV[f] == 'r' then
      -- an A/B test member's rule is "<rule>/<variant>": its reports are the rule's
      local rule = string.match(ARGV[f + 1], '^[^\t]+\t[^\t]+\t[^\t]*\t([^\t/]*)[^\t]*\t')
      if not rule or not rule_key[rule] then
        return redis.error_reply('ERR plan: malformed recipient line or rule not in KEYS')
      end
    end
  end
  i = i + 1 + 2 * n
end

if pool ~= '' then
  redis.call('HSET', deal, 'pool', pool)
end
if chunk == 0 then
  redis.call('HSET', deal, 'url', ARGV[7], 'title', ARGV[8], 'campaign', campaign,
    'entry', entry, unpack(FMT))
  if product ~= '' then
    redis.call('HSET', deal, 'product_id', product)
  end
  redis.call('SET', dealentry, dealid, 'EX', keep_s)
end
local count = 0
if limit > 0 then
  count = redis.call('SCARD', planset)
end
local by_rule, written, jobs = {}, 0, 0
i = first
for _ = 1, njobs do
  local n = tonumber(ARGV[i])
  local out, nr = {}, 0
  for f = i + 1, i + 2 * n - 1, 2 do
    local v = ARGV[f + 1]
    if ARGV[f] ~= 'r' then
      out[#out + 1] = ARGV[f]
      out[#out + 1] = v
    elseif limit == 0 or count < limit then
      local ch, sub, rule = string.match(v, '^([^\t]+)\t([^\t]+)\t[^\t]*\t([^\t/]*)[^\t]*\t')
      if redis.call('SADD', planset, sub .. ':' .. ch) == 1 then
        out[#out + 1] = 'r'
        out[#out + 1] = v
        nr = nr + 1
        count = count + 1
        by_rule[rule] = (by_rule[rule] or 0) + 1
      end
    end
  end
  if nr > 0 then
    for _, x in ipairs(FMT) do
      out[#out + 1] = x
    end
    redis.call('XADD', pushes, '*', unpack(out))
    written = written + nr
    jobs = jobs + 1
  end
  i = i + 1 + 2 * n
end
for rule, n in pairs(by_rule) do
  redis.call('HINCRBY', rule_key[rule], 'planned', n)
end
if campaign ~= '' and written > 0 then
  redis.call('HINCRBY', rcamp, 'planned', written)
end
redis.call('HSET', deal, 'planning', entry, 'attempt', attempt, 'cursor', chunk + 1)
redis.call('HINCRBY', deal, 'jobs', jobs)
local total = redis.call('HINCRBY', deal, 'recipients', written)
if chunk == nchunks - 1 then
  redis.call('HSET', deal, 'planned', entry)
  -- An A/B test's rest released before the plan ended is in "recipients" already,
  -- and ab_release.lua counted it as planned itself.
  redis.call('HINCRBY', rdeal, 'planned',
    total - (tonumber(redis.call('HGET', deal, 'ab_released')) or 0))
  -- The funnel outlives the deal by 90 days, as admit.lua sets it; a deal planned
  -- for nobody never reaches admit (keep_s is the deal's life plus 7 days).
  if redis.call('TTL', rdeal) == -1 then
    redis.call('EXPIRE', rdeal, tonumber(keep_s) + 83 * 86400)
  end
  redis.call('DEL', planset)
else
  redis.call('EXPIRE', planset, keep_s)
end
-- TTLs are relative: Redis' clock need not agree with the notifier's.
redis.call('EXPIRE', deal, keep_s)
return {'ok', tostring(written), tostring(total)}
