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
