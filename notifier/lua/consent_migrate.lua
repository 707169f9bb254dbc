-- consent_migrate.lua: moves one subscriber's consent record of earlier versions
-- (consent_history:<id>, consent_log:<id>) into consent:records (stage: outside the
-- pipeline; dealpushctl consent migrate, once after an upgrade).
-- KEYS[1] consent:records   KEYS[2] consent_history:<id>   KEYS[3] consent_log:<id>
-- ARGV: id
-- The history (a list, newest first, each "when\tch\tstate\thow\tdetail") goes into
-- the record oldest first, in front of any event the record already has (written
-- since the upgrade, so newer), through subjson_record_add: the same bound and the
-- same proofs kept as for every event. A log with no history (it cannot happen with
-- earlier versions, which wrote both) gives its last change per channel instead.
-- Both old keys are deleted. Returns the number of events moved.
--#include subjson
local records, hist, log = KEYS[1], KEYS[2], KEYS[3]
local id = ARGV[1]
local old = redis.call('LRANGE', hist, 0, -1)
local events = {}
for i = #old, 1, -1 do
  local w, c, st, how, detail = string.match(old[i],
    '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  if w then events[#events + 1] = { w, c, st, how, detail } end
end
if #events == 0 then
  local f = redis.call('HGETALL', log)
  local chans = {}
  for i = 1, #f, 2 do
    local c, name = string.match(f[i], '^(%a+):(%a+)$')
    if c then
      chans[c] = chans[c] or {}
      chans[c][name] = f[i + 1]
    end
  end
  for c, v in pairs(chans) do
    if v.state and tonumber(v.when) then
      events[#events + 1] = { v.when, c, v.state, v.how or '', v.detail or '' }
    end
  end
  table.sort(events, function(a, b) return tonumber(a[1]) < tonumber(b[1]) end)
end
local rec = false
for _, e in ipairs(events) do
  rec = subjson_record_add(rec, e[2], e[3], e[1], e[4], e[5])
end
local since = redis.call('HGET', records, id)
if since then
  for _, line in ipairs(subjson_record_events(since)) do
    local w, c, st, how, detail = string.match(line,
      '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
    if w then rec = subjson_record_add(rec, c, st, w, how, detail) end
  end
end
if rec then
  redis.call('HSET', records, id, rec)
end
redis.call('DEL', hist, log)
return #events
