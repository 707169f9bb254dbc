-- click.lua: one click on a push's /c/<token> link, atomically (stage: http).
-- ORDER CLICK_KEYS (notifier/clicks.c, click_send):
-- KEYS[1] dealentry:<entry>   KEYS[2] clicked:<push id>   KEYS[3] subscribers
-- KEYS[4] subscribers:changes   KEYS[5] deal:<deal>   KEYS[6] pushinfo:<deal>
-- KEYS[7] report:deal:<deal>   KEYS[8] report:rule:<rule> ("" = none)
-- KEYS[9] report:campaign:<campaign> ("" = none)   KEYS[10] series:<deal> ("" = none)
-- KEYS[11] behaviour (the subscriber's shard's: the click's time in their record)
--   (KEYS[5..9] are "" when the caller found no deal for the entry)
-- ARGV: push_id, sub, channel, count ("1"; "0" for HEAD: look up only), ttl_s, gain,
--   then what the caller read to name the keys: the deal id (GET dealentry:<entry>;
--   "" = none), the push's pushinfo:<deal> value and the deal hash's campaign ("" =
--   none each), then now (the notifier's epoch s: when the push was clicked, the start
--   of its click window for convert.lua, the minute a first click counts in
--   series:<deal>, and the click's time in the behaviour record). The rule and
--   campaign of the reports are the sent push's (pushinfo: "<rule>\t<campaign>"), else
--   the deal's campaign.
-- Those reads come before the script because a script may only touch keys it is
-- given: when one no longer holds, nothing is written and the answer is {"retry"}.
-- Returns {"gone"} when the deal (or its URL) has expired, {"retry"}, else
-- {"ok", url, campaign, deal_id, first ("1" when this click was counted)}.
-- A push's clicks count once: the first sets clicked:<push id> to now (NX, ttl_s: the
-- start of the push's click window, convert.lua), adds 1 to
-- "clicked" in report:deal:<id>, report:rule:<rule> and report:campaign:<campaign>,
-- and raises the subscriber's engagement: e' = e + (1 - e) x gain, rounded to 6
-- decimals, written into the stored JSON and announced on subscribers:changes so every
-- mirror reloads it.
local deal_id = redis.call('GET', KEYS[1])
if not deal_id then
  return {'gone'}
end
if deal_id ~= ARGV[7] then
  return {'retry'}
end
local dk, pinfo = KEYS[5], KEYS[6]
local h = redis.call('HMGET', dk, 'url', 'campaign')
local url, camp = h[1], h[2] or ''
if not url then
  return {'gone'}
end
local sub, ch = ARGV[2], ARGV[3]
if camp ~= ARGV[9] or (redis.call('HGET', pinfo, sub .. ':' .. ch) or '') ~= ARGV[8] then
  return {'retry'}
end

--#include subjson
--#include series
--#include behav

local first = '0'
if ARGV[4] == '1' and redis.call('SET', KEYS[2], ARGV[10], 'NX', 'EX', ARGV[5]) then
  first = '1'
  local reports = { KEYS[7] }
  if KEYS[8] ~= '' then reports[#reports + 1] = KEYS[8] end
  if KEYS[9] ~= '' then reports[#reports + 1] = KEYS[9] end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'clicked', 1)
  end
  -- An A/B test member's click counts for its variant (record.lua wrote which).
  local ab = redis.call('HGET', pinfo, sub .. ':' .. ch .. '\tab')
  if ab then redis.call('HINCRBY', KEYS[7], 'ab:' .. ab .. ':clicked', 1) end
  series_add(KEYS[10], 'clicked', ARGV[10], 0)
  local gain = tonumber(ARGV[6])
  subjson_engage(KEYS[3], KEYS[4], sub, function(e) return e + (1 - e) * gain end)
  local rec = behav_note(KEYS[11], sub, ARGV[10], 2)
  if rec then behav_announce(KEYS[4], { sub }, { rec }) end
end
return {'ok', url, camp, deal_id, first}
