-- lib/behav.lua: a subscriber's behaviour record (docs/attribution.md, "Behaviour"),
-- inlined into the scripts that say "--#include behav". Hash behaviour (the caller's
-- KEYS), field <subscriber id>, value
--   "<joined>|<last text>|<last click>|<last purchase>|<days>"
-- times in epoch seconds ("" = never), days "<day>:<texts>:<clicks>:<purchases>:
-- <revenue>" joined by ",", oldest first, day = floor(time / 86400) (UTC days). A
-- count older than its window (texts 7 days, clicks 30, purchases and revenue 90,
-- counted from the day of the event written) is dropped, and a day with nothing left
-- goes: at most 90 days, so the value stays small. notifier/subbehav.c reads it.
local BEHAV_KEEP = { 7, 30, 90, 90 }

-- Notes one event of subscriber sub at now (epoch seconds) in hash key: what 1 a
-- text, 2 a click, 3 a purchase of revenue amount; 0 the join (kept when set). A
-- value that does not parse starts again. The caller announces the change on
-- subscribers:changes (op "behav") so that every mirror reloads the record.
-- Returns true when something was written.
local function behav_note(key, sub, now, what, amount)
  now = math.floor(tonumber(now) or 0)
  if now <= 0 then return false end
  local v = redis.call('HGET', key, sub) or ''
  local f = { '', '', '', '' }
  local a, b, c, d, days = string.match(v, '^(%d*)|(%d*)|(%d*)|(%d*)|(.*)$')
  if a then f = { a, b, c, d } else days = '' end
  if what == 0 then
    if f[1] ~= '' then return false end
    f[1] = tostring(now)
  elseif (tonumber(f[what + 1]) or 0) < now then
    f[what + 1] = tostring(now)
  end
  local today, byday, order = math.floor(now / 86400), {}, {}
  for e in string.gmatch(days, '[^,]+') do
    local dd, t, k, p, r = string.match(e, '^(%d+):(%d+):(%d+):(%d+):([%d.]+)$')
    if dd then
      local x = { tonumber(t), tonumber(k), tonumber(p), tonumber(r) or 0 }
      if not byday[tonumber(dd)] then order[#order + 1] = tonumber(dd) end
      byday[tonumber(dd)] = x
    end
  end
  if what > 0 then
    local day = today
    if not byday[day] then
      byday[day] = { 0, 0, 0, 0 }
      order[#order + 1] = day
    end
    local x = byday[day]
    x[what] = x[what] + 1
    if what == 3 then x[4] = x[4] + math.max(tonumber(amount) or 0, 0) end
  end
  table.sort(order)
  local out = {}
  for _, dd in ipairs(order) do
    local x = byday[dd]
    for i = 1, 4 do
      if dd <= today - BEHAV_KEEP[i] then x[i] = 0 end
    end
    if x[1] + x[2] + x[3] + x[4] > 0 then
      local r = string.format('%.2f', x[4]):gsub('0+$', ''):gsub('%.$', '')
      out[#out + 1] = dd .. ':' .. x[1] .. ':' .. x[2] .. ':' .. x[3] .. ':' .. r
    end
  end
  redis.call('HSET', key, sub, f[1] .. '|' .. f[2] .. '|' .. f[3] .. '|' .. f[4] ..
    '|' .. table.concat(out, ','))
  return true
end

-- Tells every mirror that the records of ids (a list) changed: one entry, one "id"
-- field per subscriber, op "behav" (only the behaviour record is read again).
local function behav_announce(changes, ids)
  if #ids == 0 then return end
  local fv = { 'op', 'behav' }
  for _, id in ipairs(ids) do
    fv[#fv + 1] = 'id'
    fv[#fv + 1] = id
  end
  redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', unpack(fv))
end
