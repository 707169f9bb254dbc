-- convert.lua: one entry of the conversions stream, attributed or dead-lettered and
-- acked in the same step (stage: record).
-- ORDER CONVERT_KEYS (notifier/convert.c, convert_script):
-- KEYS[1] conversions   KEYS[2] conversions:dead   KEYS[3] subscribers
-- KEYS[4] subscribers:changes   KEYS[5] codepush:<code> ("" unless kind "code")
-- KEYS[6] dealentry:<entry of the push> ("" when there is no push id)
-- KEYS[7] pushinfo:<deal>   KEYS[8] deal:<deal>   KEYS[9] holdout:<deal>
-- KEYS[10] order:<order id>   KEYS[11] report:deal:<deal>
-- KEYS[12] report:rule:<r>, KEYS[13] report:campaign:<c>: the conversion's own ("" =
--   none): the sent push's (pushinfo), else, for a held-out buyer, the rule that held
--   it out and the deal's campaign
-- KEYS[14] behaviour
--   ("dead" uses KEYS[1] and KEYS[2] only; the others may be "")
-- ARGV[1] "dead": ARGV entry, group, reason, field, error, payload
--   XADD conversions:dead (reason, field, error, entry, conversion) and XACK.
-- ARGV[1] "attr": ARGV entry, group, deal_id, order_id, revenue, currency, kind,
--   value, payload, order_ttl_s, gain, then what the caller read to name the keys:
--   the push codepush:<code> names ("" = none), the pushinfo value of the push (or of
--   the subscriber's first channel with one), the holdout rule and the deal's campaign
--   ("" = none each), then now (epoch s, the notifier's clock)
--   kind "code": value is a pool code, its push is codepush:<code>;
--   "push_id" / "click_token": value is the push id (the token was checked in C);
--   "subscriber_id": value is the subscriber; its sent push of the deal
--   (pushinfo:<deal> field <sub>:sms, then <sub>:dm), else the holdout audience
--   (holdout:<deal> field <sub>: the rule that held it out), else unattributed.
-- Those reads come before the script because a script may only touch keys it is
-- given: when one no longer holds, nothing is written and the answer is {"retry"}.
-- An order id counts once (SET order:<id> <entry>\t<outcome> NX EX order_ttl_s,
-- the outcome as below, read by dealpushctl convert). An attributed
-- conversion adds 1 to "redeemed" and the revenue to "revenue" in report:deal:<id>,
-- report:rule:<rule> and report:campaign:<campaign> of the push (pushinfo) and raises
-- the subscriber's engagement: e' = e + (1 - e) x gain. A held-out one adds to
-- "holdout_redeemed"/"holdout_revenue" in the reports of the deal, of the rule that
-- held the buyer out and of the deal's campaign; an unattributed one to
-- "unattributed"/"unattributed_revenue" in report:deal:<id> only.
-- Returns {"dead", reason, field} | {"duplicate"} | {"attributed", push id} |
-- {"holdout"} | {"unattributed"} | {"retry"}.
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

local codepush, dealentry, pinfo, dealk = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local holdout, order, rdeal, rrule, rcamp = KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local deal_id, revenue = ARGV[4], ARGV[6]
local kind, value, payload = ARGV[8], ARGV[9], ARGV[10]
local order_ttl, gain = ARGV[11], tonumber(ARGV[12])
local seen_push, seen_info, seen_hrule, seen_camp = ARGV[13], ARGV[14], ARGV[15], ARGV[16]

--#include subjson
--#include behav

local push, sub, ch, info
if kind == 'code' then
  push = redis.call('GET', codepush)
  if (push or '') ~= seen_push then
    return {'retry'}
  end
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
  local d = redis.call('GET', dealentry)
  info = redis.call('HGET', pinfo, s .. ':' .. c)
  if (info or '') ~= seen_info then
    return {'retry'}
  end
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
    info = redis.call('HGET', pinfo, sub .. ':' .. c)
    if info then
      local d = redis.call('HGET', dealk, 'entry')
      if d then
        push = d .. ':' .. sub .. ':' .. c
      else
        push = sub .. ':' .. c
      end
      break
    end
  end
  if (info or '') ~= seen_info then
    return {'retry'}
  end
end
local hrule, camp = false, false
if not info and kind == 'subscriber_id' then
  hrule = redis.call('HGET', holdout, sub)
  camp = redis.call('HGET', dealk, 'campaign')
  if (hrule or '') ~= seen_hrule or (camp or '') ~= seen_camp then
    return {'retry'}
  end
end

-- The order's key also records the outcome, so that `dealpushctl convert` can say it:
-- "<entry>\tattributed\t<push>", "<entry>\tholdout" or "<entry>\tunattributed".
local outcome = 'unattributed'
if info then
  outcome = 'attributed\t' .. push
elseif hrule then
  outcome = 'holdout'
end
if not redis.call('SET', order, entry .. '\t' .. outcome, 'NX', 'EX', order_ttl) then
  redis.call('XACK', stream, group, entry)
  return {'duplicate'}
end

if info then
  local reports = { rdeal }
  if rrule ~= '' then reports[#reports + 1] = rrule end
  if rcamp ~= '' then reports[#reports + 1] = rcamp end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'redeemed', 1)
    redis.call('HINCRBYFLOAT', r, 'revenue', revenue)
  end
  subjson_engage(subs, changes, sub, function(e) return e + (1 - e) * gain end)
  if behav_note(KEYS[14], sub, ARGV[17], 3, revenue) then
    behav_announce(changes, { sub })
  end
  redis.call('XACK', stream, group, entry)
  return {'attributed', push}
end
if hrule then
  local reports = { rdeal, rrule }
  if rcamp ~= '' then reports[#reports + 1] = rcamp end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'holdout_redeemed', 1)
    redis.call('HINCRBYFLOAT', r, 'holdout_revenue', revenue)
  end
  redis.call('XACK', stream, group, entry)
  return {'holdout'}
end
redis.call('HINCRBY', rdeal, 'unattributed', 1)
redis.call('HINCRBYFLOAT', rdeal, 'unattributed_revenue', revenue)
redis.call('XACK', stream, group, entry)
return {'unattributed'}
