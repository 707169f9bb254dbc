-- lib/outcome.lua: "record an outcome and count it", for the delivery scripts
-- (admit.lua, send.lua, record.lua), inlined where a script says "--#include outcome".
--
-- A push's final outcome is written once: its state in push:<deal>, one entry on
-- pushes:log, one count in stats and in each report it belongs to. Counts are
-- gathered in a table and written by oc_flush() at the end of the script, one
-- HINCRBY per (hash, field) and not one per push: a batch of 128 pushes that all end
-- "sent" costs one HINCRBY per report. Every key is the caller's (from KEYS).

local oc_counts, oc_order = {}, {}

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

-- The final outcome of one push: state, log entry (extra: more field/value pairs
-- for the entry, may be nil), and a count in stats and in every report of reports
-- (report:deal, report:rule, report:campaign keys; "" = none).
local function oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch,
    outcome, at, extra)
  redis.call('HSET', states, field, outcome)
  local a = { 'XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push, 'deal', deal_id,
    'sub', sub, 'channel', ch, 'outcome', outcome, 'at', at }
  if extra then
    for _, v in ipairs(extra) do
      a[#a + 1] = v
    end
  end
  redis.call(unpack(a))
  oc_add(stats, 'outcome:' .. outcome, 1)
  for _, r in ipairs(reports) do
    oc_add(r, outcome, 1)
  end
end

-- A sent push's attribution (pushinfo, a hash: field = "<rule>\t<campaign>") and, for a
-- subscriber's first sent push of the deal on any channel, one "treated_audience" in
-- each report. multi = false when the subscriber has one channel only: then no other
-- channel's mark can be there.
local function oc_attribute(pushinfo, field, sub, ch, rule, camp, reports, multi)
  if redis.call('HSET', pushinfo, field, rule .. '\t' .. camp) == 1 and
      -- ORDER CHANNEL: the other of the two channels, sms and dm.
      (not multi or redis.call('HEXISTS', pushinfo,
      sub .. ':' .. (ch == 'sms' and 'dm' or 'sms')) == 0) then
    for _, r in ipairs(reports) do
      oc_add(r, 'treated_audience', 1)
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
