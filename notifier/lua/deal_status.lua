-- deal_status.lua: the dead letters and the planned payload of one deal, read in one
-- step (stage: report; GET /v1/deals/<id>). It only reads. On the slot of deals:
-- admin_deals.c reads the shards' copies of the deal and their reports, the pause
-- and the A/B tests on their own slots, and merges them.
-- ORDER STATUS_KEYS (notifier/admin_deals.c): KEYS[1] deals:dead
-- KEYS[2] deals:confirmed   KEYS[3] deals
-- ARGV: deal id, how many dead letters to look through at most, the deal's entry
--   (its merged hash's "entry"; "" = none)
-- Returns {latest dead letter of the deal (its fields and "dead_entry", or {}), the
-- entry a held one was confirmed as (or ""), the payload of the deal's planned entry
-- in deals (or "")}, hashes flat.
-- A dead letter is the deal's when its payload's "id" is the deal id (decoded, or
-- matched in a payload that is not JSON).
local id, limit = ARGV[1], tonumber(ARGV[2])
local dead, confirmed, payload = {}, '', ''

local function field(f, name)
  for k = 1, #f, 2 do
    if f[k] == name then return f[k + 1] end
  end
  return nil
end

local last, seen = '+', 0
while seen < limit and #dead == 0 do
  local batch = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', 500)
  if #batch == 0 then break end
  for i = 1, #batch do
    local entry, f = batch[i][1], batch[i][2]
    local p = field(f, 'deal')
    seen = seen + 1
    if p then
      local ok, d = pcall(cjson.decode, p)
      local did
      if ok and type(d) == 'table' and type(d.id) == 'string' then
        did = d.id
      else
        did = string.match(p, '"id"%s*:%s*"([^"\\]*)"')
      end
      if did == id then
        dead = f
        dead[#dead + 1] = 'dead_entry'
        dead[#dead + 1] = entry
        confirmed = redis.call('HGET', KEYS[2], entry) or ''
        break
      end
    end
    last = '(' .. entry
    if seen >= limit then break end
  end
end

local entry = ARGV[3]
if entry ~= '' then
  local r = redis.call('XRANGE', KEYS[3], entry, entry)
  if #r == 1 then payload = field(r[1][2], 'deal') or '' end
end
return {dead, confirmed, payload}
