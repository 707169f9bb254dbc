-- lib/subjson.lua: edits of a stored subscriber's canonical JSON (subscriber_to_json),
-- inlined into the scripts that say "--#include subjson" (deploy/embed-lua.sh).
-- Every key is an argument, from the calling script's KEYS: a script may only touch
-- the keys it is given (docs/architecture.md).
-- The JSON is edited as text, never decoded and re-encoded: Redis' cjson would turn
-- [] into {} and reorder members. A document not in the canonical form is left
-- alone (the functions return nil), never rewritten.

-- The JSON with "consent":{...} member ch set to val ('null' or a quoted time), or
-- nil when the document is not canonical or has no such member. A quote inside a
-- JSON string is always escaped, so the search can only hit the real member.
local function subjson_set_consent(json, ch, val)
  local s, e = string.find(json, '"consent":{', 1, true)
  if not s then return nil end
  local pos, out, found = e + 1, {}, false
  while true do
    local k, ke = string.match(json, '^"(%a+)":()', pos)
    if not k then return nil end
    local v, ve = string.match(json, '^(null)()', ke)
    if not v then v, ve = string.match(json, '^("[^"\\]*")()', ke) end
    if not v then return nil end
    if k == ch then v = val; found = true end
    out[#out + 1] = '"' .. k .. '":' .. v
    local c = string.sub(json, ve, ve)
    pos = ve + 1
    if c == '}' then break elseif c ~= ',' then return nil end
  end
  if not found then return nil end
  return string.sub(json, 1, e) .. table.concat(out, ',') .. '}' .. string.sub(json, pos)
end

-- Moves subscriber sub's engagement e (0..1) to f(e), rounded to 6 decimals, in hash
-- subs, and tells every notifier's mirror through stream changes. Nothing when the
-- subscriber is gone or its JSON does not end in "engagement":<n>} (canonical).
local function subjson_engage(subs, changes, sub, f)
  local js = redis.call('HGET', subs, sub)
  if not js then
    return
  end
  local ok, obj = pcall(cjson.decode, js)
  if not ok or type(obj) ~= 'table' then
    return
  end
  local e = tonumber(obj.engagement) or 0
  if e < 0 then e = 0 elseif e > 1 then e = 1 end
  local ne = math.floor(f(e) * 1e6 + 0.5) / 1e6
  if ne > 1 then ne = 1 elseif ne < 0 then ne = 0 end
  local s = string.format('%.6f', ne):gsub('0+$', ''):gsub('%.$', '')
  local out, n = string.gsub(js, '"engagement":[-+%d.eE]+}$', '"engagement":' .. s .. '}')
  if n ~= 1 or out == js then
    return
  end
  redis.call('HSET', subs, sub, out)
  redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', sub, 'op', 'put', unpack(FMT))
end

-- The consent record: hash consent:records (the caller's KEYS), field <subscriber id>,
-- value the subscriber's consent events, oldest first, one a line ("\n"), each
-- "<when>\t<channel>\t<state>\t<how>\t<detail>" (docs/compliance.md §4). One field a
-- subscriber in one hash: no key per subscriber, and one key per shard once keys
-- carry a shard's hash tag. At most SUBJSON_RECORD_MAX events; past it the oldest
-- event goes that is none of, per channel: its first consent given (granted or
-- opted_in), its last consent given, its last event (the state now). So the proof of
-- the consent in force, the first proof and the channel's state always stay.
local SUBJSON_RECORD_MAX = 32
local SUBJSON_DETAIL_MAX = 512

-- The events of record text rec (nil or false = none), oldest first.
local function subjson_record_events(rec)
  local ev = {}
  if rec then
    for line in string.gmatch(rec, '[^\n]+') do ev[#ev + 1] = line end
  end
  return ev
end

-- The last event of channel ch in record text rec: its state, when (a number) and
-- how; nil when the record has none for ch.
local function subjson_record_last(rec, ch)
  if not rec then
    return nil
  end
  local ev = subjson_record_events(rec)
  for i = #ev, 1, -1 do
    local w, c, st, how = string.match(ev[i], '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)')
    if c == ch then return st, tonumber(w), how end
  end
  return nil
end

-- s with its tabs and newlines made spaces: they separate fields and events.
local function subjson_record_clean(s)
  if string.find(s, '[\t\n]') then
    s = string.gsub(s, '[\t\n]', ' ')
  end
  return s
end

-- Record text rec (nil or false = none) with one event added, bounded (above);
-- detail is cut at SUBJSON_DETAIL_MAX bytes.
local function subjson_record_add(rec, ch, state, now, how, detail)
  local line = now .. '\t' .. ch .. '\t' .. state .. '\t' .. subjson_record_clean(how)
    .. '\t' .. string.sub(subjson_record_clean(detail), 1, SUBJSON_DETAIL_MAX)
  if not rec then
    return line
  end
  local ev = subjson_record_events(rec)
  ev[#ev + 1] = line
  while #ev > SUBJSON_RECORD_MAX do
    local keep, first_given, last_given, last = {}, {}, {}, {}
    for i = 1, #ev do
      local c, st = string.match(ev[i], '^%d*\t([^\t]*)\t([^\t]*)')
      c = c or ''
      if st == 'granted' or st == 'opted_in' then
        first_given[c] = first_given[c] or i
        last_given[c] = i
      end
      last[c] = i
    end
    for _, t in ipairs({ first_given, last_given, last }) do
      for _, i in pairs(t) do keep[i] = true end
    end
    local drop = 1
    while keep[drop] do drop = drop + 1 end
    table.remove(ev, drop)
  end
  return table.concat(ev, '\n')
end

-- Adds one consent change of subscriber id to the record in hash records (the
-- caller's KEYS; subjson_record_add).
local function subjson_consent_event(records, id, ch, state, now, how, detail)
  local rec = redis.call('HGET', records, id)
  redis.call('HSET', records, id,
    subjson_record_add(rec, ch, state, now, how, detail))
end

-- Records that a consent was taken away: key is consent:epoch, from the caller's KEYS.
-- Every consent taken away bumps this counter: send.lua checks a push's consent again
-- only when it moved since the push was admitted (admit.lua checked it then).
local function subjson_consent_revoked(key)
  redis.call('INCR', key)
end
