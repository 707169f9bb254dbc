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
  redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', sub, 'op', 'put')
end

-- Appends one consent change to history (consent_history:<id>, newest first, the
-- last 100) and makes it the channel's current record in log (consent_log:<id>);
-- both keys are the caller's, from KEYS.
local function subjson_consent_event_keys(log, history, ch, state, now, how, detail)
  redis.call('HSET', log, ch .. ':state', state, ch .. ':when', now,
    ch .. ':how', how, ch .. ':detail', detail)
  redis.call('LPUSH', history, table.concat({ now, ch, state, how, detail }, '\t'))
  redis.call('LTRIM', history, 0, 99)
end

-- Records that a consent was taken away: key is consent:epoch, from the caller's KEYS.
-- Every consent taken away bumps this counter: send.lua checks a push's consent again
-- only when it moved since the push was admitted (admit.lua checked it then).
local function subjson_consent_revoked(key)
  redis.call('INCR', key)
end
