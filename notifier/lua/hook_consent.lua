-- hook_consent.lua: an opt-out or an opt-in from an inbound message (stage: http; a
-- reply kept for review is hook_reply.lua).
-- ORDER HOOK_CONSENT_KEYS (notifier/hooks_consent.c):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:<channel>
-- KEYS[4] consent:epoch   KEYS[5] the ack key (optout_ack:<number>)
-- KEYS[6] inbound:sids   KEYS[7] suppressed:sms   KEYS[8] consent:records
-- ARGV: op ("out" | "in"), channel, how ("sms:STOP", "dm:START" ...), detail (the
--   keyword label), now (epoch s), now (RFC 3339), match ("phone" | "dm" | "id"),
--   match value, ack TTL (s; "" = no ack), MessageSid ("" = none), "" (unused), then
--   the subscriber ids.
-- Replays: an opt-out or opt-in whose MessageSid is in inbound:sids was applied already
-- and changes nothing, however late (a replayed START after a STOP stays opted out);
-- the sid is kept there with no TTL, as long as the consent record.
-- "out"/"in": for each id whose stored subscriber still has that phone number (or DM
-- handle): the consent field goes (opt-out) or comes back (opt-in, only for a channel
-- the subscriber has), the stored JSON's consent.<channel> follows, a change is put on
-- subscribers:changes so every notifier's mirror follows, and the event (state, when,
-- how, detail) is added to the subscriber's consent record (consent:records <id>).
-- admit.lua reads KEYS[3], so once this ran
-- no push on the channel can be admitted. An SMS opt-out also puts the number on
-- suppressed:sms (number -> "<when>\t<how>\t<detail>"), subscriber or not, which
-- imports and the admin API honour (sub_suppress.lua); an SMS opt-in takes it off.
-- The ack key (SET NX EX) makes one confirmation per opt-out: the first opt-out of a
-- known number sets it and is told to confirm; a repeat within the TTL is not; an
-- opt-in clears it.
-- Returns { found, changed, confirm, duplicate }.
--#include subjson

local subs, changes, consent, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ack, sids, suppressed, records = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local op, ch, how, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, now_rfc, match, value = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ack_ttl, sid, text = ARGV[9], ARGV[10], ARGV[11]
local FIRST_ID = 12
local found, changed, confirm = 0, 0, 0

if sid ~= '' and redis.call('HEXISTS', sids, sid) == 1 then
  return { 0, 0, 0, 1 }
end

for i = FIRST_ID, #ARGV do
  local id = ARGV[i]
  local json = redis.call('HGET', subs, id)
  local ok, s = false, nil
  if json then ok, s = pcall(cjson.decode, json) end
  local hit = ok and type(s) == 'table'
  if hit and match == 'phone' then
    hit = s.phone == value
  elseif hit and match == 'dm' then
    hit = type(s.dm) == 'table' and s.dm.x == value
  end
  if hit then
    found = found + 1
    local has_ch = false
    if type(s.channels) == 'table' then
      for _, c in ipairs(s.channels) do
        if c == ch then has_ch = true end
      end
    end
    local newjson, state
    if op == 'out' then
      state = 'opted_out'
      if redis.call('HDEL', consent, id) == 1 then
        changed = changed + 1
        subjson_consent_revoked(epoch)
      end
      newjson = subjson_set_consent(json, ch, 'null')
    else
      state = 'opted_in'
      if has_ch and redis.call('HEXISTS', consent, id) == 0 then
        redis.call('HSET', consent, id, now)
        changed = changed + 1
      end
      local cur = type(s.consent) == 'table' and s.consent[ch]
      if type(cur) ~= 'string' then
        newjson = subjson_set_consent(json, ch, '"' .. now_rfc .. '"')
      end
    end
    if newjson and newjson ~= json then
      redis.call('HSET', subs, id, newjson)
      redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put', unpack(FMT))
    end
    subjson_consent_event(records, id, ch, state, now, how, detail)
  end
end
if ch == 'sms' and match == 'phone' then
  if op == 'out' then
    redis.call('HSET', suppressed, value, now .. '\t' .. how .. '\t' .. detail)
  else
    redis.call('HDEL', suppressed, value)
  end
end
if sid ~= '' then
  redis.call('HSET', sids, sid, now .. '\t' .. op .. '\t' .. ch)
end
if ack_ttl ~= '' and found > 0 then
  if op == 'out' then
    if redis.call('SET', ack, '1', 'NX', 'EX', ack_ttl) then confirm = 1 end
  else
    redis.call('DEL', ack)
  end
end
return { found, changed, confirm, 0 }
