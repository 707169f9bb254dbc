-- convert.lua: one entry of the conversions stream, attributed or dead-lettered and
-- acked in the same step (stage: record).
-- KEYS[1] conversions   KEYS[2] conversions:dead   KEYS[3] subscribers
-- KEYS[4] subscribers:changes
-- ARGV[1] "dead": ARGV entry, group, reason, field, error, payload
--   XADD conversions:dead (reason, field, error, entry, conversion) and XACK.
-- ARGV[1] "attr": ARGV entry, group, deal_id, order_id, revenue, currency, kind,
--   value, payload, order_ttl_s, gain
--   kind "code": value is a pool code, its push is codepush:<code>;
--   "push_id" / "click_token": value is the push id (the token was checked in C);
--   "subscriber_id": value is the subscriber; its sent push of the deal
--   (pushinfo:<deal> field <sub>:sms, then <sub>:dm), else the holdout audience
--   (holdout:<deal> field <sub>: the rule that held it out), else unattributed.
-- An order id counts once (SET order:<id> NX EX order_ttl_s). An attributed
-- conversion adds 1 to "redeemed" and the revenue to "revenue" in report:deal:<id>,
-- report:rule:<rule> and report:campaign:<campaign> of the push (pushinfo) and raises
-- the subscriber's engagement: e' = e + (1 - e) x gain. A held-out one adds to
-- "holdout_redeemed"/"holdout_revenue" in the reports of the deal, of the rule that
-- held the buyer out and of the deal's campaign; an unattributed one to
-- "unattributed"/"unattributed_revenue" in report:deal:<id> only.
-- Returns {"dead", reason, field} | {"duplicate"} | {"attributed", push id} |
-- {"holdout"} | {"unattributed"}.
local stream, deadk, subs, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local entry, group = ARGV[2], ARGV[3]

local function dead(reason, field, why, payload)
  redis.call('XADD', deadk, 'MAXLEN', '~', '100000', '*', 'reason', reason,
    'field', field, 'error', why, 'entry', entry, 'conversion', payload)
  redis.call('XACK', stream, group, entry)
  return {'dead', reason, field}
end

if ARGV[1] == 'dead' then
  return dead(ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end

local deal_id, order_id, revenue = ARGV[4], ARGV[5], ARGV[6]
local kind, value, payload = ARGV[8], ARGV[9], ARGV[10]
local order_ttl, gain = ARGV[11], tonumber(ARGV[12])

--#include subjson

local push, sub, ch, info
if kind == 'code' then
  push = redis.call('GET', 'codepush:' .. value)
  if not push then
    return dead('unknown_code', 'code', 'code: no push took this code', payload)
  end
elseif kind == 'push_id' or kind == 'click_token' then
  push = value
end
if push then
  local e, s, c = string.match(push, '^([^:]+):(.+):([^:]+)$')
  if not e then
    return dead('bad_value', kind, kind .. ': not a push id', payload)
  end
  local d = redis.call('GET', 'dealentry:' .. e)
  info = redis.call('HGET', 'pushinfo:' .. deal_id, s .. ':' .. c)
  if d and d ~= deal_id then
    return dead('mismatch', kind, kind .. ': names a push of deal ' .. d, payload)
  end
  if not d and not info then
    return dead('unknown_push', kind, kind .. ': no such push of this deal', payload)
  end
  sub, ch = s, c
else
  sub = value
  for _, c in ipairs({'sms', 'dm'}) do
    info = redis.call('HGET', 'pushinfo:' .. deal_id, sub .. ':' .. c)
    if info then
      local d = redis.call('HGET', 'deal:' .. deal_id, 'entry')
      if d then
        push = d .. ':' .. sub .. ':' .. c
      else
        push = sub .. ':' .. c
      end
      break
    end
  end
end

if not redis.call('SET', 'order:' .. order_id, entry, 'NX', 'EX', order_ttl) then
  redis.call('XACK', stream, group, entry)
  return {'duplicate'}
end

local dk = 'report:deal:' .. deal_id
if info then
  local rule, camp = string.match(info, '^([^\t]*)\t(.*)$')
  local reports = { dk }
  if rule and rule ~= '' then
    reports[#reports + 1] = 'report:rule:' .. rule
  end
  if camp and camp ~= '' then
    reports[#reports + 1] = 'report:campaign:' .. camp
  end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'redeemed', 1)
    redis.call('HINCRBYFLOAT', r, 'revenue', revenue)
  end
  subjson_engage(subs, changes, sub, function(e) return e + (1 - e) * gain end)
  redis.call('XACK', stream, group, entry)
  return {'attributed', push}
end
local hrule = kind == 'subscriber_id' and redis.call('HGET', 'holdout:' .. deal_id, sub)
if hrule then
  local reports = { dk, 'report:rule:' .. hrule }
  local camp = redis.call('HGET', 'deal:' .. deal_id, 'campaign')
  if camp and camp ~= '' then
    reports[#reports + 1] = 'report:campaign:' .. camp
  end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'holdout_redeemed', 1)
    redis.call('HINCRBYFLOAT', r, 'holdout_revenue', revenue)
  end
  redis.call('XACK', stream, group, entry)
  return {'holdout'}
end
redis.call('HINCRBY', dk, 'unattributed', 1)
redis.call('HINCRBYFLOAT', dk, 'unattributed_revenue', revenue)
redis.call('XACK', stream, group, entry)
return {'unattributed'}
