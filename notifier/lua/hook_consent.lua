-- hook_consent.lua: an opt-out or opt-in from an inbound message (stage: http).
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:<channel>
-- ARGV: op ("out" | "in"), channel, how ("sms:STOP", "dm:START" ...), detail (the
--   keyword label), now (epoch s), now (RFC 3339), match ("phone" | "dm" | "id"),
--   match value, ack key ("" = none), ack TTL (s), then the subscriber ids.
-- For each id whose stored subscriber still has that phone number (or DM handle):
-- the consent field goes (opt-out) or comes back (opt-in, only for a channel the
-- subscriber has), the stored JSON's consent.<channel> follows, a change is put on
-- subscribers:changes so every notifier's mirror follows, and consent_log:<id> keeps
-- <channel>:state, :when, :how and :detail. admit.lua reads KEYS[3], so once this
-- ran no push on the channel can be admitted.
-- The ack key (SET NX EX) makes one confirmation per opt-out: the first opt-out
-- sets it and is told to confirm; a repeat within the TTL is not; an opt-in clears it.
-- Returns { found, changed, confirm }.
--#include subjson

local subs, changes, consent = KEYS[1], KEYS[2], KEYS[3]
local op, ch, how, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, now_rfc, match, value = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ack, ack_ttl = ARGV[9], ARGV[10]
local found, changed, confirm = 0, 0, 0
for i = 11, #ARGV do
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
        subjson_consent_revoked(SUBJSON_CONSENT_EPOCH)
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
      redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put')
    end
    subjson_consent_event(id, ch, state, now, how, detail)
  end
end
if ack ~= '' and found > 0 then
  if op == 'out' then
    if redis.call('SET', ack, '1', 'NX', 'EX', ack_ttl) then confirm = 1 end
  else
    redis.call('DEL', ack)
  end
end
return { found, changed, confirm }
