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
-- KEYS[14] clicked:<push> of the push named (code, token, push id), or of the
--   subscriber's SMS push; KEYS[15] clicked:<push> of its DM push ("" = none each)
-- KEYS[16] series:<deal> ("attr" only: an order credited to a push counts
--   "redeemed:<minute>" there, the minute it was ordered, ARGV[17])
-- KEYS[17] behaviour (the buyer's shard's: an order credited to a push, halo too, is
--   a purchase in their record, at ARGV[17])
--   ("dead" uses KEYS[1] and KEYS[2] only; the others may be "")
-- ARGV[1] "dead": ARGV entry, group, reason, field, error, payload
--   XADD conversions:dead (reason, field, error, entry, conversion) and XACK. On the
--   slot of conversions (KEYS[1], KEYS[2]; the others "").
-- ARGV[1] "attr" (KEYS[1], KEYS[2] ""; every other key on the attributed
--   subscriber's shard's slot): writes the attribution and does not ack: the caller
--   acks (after a WAIT in the sharded layout, where conversions is on another slot).
--   A conversion found bad writes nothing and answers {"dead", reason, field, error}:
--   the caller dead-letters it with "dead".
-- ARGV[1] "attr": ARGV entry, group, deal_id, order_id, revenue, currency, kind,
--   value, payload, order_ttl_s, gain, then what the caller read to name the keys:
--   the push codepush:<code> names ("" = none), the pushinfo value of the push (or of
--   the subscriber's first channel with one), the holdout rule and the deal's campaign
--   ("" = none each); then ordered_at (epoch s, the notifier's clock), the click
--   window and the delivery window (s), the order's product_id ("" = none) and the
--   deal's entry (read for a subscriber_id: it names the clicked keys; "" = none)
--   kind "code": value is a pool code, its push is codepush:<code>;
--   "push_id" / "click_token": value is the push id (the token was checked in C);
--   "subscriber_id": value is the subscriber; its sent push of the deal
--   (pushinfo:<deal> field <sub>:sms, then <sub>:dm), else the holdout audience
--   (holdout:<deal> field <sub>: the rule that held it out), else unattributed.
-- Those reads come before the script because a script may only touch keys it is
-- given: when one no longer holds, nothing is written and the answer is {"retry"}.
-- Windows (docs/attribution.md §2): a code always credits its push; otherwise the
-- order counts for a sent push when ordered_at is within the click window after
-- the push's click (clicked:<push> = when) or within the delivery window after it
-- was sent (pushinfo field "<sub>:<ch>\tat"; a push recorded before the time was
-- kept counts as inside). Outside both: unattributed, reason outside_window. A
-- held-out buyer counts within the longer window after the deal was held out
-- (holdout:<deal> field "\tat").
-- An order id counts once (SET order:<id> <entry>\t<outcome> NX EX order_ttl_s,
-- the outcome as below, read by dealpushctl convert). An attributed conversion adds
-- 1 to "redeemed" and "redeemed_by_<window>", the revenue to "revenue" and
-- "revenue_by_<window>" in report:deal:<id>, report:rule:<rule> and
-- report:campaign:<campaign> of the push (pushinfo), "ch:<ch>:redeemed" and
-- "ch:<ch>:revenue" for the push's channel, and raises the subscriber's engagement:
-- e' = e + (1 - e) x gain. A halo order (its product_id not the deal's) adds to
-- "halo_orders"/"halo_revenue" instead, never to "revenue". A held-out one adds to
-- "holdout_redeemed"/"holdout_revenue" in the reports of the deal, of the rule that
-- held the buyer out and of the deal's campaign; an unattributed one to
-- "unattributed"/"unattributed_revenue" (and "outside_window") in report:deal:<id>.
-- Every own-product order by a known buyer also counts, per channel, for the
-- channel's treated group (sent a push on it, inside the longer window after) or
-- holdout group (held out of it): "ch:<ch>:treated_redeemed", "_revenue",
-- "_revenue_sq" or "ch:<ch>:holdout_redeemed", "_revenue", "_revenue_sq", whatever
-- push was credited, so each channel is measured against its own holdout.
-- Returns {"dead", reason, field} | {"duplicate"} | {"attributed", push, window} |
-- {"halo", push, window} | {"holdout"} | {"unattributed", reason} | {"retry"}.
local stream, deadk, subs, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local entry, group = ARGV[2], ARGV[3]

if ARGV[1] == 'dead' then
  redis.call('XADD', deadk, 'MAXLEN', '~', '100000', '*', 'reason', ARGV[4],
    'field', ARGV[5], 'error', ARGV[6], 'entry', entry, 'conversion', ARGV[7],
    unpack(FMT))
  redis.call('XACK', stream, group, entry)
  return {'dead', ARGV[4], ARGV[5]}
end

-- "attr": a bad conversion is answered, for the caller's "dead".
local function dead(reason, field, why)
  return {'dead', reason, field, why}
end

local codepush, dealentry, pinfo, dealk = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local holdout, order, rdeal, rrule, rcamp = KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local deal_id, revenue = ARGV[4], ARGV[6]
local kind, value, payload = ARGV[8], ARGV[9], ARGV[10]
local order_ttl, gain = ARGV[11], tonumber(ARGV[12])
local seen_push, seen_info, seen_hrule, seen_camp = ARGV[13], ARGV[14], ARGV[15], ARGV[16]
local ordered, click_w, deliv_w = tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19])
local product, seen_entry = ARGV[20], ARGV[21]
local clickk = { sms = KEYS[14], dm = KEYS[15] }
local long_w = math.max(click_w, deliv_w)

--#include subjson
--#include series
--#include behav

-- When push (field "<sub>:<ch>" of pushinfo, clicked key ck) credits the order:
-- 'click', 'delivery', or nil when the order is outside both windows.
local function window_of(field, ck)
  local clicked = ck ~= '' and tonumber(redis.call('GET', ck) or '')
  -- a click mark of before click times were kept ("1") has no time
  if clicked and clicked > 1e9 and ordered >= clicked and ordered - clicked <= click_w then
    return 'click'
  end
  local at = tonumber(redis.call('HGET', pinfo, field .. '\tat') or '')
  if not at or (ordered >= at and ordered - at <= deliv_w) then
    return 'delivery'
  end
  return nil
end

local push, sub, ch, info, window
if kind == 'code' then
  push = redis.call('GET', codepush)
  if (push or '') ~= seen_push then
    return {'retry'}
  end
  if not push then
    return dead('unknown_code', 'code', 'code: no push took this code')
  end
elseif kind == 'push_id' or kind == 'click_token' then
  push = value
end
if push then
  local e, s, c = string.match(push, '^([^:]+):(.+):([^:]+)$')
  if not e then
    return dead('bad_value', kind, kind .. ': not a push id')
  end
  local d = redis.call('GET', dealentry)
  info = redis.call('HGET', pinfo, s .. ':' .. c)
  if (info or '') ~= seen_info then
    return {'retry'}
  end
  if d and d ~= deal_id then
    return dead('mismatch', kind, kind .. ': names a push of deal ' .. d)
  end
  if not d and not info then
    return dead('unknown_push', kind, kind .. ': no such push of this deal')
  end
  sub, ch = s, c
  if info then
    if kind == 'code' then
      window = 'code'
    else
      window = window_of(s .. ':' .. c, KEYS[14])
    end
  end
else
  sub = value
  local dentry = redis.call('HGET', dealk, 'entry')
  if (dentry or '') ~= seen_entry then
    return {'retry'}
  end
  -- The subscriber's sent pushes of the deal: the first (sms, then dm) sets the
  -- reports; the first inside a window (a click's first) credits the order.
  local sent = {}
  for _, c in ipairs({'sms', 'dm'}) do
    local v = redis.call('HGET', pinfo, sub .. ':' .. c)
    if v then
      if not info then
        info, ch = v, c
      end
      sent[#sent + 1] = c
    end
  end
  if (info or '') ~= seen_info then
    return {'retry'}
  end
  local best
  for _, c in ipairs(sent) do
    local w = window_of(sub .. ':' .. c, clickk[c])
    if w == 'click' or (w and not best) then
      best, window = c, w
      if w == 'click' then break end
    end
  end
  ch = best or ch
  if ch then
    push = dentry and (dentry .. ':' .. sub .. ':' .. ch) or (sub .. ':' .. ch)
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
-- A held-out buyer's order counts within the longer window after the holdout.
local function held_in_window()
  local at = tonumber(redis.call('HGET', holdout, '\tat') or '')
  return not at or (ordered >= at and ordered - at <= long_w)
end
local halo = false
if product ~= '' then
  local own = redis.call('HGET', dealk, 'product_id')
  halo = own ~= false and own ~= product
end

-- The order's key also records the outcome, so that `dealpushctl convert` can say it:
-- "<entry>\tattributed\t<push>\t<window>", "<entry>\thalo\t<push>\t<window>",
-- "<entry>\tholdout", "<entry>\tunattributed" or
-- "<entry>\tunattributed\toutside_window".
local outcome, reason = 'unattributed', ''
if info and window then
  outcome = (halo and 'halo\t' or 'attributed\t') .. push .. '\t' .. window
elseif info then
  reason = 'outside_window'
elseif hrule and not halo then
  if held_in_window() then
    outcome = 'holdout'
  else
    reason = 'outside_window'
  end
end
if reason ~= '' then
  outcome = outcome .. '\t' .. reason
end
if not redis.call('SET', order, entry .. '\t' .. outcome, 'NX', 'EX', order_ttl) then
  return {'duplicate'}
end

-- The buyer's groups, channel by channel (own-product orders only): treated when
-- sent a push on the channel (inside the longer window after it), held out when
-- the channel's holdout kept it back (inside the longer window after that).
if sub and not halo then
  for _, c in ipairs({'sms', 'dm'}) do
    local group_of
    if redis.call('HEXISTS', pinfo, sub .. ':' .. c) == 1 then
      local at = tonumber(redis.call('HGET', pinfo, sub .. ':' .. c .. '\tat') or '')
      if not at or (ordered >= at and ordered - at <= long_w) then
        group_of = 'treated'
      end
    elseif redis.call('HEXISTS', holdout, sub .. ':' .. c) == 1 and held_in_window() then
      group_of = 'holdout'
    end
    if group_of then
      local p = 'ch:' .. c .. ':' .. group_of .. '_'
      local reports = { rdeal }
      if rrule ~= '' then reports[#reports + 1] = rrule end
      if rcamp ~= '' then reports[#reports + 1] = rcamp end
      for _, r in ipairs(reports) do
        redis.call('HINCRBY', r, p .. 'redeemed', 1)
        redis.call('HINCRBYFLOAT', r, p .. 'revenue', revenue)
        redis.call('HINCRBYFLOAT', r, p .. 'revenue_sq', tonumber(revenue) ^ 2)
      end
    end
  end
end

if info and window then
  local reports = { rdeal }
  if rrule ~= '' then reports[#reports + 1] = rrule end
  if rcamp ~= '' then reports[#reports + 1] = rcamp end
  for _, r in ipairs(reports) do
    if halo then
      redis.call('HINCRBY', r, 'halo_orders', 1)
      redis.call('HINCRBYFLOAT', r, 'halo_revenue', revenue)
      redis.call('HINCRBY', r, 'ch:' .. ch .. ':halo_orders', 1)
      redis.call('HINCRBYFLOAT', r, 'ch:' .. ch .. ':halo_revenue', revenue)
    else
      redis.call('HINCRBY', r, 'redeemed', 1)
      redis.call('HINCRBYFLOAT', r, 'revenue', revenue)
      redis.call('HINCRBY', r, 'redeemed_by_' .. window, 1)
      redis.call('HINCRBYFLOAT', r, 'revenue_by_' .. window, revenue)
      redis.call('HINCRBY', r, 'ch:' .. ch .. ':redeemed', 1)
      redis.call('HINCRBYFLOAT', r, 'ch:' .. ch .. ':revenue', revenue)
    end
  end
  if not halo then
    -- An A/B test member's redemption counts for its variant (record.lua wrote which).
    local ab = redis.call('HGET', pinfo, sub .. ':' .. ch .. '\tab')
    if ab then redis.call('HINCRBY', rdeal, 'ab:' .. ab .. ':redeemed', 1) end
    series_add(KEYS[16], 'redeemed', ARGV[17], 0)
  end
  subjson_engage(subs, changes, sub, function(e) return e + (1 - e) * gain end)
  local rec = behav_note(KEYS[17], sub, ARGV[17], 3, revenue)
  if rec then
    behav_announce(changes, { sub }, { rec })
  end
  return {halo and 'halo' or 'attributed', push, window}
end
if outcome == 'holdout' then
  local reports = { rdeal, rrule }
  if rcamp ~= '' then reports[#reports + 1] = rcamp end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'holdout_redeemed', 1)
    redis.call('HINCRBYFLOAT', r, 'holdout_revenue', revenue)
  end
  return {'holdout'}
end
redis.call('HINCRBY', rdeal, 'unattributed', 1)
redis.call('HINCRBYFLOAT', rdeal, 'unattributed_revenue', revenue)
if reason == 'outside_window' then
  redis.call('HINCRBY', rdeal, 'outside_window', 1)
end
return {'unattributed', reason}
