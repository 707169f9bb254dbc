-- erase_deals.lua: an erased subscriber's push history, some deals at a time
-- (stage: http; the second step of POST /v1/erase, docs/compliance.md "Erasure").
-- ORDER ERASE_DEAL_KEYS (notifier/privacy.c): for each deal, 8 keys:
--   push:<deal>, pushinfo:<deal>, delivery:<deal>, pushline:<deal>, code:<deal>,
--   redelivered:<deal>, retext:<deal>, holdout:<deal>
-- then the codepush:<code> of each code a push held, and the clicked:<push id> of
-- each push; ARGV: id, the number of deals, the number of codepush keys.
-- Every field about the subscriber goes: "<id>:<channel>" (and delivery's
-- "<id>:<channel>:sid", pushinfo's "<id>:<channel>\tat") in the per-deal hashes,
-- "<id>" and "<id>:<channel>" in the holdout. Returns {0}.
local id, ndeals, ncodes = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local f = { id .. ':sms', id .. ':dm', id .. ':sms\tat', id .. ':dm\tat' }
local fd = { id .. ':sms', id .. ':dm', id .. ':sms:sid', id .. ':dm:sid' }
for d = 0, ndeals - 1 do
  local b = d * 8
  for k = 1, 7 do
    if k == 3 then
      redis.call('HDEL', KEYS[b + k], unpack(fd))
    else
      redis.call('HDEL', KEYS[b + k], unpack(f))
    end
  end
  redis.call('HDEL', KEYS[b + 8], id, id .. ':sms', id .. ':dm')
end
for i = ndeals * 8 + 1, #KEYS do
  redis.call('DEL', KEYS[i])
end
return { ncodes }
