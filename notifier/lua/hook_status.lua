-- hook_status.lua: one Twilio status callback (stage: http).
-- KEYS[1] dealentry:<entry>   KEYS[2] stats   KEYS[3] resolve:due   KEYS[4] resolve:info
-- KEYS[5] resolve:tries   KEYS[6] pushes:log
-- ARGV: entry, sub, channel, status (queued sending sent accepted delivered
--   undelivered failed), error code ("" = none), To (E.164, "" = unknown), now (epoch s),
--   MessageSid ("" = unknown)
-- Keeps delivery:<deal id> field <sub>:<ch> = the latest status (never moved back:
-- callbacks can arrive out of order, and a final status stays). On the first final
-- status counts delivered / undelivered / delivery_failed and error:<code> in
-- report:deal:<id>, report:rule:<r>, report:campaign:<c> (rule and campaign from
-- pushinfo:<deal>), and acts on the error code:
--   30005, 30006 (unknown number, landline): consent:sms of the subscriber goes (only
--     while the stored subscriber still has that number), with consent_log:<sub>;
--   30007 (carrier filtered): paused_templates <rule> = now, report:rule:<r> filtered;
--   30003 (handset unreachable): the SMS is sent once more while the deal lasts: the
--     push goes back to "retry" and a job of one is added to "pushes" from what
--     record.lua kept in pushline:<deal>; redelivered:<deal> makes it one retry per
--     push at most; report counters get "redelivery".
-- A callback that carries a MessageSid keeps it as delivery:<deal> <sub>:<ch>:sid, so
-- that record.lua can tell the attempt reached Twilio when the callback came before
-- the outcome was recorded. For an SMS push already "unknown", any such callback
-- settles it: the push becomes "sent" (provider_id = MessageSid, resolved=callback),
-- counted as record.lua counts a sent push (stats and reports move one from unknown
-- to sent; rule and campaign from resolve:info), and its resolve:due / resolve:info /
-- resolve:tries entry goes. The status is then recorded as for any sent push.
-- Returns the status recorded, or unknown_push / stale / duplicate (nothing changed).
--#include subjson
--#include outcome

local stats = KEYS[2]
local sub, ch, status, code, to = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, sid = ARGV[7], ARGV[8]
local deal = redis.call('GET', KEYS[1])
if not deal then
  redis.call('HINCRBY', stats, 'hook:status:unknown_push', 1)
  return 'unknown_push'
end
local rank = { queued = 1, accepted = 1, sending = 2, sent = 2, delivered = 3,
  undelivered = 3, failed = 3 }
local field = sub .. ':' .. ch
local dk = 'delivery:' .. deal
-- A callback about an attempt a 30003 resend replaced (Twilio retrying it, or a
-- replay) must not be taken for the new attempt's.
if sid ~= '' and redis.call('HGET', dk, field .. ':retired') == sid then
  return 'stale'
end
if sid ~= '' then
  redis.call('HSET', dk, field .. ':sid', sid)
  if redis.call('TTL', dk) < 0 then
    redis.call('EXPIRE', dk, 30 * 86400)
  end
end
local states = 'push:' .. deal
if sid ~= '' and ch == 'sms' and redis.call('HGET', states, field) == 'unknown' then
  local due, rinfo, rtries, logk = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
  local push = ARGV[1] .. ':' .. field
  -- ORDER RESOLVE_INFO: deal, sub, channel, gateway, to, started, rule, campaign, text
  local inf = redis.call('HGET', rinfo, push) or ''
  local igw, irule, icamp = string.match(inf, '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)\t[^\t]*\t[^\t]*\t([^\t]*)\t([^\t]*)')
  local rr = { 'report:deal:' .. deal }
  if irule and irule ~= '' then rr[#rr + 1] = 'report:rule:' .. irule end
  if icamp and icamp ~= '' then rr[#rr + 1] = 'report:campaign:' .. icamp end
  oc_resolved(states, logk, stats, rr, field, push, deal, sub, ch, now, 'callback',
    { 'gateway', igw or '', 'provider_id', sid }, due, rinfo, rtries)
  if irule then
    local pinfo = 'pushinfo:' .. deal
    -- As record.lua: attribution, and the treated audience once per subscriber.
    oc_attribute(pinfo, field, sub, ch, irule, icamp, rr, true)
    if redis.call('TTL', pinfo) < 0 then
      redis.call('EXPIRE', pinfo, 30 * 86400)
    end
  end
  oc_flush()
end
local old = redis.call('HGET', dk, field)
if old and rank[old] == 3 then
  return 'duplicate'
end
if old and rank[old] and rank[old] > rank[status] then
  return 'stale'
end
redis.call('HSET', dk, field, status)
if redis.call('TTL', dk) < 0 then
  redis.call('EXPIRE', dk, 30 * 86400)
end
redis.call('HINCRBY', stats, 'hook:status:' .. status, 1)
if rank[status] < 3 then
  return status
end
local rule, camp = nil, nil
local info = redis.call('HGET', 'pushinfo:' .. deal, field)
if info then
  rule, camp = string.match(info, '^([^\t]*)\t(.*)$')
end
local reports = { 'report:deal:' .. deal }
if rule and rule ~= '' then reports[#reports + 1] = 'report:rule:' .. rule end
if camp and camp ~= '' then reports[#reports + 1] = 'report:campaign:' .. camp end
local counter = status
if status == 'failed' then counter = 'delivery_failed' end
for _, r in ipairs(reports) do
  redis.call('HINCRBY', r, counter, 1)
  if code ~= '' and status ~= 'delivered' then
    redis.call('HINCRBY', r, 'error:' .. code, 1)
  end
end
if status == 'delivered' or code == '' then
  return status
end
if (code == '30005' or code == '30006') and ch == 'sms' then
  local json = redis.call('HGET', 'subscribers', sub)
  local ok, s = false, nil
  if json then ok, s = pcall(cjson.decode, json) end
  if ok and type(s) == 'table' and to ~= '' and s.phone == to then
    if redis.call('HDEL', 'consent:sms', sub) == 1 then
      subjson_consent_revoked(SUBJSON_CONSENT_EPOCH)
    end
    local newjson = subjson_set_consent(json, 'sms', 'null')
    if newjson and newjson ~= json then
      redis.call('HSET', 'subscribers', sub, newjson)
      redis.call('XADD', 'subscribers:changes', 'MAXLEN', '~', '100000', '*', 'id', sub,
        'op', 'put')
    end
    subjson_consent_event(sub, 'sms', 'revoked', now, 'twilio:' .. code, 'error ' .. code)
  end
elseif code == '30007' and rule and rule ~= '' then
  redis.call('HSET', 'paused_templates', rule, now)
  redis.call('HINCRBY', 'report:rule:' .. rule, 'filtered', 1)
elseif code == '30003' and ch == 'sms' then
  local spec = redis.call('HGET', 'pushline:' .. deal, field)
  if spec and redis.call('HGET', states, field) == 'sent' then
    local exp, entry, camp, pool, line =
      string.match(spec, '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
    -- One retry per push at most, whatever the later attempts report.
    if exp and tonumber(exp) > tonumber(now) and
        redis.call('HSETNX', 'redelivered:' .. deal, field, now) == 1 then
      redis.call('EXPIRE', 'redelivered:' .. deal, tonumber(exp) - tonumber(now) + 60)
      redis.call('HDEL', 'pushline:' .. deal, field)
      redis.call('HDEL', dk, field)   -- the new attempt reports its own status
      redis.call('HDEL', dk, field .. ':sid')   -- and its own sid
      if sid ~= '' then
        redis.call('HSET', dk, field .. ':retired', sid)
      end
      redis.call('HSET', states, field, 'retry')
      redis.call('XADD', 'pushes', '*', 'deal', deal, 'entry', entry, 'exp', exp,
        'camp', camp, 'pool', pool, 'r', line)
      for _, r in ipairs(reports) do
        redis.call('HINCRBY', r, 'redelivery', 1)
      end
      return 'retried'
    end
  end
end
return status
