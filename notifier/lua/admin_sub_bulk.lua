-- admin_sub_bulk.lua: store many subscribers in one call, for dealpushctl subscribers
-- import and POST /v1/subscribers/bulk (stage: http). Each subscriber gets exactly
-- what admin_sub_put.lua gives one (lib/subput.lua): the
-- suppression list first, then the store, create = "0" (an import replaces).
-- ORDER BULK_KEYS (notifier/subbulk.c):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:epoch
-- KEYS[4] consent:records   KEYS[5] stops (the shard's record of the SMS opt-outs of
--   numbers, hook_consent.lua)
-- KEYS[6..] consent:<channel>, one per channel in channel order (ORDER CHANNEL)
-- ARGV: now (epoch s), how ("import", "api"), then per subscriber 4 + one per channel
--   (ORDER BULK_ARGS): id, canonical JSON (validated by the caller:
--   subscriber_parse), phone ("" = none), the number's entry on the suppression list
--   ("" = none; the caller read it on the number's slot, notifier/subbulk.c), the
--   consent time per channel (epoch s; "" = none)
-- Returns { stored, created, suppressed (STOPs from suppressed:sms added to records),
--   then for each subscriber with a channel kept out: its position (1-based, in ARGV's
--   order), the channels joined by "," }.
--#include subjson
--#include subput
local CK = 6
local ckeys = {}
for i = CK, #KEYS do ckeys[#ckeys + 1] = KEYS[i] end
local per = 4 + #ckeys
if #ARGV < 2 or (#ARGV - 2) % per ~= 0 then
  return redis.error_reply('admin_sub_bulk: ' .. (#ARGV - 2) .. ' arguments after how,'
    .. ' not a multiple of ' .. per)
end
local list = {}
for b = 3, #ARGV, per do
  local times = {}
  for c = 1, #ckeys do times[c] = ARGV[b + 3 + c] end
  list[#list + 1] = { id = ARGV[b], json = ARGV[b + 1], phone = ARGV[b + 2],
    stop = ARGV[b + 3], times = times }
end
local results, created, suppressed = subput_batch(KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5], ckeys, list, '0', ARGV[1], ARGV[2])
local out = { #list, created, suppressed }
for i = 1, #list do
  if results[i][2] ~= '' then
    out[#out + 1] = i
    out[#out + 1] = results[i][2]
  end
end
return out
