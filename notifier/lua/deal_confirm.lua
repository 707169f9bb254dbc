-- deal_confirm.lua: a deal held by the guards is published again, confirmed
-- (stage: ingest; docs/delivery.md "Guards before a big send").
-- ORDER CONFIRM_KEYS: KEYS[1] deals:dead  KEYS[2] deals  KEYS[3] deals:confirmed
-- ARGV: deal id, how many dead letters to look through at most
-- Finds the latest dead letter of the deal with reason "held", adds
-- "confirmed": true to its payload and XADDs it to deals; the held entry is
-- remembered in deals:confirmed so that a second confirmation publishes nothing.
-- Returns {'ok', new entry}, {'already', entry it was published as},
-- {'bad_payload', held entry} when its "confirmed" cannot be set without
-- rewriting the deal, or {'none'} when no held dead letter of the deal is within
-- reach.
local id, limit = ARGV[1], tonumber(ARGV[2])
local last, seen = '+', 0
while seen < limit do
  local batch = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', 500)
  if #batch == 0 then break end
  for i = 1, #batch do
    local entry, f = batch[i][1], batch[i][2]
    local fields = {}
    for k = 1, #f, 2 do fields[f[k]] = f[k + 1] end
    seen = seen + 1
    if fields.reason == 'held' and fields.deal then
      local ok, deal = pcall(cjson.decode, fields.deal)
      if ok and type(deal) == 'table' and deal.id == id then
        local done = redis.call('HGET', KEYS[3], entry)
        if done then return {'already', done} end
        -- The payload as published, with "confirmed": true: encoding the decoded
        -- table again would change it (cjson writes an empty array as {}, which
        -- the deal parser refuses). A held deal has "confirmed" false or absent.
        local out, n = string.gsub(fields.deal, '"confirmed"%s*:%s*false',
          '"confirmed":true', 1)
        if deal.confirmed == nil then
          local body = string.gsub(fields.deal, '^%s*{', '', 1)
          out = '{"confirmed":true' .. (string.find(body, '^%s*}') and '' or ',') .. body
        elseif n ~= 1 then
          return {'bad_payload', entry}
        end
        local new = redis.call('XADD', KEYS[2], '*', 'deal', out, unpack(FMT))
        redis.call('HSET', KEYS[3], entry, new)
        return {'ok', new}
      end
    end
    last = '(' .. entry
  end
end
return {'none'}
