-- lib/audit.lua: one entry on the audit stream, from a script that makes the change
-- (inlined where a script says "--#include audit"): the change and its record are
-- one write, so neither is ever seen without the other. The key is the caller's
-- (from KEYS). docs/api.md "Audit" lists the fields.

-- The audit stream keeps about this many entries (XADD MAXLEN ~).
local AUDIT_MAXLEN = '100000'
-- A before or after value longer than this many bytes is cut (at a UTF-8 boundary)
-- and wrapped as {"truncated":true,"bytes":N,"head":"..."}.
local AUDIT_VALUE_MAX = 4096

-- The JSON text of a value for the record: 'null' for nil, else the text itself when
-- it is short, else the truncation marker around its head.
local function audit_value(json)
  if json == nil then
    return 'null'
  end
  if #json <= AUDIT_VALUE_MAX then
    return json
  end
  local cut = AUDIT_VALUE_MAX
  while cut > 0 do
    local b = string.byte(json, cut + 1)
    if b == nil or b < 128 or b >= 192 then break end
    cut = cut - 1
  end
  return cjson.encode({ truncated = true, bytes = #json,
    head = string.sub(json, 1, cut) })
end

-- Appends the record of one change to stream key: who (a token's name) with role
-- did what to object id at ms (the caller's wall clock), before and after as JSON
-- text or nil.
local function audit_add(key, who, role, what, id, ms, before, after)
  redis.call('XADD', key, 'MAXLEN', '~', AUDIT_MAXLEN, '*', 'who', who, 'role', role,
    'what', what, 'id', id, 'ms', ms, 'before', audit_value(before),
    'after', audit_value(after), unpack(FMT))
end
