-- hook_consent.lua: an opt-out or an opt-in from an inbound message, applied to the
-- sender's subscribers in one shard (stage: http; docs/sharding.md 4f). The number's
-- own records (the MessageSid, the suppression list, the confirmation) are
-- hook_phone.lua's, on the number's slot, which runs before and after this script
-- on every shard of the ids (notifier/hooks_consent.c); a reply kept for review is
-- hook_reply.lua.
-- ORDER HOOK_CONSENT_KEYS (notifier/hooks_consent.c):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:<channel>
-- KEYS[4] consent:epoch   KEYS[5] consent:records
-- KEYS[6] inbound:done:<sid> ("" for a message without a MessageSid)
-- KEYS[7] stops (number -> the number's last SMS opt-out that reached this shard)
-- ARGV: op ("out" | "in"), channel, how ("sms:STOP", "dm:START" ...), detail (the
--   keyword label), now (epoch s), now (RFC 3339), match ("phone" | "dm" | "id"),
--   match value, the marker's TTL (s), the time the message began (epoch s:
--   hook_phone.lua's begin answers it), then the subscriber ids (this shard's).
-- An opt-in leaves alone a subscriber whose last event on the channel is an opt-out
-- after the second the opt-in began in, and a stops entry as recent (entries have
-- seconds: one in that same second is taken as before the opt-in).
-- Once per shard and message: the marker KEYS[6] ("<found> <changed>", SET with the
-- TTL, 30 days: Twilio's retries end long before) makes a message retried after a
-- crash change nothing here again, and answers the counts of the first time.
-- An SMS opt-out of a number is also kept in the shard's stops (number ->
-- "<when>\t<how>\t<detail>"; an opt-in later than it takes it off), whoever of the
-- ids still has the number: the phone index lists an id before its write stores it
-- (a new subscriber, or one given this number), and that store reads stops on this
-- same slot (lib/subput.lua), so a STOP between the write's read of the suppression
-- list and its store keeps SMS consent out. Nothing is written under an id that is
-- not stored.
-- "out"/"in": for each id whose stored subscriber still has that phone number (or DM
-- handle): the consent field goes (opt-out) or comes back (opt-in, only for a channel
-- the subscriber has), the stored JSON's consent.<channel> follows, a change is put on
-- subscribers:changes so every notifier's mirror follows, and the event (state, when,
-- how, detail) is added to the subscriber's consent record (consent:records <id>).
-- admit.lua reads KEYS[3], so once this ran no push on the channel can be admitted.
-- Returns { found, changed, 0, duplicate }.
--#include subjson

local subs, changes, consent, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local records, done, stops = KEYS[5], KEYS[6], KEYS[7]
local op, ch, how, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, now_rfc, match, value = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local done_ttl, began = ARGV[9], tonumber(ARGV[10]) or 0
local FIRST_ID = 11
local found, changed = 0, 0

if op ~= 'out' and op ~= 'in' then
  return redis.error_reply('hook_consent.lua: op must be out or in')
end
if done ~= '' then
  local v = redis.call('GET', done)
  if v then
    local f, c = string.match(v, '^(%d+) (%d+)$')
    return { tonumber(f) or 0, tonumber(c) or 0, 0, 1 }
  end
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
  if hit and op == 'in' then
    -- An opt-out (a STOP, a carrier's revocation) after this opt-in began is the
    -- person's last word: the opt-in does not undo it (a START resumed after a
    -- crash, or two messages whose steps interleave).
    local st, w = subjson_record_last(redis.call('HGET', records, id), ch)
    if (st == 'opted_out' or st == 'revoked') and (w or 0) > began then
      found = found + 1
      hit = false
    end
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
    redis.call('HSET', stops, value, now .. '\t' .. how .. '\t' .. detail)
  else
    local v = redis.call('HGET', stops, value)
    if v and (tonumber(string.match(v, '^(%d+)\t')) or 0) <= began then
      redis.call('HDEL', stops, value)
    end
  end
end
if done ~= '' then
  redis.call('SET', done, found .. ' ' .. changed, 'EX', done_ttl)
end
return { found, changed, 0, 0 }
