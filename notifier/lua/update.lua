-- update.lua: apply a deal update ("update": true) to one shard's copy of the deal
-- (stage: ingest).
-- ORDER UPDATE_KEYS: KEYS[1] deal:<id> (the shard's copy)
-- ARGV: exp (epoch s), keep_s, render ("1": the update carries a price, list price
--       or currency; "0": only a changed title or url would change a text; "-":
--       never re-render, the new expiry is past), title, url
-- A deal is known once its planning has begun ("planning" or "planned" in its
-- hash); the new expiry is written as "exp", which admit and send read before every
-- push, so queued pushes follow it (a past expiry stops them). Returns 'unknown'
-- for a deal the shard never planned (the caller dead-letters it "unknown_deal"
-- from shard 0's reader and acks it in every shard), 'ok', or, when the update
-- changes what a text renders, {'retext', planned entry, pool, campaign}: the texts
-- are rendered again (retext.lua) before the caller acks. Nothing here acks: deals
-- is in another slot.
local deal = KEYS[1]
if redis.call('HEXISTS', deal, 'planning') == 0 and
    redis.call('HEXISTS', deal, 'planned') == 0 then
  return 'unknown'
end
redis.call('HSET', deal, 'exp', ARGV[1])
-- Relative TTL: the hash outlives the new expiry by the same margin as at planning.
redis.call('EXPIRE', deal, ARGV[2])
local render = ARGV[3]
if render ~= '-' then
  local d = redis.call('HMGET', deal, 'entry', 'pool', 'campaign', 'title', 'url')
  if d[1] and (render == '1' or d[4] ~= ARGV[4] or d[5] ~= ARGV[5]) then
    return { 'retext', d[1], d[2] or '', d[3] or '' }
  end
end
return 'ok'
