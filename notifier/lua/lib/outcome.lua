-- lib/outcome.lua: "record an outcome and count it", for the delivery scripts
-- (admit.lua, send.lua, record.lua), inlined where a script says "--#include outcome".
--
-- A push's final outcome is written once: its state in push:<deal>, one entry on
-- pushes:log, one count in stats and in each report it belongs to. Counts are
-- gathered in a table and written by oc_flush() at the end of the script, one
-- HINCRBY per (hash, field) and not one per push: a batch of 128 pushes that all end
-- "sent" costs one HINCRBY per report. Every key is the caller's (from KEYS).

local oc_counts, oc_order = {}, {}

-- tonumber(s), remembered per string for the call: the arguments of a batch repeat
-- (one deal's expiry, a cap, "0"), and in Redis' Lua a tonumber costs some 1,500
-- instructions, a table look-up a tenth of that. nil when s is not a number.
local oc_nums = {}
local function oc_num(s)
  local v = oc_nums[s]
  if v == nil then
    v = tonumber(s) or false
    oc_nums[s] = v
  end
  return v or nil
end

-- Adds n to field of hash key, written by oc_flush().
local function oc_add(key, field, n)
  if key == '' then
    return
  end
  local t = oc_counts[key]
  if not t then
    t = {}
    oc_counts[key] = t
    oc_order[#oc_order + 1] = key
  end
  t[field] = (t[field] or 0) + n
end

-- Writes every count gathered so far.
local function oc_flush()
  for _, key in ipairs(oc_order) do
    for field, n in pairs(oc_counts[key]) do
      if n ~= 0 then
        redis.call('HINCRBY', key, field, n)
      end
    end
  end
  oc_counts, oc_order = {}, {}
end

-- ORDER LOG_FIELDS: after push, deal, sub, channel, outcome and at, every pushes:log
-- entry has these fields, in this order, "" when the outcome has none. A stream stores
-- the field names once per node of up to 100 entries when every entry repeats the
-- node's first entry's names, and once per entry otherwise: the same names in the
-- same order cost ~90 bytes less per entry. Only a resolution (rare) adds "resolved".
local OC_LOG_FIELDS = { 'gateway', 'provider_id', 'http_status', 'detail', 'latency_ms' }
-- Where each one's value goes in oc_final's XADD (after its 18 first arguments).
local OC_LOG_AT = {}
for i, f in ipairs(OC_LOG_FIELDS) do OC_LOG_AT[f] = 18 + 2 * i end

-- The final outcome of one push: state, log entry (extra: field/value pairs of
-- OC_LOG_FIELDS and "resolved", may be nil), and a count in stats and in every report
-- of reports (report:deal, report:rule, report:campaign keys; "" = none).
local function oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch,
    outcome, at, extra)
  redis.call('HSET', states, field, outcome)
  local a = { 'XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push, 'deal', deal_id,
    'sub', sub, 'channel', ch, 'outcome', outcome, 'at', at }
  for _, f in ipairs(OC_LOG_FIELDS) do
    a[#a + 1] = f
    a[#a + 1] = ''
  end
  local resolved = nil
  if extra then
    for i = 1, #extra - 1, 2 do
      local k = OC_LOG_AT[extra[i]]
      if k then
        a[k] = extra[i + 1]
      elseif extra[i] == 'resolved' then
        resolved = extra[i + 1]
      end
    end
  end
  for _, x in ipairs(FMT) do
    a[#a + 1] = x
  end
  if resolved then
    a[#a + 1] = 'resolved'
    a[#a + 1] = resolved
  end
  redis.call(unpack(a))
  oc_add(stats, 'outcome:' .. outcome, 1)
  for _, r in ipairs(reports) do
    oc_add(r, outcome, 1)
  end
end

-- A sent push's attribution (pushinfo, a hash: field "<sub>:<ch>" = "<rule>\t<campaign>",
-- field "<sub>:<ch>\tat" = when it was sent, epoch s on the notifier's clock: the
-- start of its delivery window, docs/attribution.md §2) and, for the push's first
-- record, one "ch:<ch>:sent" in each report, and for a subscriber's first sent push of
-- the deal on any channel, one "treated_audience". multi = false when the subscriber
-- has one channel only: then no other channel's mark can be there.
local function oc_attribute(pushinfo, field, sub, ch, rule, camp, reports, multi, at)
  -- 2: both fields are new (a push recorded before the send time was kept has
  -- its first field already and counts nothing again).
  if redis.call('HSET', pushinfo, field, rule .. '\t' .. camp, field .. '\tat', at) == 2
      then
    local sent = 'ch:' .. ch .. ':sent'
    for _, r in ipairs(reports) do
      oc_add(r, sent, 1)
    end
    -- ORDER CHANNEL: the other of the two channels, sms and dm.
    if not multi or redis.call('HEXISTS', pushinfo,
        sub .. ':' .. (ch == 'sms' and 'dm' or 'sms')) == 0 then
      for _, r in ipairs(reports) do
        oc_add(r, 'treated_audience', 1)
      end
    end
  end
end

-- An "unknown" push shown to have reached the provider, by "answer" (its own late
-- 201), "callback" (a status callback) or "list" (the provider's message list): a
-- second pushes:log entry, outcome sent with resolved=by (extra: more field/value
-- pairs), one count moved from unknown to sent in stats and in each report, and its
-- resolver entry (zset due, hashes info and tries) dropped.
local function oc_resolved(states, logk, stats, reports, field, push, deal_id, sub, ch,
    at, by, extra, due, info, tries)
  local e = extra or {}
  e[#e + 1] = 'resolved'
  e[#e + 1] = by
  oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch, 'sent', at, e)
  oc_add(stats, 'outcome:unknown', -1)
  for _, r in ipairs(reports) do
    oc_add(r, 'unknown', -1)
  end
  oc_add(stats, 'resolved:' .. by, 1)
  redis.call('ZREM', due, push)
  redis.call('HDEL', info, push)
  redis.call('HDEL', tries, push)
end

-- The per-recipient code field of code hash codes goes back to pool (a set key;
-- "" = the deal has none), so that a "first N" deal still reaches N people: a deal
-- marked sold out is open again (its hash, deal, loses "sold_out").
local function oc_return_code(codes, pool, deal, field)
  if pool == '' then
    return
  end
  local code = redis.call('HGET', codes, field)
  if code then
    redis.call('SADD', pool, code)
    redis.call('HDEL', codes, field)
    redis.call('HDEL', deal, 'sold_out')
  end
end

-- Queues an "unknown" SMS push for resolution with the provider (resolve.c):
-- due (zset) gets push at time at, info (hash) what the lookup needs:
-- "<deal>\t<sub>\t<channel>\t<gateway>\t<to>\t<attempt started>\t<rule>\t<campaign>\t<text>"
-- (text last: it is the only field that may hold a tab; "" when not known).
-- ORDER RESOLVE_INFO: as resolve.c parses it.
local function oc_queue_unknown(due, info, push, at, deal_id, sub, ch, gw, to, started,
    rule, camp, text)
  redis.call('ZADD', due, at, push)
  redis.call('HSET', info, push, table.concat({ deal_id, sub, ch, gw, to, started, rule,
    camp, text }, '\t'))
end

-- Caps count texts that left: a zset per cap (key, from the caller's KEYS) whose
-- members are push ids scored by when the push was claimed for sending (send.lua).
-- 1 when push may not take a place under cap (> 0) in key counting the members scored
-- from `from` on: cap places are taken, and none of them is push's own (a push
-- claimed again after a retry, or a takeover, keeps the place it took).
local function oc_cap_over(key, from, cap, push)
  if cap <= 0 or key == '' then
    return false
  end
  if redis.call('ZCOUNT', key, from, '+inf') < cap then
    return false
  end
  local own = redis.call('ZSCORE', key, push)
  return not (own and tonumber(own) >= from)
end

-- Counts push in key at now (idempotent: a push is one member), keeping keep_s.
local function oc_cap_take(key, push, now, keep_s)
  redis.call('ZADD', key, now, push)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - keep_s)
  redis.call('EXPIRE', key, keep_s)
end

-- The caps of one push, checked (and counted when take) at now: "daily_cap",
-- "campaign_cap", "legal_cap", or nil when every cap has room. ck holds the caps' keys
-- (day, camp, law; "" = none), c the numbers admit.lua and send.lua take (ORDER
-- ADMIT_RKEYS, SEND_RKEYS): day_cap, day_start, camp_cap, law_cap, law_window. Keys
-- and numbers are apart so that tests/unit/test_scripts_keys.c can tell every key in
-- ck comes from KEYS. The daily and the law's caps may share one key (texts:<sub>);
-- it is counted once.
local function oc_caps(ck, c, push, now, take)
  if oc_cap_over(ck.day, c.day_start, c.day_cap, push) then
    return 'daily_cap'
  end
  if oc_cap_over(ck.camp, now - 86400 + 1, c.camp_cap, push) then
    return 'campaign_cap'
  end
  if oc_cap_over(ck.law, now - c.law_window + 1, c.law_cap, push) then
    return 'legal_cap'
  end
  if take then
    -- texts:<sub> serves a local day (up to 25 h) and the law's period at once.
    if c.day_cap > 0 and ck.day ~= '' and not (c.law_cap > 0 and ck.day == ck.law) then
      oc_cap_take(ck.day, push, now, 93600)
    end
    if c.camp_cap > 0 and ck.camp ~= '' then
      oc_cap_take(ck.camp, push, now, 86400)
    end
    if c.law_cap > 0 and ck.law ~= '' then
      oc_cap_take(ck.law, push, now, math.max(c.law_window, 93600))
    end
  end
  return nil
end

-- Gives push's place back under every cap key of capkeys ("" = none): its send ended
-- with proof that no text was made.
local function oc_cap_give_back(capkeys, push)
  for _, capkey in ipairs(capkeys) do
    if capkey ~= '' then
      redis.call('ZREM', capkey, push)
    end
  end
end
