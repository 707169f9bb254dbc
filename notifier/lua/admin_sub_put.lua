-- admin_sub_put.lua: store one subscriber from the admin API (stage: http).
-- ORDER SUB_KEYS (notifier/admin.c sub_script; admin_sub_bulk.lua adds one key):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:epoch
-- KEYS[4] consent:records
-- KEYS[5..] consent:<channel>, one per channel in channel order (ORDER CHANNEL)
-- then the last: stops (the shard's record of the SMS opt-outs of numbers)
-- ARGV: id, canonical JSON, create ("1": refuse when it exists), then one consent
--   time per channel (epoch seconds; "" = no consent: the field is removed), then
--   now (the notifier's clock) and how ("api", "import": for the consent record),
--   the subscriber's number ("" = none) and its entry on the suppression list as
--   the caller's phone index add read it ("" = none)
-- A STOP from the number (its entry, or the shard's stops, the later) at or after
-- the SMS consent time given, and later than the record's last SMS event, is added
-- to the consent record and keeps that consent out (lib/subput.lua): checked in the
-- script that stores, so that no STOP between a check and the store is missed.
-- The consent record outranks an older consent time: when the subscriber's last event
-- on a channel in consent:records <id> is an opt-out (opted_out: a STOP, a gateway's
-- opt-out answer; revoked: a carrier's 30005/30006) at or after the time the document
-- gives, that consent is not restored: the hash field stays absent and the stored
-- JSON says null. Re-importing an old file never texts someone who said STOP since; a
-- newer consent time (given after the opt-out) does restore it. Every consent granted
-- or removed here is added to the record (lib/subjson.lua). The work is
-- subput_batch (lib/subput.lua), which bulk imports share.
-- One script, so that "create" can refuse an existing subscriber without a race.
-- Returns {0} (create refused, nothing written), or {1 created | 2 replaced, the JSON
-- as stored, the channels kept out separated by ","}.
--#include subjson
--#include subput
local CK = 5                     -- the first consent:<channel> key
local nch = #KEYS - CK           -- the last key is stops
local ckeys, times = {}, {}
for i = CK, CK + nch - 1 do
  ckeys[#ckeys + 1] = KEYS[i]
  times[#times + 1] = ARGV[4 + i - CK]
end
local results, created = subput_batch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[#KEYS],
  ckeys, { { id = ARGV[1], json = ARGV[2], phone = ARGV[6 + nch], stop = ARGV[7 + nch],
  times = times } }, ARGV[3], ARGV[4 + nch], ARGV[5 + nch])
if not results[1] then
  return {0}
end
return { created == 1 and 1 or 2, results[1][1], results[1][2] }
