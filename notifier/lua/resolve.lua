-- resolve.lua: settle one unknown push after a lookup at the provider (stage: record;
-- resolve.c). ORDER RESOLVE_KEYS (notifier/resolve.c, item_settle):
-- KEYS[1] push:<deal>   KEYS[2] resolve:due   KEYS[3] resolve:info   KEYS[4] resolve:tries
-- KEYS[5] pushes:log    KEYS[6] stats         KEYS[7] report:deal:<deal>
-- KEYS[8] report:rule:<rule> ("" = none)      KEYS[9] report:campaign:<c> ("" = none)
-- KEYS[10] pushinfo:<deal>   KEYS[11] delivery:<deal>
-- KEYS[12] behaviour   KEYS[13] subscribers:changes (the subscriber's shard's)
-- ARGV: push id, field (<sub>:<channel>), verdict (found, not_found, ambiguous,
--   error, wait: no text to look for), now (epoch s), deal, sub, channel, gateway,
--   provider id (the sid found, or ""), segments (of the text; 0 = not known), rule,
--   campaign, started (epoch s: when the attempt began, the text's time), max tries,
--   then the delay (s) before the next look after try 1, 2, ... (max tries - 1 of
--   them)
-- The push must still be "unknown", or the entry is only dropped ("dropped"). A sid a
-- status callback kept (delivery:<deal> <field>:sid) settles it as sent, resolved by
-- the callback, whatever the lookup said. "found": the push becomes "sent", as
-- record.lua would have recorded it (log entry with resolved=list, stats and report
-- counters moved from unknown to sent, pushinfo for attribution, the text in the
-- subscriber's behaviour record at the attempt's time), and the entry goes
-- ("sent:list", "sent:callback"). Any other verdict counts a try: before the last, the entry comes due
-- again after that try's delay ("later"); after it, the entry is dropped and the push
-- stays unknown ("gave_up": absence is never proof).
--#include outcome
--#include behav
local states, due, info, tries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local logk, stats, pushinfo, delivery = KEYS[5], KEYS[6], KEYS[10], KEYS[11]
local reports = {}
for k = 7, 9 do
  if KEYS[k] ~= '' then reports[#reports + 1] = KEYS[k] end
end
local push, field, verdict, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local deal, sub, ch, gw, sid = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local segs, rule, camp = tonumber(ARGV[10]) or 0, ARGV[11], ARGV[12]
local started, max_tries = ARGV[13], tonumber(ARGV[14]) or 1

local function forget()
  redis.call('ZREM', due, push)
  redis.call('HDEL', info, push)
  redis.call('HDEL', tries, push)
end

if redis.call('HGET', states, field) ~= 'unknown' then
  forget()
  redis.call('HINCRBY', stats, 'resolve:dropped', 1)
  return 'dropped'
end
local by = 'list'
local kept = redis.call('HGET', delivery, field .. ':sid')
if kept then
  verdict, sid, by = 'found', kept, 'callback'
end
if verdict == 'found' and sid ~= '' then
  oc_resolved(states, logk, stats, reports, field, push, deal, sub, ch, now, by,
    { 'gateway', gw, 'provider_id', sid }, due, info, tries)
  for _, r in ipairs(reports) do
    if segs > 0 then
      oc_add(r, 'sms_segments', segs)
    end
  end
  -- As record.lua for a sent push: attribution, and the treated audience once per
  -- subscriber and deal.
  oc_attribute(pushinfo, field, sub, ch, rule, camp, reports, true, now)
  oc_flush()
  -- The text in the subscriber's behaviour record, as record.lua notes a sent push
  -- (its time the attempt's, not the lookup's), and the deal for replies on ch.
  local texted = { by = {}, ids = {} }
  behav_text(texted, sub, (tonumber(started) or 0) > 0 and started or now, ch, deal, '',
    '')
  behav_announce(KEYS[13], behav_text_flush(KEYS[12], texted))
  if redis.call('TTL', pushinfo) < 0 then
    redis.call('EXPIRE', pushinfo, 30 * 86400)
  end
  redis.call('HSET', delivery, field .. ':sid', sid)
  if redis.call('TTL', delivery) < 0 then
    redis.call('EXPIRE', delivery, 30 * 86400)
  end
  return 'sent:' .. by
end
redis.call('HINCRBY', stats, 'resolve:' .. verdict, 1)
local t = redis.call('HINCRBY', tries, push, 1)
if t >= max_tries then
  forget()
  redis.call('HINCRBY', stats, 'resolve:gave_up', 1)
  return 'gave_up'
end
local delay = tonumber(ARGV[14 + t]) or 60
redis.call('ZADD', due, tonumber(now) + delay, push)
return 'later'
