-- holdout.lua: remember who a deal's holdouts kept back (stage: plan).
-- ORDER HOLDOUT_KEYS (notifier/ingest_plan.c, ingest_holdout):
-- KEYS[1] holdout:<deal id>   KEYS[2] report:deal:<id>   KEYS[3] report:campaign:<c>
--   ("" for none), then one report:rule:<rule> per recipient, in their order
-- ARGV: ttl_s, at (the notifier's epoch s), then per held-out recipient: subscriber
--   id, rule, the channels held back ("sms", "dm" or "sms dm"), whole ("1": every
--   channel it had, so it gets no push at all)
-- A rule's holdout draws each channel on its own (docs/attribution.md §5), so a
-- subscriber may be held out of DM and sent SMS. holdout:<deal> maps "<sub>:<ch>" to
-- the rule for each channel held back, "<sub>" to the rule for a subscriber held out
-- of every channel, and "\tat" to when the deal was first held out (a subscriber id
-- never holds a tab); conversions by them count as the holdout's (convert.lua).
-- "ch:<ch>:holdout_audience" grows by the channel's recipients added,
-- "holdout_audience" by the whole ones, in the deal's, each rule's and the
-- campaign's report, so a deal re-planned after a crash, or published twice, counts
-- nobody twice. Returns the number of fields added.
local key, rdeal, rcamp, ttl, at = KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2]
local added, counts, order = 0, {}, {}

local function count(rkey, field)
  if rkey == '' then
    return
  end
  local t = counts[rkey]
  if not t then
    t = {}
    counts[rkey] = t
    order[#order + 1] = rkey
  end
  t[field] = (t[field] or 0) + 1
end

local function add(field, rule, counter, rkey)
  if redis.call('HSETNX', key, field, rule) == 1 then
    added = added + 1
    count(rdeal, counter)
    count(rcamp, counter)
    count(rkey, counter)
  end
end

for i = 3, #ARGV - 3, 4 do
  local sub, rule, chans, whole = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local rkey = KEYS[3 + (i + 1) / 4]
  if whole == '1' then
    add(sub, rule, 'holdout_audience', rkey)
  end
  for c in string.gmatch(chans, '%S+') do
    add(sub .. ':' .. c, rule, 'ch:' .. c .. ':holdout_audience', rkey)
  end
end
redis.call('HSETNX', key, '\tat', at)
for _, rkey in ipairs(order) do
  for field, n in pairs(counts[rkey]) do
    redis.call('HINCRBY', rkey, field, n)
  end
end
redis.call('EXPIRE', key, ttl)
return added
